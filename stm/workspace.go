package stm

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
)

// Workspace owns a local replica: its objects, their versions, and the
// order of commits. Transactions on one workspace are serializable; objects
// of two workspaces never meet in one transaction.
type Workspace struct {
	// commit is the only state every committing transaction writes; see
	// commitState. The rest of the workspace is read-mostly.
	commit *commitState

	replica uint64 // the replica id in the objects' ids
	nextID  atomic.Uint64

	waitMu  sync.Mutex
	waiting atomic.Int32 // len(waiters), read on every commit
	waiters []*waiter    // guarded by waitMu
	subMu   sync.Mutex   // serialises changes to observer lists

	hook     func(*CommitRecord) // WithCommitHook
	guard    func(*Tx) error     // WithCommitGuard
	backoff  func(ctx context.Context, attempt int) error
	dispatch func(func())
	wg       sync.WaitGroup // dispatched observer deliveries
	closed   atomic.Bool
}

// commitState is the workspace's version order, the only state every
// commit writes. Commits of disjoint objects do not exclude each other: each
// locks only the objects it writes and takes the next version (ticket). A
// snapshot is the latest version handed out; a reader settles each object
// it reads (base.settle) so that it never sees half of a commit.
//
// It is allocated on its own: 128 bytes is a size class whose objects are
// 128-byte aligned, so its words share one cache line and a commit moves
// that line alone between cores.
type commitState struct {
	ticket atomic.Uint64 // the last version handed out
	lw     atomic.Uint64 // the low-water mark (gc.go)
	_      [112]byte
}

// Option configures a workspace.
type Option func(*Workspace)

// WithBackoff replaces the pause between two attempts of a conflicting
// transaction. attempt counts from 1. Returning an error stops Atomically
// with it. The default yields the processor 2^attempt times (capped), which
// needs no clock.
func WithBackoff(f func(ctx context.Context, attempt int) error) Option {
	return func(ws *Workspace) { ws.backoff = f }
}

// WithReplica sets the replica id that the ids of the objects this
// workspace creates carry. A replica of a server's shares gets it from the
// server (or from its offline cache); an embedded workspace may leave it 0.
func WithReplica(id uint64) Option {
	return func(ws *Workspace) { ws.replica = id }
}

// WithIDsAbove makes the ids of the objects this workspace creates start
// above seq: a client restarting on its offline cache must not give a new
// object the id of one an earlier life of the same replica sent.
func WithIDsAbove(seq uint64) Option {
	return func(ws *Workspace) { ws.nextID.Store(seq) }
}

// WithDispatcher replaces how observer deliveries are run. The default runs
// each subscription's deliveries on a goroutine of its own while it has any,
// and Close waits for them. A deterministic test can pass a function that
// queues the work and runs it later on the test's goroutine.
func WithDispatcher(run func(work func())) Option {
	return func(ws *Workspace) { ws.dispatch = run }
}

// NewWorkspace returns an empty workspace.
func NewWorkspace(opts ...Option) *Workspace {
	ws := &Workspace{commit: new(commitState), backoff: yieldBackoff}
	for _, o := range opts {
		o(ws)
	}
	if ws.dispatch == nil {
		ws.dispatch = func(work func()) {
			ws.wg.Add(1)
			go func() {
				defer ws.wg.Done()
				work()
			}()
		}
	}
	return ws
}

func yieldBackoff(ctx context.Context, attempt int) error {
	n := 1 << min(attempt, 8)
	for range n {
		runtime.Gosched()
	}
	return ctx.Err()
}

// Version returns the latest version handed to a commit: a snapshot taken
// now reads at it.
func (ws *Workspace) Version() uint64 { return ws.commit.ticket.Load() }

func (ws *Workspace) newID() ID { return ID{Replica: ws.replica, Seq: ws.nextID.Add(1)} }

// compareIDs orders objects for commit locks.
func compareIDs(a, b *base) int {
	if c := cmp.Compare(a.id.Replica, b.id.Replica); c != 0 {
		return c
	}
	return cmp.Compare(a.id.Seq, b.id.Seq)
}

// Close stops the workspace: running Retry waits end with ErrClosed, later
// transactions fail with ErrClosed (automatic calls made with Auto then do
// nothing), and Close waits for observer deliveries in flight.
func (ws *Workspace) Close() error {
	if ws.closed.Swap(true) {
		return nil
	}
	ws.waitMu.Lock()
	for _, w := range ws.waiters {
		w.wakeUp()
	}
	ws.waiters = nil
	ws.waiting.Store(0)
	ws.waitMu.Unlock()
	ws.wg.Wait()
	return nil
}

// Begin starts a transaction that the caller commits or aborts. Touching an
// object of another workspace in it panics with ErrWrongWorkspace.
func (ws *Workspace) Begin() *Tx { return ws.begin(false).newTx() }

// BeginReadOnly starts a read-only transaction: it reads one snapshot, never
// conflicts, and its commit fails with ErrReadOnly if it wrote.
func (ws *Workspace) BeginReadOnly() *Tx { return ws.begin(true).newTx() }

func (ws *Workspace) begin(readOnly bool) *txState {
	s := statePool.Get().(*txState)
	s.ws = ws
	s.status = txActive
	s.readOnly = readOnly
	s.snap = s.announce(ws)
	if ws.closed.Load() {
		s.err = ErrClosed
	}
	return s
}

// end returns the state to the pool; the Tx can no longer reach it.
func (tx *Tx) end() {
	s := tx.s
	tx.s = nil
	s.release()
}

// Commit validates and applies the transaction. It returns a *ConflictError
// if something the transaction read was changed since its snapshot, and the
// misuse error if the transaction misused an object. The handle reports the
// authority's verdict; a workspace with no remote authority acknowledges at
// once. Commit of an ended transaction returns ErrTxDone.
func (tx *Tx) Commit() (*Handle, error) {
	if tx.inFn {
		return nil, ErrEndInFn
	}
	if tx.s == nil {
		return nil, ErrTxDone
	}
	ver, err := tx.s.commit(tx)
	tx.end()
	if err != nil {
		return abortedHandle(err), err
	}
	return ackedHandle(ver), nil
}

// Abort discards the transaction. Aborting an ended transaction does nothing.
func (tx *Tx) Abort() {
	if tx.inFn {
		panic(ErrEndInFn)
	}
	if tx.s != nil {
		tx.end()
	}
}

// commit validates the reads and installs the writes as the next version.
// It returns the commit version, or the snapshot for a transaction that
// wrote nothing (read-only transactions serialise at their snapshot).
//
// The protocol (TL2's, over version chains): lock every object written;
// take the next version; validate every read (unchanged since the snapshot
// and not locked by another commit); install the writes at the version;
// unlock. A commit that locks an object after this one validated it takes a
// later version, so validating after taking the version is what makes the
// order serial. A version whose validation failed stays empty: versions may
// skip. Readers settle an object before reading it (base.settle): a commit
// whose version is within their snapshot locked it before taking the version,
// so once it is unlocked, its writes are all there.
func (s *txState) commit(tx *Tx) (uint64, error) {
	if s.err != nil {
		return 0, s.err
	}
	if !s.hasWrites() {
		return s.snap, nil
	}
	ws := s.ws
	if ws.guard != nil {
		if err := ws.guard(tx); err != nil {
			return 0, err
		}
	}
	s.lockWrites()
	ver := ws.commit.ticket.Add(1)
	var err error
	for i := range s.entries {
		e := &s.entries[i]
		if e.read() {
			if cerr := e.c.validate(e, s.snap, s); cerr != nil {
				err = cerr
				break
			}
		}
	}
	var rec *CommitRecord
	if err == nil && ws.hook != nil {
		rec, err = s.makeRecord(ver)
	}
	if err == nil {
		lw := ws.commit.lw.Load()
		for i := range s.entries {
			if e := &s.entries[i]; e.written() {
				e.c.install(e, ver, lw, s)
			}
		}
		if rec != nil {
			ws.hook(rec) // before unlocking: see WithCommitHook
		}
	}
	s.unlockWrites()
	if err != nil {
		return 0, err
	}
	if ws.waiting.Load() != 0 {
		ws.wake()
	}
	if ver%scanEvery == 0 {
		ws.commit.lw.Store(max(ws.commit.lw.Load(), ws.scanLowWater()))
	}
	if len(s.changes.items) != 0 {
		s.changes.deliver(ver, max(s.commits, 1))
	}
	return ver, nil
}

// settle waits while a commit other than s is writing b. A reader calls it
// once per object and transaction before reading: any commit whose version
// is within the reader's snapshot locked b before taking that version, so
// once b is seen unlocked its writes are all installed. A commit holds the
// lock only while it validates and installs, so the wait is short and a
// reader never aborts.
func (b *base) settle(s *txState) {
	for spins := 0; ; spins++ {
		l := b.lock.Load()
		if l == nil || l == s {
			return
		}
		if spins&15 == 15 {
			runtime.Gosched()
		}
	}
}

// lockSpins bounds how long validation waits for an object another commit
// is writing before it reports a conflict: two commits that each read what
// the other writes would otherwise wait for each other.
const lockSpins = 256

// lockWrites locks every object the transaction writes, in id order so
// that commits never wait for each other in a cycle. A lock holder is
// validating or installing and releases soon, so the wait needs no bound:
// blind writes never fail for want of a lock.
func (s *txState) lockWrites() {
	s.locked = s.locked[:0]
	for i := range s.entries {
		if s.entries[i].written() {
			s.locked = append(s.locked, s.entries[i].b)
		}
	}
	if len(s.locked) > 1 {
		slices.SortFunc(s.locked, compareIDs)
	}
	for _, b := range s.locked {
		for spins := 0; !b.lock.CompareAndSwap(nil, s); spins++ {
			if spins&15 == 15 {
				runtime.Gosched()
			}
		}
	}
}

func (s *txState) unlockWrites() {
	for i, b := range s.locked {
		b.lock.Store(nil)
		s.locked[i] = nil
	}
	s.locked = s.locked[:0]
}

// lockedByOther waits a little for a commit other than s holding b, and
// reports whether one still does. Validation calls it before reading a
// version, so that it never misses a commit between lock and install.
func (b *base) lockedByOther(s *txState) bool {
	if s == nil {
		// A waiter's check: a commit in flight is about to change the
		// object, which is reason enough to wake.
		return b.lock.Load() != nil
	}
	for spins := 0; ; spins++ {
		l := b.lock.Load()
		if l == nil || l == s {
			return false
		}
		if spins == lockSpins {
			return true
		}
		if spins&15 == 15 {
			runtime.Gosched()
		}
	}
}

// Atomically runs fn in a transaction and commits it. On a conflict it
// backs off and runs fn again; on tx.Retry it waits until something fn read
// has changed and runs it again. fn may therefore run several times and must
// not have effects outside the transaction. If fn returns an error, the
// transaction is rolled back and that error is returned untouched. If fn
// panics, the transaction is rolled back and the panic goes on.
func (ws *Workspace) Atomically(ctx context.Context, fn func(tx *Tx) error) error {
	_, err := ws.run(ctx, fn, false)
	return err
}

// View runs fn in a read-only transaction: one consistent snapshot, never a
// conflict, never a wait (unless fn calls Retry). A write inside fn makes
// View return ErrReadOnly.
func (ws *Workspace) View(ctx context.Context, fn func(tx *Tx) error) error {
	_, err := ws.run(ctx, fn, true)
	return err
}

// Run is Atomically returning the commit's handle: with a remote authority
// it returns as soon as the commit is applied locally, and the handle tells
// when the authority acknowledges or aborts it. Embedded, the handle is
// already acknowledged.
func (ws *Workspace) Run(ctx context.Context, fn func(tx *Tx) error) (*Handle, error) {
	ver, err := ws.run(ctx, fn, false)
	if err != nil {
		return abortedHandle(err), err
	}
	return ackedHandle(ver), nil
}

func (ws *Workspace) run(ctx context.Context, fn func(tx *Tx) error, readOnly bool) (uint64, error) {
	for attempt := 1; ; attempt++ {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		tx := ws.begin(readOnly).newTx()
		err := Call(tx, fn)
		s := tx.s
		switch {
		case errors.Is(err, ErrRetry) || (err == nil && s.retry):
			// fn's own error wins over a Retry it called and did not
			// pass on.
			w, werr := ws.prepareWait(s)
			tx.end()
			if werr != nil {
				return 0, werr
			}
			if err := w.wait(ctx, ws); err != nil {
				return 0, err
			}
			attempt = 0
			continue
		case err != nil:
			tx.end()
			return 0, err
		}
		ver, err := s.commit(tx)
		tx.end()
		if err == nil {
			return ver, nil
		}
		if !errors.Is(err, ErrConflict) {
			return 0, err
		}
		if berr := ws.backoff(ctx, attempt); berr != nil {
			return 0, berr
		}
	}
}

// Call runs fn on tx as Atomically runs its function, for a layer that
// runs its own commit loop (a client committing on a replica) and then
// commits or aborts tx itself: while fn runs, tx.Commit and
// tx.AwaitChange return ErrEndInFn and tx.Abort panics with it; a touch of
// another workspace's object, or of a retired one, stops fn and is
// returned as ErrWrongWorkspace or ErrRetired; on any other panic tx is
// aborted and the panic goes on. If fn returns nil after a Retry it did
// not pass on, Call returns ErrRetry, on which Atomically would wait.
func Call(tx *Tx, fn func(tx *Tx) error) (err error) {
	tx.inFn = true
	defer func() {
		tx.inFn = false
		if r := recover(); r != nil {
			if (r == ErrWrongWorkspace || r == ErrRetired) && tx.s != nil {
				tx.s.retry = false
				err = r.(error)
				return
			}
			tx.Abort()
			panic(r)
		}
	}()
	err = fn(tx)
	if err == nil && tx.s != nil && tx.s.retry {
		// fn called Retry and did not pass its error on (an OrElse whose
		// alternatives all retried, say): it still waits, as in
		// Atomically.
		err = ErrRetry
	}
	return err
}

// auto runs fn as an automatic transaction: committed at once, retried on a
// conflict, with no one waiting. It is used by calls made with stm.Auto.
func (ws *Workspace) auto(fn func(tx *Tx)) {
	_, err := ws.run(context.Background(), func(tx *Tx) error { fn(tx); return nil }, false)
	if err != nil && !errors.Is(err, ErrClosed) {
		// Only misuse can fail here (an object of another workspace, a
		// retired one, one a commit guard refuses): the same programming
		// error a wrong type would be. The panic's value wraps err.
		panic(fmt.Errorf("stm: automatic transaction failed: %w", err))
	}
}

// Flush waits until every commit of this workspace is acknowledged by its
// authority. Embedded, every commit is acknowledged when it is applied.
func (ws *Workspace) Flush(ctx context.Context) error { return ctx.Err() }
