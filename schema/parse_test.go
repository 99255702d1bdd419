package schema

import (
	"errors"
	"strings"
	"testing"
)

const social = `// Package social is a small social network.
package social;

// User is a person with an account.
// They have friends.
class User = 1 {
  name: string = 1;
  // friends are mutual.
  friends: set<ref User> = 2; // a trailing comment is not a doc
  posts: counter = 3;
  tags: list<string> = 4;
  scores: map<string, int64> = 5;
  old_email: string = 6 [deprecated = "use emails"];

  reserved 7, 9 to 12;
  best: ref Post = 8;
  to: ref User = 13;
}

reserved 3;

class Post = 2 [deprecated] {
  author: ref User = 1;
  body: bytes = 2;
  likes: map<uint16, ref User> = 3;
}
`

func TestParseAndCheck(t *testing.T) {
	s, err := Load("social.weft", []byte(social))
	if err != nil {
		t.Fatal(err)
	}
	if s.Package != "social" || s.Doc != "Package social is a small social network." {
		t.Errorf("package %q, doc %q", s.Package, s.Doc)
	}
	user, post := s.Class("User"), s.Class("Post")
	if user == nil || post == nil || s.ClassByID(2) != post {
		t.Fatalf("classes: %v", s.Classes)
	}
	if user.Doc != "User is a person with an account.\nThey have friends." {
		t.Errorf("User doc %q", user.Doc)
	}
	if got := user.Pos.String(); got != "social.weft:6:7" {
		t.Errorf("User pos %s", got)
	}
	if !post.Deprecated || post.DeprecationNote != "" {
		t.Errorf("Post deprecated %v %q", post.Deprecated, post.DeprecationNote)
	}
	want := []struct {
		name, typ, doc string
		id             uint32
	}{
		{"name", "string", "", 1},
		{"friends", "set<ref User>", "friends are mutual.", 2},
		{"posts", "counter", "", 3},
		{"tags", "list<string>", "", 4},
		{"scores", "map<string, int64>", "", 5},
		{"old_email", "string", "", 6},
		{"best", "ref Post", "", 8},
		{"to", "ref User", "", 13},
	}
	if len(user.Fields) != len(want) {
		t.Fatalf("%d fields, want %d", len(user.Fields), len(want))
	}
	for i, w := range want {
		f := user.Fields[i]
		if f.Name != w.name || f.Type.String() != w.typ || f.ID != w.id || f.Doc != w.doc || f.Class != user {
			t.Errorf("field %d: %s %s = %d doc %q, want %s %s = %d doc %q", i, f.Name, f.Type, f.ID, f.Doc, w.name, w.typ, w.id, w.doc)
		}
	}
	if f := user.Field("friends"); f.Type.Elem.Class != user {
		t.Errorf("friends element class %v", f.Type.Elem.Class)
	}
	if f := user.FieldByID(8); f.Type.Class != post {
		t.Errorf("best refers to %v", f.Type.Class)
	}
	if f := user.Field("old_email"); !f.Deprecated || f.DeprecationNote != "use emails" {
		t.Errorf("old_email deprecated %v %q", f.Deprecated, f.DeprecationNote)
	}
	for id, reserved := range map[uint32]bool{6: false, 7: true, 8: false, 9: true, 12: true, 13: false} {
		if user.IsReserved(id) != reserved {
			t.Errorf("User.IsReserved(%d) = %v", id, !reserved)
		}
	}
	if got := user.RetiredIDs(); len(got) != 3 || got[0].String() != "6" || got[1].String() != "7" || got[2].String() != "9 to 12" {
		t.Errorf("retired ids %v", got)
	}
	if !s.IsReserved(3) || s.IsReserved(2) {
		t.Errorf("top-level reserved %v", s.Reserved)
	}
	if f := post.Field("likes"); f.Type.Key.Kind != Uint16 || f.Type.Elem.Class != user {
		t.Errorf("likes %s", f.Type)
	}
}

func TestParseErrors(t *testing.T) {
	for _, tt := range []struct {
		name, src, want string
	}{
		{"empty", ``, `x.weft:1:1: expected package clause "package name;", found end of file`},
		{"no package", `class A = 1 {}`, `x.weft:1:1: expected package clause "package name;", found "class"`},
		{"package semicolon", "package p\nclass A = 1 {}", `x.weft:2:1: expected ';' after the package name, found "class"`},
		{"top level", "package p;\nfield: int = 1;", `x.weft:2:1: expected "class" or "reserved", found "field"`},
		{"class id", "package p;\nclass A {}", `x.weft:2:9: expected '=' after class name A, found '{'`},
		{"class id not int", "package p;\nclass A = B {}", `x.weft:2:11: expected class id, found "B"`},
		{"bad int", "package p;\nclass A = 1x {}", `x.weft:2:11: invalid integer 1x (ids are decimal numbers)`},
		{"huge int", "package p;\nclass A = 99999999999999999999 {}", `x.weft:2:11: integer 99999999999999999999 is too large`},
		{"unclosed class", "package p;\nclass A = 1 {\n  a: int64 = 1;\n", `x.weft:4:1: expected '}' to close class A, found end of file`},
		{"field colon", "package p;\nclass A = 1 {\n  a int64 = 1;\n}", `x.weft:3:5: expected ':' after field name a, found "int64"`},
		{"field id", "package p;\nclass A = 1 {\n  a: int64;\n}", `x.weft:3:11: expected '=' after the type of field a, found ';'`},
		{"field semicolon", "package p;\nclass A = 1 {\n  a: int64 = 1\n  b: int64 = 2;\n}", `x.weft:4:3: expected ';' after field a, found "b"`},
		{"type args", "package p;\nclass A = 1 {\n  a: map<string, int64 = 1;\n}", `x.weft:3:24: expected '>' to close the type arguments of map, found '='`},
		{"ref without class", "package p;\nclass A = 1 {\n  a: ref = 1;\n}", `x.weft:3:10: expected class name after "ref", found '='`},
		{"option value", "package p;\nclass A = 1 {\n  a: int64 = 1 [deprecated = yes];\n}", `x.weft:3:30: expected a string value for option deprecated, found "yes"`},
		{"option close", "package p;\nclass A = 1 {\n  a: int64 = 1 [deprecated;\n}", `x.weft:3:27: expected ']' to close the option list, found ';'`},
		{"reserved", "package p;\nclass A = 1 {\n  reserved 1 to;\n}", `x.weft:3:16: expected end of the reserved id range, found ';'`},
		{"bad char", "package p;\nclass A = 1 {\n  a: int64 = 1; $\n}", `x.weft:3:17: unexpected character "$"`},
		{"bad string", "package p;\nclass A = 1 {\n  a: int64 = 1 [deprecated = \"oops];\n}", "x.weft:3:30: string literal not terminated\nx.weft:4:1: expected a string value for option deprecated, found '}'"},
		// Comments and notes go into generated code: UTF-8, no NUL.
		{"comment not UTF-8", "package p;\n// A \xff doc\nclass A = 1 {}", `x.weft:2:1: comment is not valid UTF-8`},
		{"comment NUL", "package p;\n// A \x00 doc\nclass A = 1 {}", `x.weft:2:1: comment holds a NUL character`},
		{"string not UTF-8", "package p;\nclass A = 1 {\n  a: int64 = 1 [deprecated = \"bad\\xffnote\"];\n}", "x.weft:3:30: string literal is not valid UTF-8\nx.weft:3:43: expected a string value for option deprecated, found ']'"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("x.weft", []byte(tt.src))
			if err == nil {
				t.Fatalf("no error, want %s", tt.want)
			}
			if err.Error() != tt.want {
				t.Errorf("got  %s\nwant %s", err, tt.want)
			}
			var e *Error
			if !errors.As(err, &e) || e.Pos.File != "x.weft" {
				t.Errorf("errors.As(*Error) = %v", e)
			}
		})
	}
}

func TestCheckErrors(t *testing.T) {
	for _, tt := range []struct {
		name, src string
		want      []string // one per error, in order
	}{
		{"package name", "package Social;", []string{`1:9: invalid package name Social: must be lower case letters and digits, starting with a letter`}},
		{"package reserved", "package type;", []string{`1:9: package name type is reserved: a keyword in Go`}},
		{"class name", "package p;\nclass user = 1 {}", []string{`2:7: invalid class name user: must be UpperCamelCase: an upper-case letter, then letters and digits`}},
		{"duplicate class", "package p;\nclass A = 1 {}\nclass A = 2 {}", []string{`3:7: duplicate class name A (first declared at x.weft:2:7)`}},
		{"duplicate class id", "package p;\nclass A = 1 {}\nclass B = 1 {}", []string{`3:11: duplicate class id 1: class A at x.weft:2:7 has it`}},
		{"class id zero", "package p;\nclass A = 0 {}", []string{`2:11: invalid class id 0: ids go from 1 to 536870911`}},
		{"class id reserved", "package p;\nreserved 1 to 3;\nclass A = 2 {}", []string{`3:11: class A uses class id 2, which is reserved at x.weft:2:10`}},
		{"field name", "package p;\nclass A = 1 {\n  userName: string = 1;\n}", []string{`3:3: invalid field name userName: must be lower_snake_case: lower-case letters and digits, words joined by single underscores`}},
		{"field name underscores", "package p;\nclass A = 1 {\n  user__name: string = 1;\n  _x: string = 2;\n}", []string{`3:3: invalid field name user__name`, `4:3: invalid field name _x`}},
		{"reserved words", "package p;\nclass A = 1 {\n  type: string = 1;\n  id: int64 = 2;\n  new: bool = 3;\n  class: bool = 4;\n}", []string{
			`3:3: field name type is reserved: a keyword in Go`,
			`4:3: field name id is reserved: every object already has an id`,
			`5:3: field name new is reserved: a keyword in TypeScript`,
			`6:3: field name class is reserved: a keyword in TypeScript`,
		}},
		{"duplicate field", "package p;\nclass A = 1 {\n  a: string = 1;\n  a: int64 = 2;\n}", []string{`4:3: duplicate field name a in class A (first declared at x.weft:3:3)`}},
		{"duplicate field id", "package p;\nclass A = 1 {\n  a: string = 1;\n  b: int64 = 1;\n}", []string{`4:14: duplicate field id 1 in class A: field a at x.weft:3:3 has it`}},
		{"field id reserved", "package p;\nclass A = 1 {\n  reserved 4, 6 to 9;\n  a: string = 7;\n}", []string{`4:15: field a uses field id 7, which is reserved in class A at x.weft:3:15`}},
		{"same field id in two classes", "package p;\nclass A = 1 {\n  a: string = 1;\n}\nclass B = 2 {\n  a: string = 1;\n}", nil},
		{"unknown type", "package p;\nclass A = 1 {\n  a: strin = 1;\n  b: Strung = 2;\n  c: foo = 3;\n}", []string{
			`3:6: unknown type strin (did you mean string?)`,
			`4:6: unknown type Strung (did you mean string?)`,
			`5:6: unknown type foo`,
		}},
		{"type hints", "package p;\nclass A = 1 {\n  a: int = 1;\n  b: A = 2;\n  c: Aa = 3;\n}", []string{
			`3:6: unknown type int (did you mean int64 (integer types have an explicit size)?)`,
			`4:6: unknown type A (to refer to class A, write ref A)`,
			`5:6: unknown type Aa (did you mean ref A?)`,
		}},
		{"unknown ref", "package p;\nclass User = 1 {\n  a: ref Usr = 1;\n  b: ref Nobody = 2;\n  c: ref user = 3;\n}", []string{
			`3:10: unknown class Usr in ref Usr (did you mean User?)`,
			`4:10: unknown class Nobody in ref Nobody`,
			`5:10: unknown class user in ref user (did you mean User?)`,
		}},
		{"type args", "package p;\nclass A = 1 {\n  a: string<int64> = 1;\n  b: set = 2;\n  c: map<string> = 3;\n  d: list<int64, int64> = 4;\n  e: counter<int64> = 5;\n}", []string{
			`3:6: type string takes no type arguments`,
			`4:6: type set needs an element type: set<T>`,
			`5:10: type map takes 2 type arguments, not 1: a key and a value type: map<K, V>`,
			`6:11: type list takes 1 type argument, not 2: an element type: list<T>`,
			`7:6: type counter takes no type arguments`,
		}},
		{"collection elements", "package p;\nclass A = 1 {\n  a: set<float64> = 1;\n  b: set<bytes> = 2;\n  c: map<ref A, int64> = 3;\n  d: map<float32, int64> = 4;\n  e: list<list<string>> = 5;\n  f: map<string, counter> = 6;\n  g: list<bytes> = 7;\n  h: map<bool, float32> = 8;\n  i: set<ref A> = 9;\n}", []string{
			`3:10: set element type float64 is not allowed: set elements are bool, an integer type, string or a ref`,
			`4:10: set element type bytes is not allowed`,
			`5:10: map key type ref A is not allowed: map keys are bool, an integer type or string`,
			`6:10: map key type float32 is not allowed`,
			`7:11: element type list<string> is not allowed: collections hold scalars and refs, not collections`,
			`8:18: element type counter is not allowed`,
		}},
		{"options", "package p;\nclass A = 1 [deprecated, deprecated] {\n  a: string = 1 [optional];\n}", []string{
			`2:26: option deprecated repeated on class A`,
			`3:18: unknown option optional on field a (known options: deprecated)`,
		}},
		{"reserved ranges", "package p;\nclass A = 1 {\n  reserved 9 to 3, 0, 5, 4 to 6;\n}", []string{
			`3:17: invalid reserved range 9 to 3: the end is below the start`,
			`3:20: invalid reserved field id 0`,
			`3:26: reserved field ids 4 to 6 overlap reserved ids 5 at x.weft:3:23`,
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load("x.weft", []byte(tt.src))
			if tt.want == nil {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			var list ErrorList
			if !errors.As(err, &list) {
				t.Fatalf("error %v is not an ErrorList", err)
			}
			if len(list) != len(tt.want) {
				t.Fatalf("got %d errors, want %d:\n%v", len(list), len(tt.want), err)
			}
			for i, w := range tt.want {
				if got := list[i].Error(); !strings.HasPrefix(got, "x.weft:"+w) {
					t.Errorf("error %d:\ngot  %s\nwant x.weft:%s", i, got, w)
				}
			}
		})
	}
}

func TestTooManyErrors(t *testing.T) {
	var b strings.Builder
	b.WriteString("package p;\nclass A = 1 {\n")
	for range 30 {
		b.WriteString("  a: string = 1;\n")
	}
	b.WriteString("}\n")
	_, err := Load("x.weft", []byte(b.String()))
	list, ok := err.(ErrorList)
	if !ok || len(list) != maxErrors+1 {
		t.Fatalf("got %d errors: %v", len(list), err)
	}
	if last := list[maxErrors].Msg; last != "too many errors (38 more)" {
		t.Errorf("last error %q", last)
	}
}
