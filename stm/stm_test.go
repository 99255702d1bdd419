package stm_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/weft-stm/weft/stm"
)

var ctx = context.Background()

func get[T any](t *testing.T, ws *stm.Workspace, f func(tx *stm.Tx) T) T {
	t.Helper()
	var out T
	if err := ws.View(ctx, func(tx *stm.Tx) error { out = f(tx); return nil }); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestVarAtomically(t *testing.T) {
	ws := stm.NewWorkspace()
	defer ws.Close()
	v := stm.NewVar(ws, 1)
	if err := ws.Atomically(ctx, func(tx *stm.Tx) error {
		v.Set(tx, v.Get(tx)+41)
		if got := v.Get(tx); got != 42 {
			t.Errorf("read own write: got %d", got)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if got := get(t, ws, v.Get); got != 42 {
		t.Fatalf("got %d, want 42", got)
	}
}

func TestAtomicallyReturnsErrorUntouchedAndRollsBack(t *testing.T) {
	ws := stm.NewWorkspace()
	v := stm.NewVar(ws, "before")
	mine := errors.New("mine")
	err := ws.Atomically(ctx, func(tx *stm.Tx) error {
		v.Set(tx, "after")
		return mine
	})
	if err != mine {
		t.Fatalf("got %v, want the function's own error value", err)
	}
	if got := get(t, ws, v.Get); got != "before" {
		t.Fatalf("rolled-back write visible: %q", got)
	}
}

func TestPanicRollsBackAndRepanics(t *testing.T) {
	ws := stm.NewWorkspace()
	v := stm.NewVar(ws, 1)
	func() {
		defer func() {
			if r := recover(); r != "boom" {
				t.Fatalf("recovered %v, want boom", r)
			}
		}()
		_ = ws.Atomically(ctx, func(tx *stm.Tx) error {
			v.Set(tx, 2)
			panic("boom")
		})
	}()
	if got := get(t, ws, v.Get); got != 1 {
		t.Fatalf("write of a panicking transaction visible: %d", got)
	}
	// The workspace still works.
	v.Set(stm.Auto, 3)
	if got := get(t, ws, v.Get); got != 3 {
		t.Fatalf("got %d", got)
	}
}

func TestSnapshotIsolation(t *testing.T) {
	ws := stm.NewWorkspace()
	a, b := stm.NewVar(ws, 10), stm.NewVar(ws, 10)
	reader := ws.BeginReadOnly()
	if got := a.Get(reader); got != 10 {
		t.Fatal(got)
	}
	// A transfer commits after the reader's snapshot.
	if err := ws.Atomically(ctx, func(tx *stm.Tx) error {
		a.Set(tx, a.Get(tx)-5)
		b.Set(tx, b.Get(tx)+5)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	// The reader still sees one consistent state: b as of its snapshot.
	if got := b.Get(reader); got != 10 {
		t.Fatalf("snapshot read saw a later commit: b=%d", got)
	}
	if _, err := reader.Commit(); err != nil {
		t.Fatalf("read-only transaction aborted: %v", err)
	}
}

func TestConflictNamesObjectAndField(t *testing.T) {
	ws := stm.NewWorkspace()
	name := stm.NewVarField[string](1, "name")
	age := stm.NewVarField[int](2, "age")
	class := stm.NewClass("User", 7, name, age)
	u := stm.NewObject(ws, class)

	t1, t2 := ws.Begin(), ws.Begin()
	name.Of(u).Set(t1, name.Of(u).Get(t1)+"x")
	name.Of(u).Set(t2, name.Of(u).Get(t2)+"y")
	if _, err := t1.Commit(); err != nil {
		t.Fatal(err)
	}
	_, err := t2.Commit()
	var ce *stm.ConflictError
	if !errors.As(err, &ce) || !errors.Is(err, stm.ErrConflict) {
		t.Fatalf("got %v, want a conflict", err)
	}
	if ce.Object != u.ID() || ce.Field != 1 || ce.Name != "name" {
		t.Fatalf("conflict names %+v", ce)
	}
	if !strings.Contains(err.Error(), "field 1 (name)") {
		t.Fatalf("message %q does not name the field", err)
	}
}

func TestDifferentFieldsDoNotConflict(t *testing.T) {
	ws := stm.NewWorkspace()
	x := stm.NewVarField[int](1, "x")
	y := stm.NewVarField[int](2, "y")
	p := stm.NewObject(ws, stm.NewClass("Point", 1, x, y))
	t1, t2 := ws.Begin(), ws.Begin()
	x.Of(p).Set(t1, x.Of(p).Get(t1)+1)
	y.Of(p).Set(t2, y.Of(p).Get(t2)+1)
	if _, err := t1.Commit(); err != nil {
		t.Fatal(err)
	}
	if _, err := t2.Commit(); err != nil {
		t.Fatalf("writes to different fields conflicted: %v", err)
	}
	if got := get(t, ws, func(tx *stm.Tx) [2]int { return [2]int{x.Of(p).Get(tx), y.Of(p).Get(tx)} }); got != [2]int{1, 1} {
		t.Fatal(got)
	}
}

func TestMapKeysConflictPerKey(t *testing.T) {
	ws := stm.NewWorkspace()
	m := stm.NewMap[string, int](ws)
	m.PutFast(stm.Auto, "a", 1)
	m.PutFast(stm.Auto, "b", 1)
	t1, t2, t3 := ws.Begin(), ws.Begin(), ws.Begin()
	v, _ := m.Get(t1, "a")
	m.PutFast(t1, "a", v+1)
	v, _ = m.Get(t2, "b")
	m.PutFast(t2, "b", v+1)
	v, _ = m.Get(t3, "a")
	m.PutFast(t3, "a", v+10)
	for i, tx := range []*stm.Tx{t1, t2} {
		if _, err := tx.Commit(); err != nil {
			t.Fatalf("tx %d: %v", i+1, err)
		}
	}
	_, err := t3.Commit()
	var ce *stm.ConflictError
	if !errors.As(err, &ce) || ce.Key != "a" {
		t.Fatalf("got %v, want a conflict on key a", err)
	}
}

func TestBlindWritesNeverConflict(t *testing.T) {
	ws := stm.NewWorkspace()
	s := stm.NewSet[int](ws)
	m := stm.NewMap[int, string](ws)
	c := stm.NewCounter(ws)
	v := stm.NewVar(ws, 0)
	l := stm.NewList[int](ws)
	const n = 5
	txs := make([]*stm.Tx, n)
	for i := range txs {
		txs[i] = ws.Begin()
		s.AddFast(txs[i], 1)
		m.PutFast(txs[i], 1, fmt.Sprint(i))
		c.Add(txs[i], 2)
		v.Set(txs[i], i)
		l.Append(txs[i], i)
	}
	for i, tx := range txs {
		if _, err := tx.Commit(); err != nil {
			t.Fatalf("blind transaction %d: %v", i, err)
		}
	}
	got := get(t, ws, func(tx *stm.Tx) string {
		mv, _ := m.Get(tx, 1)
		return fmt.Sprintf("%d %s %d %d %v", s.Len(tx), mv, c.Get(tx), v.Get(tx), slices.Collect(valuesOf(l.All(tx))))
	})
	if want := "1 4 10 4 [0 1 2 3 4]"; got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
}

func valuesOf[T any](seq func(func(int, T) bool)) func(func(T) bool) {
	return func(yield func(T) bool) {
		for _, v := range seq {
			if !yield(v) {
				return
			}
		}
	}
}

func TestLenAndIterationConflictWithInsert(t *testing.T) {
	ws := stm.NewWorkspace()
	s := stm.NewSet[int](ws)
	out := stm.NewVar(ws, 0)
	for _, read := range []func(tx *stm.Tx) int{
		s.Len,
		func(tx *stm.Tx) int { return len(slices.Collect(s.All(tx))) },
	} {
		tx := ws.Begin()
		out.Set(tx, read(tx))
		s.AddFast(stm.Auto, s.Len(stm.Auto)+100)
		if _, err := tx.Commit(); !errors.Is(err, stm.ErrConflict) {
			t.Fatalf("got %v, want a conflict: the size it read changed", err)
		}
	}
}

func TestCounterCommutes(t *testing.T) {
	ws := stm.NewWorkspace()
	c := stm.NewCounter(ws)
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 500; i++ {
				tx := ws.Begin()
				c.Add(tx, 1)
				if _, err := tx.Commit(); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if got := c.Get(stm.Auto); got != 2000 {
		t.Fatalf("got %d", got)
	}
	// Reading the counter, however, is a read.
	t1 := ws.Begin()
	c.Add(t1, c.Get(t1))
	c.Add(stm.Auto, 1)
	if _, err := t1.Commit(); !errors.Is(err, stm.ErrConflict) {
		t.Fatalf("got %v, want a conflict", err)
	}
}

func TestMisuse(t *testing.T) {
	ws := stm.NewWorkspace()
	v := stm.NewVar(ws, 0)
	tx := ws.Begin()
	v.Set(tx, 1)
	if _, err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Commit(); !errors.Is(err, stm.ErrTxDone) {
		t.Fatalf("second commit: %v", err)
	}
	tx.Abort() // harmless
	func() {
		defer func() {
			r := recover()
			if r == nil || !strings.Contains(fmt.Sprint(r), "after it ended") {
				t.Fatalf("use after commit: recovered %v", r)
			}
		}()
		v.Get(tx)
	}()

	var kept *stm.Tx
	_ = ws.Atomically(ctx, func(tx *stm.Tx) error { kept = tx; return nil })
	func() {
		defer func() {
			if recover() == nil {
				t.Fatal("a Tx kept after Atomically still worked")
			}
		}()
		v.Set(kept, 5)
	}()

	if err := ws.View(ctx, func(tx *stm.Tx) error { v.Set(tx, 9); return nil }); !errors.Is(err, stm.ErrReadOnly) {
		t.Fatalf("write in View: %v", err)
	}
}

// An object of another workspace has versions of another clock, which a
// transaction's snapshot cannot read; touching one stops fn with
// ErrWrongWorkspace, whatever the two clocks say, and changes nothing.
func TestWrongWorkspace(t *testing.T) {
	ctx := context.Background()
	ws, other := stm.NewWorkspace(), stm.NewWorkspace()
	v := stm.NewVar(ws, 1)
	w := stm.NewVar(other, 0)
	m := stm.NewMap[string, int](other)
	l := stm.NewList[int](other)
	// other's clock runs far ahead, and its old versions are trimmed: a
	// read at ws's snapshot would find none.
	for i := 0; i < 1000; i++ {
		if err := other.Atomically(ctx, func(tx *stm.Tx) error {
			w.Set(tx, w.Get(tx)+1)
			m.Put(tx, "k", i)
			l.Append(tx, i)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	touches := map[string]func(tx *stm.Tx){
		"var read":   func(tx *stm.Tx) { v.Set(tx, w.Get(tx)) },
		"var write":  func(tx *stm.Tx) { v.Set(tx, 2); w.Set(tx, 2) },
		"map read":   func(tx *stm.Tx) { m.Get(tx, "k") },
		"map size":   func(tx *stm.Tx) { m.Len(tx) },
		"list index": func(tx *stm.Tx) { l.Get(tx, 3) },
		"nested": func(tx *stm.Tx) {
			_ = tx.OrElse(func(tx *stm.Tx) error { return tx.Retry() }, func(tx *stm.Tx) error { w.Get(tx); return nil })
		},
	}
	for name, touch := range touches {
		reached := false
		fn := func(tx *stm.Tx) error { v.Set(tx, 3); touch(tx); reached = true; return nil }
		if err := ws.Atomically(ctx, fn); !errors.Is(err, stm.ErrWrongWorkspace) {
			t.Fatalf("%s in Atomically: %v", name, err)
		}
		if err := ws.View(ctx, func(tx *stm.Tx) error { touch(tx); reached = true; return nil }); !errors.Is(err, stm.ErrWrongWorkspace) {
			t.Fatalf("%s in View: %v", name, err)
		}
		if _, err := ws.Run(ctx, fn); !errors.Is(err, stm.ErrWrongWorkspace) {
			t.Fatalf("%s in Run: %v", name, err)
		}
		if reached {
			t.Fatalf("%s: fn went on after the touch", name)
		}
		tx := ws.Begin()
		func() {
			defer func() {
				if r := recover(); r != stm.ErrWrongWorkspace {
					t.Fatalf("%s under Begin: recovered %v", name, r)
				}
			}()
			touch(tx)
		}()
		tx.Abort()
	}
	if got := get(t, ws, v.Get); got != 1 {
		t.Fatalf("state changed by misuse: %d", got)
	}
	if got := get(t, other, w.Get); got != 1000 {
		t.Fatalf("state changed by misuse: %d", got)
	}
}

func TestNested(t *testing.T) {
	ws := stm.NewWorkspace()
	v := stm.NewVar(ws, 0)
	m := stm.NewMap[string, int](ws)
	l := stm.NewList[int](ws)
	l.Append(stm.Auto, 0, 0)
	err := ws.Atomically(ctx, func(tx *stm.Tx) error {
		v.Set(tx, 1)
		m.PutFast(tx, "keep", 1)
		if err := tx.Nested(func(tx *stm.Tx) error {
			v.Set(tx, 2)
			m.PutFast(tx, "keep", 2)
			m.PutFast(tx, "drop", 2)
			l.Set(tx, 0, 2)
			l.Append(tx, 2)
			return errors.New("no")
		}); err == nil {
			t.Error("nested error lost")
		}
		if v.Get(tx) != 1 || m.Len(tx) != 1 || l.Get(tx, 0) != 0 || l.Len(tx) != 2 {
			t.Errorf("rolled-back nested writes visible: v=%d len=%d l0=%d", v.Get(tx), m.Len(tx), l.Get(tx, 0))
		}
		return tx.Nested(func(tx *stm.Tx) error {
			v.Set(tx, v.Get(tx)+10)
			l.Set(tx, 1, 7)
			return tx.Nested(func(tx *stm.Tx) error {
				m.PutFast(tx, "inner", 3)
				return nil
			})
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	got := get(t, ws, func(tx *stm.Tx) string {
		k, _ := m.Get(tx, "keep")
		_, drop := m.Get(tx, "drop")
		in, _ := m.Get(tx, "inner")
		return fmt.Sprint(v.Get(tx), k, drop, in, l.Get(tx, 0), l.Get(tx, 1), l.Len(tx))
	})
	if want := "11 1 false 3 0 7 2"; got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
}

// waitForWaiters spins until n transactions block in Retry: the event the
// test needs, observed without sleeping.
func waitForWaiters(ws *stm.Workspace, n int) {
	for stm.Waiting(ws) < n {
		runtime.Gosched()
	}
}

func TestRetryBlocksUntilChange(t *testing.T) {
	ws := stm.NewWorkspace()
	seats := stm.NewVar(ws, 0)
	booked := make(chan int)
	go func() {
		var got int
		_ = ws.Atomically(ctx, func(tx *stm.Tx) error {
			n := seats.Get(tx)
			if n == 0 {
				return tx.Retry()
			}
			seats.Set(tx, n-1)
			got = n
			return nil
		})
		booked <- got
	}()
	waitForWaiters(ws, 1)
	select {
	case <-booked:
		t.Fatal("Retry did not block")
	default:
	}
	seats.Set(stm.Auto, 3)
	if got := <-booked; got != 3 {
		t.Fatalf("booked with %d seats seen", got)
	}
	if got := seats.Get(stm.Auto); got != 2 {
		t.Fatalf("seats left %d", got)
	}
}

func TestRetryWithoutReadsFails(t *testing.T) {
	ws := stm.NewWorkspace()
	err := ws.Atomically(ctx, func(tx *stm.Tx) error { return tx.Retry() })
	if !errors.Is(err, stm.ErrRetryNothingRead) {
		t.Fatalf("got %v", err)
	}
}

func TestRetryHonoursContext(t *testing.T) {
	ws := stm.NewWorkspace()
	v := stm.NewVar(ws, 0)
	c, cancel := context.WithCancel(ctx)
	done := make(chan error)
	go func() {
		done <- ws.Atomically(c, func(tx *stm.Tx) error {
			if v.Get(tx) == 0 {
				return tx.Retry()
			}
			return nil
		})
	}()
	waitForWaiters(ws, 1)
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v", err)
	}
	if n := stm.Waiting(ws); n != 0 {
		t.Fatalf("%d waiters left behind", n)
	}
}

func TestOrElse(t *testing.T) {
	ws := stm.NewWorkspace()
	a, b := stm.NewVar(ws, 0), stm.NewVar(ws, 0)
	take := func(v *stm.Var[int], name string) func(tx *stm.Tx) error {
		return func(tx *stm.Tx) error {
			if v.Get(tx) == 0 {
				return tx.Retry()
			}
			v.Set(tx, v.Get(tx)-1)
			return nil
		}
	}
	got := make(chan string, 1)
	go func() {
		var which string
		_ = ws.Atomically(ctx, func(tx *stm.Tx) error {
			which = ""
			return tx.OrElse(
				func(tx *stm.Tx) error { which = "a"; return take(a, "a")(tx) },
				func(tx *stm.Tx) error { which = "b"; return take(b, "b")(tx) },
			)
		})
		got <- which
	}()
	// Both alternatives retry: the transaction waits on what either read.
	waitForWaiters(ws, 1)
	b.Set(stm.Auto, 1)
	if w := <-got; w != "b" {
		t.Fatalf("took %q, want b", w)
	}
	// When the first alternative can run, it wins.
	a.Set(stm.Auto, 1)
	b.Set(stm.Auto, 1)
	var which string
	if err := ws.Atomically(ctx, func(tx *stm.Tx) error {
		return tx.OrElse(
			func(tx *stm.Tx) error { which = "a"; return take(a, "a")(tx) },
			func(tx *stm.Tx) error { which = "b"; return take(b, "b")(tx) },
		)
	}); err != nil || which != "a" {
		t.Fatalf("which=%q err=%v", which, err)
	}
	if a.Get(stm.Auto) != 0 || b.Get(stm.Auto) != 1 {
		t.Fatalf("a=%d b=%d", a.Get(stm.Auto), b.Get(stm.Auto))
	}
}

func TestAutoTransactions(t *testing.T) {
	ws := stm.NewWorkspace()
	s := stm.NewSet[string](ws)
	m := stm.NewMap[string, int](ws)
	if s.Add(stm.Auto, "x") {
		t.Fatal("Add under Auto must return the zero value")
	}
	if !s.Contains(stm.Auto, "x") {
		t.Fatal("automatic add not applied")
	}
	if old, ok := m.Put(stm.Auto, "k", 1); ok || old != 0 {
		t.Fatal("Put under Auto must return zero values")
	}
	if s.Remove(stm.Auto, "x") || s.Contains(stm.Auto, "x") {
		t.Fatal("automatic remove")
	}
	v, _ := m.Get(stm.Auto, "k")
	if v != 1 || m.Len(stm.Auto) != 1 {
		t.Fatal("automatic put")
	}
	if err := ws.Flush(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestHandleStages(t *testing.T) {
	ws := stm.NewWorkspace()
	v := stm.NewVar(ws, 0)
	h, err := ws.Run(ctx, func(tx *stm.Tx) error { v.Set(tx, 1); return nil })
	if err != nil {
		t.Fatal(err)
	}
	if h.Status() != stm.Acknowledged || h.Version() != ws.Version() || h.Wait(ctx) != nil {
		t.Fatalf("embedded commit: %v version %d", h.Status(), h.Version())
	}
	called := make(chan *stm.Handle, 1)
	h.OnDone(func(h *stm.Handle) { called <- h })
	<-called

	// A handle for an authority that answers later.
	p := stm.NewHandle()
	if p.Status() != stm.Applied {
		t.Fatal(p.Status())
	}
	select {
	case <-p.Done():
		t.Fatal("done before resolution")
	default:
	}
	p.OnDone(func(h *stm.Handle) { called <- h })
	p.Resolve(0, stm.ErrAborted)
	p.Resolve(9, nil) // only the first verdict counts
	if got := <-called; got.Status() != stm.Aborted || !errors.Is(got.Wait(ctx), stm.ErrAborted) {
		t.Fatalf("got %v", got.Status())
	}
}

func TestObserversCoalesceAndNeverBlockCommits(t *testing.T) {
	ws := stm.NewWorkspace()
	defer ws.Close()
	v := stm.NewVar(ws, 0)
	release := make(chan struct{})
	calls := make(chan stm.Change, 10)
	sub := ws.Subscribe(v, func(c stm.Change) {
		calls <- c
		if c.Commits == 1 {
			<-release // the observer is slow on its first call
		}
	})
	defer sub.Close()
	v.Set(stm.Auto, 1)
	first := <-calls // the observer now blocks until release
	if first.Commits != 1 {
		t.Fatalf("first call covers %d commits", first.Commits)
	}
	for i := 2; i <= 20; i++ {
		v.Set(stm.Auto, i) // must not wait for the observer
	}
	close(release)
	second := <-calls
	if second.Commits != 19 || second.Version != ws.Version() {
		t.Fatalf("second call: %+v, want the 19 later commits coalesced up to version %d", second, ws.Version())
	}
}

func TestObjectAndFieldObservers(t *testing.T) {
	ws := stm.NewWorkspace()
	defer ws.Close()
	name := stm.NewVarField[string](1, "name")
	tags := stm.NewSetField[string](2, "tags")
	o := stm.NewObject(ws, stm.NewClass("Doc", 3, name, tags))
	objc := make(chan stm.Change, 4)
	setc := make(chan stm.Change, 4)
	ws.Subscribe(o, func(c stm.Change) { objc <- c })
	ws.Subscribe(tags.Of(o), func(c stm.Change) { setc <- c })
	if err := ws.Atomically(ctx, func(tx *stm.Tx) error {
		name.Of(o).Set(tx, "n")
		tags.Of(o).AddFast(tx, "go")
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	oc := <-objc
	for len(oc.Fields) < 2 { // the two fields may arrive in one call or two
		oc.Fields = append(oc.Fields, (<-objc).Fields...)
	}
	slices.Sort(oc.Fields)
	if !slices.Equal(oc.Fields, []stm.FieldID{1, 2}) {
		t.Fatalf("object change fields %v", oc.Fields)
	}
	if sc := <-setc; len(sc.Keys) != 1 || sc.Keys[0] != "go" {
		t.Fatalf("set change keys %v", sc.Keys)
	}
}

// TestObserverCommitCounts: Change.Commits counts commits, not the
// fields they changed, and a commit made with SetCommits counts as many.
func TestObserverCommitCounts(t *testing.T) {
	ws := stm.NewWorkspace()
	defer ws.Close()
	a, b := stm.NewVarField[int](1, "a"), stm.NewVarField[int](2, "b")
	o := stm.NewObject(ws, stm.NewClass("Pair", 4, a, b))
	calls := make(chan stm.Change, 8)
	defer ws.Subscribe(o, func(c stm.Change) { calls <- c }).Close()
	both := func(tx *stm.Tx) error { a.Of(o).Set(tx, 1); b.Of(o).Set(tx, 2); return nil }
	if err := ws.Atomically(ctx, both); err != nil {
		t.Fatal(err)
	}
	var got stm.Change
	for len(got.Fields) < 2 { // the two fields may arrive in one call or two
		c := <-calls
		got.Fields = append(got.Fields, c.Fields...)
		got.Commits += c.Commits
	}
	if got.Commits != 1 {
		t.Fatalf("one commit writing two fields counted as %d commits", got.Commits)
	}
	if err := ws.Atomically(ctx, func(tx *stm.Tx) error { tx.SetCommits(5); a.Of(o).Set(tx, 3); return nil }); err != nil {
		t.Fatal(err)
	}
	if c := <-calls; c.Commits != 5 {
		t.Fatalf("a commit made with SetCommits(5) counted as %d", c.Commits)
	}

	// One commit reaching many subscriptions: each counts it once.
	vars := make([]*stm.Var[int], 20)
	varCalls := make(chan stm.Change, len(vars))
	for i := range vars {
		vars[i] = stm.NewVar(ws, 0)
		defer ws.Subscribe(vars[i], func(c stm.Change) { varCalls <- c }).Close()
	}
	if err := ws.Atomically(ctx, func(tx *stm.Tx) error {
		for _, v := range vars {
			v.Set(tx, 1)
		}
		return both(tx)
	}); err != nil {
		t.Fatal(err)
	}
	for range vars {
		if c := <-varCalls; c.Commits != 1 {
			t.Fatalf("a var's observer counted %d commits, want 1", c.Commits)
		}
	}
	got = stm.Change{}
	for len(got.Fields) < 2 {
		c := <-calls
		got.Fields = append(got.Fields, c.Fields...)
		got.Commits += c.Commits
	}
	if got.Commits != 1 {
		t.Fatalf("the record's observer counted %d commits, want 1", got.Commits)
	}
}

func TestListChunkMergeKeepsBothWriters(t *testing.T) {
	ws := stm.NewWorkspace()
	l := stm.NewList[int](ws)
	l.Append(stm.Auto, make([]int, 200)...)
	t1, t2 := ws.Begin(), ws.Begin()
	l.Set(t1, 3, 30) // same chunk, different elements
	l.Set(t2, 4, 40)
	l.Set(t2, 130, 1300)
	for _, tx := range []*stm.Tx{t1, t2} {
		if _, err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	got := get(t, ws, func(tx *stm.Tx) [3]int { return [3]int{l.Get(tx, 3), l.Get(tx, 4), l.Get(tx, 130)} })
	if got != [3]int{30, 40, 1300} {
		t.Fatal(got)
	}
	// A read of element 3 conflicts with a write of it, not of element 5.
	t3 := ws.Begin()
	l.Set(t3, 100, l.Get(t3, 3))
	l.Set(stm.Auto, 5, 1)
	if _, err := t3.Commit(); err != nil {
		t.Fatalf("write to another element conflicted: %v", err)
	}
	t4 := ws.Begin()
	l.Set(t4, 100, l.Get(t4, 3))
	l.Set(stm.Auto, 3, 1)
	var ce *stm.ConflictError
	if _, err := t4.Commit(); !errors.As(err, &ce) || ce.Key != 3 {
		t.Fatalf("got %v, want a conflict on index 3", err)
	}
}

func TestListIndexOutOfRangePanics(t *testing.T) {
	ws := stm.NewWorkspace()
	l := stm.NewList[int](ws)
	l.Append(stm.Auto, 1)
	defer func() {
		if r := recover(); r == nil || !strings.Contains(fmt.Sprint(r), "out of range") {
			t.Fatalf("recovered %v", r)
		}
	}()
	_ = ws.Atomically(ctx, func(tx *stm.Tx) error { l.Get(tx, 1); return nil })
}

func TestMapChurnKeepsWorking(t *testing.T) {
	ws := stm.NewWorkspace()
	m := stm.NewMap[int, int](ws)
	for i := 0; i < 5000; i++ {
		m.PutFast(stm.Auto, i%300, i)
		m.DeleteFast(stm.Auto, (i+150)%300)
	}
	want := map[int]int{}
	for i := 0; i < 5000; i++ {
		want[i%300] = i
		delete(want, (i+150)%300)
	}
	got := map[int]int{}
	if err := ws.View(ctx, func(tx *stm.Tx) error {
		for k, v := range m.All(tx) {
			got[k] = v
		}
		if m.Len(tx) != len(want) {
			t.Errorf("Len %d, want %d", m.Len(tx), len(want))
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("contents differ:\n got %v\nwant %v", got, want)
	}
}

// TestReadersNeverSeeRecycledVersions: writers keep a and b equal while
// readers (snapshot and automatic) check them; version nodes recycled too
// early would show a mismatch or a value from the future.
func TestReadersNeverSeeRecycledVersions(t *testing.T) {
	ws := stm.NewWorkspace()
	a, b := stm.NewVar(ws, 0), stm.NewVar(ws, 0)
	l := stm.NewList[int](ws)
	l.Append(stm.Auto, make([]int, 130)...)
	const writes = 20000
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for w := 0; w < 2; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < writes; i++ {
				_ = ws.Atomically(ctx, func(tx *stm.Tx) error {
					n := a.Get(tx) + 1
					a.Set(tx, n)
					b.Set(tx, n)
					l.Set(tx, 0, n)
					l.Set(tx, 129, n)
					return nil
				})
			}
		}()
	}
	errc := make(chan error, 4)
	for r := 0; r < 2; r++ {
		go func() {
			for {
				select {
				case <-stop:
					errc <- nil
					return
				default:
				}
				var x, y, p, q int
				_ = ws.View(ctx, func(tx *stm.Tx) error {
					x = a.Get(tx)
					runtime.Gosched()
					y = b.Get(tx)
					p, q = l.Get(tx, 0), l.Get(tx, 129)
					return nil
				})
				if x != y || p != q || x != p {
					errc <- fmt.Errorf("snapshot saw a=%d b=%d l[0]=%d l[129]=%d", x, y, p, q)
					return
				}
				if z, w := a.Get(stm.Auto), b.Get(stm.Auto); z > w+2*writes || z < 0 {
					errc <- fmt.Errorf("automatic read saw %d", z)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(stop)
	for r := 0; r < 2; r++ {
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
	}
	if got := a.Get(stm.Auto); got != 2*writes {
		t.Fatalf("a=%d, want %d", got, 2*writes)
	}
}

// TestTransfersKeepTotal moves money between a few hot accounts from
// several goroutines: a commit that validated a read while another commit
// was between locking and installing that account would lose an update and
// change the total.
func TestTransfersKeepTotal(t *testing.T) {
	ws := stm.NewWorkspace()
	const accounts, start = 4, 1000
	acct := make([]*stm.Var[int], accounts)
	for i := range acct {
		acct[i] = stm.NewVar(ws, start)
	}
	n := 20000
	if testing.Short() {
		n = 2000
	}
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < n; i++ {
				from, to := (g+i)%accounts, (g+2*i+1)%accounts
				if from == to {
					continue
				}
				_ = ws.Atomically(ctx, func(tx *stm.Tx) error {
					acct[from].Set(tx, acct[from].Get(tx)-1)
					acct[to].Set(tx, acct[to].Get(tx)+1)
					return nil
				})
			}
		}()
	}
	wg.Wait()
	total := get(t, ws, func(tx *stm.Tx) int {
		s := 0
		for _, a := range acct {
			s += a.Get(tx)
		}
		return s
	})
	if total != accounts*start {
		t.Fatalf("total %d, want %d: an update was lost", total, accounts*start)
	}
}

// TestWriteSkewSerializable: one goroutine sets a = b+1, another b = a+1;
// each reads what the other writes. Replayed in commit-version order, every
// transaction must have read the value the other variable had just before
// it (a read validated while the other commit was between lock and install
// would not be).
func TestWriteSkewSerializable(t *testing.T) {
	ws := stm.NewWorkspace()
	a, b := stm.NewVar(ws, 0), stm.NewVar(ws, 0)
	type rec struct {
		ver     uint64
		writesA bool
		read    int
	}
	n := 20000
	if testing.Short() {
		n = 2000
	}
	recs := make([][]rec, 2)
	var wg sync.WaitGroup
	for g := 0; g < 2; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			dst, src := a, b
			if g == 1 {
				dst, src = b, a
			}
			for i := 0; i < n; i++ {
				var read int
				h, err := ws.Run(ctx, func(tx *stm.Tx) error {
					read = src.Get(tx)
					dst.Set(tx, read+1)
					return nil
				})
				if err != nil {
					t.Error(err)
					return
				}
				recs[g] = append(recs[g], rec{h.Version(), g == 0, read})
			}
		}()
	}
	wg.Wait()
	all := append(recs[0], recs[1]...)
	slices.SortFunc(all, func(x, y rec) int { return int(x.ver) - int(y.ver) })
	var va, vb int
	for _, r := range all {
		if r.writesA {
			if r.read != vb {
				t.Fatalf("version %d: a = b+1 read b=%d, serial order says %d", r.ver, r.read, vb)
			}
			va = r.read + 1
		} else {
			if r.read != va {
				t.Fatalf("version %d: b = a+1 read a=%d, serial order says %d", r.ver, r.read, va)
			}
			vb = r.read + 1
		}
	}
}

func TestIDsCarryTheReplica(t *testing.T) {
	ws := stm.NewWorkspace(stm.WithReplica(7))
	seen := map[stm.ID]bool{}
	class := stm.NewClass("P", 1, stm.NewVarField[int](1, "x"))
	for _, id := range []stm.ID{stm.NewVar(ws, 0).ID(), stm.NewCounter(ws).ID(),
		stm.NewMap[int, int](ws).ID(), stm.NewSet[int](ws).ID(), stm.NewList[int](ws).ID(),
		stm.NewObject(ws, class).ID()} {
		if id.Replica != 7 || id.Seq == 0 || seen[id] {
			t.Fatalf("id %v: want replica 7, a sequence, and no repeat", id)
		}
		seen[id] = true
	}
}

func TestIterationIsInKeyOrder(t *testing.T) {
	ws := stm.NewWorkspace()
	m := stm.NewMap[string, int](ws)
	s := stm.NewSet[int](ws)
	for i, k := range []string{"pear", "apple", "fig", "kiwi", "date"} {
		m.PutFast(stm.Auto, k, i)
		s.AddFast(stm.Auto, (i*7)%5-2)
	}
	var keys []string
	var elems []int
	_ = ws.Atomically(ctx, func(tx *stm.Tx) error {
		keys, elems = nil, nil
		m.PutFast(tx, "banana", 9) // pending writes are merged in order too
		for k := range m.All(tx) {
			keys = append(keys, k)
		}
		for e := range s.All(tx) {
			elems = append(elems, e)
		}
		return nil
	})
	if !slices.IsSorted(keys) || len(keys) != 6 || !slices.IsSorted(elems) || len(elems) != 5 {
		t.Fatalf("keys %v elems %v: want sorted", keys, elems)
	}
}

// TestManyCellsRecycled: transfers among more variables than a
// transaction state keeps recycled versions for (spares), by two writers,
// while readers check that every snapshot holds the same total: versions
// recycled by one state, taken from it by another chain or handed back to
// the shared list, are never reused while a snapshot can still read them.
func TestManyCellsRecycled(t *testing.T) {
	ws := stm.NewWorkspace()
	const n, total = 100, 100 * 1000
	vars := make([]*stm.Var[int], n)
	for i := range vars {
		vars[i] = stm.NewVar(ws, total/n)
	}
	var wg sync.WaitGroup
	for w := range 2 {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(w), 7))
			for range 20000 {
				k := 1 + r.IntN(12)
				from := r.Perm(n)[:k]
				if err := ws.Atomically(ctx, func(tx *stm.Tx) error {
					for j := range len(from) - 1 {
						a, b := vars[from[j]], vars[from[j+1]]
						a.Set(tx, a.Get(tx)-1)
						b.Set(tx, b.Get(tx)+1)
					}
					return nil
				}); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	stop := make(chan struct{})
	errc := make(chan error, 1)
	go func() {
		defer close(errc)
		for {
			select {
			case <-stop:
				return
			default:
			}
			sum := 0
			_ = ws.View(ctx, func(tx *stm.Tx) error {
				sum = 0
				for i, v := range vars {
					sum += v.Get(tx)
					if i%25 == 0 {
						runtime.Gosched()
					}
				}
				return nil
			})
			if sum != total {
				errc <- fmt.Errorf("a snapshot summed to %d, want %d", sum, total)
				return
			}
		}
	}()
	wg.Wait()
	close(stop)
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}

// TestEndInsideFn: fn may not commit, abort or wait on the transaction
// Atomically runs it in (Atomically does): Commit and AwaitChange return
// ErrEndInFn and leave the transaction as it was, Abort panics with it
// after rolling back, and nothing is committed behind Atomically's back.
func TestEndInsideFn(t *testing.T) {
	ctx := context.Background()
	ws := stm.NewWorkspace()
	v := stm.NewVar(ws, 0)
	err := ws.Atomically(ctx, func(tx *stm.Tx) error {
		v.Set(tx, 1)
		if _, err := tx.Commit(); !errors.Is(err, stm.ErrEndInFn) {
			t.Errorf("Commit inside fn: %v, want ErrEndInFn", err)
		}
		if err := tx.AwaitChange(ctx); !errors.Is(err, stm.ErrEndInFn) {
			t.Errorf("AwaitChange inside fn: %v, want ErrEndInFn", err)
		}
		if got := v.Get(tx); got != 1 {
			t.Errorf("the transaction lost its write: %d", got)
		}
		return errors.New("abandon")
	})
	if err == nil || err.Error() != "abandon" {
		t.Fatalf("Atomically: %v, want fn's error", err)
	}
	if got := v.Get(stm.Auto); got != 0 {
		t.Fatalf("a refused Commit inside fn committed: %d", got)
	}
	func() {
		defer func() {
			if r := recover(); r != stm.ErrEndInFn {
				t.Errorf("Abort inside fn: recovered %v, want ErrEndInFn", r)
			}
		}()
		_ = ws.Atomically(ctx, func(tx *stm.Tx) error { v.Set(tx, 2); tx.Abort(); return nil })
	}()
	if got := v.Get(stm.Auto); got != 0 {
		t.Fatalf("state changed by an Abort inside fn: %d", got)
	}
	// Outside a runner, Commit works as ever.
	tx := ws.Begin()
	v.Set(tx, 3)
	if _, err := tx.Commit(); err != nil || v.Get(stm.Auto) != 3 {
		t.Fatalf("Commit of Begin's transaction: %v, %d", err, v.Get(stm.Auto))
	}
}

// TestOwnErrorAfterNestedRetry: fn's own error wins over a Retry an
// alternative it ran called and fn did not pass on: Atomically returns it
// rather than waiting.
func TestOwnErrorAfterNestedRetry(t *testing.T) {
	ws := stm.NewWorkspace()
	seats := stm.NewVar(ws, 0)
	errNoSeat := errors.New("no seat")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second) // a wait would never end
	defer cancel()
	err := ws.Atomically(ctx, func(tx *stm.Tx) error {
		err := tx.Nested(func(tx *stm.Tx) error {
			if seats.Get(tx) == 0 {
				return tx.Retry()
			}
			seats.Set(tx, seats.Get(tx)-1)
			return nil
		})
		if errors.Is(err, stm.ErrRetry) {
			return errNoSeat
		}
		return err
	})
	if err != errNoSeat {
		t.Fatalf("Atomically: %v, want fn's own error", err)
	}
}

// A handle left in doubt is final, like a verdict: Done is closed,
// OnDone runs, and a later Resolve changes nothing.
func TestHandleInDoubt(t *testing.T) {
	h := stm.NewHandle()
	var called stm.Status
	h.OnDone(func(h *stm.Handle) { called = h.Status() })
	why := errors.New("session ended")
	h.Abandon(why)
	h.Resolve(7, nil)
	<-h.Done()
	if h.Status() != stm.InDoubt || h.Err() != why || h.Version() != 0 || called != stm.InDoubt {
		t.Fatalf("status %v, err %v, version %d, OnDone saw %v", h.Status(), h.Err(), h.Version(), called)
	}
	if err := h.Wait(context.Background()); err != why {
		t.Fatalf("Wait: %v", err)
	}
}

// A commit guard runs before every commit that wrote something and can
// refuse it: the error comes back untouched, fn is not run again, and
// nothing is installed. Read-only transactions do not reach it.
func TestCommitGuard(t *testing.T) {
	refused := errors.New("refused")
	var calls int
	var guarded *stm.Var[int]
	ws := stm.NewWorkspace(stm.WithCommitGuard(func(tx *stm.Tx) error {
		calls++
		var err error
		tx.Targets(func(o stm.Observable, wrote bool) {
			if wrote && stm.Same(o, guarded) {
				err = refused
			}
		})
		return err
	}))
	guarded, free := stm.NewVar(ws, 1), stm.NewVar(ws, 1)
	ctx := context.Background()
	runs := 0
	err := ws.Atomically(ctx, func(tx *stm.Tx) error {
		runs++
		free.Set(tx, 2)
		guarded.Set(tx, free.Get(tx))
		return nil
	})
	if err != refused || runs != 1 {
		t.Fatalf("Atomically: %v after %d runs, want the guard's error after 1", err, runs)
	}
	if err := ws.Atomically(ctx, func(tx *stm.Tx) error { free.Set(tx, guarded.Get(tx)+2); return nil }); err != nil {
		t.Fatal(err)
	}
	_ = ws.View(ctx, func(tx *stm.Tx) error { _ = guarded.Get(tx); return nil })
	if calls != 2 {
		t.Fatalf("guard called %d times, want 2 (the two commits that wrote)", calls)
	}
	if g, f := guarded.Get(stm.Auto), free.Get(stm.Auto); g != 1 || f != 3 {
		t.Fatalf("guarded %d, free %d: want 1 and 3", g, f)
	}
}
