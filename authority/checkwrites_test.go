package authority

import (
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/weft-stm/weft/wire"
)

// TestCheckWrites: write validation tracks the objects a commit creates,
// removes and appends to, the same for a commit of a few objects (searched
// in a list) as for one of many (indexed by a map), and names the op that
// fails.
func TestCheckWrites(t *testing.T) {
	for _, n := range []int{3, shadowsLinear + 24} {
		s := New("test")
		id := func(i int) wire.ObjectID { return wire.ObjectID{Replica: 1, Seq: uint64(i + 1)} }
		list := id(n)
		var ops []wire.Op
		for i := range n {
			ops = append(ops, wire.Op{Kind: wire.OpCreate, Object: id(i), ObjectKind: wire.ObjectVar})
		}
		ops = append(ops, wire.Op{Kind: wire.OpCreate, Object: list, ObjectKind: wire.ObjectList})
		for i := range n {
			ops = append(ops, wire.Op{Kind: wire.OpVarSet, Object: id(i), Value: wire.Int(int64(i))})
		}
		ops = append(ops,
			wire.Op{Kind: wire.OpListAppend, Object: list, Values: []wire.Value{wire.Int(1), wire.Int(2)}},
			wire.Op{Kind: wire.OpListSet, Object: list, Index: 1, Value: wire.Int(3)})
		if err := s.checkWrites(ops); err != nil {
			t.Fatalf("%d objects: %v", n, err)
		}
		bad := []struct {
			op   wire.Op
			want string
		}{
			{wire.Op{Kind: wire.OpCreate, Object: id(n - 1), ObjectKind: wire.ObjectVar}, "already used"},
			{wire.Op{Kind: wire.OpListSet, Object: list, Index: 2, Value: wire.Int(0)}, "out of range (length 2)"},
			{wire.Op{Kind: wire.OpCounterAdd, Object: id(n / 2), Delta: 1}, "object is a var"},
			{wire.Op{Kind: wire.OpVarSet, Object: id(n + 5), Value: wire.Int(0)}, "no such object"},
		}
		for _, b := range bad {
			at := len(ops)
			err := s.checkWrites(append(ops[:at:at], b.op))
			if err == nil || !strings.Contains(err.Error(), b.want) || !strings.HasPrefix(err.Error(), "writes["+strconv.Itoa(at)+"]") {
				t.Errorf("%d objects, then %v: %v, want writes[%d] ... %s", n, b.op.Kind, err, at, b.want)
			}
		}
		removed := append(ops[:len(ops):len(ops)],
			wire.Op{Kind: wire.OpRemove, Object: id(0)},
			wire.Op{Kind: wire.OpVarSet, Object: id(0), Value: wire.Int(0)})
		if err := s.checkWrites(removed); err == nil || !strings.Contains(err.Error(), "no such object") {
			t.Errorf("%d objects: a write after the object's removal: %v", n, err)
		}
	}
}

// TestDeltaSinceRing: the log keeps the last LogSize changes as a ring;
// DeltaSince serves every version it reaches back to, across wrap-arounds,
// and returns a slice that later changes do not overwrite. With a negative
// LogSize it keeps none, and serves only the current version. Changes come
// from Apply (a commit) and ApplyChange by turns.
func TestDeltaSinceRing(t *testing.T) {
	for _, size := range []int{3, -1} {
		t.Run(fmt.Sprint("size", size), func(t *testing.T) { deltaSinceRing(t, size) })
	}
}

func deltaSinceRing(t *testing.T, size int) {
	s := NewWithConfig("test", Config{LogSize: size})
	x := wire.ObjectID{Replica: 7, Seq: 1} // created by replica 7's commit
	apply := func(v uint64, w wire.Op) {
		if v%2 == 1 {
			r := s.Apply(&wire.Commit{ID: wire.CommitID{Replica: 7, Seq: v}, Writes: []wire.Op{w}})
			if !r.Ack || r.Change.Version != v || len(r.Change.Writes) != 1 || r.Change.Origin.Seq != v {
				t.Fatalf("commit for version %d: %+v", v, r)
			}
			return
		}
		if err := s.ApplyChange(wire.Change{Version: v, Writes: []wire.Op{w}}); err != nil {
			t.Fatal(err)
		}
	}
	apply(1, wire.Op{Kind: wire.OpCreate, Object: x, ObjectKind: wire.ObjectVar})
	var kept []wire.Change
	for v := uint64(2); v <= 11; v++ {
		apply(v, wire.Op{Kind: wire.OpVarSet, Object: x, Value: wire.Int(int64(v))})
		for since := uint64(0); since <= v; since++ {
			got, ok := s.DeltaSince(since)
			if want := since+uint64(max(size, 0)) >= v; ok != want {
				t.Fatalf("at version %d, DeltaSince(%d) ok = %v, want %v", v, since, ok, want)
			}
			if !ok {
				continue
			}
			if len(got) != int(v-since) {
				t.Fatalf("at version %d, DeltaSince(%d) has %d changes", v, since, len(got))
			}
			for i, ch := range got {
				if ch.Version != since+1+uint64(i) {
					t.Fatalf("at version %d, DeltaSince(%d)[%d] is version %d", v, since, i, ch.Version)
				}
			}
		}
		if v == 5 {
			kept, _ = s.DeltaSince(3)
		}
	}
	if size > 0 && (len(kept) != 2 || kept[0].Version != 4 || kept[1].Version != 5) {
		t.Fatalf("a delta taken earlier changed: %+v", kept)
	}
}
