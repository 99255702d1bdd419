package server

import "github.com/weft-stm/weft/wire"

// Store keeps the server's shares durably: each share's latest checkpoint
// (its whole state at a version) and the changes acknowledged after it.
// The server owns this interface; package store holds its implementations
// (in memory, Pebble, Redis) and store/storetest the conformance suite
// every one of them passes.
//
// A change is acknowledged only once it is durable. The server calls
// Append in version order for each share, with the share locked, and waits
// outside the lock: so one sync can cover the changes of many commits and
// many shares (group commit), while the order of versions is kept.
//
// Methods may be called from many goroutines at once.
type Store interface {
	// Append queues the change ch of share (the next version after those
	// appended before) and returns wait, which blocks until ch is durable:
	// nil then means ch survives a crash of the process or the machine. If
	// wait fails, ch and every change queued after it may be lost, and the
	// server must not acknowledge them. A change is durable only if every
	// change queued before it (for any share) is.
	Append(share string, ch wire.Change) (wait func() error, err error)
	// Checkpoint records the whole state of share at version (objects as
	// a snapshot holds them, not split); changes of share at or below
	// version may then be dropped. It returns once the checkpoint is
	// durable, and with it every change queued before it, whose waits
	// then return nil (a server under steady load checkpoints while
	// changes it appended are not yet durable).
	Checkpoint(share string, version uint64, objects []wire.Object) error
	// Load calls fn for every share held, in name order, with its latest
	// checkpoint (version 0 and no objects if none) and the durable changes
	// after it, in version order and without gaps. A store that cannot be
	// read (corrupt, or not a Weft store) returns an error naming it.
	Load(fn func(share string, version uint64, objects []wire.Object, changes []wire.Change) error) error
	// Close releases the store; changes whose wait has not returned nil
	// may be lost.
	Close() error
}
