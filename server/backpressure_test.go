package server

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/weft-stm/weft/transport"
	"github.com/weft-stm/weft/wire"
)

// transferListener wraps the connections it accepts in transferConns.
type transferListener struct {
	transport.Listener
	conn chan *transferConn
}

func (l *transferListener) Accept(ctx context.Context) (transport.Conn, error) {
	c, err := l.Listener.Accept(ctx)
	if err != nil {
		return nil, err
	}
	tc := &transferConn{Conn: c}
	select {
	case l.conn <- tc:
	default:
	}
	return tc, nil
}

// transferConn counts the OpenShares the server received and the
// transfers it finished sending, and records at each Recv how many
// transfers the server had built and not yet sent: those its reader went
// on reading past.
type transferConn struct {
	transport.Conn
	opens, sent atomic.Int64
	ahead       atomic.Int64 // the most transfers unsent at a Recv
}

func (c *transferConn) Recv(ctx context.Context) (wire.Message, error) {
	if n := c.opens.Load() - c.sent.Load(); n > c.ahead.Load() {
		c.ahead.Store(n)
	}
	m, err := c.Conn.Recv(ctx)
	if _, ok := m.(*wire.OpenShare); ok {
		c.opens.Add(1)
	}
	return m, err
}

func (c *transferConn) count(msgs []wire.Message) {
	for _, m := range msgs {
		switch m := m.(type) {
		case *wire.SnapshotChunk:
			if !m.More {
				c.sent.Add(1)
			}
		case *wire.Delta:
			if !m.More {
				c.sent.Add(1)
			}
		case *wire.Opened:
			if m.Transfer == wire.TransferNone {
				c.sent.Add(1)
			}
		case *wire.ShareClosed:
			// A refused open (no transfer) is answered by ShareClosed;
			// this test's opens are not refused.
		}
	}
}

func (c *transferConn) Send(ctx context.Context, m wire.Message) error {
	err := c.Conn.Send(ctx, m)
	c.count([]wire.Message{m})
	return err
}

func (c *transferConn) SendBatch(ctx context.Context, msgs []wire.Message) error {
	err := c.Conn.SendBatch(ctx, msgs)
	c.count(msgs)
	return err
}

// The session sees Buffered and SetLimits through the wrapper too.
func (c *transferConn) Buffered() bool { return c.Conn.(transport.Buffered).Buffered() }
func (c *transferConn) SetLimits(lim wire.Limits) {
	c.Conn.(transport.LimitSetter).SetLimits(lim)
}

// A session reads no further message while a transfer it built (the
// snapshot or delta of an OpenShare) is not sent: a client that sends
// OpenShare and CloseShare again and again without reading its answers
// otherwise had the server build and queue a whole snapshot of the share
// for each pair, a transfer counting as one of Config.QueueSize messages
// (the review's attack: 4 KB of opens of a share of a million list
// elements, 400 snapshots, 6 GiB of server memory, with read access
// only). The flood here is sent in one batch, so that the reader always
// has a message in hand when it would decide to send.
func TestOpenFloodBackPressure(t *testing.T) {
	n := transport.NewNetwork(1)
	l, err := n.Listen("server")
	if err != nil {
		t.Fatal(err)
	}
	tl := &transferListener{Listener: l, conn: make(chan *transferConn, 1)}
	h := serveOn(t, openConfig(t), tl, n)
	c := h.dial(1, "")
	tc := <-tl.conn
	const pairs = 10
	var flood []wire.Message
	for range pairs {
		flood = append(flood, &wire.OpenShare{Share: 1, Name: "s"}, &wire.CloseShare{Share: 1})
	}
	flood = append(flood, &wire.Ping{Nonce: 1})
	if err := c.conn.SendBatch(context.Background(), flood); err != nil {
		t.Fatal(err)
	}
	for range pairs {
		if op := expect[*wire.Opened](c); op.Transfer != wire.TransferSnapshot {
			t.Fatalf("opened %+v", op)
		}
		if ch := expect[*wire.SnapshotChunk](c); ch.More {
			t.Fatalf("chunk %+v", ch)
		}
		if sc := expect[*wire.ShareClosed](c); sc.Code != wire.CodeClosed {
			t.Fatalf("share closed %+v", sc)
		}
	}
	if p := expect[*wire.Pong](c); p.Nonce != 1 {
		t.Fatalf("pong %d", p.Nonce)
	}
	if got := tc.ahead.Load(); got > 0 {
		t.Errorf("the server read on with %d transfers unsent", got)
	}
}
