package schema

import (
	"errors"
	"testing"
)

// FuzzLoad checks that any input either loads or fails with positioned
// errors, and never panics.
func FuzzLoad(f *testing.F) {
	f.Add([]byte(social))
	f.Add([]byte(evolveBase))
	f.Add([]byte("package p;\nclass A = 1 {\n  a: map<string, list<int64>> = 1 [deprecated = \"x\\n\"];\n  reserved 1 to 2;\n}\n"))
	f.Add([]byte("package p; reserved 3; class A = 1 [x, y = \"\"] { b: ref B = 2; } class B = 2 {}"))
	f.Fuzz(func(t *testing.T, src []byte) {
		s, err := Load("f.weft", src)
		if err != nil {
			var list ErrorList
			if !errors.As(err, &list) || len(list) == 0 {
				t.Fatalf("error %v is not a non-empty ErrorList", err)
			}
			for _, e := range list {
				if !e.Pos.IsValid() || e.Pos.File != "f.weft" {
					t.Fatalf("error without a position: %v", e)
				}
			}
			return
		}
		for _, c := range s.Classes {
			if c.ID == 0 || c.ID > MaxID || s.Class(c.Name) != c {
				t.Fatalf("class %s id %d", c.Name, c.ID)
			}
			for _, fl := range c.Fields {
				if fl.ID == 0 || fl.Type == nil || fl.Type.String() == "" {
					t.Fatalf("field %s.%s", c.Name, fl.Name)
				}
			}
		}
		if err := CheckEvolution(s, s); err != nil {
			t.Fatalf("a schema cannot replace itself: %v", err)
		}
	})
}
