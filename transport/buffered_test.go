package transport

import (
	"context"
	"testing"

	"github.com/weft-stm/weft/wire"
)

// Buffered says whether a Recv would return without waiting: after a
// batch arrived whole, until its last message is received.
func TestBuffered(t *testing.T) {
	ctx := context.Background()
	check := func(t *testing.T, c, s Conn) {
		b := s.(Buffered)
		if b.Buffered() {
			t.Fatal("buffered before anything was sent")
		}
		if err := c.SendBatch(ctx, []wire.Message{&wire.Ping{Nonce: 1}, &wire.Ping{Nonce: 2}}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Recv(ctx); err != nil {
			t.Fatal(err)
		}
		// One small write on loopback, or one delivery in memory: the
		// second frame came with the first.
		if !b.Buffered() {
			t.Fatal("second message not buffered")
		}
		if m, err := s.Recv(ctx); err != nil || m.(*wire.Ping).Nonce != 2 {
			t.Fatalf("got %v, %v", m, err)
		}
		if b.Buffered() {
			t.Fatal("buffered after the last message")
		}
		c.Close()
		if _, err := s.Recv(ctx); err == nil {
			t.Fatal("Recv after the peer closed succeeded")
		}
		if !b.Buffered() {
			t.Fatal("a final error is not waited for")
		}
	}
	t.Run("tcp", func(t *testing.T) {
		s, c := tcpPair(t, nil, nil)
		check(t, c, s)
	})
	t.Run("mem", func(t *testing.T) {
		c, s := memPair(t, NewNetwork(1))
		check(t, c, s)
	})
}
