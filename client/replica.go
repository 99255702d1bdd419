package client

import (
	"context"
	"errors"
	"fmt"
	"sort"

	"github.com/weft-stm/weft/stm"
	"github.com/weft-stm/weft/wire"
)

// load replaces nothing: it materialises a snapshot's objects (or none)
// in the workspace as one internal transaction, at share version v. It
// runs on the reader.
//
// On success it ends the transfer (Open returns); on an error the caller's
// s.fail does, after recording the error, so Open sees it.
func (s *Share) load(v uint64, objs []wire.Object) (err error) {
	defer func() {
		if err == nil {
			s.readyOnce.Do(func() { close(s.ready) })
		}
	}()
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
	s.mu.Lock()
	defer s.mu.Unlock()
	type decode struct {
		o *stm.Object
		w wire.Object
	}
	var decodes []decode
	for _, id := range order {
		w := records[id]
		o, err := s.materializeLocked(*w, v, nil)
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
	return s.commitLocked(v, func(tx *stm.Tx) error {
		for _, d := range decodes {
			if err := stm.DecodeRecord(tx, d.o, d.w, s.resolveRecordLocked); err != nil {
				return fmt.Errorf("client: record %v: %w", d.w.ID, err)
			}
		}
		return stm.ApplyOps(tx, ops, s.resolveLocked)
	})
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

// materializeLocked makes the record w in the workspace (or takes o, the
// record this client created as w, if not nil) and indexes it and its
// collections as having joined the replica at share version v.
func (s *Share) materializeLocked(w wire.Object, v uint64, o *stm.Object) (*stm.Object, error) {
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
	s.indexLocked(w.ID, o, v)
	for _, f := range w.Fields {
		if f.Value.Kind() != wire.KindRef {
			continue
		}
		// A collection field's cell has the id of the ref; a reference
		// field's cell does not.
		if cell, ok := o.Field(stm.FieldID(f.ID)); ok && stm.IDOf(cell) == f.Value.Ref() {
			s.indexLocked(f.Value.Ref(), cell, v)
		}
	}
	return o, nil
}

func (s *Share) indexLocked(id wire.ObjectID, x stm.Observable, v uint64) {
	s.mu.index[id] = x
	s.mu.entered[id] = v
	delete(s.mu.foreign, id)
}

func (s *Share) resolveLocked(id wire.ObjectID) (stm.Observable, error) {
	if x, ok := s.mu.index[id]; ok {
		return x, nil
	}
	return nil, fmt.Errorf("%w: %v", ErrNotInShare, id)
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

// commitLocked runs fn as an internal transaction and records that its
// local version holds share version v.
func (s *Share) commitLocked(v uint64, fn func(tx *stm.Tx) error) error {
	h, err := s.c.ws.Run(context.Background(), func(tx *stm.Tx) error {
		tx.SetTag(internal{share: s.name})
		return fn(tx)
	})
	if err != nil {
		return fmt.Errorf("client: share %q version %d: %w", s.name, v, err)
	}
	local := h.Version()
	if n := len(s.mu.vmap); n > 0 && s.mu.vmap[n-1].local == local {
		// Nothing was written: the same local state holds both versions.
		s.mu.vmap[n-1].share = v
	} else {
		s.mu.vmap = append(s.mu.vmap, verPair{local: local, share: v})
	}
	s.mu.version = v
	close(s.mu.changed)
	s.mu.changed = make(chan struct{})
	return nil
}

// apply applies the writes of the commit that made share version v (an
// Update, a Delta's change, or this client's acknowledged commit). It runs
// on the reader, so applications follow the share's version order.
//
// own holds the records this client created in the commit (nil for
// another's): they join the share as they are, instead of new objects.
func (s *Share) apply(v uint64, ops []wire.Op, own map[wire.ObjectID]*stm.Object) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mu.err != nil {
		return s.mu.err
	}
	if v <= s.mu.version {
		return fmt.Errorf("client: share %q: version %d after %d", s.name, v, s.mu.version)
	}
	type decode struct {
		o *stm.Object
		w wire.Object
	}
	var decodes []decode
	// Records first: a collection is known through its record's field.
	for _, op := range ops {
		if op.Kind == wire.OpCreate && op.ObjectKind == wire.ObjectRecord {
			w := wire.Object{ID: op.Object, Class: op.Class, Kind: wire.ObjectRecord, Fields: op.Fields}
			o, err := s.materializeLocked(w, v, own[op.Object])
			if err != nil {
				return err
			}
			decodes = append(decodes, decode{o, w})
		}
	}
	rest := make([]wire.Op, 0, len(ops))
	var removed []wire.ObjectID
	for _, op := range ops {
		switch {
		case op.Kind == wire.OpCreate:
			if _, ok := s.mu.index[op.Object]; !ok {
				s.mu.foreign[op.Object] = true
			}
		case op.Kind == wire.OpRemove:
			removed = append(removed, op.Object)
		case s.mu.foreign[op.Object]:
		default:
			rest = append(rest, op)
		}
	}
	err := s.commitLocked(v, func(tx *stm.Tx) error {
		for _, d := range decodes {
			if err := stm.DecodeRecord(tx, d.o, d.w, s.resolveRecordLocked); err != nil {
				return fmt.Errorf("client: record %v: %w", d.w.ID, err)
			}
		}
		return stm.ApplyOps(tx, rest, s.resolveLocked)
	})
	for _, id := range removed {
		delete(s.mu.index, id)
		delete(s.mu.entered, id)
		s.mu.foreign[id] = true
	}
	return err
}

// translateLocked returns the share version of the state at local version
// local: that of the newest internal commit at or before it.
func (s *Share) translateLocked(local uint64) uint64 {
	i := sort.Search(len(s.mu.vmap), func(i int) bool { return s.mu.vmap[i].local > local })
	if i == 0 {
		if len(s.mu.vmap) == 0 {
			return 0
		}
		return s.mu.vmap[0].share
	}
	return s.mu.vmap[i-1].share
}

// commitOf turns a transaction's record, and what it creates and removes,
// into a commit for the server: creates first, then the writes (less the
// set_field ops on created records, whose create carries their fields),
// then removes. Reads of created objects are left out: nothing else can
// have written them. It also returns the created records by id. tx must
// still be open (created records are encoded in it).
func (s *Share) commitOf(tx *stm.Tx, rec *stm.CommitRecord, w *txWork) (*wire.Commit, map[wire.ObjectID]*stm.Object, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if w.err != nil {
		return nil, nil, w.err
	}
	creates, created, own, err := s.createOpsLocked(tx, w)
	if err != nil {
		return nil, nil, err
	}
	removes, err := s.removeOpsLocked(w)
	if err != nil {
		return nil, nil, err
	}
	check := func(id wire.ObjectID) error {
		if _, ok := s.mu.index[id]; !ok && !created[id] {
			return fmt.Errorf("%w %q: %v", ErrNotInShare, s.name, id)
		}
		return nil
	}
	reads := make([]wire.Read, 0, len(rec.Reads))
	for _, r := range rec.Reads {
		if err := check(r.Object); err != nil {
			return nil, nil, err
		}
		if created[r.Object] {
			continue
		}
		// A cell never written since the object joined the replica reads
		// at a local version older than the join: it holds the state the
		// object joined with.
		r.Version = max(s.translateLocked(r.Version), s.mu.entered[r.Object])
		reads = append(reads, r)
	}
	writes := creates
	for _, op := range rec.Writes {
		if err := check(op.Object); err != nil {
			return nil, nil, err
		}
		if op.Kind == wire.OpSetField && own[op.Object] != nil {
			continue
		}
		writes = append(writes, op)
	}
	writes = append(writes, removes...)
	return &wire.Commit{Share: s.handle, Snapshot: s.translateLocked(rec.Snapshot), Reads: reads, Writes: writes}, own, nil
}

// Atomically runs fn in a transaction on the replica and commits it on the
// server: fn runs against the acknowledged state; its reads and writes are
// sent as one commit, and the local transaction is discarded. On Ack the
// writes are applied to the replica (before Atomically returns); on a
// conflict Atomically waits until the replica holds the write that
// invalidated the transaction and runs fn again. A transaction that wrote
// nothing returns at once, with no round trip.
//
// fn's own error is returned untouched, and nothing is sent. Other errors:
// an *AbortError (the server rejected the commit for another reason than a
// conflict), ErrNotInShare, errors wrapping ErrInDoubt (the verdict was
// lost: ctx ended or the session did while waiting), ErrClosed or
// ErrDisconnected, the share's Err. fn may run several times and must have
// no effects outside the transaction. tx.Retry waits until the share's
// version changes, then runs fn again.
func (s *Share) Atomically(ctx context.Context, fn func(tx *stm.Tx) error) error {
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := s.Err(); err != nil {
			return err
		}
		cm, own, seen, err := s.run(fn)
		if errors.Is(err, stm.ErrRetry) {
			if err := s.WaitVersion(ctx, seen+1); err != nil {
				return err
			}
			continue
		}
		if err != nil {
			return err
		}
		if cm == nil {
			return nil
		}
		v, err := s.c.submit(ctx, s, cm, own)
		switch {
		case err != nil:
			return err
		case v.ack != nil:
			return v.err
		case v.abort.Code == wire.CodeConflict:
			var need uint64
			for _, r := range v.abort.Conflicts {
				need = max(need, r.Version)
			}
			if need == 0 {
				// Not a write the replica can wait for: an object the
				// server does not have.
				return &AbortError{Code: v.abort.Code, Message: v.abort.Message}
			}
			if err := s.WaitVersion(ctx, need); err != nil {
				return err
			}
		default:
			return &AbortError{Code: v.abort.Code, Message: v.abort.Message}
		}
	}
}

// run runs fn once in a transaction on the replica and returns the commit
// to send (nil if it wrote, created and removed nothing) and the records it
// creates; on stm.ErrRetry, the share version fn saw.
func (s *Share) run(fn func(tx *stm.Tx) error) (cm *wire.Commit, own map[wire.ObjectID]*stm.Object, seen uint64, err error) {
	tx := s.c.ws.Begin()
	w := s.track(tx)
	defer func() {
		s.untrack(tx)
		tx.Abort()
	}()
	err = runFn(tx, fn)
	if errors.Is(err, stm.ErrRetry) {
		s.mu.Lock()
		seen = s.translateLocked(tx.Snapshot())
		s.mu.Unlock()
		return nil, nil, seen, err
	}
	if err != nil {
		return nil, nil, 0, err
	}
	rec, err := tx.Record()
	if err != nil {
		return nil, nil, 0, err
	}
	if len(rec.Writes) == 0 && len(w.created) == 0 && len(w.removed) == 0 && w.err == nil {
		return nil, nil, 0, nil
	}
	cm, own, err = s.commitOf(tx, rec, w)
	return cm, own, 0, err
}

// runFn runs fn; on a panic it aborts tx and lets the panic go on.
func runFn(tx *stm.Tx, fn func(tx *stm.Tx) error) error {
	ok := false
	defer func() {
		if !ok {
			tx.Abort()
		}
	}()
	err := fn(tx)
	ok = true
	return err
}

// View runs fn in a read-only transaction on the replica: the share's
// acknowledged state at one version, with no round trip. tx.Retry waits
// for a change to what fn read, Updates included.
func (s *Share) View(ctx context.Context, fn func(tx *stm.Tx) error) error {
	return s.c.ws.View(ctx, fn)
}

// ViewVersion is View that also reports the share version fn saw.
func (s *Share) ViewVersion(ctx context.Context, fn func(tx *stm.Tx) error) (uint64, error) {
	var ver uint64
	err := s.c.ws.View(ctx, func(tx *stm.Tx) error {
		s.mu.Lock()
		ver = s.translateLocked(tx.Snapshot())
		s.mu.Unlock()
		return fn(tx)
	})
	return ver, err
}
