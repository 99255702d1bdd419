package stm

import "context"

// waiter is a transaction blocked in Retry: it keeps its read entries and is
// woken by the first commit that invalidates one of them.
type waiter struct {
	snap  uint64
	reads []entry
	wake  chan struct{}
}

// prepareWait registers s's reads as a waiter, unless one already changed.
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
	ws.commit.mu.Lock()
	defer ws.commit.mu.Unlock()
	if ws.closed.Load() {
		return nil, ErrClosed
	}
	if w.stale() {
		close(w.wake)
		return w, nil
	}
	ws.waiters = append(ws.waiters, w)
	ws.waiting.Store(int32(len(ws.waiters)))
	return w, nil
}

// stale reports whether a commit changed something w read. Called under the
// commit lock.
func (w *waiter) stale() bool {
	for i := range w.reads {
		if w.reads[i].c.validate(&w.reads[i], w.snap) != nil {
			return true
		}
	}
	return false
}

// wakeLocked wakes every waiter whose reads a commit changed.
func (ws *Workspace) wakeLocked() {
	kept := ws.waiters[:0]
	for _, w := range ws.waiters {
		if w.stale() {
			close(w.wake)
		} else {
			kept = append(kept, w)
		}
	}
	clear(ws.waiters[len(kept):])
	ws.waiters = kept
	ws.waiting.Store(int32(len(kept)))
}

func (w *waiter) wait(ctx context.Context, ws *Workspace) error {
	select {
	case <-w.wake:
		if ws.closed.Load() {
			return ErrClosed
		}
		return nil
	case <-ctx.Done():
		ws.commit.mu.Lock()
		for i, x := range ws.waiters {
			if x == w {
				ws.waiters = append(ws.waiters[:i], ws.waiters[i+1:]...)
				break
			}
		}
		ws.waiting.Store(int32(len(ws.waiters)))
		ws.commit.mu.Unlock()
		return ctx.Err()
	}
}
