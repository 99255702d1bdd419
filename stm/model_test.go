package stm_test

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"sort"
	"sync"
	"testing"

	"github.com/weft-stm/weft/stm"
)

// The model-based test runs random transactions from several goroutines
// over a few values and collections, records what each committed
// transaction saw and the version it committed at, then replays the commits
// in version order against a plain Go reference: every read must match the
// reference state just before the commit (serializability), read-only
// transactions must match the state at their snapshot, and the final state
// must equal the reference.

type model struct {
	vars    [4]int
	counter int64
	m       map[int]int
	set     map[int]bool
	list    []int
}

func newModel() *model { return &model{m: map[int]int{}, set: map[int]bool{}} }

func (md *model) clone() *model {
	c := *md
	c.m = maps(md.m)
	c.set = map[int]bool{}
	for k := range md.set {
		c.set[k] = true
	}
	c.list = slices.Clone(md.list)
	return &c
}

func maps(m map[int]int) map[int]int {
	c := make(map[int]int, len(m))
	for k, v := range m {
		c[k] = v
	}
	return c
}

type world struct {
	ws      *stm.Workspace
	vars    [4]*stm.Var[int]
	counter *stm.Counter
	m       *stm.Map[int, int]
	set     *stm.Set[int]
	list    *stm.List[int]
}

// op is one step of a random transaction: it runs against the STM inside a
// transaction (returning what it observed) or against the model.
type op struct {
	kind int
	a, b int
}

const nKinds = 16

func randomOp(r *rand.Rand) op { return op{kind: r.IntN(nKinds), a: r.IntN(8), b: r.IntN(100)} }

func (o op) String() string { return fmt.Sprintf("op%d(%d,%d)", o.kind, o.a, o.b) }

func (o op) stm(w *world, tx *stm.Tx) string {
	switch o.kind {
	case 0:
		return fmt.Sprint(w.vars[o.a%4].Get(tx))
	case 1:
		w.vars[o.a%4].Set(tx, o.b)
	case 2: // read-modify-write
		v := w.vars[o.a%4]
		x := v.Get(tx)
		v.Set(tx, x+o.b)
		return fmt.Sprint(x)
	case 3:
		w.counter.Add(tx, int64(o.b))
	case 4:
		return fmt.Sprint(w.counter.Get(tx))
	case 5:
		v, ok := w.m.Get(tx, o.a)
		return fmt.Sprint(v, ok)
	case 6:
		old, ok := w.m.Put(tx, o.a, o.b)
		return fmt.Sprint(old, ok)
	case 7:
		w.m.PutFast(tx, o.a, o.b)
	case 8:
		return fmt.Sprint(w.m.Delete(tx, o.a))
	case 9:
		keys := []string{}
		for k, v := range w.m.All(tx) {
			keys = append(keys, fmt.Sprint(k, "=", v))
		}
		sort.Strings(keys)
		return fmt.Sprint(w.m.Len(tx), keys)
	case 10:
		return fmt.Sprint(w.set.Add(tx, o.a))
	case 11:
		w.set.AddFast(tx, o.a)
		w.set.RemoveFast(tx, (o.a+1)%8)
		return fmt.Sprint(w.set.Contains(tx, o.b%8), w.set.Len(tx))
	case 12:
		w.list.Append(tx, o.b)
	case 14:
		return fmt.Sprint(w.m.Len(tx))
	case 15:
		return fmt.Sprint(w.set.Len(tx), w.list.Len(tx))
	case 13:
		n := w.list.Len(tx)
		if n == 0 {
			w.list.Append(tx, o.b) // every op of this kind writes
			return "empty"
		}
		i := o.b % n
		x := w.list.Get(tx, i)
		w.list.Set(tx, i, x+1)
		return fmt.Sprint(n, i, x)
	}
	return ""
}

func (o op) model(md *model) string {
	switch o.kind {
	case 0:
		return fmt.Sprint(md.vars[o.a%4])
	case 1:
		md.vars[o.a%4] = o.b
	case 2:
		x := md.vars[o.a%4]
		md.vars[o.a%4] = x + o.b
		return fmt.Sprint(x)
	case 3:
		md.counter += int64(o.b)
	case 4:
		return fmt.Sprint(md.counter)
	case 5:
		v, ok := md.m[o.a]
		return fmt.Sprint(v, ok)
	case 6:
		old, ok := md.m[o.a]
		md.m[o.a] = o.b
		return fmt.Sprint(old, ok)
	case 7:
		md.m[o.a] = o.b
	case 8:
		_, ok := md.m[o.a]
		delete(md.m, o.a)
		return fmt.Sprint(ok)
	case 9:
		keys := []string{}
		for k, v := range md.m {
			keys = append(keys, fmt.Sprint(k, "=", v))
		}
		sort.Strings(keys)
		return fmt.Sprint(len(md.m), keys)
	case 10:
		was := md.set[o.a]
		md.set[o.a] = true
		return fmt.Sprint(!was)
	case 11:
		md.set[o.a] = true
		delete(md.set, (o.a+1)%8)
		return fmt.Sprint(md.set[o.b%8], len(md.set))
	case 12:
		md.list = append(md.list, o.b)
	case 14:
		return fmt.Sprint(len(md.m))
	case 15:
		return fmt.Sprint(len(md.set), len(md.list))
	case 13:
		n := len(md.list)
		if n == 0 {
			md.list = append(md.list, o.b)
			return "empty"
		}
		i := o.b % n
		x := md.list[i]
		md.list[i] = x + 1
		return fmt.Sprint(n, i, x)
	}
	return ""
}

type record struct {
	ops      []op
	seen     []string
	version  uint64
	readOnly bool
	nested   bool
}

func runModel(t *testing.T, seed uint64, goroutines, perG int) {
	ws := stm.NewWorkspace()
	defer ws.Close()
	w := &world{ws: ws, counter: stm.NewCounter(ws), m: stm.NewMap[int, int](ws),
		set: stm.NewSet[int](ws), list: stm.NewList[int](ws)}
	for i := range w.vars {
		w.vars[i] = stm.NewVar(ws, 0)
	}
	var mu sync.Mutex
	var history []record
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(seed, uint64(g)))
			for range perG {
				rec := record{ops: make([]op, 1+r.IntN(6)), readOnly: r.IntN(5) == 0, nested: r.IntN(4) == 0}
				for i := range rec.ops {
					rec.ops[i] = randomOp(r)
					if rec.readOnly {
						rec.ops[i].kind = []int{0, 4, 5, 9, 14, 15}[r.IntN(6)]
					}
				}
				body := func(tx *stm.Tx) error {
					rec.seen = rec.seen[:0]
					for i, o := range rec.ops {
						if rec.nested && i == len(rec.ops)/2 {
							// A nested transaction that fails must leave no trace.
							_ = tx.Nested(func(tx *stm.Tx) error {
								o.stm(w, tx)
								return fmt.Errorf("discard")
							})
						}
						rec.seen = append(rec.seen, o.stm(w, tx))
						if o.b%3 == 0 {
							runtime.Gosched() // let other transactions interleave
						}
					}
					return nil
				}
				if rec.readOnly {
					tx := ws.BeginReadOnly()
					_ = body(tx)
					h, err := tx.Commit()
					if err != nil {
						t.Errorf("read-only commit: %v", err)
						return
					}
					rec.version = h.Version()
				} else {
					h, err := ws.Run(ctx, body)
					if err != nil {
						t.Errorf("run: %v", err)
						return
					}
					rec.version = h.Version()
				}
				mu.Lock()
				history = append(history, rec)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	checkHistory(t, seed, history, w)
}

func checkHistory(t *testing.T, seed uint64, history []record, w *world) {
	t.Helper()
	writers := map[uint64]record{}
	readers := map[uint64][]record{}
	var last uint64
	for _, r := range history {
		hasWrite := false
		for _, o := range r.ops {
			if k := o.kind; k != 0 && k != 4 && k != 5 && k != 9 && k != 14 && k != 15 {
				hasWrite = true
			}
		}
		if !hasWrite {
			readers[r.version] = append(readers[r.version], r)
			last = max(last, r.version)
			continue
		}
		if _, dup := writers[r.version]; dup {
			t.Fatalf("seed %d: two commits share version %d", seed, r.version)
		}
		writers[r.version] = r
		last = max(last, r.version)
	}
	md := newModel()
	check := func(r record, state *model, at uint64) {
		for i, o := range r.ops {
			if want := o.model(state); want != r.seen[i] {
				t.Fatalf("seed %d: transaction at version %d, op %d %v saw %q, serial order says %q\nops %v\nseen %q",
					seed, at, i, o, r.seen[i], want, r.ops, r.seen)
			}
		}
	}
	// Versions may skip (a commit that failed validation after taking its
	// version publishes it empty).
	for v := uint64(0); v <= last; v++ {
		for _, r := range readers[v] {
			check(r, md.clone(), v)
		}
		if r, ok := writers[v+1]; ok {
			check(r, md, v+1) // applies the writes too
		}
	}
	// The final state equals the reference.
	final := newModel()
	_ = w.ws.View(ctx, func(tx *stm.Tx) error {
		for i, v := range w.vars {
			final.vars[i] = v.Get(tx)
		}
		final.counter = w.counter.Get(tx)
		for k, v := range w.m.All(tx) {
			final.m[k] = v
		}
		for k := range w.set.All(tx) {
			final.set[k] = true
		}
		for _, v := range w.list.All(tx) {
			final.list = append(final.list, v)
		}
		return nil
	})
	if a, b := fmt.Sprint(*final), fmt.Sprint(*md); a != b {
		t.Fatalf("seed %d: final state\n got %s\nwant %s", seed, a, b)
	}
}

func TestModelSerializable(t *testing.T) {
	seeds := 20
	if testing.Short() {
		seeds = 4
	}
	for seed := range uint64(seeds) {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			runModel(t, seed, 4, 300)
		})
	}
}
