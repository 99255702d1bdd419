package server

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/weft-stm/weft/store/memstore"
	"github.com/weft-stm/weft/wire"
)

// startStored serves a server on st, with a checkpoint every every
// changes (0: the default), and dials a client as replica 1.
func startStored(t *testing.T, st Store, every int) (*harness, *client) {
	cfg := openConfig(t)
	cfg.Store = st
	cfg.CheckpointEvery = every
	h := startMem(t, cfg)
	return h, h.dial(1, "")
}

// stallingStore is a memstore whose Checkpoint of share stall blocks
// until release is closed, and says when it started.
type stallingStore struct {
	*memstore.Store
	started chan struct{}
	release chan struct{}
}

func (s *stallingStore) Checkpoint(share string, version uint64, objects []wire.Object) error {
	if share == "stall" {
		close(s.started)
		<-s.release
	}
	return s.Store.Checkpoint(share, version, objects)
}

// TestCheckpointLeavesOtherSharesServed: the publisher serves every share
// of the server, and a share's checkpoint (which may take seconds for a
// large share) runs beside it, not in it: while one share writes its
// checkpoint, commits on another are acknowledged.
func TestCheckpointLeavesOtherSharesServed(t *testing.T) {
	st := &stallingStore{Store: memstore.New(), started: make(chan struct{}), release: make(chan struct{})}
	h, c := startStored(t, st, 3)
	base, _ := c.open(1, "stall", 0) // the first change: its epoch change
	c.open(2, "other", 0)

	x, y := oid(1, 1), oid(1, 2)
	c.ack(c.commit(1, 0, nil, createVar(x, 0)...).ID)
	c.ack(c.commit(1, 1, nil, setVar(x, 1)).ID) // the third change: a checkpoint starts
	<-st.started

	// The stalled checkpoint holds share "stall"; share "other" is served.
	c.ack(c.commit(2, 0, nil, createVar(y, 0)...).ID)
	c.ack(c.commit(2, 1, nil, setVar(y, 1)).ID)
	c.ack(c.commit(2, 2, nil, setVar(y, 2)).ID)

	// Share "stall" answers again once its checkpoint is written.
	close(st.release)
	c.ack(c.commit(1, 2, nil, setVar(x, 2)).ID)
	if v, vars := h.state("stall"); v != base.Version+3 || vars[x] != 2 {
		t.Fatalf("share stall at version %d with %v, want version %d with x = 2", v, vars, base.Version+3)
	}
}

// TestBusyShareLeavesOtherSharesServed: when a share's change is durable
// but its lock is held (a large snapshot being built, say), the publisher
// does not wait for it: other shares' Acks go out meanwhile, and the busy
// share's follow, in order, once its lock is free.
func TestBusyShareLeavesOtherSharesServed(t *testing.T) {
	st := newGatedStore("stall", nil)
	h, c := startStored(t, st, 0)
	c.open(1, "stall", 0)
	c.open(2, "other", 0)
	h.srv.mu.Lock()
	stall := h.srv.mu.shares["stall"]
	h.srv.mu.Unlock()

	x, y := oid(1, 1), oid(1, 2)
	a := c.commit(1, 0, nil, createVar(x, 0)...) // decided; durable once the gate opens
	c.quiet()                                    // the session has handled it
	stall.mu.Lock()                              // the share is busy when its Ack's turn comes
	close(st.gate)
	b := c.commit(2, 0, nil, createVar(y, 0)...)
	c.ack(b.ID) // not held up by the busy share
	stall.mu.Unlock()
	c.ack(a.ID)
	d := c.commit(1, 1, nil, setVar(x, 1))
	c.ack(d.ID)
}

// steppedStore is a memstore whose changes become durable one at a time,
// as the test releases them, and which says when it checkpoints.
type steppedStore struct {
	*memstore.Store
	release chan struct{} // one receive per change made durable
	cps     chan uint64   // the version of each checkpoint
}

func (s *steppedStore) Append(share string, ch wire.Change) (func() error, error) {
	wait, err := s.Store.Append(share, ch)
	if err != nil || ch.Origin.Replica == 0 { // an epoch change is not stepped: the test steps commits
		return wait, err
	}
	var once sync.Once
	return func() error { once.Do(func() { <-s.release }); return wait() }, nil
}

func (s *steppedStore) Checkpoint(share string, version uint64, objects []wire.Object) error {
	s.cps <- version
	return s.Store.Checkpoint(share, version, objects)
}

// TestCheckpointUnderSteadyLoad: a share that always has changes waiting
// for durability still writes a checkpoint, once twice CheckpointEvery
// changes have piled up since the last, so that its log stays bounded.
func TestCheckpointUnderSteadyLoad(t *testing.T) {
	st := &steppedStore{Store: memstore.New(), release: make(chan struct{}), cps: make(chan uint64, 8)}
	_, c := startStored(t, st, 2)
	base, _ := c.open(1, "s", 0) // its epoch change, durable at once
	x := oid(1, 1)
	ids := []wire.CommitID{c.commit(1, 0, nil, createVar(x, 0)...).ID}
	for v := range 7 {
		ids = append(ids, c.commit(1, 0, nil, setVar(x, int64(v))).ID) // blind: none conflicts
	}
	c.quiet() // the session has decided all 8
	// The 8 commits are decided and queued. Once the first is durable
	// and published, 9 changes since the last checkpoint (none) exceed
	// twice CheckpointEvery: the checkpoint is due although 7 still wait.
	st.release <- struct{}{}
	c.ack(ids[0])
	select {
	case v := <-st.cps:
		if v != base.Version+8 {
			t.Fatalf("checkpoint at version %d, want %d", v, base.Version+8)
		}
	case <-time.After(testTimeout):
		t.Fatal("no checkpoint while changes kept waiting")
	}
	for _, id := range ids[1:4] {
		st.release <- struct{}{}
		c.ack(id)
	}
	for _, id := range ids[4:] {
		st.release <- struct{}{}
		c.ack(id)
	}
}

// checkpointGate is a gatedStore whose Checkpoints wait until release is
// closed, and which says whether one was written.
type checkpointGate struct {
	*gatedStore
	release chan struct{}
	written atomic.Bool
}

func (s *checkpointGate) Checkpoint(share string, version uint64, objects []wire.Object) error {
	<-s.release
	err := s.gatedStore.Checkpoint(share, version, objects)
	s.written.Store(err == nil)
	return err
}

// TestShutdownWaitsForCheckpoint: a checkpoint that starts while the
// server shuts down (its change became durable after the last session
// let go of the share) is written before Shutdown returns, so that the
// caller may then close the store.
func TestShutdownWaitsForCheckpoint(t *testing.T) {
	st := &checkpointGate{gatedStore: newGatedStore("s", nil), release: make(chan struct{})}
	var release sync.Once
	t.Cleanup(func() { release.Do(func() { close(st.release) }) })
	h, c := startStored(t, st, 2)
	c.open(1, "s", 0)                               // its epoch change: one change, no checkpoint due
	c.commit(1, 0, nil, createVar(oid(1, 1), 0)...) // its sync waits for the gate
	c.send(&wire.CloseShare{Share: 1})
	c.quiet() // the session has handled both, and holds the share no more

	// The change becomes durable during Shutdown, and its publication
	// starts a checkpoint (the second change since none).
	h.srv.hookSyncWait = func() { close(st.gate) }
	h.srv.hookCheckpointWait = func() { release.Do(func() { close(st.release) }) }
	h.shutdown()
	if !st.written.Load() {
		t.Fatal("Shutdown returned before the checkpoint was written")
	}
}
