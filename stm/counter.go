package stm

// Counter is a transactional int64 whose increments commute: Add records no
// read, and two transactions adding to one counter never conflict.
type Counter struct {
	base
	ch chain[int64]
}

// NewCounter returns a counter of ws at zero.
func NewCounter(ws *Workspace) *Counter {
	c := &Counter{base: base{ws: ws, id: ws.newID()}}
	c.ch.init(0)
	return c
}

func (c *Counter) obj() *base { return &c.base }

// Add adds d. It is a blind write: applied to whatever the counter holds
// when the transaction commits. Under Auto it commits at once.
func (c *Counter) Add(tx *Tx, d int64) {
	if tx.auto {
		c.ws.auto(func(tx *Tx) { c.Add(tx, d) })
		return
	}
	s := tx.st()
	e := s.writable(s.entryFor(c))
	e.num += d
	e.flags |= fWritten
}

// Get returns the value at tx's snapshot plus tx's own additions, and
// records the read: a concurrent Add then conflicts with tx.
// Under Auto it returns the latest committed value.
func (c *Counter) Get(tx *Tx) int64 {
	if tx.auto {
		s := c.ws.begin(true)
		c.settle(s)
		x := c.ch.at(s.snap).val
		s.release()
		return x
	}
	s := tx.st()
	i := s.entryFor(c)
	s.settled(i)
	n := c.ch.at(s.snap)
	e := &s.entries[i]
	if !e.read() {
		e.flags |= fRead
		e.ver = n.ver
	}
	return n.val + e.num
}

func (c *Counter) validate(e *entry, snap uint64, self *txState) *ConflictError {
	if b := &c.base; b.lockedByOther(self) {
		return conflict(b, nil, "locked by a concurrent commit", 0)
	}
	if n := c.ch.latest(); n.ver > snap {
		return conflict(&c.base, nil, "value", n.ver)
	}
	return nil
}

func (c *Counter) install(e *entry, ver uint64, lw uint64, s *txState) {
	ch := &s.changes
	if e.num == 0 {
		return
	}
	n := c.ch.allocIn(s)
	n.val = c.ch.latest().val + e.num
	c.ch.pushIn(n, ver, lw, s)
	if ch.wants(&c.base) {
		ch.add(&c.base, nil)
	}
}

func (c *Counter) fork(e *entry)       {}
func (c *Counter) dropWrites(e *entry) {}
