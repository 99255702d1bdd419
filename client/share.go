package client

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/weft-stm/weft/authority"
	"github.com/weft-stm/weft/stm"
	"github.com/weft-stm/weft/wire"
)

// internal tags the client's own transactions on the replica (snapshot
// loads, Updates, rebuilds), as opposed to the application's.
type internal struct{ share string }

// Share is an open share: its records and their collections, materialised
// in the client's workspace. The replica holds the share's acknowledged
// state with this client's pending commits applied on top (see the
// package doc).
type Share struct {
	c       *Client
	name    string
	handle  wire.ShareHandle
	classes map[uint32]*stm.Class

	readyOnce sync.Once
	ready     chan struct{} // closed when the first transfer is done or failed

	// announced: its OpenShare was queued (a reconnection reopens only
	// announced shares). Under the client's lock.
	announced bool

	// have is the version of the acknowledged state (the last vmap
	// entry's), readable without the share's lock; epoch is the last
	// epoch change in that state (authority.Share.Epoch), stored before
	// have, and only when it changes.
	have  atomic.Uint64
	epoch atomic.Pointer[wire.Epoch]

	// Used by the reader goroutine only.
	transfer []wire.Object
	opened   uint64        // Opened's version
	epochOf  wire.Epoch    // Opened's epoch: a snapshot's (load)
	expect   wire.Transfer // the transfer Opened announced, until its last frame
	// deferred: verdicts of the share's commits that arrived during a
	// transfer (protocol.md section 9 lets them), handled after it, on
	// the state it brings.
	deferred []func()
	// inDelta and later (reader only): while a Delta is applied, the
	// verdicts of our commits it reports wait in later until all of it
	// is, so that no one woken by them sees (or races with) a replica in
	// the middle of it.
	inDelta bool
	later   []func()

	mu struct {
		sync.Mutex
		err    error
		access wire.Access
		// acked is the share as the server acknowledged it, in wire form:
		// what the replica's objects are rebuilt from when pending writes
		// must be undone or reordered. nil until the first transfer.
		acked   *authority.Share
		index   map[wire.ObjectID]stm.Observable // records and their collections
		foreign map[wire.ObjectID]bool           // objects kept out of the replica
		// vmap says, for increasing local versions, which share version of
		// the acknowledged state the replica holds from there on.
		vmap []verPair
		// trimmed is the newest entry dropped from vmap (which keeps the
		// last vmapKeep entries): older local versions translate to 0.
		trimmed verPair
		top     uint64 // the local version of the last vmap entry's state
		// pending are the share's unanswered commits, in CommitID order
		// (which is their local commit order).
		pending []*spec
		// hidden counts the hidden commits in pending: most of the time
		// none, and the checks for them cost nothing.
		hidden int
		// writers are, for each object, the shown pending commits that
		// write it, in order: a transaction that reads the object depends
		// on them (see buildLocked).
		writers map[wire.ObjectID][]*spec
		changed chan struct{} // closed when the replica changes; nil while no one waits
		cached  uint64        // the version of the cache's last checkpoint
		// cacheRetry is the version from which a checkpoint the cache
		// refused (its disk full) is tried again: not at every change,
		// each a copy of the whole share.
		cacheRetry uint64
		// uncacheable: the acknowledged state may hold commits of ours
		// numbered up to this one that are still pending (a snapshot
		// came while they were unanswered), so the cache takes it only
		// once they are answered: a restart must never find a commit
		// both pending and in the cached state. 0 when none.
		uncacheable uint64
		// runOps is applyRun's list of the ops of each Update, kept
		// between runs (emptied) so that a run does not allocate it.
		runOps [][]wire.Op
		// runObjs is applyRun's list of the objects a run writes, kept
		// as runOps is.
		runObjs []wire.ObjectID
	}
}

// verPair says that the replica's local version local holds the share at
// version share (and maybe pending commits).
type verPair struct{ local, share uint64 }

// Open opens the share name, receives its objects and materialises them in
// the client's workspace: its records of the classes given, and their
// collections. The other objects are kept out of the replica, and writes
// to them are ignored: records of another class (one a newer version of
// the application added, say: this one neither sees nor breaks on them),
// their collections, and objects no record refers to (a standalone var
// or collection). Open returns once the replica holds the share's state
// as of Opened's version; Updates follow in the background. A share can be
// open once per client (ErrAlreadyOpen).
func (c *Client) Open(ctx context.Context, name string, classes ...*stm.Class) (*Share, error) {
	s := &Share{c: c, name: name, classes: map[uint32]*stm.Class{}, ready: make(chan struct{})}
	for i, cl := range classes {
		if cl == nil {
			return nil, fmt.Errorf("client: open %q: class %d of %d is nil", name, i+1, len(classes))
		}
		s.classes[uint32(cl.ID())] = cl
	}
	s.mu.index = map[wire.ObjectID]stm.Observable{}
	s.mu.foreign = map[wire.ObjectID]bool{}
	s.mu.writers = map[wire.ObjectID][]*spec{}
	c.mu.Lock()
	if err := c.mu.err; err != nil {
		c.mu.Unlock()
		return nil, err
	}
	for _, o := range c.mu.shares {
		if o.name == name {
			c.mu.Unlock()
			return nil, fmt.Errorf("%w: %q", ErrAlreadyOpen, name)
		}
	}
	for {
		c.mu.nextH++
		if c.mu.shares[c.mu.nextH] == nil {
			break
		}
	}
	s.handle = c.mu.nextH
	c.mu.shares[s.handle] = s // reserved; the server sends nothing for it before OpenShare
	c.mu.Unlock()
	restored, cached, err := s.fromCache()
	if hookAfterFromCache != nil {
		hookAfterFromCache()
	}
	if err != nil {
		c.mu.Lock()
		delete(c.mu.shares, s.handle)
		c.mu.Unlock()
		return nil, fmt.Errorf("client: open %q from the cache: %w", name, err)
	}
	c.mu.Lock()
	if err := c.mu.err; err != nil {
		// The client was closed while the cache loaded: the commits it
		// restored stay in doubt (the cache keeps them for a next life).
		delete(c.mu.shares, s.handle)
		c.mu.Unlock()
		s.mu.Lock()
		s.mu.pending, s.mu.hidden = nil, 0
		s.mu.Unlock()
		for _, p := range restored {
			p.handle.Abandon(fmt.Errorf("%w: commit %v: %w", ErrInDoubt, p.commit.ID, err))
		}
		return nil, err
	}
	m := s.reopenMessage()
	if err := wire.Check(m, c.mu.limits); err != nil {
		delete(c.mu.shares, s.handle)
		c.mu.Unlock()
		return nil, fmt.Errorf("client: open %q: %w", name, err)
	}
	c.enqueueLocked(m)
	s.announced = true
	// The commits made before a restart go after the OpenShare, and
	// become the client's pending commits only now, with the share
	// announced: a reconnection sends both (and, while offline, this
	// sends nothing).
	for _, p := range restored {
		c.mu.pending[p.commit.ID.Seq] = p
		c.enqueueLocked(p.commit)
	}
	if cached {
		s.readyOnce.Do(func() { close(s.ready) })
	}
	c.mu.Unlock()
	select {
	case <-s.ready:
	case <-ctx.Done():
		// The transfer goes on in the background; the share is abandoned.
		s.Close(context.Background())
		return nil, ctx.Err()
	}
	if err := s.Err(); err != nil {
		// The share failed while it opened (a record of a class not
		// given, say): free its name and its handle on the server.
		s.Close(context.Background())
		return nil, err
	}
	return s, nil
}

// guard refuses the commit of a transaction of the workspace that is not
// a share's (the application's own, or stm.Auto) if it wrote an object of
// a share (bound when indexed): the write would stay on this replica
// (ErrShareObject). The share's transactions and the client's internal
// ones pass at once. It takes no lock: it runs inside commits made under
// a share's lock (an observer called by a synchronous dispatcher, say).
func (c *Client) guard(tx *stm.Tx) error {
	switch tx.Tag().(type) {
	case *txWork, internal:
		return nil
	}
	var err error
	tx.Targets(func(o stm.Observable, wrote bool) {
		if err == nil && wrote && stm.Bound(o) {
			err = fmt.Errorf("%w: %v", ErrShareObject, stm.IDOf(o))
		}
	})
	return err
}

// hookAfterFromCache, for tests, runs in Open between the load from the
// cache and the announcement of the share.
var hookAfterFromCache func()

// reopenMessage is the OpenShare that (re)opens s from the version it
// holds. It does not take the share's lock (the client's may be held).
func (s *Share) reopenMessage() *wire.OpenShare {
	m := &wire.OpenShare{Share: s.handle, Name: s.name, Have: s.have.Load()}
	if e := s.epoch.Load(); e != nil {
		m.Epoch = *e
	}
	return m
}

// Name returns the share's name.
func (s *Share) Name() string { return s.name }

// Workspace returns the workspace holding the share's objects (the
// client's).
func (s *Share) Workspace() *stm.Workspace { return s.c.ws }

// Version returns the share version of the acknowledged state the replica
// holds.
func (s *Share) Version() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.versionLocked()
}

func (s *Share) versionLocked() uint64 {
	if s.mu.acked == nil {
		return 0
	}
	return s.mu.acked.Version()
}

// Pending returns how many of the share's commits await their verdict.
func (s *Share) Pending() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.mu.pending)
}

// Flush waits until every commit made on the share before the call is
// acknowledged or aborted (their handles say which), or ctx ends. As
// Client.Flush, it returns the error of the first commit left in doubt,
// and on a share that stopped following the server, its Err.
func (s *Share) Flush(ctx context.Context) error {
	s.c.resumeReader()
	s.mu.Lock()
	ended := s.mu.err
	hs := make([]*stm.Handle, len(s.mu.pending))
	for i, p := range s.mu.pending {
		hs[i] = p.handle
	}
	s.mu.Unlock()
	if ended != nil {
		return ended
	}
	return waitAll(ctx, hs)
}

// Err returns why the share stopped following the server (closed by it,
// the session ended, an Update that could not be applied), or nil.
func (s *Share) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.mu.err
}

// Object returns the share's record or collection with id, if the replica
// has it (pending creations included).
func (s *Share) Object(id wire.ObjectID) (stm.Observable, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	x, ok := s.mu.index[id]
	return x, ok
}

// Records returns the share's records, in id order (pending creations
// included, pending removals excluded).
func (s *Share) Records() []*stm.Object {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*stm.Object
	for _, x := range s.mu.index {
		if o, ok := x.(*stm.Object); ok {
			out = append(out, o)
		}
	}
	slices.SortFunc(out, func(a, b *stm.Object) int { return compareIDs(stm.IDOf(a), stm.IDOf(b)) })
	return out
}

func compareIDs(a, b wire.ObjectID) int {
	switch {
	case a.Replica != b.Replica:
		if a.Replica < b.Replica {
			return -1
		}
		return 1
	case a.Seq < b.Seq:
		return -1
	case a.Seq > b.Seq:
		return 1
	}
	return 0
}

// WaitVersion waits until the replica holds version v of the share or
// later. It fails if ctx ends or the share stops following the server
// before.
func (s *Share) WaitVersion(ctx context.Context, v uint64) error {
	s.c.resumeReader() // what it waits for comes unasked
	for {
		s.mu.Lock()
		ver, err, ch := s.versionLocked(), s.mu.err, s.waitLocked()
		s.mu.Unlock()
		if ver >= v {
			return nil
		}
		if err != nil {
			return err
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Close closes the share on the server. The share no longer follows the
// server, its commits awaiting a verdict are in doubt, and its objects
// are retired (stm.Retire): a transaction that touches one, or stores a
// reference to one, fails with stm.ErrRetired, so that an object kept
// from this opening is never taken for the object of the same id in a
// later opening of the share. The same happens when the server closes
// the share or the session ends for good.
func (s *Share) Close(ctx context.Context) error {
	s.fail(fmt.Errorf("%w: closed by the client", ErrShareClosed))
	s.c.mu.Lock()
	if s.c.mu.shares[s.handle] == s {
		delete(s.c.mu.shares, s.handle)
	}
	// The server answers ShareClosed, ignored now that the handle is free;
	// a reuse of the handle before that answer would be confused with it,
	// so handles are not reused while the counter has not wrapped.
	s.c.enqueueLocked(&wire.CloseShare{Share: s.handle})
	s.c.mu.Unlock()
	return nil
}

// fail stops the share with err (the first error wins); its unanswered
// commits are resolved as in doubt, and its objects retired.
func (s *Share) fail(err error) {
	s.mu.Lock()
	pending, first := s.stopLocked(err)
	s.mu.Unlock()
	if first {
		s.resolveStopped(pending, err, nil, nil)
	}
}

// stopLocked records err as the share's error, unless it has one already
// (then it reports false), retires its objects and takes its unanswered
// commits out, for resolveStopped. Commits made from now on fail with err.
// s.mu is locked.
func (s *Share) stopLocked(err error) ([]*spec, bool) {
	if s.mu.err != nil {
		return nil, false
	}
	s.mu.err = err
	pending := s.mu.pending
	s.mu.pending, s.mu.hidden = nil, 0
	s.changedLocked()
	// The share's objects are retired: a later opening of the share
	// has objects of the same ids, and one kept from this opening
	// must not pass for one of them (its writes would reach the
	// server but not that replica).
	for _, o := range s.mu.index {
		stm.Retire(o)
	}
	for _, p := range pending {
		for _, o := range p.own {
			stm.Retire(o)
		}
		for _, o := range p.removed { // out of the index until the verdict
			stm.Retire(o)
		}
	}
	return pending, true
}

// resolveStopped resolves the commits stopLocked took out as in doubt, or,
// if abort is not nil, as aborted with abort (telling Options.OnAbort),
// but for those unforgotten names (in doubt), and ends Open's wait.
func (s *Share) resolveStopped(pending []*spec, err, abort error, unforgotten []wire.CommitID) {
	s.c.forget(pending...)
	for _, p := range pending {
		if abort == nil || slices.Contains(unforgotten, p.commit.ID) {
			p.handle.Abandon(fmt.Errorf("%w: commit %v: %w", ErrInDoubt, p.commit.ID, err))
			continue
		}
		p.handle.Resolve(0, abort)
		if s.c.opts.OnAbort != nil {
			s.c.opts.OnAbort(s.name, p.commit.ID, abort)
		}
	}
	s.readyOnce.Do(func() { close(s.ready) })
}

// diverged handles ShareClosed code diverged: the copy this replica holds
// is not in the server's history of the share (its data was restored from
// a backup, or replaced, since). Neither the copy nor the commits made on
// it can go on: the server refuses the copy, and would validate the
// commits' reads against versions that now mean other states. So the
// share fails with the server's message; its unanswered commits, which
// the server's history does not hold (the copy would hold their epoch's
// changes), are aborted with code diverged, but for those a resync's
// snapshot came after (snapshotted), which are in doubt: the snapshot
// may hold one, decided before a backup the server was restored from;
// and the cache forgets both first, so that the next Open of the share
// starts from a snapshot of the server's history, and no later life of
// the client sends them again.
func (s *Share) diverged(m *wire.ShareClosed) {
	err := &ShareClosedError{Name: s.name, Code: m.Code, Message: m.Message}
	// The cache forgets under the share's lock: no commit is added
	// meanwhile, and the failure is seen (Err) only once a next Open
	// would find none of it.
	s.mu.Lock()
	if s.mu.err != nil {
		s.mu.Unlock()
		return
	}
	var unforgotten []wire.CommitID // in doubt
	for _, p := range s.mu.pending {
		if p.snapshotted {
			unforgotten = append(unforgotten, p.commit.ID)
		}
	}
	if cache := s.c.opts.Cache; cache != nil {
		for i, p := range s.mu.pending {
			if err := cache.DeletePending(p.commit.ID, i == len(s.mu.pending)-1); err != nil {
				s.c.cacheErr(err)
				unforgotten = append(unforgotten, p.commit.ID)
			}
		}
		s.c.cacheErr(cache.Forget(s.name))
	}
	pending, _ := s.stopLocked(err)
	s.mu.Unlock()
	s.resolveStopped(pending, err, &AbortError{Code: wire.CodeDiverged, Message: m.Message}, unforgotten)
}

// untilFailed returns a context that ends with ctx, or when the share
// fails (its Err), whichever comes first: for a wait that knows nothing of
// the share (tx.AwaitChange).
func (s *Share) untilFailed(ctx context.Context) (context.Context, context.CancelFunc) {
	wctx, cancel := context.WithCancel(ctx)
	go func() {
		for {
			s.mu.Lock()
			err, ch := s.mu.err, s.waitLocked()
			s.mu.Unlock()
			if err != nil {
				cancel()
				return
			}
			select {
			case <-ch:
			case <-wctx.Done():
				return
			}
		}
	}()
	return wctx, cancel
}

func (s *Share) changedLocked() {
	if s.mu.changed != nil {
		close(s.mu.changed)
		s.mu.changed = nil
	}
}

// waitLocked returns a channel closed at the next change of the replica.
// It is made only when someone waits: most changes have no waiter.
func (s *Share) waitLocked() chan struct{} {
	if s.mu.changed == nil {
		s.mu.changed = make(chan struct{})
	}
	return s.mu.changed
}

// receive handles a message for the share; it runs on the reader.
func (s *Share) receive(m wire.Message) {
	if s.Err() != nil {
		return
	}
	var err error
	switch m := m.(type) {
	case *wire.Opened:
		s.mu.Lock()
		s.mu.access = m.Access
		first := s.mu.acked == nil
		s.mu.Unlock()
		s.opened, s.epochOf = m.Version, m.Epoch
		s.transfer = nil
		s.expect = m.Transfer
		if m.Transfer == wire.TransferNone {
			// The client's copy is current: only if it has one, at that
			// version (what its OpenShare said it holds).
			if have := s.have.Load(); first || m.Version != have {
				err = fmt.Errorf("client: share %q: opened at version %d with nothing to transfer, the replica holding version %d", s.name, m.Version, have)
			} else {
				s.readyOnce.Do(func() { close(s.ready) })
			}
		}
	case *wire.SnapshotChunk:
		if s.expect != wire.TransferSnapshot {
			err = fmt.Errorf("client: share %q: a snapshot chunk no Opened announced", s.name)
			break
		}
		s.transfer = append(s.transfer, m.Objects...)
		if !m.More {
			s.expect = wire.TransferNone
			err = s.load(s.opened, s.transfer)
			s.transfer = nil
		}
	case *wire.Delta:
		if s.expect != wire.TransferDelta {
			err = fmt.Errorf("client: share %q: a delta no Opened announced", s.name)
			break
		}
		if !m.More {
			s.expect = wire.TransferNone
		}
		s.inDelta = true
		for _, ch := range m.Changes {
			if ch.Version > s.opened {
				err = fmt.Errorf("client: share %q: a delta to version %d holds version %d", s.name, s.opened, ch.Version)
				break
			}
			if err = s.change(ch); err != nil {
				break
			}
		}
		if have := s.have.Load(); err == nil && !m.More && have != s.opened {
			err = fmt.Errorf("client: share %q: a delta to version %d ended at version %d", s.name, s.opened, have)
		}
		s.inDelta = false
		for _, f := range s.later {
			f()
		}
		clear(s.later)
		s.later = s.later[:0]
		if err == nil && !m.More {
			s.readyOnce.Do(func() { close(s.ready) })
		}
	case *wire.Update:
		err = s.change(wire.Change{Version: m.Version, Origin: m.Origin, Writes: m.Writes})
	case *wire.ShareClosed:
		if m.Code == wire.CodeDiverged {
			s.diverged(m)
			break
		}
		err = &ShareClosedError{Name: s.name, Code: m.Code, Message: m.Message}
	}
	if err != nil {
		s.fail(err)
	}
	if s.expect == wire.TransferNone && len(s.deferred) > 0 {
		ds := s.deferred
		s.deferred = nil
		for _, f := range ds {
			f()
		}
	}
}
