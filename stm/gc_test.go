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
	"weak"

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

// TestAbandonedWorkspaceCollected: the versions a transaction state keeps
// for its next writes (spares) do not keep a workspace the program
// dropped alive once the state works on another.
func TestAbandonedWorkspaceCollected(t *testing.T) {
	// One processor, so that both workspaces' transactions get the same
	// pooled transaction state, as a goroutine that stays on its
	// processor does.
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	type big [64 << 10]byte
	gone := func() weak.Pointer[stm.Var[big]] {
		ws := stm.NewWorkspace()
		v := stm.NewVar(ws, big{})
		for i := range 1000 {
			if err := ws.Atomically(ctx, func(tx *stm.Tx) error {
				b := v.Get(tx)
				b[0] = byte(i)
				v.Set(tx, b)
				return nil
			}); err != nil {
				t.Fatal(err)
			}
		}
		return weak.Make(v)
	}()
	ws := stm.NewWorkspace()
	w := stm.NewVar(ws, 0)
	// The states stay in use across collections (the pool's victim cache
	// hands them back), as in a program that keeps committing.
	for range 5 {
		for range 200 {
			if err := ws.Atomically(ctx, func(tx *stm.Tx) error { w.Set(tx, w.Get(tx)+1); return nil }); err != nil {
				t.Fatal(err)
			}
		}
		runtime.GC()
	}
	if gone.Value() != nil {
		t.Fatalf("a variable of a dropped workspace is still reachable (the state keeps versions of %d chains)", stm.SparesHeld())
	}
}
