package schema

import (
	"strings"
	"testing"
)

const evolveBase = `package p;

reserved 9;

class User = 1 {
  name: string = 1;
  age: int32 = 2;
  friends: set<ref User> = 3;
  scores: map<uint16, float32> = 4;
  best: ref User = 5;
  email: string = 6;
  reserved 7;
}

class Post = 2 {
  body: string = 1;
}
`

func TestCheckEvolution(t *testing.T) {
	prev, err := Load("old.weft", []byte(evolveBase))
	if err != nil {
		t.Fatal(err)
	}
	// edit applies replacements (old, new, old, new...) to evolveBase.
	edit := func(pairs ...string) string {
		return strings.NewReplacer(pairs...).Replace(evolveBase)
	}
	for _, tt := range []struct {
		name string
		next string
		want []string // error prefixes after "new.weft:", in order
	}{
		{"unchanged", evolveBase, nil},
		{"add field", edit("  reserved 7;", "  reserved 7;\n  bio: string = 8;"), nil},
		{"deprecate field", edit("email: string = 6;", "email: string = 6 [deprecated];"), nil},
		{"remove field with reservation", edit("  email: string = 6;\n", "", "reserved 7;", "reserved 6 to 7;"), nil},
		{"remove class with reservation", edit("class Post = 2 {\n  body: string = 1;\n}\n", "", "reserved 9;", "reserved 2, 9;"), nil},
		{"widen", edit("age: int32", "age: int64", "float32>", "float64>", "map<uint16", "map<int32"), nil},
		{"remove field", edit("  email: string = 6;\n", ""), []string{
			`5:7: field User.email (id 6, at old.weft:11:3) was removed without reserving its id: keep it with [deprecated], or add "reserved 6;" to class User`,
		}},
		{"remove class", edit("class Post = 2 {\n  body: string = 1;\n}\n", ""), []string{
			`1:9: class Post (id 2, at old.weft:15:7) was removed without reserving its id`,
		}},
		{"change field id", edit("age: int32 = 2;", "age: int32 = 8;"), []string{
			`7:16: field User.age changed its id from 2 (at old.weft:7:3) to 8: ids never change`,
		}},
		{"change class id", edit("class Post = 2", "class Post = 3"), []string{
			`15:14: class Post changed its id from 2 (at old.weft:15:7) to 3: ids never change`,
		}},
		{"reuse field id", edit("  email: string = 6;", "  mail: string = 6;"), []string{
			`5:7: field User.email (id 6, at old.weft:11:3) was removed without reserving its id`,
			`11:18: field id 6 of User.mail was the id of field email (at old.weft:11:3): ids are never reused`,
		}},
		{"reuse reserved field id", edit("  reserved 7;", "  bio: string = 7;"), []string{
			`12:17: field id 7 of User.bio was reserved (at old.weft:12:12): ids are never reused`,
		}},
		{"drop field reservation", edit("  reserved 7;\n", ""), []string{
			`5:7: field id 7 of class User was reserved (at old.weft:12:12) and must stay reserved`,
		}},
		{"reuse class id", edit("reserved 9;", "reserved 2;", "class Post = 2 {", "class Note = 9 {"), []string{
			`15:14: class id 9 of Note was reserved (at old.weft:3:10): ids are never reused`,
		}},
		{"rename class", edit("class Post = 2", "class Note = 2"), []string{
			`1:9: class Post (id 2, at old.weft:15:7) was removed without reserving its id`,
			`15:14: class id 2 of Note was the id of class Post (at old.weft:15:7): ids are never reused`,
		}},
		{"drop class reservation", edit("reserved 9;\n", ""), []string{
			`1:9: class id 9 was reserved (at old.weft:3:10) and must stay reserved`,
		}},
		{"incompatible types", edit("name: string", "name: bytes", "age: int32", "age: int16", "set<ref User>", "set<ref Post>", "uint16, float32", "uint16, float32", "best: ref User", "best: list<ref User>"), []string{
			`6:9: field User.name changed its type from string (at old.weft:6:9) to bytes, which cannot hold every string value`,
			`7:8: field User.age changed its type from int32 (at old.weft:7:8) to int16, which cannot hold every int32 value`,
			`8:12: field User.friends changed its type from set<ref User> (at old.weft:8:12) to set<ref Post>`,
			`10:9: field User.best changed its type from ref User (at old.weft:10:9) to list<ref User>`,
		}},
		{"signedness", edit("map<uint16", "map<int16", "age: int32", "age: uint64"), []string{
			`7:8: field User.age changed its type from int32 (at old.weft:7:8) to uint64`,
			`9:11: field User.scores changed its type from map<uint16, float32> (at old.weft:9:11) to map<int16, float32>`,
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			next, err := Load("new.weft", []byte(tt.next))
			if err != nil {
				t.Fatal(err)
			}
			err = CheckEvolution(prev, next)
			if tt.want == nil {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			list, ok := err.(ErrorList)
			if !ok {
				t.Fatalf("error %v is not an ErrorList", err)
			}
			if len(list) != len(tt.want) {
				t.Fatalf("got %d errors, want %d:\n%v", len(list), len(tt.want), err)
			}
			for i, w := range tt.want {
				if got := list[i].Error(); !strings.HasPrefix(got, "new.weft:"+w) {
					t.Errorf("error %d:\ngot  %s\nwant new.weft:%s", i, got, w)
				}
			}
		})
	}
}

func TestCanRead(t *testing.T) {
	scalar := func(k Kind) *Type { return &Type{Kind: k} }
	for _, tt := range []struct {
		prev, next Kind
		ok         bool
	}{
		{Int8, Int64, true}, {Int64, Int8, false}, {Uint8, Int16, true}, {Uint16, Int16, false},
		{Uint32, Uint64, true}, {Int32, Uint64, false}, {Float32, Float64, true},
		{Float64, Float32, false}, {Int32, Float64, false}, {String, Bytes, false},
		{Bytes, String, false}, {Bool, Int8, false}, {Counter, Int64, false},
	} {
		if got := canRead(scalar(tt.prev), scalar(tt.next)); got != tt.ok {
			t.Errorf("canRead(%s, %s) = %v", tt.prev, tt.next, got)
		}
	}
}
