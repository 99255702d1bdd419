package authority

import (
	"encoding/binary"
	"testing"

	"github.com/weft-stm/weft/wire"
)

// tombShare is a share whose tombstones are kept for `keep` versions,
// with a var (1:1) that setVar writes.
type tombShare struct {
	t   *testing.T
	s   *Share
	seq uint64
}

func newTombShare(t *testing.T, keep uint64) *tombShare {
	ts := &tombShare{t: t, s: NewWithConfig("s", Config{TombstonesFor: keep})}
	ts.ack(wire.Op{Kind: wire.OpCreate, Object: wire.ObjectID{Replica: 1, Seq: 1}, ObjectKind: wire.ObjectVar})
	return ts
}

func (ts *tombShare) commit(reads []wire.Read, ops ...wire.Op) Result {
	ts.seq++
	return ts.s.Apply(&wire.Commit{ID: wire.CommitID{Replica: 1, Seq: ts.seq}, Snapshot: ts.s.Version(), Reads: reads, Writes: ops})
}

func (ts *tombShare) ack(ops ...wire.Op) uint64 {
	ts.t.Helper()
	if r := ts.commit(nil, ops...); !r.Ack {
		ts.t.Fatalf("commit: %+v", r)
	}
	return ts.s.Version()
}

func (ts *tombShare) setVar() uint64 {
	return ts.ack(wire.Op{Kind: wire.OpVarSet, Object: wire.ObjectID{Replica: 1, Seq: 1}, Value: wire.Uint(ts.seq)})
}

// TestForgetTombs: a removed object's tombstone is kept for TombstonesFor
// versions, then forgotten: a read of the object at or after its removal
// is current until then and conflicts after (as one of an object the
// share never had), and a share whose objects come and go keeps a bounded
// number of tombstones.
func TestForgetTombs(t *testing.T) {
	ts := newTombShare(t, 8)
	x := wire.ObjectID{Replica: 1, Seq: 100}
	ts.ack(wire.Op{Kind: wire.OpCreate, Object: x, ObjectKind: wire.ObjectVar})
	removed := ts.ack(wire.Op{Kind: wire.OpRemove, Object: x})
	readX := []wire.Read{{Object: x, Kind: wire.ReadWhole, Version: removed}}
	for ts.s.Version() < removed+7 {
		ts.setVar()
	}
	if _, kept := ts.s.objects[x]; !kept {
		t.Fatalf("the tombstone is gone at version %d, removed at %d", ts.s.Version(), removed)
	}
	if r := ts.commit(readX); !r.Ack {
		t.Fatalf("a read of the removed object after its removal: %+v, want current", r)
	}
	// That commit made version removed+8: the tombstone goes with it.
	if _, kept := ts.s.objects[x]; kept || len(ts.s.tombs) != 0 {
		t.Fatalf("the tombstone is kept at version %d, removed at %d", ts.s.Version(), removed)
	}
	if r := ts.commit(readX); r.Ack || r.Code != wire.CodeConflict {
		t.Fatalf("a read of the forgotten object: %+v, want a conflict", r)
	}
	if r := ts.commit(nil, wire.Op{Kind: wire.OpVarSet, Object: x, Value: wire.Int(1)}); r.Code != wire.CodeInvalid {
		t.Fatalf("a write to the forgotten object: %+v, want invalid", r)
	}

	// Objects that come and go: tombstones stay bounded.
	ts = newTombShare(t, 100)
	for i := range uint64(10_000) {
		id := wire.ObjectID{Replica: 1, Seq: 1000 + i}
		ts.ack(wire.Op{Kind: wire.OpCreate, Object: id, ObjectKind: wire.ObjectMap})
		ts.ack(wire.Op{Kind: wire.OpRemove, Object: id})
	}
	if n, m := len(ts.s.objects), len(ts.s.tombs); n > 52 || m > 51 {
		t.Fatalf("after 10,000 objects created and removed: %d objects held, %d tombstones listed", n, m)
	}
}

// TestForgetTombsAfterRestore: a share restored from a checkpoint keeps
// the removals' versions and forgets each tombstone when the share that
// wrote the checkpoint does; a checkpoint of before tombstones were
// forgotten (key "removed") restores them as removed at its version.
func TestForgetTombsAfterRestore(t *testing.T) {
	a := newTombShare(t, 10)
	var ids []wire.ObjectID
	for i := range uint64(6) {
		id := wire.ObjectID{Replica: 1, Seq: 200 + i}
		ids = append(ids, id)
		a.ack(wire.Op{Kind: wire.OpCreate, Object: id, ObjectKind: wire.ObjectVar})
		a.ack(wire.Op{Kind: wire.OpRemove, Object: id})
	}
	v, objs := a.s.Checkpoint()
	b, err := Restore("s", Config{TombstonesFor: 10}, v, objs, nil)
	if err != nil {
		t.Fatal(err)
	}
	bs := &tombShare{t: t, s: b, seq: a.seq}
	for range 12 {
		a.setVar()
		bs.setVar()
		for _, id := range ids {
			_, inA := a.s.objects[id]
			_, inB := b.objects[id]
			if inA != inB {
				t.Fatalf("version %d: tombstone of %v kept %v by the share, %v by the restored one", b.Version(), id, inA, inB)
			}
		}
	}
	if len(a.s.tombs) != 0 || len(b.tombs) != 0 {
		t.Fatalf("tombstones left: %d and %d", len(a.s.tombs), len(b.tombs))
	}

	// An old checkpoint: its "removed" ids are tombstones from its version.
	var removed []byte
	for _, id := range ids {
		removed = binary.AppendUvarint(binary.AppendUvarint(removed, id.Replica), id.Seq)
	}
	meta := wire.Object{ID: metaID, Kind: wire.ObjectMap, Entries: []wire.Entry{{Key: wire.String(metaRemoved), Value: wire.Bytes(removed)}}}
	old, err := Restore("s", Config{TombstonesFor: 10}, 50, []wire.Object{meta}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(old.tombs) != len(ids) || old.tombs[0].ver != 50 || !old.objects[ids[0]].removed {
		t.Fatalf("old checkpoint restored %d tombstones (%+v)", len(old.tombs), old.tombs)
	}
	// Tombstones out of version order are refused.
	var bad []byte
	for _, x := range []uint64{5, 1, 200, 3, 1, 201} {
		bad = binary.AppendUvarint(bad, x)
	}
	meta.Entries = []wire.Entry{{Key: wire.String(metaTombstones), Value: wire.Bytes(bad)}}
	if _, err := Restore("s", Config{}, 50, []wire.Object{meta}, nil); err == nil {
		t.Fatal("tombstones out of order restored")
	}
}

// TestForgottenIDCreatedAgainOnCopy: a copy that keeps tombstones longer
// than the authority (a client's acknowledged state has the default
// TombstonesFor, whatever the server's) applies the authority's creation
// of an id whose tombstone the authority forgot: the change was decided.
func TestForgottenIDCreatedAgainOnCopy(t *testing.T) {
	ts := newTombShare(t, 8)
	cp := NewWithConfig("s", Config{LogSize: -1})
	follow := func() {
		t.Helper()
		for cp.Version() < ts.s.Version() {
			chs, ok := ts.s.DeltaSince(cp.Version())
			if !ok {
				t.Fatal("no delta")
			}
			for _, ch := range chs {
				if err := cp.ApplyChange(ch); err != nil {
					t.Fatalf("the copy refuses the authority's change %d: %v", ch.Version, err)
				}
			}
		}
	}
	x := wire.ObjectID{Replica: 1, Seq: 100}
	ts.ack(wire.Op{Kind: wire.OpCreate, Object: x, ObjectKind: wire.ObjectVar})
	ts.ack(wire.Op{Kind: wire.OpRemove, Object: x})
	for range 8 {
		ts.setVar()
	}
	follow()
	ts.ack(wire.Op{Kind: wire.OpCreate, Object: x, ObjectKind: wire.ObjectMap})
	follow()
	if k, ok := cp.Kind(x); !ok || k != wire.ObjectMap {
		t.Fatalf("the copy's %v: %v %v, want the map created again", x, k, ok)
	}
	ts.ack(wire.Op{Kind: wire.OpRemove, Object: x})
	follow()
	if cp.Has(x) || ts.s.Has(x) {
		t.Fatal("removed again, still held")
	}
	// The copy's checkpoint restores, and its tombstones still go.
	v, objs := cp.Checkpoint()
	r, err := Restore("s", Config{LogSize: -1, TombstonesFor: 8}, v, objs, nil)
	if err != nil {
		t.Fatal(err)
	}
	for range 9 {
		if err := r.ApplyChange(wire.Change{Version: r.Version() + 1, Origin: wire.CommitID{Replica: 1, Seq: 1 << 20}}); err != nil {
			t.Fatal(err)
		}
	}
	if len(r.tombs) != 0 || len(r.objects) != 1 {
		t.Fatalf("after restore: %d tombstones, %d objects", len(r.tombs), len(r.objects))
	}
}
