package sim

import (
	"errors"
	"sync"

	"github.com/weft-stm/weft/store/memstore"
	"github.com/weft-stm/weft/wire"
)

// errCrashed fails the waits of changes a crash lost.
var errCrashed = errors.New("sim: the machine crashed before the sync")

// simStore is a server.Store whose syncs the simulator makes: Append
// queues a change, sync makes every queued change durable (in a memstore)
// and returns their waits, and crash loses what was queued. So the
// simulator decides when the disk syncs, and what a power loss takes.
type simStore struct {
	durable *memstore.Store
	mu      sync.Mutex
	queued  []queuedChange
}

type queuedChange struct {
	share string
	ch    wire.Change
	done  chan error
}

func newSimStore() *simStore { return &simStore{durable: memstore.New()} }

func (s *simStore) Append(share string, ch wire.Change) (func() error, error) {
	done := make(chan error, 1)
	s.mu.Lock()
	s.queued = append(s.queued, queuedChange{share, ch, done})
	s.mu.Unlock()
	return func() error { return <-done }, nil
}

// pending reports whether changes wait for a sync.
func (s *simStore) pending() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.queued) > 0
}

// sync makes every queued change durable, in order.
func (s *simStore) sync() {
	s.mu.Lock()
	q := s.queued
	s.queued = nil
	s.mu.Unlock()
	for _, c := range q {
		wait, err := s.durable.Append(c.share, c.ch)
		if err == nil {
			err = wait()
		}
		c.done <- err
	}
}

// crash loses every queued change.
func (s *simStore) crash() {
	s.mu.Lock()
	q := s.queued
	s.queued = nil
	s.mu.Unlock()
	for _, c := range q {
		c.done <- errCrashed
	}
}

// Checkpoint is a synced write: like a sync of a log, it makes every
// change queued before it durable first (Store.Checkpoint).
func (s *simStore) Checkpoint(share string, version uint64, objects []wire.Object) error {
	s.sync()
	return s.durable.Checkpoint(share, version, objects)
}

func (s *simStore) Load(fn func(share string, version uint64, objects []wire.Object, changes []wire.Change) error) error {
	return s.durable.Load(fn)
}

func (s *simStore) Close() error { return nil }
