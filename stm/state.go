package stm

import (
	"fmt"
	"slices"

	"github.com/weft-stm/weft/wire"
)

// SetState makes x's state in tx equal to w, the state of an object of the
// same kind in wire form (as a snapshot carries it): a replica rebuilding
// an object from its authority's copy, when speculative writes must be
// undone or reordered behind another replica's. It reads what it replaces
// (so a concurrent change of x makes tx conflict and retry) and writes only
// what differs in collections:
//
//   - a var is set; a counter gets the difference added;
//   - a map or set loses the keys w lacks and gets w's entries;
//   - a list gets w's elements, and is truncated to w's length if it was
//     longer (the one way a List shrinks);
//   - a record gets w's fields as DecodeRecord writes them, and, being
//     given its whole state, a value field w lacks goes back to its zero
//     value and an unknown field w lacks is dropped.
//
// Refs are resolved with resolve. On an error, writes already made stay in
// tx, which the caller then aborts. SetState needs a real transaction, not
// Auto.
func SetState(tx *Tx, x Observable, w wire.Object, resolve func(wire.ObjectID) (Observable, error)) error {
	if tx.auto {
		return fmt.Errorf("%w: SetState needs a transaction", ErrBadOp)
	}
	if k := KindOf(x); k != w.Kind {
		return fmt.Errorf("%w: the state of a %v for a %v", ErrBadOp, w.Kind, k)
	}
	return x.(stateSetter).setState(tx, w, recordResolver(resolve))
}

type stateSetter interface {
	setState(tx *Tx, w wire.Object, resolve func(wire.ObjectID) (*Object, error)) error
}

func (v *Var[T]) setState(tx *Tx, w wire.Object, resolve func(wire.ObjectID) (*Object, error)) error {
	var x T
	if err := fromWire(&x, w.Value, resolve); err != nil {
		return err
	}
	v.Get(tx)
	v.Set(tx, x)
	return nil
}

func (c *Counter) setState(tx *Tx, w wire.Object, _ func(wire.ObjectID) (*Object, error)) error {
	if d := w.Counter - c.Get(tx); d != 0 {
		c.Add(tx, d)
	}
	return nil
}

func (m *Map[K, V]) setState(tx *Tx, w wire.Object, resolve func(wire.ObjectID) (*Object, error)) error {
	want := map[K]V{}
	add := func(key, val wire.Value) error {
		var k K
		var v V
		if err := fromWire(&k, key, resolve); err != nil {
			return err
		}
		if !m.set {
			if err := fromWire(&v, val, resolve); err != nil {
				return err
			}
		}
		want[k] = v
		return nil
	}
	if m.set {
		for _, e := range w.Elems {
			if err := add(e, wire.Value{}); err != nil {
				return err
			}
		}
	} else {
		for _, e := range w.Entries {
			if err := add(e.Key, e.Value); err != nil {
				return err
			}
		}
	}
	var drop []K
	for k := range m.All(tx) {
		if _, ok := want[k]; !ok {
			drop = append(drop, k)
		}
	}
	for _, k := range drop {
		m.DeleteFast(tx, k)
	}
	for k, v := range want {
		m.PutFast(tx, k, v)
	}
	return nil
}

func (s *Set[T]) setState(tx *Tx, w wire.Object, resolve func(wire.ObjectID) (*Object, error)) error {
	return s.m.setState(tx, w, resolve)
}

func (l *List[T]) setState(tx *Tx, w wire.Object, resolve func(wire.ObjectID) (*Object, error)) error {
	xs := make([]T, len(w.Elems))
	for i, e := range w.Elems {
		if err := fromWire(&xs[i], e, resolve); err != nil {
			return err
		}
	}
	n := l.Len(tx)
	for i := range min(n, len(xs)) {
		l.Set(tx, i, xs[i])
	}
	switch {
	case len(xs) > n:
		l.Append(tx, xs[n:]...)
	case len(xs) < n:
		l.truncate(tx, len(xs))
	}
	return nil
}

// setState makes o's state w's, whole: unlike DecodeRecord, which merges,
// a value field w lacks (a record written by an older class, or a field
// never set) goes back to its zero value, and an unknown field w lacks is
// dropped, so that what a rolled-back write left there does not stay.
func (o *Object) setState(tx *Tx, w wire.Object, resolve func(wire.ObjectID) (*Object, error)) error {
	if err := DecodeRecord(tx, o, w, resolve); err != nil {
		return err
	}
	has := func(id FieldID) bool {
		return slices.ContainsFunc(w.Fields, func(f wire.Field) bool { return FieldID(f.ID) == id })
	}
	for _, f := range o.class.fields {
		if z, ok := f.(valueZeroer); ok && !has(f.ID()) {
			z.zeroField(tx, o)
		}
	}
	if m := o.unknown.m.Load(); m != nil {
		var gone []FieldID
		for id := range m.All(tx) {
			if !has(id) {
				gone = append(gone, id)
			}
		}
		for _, id := range gone {
			m.DeleteFast(tx, id)
		}
	}
	return nil
}
