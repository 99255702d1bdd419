package stm

import (
	"errors"
	"fmt"
	"math/bits"

	"github.com/weft-stm/weft/wire"
)

// CommitRecord is a committed transaction as the wire protocol carries it:
// what it read, with the version it saw, and what it wrote, as ops. It is
// what a replica sends to its authority, what a log persists, and what
// ApplyOps replays elsewhere.
//
// Versions are this workspace's: Snapshot is the transaction's snapshot,
// Version its commit, and each read's Version the version of what it saw
// (for a read of a whole object, a size or a length: the snapshot).
type CommitRecord struct {
	Snapshot uint64
	Version  uint64
	Reads    []wire.Read
	Writes   []wire.Op
	// Tag is what the transaction set with Tx.SetTag, or nil: a replica
	// tags its own bookkeeping transactions so that its hook skips them.
	Tag any
}

// SetTag attaches v to the transaction's commit record (see
// WithCommitHook). The last call wins.
func (tx *Tx) SetTag(v any) { tx.st().tag = v }

// Tag returns what SetTag attached to the transaction, or nil.
func (tx *Tx) Tag() any { return tx.st().tag }

// WithCommitGuard calls f before every commit that wrote something, before
// the commit validates or locks anything: if f returns an error, the
// commit fails with it (the transaction is rolled back, and Atomically
// returns the error without running fn again). f may look at the
// transaction (Tag, Targets) and must not use the workspace otherwise.
// A layer that owns some of the workspace's objects uses it to refuse
// commits that change them behind its back.
func WithCommitGuard(f func(*Tx) error) Option {
	return func(ws *Workspace) { ws.guard = f }
}

// WithCommitHook calls f with the record of every commit that wrote
// something, while the commit still holds the locks of the objects it
// wrote: a commit's record is always passed before the record of any
// commit that read its writes. f must be quick and must not use the
// workspace; it may keep the record. Commits whose writes have no wire form
// (a Var of a struct type, say) fail with an error wrapping
// errors.ErrUnsupported while a hook is set.
func WithCommitHook(f func(*CommitRecord)) Option {
	return func(ws *Workspace) { ws.hook = f }
}

// makeRecord builds the record of s's commit at version ver.
func (s *txState) makeRecord(ver uint64) (*CommitRecord, error) {
	rec := &CommitRecord{Snapshot: s.snap, Version: ver, Tag: s.tag}
	for i := range s.entries {
		e := &s.entries[i]
		if e.read() || e.written() {
			if err := e.c.record(e, s.snap, rec); err != nil {
				return nil, err
			}
		}
	}
	return rec, nil
}

func (v *Var[T]) named() Observable {
	if v.owner != nil {
		return v.owner
	}
	return v
}

func (c *Counter) named() Observable { return c }

// named is, for a record's map of unknown fields, the record (the wire
// carries those fields as the record's); else the map itself (a Set's,
// for which KindOf says set).
func (m *Map[K, V]) named() Observable {
	if m.unknownFields() {
		return m.owner
	}
	return m
}
func (l *List[T]) named() Observable { return l }

// target is where a cell's reads and writes point on the wire: its record
// and field when it is a record's value field, else itself.
func (b *base) target() (id wire.ObjectID, field uint32, inRecord bool) {
	if b.owner != nil {
		return b.owner.id, uint32(b.field), true
	}
	return b.id, 0, false
}

func (v *Var[T]) record(e *entry, snap uint64, rec *CommitRecord) error {
	id, field, inRecord := v.target()
	if e.read() {
		r := wire.Read{Object: id, Kind: wire.ReadWhole, Version: e.ver}
		if inRecord {
			r.Kind, r.Field = wire.ReadField, field
		}
		rec.Reads = append(rec.Reads, r)
	}
	if e.written() {
		val, err := toWire(e.pending.(*node[T]).val)
		if err != nil {
			return fmt.Errorf("object %v: %w", id, err)
		}
		op := wire.Op{Kind: wire.OpVarSet, Object: id, Value: val}
		if inRecord {
			op.Kind, op.Field = wire.OpSetField, field
		}
		rec.Writes = append(rec.Writes, op)
	}
	return nil
}

func (c *Counter) record(e *entry, snap uint64, rec *CommitRecord) error {
	if e.read() {
		rec.Reads = append(rec.Reads, wire.Read{Object: c.id, Kind: wire.ReadWhole, Version: e.ver})
	}
	if e.written() && e.num != 0 {
		rec.Writes = append(rec.Writes, wire.Op{Kind: wire.OpCounterAdd, Object: c.id, Delta: e.num})
	}
	return nil
}

// unknownFields reports whether m is a record's map of unknown fields,
// which the wire carries as fields of the record.
func (m *Map[K, V]) unknownFields() bool { return m.owner != nil && m.field == 0 }

func (m *Map[K, V]) record(e *entry, snap uint64, rec *CommitRecord) error {
	mt := e.pending.(*mapTx[K, V])
	r := mt.reads
	if r.size || r.all {
		rec.Reads = append(rec.Reads, wire.Read{Object: m.wireID(), Kind: wire.ReadWhole, Version: snap})
	}
	for k, ver := range r.keys {
		if m.unknownFields() {
			rec.Reads = append(rec.Reads, wire.Read{Object: m.owner.id, Kind: wire.ReadField, Field: uint32(any(k).(FieldID)), Version: ver})
			continue
		}
		key, err := toWire(k)
		if err != nil {
			return fmt.Errorf("object %v: key: %w", m.id, err)
		}
		rec.Reads = append(rec.Reads, wire.Read{Object: m.id, Kind: wire.ReadKey, Key: key, Version: ver})
	}
	if !e.written() {
		return nil
	}
	for _, op := range mt.ops {
		if m.unknownFields() {
			// Unknown fields are only ever written, with their wire value.
			val, _ := any(op.val).(wire.Value)
			rec.Writes = append(rec.Writes, wire.Op{Kind: wire.OpSetField, Object: m.owner.id, Field: uint32(any(op.k).(FieldID)), Value: val})
			continue
		}
		key, err := toWire(op.k)
		if err != nil {
			return fmt.Errorf("object %v: key: %w", m.id, err)
		}
		w := wire.Op{Object: m.id, Key: key}
		switch {
		case m.set && op.del:
			w.Kind = wire.OpSetRemove
		case m.set:
			w.Kind = wire.OpSetAdd
		case op.del:
			w.Kind = wire.OpMapDelete
		default:
			w.Kind = wire.OpMapPut
			if w.Value, err = toWire(op.val); err != nil {
				return fmt.Errorf("object %v: value: %w", m.id, err)
			}
		}
		rec.Writes = append(rec.Writes, w)
	}
	return nil
}

// wireID is the object a map's reads point at.
func (m *Map[K, V]) wireID() wire.ObjectID {
	if m.unknownFields() {
		return m.owner.id
	}
	return m.id
}

func (l *List[T]) record(e *entry, snap uint64, rec *CommitRecord) error {
	lt := e.pending.(*listTx[T])
	r := lt.reads
	if r.length || r.all {
		rec.Reads = append(rec.Reads, wire.Read{Object: l.id, Kind: wire.ReadWhole, Version: snap})
	}
	for _, rd := range r.elems {
		rec.Reads = append(rec.Reads, wire.Read{Object: l.id, Kind: wire.ReadIndex, Index: uint64(rd.i), Version: rd.ver})
	}
	if !e.written() {
		return nil
	}
	for _, d := range lt.dirty {
		for m := d.mask; m != 0; m &= m - 1 {
			j := bits.TrailingZeros64(m)
			val, err := toWire(d.n.val.elems[j])
			if err != nil {
				return fmt.Errorf("object %v: element: %w", l.id, err)
			}
			rec.Writes = append(rec.Writes, wire.Op{Kind: wire.OpListSet, Object: l.id, Index: uint64(d.ci<<chunkBits + j), Value: val})
		}
	}
	if len(lt.appends) > 0 {
		vals := make([]wire.Value, len(lt.appends))
		for i, x := range lt.appends {
			var err error
			if vals[i], err = toWire(x); err != nil {
				return fmt.Errorf("object %v: element: %w", l.id, err)
			}
		}
		rec.Writes = append(rec.Writes, wire.Op{Kind: wire.OpListAppend, Object: l.id, Values: vals})
	}
	return nil
}

// ErrBadOp is matched by errors of ApplyOps for an op that does not fit
// the object it names.
var ErrBadOp = errors.New("stm: op does not fit its object")

// ApplyOps performs ops in tx as blind writes: each names an object, which
// resolve returns (a *Var, *Counter, *Map, *Set, *List or *Object), and the
// op must fit it (a counter add for a counter, a map put for a map, ...). A
// field op for a field the record's class lacks is kept as an unknown field
// (see EncodeRecord). Refs in values are resolved with resolve too. An error
// leaves the writes already made in tx, which the caller then aborts (as
// Atomically does when its function returns the error). Create and remove
// ops are about share membership and are not applied here.
func ApplyOps(tx *Tx, ops []wire.Op, resolve func(wire.ObjectID) (Observable, error)) error {
	resolveObject := recordResolver(resolve)
	for i, op := range ops {
		x, err := resolve(op.Object)
		if err != nil {
			return fmt.Errorf("op %d (%v on %v): %w", i, op.Kind, op.Object, err)
		}
		a, ok := x.(opApplier)
		if !ok {
			return fmt.Errorf("op %d: %w: %T takes no ops", i, ErrBadOp, x)
		}
		if err := a.applyOp(tx, op, resolveObject); err != nil {
			return fmt.Errorf("op %d (%v on %v): %w", i, op.Kind, op.Object, err)
		}
	}
	return nil
}

// recordResolver narrows resolve to records, for the refs in values.
func recordResolver(resolve func(wire.ObjectID) (Observable, error)) func(wire.ObjectID) (*Object, error) {
	return func(id wire.ObjectID) (*Object, error) {
		x, err := resolve(id)
		if err != nil {
			return nil, err
		}
		o, ok := x.(*Object)
		if !ok {
			return nil, fmt.Errorf("%w: ref %v is a %T, not a record", ErrBadOp, id, x)
		}
		return o, nil
	}
}

type opApplier interface {
	applyOp(tx *Tx, op wire.Op, resolve func(wire.ObjectID) (*Object, error)) error
}

func badOp(op wire.Op, x any) error {
	return fmt.Errorf("%w: a %v op on a %T", ErrBadOp, op.Kind, x)
}

func (v *Var[T]) applyOp(tx *Tx, op wire.Op, resolve func(wire.ObjectID) (*Object, error)) error {
	if op.Kind != wire.OpVarSet {
		return badOp(op, v)
	}
	var x T
	if err := fromWire(&x, op.Value, resolve); err != nil {
		return err
	}
	v.Set(tx, x)
	return nil
}

func (c *Counter) applyOp(tx *Tx, op wire.Op, _ func(wire.ObjectID) (*Object, error)) error {
	if op.Kind != wire.OpCounterAdd {
		return badOp(op, c)
	}
	c.Add(tx, op.Delta)
	return nil
}

func (m *Map[K, V]) applyOp(tx *Tx, op wire.Op, resolve func(wire.ObjectID) (*Object, error)) error {
	var k K
	switch op.Kind {
	case wire.OpMapPut, wire.OpMapDelete:
		if m.set {
			return badOp(op, m)
		}
	case wire.OpSetAdd, wire.OpSetRemove:
		if !m.set {
			return badOp(op, m)
		}
	default:
		return badOp(op, m)
	}
	if err := fromWire(&k, op.Key, resolve); err != nil {
		return err
	}
	switch op.Kind {
	case wire.OpMapPut, wire.OpSetAdd:
		var v V
		if op.Kind == wire.OpMapPut {
			if err := fromWire(&v, op.Value, resolve); err != nil {
				return err
			}
		}
		m.PutFast(tx, k, v)
	default:
		m.DeleteFast(tx, k)
	}
	return nil
}

func (s *Set[T]) applyOp(tx *Tx, op wire.Op, resolve func(wire.ObjectID) (*Object, error)) error {
	return s.m.applyOp(tx, op, resolve)
}

func (l *List[T]) applyOp(tx *Tx, op wire.Op, resolve func(wire.ObjectID) (*Object, error)) error {
	switch op.Kind {
	case wire.OpListSet:
		var x T
		if err := fromWire(&x, op.Value, resolve); err != nil {
			return err
		}
		if n := l.Len(tx); op.Index >= uint64(n) {
			return fmt.Errorf("%w: index %d of a list of %d", ErrBadOp, op.Index, n)
		}
		l.Set(tx, int(op.Index), x)
	case wire.OpListAppend:
		xs := make([]T, len(op.Values))
		for i, v := range op.Values {
			if err := fromWire(&xs[i], v, resolve); err != nil {
				return err
			}
		}
		l.Append(tx, xs...)
	default:
		return badOp(op, l)
	}
	return nil
}

func (o *Object) applyOp(tx *Tx, op wire.Op, resolve func(wire.ObjectID) (*Object, error)) error {
	if op.Kind != wire.OpSetField {
		return badOp(op, o)
	}
	f := o.class.field(FieldID(op.Field))
	if f == nil {
		o.unknownMap().PutFast(tx, FieldID(op.Field), op.Value)
		return nil
	}
	if vf, ok := f.(valueSetter); ok {
		return vf.setField(tx, o, op.Value, resolve)
	}
	write, err := f.decodeField(o, op.Value, resolve)
	if err != nil {
		return err
	}
	if write == nil {
		return fmt.Errorf("%w: field %d (%s) holds a collection, written through its own object", ErrBadOp, op.Field, f.Name())
	}
	write(tx)
	return nil
}

// Record returns the transaction's reads and writes in wire form without
// committing: for a client that sends a transaction to its authority instead
// of applying it locally. Version is 0 and Snapshot the transaction's
// snapshot. The transaction stays open (commit or abort it after).
func (tx *Tx) Record() (*CommitRecord, error) {
	s := tx.st()
	if s.err != nil {
		return nil, s.err
	}
	return s.makeRecord(0)
}

// KindOf returns the wire kind of a transactional object: record, var,
// counter, map, set or list.
func KindOf(x Observable) wire.ObjectKind {
	return x.(interface{ wireKind() wire.ObjectKind }).wireKind()
}

func (o *Object) wireKind() wire.ObjectKind  { return wire.ObjectRecord }
func (v *Var[T]) wireKind() wire.ObjectKind  { return wire.ObjectVar }
func (c *Counter) wireKind() wire.ObjectKind { return wire.ObjectCounter }
func (m *Map[K, V]) wireKind() wire.ObjectKind {
	if m.set {
		return wire.ObjectSet
	}
	return wire.ObjectMap
}
func (s *Set[T]) wireKind() wire.ObjectKind  { return wire.ObjectSet }
func (l *List[T]) wireKind() wire.ObjectKind { return wire.ObjectList }
