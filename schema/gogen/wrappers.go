package gogen

import (
	"strings"

	"github.com/weft-stm/weft/schema"
)

// The typed views of collections of references. stm stores a reference as a
// plain *stm.Object; these views take and return the class's own type, so a
// set<ref User> only ever holds Users. "CLASS" stands for the class name.

const setWrapper = `
// CLASSSet is a transactional set of CLASS references: a typed view of an
// *stm.Set[*stm.Object] that holds only objects of class CLASSClass. Its
// methods take the transaction to run in, or stm.Auto to run as an
// automatic transaction.
type CLASSSet struct {
	Set *stm.Set[*stm.Object]
}

// Add inserts x and reports whether it was absent; it reads x.
// Under stm.Auto it is AddFast and returns false.
func (s CLASSSet) Add(tx *stm.Tx, x CLASS) bool { return s.Set.Add(tx, x.Object) }

// AddFast inserts x without reading whether it was there: it never conflicts.
func (s CLASSSet) AddFast(tx *stm.Tx, x CLASS) { s.Set.AddFast(tx, x.Object) }

// Remove deletes x and reports whether it was present; it reads x.
// Under stm.Auto it is RemoveFast and returns false.
func (s CLASSSet) Remove(tx *stm.Tx, x CLASS) bool { return s.Set.Remove(tx, x.Object) }

// RemoveFast deletes x without reading it.
func (s CLASSSet) RemoveFast(tx *stm.Tx, x CLASS) { s.Set.RemoveFast(tx, x.Object) }

// Contains reports whether x is in the set.
func (s CLASSSet) Contains(tx *stm.Tx, x CLASS) bool { return s.Set.Contains(tx, x.Object) }

// Len returns the number of elements.
func (s CLASSSet) Len(tx *stm.Tx) int { return s.Set.Len(tx) }

// All iterates over the elements.
func (s CLASSSet) All(tx *stm.Tx) iter.Seq[CLASS] {
	return func(yield func(CLASS) bool) {
		for o := range s.Set.All(tx) {
			if !yield(CLASS{o}) {
				return
			}
		}
	}
}
`

const listWrapper = `
// CLASSList is a transactional list of CLASS references: a typed view of an
// *stm.List[*stm.Object] that holds only objects of class CLASSClass (or
// none). Its methods take the transaction to run in, or stm.Auto to run as
// an automatic transaction.
type CLASSList struct {
	List *stm.List[*stm.Object]
}

// Len returns the length of the list.
func (l CLASSList) Len(tx *stm.Tx) int { return l.List.Len(tx) }

// Get returns element i, or the zero CLASS if it refers to none.
func (l CLASSList) Get(tx *stm.Tx, i int) CLASS { return CLASS{l.List.Get(tx, i)} }

// Set makes element i refer to v.
func (l CLASSList) Set(tx *stm.Tx, i int, v CLASS) { l.List.Set(tx, i, v.Object) }

// Append adds vs at the end of the list.
func (l CLASSList) Append(tx *stm.Tx, vs ...CLASS) {
	objs := make([]*stm.Object, len(vs))
	for i, v := range vs {
		objs[i] = v.Object
	}
	l.List.Append(tx, objs...)
}

// All iterates over the indices and elements.
func (l CLASSList) All(tx *stm.Tx) iter.Seq2[int, CLASS] {
	return func(yield func(int, CLASS) bool) {
		for i, o := range l.List.All(tx) {
			if !yield(i, CLASS{o}) {
				return
			}
		}
	}
}
`

const mapWrapper = `
// CLASSMap is a transactional map from keys to CLASS references (its type
// parameter is lower-case, so that no class name can shadow it): a typed view
// of an *stm.Map[key, *stm.Object] whose values are objects of class
// CLASSClass. Its methods take the transaction to run in, or stm.Auto to
// run as an automatic transaction.
type CLASSMap[key comparable] struct {
	Map *stm.Map[key, *stm.Object]
}

// Get returns the value of k and whether k is present.
func (m CLASSMap[key]) Get(tx *stm.Tx, k key) (CLASS, bool) {
	o, ok := m.Map.Get(tx, k)
	return CLASS{o}, ok
}

// Put sets k to v and returns the previous value and whether there was one;
// it reads k. Under stm.Auto it is PutFast and returns the zero values.
func (m CLASSMap[key]) Put(tx *stm.Tx, k key, v CLASS) (old CLASS, existed bool) {
	o, existed := m.Map.Put(tx, k, v.Object)
	return CLASS{o}, existed
}

// PutFast sets k to v without reading k.
func (m CLASSMap[key]) PutFast(tx *stm.Tx, k key, v CLASS) { m.Map.PutFast(tx, k, v.Object) }

// Delete removes k and reports whether it was present; it reads k.
// Under stm.Auto it is DeleteFast and returns false.
func (m CLASSMap[key]) Delete(tx *stm.Tx, k key) bool { return m.Map.Delete(tx, k) }

// DeleteFast removes k without reading it.
func (m CLASSMap[key]) DeleteFast(tx *stm.Tx, k key) { m.Map.DeleteFast(tx, k) }

// Contains reports whether k is present.
func (m CLASSMap[key]) Contains(tx *stm.Tx, k key) bool { return m.Map.Contains(tx, k) }

// Len returns the number of keys.
func (m CLASSMap[key]) Len(tx *stm.Tx) int { return m.Map.Len(tx) }

// All iterates over the keys and values.
func (m CLASSMap[key]) All(tx *stm.Tx) iter.Seq2[key, CLASS] {
	return func(yield func(key, CLASS) bool) {
		for k, o := range m.Map.All(tx) {
			if !yield(k, CLASS{o}) {
				return
			}
		}
	}
}
`

func (g *generator) wrapperTypes(c *schema.Class, w *wrapperSet) {
	for _, t := range []struct {
		used bool
		text string
	}{{w.set, setWrapper}, {w.list, listWrapper}, {w.mapV, mapWrapper}} {
		if t.used {
			g.buf.WriteString(strings.ReplaceAll(t.text, "CLASS", c.Name))
		}
	}
}
