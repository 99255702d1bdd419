package stm

import (
	"errors"
	"fmt"
	"math"

	"github.com/weft-stm/weft/wire"
)

// The conversions between Go values and wire values, shared by the record
// codec, commit records and applied ops. A Go value has a wire form when it
// is a bool, an integer, a float, a string, a []byte or an *Object (a ref,
// by its id); signed integers become wire ints and unsigned ones wire uints.

// valueError is a conversion failure: one of ErrFieldKind, ErrFieldRange,
// errors.ErrUnsupported or a resolve failure, with a description. Callers
// that know which field it was turn it into a *FieldError.
type valueError struct {
	sentinel error
	detail   string
}

func (e *valueError) Error() string { return "stm: " + e.detail }
func (e *valueError) Unwrap() error { return e.sentinel }

func valueErrorf(sentinel error, format string, args ...any) *valueError {
	return &valueError{sentinel: sentinel, detail: fmt.Sprintf(format, args...)}
}

func wrongKind(v wire.Value, want string) *valueError {
	return valueErrorf(ErrFieldKind, "%s cannot be read as %s", describe(v), want)
}

// toWire returns x's wire form. Named types (type Celsius float64) have
// none yet: they would need reflection, left for when a user needs it.
func toWire(x any) (wire.Value, error) {
	switch x := x.(type) {
	case bool:
		return wire.Bool(x), nil
	case int:
		return wire.Int(int64(x)), nil
	case int8:
		return wire.Int(int64(x)), nil
	case int16:
		return wire.Int(int64(x)), nil
	case int32:
		return wire.Int(int64(x)), nil
	case int64:
		return wire.Int(x), nil
	case uint:
		return wire.Uint(uint64(x)), nil
	case uint8:
		return wire.Uint(uint64(x)), nil
	case uint16:
		return wire.Uint(uint64(x)), nil
	case uint32:
		return wire.Uint(uint64(x)), nil
	case uint64:
		return wire.Uint(x), nil
	case float32:
		return wire.Float(float64(x)), nil
	case float64:
		return wire.Float(x), nil
	case string:
		return wire.String(x), nil
	case []byte:
		return wire.Bytes(x), nil
	case *Object:
		if x == nil {
			return wire.Null(), nil
		}
		if x.retired.Load() {
			return wire.Value{}, fmt.Errorf("ref to %v: %w", x.id, ErrRetired)
		}
		return wire.Ref(x.id), nil
	case struct{}:
		return wire.Null(), nil // a set's element value
	}
	return wire.Value{}, valueErrorf(errors.ErrUnsupported, "Go type %T has no wire form", x)
}

// fromWire stores v in *dst (dst is a pointer to a type with a wire form),
// converted by the schema's widening rules: any integer into any integer
// type that holds it, a float into float32 only if exact. A ref needs
// resolve. It returns a *valueError.
func fromWire(dst any, v wire.Value, resolve func(wire.ObjectID) (*Object, error)) error {
	var err error
	switch p := dst.(type) {
	case *bool:
		if v.Kind() != wire.KindBool {
			return wrongKind(v, "bool")
		}
		*p = v.Bool()
	case *int:
		*p, err = toSigned[int](v, "int", math.MinInt, math.MaxInt)
	case *int8:
		*p, err = toSigned[int8](v, "int8", math.MinInt8, math.MaxInt8)
	case *int16:
		*p, err = toSigned[int16](v, "int16", math.MinInt16, math.MaxInt16)
	case *int32:
		*p, err = toSigned[int32](v, "int32", math.MinInt32, math.MaxInt32)
	case *int64:
		*p, err = toSigned[int64](v, "int64", math.MinInt64, math.MaxInt64)
	case *uint:
		*p, err = toUnsigned[uint](v, "uint", math.MaxUint)
	case *uint8:
		*p, err = toUnsigned[uint8](v, "uint8", math.MaxUint8)
	case *uint16:
		*p, err = toUnsigned[uint16](v, "uint16", math.MaxUint16)
	case *uint32:
		*p, err = toUnsigned[uint32](v, "uint32", math.MaxUint32)
	case *uint64:
		*p, err = toUnsigned[uint64](v, "uint64", math.MaxUint64)
	case *float32:
		if v.Kind() != wire.KindFloat {
			return wrongKind(v, "float32")
		}
		x := v.Float()
		y := float32(x)
		if math.Float64bits(float64(y)) != math.Float64bits(x) {
			return valueErrorf(ErrFieldRange, "%s does not fit float32 exactly", describe(v))
		}
		*p = y
	case *float64:
		if v.Kind() != wire.KindFloat {
			return wrongKind(v, "float64")
		}
		*p = v.Float()
	case *string:
		if v.Kind() != wire.KindString {
			return wrongKind(v, "string")
		}
		*p = v.Text()
	case *[]byte:
		if v.Kind() != wire.KindBytes {
			return wrongKind(v, "bytes")
		}
		if b := v.Bytes(); len(b) > 0 { // a fresh copy; empty stays nil
			*p = b
		}
	case *struct{}:
		if v.Kind() != wire.KindNull {
			return wrongKind(v, "null")
		}
	case **Object:
		switch v.Kind() {
		case wire.KindNull:
			*p = nil
		case wire.KindRef:
			if resolve == nil {
				return valueErrorf(errNoResolve, "ref %v and no resolve function", v)
			}
			t, rerr := resolve(v.Ref())
			if rerr != nil {
				return valueErrorf(rerr, "resolving ref %v: %v", v, rerr)
			}
			if t == nil {
				return valueErrorf(errDangling, "ref %v resolved to no object", v)
			}
			*p = t
		default:
			return wrongKind(v, "ref")
		}
	default:
		return valueErrorf(errors.ErrUnsupported, "Go type %T has no wire form", dst)
	}
	return err
}

// describe gives a value with its kind, for errors: int -5, uint 5,
// string "x", null.
func describe(v wire.Value) string {
	switch v.Kind() {
	case wire.KindNull:
		return "null"
	case wire.KindUint:
		return fmt.Sprintf("uint %d", v.Uint())
	}
	return v.Kind().String() + " " + v.String()
}

func toSigned[T int | int8 | int16 | int32 | int64](v wire.Value, name string, lo, hi int64) (T, error) {
	switch v.Kind() {
	case wire.KindInt:
		if x := v.Int(); x >= lo && x <= hi {
			return T(x), nil
		}
	case wire.KindUint:
		if x := v.Uint(); x <= uint64(hi) {
			return T(x), nil
		}
	default:
		return 0, wrongKind(v, name)
	}
	return 0, valueErrorf(ErrFieldRange, "%s is out of range for %s", describe(v), name)
}

func toUnsigned[T uint | uint8 | uint16 | uint32 | uint64](v wire.Value, name string, hi uint64) (T, error) {
	switch v.Kind() {
	case wire.KindInt:
		if x := v.Int(); x >= 0 && uint64(x) <= hi {
			return T(x), nil
		}
	case wire.KindUint:
		if x := v.Uint(); x <= hi {
			return T(x), nil
		}
	default:
		return 0, wrongKind(v, name)
	}
	return 0, valueErrorf(ErrFieldRange, "%s is out of range for %s", describe(v), name)
}
