package server

import (
	"testing"

	"github.com/weft-stm/weft/store/memstore"
	"github.com/weft-stm/weft/wire"
)

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
	cfg := openConfig(t)
	cfg.Store = st
	cfg.CheckpointEvery = 2
	h := startMem(t, cfg)
	c := h.dial(1, "")
	c.open(1, "stall", 0)
	c.open(2, "other", 0)

	x, y := oid(1, 1), oid(1, 2)
	c.ack(c.commit(1, 0, nil, createVar(x, 0)...).ID)
	c.ack(c.commit(1, 1, nil, setVar(x, 1)).ID) // the second change: a checkpoint starts
	<-st.started

	// The stalled checkpoint holds share "stall"; share "other" is served.
	c.ack(c.commit(2, 0, nil, createVar(y, 0)...).ID)
	c.ack(c.commit(2, 1, nil, setVar(y, 1)).ID)
	c.ack(c.commit(2, 2, nil, setVar(y, 2)).ID)

	// Share "stall" answers again once its checkpoint is written.
	close(st.release)
	c.ack(c.commit(1, 2, nil, setVar(x, 2)).ID)
	if v, vars := h.state("stall"); v != 3 || vars[x] != 2 {
		t.Fatalf("share stall at version %d with %v, want version 3 with x = 2", v, vars)
	}
}

// gatedStore is a memstore whose Appends of share "stall" are durable only
// once gate is closed.
type gatedStore struct {
	*memstore.Store
	gate chan struct{}
}

func (s *gatedStore) Append(share string, ch wire.Change) (func() error, error) {
	wait, err := s.Store.Append(share, ch)
	if err != nil || share != "stall" {
		return wait, err
	}
	return func() error { <-s.gate; return wait() }, nil
}

// TestBusyShareLeavesOtherSharesServed: when a share's change is durable
// but its lock is held (a large snapshot being built, say), the publisher
// does not wait for it: other shares' Acks go out meanwhile, and the busy
// share's follow, in order, once its lock is free.
func TestBusyShareLeavesOtherSharesServed(t *testing.T) {
	st := &gatedStore{Store: memstore.New(), gate: make(chan struct{})}
	cfg := openConfig(t)
	cfg.Store = st
	h := startMem(t, cfg)
	c := h.dial(1, "")
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
