package authority_test

import (
	"reflect"
	"testing"

	"github.com/weft-stm/weft/authority"
	"github.com/weft-stm/weft/wire"
)

// TestCheckpointRestore: a share restored from its checkpoint and the
// changes after it has the same state, answers a resend of a commit
// acknowledged before or after the checkpoint with its verdict instead of
// applying it again, and refuses to recreate a removed object.
func TestCheckpointRestore(t *testing.T) {
	s := authority.New("s")
	id := func(seq uint64) wire.ObjectID { return wire.ObjectID{Replica: 7, Seq: seq} }
	commit := func(seq uint64, ops ...wire.Op) *wire.Commit {
		return &wire.Commit{ID: wire.CommitID{Replica: 7, Seq: seq}, Writes: ops}
	}
	var changes []wire.Change
	apply := func(sh *authority.Share, c *wire.Commit) authority.Result {
		t.Helper()
		r := sh.Apply(c)
		if r.Code != 0 {
			t.Fatalf("commit %v: %v %s", c.ID, r.Code, r.Message)
		}
		return r
	}
	apply(s, commit(1, wire.Op{Kind: wire.OpCreate, Object: id(1), ObjectKind: wire.ObjectCounter},
		wire.Op{Kind: wire.OpCreate, Object: id(2), ObjectKind: wire.ObjectVar}))
	apply(s, commit(2, wire.Op{Kind: wire.OpCounterAdd, Object: id(1), Delta: 5}))
	apply(s, commit(3, wire.Op{Kind: wire.OpRemove, Object: id(2)}))
	ver, objs := s.Checkpoint()
	for seq := uint64(4); seq <= 6; seq++ {
		r := apply(s, commit(seq, wire.Op{Kind: wire.OpCounterAdd, Object: id(1), Delta: 1}))
		changes = append(changes, r.Change)
	}
	restored, err := authority.Restore("s", authority.Config{}, ver, objs, changes)
	if err != nil {
		t.Fatal(err)
	}
	if restored.Version() != s.Version() {
		t.Fatalf("version %d, want %d", restored.Version(), s.Version())
	}
	want, _ := s.Object(id(1))
	if got, _ := restored.Object(id(1)); !reflect.DeepEqual(got, want) {
		t.Fatalf("counter %+v, want %+v", got, want)
	}
	if _, ok := restored.Object(wire.ObjectID{Replica: 0, Seq: 1}); ok {
		t.Fatal("the bookkeeping object is visible")
	}
	for _, seq := range []uint64{2, 5} { // before and after the checkpoint
		r := restored.Apply(commit(seq, wire.Op{Kind: wire.OpCounterAdd, Object: id(1), Delta: 100}))
		if !r.Duplicate || r.Code != 0 {
			t.Fatalf("resend of %d: %+v, want the remembered ack", seq, r)
		}
	}
	if got, _ := restored.Object(id(1)); got.Counter != 8 {
		t.Fatalf("counter %d after resends, want 8", got.Counter)
	}
	if r := restored.Apply(commit(9, wire.Op{Kind: wire.OpCreate, Object: id(2), ObjectKind: wire.ObjectVar})); r.Code != wire.CodeInvalid {
		t.Fatalf("recreating a removed object: %v %s", r.Code, r.Message)
	}
}
