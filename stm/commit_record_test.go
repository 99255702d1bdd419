package stm_test

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"

	"github.com/weft-stm/weft/stm"
	"github.com/weft-stm/weft/wire"
)

// mirror is one workspace's set of objects, made in the same order in
// every workspace so that their ids match.
type mirror struct {
	ws    *stm.Workspace
	v     *stm.Var[int64]
	s     *stm.Var[string]
	c     *stm.Counter
	m     *stm.Map[string, int32]
	set   *stm.Set[uint16]
	l     *stm.List[float64]
	rec   *stm.Object
	other *stm.Object
	byID  map[wire.ObjectID]stm.Observable
}

var (
	rName  = stm.NewVarField[string](1, "name")
	rBest  = stm.NewVarField[*stm.Object](2, "best")
	rTags  = stm.NewSetField[string](3, "tags")
	rClass = stm.NewClass("R", 9, rName, rBest, rTags)
)

func newMirror(opts ...stm.Option) *mirror {
	ws := stm.NewWorkspace(append([]stm.Option{stm.WithReplica(3)}, opts...)...)
	r := &mirror{ws: ws, v: stm.NewVar[int64](ws, 0), s: stm.NewVar(ws, ""), c: stm.NewCounter(ws),
		m: stm.NewMap[string, int32](ws), set: stm.NewSet[uint16](ws), l: stm.NewList[float64](ws),
		rec: stm.NewObject(ws, rClass), other: stm.NewObject(ws, rClass)}
	r.byID = map[wire.ObjectID]stm.Observable{}
	for _, o := range []stm.Observable{r.v, r.s, r.c, r.m, r.set, r.l, r.rec, r.other, rTags.Of(r.rec), rTags.Of(r.other)} {
		r.byID[idOf(o)] = o
	}
	return r
}

func idOf(o stm.Observable) wire.ObjectID {
	switch x := o.(type) {
	case interface{ ID() stm.ID }:
		return x.ID()
	}
	panic(fmt.Sprintf("no id: %T", o))
}

func (r *mirror) resolve(id wire.ObjectID) (stm.Observable, error) {
	if o, ok := r.byID[id]; ok {
		return o, nil
	}
	return nil, fmt.Errorf("no object %v", id)
}

func (r *mirror) state(t *testing.T) string {
	var out string
	if err := r.ws.View(ctx, func(tx *stm.Tx) error {
		var keys []string
		for k, v := range r.m.All(tx) {
			keys = append(keys, fmt.Sprint(k, "=", v))
		}
		var elems []uint16
		for e := range r.set.All(tx) {
			elems = append(elems, e)
		}
		var list []float64
		for _, x := range r.l.All(tx) {
			list = append(list, x)
		}
		best := "nil"
		if b := rBest.Of(r.rec).Get(tx); b != nil {
			best = b.ID().String()
		}
		w, err := stm.EncodeRecord(tx, r.rec, func(x stm.Observable) wire.ObjectID { return idOf(x) })
		if err != nil {
			return err
		}
		out = fmt.Sprint(r.v.Get(tx), r.s.Get(tx), r.c.Get(tx), keys, elems, list,
			rName.Of(r.rec).Get(tx), best, slices.Collect(rTags.Of(r.rec).All(tx)), w.Fields)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestCommitRecordsReplay runs random transactions on one workspace, with a
// hook collecting their records, replays the records in version order on a
// second workspace with the same objects, and compares the states.
func TestCommitRecordsReplay(t *testing.T) {
	var mu sync.Mutex
	var recs []*stm.CommitRecord
	a := newMirror(stm.WithCommitHook(func(r *stm.CommitRecord) {
		mu.Lock()
		recs = append(recs, r)
		mu.Unlock()
	}))
	b := newMirror()
	// A field only a newer class has, written through the wire form.
	if err := a.ws.Atomically(ctx, func(tx *stm.Tx) error {
		return stm.DecodeRecord(tx, a.rec, wire.Object{ID: a.rec.ID(), Class: 9, Kind: wire.ObjectRecord,
			Fields: []wire.Field{{ID: 40, Value: wire.String("from v2")}}}, func(wire.ObjectID) (*stm.Object, error) { return nil, nil })
	}); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for g := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rnd := rand.New(rand.NewPCG(uint64(g), 7))
			for range 400 {
				k := rnd.IntN(9)
				n := rnd.IntN(5)
				err := a.ws.Atomically(ctx, func(tx *stm.Tx) error {
					switch k {
					case 0:
						a.v.Set(tx, a.v.Get(tx)+int64(n))
					case 1:
						a.s.Set(tx, a.s.Get(tx)+fmt.Sprint(n))
					case 2:
						a.c.Add(tx, int64(n)-2)
					case 3:
						if n == 0 {
							a.m.DeleteFast(tx, "k0")
						} else {
							a.m.Put(tx, fmt.Sprint("k", n), int32(n*g))
						}
					case 4:
						if n < 2 {
							a.set.RemoveFast(tx, uint16(n))
						} else {
							a.set.Add(tx, uint16(n))
						}
					case 5:
						a.l.Append(tx, float64(n)/3)
					case 6:
						if ln := a.l.Len(tx); ln > 0 {
							a.l.Set(tx, n%ln, a.l.Get(tx, n%ln)+0.5)
						}
					case 7:
						rName.Of(a.rec).Set(tx, fmt.Sprint("name", n))
						rTags.Of(a.rec).AddFast(tx, fmt.Sprint("t", n))
					case 8:
						if n%2 == 0 {
							rBest.Of(a.rec).Set(tx, a.other)
						} else {
							rBest.Of(a.rec).Set(tx, nil)
						}
					}
					return nil
				})
				if err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	slices.SortFunc(recs, func(x, y *stm.CommitRecord) int { return int(x.Version) - int(y.Version) })
	resolveB := func(id wire.ObjectID) (stm.Observable, error) { return b.resolve(id) }
	for _, r := range recs {
		if err := b.ws.Atomically(ctx, func(tx *stm.Tx) error { return stm.ApplyOps(tx, r.Writes, resolveB) }); err != nil {
			t.Fatalf("replaying version %d: %v", r.Version, err)
		}
		for _, rd := range r.Reads {
			if rd.Version > r.Version || (rd.Kind == wire.ReadWhole && rd.Version != r.Snapshot && rd.Version > r.Snapshot) {
				t.Fatalf("version %d: read %+v saw a version after its snapshot %d", r.Version, rd, r.Snapshot)
			}
		}
	}
	if sa, sb := a.state(t), b.state(t); sa != sb {
		t.Fatalf("replayed state differs:\n a: %s\n b: %s", sa, sb)
	}
	if len(recs) < 1000 {
		t.Fatalf("only %d records", len(recs))
	}
}

func TestCommitRecordShapes(t *testing.T) {
	var got *stm.CommitRecord
	r := newMirror(stm.WithCommitHook(func(c *stm.CommitRecord) { got = c }))
	if _, err := r.ws.Run(ctx, func(tx *stm.Tx) error {
		r.v.Set(tx, r.v.Get(tx)+1)
		rName.Of(r.rec).Set(tx, "x")
		r.set.AddFast(tx, 4)
		r.m.Put(tx, "a", 1)
		r.l.Append(tx, 1.5)
		r.c.Add(tx, 2)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, w := range got.Writes {
		kinds = append(kinds, w.Kind.String())
	}
	slices.Sort(kinds)
	if want := []string{"counter_add", "list_append", "map_put", "set_add", "set_field", "var_set"}; !slices.Equal(kinds, want) {
		t.Fatalf("write kinds %v, want %v", kinds, want)
	}
	var reads []string
	for _, rd := range got.Reads {
		reads = append(reads, rd.Kind.String())
	}
	slices.Sort(reads)
	if want := []string{"key", "whole"}; !slices.Equal(reads, want) {
		t.Fatalf("read kinds %v, want %v", reads, want)
	}
}

func TestCommitHookRefusesValuesWithNoWireForm(t *testing.T) {
	type point struct{ X, Y int }
	ws := stm.NewWorkspace(stm.WithCommitHook(func(*stm.CommitRecord) {}))
	p := stm.NewVar(ws, point{})
	err := ws.Atomically(ctx, func(tx *stm.Tx) error { p.Set(tx, point{1, 2}); return nil })
	if !errors.Is(err, errors.ErrUnsupported) {
		t.Fatalf("got %v, want ErrUnsupported", err)
	}
	if p.Get(stm.Auto) != (point{}) {
		t.Fatal("a refused commit changed the state")
	}
}

func TestApplyOpsRejectsMismatchedOps(t *testing.T) {
	r := newMirror()
	for _, op := range []wire.Op{
		{Kind: wire.OpCounterAdd, Object: r.v.ID(), Delta: 1},
		{Kind: wire.OpMapPut, Object: r.set.ID(), Key: wire.Uint(1)},
		{Kind: wire.OpVarSet, Object: r.v.ID(), Value: wire.String("not an int")},
		{Kind: wire.OpListSet, Object: r.l.ID(), Index: 5, Value: wire.Float(1)},
		{Kind: wire.OpSetField, Object: r.rec.ID(), Field: 3, Value: wire.Null()},
	} {
		err := r.ws.Atomically(ctx, func(tx *stm.Tx) error {
			return stm.ApplyOps(tx, []wire.Op{{Kind: wire.OpVarSet, Object: r.s.ID(), Value: wire.String("partial")}, op}, r.resolve)
		})
		if err == nil {
			t.Fatalf("op %+v applied", op)
		}
		if r.s.Get(stm.Auto) != "" {
			t.Fatalf("op %+v: the failed transaction left a write", op)
		}
	}
}

// TestMaterializeThenReplay is a replica's life in small: a record arrives
// in a snapshot, is materialised with its ids, filled, and then kept in sync
// by replaying the origin's commit records as ops.
func TestMaterializeThenReplay(t *testing.T) {
	var recs []*stm.CommitRecord
	a := stm.NewWorkspace(stm.WithReplica(1), stm.WithCommitHook(func(r *stm.CommitRecord) { recs = append(recs, r) }))
	ua := stm.NewObject(a, rClass)
	if err := a.Atomically(ctx, func(tx *stm.Tx) error {
		rName.Of(ua).Set(tx, "ada")
		rTags.Of(ua).AddFast(tx, "x")
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	// The snapshot: the record, and its set as an object of its own.
	var w wire.Object
	var tags []string
	_ = a.View(ctx, func(tx *stm.Tx) error {
		var err error
		w, err = stm.EncodeRecord(tx, ua, stm.IDOf)
		tags = slices.Collect(rTags.Of(ua).All(tx))
		return err
	})
	recs = nil

	b := stm.NewWorkspace(stm.WithReplica(2))
	ub, err := stm.Materialize(b, rClass, w)
	if err != nil {
		t.Fatal(err)
	}
	if ub.ID() != ua.ID() || stm.IDOf(rTags.Of(ub)) != stm.IDOf(rTags.Of(ua)) {
		t.Fatalf("ids: record %v vs %v, tags %v vs %v", ub.ID(), ua.ID(), stm.IDOf(rTags.Of(ub)), stm.IDOf(rTags.Of(ua)))
	}
	index := map[wire.ObjectID]stm.Observable{ub.ID(): ub}
	for _, f := range rClass.Fields() {
		if cell, ok := ub.Field(f.ID()); ok {
			index[stm.IDOf(cell)] = cell
		}
	}
	resolve := func(id wire.ObjectID) (stm.Observable, error) {
		if x, ok := index[id]; ok {
			return x, nil
		}
		return nil, fmt.Errorf("no object %v", id)
	}
	if err := b.Atomically(ctx, func(tx *stm.Tx) error {
		if err := stm.DecodeRecord(tx, ub, w, func(wire.ObjectID) (*stm.Object, error) { return nil, errors.New("no refs here") }); err != nil {
			return err
		}
		for _, tag := range tags {
			rTags.Of(ub).AddFast(tx, tag)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}

	// Later commits at the origin, replayed as ops.
	for i := range 5 {
		_ = a.Atomically(ctx, func(tx *stm.Tx) error {
			rName.Of(ua).Set(tx, fmt.Sprint("ada", i))
			rTags.Of(ua).AddFast(tx, fmt.Sprint("t", i))
			if i == 3 {
				rTags.Of(ua).RemoveFast(tx, "x")
			}
			return nil
		})
	}
	for _, r := range recs {
		if err := b.Atomically(ctx, func(tx *stm.Tx) error { return stm.ApplyOps(tx, r.Writes, resolve) }); err != nil {
			t.Fatalf("replaying version %d: %v", r.Version, err)
		}
	}
	state := func(ws *stm.Workspace, o *stm.Object) string {
		var s string
		_ = ws.View(ctx, func(tx *stm.Tx) error {
			s = fmt.Sprint(rName.Of(o).Get(tx), slices.Collect(rTags.Of(o).All(tx)))
			return nil
		})
		return s
	}
	if sa, sb := state(a, ua), state(b, ub); sa != sb {
		t.Fatalf("replica %s, origin %s", sb, sa)
	}
}

func TestMaterializeRejectsWrongInput(t *testing.T) {
	ws := stm.NewWorkspace()
	other := stm.NewClass("Other", 10, stm.NewVarField[int](1, "n"))
	if _, err := stm.Materialize(ws, other, wire.Object{Kind: wire.ObjectRecord, Class: 9}); !errors.Is(err, stm.ErrNotRecord) {
		t.Fatalf("wrong class: %v", err)
	}
	bad := wire.Object{Kind: wire.ObjectRecord, Class: 9, Fields: []wire.Field{{ID: 3, Value: wire.String("not a ref")}}}
	if _, err := stm.Materialize(ws, rClass, bad); !errors.Is(err, stm.ErrFieldKind) {
		t.Fatalf("a collection field that is not a ref: %v", err)
	}
}

func TestCommitRecordTag(t *testing.T) {
	var tags []any
	ws := stm.NewWorkspace(stm.WithCommitHook(func(r *stm.CommitRecord) { tags = append(tags, r.Tag) }))
	v := stm.NewVar(ws, 0)
	type internal struct{}
	_ = ws.Atomically(ctx, func(tx *stm.Tx) error { tx.SetTag(internal{}); v.Set(tx, 1); return nil })
	_ = ws.Atomically(ctx, func(tx *stm.Tx) error { v.Set(tx, 2); return nil }) // a reused state carries no old tag
	if len(tags) != 2 || tags[0] != (internal{}) || tags[1] != nil {
		t.Fatalf("tags %v", tags)
	}
}

func TestTxRecordWithoutCommit(t *testing.T) {
	ws := stm.NewWorkspace()
	v := stm.NewVar(ws, 5)
	tx := ws.Begin()
	v.Set(tx, v.Get(tx)+1)
	rec, err := tx.Record()
	if err != nil || len(rec.Reads) != 1 || len(rec.Writes) != 1 || rec.Writes[0].Value.Int() != 6 || rec.Version != 0 {
		t.Fatalf("record %+v, %v", rec, err)
	}
	tx.Abort()
	if v.Get(stm.Auto) != 5 {
		t.Fatal("Record committed")
	}
}

func TestKindOf(t *testing.T) {
	r := newMirror()
	for x, want := range map[stm.Observable]wire.ObjectKind{r.v: wire.ObjectVar, r.c: wire.ObjectCounter,
		r.m: wire.ObjectMap, r.set: wire.ObjectSet, r.l: wire.ObjectList, r.rec: wire.ObjectRecord,
		rTags.Of(r.rec): wire.ObjectSet, rName.Of(r.rec): wire.ObjectVar} {
		if got := stm.KindOf(x); got != want {
			t.Errorf("KindOf(%T) = %v, want %v", x, got, want)
		}
	}
}
