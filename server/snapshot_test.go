package server

import (
	"net"
	"runtime"
	"runtime/debug"
	"testing"

	"github.com/weft-stm/weft/wire"
)

// Sessions that open a share at the same version share one snapshot of
// it: a snapshot is built whole, under the share's lock, with a Go value
// of some 40 bytes per element of the share (a list of ints takes 2 bytes
// an element on the wire), so a client with read access that opened a
// large share again and again had the server build one per open (the
// review's probe: 150 ms under the share's lock, and 38 MiB, for each
// open of a share of a million list elements). The opens here come from
// one session, whose answers are read as raw frames, so that nothing but
// the server allocates for them; the garbage collector is off meanwhile,
// so that the snapshot, only weakly kept once sent, stays.
func TestSnapshotSharedBetweenOpens(t *testing.T) {
	h := startTCP(t, openConfig(t))
	w := h.dial(1, "")
	w.open(1, "big", 0)
	id := oid(1, 1)
	w.ack(w.commit(1, 0, nil, wire.Op{Kind: wire.OpCreate, Object: id, ObjectKind: wire.ObjectList}).ID)
	vals := make([]wire.Value, 50_000)
	for i := range vals {
		vals[i] = wire.Int(1)
	}
	for range 4 {
		w.ack(w.commit(1, 0, nil, wire.Op{Kind: wire.OpListAppend, Object: id, Values: vals}).ID)
	}

	nc, err := net.Dial("tcp", h.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	r := wire.NewReader(nc, wire.Limits{})
	// opens sends n pairs of OpenShare and CloseShare, then a Ping, and
	// reads frames up to the Pong; it returns the bytes the process
	// allocated meanwhile.
	opens := func(frames []byte, n int) uint64 {
		t.Helper()
		for range n {
			frames = wire.AppendFrame(frames, &wire.OpenShare{Share: 1, Name: "big"})
			frames = wire.AppendFrame(frames, &wire.CloseShare{Share: 1})
		}
		frames = wire.AppendFrame(frames, &wire.Ping{Nonce: 1})
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		if _, err := nc.Write(frames); err != nil {
			t.Fatal(err)
		}
		for {
			body, err := r.ReadFrame()
			if err != nil {
				t.Fatal(err)
			}
			if wire.Type(body[0]) == wire.TypePong {
				break
			}
		}
		runtime.ReadMemStats(&after)
		return after.TotalAlloc - before.TotalAlloc
	}
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	hello := wire.AppendFrame(nil, &wire.Hello{MinVersion: wire.ProtocolVersion, MaxVersion: wire.ProtocolVersion, Replica: 2})
	one := opens(hello, 1) // Welcome, and the first snapshot of the share
	const n = 10
	more := opens(nil, n)
	t.Logf("first %d KiB, %d more %d KiB", one>>10, n, more>>10)
	if more > 3*one {
		t.Errorf("%d more opens at the same version allocated %d KiB, the first %d KiB", n, more>>10, one>>10)
	}
}
