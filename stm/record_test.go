package stm_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/weft-stm/weft/stm"
	"github.com/weft-stm/weft/wire"
)

// replica maps objects to wire ids and back, as a replication layer does.
type replica struct {
	mu   sync.Mutex
	ids  map[stm.Observable]wire.ObjectID
	objs map[wire.ObjectID]*stm.Object
}

func newReplica() *replica {
	return &replica{ids: map[stm.Observable]wire.ObjectID{}, objs: map[wire.ObjectID]*stm.Object{}}
}

func (r *replica) ref(x stm.Observable) wire.ObjectID {
	r.mu.Lock()
	defer r.mu.Unlock()
	id, ok := r.ids[x]
	if !ok {
		id = wire.ObjectID{Replica: 1, Seq: uint64(len(r.ids) + 1)}
		r.ids[x] = id
		if o, ok := x.(*stm.Object); ok {
			r.objs[id] = o
		}
	}
	return id
}

// add makes o known under id, as if received from a peer.
func (r *replica) add(id wire.ObjectID, o *stm.Object) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ids[o], r.objs[id] = id, o
}

func (r *replica) resolve(id wire.ObjectID) (*stm.Object, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if o, ok := r.objs[id]; ok {
		return o, nil
	}
	return nil, fmt.Errorf("no object %v", id)
}

func encode(t *testing.T, o *stm.Object, ref func(stm.Observable) wire.ObjectID) wire.Object {
	t.Helper()
	var w wire.Object
	err := o.Workspace().View(ctx, func(tx *stm.Tx) error {
		var err error
		w, err = stm.EncodeRecord(tx, o, ref)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func decode(t *testing.T, o *stm.Object, w wire.Object, resolve func(wire.ObjectID) (*stm.Object, error)) {
	t.Helper()
	err := o.Workspace().Atomically(ctx, func(tx *stm.Tx) error {
		return stm.DecodeRecord(tx, o, w, resolve)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// fieldsString prints a record's fields as "id=value ...".
func fieldsString(w wire.Object) string {
	var b strings.Builder
	for i, f := range w.Fields {
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%d=%v", f.ID, f.Value)
	}
	return b.String()
}

func noRefs(id wire.ObjectID) (*stm.Object, error) {
	return nil, fmt.Errorf("unexpected ref %v", id)
}

// scalars has one field of each scalar type, shaped as the Go generator
// declares them (schema/gogen/testdata/kitchen.weft), declared out of id
// order.
var scalars = struct {
	Flag *stm.VarField[bool]
	I8   *stm.VarField[int8]
	I16  *stm.VarField[int16]
	I32  *stm.VarField[int32]
	I64  *stm.VarField[int64]
	U8   *stm.VarField[uint8]
	U16  *stm.VarField[uint16]
	U32  *stm.VarField[uint32]
	U64  *stm.VarField[uint64]
	F32  *stm.VarField[float32]
	F64  *stm.VarField[float64]
	Text *stm.VarField[string]
	Blob *stm.VarField[[]byte]
	I    *stm.VarField[int]
	U    *stm.VarField[uint]
}{
	stm.NewVarField[bool](1, "flag"),
	stm.NewVarField[int8](2, "i8"),
	stm.NewVarField[int16](3, "i16"),
	stm.NewVarField[int32](4, "i32"),
	stm.NewVarField[int64](5, "i64"),
	stm.NewVarField[uint8](6, "u8"),
	stm.NewVarField[uint16](7, "u16"),
	stm.NewVarField[uint32](8, "u32"),
	stm.NewVarField[uint64](9, "u64"),
	stm.NewVarField[float32](10, "f32"),
	stm.NewVarField[float64](11, "f64"),
	stm.NewVarField[string](12, "text"),
	stm.NewVarField[[]byte](13, "blob"),
	stm.NewVarField[int](14, "i"),
	stm.NewVarField[uint](15, "u"),
}

var scalarsClass = stm.NewClass("Scalars", 1,
	scalars.Text, scalars.Blob, scalars.Flag, scalars.I8, scalars.I16, scalars.I32, scalars.I64,
	scalars.U8, scalars.U16, scalars.U32, scalars.U64, scalars.F32, scalars.F64, scalars.I, scalars.U)

func TestRecordRoundTripScalars(t *testing.T) {
	type values struct {
		flag bool
		i8   int8
		i16  int16
		i32  int32
		i64  int64
		u8   uint8
		u16  uint16
		u32  uint32
		u64  uint64
		f32  float32
		f64  float64
		text string
		blob []byte
		i    int
		u    uint
	}
	set := func(tx *stm.Tx, o *stm.Object, v values) {
		scalars.Flag.Of(o).Set(tx, v.flag)
		scalars.I8.Of(o).Set(tx, v.i8)
		scalars.I16.Of(o).Set(tx, v.i16)
		scalars.I32.Of(o).Set(tx, v.i32)
		scalars.I64.Of(o).Set(tx, v.i64)
		scalars.U8.Of(o).Set(tx, v.u8)
		scalars.U16.Of(o).Set(tx, v.u16)
		scalars.U32.Of(o).Set(tx, v.u32)
		scalars.U64.Of(o).Set(tx, v.u64)
		scalars.F32.Of(o).Set(tx, v.f32)
		scalars.F64.Of(o).Set(tx, v.f64)
		scalars.Text.Of(o).Set(tx, v.text)
		scalars.Blob.Of(o).Set(tx, v.blob)
		scalars.I.Of(o).Set(tx, v.i)
		scalars.U.Of(o).Set(tx, v.u)
	}
	getAll := func(tx *stm.Tx, o *stm.Object) values {
		return values{
			scalars.Flag.Of(o).Get(tx), scalars.I8.Of(o).Get(tx), scalars.I16.Of(o).Get(tx),
			scalars.I32.Of(o).Get(tx), scalars.I64.Of(o).Get(tx), scalars.U8.Of(o).Get(tx),
			scalars.U16.Of(o).Get(tx), scalars.U32.Of(o).Get(tx), scalars.U64.Of(o).Get(tx),
			scalars.F32.Of(o).Get(tx), scalars.F64.Of(o).Get(tx), scalars.Text.Of(o).Get(tx),
			scalars.Blob.Of(o).Get(tx), scalars.I.Of(o).Get(tx), scalars.U.Of(o).Get(tx),
		}
	}
	for _, tt := range []struct {
		name string
		v    values
		want string
	}{
		{"zero", values{},
			`1=false 2=0 3=0 4=0 5=0 6=0u 7=0u 8=0u 9=0u 10=0 11=0 12="" 13=0x 14=0 15=0u`},
		{"min", values{false, math.MinInt8, math.MinInt16, math.MinInt32, math.MinInt64, 0, 0, 0, 0,
			-math.MaxFloat32, math.Inf(-1), "", nil, math.MinInt, 0},
			`1=false 2=-128 3=-32768 4=-2147483648 5=-9223372036854775808 6=0u 7=0u 8=0u 9=0u 10=-3.4028234663852886e+38 11=-Inf 12="" 13=0x 14=-9223372036854775808 15=0u`},
		{"max", values{true, math.MaxInt8, math.MaxInt16, math.MaxInt32, math.MaxInt64, math.MaxUint8,
			math.MaxUint16, math.MaxUint32, math.MaxUint64, math.SmallestNonzeroFloat32, math.MaxFloat64,
			"héllo, 世界", []byte{0, 0xff}, math.MaxInt, math.MaxUint},
			`1=true 2=127 3=32767 4=2147483647 5=9223372036854775807 6=255u 7=65535u 8=4294967295u 9=18446744073709551615u 10=1.401298464324817e-45 11=1.7976931348623157e+308 12="héllo, 世界" 13=0x00ff 14=9223372036854775807 15=18446744073709551615u`},
		{"odd floats", values{f32: float32(math.Copysign(0, -1)), f64: math.NaN(), text: "\x00"},
			`1=false 2=0 3=0 4=0 5=0 6=0u 7=0u 8=0u 9=0u 10=-0 11=0x7ff8000000000001 12="\x00" 13=0x 14=0 15=0u`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if math.MaxInt != math.MaxInt64 {
				t.Skip("expected output assumes 64-bit int")
			}
			ws := stm.NewWorkspace()
			defer ws.Close()
			r := newReplica()
			src := stm.NewObject(ws, scalarsClass)
			if err := ws.Atomically(ctx, func(tx *stm.Tx) error { set(tx, src, tt.v); return nil }); err != nil {
				t.Fatal(err)
			}
			w := encode(t, src, r.ref)
			if w.Kind != wire.ObjectRecord || w.Class != 1 || w.ID != r.ref(src) {
				t.Errorf("header: kind %v class %d id %v", w.Kind, w.Class, w.ID)
			}
			if got := fieldsString(w); got != tt.want {
				t.Errorf("fields:\n got %s\nwant %s", got, tt.want)
			}
			if err := wire.Validate(&wire.SnapshotChunk{Objects: []wire.Object{w}}, wire.DefaultLimits()); err != nil {
				t.Errorf("the encoded record is not valid on the wire: %v", err)
			}

			dst := stm.NewObject(ws, scalarsClass)
			decode(t, dst, w, noRefs)
			got := get(t, ws, func(tx *stm.Tx) values { return getAll(tx, dst) })
			want := tt.v
			if math.IsNaN(want.f64) != math.IsNaN(got.f64) || math.Float64bits(want.f64) != math.Float64bits(got.f64) ||
				math.Float32bits(want.f32) != math.Float32bits(got.f32) || !bytes.Equal(want.blob, got.blob) {
				t.Errorf("floats or bytes: got %v %v %x, want %v %v %x", got.f32, got.f64, got.blob, want.f32, want.f64, want.blob)
			}
			got.f32, got.f64, got.blob = want.f32, want.f64, want.blob
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("decoded\n got %v\nwant %v", got, want)
			}
			if again := fieldsString(encode(t, dst, r.ref)); again != tt.want {
				t.Errorf("re-encoded %s", again)
			}
		})
	}
}

// vertex has reference and collection fields.
var vertex = struct {
	Label  *stm.VarField[string]
	Next   *stm.VarField[*stm.Object]
	Edges  *stm.SetField[*stm.Object]
	Path   *stm.ListField[*stm.Object]
	ByName *stm.MapField[string, *stm.Object]
	Visits *stm.CounterField
}{
	stm.NewVarField[string](1, "label"),
	stm.NewVarField[*stm.Object](2, "next"),
	stm.NewSetField[*stm.Object](3, "edges"),
	stm.NewListField[*stm.Object](4, "path"),
	stm.NewMapField[string, *stm.Object](5, "by_name"),
	stm.NewCounterField(7, "visits"),
}

var vertexClass = stm.NewClass("Vertex", 2, vertex.Label, vertex.Next, vertex.Edges, vertex.Path, vertex.ByName, vertex.Visits)

func TestRecordRefsAndCollections(t *testing.T) {
	ws := stm.NewWorkspace()
	defer ws.Close()
	r := newReplica()
	a, b := stm.NewObject(ws, vertexClass), stm.NewObject(ws, vertexClass)
	if err := ws.Atomically(ctx, func(tx *stm.Tx) error {
		vertex.Label.Of(a).Set(tx, "a")
		vertex.Next.Of(a).Set(tx, b) // b.next stays nil
		vertex.Edges.Of(a).AddFast(tx, b)
		vertex.Visits.Of(a).Add(tx, 3)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	wa, wb := encode(t, a, r.ref), encode(t, b, r.ref)
	for _, c := range []struct {
		field stm.FieldID
		cell  stm.Observable
	}{
		{2, b}, {3, vertex.Edges.Of(a)}, {4, vertex.Path.Of(a)}, {5, vertex.ByName.Of(a)}, {7, vertex.Visits.Of(a)},
	} {
		if v := fieldValue(wa, c.field); v != wire.Ref(r.ref(c.cell)) {
			t.Errorf("field %d = %v, want a ref to %v", c.field, v, r.ref(c.cell))
		}
	}
	if v := fieldValue(wb, 2); !v.IsNull() || len(wb.Fields) != 6 {
		t.Errorf("nil ref encoded as %v; fields %s", v, fieldsString(wb))
	}
	if wa.ID != r.ref(a) || wb.ID != r.ref(b) {
		t.Errorf("ids %v %v", wa.ID, wb.ID)
	}

	// Another replica receives both records: refs resolve to its objects,
	// collection refs leave its collections alone.
	ws2 := stm.NewWorkspace()
	defer ws2.Close()
	r2 := newReplica()
	a2, b2 := stm.NewObject(ws2, vertexClass), stm.NewObject(ws2, vertexClass)
	r2.add(wa.ID, a2)
	r2.add(wb.ID, b2)
	decode(t, a2, wa, r2.resolve)
	decode(t, b2, wb, r2.resolve)
	get(t, ws2, func(tx *stm.Tx) any {
		if vertex.Label.Of(a2).Get(tx) != "a" || vertex.Next.Of(a2).Get(tx) != b2 || vertex.Next.Of(b2).Get(tx) != nil {
			t.Errorf("decoded refs wrong")
		}
		if vertex.Edges.Of(a2).Len(tx) != 0 || vertex.Visits.Of(a2).Get(tx) != 0 {
			t.Errorf("decoding a record changed its collections")
		}
		return nil
	})

	// A ref that does not resolve is an error naming the field.
	c2 := stm.NewObject(ws2, vertexClass)
	err := ws2.Atomically(ctx, func(tx *stm.Tx) error {
		return stm.DecodeRecord(tx, c2, wire.Object{Class: 2, Kind: wire.ObjectRecord, Fields: []wire.Field{
			{ID: 1, Value: wire.String("c")}, {ID: 2, Value: wire.Ref(wire.ObjectID{Replica: 9, Seq: 9})},
		}}, r2.resolve)
	})
	var fe *stm.FieldError
	if !errors.As(err, &fe) || fe.Field != 2 || fe.Name != "next" || !strings.Contains(err.Error(), "no object 9:9") {
		t.Errorf("dangling ref: %v", err)
	}
	if got := get(t, ws2, func(tx *stm.Tx) string { return vertex.Label.Of(c2).Get(tx) }); got != "" {
		t.Errorf("a failed decode wrote label %q", got)
	}
	// So is a resolver that finds nothing without saying why.
	err = ws2.Atomically(ctx, func(tx *stm.Tx) error {
		return stm.DecodeRecord(tx, c2, wa, func(wire.ObjectID) (*stm.Object, error) { return nil, nil })
	})
	if !errors.As(err, &fe) || fe.Field != 2 {
		t.Errorf("resolver returning nil: %v", err)
	}
}

func fieldValue(w wire.Object, id stm.FieldID) wire.Value {
	for _, f := range w.Fields {
		if f.ID == uint32(id) {
			return f.Value
		}
	}
	return wire.Value{}
}

// Two versions of one class, as a schema evolves:
//
//	v1: class Person = 5 { name: string = 1; email: string = 2; }
//	v2: class Person = 5 { name: string = 1; email: string = 2 [deprecated];
//	                       age: int32 = 3; }
var (
	v1Name   = stm.NewVarField[string](1, "name")
	v1Email  = stm.NewVarField[string](2, "email")
	personV1 = stm.NewClass("Person", 5, v1Name, v1Email)

	v2Name   = stm.NewVarField[string](1, "name")
	v2Email  = stm.NewVarField[string](2, "email") // deprecated
	v2Age    = stm.NewVarField[int32](3, "age")
	personV2 = stm.NewClass("Person", 5, v2Name, v2Email, v2Age)
)

// (a) Written by v1, read by v2: the new field takes its default.
func TestRecordOldDataNewClass(t *testing.T) {
	ws1, ws2 := stm.NewWorkspace(), stm.NewWorkspace()
	defer ws1.Close()
	defer ws2.Close()
	r := newReplica()
	p1 := stm.NewObject(ws1, personV1)
	v1Name.Of(p1).Set(stm.Auto, "Ann")
	v1Email.Of(p1).Set(stm.Auto, "ann@example.com")
	w := encode(t, p1, r.ref)
	if got := fieldsString(w); got != `1="Ann" 2="ann@example.com"` {
		t.Fatalf("v1 wrote %s", got)
	}

	p2 := stm.NewObject(ws2, personV2)
	decode(t, p2, w, noRefs)
	get(t, ws2, func(tx *stm.Tx) any {
		if v2Name.Of(p2).Get(tx) != "Ann" || v2Email.Of(p2).Get(tx) != "ann@example.com" || v2Age.Of(p2).Get(tx) != 0 {
			t.Errorf("v2 read %q %q %d", v2Name.Of(p2).Get(tx), v2Email.Of(p2).Get(tx), v2Age.Of(p2).Get(tx))
		}
		return nil
	})
	// A field absent from the data keeps the value it has.
	v2Age.Of(p2).Set(stm.Auto, 41)
	decode(t, p2, w, noRefs)
	if got := v2Age.Of(p2).Get(stm.Auto); got != 41 {
		t.Errorf("age %d after decoding data without it", got)
	}
	if got := fieldsString(encode(t, p2, r.ref)); got != `1="Ann" 2="ann@example.com" 3=41` {
		t.Errorf("v2 wrote %s", got)
	}
}

// (b) Written by v2, read by v1, changed by v1, written again, read by v2:
// the field v1 does not know is intact, the one it changed is changed.
func TestRecordUnknownFieldsSurvive(t *testing.T) {
	ws1, ws2 := stm.NewWorkspace(), stm.NewWorkspace()
	defer ws1.Close()
	defer ws2.Close()
	r := newReplica()
	p2 := stm.NewObject(ws2, personV2)
	if err := ws2.Atomically(ctx, func(tx *stm.Tx) error {
		v2Name.Of(p2).Set(tx, "Bob")
		v2Age.Of(p2).Set(tx, 52)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	w := encode(t, p2, r.ref)

	p1 := stm.NewObject(ws1, personV1)
	decode(t, p1, w, noRefs)
	if err := ws1.Atomically(ctx, func(tx *stm.Tx) error {
		v1Name.Of(p1).Set(tx, "Robert")
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	w1 := encode(t, p1, r.ref)
	if got, want := fieldsString(w1), `1="Robert" 2="" 3=52`; got != want {
		t.Errorf("v1 wrote %s, want %s", got, want)
	}

	// A second round trip through v1, with the unknown field updated by a
	// partial record (as a delta carries), keeps one value per id.
	decode(t, p1, wire.Object{Class: 5, Kind: wire.ObjectRecord, Fields: []wire.Field{
		{ID: 3, Value: wire.Int(53)}, {ID: 9, Value: wire.String("from v3")},
	}}, noRefs)
	w1 = encode(t, p1, r.ref)
	if got, want := fieldsString(w1), `1="Robert" 2="" 3=53 9="from v3"`; got != want {
		t.Errorf("v1 wrote %s, want %s", got, want)
	}

	back := stm.NewObject(ws2, personV2)
	decode(t, back, w1, noRefs)
	get(t, ws2, func(tx *stm.Tx) any {
		if v2Name.Of(back).Get(tx) != "Robert" || v2Age.Of(back).Get(tx) != 53 {
			t.Errorf("v2 read back %q %d", v2Name.Of(back).Get(tx), v2Age.Of(back).Get(tx))
		}
		return nil
	})
	// v2 does not know field 9 either, and keeps it.
	if got, want := fieldsString(encode(t, back, r.ref)), `1="Robert" 2="" 3=53 9="from v3"`; got != want {
		t.Errorf("v2 wrote %s, want %s", got, want)
	}
}

// (c) A value of an incompatible kind or out of range is an error naming
// the field, and the decode changes nothing, even the fields before it.
func TestRecordDecodeErrors(t *testing.T) {
	for _, tt := range []struct {
		name     string
		field    stm.FieldID
		value    wire.Value
		sentinel error
		detail   string
	}{
		{"string for int8", 2, wire.String("x"), stm.ErrFieldKind, `field 2 (i8): string "x" cannot be read as int8`},
		{"int over int8", 2, wire.Int(128), stm.ErrFieldRange, "field 2 (i8): int 128 is out of range for int8"},
		{"int under int8", 2, wire.Int(-129), stm.ErrFieldRange, "out of range for int8"},
		{"uint over int64", 5, wire.Uint(1 << 63), stm.ErrFieldRange, "field 5 (i64): uint 9223372036854775808 is out of range for int64"},
		{"negative for uint32", 8, wire.Int(-1), stm.ErrFieldRange, "field 8 (u32): int -1 is out of range for uint32"},
		{"over uint16", 7, wire.Uint(1 << 16), stm.ErrFieldRange, "out of range for uint16"},
		{"float for int32", 4, wire.Float(1), stm.ErrFieldKind, "cannot be read as int32"},
		{"int for float64", 11, wire.Int(1), stm.ErrFieldKind, "field 11 (f64): int 1 cannot be read as float64"},
		{"inexact float32", 10, wire.Float(0.1), stm.ErrFieldRange, "field 10 (f32): float 0.1 does not fit float32 exactly"},
		{"huge float32", 10, wire.Float(1e39), stm.ErrFieldRange, "does not fit float32"},
		{"bytes for string", 12, wire.Bytes([]byte("x")), stm.ErrFieldKind, "field 12 (text): bytes 0x78 cannot be read as string"},
		{"string for bytes", 13, wire.String("x"), stm.ErrFieldKind, "cannot be read as bytes"},
		{"null for bool", 1, wire.Null(), stm.ErrFieldKind, "field 1 (flag): null cannot be read as bool"},
		{"ref for string", 12, wire.Ref(wire.ObjectID{Replica: 1, Seq: 2}), stm.ErrFieldKind, "ref @1:2 cannot be read as string"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ws := stm.NewWorkspace()
			defer ws.Close()
			o := stm.NewObject(ws, scalarsClass)
			if err := ws.Atomically(ctx, func(tx *stm.Tx) error {
				scalars.Text.Of(o).Set(tx, "before")
				return stm.DecodeRecord(tx, o, wire.Object{Class: 1, Kind: wire.ObjectRecord, Fields: []wire.Field{{ID: 99, Value: wire.Int(1)}}}, nil)
			}); err != nil {
				t.Fatal(err)
			}
			before := fieldsString(encode(t, o, newReplica().ref))

			var calls int
			err := ws.Atomically(ctx, func(tx *stm.Tx) error {
				calls++
				// Valid fields around the bad one, and an unknown one.
				err := stm.DecodeRecord(tx, o, wire.Object{Class: 1, Kind: wire.ObjectRecord, Fields: []wire.Field{
					{ID: 3, Value: wire.Int(7)},
					{ID: uint32(tt.field), Value: tt.value},
					{ID: 14, Value: wire.Int(7)},
					{ID: 99, Value: wire.String("changed")},
				}}, noRefs)
				// The function goes on and commits whatever DecodeRecord wrote.
				if err == nil {
					t.Error("no error")
				}
				var fe *stm.FieldError
				if !errors.As(err, &fe) || fe.Field != tt.field || fe.Class != "Scalars" || !errors.Is(err, tt.sentinel) {
					t.Errorf("error %#v (%v), want a *FieldError for field %d wrapping %v", fe, err, tt.field, tt.sentinel)
				}
				if err != nil && !strings.Contains(err.Error(), tt.detail) {
					t.Errorf("error %q does not say %q", err, tt.detail)
				}
				return nil
			})
			if err != nil || calls != 1 {
				t.Fatal(err, calls)
			}
			if after := fieldsString(encode(t, o, newReplica().ref)); after != before {
				t.Errorf("a failed decode changed the object:\n before %s\n after  %s", before, after)
			}
		})
	}
}

func TestRecordDecodeWidens(t *testing.T) {
	ws := stm.NewWorkspace()
	defer ws.Close()
	o := stm.NewObject(ws, scalarsClass)
	decode(t, o, wire.Object{Class: 1, Kind: wire.ObjectRecord, Fields: []wire.Field{
		{ID: 2, Value: wire.Uint(127)},            // an in-range uint for int8
		{ID: 4, Value: wire.Uint(math.MaxUint16)}, // a uint16 widened to int32
		{ID: 5, Value: wire.Int(math.MinInt32)},   // an int32 widened to int64
		{ID: 7, Value: wire.Int(65535)},           // an int64 of v2 read by a uint16 of v1
		{ID: 9, Value: wire.Int(math.MaxInt64)},   // a non-negative int for uint64
		{ID: 10, Value: wire.Float(0.5)},          // a float32 holds it exactly
		{ID: 11, Value: wire.Float(float64(float32(0.1)))},
	}}, noRefs)
	got := get(t, ws, func(tx *stm.Tx) string {
		return fmt.Sprint(scalars.I8.Of(o).Get(tx), scalars.I32.Of(o).Get(tx), scalars.I64.Of(o).Get(tx),
			scalars.U16.Of(o).Get(tx), scalars.U64.Of(o).Get(tx), scalars.F32.Of(o).Get(tx), scalars.F64.Of(o).Get(tx))
	})
	if want := "127 65535 -2147483648 65535 9223372036854775807 0.5 0.10000000149011612"; got != want {
		t.Errorf("got %s, want %s", got, want)
	}
}

func TestRecordDecodeRejectsMalformed(t *testing.T) {
	ws := stm.NewWorkspace()
	defer ws.Close()
	o := stm.NewObject(ws, scalarsClass)
	for _, w := range []wire.Object{
		{Class: 2, Kind: wire.ObjectRecord},
		{Class: 1, Kind: wire.ObjectMap},
		{Class: 1, Kind: wire.ObjectRecord, Fields: []wire.Field{{ID: 3, Value: wire.Int(1)}, {ID: 2, Value: wire.Int(1)}, {ID: 3, Value: wire.Int(2)}}},
		{Class: 1, Kind: wire.ObjectRecord, Fields: []wire.Field{{ID: 50, Value: wire.Int(1)}, {ID: 50, Value: wire.Int(2)}}},
	} {
		err := ws.Atomically(ctx, func(tx *stm.Tx) error { return stm.DecodeRecord(tx, o, w, nil) })
		if !errors.Is(err, stm.ErrNotRecord) {
			t.Errorf("%+v: %v, want ErrNotRecord", w, err)
		}
	}
	// A collection field holds a ref and nothing else.
	v := stm.NewObject(ws, vertexClass)
	err := ws.Atomically(ctx, func(tx *stm.Tx) error {
		return stm.DecodeRecord(tx, v, wire.Object{Class: 2, Kind: wire.ObjectRecord, Fields: []wire.Field{{ID: 7, Value: wire.Int(3)}}}, nil)
	})
	if !errors.Is(err, stm.ErrFieldKind) || !strings.Contains(err.Error(), "field 7 (visits)") {
		t.Errorf("int for a counter field: %v", err)
	}
	// A ref with no resolver.
	err = ws.Atomically(ctx, func(tx *stm.Tx) error {
		return stm.DecodeRecord(tx, v, wire.Object{Class: 2, Kind: wire.ObjectRecord, Fields: []wire.Field{{ID: 2, Value: wire.Ref(wire.ObjectID{Replica: 1, Seq: 1})}}}, nil)
	})
	if !strings.Contains(err.Error(), "field 2 (next)") {
		t.Errorf("ref without resolve: %v", err)
	}
}

func TestRecordUnsupportedType(t *testing.T) {
	type point struct{ X, Y int }
	f := stm.NewVarField[point](1, "where")
	c := stm.NewClass("Odd", 9, f)
	ws := stm.NewWorkspace()
	defer ws.Close()
	o := stm.NewObject(ws, c)
	err := ws.View(ctx, func(tx *stm.Tx) error { _, err := stm.EncodeRecord(tx, o, newReplica().ref); return err })
	if !errors.Is(err, errors.ErrUnsupported) || !strings.Contains(err.Error(), "field 1 (where)") {
		t.Errorf("encode: %v", err)
	}
	err = ws.Atomically(ctx, func(tx *stm.Tx) error {
		return stm.DecodeRecord(tx, o, wire.Object{Class: 9, Kind: wire.ObjectRecord, Fields: []wire.Field{{ID: 1, Value: wire.Int(1)}}}, nil)
	})
	if !errors.Is(err, errors.ErrUnsupported) {
		t.Errorf("decode: %v", err)
	}
}

// (d) A decode inside a transaction that then fails leaves no trace, known
// and unknown fields alike; so does one in a nested transaction that fails.
func TestRecordDecodeRolledBack(t *testing.T) {
	ws := stm.NewWorkspace()
	defer ws.Close()
	r := newReplica()
	p := stm.NewObject(ws, personV1)
	decode(t, p, wire.Object{Class: 5, Kind: wire.ObjectRecord, Fields: []wire.Field{
		{ID: 1, Value: wire.String("Cy")}, {ID: 3, Value: wire.Int(30)},
	}}, noRefs)
	before := fieldsString(encode(t, p, r.ref))
	if before != `1="Cy" 2="" 3=30` {
		t.Fatalf("before: %s", before)
	}
	changes := wire.Object{Class: 5, Kind: wire.ObjectRecord, Fields: []wire.Field{
		{ID: 1, Value: wire.String("Cyd")}, {ID: 3, Value: wire.Int(31)}, {ID: 4, Value: wire.Bool(true)},
	}}
	failed := errors.New("failed after decoding")
	err := ws.Atomically(ctx, func(tx *stm.Tx) error {
		if err := stm.DecodeRecord(tx, p, changes, noRefs); err != nil {
			return err
		}
		// The transaction sees its own decode...
		if w, _ := stm.EncodeRecord(tx, p, r.ref); fieldsString(w) != `1="Cyd" 2="" 3=31 4=true` {
			t.Errorf("inside: %s", fieldsString(w))
		}
		return failed // ...and throws it away.
	})
	if err != failed {
		t.Fatal(err)
	}
	if after := fieldsString(encode(t, p, r.ref)); after != before {
		t.Errorf("after an aborted decode: %s, want %s", after, before)
	}

	tx := ws.Begin()
	_ = tx.Nested(func(tx *stm.Tx) error {
		if err := stm.DecodeRecord(tx, p, changes, noRefs); err != nil {
			return err
		}
		return failed
	})
	if _, err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if after := fieldsString(encode(t, p, r.ref)); after != before {
		t.Errorf("after a failed nested decode: %s, want %s", after, before)
	}

	// An object whose first unknown field is decoded in an aborted
	// transaction has none afterwards.
	q := stm.NewObject(ws, personV1)
	tx = ws.Begin()
	if err := stm.DecodeRecord(tx, q, changes, noRefs); err != nil {
		t.Fatal(err)
	}
	tx.Abort()
	if got := fieldsString(encode(t, q, r.ref)); got != `1="" 2=""` {
		t.Errorf("after Abort: %s", got)
	}
}

// A transaction that encoded a record (reading its unknown fields) and
// wrote conflicts with a commit that changed the unknown fields meanwhile,
// even when the record had none when it read them.
func TestRecordUnknownFieldsConflict(t *testing.T) {
	ws := stm.NewWorkspace()
	defer ws.Close()
	r := newReplica()
	p := stm.NewObject(ws, personV1)
	seen := make(chan stm.Change, 4)
	sub := ws.Subscribe(p, func(c stm.Change) { seen <- c })
	defer sub.Close()

	tx := ws.Begin()
	w, err := stm.EncodeRecord(tx, p, r.ref)
	if err != nil || len(w.Fields) != 2 {
		t.Fatal(w, err)
	}
	v1Email.Of(p).Set(tx, "x@example.com")

	if err := stm.DecodeRecord(stm.Auto, p, wire.Object{Class: 5, Kind: wire.ObjectRecord, Fields: []wire.Field{{ID: 3, Value: wire.Int(1)}}}, nil); err != nil {
		t.Fatal(err)
	}
	_, err = tx.Commit()
	var ce *stm.ConflictError
	if !errors.As(err, &ce) || ce.Object != p.ID() || ce.Name != "unknown fields" {
		t.Fatalf("commit: %v, want a conflict on the unknown fields of %d", err, p.ID())
	}
	// Observers of the object see the unknown fields change as field 0.
	select {
	case c := <-seen:
		if len(c.Fields) != 1 || c.Fields[0] != 0 {
			t.Errorf("observer saw %+v", c)
		}
	case <-time.After(10 * time.Second):
		t.Error("the observer was not called")
	}
	// Under Auto, EncodeRecord reads the latest committed state.
	if w, err := stm.EncodeRecord(stm.Auto, p, r.ref); err != nil || fieldsString(w) != `1="" 2="" 3=1` {
		t.Errorf("Auto encode: %s %v", fieldsString(w), err)
	}
}

// Concurrent decodes of known and unknown fields and encodes of one
// object: every encode sees a state some commit produced, and under -race
// the lazily made store of unknown fields is safe.
func TestRecordConcurrent(t *testing.T) {
	ws := stm.NewWorkspace()
	defer ws.Close()
	r := newReplica()
	for range 20 {
		p := stm.NewObject(ws, personV1)
		var wg sync.WaitGroup
		for g := range 4 {
			wg.Go(func() {
				for i := range 20 {
					n := int64(g*100 + i)
					// Known field 1 and unknown field 3 always carry the same number.
					w := wire.Object{Class: 5, Kind: wire.ObjectRecord, Fields: []wire.Field{
						{ID: 1, Value: wire.String(fmt.Sprint(n))}, {ID: 3, Value: wire.Int(n)},
					}}
					if err := ws.Atomically(ctx, func(tx *stm.Tx) error { return stm.DecodeRecord(tx, p, w, nil) }); err != nil {
						t.Error(err)
					}
					got, err := stm.EncodeRecord(stm.Auto, p, r.ref)
					if err != nil {
						t.Error(err)
						return
					}
					if len(got.Fields) != 3 || fmt.Sprint(fieldValue(got, 3).Int()) != fieldValue(got, 1).Text() {
						t.Errorf("torn record %s", fieldsString(got))
					}
				}
			})
		}
		wg.Wait()
	}
}

// ExampleDecodeRecord evolves a schema: version 2 of class Person adds a
// field. A replica still on version 1 reads a record written by version 2,
// changes it and writes it back, and the field it does not know survives.
func ExampleDecodeRecord() {
	// Version 1: class Person = 7 { name: string = 1; }
	name1 := stm.NewVarField[string](1, "name")
	personV1 := stm.NewClass("Person", 7, name1)
	// Version 2 adds: nickname: string = 2;
	name2, nick2 := stm.NewVarField[string](1, "name"), stm.NewVarField[string](2, "nickname")
	personV2 := stm.NewClass("Person", 7, name2, nick2)

	ref := func(stm.Observable) wire.ObjectID { return wire.ObjectID{Replica: 1, Seq: 1} }
	newer, older := stm.NewWorkspace(), stm.NewWorkspace()

	// The newer replica writes a person.
	p2 := stm.NewObject(newer, personV2)
	name2.Of(p2).Set(stm.Auto, "Margaret")
	nick2.Of(p2).Set(stm.Auto, "Peggy")
	rec, _ := stm.EncodeRecord(stm.Auto, p2, ref)

	// The older one reads it, renames her, and writes her back.
	p1 := stm.NewObject(older, personV1)
	_ = older.Atomically(context.Background(), func(tx *stm.Tx) error {
		if err := stm.DecodeRecord(tx, p1, rec, nil); err != nil {
			return err
		}
		name1.Of(p1).Set(tx, "Meg")
		return nil
	})
	rec, _ = stm.EncodeRecord(stm.Auto, p1, ref)
	fmt.Println(rec.Fields)

	// The newer replica reads the result: the nickname is still there.
	_ = stm.DecodeRecord(stm.Auto, p2, rec, nil)
	fmt.Println(name2.Of(p2).Get(stm.Auto), nick2.Of(p2).Get(stm.Auto))
	// Output:
	// [{1 "Meg"} {2 "Peggy"}]
	// Meg Peggy
}

// Targets names what a transaction touched as its commit record does: a
// record for its value fields, a collection (a Set as itself, though its
// operations run on the Map inside it) for its own.
func TestTargets(t *testing.T) {
	ws := stm.NewWorkspace()
	a, b := stm.NewObject(ws, vertexClass), stm.NewObject(ws, vertexClass)
	err := ws.Atomically(context.Background(), func(tx *stm.Tx) error {
		vertex.Label.Of(a).Set(tx, "a")
		vertex.Edges.Of(a).AddFast(tx, b)
		vertex.Visits.Of(a).Add(tx, 1)
		_ = vertex.Label.Of(b).Get(tx)
		want := []stm.Observable{a, vertex.Edges.Of(a), vertex.Visits.Of(a), b}
		wrote := []bool{true, true, true, false}
		var got []stm.Observable
		var gotWrote []bool
		tx.Targets(func(o stm.Observable, w bool) { got, gotWrote = append(got, o), append(gotWrote, w) })
		if len(got) != len(want) {
			t.Fatalf("%d targets, want %d", len(got), len(want))
		}
		for i := range want {
			if !stm.Same(got[i], want[i]) || gotWrote[i] != wrote[i] {
				t.Errorf("target %d is %v (wrote %v), want %v (wrote %v)", i, stm.IDOf(got[i]), gotWrote[i], stm.IDOf(want[i]), wrote[i])
			}
		}
		if _, ok := got[0].(*stm.Object); !ok || stm.KindOf(got[1]) != wire.ObjectSet {
			t.Errorf("targets %T and %v, want the *stm.Object and a set", got[0], stm.KindOf(got[1]))
		}
		if stm.Same(a, b) || stm.Same(vertex.Edges.Of(a), vertex.Edges.Of(b)) {
			t.Error("Same holds for different objects")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// A retired object (and, for a record, its fields) stops any transaction
// that touches it, and a commit record that refers to it fails.
func TestRetire(t *testing.T) {
	var recs []*stm.CommitRecord
	ws := stm.NewWorkspace(stm.WithCommitHook(func(r *stm.CommitRecord) { recs = append(recs, r) }))
	ctx := context.Background()
	a, b := stm.NewObject(ws, vertexClass), stm.NewObject(ws, vertexClass)
	stm.Retire(a)
	if !stm.Retired(a) || !stm.Retired(vertex.Edges.Of(a)) || stm.Retired(b) {
		t.Fatal("Retired does not say what Retire did")
	}
	for name, fn := range map[string]func(tx *stm.Tx) error{
		"field read":  func(tx *stm.Tx) error { _ = vertex.Label.Of(a).Get(tx); return nil },
		"field write": func(tx *stm.Tx) error { vertex.Label.Of(a).Set(tx, "x"); return nil },
		"set add":     func(tx *stm.Tx) error { vertex.Edges.Of(a).AddFast(tx, b); return nil },
		"reference":   func(tx *stm.Tx) error { vertex.Next.Of(b).Set(tx, a); return nil },
		"unknown field": func(tx *stm.Tx) error {
			return stm.DecodeRecord(tx, a, wire.Object{ID: stm.IDOf(a), Class: 2, Kind: wire.ObjectRecord, Fields: []wire.Field{{ID: 99, Value: wire.Int(1)}}}, nil)
		},
	} {
		if err := ws.Atomically(ctx, fn); !errors.Is(err, stm.ErrRetired) {
			t.Errorf("%s: %v, want ErrRetired", name, err)
		}
	}
	if len(recs) != 0 {
		t.Fatalf("%d commits made it, want none", len(recs))
	}
	if err := ws.Atomically(ctx, func(tx *stm.Tx) error { vertex.Label.Of(b).Set(tx, "b"); return nil }); err != nil {
		t.Fatal(err)
	}
	// Bind marks a record and its fields alike, as Retire does.
	stm.Bind(b)
	if !stm.Bound(b) || !stm.Bound(vertex.Edges.Of(b)) || !stm.Bound(vertex.Label.Of(b)) || stm.Bound(a) {
		t.Fatal("Bound does not say what Bind did")
	}
}
