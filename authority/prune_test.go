package authority

import (
	"fmt"
	"testing"

	"github.com/weft-stm/weft/wire"
)

// A map whose keys come and go keeps a bounded number of entries: absent
// ones are pruned once they are more than half (pruneAbsent).
func TestAbsentKeysPruned(t *testing.T) {
	s := New("s")
	m := wire.ObjectID{Replica: 1, Seq: 1}
	apply := func(id uint64, ops ...wire.Op) {
		t.Helper()
		if r := s.Apply(&wire.Commit{ID: wire.CommitID{Replica: 1, Seq: id}, Writes: ops}); !r.Ack {
			t.Fatalf("commit %d: %s", id, formatResult(r))
		}
	}
	apply(1, wire.Op{Kind: wire.OpCreate, Object: m, ObjectKind: wire.ObjectMap})
	apply(2, wire.Op{Kind: wire.OpMapPut, Object: m, Key: wire.String("stays"), Value: wire.Int(1)})
	for i := range 10_000 {
		k := wire.String(fmt.Sprint("session", i))
		apply(uint64(3+2*i), wire.Op{Kind: wire.OpMapPut, Object: m, Key: k, Value: wire.Int(1)})
		apply(uint64(4+2*i), wire.Op{Kind: wire.OpMapDelete, Object: m, Key: k})
	}
	o := s.objects[m]
	if n := len(o.entries); n > 2*pruneAbsentMin+2 {
		t.Fatalf("%d entries after 10,000 keys came and went, one stayed", n)
	}
	if e := o.entries[wire.String("stays")]; e == nil || !e.present {
		t.Fatal("the key that stayed is gone")
	}
	// A read of a pruned key at a version before its delete conflicts; at
	// the current version it holds.
	old := &wire.Read{Object: m, Kind: wire.ReadKey, Key: wire.String("session9999"), Version: s.version - 2}
	if _, ok := s.checkRead(old, 2, nil); ok {
		t.Fatal("a read of a pruned key from before its delete holds")
	}
	now := &wire.Read{Object: m, Kind: wire.ReadKey, Key: wire.String("session0"), Version: s.version}
	if _, ok := s.checkRead(now, 2, nil); !ok {
		t.Fatal("a read of a pruned key at the current version conflicts")
	}
}

// A key pruned and then written again by a replica keeps, in its new
// entry, that other replicas wrote it before: a commit of that replica
// that read the key before those writes, and depends on its own write
// since, still conflicts (the stamp's before is the object's keyFloor,
// not 0, which the writes pruned would let the read pass over).
func TestPrunedKeyWrittenAgain(t *testing.T) {
	defer func(n int) { pruneAbsentMin = n }(pruneAbsentMin)
	pruneAbsentMin = 1
	s := New("s")
	m := wire.ObjectID{Replica: 1, Seq: 1}
	k := wire.String("k")
	apply := func(c *wire.Commit) Result {
		t.Helper()
		return s.Apply(c)
	}
	if r := apply(&wire.Commit{ID: wire.CommitID{Replica: 1, Seq: 1}, Writes: []wire.Op{{Kind: wire.OpCreate, Object: m, ObjectKind: wire.ObjectMap}}}); !r.Ack {
		t.Fatal(formatResult(r))
	}
	read := s.version // replica 2 reads k (absent) here
	for i, op := range []wire.Op{
		{Kind: wire.OpMapPut, Object: m, Key: k, Value: wire.Int(1)},
		{Kind: wire.OpMapDelete, Object: m, Key: k},
		{Kind: wire.OpMapPut, Object: m, Key: wire.String("x"), Value: wire.Int(1)},
		{Kind: wire.OpMapDelete, Object: m, Key: wire.String("x")},
	} {
		if r := apply(&wire.Commit{ID: wire.CommitID{Replica: 3, Seq: uint64(1 + i)}, Writes: []wire.Op{op}}); !r.Ack {
			t.Fatal(formatResult(r))
		}
	}
	if o := s.objects[m]; len(o.entries) != 0 || o.keyFloor == 0 {
		t.Fatalf("the absent keys were not pruned: %d entries, keyFloor %d", len(o.entries), o.keyFloor)
	}
	own := wire.CommitID{Replica: 2, Seq: 1}
	if r := apply(&wire.Commit{ID: own, Writes: []wire.Op{{Kind: wire.OpMapPut, Object: m, Key: k, Value: wire.Int(2)}}}); !r.Ack {
		t.Fatal(formatResult(r))
	}
	r := apply(&wire.Commit{ID: wire.CommitID{Replica: 2, Seq: 2}, Deps: []wire.CommitID{own},
		Reads:  []wire.Read{{Object: m, Kind: wire.ReadKey, Key: k, Version: read}},
		Writes: []wire.Op{{Kind: wire.OpMapPut, Object: m, Key: wire.String("y"), Value: wire.Int(1)}}})
	if r.Ack || r.Code != wire.CodeConflict {
		t.Fatalf("a read of k from before replica 3 wrote it, passing over those writes: %s", formatResult(r))
	}
}
