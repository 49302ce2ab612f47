//go:build race

package audit

// raceEnabled is whether the race detector is on: it slows tests that
// generate large logs tenfold.
const raceEnabled = true
