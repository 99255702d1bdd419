package check

import (
	"fmt"
	"slices"
	"strings"
)

// graph is the dependency graph in compressed sparse row form: the edges
// of node u are off[u]..off[u+1]. Parallel edges are merged, their types
// or-ed together (key is the first edge's, for explanations).
type graph struct {
	n    int
	off  []int32
	from []int32
	to   []int32
	typ  []uint8
	key  []int32
}

func buildGraph(n int, es []edge) *graph {
	slices.SortFunc(es, func(a, b edge) int {
		if a.from != b.from {
			return int(a.from) - int(b.from)
		}
		return int(a.to) - int(b.to)
	})
	g := &graph{n: n, off: make([]int32, n+1)}
	for i := 0; i < len(es); {
		j := i
		var t uint8
		key := int32(-1) // version-order edges have no key
		for ; j < len(es) && es[j].from == es[i].from && es[j].to == es[i].to; j++ {
			t |= es[j].typ
			if key < 0 {
				key = es[j].key
			}
		}
		g.from = append(g.from, es[i].from)
		g.to = append(g.to, es[i].to)
		g.typ = append(g.typ, t)
		g.key = append(g.key, key)
		g.off[es[i].from+1]++
		i = j
	}
	for u := 0; u < n; u++ {
		g.off[u+1] += g.off[u]
	}
	return g
}

// scratch holds per-node arrays reused by every search, so that searching
// many small components costs time proportional to the components, not to
// the whole graph. Arrays are reset by stamps rather than cleared.
type scratch struct {
	member []int32 // member[v] == memberStamp: v is in the current node set
	mStamp int32
	index  []int32 // Tarjan
	low    []int32
	onStk  []bool
	tStamp []int32 // tStamp[v] == tCur: index/low valid
	tCur   int32
	comp   []int32 // component of v in the last Tarjan run
	seen   []int32 // BFS visited stamp
	sCur   int32
	parent []int32 // BFS: edge index that reached v
}

func newScratch(n int) *scratch {
	return &scratch{
		member: make([]int32, n), index: make([]int32, n), low: make([]int32, n),
		onStk: make([]bool, n), tStamp: make([]int32, n), comp: make([]int32, n),
		seen: make([]int32, n), parent: make([]int32, n),
	}
}

func (s *scratch) setMembers(nodes []int32) {
	s.mStamp++
	for _, v := range nodes {
		s.member[v] = s.mStamp
	}
}

func (s *scratch) in(v int32) bool { return s.member[v] == s.mStamp }

// tarjan returns the strongly connected components with two or more nodes
// of the subgraph induced by the current members and the edge types in
// mask, each sorted, in order of their smallest node. It is iterative: a
// 200,000-transaction chain would overflow a recursive one's goroutine
// stack budget needlessly.
func (s *scratch) tarjan(g *graph, nodes []int32, mask uint8) [][]int32 {
	s.tCur++
	type frame struct{ v, e int32 }
	var calls []frame
	var stack []int32
	var comps [][]int32
	counter := int32(0)
	visit := func(v int32) {
		s.tStamp[v] = s.tCur
		s.index[v], s.low[v] = counter, counter
		counter++
		stack = append(stack, v)
		s.onStk[v] = true
		calls = append(calls, frame{v, g.off[v]})
	}
	for _, root := range nodes {
		if s.tStamp[root] == s.tCur {
			continue
		}
		visit(root)
		for len(calls) > 0 {
			f := &calls[len(calls)-1]
			v := f.v
			if f.e < g.off[v+1] {
				e := f.e
				f.e++
				w := g.to[e]
				if g.typ[e]&mask == 0 || !s.in(w) {
					continue
				}
				if s.tStamp[w] != s.tCur {
					visit(w)
				} else if s.onStk[w] {
					s.low[v] = min(s.low[v], s.index[w])
				}
				continue
			}
			calls = calls[:len(calls)-1]
			if len(calls) > 0 {
				p := calls[len(calls)-1].v
				s.low[p] = min(s.low[p], s.low[v])
			}
			if s.low[v] == s.index[v] {
				i := len(stack) - 1
				for stack[i] != v {
					i--
				}
				for _, x := range stack[i:] {
					s.onStk[x] = false
				}
				if len(stack)-i >= 2 {
					comp := slices.Clone(stack[i:])
					slices.Sort(comp)
					comps = append(comps, comp)
				}
				stack = stack[:i]
			}
		}
	}
	slices.SortFunc(comps, func(a, b []int32) int { return int(a[0]) - int(b[0]) })
	for ci, comp := range comps {
		for _, v := range comp {
			s.comp[v] = int32(ci)
		}
	}
	return comps
}

// path finds a shortest path from src to dst (src == dst: a shortest cycle
// through src) among the current members over edges of the types in mask.
// It returns the edge indexes, or nil. budget bounds the nodes it may
// expand; it is decremented.
func (s *scratch) path(g *graph, src, dst int32, mask uint8, budget *int) []int32 {
	s.sCur++
	queue := []int32{src}
	s.seen[src] = s.sCur
	for qi := 0; qi < len(queue); qi++ {
		if *budget <= 0 {
			return nil
		}
		*budget--
		u := queue[qi]
		for e := g.off[u]; e < g.off[u+1]; e++ {
			w := g.to[e]
			if g.typ[e]&mask == 0 || !s.in(w) {
				continue
			}
			if w == dst {
				var es []int32
				es = append(es, e)
				for x := u; x != src; {
					pe := s.parent[x]
					es = append(es, pe)
					x = s.source(g, pe)
				}
				slices.Reverse(es)
				return es
			}
			if s.seen[w] != s.sCur {
				s.seen[w] = s.sCur
				s.parent[w] = e
				queue = append(queue, w)
			}
		}
	}
	return nil
}

// source returns the node an edge leaves.
func (s *scratch) source(g *graph, e int32) int32 { return g.from[e] }

// cycleSearchBudget bounds the BFS work spent on one component, so that a
// pathological history (one giant component) still finishes; the cycle
// found first is reported regardless.
const cycleSearchBudget = 2_000_000

// cycles reports, for every strongly connected component of the graph, a
// short cycle of each class it contains, the way Elle does: G0 among ww
// edges, G1c among ww+wr edges (through a wr edge), G-single as an rw edge
// closed by a ww+wr path, and G2 only when none of those exist.
func (c *checker) cycles(g *graph) (truncated bool) {
	s := newScratch(g.n)
	all := make([]int32, 0, g.n)
	for i := 0; i < g.n; i++ {
		if c.committed[i] {
			all = append(all, int32(i))
		}
	}
	s.setMembers(all)
	sccs := s.tarjan(g, all, ww|wr|rw|vo)
	for _, scc := range sccs {
		budget := cycleSearchBudget
		found := map[Kind]bool{}
		emit := func(es []int32) {
			k := classify(g, es)
			if !found[k] {
				found[k] = true
				c.reportCycle(g, s, k, es)
			}
		}
		s.setMembers(scc)
		// G0: a cycle of ww edges.
		if subs := s.tarjan(g, scc, ww); len(subs) > 0 {
			if es := s.path(g, subs[0][0], subs[0][0], ww, &budget); es != nil {
				emit(es)
			}
		}
		// G1c: a cycle of ww and wr edges through a pure wr edge.
		s.setMembers(scc)
		subs := s.tarjan(g, scc, ww|wr)
		if len(subs) > 0 {
			nodeComp := map[int32]int32{}
			for ci, sub := range subs {
				for _, v := range sub {
					nodeComp[v] = int32(ci)
				}
			}
		g1c:
			for _, sub := range subs {
				for _, u := range sub {
					for e := g.off[u]; e < g.off[u+1]; e++ {
						v := g.to[e]
						if g.typ[e]&(ww|wr) != wr {
							continue
						}
						if cv, ok := nodeComp[v]; !ok || cv != nodeComp[u] {
							continue
						}
						if es := s.path(g, v, u, ww|wr, &budget); es != nil {
							emit(append([]int32{e}, es...))
							break g1c
						}
					}
				}
			}
		}
		// G-single: an rw edge closed by a ww+wr path; G2 otherwise.
		var firstRW int32 = -1
	gsingle:
		for _, u := range scc {
			for e := g.off[u]; e < g.off[u+1]; e++ {
				v := g.to[e]
				if g.typ[e]&(ww|wr|rw) != rw || !s.in(v) {
					continue
				}
				if firstRW < 0 {
					firstRW = e
				}
				if budget <= 0 {
					truncated = true
					break gsingle
				}
				if es := s.path(g, v, u, ww|wr, &budget); es != nil {
					emit(append([]int32{e}, es...))
					break gsingle
				}
			}
		}
		if len(found) == 0 && firstRW >= 0 {
			u, v := s.source(g, firstRW), g.to[firstRW]
			b := cycleSearchBudget
			if es := s.path(g, v, u, ww|wr|rw, &b); es != nil {
				emit(append([]int32{firstRW}, es...))
			}
		}
		if len(found) == 0 {
			// No dependency cycle: the component exists through the
			// version order. Close a cycle through its first dependency.
		vocycle:
			for _, u := range scc {
				for e := g.off[u]; e < g.off[u+1]; e++ {
					if g.typ[e]&(ww|wr|rw) == 0 || !s.in(g.to[e]) {
						continue
					}
					b := cycleSearchBudget
					if es := s.path(g, g.to[e], u, ww|wr|rw|vo, &b); es != nil {
						found[VersionOrder] = true
						c.reportCycle(g, s, VersionOrder, append([]int32{e}, es...))
					}
					break vocycle
				}
			}
		}
		if len(found) == 0 {
			// Cannot happen for a true component, but never hide one.
			c.report(G2, scc[:min(len(scc), 8)], "strongly connected component of %d transactions; no cycle extracted within the search budget", len(scc))
			truncated = true
		}
	}
	return truncated
}

// classify names a cycle by its edges, counting each edge as its strongest
// type (ww before wr before rw), as Adya's definitions do.
func classify(g *graph, es []int32) Kind {
	nwr, nrw := 0, 0
	for _, e := range es {
		switch edgeName(g.typ[e]) {
		case "wr":
			nwr++
		case "rw":
			nrw++
		}
	}
	switch {
	case nrw == 1:
		return GSingle
	case nrw >= 2:
		return G2
	case nwr > 0:
		return G1c
	}
	return G0
}

func (c *checker) reportCycle(g *graph, s *scratch, k Kind, es []int32) {
	// Rotate the cycle to start at a dependency edge, so that runs of
	// version-order edges, which can be long, collapse into one arrow.
	for i, e := range es {
		if g.typ[e] != vo {
			es = append(es[i:], es[:i]...)
			break
		}
	}
	var b strings.Builder
	var txns []int32
	for i := 0; i < len(es); i++ {
		e := es[i]
		u := s.source(g, e)
		txns = append(txns, u)
		b.WriteString(c.name(u))
		if g.typ[e] == vo {
			n := 1
			for i+1 < len(es) && g.typ[es[i+1]] == vo {
				i++
				n++
			}
			fmt.Fprintf(&b, " (v%d) -vo", c.ver(u))
			if n > 1 {
				fmt.Fprintf(&b, "x%d", n)
			}
			b.WriteString("-> ")
			continue
		}
		if c.versioned(u) {
			fmt.Fprintf(&b, " (v%d)", c.ver(u))
		}
		fmt.Fprintf(&b, " -%s[%s]-> ", edgeName(g.typ[e]), c.keyNames[g.key[e]])
	}
	b.WriteString(c.name(txns[0]))
	c.report(k, txns, "%s", b.String())
}
