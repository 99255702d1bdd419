package wire

import (
	"math"
	"unicode/utf8"
)

// Validate reports whether a decoder with limits lim (after WithDefaults)
// would accept m once encoded, MaxFrameSize aside (that needs the encoding;
// Writer checks it). It checks lengths and counts against their limits,
// UTF-8, and enum values, in the order the decoder meets them, so the error
// is the one the peer would report. Errors are *FieldError values with
// Offset -1.
func Validate(m Message, lim Limits) error {
	c := getChecking(lim)
	defer c.put()
	return c.v.message(m)
}

func (v *validator) message(m Message) error {
	m.validate(v)
	if v.err != nil {
		prefix(v.err, m.Type().String(), -1)
	}
	return v.err
}

type validator struct {
	lim *Limits
	err error
}

func (v *validator) fail(field string, err error) {
	if v.err == nil {
		v.err = &FieldError{Field: field, Offset: -1, Err: err}
	}
}

// over fails field with ErrLimit: size is over limit.
func (v *validator) over(field string, size, limit int) {
	if v.err == nil {
		v.err = &FieldError{Field: field, Offset: -1, Err: ErrLimit, Size: size, Limit: limit}
	}
}

func (v *validator) wrap(name string, index int) bool {
	if v.err == nil {
		return false
	}
	prefix(v.err, name, index)
	return true
}

// count checks a count and reports whether to go on with its elements: not
// after any error, so that an element's path never wraps another's error.
func (v *validator) count(field string, n, max int) bool {
	if n > max {
		v.over(field, n, max)
	}
	return v.err == nil
}

func (v *validator) string(field, s string, max int) {
	switch {
	case len(s) > max:
		v.over(field, len(s), max)
	case !utf8.ValidString(s):
		v.fail(field, ErrBadUTF8)
	}
}

func (v *validator) value(field string, x Value) {
	switch x.kind {
	case KindNull, KindBool, KindInt, KindUint, KindFloat, KindRef:
	case KindString:
		v.string(field, x.str, v.lim.MaxStringLen)
	case KindBytes:
		if len(x.str) > v.lim.MaxStringLen {
			v.over(field, len(x.str), v.lim.MaxStringLen)
		}
	default:
		v.fail(field, ErrInvalid)
	}
}

func (v *validator) values(field string, xs []Value) {
	if !v.count(field, len(xs), v.lim.MaxElements) {
		return
	}
	for i, x := range xs {
		v.value("", x)
		if v.wrap(field, i) {
			return
		}
	}
}

func (v *validator) fields(field string, fs []Field) {
	if !v.count(field, len(fs), v.lim.MaxElements) {
		return
	}
	for i, f := range fs {
		v.value("value", f.Value)
		if v.wrap(field, i) {
			return
		}
	}
}

func (v *validator) read(r *Read) {
	if !r.Kind.valid() {
		v.fail("kind", ErrInvalid)
	}
	if r.Kind == ReadKey {
		v.value("key", r.Key)
	}
}

func (v *validator) reads(field string, rs []Read) {
	if !v.count(field, len(rs), v.lim.MaxReads) {
		return
	}
	for i := range rs {
		v.read(&rs[i])
		if v.wrap(field, i) {
			return
		}
	}
}

func (v *validator) op(op *Op) {
	if !op.Kind.valid() {
		v.fail("op", ErrInvalid)
	}
	switch op.Kind {
	case OpSetField, OpVarSet, OpListSet:
		v.value("value", op.Value)
	case OpMapPut:
		v.value("key", op.Key)
		v.value("value", op.Value)
	case OpMapDelete, OpSetAdd, OpSetRemove:
		v.value("key", op.Key)
	case OpListAppend:
		v.values("values", op.Values)
	case OpCreate:
		if !op.ObjectKind.valid() {
			v.fail("object_kind", ErrInvalid)
		}
		v.fields("fields", op.Fields)
		if op.ObjectKind != ObjectRecord && len(op.Fields) > 0 {
			v.fail("fields", ErrInvalid)
		}
	}
}

func (v *validator) ops(field string, ops []Op) {
	if !v.count(field, len(ops), v.lim.MaxWrites) {
		return
	}
	for i := range ops {
		v.op(&ops[i])
		if v.wrap(field, i) {
			return
		}
	}
}

func (v *validator) object(o *Object) {
	if !o.Kind.valid() {
		v.fail("kind", ErrInvalid)
	}
	switch o.Kind {
	case ObjectRecord:
		v.fields("fields", o.Fields)
	case ObjectVar:
		v.value("value", o.Value)
	case ObjectMap:
		if !v.count("entries", len(o.Entries), v.lim.MaxElements) {
			return
		}
		for i, e := range o.Entries {
			v.value("key", e.Key)
			v.value("value", e.Value)
			if v.wrap("entries", i) {
				return
			}
		}
	case ObjectSet, ObjectList:
		v.values("elems", o.Elems)
	}
}

func (m *Hello) validate(v *validator) {
	v.string("token", m.Token, v.lim.MaxStringLen)
	v.string("agent", m.Agent, v.lim.MaxNameLen)
}

func (m *Welcome) validate(v *validator) {
	for i, f := range m.Limits.fields() {
		if *f > math.MaxInt32 {
			v.fail(limitPaths[i], ErrBadVarint)
		}
	}
}

func (m *Error) validate(v *validator) { v.string("message", m.Message, v.lim.MaxStringLen) }
func (m *Ping) validate(*validator)    {}
func (m *Pong) validate(*validator)    {}

func (m *OpenShare) validate(v *validator) { v.string("name", m.Name, v.lim.MaxNameLen) }

func (m *Opened) validate(v *validator) {
	if !m.Access.valid() {
		v.fail("access", ErrInvalid)
	}
	if !m.Transfer.valid() {
		v.fail("transfer", ErrInvalid)
	}
}

func (m *SnapshotChunk) validate(v *validator) {
	if !v.count("objects", len(m.Objects), v.lim.MaxObjects) {
		return
	}
	for i := range m.Objects {
		v.object(&m.Objects[i])
		if v.wrap("objects", i) {
			return
		}
	}
}

func (m *Delta) validate(v *validator) {
	if !v.count("changes", len(m.Changes), v.lim.MaxChanges) {
		return
	}
	for i := range m.Changes {
		v.ops("writes", m.Changes[i].Writes)
		if v.wrap("changes", i) {
			return
		}
	}
}

func (m *CloseShare) validate(*validator) {}

func (m *ShareClosed) validate(v *validator) { v.string("message", m.Message, v.lim.MaxStringLen) }

func (m *Commit) validate(v *validator) {
	if !v.count("deps", len(m.Deps), v.lim.MaxDeps) {
		return
	}
	v.reads("reads", m.Reads)
	v.ops("writes", m.Writes)
}

func (m *Ack) validate(*validator) {}

func (m *Abort) validate(v *validator) {
	v.string("message", m.Message, v.lim.MaxStringLen)
	v.reads("conflicts", m.Conflicts)
}

func (m *Update) validate(v *validator) { v.ops("writes", m.Writes) }
