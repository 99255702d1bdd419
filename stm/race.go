//go:build race

package stm

import "sync/atomic"

// raceRetired gives the race detector the happens-before edge that the
// garbage collector provides in reality: a transaction state dropped by the
// pool (the race build drops a quarter of them on purpose) is skipped by the
// low-water scan, so the scan never loads its retraction. Its reads ended
// before it was released, and it was released before it could be
// collected; this counter tells the detector so.
var raceRetired atomic.Uint64

func raceRelease() { raceRetired.Add(1) }
func raceAcquire() { raceRetired.Load() }
