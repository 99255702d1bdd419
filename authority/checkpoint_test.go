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

// TestRestoreKeepsHorizon: a resend of a commit whose verdict the share
// forgot is too old to decide (code internal), not a new commit, after a
// checkpoint and a restore too: else a blind add would apply twice.
func TestRestoreKeepsHorizon(t *testing.T) {
	cfg := authority.Config{Verdicts: 2}
	s := authority.NewWithConfig("s", cfg)
	ctr := wire.ObjectID{Replica: 7, Seq: 1}
	add := func(seq uint64) *wire.Commit {
		return &wire.Commit{ID: wire.CommitID{Replica: 7, Seq: seq},
			Writes: []wire.Op{{Kind: wire.OpCounterAdd, Object: ctr, Delta: 100}}}
	}
	if r := s.Apply(&wire.Commit{ID: wire.CommitID{Replica: 7, Seq: 1},
		Writes: []wire.Op{{Kind: wire.OpCreate, Object: ctr, ObjectKind: wire.ObjectCounter}}}); !r.Ack {
		t.Fatalf("%+v", r)
	}
	for seq := uint64(2); seq <= 5; seq++ {
		if r := s.Apply(add(seq)); !r.Ack {
			t.Fatalf("%+v", r)
		}
	}
	ver, objs := s.Checkpoint()
	restored, err := authority.Restore("s", cfg, ver, objs, nil)
	if err != nil {
		t.Fatal(err)
	}
	for name, sh := range map[string]*authority.Share{"before the restart": s, "after": restored} {
		if r := sh.Apply(add(2)); r.Ack || r.Code != wire.CodeInternal {
			t.Errorf("%s: resend of forgotten commit 7:2: %+v, want code internal", name, r)
		}
		if o, _ := sh.Object(ctr); o.Counter != 400 {
			t.Errorf("%s: counter %d, want 400", name, o.Counter)
		}
	}
}

// TestReservedObjectIDs: object ids of replica 0 are the share's own (a
// checkpoint's bookkeeping): a commit may not create one, and a checkpoint
// with two bookkeeping objects does not restore.
func TestReservedObjectIDs(t *testing.T) {
	s := authority.New("s")
	id := wire.ObjectID{Replica: 0, Seq: 1}
	r := s.Apply(&wire.Commit{ID: wire.CommitID{Replica: 7, Seq: 1}, Writes: []wire.Op{
		{Kind: wire.OpCreate, Object: id, ObjectKind: wire.ObjectVar},
		{Kind: wire.OpVarSet, Object: id, Value: wire.String("precious")}}})
	if r.Ack || r.Code != wire.CodeInvalid {
		t.Fatalf("create of %v: %+v, want code invalid", id, r)
	}
	ver, objs := s.Checkpoint()
	if _, err := authority.Restore("s", authority.Config{}, ver, append(objs, objs[len(objs)-1]), nil); err == nil {
		t.Fatal("a checkpoint with two bookkeeping objects restored")
	}
}
