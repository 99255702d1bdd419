package authority

import (
	"go/build"
	"testing"
)

// TestImports keeps the state machine pure: the standard library (but no
// I/O, clock, randomness or concurrency) and package wire only.
func TestImports(t *testing.T) {
	pkg, err := build.ImportDir(".", 0)
	if err != nil {
		t.Fatal(err)
	}
	allowed := map[string]bool{
		"bytes": true, "cmp": true, "encoding/binary": true, "errors": true, "fmt": true,
		"slices": true, "strings": true, "github.com/weft-stm/weft/wire": true,
	}
	for _, imp := range pkg.Imports {
		if !allowed[imp] {
			t.Errorf("authority imports %q; allowed: the standard library's pure packages and wire (no net, os, time, math/rand, sync, ...)", imp)
		}
	}
}
