package gogen

import (
	"errors"
	"os"
	"testing"

	"github.com/weft-stm/weft/schema"
)

// FuzzGenerate: every schema that loads either generates Go code that
// parses (Generate formats it, which fails otherwise) or is refused with
// positioned errors (names Go or go vet cannot take): the generator never
// chokes on what Load accepts (names, comments and notes included).
func FuzzGenerate(f *testing.F) {
	for _, file := range []string{"testdata/kitchen.weft", "testdata/social.weft"} {
		src, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(src)
	}
	f.Add([]byte("package u;\n// A doc\nclass A = 1 {\n  x: int32 = 1 [deprecated = \"a note\"];\n}\n"))
	f.Fuzz(func(t *testing.T, src []byte) {
		s, err := schema.Load("f.weft", src)
		if err != nil {
			return
		}
		if _, err := Generate(s, Options{}); err != nil {
			var list schema.ErrorList
			if !errors.As(err, &list) || len(list) == 0 {
				t.Fatalf("a schema that loads does not generate: %v", err)
			}
			for _, e := range list {
				if !e.Pos.IsValid() {
					t.Fatalf("error without a position: %v", e)
				}
			}
		}
	})
}
