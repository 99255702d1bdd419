package authority

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"unsafe"

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
		if err := s.checkWrites(ops, false); err != nil {
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
			err := s.checkWrites(append(ops[:at:at], b.op), false)
			if err == nil || !strings.Contains(err.Error(), b.want) || !strings.HasPrefix(err.Error(), "writes["+strconv.Itoa(at)+"]") {
				t.Errorf("%d objects, then %v: %v, want writes[%d] ... %s", n, b.op.Kind, err, at, b.want)
			}
		}
		removed := append(ops[:len(ops):len(ops)],
			wire.Op{Kind: wire.OpRemove, Object: id(0)},
			wire.Op{Kind: wire.OpVarSet, Object: id(0), Value: wire.Int(0)})
		if err := s.checkWrites(removed, false); err == nil || !strings.Contains(err.Error(), "no such object") {
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

// TestDeltaSinceLogBytes: the log keeps the newest changes that fit both
// LogSize and LogBytes (changeBytes), so DeltaSince reaches back exactly
// as far as that window, whatever sizes the changes have; a change larger
// than LogBytes on its own empties it. The window is computed here from
// the changes' sizes, newest first.
func TestDeltaSinceLogBytes(t *testing.T) {
	const size, limit = 6, 4000
	s := NewWithConfig("test", Config{LogSize: size, LogBytes: limit})
	x := wire.ObjectID{Replica: 7, Seq: 1}
	if err := s.ApplyChange(wire.Change{Version: 1, Writes: []wire.Op{{Kind: wire.OpCreate, Object: x, ObjectKind: wire.ObjectVar}}}); err != nil {
		t.Fatal(err)
	}
	sizes := []int{changeBytes(s.logAt(0))}
	rng := rand.New(rand.NewPCG(1, 2))
	for v := uint64(2); v <= 300; v++ {
		n := rng.IntN(1200)
		if v%50 == 0 {
			n = limit // alone larger than the limit
		}
		ch := wire.Change{Version: v, Writes: []wire.Op{{Kind: wire.OpVarSet, Object: x, Value: wire.String(strings.Repeat("x", n))}}}
		if err := s.ApplyChange(ch); err != nil {
			t.Fatal(err)
		}
		sizes = append(sizes, changeBytes(ch))
		window, bytes := 0, 0
		for i := len(sizes) - 1; i >= 0 && window < size && bytes+sizes[i] <= limit; i-- {
			window++
			bytes += sizes[i]
		}
		if s.logLen != window || s.logBytes != bytes {
			t.Fatalf("at version %d: log holds %d changes of %d bytes, want %d of %d", v, s.logLen, s.logBytes, window, bytes)
		}
		for since := v - min(v, uint64(size)+1); since <= v; since++ {
			got, ok := s.DeltaSince(since)
			if want := since+uint64(window) >= v; ok != want {
				t.Fatalf("at version %d (window %d), DeltaSince(%d) ok = %v, want %v", v, window, since, ok, want)
			}
			if ok && (len(got) != int(v-since) || len(got) > 0 && got[len(got)-1].Version != v) {
				t.Fatalf("at version %d, DeltaSince(%d) = %d changes", v, since, len(got))
			}
		}
	}
}

// TestChangeBytes: the estimate counts every op and every string a change
// holds, wherever it is.
func TestChangeBytes(t *testing.T) {
	if unsafe.Sizeof(uintptr(0)) == 8 {
		for _, c := range []struct{ got, want uintptr }{
			{changeSize, unsafe.Sizeof(wire.Change{})}, {opSize, unsafe.Sizeof(wire.Op{})},
			{valueSize, unsafe.Sizeof(wire.Value{})}, {fieldSize, unsafe.Sizeof(wire.Field{})},
		} {
			if c.got != c.want {
				t.Errorf("size constant %d, unsafe.Sizeof %d", c.got, c.want)
			}
		}
	}
	x := wire.ObjectID{Replica: 7, Seq: 1}
	base := changeBytes(wire.Change{Writes: make([]wire.Op, 5)})
	ch := wire.Change{Writes: []wire.Op{
		{Kind: wire.OpMapPut, Object: x, Key: wire.String("k1"), Value: wire.Bytes([]byte("v12"))},
		{Kind: wire.OpMapDelete, Object: x, Key: wire.String("k1234")},
		{Kind: wire.OpListAppend, Object: x, Values: []wire.Value{wire.String("a"), wire.Int(1)}},
		{Kind: wire.OpCreate, Object: x, Fields: []wire.Field{{ID: 1, Value: wire.String("fff")}}},
		{Kind: wire.OpSetField, Object: x, Field: 1, Value: wire.String("ssss")},
	}}
	want := base + 2 + 3 + 5 + 2*valueSize + 1 + fieldSize + 3 + 4
	if got := changeBytes(ch); got != want {
		t.Fatalf("changeBytes = %d, want %d", got, want)
	}
}
