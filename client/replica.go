package client

import (
	"context"
	"fmt"
	"slices"
	"sort"

	"github.com/weft-stm/weft/authority"
	"github.com/weft-stm/weft/stm"
	"github.com/weft-stm/weft/wire"
)

// load takes a snapshot at share version v: the first transfer, or the
// resync after a reconnection when the server no longer had the changes
// since the version held. It runs on the reader.
//
// A resync replaces the acknowledged state; the replica's objects are
// rewritten to it, objects the snapshot lacks leave the index, and the
// pending commits' writes are no longer shown: the snapshot may or may
// not include them, and their (resent) verdicts will tell. An Ack then
// applies the commit's writes if its version is newer than the snapshot.
//
// On success it ends the transfer (Open returns); on an error the caller's
// s.fail does, after recording the error, so Open sees it.
func (s *Share) load(v uint64, objs []wire.Object) (err error) {
	defer func() {
		if err == nil {
			s.readyOnce.Do(func() { close(s.ready) })
		}
	}()
	acked, err := authority.Load(s.name, ackedConfig, v, []wire.SnapshotChunk{{Objects: objs}})
	if err == nil {
		err = acked.AdoptEpoch(s.epochOf)
	}
	if err != nil {
		return fmt.Errorf("client: share %q snapshot: %w", s.name, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mu.acked != nil {
		err = s.resyncLocked(acked, v, objs)
	} else {
		err = s.firstLoadLocked(acked, v, objs)
	}
	if err == nil {
		if n := len(s.mu.pending); n > 0 {
			s.mu.uncacheable = s.mu.pending[n-1].commit.ID.Seq
		}
		s.checkpointCacheLocked()
	}
	return err
}

// firstLoadLocked materialises the share's first state: acked, at version
// v, whose objects are objs (as a snapshot holds them).
func (s *Share) firstLoadLocked(acked *authority.Share, v uint64, objs []wire.Object) error {
	s.mu.acked = acked
	// Pieces of a split record extend the first (docs/protocol.md 8.3).
	records := map[wire.ObjectID]*wire.Object{}
	var order []wire.ObjectID
	var others []wire.Object
	for _, o := range objs {
		if o.Kind != wire.ObjectRecord {
			others = append(others, o)
			continue
		}
		if r := records[o.ID]; r != nil {
			r.Fields = append(r.Fields, o.Fields...)
			continue
		}
		cp := o
		records[o.ID] = &cp
		order = append(order, o.ID)
	}
	type decode struct {
		o *stm.Object
		w wire.Object
	}
	decodes := make([]decode, 0, len(order))
	for _, id := range order {
		w := records[id]
		if s.classes[w.Class] == nil {
			s.mu.foreign[id] = true // see materializeLocked
			continue
		}
		o, err := s.materializeLocked(*w, nil)
		if err != nil {
			return err
		}
		decodes = append(decodes, decode{o, *w})
	}
	var ops []wire.Op
	for _, o := range others {
		if _, ok := s.mu.index[o.ID]; !ok {
			s.mu.foreign[o.ID] = true
			continue
		}
		ops = append(ops, fillOps(o)...)
	}
	local, err := s.internalLocked(func(tx *stm.Tx) error {
		for _, d := range decodes {
			if err := stm.DecodeRecord(tx, d.o, d.w, s.resolveRecordLocked); err != nil {
				return fmt.Errorf("client: record %v: %w", d.w.ID, err)
			}
		}
		return stm.ApplyOps(tx, ops, s.resolveLocked)
	})
	if err != nil {
		return err
	}
	s.advanceLocked(local, v)
	return nil
}

// resyncLocked replaces the acknowledged state with a snapshot at version
// v, after a reconnection (see load).
func (s *Share) resyncLocked(acked *authority.Share, v uint64, objs []wire.Object) error {
	s.mu.acked = acked
	seen := map[wire.ObjectID]bool{}
	for _, o := range objs {
		if o.Kind != wire.ObjectRecord || seen[o.ID] {
			continue
		}
		seen[o.ID] = true
		if _, ok := s.mu.index[o.ID]; ok {
			continue
		}
		w, _ := acked.Object(o.ID)
		// A record this client created, or removed, in a pending commit,
		// hidden since, comes back as the same object: the application may
		// hold it (and will go on using it if the removal is aborted).
		var own *stm.Object
		for _, p := range s.mu.pending {
			if x := p.own[o.ID]; x != nil {
				own = x
			}
			if x, ok := p.removed[o.ID].(*stm.Object); ok {
				own = x
			}
		}
		if own == nil && s.classes[w.Class] == nil {
			continue // foreign: see materializeLocked
		}
		if _, err := s.materializeLocked(w, own); err != nil {
			return err
		}
	}
	for _, o := range objs {
		if _, ok := s.mu.index[o.ID]; !ok {
			s.mu.foreign[o.ID] = true
		}
	}
	states := map[wire.ObjectID]wire.Object{}
	for id := range s.mu.index {
		if w, ok := acked.Object(id); ok {
			states[id] = w
		} else {
			stm.Unbind(s.mu.index[id]) // out of the share: the application's now
			delete(s.mu.index, id)
			s.mu.foreign[id] = true
		}
	}
	for _, p := range s.mu.pending {
		p.hidden, p.snapshotted = true, true
	}
	s.mu.hidden = len(s.mu.pending)
	s.mu.writers = map[wire.ObjectID][]*spec{}
	local, err := s.internalLocked(func(tx *stm.Tx) error {
		for id, w := range states {
			if err := stm.SetState(tx, s.mu.index[id], w, s.resolveLocked); err != nil {
				return fmt.Errorf("client: object %v: %w", id, err)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	s.advanceLocked(local, v)
	return nil
}

// materializeLocked makes the record w in the workspace (or takes o, the
// record this client created as w, if not nil) and indexes it and its
// collections. The server's records of a class not given to Open do not
// come here: they are foreign, kept out of the replica with their
// collections, as standalone objects are, so that an application that
// does not know a class (an older version of it, while a newer one adds
// the class) neither sees nor breaks on its records. (A record of a known
// class holds what a newer schema put in it as unknown fields, a ref to
// such a record included: see stm.DecodeRecord.)
func (s *Share) materializeLocked(w wire.Object, o *stm.Object) (*stm.Object, error) {
	if o == nil {
		cl := s.classes[w.Class]
		if cl == nil {
			return nil, fmt.Errorf("%w: object %v has class %d", ErrUnknownClass, w.ID, w.Class)
		}
		var err error
		o, err = stm.Materialize(s.c.ws, cl, w)
		if err != nil {
			return nil, fmt.Errorf("client: record %v: %w", w.ID, err)
		}
	}
	var cells []stm.Observable
	for _, f := range w.Fields {
		if f.Value.Kind() != wire.KindRef {
			continue
		}
		// A collection field's cell has the id of the ref; a reference
		// field's cell does not.
		if cell, ok := o.Field(stm.FieldID(f.ID)); ok && stm.IDOf(cell) == f.Value.Ref() {
			cells = append(cells, cell)
		}
	}
	if s.mu.acked.Has(w.ID) {
		// A record the server decided (not one of a commit restored from
		// the cache, whose collections it creates): the server keeps no
		// schema, so a writer may have made one whose collections do not
		// fit its class, or are another record's.
		for _, cell := range cells {
			id := stm.IDOf(cell)
			if k, ok := s.mu.acked.Kind(id); !ok || k != stm.KindOf(cell) {
				return nil, fmt.Errorf("client: record %v: its collection %v is not a %v of the share", w.ID, id, stm.KindOf(cell))
			}
			if x, ok := s.mu.index[id]; ok && !stm.Same(x, cell) {
				return nil, fmt.Errorf("client: record %v: its collection %v is another object's", w.ID, id)
			}
		}
	}
	s.indexLocked(w.ID, o)
	for _, cell := range cells {
		s.indexLocked(stm.IDOf(cell), cell)
	}
	return o, nil
}

func (s *Share) indexLocked(id wire.ObjectID, x stm.Observable) {
	stm.Bind(x) // for Client.guard
	s.mu.index[id] = x
	delete(s.mu.foreign, id)
}

func (s *Share) resolveLocked(id wire.ObjectID) (stm.Observable, error) {
	if x, ok := s.mu.index[id]; ok {
		return x, nil
	}
	return nil, fmt.Errorf("%w: %v", ErrNotInShare, id)
}

// internalLocked runs fn as an internal transaction on the replica and
// returns its local version.
func (s *Share) internalLocked(fn func(tx *stm.Tx) error) (uint64, error) {
	h, err := s.c.ws.Run(context.Background(), func(tx *stm.Tx) error {
		tx.SetTag(internal{share: s.name})
		return fn(tx)
	})
	if err != nil {
		return 0, fmt.Errorf("client: share %q: %w", s.name, err)
	}
	return h.Version(), nil
}

// advanceLocked records that from local version local on, the replica
// holds the acknowledged state at share version v.
func (s *Share) advanceLocked(local, v uint64) {
	local = max(local, s.mu.top)
	s.mu.top = local
	if e, cur := s.mu.acked.Epoch(), s.epoch.Load(); cur == nil || *cur != e {
		s.epoch.Store(&e)
	}
	s.have.Store(v)
	if n := len(s.mu.vmap); n > 0 && s.mu.vmap[n-1].local == local {
		s.mu.vmap[n-1].share = v
	} else {
		s.mu.vmap = append(s.mu.vmap, verPair{local: local, share: v})
	}
	if n := len(s.mu.vmap); n > 2*vmapKeep {
		s.mu.trimmed = s.mu.vmap[n-vmapKeep-1]
		s.mu.vmap = append(s.mu.vmap[:0], s.mu.vmap[n-vmapKeep:]...)
	}
	s.changedLocked()
}

// vmapKeep is how many of the latest local-to-share version entries a
// share keeps: a transaction whose snapshot is older than all of them (it
// ran across thousands of changes) reads at version 0, which the server
// finds stale, so it aborts and runs again. Only a version too new would
// be wrong.
const vmapKeep = 4096

// translateLocked returns the share version of the acknowledged state the
// replica held at local version local (0 if not known: older than the
// first load, or than the entries kept).
func (s *Share) translateLocked(local uint64) uint64 {
	i := sort.Search(len(s.mu.vmap), func(i int) bool { return s.mu.vmap[i].local > local })
	if i > 0 {
		return s.mu.vmap[i-1].share
	}
	if t := s.mu.trimmed; t.local != 0 && t.local <= local {
		return t.share
	}
	return 0
}

// change applies a change the server decided: another replica's commit
// (an Update, or a Delta's change), or one of ours that a Delta reports
// after a reconnection, which acknowledges it. It runs on the reader.
func (s *Share) change(ch wire.Change) error {
	s.mu.Lock()
	if ch.Origin.Replica == s.c.replica {
		for _, p := range s.mu.pending {
			if p.commit.ID == ch.Origin {
				s.mu.Unlock()
				s.acked(p, ch.Version)
				return nil
			}
		}
	}
	defer s.mu.Unlock()
	if s.mu.acked == nil {
		return fmt.Errorf("client: share %q: a change before the snapshot", s.name)
	}
	if err := s.applyAckedLocked(ch); err != nil {
		return fmt.Errorf("client: share %q: %w", s.name, err)
	}
	return s.applyLocked(ch.Version, ch.Writes, nil)
}

// updates handles a run of Updates of the share, in version order, that
// arrived together. A run that only changes objects the replica shows,
// none of which a shown pending commit of this client read or writes (but
// for increments of a counter that they only increment: see onTopLocked),
// is applied to the replica as one local commit: the per-commit work of
// the workspace is paid once per run. Such a run hides no pending commit
// and rebuilds nothing, so Update by Update it would have been applied as
// it is too. Observers see what they would have seen had they been slower:
// the local commit counts as one commit per Update (stm.Tx.SetCommits),
// which is what each observer counts when every Update writes the same
// objects (a stream of quotes or game state); a run of Updates of
// different objects (many writers on many objects) is applied together
// only when no observer watches the objects, as each would count the
// Updates of the others too. Any other run is handled Update by Update.
func (s *Share) updates(us []*wire.Update) {
	if len(us) > 1 && s.Err() == nil {
		done, err := s.applyRun(us)
		if err != nil {
			s.fail(err)
			return
		}
		if done {
			return
		}
	}
	for _, u := range us {
		s.receive(u)
	}
}

// applyRun applies us as one local commit if it can (see updates), and
// reports whether it did; when it did not, it changed nothing.
func (s *Share) applyRun(us []*wire.Update) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mu.acked == nil {
		return false, nil
	}
	// objs holds the objects of the run; same says that every Update
	// writes all of them.
	objs := s.mu.runObjs[:0]
	defer func() { s.mu.runObjs = objs[:0] }()
	var set objectSet // objs, indexed once it is long
	same := true
	for i, u := range us {
		if u.Origin.Replica == s.c.replica {
			return false, nil // ours (after a reconnection): an Ack
		}
		for _, op := range u.Writes {
			if op.Kind == wire.OpCreate || op.Kind == wire.OpRemove || s.mu.foreign[op.Object] || !s.onTopLocked(op) {
				return false, nil
			}
			n := len(objs)
			if objs = set.add(objs, op.Object); len(objs) > n {
				if _, ok := s.mu.index[op.Object]; !ok {
					return false, nil
				}
				same = same && i == 0
			}
		}
		if same && i > 0 && !sameObjects(u.Writes, objs) {
			same = false
		}
		for _, id := range refsOf(u.Writes, nil) {
			if _, ok := s.mu.index[id]; !ok {
				return false, nil // a ref hideLocked must make resolvable first
			}
		}
	}
	if !same {
		for _, id := range objs {
			if stm.Observed(s.mu.index[id]) {
				return false, nil // its observers count the Updates that change it
			}
		}
	}
	for _, p := range s.mu.pending {
		if !p.hidden && slices.ContainsFunc(p.reads, func(id wire.ObjectID) bool { return set.has(objs, id) }) {
			return false, nil // the run dooms it: hideLocked's work
		}
	}
	// What the last Update overwrites is not written before, neither in
	// the acknowledged state nor in the replica: a stream of quotes or
	// positions costs one write per object, not one per Update. The
	// acknowledged state still goes through every version, and ends as it
	// would have; the last Update's ops check the objects as the skipped
	// ones would have. A skipped value is not converted either: one the
	// replica's class cannot hold fails the share only if the replica
	// would show it. With a cache the acknowledged state takes every op:
	// the cache keeps its versions (a checkpoint, or the changes logged
	// since, may end inside the run), and each must be the state the
	// server had.
	last := us[len(us)-1].Writes
	ops := slices.Grow(s.mu.runOps[:0], len(us))[:len(us)]
	defer func() { s.mu.runOps = ops[:0] }()
	defer clear(ops) // keeps no Update's ops alive: they go back to the decoder
	for i, u := range us {
		ops[i] = u.Writes
		if i < len(us)-1 {
			ops[i] = notOverwritten(u.Writes, last)
		}
		ackOps := ops[i]
		if s.c.opts.Cache != nil {
			ackOps = u.Writes
		}
		if err := s.applyAckedLocked(wire.Change{Version: u.Version, Origin: u.Origin, Writes: ackOps}); err != nil {
			return true, fmt.Errorf("client: share %q: %w", s.name, err)
		}
	}
	local, err := s.internalLocked(func(tx *stm.Tx) error {
		tx.SetCommits(len(us))
		for _, w := range ops {
			if len(w) == 0 {
				continue
			}
			if err := stm.ApplyOps(tx, w, s.resolveLocked); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return true, err
	}
	s.advanceLocked(local, us[len(us)-1].Version)
	return true, nil
}

// notOverwritten returns the ops of ops that no op of later overwrites:
// ops itself when none is, nil when all are (as in a stream of quotes),
// else a new slice.
func notOverwritten(ops, later []wire.Op) []wire.Op {
	over := func(op wire.Op) bool {
		return slices.ContainsFunc(later, func(l wire.Op) bool { return overwrites(l, op) })
	}
	n := 0
	for _, op := range ops {
		if over(op) {
			n++
		}
	}
	switch n {
	case 0:
		return ops
	case len(ops):
		return nil
	}
	kept := make([]wire.Op, 0, len(ops)-n)
	for _, op := range ops {
		if !over(op) {
			kept = append(kept, op)
		}
	}
	return kept
}

// overwrites reports whether applying later leaves nothing of what op
// wrote: both set the same var, the same field of a record, or the same
// key of a map (not a float key: a NaN is a new key each time).
func overwrites(later, op wire.Op) bool {
	if later.Object != op.Object {
		return false
	}
	isKey := func(k wire.OpKind) bool { return k == wire.OpMapPut || k == wire.OpMapDelete }
	switch {
	case later.Kind == wire.OpVarSet:
		return op.Kind == wire.OpVarSet
	case later.Kind == wire.OpSetField:
		return op.Kind == wire.OpSetField && op.Field == later.Field
	case isKey(later.Kind):
		return isKey(op.Kind) && op.Key == later.Key && op.Key.Kind() != wire.KindFloat
	}
	return false
}

// sameObjects reports whether ops write every one of objs (they write no
// other: the caller checked).
func sameObjects(ops []wire.Op, objs []wire.ObjectID) bool {
	for _, id := range objs {
		if !slices.ContainsFunc(ops, func(op wire.Op) bool { return op.Object == id }) {
			return false
		}
	}
	return true
}

// applyLocked applies ops, which the acknowledged state (at version v)
// already holds, to the replica. Objects a pending commit writes too are
// rebuilt instead: their acknowledged state, then the pending commits'
// ops on them in order, so that the replica shows the server's order
// (ops first, ours after). own holds the records this client created in
// the commit, if it is one of ours, which join the share as they are.
func (s *Share) applyLocked(v uint64, ops []wire.Op, own map[wire.ObjectID]*stm.Object) error {
	type decode struct {
		o *stm.Object
		w wire.Object
	}
	var decodes []decode
	// Records first: a collection is known through its record's field.
	for _, op := range ops {
		if op.Kind == wire.OpCreate && op.ObjectKind == wire.ObjectRecord {
			if own[op.Object] == nil && s.classes[op.Class] == nil {
				continue // foreign (below): see materializeLocked
			}
			w := wire.Object{ID: op.Object, Class: op.Class, Kind: wire.ObjectRecord, Fields: op.Fields}
			o, err := s.materializeLocked(w, own[op.Object])
			if err != nil {
				return err
			}
			decodes = append(decodes, decode{o, w})
		}
	}
	rest := make([]wire.Op, 0, len(ops))
	rebuild := s.hideLocked(ops)
	var removed []wire.ObjectID
	for _, op := range ops {
		switch {
		case op.Kind == wire.OpCreate:
			if _, ok := s.mu.index[op.Object]; !ok {
				s.mu.foreign[op.Object] = true
			} else if op.ObjectKind != wire.ObjectRecord {
				// A collection of a record materialized above: if the
				// record is one a pending commit created and showed before
				// (own), the collection still holds what was applied to it
				// then. It gets its acknowledged state (this change's ops
				// on it included), with the shown pending ops on it again.
				rebuild = addID(rebuild, op.Object)
			}
		case op.Kind == wire.OpRemove:
			removed = append(removed, op.Object)
		case s.mu.foreign[op.Object]:
		case rebuild[op.Object]:
		case !s.onTopLocked(op):
			rebuild = addID(rebuild, op.Object)
		default:
			rest = append(rest, op)
		}
	}
	local, err := s.rebuildLocked(rebuild, func(tx *stm.Tx) error {
		for _, d := range decodes {
			if err := stm.DecodeRecord(tx, d.o, d.w, s.resolveRecordLocked); err != nil {
				return fmt.Errorf("client: record %v: %w", d.w.ID, err)
			}
		}
		return stm.ApplyOps(tx, rest, s.resolveLocked)
	})
	for _, id := range removed {
		if x, ok := s.mu.index[id]; ok {
			stm.Unbind(x) // out of the share for good
		}
		delete(s.mu.index, id)
		s.mu.foreign[id] = true
	}
	if err != nil {
		return err
	}
	s.advanceLocked(local, v)
	return nil
}

// onTopLocked reports whether op, decided before the shown pending commits
// that write its object, may be applied to the replica as it shows now,
// on top of them, instead of under them (a rebuild): when none writes the
// object, or op increments a counter that they only increment (blind, or
// a commit that read it would have been hidden as doomed). Increments
// commute, so the counter shows what a rebuild would, without one.
func (s *Share) onTopLocked(op wire.Op) bool {
	ws := s.mu.writers[op.Object]
	if len(ws) == 0 {
		return true
	}
	if op.Kind != wire.OpCounterAdd {
		return false
	}
	for _, p := range ws {
		for _, w := range p.commit.Writes {
			if w.Object == op.Object && w.Kind != wire.OpCounterAdd {
				return false
			}
		}
	}
	return true
}

// hideLocked hides the pending commits that a decided change (ops, about
// to be applied) dooms, so that what shows stays a state the server can
// reach: the acknowledged state, then commits whose reads no decided
// change overwrote. A commit is doomed if it read an object the change
// writes, writes or refers to one it removes (the server would find its
// write or its reference invalid), or removes one the change refers to
// (its removal would be); see hideWhereLocked for what follows. The comparison is by
// object, so a commit may be hidden that the server will acknowledge: its
// Ack then shows it again. It returns the objects whose shown state must
// be rebuilt (nil for none: most changes come with no pending commit).
func (s *Share) hideLocked(ops []wire.Op) map[wire.ObjectID]bool {
	if len(s.mu.pending) == 0 {
		return nil
	}
	changed := map[wire.ObjectID]bool{}
	var removed map[wire.ObjectID]bool
	for _, op := range ops {
		changed[op.Object] = true
		if op.Kind == wire.OpRemove {
			removed = addID(removed, op.Object)
		}
	}
	var named map[wire.ObjectID]bool // what the change stores a ref to
	for _, id := range refsOf(ops, nil) {
		named = addID(named, id)
	}
	return s.hideWhereLocked(func(p *spec) bool {
		if hitsAny(p.reads, changed) || hitsAny(p.writes, removed) || hitsAny(p.refs, removed) {
			return true
		}
		// The change refers to what p removes: the server will find p's
		// removal invalid, and the replica must show the record again to
		// resolve the ref.
		for id := range p.removed {
			if named[id] {
				return true
			}
		}
		return false
	})
}

// hideWhereLocked hides the shown pending commits that doomed selects and
// those that build on a hidden one: in order, a commit is hidden if it is
// doomed, if it read an object a hidden commit writes, or if it wrote an
// object a hidden commit writes (a later reader of it would miss the
// hidden write, and the server would not know). A commit that only wrote
// what a decided change writes stays shown, on top of it, as the server
// will order them. It returns the objects whose shown state must be
// rebuilt (nil for none). The sets are made only when a commit is hidden:
// usually none is.
func (s *Share) hideWhereLocked(doomed func(p *spec) bool) map[wire.ObjectID]bool {
	var rebuild map[wire.ObjectID]bool
	var hw map[wire.ObjectID]bool // written or created by hidden commits
	var hc map[wire.ObjectID]bool // created by hidden commits
	for _, p := range s.mu.pending {
		if !p.hidden {
			// A reference to what a hidden commit created would name an
			// object the replica does not show.
			if !doomed(p) && !hitsAny(p.reads, hw) && !hitsAny(p.writes, hw) && !hitsAny(p.created, hw) && !hitsAny(p.refs, hc) {
				continue
			}
			s.hideSpecLocked(p)
			for _, id := range p.writes {
				rebuild = addID(rebuild, id)
			}
		}
		for _, id := range p.writes {
			hw = addID(hw, id)
		}
		for _, id := range p.created {
			hw = addID(hw, id)
			hc = addID(hc, id)
		}
	}
	if checkInvariants {
		s.checkHiddenLocked()
	}
	return rebuild
}

// addID adds id to set, making set if it is nil, and returns it.
func addID(set map[wire.ObjectID]bool, id wire.ObjectID) map[wire.ObjectID]bool {
	if set == nil {
		set = map[wire.ObjectID]bool{}
	}
	set[id] = true
	return set
}

// hitsAny reports whether set holds one of ids.
func hitsAny(ids []wire.ObjectID, set map[wire.ObjectID]bool) bool {
	for _, id := range ids {
		if set[id] {
			return true
		}
	}
	return false
}

// hideSpecLocked stops showing p: the caller rebuilds the objects it
// wrote; what it created leaves the index, what it removed comes back.
func (s *Share) hideSpecLocked(p *spec) {
	if !p.hidden {
		s.mu.hidden++
	}
	p.hidden = true
	s.unwriteLocked(p)
	s.unmembershipLocked(p)
}

// unmembershipLocked undoes p's changes to the share's membership in the
// index: what it created leaves, what it removed comes back.
func (s *Share) unmembershipLocked(p *spec) {
	for _, id := range p.created {
		delete(s.mu.index, id)
		s.mu.foreign[id] = true
	}
	for id, x := range p.removed {
		if _, ok := s.mu.acked.Object(id); ok {
			s.indexLocked(id, x)
		}
	}
}

// hiddenWritersLocked returns the hidden pending commits that wrote or
// created one of ids.
func (s *Share) hiddenWritersLocked(ids ...[]wire.ObjectID) []*spec {
	if checkInvariants {
		s.checkHiddenLocked()
	}
	if s.mu.hidden == 0 {
		return nil
	}
	var out []*spec
	for _, p := range s.mu.pending {
		if !p.hidden {
			continue
		}
		hit := false
		for _, set := range ids {
			for _, id := range set {
				hit = hit || slices.Contains(p.writes, id) || slices.Contains(p.created, id)
			}
		}
		if hit {
			out = append(out, p)
		}
	}
	return out
}

// rebuildLocked runs first, then rewrites the objects ids to their
// acknowledged state with the live pending commits' ops on them re-applied
// in order, as one internal transaction. It returns its local version and
// nothing else: a read of a rebuilt object depends on the commits re-applied
// to it because they write it (see buildLocked).
// An object the acknowledged state lacks but a shown pending commit
// created starts from the state that commit created it in (a record's
// fields, an empty collection); one that is not shown (removed, or created
// by a hidden commit) is left alone.
func (s *Share) rebuildLocked(ids map[wire.ObjectID]bool, first func(tx *stm.Tx) error) (uint64, error) {
	var again []wire.Op
	states := map[wire.ObjectID]wire.Object{}
	var unborn []wire.ObjectID
	for id := range ids {
		if _, ok := s.mu.index[id]; !ok {
			continue
		}
		if w, ok := s.mu.acked.Object(id); ok {
			states[id] = w
		} else {
			unborn = append(unborn, id)
		}
	}
	for _, id := range unborn {
		for _, p := range s.mu.pending {
			if p.hidden || !slices.Contains(p.created, id) {
				continue
			}
			for _, op := range p.commit.Writes {
				if op.Kind == wire.OpCreate && op.Object == id {
					states[id] = wire.Object{ID: id, Kind: op.ObjectKind, Class: op.Class, Fields: op.Fields}
				}
			}
			break
		}
	}
	if len(states) > 0 {
		for _, p := range s.mu.pending {
			if p.hidden {
				continue
			}
			for _, op := range p.commit.Writes {
				if _, ok := states[op.Object]; ok && op.Kind != wire.OpCreate && op.Kind != wire.OpRemove {
					again = append(again, op)
				}
			}
		}
	}
	local, err := s.internalLocked(func(tx *stm.Tx) error {
		if first != nil {
			if err := first(tx); err != nil {
				return err
			}
		}
		for id, w := range states {
			if err := stm.SetState(tx, s.mu.index[id], w, s.resolveLocked); err != nil {
				return fmt.Errorf("client: object %v: %w", id, err)
			}
		}
		return stm.ApplyOps(tx, again, s.resolveLocked)
	})
	return local, err
}

func (s *Share) resolveRecordLocked(id wire.ObjectID) (*stm.Object, error) {
	x, err := s.resolveLocked(id)
	if err != nil {
		return nil, err
	}
	o, ok := x.(*stm.Object)
	if !ok {
		return nil, fmt.Errorf("client: ref %v is a %T, not a record", id, x)
	}
	return o, nil
}

// fillOps returns the ops that fill an empty collection with o's state.
func fillOps(o wire.Object) []wire.Op {
	switch o.Kind {
	case wire.ObjectVar:
		return []wire.Op{{Kind: wire.OpVarSet, Object: o.ID, Value: o.Value}}
	case wire.ObjectCounter:
		if o.Counter == 0 {
			return nil
		}
		return []wire.Op{{Kind: wire.OpCounterAdd, Object: o.ID, Delta: o.Counter}}
	case wire.ObjectMap:
		ops := make([]wire.Op, len(o.Entries))
		for i, e := range o.Entries {
			ops[i] = wire.Op{Kind: wire.OpMapPut, Object: o.ID, Key: e.Key, Value: e.Value}
		}
		return ops
	case wire.ObjectSet:
		ops := make([]wire.Op, len(o.Elems))
		for i, e := range o.Elems {
			ops[i] = wire.Op{Kind: wire.OpSetAdd, Object: o.ID, Key: e}
		}
		return ops
	case wire.ObjectList:
		if len(o.Elems) == 0 {
			return nil
		}
		return []wire.Op{{Kind: wire.OpListAppend, Object: o.ID, Values: o.Elems}}
	}
	return nil
}

// ackedConfig configures a share's acknowledged state: it serves no
// DeltaSince, and keeps no change alive for one.
var ackedConfig = authority.Config{LogSize: -1}

// checkInvariants makes the share check its bookkeeping as it goes (the
// package's tests set it).
var checkInvariants = false

// checkHiddenLocked panics unless s.mu.hidden counts the hidden commits in
// s.mu.pending.
func (s *Share) checkHiddenLocked() {
	n := 0
	for _, p := range s.mu.pending {
		if p.hidden {
			n++
		}
	}
	if n != s.mu.hidden {
		panic(fmt.Sprintf("client: share %q counts %d hidden commits, holds %d", s.name, s.mu.hidden, n))
	}
}
