package server

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/weft-stm/weft/transport"
	"github.com/weft-stm/weft/wire"
)

// testTimeout bounds every wait of a test, so that a bug fails the test
// instead of hanging it; no test waits for time to pass.
const testTimeout = 20 * time.Second

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// openConfig lets everyone write everything.
func openConfig(t testing.TB) Config {
	return Config{DefaultAccess: AccessWrite, Logger: testLogger(t)}
}

// harness is a server on an in-memory network, or on TCP loopback.
type harness struct {
	t     testing.TB
	srv   *Server
	net   *transport.Network // nil for TCP
	addr  string
	errc  chan error
	shut  bool
	token string // used by state
}

func startMem(t testing.TB, cfg Config) *harness {
	t.Helper()
	n := transport.NewNetwork(1)
	l, err := n.Listen("server")
	if err != nil {
		t.Fatal(err)
	}
	return serveOn(t, cfg, l, n)
}

func startTCP(t testing.TB, cfg Config) *harness {
	t.Helper()
	l, err := transport.ListenTCP("127.0.0.1:0", nil, cfg.Limits)
	if err != nil {
		t.Fatal(err)
	}
	return serveOn(t, cfg, l, nil)
}

func serveOn(t testing.TB, cfg Config, l transport.Listener, n *transport.Network) *harness {
	h := &harness{t: t, srv: New(cfg), net: n, addr: l.Addr(), errc: make(chan error, 1)}
	go func() { h.errc <- h.srv.Serve(context.Background(), l) }()
	t.Cleanup(func() {
		if !h.shut {
			h.shutdown()
		}
	})
	return h
}

// shutdown stops the server and checks Serve's result.
func (h *harness) shutdown() {
	h.t.Helper()
	h.shut = true
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	if err := h.srv.Shutdown(ctx); err != nil {
		h.t.Errorf("Shutdown: %v", err)
	}
	if err := <-h.errc; !errors.Is(err, ErrServerClosed) {
		h.t.Errorf("Serve returned %v, want ErrServerClosed", err)
	}
}

// e0 is the version of a new share after its first open: its epoch
// change (authority/epoch.go). A test's commits on it follow.
const e0 = 1

// client is a raw protocol client.
type client struct {
	t       testing.TB
	srv     *Server
	conn    transport.Conn
	replica uint64
	seq     uint64
	nonce   uint64
	welcome *wire.Welcome
}

// dialRaw connects without a handshake.
func (h *harness) dialRaw() *client {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	var conn transport.Conn
	var err error
	if h.net != nil {
		conn, err = h.net.Dial(ctx, "client", "server")
	} else {
		conn, err = transport.DialTCP(ctx, h.addr, nil, wire.Limits{})
	}
	if err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() { conn.Close() })
	return &client{t: h.t, srv: h.srv, conn: conn}
}

// dial connects and completes the handshake as replica with token.
func (h *harness) dial(replica uint64, token string) *client {
	h.t.Helper()
	c := h.dialRaw()
	c.replica = replica
	c.send(&wire.Hello{MinVersion: wire.ProtocolVersion, MaxVersion: wire.ProtocolVersion, Replica: replica, Token: token, Agent: "test"})
	c.welcome = expect[*wire.Welcome](c)
	if ls, ok := c.conn.(transport.LimitSetter); ok {
		ls.SetLimits(c.welcome.Limits)
	}
	return c
}

func (c *client) send(m wire.Message) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	if err := c.conn.Send(ctx, m); err != nil {
		c.t.Fatalf("send %v: %v", m.Type(), err)
	}
}

func (c *client) recvErr() (wire.Message, error) {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	return c.conn.Recv(ctx)
}

func (c *client) recv() wire.Message {
	c.t.Helper()
	m, err := c.recvErr()
	if err != nil {
		c.t.Fatalf("recv: %v", err)
	}
	return m
}

func expect[T wire.Message](c *client) T {
	c.t.Helper()
	m := c.recv()
	v, ok := m.(T)
	if !ok {
		var zero T
		c.t.Fatalf("got %T %+v, want %T", m, m, zero)
	}
	return v
}

// expectError expects an Error with code, then the end of the stream.
func (c *client) expectError(code wire.Code) *wire.Error {
	c.t.Helper()
	e := expect[*wire.Error](c)
	if e.Code != code {
		c.t.Fatalf("error %v, want code %v", e, code)
	}
	c.expectEnd()
	return e
}

// expectEnd expects the server to have closed the connection.
func (c *client) expectEnd() {
	c.t.Helper()
	m, err := c.recvErr()
	if err == nil {
		c.t.Fatalf("got %T %+v, want the end of the stream", m, m)
	}
	if !errors.Is(err, io.EOF) && !errors.Is(err, transport.ErrReset) && !isConnReset(err) {
		c.t.Fatalf("recv: %v, want EOF", err)
	}
}

func isConnReset(err error) bool {
	var oe *net.OpError
	return errors.As(err, &oe)
}

// quiet checks that nothing is waiting for the client: it sends a Ping,
// whose Pong must be the next message.
func (c *client) quiet() {
	c.t.Helper()
	c.nonce++
	c.send(&wire.Ping{Nonce: c.nonce})
	p := expect[*wire.Pong](c)
	if p.Nonce != c.nonce {
		c.t.Fatalf("pong %d, want %d", p.Nonce, c.nonce)
	}
}

// open opens name under handle h and returns Opened and the transfer.
func (c *client) open(h wire.ShareHandle, name string, have uint64) (*wire.Opened, []wire.Message) {
	c.t.Helper()
	m := &wire.OpenShare{Share: h, Name: name, Have: have}
	if have > 0 {
		m.Epoch = c.srv.epochOf(name)
	}
	c.send(m)
	op := expect[*wire.Opened](c)
	var frames []wire.Message
	more := op.Transfer != wire.TransferNone
	for more {
		m := c.recv()
		frames = append(frames, m)
		switch m := m.(type) {
		case *wire.SnapshotChunk:
			more = m.More
		case *wire.Delta:
			more = m.More
		default:
			c.t.Fatalf("got %T during a transfer", m)
		}
	}
	return op, frames
}

// epochOf returns the last epoch change of the share name (zero if there
// is no such share): what a client that holds a copy of it since then
// names in OpenShare.
func (s *Server) epochOf(name string) wire.Epoch {
	s.mu.Lock()
	sh := s.mu.shares[name]
	s.mu.Unlock()
	if sh == nil {
		return wire.Epoch{}
	}
	sh.mu.Lock()
	defer sh.mu.Unlock()
	return sh.st.Epoch()
}

// commit sends a commit with the next CommitID and returns it.
func (c *client) commit(h wire.ShareHandle, snapshot uint64, reads []wire.Read, writes ...wire.Op) *wire.Commit {
	c.t.Helper()
	c.seq++
	m := &wire.Commit{ID: wire.CommitID{Replica: c.replica, Seq: c.seq}, Share: h, Snapshot: snapshot, Reads: reads, Writes: writes}
	c.send(m)
	return m
}

func (c *client) ack(id wire.CommitID) *wire.Ack {
	c.t.Helper()
	a := expect[*wire.Ack](c)
	if a.ID != id {
		c.t.Fatalf("ack for %v, want %v", a.ID, id)
	}
	return a
}

func (c *client) abort(id wire.CommitID, code wire.Code) *wire.Abort {
	c.t.Helper()
	a := expect[*wire.Abort](c)
	if a.ID != id || a.Code != code {
		c.t.Fatalf("abort %+v, want %v with code %v", a, id, code)
	}
	return a
}

func oid(replica, seq uint64) wire.ObjectID { return wire.ObjectID{Replica: replica, Seq: seq} }

func createVar(id wire.ObjectID, v int64) []wire.Op {
	return []wire.Op{
		{Kind: wire.OpCreate, Object: id, ObjectKind: wire.ObjectVar},
		{Kind: wire.OpVarSet, Object: id, Value: wire.Int(v)},
	}
}

func setVar(id wire.ObjectID, v int64) wire.Op {
	return wire.Op{Kind: wire.OpVarSet, Object: id, Value: wire.Int(v)}
}

func readWhole(id wire.ObjectID, version uint64) wire.Read {
	return wire.Read{Object: id, Kind: wire.ReadWhole, Version: version}
}

// snapshotVars returns the var objects of a snapshot transfer by id.
func snapshotVars(t testing.TB, frames []wire.Message) map[wire.ObjectID]int64 {
	t.Helper()
	vars := map[wire.ObjectID]int64{}
	for _, f := range frames {
		ch, ok := f.(*wire.SnapshotChunk)
		if !ok {
			t.Fatalf("got %T in a snapshot", f)
		}
		for _, o := range ch.Objects {
			if o.Kind == wire.ObjectVar {
				vars[o.ID] = o.Value.Int()
			}
		}
	}
	return vars
}

// state opens name on a fresh session and returns its version and vars.
func (h *harness) state(name string) (uint64, map[wire.ObjectID]int64) {
	h.t.Helper()
	c := h.dial(999, h.token)
	op, frames := c.open(1, name, 0)
	vars := snapshotVars(h.t, frames)
	c.conn.Close()
	return op.Version, vars
}
