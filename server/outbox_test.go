package server

import (
	"context"
	"testing"
	"time"

	"github.com/weft-stm/weft/transport"
	"github.com/weft-stm/weft/wire"
)

// A burst of commits, more than the reader lets wait before it wakes the
// writer, is answered in order, and every other session gets the Updates
// in version order, whoever of the reader and the writer sends them.
func TestBurstAnsweredInOrder(t *testing.T) {
	for _, tcp := range []bool{false, true} {
		name := map[bool]string{false: "mem", true: "tcp"}[tcp]
		t.Run(name, func(t *testing.T) {
			start := startMem
			if tcp {
				start = startTCP
			}
			h := start(t, openConfig(t))
			w := h.dial(2, "")
			base, _ := w.open(1, "s", 0) // at its epoch change
			r := h.dial(3, "")
			r.open(7, "s", 0)
			w.ack(w.commit(1, 0, nil, createVar(oid(2, 1), 0)...).ID)
			const n = 3*directMax + 5
			msgs := make([]wire.Message, n)
			for i := range msgs {
				w.seq++
				msgs[i] = &wire.Commit{ID: wire.CommitID{Replica: 2, Seq: w.seq}, Share: 1,
					Writes: []wire.Op{setVar(oid(2, 1), int64(i))}}
			}
			if err := w.conn.SendBatch(context.Background(), msgs); err != nil {
				t.Fatal(err)
			}
			for i := range n {
				a := w.ack(msgs[i].(*wire.Commit).ID)
				if a.Version != base.Version+uint64(i)+2 {
					t.Fatalf("ack %d at version %d", i, a.Version)
				}
			}
			for i := range n + 1 {
				u := expect[*wire.Update](r)
				if u.Share != 7 || u.Version != base.Version+uint64(i)+1 {
					t.Fatalf("update %d: handle %d version %d", i, u.Share, u.Version)
				}
			}
			w.quiet()
			r.quiet()
		})
	}
}

// ackGateListener makes the first connection it accepts stall on its
// Acks: a send holding one says so on entered and waits for the send's
// context to end.
type ackGateListener struct {
	transport.Listener
	entered  chan struct{}
	accepted int
}

func (l *ackGateListener) Accept(ctx context.Context) (transport.Conn, error) {
	c, err := l.Listener.Accept(ctx)
	if err != nil {
		return nil, err
	}
	l.accepted++
	if l.accepted == 1 {
		return &ackGateConn{Conn: c, entered: l.entered}, nil
	}
	return c, nil
}

type ackGateConn struct {
	transport.Conn
	entered chan struct{}
}

func (c *ackGateConn) SendBatch(ctx context.Context, msgs []wire.Message) error {
	for _, m := range msgs {
		if m.Type() == wire.TypeAck {
			c.entered <- struct{}{}
			<-ctx.Done()
			return ctx.Err()
		}
	}
	return c.Conn.SendBatch(ctx, msgs)
}

// A reader stuck sending its own Ack does not hold up Shutdown's first
// phase: the other sessions get the commit's Update and Error shutdown,
// and the stuck send is abandoned after FlushTimeout.
func TestShutdownReaderStuckSending(t *testing.T) {
	cfg := openConfig(t)
	cfg.FlushTimeout = 50 * time.Millisecond
	n := transport.NewNetwork(1)
	l, _ := n.Listen("server")
	entered := make(chan struct{}, 1)
	h := serveOn(t, cfg, &ackGateListener{Listener: l, entered: entered}, n)
	stuck := h.dial(1, "")
	base, _ := stuck.open(1, "s", 0) // at its epoch change
	other := h.dial(2, "")
	other.open(1, "s", 0)
	stuck.commit(1, 0, nil, createVar(oid(1, 1), 1)...)
	<-entered // the stuck session's reader is sending the Ack
	if u := expect[*wire.Update](other); u.Version != base.Version+1 {
		t.Fatalf("update %d", u.Version)
	}
	h.shutdown() // fails the test unless it returns nil
	other.expectError(wire.CodeShutdown)
	stuck.expectEnd()
}
