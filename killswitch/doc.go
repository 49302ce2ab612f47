// Package killswitch owns the operators' emergency stop: the state saying
// which destinations are disabled (one, several, or all at once), the
// stores that hold it (a Redis hash shared by every replica, or a JSON
// file for a single node), and the Watcher each gateway runs to see a
// change within one second.
//
// The switch can only take away: a destination it does not disable is
// still subject to the signed allowlist, so enabling a destination
// restores exactly what the allowlist allows, never more. That is why
// disabling needs no auditor signatures: it cannot widen anything.
//
// # Propagation and failing closed
//
// A Watcher reads the whole state every PollInterval (250ms by default)
// into a snapshot that Check consults without I/O. A disable written at
// time T is in every snapshot read after T, so every replica refuses the
// destination by T + PollInterval + one read. If the state cannot be read,
// the snapshot ages; once it is older than MaxStaleness (1s by default),
// Check refuses every destination (killswitch_unavailable) until a read
// succeeds again. This trades availability for the guarantee: a replica
// that cannot hear "stop" stops, rather than sending cards to a
// destination an operator may have disabled a second ago. With the Redis
// store this costs little, since the card store is the same Redis and
// forwards fail without it anyway.
//
// It must never enable anything the allowlist refuses, never treat an
// unreadable state as "all enabled", and never block a forward on I/O:
// Check reads only the snapshot.
package killswitch
