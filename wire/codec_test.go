package wire

import (
	"bytes"
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"
)

func TestRandomRoundTrip(t *testing.T) {
	for seed := range uint64(3000) {
		g := randGen(seed, false)
		m := g.message()
		if err := Validate(m, Limits{}); err != nil {
			t.Fatalf("seed %d: %v", seed, err)
		}
		checkEncode(t, m, Limits{})
	}
}

func TestRandomValidateAgreesWithDecoder(t *testing.T) {
	for seed := range uint64(10000) {
		g := randGen(seed, true)
		lim := g.limits()
		checkEncode(t, g.message(), lim)
	}
}

func TestUvarint(t *testing.T) {
	tests := []struct {
		in   []byte
		want uint64
		err  error
	}{
		{[]byte{0}, 0, nil},
		{[]byte{1}, 1, nil},
		{[]byte{0x7f}, 127, nil},
		{[]byte{0x80, 0x01}, 128, nil},
		{[]byte{0xff, 0x7f}, 16383, nil},
		{[]byte{0x80, 0x80, 0x01}, 16384, nil},
		{[]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}, math.MaxUint64, nil},
		{[]byte{0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01}, 1 << 63, nil},
		{[]byte{}, 0, ErrTruncated},
		{[]byte{0x80}, 0, ErrTruncated},
		{[]byte{0xff, 0xff}, 0, ErrTruncated},
		{[]byte{0x80, 0x00}, 0, ErrBadVarint},
		{[]byte{0x81, 0x80, 0x00}, 0, ErrBadVarint},
		{[]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02}, 0, ErrBadVarint},
		{[]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x81, 0x00}, 0, ErrBadVarint},
	}
	for _, tt := range tests {
		lim := DefaultLimits()
		d := decoder{b: tt.in, lim: &lim}
		got := d.uvarint("x")
		if !errors.Is(d.err, tt.err) && !(d.err == nil && tt.err == nil) || got != tt.want {
			t.Errorf("uvarint(%x) = %d, %v; want %d, %v", tt.in, got, d.err, tt.want, tt.err)
		}
		if tt.err == nil {
			if d.off != len(tt.in) {
				t.Errorf("uvarint(%x) read %d bytes", tt.in, d.off)
			}
			if enc := appendUvarint(nil, tt.want); !bytes.Equal(enc, tt.in) {
				t.Errorf("appendUvarint(%d) = %x, want %x", tt.want, enc, tt.in)
			}
			if n := uvarintLen(tt.want); n != len(tt.in) {
				t.Errorf("uvarintLen(%d) = %d, want %d", tt.want, n, len(tt.in))
			}
		}
	}
}

func TestZigzag(t *testing.T) {
	tests := []struct {
		in   int64
		want []byte
	}{
		{0, []byte{0}},
		{-1, []byte{1}},
		{1, []byte{2}},
		{-64, []byte{0x7f}},
		{64, []byte{0x80, 0x01}},
		{math.MaxInt64, []byte{0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}},
		{math.MinInt64, []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}},
	}
	for _, tt := range tests {
		if got := appendVarint(nil, tt.in); !bytes.Equal(got, tt.want) {
			t.Errorf("appendVarint(%d) = %x, want %x", tt.in, got, tt.want)
		}
		lim := DefaultLimits()
		d := decoder{b: tt.want, lim: &lim}
		if got := d.varint("x"); got != tt.in || d.err != nil {
			t.Errorf("varint(%x) = %d, %v", tt.want, got, d.err)
		}
	}
}

func TestNegotiate(t *testing.T) {
	tests := []struct {
		cmin, cmax, smin, smax uint32
		want                   uint32
		ok                     bool
	}{
		{1, 1, 1, 1, 1, true},
		{1, 3, 1, 2, 2, true},
		{2, 5, 1, 9, 5, true},
		{1, 1, 2, 3, 0, false},
		{4, 5, 1, 3, 0, false},
		{3, 1, 1, 3, 0, false}, // empty client range
		{1, 3, 3, 1, 0, false}, // empty server range
		{0, math.MaxUint32, 1, 1, 1, true},
	}
	for _, tt := range tests {
		got, ok := Negotiate(tt.cmin, tt.cmax, tt.smin, tt.smax)
		if got != tt.want || ok != tt.ok {
			t.Errorf("Negotiate(%d, %d, %d, %d) = %d, %v; want %d, %v", tt.cmin, tt.cmax, tt.smin, tt.smax, got, ok, tt.want, tt.ok)
		}
	}
	if MinProtocolVersion > ProtocolVersion || MinProtocolVersion == 0 {
		t.Errorf("bad version range %d..%d", MinProtocolVersion, ProtocolVersion)
	}
}

func TestLimitsWithDefaults(t *testing.T) {
	if got := (Limits{}).WithDefaults(); got != DefaultLimits() {
		t.Errorf("zero limits: %+v", got)
	}
	l := Limits{MaxFrameSize: 10, MaxReads: -1, MaxWrites: math.MaxInt}.WithDefaults()
	want := DefaultLimits()
	want.MaxFrameSize, want.MaxWrites = 10, math.MaxInt32
	if l != want {
		t.Errorf("got %+v, want %+v", l, want)
	}
	d := DefaultLimits()
	for i, f := range d.fields() {
		if *f <= 0 || *f > math.MaxInt32 {
			t.Errorf("default %s = %d", limitPaths[i], *f)
		}
	}
	if d.MaxStringLen >= d.MaxFrameSize || d.MaxNameLen > d.MaxStringLen {
		t.Error("a default string limit does not fit in a default frame")
	}
}

func TestIDText(t *testing.T) {
	id := ObjectID{Replica: math.MaxUint64, Seq: 7}
	if s := id.String(); s != "18446744073709551615:7" {
		t.Errorf("String = %q", s)
	}
	var back ObjectID
	if err := back.UnmarshalText([]byte(id.String())); err != nil || back != id {
		t.Errorf("UnmarshalText: %v, %v", back, err)
	}
	for _, bad := range []string{"", "1", "1:", ":1", "1:2:3", "-1:2", "a:b", "18446744073709551616:0"} {
		var c CommitID
		if err := c.UnmarshalText([]byte(bad)); err == nil {
			t.Errorf("UnmarshalText(%q) = %v, want an error", bad, c)
		}
	}
}

func TestValueAccessors(t *testing.T) {
	ref := ObjectID{1, 2}
	all := []Value{Null(), Bool(true), Int(-3), Uint(3), Float(2.5), String("s"), Bytes([]byte{1}), Ref(ref)}
	for i, v := range all {
		if v.Kind() != ValueKind(i) {
			t.Errorf("%v: kind %v", v, v.Kind())
		}
		// Each accessor answers only for its own kind.
		check := func(name string, ok bool, kind ValueKind) {
			if ok != (v.Kind() == kind) {
				t.Errorf("%v.%s wrong", v, name)
			}
		}
		check("IsNull", v.IsNull(), KindNull)
		check("Bool", v.Bool(), KindBool)
		check("Int", v.Int() == -3, KindInt)
		check("Uint", v.Uint() == 3, KindUint)
		check("Float", v.Float() == 2.5, KindFloat)
		check("Text", v.Text() == "s", KindString)
		check("Bytes", v.Bytes() != nil, KindBytes)
		check("Ref", v.Ref() == ref, KindRef)
	}
	wantStr := []string{"null", "true", "-3", "3u", "2.5", `"s"`, "0x01", "@1:2"}
	for i, v := range all {
		if v.String() != wantStr[i] {
			t.Errorf("String() = %q, want %q", v.String(), wantStr[i])
		}
	}
	// Bytes copies in and out.
	b := []byte{1, 2}
	v := Bytes(b)
	b[0] = 9
	v.Bytes()[1] = 9
	if !bytes.Equal(v.Bytes(), []byte{1, 2}) {
		t.Error("Bytes aliases")
	}
	// Floats compare by bits.
	if Float(math.NaN()) != Float(math.NaN()) || Float(0) == Float(math.Copysign(0, -1)) {
		t.Error("float equality is not bitwise")
	}
	if Bool(false) == Null() || Int(0) == Uint(0) || String("a") == Bytes([]byte("a")) {
		t.Error("values of different kinds compare equal")
	}
}

func TestValueJSON(t *testing.T) {
	bad := []string{`{}`, `{"int":"1","uint":"1"}`, `{"null":null}`, `{"wat":"1"}`, `{"int":1}`,
		`{"int":"1.5"}`, `{"uint":"-1"}`, `{"float":"inf"}`, `{"float":"nan"}`, `{"bytes":"0g"}`,
		`{"ref":"1"}`, `{"bool":"true"}`, `[]`, `1`}
	for _, s := range bad {
		var v Value
		if err := v.UnmarshalJSON([]byte(s)); err == nil {
			t.Errorf("UnmarshalJSON(%s) = %v, want an error", s, v)
		}
	}
	floats := map[string]float64{`"1e+100"`: 1e100, `"-0"`: math.Copysign(0, -1), `"+Inf"`: math.Inf(1)}
	for s, f := range floats {
		var v Value
		if err := v.UnmarshalJSON([]byte(`{"float":` + s + `}`)); err != nil || v != Float(f) {
			t.Errorf("float %s: %v, %v", s, v, err)
		}
	}
}

func TestEnumText(t *testing.T) {
	for _, typ := range Types() {
		var back Type
		b, err := typ.MarshalText()
		if err != nil || back.UnmarshalText(b) != nil || back != typ {
			t.Errorf("type %v: %s, %v", typ, b, err)
		}
		if New(typ) == nil || New(typ).Type() != typ {
			t.Errorf("New(%v) is wrong", typ)
		}
	}
	if _, err := Type(0x7f).MarshalText(); err == nil {
		t.Error("unknown type marshals")
	}
	if New(0) != nil {
		t.Error("New(0) is a message")
	}
	for c := CodeNone; c <= CodeReplaced+1; c++ {
		var back Code
		b, _ := c.MarshalText()
		if err := back.UnmarshalText(b); err != nil || back != c {
			t.Errorf("code %d: %s, %v", c, b, err)
		}
	}
	var k OpKind
	if err := k.UnmarshalText([]byte("")); err == nil {
		t.Error("empty op kind parses")
	}
	if s := OpKind(0).String(); s != "opkind(0)" {
		t.Errorf("OpKind(0) = %s", s)
	}
	if s := Type(0x7f).String(); s != "type(0x7f)" {
		t.Errorf("Type(0x7f) = %s", s)
	}
}

func TestDecodeErrors(t *testing.T) {
	// Field paths and offsets, through DecodeMessage (offsets from the type
	// byte) and Decoder (offsets from the start of the input).
	commit := AppendMessage(nil, &Commit{
		ID:    CommitID{1, 1},
		Reads: []Read{{Kind: ReadWhole}, {Kind: ReadKey, Key: String("ok")}},
	})
	// Break the second read's key: its last byte becomes 0xff.
	commit[len(commit)-3] = 0xff
	tests := []struct {
		name   string
		body   []byte
		field  string
		offset int
		err    error
	}{
		{"empty", nil, "type", 0, ErrTruncated},
		{"unknown type", []byte{0x30}, "type", 0, ErrUnknownType},
		{"trailing", []byte{byte(TypePing), 1, 2}, "ping", 2, ErrTrailing},
		{"nested", commit, "commit.reads[1].key", 14, ErrBadUTF8},
		{"create kind", AppendMessage(nil, &Update{Writes: []Op{{Kind: OpRemove}, {Kind: OpCreate, ObjectKind: 9}}}),
			"update.writes[1].object_kind", 13, ErrInvalid},
	}
	for _, tt := range tests {
		_, err := DecodeMessage(tt.body, Limits{})
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Field != tt.field || fe.Offset != tt.offset || fe.Err != tt.err {
			t.Errorf("%s: %v; want %s at %d: %v", tt.name, err, tt.field, tt.offset, tt.err)
			continue
		}
		if !strings.Contains(err.Error(), tt.field) {
			t.Errorf("%s: message %q lacks the field", tt.name, err)
		}
		// The same body framed, after a ping.
		in := AppendFrame(nil, &Ping{})
		base := len(in)
		in = append(in, byte(len(tt.body)))
		in = append(in, tt.body...)
		d := NewDecoder(in, Limits{})
		if _, err := d.Decode(); err != nil {
			t.Fatal(err)
		}
		_, err = d.Decode()
		if !errors.As(err, &fe) || fe.Offset != base+1+tt.offset {
			t.Errorf("%s: Decoder: %v; want offset %d", tt.name, err, base+1+tt.offset)
		}
		if d.Offset() != base {
			t.Errorf("%s: Decoder moved past a bad frame", tt.name)
		}
	}
}

func TestValidate(t *testing.T) {
	long := strings.Repeat("x", 300)
	tests := []struct {
		m     Message
		field string
		err   error
	}{
		{&Hello{Token: "\xff"}, "hello.token", ErrBadUTF8},
		{&Hello{Agent: long}, "hello.agent", ErrLimit},
		{&OpenShare{Name: long}, "open_share.name", ErrLimit},
		{&Welcome{Limits: Limits{MaxDeps: math.MaxInt32 + 1}}, "welcome.limits.max_deps", ErrBadVarint},
		{&Opened{Access: 0}, "opened.access", ErrInvalid},
		{&Commit{Deps: make([]CommitID, 1025)}, "commit.deps", ErrLimit},
		{&Commit{Writes: []Op{{Kind: OpSetField}, {Kind: OpCreate, ObjectKind: ObjectMap, Fields: []Field{{}}}}}, "commit.writes[1].fields", ErrInvalid},
		{&SnapshotChunk{Objects: []Object{{Kind: ObjectMap, Entries: []Entry{{Key: String("\xc0")}}}}}, "snapshot_chunk.objects[0].entries[0].key", ErrBadUTF8},
		{&Update{Writes: []Op{{Kind: OpListAppend, Values: []Value{Null(), Bytes(make([]byte, 300<<10))}}}}, "update.writes[0].values[1]", ErrLimit},
	}
	for _, tt := range tests {
		err := Validate(tt.m, Limits{})
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Field != tt.field || fe.Err != tt.err || fe.Offset != -1 {
			t.Errorf("Validate(%#v) = %v; want %s: %v", tt.m, err, tt.field, tt.err)
		}
	}
}

func TestAppendFrameLengths(t *testing.T) {
	// Bodies whose lengths straddle the one-, two- and three-byte prefixes.
	for _, n := range []int{0, 1, 120, 125, 126, 127, 128, 200, 16380, 16381, 16382, 16383, 16384, 70000} {
		m := &Error{Message: strings.Repeat("e", n)}
		body := AppendMessage(nil, m)
		frame := AppendFrame([]byte("prefix"), m)
		if !bytes.HasPrefix(frame, []byte("prefix")) {
			t.Fatal("AppendFrame clobbered dst")
		}
		frame = frame[len("prefix"):]
		want := append(appendUvarint(nil, uint64(len(body))), body...)
		if !bytes.Equal(frame, want) {
			t.Errorf("message of %d: frame differs", n)
		}
	}
}

func TestErrorMessage(t *testing.T) {
	var err error = &Error{Code: CodeAuth, Message: "bad token"}
	if err.Error() != "weft: peer error: auth: bad token" {
		t.Errorf("got %q", err)
	}
	if s := (&Error{Code: 99}).Error(); s != "weft: peer error: 99" {
		t.Errorf("got %q", s)
	}
}

func TestErrorKind(t *testing.T) {
	for sentinel, name := range kindNames {
		if got := ErrorKind(&FieldError{Err: sentinel}); got != name {
			t.Errorf("ErrorKind(%v) = %q, want %q", sentinel, got, name)
		}
	}
	if ErrorKind(errors.New("other")) != "" || ErrorKind(nil) != "" {
		t.Error("ErrorKind of a foreign error")
	}
}

// TestDecodedDoesNotAlias checks that decoded strings and bytes survive the
// input being overwritten.
func TestDecodedDoesNotAlias(t *testing.T) {
	m := &Update{Writes: []Op{{Kind: OpMapPut, Key: String("key"), Value: Bytes([]byte("val"))}}}
	body := AppendMessage(nil, m)
	got, err := DecodeMessage(body, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range body {
		body[i] = 0
	}
	if !reflect.DeepEqual(got, m) {
		t.Errorf("decoded message changed with its input: %#v", got)
	}
}

// TestValueSize: ValueSize is the length of AppendValue's encoding, for
// every kind (generated values, and the varints' edges).
func TestValueSize(t *testing.T) {
	vs := []Value{{}, Bool(true), Int(0), Int(-1), Int(63), Int(-64), Int(64), Int(math.MinInt64), Int(math.MaxInt64),
		Uint(0), Uint(127), Uint(128), Uint(math.MaxUint64), String(""), String(strings.Repeat("x", 200)), Bytes(nil),
		Ref(ObjectID{Replica: math.MaxUint64, Seq: 1})}
	g := randGen(7, false)
	for range 10_000 {
		vs = append(vs, g.value())
	}
	for _, v := range vs {
		if got, want := ValueSize(v), len(AppendValue(nil, v)); got != want {
			t.Fatalf("ValueSize(%v) = %d, want %d", v, got, want)
		}
	}
}
