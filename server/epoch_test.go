package server

import (
	"testing"

	"github.com/weft-stm/weft/store/memstore"
	"github.com/weft-stm/weft/wire"
)

// TestOpenOfAnotherHistory: a server restored from a backup, or started
// on an empty store, and committing again, gives the versions a copy of
// the old history holds to other changes. Such a copy is refused with
// ShareClosed diverged, and the commits a client pipelines behind its
// OpenShare (made on that copy) are aborted unapplied; a copy older than
// the backup is in both histories and gets its delta, from the old epoch
// change on.
func TestOpenOfAnotherHistory(t *testing.T) {
	st := memstore.New()
	h, w := startStored(t, st, 0)
	first, _ := w.open(1, "s", 0)
	x := oid(1, 1)
	w.ack(w.commit(1, 0, nil, createVar(x, 1)...).ID)
	backup := st.Backup() // at first+1
	w.ack(w.commit(1, 0, nil, setVar(x, 2)).ID)
	w.ack(w.commit(1, 0, nil, setVar(x, 3)).ID)
	held := first.Version + 3
	old := first.Epoch
	h.shutdown()

	// Restored from the backup: its epoch change, then other commits
	// past the version the copy holds.
	h, w = startStored(t, backup, 0)
	reopened, _ := w.open(1, "s", first.Version+1)
	if reopened.Epoch.Version != first.Version+2 || reopened.Epoch.ID == old.ID {
		t.Fatalf("restored share opened with epoch %+v, want a new one at %d", reopened.Epoch, first.Version+2)
	}
	for reopened.Version <= held {
		reopened.Version = w.ack(w.commit(1, 0, nil, setVar(x, 10)).ID).Version
	}

	c := h.dial(2, "")
	c.send(&wire.OpenShare{Share: 3, Name: "s", Have: held, Epoch: old})
	pipelined := c.commit(3, held, []wire.Read{readWhole(x, held)}, setVar(x, 99))
	sc := expect[*wire.ShareClosed](c)
	if sc.Share != 3 || sc.Code != wire.CodeDiverged {
		t.Fatalf("open of a copy of another history: %+v, want ShareClosed diverged", sc)
	}
	t.Logf("refused: %s", sc.Message)
	c.abort(pipelined.ID, wire.CodeClosed)
	if v, vars := h.state("s"); v != reopened.Version || vars[x] != 10 {
		t.Fatalf("share s at version %d with %v, want version %d with x = 10", v, vars, reopened.Version)
	}

	// A copy of the version backed up is in both histories.
	op, frames := c.open(4, "s", first.Version+1)
	if op.Transfer != wire.TransferDelta || len(frames) == 0 {
		t.Fatalf("open of a copy from before the backup: %+v", op)
	}
	if ch := frames[0].(*wire.Delta).Changes[0]; ch.Origin.Replica != 0 || ch.Origin.Seq != reopened.Epoch.ID || len(ch.Writes) != 0 {
		t.Fatalf("the delta starts with %+v, want the epoch change", ch)
	}
	// A copy that names no epoch change, or one the share never had, is
	// refused too.
	for i, e := range []wire.Epoch{{}, {Version: old.Version, ID: old.ID + 1}} {
		c.send(&wire.OpenShare{Share: wire.ShareHandle(5 + i), Name: "s", Have: first.Version + 1, Epoch: e})
		if sc := expect[*wire.ShareClosed](c); sc.Code != wire.CodeDiverged {
			t.Fatalf("open naming epoch %+v: %+v, want diverged", e, sc)
		}
	}
	h.shutdown()

	// A server on an empty store: the same versions, another history.
	h, w = startStored(t, memstore.New(), 0)
	w.open(1, "s", 0)
	for range 5 {
		w.ack(w.commit(1, 0, nil, createVar(oid(1, uint64(w.seq+1)), 0)...).ID)
	}
	c = h.dial(2, "")
	c.send(&wire.OpenShare{Share: 1, Name: "s", Have: first.Version + 1, Epoch: old})
	if sc := expect[*wire.ShareClosed](c); sc.Code != wire.CodeDiverged {
		t.Fatalf("open on a recreated server: %+v, want diverged", sc)
	}
}
