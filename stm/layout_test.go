package stm

import (
	"testing"
	"unsafe"
)

// The commit lock and clock must share one cache line: commitState relies
// on Go's 128-byte size class being 128-byte aligned.
func TestCommitStateLayout(t *testing.T) {
	if s := unsafe.Sizeof(commitState{}); s != 128 {
		t.Fatalf("commitState is %d bytes, want 128", s)
	}
	ws := NewWorkspace()
	if p := uintptr(unsafe.Pointer(ws.commit)); p%64 != 0 {
		t.Fatalf("commitState at %#x is not cache-line aligned", p)
	}
}
