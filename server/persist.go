package server

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/weft-stm/weft/authority"
	"github.com/weft-stm/weft/wire"
)

// DefaultCheckpointEvery is how many changes of a share a store holds
// after its last checkpoint before the server writes a new one.
const DefaultCheckpointEvery = 100_000

// errShareFailed is wrapped by the error of a share whose store failed.
var errShareFailed = errors.New("server: the share's store failed")

// A share with a store answers in two steps. Under the share's lock a
// commit is decided and its change queued in the store (Store.Append, in
// version order), and what must wait for durability (its Ack, the
// Updates, a transfer to a session opening the share) is queued on the
// server's publisher. The publisher's goroutine waits for each item's
// change to be durable, in queue order (for one share, version order;
// each item waits for its own change), and then publishes it under its
// share's lock. So many commits share one sync, every session still gets
// a share's Acks, Updates and transfers in version order, and nothing a
// client sees was not durable first. One goroutine serves every share:
// after a sync it publishes what the sync made durable for all of them,
// where a goroutine per share would each be woken for its own. A share
// whose lock is held when its item's turn comes (a large snapshot being
// built, a checkpoint) is not waited for: its items go to a goroutine of
// its own (publishBusy) until it has caught up, so that it holds up no
// other share.

// publisher publishes the items of every share of a server with a store.
type publisher struct {
	mu      sync.Mutex
	queue   []pubItem
	spare   []pubItem // the other buffer: the two swap roles
	running bool      // a publisher goroutine runs
	// busy holds, for each share a publishBusy goroutine serves, the
	// durable items it has yet to publish, in order.
	busy map[*share][]pubItem
	// pending counts the items queued and not yet finished, of every
	// share; idle is closed when it drops to zero (Shutdown waits on it).
	pending int
	idle    chan struct{}
}

// pubItem is one item to publish once its change is durable.
type pubItem struct {
	sh      *share
	wait    func() error // nil: nothing of its own to wait for
	publish func()       // called under sh's lock once durable
	failed  func()       // called instead, under sh's lock, if the share failed (nil: nothing)
	err     error        // what wait returned
}

// publishLocked publishes publish at once if the share has no store, or
// has nothing waiting and wait is nil; else once wait (if any) and
// everything queued before are durable. If the share's store fails first,
// failed (if not nil) is called instead. sh is locked.
func (sh *share) publishLocked(wait func() error, publish, failed func()) {
	if sh.store == nil || (wait == nil && sh.waiting == 0) {
		publish()
		return
	}
	sh.waiting++
	p := &sh.srv.pub
	p.mu.Lock()
	if p.pending == 0 {
		p.idle = make(chan struct{})
	}
	p.pending++
	p.queue = append(p.queue, pubItem{sh: sh, wait: wait, publish: publish, failed: failed})
	start := !p.running
	p.running = true
	p.mu.Unlock()
	if start {
		go p.run()
	}
}

// run publishes the queued items in order as they become durable, until
// the queue is empty.
func (p *publisher) run() {
	for {
		p.mu.Lock()
		if len(p.queue) == 0 {
			p.running = false
			p.mu.Unlock()
			return
		}
		batch := p.queue
		p.queue = p.spare[:0]
		p.mu.Unlock()
		for i, it := range batch {
			if it.wait != nil {
				it.err = it.wait()
			}
			p.mu.Lock()
			backlog, busy := p.busy[it.sh]
			if busy { // behind the items its goroutine has yet to publish
				p.busy[it.sh] = append(backlog, it)
			}
			p.mu.Unlock()
			switch {
			case busy:
			case it.sh.mu.TryLock():
				it.sh.finishLocked(it)
				it.sh.mu.Unlock()
			default:
				p.mu.Lock()
				if p.busy == nil {
					p.busy = map[*share][]pubItem{}
				}
				p.busy[it.sh] = []pubItem{it}
				p.mu.Unlock()
				go p.publishBusy(it.sh)
			}
			batch[i] = pubItem{} // not kept alive by the reused buffer
		}
		p.mu.Lock()
		p.spare = batch[:0]
		p.mu.Unlock()
	}
}

// publishBusy publishes the durable items of sh that the publisher found
// it busy for, in order, until there are none.
func (p *publisher) publishBusy(sh *share) {
	for {
		p.mu.Lock()
		items := p.busy[sh]
		if len(items) == 0 {
			delete(p.busy, sh)
			p.mu.Unlock()
			return
		}
		p.busy[sh] = nil // still busy: the publisher queues behind
		p.mu.Unlock()
		sh.mu.Lock()
		for _, it := range items {
			sh.finishLocked(it)
		}
		sh.mu.Unlock()
	}
}

// finishLocked publishes it, whose change is durable (or failed to be),
// unless the share failed. sh is locked.
func (sh *share) finishLocked(it pubItem) {
	sh.waiting--
	if it.err != nil {
		sh.failLocked(fmt.Errorf("%w: %w", errShareFailed, it.err))
	}
	switch {
	case sh.failed == nil:
		it.publish()
		sh.maybeCheckpointLocked()
	case it.failed != nil:
		it.failed()
	}
	p := &sh.srv.pub
	p.mu.Lock()
	if p.pending--; p.pending == 0 {
		close(p.idle)
	}
	p.mu.Unlock()
}

// waitIdle waits until every item queued so far is finished, or ctx ends.
func (p *publisher) waitIdle(ctx context.Context) error {
	p.mu.Lock()
	idle := p.idle
	if p.pending == 0 {
		idle = nil
	}
	p.mu.Unlock()
	if idle == nil {
		return nil
	}
	select {
	case <-idle:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// appendLocked queues the change of an acknowledged commit in the store
// and returns what waits for it to be durable (nil without a store). On
// an error the share fails. sh is locked.
func (sh *share) appendLocked(ch wire.Change) (func() error, error) {
	if sh.store == nil {
		return nil, nil
	}
	wait, err := sh.store.Append(sh.name, ch)
	if err != nil {
		err = fmt.Errorf("%w: %w", errShareFailed, err)
		sh.failLocked(err)
		return nil, err
	}
	return wait, nil
}

// beginEpochLocked commits the share's epoch change before its first
// transfer since the server created or loaded it (see authority/epoch.go),
// so that a copy of the share made before a restore from a backup is told
// from one of this history. It waits for nothing: the transfer queued
// after it waits for it to be durable. A share nobody opens gets none,
// and needs none: nothing commits on it. sh is locked.
func (sh *share) beginEpochLocked() error {
	if sh.epoch {
		return nil
	}
	id := sh.srv.cfg.NewEpochID()
	if id == 0 { // taken as no epoch change by the share and its clients
		return errors.New("server: Config.NewEpochID returned 0")
	}
	ch := sh.st.BeginEpoch(id)
	wait, err := sh.appendLocked(ch)
	if err != nil {
		return err
	}
	sh.epoch = true
	sh.publishLocked(wait, func() {}, nil)
	return nil
}

// failLocked stops the share after its store failed: the commits waiting
// for durability are never answered (they may or may not be durable: in
// doubt), every session with the share open gets ShareClosed code
// internal, and the share leaves the server, so that the next open
// restores it from what the store holds. sh is locked.
func (sh *share) failLocked(err error) {
	if sh.failed != nil {
		return
	}
	sh.failed = err
	sh.left.Store(true)
	sh.srv.log.Error("share store failed; share closed", "share", sh.name, "err", err)
	for h := range sh.subs {
		h.gone.Store(true)
		h.sess.deliver(&wire.ShareClosed{Share: h.id, Code: wire.CodeInternal, Message: err.Error()})
	}
	clear(sh.subs)
	// Server.mu is never held with a share's lock: leave the server from
	// another goroutine (or the next open, which sees left). Until then,
	// commits on it are aborted (code closed).
	go func() {
		sh.srv.mu.Lock()
		if sh.srv.mu.shares[sh.name] == sh {
			delete(sh.srv.mu.shares, sh.name)
			sh.srv.mu.failed[sh.name] = struct{}{}
		}
		sh.srv.mu.Unlock()
	}()
}

// maybeCheckpointLocked starts a checkpoint once the store holds
// Config.CheckpointEvery changes after the last, so that a restart
// replays a bounded log. It waits for a moment when none of the share's
// changes is waiting to be published, but not past twice that many: a
// share under steady load may never have such a moment, and its log must
// not grow for good (the store makes the changes queued before a
// checkpoint durable with it: Store.Checkpoint). The checkpoint runs on
// a goroutine of its own, so that the publisher goes on publishing for
// the other shares; it holds the share's lock: the share's commits wait
// meanwhile. sh is locked.
func (sh *share) maybeCheckpointLocked() {
	if sh.store == nil || sh.checkpointing || !sh.checkpointDueLocked() {
		return
	}
	sh.checkpointing = true
	sh.srv.cps.add()
	go func() {
		defer sh.srv.cps.done()
		sh.mu.Lock()
		defer sh.mu.Unlock()
		sh.checkpointing = false
		if sh.failed != nil || !sh.checkpointDueLocked() {
			return // the next publication starts it again
		}
		ver, objs := sh.st.Checkpoint()
		if err := sh.store.Checkpoint(sh.name, ver, objs); err != nil {
			// The changes are still in the store: only the restart is longer.
			sh.srv.log.Warn("checkpoint failed", "share", sh.name, "version", ver, "err", err)
			return
		}
		sh.checkpointed = ver
		sh.srv.log.Info("checkpoint", "share", sh.name, "version", ver, "objects", len(objs)-1)
	}()
}

// checkpoints counts the checkpoint goroutines running, so that Shutdown
// can wait for them. (A sync.WaitGroup would not do: a checkpoint may
// start while Shutdown waits, when the count is zero.)
type checkpoints struct {
	mu   sync.Mutex
	n    int
	idle chan struct{} // closed when n drops to 0; nil if no one waits
}

func (c *checkpoints) add() {
	c.mu.Lock()
	c.n++
	c.mu.Unlock()
}

func (c *checkpoints) done() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n--; c.n == 0 && c.idle != nil {
		close(c.idle)
		c.idle = nil
	}
}

// wait returns once no checkpoint runs, or ctx's error if it ends first.
func (c *checkpoints) wait(ctx context.Context) error {
	c.mu.Lock()
	if c.n == 0 {
		c.mu.Unlock()
		return nil
	}
	if c.idle == nil {
		c.idle = make(chan struct{})
	}
	idle := c.idle
	c.mu.Unlock()
	select {
	case <-idle:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// checkpointDueLocked reports whether the share should write a checkpoint
// now (see maybeCheckpointLocked). sh is locked.
func (sh *share) checkpointDueLocked() bool {
	every := uint64(sh.srv.cfg.CheckpointEvery)
	since := sh.st.Version() - sh.checkpointed
	return since >= every && (sh.waiting == 0 || since >= 2*every)
}

// restoreOnce restores the store's shares the first time it is called,
// and returns the same result every time.
func (s *Server) restoreOnce() error {
	s.restored.Do(func() { s.restoreErr = s.restore() })
	return s.restoreErr
}

// restore loads every share the store holds. It runs once (restoreOnce),
// before the first session.
func (s *Server) restore() error {
	if s.cfg.Store == nil {
		return nil
	}
	loaded, err := s.load(func(string) bool { return true })
	if err != nil {
		return fmt.Errorf("server: restoring the shares: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for name, sh := range loaded {
		s.mu.shares[name] = sh
	}
	if len(loaded) > 0 {
		s.log.Info("shares restored", "shares", len(loaded))
	}
	return nil
}

// restoreOne loads the share name from the store after it failed, or
// returns nil if the store has none.
func (s *Server) restoreOne(name string) (*share, error) {
	loaded, err := s.load(func(n string) bool { return n == name })
	return loaded[name], err
}

// load restores the shares of the store that want accepts.
func (s *Server) load(want func(name string) bool) (map[string]*share, error) {
	loaded := map[string]*share{}
	err := s.cfg.Store.Load(func(name string, version uint64, objects []wire.Object, changes []wire.Change) error {
		if !want(name) {
			return nil
		}
		st, err := authority.Restore(name, s.cfg.Share, version, objects, changes)
		if err != nil {
			return err
		}
		sh := s.newShare(name, st)
		sh.checkpointed = version
		loaded[name] = sh
		return nil
	})
	return loaded, err
}
