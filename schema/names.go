package schema

import "regexp"

// Name rules. Class names are UpperCamelCase and field names lower_snake_case
// so that every generator can derive its own spelling (Go's UserID, a
// TypeScript userId) without two names colliding.
var (
	packageNameRE = regexp.MustCompile(`^[a-z][a-z0-9]*$`)
	classNameRE   = regexp.MustCompile(`^[A-Z][A-Za-z0-9]*$`)
	fieldNameRE   = regexp.MustCompile(`^[a-z][a-z0-9]*(_[a-z0-9]+)*$`)
)

// reservedWords are the lower-case names no field and no package may take:
// keywords of the languages generated from a schema (Go today, TypeScript
// next) and the names every object already has. The value says why.
var reservedWords = map[string]string{}

func init() {
	for _, w := range []string{
		"break", "case", "chan", "const", "continue", "default", "defer",
		"else", "fallthrough", "for", "func", "go", "goto", "if", "import",
		"interface", "map", "package", "range", "return", "select",
		"struct", "switch", "type", "var",
	} {
		reservedWords[w] = "a keyword in Go"
	}
	for _, w := range []string{
		"await", "break", "case", "catch", "class", "const", "constructor",
		"continue", "debugger", "default", "delete", "do", "else", "enum",
		"export", "extends", "false", "finally", "for", "function", "if",
		"implements", "import", "in", "instanceof", "interface", "let",
		"new", "null", "package", "private", "protected", "prototype",
		"public", "return", "static", "super", "switch", "this", "throw",
		"true", "try", "typeof", "var", "void", "while", "with", "yield",
	} {
		if reservedWords[w] != "" {
			reservedWords[w] = "a keyword in Go and TypeScript"
		} else {
			reservedWords[w] = "a keyword in TypeScript"
		}
	}
	reservedWords["id"] = "every object already has an id"
}

// scalarKinds maps the spelling of each scalar type to its kind.
var scalarKinds = map[string]Kind{}

func init() {
	for k := Bool; k <= Bytes; k++ {
		scalarKinds[k.String()] = k
	}
}

// typeHints answer the usual mistakes in a type name.
var typeHints = map[string]string{
	"int":     "int64 (integer types have an explicit size)",
	"uint":    "uint64 (integer types have an explicit size)",
	"byte":    "uint8",
	"float":   "float32 or float64",
	"double":  "float64",
	"boolean": "bool",
	"str":     "string",
	"text":    "string",
	"blob":    "bytes",
	"array":   "list<T>",
	"vector":  "list<T>",
	"dict":    "map<K, V>",
}

// collectionKinds describes the collection types: their kind, how many type
// arguments they take, and how they are written.
var collectionKinds = map[string]struct {
	kind  Kind
	args  int
	usage string
}{
	"counter": {Counter, 0, "counter"},
	"set":     {Set, 1, "an element type: set<T>"},
	"list":    {List, 1, "an element type: list<T>"},
	"map":     {Map, 2, "a key and a value type: map<K, V>"},
}
