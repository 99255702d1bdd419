package stm

import (
	"context"
	"errors"
	"fmt"
	"runtime"
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

	nextID atomic.Uint64

	waiting atomic.Int32 // len(waiters), read without the lock on every commit
	waiters []*waiter    // guarded by commit.mu

	backoff  func(ctx context.Context, attempt int) error
	dispatch func(func())
	wg       sync.WaitGroup // dispatched observer deliveries
	closed   atomic.Bool
}

// commitState is allocated on its own: 128 bytes is a size class whose
// objects are 128-byte aligned, so the lock and the clock share one cache
// line and a commit moves one line between cores; begin reads only the clock.
type commitState struct {
	mu    sync.Mutex
	clock atomic.Uint64
	n     uint64 // commits since the last low-water scan
	lw    uint64 // the low-water mark (gc.go)
	_     [96]byte
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

// Version returns the version of the latest commit.
func (ws *Workspace) Version() uint64 { return ws.commit.clock.Load() }

func (ws *Workspace) newID() ID { return ID(ws.nextID.Add(1)) }

// Close stops the workspace: running Retry waits end with ErrClosed, later
// transactions fail with ErrClosed, and Close waits for observer deliveries
// in flight.
func (ws *Workspace) Close() error {
	if ws.closed.Swap(true) {
		return nil
	}
	ws.commit.mu.Lock()
	for _, w := range ws.waiters {
		close(w.wake)
	}
	ws.waiters = nil
	ws.waiting.Store(0)
	ws.commit.mu.Unlock()
	ws.wg.Wait()
	return nil
}

// Begin starts a transaction that the caller commits or aborts.
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
	if tx.s == nil {
		return nil, ErrTxDone
	}
	ver, err := tx.s.commit()
	tx.end()
	if err != nil {
		return abortedHandle(err), err
	}
	return ackedHandle(ver), nil
}

// Abort discards the transaction. Aborting an ended transaction does nothing.
func (tx *Tx) Abort() {
	if tx.s != nil {
		tx.end()
	}
}

// commit validates the reads and installs the writes as the next version.
// It returns the commit version, or the snapshot for a transaction that
// wrote nothing (read-only transactions serialise at their snapshot).
func (s *txState) commit() (uint64, error) {
	if s.err != nil {
		return 0, s.err
	}
	if !s.hasWrites() {
		return s.snap, nil
	}
	ws := s.ws
	changes := &s.changes
	ws.commit.mu.Lock()
	for i := range s.entries {
		e := &s.entries[i]
		if e.read() {
			if err := e.c.validate(e, s.snap); err != nil {
				ws.commit.mu.Unlock()
				return 0, err
			}
		}
	}
	ver := ws.commit.clock.Load() + 1
	lw := ws.commit.lw
	for i := range s.entries {
		e := &s.entries[i]
		if e.written() {
			e.c.install(e, ver, lw, changes)
		}
	}
	ws.commit.clock.Store(ver)
	if ws.commit.n++; ws.commit.n >= scanEvery {
		ws.commit.n = 0
		ws.commit.lw = ws.scanLowWater(ver)
	}
	if ws.waiting.Load() != 0 {
		ws.wakeLocked()
	}
	ws.commit.mu.Unlock()
	if len(changes.items) != 0 {
		changes.deliver(ver)
	}
	return ver, nil
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
		err := ws.attempt(tx, fn)
		s := tx.s
		switch {
		case s.retry || errors.Is(err, ErrRetry):
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
		ver, err := s.commit()
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

// attempt runs fn once; on a panic it ends the transaction and re-panics.
func (ws *Workspace) attempt(tx *Tx, fn func(tx *Tx) error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			if tx.s != nil {
				tx.end()
			}
			panic(r)
		}
	}()
	return fn(tx)
}

// auto runs fn as an automatic transaction: committed at once, retried on a
// conflict, with no one waiting. It is used by calls made with stm.Auto.
func (ws *Workspace) auto(fn func(tx *Tx)) {
	_, err := ws.run(context.Background(), func(tx *Tx) error { fn(tx); return nil }, false)
	if err != nil && !errors.Is(err, ErrClosed) {
		// Only misuse can fail here (an object of another workspace): the
		// same programming error a wrong type would be.
		panic(fmt.Sprintf("stm: automatic transaction failed: %v", err))
	}
}

// Flush waits until every commit of this workspace is acknowledged by its
// authority. Embedded, every commit is acknowledged when it is applied.
func (ws *Workspace) Flush(ctx context.Context) error { return ctx.Err() }
