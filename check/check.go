package check

import (
	"fmt"
	"slices"
)

// Edge types, as bits: two transactions may be related by several at once.
const (
	ww uint8 = 1 << iota // write-write: version order of writes to a key
	wr                   // write-read: the reader saw the writer's value
	rw                   // read-write: the reader saw the state just before the writer's write
	vo                   // version order: consecutive server versions of a share
)

func edgeName(t uint8) string {
	switch {
	case t&ww != 0:
		return "ww"
	case t&wr != 0:
		return "wr"
	case t&rw != 0:
		return "rw"
	}
	return "vo"
}

type keyKind uint8

const (
	kindNone keyKind = iota
	kindList
	kindReg
)

// wkey names one write: a key and the value written to it.
type wkey struct {
	key int32
	val uint64
}

// wref locates a write: its transaction, its rank among that transaction's
// writes to the key, and whether it is the transaction's last write to it.
type wref struct {
	txn   int32
	nth   int32
	final bool
}

// vw is a write by a versioned transaction, for version-ordered lookups.
type vw struct {
	version uint64
	txn     int32
	val     uint64
}

type edge struct {
	from, to int32
	typ      uint8
	key      int32
}

type checker struct {
	txns      []Txn
	opKey     [][]int32 // per txn, per op: interned key, or -1 if the op is malformed
	shareOf   []int32
	keyNames  []string
	keyKinds  []keyKind
	writes    []map[uint64]wref // per key: value -> its write
	appends   [][]uint64        // per list key: every appended value, in history order
	committed []bool
	// unversioned lists, per register key, the committed writers without
	// a version (in doubt but seen, or acknowledged without a version).
	unversioned [][]int32
	fullW       [][]found // per list key: the writers of its longest read
	edges       []edge
	out         []Anomaly
}

// Check analyses h and reports its anomalies. It does not modify h. The
// result depends only on h, and its anomalies are sorted (by kind, then by
// transactions), so equal histories give equal results.
func Check(h History) Result {
	c := &checker{txns: h.Txns}
	c.index()
	c.promote()
	c.checkVersions()
	longest := c.longestReads()
	regs, listVers := c.versionedWrites()
	c.checkReads(longest, regs, listVers)
	c.wwEdges(longest, regs)
	c.voEdges()
	g := buildGraph(len(c.txns), c.edges)
	c.checkRealTime()
	truncated := c.cycles(g)

	res := Result{Txns: len(c.txns), Edges: len(g.to), Truncated: truncated, Counts: map[Kind]int{}}
	for _, ok := range c.committed {
		if ok {
			res.Committed++
		}
	}
	sortAnomalies(c.out)
	res.Anomalies = c.out
	for _, a := range c.out {
		res.Counts[a.Kind]++
	}
	return res
}

func (c *checker) report(k Kind, txns []int32, format string, args ...any) {
	ids := make([]TxnID, len(txns))
	for i, t := range txns {
		ids[i] = c.txns[t].ID
	}
	c.out = append(c.out, Anomaly{Kind: k, Txns: ids, Explanation: fmt.Sprintf(format, args...)})
}

// lookup finds the write of a value. Maps per key (rather than one keyed by
// (key, value)) take the runtime's fast uint64 path: lookups are most of
// the checker's time.
func (c *checker) lookup(w wkey) (wref, bool) {
	r, ok := c.writes[w.key][w.val]
	return r, ok
}

func (c *checker) get(w wkey) wref { return c.writes[w.key][w.val] }

func (c *checker) name(t int32) string { return "T" + c.txns[t].ID.String() }

// versioned reports whether t carries a server-assigned version, the only
// transactions whose order the server vouches for.
func (c *checker) versioned(t int32) bool {
	x := &c.txns[t]
	return x.Outcome == Acknowledged && !x.Final && x.Version > 0
}

func (c *checker) ver(t int32) uint64 { return c.txns[t].Version }

// index interns shares and keys, validates the input contract and indexes
// every write by (key, value).
func (c *checker) index() {
	type sk struct{ share, key string }
	shares := map[string]int32{}
	keys := map[sk]int32{}
	c.opKey = make([][]int32, len(c.txns))
	c.shareOf = make([]int32, len(c.txns))
	for i := range c.txns {
		t := &c.txns[i]
		ti := int32(i)
		s, ok := shares[t.Share]
		if !ok {
			s = int32(len(shares))
			shares[t.Share] = s
		}
		c.shareOf[i] = s
		ks := make([]int32, len(t.Ops))
		nth := map[int32]int32{}
		for j, op := range t.Ops {
			ks[j] = -1
			want := kindList
			switch op.Kind {
			case Append, ReadList:
			case Write, ReadReg:
				want = kindReg
			default:
				c.report(Malformed, []int32{ti}, "%s op %d has unknown kind %d", c.name(ti), j, op.Kind)
				continue
			}
			id, ok := keys[sk{t.Share, op.Key}]
			if !ok {
				id = int32(len(c.keyNames))
				keys[sk{t.Share, op.Key}] = id
				name := op.Key
				if t.Share != "" {
					name = t.Share + "/" + op.Key
				}
				c.keyNames = append(c.keyNames, name)
				c.keyKinds = append(c.keyKinds, want)
				c.appends = append(c.appends, nil)
				c.writes = append(c.writes, map[uint64]wref{})
			}
			if c.keyKinds[id] != want {
				c.report(Malformed, []int32{ti}, "%s uses key %s both as a list and as a register", c.name(ti), c.keyNames[id])
				continue
			}
			if op.Kind == Append || op.Kind == Write {
				if t.Final {
					c.report(Malformed, []int32{ti}, "final observation %s writes %s", c.name(ti), c.keyNames[id])
					continue
				}
				if op.Value == 0 {
					c.report(Malformed, []int32{ti}, "%s writes the reserved value 0 to %s", c.name(ti), c.keyNames[id])
					continue
				}
				w := wkey{id, op.Value}
				if prev, dup := c.lookup(w); dup {
					c.report(Malformed, []int32{prev.txn, ti}, "value %d is written to %s twice (by %s and %s)", op.Value, c.keyNames[id], c.name(prev.txn), c.name(ti))
					continue
				}
				// Mark the transaction's previous write to this key as
				// intermediate: reading it is G1b.
				if n := nth[id]; n > 0 {
					for k := j - 1; k >= 0; k-- {
						if ks[k] == id && (t.Ops[k].Kind == Append || t.Ops[k].Kind == Write) {
							r, _ := c.lookup(wkey{id, t.Ops[k].Value})
							r.final = false
							c.writes[id][t.Ops[k].Value] = r
							break
						}
					}
				}
				c.writes[id][op.Value] = wref{txn: ti, nth: nth[id], final: true}
				nth[id]++
				if op.Kind == Append {
					c.appends[id] = append(c.appends[id], op.Value)
				}
			}
			ks[j] = id
		}
		c.opKey[i] = ks
	}
}

// promote decides which transactions committed: acknowledged ones, final
// observations, and in-doubt ones whose writes a committed transaction saw
// (they must have committed, or the reader is itself wrong; either way the
// graph must include them). In-doubt transactions nobody saw are dropped:
// they may never have happened.
func (c *checker) promote() {
	c.committed = make([]bool, len(c.txns))
	// Only in-doubt writes matter here; looking values up in their (small)
	// maps rather than in every write keeps this pass cheap.
	pending := make([]map[uint64]int32, len(c.keyNames))
	var work []int32
	for i := range c.txns {
		t := &c.txns[i]
		switch {
		case t.Final || t.Outcome == Acknowledged:
			c.committed[i] = true
			work = append(work, int32(i))
		case t.Outcome == Unknown:
			for j, op := range t.Ops {
				if k := c.opKey[i][j]; k >= 0 && (op.Kind == Append || op.Kind == Write) {
					if pending[k] == nil {
						pending[k] = map[uint64]int32{}
					}
					pending[k][op.Value] = int32(i)
				}
			}
		}
	}
	for len(work) > 0 {
		t := work[len(work)-1]
		work = work[:len(work)-1]
		for j, op := range c.txns[t].Ops {
			k := c.opKey[t][j]
			if k < 0 || pending[k] == nil {
				continue
			}
			vals := op.List
			if op.Kind == ReadReg {
				vals = []uint64{op.Value}
			} else if op.Kind != ReadList {
				continue
			}
			for _, v := range vals {
				if w, ok := pending[k][v]; ok && !c.committed[w] {
					c.committed[w] = true
					work = append(work, w)
				}
			}
		}
	}
}

// checkVersions reports two acknowledged commits given the same version of
// a share: the server's order must be total.
func (c *checker) checkVersions() {
	type sv struct {
		share int32
		v     uint64
	}
	seen := map[sv]int32{}
	for i := range c.txns {
		t := int32(i)
		if !c.versioned(t) {
			continue
		}
		k := sv{c.shareOf[i], c.ver(t)}
		if p, dup := seen[k]; dup {
			c.report(DuplicateVersion, []int32{p, t}, "%s and %s were both acknowledged with version %d of share %q", c.name(p), c.name(t), k.v, c.txns[i].Share)
			continue
		}
		seen[k] = t
	}
}

type readRef struct {
	txn int32
	op  int32
}

// longestReads picks, per list key, the longest list a committed
// transaction read. Its order is the key's version order: every other read
// of the key must be a prefix of it.
func (c *checker) longestReads() []readRef {
	longest := make([]readRef, len(c.keyNames))
	for i := range longest {
		longest[i] = readRef{-1, -1}
	}
	for i := range c.txns {
		if !c.committed[i] {
			continue
		}
		for j, op := range c.txns[i].Ops {
			k := c.opKey[i][j]
			if k < 0 || op.Kind != ReadList {
				continue
			}
			if l := longest[k]; l.txn < 0 || len(op.List) > len(c.txns[l.txn].Ops[l.op].List) {
				longest[k] = readRef{int32(i), int32(j)}
			}
		}
	}
	return longest
}

func (c *checker) list(r readRef) []uint64 {
	if r.txn < 0 {
		return nil
	}
	return c.txns[r.txn].Ops[r.op].List
}

// versionedWrites returns, per register key, the last write of each
// versioned transaction in version order, and, per list key, every append
// of versioned transactions in version order.
func (c *checker) versionedWrites() (regs, lists [][]vw) {
	regs = make([][]vw, len(c.keyNames))
	lists = make([][]vw, len(c.keyNames))
	c.unversioned = make([][]int32, len(c.keyNames))
	for i := range c.txns {
		t := int32(i)
		if !c.versioned(t) {
			if c.committed[t] {
				for j, op := range c.txns[i].Ops {
					if k := c.opKey[i][j]; k >= 0 && op.Kind == Write && c.get(wkey{k, op.Value}).final {
						c.unversioned[k] = append(c.unversioned[k], t)
					}
				}
			}
			continue
		}
		for j, op := range c.txns[i].Ops {
			k := c.opKey[i][j]
			if k < 0 {
				continue
			}
			switch op.Kind {
			case Write:
				if c.get(wkey{k, op.Value}).final {
					regs[k] = append(regs[k], vw{c.ver(t), t, op.Value})
				}
			case Append:
				lists[k] = append(lists[k], vw{c.ver(t), t, op.Value})
			}
		}
	}
	byVersion := func(a, b vw) int {
		if a.version != b.version {
			if a.version < b.version {
				return -1
			}
			return 1
		}
		return int(a.txn) - int(b.txn)
	}
	for k := range regs {
		slices.SortStableFunc(regs[k], byVersion)
		slices.SortStableFunc(lists[k], byVersion)
	}
	return regs, lists
}

func (c *checker) addEdge(from, to int32, typ uint8, key int32) {
	if from == to || from < 0 || to < 0 || !c.committed[from] || !c.committed[to] {
		return
	}
	c.edges = append(c.edges, edge{from, to, typ, key})
}

// checkReads checks every read of every committed transaction and derives
// the wr and rw edges.
func (c *checker) checkReads(longest []readRef, regs, listVers [][]vw) {
	// regPos maps a register write to its rank in regs, for rw edges.
	regPos := map[wkey]int{}
	for k, ws := range regs {
		for i, w := range ws {
			regPos[wkey{int32(k), w.val}] = i
		}
	}
	incompatible := make([]bool, len(c.keyNames))
	for i := range c.txns {
		t := int32(i)
		if !c.committed[t] {
			continue
		}
		// own holds, per key, what t itself wrote so far: its reads must
		// reflect it (read your own writes), or the read is Internal.
		var own map[int32][]uint64
		for j, op := range c.txns[i].Ops {
			k := c.opKey[i][j]
			if k < 0 {
				continue
			}
			switch op.Kind {
			case Append, Write:
				if own == nil {
					own = map[int32][]uint64{}
				}
				own[k] = append(own[k], op.Value)
			case ReadReg:
				if mine := own[k]; len(mine) > 0 {
					if op.Value != mine[len(mine)-1] {
						c.report(Internal, []int32{t}, "%s read %d from %s after writing %d to it", c.name(t), op.Value, c.keyNames[k], mine[len(mine)-1])
					}
					continue
				}
				c.checkRegRead(t, k, op, regs[k], regPos)
			case ReadList:
				if v, ok := repeated(op.List); ok {
					// Appended values are unique: one append shows twice.
					c.report(DuplicateWrite, []int32{t}, "%s read %s with %d twice: %s", c.name(t), c.keyNames[k], v, tail(op.List))
					continue
				}
				if mine := own[k]; len(mine) > 0 {
					if len(op.List) < len(mine) || !slices.Equal(op.List[len(op.List)-len(mine):], mine) {
						c.report(Internal, []int32{t}, "%s read %s as %v, which does not end with its own appends %v", c.name(t), c.keyNames[k], tail(op.List), tail(mine))
						continue
					}
				}
				c.checkListRead(t, k, op, longest[k], listVers[k], incompatible)
			}
		}
	}
}

// repeated returns a value list holds twice, if any.
func repeated(list []uint64) (uint64, bool) {
	seen := make(map[uint64]bool, len(list))
	for _, v := range list {
		if seen[v] {
			return v, true
		}
		seen[v] = true
	}
	return 0, false
}

// source classifies the writer of a value t saw, reporting garbage and
// aborted reads. It returns the writer, or -1 (with ok false) when the read
// gives no usable edge.
func (c *checker) source(t, k int32, v uint64) (w wref, ok bool) {
	w, found := c.lookup(wkey{k, v})
	if !found {
		c.report(GarbageRead, []int32{t}, "%s read %d from %s, a value no transaction wrote", c.name(t), v, c.keyNames[k])
		return w, false
	}
	if c.txns[w.txn].Outcome == Aborted {
		if c.txns[t].Final {
			c.report(AbortedVisible, []int32{w.txn, t}, "the final state of %s holds %d, written by aborted %s", c.keyNames[k], v, c.name(w.txn))
		} else {
			c.report(G1a, []int32{t, w.txn}, "%s committed after reading %d from %s, written by aborted %s", c.name(t), v, c.keyNames[k], c.name(w.txn))
		}
		return w, false
	}
	return w, true
}

func (c *checker) checkRegRead(t, k int32, op Op, regs []vw, regPos map[wkey]int) {
	pos := -1 // rank in regs of the write seen; -1 for the initial value
	if op.Value != 0 {
		w, ok := c.source(t, k, op.Value)
		if !ok || w.txn == t {
			return
		}
		if !w.final {
			c.report(G1b, []int32{t, w.txn}, "%s read %d from %s, an intermediate value %s overwrote before committing", c.name(t), op.Value, c.keyNames[k], c.name(w.txn))
			return
		}
		c.addEdge(w.txn, t, wr, k)
		p, ok := regPos[wkey{k, op.Value}]
		if !ok {
			return // the writer has no version: its place in the order is unknown
		}
		pos = p
	}
	if pos < 0 {
		// Every write follows the initial value, including those of
		// in-doubt transactions, which have no place in regs.
		for _, w := range c.unversioned[k] {
			c.addEdge(t, w, rw, k)
		}
	}
	if pos+1 < len(regs) {
		next := regs[pos+1]
		c.addEdge(t, next.txn, rw, k)
		if op.At > 0 && !c.txns[t].Final && next.version <= op.At && next.txn != t {
			c.report(StaleRead, []int32{t, next.txn}, "%s read %s at version %d but missed %s's write of version %d", c.name(t), c.keyNames[k], op.At, c.name(next.txn), next.version)
		}
	}
	if c.txns[t].Final && len(regs) > 0 {
		last := regs[len(regs)-1]
		if pos != len(regs)-1 && (pos >= 0 || op.Value == 0) {
			c.report(LostWrite, []int32{last.txn, t}, "the final state of %s is %d, not %d acknowledged by %s at version %d", c.keyNames[k], op.Value, last.val, c.name(last.txn), last.version)
		}
	}
}

func (c *checker) checkListRead(t, k int32, op Op, longest readRef, vers []vw, incompatible []bool) {
	list := op.List
	full := c.list(longest)
	prefix := len(list) <= len(full)
	for i := 0; prefix && i < len(list); i++ {
		prefix = list[i] == full[i]
	}
	// Most reads are prefixes of the longest one: they share its lookups.
	var fw []found
	if full != nil {
		fw = c.fullWriters(k, full)
	}
	writer := func(i int) (wref, bool) {
		if prefix {
			return fw[i].w, fw[i].ok
		}
		return c.lookup(wkey{k, list[i]})
	}
	usable := prefix
	if !prefix && !incompatible[k] {
		incompatible[k] = true
		c.report(IncompatibleOrder, []int32{t, longest.txn}, "%s read %s as %v, not a prefix of %v read by %s", c.name(t), c.keyNames[k], tail(list), tail(full), c.name(longest.txn))
	}
	garbage, intermediate := false, false
	var aborted map[int32]bool
	last := int32(-1) // writer of the last element not written by t
	for i, v := range list {
		w, ok := writer(i)
		switch {
		case !ok:
			if !garbage {
				c.source(t, k, v)
				garbage = true
			}
			usable = false
			continue
		case c.txns[w.txn].Outcome == Aborted:
			if !aborted[w.txn] {
				c.source(t, k, v)
				if aborted == nil {
					aborted = map[int32]bool{}
				}
				aborted[w.txn] = true
			}
			usable = false
			continue
		case w.txn == t:
			continue
		}
		last = w.txn
		// A transaction's appends are atomic: a read that has one but not
		// the writer's next append to the key saw an intermediate state.
		if !w.final && !intermediate {
			next, ok := wref{}, false
			if i+1 < len(list) {
				next, ok = writer(i + 1)
			}
			if !ok || next.txn != w.txn || next.nth != w.nth+1 {
				c.report(G1b, []int32{t, w.txn}, "%s read %s ending %v: %d without the append %s made after it", c.name(t), c.keyNames[k], tail(list[:i+1]), v, c.name(w.txn))
				intermediate = true
				usable = false
			}
		}
	}
	if usable {
		c.addEdge(last, t, wr, k)
		// The first later append not by t is what t's read came before.
		for p := len(list); p < len(full); p++ {
			if w, ok := fw[p].w, fw[p].ok; ok && w.txn != t {
				if w.txn != last {
					c.addEdge(t, w.txn, rw, k)
				}
				break
			}
		}
	}
	if op.At > 0 && !c.txns[t].Final {
		c.checkListAt(t, k, op, vers, writer)
	}
	if c.txns[t].Final {
		c.checkFinalList(t, k, list)
	}
}

// found is a memoized lookup.
type found struct {
	w  wref
	ok bool
}

func (c *checker) fullWriters(k int32, full []uint64) []found {
	if c.fullW == nil {
		c.fullW = make([][]found, len(c.keyNames))
	}
	if c.fullW[k] == nil {
		fw := make([]found, len(full))
		for i, v := range full {
			fw[i].w, fw[i].ok = c.lookup(wkey{k, v})
		}
		c.fullW[k] = fw
	}
	return c.fullW[k]
}

// checkListAt checks that a read at version At holds every append
// acknowledged with a version <= At.
func (c *checker) checkListAt(t, k int32, op Op, vers []vw, writer func(int) (wref, bool)) {
	n, _ := slices.BinarySearchFunc(vers, op.At+1, func(w vw, v uint64) int {
		if w.version < v {
			return -1
		}
		return 1
	})
	want := 0
	for _, w := range vers[:n] {
		if w.txn != t {
			want++
		}
	}
	have := 0
	in := make(map[uint64]bool, len(op.List))
	for i, v := range op.List {
		in[v] = true
		if w, ok := writer(i); ok && w.txn != t && c.versioned(w.txn) && c.ver(w.txn) <= op.At {
			have++
		}
	}
	if have >= want {
		return
	}
	for _, w := range vers[:n] {
		if w.txn != t && !in[w.val] {
			c.report(StaleRead, []int32{t, w.txn}, "%s read %s at version %d but missed %d appended by %s at version %d", c.name(t), c.keyNames[k], op.At, w.val, c.name(w.txn), w.version)
			return
		}
	}
}

// checkFinalList reports every committed append the final state lacks,
// once per writer.
func (c *checker) checkFinalList(t, k int32, list []uint64) {
	in := make(map[uint64]bool, len(list))
	for _, v := range list {
		in[v] = true
	}
	done := map[int32]bool{}
	for _, v := range c.appends[k] {
		w := c.get(wkey{k, v})
		if in[v] || !c.committed[w.txn] || done[w.txn] {
			continue
		}
		done[w.txn] = true
		c.report(LostWrite, []int32{w.txn, t}, "the final state of %s lacks %d appended by %s (%s)", c.keyNames[k], v, c.name(w.txn), c.txns[w.txn].Outcome)
	}
}

// tail abbreviates a long list for explanations.
func tail(l []uint64) string {
	if len(l) <= 6 {
		return fmt.Sprint(l)
	}
	return fmt.Sprintf("[... %v]", l[len(l)-5:])
}

// wwEdges derives the write-write order: for a list, the order of its
// longest read; for a register, the server's versions.
func (c *checker) wwEdges(longest []readRef, regs [][]vw) {
	for k := range longest {
		prev := int32(-1)
		for _, v := range c.list(longest[k]) {
			w, ok := c.lookup(wkey{int32(k), v})
			if !ok || !c.committed[w.txn] {
				continue
			}
			if prev >= 0 && w.txn != prev {
				c.addEdge(prev, w.txn, ww, int32(k))
			}
			prev = w.txn
		}
	}
	for k, ws := range regs {
		for i := 1; i < len(ws); i++ {
			c.addEdge(ws[i-1].txn, ws[i].txn, ww, int32(k))
		}
	}
}

// voEdges chains the versioned commits of each share in version order. A
// Weft commit is serialized at its version, so a dependency cycle through
// these edges is a dependency against the server's order: a validation or
// ordering bug even when the dependencies alone are acyclic. They also
// place in-doubt transactions, which have no version, relative to the
// versioned ones.
func (c *checker) voEdges() {
	byShare := map[int32][]int32{}
	for i := range c.txns {
		if t := int32(i); c.versioned(t) {
			byShare[c.shareOf[i]] = append(byShare[c.shareOf[i]], t)
		}
	}
	for _, ts := range byShare {
		slices.SortFunc(ts, func(a, b int32) int {
			if c.ver(a) != c.ver(b) {
				if c.ver(a) < c.ver(b) {
					return -1
				}
				return 1
			}
			return int(a) - int(b)
		})
		for i := 1; i < len(ts); i++ {
			if c.ver(ts[i-1]) < c.ver(ts[i]) { // equal versions are reported apart
				c.addEdge(ts[i-1], ts[i], vo, -1)
			}
		}
	}
}

// checkRealTime reports a commit acknowledged before another was sent that
// nevertheless got a higher version: the server's order must respect real
// time (strict serializability).
func (c *checker) checkRealTime() {
	byShare := map[int32][]int32{}
	for i := range c.txns {
		t := int32(i)
		if c.versioned(t) && c.txns[i].End != 0 {
			byShare[c.shareOf[i]] = append(byShare[c.shareOf[i]], t)
		}
	}
	for _, ts := range byShare {
		// Descending version: keep the earliest end among higher versions.
		slices.SortFunc(ts, func(a, b int32) int {
			if c.ver(a) > c.ver(b) {
				return -1
			}
			if c.ver(a) < c.ver(b) {
				return 1
			}
			return int(a) - int(b)
		})
		first := int32(-1)
		for _, t := range ts {
			if first >= 0 && c.ver(first) > c.ver(t) && c.txns[t].Start > c.txns[first].End {
				c.report(RealTime, []int32{first, t}, "%s ended at %d with version %d, yet %s started at %d got the lower version %d", c.name(first), c.txns[first].End, c.ver(first), c.name(t), c.txns[t].Start, c.ver(t))
			}
			if first < 0 || c.txns[t].End < c.txns[first].End {
				first = t
			}
		}
	}
}
