package stm

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"

	"github.com/weft-stm/weft/wire"
)

// Records on the wire
//
// EncodeRecord and DecodeRecord translate an Object's fields to and from a
// wire.Object of kind record, for the replication and storage layers. They
// are what lets replicas on different versions of a schema share objects:
//
//   - A field of the class missing from the data keeps its value (a new
//     object: the zero value), so data written under an older schema reads
//     under a newer one with the new fields at their default.
//   - A field in the data that the class does not have (written under a
//     newer schema, or removed from this one) is kept on the object as an
//     unknown field and written back unchanged by EncodeRecord: an older
//     replica that changes a record never drops what it cannot read.
//
// Unknown fields live in a transactional map from field id to value,
// owned by the object and made on first need: decoding one is a blind
// write, conflicts are per field as for known fields, and a transaction that
// aborts leaves no trace of them. Observers of the object see them change as
// field 0 in Change.Fields.

var (
	// ErrFieldKind is wrapped by a *FieldError when a value's kind cannot be
	// held by its field (a string for an int field, an int for a float).
	ErrFieldKind = errors.New("stm: value of a kind the field cannot hold")
	// ErrFieldRange is wrapped by a *FieldError when a value of the right
	// kind is out of the field's range: 300 for an int8 field, -1 for a
	// uint32, a float a float32 does not hold exactly.
	ErrFieldRange = errors.New("stm: value out of the field's range")
	// ErrNotRecord is returned by DecodeRecord for a wire object that is not
	// a record of the object's class, or that has a field id twice.
	ErrNotRecord = errors.New("stm: wire object is not a record of the object's class")
)

var (
	errNoResolve = errors.New("stm: DecodeRecord: a ref and no resolve function")
	errDangling  = errors.New("stm: DecodeRecord: resolve returned no object")
)

// FieldError says which field of a record could not be encoded or decoded,
// and why. Err is ErrFieldKind, ErrFieldRange, errors.ErrUnsupported (a
// field of a Go type with no wire form), or, for a reference field, the
// error of DecodeRecord's resolve function (or the one saying it returned
// no object, or was nil).
type FieldError struct {
	Class  string  // the class's name
	Field  FieldID // the field's id
	Name   string  // the field's name
	Err    error
	detail string
}

func (e *FieldError) Error() string {
	return fmt.Sprintf("stm: class %s field %d (%s): %s", e.Class, e.Field, e.Name, e.detail)
}

func (e *FieldError) Unwrap() error { return e.Err }

// unknownFieldsName names the unknown fields in conflicts.
const unknownFieldsName = "unknown fields"

// unknownFields holds an object's fields that its class does not have, made
// on first need and never replaced: its initial, empty state is true at
// every snapshot before the first transaction that writes it.
type unknownFields struct {
	m atomic.Pointer[Map[FieldID, wire.Value]]
}

// unknownMap returns o's map of unknown fields, making it if needed.
func (o *Object) unknownMap() *Map[FieldID, wire.Value] {
	if m := o.unknown.m.Load(); m != nil {
		return m
	}
	m := NewMap[FieldID, wire.Value](o.ws)
	m.owner, m.field, m.fieldName = o, 0, unknownFieldsName
	if !o.unknown.m.CompareAndSwap(nil, m) {
		return o.unknown.m.Load()
	}
	return m
}

// recordField is what the record codec needs of a field handle; every
// handle type implements it.
type recordField interface {
	Field
	// encodeField returns the field's value in o as tx sees it.
	encodeField(tx *Tx, o *Object, ref func(Observable) wire.ObjectID) (wire.Value, error)
	// decodeField checks that v fits the field and returns the write that
	// stores it in o, or nil if there is nothing to write.
	decodeField(o *Object, v wire.Value, resolve func(wire.ObjectID) (*Object, error)) (func(tx *Tx), error)
	// isValue reports whether the field holds a value (a Var) rather than
	// a collection, which is an object of its own on the wire.
	isValue() bool
	info() *fieldInfo
}

func (f *fieldInfo) info() *fieldInfo   { return f }
func (f *VarField[T]) isValue() bool    { return true }
func (f *CounterField) isValue() bool   { return false }
func (f *MapField[K, V]) isValue() bool { return false }
func (f *SetField[T]) isValue() bool    { return false }
func (f *ListField[T]) isValue() bool   { return false }

// EncodeRecord returns o's state as tx sees it: a wire.Object of kind
// record, with o's class id and one field per field of the class and per
// unknown field o carries, in field id order. Reading the fields records
// reads in tx like any other read. With Auto it reads the latest committed
// state in a read-only transaction of its own.
//
// ref, which must not be nil, maps an object to its wire id (an Observable
// is a pointer, so it can key a Go map). It is called with o itself (for the
// record's ID), with the target of each non-nil reference field (a
// *Object), and with the cell of each collection field (a *Counter, *Map,
// *Set or *List): in the wire model a collection is an object of its own,
// and the record holds a ref to it. A nil reference is a null value. The
// contents of collections are not read: the caller encodes them as their
// own objects.
//
// A value field holds bool, an integer type, float32, float64, string,
// []byte or *Object; signed integers are encoded as wire ints, unsigned
// ones as wire uints. A field of any other Go type is a *FieldError
// wrapping errors.ErrUnsupported.
func EncodeRecord(tx *Tx, o *Object, ref func(x Observable) wire.ObjectID) (wire.Object, error) {
	if tx.auto {
		var w wire.Object
		err := o.ws.View(context.Background(), func(tx *Tx) error {
			var err error
			w, err = EncodeRecord(tx, o, ref)
			return err
		})
		return w, err
	}
	w := wire.Object{ID: ref(o), Class: uint32(o.class.id), Kind: wire.ObjectRecord}
	w.Fields = make([]wire.Field, 0, len(o.class.fields))
	for _, f := range o.class.fields {
		v, err := f.(recordField).encodeField(tx, o, ref)
		if err != nil {
			return wire.Object{}, err
		}
		w.Fields = append(w.Fields, wire.Field{ID: uint32(f.ID()), Value: v})
	}
	// A transaction that may commit must record that it read the unknown
	// fields even when there are none yet, so it needs the map; a read-only
	// one that finds none has nothing to validate.
	m := o.unknown.m.Load()
	if m == nil && !tx.st().readOnly {
		m = o.unknownMap()
	}
	if m != nil {
		for id, v := range m.All(tx) {
			w.Fields = append(w.Fields, wire.Field{ID: uint32(id), Value: v})
		}
	}
	slices.SortFunc(w.Fields, func(a, b wire.Field) int { return cmp.Compare(a.ID, b.ID) })
	return w, nil
}

// DecodeRecord writes the fields of w, a record of o's class, into o within
// tx, as blind writes (it reads nothing, so it causes no conflict by itself).
// With Auto it commits at once, as its own transaction.
//
//   - A field of the class absent from w keeps its current value; a new
//     object's fields are at their zero values.
//   - A field id the class does not have is kept on o as an unknown field,
//     replacing the earlier unknown value of that id, and EncodeRecord
//     writes it back unchanged. Unknown fields are never dropped.
//   - A collection field's value in w must be a ref, and is otherwise
//     ignored: a collection's contents travel as an object of its own.
//   - Integers convert to any integer field that holds their value (an
//     int32 from an int64 field of an older replica, a uint16 as an int32
//     field); floats to a float64 field, or to a float32 field that holds
//     them exactly. null is a nil reference; a ref is resolved to its object
//     by resolve, which may be nil if w holds no refs in reference fields.
//     resolve must return an object or an error: a dangling reference is an
//     error, never silently a nil one.
//
// A value of a kind its field cannot hold, or out of its range, is a
// *FieldError naming the field (see ErrFieldKind, ErrFieldRange). Every
// field is checked and every ref resolved before anything is written, so on
// an error DecodeRecord changes nothing; if tx later aborts, its writes,
// unknown fields included, vanish with it.
func DecodeRecord(tx *Tx, o *Object, w wire.Object, resolve func(wire.ObjectID) (*Object, error)) error {
	if w.Kind != wire.ObjectRecord || w.Class != uint32(o.class.id) {
		return fmt.Errorf("%w: got a %v of class %d for class %s (%d)", ErrNotRecord, w.Kind, w.Class, o.class.name, o.class.id)
	}
	if err := checkDistinct(w.Fields); err != nil {
		return err
	}
	var writes []func(tx *Tx)
	var unknown []wire.Field
	for _, wf := range w.Fields {
		f := o.class.field(FieldID(wf.ID))
		if f == nil {
			unknown = append(unknown, wf)
			continue
		}
		write, err := f.decodeField(o, wf.Value, resolve)
		if err != nil {
			return err
		}
		if write != nil {
			writes = append(writes, write)
		}
	}
	apply := func(tx *Tx) error {
		for _, write := range writes {
			write(tx)
		}
		if len(unknown) > 0 {
			m := o.unknownMap()
			for _, wf := range unknown {
				m.PutFast(tx, FieldID(wf.ID), wf.Value)
			}
		}
		return nil
	}
	if tx.auto {
		return o.ws.Atomically(context.Background(), apply)
	}
	return apply(tx)
}

// checkDistinct reports a field id that appears twice.
func checkDistinct(fs []wire.Field) error {
	for i := 1; i < len(fs); i++ {
		if fs[i].ID > fs[i-1].ID {
			continue
		}
		// Not in increasing order: sort a copy of the ids to check.
		ids := make([]uint32, len(fs))
		for j, f := range fs {
			ids[j] = f.ID
		}
		slices.Sort(ids)
		for j := 1; j < len(ids); j++ {
			if ids[j] == ids[j-1] {
				return fmt.Errorf("%w: field %d appears twice", ErrNotRecord, ids[j])
			}
		}
		return nil
	}
	return nil
}

// field returns the class's field with id, or nil.
func (c *Class) field(id FieldID) recordField {
	for _, f := range c.fields {
		if f.ID() == id {
			return f.(recordField)
		}
	}
	return nil
}

func (f *fieldInfo) errorf(sentinel error, format string, args ...any) *FieldError {
	return &FieldError{Class: f.className(), Field: f.id, Name: f.name, Err: sentinel, detail: fmt.Sprintf(format, args...)}
}

func (f *VarField[T]) encodeField(tx *Tx, o *Object, ref func(Observable) wire.ObjectID) (wire.Value, error) {
	v := f.Of(o).Get(tx)
	if p, ok := any(v).(*Object); ok && p != nil {
		return wire.Ref(ref(p)), nil
	}
	w, err := toWire(v)
	if err != nil {
		return w, f.fromValueError(err)
	}
	return w, nil
}

func (f *VarField[T]) decodeField(o *Object, v wire.Value, resolve func(wire.ObjectID) (*Object, error)) (func(tx *Tx), error) {
	var x T
	if err := f.convert(&x, v, resolve); err != nil {
		return nil, err
	}
	cell := f.Of(o)
	return func(tx *Tx) { cell.Set(tx, x) }, nil
}

// valueSetter is implemented by the fields that hold a value (VarField):
// setField stores v in o's field at once, applyOp's path, which needs no
// write to run later (decodeField's closure would be an allocation per
// op). Collection fields are written through their own objects.
type valueSetter interface {
	setField(tx *Tx, o *Object, v wire.Value, resolve func(wire.ObjectID) (*Object, error)) error
}

// valueZeroer is implemented by the fields that hold a value (VarField):
// zeroField stores the zero value in o's field (setState's reset of a
// field the new state lacks).
type valueZeroer interface {
	zeroField(tx *Tx, o *Object)
}

// zeroField implements valueZeroer.
func (f *VarField[T]) zeroField(tx *Tx, o *Object) {
	var zero T
	f.Of(o).Set(tx, zero)
}

// setField implements valueSetter.
func (f *VarField[T]) setField(tx *Tx, o *Object, v wire.Value, resolve func(wire.ObjectID) (*Object, error)) error {
	var x T
	if err := f.convert(&x, v, resolve); err != nil {
		return err
	}
	f.Of(o).Set(tx, x)
	return nil
}

// convert stores v in *dst, converted to the field's Go type.
func (f *VarField[T]) convert(dst *T, v wire.Value, resolve func(wire.ObjectID) (*Object, error)) error {
	if err := fromWire(dst, v, resolve); err != nil {
		return f.fromValueError(err)
	}
	return nil
}

// fromValueError names the field in a conversion error.
func (f *fieldInfo) fromValueError(err error) error {
	var ve *valueError
	if errors.As(err, &ve) {
		return f.errorf(ve.sentinel, "%s", ve.detail)
	}
	return err
}

func (f *fieldInfo) wrongKind(v wire.Value, want string) *FieldError {
	return f.errorf(ErrFieldKind, "%s cannot be read as %s", describe(v), want)
}

// Collection fields: the record holds a ref to the collection, an object of
// its own on the wire, whose contents are encoded and decoded separately.

func (f *fieldInfo) checkCollection(v wire.Value, what string) error {
	if v.Kind() != wire.KindRef {
		return f.wrongKind(v, "a ref to a "+what)
	}
	return nil
}

func (f *CounterField) encodeField(_ *Tx, o *Object, ref func(Observable) wire.ObjectID) (wire.Value, error) {
	return wire.Ref(ref(f.Of(o))), nil
}

func (f *CounterField) decodeField(_ *Object, v wire.Value, _ func(wire.ObjectID) (*Object, error)) (func(tx *Tx), error) {
	return nil, f.checkCollection(v, "counter")
}

func (f *MapField[K, V]) encodeField(_ *Tx, o *Object, ref func(Observable) wire.ObjectID) (wire.Value, error) {
	return wire.Ref(ref(f.Of(o))), nil
}

func (f *MapField[K, V]) decodeField(_ *Object, v wire.Value, _ func(wire.ObjectID) (*Object, error)) (func(tx *Tx), error) {
	return nil, f.checkCollection(v, "map")
}

func (f *SetField[T]) encodeField(_ *Tx, o *Object, ref func(Observable) wire.ObjectID) (wire.Value, error) {
	return wire.Ref(ref(f.Of(o))), nil
}

func (f *SetField[T]) decodeField(_ *Object, v wire.Value, _ func(wire.ObjectID) (*Object, error)) (func(tx *Tx), error) {
	return nil, f.checkCollection(v, "set")
}

func (f *ListField[T]) encodeField(_ *Tx, o *Object, ref func(Observable) wire.ObjectID) (wire.Value, error) {
	return wire.Ref(ref(f.Of(o))), nil
}

func (f *ListField[T]) decodeField(_ *Object, v wire.Value, _ func(wire.ObjectID) (*Object, error)) (func(tx *Tx), error) {
	return nil, f.checkCollection(v, "list")
}

// Materialize makes the record w describes in ws, for a replica receiving
// it from elsewhere: the object has w's id, and each of its collection
// fields (counter, map, set, list) has the id of the collection object w's
// field refers to, so that ops naming those ids reach it (see ApplyOps).
// A collection field w lacks (data from an older class) gets a fresh id.
// The fields' values are not set: decode w into the object with
// DecodeRecord, and fill each collection from its own wire object. w must
// be a record of class c.
func Materialize(ws *Workspace, c *Class, w wire.Object) (*Object, error) {
	if w.Kind != wire.ObjectRecord || w.Class != uint32(c.id) {
		return nil, fmt.Errorf("%w: got a %v of class %d for class %s (%d)", ErrNotRecord, w.Kind, w.Class, c.name, c.id)
	}
	if err := checkDistinct(w.Fields); err != nil {
		return nil, err
	}
	o := NewObject(ws, c)
	o.id = w.ID
	for _, wf := range w.Fields {
		f := c.field(FieldID(wf.ID))
		if f == nil || f.isValue() {
			continue
		}
		if wf.Value.Kind() != wire.KindRef {
			return nil, f.info().fromValueError(wrongKind(wf.Value, "a ref to a collection"))
		}
		cell, _ := o.Field(f.ID())
		cell.observed().id = wf.Value.Ref()
	}
	return o, nil
}

// Field returns o's cell for the field with id: a *Var, *Counter, *Map,
// *Set or *List, or false if o's class has no such field.
func (o *Object) Field(id FieldID) (Observable, bool) {
	for i, f := range o.class.fields {
		if f.ID() == id {
			return o.cells[i].(Observable), true
		}
	}
	return nil, false
}

// IDOf returns the id of any transactional object.
func IDOf(x Observable) ID { return x.observed().id }

// Same reports whether x and y are the same transactional object (a Set
// and the Map inside it are one object, as their id says).
func Same(x, y Observable) bool { return x.observed() == y.observed() }

// Targets calls f with each object the transaction has read or written
// so far, as its commit record names them (the *Object for a value field
// of a record, else the object itself; a Set comes as the Map inside it,
// which IDOf, KindOf and Same treat as the Set), and whether it wrote it;
// an object may come more than once. A layer that owns some of the
// workspace's objects uses it to check what a transaction changes (see
// WithCommitGuard).
func (tx *Tx) Targets(f func(o Observable, wrote bool)) {
	s := tx.st()
	for i := range s.entries {
		e := &s.entries[i]
		if e.read() || e.written() {
			f(e.c.named(), e.written())
		}
	}
}

// Retire marks x (for a record, with its fields) as retired: from then
// on a transaction that touches it stops with ErrRetired, and a commit
// record that refers to it fails with it. A replication layer retires
// the objects of a share it no longer holds, so that objects kept by the
// application cannot be taken for those of a later opening, which carry
// the same ids. Reads with Auto, which run no transaction, still return
// its last state. Retiring cannot be undone.
func Retire(x Observable) { x.observed().retired.Store(true) }

// Retired reports whether x (or, for a field, its record) was retired.
func Retired(x Observable) bool {
	b := x.observed()
	return b.retired.Load() || (b.owner != nil && b.owner.retired.Load())
}

// Bind marks x (for a record, with its fields) as bound to a replication
// layer, which alone may write it: the layer's commit guard (see
// WithCommitGuard) refuses other transactions that write what Bound
// reports. Unbind undoes it.
func Bind(x Observable) { x.observed().bound.Store(true) }

// Unbind undoes Bind, for x and, for a record, its fields (collections
// included): the layer no longer holds it.
func Unbind(x Observable) {
	x.observed().bound.Store(false)
	if o, ok := x.(*Object); ok {
		for _, c := range o.cells {
			c.(Observable).observed().bound.Store(false)
		}
	}
}

// Bound reports whether x (or, for a field, its record) is bound.
func Bound(x Observable) bool {
	b := x.observed()
	return b.bound.Load() || (b.owner != nil && b.owner.bound.Load())
}
