package stm

// Var is a transactional variable holding one value of type T (a register).
// T should be a value type or treated as immutable: a Var stores what it is
// given, and a slice or map shared with other code is not copied.
type Var[T any] struct {
	base
	ch chain[T]
}

// NewVar returns a variable of ws holding initial.
func NewVar[T any](ws *Workspace, initial T) *Var[T] {
	v := &Var[T]{base: base{ws: ws, id: ws.newID()}}
	v.ch.init(initial)
	return v
}

func (v *Var[T]) obj() *base { return &v.base }

// Get returns the value as of tx's snapshot, or the value tx wrote.
// Under Auto it returns the latest committed value.
func (v *Var[T]) Get(tx *Tx) T {
	if tx.auto {
		s := v.ws.begin(true)
		v.settle(s)
		x := v.ch.at(s.snap).val
		s.release()
		return x
	}
	s := tx.st()
	i := s.find(&v.base)
	if i >= 0 {
		e := &s.entries[i]
		if e.written() {
			return e.pending.(*node[T]).val
		}
		if e.read() {
			return v.ch.at(s.snap).val
		}
	} else {
		i = s.entryFor(v)
	}
	s.settled(i)
	n := v.ch.at(s.snap)
	e := &s.entries[i]
	e.flags |= fRead
	e.ver = n.ver
	return n.val
}

// Set writes x. It reads nothing, so it never causes a conflict by itself.
// Under Auto it commits at once as its own transaction.
func (v *Var[T]) Set(tx *Tx, x T) {
	if tx.auto {
		v.ws.auto(func(tx *Tx) { v.Set(tx, x) })
		return
	}
	s := tx.st()
	e := s.writable(s.entryFor(v))
	if e.written() {
		e.pending.(*node[T]).val = x
		return
	}
	n := v.ch.allocIn(s)
	n.val = x
	e.pending = n
	e.flags |= fWritten
}

func (v *Var[T]) validate(e *entry, snap uint64, self *txState) *ConflictError {
	if b := &v.base; b.lockedByOther(self) {
		return conflict(b, nil, "locked by a concurrent commit", 0)
	}
	if n := v.ch.latest(); n.ver > snap {
		return conflict(&v.base, nil, "value", n.ver)
	}
	return nil
}

func (v *Var[T]) install(e *entry, ver uint64, lw uint64, s *txState) {
	ch := &s.changes
	v.ch.pushIn(e.pending.(*node[T]), ver, lw, s)
	if ch.wants(&v.base) {
		ch.add(&v.base, nil)
	}
}

func (v *Var[T]) fork(e *entry) {
	if n, ok := e.pending.(*node[T]); ok {
		cp := v.ch.alloc()
		cp.val = n.val
		e.pending = cp
	}
}

func (v *Var[T]) dropWrites(e *entry) { e.pending = nil }
