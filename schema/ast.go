package schema

// The syntax tree of a schema file, as written: names are not yet resolved
// and nothing is checked beyond the grammar. Every node but File carries the
// position of its first character. Check turns a *File into a *Schema.

// File is the syntax tree of one schema file.
type File struct {
	Name     string          // file name, as used in positions
	Doc      string          // comment block above the package clause
	Package  *Ident          // the name in "package name;"
	Classes  []*ClassDecl    // in source order
	Reserved []*ReservedDecl // top-level "reserved" declarations: class ids
}

// Ident is a name in the source.
type Ident struct {
	Pos  Pos
	Name string
}

// IntLit is a decimal integer literal (a class or field id).
type IntLit struct {
	Pos   Pos
	Value uint64
}

// StringLit is a double-quoted string literal, unquoted.
type StringLit struct {
	Pos   Pos
	Value string
}

// ClassDecl is "class Name = id [options] { members }".
type ClassDecl struct {
	Pos      Pos    // of the keyword "class"
	Doc      string // comment block right above the declaration
	Name     *Ident
	ID       *IntLit
	Options  []*Option
	Fields   []*FieldDecl    // in source order
	Reserved []*ReservedDecl // field ids reserved in this class
}

// FieldDecl is "name: type = id [options];".
type FieldDecl struct {
	Pos     Pos    // of the field name
	Doc     string // comment block right above the declaration
	Name    *Ident
	Type    *TypeExpr
	ID      *IntLit
	Options []*Option
}

// TypeExpr is a type as written: a name ("string", "counter"), a name with
// type arguments ("map<string, int64>"), or a reference ("ref User").
type TypeExpr struct {
	Pos  Pos
	Ref  bool        // "ref Name": Name is the target class
	Name *Ident      // type name, or the referenced class when Ref is set
	Args []*TypeExpr // type arguments between < and >, if any
}

// Option is one entry of an option list "[name]" or "[name = "value"]".
type Option struct {
	Pos   Pos // of the option name
	Name  *Ident
	Value *StringLit // nil when the option has no value
}

// ReservedDecl is "reserved 6, 8 to 10;": ids that must never be used (again)
// in their scope (the file for class ids, a class for field ids).
type ReservedDecl struct {
	Pos    Pos // of the keyword "reserved"
	Ranges []*IDRangeLit
}

// IDRangeLit is "n" or "n to m" in a reserved declaration. To is nil for a
// single id.
type IDRangeLit struct {
	Pos  Pos // of From
	From *IntLit
	To   *IntLit
}
