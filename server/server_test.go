package server

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/weft-stm/weft/transport"
	"github.com/weft-stm/weft/wire"
)

func TestHandshake(t *testing.T) {
	for _, tc := range []struct {
		name string
		h    func(testing.TB, Config) *harness
	}{{"mem", startMem}, {"tcp", startTCP}} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := openConfig(t)
			cfg.Limits = wire.Limits{MaxOpenShares: 3}
			h := tc.h(t, cfg)
			c := h.dial(7, "")
			w := c.welcome
			if w.Version != wire.ProtocolVersion || w.Session == 0 {
				t.Errorf("welcome %+v", w)
			}
			if want := (wire.Limits{MaxOpenShares: 3}).WithDefaults(); w.Limits != want {
				t.Errorf("limits %+v, want %+v", w.Limits, want)
			}
			c.quiet()
		})
	}
}

func TestHandshakeRefused(t *testing.T) {
	cfg := openConfig(t)
	cfg.Tokens = map[string]string{"s3cret": "alice"}
	h := startMem(t, cfg)
	for _, tc := range []struct {
		name  string
		hello wire.Message
		code  wire.Code
	}{
		{"version too new", &wire.Hello{MinVersion: wire.ProtocolVersion + 1, MaxVersion: wire.ProtocolVersion + 4, Token: "s3cret"}, wire.CodeVersion},
		{"empty range", &wire.Hello{MinVersion: 1, MaxVersion: 0, Token: "s3cret"}, wire.CodeVersion},
		{"wrong token", &wire.Hello{MinVersion: wire.ProtocolVersion, MaxVersion: wire.ProtocolVersion, Token: "guess"}, wire.CodeAuth},
		{"anonymous", &wire.Hello{MinVersion: wire.ProtocolVersion, MaxVersion: wire.ProtocolVersion}, wire.CodeAuth},
		{"no hello", &wire.Ping{Nonce: 1}, wire.CodeUnexpected},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := h.dialRaw()
			c.send(tc.hello)
			c.expectError(tc.code)
		})
	}
	// The right token is accepted, and a newer client range negotiates down.
	c := h.dialRaw()
	c.send(&wire.Hello{MinVersion: 1, MaxVersion: 9, Replica: 1, Token: "s3cret"})
	if w := expect[*wire.Welcome](c); w.Version != wire.ProtocolVersion {
		t.Fatalf("version %d", w.Version)
	}
}

func TestSecondHelloUnexpected(t *testing.T) {
	h := startMem(t, openConfig(t))
	c := h.dial(1, "")
	c.send(&wire.Hello{MinVersion: wire.ProtocolVersion, MaxVersion: wire.ProtocolVersion})
	c.expectError(wire.CodeUnexpected)
}

// setup commits three versions of share "s" after its epoch change: x and
// y created at e0+1, x set at e0+2 and e0+3. It returns the writer client
// with "s" open under handle 1.
func setup(t *testing.T, h *harness) *client {
	t.Helper()
	w := h.dial(1, h.token)
	w.open(1, "s", 0)
	c := w.commit(1, 0, nil, append(createVar(oid(1, 1), 10), createVar(oid(1, 2), 20)...)...)
	w.ack(c.ID)
	for v := range uint64(2) {
		c := w.commit(1, e0+v+1, nil, setVar(oid(1, 1), 11+int64(v)))
		if a := w.ack(c.ID); a.Version != e0+v+2 {
			t.Fatalf("ack version %d", a.Version)
		}
	}
	return w
}

func TestOpenSnapshot(t *testing.T) {
	h := startMem(t, openConfig(t))
	setup(t, h)
	r := h.dial(2, "")
	op, frames := r.open(5, "s", 0)
	if op.Share != 5 || op.Version != e0+3 || op.Transfer != wire.TransferSnapshot || op.Access != wire.AccessWrite {
		t.Fatalf("opened %+v", op)
	}
	for _, f := range frames {
		if f.(*wire.SnapshotChunk).Share != 5 {
			t.Errorf("chunk for handle %d", f.(*wire.SnapshotChunk).Share)
		}
	}
	got := snapshotVars(t, frames)
	if len(got) != 2 || got[oid(1, 1)] != 12 || got[oid(1, 2)] != 20 {
		t.Fatalf("snapshot %v", got)
	}
	// A new, empty share: one empty chunk.
	op, frames = r.open(6, "empty", 0)
	if op.Version != e0 || op.Transfer != wire.TransferSnapshot || len(frames) != 1 || len(frames[0].(*wire.SnapshotChunk).Objects) != 0 {
		t.Fatalf("empty share: %+v %+v", op, frames)
	}
	// A copy ahead of the server is of another history: refused.
	r.send(&wire.OpenShare{Share: 7, Name: "s", Have: 99, Epoch: wire.Epoch{Version: e0, ID: h.srv.epochOf("s").ID}})
	if sc := expect[*wire.ShareClosed](r); sc.Share != 7 || sc.Code != wire.CodeDiverged {
		t.Fatalf("have ahead: %+v", sc)
	}
	r.quiet()
}

func TestOpenDelta(t *testing.T) {
	h := startMem(t, openConfig(t))
	setup(t, h)
	r := h.dial(2, "")
	op, frames := r.open(1, "s", e0+1)
	if op.Version != e0+3 || op.Transfer != wire.TransferDelta {
		t.Fatalf("opened %+v", op)
	}
	var vers []uint64
	for _, f := range frames {
		for _, ch := range f.(*wire.Delta).Changes {
			vers = append(vers, ch.Version)
			if ch.Origin.Replica != 1 || len(ch.Writes) != 1 || ch.Writes[0].Object != oid(1, 1) {
				t.Errorf("change %+v", ch)
			}
		}
	}
	if fmt.Sprint(vers) != fmt.Sprint([]uint64{e0 + 2, e0 + 3}) {
		t.Fatalf("delta versions %v", vers)
	}
	// Up to date: nothing follows.
	op, frames = r.open(2, "s", e0+3)
	if op.Transfer != wire.TransferNone || len(frames) != 0 {
		t.Fatalf("opened %+v %v", op, frames)
	}
	r.quiet()
}

// A delta larger than max_changes comes in several Delta frames.
func TestOpenDeltaSplit(t *testing.T) {
	cfg := openConfig(t)
	cfg.Limits.MaxChanges = 2
	h := startMem(t, cfg)
	w := setup(t, h)
	for v := uint64(3); v < 8; v++ {
		w.ack(w.commit(1, e0+v, nil, setVar(oid(1, 2), int64(v))).ID)
	}
	r := h.dial(2, "")
	op, frames := r.open(1, "s", e0+1)
	if op.Transfer != wire.TransferDelta || op.Version != e0+8 || len(frames) != 4 {
		t.Fatalf("opened %+v, %d frames", op, len(frames))
	}
	next := uint64(e0 + 2)
	for i, f := range frames {
		d := f.(*wire.Delta)
		if d.More != (i < len(frames)-1) || len(d.Changes) > 2 {
			t.Fatalf("delta %d: %+v", i, d)
		}
		for _, ch := range d.Changes {
			if ch.Version != next {
				t.Fatalf("version %d, want %d", ch.Version, next)
			}
			next++
		}
	}
}

func TestCommitBroadcast(t *testing.T) {
	h := startMem(t, openConfig(t))
	a, b := h.dial(1, ""), h.dial(2, "")
	a.open(1, "s", 0)
	b.open(9, "s", 0)
	c := a.commit(1, 0, nil, createVar(oid(1, 1), 5)...)
	if ack := a.ack(c.ID); ack.Version != e0+1 {
		t.Fatalf("ack %+v", ack)
	}
	u := expect[*wire.Update](b)
	if u.Share != 9 || u.Version != e0+1 || u.Origin != c.ID || len(u.Writes) != 2 {
		t.Fatalf("update %+v", u)
	}
	a.quiet() // no Update back to the committer
	b.quiet()

	// A commit that writes nothing is acknowledged and broadcast too, so
	// versions have no gaps.
	c = b.commit(9, e0+1, []wire.Read{readWhole(oid(1, 1), e0+1)})
	b.ack(c.ID)
	if u := expect[*wire.Update](a); u.Version != e0+2 || len(u.Writes) != 0 {
		t.Fatalf("update %+v", u)
	}
}

func TestConflictAborted(t *testing.T) {
	h := startMem(t, openConfig(t))
	a, b := h.dial(1, ""), h.dial(2, "")
	a.open(1, "s", 0)
	a.ack(a.commit(1, 0, nil, createVar(oid(1, 1), 5)...).ID)
	b.open(1, "s", 0)
	// Both read x at version e0+1; a writes first.
	ca := a.commit(1, e0+1, []wire.Read{readWhole(oid(1, 1), e0+1)}, setVar(oid(1, 1), 6))
	a.ack(ca.ID)
	expect[*wire.Update](b)
	cb := b.commit(1, e0+1, []wire.Read{readWhole(oid(1, 1), e0+1)}, setVar(oid(1, 1), 7))
	ab := b.abort(cb.ID, wire.CodeConflict)
	if len(ab.Conflicts) != 1 || ab.Conflicts[0].Object != oid(1, 1) || ab.Conflicts[0].Version != e0+2 {
		t.Fatalf("conflicts %+v", ab.Conflicts)
	}
	a.quiet() // nothing broadcast for an abort
	if v, vars := h.state("s"); v != e0+2 || vars[oid(1, 1)] != 6 {
		t.Fatalf("state v%d %v", v, vars)
	}
	// An invalid write (unknown object) is aborted too.
	b.abort(b.commit(1, 2, nil, setVar(oid(5, 5), 1)).ID, wire.CodeInvalid)
}

func TestPermissions(t *testing.T) {
	cfg := openConfig(t)
	cfg.Tokens = map[string]string{"w": "writer", "r": "reader", "n": "nobody"}
	cfg.DefaultAccess = AccessNone
	cfg.Permissions = map[string]map[string]Access{
		"s":      {"writer": AccessWrite, "reader": AccessRead},
		"feed":   {"writer": AccessWrite, AnyPrincipal: AccessRead},
		AnyShare: {"writer": AccessRead},
	}
	// Readers open them first, and only a writer's open creates a share.
	cfg.Shares = []string{"other", "feed"}
	h := startMem(t, cfg)
	h.token = "w"
	w := h.dial(1, "w")
	w.open(1, "s", 0)
	w.ack(w.commit(1, 0, nil, createVar(oid(1, 1), 1)...).ID)

	r := h.dial(2, "r")
	if op, _ := r.open(1, "s", 0); op.Access != wire.AccessRead {
		t.Fatalf("opened %+v", op)
	}
	n := h.dial(3, "n")
	n.send(&wire.OpenShare{Share: 1, Name: "s"})
	if sc := expect[*wire.ShareClosed](n); sc.Share != 1 || sc.Code != wire.CodeForbidden {
		t.Fatalf("share closed %+v", sc)
	}
	// AnyShare: the writer may only read other shares.
	if op, _ := w.open(2, "other", 0); op.Access != wire.AccessRead {
		t.Fatalf("opened %+v", op)
	}
	// AnyPrincipal: everyone reads the feed, which only the writer
	// writes; a principal's own entry wins.
	for _, c := range []*client{r, n} {
		if op, _ := c.open(3, "feed", 0); op.Access != wire.AccessRead {
			t.Fatalf("replica %d opened the feed %+v", c.replica, op)
		}
	}
	if op, _ := w.open(3, "feed", 0); op.Access != wire.AccessWrite {
		t.Fatalf("the writer opened the feed %+v", op)
	}

	// The reader's write is refused; its state is unchanged.
	c := r.commit(1, 1, nil, setVar(oid(1, 1), 99))
	if a := r.abort(c.ID, wire.CodeForbidden); a.Message == "" {
		t.Error("no message")
	}
	// Nobody's commit on the refused handle: closed.
	n.abort(n.commit(1, 1, nil, setVar(oid(1, 1), 98)).ID, wire.CodeClosed)
	// The writer's commit reaches the reader, not nobody.
	w.ack(w.commit(1, 1, nil, setVar(oid(1, 1), 2)).ID)
	if u := expect[*wire.Update](r); u.Version != e0+2 {
		t.Fatalf("update %+v", u)
	}
	n.quiet()
	w.quiet()
	if v, vars := h.state("s"); v != e0+2 || vars[oid(1, 1)] != 2 {
		t.Fatalf("state v%d %v", v, vars)
	}
}

func TestNotFoundAndLimits(t *testing.T) {
	cfg := openConfig(t)
	cfg.Shares = []string{"a", "b"}
	cfg.NoCreate = true
	cfg.Limits.MaxOpenShares = 1
	h := startMem(t, cfg)
	c := h.dial(1, "")
	c.send(&wire.OpenShare{Share: 1, Name: "nope"})
	if sc := expect[*wire.ShareClosed](c); sc.Code != wire.CodeNotFound {
		t.Fatalf("%+v", sc)
	}
	c.open(1, "a", 0)
	c.send(&wire.OpenShare{Share: 2, Name: "b"})
	if sc := expect[*wire.ShareClosed](c); sc.Code != wire.CodeLimit {
		t.Fatalf("%+v", sc)
	}
	// A handle already open: fatal.
	c.send(&wire.OpenShare{Share: 1, Name: "b"})
	c.expectError(wire.CodeUnexpected)
}

func TestCloseShare(t *testing.T) {
	h := startMem(t, openConfig(t))
	a, b := h.dial(1, ""), h.dial(2, "")
	a.open(1, "s", 0)
	b.open(1, "s", 0)
	b.send(&wire.CloseShare{Share: 1})
	if sc := expect[*wire.ShareClosed](b); sc.Share != 1 || sc.Code != wire.CodeClosed {
		t.Fatalf("%+v", sc)
	}
	b.send(&wire.CloseShare{Share: 4}) // not open: answered all the same
	if sc := expect[*wire.ShareClosed](b); sc.Share != 4 || sc.Code != wire.CodeClosed {
		t.Fatalf("%+v", sc)
	}
	a.ack(a.commit(1, 0, nil, createVar(oid(1, 1), 1)...).ID)
	b.quiet() // no update after close
	b.abort(b.commit(1, 1, nil, setVar(oid(1, 1), 3)).ID, wire.CodeClosed)
	// The handle may be reused; the same share twice in one session
	// gets updates under each handle but the committing one.
	b.open(1, "s", 0)
	b.open(2, "s", 0)
	c := b.commit(1, 1, nil, setVar(oid(1, 1), 4))
	b.ack(c.ID)
	if u := expect[*wire.Update](b); u.Share != 2 || u.Version != e0+2 {
		t.Fatalf("update %+v", u)
	}
	expect[*wire.Update](a)
}

func TestCommitFromAnotherReplica(t *testing.T) {
	h := startMem(t, openConfig(t))
	c := h.dial(1, "")
	c.open(1, "s", 0)
	m := &wire.Commit{ID: wire.CommitID{Replica: 2, Seq: 1}, Share: 1, Writes: createVar(oid(2, 1), 1)}
	c.send(m)
	c.abort(m.ID, wire.CodeForbidden)
}

func TestResentCommit(t *testing.T) {
	h := startMem(t, openConfig(t))
	a, b := h.dial(1, ""), h.dial(2, "")
	a.open(1, "s", 0)
	b.open(1, "s", 0)
	c := a.commit(1, 0, nil, createVar(oid(1, 1), 1)...)
	a.ack(c.ID)
	expect[*wire.Update](b)
	bad := a.commit(1, 1, nil, setVar(oid(9, 9), 1))
	first := a.abort(bad.ID, wire.CodeInvalid)

	// Resent in the same session and after a reconnection: same verdicts,
	// applied once, broadcast once.
	a.send(c)
	if ack := a.ack(c.ID); ack.Version != e0+1 {
		t.Fatalf("ack %+v", ack)
	}
	a.conn.Close()
	a2 := h.dial(1, "")
	a2.open(1, "s", e0+1)
	a2.send(c)
	a2.ack(c.ID)
	a2.send(bad)
	if again := a2.abort(bad.ID, wire.CodeInvalid); again.Message != first.Message {
		t.Fatalf("abort %+v, was %+v", again, first)
	}
	b.quiet()
	if v, _ := h.state("s"); v != e0+1 {
		t.Fatalf("version %d", v)
	}
}

// A malformed frame closes that session with Error protocol; the server,
// the share and the other sessions are untouched.
func TestMalformedFrameTCP(t *testing.T) {
	h := startTCP(t, openConfig(t))
	good := h.dial(1, "")
	good.open(1, "s", 0)
	good.ack(good.commit(1, 0, nil, createVar(oid(1, 1), 1)...).ID)

	for _, tc := range []struct{ name, frame string }{
		{"unknown type", "\x01\x7f"},
		{"truncated commit", "\x03\x20\x01\x01"},
		{"bad varint", "\x03\x04\x80\x00"},
		{"frame too large", "\xff\xff\xff\xff\x0f"},
		{"trailing", "\x03\x04\x01\x00"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			nc, err := net.Dial("tcp", h.addr)
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
			hello := wire.AppendFrame(nil, &wire.Hello{MinVersion: wire.ProtocolVersion, MaxVersion: wire.ProtocolVersion, Replica: 5})
			open := wire.AppendFrame(nil, &wire.OpenShare{Share: 1, Name: "s"})
			if _, err := nc.Write(append(append(hello, open...), tc.frame...)); err != nil {
				t.Fatal(err)
			}
			r := wire.NewReader(bufio.NewReader(nc), wire.Limits{})
			var last wire.Message
			for {
				m, err := r.ReadMessage()
				if err != nil {
					if last == nil || last.Type() != wire.TypeError {
						t.Fatalf("stream ended with %v after %v", err, last)
					}
					break
				}
				last = m
			}
			if e := last.(*wire.Error); e.Code != wire.CodeProtocol || e.Message == "" {
				t.Fatalf("error %+v", e)
			}
		})
	}
	c := good.commit(1, 1, nil, setVar(oid(1, 1), 2))
	if a := good.ack(c.ID); a.Version != e0+2 {
		t.Fatalf("ack %+v", a)
	}
	good.quiet()
}

// A value over the announced max_string_len: Error protocol, state
// unchanged. (Frames over max_frame_size: TestMalformedFrameTCP.)
func TestOversized(t *testing.T) {
	cfg := openConfig(t)
	cfg.Limits.MaxStringLen = 256
	h := startMem(t, cfg)
	other := h.dial(2, "")
	other.open(1, "s", 0)
	c := h.dial(1, "")
	c.open(1, "s", 0)
	c.conn.(transport.LimitSetter).SetLimits(wire.Limits{}) // a client that ignores Welcome
	c.commit(1, 0, nil, createVar(oid(1, 1), 1)[0], wire.Op{Kind: wire.OpVarSet, Object: oid(1, 1), Value: wire.Bytes(make([]byte, 1000))})
	if e := c.expectError(wire.CodeProtocol); !strings.Contains(e.Message, "limit") {
		t.Errorf("error %v", e)
	}
	other.quiet()
	if v, _ := h.state("s"); v != e0 {
		t.Fatalf("version %d", v)
	}
}

func TestPingPong(t *testing.T) {
	h := startMem(t, openConfig(t))
	c := h.dial(1, "")
	for i := range uint64(3) {
		c.send(&wire.Ping{Nonce: i * 1000})
	}
	c.send(&wire.Pong{Nonce: 5}) // unsolicited: ignored
	for i := range uint64(3) {
		if p := expect[*wire.Pong](c); p.Nonce != i*1000 {
			t.Fatalf("pong %d", p.Nonce)
		}
	}
	c.quiet()
	c.send(&wire.Ack{}) // a server-bound message: fatal
	c.expectError(wire.CodeUnexpected)
}

func TestServeAfterShutdown(t *testing.T) {
	h := startMem(t, openConfig(t))
	h.shutdown()
	l, _ := transport.NewNetwork(2).Listen("x")
	if err := h.srv.Serve(context.Background(), l); !errors.Is(err, ErrServerClosed) {
		t.Fatalf("Serve: %v", err)
	}
}

// A commit whose Update would not fit in a frame is aborted with limit.
func TestUpdateTooLarge(t *testing.T) {
	cfg := openConfig(t)
	cfg.Limits.MaxFrameSize = 64
	h := startMem(t, cfg)
	c := h.dial(1, "")
	c.open(1, "s", 0)
	// A 55-byte commit body (it fits), whose Update takes up to 66 bytes:
	// 11 more header bytes (a 5-byte handle and a 10-byte version).
	m := c.commit(1, 0, nil, createVar(oid(1, 1), 1)[0], wire.Op{Kind: wire.OpVarSet, Object: oid(1, 1), Value: wire.String(strings.Repeat("x", 36))})
	c.abort(m.ID, wire.CodeLimit)
	c.quiet()
}

// A replica id belongs to the principal that used it first: another
// principal's Hello with it is refused, since commits under it would take
// the owner's CommitIDs (the review's hijack: claiming the owner's next
// seq, or raising its verdict horizon).
func TestReplicaBoundToPrincipal(t *testing.T) {
	cfg := openConfig(t)
	cfg.Tokens = map[string]string{"a": "alice", "b": "bob"}
	h := startMem(t, cfg)
	alice := h.dial(5, "a")
	alice.open(1, "s", 0)

	bob := h.dialRaw()
	bob.send(&wire.Hello{MinVersion: wire.ProtocolVersion, MaxVersion: wire.ProtocolVersion, Replica: 5, Token: "b", Agent: "test"})
	if e := bob.expectError(wire.CodeAuth); strings.Contains(e.Message, "alice") {
		t.Errorf("the refusal names the owner: %q", e.Message)
	}

	// The owner's commits are untouched, and it may connect again; bob
	// keeps his own replica ids.
	alice.ack(alice.commit(1, 0, nil, createVar(oid(5, 1), 1)...).ID)
	h.dial(5, "a").quiet()
	h.dial(6, "b").quiet()
}

// A reader's commit is refused even without writes: acknowledged, it would
// make a version of the share and an Update to every other session with
// it open, so a reader could flood the writers.
func TestReadOnlyCommitForbidden(t *testing.T) {
	cfg := openConfig(t)
	cfg.Tokens = map[string]string{"w": "writer", "r": "reader"}
	cfg.DefaultAccess = AccessNone
	cfg.Permissions = map[string]map[string]Access{"s": {"writer": AccessWrite, "reader": AccessRead}}
	h := startMem(t, cfg)
	h.token = "w"
	w := h.dial(1, "w")
	w.open(1, "s", 0)
	w.ack(w.commit(1, 0, nil, createVar(oid(1, 1), 1)...).ID)

	r := h.dial(2, "r")
	r.open(1, "s", 0)
	r.abort(r.commit(1, e0+1, []wire.Read{readWhole(oid(1, 1), e0+1)}).ID, wire.CodeForbidden)
	r.abort(r.commit(1, e0+1, nil).ID, wire.CodeForbidden)
	w.quiet() // no Update
	if v, _ := h.state("s"); v != e0+1 {
		t.Fatalf("version %d after the reader's commits, want %d", v, e0+1)
	}
}

// Opening a share that does not exist creates it only with write access:
// a reader gets not_found, and the share is not created (else any reader
// could create shares without end).
func TestReaderDoesNotCreateShares(t *testing.T) {
	cfg := openConfig(t)
	cfg.Tokens = map[string]string{"w": "writer", "r": "reader"}
	cfg.DefaultAccess = AccessNone
	cfg.Permissions = map[string]map[string]Access{AnyShare: {"writer": AccessWrite, "reader": AccessRead}}
	h := startMem(t, cfg)
	r := h.dial(2, "r")
	r.send(&wire.OpenShare{Share: 1, Name: "new"})
	if sc := expect[*wire.ShareClosed](r); sc.Share != 1 || sc.Code != wire.CodeNotFound {
		t.Fatalf("reader's open: %+v, want not_found", sc)
	}
	h.srv.mu.Lock()
	_, created := h.srv.mu.shares["new"]
	h.srv.mu.Unlock()
	if created {
		t.Fatal("the reader's open created the share")
	}
	// The writer creates it; then the reader opens it.
	w := h.dial(1, "w")
	if op, _ := w.open(1, "new", 0); op.Access != wire.AccessWrite {
		t.Fatalf("writer opened %+v", op)
	}
	if op, _ := r.open(1, "new", 0); op.Access != wire.AccessRead || op.Version != e0 {
		t.Fatalf("reader opened %+v", op)
	}
}

// A client that connects to a TLS listener and says nothing is closed
// once HandshakeTimeout has passed: the TLS handshake is bounded by it
// too. (It was not: the session's final Error waited for the handshake,
// and the session for its writer, so the connection stayed open.)
func TestSilentTLSClientClosed(t *testing.T) {
	cert, err := transport.DevCertificate()
	if err != nil {
		t.Fatal(err)
	}
	cfg := openConfig(t)
	cfg.HandshakeTimeout = 100 * time.Millisecond
	l, err := transport.ListenTCP("127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}}, cfg.Limits)
	if err != nil {
		t.Fatal(err)
	}
	h := serveOn(t, cfg, l, nil)
	nc, err := net.Dial("tcp", h.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	// Well past the timeout, and short of FlushTimeout (5 s), after which
	// the session abandons its writes.
	nc.SetReadDeadline(time.Now().Add(3 * time.Second))
	start := time.Now()
	switch n, err := nc.Read(make([]byte, 1)); {
	case errors.Is(err, os.ErrDeadlineExceeded):
		t.Fatalf("still open after %v", time.Since(start).Round(time.Millisecond))
	case err == nil:
		t.Fatalf("read %d bytes, want the end of the stream", n)
	}
}

// flakyListener fails its first n Accepts as a process out of file
// descriptors does, then accepts from the listener it wraps.
type flakyListener struct {
	transport.Listener
	n atomic.Int32
}

func (l *flakyListener) Accept(ctx context.Context) (transport.Conn, error) {
	if l.n.Add(-1) >= 0 {
		return nil, fmt.Errorf("transport: accept: %w",
			&net.OpError{Op: "accept", Net: "tcp", Err: os.NewSyscallError("accept", syscall.EMFILE)})
	}
	return l.Listener.Accept(ctx)
}

// A temporary Accept failure (EMFILE: too many open files) does not end
// Serve: it waits and accepts again, and the sessions that run, and those
// to come, are served.
func TestAcceptRetriesTemporaryErrors(t *testing.T) {
	n := transport.NewNetwork(1)
	ml, err := n.Listen("server")
	if err != nil {
		t.Fatal(err)
	}
	l := &flakyListener{Listener: ml}
	l.n.Store(4)
	h := serveOn(t, openConfig(t), l, n)
	h.dial(1, "").quiet() // accepted after the failures
	select {
	case err := <-h.errc:
		h.shut = true // nothing left to shut down
		t.Fatalf("Serve returned %v", err)
	default:
	}
}

// TestReplicaBindingReleased: a replica id stays bound to its principal
// while the replica has a session and for Config.ReplicaBinding after its
// last; then (within a quarter of that more) the binding is released,
// bound again by the next Hello, so
// a server serving a new replica id per client keeps no binding of the
// ones gone.
func TestReplicaBindingReleased(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := openConfig(t)
		cfg.Tokens = map[string]string{"a": "alice", "b": "bob"}
		cfg.ReplicaBinding = time.Hour
		cfg.Heartbeat = -1 // sessions idle for hours here
		h := startMem(t, cfg)
		bobHello := func(replica uint64) wire.Message {
			bob := h.dialRaw()
			bob.send(&wire.Hello{MinVersion: wire.ProtocolVersion, MaxVersion: wire.ProtocolVersion, Replica: replica, Token: "b", Agent: "test"})
			m := bob.recv()
			bob.conn.Close()
			return m
		}
		held := h.dial(5, "a") // keeps a session for the whole test
		gone := h.dial(6, "a")
		gone.conn.Close()
		for i := range uint64(1000) { // short-lived replicas, a page load each
			c := h.dial(1000+i, "a")
			c.conn.Close()
		}
		synctest.Wait() // every session that closed has ended
		time.Sleep(59 * time.Minute)
		for _, r := range []uint64{5, 6} {
			if e, ok := bobHello(r).(*wire.Error); !ok || e.Code != wire.CodeAuth {
				t.Fatalf("bob's Hello as alice's replica %d before the binding's time: %v, want refused", r, e)
			}
		}
		time.Sleep(17 * time.Minute) // released within a quarter of the time more
		if _, ok := bobHello(5).(*wire.Error); !ok {
			t.Fatal("bob's Hello as a replica alice holds a session of: accepted")
		}
		if w, ok := bobHello(6).(*wire.Welcome); !ok {
			t.Fatalf("bob's Hello as alice's replica gone for an hour: %v, want accepted", w)
		}
		synctest.Wait()
		h.srv.mu.Lock()
		n := len(h.srv.mu.replicas)
		h.srv.mu.Unlock()
		if n > 2 { // 5, held; 6, now bob's
			t.Fatalf("%d replica bindings kept, want 2", n)
		}
		held.quiet()
	})
}
