package server

import (
	"context"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/weft-stm/weft/transport"
	"github.com/weft-stm/weft/wire"
)

// TestHeartbeatClosesSilentSession: Welcome announces Config.Heartbeat;
// a client heard from more often than every three heartbeats keeps its
// session, and one silent for three (while the server waits to read) is
// closed with Error code limit, within a fourth.
func TestHeartbeatClosesSilentSession(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := openConfig(t)
		cfg.Heartbeat = time.Second
		h := startMem(t, cfg)
		c := h.dial(1, "")
		if c.welcome.HeartbeatMillis != 1000 {
			t.Fatalf("welcome announces heartbeat_millis %d, want 1000", c.welcome.HeartbeatMillis)
		}
		for range 10 {
			time.Sleep(2900 * time.Millisecond)
			c.quiet() // answered: the session lives
		}
		last := time.Now()
		e := c.expectError(wire.CodeLimit)
		if d := time.Since(last); d < 3*time.Second || d > 4*time.Second {
			t.Errorf("closed %v after the last message, want between 3 and 4 heartbeats", d)
		}
		if !strings.Contains(e.Message, "heard nothing") {
			t.Errorf("error %q does not say why", e.Message)
		}
	})
}

// TestHeartbeatNotWhileHoldingOff: time the server spends not reading
// (here its answer to an OpenShare cannot be sent, and the reader holds
// off until the transfer is) is not the client's silence: the session
// outlives ten heartbeats of it.
func TestHeartbeatNotWhileHoldingOff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := openConfig(t)
		cfg.Heartbeat = time.Second
		n := transport.NewNetwork(1)
		l, err := n.Listen("server")
		if err != nil {
			t.Fatal(err)
		}
		hl := &holdListener{Listener: l, release: make(chan struct{})}
		h := serveOn(t, cfg, hl, n)
		c := h.dial(1, "")
		hl.hold.Store(true)
		c.send(&wire.OpenShare{Share: 1, Name: "s"})
		time.Sleep(10 * time.Second)
		close(hl.release)
		expect[*wire.Opened](c)
		expect[*wire.SnapshotChunk](c)
		c.quiet()
	})
}

// holdListener's connections hold every send, once hold is set, until
// release is closed.
type holdListener struct {
	transport.Listener
	hold    atomic.Bool
	release chan struct{}
}

func (l *holdListener) Accept(ctx context.Context) (transport.Conn, error) {
	c, err := l.Listener.Accept(ctx)
	if err != nil {
		return nil, err
	}
	return &holdConn{Conn: c, l: l}, nil
}

type holdConn struct {
	transport.Conn
	l *holdListener
}

func (c *holdConn) wait() {
	if c.l.hold.Load() {
		<-c.l.release
	}
}

func (c *holdConn) Send(ctx context.Context, m wire.Message) error {
	c.wait()
	return c.Conn.Send(ctx, m)
}

func (c *holdConn) SendBatch(ctx context.Context, msgs []wire.Message) error {
	c.wait()
	return c.Conn.SendBatch(ctx, msgs)
}

// The session sees Buffered and SetLimits through the wrapper too.
func (c *holdConn) Buffered() bool { return c.Conn.(transport.Buffered).Buffered() }
func (c *holdConn) SetLimits(lim wire.Limits) {
	c.Conn.(transport.LimitSetter).SetLimits(lim)
}

// TestHeartbeatOff: a negative Config.Heartbeat announces none and
// closes no silent session.
func TestHeartbeatOff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := openConfig(t)
		cfg.Heartbeat = -1
		h := startMem(t, cfg)
		c := h.dial(1, "")
		if c.welcome.HeartbeatMillis != 0 {
			t.Fatalf("welcome announces heartbeat_millis %d, want 0", c.welcome.HeartbeatMillis)
		}
		time.Sleep(time.Hour)
		c.quiet()
	})
}

// TestMaxSessions: beyond Config.MaxSessions a client's Hello is answered
// with Error code limit, saying so; a session that ends makes room. While
// refusedSlots connections are being refused, the next is closed unread.
func TestMaxSessions(t *testing.T) {
	cfg := openConfig(t)
	cfg.MaxSessions = 2
	h := startMem(t, cfg)
	a := h.dial(1, "")
	h.dial(2, "")
	over := h.dialRaw()
	over.send(&wire.Hello{MinVersion: wire.ProtocolVersion, MaxVersion: wire.ProtocolVersion, Replica: 3})
	if e := over.expectError(wire.CodeLimit); !strings.Contains(e.Message, "2 sessions") {
		t.Errorf("error %q does not say the limit", e.Message)
	}

	// The refused slots, held by connections that say nothing: the next
	// one is closed at once, before any Hello.
	for range refusedSlots {
		h.dialRaw()
	}
	h.dialRaw().expectEnd()

	// a leaves: its slot takes a new session once the server has seen it
	// go (a retry, as a client's backoff would: until then a connection
	// is refused, or closed unread while the slots are taken).
	a.send(&wire.Error{Code: wire.CodeShutdown, Message: "bye"})
	a.expectEnd()
	for i := 0; ; i++ {
		c := h.dialRaw()
		_ = c.conn.Send(t.Context(), &wire.Hello{MinVersion: wire.ProtocolVersion, MaxVersion: wire.ProtocolVersion, Replica: 4})
		m, err := c.recvErr()
		if _, ok := m.(*wire.Welcome); ok {
			break
		}
		if e, ok := m.(*wire.Error); (err == nil && (!ok || e.Code != wire.CodeLimit)) || i == 10000 {
			t.Fatalf("after a session ended, a new one got %T %+v, %v", m, m, err)
		}
		c.conn.Close()
	}
}

// plainCtx is a cancelable context that is none of the context package's
// own, so that a context derived from it and never canceled holds a
// goroutine (and one that is canceled, none).
type plainCtx struct{ done chan struct{} }

func (c plainCtx) Deadline() (time.Time, bool) { return time.Time{}, false }
func (c plainCtx) Done() <-chan struct{}       { return c.done }
func (c plainCtx) Value(any) any               { return nil }
func (c plainCtx) Err() error {
	select {
	case <-c.done:
		return context.Canceled
	default:
		return nil
	}
}

// TestMaxSessionsFloodLeaksNothing: a connection closed at once because
// MaxSessions and refusedSlots are taken keeps nothing of Serve's context
// alive (a flood of them would otherwise grow the server without end).
// Inside a synctest bubble, synctest.Wait finds the moments when every
// goroutine is blocked, and so the goroutine counts to compare.
func TestMaxSessionsFloodLeaksNothing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := openConfig(t)
		cfg.MaxSessions = 1
		n := transport.NewNetwork(1)
		l, err := n.Listen("server")
		if err != nil {
			t.Fatal(err)
		}
		ctx := plainCtx{done: make(chan struct{})}
		h := &harness{t: t, srv: New(cfg), net: n, addr: l.Addr(), errc: make(chan error, 1)}
		go func() { h.errc <- h.srv.Serve(ctx, l) }()
		defer func() {
			close(ctx.done)
			<-h.errc
		}()
		h.dial(1, "")
		for range refusedSlots {
			h.dialRaw()
		}
		h.dialRaw().expectEnd()
		synctest.Wait() // the sessions holding the slots wait for their Hellos
		before := runtime.NumGoroutine()
		const flood = 200
		for range flood {
			c := h.dialRaw()
			c.expectEnd()
			c.conn.Close()
		}
		synctest.Wait()
		// NumGoroutine counts the whole process (a goroutine of an earlier
		// test may still be ending or starting): the leak it looks for is
		// one per connection, 200.
		if after := runtime.NumGoroutine(); after > before+flood/4 {
			t.Fatalf("%d goroutines before %d connections closed unread, %d after", before, flood, after)
		}
	})
}
