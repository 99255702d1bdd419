package stm

import (
	"fmt"
	"sync/atomic"
)

// ClassID identifies a class across schema versions.
type ClassID uint32

// FieldID identifies a field of a class across schema versions.
type FieldID uint32

// Field is a field of a class: a handle made once (by generated code) and
// used to reach that field's cell in any object of the class.
type Field interface {
	ID() FieldID
	Name() string
	// newCell makes the field's cell for a new object.
	newCell(ws *Workspace, owner *Object) any
	// bind ties the handle to its class and slot; a handle has one class.
	bind(c *Class, slot int)
}

// fieldInfo is the part every field handle shares.
type fieldInfo struct {
	id    FieldID
	name  string
	class *Class
	slot  int
}

func (f *fieldInfo) ID() FieldID  { return f.id }
func (f *fieldInfo) Name() string { return f.name }

func (f *fieldInfo) bind(c *Class, slot int) {
	if f.class != nil {
		panic(fmt.Sprintf("stm: field %q already belongs to class %q", f.name, f.class.name))
	}
	f.class, f.slot = c, slot
}

// cellOf returns o's cell for the field, checking that o has its class.
func (f *fieldInfo) cellOf(o *Object) any {
	if o == nil {
		panic(fmt.Sprintf("stm: field %q used on a nil object", f.name))
	}
	if o.class != f.class {
		panic(fmt.Sprintf("stm: field %q of class %v used on an object of class %q", f.name, f.className(), o.class.name))
	}
	return o.cells[f.slot]
}

func (f *fieldInfo) className() string {
	if f.class == nil {
		return "<none>"
	}
	return f.class.name
}

func ownedBase(ws *Workspace, owner *Object, f *fieldInfo) base {
	return base{ws: ws, id: ws.newID(), owner: owner, field: f.id, fieldName: f.name}
}

// VarField is a field holding one value of type T (a scalar, or a reference
// such as *Object).
type VarField[T any] struct{ fieldInfo }

// NewVarField returns a handle for a value field.
func NewVarField[T any](id FieldID, name string) *VarField[T] {
	return &VarField[T]{fieldInfo{id: id, name: name}}
}

func (f *VarField[T]) newCell(ws *Workspace, owner *Object) any {
	var zero T
	v := &Var[T]{base: ownedBase(ws, owner, &f.fieldInfo)}
	v.ch.init(zero)
	return v
}

// Of returns o's variable for this field.
func (f *VarField[T]) Of(o *Object) *Var[T] { return f.cellOf(o).(*Var[T]) }

// CounterField is a field holding a Counter.
type CounterField struct{ fieldInfo }

// NewCounterField returns a handle for a counter field.
func NewCounterField(id FieldID, name string) *CounterField {
	return &CounterField{fieldInfo{id: id, name: name}}
}

func (f *CounterField) newCell(ws *Workspace, owner *Object) any {
	c := &Counter{base: ownedBase(ws, owner, &f.fieldInfo)}
	c.ch.init(0)
	return c
}

// Of returns o's counter for this field.
func (f *CounterField) Of(o *Object) *Counter { return f.cellOf(o).(*Counter) }

// MapField is a field holding a Map.
type MapField[K comparable, V any] struct{ fieldInfo }

// NewMapField returns a handle for a map field.
func NewMapField[K comparable, V any](id FieldID, name string) *MapField[K, V] {
	return &MapField[K, V]{fieldInfo{id: id, name: name}}
}

func (f *MapField[K, V]) newCell(ws *Workspace, owner *Object) any {
	m := &Map[K, V]{}
	m.initMap(ws)
	m.base = ownedBase(ws, owner, &f.fieldInfo)
	return m
}

// Of returns o's map for this field.
func (f *MapField[K, V]) Of(o *Object) *Map[K, V] { return f.cellOf(o).(*Map[K, V]) }

// SetField is a field holding a Set.
type SetField[T comparable] struct{ fieldInfo }

// NewSetField returns a handle for a set field.
func NewSetField[T comparable](id FieldID, name string) *SetField[T] {
	return &SetField[T]{fieldInfo{id: id, name: name}}
}

func (f *SetField[T]) newCell(ws *Workspace, owner *Object) any {
	s := &Set[T]{}
	s.m.initMap(ws)
	s.m.base = ownedBase(ws, owner, &f.fieldInfo)
	s.m.set = true
	return s
}

// Of returns o's set for this field.
func (f *SetField[T]) Of(o *Object) *Set[T] { return f.cellOf(o).(*Set[T]) }

// ListField is a field holding a List.
type ListField[T any] struct{ fieldInfo }

// NewListField returns a handle for a list field.
func NewListField[T any](id FieldID, name string) *ListField[T] {
	return &ListField[T]{fieldInfo{id: id, name: name}}
}

func (f *ListField[T]) newCell(ws *Workspace, owner *Object) any {
	l := NewList[T](ws)
	l.base = ownedBase(ws, owner, &f.fieldInfo)
	return l
}

// Of returns o's list for this field.
func (f *ListField[T]) Of(o *Object) *List[T] { return f.cellOf(o).(*List[T]) }

// Class describes a kind of record: its name, its stable id and its fields.
type Class struct {
	name   string
	id     ClassID
	fields []Field
}

// NewClass returns a class with the given fields. It panics if two fields
// share an id or a name, or a field handle already belongs to a class: a
// class is declared once, at package initialisation, by generated code.
func NewClass(name string, id ClassID, fields ...Field) *Class {
	c := &Class{name: name, id: id, fields: fields}
	ids := map[FieldID]bool{}
	names := map[string]bool{}
	for i, f := range fields {
		if ids[f.ID()] || names[f.Name()] {
			panic(fmt.Sprintf("stm: class %q: field %d %q declared twice", name, f.ID(), f.Name()))
		}
		ids[f.ID()], names[f.Name()] = true, true
		f.bind(c, i)
	}
	return c
}

// Name returns the class's name.
func (c *Class) Name() string { return c.name }

// ID returns the class's stable id.
func (c *Class) ID() ClassID { return c.id }

// Fields returns the class's fields in declaration order.
func (c *Class) Fields() []Field { return c.fields }

// Object is a record: an instance of a Class whose fields are transactional
// cells. Conflicts are per field. Generated classes wrap *Object.
type Object struct {
	base
	class   *Class
	cells   []any         // one per field: *Var[T], *Counter, *Map[K,V], *Set[T] or *List[T]
	unknown unknownFields // fields of other versions of the class (record.go)
	// partSubs counts the subscriptions to its fields and collections
	// (Observed).
	partSubs atomic.Int32
}

// NewObject returns a new object of class c in ws with every field at its
// zero value. The object is visible to others only once a committed
// transaction stores a reference to it.
func NewObject(ws *Workspace, c *Class) *Object {
	o := &Object{base: base{ws: ws, id: ws.newID()}, class: c, cells: make([]any, len(c.fields))}
	for i, f := range c.fields {
		o.cells[i] = f.newCell(ws, o)
	}
	return o
}

// Class returns the object's class.
func (o *Object) Class() *Class { return o.class }

// Workspace returns the object's workspace.
func (o *Object) Workspace() *Workspace { return o.ws }
