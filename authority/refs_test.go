package authority

import (
	"maps"
	"strings"
	"testing"

	"github.com/weft-stm/weft/wire"
)

// checkRefCounts fails t unless s.refs counts exactly the refs the live
// objects hold.
func checkRefCounts(t *testing.T, s *Share) {
	t.Helper()
	want := map[wire.ObjectID]int{}
	for _, o := range s.objects {
		if !o.removed {
			eachRef(o, func(v wire.Value) {
				if v.Kind() == wire.KindRef {
					want[v.Ref()]++
				}
			})
		}
	}
	if !maps.Equal(s.refs, want) {
		t.Fatalf("ref counts %v, want %v", s.refs, want)
	}
	checkRefsIn(t, s)
}

// TestRefIntegrity: no commit leaves a ref to an object not in the share,
// whatever holds the ref (a record field, a var, a map key or value, a
// set element, a list element): a ref to an object never created, or
// removed, is invalid, and so is the removal of an object a ref still
// names after the commit; clearing the ref in the same commit, or
// removing the referrer too, makes the removal valid. The counts survive
// a checkpoint and a restore.
func TestRefIntegrity(t *testing.T) {
	s := New("s")
	id := func(seq uint64) wire.ObjectID { return wire.ObjectID{Replica: 7, Seq: seq} }
	ref := func(seq uint64) wire.Value { return wire.Ref(id(seq)) }
	seq := uint64(0)
	commit := func(want string, ops ...wire.Op) {
		t.Helper()
		seq++
		r := s.Apply(&wire.Commit{ID: wire.CommitID{Replica: 7, Seq: seq}, Snapshot: s.Version(), Writes: ops})
		checkRefCounts(t, s)
		switch {
		case want == "" && !r.Ack:
			t.Fatalf("commit %d: %v %s", seq, r.Code, r.Message)
		case want != "" && (r.Ack || r.Code != wire.CodeInvalid || !strings.Contains(r.Message, want)):
			t.Fatalf("commit %d: ack %v, %v %q; want invalid, saying %q", seq, r.Ack, r.Code, r.Message, want)
		}
	}
	create := func(seq uint64, kind wire.ObjectKind, fields ...wire.Field) wire.Op {
		return wire.Op{Kind: wire.OpCreate, Object: id(seq), ObjectKind: kind, Fields: fields}
	}
	remove := func(seq uint64) wire.Op { return wire.Op{Kind: wire.OpRemove, Object: id(seq)} }

	commit("a ref to 7:1", create(2, wire.ObjectRecord, wire.Field{ID: 1, Value: ref(1)})) // 7:1 was never created
	commit("", create(1, wire.ObjectRecord), create(2, wire.ObjectRecord, wire.Field{ID: 1, Value: ref(1)}))
	commit("", create(3, wire.ObjectVar), create(4, wire.ObjectMap), create(5, wire.ObjectSet), create(6, wire.ObjectList))
	commit("", wire.Op{Kind: wire.OpVarSet, Object: id(3), Value: ref(1)},
		wire.Op{Kind: wire.OpMapPut, Object: id(4), Key: ref(1), Value: ref(1)},
		wire.Op{Kind: wire.OpSetAdd, Object: id(5), Key: ref(1)},
		wire.Op{Kind: wire.OpListAppend, Object: id(6), Values: []wire.Value{wire.Int(0), ref(1), ref(1)}})
	if s.refs[id(1)] != 7 {
		t.Fatalf("%d refs to 7:1, want 7", s.refs[id(1)])
	}
	commit("removes 7:1, which 7 ref(s)", remove(1))
	// Clearing all but the list's refs is not enough.
	clear := []wire.Op{
		{Kind: wire.OpSetField, Object: id(2), Field: 1, Value: wire.Null()},
		{Kind: wire.OpVarSet, Object: id(3), Value: wire.Int(1)},
		{Kind: wire.OpMapDelete, Object: id(4), Key: ref(1)},
		{Kind: wire.OpSetRemove, Object: id(5), Key: ref(1)},
		{Kind: wire.OpListSet, Object: id(6), Index: 1, Value: wire.Null()},
	}
	commit("removes 7:1, which 1 ref(s)", append(clear, remove(1))...)
	// A ref to an object the commit removes, or set again after being
	// cleared in the same commit.
	commit("a ref to 7:1", append(clear, wire.Op{Kind: wire.OpListSet, Object: id(6), Index: 2, Value: wire.Null()},
		wire.Op{Kind: wire.OpVarSet, Object: id(3), Value: ref(1)}, remove(1))...)
	// Removing the list, which holds the last ref, with the rest cleared.
	commit("", append(clear, remove(6), remove(1))...)
	commit("a ref to 7:1", wire.Op{Kind: wire.OpVarSet, Object: id(3), Value: ref(1)}) // removed before

	// A record referring to one created in the same commit, then both
	// removed together; and the counts after a restore.
	commit("", create(8, wire.ObjectRecord), create(9, wire.ObjectRecord, wire.Field{ID: 1, Value: ref(8)}))
	ver, objs := s.Checkpoint()
	restored, err := Restore("s", Config{}, ver, objs, nil)
	if err != nil {
		t.Fatal(err)
	}
	checkRefCounts(t, restored)
	if !maps.Equal(restored.refs, s.refs) {
		t.Fatalf("restored ref counts %v, want %v", restored.refs, s.refs)
	}
	s = restored
	commit("removes 7:8, which 1 ref(s)", remove(8))
	commit("", remove(8), remove(9))
}
