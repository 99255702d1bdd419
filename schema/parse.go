package schema

import (
	"fmt"
	"strconv"
)

// Parse parses the schema source src, read from the file named filename (used
// only in positions). On a syntax error it returns the errors found so far as
// an ErrorList, and a nil *File. It does not check names, types or ids: Check
// does.
func Parse(filename string, src []byte) (*File, error) {
	p := &parser{errs: &errorSink{}}
	p.sc = newScanner(filename, src, p.errs)
	p.next()
	f := p.parseFile(filename)
	if err := p.errs.err(); err != nil {
		return nil, err
	}
	return f, nil
}

type parser struct {
	sc   *scanner
	errs *errorSink
	tok  token // current token
	peek *token
}

// bailout stops the parse at the first syntax error; Parse recovers it.
type bailout struct{}

func (p *parser) next() {
	if p.peek != nil {
		p.tok, p.peek = *p.peek, nil
		return
	}
	p.tok = p.sc.next()
}

func (p *parser) lookahead() token {
	if p.peek == nil {
		t := p.sc.next()
		p.peek = &t
	}
	return *p.peek
}

func (p *parser) failf(pos Pos, format string, args ...any) {
	p.errs.errorf(pos, format, args...)
	panic(bailout{})
}

func (p *parser) is(text string) bool {
	return (p.tok.kind == tokPunct || p.tok.kind == tokIdent) && p.tok.text == text
}

// expect consumes the punctuation or keyword text, or fails naming what it
// was looking for (context says where, e.g. "after the field type").
func (p *parser) expect(text, context string) token {
	if !p.is(text) {
		what := "'" + text + "'"
		if text[0] >= 'a' && text[0] <= 'z' {
			what = fmt.Sprintf("%q", text)
		}
		p.failf(p.tok.pos, "expected %s %s, found %s", what, context, p.tok)
	}
	t := p.tok
	p.next()
	return t
}

func (p *parser) ident(what string) *Ident {
	if p.tok.kind != tokIdent {
		p.failf(p.tok.pos, "expected %s, found %s", what, p.tok)
	}
	id := &Ident{Pos: p.tok.pos, Name: p.tok.text}
	p.next()
	return id
}

func (p *parser) intLit(what string) *IntLit {
	if p.tok.kind != tokInt {
		p.failf(p.tok.pos, "expected %s, found %s", what, p.tok)
	}
	v, err := strconv.ParseUint(p.tok.text, 10, 64)
	if err != nil {
		if ne, ok := err.(*strconv.NumError); ok && ne.Err == strconv.ErrRange {
			p.failf(p.tok.pos, "integer %s is too large", p.tok.text)
		}
		p.failf(p.tok.pos, "invalid integer %s (ids are decimal numbers)", p.tok.text)
	}
	lit := &IntLit{Pos: p.tok.pos, Value: v}
	p.next()
	return lit
}

func (p *parser) parseFile(filename string) (f *File) {
	f = &File{Name: filename}
	defer func() {
		if r := recover(); r != nil {
			if _, ok := r.(bailout); !ok {
				panic(r)
			}
		}
	}()
	if !p.is("package") {
		p.failf(p.tok.pos, "expected package clause \"package name;\", found %s", p.tok)
	}
	f.Doc = p.tok.doc
	p.next()
	f.Package = p.ident("package name")
	p.expect(";", "after the package name")
	for p.tok.kind != tokEOF {
		switch {
		case p.is("class"):
			f.Classes = append(f.Classes, p.parseClass())
		case p.is("reserved"):
			f.Reserved = append(f.Reserved, p.parseReserved())
		default:
			p.failf(p.tok.pos, "expected \"class\" or \"reserved\", found %s", p.tok)
		}
	}
	return f
}

func (p *parser) parseClass() *ClassDecl {
	c := &ClassDecl{Pos: p.tok.pos, Doc: p.tok.doc}
	p.next() // "class"
	c.Name = p.ident("class name")
	p.expect("=", "after class name "+c.Name.Name)
	c.ID = p.intLit("class id")
	if p.is("[") {
		c.Options = p.parseOptions()
	}
	p.expect("{", "to open the class body")
	for !p.is("}") {
		if p.tok.kind == tokEOF {
			p.failf(p.tok.pos, "expected '}' to close class %s, found end of file", c.Name.Name)
		}
		if p.is("reserved") && p.lookahead().kind == tokInt {
			c.Reserved = append(c.Reserved, p.parseReserved())
			continue
		}
		c.Fields = append(c.Fields, p.parseField())
	}
	p.next() // "}"
	return c
}

func (p *parser) parseField() *FieldDecl {
	fd := &FieldDecl{Pos: p.tok.pos, Doc: p.tok.doc}
	fd.Name = p.ident("field name or '}'")
	p.expect(":", "after field name "+fd.Name.Name)
	fd.Type = p.parseType()
	p.expect("=", "after the type of field "+fd.Name.Name)
	fd.ID = p.intLit("field id")
	if p.is("[") {
		fd.Options = p.parseOptions()
	}
	p.expect(";", "after field "+fd.Name.Name)
	return fd
}

func (p *parser) parseType() *TypeExpr {
	t := &TypeExpr{Pos: p.tok.pos}
	if p.is("ref") {
		p.next()
		t.Ref = true
		t.Name = p.ident("class name after \"ref\"")
		return t
	}
	t.Name = p.ident("type")
	if p.is("<") {
		p.next()
		for {
			t.Args = append(t.Args, p.parseType())
			if !p.is(",") {
				break
			}
			p.next()
		}
		p.expect(">", "to close the type arguments of "+t.Name.Name)
	}
	return t
}

func (p *parser) parseOptions() []*Option {
	var opts []*Option
	p.next() // "["
	for {
		o := &Option{Pos: p.tok.pos, Name: p.ident("option name")}
		if p.is("=") {
			p.next()
			if p.tok.kind != tokString {
				p.failf(p.tok.pos, "expected a string value for option %s, found %s", o.Name.Name, p.tok)
			}
			o.Value = &StringLit{Pos: p.tok.pos, Value: p.tok.text}
			p.next()
		}
		opts = append(opts, o)
		if !p.is(",") {
			break
		}
		p.next()
	}
	p.expect("]", "to close the option list")
	return opts
}

func (p *parser) parseReserved() *ReservedDecl {
	r := &ReservedDecl{Pos: p.tok.pos}
	p.next() // "reserved"
	for {
		rg := &IDRangeLit{Pos: p.tok.pos, From: p.intLit("reserved id")}
		if p.is("to") {
			p.next()
			rg.To = p.intLit("end of the reserved id range")
		}
		r.Ranges = append(r.Ranges, rg)
		if !p.is(",") {
			break
		}
		p.next()
	}
	p.expect(";", "after the reserved ids")
	return r
}
