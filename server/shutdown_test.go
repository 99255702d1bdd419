package server

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/weft-stm/weft/transport"
	"github.com/weft-stm/weft/wire"
)

// Shutdown answers what it acknowledged, to the committer and to the other
// sessions, then sends Error shutdown and closes.
func TestGracefulShutdown(t *testing.T) {
	h := startMem(t, openConfig(t))
	a, b := h.dial(1, ""), h.dial(2, "")
	a.open(1, "s", 0)
	b.open(1, "s", 0)
	for i := range uint64(20) {
		a.commit(1, 0, nil, createVar(oid(1, i+1), 1)...)
	}
	first := a.ack(wire.CommitID{Replica: 1, Seq: 1})
	h.shutdown()

	acks := []uint64{first.Version}
	for {
		m := a.recv()
		if ack, ok := m.(*wire.Ack); ok {
			acks = append(acks, ack.Version)
			continue
		}
		if e, ok := m.(*wire.Error); !ok || e.Code != wire.CodeShutdown {
			t.Fatalf("got %T %+v", m, m)
		}
		break
	}
	a.expectEnd()
	for i, v := range acks {
		if v != e0+uint64(i+1) {
			t.Fatalf("acks %v", acks)
		}
	}
	for i := range acks {
		if u := expect[*wire.Update](b); u.Version != e0+uint64(i+1) {
			t.Fatalf("update %d, want %d", u.Version, e0+i+1)
		}
	}
	b.expectError(wire.CodeShutdown)
	t.Logf("%d of 20 commits answered before shutdown", len(acks))
}

// Ending Serve's context ends its sessions as Shutdown does.
func TestServeContext(t *testing.T) {
	n := transport.NewNetwork(1)
	l, _ := n.Listen("server")
	srv := New(openConfig(t))
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ctx, l) }()
	h := &harness{t: t, srv: srv, net: n, shut: true}
	c := h.dial(1, "")
	cancel()
	c.expectError(wire.CodeShutdown)
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("Serve: %v", err)
	}
	if err := srv.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// gateListener makes the first connection it accepts slow: its Updates are
// not sent until gate is closed (or the send is cancelled).
type gateListener struct {
	transport.Listener
	gate     chan struct{}
	accepted int
}

func (l *gateListener) Accept(ctx context.Context) (transport.Conn, error) {
	c, err := l.Listener.Accept(ctx)
	if err != nil {
		return nil, err
	}
	l.accepted++
	if l.accepted == 1 {
		return &gateConn{Conn: c, gate: l.gate}, nil
	}
	return c, nil
}

type gateConn struct {
	transport.Conn
	gate chan struct{}
}

func (c *gateConn) Send(ctx context.Context, m wire.Message) error {
	if m.Type() == wire.TypeUpdate {
		select {
		case <-c.gate:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return c.Conn.Send(ctx, m)
}

func startGated(t *testing.T, cfg Config) *harness {
	n := transport.NewNetwork(1)
	l, _ := n.Listen("server")
	gate := make(chan struct{})
	t.Cleanup(func() { close(gate) })
	return serveOn(t, cfg, &gateListener{Listener: l, gate: gate}, n)
}

// A session that falls behind is closed with Error limit; the others go on.
func TestSlowSession(t *testing.T) {
	cfg := openConfig(t)
	cfg.QueueSize = 4
	h := startGated(t, cfg)
	slow := h.dial(1, "")
	slow.open(1, "s", 0)
	fast := h.dial(2, "")
	fast.open(1, "s", 0)
	for i := range uint64(10) {
		fast.ack(fast.commit(1, i, nil, createVar(oid(2, i+1), 1)...).ID)
	}
	slow.expectError(wire.CodeLimit)
	fast.quiet()
	if v, _ := h.state("s"); v != e0+10 {
		t.Fatalf("version %d", v)
	}
}

// A session whose queue holds Config.QueueBytes of Updates has fallen
// behind too, however few they are: QueueSize Updates of up to a frame
// each would otherwise let one session that does not read hold gigabytes.
func TestSlowSessionBytes(t *testing.T) {
	cfg := openConfig(t)
	cfg.QueueSize = 1000
	cfg.QueueBytes = 64 << 10
	h := startGated(t, cfg)
	slow := h.dial(1, "")
	slow.open(1, "s", 0)
	fast := h.dial(2, "")
	fast.open(1, "s", 0)
	big := wire.String(strings.Repeat("x", 8<<10))
	// 20 Updates of 8 KiB: the writer goroutine takes what is queued when
	// it wakes, at most 7 of them (the 8th would pass the bound), and
	// then waits at the gate; 13 at least stay queued, 104 KiB.
	for i := range uint64(20) {
		id := oid(2, i+1)
		fast.ack(fast.commit(1, i, nil, wire.Op{Kind: wire.OpCreate, Object: id, ObjectKind: wire.ObjectVar},
			wire.Op{Kind: wire.OpVarSet, Object: id, Value: big}).ID)
	}
	if e := slow.expectError(wire.CodeLimit); !strings.Contains(e.Message, "bytes") {
		t.Fatalf("error %q, want the byte limit named", e.Message)
	}
	fast.quiet()
	if v, _ := h.state("s"); v != e0+20 {
		t.Fatalf("version %d", v)
	}
}

// A Shutdown whose context ends abandons the writes of stuck sessions and
// still returns only once every goroutine has.
func TestShutdownDeadline(t *testing.T) {
	h := startGated(t, openConfig(t))
	slow := h.dial(1, "")
	slow.open(1, "s", 0)
	fast := h.dial(2, "")
	fast.open(1, "s", 0)
	fast.ack(fast.commit(1, 0, nil, createVar(oid(2, 1), 1)...).ID)

	h.shut = true
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := h.srv.Shutdown(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Shutdown: %v", err)
	}
	if err := <-h.errc; !errors.Is(err, ErrServerClosed) {
		t.Fatalf("Serve: %v", err)
	}
	slow.expectEnd()
}

// SendBatch gates a batch as Send gates its messages: the session's writer
// sends with SendBatch, and without this the embedded Conn's SendBatch
// would let Updates through the gate. The messages before the first Update
// go at once, as they would one Send at a time.
func (c *gateConn) SendBatch(ctx context.Context, msgs []wire.Message) error {
	for i, m := range msgs {
		if m.Type() != wire.TypeUpdate {
			continue
		}
		if err := c.Conn.SendBatch(ctx, msgs[:i]); err != nil {
			return err
		}
		for _, m := range msgs[i:] {
			if err := c.Send(ctx, m); err != nil {
				return err
			}
		}
		return nil
	}
	return c.Conn.SendBatch(ctx, msgs)
}
