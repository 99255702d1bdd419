package server

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/weft-stm/weft/store/memstore"
	"github.com/weft-stm/weft/transport"
	"github.com/weft-stm/weft/wire"
)

// What a session asks while its share has changes waiting for their sync:
// the answers keep the order the protocol gives them, and a handle closed
// meanwhile stays closed.

// gatedStore is a memstore whose syncs of one share wait until gate is
// closed, and then fail with fail if it is set.
type gatedStore struct {
	*memstore.Store
	share string
	gate  chan struct{}
	fail  error
	loads atomic.Int32
}

func newGatedStore(share string, fail error) *gatedStore {
	return &gatedStore{Store: memstore.New(), share: share, gate: make(chan struct{}), fail: fail}
}

func (s *gatedStore) Append(share string, ch wire.Change) (func() error, error) {
	wait, err := s.Store.Append(share, ch)
	if err != nil || share != s.share || ch.Origin.Replica == 0 {
		// An epoch change, on the share's first open, is not gated: the
		// tests gate commits.
		return wait, err
	}
	return func() error {
		<-s.gate
		if s.fail != nil {
			return s.fail
		}
		return wait()
	}, nil
}

func (s *gatedStore) Load(fn func(string, uint64, []wire.Object, []wire.Change) error) error {
	s.loads.Add(1)
	return s.Store.Load(fn)
}

// ping sends a Ping and returns its nonce: the Pong, answered at once,
// shows the server has read everything sent before.
func (c *client) ping() uint64 {
	c.nonce++
	c.send(&wire.Ping{Nonce: c.nonce})
	return c.nonce
}

// The answer to CloseShare comes after the answers to the commits sent
// before it, however long their sync takes (protocol.md, Closing a share).
func TestCloseShareAnsweredAfterEarlierCommits(t *testing.T) {
	st := newGatedStore("s", nil)
	_, c := startStored(t, st, 0)
	c.open(1, "s", 0)
	cm := c.commit(1, 0, nil, createVar(oid(1, 1), 0)...)
	c.send(&wire.CloseShare{Share: 1})
	n := c.ping()
	if p := expect[*wire.Pong](c); p.Nonce != n { // nothing before it
		t.Fatalf("pong %d, want %d", p.Nonce, n)
	}
	close(st.gate)
	c.ack(cm.ID)
	if sc := expect[*wire.ShareClosed](c); sc.Share != 1 || sc.Code != wire.CodeClosed {
		t.Fatalf("got %+v, want ShareClosed closed for handle 1", sc)
	}
}

// A handle closed while its transfer waits for a sync is not opened by
// the transfer once the sync lands: the session gets the ShareClosed only,
// and then nothing of the share under the handle it reuses.
func TestCloseShareDuringWaitingOpen(t *testing.T) {
	st := newGatedStore("s", nil)
	h, a := startStored(t, st, 0)
	a.open(1, "s", 0)
	x := oid(1, 1)
	c1 := a.commit(1, 0, nil, createVar(x, 0)...) // waits for the gate
	a.quiet()

	b := h.dial(2, "")
	b.send(&wire.OpenShare{Share: 7, Name: "s"}) // the transfer waits behind c1
	b.send(&wire.CloseShare{Share: 7})
	n := b.ping()
	if p := expect[*wire.Pong](b); p.Nonce != n {
		t.Fatalf("pong %d, want %d", p.Nonce, n)
	}
	close(st.gate)
	a.ack(c1.ID)
	if sc := expect[*wire.ShareClosed](b); sc.Share != 7 || sc.Code != wire.CodeClosed {
		t.Fatalf("got %+v, want ShareClosed closed for handle 7", sc)
	}
	b.open(7, "t", 0) // free again: now share "t"
	c2 := a.commit(1, 1, nil, setVar(x, 5))
	a.ack(c2.ID)
	b.quiet() // not an Update of "s" under handle 7
}

// When the store fails, a session whose open waited gets ShareClosed
// internal, and every session may reuse the handle of the failed share.
func TestFailedShareFreesHandles(t *testing.T) {
	st := newGatedStore("s", errors.New("disk full"))
	h, a := startStored(t, st, 0)
	a.open(1, "s", 0)
	a.commit(1, 0, nil, createVar(oid(1, 1), 0)...) // waits, then fails
	a.quiet()
	b := h.dial(2, "")
	b.send(&wire.OpenShare{Share: 1, Name: "s"}) // waits behind it
	b.quiet()
	close(st.gate)
	for _, c := range []*client{a, b} {
		if sc := expect[*wire.ShareClosed](c); sc.Share != 1 || sc.Code != wire.CodeInternal {
			t.Fatalf("replica %d got %+v, want ShareClosed internal for handle 1", c.replica, sc)
		}
	}
	for _, c := range []*client{a, b} {
		c.send(&wire.OpenShare{Share: 1, Name: "s"})
		switch m := c.recv().(type) {
		case *wire.Opened: // restored from the store
		case *wire.ShareClosed: // still leaving the server
			if m.Code != wire.CodeInternal {
				t.Fatalf("replica %d reopening: %+v", c.replica, m)
			}
		default:
			t.Fatalf("replica %d reopening handle 1 after ShareClosed internal: %T %+v", c.replica, m, m)
		}
	}
}

// Shutdown answers the commits decided before reading stopped, after
// their sync, before it closes the sessions.
func TestShutdownWaitsForSync(t *testing.T) {
	st := newGatedStore("s", nil)
	h, c := startStored(t, st, 0)
	c.open(1, "s", 0)
	cm := c.commit(1, 0, nil, createVar(oid(1, 1), 0)...)
	c.quiet()
	// The sync lands only once Shutdown waits for it: a Shutdown that
	// did not would close the session first.
	h.srv.hookSyncWait = func() { close(st.gate) }
	h.shut = true
	done := make(chan error, 1)
	go func() { done <- h.srv.Shutdown(context.Background()) }()
	c.ack(cm.ID)
	c.expectError(wire.CodeShutdown)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// Opening a share the server does not hold looks for it in the store only
// if its store failed (the others were all loaded at start).
func TestOpenUnknownShareSkipsStore(t *testing.T) {
	st := newGatedStore("s", nil)
	cfg := openConfig(t)
	cfg.Store, cfg.NoCreate = st, true
	h := startMem(t, cfg)
	c := h.dial(1, "") // served: the store was read once, to restore it
	loads := st.loads.Load()
	for i := range 5 {
		c.send(&wire.OpenShare{Share: wire.ShareHandle(i + 1), Name: "nope"})
		if sc := expect[*wire.ShareClosed](c); sc.Code != wire.CodeNotFound {
			t.Fatalf("got %+v, want ShareClosed not_found", sc)
		}
	}
	if got := st.loads.Load() - loads; got != 0 {
		t.Fatalf("5 opens of an unknown share read the store %d times", got)
	}
}

// Before Welcome both sides apply the default limits (protocol.md section
// 5): over TCP too, a Hello within them is accepted, even beyond the
// server's own (which apply from Welcome on).
func TestHelloUnderDefaultLimits(t *testing.T) {
	cfg := openConfig(t)
	cfg.Limits.MaxNameLen = 8
	h := startTCP(t, cfg)
	c := h.dialRaw()
	c.send(&wire.Hello{MinVersion: wire.ProtocolVersion, MaxVersion: wire.ProtocolVersion, Replica: 1, Agent: "weft-go/0.1.0"}) // 13 bytes: within the default 256
	if m := c.recv(); m.Type() != wire.TypeWelcome {
		t.Fatalf("got %T %+v, want Welcome", m, m)
	}
}

// An Abort is sent within the session's limits (protocol.md section 5),
// however long what it would quote: a conflict on a key of the longest
// string a read may carry is answered, not turned into a fatal error.
func TestConflictAbortFits(t *testing.T) {
	h := startMem(t, openConfig(t))
	c := h.dial(1, "")
	c.open(1, "s", 0)
	key := wire.Bytes(make([]byte, 200<<10)) // under max_string_len; quoted, it is not
	m := c.commit(1, 0, []wire.Read{{Object: oid(9, 9), Kind: wire.ReadKey, Key: key}})
	a := c.abort(m.ID, wire.CodeConflict)
	if len(a.Conflicts) != 1 {
		t.Fatalf("%d conflicts, want the read", len(a.Conflicts))
	}
	c.quiet()
}

// At most max_pending_commits commits per session may be unanswered: with
// a store, those whose Acks wait for their sync. The server aborts the
// excess with code limit (protocol.md section 9), and takes commits again
// once answers went out.
func TestPendingLimit(t *testing.T) {
	st := newGatedStore("s", nil)
	cfg := openConfig(t)
	cfg.Store = st
	cfg.Limits.MaxPendingCommits = 2
	h := startMem(t, cfg)
	c := h.dial(1, "")
	c.open(1, "s", 0)
	c1 := c.commit(1, 0, nil, createVar(oid(1, 1), 0)...)
	c2 := c.commit(1, 0, nil, setVar(oid(1, 1), 1))
	c3 := c.commit(1, 0, nil, setVar(oid(1, 1), 2))
	c.abort(c3.ID, wire.CodeLimit)
	close(st.gate)
	c.ack(c1.ID)
	c.ack(c2.ID)
	c.ack(c.commit(1, 2, nil, setVar(oid(1, 1), 3)).ID)
}

// fitAbort keeps what a client needs of an Abort that does not fit: a
// short message, and the conflicts that fit, the one with the highest
// version first (the client waits for it before running again).
func TestFitAbortKeepsTheHighestConflict(t *testing.T) {
	lim := wire.Limits{MaxFrameSize: 1024}.WithDefaults()
	s := &session{lim: lim}
	var cs []wire.Read
	for i := range 40 {
		cs = append(cs, wire.Read{Object: oid(1, uint64(i)), Kind: wire.ReadKey,
			Key: wire.String(strings.Repeat("k", 100)), Version: uint64(i * 7 % 40)})
	}
	a := &wire.Abort{ID: wire.CommitID{Replica: 1, Seq: 1}, Code: wire.CodeConflict, Message: strings.Repeat("m", 5000), Conflicts: cs}
	s.fitAbort(a)
	if err := wire.Check(a, lim); err != nil {
		t.Fatalf("still does not fit: %v", err)
	}
	if len(a.Conflicts) == 0 || a.Conflicts[0].Version != 39 {
		t.Fatalf("conflicts %v, want the one of version 39 first", a.Conflicts)
	}
	if cs[0].Version != 0 {
		t.Fatal("fitAbort changed the verdict's own conflicts")
	}
}

// loadFailing is a memstore whose Load fails.
type loadFailing struct{ *memstore.Store }

func (loadFailing) Load(func(string, uint64, []wire.Object, []wire.Change) error) error {
	return errors.New("unreadable")
}

// A server made by New (not Open) on a store that holds shares serves
// them as the store holds them: its first Serve restores them, or
// returns the error if it cannot, and never serves a share from scratch
// over what the store holds.
func TestNewRestoresOnServe(t *testing.T) {
	st := memstore.New()
	h, c := startStored(t, st, 0)
	first, _ := c.open(1, "s", 0) // at its epoch change
	c.ack(c.commit(1, 0, nil, createVar(oid(1, 1), 7)...).ID)
	h.shutdown()

	_, c = startStored(t, st, 0) // New, then Serve
	// The commit, then this life's epoch change.
	if op, _ := c.open(1, "s", 0); op.Version != first.Version+2 || op.Epoch.Version != op.Version || op.Epoch.ID == first.Epoch.ID {
		t.Fatalf("share s opened at version %d, epoch %+v, after a restart on its store; want version %d, a new epoch change there (the first life's: %+v)",
			op.Version, op.Epoch, first.Version+2, first.Epoch)
	}

	cfg := openConfig(t)
	cfg.Store = loadFailing{memstore.New()}
	l, err := transport.NewNetwork(1).Listen("server")
	if err != nil {
		t.Fatal(err)
	}
	if err := New(cfg).Serve(context.Background(), l); err == nil || !strings.Contains(err.Error(), "unreadable") {
		t.Fatalf("Serve on an unreadable store returned %v, want its error", err)
	}
}

// What a client that breaks the protocol's rules gets (protocol.md
// sections 5 and 9), where the server used to go along with it.
func TestProtocolMisuse(t *testing.T) {
	t.Run("replica 0", func(t *testing.T) {
		h := startMem(t, openConfig(t))
		c := h.dialRaw()
		c.send(&wire.Hello{MinVersion: wire.ProtocolVersion, MaxVersion: wire.ProtocolVersion, Replica: 0, Agent: "test"})
		c.expectError(wire.CodeProtocol)
	})
	t.Run("read beyond the share's version", func(t *testing.T) {
		// B read x at version 1 but says 1000: A's write at version 2
		// would be lost without a conflict.
		h := startMem(t, openConfig(t))
		a, b := h.dial(1, ""), h.dial(2, "")
		base, _ := a.open(1, "s", 0) // at its epoch change
		b.open(1, "s", 0)
		x := oid(1, 1)
		a.ack(a.commit(1, 0, nil, createVar(x, 0)...).ID)
		a.ack(a.commit(1, 1, nil, setVar(x, 1)).ID)
		cm := b.commit(1, 1, []wire.Read{readWhole(x, 1000)}, setVar(x, 5))
		for {
			if m, ok := b.recv().(*wire.Abort); ok {
				if m.ID != cm.ID || m.Code != wire.CodeInvalid {
					t.Fatalf("got %+v, want Abort invalid for %v", m, cm.ID)
				}
				break
			}
		}
		if v, vars := h.state("s"); v != base.Version+2 || vars[x] != 1 {
			t.Fatalf("share s at version %d with %v, want version %d with x = 1", v, vars, base.Version+2)
		}
	})
	t.Run("handle reused before its close is answered", func(t *testing.T) {
		st := newGatedStore("s", nil)
		_, c := startStored(t, st, 0)
		c.open(1, "s", 0)
		c.commit(1, 0, nil, createVar(oid(1, 1), 0)...) // its sync waits for the gate
		c.send(&wire.CloseShare{Share: 1})
		c.send(&wire.OpenShare{Share: 1, Name: "x"}) // before the ShareClosed
		c.expectError(wire.CodeUnexpected)
		close(st.gate)
	})
}

// blockingLoad is a memstore whose Load waits until release is closed,
// and says when it started.
type blockingLoad struct {
	*memstore.Store
	started, release chan struct{}
	loading          atomic.Bool
}

func (s *blockingLoad) Load(fn func(string, uint64, []wire.Object, []wire.Change) error) error {
	s.loading.Store(true)
	close(s.started)
	<-s.release
	defer s.loading.Store(false)
	return s.Store.Load(fn)
}

// Shutdown waits for a restore that a Serve of a server made by New is
// running, so that the store may be closed once it returns; a Serve
// after Shutdown restores nothing.
func TestShutdownWaitsForRestore(t *testing.T) {
	st := &blockingLoad{Store: memstore.New(), started: make(chan struct{}), release: make(chan struct{})}
	cfg := openConfig(t)
	cfg.Store = st
	srv := New(cfg)
	n := transport.NewNetwork(1)
	l, err := n.Listen("server")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(context.Background(), l) }()
	<-st.started
	srv.hookRestoreWait = func() { close(st.release) }
	if err := srv.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if st.loading.Load() {
		t.Fatal("Shutdown returned while the store was being read")
	}
	<-served
	l2, err := n.Listen("again")
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Serve(context.Background(), l2); !errors.Is(err, ErrServerClosed) {
		t.Fatalf("Serve after Shutdown: %v, want ErrServerClosed", err)
	}
}
