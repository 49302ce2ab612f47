package credentials

import "syscall"

// changeTime is the inode change time in nanoseconds: it moves on every
// write and chmod, even one that restores the modification time.
func changeTime(st *syscall.Stat_t) int64 { return st.Ctim.Nano() }
