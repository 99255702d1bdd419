package wire

import (
	"go/build"
	"strings"
	"testing"
)

// TestImports keeps wire a leaf: standard library only, nothing from this
// module.
func TestImports(t *testing.T) {
	pkg, err := build.ImportDir(".", 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, imp := range pkg.Imports {
		first, _, _ := strings.Cut(imp, "/")
		if strings.Contains(first, ".") || strings.HasPrefix(imp, "github.com/weft-stm/") {
			t.Errorf("wire imports %q; it may import only the standard library", imp)
		}
	}
}
