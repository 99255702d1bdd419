package stm_test

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/weft-stm/weft/stm"
	"github.com/weft-stm/weft/wire"
)

func noObservables(id wire.ObjectID) (stm.Observable, error) {
	return nil, errors.New("no refs here")
}

func setState(t *testing.T, ws *stm.Workspace, x stm.Observable, w wire.Object) {
	t.Helper()
	if err := ws.Atomically(context.Background(), func(tx *stm.Tx) error {
		return stm.SetState(tx, x, w, noObservables)
	}); err != nil {
		t.Fatal(err)
	}
}

func TestSetStateList(t *testing.T) {
	ctx := context.Background()
	ws := stm.NewWorkspace()
	l := stm.NewList[int64](ws)
	ws.Atomically(ctx, func(tx *stm.Tx) error { l.Append(tx, 1, 2, 3, 4, 5); return nil })
	// A reader of element 4 started before the truncation must conflict.
	stale := ws.Begin()
	_ = l.Get(stale, 4)
	l.Set(stale, 0, 100)

	elems := func(xs ...int64) []wire.Value {
		var out []wire.Value
		for _, x := range xs {
			out = append(out, wire.Int(x))
		}
		return out
	}
	for _, want := range [][]int64{{1, 9}, {1, 9, 7, 8, 6, 5, 4, 3, 2, 1, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 45, 46, 47, 48, 49, 50, 51, 52, 53, 54, 55, 56, 57, 58, 59, 60, 61, 62, 63, 64, 65, 66}, {}, {3}} {
		setState(t, ws, l, wire.Object{Kind: wire.ObjectList, Elems: elems(want...)})
		var got []int64
		ws.View(ctx, func(tx *stm.Tx) error {
			for _, x := range l.All(tx) {
				got = append(got, x)
			}
			if n := l.Len(tx); n != len(want) {
				t.Errorf("Len = %d, want %d", n, len(want))
			}
			return nil
		})
		if !slices.Equal(got, want) {
			t.Fatalf("list = %v, want %v", got, want)
		}
	}
	if _, err := stale.Commit(); err == nil {
		t.Fatal("a transaction that read a truncated element committed")
	}
	// Appends after a truncation land at the new end.
	ws.Atomically(ctx, func(tx *stm.Tx) error { l.Append(tx, 4); return nil })
	ws.View(ctx, func(tx *stm.Tx) error {
		if got := slices.Collect(func(yield func(int64) bool) {
			for _, x := range l.All(tx) {
				if !yield(x) {
					return
				}
			}
		}); !slices.Equal(got, []int64{3, 4}) {
			t.Errorf("after append: %v", got)
		}
		return nil
	})
}

func TestSetStateCollections(t *testing.T) {
	ctx := context.Background()
	ws := stm.NewWorkspace()
	c := stm.NewCounter(ws)
	v := stm.NewVar(ws, "a")
	m := stm.NewMap[string, int64](ws)
	s := stm.NewSet[string](ws)
	ws.Atomically(ctx, func(tx *stm.Tx) error {
		c.Add(tx, 5)
		m.Put(tx, "x", 1)
		m.Put(tx, "y", 2)
		s.Add(tx, "p")
		s.Add(tx, "q")
		return nil
	})
	// A transaction that read key y, which the new state drops, conflicts.
	stale := ws.Begin()
	m.Get(stale, "y")
	m.Put(stale, "z", 0)

	setState(t, ws, c, wire.Object{Kind: wire.ObjectCounter, Counter: -3})
	setState(t, ws, v, wire.Object{Kind: wire.ObjectVar, Value: wire.String("b")})
	setState(t, ws, m, wire.Object{Kind: wire.ObjectMap, Entries: []wire.Entry{{Key: wire.String("x"), Value: wire.Int(7)}, {Key: wire.String("w"), Value: wire.Int(8)}}})
	setState(t, ws, s, wire.Object{Kind: wire.ObjectSet, Elems: []wire.Value{wire.String("q"), wire.String("r")}})
	ws.View(ctx, func(tx *stm.Tx) error {
		if got := c.Get(tx); got != -3 {
			t.Errorf("counter = %d", got)
		}
		if got := v.Get(tx); got != "b" {
			t.Errorf("var = %q", got)
		}
		got := map[string]int64{}
		for k, x := range m.All(tx) {
			got[k] = x
		}
		if len(got) != 2 || got["x"] != 7 || got["w"] != 8 {
			t.Errorf("map = %v", got)
		}
		var elems []string
		for x := range s.All(tx) {
			elems = append(elems, x)
		}
		if !slices.Equal(elems, []string{"q", "r"}) {
			t.Errorf("set = %v", elems)
		}
		return nil
	})
	if _, err := stale.Commit(); err == nil {
		t.Fatal("a transaction that read a dropped key committed")
	}
	// Kind mismatch and Auto are errors that change nothing.
	err := ws.Atomically(ctx, func(tx *stm.Tx) error {
		return stm.SetState(tx, c, wire.Object{Kind: wire.ObjectVar, Value: wire.Int(1)}, noObservables)
	})
	if !errors.Is(err, stm.ErrBadOp) {
		t.Errorf("kind mismatch: %v", err)
	}
	if err := stm.SetState(stm.Auto, c, wire.Object{Kind: wire.ObjectCounter}, noObservables); !errors.Is(err, stm.ErrBadOp) {
		t.Errorf("Auto: %v", err)
	}
}

// TestSetStateRecordWhole: a record's new state is w's whole: a value
// field w lacks (the record was written by an older class, or never set
// the field) goes back to its zero value, and an unknown field w lacks is
// dropped, so that a speculative write of either does not outlive its
// rollback; collection fields keep their objects.
func TestSetStateRecordWhole(t *testing.T) {
	ctx := context.Background()
	ws := stm.NewWorkspace()
	balance := stm.NewVarField[int64](1, "balance")
	note := stm.NewVarField[string](5, "note")
	hits := stm.NewCounterField(3, "hits")
	cl := stm.NewClass("Account", 7, balance, hits, note)
	o := stm.NewObject(ws, cl)
	counter := hits.Of(o)
	w := wire.Object{Kind: wire.ObjectRecord, Class: 7, Fields: []wire.Field{{ID: 1, Value: wire.Int(10)}, {ID: 9, Value: wire.String("kept")}}}
	setState(t, ws, o, w)
	// Speculative writes: the new field, and an unknown field.
	ws.Atomically(ctx, func(tx *stm.Tx) error {
		note.Of(o).Set(tx, "x")
		balance.Of(o).Set(tx, 11)
		return stm.DecodeRecord(tx, o, wire.Object{Kind: wire.ObjectRecord, Class: 7,
			Fields: []wire.Field{{ID: 8, Value: wire.Int(1)}}}, nil)
	})
	setState(t, ws, o, w) // rolled back to the acknowledged state
	var got wire.Object
	ws.View(ctx, func(tx *stm.Tx) error {
		var err error
		got, err = stm.EncodeRecord(tx, o, func(stm.Observable) wire.ObjectID { return wire.ObjectID{Replica: 1, Seq: 2} })
		return err
	})
	want := []wire.Field{{ID: 1, Value: wire.Int(10)}, {ID: 3, Value: wire.Ref(wire.ObjectID{Replica: 1, Seq: 2})},
		{ID: 5, Value: wire.String("")}, {ID: 9, Value: wire.String("kept")}}
	if !slices.EqualFunc(got.Fields, want, func(a, b wire.Field) bool { return a.ID == b.ID && a.Value == b.Value }) {
		t.Fatalf("fields %v, want %v", got.Fields, want)
	}
	if hits.Of(o) != counter {
		t.Fatal("the collection field's object changed")
	}
}
