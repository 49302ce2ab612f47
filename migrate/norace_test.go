//go:build !race

package migrate

// raceEnabled is whether the race detector is on: it slows the large
// import tenfold, so scripts/test runs that one again without it.
const raceEnabled = false
