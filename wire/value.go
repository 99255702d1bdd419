package wire

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// ObjectID identifies an object in every replica: the replica that created
// it and that replica's sequence number for it. Its text form is
// "replica:seq" in decimal.
type ObjectID struct {
	Replica uint64
	Seq     uint64
}

func (id ObjectID) String() string { return formatPair(id.Replica, id.Seq) }

// MarshalText encodes id as "replica:seq".
func (id ObjectID) MarshalText() ([]byte, error) { return []byte(id.String()), nil }

// UnmarshalText parses "replica:seq".
func (id *ObjectID) UnmarshalText(b []byte) (err error) {
	id.Replica, id.Seq, err = parsePair(string(b))
	return err
}

// CommitID identifies a commit: the replica that made it and that replica's
// sequence number for it. A replica numbers its commits 1, 2, 3, ... and a
// resent commit keeps its id, which is how a server recognises it. Its text
// form is "replica:seq" in decimal.
type CommitID struct {
	Replica uint64
	Seq     uint64
}

func (id CommitID) String() string { return formatPair(id.Replica, id.Seq) }

// MarshalText encodes id as "replica:seq".
func (id CommitID) MarshalText() ([]byte, error) { return []byte(id.String()), nil }

// UnmarshalText parses "replica:seq".
func (id *CommitID) UnmarshalText(b []byte) (err error) {
	id.Replica, id.Seq, err = parsePair(string(b))
	return err
}

func formatPair(a, b uint64) string {
	buf := make([]byte, 0, 24)
	buf = strconv.AppendUint(buf, a, 10)
	buf = append(buf, ':')
	buf = strconv.AppendUint(buf, b, 10)
	return string(buf)
}

func parsePair(s string) (uint64, uint64, error) {
	as, bs, ok := strings.Cut(s, ":")
	if ok {
		a, err1 := strconv.ParseUint(as, 10, 64)
		b, err2 := strconv.ParseUint(bs, 10, 64)
		if err1 == nil && err2 == nil {
			return a, b, nil
		}
	}
	return 0, 0, fmt.Errorf("wire: bad id %q, want replica:seq", s)
}

// ShareHandle names an open share within one session. The client chooses it
// in OpenShare; it is valid from then until the share is closed, and is not
// reused while open.
type ShareHandle uint32

// ValueKind is the type of a Value. Its number is the kind byte on the wire.
type ValueKind uint8

// Value kinds.
const (
	KindNull   ValueKind = 0
	KindBool   ValueKind = 1
	KindInt    ValueKind = 2 // int64, zigzag varint
	KindUint   ValueKind = 3 // uint64, varint
	KindFloat  ValueKind = 4 // float64, 8 bytes little endian
	KindString ValueKind = 5 // UTF-8
	KindBytes  ValueKind = 6
	KindRef    ValueKind = 7 // ObjectID
	numKinds   ValueKind = 8
)

var kindNamesV = [numKinds]string{"null", "bool", "int", "uint", "float", "string", "bytes", "ref"}

func (k ValueKind) String() string {
	if k < numKinds {
		return kindNamesV[k]
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// Value is a field value, a map key or value, or a set or list element:
// null, bool, int64, uint64, float64, string, bytes or a reference to an
// object. The zero Value is null.
//
// Values are comparable with == and usable as Go map keys. Floats compare
// by their bits: NaN equals a NaN with the same bits, and 0 differs from -0.
// A string Value holds any Go string; Validate and the decoders insist on
// valid UTF-8.
type Value struct {
	kind ValueKind
	num  uint64 // bool (0/1), int (two's complement), uint, float bits, ref replica
	seq  uint64 // ref seq
	str  string // string and bytes
}

// Null returns the null Value (the zero Value).
func Null() Value { return Value{} }

// Bool returns a bool Value.
func Bool(b bool) Value {
	v := Value{kind: KindBool}
	if b {
		v.num = 1
	}
	return v
}

// Int returns an int64 Value.
func Int(i int64) Value { return Value{kind: KindInt, num: uint64(i)} }

// Uint returns a uint64 Value.
func Uint(u uint64) Value { return Value{kind: KindUint, num: u} }

// Float returns a float64 Value. Its bits are kept exactly, NaN payloads
// included.
func Float(f float64) Value { return Value{kind: KindFloat, num: math.Float64bits(f)} }

// String returns a string Value.
func String(s string) Value { return Value{kind: KindString, str: s} }

// Bytes returns a bytes Value holding a copy of b.
func Bytes(b []byte) Value { return Value{kind: KindBytes, str: string(b)} }

// Ref returns a Value referring to the object id.
func Ref(id ObjectID) Value { return Value{kind: KindRef, num: id.Replica, seq: id.Seq} }

// Kind returns the kind of v.
func (v Value) Kind() ValueKind { return v.kind }

// IsNull reports whether v is null.
func (v Value) IsNull() bool { return v.kind == KindNull }

// Bool returns the bool in v, or false if v is not a bool.
func (v Value) Bool() bool { return v.kind == KindBool && v.num == 1 }

// Int returns the int64 in v, or 0 if v is not an int.
func (v Value) Int() int64 {
	if v.kind != KindInt {
		return 0
	}
	return int64(v.num)
}

// Uint returns the uint64 in v, or 0 if v is not a uint.
func (v Value) Uint() uint64 {
	if v.kind != KindUint {
		return 0
	}
	return v.num
}

// Float returns the float64 in v, or 0 if v is not a float.
func (v Value) Float() float64 {
	if v.kind != KindFloat {
		return 0
	}
	return math.Float64frombits(v.num)
}

// Text returns the string in v, or "" if v is not a string.
func (v Value) Text() string {
	if v.kind != KindString {
		return ""
	}
	return v.str
}

// Bytes returns a copy of the bytes in v, or nil if v is not bytes.
func (v Value) Bytes() []byte {
	if v.kind != KindBytes {
		return nil
	}
	return []byte(v.str)
}

// Len returns the length in bytes of the string or bytes in v, 0 for
// the other kinds: what v holds besides itself.
func (v Value) Len() int { return len(v.str) }

// Ref returns the object id in v, or the zero ObjectID if v is not a ref.
func (v Value) Ref() ObjectID {
	if v.kind != KindRef {
		return ObjectID{}
	}
	return ObjectID{Replica: v.num, Seq: v.seq}
}

// String formats v for people: null, true, -5, 5u, 1.5, "text", 0x00ff,
// @1:2.
func (v Value) String() string {
	switch v.kind {
	case KindNull:
		return "null"
	case KindBool:
		return strconv.FormatBool(v.Bool())
	case KindInt:
		return strconv.FormatInt(v.Int(), 10)
	case KindUint:
		return strconv.FormatUint(v.num, 10) + "u"
	case KindFloat:
		return formatFloat(v.num)
	case KindString:
		return strconv.Quote(v.str)
	case KindBytes:
		return "0x" + hex.EncodeToString([]byte(v.str))
	case KindRef:
		return "@" + v.Ref().String()
	}
	return v.kind.String()
}

// canonicalNaN is the quiet NaN that JavaScript and most languages produce;
// its JSON form is "NaN".
const canonicalNaN = 0x7ff8000000000000

// formatFloat gives the JSON text of a float: the shortest decimal that
// parses back to the same bits, "+Inf", "-Inf", "NaN" for the canonical
// NaN, or "0x" and 16 hex digits of the bits for any other NaN.
func formatFloat(bits uint64) string {
	f := math.Float64frombits(bits)
	switch {
	case bits == canonicalNaN:
		return "NaN"
	case f != f:
		return fmt.Sprintf("0x%016x", bits)
	case math.IsInf(f, 1):
		return "+Inf"
	case math.IsInf(f, -1):
		return "-Inf"
	}
	return strconv.FormatFloat(f, 'g', -1, 64)
}

func parseFloat(s string) (uint64, error) {
	switch s {
	case "NaN":
		return canonicalNaN, nil
	case "+Inf":
		return math.Float64bits(math.Inf(1)), nil
	case "-Inf":
		return math.Float64bits(math.Inf(-1)), nil
	}
	if h, ok := strings.CutPrefix(s, "0x"); ok {
		return strconv.ParseUint(h, 16, 64)
	}
	if strings.ContainsAny(s, "iInN") { // no "inf", "nan" spellings but ours
		return 0, fmt.Errorf("wire: bad float %q", s)
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0, err
	}
	return math.Float64bits(f), nil
}

// MarshalJSON encodes v in the JSON form of the test vectors: null, or an
// object with one member named after the kind. 64-bit numbers and floats are
// strings, so that JavaScript keeps every bit; bytes are hex:
//
//	null  {"bool":true}  {"int":"-5"}  {"uint":"5"}  {"float":"1.5"}
//	{"string":"héllo"}  {"bytes":"00ff"}  {"ref":"1:2"}
func (v Value) MarshalJSON() ([]byte, error) {
	var s any
	switch v.kind {
	case KindNull:
		return []byte("null"), nil
	case KindBool:
		s = v.Bool()
	case KindInt:
		s = strconv.FormatInt(v.Int(), 10)
	case KindUint:
		s = strconv.FormatUint(v.num, 10)
	case KindFloat:
		s = formatFloat(v.num)
	case KindString:
		s = v.str
	case KindBytes:
		s = hex.EncodeToString([]byte(v.str))
	case KindRef:
		s = v.Ref().String()
	default:
		return nil, fmt.Errorf("wire: bad value kind %d", v.kind)
	}
	return json.Marshal(map[string]any{v.kind.String(): s})
}

// UnmarshalJSON decodes the form MarshalJSON produces.
func (v *Value) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*v = Value{}
		return nil
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return err
	}
	if len(m) != 1 {
		return errors.New("wire: a value is null or an object with one member")
	}
	for name, raw := range m {
		k, ok := lookupName(kindNamesV[:], name)
		if !ok || k == int(KindNull) {
			return fmt.Errorf("wire: unknown value kind %q", name)
		}
		if ValueKind(k) == KindBool {
			var b bool
			if err := json.Unmarshal(raw, &b); err != nil {
				return err
			}
			*v = Bool(b)
			return nil
		}
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return err
		}
		var err error
		switch ValueKind(k) {
		case KindInt:
			var i int64
			i, err = strconv.ParseInt(s, 10, 64)
			*v = Int(i)
		case KindUint:
			var u uint64
			u, err = strconv.ParseUint(s, 10, 64)
			*v = Uint(u)
		case KindFloat:
			var bits uint64
			bits, err = parseFloat(s)
			*v = Value{kind: KindFloat, num: bits}
		case KindString:
			*v = String(s)
		case KindBytes:
			var bs []byte
			bs, err = hex.DecodeString(s)
			*v = Bytes(bs)
		case KindRef:
			var id ObjectID
			err = id.UnmarshalText([]byte(s))
			*v = Ref(id)
		}
		return err
	}
	return nil
}
