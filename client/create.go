package client

import (
	"fmt"

	"github.com/weft-stm/weft/stm"
	"github.com/weft-stm/weft/wire"
)

// txWork is what one run of Share.Atomically adds to and removes from the
// share, besides its writes.
type txWork struct {
	share   *Share
	created []*stm.Object
	removed []*stm.Object
	err     error // the first misuse, returned by Atomically
}

// Create returns a new record of class in the client's workspace, with a
// fresh id of the client's replica, and records that tx creates it in the
// share. Set its fields (and fill its collections) in tx like any other
// object's. When Atomically commits tx, the commit creates the record and
// each of its collections on the server, with the record's fields as tx
// left them, before tx's other writes. The record joins the replica's
// share (Share.Object, Share.Records) when the commit applies locally,
// pending, and every other replica receives it on Ack. If fn
// returns an error, retries, or the commit is aborted, the record never
// existed anywhere: a run of fn that is run again creates a new record, and
// the one of the run that committed is the share's.
//
// tx must be the transaction Atomically passed to fn, on this share, and
// class not nil (else Create panics), and class one of the classes given
// to Open (else
// Atomically returns an error wrapping ErrUnknownClass and sends nothing).
// A record created in an OrElse alternative that was abandoned is created
// all the same, with the fields it had before the alternative ran.
func (s *Share) Create(tx *stm.Tx, class *stm.Class) *stm.Object {
	w := s.work(tx, "Create")
	if class == nil {
		panic("client: Share.Create with a nil class")
	}
	o := stm.NewObject(s.c.ws, class)
	s.mu.Lock()
	defer s.mu.Unlock()
	if w.err == nil && s.classes[uint32(class.ID())] != class {
		w.err = fmt.Errorf("%w: Create of class %s (%d), not given to Open", ErrUnknownClass, class.Name(), class.ID())
	}
	w.created = append(w.created, o)
	return o
}

// Remove records that tx removes the record o, and its collections, from
// the share: when Atomically commits tx, the commit removes them on the
// server, after tx's writes. They leave the replica's share when the
// commit applies locally (and come back if it is aborted), and every other
// replica's on Ack. The *stm.Object stays readable in the workspace, but a
// later commit touching it is ErrNotInShare. o must be in the share when
// Atomically commits (not created by the same transaction), else
// Atomically returns ErrNotInShare. A record another one still refers to
// after the commit cannot be removed: the server aborts the commit (an
// *AbortError with code invalid); clear the references in the same
// transaction. tx must be the transaction Atomically passed to fn, on
// this share (else Remove panics); a nil o is ErrNotInShare.
func (s *Share) Remove(tx *stm.Tx, o *stm.Object) {
	w := s.work(tx, "Remove")
	s.mu.Lock()
	defer s.mu.Unlock()
	if o == nil {
		if w.err == nil {
			w.err = fmt.Errorf("%w %q: Remove of a nil record", ErrNotInShare, s.name)
		}
		return
	}
	w.removed = append(w.removed, o)
}

// work returns what tx, a transaction of s.Atomically, creates and
// removes.
func (s *Share) work(tx *stm.Tx, what string) *txWork {
	w, _ := tx.Tag().(*txWork)
	if w == nil || w.share != s {
		panic("client: Share." + what + " with a transaction that is not one of the share's Atomically")
	}
	return w
}

// track marks tx as a transaction of the share's Run, with the txWork
// Create and Remove fill (the tag also tells it from internal ones).
func (s *Share) track(tx *stm.Tx) *txWork {
	w := &txWork{share: s}
	tx.SetTag(w)
	return w
}

// collectionKind returns the wire kind of a record's collection cell, or
// false for a value field's Var (carried in the record itself).
func collectionKind(x stm.Observable) (wire.ObjectKind, bool) {
	switch k := stm.KindOf(x); k {
	case wire.ObjectCounter, wire.ObjectMap, wire.ObjectSet, wire.ObjectList:
		return k, true
	}
	return 0, false
}

// collections returns o's collection cells, in field order.
func collections(o *stm.Object) []stm.Observable {
	var out []stm.Observable
	for _, f := range o.Class().Fields() {
		cell, _ := o.Field(f.ID())
		if _, ok := collectionKind(cell); ok {
			out = append(out, cell)
		}
	}
	return out
}

// createOpsLocked returns the ops creating w's records (each followed by
// its collections) with their fields as tx sees them, the ids of
// everything created, and the records by id.
func (s *Share) createOpsLocked(tx *stm.Tx, w *txWork) ([]wire.Op, map[wire.ObjectID]bool, map[wire.ObjectID]*stm.Object, error) {
	if len(w.created) == 0 {
		return nil, nil, nil, nil
	}
	created := map[wire.ObjectID]bool{}
	own := map[wire.ObjectID]*stm.Object{}
	for _, o := range w.created {
		created[stm.IDOf(o)] = true
		own[stm.IDOf(o)] = o
		for _, cell := range collections(o) {
			created[stm.IDOf(cell)] = true
		}
	}
	var bad error
	ref := func(x stm.Observable) wire.ObjectID {
		id := stm.IDOf(x)
		if _, ok := s.mu.index[id]; !ok && !created[id] && bad == nil {
			bad = fmt.Errorf("%w %q: a created record refers to %v", ErrNotInShare, s.name, id)
		}
		return id
	}
	var ops []wire.Op
	for _, o := range w.created {
		rec, err := stm.EncodeRecord(tx, o, ref)
		if err != nil {
			return nil, nil, nil, err
		}
		if bad != nil {
			return nil, nil, nil, bad
		}
		ops = append(ops, wire.Op{Kind: wire.OpCreate, Object: rec.ID, Class: rec.Class, ObjectKind: wire.ObjectRecord, Fields: rec.Fields})
		for _, cell := range collections(o) {
			kind, _ := collectionKind(cell)
			ops = append(ops, wire.Op{Kind: wire.OpCreate, Object: stm.IDOf(cell), ObjectKind: kind})
		}
	}
	return ops, created, own, nil
}

// removeOpsLocked returns the ops removing w's removed records and their
// collections.
func (s *Share) removeOpsLocked(w *txWork) ([]wire.Op, error) {
	var ops []wire.Op
	seen := map[wire.ObjectID]bool{}
	for _, o := range w.removed {
		id := stm.IDOf(o)
		if stm.Retired(o) {
			return nil, fmt.Errorf("client: share %q: Remove of %v: %w", s.name, id, stm.ErrRetired)
		}
		if _, ok := s.mu.index[id]; !ok {
			return nil, fmt.Errorf("%w %q: Remove of %v", ErrNotInShare, s.name, id)
		}
		if seen[id] {
			continue
		}
		seen[id] = true
		ops = append(ops, wire.Op{Kind: wire.OpRemove, Object: id})
		for _, cell := range collections(o) {
			if cid := stm.IDOf(cell); s.mu.index[cid] == cell {
				ops = append(ops, wire.Op{Kind: wire.OpRemove, Object: cid})
			}
		}
	}
	return ops, nil
}
