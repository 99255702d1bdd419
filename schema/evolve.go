package schema

// CheckEvolution checks that next can replace prev, the schema it evolves
// from, without breaking replicas and stored objects that still use prev's
// ids. The rules:
//
//   - A class or field keeps its id for as long as it exists.
//   - An id is never reused: once a class or field had it, no other one may
//     take it, even after the first was removed.
//   - A removed class or field leaves its id reserved ("reserved 6;"), and a
//     reserved id stays reserved. Deprecating ([deprecated]) rather than
//     removing is the gentler path: the field stays readable.
//   - A field's type may only change so that every value stored under prev
//     can be read under next: identical, or widened (int32 to int64, uint16
//     to uint32 or int32, float32 to float64), element-wise for collections.
//     A reference keeps its target class.
//
// Errors are positioned in next, and mention the declaration in prev.
func CheckEvolution(prev, next *Schema) error {
	errs := &errorSink{}
	nextPos := func() Pos { return Pos{File: next.File.Name, Line: 1, Col: 1} }
	if next.File.Package != nil {
		nextPos = func() Pos { return next.File.Package.Pos }
	}

	for _, pc := range prev.Classes {
		nc := next.Class(pc.Name)
		if nc == nil {
			if !next.IsReserved(pc.ID) {
				errs.errorf(nextPos(), "class %s (id %d, at %s) was removed without reserving its id: keep it with [deprecated], or add \"reserved %d;\"", pc.Name, pc.ID, pc.Pos, pc.ID)
			}
			continue
		}
		if nc.ID != pc.ID {
			errs.errorf(nc.Decl.ID.Pos, "class %s changed its id from %d (at %s) to %d: ids never change", nc.Name, pc.ID, pc.Pos, nc.ID)
			continue
		}
		checkFieldEvolution(errs, pc, nc)
	}
	for _, nc := range next.Classes {
		if pc := prev.ClassByID(nc.ID); pc != nil && pc.Name != nc.Name {
			errs.errorf(nc.Decl.ID.Pos, "class id %d of %s was the id of class %s (at %s): ids are never reused", nc.ID, nc.Name, pc.Name, pc.Pos)
		}
		if r := reservedIn(prev.Reserved, nc.ID); r != nil {
			errs.errorf(nc.Decl.ID.Pos, "class id %d of %s was reserved (at %s): ids are never reused", nc.ID, nc.Name, r.Pos)
		}
	}
	for _, r := range prev.Reserved {
		if id, ok := firstUncovered(r, next.Reserved, func(id uint32) bool { return next.ClassByID(id) != nil }); ok {
			errs.errorf(nextPos(), "class id %d was reserved (at %s) and must stay reserved", id, r.Pos)
		}
	}
	return errs.err()
}

func checkFieldEvolution(errs *errorSink, pc, nc *Class) {
	for _, pf := range pc.Fields {
		nf := nc.Field(pf.Name)
		if nf == nil {
			if !nc.IsReserved(pf.ID) {
				errs.errorf(nc.Pos, "field %s.%s (id %d, at %s) was removed without reserving its id: keep it with [deprecated], or add \"reserved %d;\" to class %s", pc.Name, pf.Name, pf.ID, pf.Pos, pf.ID, nc.Name)
			}
			continue
		}
		if nf.ID != pf.ID {
			errs.errorf(nf.Decl.ID.Pos, "field %s.%s changed its id from %d (at %s) to %d: ids never change", nc.Name, nf.Name, pf.ID, pf.Pos, nf.ID)
			continue
		}
		if !canRead(pf.Type, nf.Type) {
			errs.errorf(nf.Type.Pos, "field %s.%s changed its type from %s (at %s) to %s, which cannot hold every %s value", nc.Name, nf.Name, pf.Type, pf.Type.Pos, nf.Type, pf.Type)
		}
	}
	for _, nf := range nc.Fields {
		if pf := pc.FieldByID(nf.ID); pf != nil && pf.Name != nf.Name {
			errs.errorf(nf.Decl.ID.Pos, "field id %d of %s.%s was the id of field %s (at %s): ids are never reused", nf.ID, nc.Name, nf.Name, pf.Name, pf.Pos)
		}
		if r := reservedIn(pc.Reserved, nf.ID); r != nil {
			errs.errorf(nf.Decl.ID.Pos, "field id %d of %s.%s was reserved (at %s): ids are never reused", nf.ID, nc.Name, nf.Name, r.Pos)
		}
	}
	for _, r := range pc.Reserved {
		if id, ok := firstUncovered(r, nc.Reserved, func(id uint32) bool { return nc.FieldByID(id) != nil }); ok {
			errs.errorf(nc.Pos, "field id %d of class %s was reserved (at %s) and must stay reserved", id, nc.Name, r.Pos)
		}
	}
}

// firstUncovered returns the first id of r that is neither in reserved nor
// used (a reuse, reported on its own). It steps over whole reserved ranges,
// so a range of millions of ids costs a few steps.
func firstUncovered(r IDRange, reserved []IDRange, used func(uint32) bool) (uint32, bool) {
	for id := r.From; id <= r.To; {
		if cover := reservedIn(reserved, id); cover != nil {
			id = cover.To + 1
			continue
		}
		if !used(id) {
			return id, true
		}
		id++
	}
	return 0, false
}

// canRead reports whether every value of type prev is a value of type next.
func canRead(prev, next *Type) bool {
	switch {
	case prev.Kind == next.Kind:
		switch prev.Kind {
		case Ref:
			return prev.Class.Name == next.Class.Name
		case Set, List:
			return canRead(prev.Elem, next.Elem)
		case Map:
			return canRead(prev.Key, next.Key) && canRead(prev.Elem, next.Elem)
		}
		return true
	case prev.Kind.IsInteger() && next.Kind.IsInteger():
		if prev.Kind.IsSigned() && !next.Kind.IsSigned() {
			return false
		}
		if !prev.Kind.IsSigned() && next.Kind.IsSigned() {
			return next.Kind.Bits() > prev.Kind.Bits()
		}
		return next.Kind.Bits() >= prev.Kind.Bits()
	case prev.Kind == Float32 && next.Kind == Float64:
		return true
	}
	return false
}
