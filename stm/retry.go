package stm

import (
	"context"
	"sync"
)

// waiter is a transaction blocked in Retry: it keeps its read entries and is
// woken by the first commit that invalidates one of them.
type waiter struct {
	snap  uint64
	reads []entry
	wake  chan struct{}
	once  sync.Once
}

func (w *waiter) wakeUp() { w.once.Do(func() { close(w.wake) }) }

// prepareWait registers s's reads as a waiter. A commit and a waiter each
// look at what the other wrote (the waiter count, the versions), in the
// order they wrote their own; with sequentially consistent atomics one of
// them sees the other, so no change slips between the check and the wait.
func (ws *Workspace) prepareWait(s *txState) (*waiter, error) {
	w := &waiter{snap: s.snap, wake: make(chan struct{})}
	for i := range s.entries {
		e := s.entries[i]
		if e.read() {
			e.flags &^= fWritten
			e.c.dropWrites(&e)
			w.reads = append(w.reads, e)
		}
	}
	if len(w.reads) == 0 {
		return nil, ErrRetryNothingRead
	}
	ws.waitMu.Lock()
	if ws.closed.Load() {
		ws.waitMu.Unlock()
		return nil, ErrClosed
	}
	ws.waiters = append(ws.waiters, w)
	ws.waiting.Store(int32(len(ws.waiters)))
	ws.waitMu.Unlock()
	if w.stale() {
		ws.removeWaiter(w)
		w.wakeUp()
	}
	return w, nil
}

// stale reports whether a commit changed something w read (or is writing it).
//
// The waiter itself announces no snapshot while it waits, yet the newest
// versions validate reads here cannot be recycled under it: stale runs
// only inside a transaction that announces one, S (the waiter's own, in
// prepareWait, or a committer's, in wake). validate checks the object's
// lock before it loads the newest version. Every commit numbered at or
// below S locked the object before S was read, so if the lock is free,
// those commits are installed, and every later one is numbered above S,
// at or above the low-water mark. The version loaded is therefore either
// above the mark or the newest at or under it, and a trim keeps both.
func (w *waiter) stale() bool {
	for i := range w.reads {
		if w.reads[i].c.validate(&w.reads[i], w.snap, nil) != nil {
			return true
		}
	}
	return false
}

// wake wakes every waiter whose reads a commit changed.
func (ws *Workspace) wake() {
	ws.waitMu.Lock()
	defer ws.waitMu.Unlock()
	kept := ws.waiters[:0]
	for _, w := range ws.waiters {
		if w.stale() {
			w.wakeUp()
		} else {
			kept = append(kept, w)
		}
	}
	clear(ws.waiters[len(kept):])
	ws.waiters = kept
	ws.waiting.Store(int32(len(kept)))
}

func (ws *Workspace) removeWaiter(w *waiter) {
	ws.waitMu.Lock()
	for i, x := range ws.waiters {
		if x == w {
			ws.waiters = append(ws.waiters[:i], ws.waiters[i+1:]...)
			break
		}
	}
	ws.waiting.Store(int32(len(ws.waiters)))
	ws.waitMu.Unlock()
}

func (w *waiter) wait(ctx context.Context, ws *Workspace) error {
	select {
	case <-w.wake:
		if ws.closed.Load() {
			return ErrClosed
		}
		return nil
	case <-ctx.Done():
		ws.removeWaiter(w)
		return ctx.Err()
	}
}

// AwaitChange ends tx (as Abort does) and blocks until a commit changes
// something tx read, or ctx ends: what Atomically does when its function
// returns ErrRetry, for a layer that runs its own commit loop (a client
// committing on a replica). A transaction that read nothing returns
// ErrRetryNothingRead at once.
func (tx *Tx) AwaitChange(ctx context.Context) error {
	if tx.inFn {
		return ErrEndInFn
	}
	if tx.s == nil {
		return ErrTxDone
	}
	ws := tx.s.ws
	w, err := ws.prepareWait(tx.s)
	tx.end()
	if err != nil {
		return err
	}
	return w.wait(ctx, ws)
}
