package check

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"testing"
	"time"
)

// Helpers to build histories by hand.

func id(n uint64) TxnID { return TxnID{Replica: 1, Seq: n} }

func app(k string, v uint64) Op { return Op{Kind: Append, Key: k, Value: v} }
func wri(k string, v uint64) Op { return Op{Kind: Write, Key: k, Value: v} }
func rl(k string, vs ...uint64) Op {
	return Op{Kind: ReadList, Key: k, List: append([]uint64{}, vs...)}
}
func rr(k string, v uint64) Op { return Op{Kind: ReadReg, Key: k, Value: v} }

// ok is an acknowledged transaction without a version: hand-built cycle
// tests use it so that the version-order check does not add findings of
// its own.
func ok(n uint64, ops ...Op) Txn { return Txn{ID: id(n), Outcome: Acknowledged, Ops: ops} }
func acked(n, version uint64, ops ...Op) Txn {
	return Txn{ID: id(n), Outcome: Acknowledged, Version: version, Ops: ops}
}
func aborted(n uint64, ops ...Op) Txn { return Txn{ID: id(n), Outcome: Aborted, Ops: ops} }
func unknown(n uint64, ops ...Op) Txn { return Txn{ID: id(n), Outcome: Unknown, Ops: ops} }
func final(n uint64, ops ...Op) Txn   { return Txn{ID: id(n), Final: true, Ops: ops} }

func kinds(r Result) []Kind {
	var ks []Kind
	for _, a := range r.Anomalies {
		ks = append(ks, a.Kind)
	}
	return ks
}

func dump(r Result) string {
	s := ""
	for _, a := range r.Anomalies {
		s += fmt.Sprintf("\n  %s %v: %s", a.Kind, a.Txns, a.Explanation)
	}
	return s
}

// expectOnly checks that h yields exactly one anomaly, of kind k, naming
// the transactions txns (in any order).
func expectOnly(t *testing.T, h History, k Kind, txns ...uint64) {
	t.Helper()
	r := Check(h)
	if len(r.Anomalies) != 1 || r.Anomalies[0].Kind != k {
		t.Fatalf("want exactly one %s, got %v:%s", k, kinds(r), dump(r))
	}
	got := slices.Clone(r.Anomalies[0].Txns)
	var want []TxnID
	for _, n := range txns {
		want = append(want, id(n))
	}
	sortIDs(got)
	sortIDs(want)
	if !slices.Equal(got, want) {
		t.Fatalf("%s names %v, want %v:%s", k, got, want, dump(r))
	}
	if r.Counts[k] != 1 {
		t.Fatalf("Counts[%s] = %d", k, r.Counts[k])
	}
}

func sortIDs(ids []TxnID) {
	slices.SortFunc(ids, func(a, b TxnID) int {
		if a.less(b) {
			return -1
		}
		if b.less(a) {
			return 1
		}
		return 0
	})
}

func TestCleanSerial(t *testing.T) {
	h := History{Txns: []Txn{
		acked(1, 1, app("x", 1), wri("r", 10)),
		acked(2, 2, rl("x", 1), app("x", 2), rr("r", 10), wri("r", 11)),
		acked(3, 3, rl("x", 1, 2), rr("r", 11), app("y", 3)),
		aborted(4, app("x", 99), wri("r", 98)),
		unknown(5, app("y", 4)), // never seen: ignored
		final(6, rl("x", 1, 2), rl("y", 3), rr("r", 11)),
	}}
	r := Check(h)
	if !r.OK() {
		t.Fatalf("clean history reported anomalies:%s", dump(r))
	}
	if r.Committed != 4 {
		t.Fatalf("Committed = %d, want 4", r.Committed)
	}
}

func TestG0(t *testing.T) {
	// T1 and T2 both append to x and y, in opposite orders.
	expectOnly(t, History{Txns: []Txn{
		ok(1, app("x", 1), app("y", 1)),
		ok(2, app("x", 2), app("y", 2)),
		ok(3, rl("x", 1, 2)),
		ok(4, rl("y", 2, 1)),
	}}, G0, 1, 2)
}

func TestG1a(t *testing.T) {
	expectOnly(t, History{Txns: []Txn{
		aborted(1, app("x", 1)),
		ok(2, rl("x", 1)),
	}}, G1a, 1, 2)
}

func TestG1aRegister(t *testing.T) {
	expectOnly(t, History{Txns: []Txn{
		aborted(1, wri("r", 5)),
		ok(2, rr("r", 5)),
	}}, G1a, 1, 2)
}

func TestG1b(t *testing.T) {
	expectOnly(t, History{Txns: []Txn{
		ok(1, app("x", 1), app("x", 2)),
		ok(2, rl("x", 1)),
		ok(3, rl("x", 1, 2)),
	}}, G1b, 1, 2)
}

func TestG1bRegister(t *testing.T) {
	expectOnly(t, History{Txns: []Txn{
		acked(1, 1, wri("r", 1), wri("r", 2)),
		ok(2, rr("r", 1)),
	}}, G1b, 1, 2)
}

func TestG1c(t *testing.T) {
	// Each saw the other's write: circular information flow.
	expectOnly(t, History{Txns: []Txn{
		ok(1, app("x", 1), rl("y", 2)),
		ok(2, app("y", 2), rl("x", 1)),
	}}, G1c, 1, 2)
}

func TestGSingle(t *testing.T) {
	// Read skew: T2 saw T1's y but not T1's x.
	expectOnly(t, History{Txns: []Txn{
		ok(1, app("x", 1), app("y", 1)),
		ok(2, rl("x"), rl("y", 1)),
		ok(3, rl("x", 1)),
	}}, GSingle, 1, 2)
}

func TestG2(t *testing.T) {
	// Write skew: each read both empty lists and appended to one.
	expectOnly(t, History{Txns: []Txn{
		ok(1, rl("x"), rl("y"), app("x", 1)),
		ok(2, rl("x"), rl("y"), app("y", 2)),
		ok(3, rl("x", 1), rl("y", 2)),
	}}, G2, 1, 2)
}

func TestLostWrite(t *testing.T) {
	expectOnly(t, History{Txns: []Txn{
		acked(1, 1, app("x", 1)),
		final(2, rl("x")),
	}}, LostWrite, 1, 2)
}

func TestLostWriteRegister(t *testing.T) {
	expectOnly(t, History{Txns: []Txn{
		acked(1, 1, wri("r", 1)),
		acked(2, 2, wri("r", 2)),
		final(3, rr("r", 1)),
	}}, LostWrite, 2, 3)
}

func TestAbortedVisible(t *testing.T) {
	expectOnly(t, History{Txns: []Txn{
		aborted(1, app("x", 1)),
		final(2, rl("x", 1)),
	}}, AbortedVisible, 1, 2)
}

// TestDuplicateWrite: an append applied twice shows as a list holding one
// value twice, even next to itself, where no edge would make a cycle.
func TestDuplicateWrite(t *testing.T) {
	expectOnly(t, History{Txns: []Txn{
		ok(1, app("x", 1)),
		final(2, rl("x", 1, 1)),
	}}, DuplicateWrite, 2)
	expectOnly(t, History{Txns: []Txn{
		ok(1, app("x", 1), app("x", 2)),
		ok(3, rl("x", 1, 2, 1, 2)),
	}}, DuplicateWrite, 3)
}

func TestGarbageRead(t *testing.T) {
	expectOnly(t, History{Txns: []Txn{
		ok(1, rr("r", 42)),
	}}, GarbageRead, 1)
}

func TestIncompatibleOrder(t *testing.T) {
	expectOnly(t, History{Txns: []Txn{
		ok(1, app("x", 1)),
		ok(2, app("x", 2)),
		ok(3, rl("x", 1, 2)),
		ok(4, rl("x", 2)),
	}}, IncompatibleOrder, 3, 4)
}

func TestStaleRead(t *testing.T) {
	// T2 claims to have read x at version 1, which includes T1's append.
	h := History{Txns: []Txn{
		acked(1, 1, app("x", 1)),
		{ID: id(2), Outcome: Acknowledged, Ops: []Op{{Kind: ReadList, Key: "x", At: 1}}},
	}}
	expectOnly(t, h, StaleRead, 2, 1)
}

func TestVersionOrder(t *testing.T) {
	// T2 (version 1) saw T1's write (version 2): impossible without a
	// speculative dependency, which would have ordered T1 first.
	expectOnly(t, History{Txns: []Txn{
		acked(1, 2, wri("r", 1)),
		acked(2, 1, rr("r", 1)),
	}}, VersionOrder, 1, 2)
}

func TestVersionOrderThroughInDoubt(t *testing.T) {
	// The in-doubt T2 has no version, but T3 (v2) saw its write, so it
	// precedes v2; T4 (v3) read the initial value, so it follows v3.
	expectOnly(t, History{Txns: []Txn{
		unknown(2, wri("r", 5)),
		acked(3, 2, rr("r", 5)),
		acked(4, 3, rr("r", 0)),
	}}, VersionOrder, 2, 3, 4)
}

func TestInternal(t *testing.T) {
	expectOnly(t, History{Txns: []Txn{
		ok(1, app("x", 1), rl("x")),
	}}, Internal, 1)
	expectOnly(t, History{Txns: []Txn{
		ok(1, wri("r", 1), rr("r", 0)),
	}}, Internal, 1)
}

func TestDuplicateVersion(t *testing.T) {
	expectOnly(t, History{Txns: []Txn{
		acked(1, 1, app("x", 1)),
		acked(2, 1, app("y", 2)),
	}}, DuplicateVersion, 1, 2)
}

func TestRealTime(t *testing.T) {
	a := acked(1, 2, app("x", 1))
	a.Start, a.End = 1, 2
	b := acked(2, 1, app("y", 2))
	b.Start, b.End = 3, 4
	expectOnly(t, History{Txns: []Txn{a, b}}, RealTime, 1, 2)
}

func TestMalformed(t *testing.T) {
	expectOnly(t, History{Txns: []Txn{
		ok(1, app("x", 1)),
		ok(2, app("x", 1)),
	}}, Malformed, 1, 2)
}

func TestUnknownPromoted(t *testing.T) {
	// An in-doubt transaction whose write was seen committed: its writes
	// join the graph (here they close a G-single cycle) and are not G1a.
	h := History{Txns: []Txn{
		unknown(1, app("x", 1), app("y", 1)),
		ok(2, rl("x"), rl("y", 1)),
		ok(3, rl("x", 1)),
	}}
	expectOnly(t, h, GSingle, 1, 2)
}

// model runs random transactions serially against a reference store, the
// way a correct Weft server would order them, and records the history.
type model struct {
	rng     *rand.Rand
	lists   map[string][]uint64
	regs    map[string]uint64
	next    uint64 // next unique value
	version uint64
	now     int64
	h       History
}

func newModel(seed uint64) *model {
	return &model{
		rng:   rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		lists: map[string][]uint64{},
		regs:  map[string]uint64{},
	}
}

func (m *model) txn(n uint64, nkeys int) {
	r := m.rng
	outcome := Acknowledged
	switch x := r.IntN(20); {
	case x == 0:
		outcome = Aborted
	case x == 1:
		outcome = Unknown
	}
	apply := outcome == Acknowledged || (outcome == Unknown && r.IntN(2) == 0)
	at := m.version
	// Work on copies so that an aborted transaction changes nothing.
	lists := map[string][]uint64{}
	regs := map[string]uint64{}
	var ops []Op
	for range 1 + r.IntN(4) {
		k := strconv.Itoa(r.IntN(nkeys))
		if r.IntN(2) == 0 {
			k = "l" + k
			l, ok := lists[k]
			if !ok {
				l = slices.Clone(m.lists[k])
			}
			if r.IntN(2) == 0 {
				ops = append(ops, Op{Kind: ReadList, Key: k, List: slices.Clone(l), At: at})
			} else {
				m.next++
				l = append(l, m.next)
				ops = append(ops, app(k, m.next))
			}
			lists[k] = l
		} else {
			k = "r" + k
			v, ok := regs[k]
			if !ok {
				v = m.regs[k]
			}
			if r.IntN(2) == 0 {
				ops = append(ops, Op{Kind: ReadReg, Key: k, Value: v, At: at})
			} else {
				m.next++
				v = m.next
				ops = append(ops, wri(k, v))
			}
			regs[k] = v
		}
	}
	t := Txn{ID: id(n), Share: "s", Session: n % 7, Outcome: outcome, Ops: ops}
	t.Start = m.now
	m.now += 2
	t.End = m.now - 1
	if apply {
		m.version++
		for k, l := range lists {
			m.lists[k] = l
		}
		for k, v := range regs {
			m.regs[k] = v
		}
		if outcome == Acknowledged {
			t.Version = m.version
		}
	}
	m.h.Txns = append(m.h.Txns, t)
}

func (m *model) final(n uint64) {
	var ops []Op
	for _, k := range slices.Sorted(mapsKeys(m.lists)) {
		ops = append(ops, rl(k, m.lists[k]...))
	}
	for _, k := range slices.Sorted(mapsKeys(m.regs)) {
		ops = append(ops, rr(k, m.regs[k]))
	}
	f := final(n, ops...)
	f.Share = "s"
	m.h.Txns = append(m.h.Txns, f)
}

func mapsKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

func serialHistory(seed uint64, n, nkeys int) History {
	m := newModel(seed)
	for i := range n {
		m.txn(uint64(i+1), nkeys)
	}
	m.final(uint64(n + 1))
	return m.h
}

func TestSerialHistoriesAreClean(t *testing.T) {
	for seed := range uint64(200) {
		h := serialHistory(seed, 200, 5)
		if r := Check(h); !r.OK() {
			t.Fatalf("seed %d: serial history reported anomalies:%s", seed, dump(r))
		}
	}
}

// Injected bugs: each turns a serial history into a wrong one.

type injection struct {
	name string
	do   func(h *History, rng *rand.Rand) bool // false: not applicable
}

var injections = []injection{
	{"swap two register reads", func(h *History, rng *rand.Rand) bool {
		type loc struct{ t, o int }
		byKey := map[string][]loc{}
		for i, t := range h.Txns {
			if t.Outcome != Acknowledged || t.Final {
				continue
			}
			for j, op := range t.Ops {
				if op.Kind == ReadReg {
					byKey[op.Key] = append(byKey[op.Key], loc{i, j})
				}
			}
		}
		for _, k := range slices.Sorted(mapsKeys(byKey)) {
			ls := byKey[k]
			for a := 0; a < len(ls); a++ {
				for b := a + 1; b < len(ls); b++ {
					pa, pb := &h.Txns[ls[a].t].Ops[ls[a].o], &h.Txns[ls[b].t].Ops[ls[b].o]
					if pa.Value != pb.Value && ls[a].t != ls[b].t {
						pa.Value, pb.Value = pb.Value, pa.Value
						return true
					}
				}
			}
		}
		return false
	}},
	{"drop an acknowledged append from the final state", func(h *History, rng *rand.Rand) bool {
		f := &h.Txns[len(h.Txns)-1]
		acks := map[uint64]bool{}
		for _, t := range h.Txns {
			if t.Outcome == Acknowledged && !t.Final {
				for _, op := range t.Ops {
					if op.Kind == Append {
						acks[op.Value] = true
					}
				}
			}
		}
		for j := range f.Ops {
			op := &f.Ops[j]
			for i, v := range op.List {
				if acks[v] && rng.IntN(3) == 0 {
					op.List = slices.Delete(slices.Clone(op.List), i, i+1)
					return true
				}
			}
		}
		return false
	}},
	{"make an aborted append visible", func(h *History, rng *rand.Rand) bool {
		f := &h.Txns[len(h.Txns)-1]
		for _, t := range h.Txns {
			if t.Outcome != Aborted {
				continue
			}
			for _, op := range t.Ops {
				if op.Kind != Append {
					continue
				}
				for j := range f.Ops {
					if f.Ops[j].Key == op.Key {
						f.Ops[j].List = append(slices.Clone(f.Ops[j].List), op.Value)
						return true
					}
				}
			}
		}
		return false
	}},
	{"let a stale list read commit", func(h *History, rng *rand.Rand) bool {
		for i := len(h.Txns) / 2; i < len(h.Txns)-1; i++ {
			t := &h.Txns[i]
			if t.Outcome != Acknowledged {
				continue
			}
			for j := range t.Ops {
				// Drop an element whose writer has a version at or below
				// the read's: with an in-doubt writer, the shorter read
				// would be a legal history (it may have committed later).
				op := &t.Ops[j]
				if op.Kind != ReadList || len(op.List) == 0 || !versionedBelow(h, op.List[len(op.List)-1], op.At, t.ID) {
					continue
				}
				{
					op.List = slices.Clone(op.List[:len(op.List)-1])
					return true
				}
			}
		}
		return false
	}},
}

func TestInjectedBugsAreCaught(t *testing.T) {
	for _, inj := range injections {
		t.Run(inj.name, func(t *testing.T) {
			applied := 0
			for seed := range uint64(100) {
				h := serialHistory(seed, 200, 5)
				if !inj.do(&h, rand.New(rand.NewPCG(seed, 1))) {
					continue
				}
				applied++
				if r := Check(h); r.OK() {
					t.Fatalf("seed %d: %s not reported", seed, inj.name)
				}
			}
			if applied < 50 {
				t.Fatalf("injection applied to only %d of 100 seeds", applied)
			}
		})
	}
}

func TestDeterministic(t *testing.T) {
	h := serialHistory(7, 500, 4)
	injections[0].do(&h, rand.New(rand.NewPCG(7, 1)))
	a, b := Check(h), Check(h)
	if dump(a) != dump(b) || a.OK() {
		t.Fatalf("non-deterministic or clean:%s\nvs%s", dump(a), dump(b))
	}
}

func TestLarge(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("slow under -short or -race")
	}
	h := serialHistory(1, 200_000, 1000)
	start := time.Now()
	r := Check(h)
	if !r.OK() {
		t.Fatalf("anomalies:%s", dump(r))
	}
	t.Logf("%d transactions, %d committed, %d edges: %v", r.Txns, r.Committed, r.Edges, time.Since(start))
}

func BenchmarkCheck100k(b *testing.B) {
	h := serialHistory(1, 100_000, 1000)
	b.ResetTimer()
	for b.Loop() {
		if r := Check(h); !r.OK() {
			b.Fatal("anomalies")
		}
	}
}

// versionedBelow reports whether v was appended by a transaction other than
// self that was acknowledged with a version <= at.
func versionedBelow(h *History, v, at uint64, self TxnID) bool {
	for _, t := range h.Txns {
		for _, op := range t.Ops {
			if op.Kind == Append && op.Value == v {
				return t.ID != self && t.Outcome == Acknowledged && t.Version > 0 && t.Version <= at
			}
		}
	}
	return false
}
