package storetest

import (
	"errors"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/weft-stm/weft/server"
	"github.com/weft-stm/weft/wire"
)

// Backend is one store under test, empty when made.
type Backend struct {
	// Open opens the store. The suite opens it again only after closing
	// (or crashing) the one it opened before, and expects to find what
	// that one made durable.
	Open func() (server.Store, error)
	// Crash, if not nil, simulates a power loss of the machine under the
	// open store s: s is gone afterwards (Crash closes or abandons it,
	// and the suite does not use it again) and the next Open must find
	// every change whose wait returned nil, and may find some others.
	Crash func(s server.Store) error
}

// Run runs the suite; newBackend makes a fresh, empty store for each case.
func Run(t *testing.T, newBackend func(t *testing.T) Backend) {
	cases := []struct {
		name string
		fn   func(t *testing.T, b Backend)
	}{
		{"Empty", testEmpty},
		{"AppendReopen", testAppendReopen},
		{"ManyShares", testManyShares},
		{"Concurrent", testConcurrent},
		{"Checkpoint", testCheckpoint},
		{"CheckpointReplaced", testCheckpointReplaced},
		{"CheckpointOnly", testCheckpointOnly},
		{"CheckpointOverQueued", testCheckpointOverQueued},
		{"EveryKind", testEveryKind},
		{"Large", testLarge},
		{"LoadError", testLoadError},
		{"Closed", testClosed},
		{"Crash", testCrash},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { c.fn(t, newBackend(t)) })
	}
}

// A loaded is what Load gave for one share.
type loaded struct {
	Name    string
	Version uint64
	Objects []wire.Object
	Changes []wire.Change
}

func open(t *testing.T, b Backend) server.Store {
	t.Helper()
	s, err := b.Open()
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return s
}

func closeStore(t *testing.T, s server.Store) {
	t.Helper()
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

// reopen closes s and opens the store again.
func reopen(t *testing.T, b Backend, s server.Store) server.Store {
	t.Helper()
	closeStore(t, s)
	return open(t, b)
}

func load(t *testing.T, s server.Store) []loaded {
	t.Helper()
	var out []loaded
	err := s.Load(func(name string, version uint64, objects []wire.Object, changes []wire.Change) error {
		out = append(out, loaded{name, version, objects, changes})
		return nil
	})
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return out
}

// appendWait appends ch and waits for it.
func appendWait(t *testing.T, s server.Store, share string, ch wire.Change) {
	t.Helper()
	wait, err := s.Append(share, ch)
	if err != nil {
		t.Fatalf("Append(%q, %d): %v", share, ch.Version, err)
	}
	if err := wait(); err != nil {
		t.Fatalf("wait for Append(%q, %d): %v", share, ch.Version, err)
	}
}

// change makes a small change of share at version v, different for every
// share and version.
func change(share string, v uint64) wire.Change {
	return wire.Change{
		Version: v,
		Origin:  wire.CommitID{Replica: uint64(len(share)) + 1, Seq: v * 3},
		Writes: []wire.Op{
			{Kind: wire.OpCounterAdd, Object: wire.ObjectID{Replica: 1, Seq: 1}, Delta: int64(v)},
			{Kind: wire.OpVarSet, Object: wire.ObjectID{Replica: 1, Seq: 2}, Value: wire.String(fmt.Sprintf("%s@%d", share, v))},
		},
	}
}

func changes(share string, from, to uint64) []wire.Change {
	var out []wire.Change
	for v := from; v <= to; v++ {
		out = append(out, change(share, v))
	}
	return out
}

func appendRange(t *testing.T, s server.Store, share string, from, to uint64) {
	t.Helper()
	for v := from; v <= to; v++ {
		appendWait(t, s, share, change(share, v))
	}
}

// objects makes n small objects of mixed kinds, tagged with tag.
func objects(n int, tag string) []wire.Object {
	var out []wire.Object
	for i := range n {
		id := wire.ObjectID{Replica: 2, Seq: uint64(i + 1)}
		switch i % 3 {
		case 0:
			out = append(out, wire.Object{ID: id, Class: 7, Kind: wire.ObjectVar, Value: wire.String(fmt.Sprintf("%s-%d", tag, i))})
		case 1:
			out = append(out, wire.Object{ID: id, Kind: wire.ObjectCounter, Counter: int64(i)})
		default:
			out = append(out, wire.Object{ID: id, Class: 3, Kind: wire.ObjectRecord, Fields: []wire.Field{{ID: 1, Value: wire.Int(int64(i))}, {ID: 2, Value: wire.String(tag)}}})
		}
	}
	return out
}

func check(t *testing.T, what string, got, want []loaded) {
	t.Helper()
	if reflect.DeepEqual(got, want) {
		return
	}
	t.Errorf("%s: Load gave %d shares, want %d", what, len(got), len(want))
	for i := range max(len(got), len(want)) {
		switch {
		case i >= len(got):
			t.Errorf("  missing share %q", want[i].Name)
		case i >= len(want):
			t.Errorf("  extra share %q", got[i].Name)
		case !reflect.DeepEqual(got[i], want[i]):
			g, w := got[i], want[i]
			t.Errorf("  share %q: got version %d, %d objects, %d changes %s; want %q version %d, %d objects, %d changes %s",
				g.Name, g.Version, len(g.Objects), len(g.Changes), versions(g.Changes), w.Name, w.Version, len(w.Objects), len(w.Changes), versions(w.Changes))
			for j := range min(len(g.Objects), len(w.Objects)) {
				if !reflect.DeepEqual(g.Objects[j], w.Objects[j]) {
					t.Errorf("    object %d: got %+v, want %+v", j, short(g.Objects[j]), short(w.Objects[j]))
					break
				}
			}
			for j := range min(len(g.Changes), len(w.Changes)) {
				if !reflect.DeepEqual(g.Changes[j], w.Changes[j]) {
					t.Errorf("    change %d: got %+v, want %+v", j, g.Changes[j], w.Changes[j])
					break
				}
			}
		}
	}
}

func short(x any) string {
	s := fmt.Sprintf("%+v", x)
	if len(s) > 300 {
		s = s[:300] + "..."
	}
	return s
}

func versions(chs []wire.Change) string {
	if len(chs) == 0 {
		return "[]"
	}
	return fmt.Sprintf("[%d..%d]", chs[0].Version, chs[len(chs)-1].Version)
}

func testEmpty(t *testing.T, b Backend) {
	s := open(t, b)
	check(t, "new store", load(t, s), nil)
	s = reopen(t, b, s)
	check(t, "reopened", load(t, s), nil)
	closeStore(t, s)
}

func testAppendReopen(t *testing.T, b Backend) {
	s := open(t, b)
	appendRange(t, s, "accounts", 1, 50)
	want := []loaded{{Name: "accounts", Changes: changes("accounts", 1, 50)}}
	check(t, "open store", load(t, s), want)
	s = reopen(t, b, s)
	check(t, "reopened", load(t, s), want)
	// And it goes on where it stopped.
	appendRange(t, s, "accounts", 51, 60)
	s = reopen(t, b, s)
	check(t, "appended after reopen", load(t, s), []loaded{{Name: "accounts", Changes: changes("accounts", 1, 60)}})
	closeStore(t, s)
}

func testManyShares(t *testing.T, b Backend) {
	// Names that are prefixes of one another, hold separators, NUL bytes
	// and non-ASCII: none may bleed into another share.
	names := []string{"b", "a", "a\x00", "a\x00b", "ab", "a/b", "a:b", "é", "z\x00\x01", " ", "c:a", "A"}
	s := open(t, b)
	for i, n := range names {
		appendRange(t, s, n, 1, uint64(i+1))
	}
	sorted := slices.Clone(names)
	slices.Sort(sorted)
	var want []loaded
	for _, n := range sorted {
		i := slices.Index(names, n)
		want = append(want, loaded{Name: n, Changes: changes(n, 1, uint64(i+1))})
	}
	check(t, "open store", load(t, s), want)
	s = reopen(t, b, s)
	check(t, "reopened", load(t, s), want)
	closeStore(t, s)
}

// testConcurrent appends as the server does: under the share's lock, with
// the wait outside it, from many goroutines on few shares.
func testConcurrent(t *testing.T, b Backend) {
	const shares, goroutines, each = 6, 24, 20
	s := open(t, b)
	type shareState struct {
		mu   sync.Mutex
		next uint64
	}
	states := make([]shareState, shares)
	name := func(i int) string { return fmt.Sprintf("share-%02d", i) }
	var wg sync.WaitGroup
	errs := make(chan error, goroutines)
	for g := range goroutines {
		wg.Go(func() {
			for k := range each {
				i := (g + k) % shares
				st := &states[i]
				st.mu.Lock()
				st.next++
				wait, err := s.Append(name(i), change(name(i), st.next))
				st.mu.Unlock()
				if err == nil {
					err = wait()
				}
				if err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("concurrent Append: %v", err)
	}
	var want []loaded
	for i := range shares {
		want = append(want, loaded{Name: name(i), Changes: changes(name(i), 1, states[i].next)})
	}
	check(t, "open store", load(t, s), want)
	s = reopen(t, b, s)
	check(t, "reopened", load(t, s), want)
	closeStore(t, s)
}

func testCheckpoint(t *testing.T, b Backend) {
	s := open(t, b)
	appendRange(t, s, "s", 1, 10)
	appendRange(t, s, "t", 1, 3)
	objs := objects(20, "cp6")
	if err := s.Checkpoint("s", 6, objs); err != nil {
		t.Fatalf("Checkpoint: %v", err)
	}
	appendRange(t, s, "s", 11, 12)
	want := []loaded{
		{Name: "s", Version: 6, Objects: objs, Changes: changes("s", 7, 12)},
		{Name: "t", Changes: changes("t", 1, 3)},
	}
	check(t, "open store", load(t, s), want)
	s = reopen(t, b, s)
	check(t, "reopened", load(t, s), want)
	// A checkpoint at the last version leaves no changes; the next one
	// follows it.
	objs = objects(5, "cp12")
	if err := s.Checkpoint("s", 12, objs); err != nil {
		t.Fatalf("Checkpoint: %v", err)
	}
	s = reopen(t, b, s)
	want[0] = loaded{Name: "s", Version: 12, Objects: objs}
	check(t, "checkpoint at the last version", load(t, s), want)
	appendRange(t, s, "s", 13, 13)
	s = reopen(t, b, s)
	want[0].Changes = changes("s", 13, 13)
	check(t, "change after it", load(t, s), want)
	closeStore(t, s)
}

// testCheckpointOverQueued: a checkpoint taken while changes queued
// before it are not yet durable (a server under steady load) makes them
// durable with it: their waits return nil, and after a crash the store
// holds the checkpoint and what followed it.
func testCheckpointOverQueued(t *testing.T, b Backend) {
	s := open(t, b)
	appendRange(t, s, "s", 1, 3)
	var waits []func() error
	for v := uint64(4); v <= 8; v++ {
		w, err := s.Append("s", change("s", v))
		if err != nil {
			t.Fatalf("Append(%d): %v", v, err)
		}
		waits = append(waits, w)
	}
	objs := objects(7, "cp6")
	if err := s.Checkpoint("s", 6, objs); err != nil {
		t.Fatalf("Checkpoint over queued changes: %v", err)
	}
	for i, w := range waits {
		if err := w(); err != nil {
			t.Fatalf("wait for change %d, queued before the checkpoint: %v", i+4, err)
		}
	}
	want := []loaded{{Name: "s", Version: 6, Objects: objs, Changes: changes("s", 7, 8)}}
	check(t, "open store", load(t, s), want)
	if b.Crash != nil {
		if err := b.Crash(s); err != nil {
			t.Fatalf("Crash: %v", err)
		}
		s = open(t, b)
		check(t, "after a crash", load(t, s), want)
	} else {
		s = reopen(t, b, s)
		check(t, "reopened", load(t, s), want)
	}
	closeStore(t, s)
}

func testCheckpointReplaced(t *testing.T, b Backend) {
	s := open(t, b)
	appendRange(t, s, "s", 1, 8)
	// The first checkpoint is big (several chunks in a store that splits
	// them), the second small: nothing of the first may remain.
	if err := s.Checkpoint("s", 3, largeObjects(3, 1<<20)); err != nil {
		t.Fatalf("Checkpoint 3: %v", err)
	}
	second := objects(4, "cp8")
	if err := s.Checkpoint("s", 8, second); err != nil {
		t.Fatalf("Checkpoint 8: %v", err)
	}
	appendRange(t, s, "s", 9, 9)
	want := []loaded{{Name: "s", Version: 8, Objects: second, Changes: changes("s", 9, 9)}}
	check(t, "open store", load(t, s), want)
	s = reopen(t, b, s)
	check(t, "reopened", load(t, s), want)
	closeStore(t, s)
}

func testCheckpointOnly(t *testing.T, b Backend) {
	s := open(t, b)
	objs := objects(3, "only")
	if err := s.Checkpoint("fresh", 0, objs); err != nil {
		t.Fatalf("Checkpoint: %v", err)
	}
	if err := s.Checkpoint("empty", 5, nil); err != nil {
		t.Fatalf("Checkpoint: %v", err)
	}
	want := []loaded{{Name: "empty", Version: 5}, {Name: "fresh", Objects: objs}}
	check(t, "open store", load(t, s), want)
	s = reopen(t, b, s)
	check(t, "reopened", load(t, s), want)
	closeStore(t, s)
}

// everyValue holds a value of every kind, with edge cases.
func everyValue() []wire.Value {
	return []wire.Value{
		wire.Null(), wire.Bool(false), wire.Bool(true),
		wire.Int(0), wire.Int(-1), wire.Int(math.MinInt64), wire.Int(math.MaxInt64),
		wire.Uint(0), wire.Uint(math.MaxUint64),
		wire.Float(0), wire.Float(math.Copysign(0, -1)), wire.Float(math.Inf(-1)), wire.Float(math.NaN()), wire.Float(1.5e-300),
		wire.String(""), wire.String("héllo, 世界"), wire.Bytes(nil), wire.Bytes([]byte{0, 0xff, 0x80}),
		wire.Ref(wire.ObjectID{}), wire.Ref(wire.ObjectID{Replica: math.MaxUint64, Seq: 1}),
	}
}

func testEveryKind(t *testing.T, b Backend) {
	vals := everyValue()
	id := func(n uint64) wire.ObjectID { return wire.ObjectID{Replica: 9, Seq: n} }
	var fields []wire.Field
	var entries []wire.Entry
	for i, v := range vals {
		fields = append(fields, wire.Field{ID: uint32(i), Value: v})
		entries = append(entries, wire.Entry{Key: wire.Int(int64(i)), Value: v})
	}
	ch := wire.Change{
		Version: 1,
		Origin:  wire.CommitID{Replica: math.MaxUint64, Seq: math.MaxUint64},
		Writes: []wire.Op{
			{Kind: wire.OpCreate, Object: id(1), Class: math.MaxUint32, ObjectKind: wire.ObjectRecord, Fields: fields},
			{Kind: wire.OpCreate, Object: id(2), Class: 1, ObjectKind: wire.ObjectMap},
			{Kind: wire.OpSetField, Object: id(1), Field: 3, Value: wire.Bytes([]byte("x"))},
			{Kind: wire.OpVarSet, Object: id(3), Value: wire.Float(-2.5)},
			{Kind: wire.OpCounterAdd, Object: id(4), Delta: math.MinInt64},
			{Kind: wire.OpMapPut, Object: id(2), Key: wire.String("k"), Value: wire.Ref(id(1))},
			{Kind: wire.OpMapDelete, Object: id(2), Key: wire.Uint(7)},
			{Kind: wire.OpSetAdd, Object: id(5), Key: wire.Bool(true)},
			{Kind: wire.OpSetRemove, Object: id(5), Key: wire.Null()},
			{Kind: wire.OpListSet, Object: id(6), Index: math.MaxUint64, Value: wire.Int(-7)},
			{Kind: wire.OpListAppend, Object: id(6), Values: vals},
			{Kind: wire.OpRemove, Object: id(7)},
		},
	}
	empty := wire.Change{Version: 2} // no writes, zero origin
	objs := []wire.Object{
		{ID: id(1), Class: 4, Kind: wire.ObjectRecord, Fields: fields},
		{ID: id(2), Class: 1, Kind: wire.ObjectMap, Entries: entries},
		{ID: id(3), Kind: wire.ObjectVar, Value: wire.Float(math.NaN())},
		{ID: id(4), Kind: wire.ObjectCounter, Counter: math.MinInt64},
		{ID: id(5), Kind: wire.ObjectSet, Elems: vals},
		{ID: id(6), Kind: wire.ObjectList, Elems: vals},
		{ID: id(8), Kind: wire.ObjectRecord},
		{ID: id(9), Kind: wire.ObjectVar},
	}
	s := open(t, b)
	appendWait(t, s, "kinds", ch)
	appendWait(t, s, "kinds", empty)
	if err := s.Checkpoint("objects", 1, objs); err != nil {
		t.Fatalf("Checkpoint: %v", err)
	}
	want := []loaded{
		{Name: "kinds", Changes: []wire.Change{ch, empty}},
		{Name: "objects", Version: 1, Objects: objs},
	}
	check(t, "open store", load(t, s), want)
	s = reopen(t, b, s)
	check(t, "reopened", load(t, s), want)
	closeStore(t, s)
}

// largeObjects makes n objects of about size bytes each.
func largeObjects(n, size int) []wire.Object {
	var out []wire.Object
	for i := range n {
		blob := []byte(strings.Repeat(string(rune('a'+i%26)), size))
		out = append(out, wire.Object{ID: wire.ObjectID{Replica: 3, Seq: uint64(i + 1)}, Kind: wire.ObjectVar, Value: wire.Bytes(blob)})
	}
	return out
}

func testLarge(t *testing.T, b Backend) {
	// MB-size values, an object of many elements, and many small objects
	// (more than fit one chunk of a store that splits them).
	objs := largeObjects(2, 3<<20)
	elems := make([]wire.Value, 100_000)
	for i := range elems {
		elems[i] = wire.Int(int64(i))
	}
	objs = append(objs, wire.Object{ID: wire.ObjectID{Replica: 4, Seq: 1}, Kind: wire.ObjectList, Elems: elems})
	objs = append(objs, objects(30_000, "many")...)
	big := change("big", 1)
	big.Writes = append(big.Writes, wire.Op{Kind: wire.OpVarSet, Object: wire.ObjectID{Replica: 5, Seq: 1}, Value: wire.String(strings.Repeat("x", 2<<20))})

	s := open(t, b)
	if err := s.Checkpoint("large", 10, objs); err != nil {
		t.Fatalf("Checkpoint: %v", err)
	}
	appendWait(t, s, "big", big)
	want := []loaded{
		{Name: "big", Changes: []wire.Change{big}},
		{Name: "large", Version: 10, Objects: objs},
	}
	check(t, "open store", load(t, s), want)
	s = reopen(t, b, s)
	check(t, "reopened", load(t, s), want)
	closeStore(t, s)
}

func testLoadError(t *testing.T, b Backend) {
	s := open(t, b)
	appendRange(t, s, "a", 1, 1)
	appendRange(t, s, "b", 1, 1)
	stop := errors.New("stop here")
	calls := 0
	err := s.Load(func(string, uint64, []wire.Object, []wire.Change) error {
		calls++
		return stop
	})
	if !errors.Is(err, stop) || calls != 1 {
		t.Errorf("Load with a failing callback: %v after %d calls, want %v after 1", err, calls, stop)
	}
	closeStore(t, s)
}

func testClosed(t *testing.T, b Backend) {
	s := open(t, b)
	appendRange(t, s, "a", 1, 1)
	closeStore(t, s)
	if _, err := s.Append("a", change("a", 2)); err == nil {
		t.Error("Append after Close: no error")
	}
	if err := s.Checkpoint("a", 1, nil); err == nil {
		t.Error("Checkpoint after Close: no error")
	}
	if err := s.Load(func(string, uint64, []wire.Object, []wire.Change) error { return nil }); err == nil {
		t.Error("Load after Close: no error")
	}
	// Nothing was lost by the calls that failed.
	s = open(t, b)
	check(t, "reopened", load(t, s), []loaded{{Name: "a", Changes: changes("a", 1, 1)}})
	closeStore(t, s)
}

// testCrash crashes the store several times, each time after changes that
// were waited for and changes that were not, on several shares appended in
// an interleaved order.
func testCrash(t *testing.T, b Backend) {
	if b.Crash == nil {
		t.Skip("the store cannot simulate a crash")
	}
	const shares = 3
	name := func(i int) string { return fmt.Sprintf("crash-%d", i) }
	var next [shares]uint64      // per share, the last version found after the last crash
	var cpVersion [shares]uint64 // per share, its checkpoint
	var cpObjects [shares][]wire.Object
	s := open(t, b)
	for round := range 3 {
		// order is every Append of the round, in call order.
		type appended struct {
			share int
			ver   uint64
		}
		var order []appended
		var durable [shares]uint64 // waited for
		var waits []func() error
		push := func(i int) {
			next[i]++
			w, err := s.Append(name(i), change(name(i), next[i]))
			if err != nil {
				t.Fatalf("round %d: Append: %v", round, err)
			}
			order = append(order, appended{i, next[i]})
			waits = append(waits, w)
		}
		for k := range 30 {
			push(k % shares)
		}
		for _, w := range waits {
			if err := w(); err != nil {
				t.Fatalf("round %d: wait: %v", round, err)
			}
		}
		durable = next
		// A checkpoint of share 0 at its durable version: durable too.
		cpVersion[0], cpObjects[0] = next[0], objects(10+round, fmt.Sprint("round", round))
		if err := s.Checkpoint(name(0), cpVersion[0], cpObjects[0]); err != nil {
			t.Fatalf("round %d: Checkpoint: %v", round, err)
		}
		mark := len(order)
		// Changes never waited for: they may or may not survive.
		for k := range 40 {
			push((k + round) % shares)
		}
		if err := b.Crash(s); err != nil {
			t.Fatalf("round %d: Crash: %v", round, err)
		}
		s = open(t, b)
		got := load(t, s)
		found := map[string]loaded{}
		for _, l := range got {
			found[l.Name] = l
		}
		var survived [shares]uint64
		for i := range shares {
			l := found[name(i)]
			if l.Version != cpVersion[i] || !reflect.DeepEqual(l.Objects, cpObjects[i]) {
				t.Fatalf("round %d: share %q: checkpoint at %d (%d objects), want at %d (%d objects)", round, name(i), l.Version, len(l.Objects), cpVersion[i], len(cpObjects[i]))
			}
			last := cpVersion[i] + uint64(len(l.Changes))
			if last < durable[i] || last > next[i] {
				t.Fatalf("round %d: share %q: changes up to %d survived; want at least %d (waited for), at most %d (appended)", round, name(i), last, durable[i], next[i])
			}
			if !reflect.DeepEqual(l.Changes, changes(name(i), cpVersion[i]+1, last)) {
				t.Fatalf("round %d: share %q: changes %s differ from those appended", round, name(i), versions(l.Changes))
			}
			survived[i] = last
		}
		// What survived is a prefix of the Appends in call order: once one
		// is lost, every later one is.
		lost, kept := -1, 0
		for k, a := range order[mark:] {
			in := a.ver <= survived[a.share]
			if in {
				kept++
			}
			if !in && lost < 0 {
				lost = mark + k
			}
			if in && lost >= 0 {
				t.Fatalf("round %d: Append %d (%q version %d) survived the crash but Append %d (%q version %d), made before it, did not",
					round, mark+k, name(a.share), a.ver, lost, name(order[lost].share), order[lost].ver)
			}
		}
		t.Logf("round %d: %d of %d changes not waited for survived", round, kept, len(order)-mark)
		next = survived
	}
	closeStore(t, s)
}
