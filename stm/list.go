package stm

import (
	"fmt"
	"iter"
	"math/bits"
	"sync/atomic"
)

// A list is stored as chunks of chunkLen elements, each chunk a versioned
// cell copied on write, with a version per element so that conflicts are
// per index. Writing many elements of one chunk in a transaction costs one
// chunk copy, not one allocation per element.
const (
	chunkBits = 6
	chunkLen  = 1 << chunkBits
	chunkMask = chunkLen - 1
)

type chunk[T any] struct {
	elems [chunkLen]T
	vers  [chunkLen]uint64
}

// List is a transactional list: indexable and appendable. It only grows
// (but for SetState, which a client uses to roll back an aborted speculative
// append), so an index valid at a snapshot stays valid. Conflicts are per index; Append
// is a blind write that reads nothing (the elements land at the end as of
// the commit), while Len and reading an element appended by the transaction
// itself read the length.
type List[T any] struct {
	base
	table  atomic.Pointer[[]*chain[chunk[T]]] // grown by the commit holding the list's lock
	length chain[int]
	last   atomic.Uint64 // version of the latest write
}

type listRead struct {
	i   int
	ver uint64
}

type listReads struct {
	elems  []listRead
	length bool
	all    bool
}

type dirtyChunk[T any] struct {
	n    *node[chunk[T]] // the next version: the snapshot's chunk plus our writes
	base *node[chunk[T]] // the version n was copied from
	mask uint64          // elements written
	ci   int             // chunk index
}

type listTx[T any] struct {
	reads   *listReads
	snapLen int
	dirty   []dirtyChunk[T] // in first-write order
	pos     []int32         // chunk index -> 1 + its position in dirty, 0 if clean
	lastCI  int
	lastP   int // position in dirty of chunk lastCI
	appends []T
	trunc   int // 1 + the length truncate set, 0 if none
}

// NewList returns an empty list of ws.
func NewList[T any](ws *Workspace) *List[T] {
	l := &List[T]{base: base{ws: ws, id: ws.newID()}}
	l.length.init(0)
	t := []*chain[chunk[T]]{}
	l.table.Store(&t)
	return l
}

func (l *List[T]) obj() *base { return &l.base }

func (l *List[T]) state(s *txState) (int, *listTx[T]) {
	i := s.entryFor(l)
	e := &s.entries[i]
	lt, _ := e.pending.(*listTx[T])
	if lt == nil {
		s.settled(i)
		lt = &listTx[T]{reads: &listReads{}, snapLen: l.length.at(s.snap).val, lastCI: -1}
		e.pending = lt
	}
	return i, lt
}

func (l *List[T]) chunkAt(ci int, snap uint64) *node[chunk[T]] {
	return (*l.table.Load())[ci].at(snap)
}

func outOfRange(i, n int) string {
	return fmt.Sprintf("stm: list index %d out of range [0:%d]", i, n)
}

// Len returns the length as tx sees it (its own appends included), and
// reads the length. Under Auto it returns the latest length.
func (l *List[T]) Len(tx *Tx) int {
	if tx.auto {
		s := l.ws.begin(true)
		defer s.release()
		l.settle(s)
		return l.length.at(s.snap).val
	}
	s := tx.st()
	i, lt := l.state(s)
	lt.reads.length = true
	s.entries[i].flags |= fRead
	if lt.trunc > 0 {
		return lt.trunc - 1 + len(lt.appends)
	}
	return lt.snapLen + len(lt.appends)
}

// truncate shortens the list to n elements, n at most its length at the
// snapshot, for SetState only: a client rolling back an aborted speculative
// append. It reads the length, so a concurrent append conflicts, and writes
// the dropped elements (to their zero value), so a concurrent read of one
// conflicts too. Only Append and Len may follow it in the transaction.
func (l *List[T]) truncate(tx *Tx, n int) {
	s := tx.st()
	ei, lt := l.state(s)
	if n < 0 || n > lt.snapLen || len(lt.appends) > 0 || lt.trunc > 0 {
		panic(fmt.Sprintf("stm: truncate to %d of a list of %d (+%d appended)", n, lt.snapLen, len(lt.appends)))
	}
	var zero T
	for i := n; i < lt.snapLen; i++ {
		l.Set(tx, i, zero)
	}
	ei, lt = l.state(s)
	e := s.writable(ei)
	lt = e.pending.(*listTx[T])
	e.flags |= fWritten | fRead
	lt.reads.length = true
	lt.trunc = n + 1
}

// Get returns element i. An index out of range panics, as for a slice.
// Under Auto it reads the latest committed state.
func (l *List[T]) Get(tx *Tx, i int) T {
	if tx.auto {
		s := l.ws.begin(true)
		defer s.release()
		l.settle(s)
		n := l.length.at(s.snap).val
		if i < 0 || i >= n {
			panic(outOfRange(i, n))
		}
		return l.chunkAt(i>>chunkBits, s.snap).val.elems[i&chunkMask]
	}
	s := tx.st()
	ei, lt := l.state(s)
	switch {
	case i >= 0 && i < lt.snapLen:
		if p := lt.find(i >> chunkBits); p >= 0 && lt.dirty[p].mask&(1<<(i&chunkMask)) != 0 {
			return lt.dirty[p].n.val.elems[i&chunkMask]
		}
		n := l.chunkAt(i>>chunkBits, s.snap)
		lt.reads.elems = append(lt.reads.elems, listRead{i: i, ver: n.val.vers[i&chunkMask]})
		s.entries[ei].flags |= fRead
		return n.val.elems[i&chunkMask]
	case i >= lt.snapLen && i < lt.snapLen+len(lt.appends):
		// Our own append sits at this index only if the length stays.
		lt.reads.length = true
		s.entries[ei].flags |= fRead
		return lt.appends[i-lt.snapLen]
	}
	panic(outOfRange(i, lt.snapLen+len(lt.appends)))
}

// find returns the position in dirty of chunk ci, or -1.
func (lt *listTx[T]) find(ci int) int {
	if ci == lt.lastCI {
		return lt.lastP
	}
	if ci >= len(lt.pos) || lt.pos[ci] == 0 {
		return -1
	}
	lt.lastCI, lt.lastP = ci, int(lt.pos[ci])-1
	return lt.lastP
}

// Set writes element i without reading it. An index out of range panics.
// Under Auto it commits at once.
func (l *List[T]) Set(tx *Tx, i int, v T) {
	if tx.auto {
		l.ws.auto(func(tx *Tx) { l.Set(tx, i, v) })
		return
	}
	s := tx.st()
	ei, lt := l.state(s)
	e := &s.entries[ei]
	if e.gen != s.gen || s.readOnly {
		e = s.writable(ei)
		lt = e.pending.(*listTx[T])
	}
	e.flags |= fWritten
	switch {
	case i >= 0 && i < lt.snapLen:
		ci := i >> chunkBits
		p := lt.find(ci)
		if p < 0 {
			c := (*l.table.Load())[ci]
			b := c.at(s.snap)
			n := c.alloc()
			n.val = b.val
			if lt.pos == nil {
				nc := (lt.snapLen + chunkMask) >> chunkBits
				lt.pos = make([]int32, nc)
				lt.dirty = make([]dirtyChunk[T], 0, min(nc, 64))
			}
			lt.dirty = append(lt.dirty, dirtyChunk[T]{n: n, base: b, ci: ci})
			p = len(lt.dirty) - 1
			lt.pos[ci] = int32(p + 1)
			lt.lastCI, lt.lastP = ci, p
		}
		d := &lt.dirty[p]
		d.n.val.elems[i&chunkMask] = v
		d.mask |= 1 << (i & chunkMask)
	case i >= lt.snapLen && i < lt.snapLen+len(lt.appends):
		lt.reads.length = true
		e.flags |= fRead
		lt.appends[i-lt.snapLen] = v
	default:
		panic(outOfRange(i, lt.snapLen+len(lt.appends)))
	}
}

// Append adds vs at the end of the list as of the commit. It reads nothing:
// concurrent appends both commit, in commit order. Under Auto it commits at once.
func (l *List[T]) Append(tx *Tx, vs ...T) {
	if tx.auto {
		vs = append([]T(nil), vs...)
		l.ws.auto(func(tx *Tx) { l.Append(tx, vs...) })
		return
	}
	s := tx.st()
	ei, _ := l.state(s)
	e := s.writable(ei)
	lt := e.pending.(*listTx[T])
	e.flags |= fWritten
	lt.appends = append(lt.appends, vs...)
}

// All iterates over the list as tx sees it. It reads every element and the
// length: any concurrent write to the list conflicts with tx.
// Under Auto it iterates over the latest committed state.
func (l *List[T]) All(tx *Tx) iter.Seq2[int, T] {
	return func(yield func(int, T) bool) {
		if tx.auto {
			as := l.ws.begin(true)
			defer as.release()
			l.settle(as)
			snap := as.snap
			n := l.length.at(snap).val
			for i := range n {
				if !yield(i, l.chunkAt(i>>chunkBits, snap).val.elems[i&chunkMask]) {
					return
				}
			}
			return
		}
		s := tx.st()
		ei, lt := l.state(s)
		lt.reads.all = true
		lt.reads.length = true
		s.entries[ei].flags |= fRead
		snap, snapLen := s.snap, lt.snapLen
		appends := lt.appends
		var cur *node[chunk[T]]
		for i := range snapLen {
			if i&chunkMask == 0 {
				cur = l.chunkAt(i>>chunkBits, snap)
			}
			v := cur.val.elems[i&chunkMask]
			if p := lt.find(i >> chunkBits); p >= 0 && lt.dirty[p].mask&(1<<(i&chunkMask)) != 0 {
				v = lt.dirty[p].n.val.elems[i&chunkMask]
			}
			if !yield(i, v) {
				return
			}
		}
		for j, v := range appends {
			if !yield(snapLen+j, v) {
				return
			}
		}
	}
}

func (l *List[T]) validate(e *entry, snap uint64, self *txState) *ConflictError {
	if b := &l.base; b.lockedByOther(self) {
		return conflict(b, nil, "locked by a concurrent commit", 0)
	}
	lt := e.pending.(*listTx[T])
	r := lt.reads
	if last := l.last.Load(); r.all && last > snap {
		return conflict(&l.base, nil, "contents", last)
	}
	if r.length {
		if n := l.length.latest(); n.ver > snap {
			return conflict(&l.base, nil, "length", n.ver)
		}
	}
	if len(r.elems) > 0 {
		t := *l.table.Load()
		for _, rd := range r.elems {
			if v := t[rd.i>>chunkBits].latest().val.vers[rd.i&chunkMask]; v != rd.ver {
				return conflict(&l.base, rd.i, "", v)
			}
		}
	}
	return nil
}

func (l *List[T]) install(e *entry, ver uint64, lw uint64, s *txState) {
	ch := &s.changes
	lt := e.pending.(*listTx[T])
	watched := ch.wants(&l.base)
	var keys []any
	t := *l.table.Load()
	for k := range lt.dirty {
		d := &lt.dirty[k]
		ci := d.ci
		c := t[ci]
		if cur := c.latest(); cur != d.base {
			// Others wrote other elements of this chunk since our snapshot:
			// keep theirs and ours.
			for m := ^d.mask; m != 0; m &= m - 1 {
				j := bits.TrailingZeros64(m)
				d.n.val.elems[j] = cur.val.elems[j]
				d.n.val.vers[j] = cur.val.vers[j]
			}
		}
		for m := d.mask; m != 0; m &= m - 1 {
			j := bits.TrailingZeros64(m)
			d.n.val.vers[j] = ver
			if watched {
				keys = append(keys, ci<<chunkBits+j)
			}
		}
		c.push(d.n, ver, lw)
	}
	if len(lt.appends) > 0 || lt.trunc > 0 {
		n0 := l.length.latest().val
		if lt.trunc > 0 {
			n0 = lt.trunc - 1 // the length was read, so n0 was the latest
		}
		n1 := n0 + len(lt.appends)
		if need := (n1 + chunkLen - 1) >> chunkBits; need > len(t) {
			nt := make([]*chain[chunk[T]], need, max(need, 2*len(t)))
			copy(nt, t)
			for ci := len(t); ci < need; ci++ {
				nt[ci] = &chain[chunk[T]]{}
				nt[ci].init(chunk[T]{})
			}
			l.table.Store(&nt)
			t = nt
		}
		// A chunk already written by this commit is not yet visible (the
		// clock has not reached ver), so it is extended in place.
		var open *node[chunk[T]]
		openCI, inPlace := -1, false
		for j, v := range lt.appends {
			p := n0 + j
			if ci := p >> chunkBits; ci != openCI {
				if open != nil && !inPlace {
					t[openCI].push(open, ver, lw)
				}
				cur := t[ci].latest()
				if inPlace = cur.ver == ver; inPlace {
					open = cur
				} else {
					open = t[ci].alloc()
					open.val = cur.val
				}
				openCI = ci
			}
			open.val.elems[p&chunkMask] = v
			open.val.vers[p&chunkMask] = ver
			if watched {
				keys = append(keys, p)
			}
		}
		if open != nil && !inPlace {
			t[openCI].push(open, ver, lw)
		}
		ln := l.length.alloc()
		ln.val = n1
		l.length.push(ln, ver, lw)
	}
	l.last.Store(ver)
	if watched && len(keys) > 0 {
		ch.add(&l.base, keys)
	}
}

func (l *List[T]) fork(e *entry) {
	lt, ok := e.pending.(*listTx[T])
	if !ok {
		return
	}
	cp := &listTx[T]{reads: lt.reads, snapLen: lt.snapLen, lastCI: -1,
		appends: append([]T(nil), lt.appends...), pos: append([]int32(nil), lt.pos...), trunc: lt.trunc}
	if lt.dirty != nil {
		cp.dirty = make([]dirtyChunk[T], len(lt.dirty))
		t := *l.table.Load()
		for k, d := range lt.dirty {
			n := t[d.ci].alloc()
			n.val = d.n.val
			cp.dirty[k] = dirtyChunk[T]{n: n, base: d.base, mask: d.mask, ci: d.ci}
		}
	}
	e.pending = cp
}

func (l *List[T]) dropWrites(e *entry) {
	if lt, ok := e.pending.(*listTx[T]); ok {
		e.pending = &listTx[T]{reads: lt.reads, snapLen: lt.snapLen, lastCI: -1}
	}
}
