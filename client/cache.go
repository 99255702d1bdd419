package client

import (
	"fmt"
	"math"
	"slices"

	"github.com/weft-stm/weft/authority"
	"github.com/weft-stm/weft/stm"
	"github.com/weft-stm/weft/wire"
)

// Cache keeps a client's replicas and its unanswered commits on disk
// (Options.Cache), so that an application starts, reads and commits while
// its server is away, and survives being killed: store/pebblestore's Store
// is one, in the same embedded store a server uses.
//
// The acknowledged state of each share is kept as a server keeps shares
// (checkpoints, then the changes after them); the client's commits are
// kept from before they are applied until they are answered, with the
// client's replica id and the highest commit number used, so that after a
// restart every one is sent again, in order, under its own id (the server
// recognises one it already decided), and no number is used twice.
type Cache interface {
	// AppendLazy records the next change of share's acknowledged state;
	// it need not be synced. It must not keep ch.Writes once it returns
	// (encode or copy it): the client reuses the array.
	AppendLazy(share string, ch wire.Change) error
	// Checkpoint records share's whole acknowledged state at version,
	// replacing what came before, synced.
	Checkpoint(share string, version uint64, objects []wire.Object) error
	// Forget drops share's state and changes, synced: Load no longer
	// holds it.
	Forget(share string) error
	// Load calls fn for every share held (see server.Store's Load).
	Load(fn func(share string, version uint64, objects []wire.Object, changes []wire.Change) error) error
	// Replica returns the replica id and the highest commit number
	// recorded (0, 0 for a new cache).
	Replica() (replica, seq uint64, err error)
	// SetReplica records the replica id and highest commit number, synced.
	SetReplica(replica, seq uint64) error
	// PutPending records an unanswered commit of share and that its number
	// is the highest used, synced. Commits of several shares are recorded
	// concurrently, not in number order: the highest number recorded must
	// never go down, or a restart would number a commit again.
	PutPending(share string, c *wire.Commit) error
	// DeletePending forgets an answered commit, synced if sync is set
	// (a synced write also makes the earlier ones durable). An
	// acknowledged commit need not be: sent again after a crash, it is
	// answered with the verdict the server keeps. A rejected commit must
	// be, before the rejection is reported: the server does not keep
	// rejections across its own crashes, and might acknowledge it.
	DeletePending(id wire.CommitID, sync bool) error
	// LoadPending calls fn with every unanswered commit, in number order.
	LoadPending(fn func(share string, c *wire.Commit) error) error
}

// DefaultCacheCheckpointEvery is how many changes of a share the cache
// holds after its checkpoint before the client writes a new one, unless
// Options.CacheCheckpointEvery says otherwise.
const DefaultCacheCheckpointEvery = 10_000

// cacheErr records the first error of the cache: the replica goes on,
// only what a restart finds is older. Client.CacheErr reports it.
func (c *Client) cacheErr(err error) {
	if err == nil {
		return
	}
	c.mu.Lock()
	if c.mu.cacheErr == nil {
		c.mu.cacheErr = err
	}
	c.mu.Unlock()
}

// CacheErr returns the first error the cache returned, or nil.
func (c *Client) CacheErr() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.mu.cacheErr
}

// applyAckedLocked applies a decided change to the acknowledged state,
// and to the cache.
func (s *Share) applyAckedLocked(ch wire.Change) error {
	if err := s.mu.acked.ApplyChange(ch); err != nil {
		return err
	}
	s.cacheChangeLocked(ch)
	return nil
}

// cacheChangeLocked records ch, just applied to the acknowledged state,
// in the cache (a checkpoint when one is due).
func (s *Share) cacheChangeLocked(ch wire.Change) {
	if cache := s.c.opts.Cache; cache != nil {
		if s.mu.uncacheable > 0 || s.mu.acked.Version()-s.mu.cached >= uint64(s.c.opts.CacheCheckpointEvery) {
			// (No change is appended meanwhile, even when it fails: the
			// cache's log of changes must have no gap.)
			if s.mu.acked.Version() >= s.mu.cacheRetry {
				s.checkpointCacheLocked()
			}
		} else {
			s.c.cacheErr(cache.AppendLazy(s.name, ch))
		}
	}
}

// checkpointCacheLocked writes the acknowledged state to the cache, unless
// it may hold commits still pending (see uncacheable): then a later call
// writes it, once they are answered.
func (s *Share) checkpointCacheLocked() {
	cache := s.c.opts.Cache
	if cache == nil {
		return
	}
	if s.mu.uncacheable > 0 {
		if len(s.mu.pending) > 0 && s.mu.pending[0].commit.ID.Seq <= s.mu.uncacheable {
			return
		}
		s.mu.uncacheable = 0
	}
	v, objs := s.mu.acked.Checkpoint()
	if err := cache.Checkpoint(s.name, v, objs); err != nil {
		s.c.cacheErr(err)
		s.mu.cacheRetry = v + uint64(s.c.opts.CacheCheckpointEvery)
		return
	}
	s.mu.cached = v
}

// fromCache loads the share's acknowledged state and its unanswered
// commits from the cache, if it holds the share, and shows them: the
// replica is then as it was when the application last ran. It reports
// whether the cache held the share, and returns the unanswered commits,
// pending on the share, for the caller to make pending on the client when
// it announces the share (a reconnection sends the client's pending
// commits, and one of a share not yet opened would be aborted).
func (s *Share) fromCache() ([]*spec, bool, error) {
	cache := s.c.opts.Cache
	if cache == nil {
		return nil, false, nil
	}
	var acked *authority.Share
	err := cache.Load(func(name string, version uint64, objects []wire.Object, changes []wire.Change) error {
		if name != s.name {
			return nil
		}
		var err error
		acked, err = authority.Restore(name, ackedConfig, version, objects, changes)
		return err
	})
	if err != nil {
		return nil, false, err
	}
	if acked == nil {
		// A share's state is cached before any commit on it is made: its
		// commits without it could be neither shown nor sent (a later
		// life would send them, long after their verdicts).
		err = cache.LoadPending(func(share string, cm *wire.Commit) error {
			if share == s.name {
				return fmt.Errorf("client: the cache is damaged: it holds commit %v of share %q, not the share", cm.ID, s.name)
			}
			return nil
		})
		return nil, false, err
	}
	const unbounded = math.MaxInt32
	var objs []wire.Object
	for _, ch := range acked.Snapshot(wire.Limits{MaxFrameSize: unbounded, MaxObjects: unbounded, MaxElements: unbounded}) {
		objs = append(objs, ch.Objects...)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.firstLoadLocked(acked, acked.Version(), objs); err != nil {
		return nil, false, err
	}
	s.mu.cached = acked.Version()
	var restored []*spec
	err = cache.LoadPending(func(share string, cm *wire.Commit) error {
		if share != s.name {
			return nil
		}
		if cm.ID.Replica != s.c.replica {
			// Sent on this replica's session, it would be refused, and
			// its verdict ignored: pending for ever.
			return fmt.Errorf("client: the cache is damaged: it holds commit %v, of replica %d, as replica %d's", cm.ID, cm.ID.Replica, s.c.replica)
		}
		p, err := s.restoreSpecLocked(cm, restored)
		if err != nil {
			return fmt.Errorf("client: cached commit %v: %w", cm.ID, err)
		}
		restored = append(restored, p)
		return nil
	})
	if err != nil {
		return nil, false, err
	}
	// The acknowledged state the cache holds may be older than what a
	// restored commit read (its latest changes are written unsynced, and
	// a crash loses them), or newer (changes of others that arrived while
	// the commit was pending), and may lack a dep of it (acknowledged,
	// gone from the pending commits, its change lost): shown on it, such a
	// commit would show a state the server never had. A commit is hidden,
	// with what builds on it, until its verdict, unless each of its deps
	// is restored or acknowledged in the state, and each of its reads
	// holds there (reads of what earlier shown commits create do).
	createdShown := map[wire.ObjectID]bool{}
	rebuild := s.hideWhereLocked(func(p *spec) bool {
		doomed := false
		for _, d := range p.commit.Deps {
			if !slices.ContainsFunc(p.deps, func(q *spec) bool { return q.commit.ID == d }) && !acked.Acknowledged(d) {
				doomed = true
			}
		}
		for _, r := range p.commit.Reads {
			if !createdShown[r.Object] && !acked.ReadCurrent(r, p.commit.ID.Replica) {
				doomed = true
				break
			}
		}
		if !doomed {
			for _, id := range p.created {
				createdShown[id] = true
			}
		}
		return doomed
	})
	v := acked.Version()
	if len(rebuild) > 0 {
		local, err := s.rebuildLocked(rebuild, nil)
		if err != nil {
			return nil, false, err
		}
		s.advanceLocked(local, v)
	}
	return restored, true, nil
}

// restoreSpecLocked shows cm, an unanswered commit from the cache, again:
// it applies its ops to the replica and makes it pending, depending on
// those of earlier that it names.
func (s *Share) restoreSpecLocked(cm *wire.Commit, earlier []*spec) (*spec, error) {
	cm.Share = s.handle
	p := &spec{share: s, commit: cm, handle: stm.NewHandleFor(cm.ID)}
	created := map[wire.ObjectID]bool{}
	for _, op := range cm.Writes {
		if op.Kind == wire.OpCreate {
			created[op.Object] = true
			p.created = append(p.created, op.Object)
		}
	}
	var ops []wire.Op
	seen := map[wire.ObjectID]bool{}
	for _, op := range cm.Writes {
		switch {
		case op.Kind == wire.OpCreate:
		case op.Kind == wire.OpRemove:
			if x, ok := s.mu.index[op.Object]; ok {
				if p.removed == nil {
					p.removed = map[wire.ObjectID]stm.Observable{}
				}
				p.removed[op.Object] = x
			}
		default:
			ops = append(ops, op)
		}
		if !created[op.Object] && !seen[op.Object] {
			seen[op.Object] = true
			p.writes = append(p.writes, op.Object)
		}
	}
	for _, r := range cm.Reads {
		if !containsID(p.reads, r.Object) {
			p.reads = append(p.reads, r.Object)
		}
	}
	for _, d := range cm.Deps {
		for _, q := range earlier {
			if q.commit.ID == d {
				p.deps = append(p.deps, q)
			}
		}
	}
	// What it touched or refers to may be missing from the restored state
	// (older than what it saw, newer without what it referred to, or
	// without what a hidden earlier commit created): it cannot be shown,
	// and waits hidden for its verdict.
	p.refs = refsOf(cm.Writes, created)
	for _, ids := range [3][]wire.ObjectID{p.reads, p.writes, p.refs} {
		for _, id := range ids {
			if _, ok := s.mu.index[id]; !ok {
				p.hidden = true
				s.mu.hidden++
				s.mu.pending = append(s.mu.pending, p)
				return p, nil
			}
		}
	}
	type decode struct {
		o *stm.Object
		w wire.Object
	}
	var decodes []decode
	for _, op := range cm.Writes {
		if op.Kind == wire.OpCreate && op.ObjectKind == wire.ObjectRecord {
			w := wire.Object{ID: op.Object, Class: op.Class, Kind: wire.ObjectRecord, Fields: op.Fields}
			o, err := s.materializeLocked(w, nil)
			if err != nil {
				return nil, err
			}
			if p.own == nil {
				p.own = map[wire.ObjectID]*stm.Object{}
			}
			p.own[op.Object] = o
			decodes = append(decodes, decode{o, w})
		}
	}
	local, err := s.internalLocked(func(tx *stm.Tx) error {
		for _, d := range decodes {
			if err := stm.DecodeRecord(tx, d.o, d.w, s.resolveRecordLocked); err != nil {
				return err
			}
		}
		return stm.ApplyOps(tx, ops, s.resolveLocked)
	})
	if err != nil {
		return nil, err
	}
	for id := range p.removed {
		delete(s.mu.index, id)
	}
	p.local = local
	s.mu.pending = append(s.mu.pending, p)
	for _, id := range p.writes {
		s.mu.writers[id] = append(s.mu.writers[id], p)
	}
	return p, nil
}

func containsID(ids []wire.ObjectID, id wire.ObjectID) bool {
	for _, x := range ids {
		if x == id {
			return true
		}
	}
	return false
}
