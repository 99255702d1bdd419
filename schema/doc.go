// Package schema reads Weft schema files (.weft): the classes of a share's
// objects, their fields and the ids that keep them stable as the schema
// evolves. It parses a file into a syntax tree (File), checks it into a
// resolved model (Schema, Class, Field, Type), and checks a new version of a
// schema against the previous one (CheckEvolution). Code generators (package
// schema/gogen for Go) consume the model; they never look at source text.
//
// # A schema
//
//	// Package social is a small social network.
//	package social;
//
//	// User is a person with an account.
//	class User = 1 {
//	  name: string = 1;
//	  friends: set<ref User> = 2;     // references may form cycles
//	  posts: counter = 3;
//	  tags: list<string> = 4;
//	  scores: map<string, int64> = 5;
//	  old_email: string = 6 [deprecated = "use emails"];
//	  emails: list<string> = 8;
//	  reserved 7;                     // a field that was removed
//	}
//
// Every class and every field has a numeric id, unique in its scope (the
// file for classes, the class for fields). Objects and the wire protocol
// name classes and fields by id, never by name, so ids, not names, are what
// must stay stable.
//
// # Grammar
//
// In EBNF, as in the Go specification. White space separates tokens; "//"
// starts a comment that runs to the end of the line. A block of comment
// lines right above a package clause, class or field (no blank line between)
// is its documentation and is copied into generated code.
//
//	File         = "package" PackageName ";" { ClassDecl | ReservedDecl } .
//	ClassDecl    = "class" ClassName "=" ID [ Options ] "{" { FieldDecl | ReservedDecl } "}" .
//	FieldDecl    = FieldName ":" Type "=" ID [ Options ] ";" .
//	ReservedDecl = "reserved" IDRange { "," IDRange } ";" .
//	IDRange      = ID [ "to" ID ] .
//	Options      = "[" Option { "," Option } "]" .
//	Option       = identifier [ "=" string ] .
//	Type         = ScalarType | "ref" ClassName | "counter"
//	             | "set" "<" Type ">" | "list" "<" Type ">" | "map" "<" Type "," Type ">" .
//	ScalarType   = "bool" | "int8" | "int16" | "int32" | "int64"
//	             | "uint8" | "uint16" | "uint32" | "uint64"
//	             | "float32" | "float64" | "string" | "bytes" .
//	PackageName  = lower { lower | digit } .
//	ClassName    = upper { letter | digit } .                 // UpperCamelCase
//	FieldName    = lower { lower | digit } { "_" ( lower | digit ) { lower | digit } } .  // lower_snake_case
//	ID           = decimal digits, from 1 to MaxID .
//	string       = a double-quoted string with Go escapes .
//
// Keywords are only keywords where the grammar expects them, so "to" or
// "ref" can name a field; a few names are reserved instead (below).
//
// # Types
//
//   - Scalars: bool; int8, int16, int32, int64; uint8, uint16, uint32,
//     uint64; float32, float64; string (UTF-8 text); bytes.
//   - ref C: a reference to an object of class C, or none. References may
//     point at any class of the file, the class itself included, so objects
//     form graphs with cycles.
//   - counter: an int64 counter whose increments commute and never conflict.
//   - set<E>: E is bool, an integer type, string or a ref.
//   - list<E>: E is any scalar or a ref.
//   - map<K, V>: K is bool, an integer type or string; V is any scalar or a
//     ref.
//
// Collections do not nest: a map of lists is a map of refs to objects that
// hold a list. Floats and bytes are not set elements or map keys, because
// they do not compare as values in every target language (NaN is not equal
// to itself).
//
// # Options
//
// The only option is deprecated, on a class or a field, with an optional
// note: [deprecated] or [deprecated = "use emails"]. A deprecated field keeps
// its id and is still generated, marked deprecated, so old and new replicas
// keep exchanging it.
//
// # Names
//
// Field names are lower_snake_case and class names UpperCamelCase, so that
// each generator can derive its own spelling without collisions. A field
// or package may not be named after a keyword of Go or TypeScript (type,
// func, class, new, ...) nor "id", which every object already has.
//
// # Evolving a schema
//
// A new version of a schema is checked against the previous one with
// CheckEvolution (weft gen -check-against old.weft):
//
//  1. Add a field with a new id: always allowed.
//  2. Deprecate a field: add [deprecated]; it keeps working.
//  3. Remove a field: delete it and reserve its id ("reserved 6;") so that
//     no later field reuses it. Classes are removed the same way, with a
//     top-level "reserved".
//  4. Change a field's type only by widening it (int32 to int64, uint16 to
//     uint32 or int32, float32 to float64; element-wise in collections), so
//     that every stored value can be read. Replicas still on the previous
//     schema read the narrower type: the serialization layer decides what
//     they do with a value out of their range.
//
// A changed id, an id reused by another class or field, a removed field or
// class whose id is not reserved, a dropped reservation and an incompatible
// type change are errors. Renaming a field is a reuse of its id under
// another name, hence an error: deprecate the old field and add a new one.
//
// # Errors
//
// Parse, Check and CheckEvolution return an ErrorList: each *Error has a
// Pos, printed as file:line:col as compilers do.
package schema
