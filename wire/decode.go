package wire

import (
	"io"
	"math"
	"sync"
	"unicode/utf8"
)

// decoder reads one message body. Errors are sticky: after the first, every
// read returns a zero value and every count 0, so decoding code checks d.err
// only where it must stop (after a loop element, to name it in the path).
type decoder struct {
	b    []byte
	off  int
	base int // added to offsets in errors
	lim  *Limits
	err  error
	room []Op // where Writes goes if it fits: the message's own allocation, or a released Update's
}

func (d *decoder) failAt(start int, field string, err error) {
	if d.err == nil {
		d.err = &FieldError{Field: field, Offset: d.base + start, Err: err}
	}
}

// wrap prefixes the path of the pending error with name[index] (index < 0:
// name alone) and reports whether there was one.
func (d *decoder) wrap(name string, index int) bool {
	if d.err == nil {
		return false
	}
	prefix(d.err, name, index)
	return true
}

func (d *decoder) byte(field string) byte {
	if d.err != nil {
		return 0
	}
	if d.off >= len(d.b) {
		d.failAt(d.off, field, ErrTruncated)
		return 0
	}
	c := d.b[d.off]
	d.off++
	return c
}

// uvarint reads a LEB128 varint in its shortest form.
func (d *decoder) uvarint(field string) uint64 {
	if d.err != nil {
		return 0
	}
	start := d.off
	var x uint64
	for i := 0; ; i++ {
		if d.off >= len(d.b) {
			d.failAt(start, field, ErrTruncated)
			return 0
		}
		c := d.b[d.off]
		d.off++
		if i == 9 && c > 1 { // the 10th byte holds bit 63 only
			d.failAt(start, field, ErrBadVarint)
			return 0
		}
		if c < 0x80 {
			if c == 0 && i > 0 { // a longer form than needed
				d.failAt(start, field, ErrBadVarint)
				return 0
			}
			return x | uint64(c)<<(7*i)
		}
		x |= uint64(c&0x7f) << (7 * i)
	}
}

func (d *decoder) u32(field string) uint32 {
	start := d.off
	x := d.uvarint(field)
	if x > math.MaxUint32 {
		d.failAt(start, field, ErrBadVarint)
		return 0
	}
	return uint32(x)
}

func (d *decoder) varint(field string) int64 {
	u := d.uvarint(field)
	return int64(u>>1) ^ -int64(u&1)
}

func (d *decoder) bool(field string) bool {
	start := d.off
	switch d.byte(field) {
	case 0:
		return false
	case 1:
		return true
	}
	d.failAt(start, field, ErrInvalid)
	return false
}

// count reads an element count and checks it against max and against the
// bytes left (every element takes at least size bytes), in that order, so
// that a make() sized by it is bounded by the input: by at most 64 times
// its bytes, the largest element (an Op, under 200 bytes) taking at least
// 3.
func (d *decoder) count(field string, max, size int) int {
	start := d.off
	n := d.uvarint(field)
	if d.err != nil {
		return 0
	}
	if n > uint64(max) {
		d.failAt(start, field, ErrLimit)
		return 0
	}
	if n > uint64((len(d.b)-d.off)/size) {
		d.failAt(start, field, ErrTruncated)
		return 0
	}
	return int(n)
}

// The fewest bytes an element of each list takes (a null value is its
// kind byte; an object id two varints).
const (
	minValue    = 1 // kind
	minField    = 2 // id, value
	minRead     = 4 // object, kind, version
	minOp       = 3 // kind, object
	minEntry    = 2 // key, value
	minObject   = 4 // id, class, kind (and at least a byte of content)
	minChange   = 4 // version, origin, write count
	minCommitID = 2 // replica, seq
)

// rawString reads a length-prefixed byte string, checking its length against
// max and the bytes left, and optionally its UTF-8.
func (d *decoder) rawString(field string, max int, utf bool) string {
	start := d.off
	n := d.uvarint(field)
	if d.err != nil {
		return ""
	}
	if n > uint64(max) {
		d.failAt(start, field, ErrLimit)
		return ""
	}
	if n > uint64(len(d.b)-d.off) {
		d.failAt(start, field, ErrTruncated)
		return ""
	}
	b := d.b[d.off : d.off+int(n)]
	if utf && !utf8.Valid(b) {
		d.failAt(start, field, ErrBadUTF8)
		return ""
	}
	d.off += int(n)
	return string(b)
}

func (d *decoder) string(field string, max int) string { return d.rawString(field, max, true) }

func (d *decoder) objectID(field string) ObjectID {
	r := d.uvarint(field)
	return ObjectID{Replica: r, Seq: d.uvarint(field)}
}

func (d *decoder) commitID(field string) CommitID {
	r := d.uvarint(field)
	return CommitID{Replica: r, Seq: d.uvarint(field)}
}

// value reads a value; errors inside it are reported at its first byte.
func (d *decoder) value(field string) Value {
	if d.err != nil {
		return Value{}
	}
	start := d.off
	v := d.value1(field)
	if d.err != nil {
		d.err.(*FieldError).Offset = d.base + start
	}
	return v
}

func (d *decoder) value1(field string) Value {
	start := d.off
	k := ValueKind(d.byte(field))
	if d.err != nil {
		return Value{}
	}
	switch k {
	case KindNull:
		return Value{}
	case KindBool:
		return Bool(d.bool(field))
	case KindInt:
		return Int(d.varint(field))
	case KindUint:
		return Uint(d.uvarint(field))
	case KindFloat:
		if len(d.b)-d.off < 8 {
			d.failAt(d.off, field, ErrTruncated)
			return Value{}
		}
		u := uint64(d.b[d.off]) | uint64(d.b[d.off+1])<<8 | uint64(d.b[d.off+2])<<16 |
			uint64(d.b[d.off+3])<<24 | uint64(d.b[d.off+4])<<32 | uint64(d.b[d.off+5])<<40 |
			uint64(d.b[d.off+6])<<48 | uint64(d.b[d.off+7])<<56
		d.off += 8
		return Value{kind: KindFloat, num: u}
	case KindString:
		return Value{kind: KindString, str: d.string(field, d.lim.MaxStringLen)}
	case KindBytes:
		return Value{kind: KindBytes, str: d.rawString(field, d.lim.MaxStringLen, false)}
	case KindRef:
		return Ref(d.objectID(field))
	}
	d.failAt(start, field, ErrInvalid)
	return Value{}
}

func (d *decoder) values(field string) []Value {
	n := d.count(field, d.lim.MaxElements, minValue)
	if n == 0 {
		return nil
	}
	vs := make([]Value, n)
	for i := range vs {
		vs[i] = d.value("")
		if d.wrap(field, i) {
			return nil
		}
	}
	return vs
}

func (d *decoder) fields(field string) []Field {
	n := d.count(field, d.lim.MaxElements, minField)
	if n == 0 {
		return nil
	}
	fs := make([]Field, n)
	for i := range fs {
		fs[i] = Field{ID: d.u32("id"), Value: d.value("value")}
		if d.wrap(field, i) {
			return nil
		}
	}
	return fs
}

func (d *decoder) read() Read {
	var r Read
	r.Object = d.objectID("object")
	start := d.off
	r.Kind = ReadKind(d.byte("kind"))
	if d.err == nil && !r.Kind.valid() {
		d.failAt(start, "kind", ErrInvalid)
	}
	switch r.Kind {
	case ReadField:
		r.Field = d.u32("field")
	case ReadKey:
		r.Key = d.value("key")
	case ReadIndex:
		r.Index = d.uvarint("index")
	}
	r.Version = d.uvarint("version")
	return r
}

func (d *decoder) reads(field string) []Read {
	n := d.count(field, d.lim.MaxReads, minRead)
	if n == 0 {
		return nil
	}
	rs := make([]Read, n)
	for i := range rs {
		rs[i] = d.read()
		if d.wrap(field, i) {
			return nil
		}
	}
	return rs
}

func (d *decoder) op() Op {
	var op Op
	start := d.off
	op.Kind = OpKind(d.byte("op"))
	if d.err == nil && !op.Kind.valid() {
		d.failAt(start, "op", ErrInvalid)
	}
	op.Object = d.objectID("object")
	switch op.Kind {
	case OpSetField:
		op.Field = d.u32("field")
		op.Value = d.value("value")
	case OpVarSet:
		op.Value = d.value("value")
	case OpCounterAdd:
		op.Delta = d.varint("delta")
	case OpMapPut:
		op.Key = d.value("key")
		op.Value = d.value("value")
	case OpMapDelete, OpSetAdd, OpSetRemove:
		op.Key = d.value("key")
	case OpListSet:
		op.Index = d.uvarint("index")
		op.Value = d.value("value")
	case OpListAppend:
		op.Values = d.values("values")
	case OpCreate:
		op.Class = d.u32("class")
		start := d.off
		op.ObjectKind = ObjectKind(d.byte("object_kind"))
		if d.err == nil && !op.ObjectKind.valid() {
			d.failAt(start, "object_kind", ErrInvalid)
		}
		start = d.off
		op.Fields = d.fields("fields")
		if d.err == nil && op.ObjectKind != ObjectRecord && len(op.Fields) > 0 {
			d.failAt(start, "fields", ErrInvalid)
		}
	}
	return op
}

func (d *decoder) ops(field string) []Op {
	n := d.count(field, d.lim.MaxWrites, minOp)
	if n == 0 {
		return nil
	}
	var ops []Op
	if n <= cap(d.room) {
		ops, d.room = d.room[:n], nil // zeroed: fresh, or cleared by ReleaseUpdate
	} else {
		ops = make([]Op, n)
	}
	for i := range ops {
		ops[i] = d.op()
		if d.wrap(field, i) {
			return nil
		}
	}
	return ops
}

func (d *decoder) object() Object {
	var o Object
	o.ID = d.objectID("id")
	o.Class = d.u32("class")
	start := d.off
	o.Kind = ObjectKind(d.byte("kind"))
	if d.err == nil && !o.Kind.valid() {
		d.failAt(start, "kind", ErrInvalid)
	}
	switch o.Kind {
	case ObjectRecord:
		o.Fields = d.fields("fields")
	case ObjectVar:
		o.Value = d.value("value")
	case ObjectCounter:
		o.Counter = d.varint("counter")
	case ObjectMap:
		n := d.count("entries", d.lim.MaxElements, minEntry)
		if n > 0 {
			o.Entries = make([]Entry, n)
			for i := range o.Entries {
				o.Entries[i] = Entry{Key: d.value("key"), Value: d.value("value")}
				if d.wrap("entries", i) {
					break
				}
			}
		}
	case ObjectSet, ObjectList:
		o.Elems = d.values("elems")
	}
	return o
}

func (m *Hello) decodePayload(d *decoder) {
	m.MinVersion = d.u32("min_version")
	m.MaxVersion = d.u32("max_version")
	m.Replica = d.uvarint("replica")
	m.Token = d.string("token", d.lim.MaxStringLen)
	m.Agent = d.string("agent", d.lim.MaxNameLen)
}

func (m *Welcome) decodePayload(d *decoder) {
	m.Version = d.u32("version")
	m.Session = d.uvarint("session")
	m.HeartbeatMillis = d.u32("heartbeat_millis")
	for i, f := range m.Limits.fields() {
		start := d.off
		x := d.uvarint(limitPaths[i])
		if x > math.MaxInt32 {
			d.failAt(start, limitPaths[i], ErrBadVarint)
		}
		*f = int(x)
	}
}

func (m *Error) decodePayload(d *decoder) {
	m.Code = Code(d.u32("code"))
	m.Message = d.string("message", d.lim.MaxStringLen)
}

func (m *Ping) decodePayload(d *decoder) { m.Nonce = d.uvarint("nonce") }
func (m *Pong) decodePayload(d *decoder) { m.Nonce = d.uvarint("nonce") }

func (m *OpenShare) decodePayload(d *decoder) {
	m.Share = ShareHandle(d.u32("share"))
	m.Name = d.string("name", d.lim.MaxNameLen)
	m.Have = d.uvarint("have")
	m.Epoch = d.epoch()
}

func (d *decoder) epoch() Epoch {
	return Epoch{Version: d.uvarint("epoch.version"), ID: d.uvarint("epoch.id")}
}

func (m *Opened) decodePayload(d *decoder) {
	m.Share = ShareHandle(d.u32("share"))
	m.Version = d.uvarint("version")
	start := d.off
	m.Access = Access(d.byte("access"))
	if d.err == nil && !m.Access.valid() {
		d.failAt(start, "access", ErrInvalid)
	}
	start = d.off
	m.Transfer = Transfer(d.byte("transfer"))
	if d.err == nil && !m.Transfer.valid() {
		d.failAt(start, "transfer", ErrInvalid)
	}
	m.Epoch = d.epoch()
}

func (m *SnapshotChunk) decodePayload(d *decoder) {
	m.Share = ShareHandle(d.u32("share"))
	m.More = d.bool("more")
	n := d.count("objects", d.lim.MaxObjects, minObject)
	if n == 0 {
		return
	}
	m.Objects = make([]Object, n)
	for i := range m.Objects {
		m.Objects[i] = d.object()
		if d.wrap("objects", i) {
			return
		}
	}
}

func (m *Delta) decodePayload(d *decoder) {
	m.Share = ShareHandle(d.u32("share"))
	m.More = d.bool("more")
	n := d.count("changes", d.lim.MaxChanges, minChange)
	if n == 0 {
		return
	}
	m.Changes = make([]Change, n)
	for i := range m.Changes {
		c := &m.Changes[i]
		c.Version = d.uvarint("version")
		c.Origin = d.commitID("origin")
		c.Writes = d.ops("writes")
		if d.wrap("changes", i) {
			return
		}
	}
}

func (m *CloseShare) decodePayload(d *decoder) { m.Share = ShareHandle(d.u32("share")) }

func (m *ShareClosed) decodePayload(d *decoder) {
	m.Share = ShareHandle(d.u32("share"))
	m.Code = Code(d.u32("code"))
	m.Message = d.string("message", d.lim.MaxStringLen)
}

func (m *Commit) decodePayload(d *decoder) {
	m.ID = d.commitID("id")
	m.Share = ShareHandle(d.u32("share"))
	m.Snapshot = d.uvarint("snapshot")
	if n := d.count("deps", d.lim.MaxDeps, minCommitID); n > 0 {
		m.Deps = make([]CommitID, n)
		for i := range m.Deps {
			m.Deps[i] = d.commitID("")
			if d.wrap("deps", i) {
				return
			}
		}
	}
	m.Reads = d.reads("reads")
	if m.Deps != nil || m.Reads != nil {
		// Whoever keeps the Writes (a share's log) would keep these too.
		d.room = nil
	}
	m.Writes = d.ops("writes")
}

func (m *Ack) decodePayload(d *decoder) {
	m.ID = d.commitID("id")
	m.Version = d.uvarint("version")
}

func (m *Abort) decodePayload(d *decoder) {
	m.ID = d.commitID("id")
	m.Code = Code(d.u32("code"))
	m.Message = d.string("message", d.lim.MaxStringLen)
	m.Conflicts = d.reads("conflicts")
}

func (m *Update) decodePayload(d *decoder) {
	m.Share = ShareHandle(d.u32("share"))
	m.Version = d.uvarint("version")
	m.Origin = d.commitID("origin")
	m.Writes = d.ops("writes")
}

// commitOne and updateOne hold a message and room for one op of its
// Writes, so that decoding the usual one-op Commit or Update allocates once
// for both.
type commitOne struct {
	m   Commit
	one [1]Op
}

type updateOne struct {
	m   Update
	one [1]Op
}

// updatePool holds the Updates given back by ReleaseUpdate. A client
// decodes an Update for every commit of every other replica, and holds
// it only until it is applied: reusing it, with the array of its Writes,
// spares the collector most of the bytes a replica receives.
var updatePool sync.Pool

// maxReleasedWrites bounds the Writes array a released Update keeps, so
// that the pool does not hold on to one large commit's.
const maxReleasedWrites = 64

// ReleaseUpdate gives u back, for a later decoded Update to reuse u and
// the array of u.Writes. The caller must not use u, u.Writes or a slice
// of it afterwards, nor may anything it handed them to; the values in the
// ops (strings, Values and Fields slices) are never reused, and may be
// kept. Any Update may be released, decoded or not.
func ReleaseUpdate(u *Update) {
	if u == nil {
		return
	}
	w := u.Writes[:cap(u.Writes)]
	if len(w) > maxReleasedWrites {
		w = nil
	}
	clear(w) // the values of the ops are the caller's now: not kept alive here
	*u = Update{Writes: w[:0]}
	updatePool.Put(u)
}

// decodeOther decodes the payload of m, a message off the hot path, with
// d, and returns d as it ends.
func decodeOther(m Message, d decoder) decoder {
	m.decodePayload(&d)
	return d
}

// DecodeMessage decodes a frame body: a type byte and its payload, with no
// length prefix. body must hold exactly one message. Limits are applied
// after WithDefaults; MaxFrameSize is not checked here (the framing layer
// does that). The message does not alias body.
//
// Errors are *FieldError values wrapping one of the sentinels, with offsets
// counted from the start of body.
func DecodeMessage(body []byte, lim Limits) (Message, error) {
	lim = lim.WithDefaults()
	return decodeBody(body, 0, &lim)
}

func decodeBody(body []byte, base int, lim *Limits) (Message, error) {
	d := decoder{b: body, base: base, lim: lim}
	t := Type(d.byte("type"))
	if d.err != nil {
		return nil, d.err
	}
	// The messages of the hot path are decoded through their concrete
	// types, so that d stays on the stack; a call through the Message
	// interface would move it to the heap, once per message.
	var m Message
	switch t {
	case TypeCommit:
		// Most commits write one op: it comes in the message's
		// allocation (see commitOne).
		c := new(commitOne)
		d.room = c.one[:]
		c.m.decodePayload(&d)
		m = &c.m
	case TypeUpdate:
		u, _ := updatePool.Get().(*Update)
		if u != nil {
			d.room = u.Writes[:0]
			*u = Update{}
		} else {
			one := new(updateOne)
			u, d.room = &one.m, one.one[:]
		}
		u.decodePayload(&d)
		m = u
	case TypeAck:
		a := new(Ack)
		a.decodePayload(&d)
		m = a
	default:
		if m = New(t); m == nil {
			d.failAt(0, "type", ErrUnknownType)
			return nil, d.err
		}
		d = decodeOther(m, d)
	}
	if d.err == nil && d.off != len(d.b) {
		d.failAt(d.off, "", ErrTrailing)
	}
	if d.err != nil {
		prefix(d.err, t.String(), -1)
		return nil, d.err
	}
	return m, nil
}

// DecodeValue decodes one value from the start of b and returns it with the
// number of bytes it took. It checks strings against lim.MaxStringLen.
func DecodeValue(b []byte, lim Limits) (Value, int, error) {
	lim = lim.WithDefaults()
	d := decoder{b: b, lim: &lim}
	v := d.value("value")
	if d.err != nil {
		return Value{}, 0, d.err
	}
	return v, d.off, nil
}

// Decoder decodes the frames in a byte slice, one after another, as
// received from a transport that delivers whole frames.
type Decoder struct {
	b   []byte
	off int
	lim Limits
}

// NewDecoder returns a Decoder over the frames in b, with limits lim (after
// WithDefaults). It does not copy b; the messages it returns do not alias it.
func NewDecoder(b []byte, lim Limits) *Decoder {
	return &Decoder{b: b, lim: lim.WithDefaults()}
}

// Offset returns the offset in the input of the next frame.
func (d *Decoder) Offset() int { return d.off }

// Decode decodes the next frame. It returns io.EOF when no bytes are left,
// and a *FieldError (offsets from the start of the input) for a malformed
// or incomplete frame; after an error it makes no progress.
func (d *Decoder) Decode() (Message, error) {
	if d.off == len(d.b) {
		return nil, io.EOF
	}
	fail := func(field string, err error) (Message, error) {
		return nil, &FieldError{Field: field, Offset: d.off, Err: err}
	}
	var n uint64
	p := d.off
	for i := 0; ; i++ {
		if p == len(d.b) {
			return fail("frame.length", ErrTruncated)
		}
		var done bool
		var err error
		if n, done, err = headerStep(n, i, d.b[p], d.lim.MaxFrameSize); err != nil {
			return fail("frame.length", err)
		}
		p++
		if done {
			break
		}
	}
	if n > uint64(len(d.b)-p) {
		return fail("frame", ErrTruncated)
	}
	end := p + int(n)
	m, err := decodeBody(d.b[p:end], p, &d.lim)
	if err != nil {
		return nil, err
	}
	d.off = end
	return m, nil
}
