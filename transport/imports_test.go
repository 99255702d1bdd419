package transport

import (
	"go/build"
	"strings"
	"testing"
)

// TestImports keeps transport below the transaction layers: it may import
// the standard library and wire, nothing else.
func TestImports(t *testing.T) {
	pkg, err := build.ImportDir(".", 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, imp := range pkg.Imports {
		first, _, _ := strings.Cut(imp, "/")
		if strings.Contains(first, ".") && imp != "github.com/weft-stm/weft/wire" {
			t.Errorf("transport imports %q; it knows frames, never transactions", imp)
		}
	}
}
