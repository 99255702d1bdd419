package stm

import (
	"cmp"
	"iter"
	"slices"
	"sync"
	"sync/atomic"
)

// Map is a transactional map. Conflicts are per key: two transactions that
// touch different keys both commit. Len and iteration read the map's size or
// whole contents, so a concurrent insert (or any write, for iteration)
// invalidates them.
type Map[K comparable, V any] struct {
	base
	mu        sync.RWMutex // guards the cells map against lock-free readers
	cells     map[K]*chain[slot[V]]
	size      chain[int]
	lastWrite atomic.Uint64 // version of the latest write
	set       bool          // the map of a Set: its ops on the wire are set ops
	tombs     []K           // deleted keys whose cells may be dropped once no snapshot sees them; guarded by the object's commit lock
}

type slot[V any] struct {
	present bool
	val     V
}

type mapReads[K comparable] struct {
	keys map[K]uint64 // version seen per key read
	size bool
	all  bool
}

type mapOp[K comparable, V any] struct {
	k   K
	del bool
	val V
}

// mapTx is a transaction's state for one map. reads is shared by every
// nesting generation (reads are never rolled back); idx and ops are copied
// when a nested transaction first writes.
type mapTx[K comparable, V any] struct {
	reads *mapReads[K]
	idx   map[K]int
	ops   []mapOp[K, V]
}

// NewMap returns an empty map of ws.
func NewMap[K comparable, V any](ws *Workspace) *Map[K, V] {
	m := &Map[K, V]{}
	m.initMap(ws)
	return m
}

func (m *Map[K, V]) initMap(ws *Workspace) {
	m.base = base{ws: ws, id: ws.newID()}
	m.cells = map[K]*chain[slot[V]]{}
	m.size.init(0)
}

func (m *Map[K, V]) obj() *base { return &m.base }

func (m *Map[K, V]) cell(k K) *chain[slot[V]] {
	m.mu.RLock()
	c := m.cells[k]
	m.mu.RUnlock()
	return c
}

// state returns tx's entry index and map state, creating them if needed.
func (m *Map[K, V]) state(s *txState) (int, *mapTx[K, V]) {
	i := s.entryFor(m)
	e := &s.entries[i]
	mt, _ := e.pending.(*mapTx[K, V])
	if mt == nil {
		mt = &mapTx[K, V]{reads: &mapReads[K]{}}
		e.pending = mt
	}
	return i, mt
}

func (mt *mapTx[K, V]) op(k K) (mapOp[K, V], bool) {
	if j, ok := mt.idx[k]; ok {
		return mt.ops[j], true
	}
	return mapOp[K, V]{}, false
}

// readKey returns k's slot at the snapshot and records the read.
func (m *Map[K, V]) readKey(s *txState, i int, mt *mapTx[K, V], k K) slot[V] {
	s.settled(i)
	var sl slot[V]
	var ver uint64
	if c := m.cell(k); c != nil {
		n := c.at(s.snap)
		sl, ver = n.val, n.ver
	}
	if mt.reads.keys == nil {
		mt.reads.keys = map[K]uint64{}
	}
	if _, ok := mt.reads.keys[k]; !ok {
		mt.reads.keys[k] = ver
	}
	s.entries[i].flags |= fRead
	return sl
}

func (m *Map[K, V]) get(s *txState, k K) (V, bool) {
	i, mt := m.state(s)
	if op, ok := mt.op(k); ok {
		return op.val, !op.del
	}
	sl := m.readKey(s, i, mt, k)
	return sl.val, sl.present
}

// latest reads k at a fresh snapshot (for calls made with Auto).
func (m *Map[K, V]) latest(k K) (V, bool) {
	s := m.ws.begin(true)
	defer s.release()
	m.settle(s)
	if c := m.cell(k); c != nil {
		n := c.at(s.snap)
		return n.val.val, n.val.present
	}
	var zero V
	return zero, false
}

// write records a put or delete of k in the current nesting generation.
func (m *Map[K, V]) write(s *txState, k K, del bool, v V) {
	i, _ := m.state(s)
	e := s.writable(i)
	mt := e.pending.(*mapTx[K, V])
	e.flags |= fWritten
	if j, ok := mt.idx[k]; ok {
		mt.ops[j] = mapOp[K, V]{k: k, del: del, val: v}
		return
	}
	if mt.idx == nil {
		mt.idx = map[K]int{}
	}
	mt.idx[k] = len(mt.ops)
	mt.ops = append(mt.ops, mapOp[K, V]{k: k, del: del, val: v})
}

// Get returns k's value and whether it is present, and records the read.
// Under Auto it returns the latest committed value.
func (m *Map[K, V]) Get(tx *Tx, k K) (V, bool) {
	if tx.auto {
		return m.latest(k)
	}
	return m.get(tx.st(), k)
}

// Contains reports whether k is present, and records the read.
func (m *Map[K, V]) Contains(tx *Tx, k K) bool {
	_, ok := m.Get(tx, k)
	return ok
}

// Put sets k to v and returns the previous value and whether there was one;
// it reads k. Under Auto it is PutFast and returns the zero values.
func (m *Map[K, V]) Put(tx *Tx, k K, v V) (old V, existed bool) {
	if tx.auto {
		m.PutFast(tx, k, v)
		return old, false
	}
	s := tx.st()
	old, existed = m.get(s, k)
	m.write(s, k, false, v)
	return old, existed
}

// PutFast sets k to v without reading it: it never conflicts.
// Under Auto it commits at once.
func (m *Map[K, V]) PutFast(tx *Tx, k K, v V) {
	if tx.auto {
		m.ws.auto(func(tx *Tx) { m.PutFast(tx, k, v) })
		return
	}
	m.write(tx.st(), k, false, v)
}

// Delete removes k and reports whether it was present; it reads k.
// Under Auto it is DeleteFast and returns false.
func (m *Map[K, V]) Delete(tx *Tx, k K) bool {
	if tx.auto {
		m.DeleteFast(tx, k)
		return false
	}
	s := tx.st()
	_, existed := m.get(s, k)
	var zero V
	m.write(s, k, true, zero)
	return existed
}

// DeleteFast removes k without reading it. Under Auto it commits at once.
func (m *Map[K, V]) DeleteFast(tx *Tx, k K) {
	if tx.auto {
		m.ws.auto(func(tx *Tx) { m.DeleteFast(tx, k) })
		return
	}
	var zero V
	m.write(tx.st(), k, true, zero)
}

// Len returns the number of keys. It reads the size, so a concurrent insert
// or delete conflicts with tx. Under Auto it returns the latest size.
func (m *Map[K, V]) Len(tx *Tx) int {
	if tx.auto {
		s := m.ws.begin(true)
		defer s.release()
		m.settle(s)
		return m.size.at(s.snap).val
	}
	s := tx.st()
	i, mt := m.state(s)
	s.settled(i)
	mt.reads.size = true
	s.entries[i].flags |= fRead
	n := m.size.at(s.snap).val
	for _, op := range mt.ops {
		was := m.readKey(s, i, mt, op.k).present
		switch {
		case was && op.del:
			n--
		case !was && !op.del:
			n++
		}
	}
	return n
}

// All iterates over the map as tx sees it: in key order when the key type is
// ordered (integers, floats, strings, bools) or a reference (*Object, by
// id), so that iteration is deterministic; otherwise in no particular
// order. It reads
// the whole map: any concurrent write to it conflicts with tx.
// Under Auto it iterates over the latest committed state.
func (m *Map[K, V]) All(tx *Tx) iter.Seq2[K, V] {
	return func(yield func(K, V) bool) {
		var snap uint64
		var mt *mapTx[K, V]
		if tx.auto {
			// A snapshot must be announced to be safe from trimming.
			s := m.ws.begin(true)
			defer s.release()
			m.settle(s)
			snap = s.snap
		} else {
			s := tx.st()
			var i int
			i, mt = m.state(s)
			s.settled(i)
			mt.reads.all = true
			s.entries[i].flags |= fRead
			snap = s.snap
		}
		// Collect first: yield may call back into the map.
		type kv struct {
			k K
			v V
		}
		var items []kv
		m.mu.RLock()
		for k, c := range m.cells {
			if mt != nil {
				if _, ok := mt.idx[k]; ok {
					continue
				}
			}
			if n := c.at(snap); n.val.present {
				items = append(items, kv{k, n.val.val})
			}
		}
		m.mu.RUnlock()
		if mt != nil {
			for _, op := range mt.ops {
				if !op.del {
					items = append(items, kv{op.k, op.val})
				}
			}
		}
		if cmpKeys := keyOrder[K](); cmpKeys != nil {
			slices.SortFunc(items, func(a, b kv) int { return cmpKeys(a.k, b.k) })
		}
		for _, it := range items {
			if !yield(it.k, it.v) {
				return
			}
		}
	}
}

func (m *Map[K, V]) validate(e *entry, snap uint64, self *txState) *ConflictError {
	if b := &m.base; b.lockedByOther(self) {
		return conflict(b, nil, "locked by a concurrent commit", 0)
	}
	mt := e.pending.(*mapTx[K, V])
	r := mt.reads
	if lw := m.lastWrite.Load(); r.all && lw > snap {
		return conflict(&m.base, nil, "contents", lw)
	}
	if r.size {
		if n := m.size.latest(); n.ver > snap {
			return conflict(&m.base, nil, "length", n.ver)
		}
	}
	if len(r.keys) == 0 {
		return nil
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	for k := range r.keys {
		if c := m.cells[k]; c != nil {
			if n := c.latest(); n.ver > snap {
				return conflict(&m.base, k, "", n.ver)
			}
		}
	}
	return nil
}

func (m *Map[K, V]) install(e *entry, ver uint64, lw uint64, s *txState) {
	ch := &s.changes
	mt := e.pending.(*mapTx[K, V])
	watched := ch.wants(&m.base)
	var keys []any
	delta := 0
	for _, op := range mt.ops {
		c := m.cells[op.k]
		if c == nil {
			if op.del {
				continue
			}
			c = &chain[slot[V]]{}
			c.init(slot[V]{})
			m.mu.Lock()
			m.cells[op.k] = c
			m.mu.Unlock()
		}
		was := c.latest().val.present
		if op.del && !was {
			continue
		}
		n := c.alloc()
		n.val = slot[V]{present: !op.del, val: op.val}
		c.push(n, ver, lw)
		switch {
		case op.del:
			delta--
			m.tombs = append(m.tombs, op.k)
		case !was:
			delta++
		}
		if watched {
			keys = append(keys, op.k)
		}
	}
	if delta != 0 {
		n := m.size.alloc()
		n.val = m.size.latest().val + delta
		m.size.push(n, ver, lw)
	}
	m.lastWrite.Store(ver)
	if len(m.tombs) >= 64 {
		m.sweepLocked(lw)
	}
	if watched && len(keys) > 0 {
		ch.add(&m.base, keys)
	}
}

// sweepLocked drops the cells of keys deleted at or below the low-water
// mark: every live snapshot sees them absent, as it would with no cell.
func (m *Map[K, V]) sweepLocked(lw uint64) {
	kept := m.tombs[:0]
	m.mu.Lock()
	for _, k := range m.tombs {
		c := m.cells[k]
		if c == nil {
			continue
		}
		n := c.latest()
		switch {
		case n.val.present:
		case n.ver <= lw:
			delete(m.cells, k)
		default:
			kept = append(kept, k)
		}
	}
	m.mu.Unlock()
	clear(m.tombs[len(kept):])
	m.tombs = kept
}

func (m *Map[K, V]) fork(e *entry) {
	mt, ok := e.pending.(*mapTx[K, V])
	if !ok {
		return
	}
	cp := &mapTx[K, V]{reads: mt.reads, ops: append([]mapOp[K, V](nil), mt.ops...)}
	if mt.idx != nil {
		cp.idx = make(map[K]int, len(mt.idx))
		for k, j := range mt.idx {
			cp.idx[k] = j
		}
	}
	e.pending = cp
}

func (m *Map[K, V]) dropWrites(e *entry) {
	if mt, ok := e.pending.(*mapTx[K, V]); ok {
		e.pending = &mapTx[K, V]{reads: mt.reads}
	}
}

// Set is a transactional set. Conflicts are per element.
type Set[T comparable] struct {
	m Map[T, struct{}]
}

// NewSet returns an empty set of ws.
func NewSet[T comparable](ws *Workspace) *Set[T] {
	s := &Set[T]{}
	s.m.initMap(ws)
	s.m.set = true
	return s
}

func (s *Set[T]) observed() *base { return &s.m.base }

// ID returns the set's identity in its workspace.
func (s *Set[T]) ID() ID { return s.m.id }

// Add inserts x and reports whether it was absent; it reads x.
// Under Auto it is AddFast and returns false.
func (s *Set[T]) Add(tx *Tx, x T) bool {
	_, existed := s.m.Put(tx, x, struct{}{})
	return !existed && !tx.auto
}

// AddFast inserts x without reading whether it was there: it never
// conflicts. Under Auto it commits at once.
func (s *Set[T]) AddFast(tx *Tx, x T) { s.m.PutFast(tx, x, struct{}{}) }

// Remove deletes x and reports whether it was present; it reads x.
// Under Auto it is RemoveFast and returns false.
func (s *Set[T]) Remove(tx *Tx, x T) bool { return s.m.Delete(tx, x) }

// RemoveFast deletes x without reading it. Under Auto it commits at once.
func (s *Set[T]) RemoveFast(tx *Tx, x T) { s.m.DeleteFast(tx, x) }

// Contains reports whether x is in the set, and records the read.
func (s *Set[T]) Contains(tx *Tx, x T) bool { return s.m.Contains(tx, x) }

// Len returns the number of elements; see Map.Len.
func (s *Set[T]) Len(tx *Tx) int { return s.m.Len(tx) }

// All iterates over the elements; see Map.All.
func (s *Set[T]) All(tx *Tx) iter.Seq[T] {
	return func(yield func(T) bool) {
		for k := range s.m.All(tx) {
			if !yield(k) {
				return
			}
		}
	}
}

// keyOrder returns a comparison for K when K has a natural order, or nil.
func keyOrder[K comparable]() func(a, b K) int {
	var zero K
	switch any(zero).(type) {
	case string:
		return ordered[K, string]
	case int:
		return ordered[K, int]
	case int8:
		return ordered[K, int8]
	case int16:
		return ordered[K, int16]
	case int32:
		return ordered[K, int32]
	case int64:
		return ordered[K, int64]
	case uint:
		return ordered[K, uint]
	case uint8:
		return ordered[K, uint8]
	case uint16:
		return ordered[K, uint16]
	case uint32:
		return ordered[K, uint32]
	case uint64:
		return ordered[K, uint64]
	case float32:
		return ordered[K, float32]
	case float64:
		return ordered[K, float64]
	case bool:
		return func(a, b K) int {
			x, y := any(a).(bool), any(b).(bool)
			switch {
			case x == y:
				return 0
			case !x:
				return -1
			}
			return 1
		}
	case *Object:
		return func(a, b K) int {
			x, y := any(a).(*Object), any(b).(*Object)
			if x == nil || y == nil {
				return cmp.Compare(boolInt(x != nil), boolInt(y != nil))
			}
			return compareIDs(&x.base, &y.base)
		}
	}
	return nil
}

func ordered[K comparable, O cmp.Ordered](a, b K) int {
	return cmp.Compare(any(a).(O), any(b).(O))
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
