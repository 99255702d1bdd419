package client

import (
	"context"
	"errors"
	"testing"

	"github.com/weft-stm/weft/transport"
	"github.com/weft-stm/weft/wire"
)

// scriptConn is a Conn whose SendBatch records what it sends, fails when
// told to, and runs during its next send what the test gives it (as
// another goroutine queueing meanwhile would).
type scriptConn struct {
	transport.Conn // Send, Recv, RemoteAddr: not called
	sent           [][]uint64
	fail           bool
	during         func()
	closed         bool
}

func (f *scriptConn) SendBatch(_ context.Context, msgs []wire.Message) error {
	if f.during != nil {
		f.during()
		f.during = nil // once
	}
	var nonces []uint64
	for _, m := range msgs {
		nonces = append(nonces, m.(*wire.Ping).Nonce)
	}
	if f.fail {
		return errors.New("cut")
	}
	f.sent = append(f.sent, nonces)
	return nil
}

func (f *scriptConn) Close() error { f.closed = true; return nil }

// TestSendQueued: the batch in flight is the sender's alone, whatever is
// queued meanwhile, also after a failed send (which drops the queue); a
// committer's send (once) sends what was queued when it started and
// leaves the rest to the writer.
func TestSendQueued(t *testing.T) {
	conn := &scriptConn{}
	c := &Client{}
	c.mu.conn = conn
	c.mu.wake = make(chan struct{}, 1)
	send := func(once bool, nonces ...uint64) {
		t.Helper()
		c.mu.Lock()
		for _, n := range nonces {
			c.enqueueLocked(&wire.Ping{Nonce: n})
		}
		c.mu.sending = true
		c.mu.Unlock()
		c.sendQueued(conn, once)
		if c.mu.sending {
			t.Fatal("sending still set")
		}
	}
	queue := func(n uint64) func() { return func() { c.enqueue(&wire.Ping{Nonce: n}) } }

	send(false, 1)
	conn.fail = true
	send(false, 2)
	if !conn.closed || len(c.mu.out) != 0 {
		t.Fatalf("after a failed send: closed %v, queue %v", conn.closed, c.mu.out)
	}
	conn.fail, conn.during = false, queue(4)
	send(false, 3) // 4 is queued while 3 is sent, and sent after it
	conn.during = queue(6)
	send(true, 5) // 6 is queued while 5 is sent, and left to the writer
	want := [][]uint64{{1}, {3}, {4}, {5}}
	if len(conn.sent) != len(want) {
		t.Fatalf("sent %v, want %v", conn.sent, want)
	}
	for i := range want {
		if len(conn.sent[i]) != 1 || conn.sent[i][0] != want[i][0] {
			t.Fatalf("sent %v, want %v", conn.sent, want)
		}
	}
	if len(c.mu.out) != 1 || c.mu.out[0].(*wire.Ping).Nonce != 6 {
		t.Fatalf("queue %v, want ping 6 left", c.mu.out)
	}
	select {
	case <-c.mu.wake:
	default:
		t.Fatal("the writer was not woken for what was left")
	}
}
