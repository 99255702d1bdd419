package wire

import (
	"fmt"
	"strconv"
)

// enumText and parseEnum give the enums below their JSON names.
func enumText(names []string, i int) ([]byte, error) {
	if i < 0 || i >= len(names) || names[i] == "" {
		return nil, fmt.Errorf("wire: no name for value %d", i)
	}
	return []byte(names[i]), nil
}

func parseEnum(names []string, what string, b []byte) (int, error) {
	if i, ok := lookupName(names, string(b)); ok && names[i] != "" {
		return i, nil
	}
	return 0, fmt.Errorf("wire: unknown %s %q", what, b)
}

func enumString(names []string, what string, i int) string {
	if i >= 0 && i < len(names) && names[i] != "" {
		return names[i]
	}
	return what + "(" + strconv.Itoa(i) + ")"
}

// ObjectKind is the built-in kind of an object. Its number is the byte on the
// wire; 0 is not a kind.
type ObjectKind uint8

// Object kinds.
const (
	ObjectRecord  ObjectKind = 1 // fields by field id
	ObjectVar     ObjectKind = 2 // one value (a register)
	ObjectCounter ObjectKind = 3 // an int64 that only adds
	ObjectMap     ObjectKind = 4 // key value -> value
	ObjectSet     ObjectKind = 5 // a set of values
	ObjectList    ObjectKind = 6 // an indexable, appendable sequence of values
)

var objectKindNames = []string{"", "record", "var", "counter", "map", "set", "list"}

func (k ObjectKind) valid() bool { return k >= ObjectRecord && k <= ObjectList }

func (k ObjectKind) String() string { return enumString(objectKindNames, "objectkind", int(k)) }

// MarshalText encodes k as its name ("record", "map", ...).
func (k ObjectKind) MarshalText() ([]byte, error) { return enumText(objectKindNames, int(k)) }

// UnmarshalText parses the name of a kind.
func (k *ObjectKind) UnmarshalText(b []byte) error {
	i, err := parseEnum(objectKindNames, "object kind", b)
	*k = ObjectKind(i)
	return err
}

// ReadKind says what part of an object a Read covers. Its number is the byte
// on the wire.
type ReadKind uint8

// Read kinds.
const (
	// ReadWhole covers the whole object: a var's value, a counter's value, a
	// list's length or a collection's size. A write to any part of the
	// object invalidates it.
	ReadWhole ReadKind = 0
	ReadField ReadKind = 1 // one field of a record (Read.Field)
	ReadKey   ReadKind = 2 // one map key or set element (Read.Key)
	ReadIndex ReadKind = 3 // one list index (Read.Index)
)

var readKindNames = []string{"whole", "field", "key", "index"}

func (k ReadKind) valid() bool { return k <= ReadIndex }

func (k ReadKind) String() string { return enumString(readKindNames, "readkind", int(k)) }

// MarshalText encodes k as its name.
func (k ReadKind) MarshalText() ([]byte, error) { return enumText(readKindNames, int(k)) }

// UnmarshalText parses the name of a read kind.
func (k *ReadKind) UnmarshalText(b []byte) error {
	i, err := parseEnum(readKindNames, "read kind", b)
	*k = ReadKind(i)
	return err
}

// Read is one entry of a commit's read set: a part of an object and the
// share version the reader saw it at. The server aborts the commit if that
// part was written by a commit with a higher version.
type Read struct {
	Object  ObjectID `json:"object"`
	Kind    ReadKind `json:"kind"`
	Field   uint32   `json:"field,omitzero"` // ReadField
	Key     Value    `json:"key,omitzero"`   // ReadKey
	Index   uint64   `json:"index,omitzero,string"`
	Version uint64   `json:"version,string"`
}

// OpKind is the kind of a write. Its number is the byte on the wire; 0 is not
// a kind.
type OpKind uint8

// Op kinds, with the fields of Op each one uses besides Object.
const (
	OpSetField   OpKind = 1  // Field, Value
	OpVarSet     OpKind = 2  // Value
	OpCounterAdd OpKind = 3  // Delta
	OpMapPut     OpKind = 4  // Key, Value
	OpMapDelete  OpKind = 5  // Key
	OpSetAdd     OpKind = 6  // Key (the element)
	OpSetRemove  OpKind = 7  // Key (the element)
	OpListSet    OpKind = 8  // Index, Value
	OpListAppend OpKind = 9  // Values
	OpCreate     OpKind = 10 // Class, ObjectKind, Fields (records only)
	OpRemove     OpKind = 11 // nothing: removes Object from the share
)

var opKindNames = []string{
	"", "set_field", "var_set", "counter_add", "map_put", "map_delete",
	"set_add", "set_remove", "list_set", "list_append", "create", "remove",
}

func (k OpKind) valid() bool { return k >= OpSetField && k <= OpRemove }

func (k OpKind) String() string { return enumString(opKindNames, "opkind", int(k)) }

// MarshalText encodes k as its name ("set_field", "map_put", ...).
func (k OpKind) MarshalText() ([]byte, error) { return enumText(opKindNames, int(k)) }

// UnmarshalText parses the name of an op kind.
func (k *OpKind) UnmarshalText(b []byte) error {
	i, err := parseEnum(opKindNames, "op kind", b)
	*k = OpKind(i)
	return err
}

// Op is one write. Which fields it uses depends on Kind (see the OpKind
// constants); the encoder ignores the others, so they decode as zero.
type Op struct {
	Kind       OpKind     `json:"op"`
	Object     ObjectID   `json:"object"`
	Field      uint32     `json:"field,omitzero"`
	Key        Value      `json:"key,omitzero"`
	Value      Value      `json:"value,omitzero"`
	Delta      int64      `json:"delta,omitzero,string"`
	Index      uint64     `json:"index,omitzero,string"`
	Values     []Value    `json:"values,omitempty"`
	Class      uint32     `json:"class,omitzero"`
	ObjectKind ObjectKind `json:"object_kind,omitzero"`
	Fields     []Field    `json:"fields,omitempty"`
}

// Stored calls f with every value op stores in the share: a field's or
// a var's value, a map entry's key and value, a set element, list
// elements, a created record's fields. (A deleted key or removed element
// is not stored.) It is how a ref an op writes is found.
func (op *Op) Stored(f func(Value)) {
	switch op.Kind {
	case OpCreate:
		for _, fl := range op.Fields {
			f(fl.Value)
		}
	case OpSetField, OpVarSet, OpListSet:
		f(op.Value)
	case OpMapPut:
		f(op.Key)
		f(op.Value)
	case OpSetAdd:
		f(op.Key)
	case OpListAppend:
		for _, v := range op.Values {
			f(v)
		}
	}
}

// Field is a record field's id and value.
type Field struct {
	ID    uint32 `json:"id"`
	Value Value  `json:"value"`
}

// Entry is a map entry.
type Entry struct {
	Key   Value `json:"key"`
	Value Value `json:"value"`
}

// Object is an object's state in a snapshot. Which state fields it uses
// depends on Kind: Fields for a record, Value for a var, Counter for a
// counter, Entries for a map, Elems for a set or a list.
//
// A large object may be split: its id appears again, with the same class and
// kind, later in the same chunk or in a later chunk of the same snapshot, and
// each piece's fields, entries or elements extend the ones before (in order,
// for a list). A var or counter is never split.
type Object struct {
	ID      ObjectID   `json:"id"`
	Class   uint32     `json:"class"`
	Kind    ObjectKind `json:"kind"`
	Fields  []Field    `json:"fields,omitempty"`
	Value   Value      `json:"value,omitzero"`
	Counter int64      `json:"counter,omitzero,string"`
	Entries []Entry    `json:"entries,omitempty"`
	Elems   []Value    `json:"elems,omitempty"`
}

// Change is one committed transaction's writes, as carried by a Delta.
type Change struct {
	Version uint64   `json:"version,string"` // the share version it created
	Origin  CommitID `json:"origin"`         // the commit that made it
	Writes  []Op     `json:"writes,omitempty"`
}

// Epoch names an epoch change of a share: the change a server commits, with
// no writes and the origin {0, ID}, each time it creates the share or loads
// it from its store, before any other. Two histories of a share that split
// (a server restored from a backup, or recreated empty, and committing
// again) differ at the next epoch change, so the last one a client's copy
// holds tells the server whether that copy is in its history (protocol.md
// §9, epochs).
type Epoch struct {
	Version uint64 `json:"version,string"` // the share version the epoch change created
	ID      uint64 `json:"id,string"`      // random, never 0
}

// Access is what a session may do with an open share. Its number is the byte
// on the wire; 0 is not an access.
type Access uint8

// Accesses.
const (
	AccessRead  Access = 1 // read only: commits with writes are aborted (CodeForbidden)
	AccessWrite Access = 2 // read and write
)

var accessNames = []string{"", "read", "write"}

func (a Access) valid() bool { return a == AccessRead || a == AccessWrite }

func (a Access) String() string { return enumString(accessNames, "access", int(a)) }

// MarshalText encodes a as its name.
func (a Access) MarshalText() ([]byte, error) { return enumText(accessNames, int(a)) }

// UnmarshalText parses the name of an access.
func (a *Access) UnmarshalText(b []byte) error {
	i, err := parseEnum(accessNames, "access", b)
	*a = Access(i)
	return err
}

// Transfer says how a server brings a client's copy of a share up to date
// after Opened. Its number is the byte on the wire.
type Transfer uint8

// Transfers.
const (
	TransferNone     Transfer = 0 // the client's version is current: nothing follows
	TransferSnapshot Transfer = 1 // SnapshotChunks follow; they replace the client's copy
	TransferDelta    Transfer = 2 // Deltas follow, from the client's version on
)

var transferNames = []string{"none", "snapshot", "delta"}

func (t Transfer) valid() bool { return t <= TransferDelta }

func (t Transfer) String() string { return enumString(transferNames, "transfer", int(t)) }

// MarshalText encodes t as its name.
func (t Transfer) MarshalText() ([]byte, error) { return enumText(transferNames, int(t)) }

// UnmarshalText parses the name of a transfer.
func (t *Transfer) UnmarshalText(b []byte) error {
	i, err := parseEnum(transferNames, "transfer", b)
	*t = Transfer(i)
	return err
}
