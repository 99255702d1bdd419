package gogen

import (
	"bytes"
	"fmt"
	"go/format"
	"go/token"
	"path/filepath"
	"slices"
	"strings"

	"github.com/weft-stm/weft/schema"
)

const stmPath = "github.com/weft-stm/weft/stm"

// Options configures Generate.
type Options struct {
	// Package is the Go package name of the generated file. By default it
	// is the schema's package name.
	Package string
	// Source names the schema in the "Code generated" header. By default it
	// is the base name of the schema file.
	Source string
}

// Generate returns the Go source for the classes of s, gofmt-formatted. It
// fails with a schema.ErrorList if two generated names would collide or a
// name would not suit Go (see the package documentation).
func Generate(s *schema.Schema, opts Options) ([]byte, error) {
	if opts.Package == "" {
		opts.Package = s.Package
	}
	if !token.IsIdentifier(opts.Package) || opts.Package == "_" {
		return nil, fmt.Errorf("gogen: invalid Go package name %q", opts.Package)
	}
	if opts.Source == "" && s.File != nil {
		opts.Source = filepath.Base(s.File.Name)
	}
	g := &generator{s: s, opts: opts, wrappers: map[*schema.Class]*wrapperSet{}}
	g.findWrappers()
	if err := g.checkNames(); err != nil {
		return nil, err
	}
	g.file()
	out, err := format.Source(g.buf.Bytes())
	if err != nil {
		// A bug in this package, not in the schema.
		return nil, fmt.Errorf("gogen: generated code does not parse: %v\n%s", err, g.buf.Bytes())
	}
	return out, nil
}

type generator struct {
	s        *schema.Schema
	opts     Options
	buf      bytes.Buffer
	wrappers map[*schema.Class]*wrapperSet
}

// wrapperSet says which typed collection views of a class's references the
// schema uses: set<ref C>, list<ref C>, map<K, ref C>.
type wrapperSet struct {
	set, list, mapV bool
}

func (g *generator) findWrappers() {
	for _, c := range g.s.Classes {
		for _, f := range c.Fields {
			t := f.Type
			if !t.Kind.IsCollection() || t.Elem == nil || t.Elem.Kind != schema.Ref {
				continue
			}
			w := g.wrappers[t.Elem.Class]
			if w == nil {
				w = &wrapperSet{}
				g.wrappers[t.Elem.Class] = w
			}
			switch t.Kind {
			case schema.Set:
				w.set = true
			case schema.List:
				w.list = true
			case schema.Map:
				w.mapV = true
			}
		}
	}
}

// checkNames reports generated Go names that would collide, or that Go
// gives a meaning of its own.
func (g *generator) checkNames() error {
	global := newNameTable()
	for _, c := range g.s.Classes {
		what := "class " + c.Name
		global.declare(c.Name, c.Pos, "the type of "+what)
		global.declare(c.Name+"Class", c.Pos, "the class variable of "+what)
		global.declare(c.Name+"Fields", c.Pos, "the field handles of "+what)
		global.declare("New"+c.Name, c.Pos, "the constructor of "+what)
		global.declare("As"+c.Name, c.Pos, "the conversion to "+what)
		if w := g.wrappers[c]; w != nil {
			if w.set {
				global.declare(c.Name+"Set", c.Pos, "the set type of "+what+" references")
			}
			if w.list {
				global.declare(c.Name+"List", c.Pos, "the list type of "+what+" references")
			}
			if w.mapV {
				global.declare(c.Name+"Map", c.Pos, "the map type of "+what+" references")
			}
		}

		methods := newNameTable()
		for name, what := range objectNames {
			methods.names[name] = nameUse{c.Pos, what}
		}
		for _, f := range c.Fields {
			name := FieldName(f)
			what := "field " + f.Name
			if use, ok := objectNames[name]; ok {
				methods.errorf(f.Pos, "the getter of %s would be named %s, like %s", what, name, use)
				continue
			}
			if vetMethods[name] {
				methods.errorf(f.Pos, "the getter of %s would be named %s, a method name go vet reserves for a standard signature", what, name)
				continue
			}
			decls := [][2]string{{name, "the getter"}, {"Set" + name, "the setter"}, {"Observe" + name, "the observer"}}
			if !f.Type.Kind.IsValue() {
				decls = slices.Delete(decls, 1, 2) // no setter
			}
			for _, d := range decls {
				if !methods.declare(d[0], f.Pos, d[1]+" of "+what) {
					break // one collision per field says enough
				}
			}
		}
		global.errs = append(global.errs, methods.errs...)
	}
	if len(global.errs) > 0 {
		return global.errs
	}
	return nil
}

// p prints one line of source.
func (g *generator) p(format string, args ...any) {
	fmt.Fprintf(&g.buf, format, args...)
	g.buf.WriteByte('\n')
}

// doc prints a doc comment made of paragraphs; each is wrapped unless it
// comes from the schema (then its lines are kept as written).
func (g *generator) doc(paragraphs ...string) {
	first := true
	for _, para := range paragraphs {
		if para == "" {
			continue
		}
		if !first {
			g.p("//")
		}
		first = false
		for _, line := range strings.Split(para, "\n") {
			if line == "" {
				g.p("//")
			} else {
				g.p("// %s", line)
			}
		}
	}
}

// wrap breaks text into lines of at most about 76 characters.
func wrap(text string) string {
	var b strings.Builder
	n := 0
	for i, word := range strings.Fields(text) {
		if i > 0 {
			if n+1+len(word) > 76 {
				b.WriteByte('\n')
				n = 0
			} else {
				b.WriteByte(' ')
				n++
			}
		}
		b.WriteString(word)
		n += len(word)
	}
	return b.String()
}

func (g *generator) file() {
	g.p("// Code generated by weft gen from %s. DO NOT EDIT.", g.opts.Source)
	g.p("")
	g.p("package %s", g.opts.Package)
	g.p("")
	var std []string
	if g.uses(func(t *schema.Type) bool { return t.Kind == schema.Bytes }) {
		std = append(std, "bytes")
	}
	if len(g.wrappers) > 0 {
		std = append(std, "iter")
	}
	if len(g.s.Classes) == 0 {
		return // nothing uses stm
	}
	if len(std) == 0 {
		g.p("import %q", stmPath)
	} else {
		g.p("import (")
		for _, path := range std {
			g.p("%q", path)
		}
		g.p("")
		g.p("%q", stmPath)
		g.p(")")
	}
	for _, c := range g.s.Classes {
		g.class(c)
	}
	for _, c := range g.s.Classes {
		if w := g.wrappers[c]; w != nil {
			g.wrapperTypes(c, w)
		}
	}
}

// uses reports whether a field type (not an element type) of the schema
// satisfies pred.
func (g *generator) uses(pred func(*schema.Type) bool) bool {
	for _, c := range g.s.Classes {
		for _, f := range c.Fields {
			if pred(f.Type) {
				return true
			}
		}
	}
	return false
}

var goScalars = map[schema.Kind]string{
	schema.Bool: "bool",
	schema.Int8: "int8", schema.Int16: "int16", schema.Int32: "int32", schema.Int64: "int64",
	schema.Uint8: "uint8", schema.Uint16: "uint16", schema.Uint32: "uint32", schema.Uint64: "uint64",
	schema.Float32: "float32", schema.Float64: "float64",
	schema.String: "string", schema.Bytes: "[]byte",
}

// cellType is the Go type stm stores for a value type: a reference is a
// plain *stm.Object.
func cellType(t *schema.Type) string {
	if t.Kind == schema.Ref {
		return "*stm.Object"
	}
	return goScalars[t.Kind]
}

// apiType is the Go type the generated methods show for a value type: a
// reference is the typed wrapper of its class.
func apiType(t *schema.Type) string {
	if t.Kind == schema.Ref {
		return t.Class.Name
	}
	return goScalars[t.Kind]
}

// handle returns the Go type of a field's handle and the expression that
// makes it.
func handle(f *schema.Field) (typ, ctor string) {
	t := f.Type
	var kind, args string
	switch t.Kind {
	case schema.Counter:
		return "*stm.CounterField", fmt.Sprintf("stm.NewCounterField(%d, %q)", f.ID, f.Name)
	case schema.Set:
		kind, args = "Set", cellType(t.Elem)
	case schema.List:
		kind, args = "List", cellType(t.Elem)
	case schema.Map:
		kind, args = "Map", cellType(t.Key)+", "+cellType(t.Elem)
	default:
		kind, args = "Var", cellType(t)
	}
	return fmt.Sprintf("*stm.%sField[%s]", kind, args), fmt.Sprintf("stm.New%sField[%s](%d, %q)", kind, args, f.ID, f.Name)
}

// collectionType returns the Go type a collection field's accessor returns,
// and how it wraps the stm collection cell.
func collectionType(t *schema.Type) (typ, wrapOpen, wrapClose string) {
	if t.Kind == schema.Counter {
		return "*stm.Counter", "", ""
	}
	if t.Elem.Kind == schema.Ref {
		name := t.Elem.Class.Name
		switch t.Kind {
		case schema.Set:
			return name + "Set", name + "Set{", "}"
		case schema.List:
			return name + "List", name + "List{", "}"
		default:
			typ := fmt.Sprintf("%sMap[%s]", name, goScalars[t.Key.Kind])
			return typ, typ + "{", "}"
		}
	}
	switch t.Kind {
	case schema.Set:
		return fmt.Sprintf("*stm.Set[%s]", apiType(t.Elem)), "", ""
	case schema.List:
		return fmt.Sprintf("*stm.List[%s]", apiType(t.Elem)), "", ""
	default:
		return fmt.Sprintf("*stm.Map[%s, %s]", goScalars[t.Key.Kind], apiType(t.Elem)), "", ""
	}
}

// deprecation returns the "Deprecated:" paragraph of a class or field, or "".
func deprecation(deprecated bool, note, what string) string {
	if !deprecated {
		return ""
	}
	if note == "" {
		note = "the schema marks " + what + " deprecated."
	}
	return wrap("Deprecated: " + note)
}

func (g *generator) class(c *schema.Class) {
	name := c.Name
	recv := receiver(c)
	dep := deprecation(c.Deprecated, c.DeprecationNote, "class "+name)

	g.p("")
	doc := c.Doc
	if !strings.HasPrefix(doc, name+" ") {
		doc = wrap(fmt.Sprintf("%s is an object of schema class %s.", name, name)) + "\n\n" + doc
	}
	g.doc(doc, wrap(fmt.Sprintf("%s wraps an *stm.Object of class %sClass (schema id %d). Its getters and setters take the transaction to run in; a setter given stm.Auto runs as an automatic transaction of its own, committed asynchronously (on an object of a client's share it panics: write those in the share's transactions). The zero %s is a nil reference, whose methods panic.", name, name, c.ID, name)), dep)
	g.p("type %s struct {", name)
	g.p("*stm.Object")
	g.p("}")

	g.p("")
	g.doc(wrap(fmt.Sprintf("%sClass is the class of %s objects: schema class %s, id %d.", name, name, name, c.ID)))
	if len(c.Fields) == 0 {
		g.p("var %sClass = stm.NewClass(%q, %d)", name, name, c.ID)
	} else {
		g.p("var %sClass = stm.NewClass(%q, %d,", name, name, c.ID)
		for _, f := range c.Fields {
			g.p("%sFields.%s,", name, FieldName(f))
		}
		g.p(")")
	}

	g.p("")
	g.doc(wrap(fmt.Sprintf("%sFields holds the field handles of %sClass, for code that reaches the fields of an *stm.Object without the methods of %s.", name, name, name)))
	g.fieldsVar(c)

	g.p("")
	g.doc(wrap(fmt.Sprintf("New%s creates an object of class %s in ws, every field at its zero value. Other transactions see it once a committed transaction stores a reference to it.", name, name)), dep)
	g.p("func New%s(ws *stm.Workspace) %s {", name, name)
	g.p("return %s{stm.NewObject(ws, %sClass)}", name, name)
	g.p("}")

	g.p("")
	g.doc(wrap(fmt.Sprintf("As%s returns o typed as %s, or false if o is nil or of another class than %sClass.", name, name, name)))
	g.p("func As%s(o *stm.Object) (%s, bool) {", name, name)
	g.p("if o == nil || o.Class() != %sClass {", name)
	g.p("return %s{}, false", name)
	g.p("}")
	g.p("return %s{o}, true", name)
	g.p("}")

	g.p("")
	g.doc(wrap(fmt.Sprintf("Observe calls fn after each commit that changes a field of %s, with the ids of the fields that changed in stm.Change.Fields. Calls are coalesced when fn is slow and never block a commit. Close the subscription to stop.", recv)))
	g.p("func (%s %s) Observe(fn func(stm.Change)) *stm.Subscription {", recv, name)
	g.p("return %s.Workspace().Subscribe(%s.Object, fn)", recv, recv)
	g.p("}")

	for _, f := range c.Fields {
		g.field(c, f, recv)
	}
}

func (g *generator) fieldsVar(c *schema.Class) {
	if len(c.Fields) == 0 {
		g.p("var %sFields = struct{}{}", c.Name)
		return
	}
	g.p("var %sFields = struct {", c.Name)
	for _, f := range c.Fields {
		typ, _ := handle(f)
		g.p("%s %s // %s", FieldName(f), typ, declString(f))
	}
	g.p("}{")
	for _, f := range c.Fields {
		_, ctor := handle(f)
		g.p("%s: %s,", FieldName(f), ctor)
	}
	g.p("}")
}

// declString returns a field declaration as written in a schema.
func declString(f *schema.Field) string {
	s := fmt.Sprintf("%s: %s = %d", f.Name, f.Type, f.ID)
	if f.Deprecated {
		s += " [deprecated]"
	}
	return s
}

func (g *generator) field(c *schema.Class, f *schema.Field, recv string) {
	name := FieldName(f)
	cell := fmt.Sprintf("%sFields.%s.Of(%s.Object)", c.Name, name, recv)
	dep := deprecation(f.Deprecated, f.DeprecationNote, "field "+f.Name)
	t := f.Type

	if t.Kind.IsValue() {
		typ := apiType(t)
		g.p("")
		switch {
		case t.Kind == schema.Ref:
			g.doc(wrap(fmt.Sprintf("%s returns the %s that field %s of %s refers to, as read by tx (with stm.Auto, the latest committed value), or the zero %s if none.", name, typ, f.Name, recv, typ)), f.Doc, dep)
			g.p("func (%s %s) %s(tx *stm.Tx) %s {", recv, c.Name, name, typ)
			g.p("return %s{%s.Get(tx)}", typ, cell)
		case t.Kind == schema.Bytes:
			g.doc(wrap(fmt.Sprintf("%s returns a copy of field %s of %s, as read by tx (with stm.Auto, the latest committed value).", name, f.Name, recv)), f.Doc, dep)
			g.p("func (%s %s) %s(tx *stm.Tx) []byte {", recv, c.Name, name)
			g.p("return bytes.Clone(%s.Get(tx))", cell)
		default:
			g.doc(wrap(fmt.Sprintf("%s returns field %s of %s, as read by tx (with stm.Auto, the latest committed value).", name, f.Name, recv)), f.Doc, dep)
			g.p("func (%s %s) %s(tx *stm.Tx) %s {", recv, c.Name, name, typ)
			g.p("return %s.Get(tx)", cell)
		}
		g.p("}")

		g.p("")
		auto := "With stm.Auto as tx, it runs as an automatic transaction of its own, committed asynchronously; on an object of a client's share that panics."
		switch t.Kind {
		case schema.Ref:
			g.doc(wrap(fmt.Sprintf("Set%s makes field %s of %s refer to v (to none if v is the zero %s) in tx. %s", name, f.Name, recv, typ, auto)), dep)
			g.p("func (%s %s) Set%s(tx *stm.Tx, v %s) {", recv, c.Name, name, typ)
			g.p("%s.Set(tx, v.Object)", cell)
		case schema.Bytes:
			g.doc(wrap(fmt.Sprintf("Set%s sets field %s of %s to a copy of v in tx. %s", name, f.Name, recv, auto)), dep)
			g.p("func (%s %s) Set%s(tx *stm.Tx, v []byte) {", recv, c.Name, name)
			g.p("%s.Set(tx, bytes.Clone(v))", cell)
		default:
			g.doc(wrap(fmt.Sprintf("Set%s sets field %s of %s to v in tx. %s", name, f.Name, recv, auto)), dep)
			g.p("func (%s %s) Set%s(tx *stm.Tx, v %s) {", recv, c.Name, name, typ)
			g.p("%s.Set(tx, v)", cell)
		}
		g.p("}")
	} else {
		typ, open, close := collectionType(t)
		what := map[schema.Kind]string{schema.Counter: "counter", schema.Set: "set", schema.List: "list", schema.Map: "map"}[t.Kind]
		g.p("")
		typeNote := ""
		if t.Kind != schema.Counter {
			typeNote = " (" + t.String() + ")"
		}
		g.doc(wrap(fmt.Sprintf("%s returns the %s in field %s of %s%s. Its methods take the transaction to run in, or stm.Auto to run as an automatic transaction.", name, what, f.Name, recv, typeNote)), f.Doc, dep)
		g.p("func (%s %s) %s() %s {", recv, c.Name, name, typ)
		g.p("return %s%s%s", open, cell, close)
		g.p("}")
	}

	g.p("")
	g.doc(wrap(fmt.Sprintf("Observe%s calls fn after each commit that changes field %s of %s. Calls are coalesced when fn is slow and never block a commit. Close the subscription to stop.", name, f.Name, recv)), dep)
	g.p("func (%s %s) Observe%s(fn func(stm.Change)) *stm.Subscription {", recv, c.Name, name)
	g.p("return %s.Workspace().Subscribe(%s, fn)", recv, cell)
	g.p("}")
}
