package stm

import (
	"errors"
	"sync"
	"sync/atomic"

	"github.com/weft-stm/weft/wire"
)

// ID identifies a transactional object: the replica that created it and a
// sequence number on that replica (see WithReplica), the same id locally,
// on the wire and on the server.
type ID = wire.ObjectID

// base is embedded in every transactional object.
type base struct {
	ws        *Workspace
	id        ID
	owner     *Object // the record this cell is a field of, or nil
	field     FieldID
	retired   atomic.Bool // see Retire; a field's is its record's
	bound     atomic.Bool // see Bind; a field's is its record's
	fieldName string
	subs      subscribers             // observers of this object
	lock      atomic.Pointer[txState] // held by the commit writing the object
}

func (b *base) ID() ID { return b.id }

// cell is what a transaction's entry points at: the operations the commit
// path needs from every kind of transactional object. install runs while the
// commit holds the object's lock; fork and dropWrites run in the transaction.
type cell interface {
	obj() *base
	// validate reports a conflict if anything e read changed after snap, or
	// if a commit other than self is writing the object. self may be nil.
	validate(e *entry, snap uint64, self *txState) *ConflictError
	// install applies e's writes as version ver and records what changed.
	install(e *entry, ver uint64, lw uint64, s *txState)
	// fork copies e's pending writes so that a nested transaction can change
	// them and still roll back to the copy.
	fork(e *entry)
	// dropWrites forgets e's pending writes and keeps its reads.
	dropWrites(e *entry)
	// record appends e's reads and writes in wire form (commit_record.go).
	record(e *entry, snap uint64, rec *CommitRecord) error
	// named is the object record names: the record for a value field
	// (Var), else the cell itself (commit_record.go).
	named() Observable
}

const (
	fRead    uint8 = 1 << iota // the entry's value (or length/contents) was read
	fWritten                   // the entry has pending writes
	fSettled                   // the object was settled for this snapshot (base.settle)
)

// entry is a transaction's record of one object: what it read (kept across
// nested rollbacks, because the outcome depended on it) and what it wrote.
type entry struct {
	c       cell
	b       *base  // c's identity: comparing it is cheaper than comparing interfaces
	ver     uint64 // version seen by the first read (Var, Counter)
	flags   uint8
	gen     uint32 // nesting generation that owns the write state
	num     int64  // pending counter delta
	pending any    // kind-specific state: *node[T] for a Var, *mapTx, *listTx
}

func (e *entry) read() bool    { return e.flags&fRead != 0 }
func (e *entry) written() bool { return e.flags&fWritten != 0 }

type undo struct {
	idx     int
	flags   uint8
	gen     uint32
	num     int64
	pending any
}

type savepoint struct {
	entries int
	undo    int
	gen     uint32
}

type txStatus uint8

const (
	txActive txStatus = iota
	txDone
)

// Tx is a transaction. It is valid only inside the function given to
// Atomically, View or Run, or between Begin and Commit/Abort; using it
// afterwards panics. A Tx is not safe for concurrent use.
//
// The special value Auto stands for "no transaction": each call made with it
// runs as its own automatic transaction.
type Tx struct {
	s    *txState
	auto bool
	inFn bool // fn of Call (Atomically's, a client's Run) runs on it: the caller commits
}

// Auto makes a single call run as its own automatic transaction, committed
// at once and asynchronously acknowledged: v.Set(stm.Auto, 3). Calls whose
// result depends on the commit (Set.Add telling whether the element was
// absent, Map.Put returning the old value) return the zero value under Auto.
// Reads under Auto see the latest committed state. A write under Auto that
// fails (an object of another workspace, a retired one, one a commit guard
// refuses) panics with an error wrapping the cause.
var Auto = &Tx{auto: true}

// txState is the reusable body of a transaction; a Tx points at it while the
// transaction runs, so that a Tx kept after its end cannot reach another's.
type txState struct {
	// The announcement (gc.go) is read by committers of other processors;
	// it sits apart from the fields the transaction writes.
	annWS   atomic.Pointer[Workspace]
	annSnap atomic.Uint64
	_       [48]byte

	ws       *Workspace
	snap     uint64
	status   txStatus
	readOnly bool
	retry    bool
	err      error // misuse found during the transaction; reported at commit
	gen      uint32
	nextGen  uint32
	entries  []entry
	index    map[*base]int
	undos    []undo
	saves    []savepoint
	changes  changeSet
	txs      []Tx    // handed out one per transaction, never reused
	locked   []*base // objects locked by the commit in progress
	// The entry found last: a transaction usually touches one object
	// several times in a row (read then write, a loop over a list).
	hotB    *base
	hotIdx  int
	tag     any // Tx.SetTag
	commits int // Tx.SetCommits
	spares  spares
}

var statePool = sync.Pool{New: func() any {
	s := &txState{entries: make([]entry, 0, 8)}
	s.annSnap.Store(notActive)
	register(s)
	return s
}}

const indexThreshold = 12

// st returns the live state or panics on use after the end.
func (tx *Tx) st() *txState {
	s := tx.s
	if s == nil {
		if tx.auto {
			panic("stm: stm.Auto is not a transaction; objects handle it themselves")
		}
		panic("stm: transaction used after it ended")
	}
	return s
}

// Snapshot returns the version the transaction reads at.
func (tx *Tx) Snapshot() uint64 { return tx.st().snap }

// Workspace returns the transaction's workspace.
func (tx *Tx) Workspace() *Workspace { return tx.st().ws }

// entryFor returns the index of c's entry, creating it if needed, after
// checking that c belongs to this transaction's workspace (it panics with
// ErrWrongWorkspace if not) and is not retired (ErrRetired).
func (s *txState) entryFor(c cell) int {
	b := c.obj()
	if i := s.find(b); i >= 0 {
		return i
	}
	if b.ws != s.ws {
		// Stop fn here: the object's versions are numbered by another
		// clock, and nothing keeps them for this snapshot, so no read of
		// it can be answered. The runners recover this as an error.
		panic(ErrWrongWorkspace)
	}
	if b.retired.Load() || (b.owner != nil && b.owner.retired.Load()) {
		panic(ErrRetired) // like ErrWrongWorkspace
	}
	s.entries = append(s.entries, entry{c: c, b: b, gen: s.gen})
	i := len(s.entries) - 1
	s.hotB, s.hotIdx = b, i
	if s.index != nil {
		s.index[b] = i
	} else if len(s.entries) > indexThreshold {
		s.index = make(map[*base]int, 2*len(s.entries))
		for j := range s.entries {
			s.index[s.entries[j].b] = j
		}
	}
	return i
}

func (s *txState) find(b *base) int {
	if s.hotB == b {
		return s.hotIdx
	}
	i := -1
	if s.index != nil {
		if j, ok := s.index[b]; ok {
			i = j
		}
	} else {
		for j := range s.entries {
			if s.entries[j].b == b {
				i = j
				break
			}
		}
	}
	if i >= 0 {
		s.hotB, s.hotIdx = b, i
	}
	return i
}

// writable prepares entry i for a write in the current nesting generation
// and returns it. In a nested transaction the first write to an entry of an
// enclosing one saves the old write state so that a rollback restores it.
func (s *txState) writable(i int) *entry {
	e := &s.entries[i]
	if s.readOnly && s.err == nil {
		s.err = ErrReadOnly
	}
	if e.gen != s.gen {
		s.undos = append(s.undos, undo{idx: i, flags: e.flags, gen: e.gen, num: e.num, pending: e.pending})
		e.gen = s.gen
		e.c.fork(e)
	}
	return e
}

// push starts a nested generation.
func (s *txState) push() savepoint {
	sp := savepoint{entries: len(s.entries), undo: len(s.undos), gen: s.gen}
	s.saves = append(s.saves, sp)
	s.nextGen++
	s.gen = s.nextGen
	return sp
}

// merge merges the nested generation into its parent. Its undo records stay:
// if the parent rolls back, they restore the state from before the child.
func (s *txState) merge(sp savepoint) {
	s.saves = s.saves[:len(s.saves)-1]
	s.gen = sp.gen
}

// rollback discards the nested generation's writes and keeps its reads.
func (s *txState) rollback(sp savepoint) {
	for j := len(s.undos) - 1; j >= sp.undo; j-- {
		u := s.undos[j]
		e := &s.entries[u.idx]
		e.flags = (e.flags & fRead) | (u.flags &^ fRead)
		e.gen, e.num, e.pending = u.gen, u.num, u.pending
	}
	s.undos = s.undos[:sp.undo]
	for j := sp.entries; j < len(s.entries); j++ {
		e := &s.entries[j]
		if e.written() {
			e.c.dropWrites(e)
			e.flags &^= fWritten
			e.num = 0
		}
		e.gen = sp.gen
	}
	s.saves = s.saves[:len(s.saves)-1]
	s.gen = sp.gen
}

func (s *txState) reset() {
	for i := range s.entries {
		s.entries[i] = entry{}
	}
	s.entries = s.entries[:0]
	s.index = nil
	s.hotB, s.hotIdx = nil, 0
	for i := range s.undos {
		s.undos[i] = undo{}
	}
	s.undos = s.undos[:0]
	s.saves = s.saves[:0]
	clear(s.changes.items)
	s.changes.items = s.changes.items[:0]
	s.retract()
	s.ws, s.err, s.tag, s.commits = nil, nil, nil, 0
	s.snap, s.gen, s.nextGen = 0, 0, 0
	s.readOnly, s.retry = false, false
}

func (s *txState) hasWrites() bool {
	for i := range s.entries {
		if s.entries[i].written() {
			return true
		}
	}
	return false
}

// Nested runs fn as a nested transaction: its writes become the enclosing
// transaction's when fn returns nil, and are discarded when it returns an
// error (which Nested returns) or panics. What fn read stays in the
// enclosing transaction's read set, since the outcome depended on it.
func (tx *Tx) Nested(fn func(tx *Tx) error) (err error) {
	s := tx.st()
	sp := s.push()
	defer func() {
		if r := recover(); r != nil {
			s.rollback(sp)
			panic(r)
		}
	}()
	err = fn(tx)
	if err != nil || s.retry {
		s.rollback(sp)
		return err
	}
	s.merge(sp)
	return nil
}

// Retry abandons the transaction: Atomically waits until something it read
// has changed, then runs it again. Use it as "return tx.Retry()".
func (tx *Tx) Retry() error {
	tx.st().retry = true
	return ErrRetry
}

// OrElse runs the alternatives in order, each as a nested transaction, and
// returns at the first that does not retry. If every alternative retries,
// OrElse retries the whole transaction, which then waits for a change to
// anything any alternative read. An error other than ErrRetry ends OrElse
// with that error, the alternative's writes discarded.
func (tx *Tx) OrElse(alts ...func(tx *Tx) error) error {
	s := tx.st()
	for _, alt := range alts {
		err := tx.Nested(alt)
		if s.retry || errors.Is(err, ErrRetry) {
			s.retry = false
			continue
		}
		return err
	}
	s.retry = true
	return ErrRetry
}

// newTx hands out a Tx for this state from a slab: one allocation per 64
// transactions, and a Tx is never reused, so one kept after its end cannot
// reach a later transaction.
func (s *txState) newTx() *Tx {
	if len(s.txs) == 0 {
		s.txs = make([]Tx, 64)
	}
	tx := &s.txs[0]
	s.txs = s.txs[1:]
	tx.s = s
	return tx
}

// release ends a state used without a Tx and returns it to the pool.
func (s *txState) release() {
	s.status = txDone
	s.reset()
	raceRelease()
	statePool.Put(s)
}

// settled settles entry i's object once per transaction (see base.settle).
func (s *txState) settled(i int) {
	if e := &s.entries[i]; e.flags&fSettled == 0 {
		e.b.settle(s)
		e.flags |= fSettled
	}
}
