package schema

import (
	"fmt"
	"sort"
	"strings"
)

// Check resolves and validates a parsed file: name rules, reserved words,
// unique class and field names and ids, reserved ids, known types and
// options. It returns every problem it finds as an ErrorList.
func Check(f *File) (*Schema, error) {
	c := &checker{errs: &errorSink{}, s: &Schema{File: f, Doc: f.Doc}}
	c.check(f)
	if err := c.errs.err(); err != nil {
		return nil, err
	}
	return c.s, nil
}

// Load parses and checks the schema source src of the file filename.
func Load(filename string, src []byte) (*Schema, error) {
	f, err := Parse(filename, src)
	if err != nil {
		return nil, err
	}
	return Check(f)
}

type checker struct {
	errs *errorSink
	s    *Schema
}

func (c *checker) check(f *File) {
	if f.Package != nil {
		c.s.Package = f.Package.Name
		c.checkName(f.Package, "package", packageNameRE, "lower case letters and digits, starting with a letter")
	}
	c.s.Reserved = c.reservedRanges(f.Reserved, "class")

	byName := map[string]*Class{}
	byID := map[uint32]*Class{}
	for _, d := range f.Classes {
		cl := &Class{Schema: c.s, Decl: d, Pos: d.Name.Pos, Name: d.Name.Name, Doc: d.Doc}
		cl.ID = c.id(d.ID, "class")
		cl.Deprecated, cl.DeprecationNote = c.options(d.Options, "class "+cl.Name)
		c.checkName(d.Name, "class", classNameRE, "UpperCamelCase: an upper-case letter, then letters and digits")
		if prev := byName[cl.Name]; prev != nil {
			c.errs.errorf(cl.Pos, "duplicate class name %s (first declared at %s)", cl.Name, prev.Pos)
		} else {
			byName[cl.Name] = cl
		}
		if cl.ID != 0 {
			if prev := byID[cl.ID]; prev != nil {
				c.errs.errorf(d.ID.Pos, "duplicate class id %d: class %s at %s has it", cl.ID, prev.Name, prev.Pos)
			} else {
				byID[cl.ID] = cl
			}
			if r := reservedIn(c.s.Reserved, cl.ID); r != nil {
				c.errs.errorf(d.ID.Pos, "class %s uses class id %d, which is reserved at %s", cl.Name, cl.ID, r.Pos)
			}
		}
		c.s.Classes = append(c.s.Classes, cl)
	}
	// Fields second: a reference may name a class declared further down.
	for _, cl := range c.s.Classes {
		c.checkFields(cl, byName)
	}
}

func (c *checker) checkFields(cl *Class, classes map[string]*Class) {
	d := cl.Decl
	cl.Reserved = c.reservedRanges(d.Reserved, "field")
	byName := map[string]*Field{}
	byID := map[uint32]*Field{}
	for _, fd := range d.Fields {
		f := &Field{Class: cl, Decl: fd, Pos: fd.Name.Pos, Name: fd.Name.Name, Doc: fd.Doc}
		f.ID = c.id(fd.ID, "field")
		f.Deprecated, f.DeprecationNote = c.options(fd.Options, "field "+f.Name)
		c.checkName(fd.Name, "field", fieldNameRE, "lower_snake_case: lower-case letters and digits, words joined by single underscores")
		if prev := byName[f.Name]; prev != nil {
			c.errs.errorf(f.Pos, "duplicate field name %s in class %s (first declared at %s)", f.Name, cl.Name, prev.Pos)
		} else {
			byName[f.Name] = f
		}
		if f.ID != 0 {
			if prev := byID[f.ID]; prev != nil {
				c.errs.errorf(fd.ID.Pos, "duplicate field id %d in class %s: field %s at %s has it", f.ID, cl.Name, prev.Name, prev.Pos)
			} else {
				byID[f.ID] = f
			}
			if r := reservedIn(cl.Reserved, f.ID); r != nil {
				c.errs.errorf(fd.ID.Pos, "field %s uses field id %d, which is reserved in class %s at %s", f.Name, f.ID, cl.Name, r.Pos)
			}
		}
		f.Type = c.resolveType(fd.Type, classes)
		cl.Fields = append(cl.Fields, f)
	}
}

func (c *checker) checkName(id *Ident, what string, re interface{ MatchString(string) bool }, rule string) {
	if !re.MatchString(id.Name) {
		c.errs.errorf(id.Pos, "invalid %s name %s: must be %s", what, id.Name, rule)
		return
	}
	if why, ok := reservedWords[id.Name]; ok {
		c.errs.errorf(id.Pos, "%s name %s is reserved: %s", what, id.Name, why)
	}
}

// id validates a class or field id and returns it, or 0 if invalid.
func (c *checker) id(lit *IntLit, what string) uint32 {
	if lit.Value == 0 || lit.Value > MaxID {
		c.errs.errorf(lit.Pos, "invalid %s id %d: ids go from 1 to %d", what, lit.Value, MaxID)
		return 0
	}
	return uint32(lit.Value)
}

// options validates an option list and returns the deprecation it sets.
func (c *checker) options(opts []*Option, owner string) (deprecated bool, note string) {
	seen := map[string]bool{}
	for _, o := range opts {
		if seen[o.Name.Name] {
			c.errs.errorf(o.Name.Pos, "option %s repeated on %s", o.Name.Name, owner)
			continue
		}
		seen[o.Name.Name] = true
		switch o.Name.Name {
		case "deprecated":
			deprecated = true
			if o.Value != nil {
				note = o.Value.Value
			}
		default:
			c.errs.errorf(o.Name.Pos, "unknown option %s on %s (known options: deprecated)", o.Name.Name, owner)
		}
	}
	return deprecated, note
}

func (c *checker) reservedRanges(decls []*ReservedDecl, what string) []IDRange {
	var rs []IDRange
	for _, d := range decls {
		for _, lit := range d.Ranges {
			from := c.id(lit.From, "reserved "+what)
			to := from
			if lit.To != nil {
				to = c.id(lit.To, "reserved "+what)
				if from != 0 && to != 0 && to < from {
					c.errs.errorf(lit.To.Pos, "invalid reserved range %d to %d: the end is below the start", from, to)
					continue
				}
			}
			if from == 0 || to == 0 {
				continue
			}
			r := IDRange{From: from, To: to, Pos: lit.From.Pos}
			for _, prev := range rs {
				if prev.From <= r.To && r.From <= prev.To {
					c.errs.errorf(r.Pos, "reserved %s ids %s overlap reserved ids %s at %s", what, r, prev, prev.Pos)
				}
			}
			rs = append(rs, r)
		}
	}
	return rs
}

func (c *checker) resolveType(te *TypeExpr, classes map[string]*Class) *Type {
	t := &Type{Pos: te.Pos}
	name := te.Name.Name
	if te.Ref {
		t.Kind = Ref
		t.Class = classes[name]
		if t.Class == nil {
			hint := ""
			if cl := closest(name, sortedKeys(classes)); cl != "" {
				hint = fmt.Sprintf(" (did you mean %s?)", cl)
			}
			c.errs.errorf(te.Name.Pos, "unknown class %s in ref %s%s", name, name, hint)
			return nil
		}
		return t
	}
	coll, isCollection := collectionKinds[name]
	k, isScalar := scalarKinds[name]
	switch {
	case isScalar:
		t.Kind = k
	case isCollection:
		t.Kind = coll.kind
	case classes[name] != nil:
		c.errs.errorf(te.Name.Pos, "unknown type %s (to refer to class %s, write ref %s)", name, name, name)
		return nil
	case typeHints[name] != "":
		c.errs.errorf(te.Name.Pos, "unknown type %s (did you mean %s?)", name, typeHints[name])
		return nil
	default:
		names := sortedKeys(classes)
		for n := range scalarKinds {
			names = append(names, n)
		}
		for n := range collectionKinds {
			names = append(names, n)
		}
		hint := ""
		if near := closest(name, names); classes[near] != nil {
			hint = fmt.Sprintf(" (did you mean ref %s?)", near)
		} else if near != "" {
			hint = fmt.Sprintf(" (did you mean %s?)", near)
		}
		c.errs.errorf(te.Name.Pos, "unknown type %s%s", name, hint)
		return nil
	}
	if want := coll.args; len(te.Args) != want {
		switch {
		case want == 0:
			c.errs.errorf(te.Name.Pos, "type %s takes no type arguments", name)
		case len(te.Args) == 0:
			c.errs.errorf(te.Name.Pos, "type %s needs %s", name, coll.usage)
		default:
			c.errs.errorf(te.Args[0].Pos, "type %s takes %d type argument%s, not %d: %s", name, want, plural(want), len(te.Args), coll.usage)
		}
		return nil
	}
	switch t.Kind {
	case Set:
		t.Elem = c.elemType(te.Args[0], classes, slotSetElem)
	case List:
		t.Elem = c.elemType(te.Args[0], classes, slotValue)
	case Map:
		t.Key = c.elemType(te.Args[0], classes, slotMapKey)
		t.Elem = c.elemType(te.Args[1], classes, slotValue)
		if t.Key == nil {
			return nil
		}
	}
	if (t.Kind == Set || t.Kind == List || t.Kind == Map) && t.Elem == nil {
		return nil
	}
	return t
}

// slot is where a collection holds a type: as a set element, a map key, or
// a list element or map value.
type slot int

const (
	slotValue slot = iota
	slotSetElem
	slotMapKey
)

// elemType resolves the type held by a collection: a scalar or a
// reference, never another collection. A key or set element must compare
// equal to itself in every target language: no float (NaN), no bytes; and a
// map key is a plain value, not a ref.
func (c *checker) elemType(te *TypeExpr, classes map[string]*Class, where slot) *Type {
	t := c.resolveType(te, classes)
	if t == nil {
		return nil
	}
	what := [...]string{slotValue: "element", slotSetElem: "set element", slotMapKey: "map key"}[where]
	if t.Kind.IsCollection() {
		c.errs.errorf(te.Pos, "%s type %s is not allowed: collections hold scalars and refs, not collections", what, t)
		return nil
	}
	switch {
	case where == slotSetElem && (t.Kind.IsFloat() || t.Kind == Bytes):
		c.errs.errorf(te.Pos, "set element type %s is not allowed: set elements are bool, an integer type, string or a ref", t)
		return nil
	case where == slotMapKey && (t.Kind.IsFloat() || t.Kind == Bytes || t.Kind == Ref):
		c.errs.errorf(te.Pos, "map key type %s is not allowed: map keys are bool, an integer type or string", t)
		return nil
	}
	return t
}

// closest returns the candidate closest to name, or "" if none is close.
func closest(name string, candidates []string) string {
	best, bestDist := "", 3
	for _, cand := range candidates {
		d := editDistance(strings.ToLower(name), strings.ToLower(cand))
		if d < bestDist || d == bestDist && best != "" && cand < best {
			best, bestDist = cand, d
		}
	}
	if bestDist > len(name)/2 {
		return ""
	}
	return best
}

// editDistance is the Levenshtein distance between a and b, in bytes.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}
