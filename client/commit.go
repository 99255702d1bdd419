package client

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"

	"github.com/weft-stm/weft/stm"
	"github.com/weft-stm/weft/transport"
	"github.com/weft-stm/weft/wire"
)

// spec is a commit applied to the replica and sent, awaiting its verdict.
type spec struct {
	share   *Share
	commit  *wire.Commit
	local   uint64                        // the local version it committed at
	writes  []wire.ObjectID               // objects of the share it writes (not those it creates)
	own     map[wire.ObjectID]*stm.Object // records it creates
	created []wire.ObjectID               // everything it creates
	removed map[wire.ObjectID]stm.Observable
	deps    []*spec // pending commits it read from
	handle  *stm.Handle
	done    bool            // answered (under the share's lock)
	reads   []wire.ObjectID // objects of the share it read
	refs    []wire.ObjectID // objects its writes refer to (not those it creates)
	// hidden: its writes are no longer shown in the replica, because the
	// state it read was overwritten by a change the server decided before
	// it (so the server will abort it, unless the overlap was only at the
	// object level), or a snapshot replaced the acknowledged state after
	// it was sent. An Ack newer than the acknowledged state applies its
	// writes like another replica's change.
	hidden bool
	// snapshotted: a snapshot replaced the acknowledged state after it
	// was sent, and may hold it: only then may its Ack name a version the
	// acknowledged state has reached already.
	snapshotted bool
	// sendOn: the connection its committer sends it on (see
	// enqueueCommitLocked), nil once sent or when the writer sends it.
	// Only the committing goroutine uses it.
	sendOn transport.Conn
}

// Run runs fn in a transaction on the replica, applies it there at once
// and sends it to the server without waiting: the returned handle is
// Applied, then Acknowledged with the share version the server gave it,
// or Aborted. Transactions that read what a pending commit wrote depend
// on it, and are aborted with it (an *AbortError with CodeDependency);
// when a commit is aborted, its writes and its dependents' are undone in
// the replica, and other pending commits stay. A conflict found locally
// runs fn again at once; one found by the server aborts the handle (use
// Atomically to retry).
//
// fn's own error is returned untouched, and nothing is applied. A
// transaction that wrote nothing is acknowledged at once, with no round
// trip. A commit alone in flight is written to the connection by Run
// itself (one write, which blocks only while the server reads nothing);
// others go to the client's writer goroutine. tx.Retry waits for a change
// to what fn read (another replica's commit, or this one's), then runs fn
// again. Other errors: ErrNotInShare,
// a *wire.FieldError for a commit over the server's limits, the share's
// Err, ctx's error.
func (s *Share) Run(ctx context.Context, fn func(tx *stm.Tx) error) (*stm.Handle, error) {
	h, err := s.run(ctx, fn, false)
	s.c.resumeReader() // the caller may await the verdict: the reader goroutine receives it
	return h, err
}

// run is Run; self: the caller awaits the verdict with awaitVerdict.
func (s *Share) run(ctx context.Context, fn func(tx *stm.Tx) error, self bool) (*stm.Handle, error) {
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if err := s.Err(); err != nil {
			return nil, err
		}
		h, err := s.attempt(ctx, fn, self)
		switch {
		case errors.Is(err, errAgain):
			continue
		case errors.Is(err, stm.ErrConflict):
			runtime.Gosched()
			continue
		case err != nil:
			return nil, err
		}
		return h, nil
	}
}

// errAgain: run fn again (after Retry's wait).
var errAgain = errors.New("client: again")

// fullError: the client has as many commits in flight as the server
// allows; run the transaction again once one is answered.
type fullError struct{ room chan struct{} }

func (e *fullError) Error() string { return "client: too many commits in flight" }

// hiddenError: the transaction touched objects hidden commits wrote; run
// it again once they are answered.
type hiddenError struct{ specs []*spec }

func (e *hiddenError) Error() string { return "client: touches objects of hidden commits" }

func (s *Share) attempt(ctx context.Context, fn func(tx *stm.Tx) error, self bool) (*stm.Handle, error) {
	tx := s.c.ws.Begin()
	w := s.track(tx)
	defer tx.Abort()
	err := stm.Call(tx, fn) // as Atomically runs it: this loop commits
	if errors.Is(err, stm.ErrRetry) {
		// The wait ends with a change of what fn read, or with the share
		// (which the client's Close ends too).
		wctx, cancel := s.untilFailed(ctx)
		err := tx.AwaitChange(wctx)
		cancel()
		if err != nil {
			if serr := s.Err(); serr != nil {
				return nil, serr
			}
			return nil, err
		}
		return nil, errAgain
	}
	if err != nil {
		return nil, err
	}
	p, err := s.commit(tx, w, self)
	if err != nil {
		return nil, s.commitFailed(ctx, tx, err)
	}
	if p == nil {
		h := stm.NewHandle()
		h.Resolve(s.Version(), nil)
		return h, nil
	}
	if p.sendOn != nil {
		s.c.sendQueued(p.sendOn, true)
		p.sendOn = nil
	}
	return p.handle, nil
}

// commitFailed handles the error of commit: for a full pipeline or hidden
// commits in the way, it waits (see fullError and hiddenError) and
// returns errAgain; else it returns err. (Apart from attempt, so that the
// errors.As targets are not allocated for every commit.)
func (s *Share) commitFailed(ctx context.Context, tx *stm.Tx, err error) error {
	var fe *fullError
	if errors.As(err, &fe) {
		tx.Abort()
		select {
		case <-fe.room:
		case <-ctx.Done():
			return ctx.Err()
		}
		return errAgain
	}
	var he *hiddenError
	if errors.As(err, &he) {
		tx.Abort()
		for _, q := range he.specs {
			select {
			case <-q.handle.Done():
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		return errAgain
	}
	return err
}

// Atomically runs fn in a transaction on the replica and commits it on the
// server, waiting for the verdict: Run, then wait on the handle. A commit
// the server aborts for a conflict runs fn again once the replica holds
// the write that invalidated it; one aborted because a commit it read from
// was, runs fn again at once. A transaction that wrote nothing returns at
// once, with no round trip.
//
// fn's own error is returned untouched, and nothing is sent. Other errors:
// an *AbortError (the server rejected the commit for another reason than
// a conflict), ErrNotInShare, errors wrapping ErrInDoubt (ctx ended while
// waiting for the verdict, or the session ended for good), the share's
// Err. fn may run several times and must have no effects outside the
// transaction.
func (s *Share) Atomically(ctx context.Context, fn func(tx *stm.Tx) error) error {
	for {
		h, err := s.run(ctx, fn, true)
		if err != nil {
			return err
		}
		if err := s.c.awaitVerdict(ctx, h); err != nil {
			return fmt.Errorf("%w: %w", ErrInDoubt, err)
		}
		err = h.Err()
		var ae *AbortError
		if err == nil || !errors.As(err, &ae) {
			return err
		}
		switch ae.Code {
		case wire.CodeDependency:
			continue
		case wire.CodeConflict:
			var need uint64
			for _, r := range ae.Conflicts {
				need = max(need, r.Version)
			}
			if need == 0 {
				// Not a write the replica can wait for: an object the
				// server does not have.
				return err
			}
			if err := s.WaitVersion(ctx, need); err != nil {
				return err
			}
		default:
			return err
		}
	}
}

// commit commits tx on the replica and sends it, as one step under the
// share's lock, so that commits are sent in their local order (which the
// server then keeps) and none is built from a state a concurrent abort is
// undoing. It returns nil for a transaction that wrote nothing. self: the
// caller awaits the verdict (Atomically).
func (s *Share) commit(tx *stm.Tx, w *txWork, self bool) (*spec, error) {
	tx.SetTag(w) // again, had fn set another: Client.guard knows tx by it
	rec, err := tx.Record()
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mu.err != nil {
		return nil, s.mu.err
	}
	if w.err != nil {
		return nil, w.err
	}
	if len(rec.Writes) == 0 && len(w.created) == 0 && len(w.removed) == 0 {
		if _, err := tx.Commit(); err != nil {
			return nil, err
		}
		return nil, nil
	}
	p := &spec{share: s} // its handle once its id is known
	cm, err := s.buildLocked(tx, rec, w, p)
	if err != nil {
		return nil, err
	}
	if hs := s.hiddenWritersLocked(p.reads, p.writes, p.refs); len(hs) > 0 {
		// What tx touched was written by commits no longer shown: it saw
		// a state without them, which the server would not know. Wait for
		// their verdicts (they show again if acknowledged), then run fn
		// again.
		return nil, &hiddenError{hs}
	}
	c := s.c
	c.mu.Lock()
	lim := c.mu.limits
	if lim.MaxPendingCommits > 0 && len(c.mu.pending) >= lim.MaxPendingCommits {
		// The server keeps the verdicts of that many commits per replica
		// (so that a resend is recognised) and refuses more in flight:
		// wait for room, then run fn again.
		if c.mu.room == nil {
			c.mu.room = make(chan struct{})
		}
		room := c.mu.room
		c.mu.Unlock()
		return nil, &fullError{room}
	}
	c.mu.Unlock()
	cm.ID = wire.CommitID{Replica: c.replica, Seq: 1}
	if err := wire.Check(cm, lim); err != nil {
		return nil, fmt.Errorf("client: commit not sent: %w", err)
	}
	if cache := c.opts.Cache; cache != nil {
		// Recorded before it shows: once Run returns, the commit survives
		// a crash of the application and is sent after a restart.
		c.mu.Lock()
		c.mu.seq++
		cm.ID.Seq = c.mu.seq
		c.mu.Unlock()
		if err := cache.PutPending(s.name, cm); err != nil {
			return nil, fmt.Errorf("client: cache: %w", err)
		}
	}
	h, err := tx.Commit()
	if err != nil {
		if cache := c.opts.Cache; cache != nil {
			// Synced: this attempt must never be sent after a restart.
			if derr := cache.DeletePending(cm.ID, true); derr != nil {
				// A restart may send it: run again as well, its intent
				// could apply twice. So it is in doubt (not a conflict,
				// which Atomically would run again), and CacheErr says
				// why.
				c.cacheErr(derr)
				return nil, fmt.Errorf("%w: commit %v failed here (%v), and the cache could not forget it, so a restart may send it: %w",
					ErrInDoubt, cm.ID, err, derr)
			}
		}
		return nil, err
	}
	p.local = h.Version()
	p.commit = cm
	c.mu.Lock()
	if c.opts.Cache == nil {
		c.mu.seq++
		cm.ID.Seq = c.mu.seq
	}
	p.handle = stm.NewHandleFor(cm.ID)
	c.mu.pending[cm.ID.Seq] = p
	if self {
		c.wantVerdictLocked()
	}
	p.sendOn = c.enqueueCommitLocked(cm)
	c.mu.Unlock()
	s.mu.pending = append(s.mu.pending, p)
	for _, id := range p.writes {
		s.mu.writers[id] = append(s.mu.writers[id], p)
	}
	for id, o := range p.own {
		s.indexLocked(id, o)
		for _, cell := range collections(o) {
			s.indexLocked(stm.IDOf(cell), cell)
		}
	}
	for id := range p.removed {
		delete(s.mu.index, id)
	}
	s.changedLocked()
	return p, nil
}

// buildLocked turns tx's record, and what it creates and removes, into a
// commit for the server: creates first, then the writes (less the
// set_field ops on created records, whose create carries their fields),
// then removes. Every read is sent at the share version of the
// acknowledged state the transaction's snapshot held, and names as deps
// the pending commits whose writes it read. Reads of created objects are
// left out: nothing else can have written them. tx must still be open.
func (s *Share) buildLocked(tx *stm.Tx, rec *stm.CommitRecord, w *txWork, p *spec) (*wire.Commit, error) {
	creates, created, own, err := s.createOpsLocked(tx, w)
	if err != nil {
		return nil, err
	}
	removes, err := s.removeOpsLocked(w)
	if err != nil {
		return nil, err
	}
	check := func(id wire.ObjectID) error {
		if _, ok := s.mu.index[id]; !ok && !created[id] {
			// What a hidden commit created left the index until its
			// verdict: wait for it, as for what hidden commits wrote.
			if hs := s.hiddenWritersLocked([]wire.ObjectID{id}); len(hs) > 0 {
				return &hiddenError{hs}
			}
			return fmt.Errorf("%w %q: %v", ErrNotInShare, s.name, id)
		}
		return nil
	}
	at := s.translateLocked(rec.Snapshot)
	// rec is ours (Tx.Record makes it for this commit): its reads and
	// writes are filtered in place into the Commit's, which saves copying
	// them.
	reads := rec.Reads[:0]
	var read objectSet // p.reads, indexed once it is long
	for _, r := range rec.Reads {
		if err := check(r.Object); err != nil {
			return nil, err
		}
		if created[r.Object] {
			continue
		}
		p.reads = read.add(p.reads, r.Object)
		r.Version = at
		reads = append(reads, r)
	}
	writes := rec.Writes[:0]
	if len(creates) > 0 {
		writes = creates
	}
	var seen objectSet // p.writes, indexed once it is long
	for _, op := range rec.Writes {
		if err := check(op.Object); err != nil {
			return nil, err
		}
		if created[op.Object] {
			if op.Kind == wire.OpSetField && own[op.Object] != nil {
				continue
			}
		} else {
			p.writes = seen.add(p.writes, op.Object)
		}
		writes = append(writes, op)
	}
	writes = append(writes, removes...)
	for _, op := range removes {
		if p.removed == nil {
			p.removed = map[wire.ObjectID]stm.Observable{}
		}
		p.removed[op.Object] = s.mu.index[op.Object]
		p.writes = seen.add(p.writes, op.Object)
	}
	for id := range created {
		p.created = append(p.created, id)
	}
	p.refs = refsOf(writes, created)
	// The deps: for each object read, its shown pending writers (the
	// transaction saw them all, or its local commit would conflict), from
	// the last one that read it too (which depends on those before it)
	// on. Which version of which part was read does not tell: a counter's
	// value holds every pending increment, and a rebuild whose ops cancel
	// out installs no version.
	for _, id := range p.reads {
		ws := s.mu.writers[id]
		from := 0
		for k := len(ws) - 1; k >= 0; k-- {
			if slices.Contains(ws[k].reads, id) {
				from = k
				break
			}
		}
		for _, q := range ws[from:] {
			if !slices.Contains(p.deps, q) {
				p.deps = append(p.deps, q)
			}
		}
	}
	// An object a pending commit created exists only if that commit is
	// acknowledged: a transaction that touched one, or stored a reference
	// to one, depends on its creator (and the server then takes the read
	// of it as the creator's; a reference to an object not in the share
	// would be invalid).
	for _, ids := range [3][]wire.ObjectID{p.reads, p.writes, p.refs} {
		for _, id := range ids {
			if s.mu.acked.Has(id) {
				continue
			}
			for _, q := range s.mu.pending {
				if !q.hidden && slices.Contains(q.created, id) && !slices.Contains(p.deps, q) {
					p.deps = append(p.deps, q)
				}
			}
		}
	}
	p.own = own
	cm := &wire.Commit{Share: s.handle, Snapshot: at, Reads: reads, Writes: writes}
	for _, q := range p.deps {
		if s.c.opts.InjectNoDeps {
			break
		}
		cm.Deps = append(cm.Deps, q.commit.ID)
	}
	return cm, nil
}

// refsOf returns the objects that values written by ops refer to, but
// for those in created (made by the same commit), each once.
func refsOf(ops []wire.Op, created map[wire.ObjectID]bool) []wire.ObjectID {
	var out []wire.ObjectID
	for i := range ops {
		ops[i].Stored(func(v wire.Value) {
			if v.Kind() == wire.KindRef && !created[v.Ref()] && !slices.Contains(out, v.Ref()) {
				out = append(out, v.Ref())
			}
		})
	}
	return out
}

// objectSet indexes a list of objects that grows by add, once it is too
// long to search: most commits write an object or a few, and a map per
// commit would cost more than the search.
type objectSet map[wire.ObjectID]bool

// objectSetMin is the length from which add indexes the list.
const objectSetMin = 16

// add appends id to ids, which holds the objects added so far, unless it
// is there, and returns ids.
func (set *objectSet) add(ids []wire.ObjectID, id wire.ObjectID) []wire.ObjectID {
	if n := len(ids); n > 0 && ids[n-1] == id {
		return ids // the fields of one record come together
	}
	if len(ids) < objectSetMin {
		if slices.Contains(ids, id) {
			return ids
		}
		return append(ids, id)
	}
	if *set == nil {
		*set = make(objectSet, 2*len(ids))
		for _, x := range ids {
			(*set)[x] = true
		}
	}
	if (*set)[id] {
		return ids
	}
	(*set)[id] = true
	return append(ids, id)
}

// has reports whether ids, built by add, holds id.
func (set objectSet) has(ids []wire.ObjectID, id wire.ObjectID) bool {
	if set != nil {
		return set[id]
	}
	return slices.Contains(ids, id)
}

// acked handles the Ack of p with share version v (or a Delta's change
// that reports it). It runs on the reader.
func (s *Share) acked(p *spec, v uint64) {
	s.mu.Lock()
	if p.done || s.mu.err != nil {
		s.mu.Unlock()
		return
	}
	s.dropLocked(p)
	for _, o := range p.removed { // out of the share for good
		stm.Unbind(o)
	}
	ch := wire.Change{Version: v, Origin: p.commit.ID, Writes: p.commit.Writes}
	// An Ack the acknowledged state cannot take (a version out of order)
	// is checked before anything else changes: the commit is then in
	// doubt, and the cache must keep it unanswered, to send it again.
	apply := !p.hidden || v > s.mu.acked.Version()
	var err error
	switch {
	case apply:
		err = s.mu.acked.ApplyChange(ch)
	case !p.snapshotted:
		// Hidden by a change of that version or older, which the server
		// decided before it: the Ack contradicts the server's order.
		err = fmt.Errorf("ack of commit %v at version %d, which the share passed without it", p.commit.ID, v)
	}
	if cache := s.c.opts.Cache; cache != nil && err == nil {
		// Forgotten before its change reaches the cache (in the same
		// order on disk): a restart must never find it both pending and
		// in the cached state. Losing both, or the change alone, only
		// leaves the cache older.
		s.c.cacheErr(cache.DeletePending(p.commit.ID, false))
	}
	switch {
	case err != nil:
	case !p.hidden:
		// The replica shows p already.
		s.cacheChangeLocked(ch)
		s.advanceLocked(p.local, v)
	case apply:
		s.cacheChangeLocked(ch)
		err = s.applyLocked(v, ch.Writes, p.own)
	case s.mu.uncacheable > 0:
		// Already in the acknowledged state (a snapshot held it), and
		// the cache waited for p's verdict: it may have the state now.
		s.checkpointCacheLocked()
	}
	s.mu.Unlock()
	s.c.forget(p)
	if err != nil {
		err = fmt.Errorf("client: share %q: %w", s.name, err)
		// The share fails first: whoever the handle wakes sees it failed.
		s.fail(err)
		p.handle.Abandon(fmt.Errorf("%w: %w", ErrInDoubt, err))
		return
	}
	if s.inDelta {
		s.later = append(s.later, func() { s.resolveAcked(p, v) })
		return
	}
	s.resolveAcked(p, v)
}

// resolveAcked tells p's handle, and the application, that p was
// acknowledged at share version v.
func (s *Share) resolveAcked(p *spec, v uint64) {
	p.handle.Resolve(v, nil)
	if s.c.opts.OnAcknowledge != nil {
		s.c.opts.OnAcknowledge(s.name, p.commit.ID, v)
	}
}

// aborted handles the Abort of p: p and every pending commit that depends
// on it, directly or not, are aborted, and the objects they wrote are
// rebuilt from the acknowledged state with the surviving pending commits
// re-applied. It runs on the reader.
func (s *Share) aborted(p *spec, m *wire.Abort) {
	s.mu.Lock()
	if p.done || s.mu.err != nil {
		s.mu.Unlock()
		return
	}
	gone := []*spec{p}
	isGone := map[*spec]bool{p: true}
	for _, q := range s.mu.pending {
		for _, d := range q.deps {
			if isGone[d] && !isGone[q] {
				isGone[q] = true
				gone = append(gone, q)
			}
		}
	}
	rebuild := map[wire.ObjectID]bool{}
	for _, q := range gone {
		s.dropLocked(q)
		for _, o := range q.own { // never existed in the share
			stm.Unbind(o)
		}
		if q.hidden {
			continue // not shown
		}
		for _, id := range q.writes {
			rebuild[id] = true
		}
		s.unmembershipLocked(q)
	}
	var err error
	var unforgotten error // the cache could not forget them: in doubt
	if len(rebuild) > 0 {
		var local uint64
		local, err = s.rebuildLocked(rebuild, nil)
		if err == nil {
			s.advanceLocked(local, s.mu.acked.Version())
		}
	}
	s.mu.Unlock()
	s.c.forget(gone...)
	if cache := s.c.opts.Cache; cache != nil {
		// Forgotten for good before anyone learns of the rejection: sent
		// again after a restart, it could be acknowledged by a server that
		// crashed since (rejections are not kept). The last delete is
		// synced, which makes the earlier ones durable too.
		for i, q := range gone {
			if err := cache.DeletePending(q.commit.ID, i == len(gone)-1); err != nil {
				s.c.cacheErr(err)
				if unforgotten == nil {
					unforgotten = err
				}
			}
		}
		// If the cache waited for these verdicts (see uncacheable), it
		// may now have the acknowledged state.
		s.mu.Lock()
		if s.mu.err == nil && s.mu.uncacheable > 0 {
			s.checkpointCacheLocked()
		}
		s.mu.Unlock()
	}
	if err != nil {
		s.fail(err)
	}
	for i, q := range gone {
		var err error = &AbortError{Code: m.Code, Message: m.Message, Conflicts: m.Conflicts}
		if i > 0 {
			err = &AbortError{Code: wire.CodeDependency,
				Message: fmt.Sprintf("read from commit %v, which was aborted (%v)", p.commit.ID, m.Code)}
		}
		if unforgotten != nil {
			// Sent again after a restart, it could be acknowledged (by a
			// server that crashed since, and forgot the rejection).
			q.handle.Abandon(fmt.Errorf("%w: commit %v: %v, but the cache could not forget it, and may send it again: %w",
				ErrInDoubt, q.commit.ID, err, unforgotten))
			continue
		}
		q.handle.Resolve(0, err)
		if s.c.opts.OnAbort != nil {
			s.c.opts.OnAbort(s.name, q.commit.ID, err)
		}
	}
}

// dropLocked removes an answered p from the share's pending state.
func (s *Share) dropLocked(p *spec) {
	p.done = true
	// Verdicts come mostly in order: the head goes without moving the rest.
	if len(s.mu.pending) > 0 && s.mu.pending[0] == p {
		s.mu.pending[0] = nil
		s.mu.pending = s.mu.pending[1:]
	} else if i := slices.Index(s.mu.pending, p); i >= 0 {
		s.mu.pending = slices.Delete(s.mu.pending, i, i+1)
	}
	if p.hidden {
		s.mu.hidden--
	} else {
		s.unwriteLocked(p)
	}
	if checkInvariants {
		s.checkHiddenLocked()
	}
}

// unwriteLocked removes p from the writers of the objects it writes.
func (s *Share) unwriteLocked(p *spec) {
	for _, id := range p.writes {
		ws := s.mu.writers[id]
		if len(ws) > 0 && ws[0] == p {
			ws[0] = nil
			ws = ws[1:]
		} else if i := slices.Index(ws, p); i >= 0 {
			ws = slices.Delete(ws, i, i+1)
		}
		if len(ws) == 0 {
			delete(s.mu.writers, id)
		} else {
			s.mu.writers[id] = ws
		}
	}
}

// View runs fn in a read-only transaction on the replica: one consistent
// state (acknowledged state and pending commits), with no round trip.
// tx.Retry waits for a change to what fn read, Updates included; the wait
// ends with the share's Err if the share is closed or fails meanwhile.
// The objects of a closed (or failed) share are retired: a View that
// touches one returns stm.ErrRetired.
func (s *Share) View(ctx context.Context, fn func(tx *stm.Tx) error) error {
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		tx := s.c.ws.BeginReadOnly()
		err := stm.Call(tx, fn)
		if !errors.Is(err, stm.ErrRetry) {
			if err != nil {
				tx.Abort()
				return err
			}
			_, err = tx.Commit()
			return err
		}
		wctx, cancel := s.untilFailed(ctx)
		err = tx.AwaitChange(wctx)
		cancel()
		tx.Abort()
		if err != nil {
			if serr := s.Err(); serr != nil {
				return serr
			}
			return err
		}
	}
}

// ViewVersion is View that also reports the share version of the
// acknowledged state fn saw (pending commits of this client may show on
// top of it).
func (s *Share) ViewVersion(ctx context.Context, fn func(tx *stm.Tx) error) (uint64, error) {
	var ver uint64
	err := s.View(ctx, func(tx *stm.Tx) error {
		s.mu.Lock()
		ver = s.translateLocked(tx.Snapshot())
		s.mu.Unlock()
		return fn(tx)
	})
	return ver, err
}
