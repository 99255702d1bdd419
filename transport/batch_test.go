package transport

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/weft-stm/weft/wire"
)

// testSendBatch: the messages of batches arrive in order, between those of
// plain Sends, and an empty batch sends nothing.
func testSendBatch(t *testing.T, pair pairFunc) {
	c, s := pair(t)
	ctx := context.Background()
	var batch []wire.Message
	for i := range uint64(50) {
		batch = append(batch, &wire.Ping{Nonce: 100 + i})
	}
	if err := c.Send(ctx, &wire.Ping{Nonce: 1}); err != nil {
		t.Fatal(err)
	}
	if err := c.SendBatch(ctx, nil); err != nil {
		t.Fatalf("empty SendBatch: %v", err)
	}
	if err := c.SendBatch(ctx, batch); err != nil {
		t.Fatal(err)
	}
	if err := c.Send(ctx, &wire.Ping{Nonce: 2}); err != nil {
		t.Fatal(err)
	}
	want := []uint64{1}
	for i := range uint64(50) {
		want = append(want, 100+i)
	}
	want = append(want, 2)
	for _, n := range want {
		m, err := s.Recv(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if p, ok := m.(*wire.Ping); !ok || p.Nonce != n {
			t.Fatalf("got %#v, want ping %d", m, n)
		}
	}
}

// testInvalidBatch: an invalid message after valid ones fails the batch
// with its *wire.FieldError and sends none of it; the connection goes on.
func testInvalidBatch(t *testing.T, pair pairFunc) {
	c, s := pair(t)
	ctx := context.Background()
	bad := &wire.Hello{Agent: strings.Repeat("x", wire.DefaultLimits().MaxNameLen+1)}
	err := c.SendBatch(ctx, []wire.Message{&wire.Ping{Nonce: 1}, &wire.Ping{Nonce: 2}, bad, &wire.Ping{Nonce: 3}})
	var fe *wire.FieldError
	if !errors.As(err, &fe) || !errors.Is(err, wire.ErrLimit) || !strings.HasPrefix(fe.Field, "hello.") {
		t.Fatalf("SendBatch with an invalid message: %v, want the hello's *wire.FieldError", err)
	}
	if err := c.SendBatch(ctx, []wire.Message{&wire.Ping{Nonce: 4}, &wire.Ping{Nonce: 5}}); err != nil {
		t.Fatalf("SendBatch after an invalid one: %v", err)
	}
	for _, n := range []uint64{4, 5} {
		m, err := s.Recv(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if p, ok := m.(*wire.Ping); !ok || p.Nonce != n {
			t.Fatalf("got %#v, want ping %d (nothing of the invalid batch)", m, n)
		}
	}
}

// A batch over a Network makes the same choices and events as the same
// messages sent one Send at a time.
func TestMemSendBatchDeterministic(t *testing.T) {
	run := func(batch bool) []Event {
		n := NewNetwork(42)
		n.SetFaults(Faults{Drop: 0.2, Duplicate: 0.2, MaxDelay: 3})
		n.SetRecording(true)
		l, err := n.Listen("s")
		if err != nil {
			t.Fatal(err)
		}
		c, err := n.Dial(context.Background(), "c", "s")
		if err != nil {
			t.Fatal(err)
		}
		l.Accept(context.Background())
		var msgs []wire.Message
		for i := range uint64(40) {
			msgs = append(msgs, &wire.Ping{Nonce: i})
		}
		if batch {
			if err := c.SendBatch(context.Background(), msgs); err != nil {
				t.Fatal(err)
			}
		} else {
			for _, m := range msgs {
				if err := c.Send(context.Background(), m); err != nil {
					t.Fatal(err)
				}
			}
		}
		n.Advance(10)
		return n.Events()
	}
	a, b := run(false), run(true)
	if len(a) != len(b) {
		t.Fatalf("%d events one at a time, %d in a batch", len(a), len(b))
	}
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("event %d: %v one at a time, %v in a batch", i, a[i], b[i])
		}
	}
}
