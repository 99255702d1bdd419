package authority

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/weft-stm/weft/wire"
)

// The model test drives a Share with random commits from several simulated
// clients and checks each verdict against a simple reference that keeps
// the full history: which parts every version wrote. A read at version r is
// current iff no version after r wrote its part (or created or removed its
// object); the reference decides each commit from that history alone, and
// the Share must decide the same. So every acknowledged commit read only
// current state: the history is serializable in version order by
// construction. At the end, a snapshot taken midway plus the changes since
// must rebuild the same state.

// part names what a read covers or a write touches; kind life is an
// object's creation or removal, which touches every part.
type part struct {
	obj   wire.ObjectID
	kind  int // 0 whole, 1 field, 2 key, 3 index, 4 life
	field uint32
	key   wire.Value
	index uint64
}

const lifePart = 4

type refObj struct {
	kind    wire.ObjectKind
	class   uint32
	removed bool
	fields  map[uint32]wire.Value
	val     wire.Value
	counter int64
	entries map[wire.Value]wire.Value
	set     map[wire.Value]bool
	list    []wire.Value
}

func (o *refObj) clone() *refObj {
	c := *o
	c.fields, c.entries, c.set = maps.Clone(o.fields), maps.Clone(o.entries), maps.Clone(o.set)
	c.list = slices.Clone(o.list)
	return &c
}

type reference struct {
	version  uint64
	objs     map[wire.ObjectID]*refObj
	wrote    []map[part]bool // wrote[v-1]: the parts version v wrote
	verdicts map[wire.CommitID]Result
}

// touched applies op to objs (a working copy) and returns the parts it
// wrote, or an error if it is invalid.
func refApply(objs map[wire.ObjectID]*refObj, op *wire.Op) ([]part, error) {
	id := op.Object
	o := objs[id]
	whole := part{obj: id}
	if op.Kind == wire.OpCreate {
		if o != nil || op.ObjectKind < 1 || op.ObjectKind > 6 || (len(op.Fields) > 0 && op.ObjectKind != wire.ObjectRecord) {
			return nil, fmt.Errorf("bad create")
		}
		o = &refObj{kind: op.ObjectKind, class: op.Class, fields: map[uint32]wire.Value{}, entries: map[wire.Value]wire.Value{}, set: map[wire.Value]bool{}}
		for _, f := range op.Fields {
			o.fields[f.ID] = f.Value
		}
		objs[id] = o
		return []part{whole, {obj: id, kind: lifePart}}, nil
	}
	if o == nil || o.removed {
		return nil, fmt.Errorf("no object")
	}
	want := map[wire.OpKind]wire.ObjectKind{wire.OpSetField: 1, wire.OpVarSet: 2, wire.OpCounterAdd: 3,
		wire.OpMapPut: 4, wire.OpMapDelete: 4, wire.OpSetAdd: 5, wire.OpSetRemove: 5, wire.OpListSet: 6, wire.OpListAppend: 6}
	if op.Kind != wire.OpRemove && want[op.Kind] != o.kind {
		return nil, fmt.Errorf("wrong kind")
	}
	ps := []part{whole}
	switch op.Kind {
	case wire.OpRemove:
		o.removed = true
		ps = append(ps, part{obj: id, kind: lifePart})
	case wire.OpSetField:
		o.fields[op.Field] = op.Value
		ps = append(ps, part{obj: id, kind: 1, field: op.Field})
	case wire.OpVarSet:
		o.val = op.Value
	case wire.OpCounterAdd:
		o.counter += op.Delta
	case wire.OpMapPut:
		o.entries[op.Key] = op.Value
		ps = append(ps, part{obj: id, kind: 2, key: op.Key})
	case wire.OpMapDelete:
		delete(o.entries, op.Key)
		ps = append(ps, part{obj: id, kind: 2, key: op.Key})
	case wire.OpSetAdd, wire.OpSetRemove:
		o.set[op.Key] = op.Kind == wire.OpSetAdd
		if !o.set[op.Key] {
			delete(o.set, op.Key)
		}
		ps = append(ps, part{obj: id, kind: 2, key: op.Key})
	case wire.OpListSet:
		if op.Index >= uint64(len(o.list)) {
			return nil, fmt.Errorf("index")
		}
		o.list[op.Index] = op.Value
		ps = append(ps, part{obj: id, kind: 3, index: op.Index})
	case wire.OpListAppend:
		for _, x := range op.Values {
			ps = append(ps, part{obj: id, kind: 3, index: uint64(len(o.list))})
			o.list = append(o.list, x)
		}
	}
	return ps, nil
}

// covers returns the parts a read depends on.
func (r *reference) covers(rd *wire.Read) []part {
	o := r.objs[rd.Object]
	whole := part{obj: rd.Object}
	life := part{obj: rd.Object, kind: lifePart}
	switch {
	case o.removed:
		return []part{whole}
	case rd.Kind == wire.ReadField && o.kind == wire.ObjectRecord:
		return []part{{obj: rd.Object, kind: 1, field: rd.Field}, life}
	case rd.Kind == wire.ReadKey && (o.kind == wire.ObjectMap || o.kind == wire.ObjectSet):
		return []part{{obj: rd.Object, kind: 2, key: rd.Key}, life}
	case rd.Kind == wire.ReadIndex && o.kind == wire.ObjectList && rd.Index < uint64(len(o.list)):
		return []part{{obj: rd.Object, kind: 3, index: rd.Index}, life}
	}
	return []part{whole}
}

func (r *reference) decide(c *wire.Commit) Result {
	if v, ok := r.verdicts[c.ID]; ok {
		v.Duplicate, v.Change = true, wire.Change{}
		return v
	}
	res := Result{ID: c.ID}
	for _, rd := range c.Reads {
		var last uint64
		for _, p := range r.covers(&rd) {
			for v := rd.Version + 1; v <= r.version; v++ {
				if r.wrote[v-1][p] {
					last = max(last, v)
				}
			}
		}
		if last > 0 {
			rd.Version = last
			res.Conflicts = append(res.Conflicts, rd)
		}
	}
	if len(res.Conflicts) > 0 {
		res.Code = wire.CodeConflict
		r.verdicts[c.ID] = res
		return res
	}
	work := map[wire.ObjectID]*refObj{}
	for id, o := range r.objs {
		work[id] = o.clone()
	}
	wrote := map[part]bool{}
	for i := range c.Writes {
		ps, err := refApply(work, &c.Writes[i])
		if err != nil {
			res.Code = wire.CodeInvalid
			r.verdicts[c.ID] = res
			return res
		}
		for _, p := range ps {
			wrote[p] = true
		}
	}
	r.objs = work
	r.version++
	r.wrote = append(r.wrote, wrote)
	res.Ack, res.Version = true, r.version
	r.verdicts[c.ID] = res
	return res
}

// snapshot returns the reference's state as snapshot chunks, for Load.
func (r *reference) snapshot() []wire.SnapshotChunk {
	var objs []wire.Object
	for id, o := range r.objs {
		if o.removed {
			continue
		}
		w := wire.Object{ID: id, Class: o.class, Kind: o.kind, Value: o.val, Counter: o.counter, Elems: o.list}
		for f, x := range o.fields {
			w.Fields = append(w.Fields, wire.Field{ID: f, Value: x})
		}
		for k, x := range o.entries {
			w.Entries = append(w.Entries, wire.Entry{Key: k, Value: x})
		}
		for k := range o.set {
			w.Elems = append(w.Elems, k)
		}
		objs = append(objs, w)
	}
	return []wire.SnapshotChunk{{Objects: objs}}
}

type modelGen struct {
	rng     *rand.Rand
	ref     *reference
	seqs    map[uint64]uint64
	nextObj uint64
	sent    []*wire.Commit
}

func (g *modelGen) value() wire.Value { return wire.Int(int64(g.rng.IntN(5))) }
func (g *modelGen) key() wire.Value   { return wire.String(string(rune('a' + g.rng.IntN(3)))) }

func (g *modelGen) ids() []wire.ObjectID {
	ids := slices.Collect(maps.Keys(g.ref.objs))
	slices.SortFunc(ids, compareIDs)
	return ids
}

func (g *modelGen) commit() *wire.Commit {
	if len(g.sent) > 0 && g.rng.IntN(20) == 0 { // a resend
		return g.sent[g.rng.IntN(len(g.sent))]
	}
	replica := uint64(1 + g.rng.IntN(4))
	g.seqs[replica]++
	c := &wire.Commit{ID: wire.CommitID{Replica: replica, Seq: g.seqs[replica]}}
	ids := g.ids()
	lag := uint64(g.rng.IntN(6))
	at := g.ref.version - min(lag, g.ref.version)
	for range g.rng.IntN(3) {
		if len(ids) == 0 {
			break
		}
		id := ids[g.rng.IntN(len(ids))]
		rd := wire.Read{Object: id, Version: at, Kind: wire.ReadKind(g.rng.IntN(4))}
		rd.Field, rd.Key, rd.Index = uint32(1+g.rng.IntN(3)), g.key(), uint64(g.rng.IntN(4))
		if g.rng.IntN(2) == 0 {
			rd.Key = g.value()
		}
		c.Reads = append(c.Reads, rd)
	}
	for range g.rng.IntN(4) {
		c.Writes = append(c.Writes, g.op(ids, replica))
	}
	return c
}

func (g *modelGen) op(ids []wire.ObjectID, replica uint64) wire.Op {
	if len(ids) == 0 || g.rng.IntN(8) == 0 {
		g.nextObj++
		op := wire.Op{Kind: wire.OpCreate, Object: wire.ObjectID{Replica: replica, Seq: g.nextObj},
			ObjectKind: wire.ObjectKind(1 + g.rng.IntN(6)), Class: uint32(g.rng.IntN(3))}
		if op.ObjectKind == wire.ObjectRecord {
			op.Fields = []wire.Field{{ID: 1, Value: g.value()}}
		}
		return op
	}
	id := ids[g.rng.IntN(len(ids))]
	kind := g.ref.objs[id].kind
	if g.rng.IntN(20) == 0 { // an op of a random kind: often invalid
		kind = wire.ObjectKind(1 + g.rng.IntN(6))
	}
	if g.rng.IntN(30) == 0 {
		return wire.Op{Kind: wire.OpRemove, Object: id}
	}
	op := wire.Op{Object: id, Value: g.value()}
	switch kind {
	case wire.ObjectRecord:
		op.Kind, op.Field = wire.OpSetField, uint32(1+g.rng.IntN(3))
	case wire.ObjectVar:
		op.Kind = wire.OpVarSet
	case wire.ObjectCounter:
		op.Kind, op.Delta = wire.OpCounterAdd, int64(g.rng.IntN(7)-3)
	case wire.ObjectMap:
		op.Kind, op.Key = []wire.OpKind{wire.OpMapPut, wire.OpMapDelete}[g.rng.IntN(2)], g.key()
	case wire.ObjectSet:
		op.Kind, op.Key = []wire.OpKind{wire.OpSetAdd, wire.OpSetRemove}[g.rng.IntN(2)], g.value()
	case wire.ObjectList:
		if g.rng.IntN(2) == 0 {
			op.Kind, op.Index = wire.OpListSet, uint64(g.rng.IntN(4))
		} else {
			op.Kind, op.Values = wire.OpListAppend, []wire.Value{g.value(), g.value()}[:1+g.rng.IntN(2)]
		}
	}
	return op
}

func TestModel(t *testing.T) {
	for seed := range uint64(50) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) { runModel(t, seed, 300, false, 0) })
	}
}

// TestModelPruned is TestModel with absent map keys and set elements
// pruned as soon as there are two (pruneAbsent): the Share may then abort
// a commit the reference acknowledges, but only for a read of a key it
// pruned (at a version below the object's keyFloor), and it never
// acknowledges one the reference aborts.
func TestModelPruned(t *testing.T) {
	defer func(n int) { pruneAbsentMin = n }(pruneAbsentMin)
	pruneAbsentMin = 1
	for seed := range uint64(50) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) { runModel(t, seed, 300, true, 0) })
	}
}

// TestModelRetired is TestModel with replicas retired after 5 versions
// without a commit (Config.RetireAfter): a resend of a retired replica's
// commit is then aborted as too old (CodeInternal) where the reference
// answers it again, and that is the only difference.
func TestModelRetired(t *testing.T) {
	total := 0
	for seed := range uint64(50) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) { total += runModel(t, seed, 300, false, 5) })
	}
	if total == 0 {
		t.Fatal("no resend met a retired replica")
	}
}

// undo takes back the acknowledgement decide gave c, whose state before
// was objs: the Share aborted c, with got (see TestModelPruned).
func (r *reference) undo(c *wire.Commit, objs map[wire.ObjectID]*refObj, got Result) {
	r.objs = objs
	r.version--
	r.wrote = r.wrote[:len(r.wrote)-1]
	got.Duplicate, got.Change = false, wire.Change{}
	r.verdicts[c.ID] = got
}

// prunedConflicts reports whether every conflict of r is a read of a key
// that s has no entry for, reported at the keyFloor of its object: a
// conflict that pruneAbsent may cause without the key having been
// written since the read.

func prunedConflicts(s *Share, r Result) bool {
	for _, rd := range r.Conflicts {
		o := s.objects[rd.Object]
		if rd.Kind != wire.ReadKey || o == nil || o.entries == nil || o.entries[rd.Key] != nil || o.keyFloor == 0 || rd.Version != o.keyFloor {
			return false
		}
	}
	return len(r.Conflicts) > 0
}

// runModel returns how many resends met a retired replica.
func runModel(t *testing.T, seed uint64, steps int, pruned bool, retire uint64) int {
	ref := &reference{objs: map[wire.ObjectID]*refObj{}, verdicts: map[wire.CommitID]Result{}}
	g := &modelGen{rng: rand.New(rand.NewPCG(seed, 1)), ref: ref, seqs: map[uint64]uint64{}}
	s := NewWithConfig("model", Config{LogSize: steps, Verdicts: steps, RetireAfter: retire})
	mid := steps / 2
	var midSnap []wire.SnapshotChunk
	var midVersion uint64
	counts := map[string]int{}
	for i := range steps {
		if i == mid {
			midSnap, midVersion = s.Snapshot(wire.Limits{MaxObjects: 2, MaxElements: 2, MaxFrameSize: 64}), s.Version()
		}
		c := g.commit()
		before := ref.objs
		want := ref.decide(c)
		// With Verdicts as large as the run, only retirement forgets.
		_, _, retired := s.lookup(c.ID)
		got := s.Apply(c)
		if pruned && !got.Ack && !got.Duplicate && got.Code == wire.CodeConflict &&
			(want.Ack || want.Code != got.Code) && prunedConflicts(s, got) {
			// A conflict on pruned keys only, found first where the
			// reference found none, or an invalid write after it.
			if want.Ack {
				ref.undo(c, before, got)
			} else {
				ref.verdicts[c.ID] = got
			}
			g.sent = append(g.sent, c)
			counts["pruned-key conflict"]++
			continue
		}
		if pruned && !want.Ack && !got.Ack && got.Code == want.Code && got.Duplicate == want.Duplicate {
			// Both abort; the Share may name pruned keys besides, or
			// report a pruned key at its keyFloor.
			g.sent = append(g.sent, c)
			counts[fmt.Sprint(got.Ack, got.Code, got.Duplicate)]++
			continue
		}
		if retired && retire > 0 && want.Duplicate && !got.Ack && !got.Duplicate && got.Code == wire.CodeInternal {
			// A resend of a retired replica's commit: too old to decide.
			counts["retired resend"]++
			continue
		}
		if got.Ack != want.Ack || got.Version != want.Version || got.Code != want.Code || got.Duplicate != want.Duplicate {
			t.Fatalf("seed %d step %d: commit %+v\ngot  %s\nwant %s", seed, i, c, formatResult(got), formatResult(want))
		}
		if fmt.Sprint(got.Conflicts) != fmt.Sprint(want.Conflicts) {
			t.Fatalf("seed %d step %d: conflicts %v, want %v", seed, i, got.Conflicts, want.Conflicts)
		}
		g.sent = append(g.sent, c)
		counts[fmt.Sprint(got.Ack, got.Code, got.Duplicate)]++
	}
	checkRefsIn(t, s)
	// The state equals the reference's.
	want, err := Load("ref", Config{}, ref.version, ref.snapshot())
	if err != nil {
		t.Fatal(err)
	}
	if got, want := dump(s, false), dump(want, false); got != want {
		t.Fatalf("seed %d: state\n%s\nwant\n%s", seed, got, want)
	}
	// Snapshot midway, plus the changes since, replayed as blind commits,
	// give the same state.
	l, err := Load("replay", Config{}, midVersion, midSnap)
	if err != nil {
		t.Fatal(err)
	}
	changes, ok := s.DeltaSince(midVersion)
	if !ok {
		t.Fatalf("no delta since %d", midVersion)
	}
	for _, ch := range changes {
		// Under the change's own id: the objects it creates are its
		// replica's.
		r := l.Apply(&wire.Commit{ID: ch.Origin, Writes: ch.Writes})
		if !r.Ack || r.Version != ch.Version {
			t.Fatalf("replay of %d: %s", ch.Version, formatResult(r))
		}
	}
	if got, want := dump(l, false), dump(s, false); got != want {
		t.Fatalf("seed %d: replayed state\n%s\nwant\n%s", seed, got, want)
	}
	checkRefsIn(t, l)
	if seed == 0 || (pruned || retire > 0) && seed < 3 {
		t.Logf("verdicts (ack, code, duplicate): %v", counts)
	}
	return counts["retired resend"]
}

// checkRefsIn checks every object's refsIn against the refs it holds: an
// object that holds one and says none would have the reference checks
// skip it.
func checkRefsIn(t *testing.T, s *Share) {
	t.Helper()
	for id, o := range s.objects {
		n := 0
		eachRef(o, func(v wire.Value) {
			if v.Kind() == wire.KindRef {
				n++
			}
		})
		if n != o.refsIn {
			t.Fatalf("object %v holds %d refs, its refsIn says %d", id, n, o.refsIn)
		}
	}
}
