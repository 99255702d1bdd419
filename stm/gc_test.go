package stm_test

import (
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/weft-stm/weft/stm"
)

// TestOldVersionsReclaimed commits many times to one variable holding a
// large value while a reader comes and goes: the number of linked versions
// stays bounded and the heap stays flat.
func TestOldVersionsReclaimed(t *testing.T) {
	ws := stm.NewWorkspace()
	type big [1024]byte
	v := stm.NewVar(ws, big{})
	fn := func(tx *stm.Tx) error {
		b := v.Get(tx)
		b[0]++
		v.Set(tx, b)
		return nil
	}
	heap := func() uint64 {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc
	}
	run := func(n int) {
		var r *stm.Tx
		for i := 0; i < n; i++ {
			// An old snapshot held for 500 commits pins versions, then goes.
			switch i % 1000 {
			case 0:
				r = ws.BeginReadOnly()
			case 500:
				r.Abort()
			}
			if err := ws.Atomically(ctx, fn); err != nil {
				t.Fatal(err)
			}
		}
		r.Abort()
	}
	run(20000)
	base := heap()
	run(200000) // 200 MB of versions written
	after := heap()
	if n := stm.ChainLen(v); n > 200 {
		t.Errorf("%d versions still linked after the readers ended", n)
	}
	// 200k versions of 1 KiB kept would be 200 MB; allow a few MB of noise.
	if after > base+8<<20 {
		t.Errorf("heap grew from %d to %d bytes", base, after)
	}
}

// TestLongReaderPinsItsSnapshot: a snapshot held across many commits still
// reads its own versions (nothing it needs is reclaimed under it).
func TestLongReaderPinsItsSnapshot(t *testing.T) {
	ws := stm.NewWorkspace()
	v := stm.NewVar(ws, 0)
	r := ws.BeginReadOnly()
	for i := 1; i <= 10000; i++ {
		v.Set(stm.Auto, i)
	}
	if got := v.Get(r); got != 0 {
		t.Fatalf("old snapshot read %d", got)
	}
	r.Abort()
	for i := 0; i < 200; i++ {
		v.Set(stm.Auto, i)
	}
	if n := stm.ChainLen(v); n > 200 {
		t.Errorf("%d versions linked after the reader ended", n)
	}
}

// TestCoreIsPure fails if the core imports anything beyond the standard
// library packages it needs: no network, file system, wall clock or global
// random source.
func TestCoreIsPure(t *testing.T) {
	allowed := map[string]bool{
		"cmp": true, "context": true, "errors": true, "fmt": true, "iter": true, "math": true, "math/bits": true,
		"runtime": true, "slices": true, "sync": true, "sync/atomic": true, "weak": true,
		"github.com/weft-stm/weft/wire": true, // the one module import: wire <- stm
	}
	files, _ := filepath.Glob("*.go")
	fset := token.NewFileSet()
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		af, err := parser.ParseFile(fset, f, src, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range af.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			if !allowed[p] {
				t.Errorf("%s imports %q: the core must stay pure (no net, os, time, math/rand, ...)", f, p)
			}
		}
	}
}
