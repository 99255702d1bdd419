package schema

import "fmt"

// The checked model: what generators consume. Names are resolved (a
// reference points at its *Class), ids are validated, and every element keeps
// the position of its declaration for error messages. A Schema is immutable
// once Check returns it.

// MaxID is the largest class or field id. Ids are small positive numbers
// that a wire encoding can pack with a few tag bits (as Protocol Buffers
// does); 0 is never a valid id.
const MaxID = 1<<29 - 1

// Schema is a checked schema file.
type Schema struct {
	File     *File     // the syntax tree Check was given
	Package  string    // the name in "package name;"
	Doc      string    // comment block above the package clause
	Classes  []*Class  // in source order
	Reserved []IDRange // class ids that must not be used (again)
}

// Class returns the class named name, or nil.
func (s *Schema) Class(name string) *Class {
	for _, c := range s.Classes {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// ClassByID returns the class with the given id, or nil.
func (s *Schema) ClassByID(id uint32) *Class {
	for _, c := range s.Classes {
		if c.ID == id {
			return c
		}
	}
	return nil
}

// IsReserved reports whether the class id is reserved at the top level.
func (s *Schema) IsReserved(id uint32) bool { return reservedIn(s.Reserved, id) != nil }

// Class is a checked class declaration.
type Class struct {
	Schema *Schema
	Decl   *ClassDecl
	Pos    Pos // of the class name
	Name   string
	ID     uint32
	Doc    string

	// Deprecated is set by the [deprecated] option; DeprecationNote is its
	// value, if any ([deprecated = "use Account"]).
	Deprecated      bool
	DeprecationNote string

	Fields   []*Field  // in source order, deprecated ones included
	Reserved []IDRange // field ids that must not be used (again)
}

// Field returns the field named name, or nil.
func (c *Class) Field(name string) *Field {
	for _, f := range c.Fields {
		if f.Name == name {
			return f
		}
	}
	return nil
}

// FieldByID returns the field with the given id, or nil.
func (c *Class) FieldByID(id uint32) *Field {
	for _, f := range c.Fields {
		if f.ID == id {
			return f
		}
	}
	return nil
}

// IsReserved reports whether the field id is reserved in c.
func (c *Class) IsReserved(id uint32) bool { return reservedIn(c.Reserved, id) != nil }

// RetiredIDs returns the field ids of c that must never be given to a new
// field: those of deprecated fields and the reserved ones, in that order.
// Together with the live fields, they are every id c has ever used, as far
// as this schema knows.
func (c *Class) RetiredIDs() []IDRange {
	var ids []IDRange
	for _, f := range c.Fields {
		if f.Deprecated {
			ids = append(ids, IDRange{From: f.ID, To: f.ID, Pos: f.Pos})
		}
	}
	return append(ids, c.Reserved...)
}

// Field is a checked field declaration.
type Field struct {
	Class *Class
	Decl  *FieldDecl
	Pos   Pos // of the field name
	Name  string
	ID    uint32
	Type  *Type
	Doc   string

	// Deprecated is set by the [deprecated] option; DeprecationNote is its
	// value, if any. A deprecated field keeps its id and its place in the
	// object; generators still generate it, marked deprecated.
	Deprecated      bool
	DeprecationNote string
}

// IDRange is an inclusive range of reserved ids; From == To for one id.
type IDRange struct {
	From, To uint32
	Pos      Pos
}

// Contains reports whether id is in r.
func (r IDRange) Contains(id uint32) bool { return r.From <= id && id <= r.To }

func (r IDRange) String() string {
	if r.From == r.To {
		return fmt.Sprint(r.From)
	}
	return fmt.Sprintf("%d to %d", r.From, r.To)
}

func reservedIn(rs []IDRange, id uint32) *IDRange {
	for i := range rs {
		if rs[i].Contains(id) {
			return &rs[i]
		}
	}
	return nil
}

// Kind is the kind of a field type.
type Kind int

// The kinds of field types. Scalars and references are single values; the
// other kinds are collections.
const (
	Invalid Kind = iota
	Bool
	Int8
	Int16
	Int32
	Int64
	Uint8
	Uint16
	Uint32
	Uint64
	Float32
	Float64
	String
	Bytes
	Ref     // a reference to an object of a class (or none)
	Counter // a commutative int64 counter
	Set     // set<E>
	List    // list<E>
	Map     // map<K, V>
)

var kindNames = [...]string{
	Invalid: "invalid",
	Bool:    "bool",
	Int8:    "int8",
	Int16:   "int16",
	Int32:   "int32",
	Int64:   "int64",
	Uint8:   "uint8",
	Uint16:  "uint16",
	Uint32:  "uint32",
	Uint64:  "uint64",
	Float32: "float32",
	Float64: "float64",
	String:  "string",
	Bytes:   "bytes",
	Ref:     "ref",
	Counter: "counter",
	Set:     "set",
	List:    "list",
	Map:     "map",
}

// String returns the kind as spelled in a schema.
func (k Kind) String() string {
	if k >= 0 && int(k) < len(kindNames) {
		return kindNames[k]
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// IsScalar reports whether k is bool, a number, string or bytes.
func (k Kind) IsScalar() bool { return Bool <= k && k <= Bytes }

// IsInteger reports whether k is a signed or unsigned integer.
func (k Kind) IsInteger() bool { return Int8 <= k && k <= Uint64 }

// IsSigned reports whether k is a signed integer.
func (k Kind) IsSigned() bool { return Int8 <= k && k <= Int64 }

// IsFloat reports whether k is float32 or float64.
func (k Kind) IsFloat() bool { return k == Float32 || k == Float64 }

// IsValue reports whether a field of kind k holds a single value (a scalar
// or a reference) that is read and replaced as a whole.
func (k Kind) IsValue() bool { return k.IsScalar() || k == Ref }

// IsCollection reports whether k is counter, set, list or map.
func (k Kind) IsCollection() bool { return Counter <= k && k <= Map }

// Bits returns the size in bits of an integer or float kind, 0 otherwise.
func (k Kind) Bits() int {
	switch k {
	case Int8, Uint8:
		return 8
	case Int16, Uint16:
		return 16
	case Int32, Uint32, Float32:
		return 32
	case Int64, Uint64, Float64:
		return 64
	}
	return 0
}

// Type is a checked field type.
type Type struct {
	Kind  Kind
	Class *Class // Ref: the referenced class
	Key   *Type  // Map: the key type
	Elem  *Type  // Set and List: the element type; Map: the value type
	Pos   Pos
}

// String returns t as spelled in a schema, e.g. "map<string, ref User>".
func (t *Type) String() string {
	switch t.Kind {
	case Ref:
		return "ref " + t.Class.Name
	case Set, List:
		return t.Kind.String() + "<" + t.Elem.String() + ">"
	case Map:
		return "map<" + t.Key.String() + ", " + t.Elem.String() + ">"
	}
	return t.Kind.String()
}
