package authority

import (
	"fmt"
	"slices"

	"github.com/weft-stm/weft/wire"
)

// Referential integrity. A reference (a ref value in a record field, a
// var, a map key or value, a set element or a list element) always names
// an object in the share: a commit is invalid if its writes store a ref
// to an object that is not in the share after it (never created, removed
// before, or removed by the commit itself), or if it removes an object
// that a ref still names after it. So no state the share reaches, and no
// snapshot of it, holds a ref a replica cannot resolve.
//
// s.refs counts, for each object, the slots of live objects holding a ref
// to it (a map entry whose key and value are both refs counts twice).
// applyOp and loadPiece keep it; checkRefs reads it, so that a commit that
// removes nothing referenced costs no scan.

// countRef adds d to the count of the object v refers to, if v is a ref.
func (s *Share) countRef(v wire.Value, d int) {
	if v.Kind() != wire.KindRef {
		return
	}
	id := v.Ref()
	if n := s.refs[id] + d; n != 0 {
		s.refs[id] = n
	} else {
		delete(s.refs, id)
	}
}

// holdRef counts d for v, a value o holds (or held), if it is a ref: in
// the share's refs, and in o's refsIn.
func (s *Share) holdRef(o *object, v wire.Value, d int) {
	if v.Kind() != wire.KindRef {
		return
	}
	s.countRef(v, d)
	o.refsIn += d
}

// countRefsOf adds d for every ref o holds: none to look for if refsIn
// says so (a large list of numbers is removed without reading it).
func (s *Share) countRefsOf(o *object, d int) {
	if o.refsIn == 0 {
		return
	}
	eachRef(o, func(v wire.Value) { s.countRef(v, d) })
}

// eachRef calls f with every value o holds that may be a ref.
func eachRef(o *object, f func(wire.Value)) {
	switch o.kind {
	case wire.ObjectRecord:
		for _, e := range o.fields {
			f(e.val)
		}
	case wire.ObjectVar:
		f(o.val.val)
	case wire.ObjectMap, wire.ObjectSet:
		for k, e := range o.entries {
			if e.present {
				f(k)
				f(e.val)
			}
		}
	case wire.ObjectList:
		for _, e := range o.list {
			f(e.val)
		}
	}
}

// checkRefs reports a commit whose ops (valid by checkWrites) would leave
// a ref to an object not in the share: see above.
func (s *Share) checkRefs(ops []wire.Op) error {
	var created, removed map[wire.ObjectID]bool
	for i := range ops {
		switch ops[i].Kind {
		case wire.OpCreate:
			if created == nil {
				created = map[wire.ObjectID]bool{}
			}
			created[ops[i].Object] = true
		case wire.OpRemove:
			if removed == nil {
				removed = map[wire.ObjectID]bool{}
			}
			removed[ops[i].Object] = true
		}
	}
	for i := range ops {
		var err error
		ops[i].Stored(func(v wire.Value) {
			if v.Kind() != wire.KindRef || err != nil {
				return
			}
			id := v.Ref()
			if removed[id] || !(created[id] || s.Has(id)) {
				err = fmt.Errorf("writes[%d] (%v on %v): a ref to %v, which is not in the share after the commit",
					i, ops[i].Kind, ops[i].Object, id)
			}
		})
		if err != nil {
			return err
		}
	}
	// What still names a removed object after the commit: the refs to it
	// now, less those in the slots the commit clears (it writes no new
	// one, by the check above).
	left := map[wire.ObjectID]int{}
	for id := range removed {
		if n := s.refs[id]; n > 0 {
			left[id] = n
		}
	}
	if len(left) == 0 {
		return nil
	}
	drop := func(v wire.Value) {
		if v.Kind() == wire.KindRef {
			if _, ok := left[v.Ref()]; ok {
				left[v.Ref()]--
			}
		}
	}
	for id := range removed {
		// refsIn: an object holding no ref is not read (a commit failing
		// this check would otherwise cost a read of every removed object,
		// as large as they come, under the share's lock, again and again).
		if o := s.objects[id]; o != nil && !created[id] && o.refsIn > 0 {
			eachRef(o, drop)
		}
	}
	type slot struct {
		obj   wire.ObjectID
		kind  wire.OpKind
		field uint32
		key   wire.Value
		index uint64
	}
	cleared := map[slot]bool{}
	for i := range ops {
		op := &ops[i]
		o := s.objects[op.Object]
		if o == nil || o.removed || created[op.Object] || removed[op.Object] {
			continue // nothing of it is left, or it held nothing before
		}
		sl := slot{obj: op.Object, kind: op.Kind}
		switch op.Kind {
		case wire.OpSetField:
			sl.field = op.Field
		case wire.OpMapPut, wire.OpMapDelete, wire.OpSetAdd, wire.OpSetRemove:
			sl.kind, sl.key = wire.OpMapPut, op.Key
		case wire.OpListSet:
			sl.index = op.Index
		case wire.OpVarSet:
		default:
			continue
		}
		if cleared[sl] {
			continue
		}
		cleared[sl] = true
		switch sl.kind {
		case wire.OpSetField:
			if e := o.fields[op.Field]; e != nil {
				drop(e.val)
			}
		case wire.OpVarSet:
			drop(o.val.val)
		case wire.OpMapPut:
			if e := o.entries[op.Key]; e != nil && e.present {
				drop(op.Key)
				drop(e.val)
			}
		case wire.OpListSet:
			if op.Index < uint64(len(o.list)) {
				drop(o.list[op.Index].val)
			}
		}
	}
	for _, id := range sortedIDs(left) {
		if n := left[id]; n > 0 {
			return fmt.Errorf("removes %v, which %d ref(s) still name after the commit", id, n)
		}
	}
	return nil
}

// sortedIDs returns m's keys in order, so that errors are deterministic.
func sortedIDs(m map[wire.ObjectID]int) []wire.ObjectID {
	ids := make([]wire.ObjectID, 0, len(m))
	for id := range m {
		ids = append(ids, id)
	}
	slices.SortFunc(ids, compareIDs)
	return ids
}
