package server

import (
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/weft-stm/weft/wire"
)

// An Update is encoded once for all the handles open on its share, not
// once per handle number: a session may open a share under
// max_open_shares handles, and sessions choose their own numbers, so a
// client with read access that opened a share under 64 handles (in
// sessions that do not read) had the server encode, and queue, a copy of
// every commit's Update per handle (the review's probe: 4 commits of 1
// MiB, one session of 64 handles, 318 MiB held; 256 handles and 16
// commits fill a session's queue with 4 GiB).
func TestUpdateEncodedOncePerShare(t *testing.T) {
	cfg := openConfig(t)
	cfg.FlushTimeout = 50 * time.Millisecond // the gate is closed after Shutdown
	h := startGated(t, cfg)
	slow := h.dial(1, "") // its Updates wait for the gate
	const handles = 64
	for i := range handles {
		slow.open(wire.ShareHandle(100+i), "s", 0)
	}
	w := h.dial(2, "")
	w.open(1, "s", 0)
	m := oid(2, 1)
	w.ack(w.commit(1, 0, nil, wire.Op{Kind: wire.OpCreate, Object: m, ObjectKind: wire.ObjectMap}).ID)
	const size = 256 << 10
	big := wire.String(strings.Repeat("x", size))
	allocated := func() uint64 {
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.TotalAlloc
	}
	before := allocated()
	w.ack(w.commit(1, 1, nil, wire.Op{Kind: wire.OpMapPut, Object: m, Key: wire.Int(1), Value: big}).ID)
	// The Ack is sent once the commit was handled, its Updates queued.
	if got := allocated() - before; got > 16*size {
		t.Errorf("a commit of %d KiB to a share open under %d handles allocated %d KiB", size>>10, handles, got>>10)
	}
}
