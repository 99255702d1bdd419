package transport

import (
	"context"
	"errors"
	"fmt"
	"io"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/weft-stm/weft/wire"
)

func memPair(t *testing.T, n *Network) (*MemConn, *MemConn) {
	t.Helper()
	l, err := n.Listen("server")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	c, err := n.Dial(context.Background(), "client", "server")
	if err != nil {
		t.Fatal(err)
	}
	s, err := l.Accept(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(); s.Close() })
	return c, s.(*MemConn)
}

func TestMemConn(t *testing.T) {
	testConn(t, func(t *testing.T) (Conn, Conn) { return memPair(t, NewNetwork(1)) })
}

func TestMemConnWithoutCodec(t *testing.T) {
	n := NewNetwork(1)
	n.SetEncoding(false)
	c, s := memPair(t, n)
	ctx := context.Background()
	p := &wire.Ping{Nonce: 3}
	if err := c.Send(ctx, p); err != nil {
		t.Fatal(err)
	}
	if m, err := s.Recv(ctx); err != nil || m != wire.Message(p) {
		t.Fatalf("Recv: %v, %v; want the pointer sent", m, err)
	}
	// An Update is the receiver's own, Writes included: a client gives it
	// back to the decoder (wire.ReleaseUpdate), and a server sends one
	// Update to many sessions.
	u := &wire.Update{Share: 1, Version: 2, Writes: []wire.Op{{Kind: wire.OpVarSet, Object: wire.ObjectID{Replica: 1, Seq: 1}, Value: wire.Int(5)}}}
	for range 2 {
		if err := c.Send(ctx, u); err != nil {
			t.Fatal(err)
		}
	}
	var got []*wire.Update
	for range 2 {
		m, err := s.Recv(ctx)
		if err != nil {
			t.Fatal(err)
		}
		g, ok := m.(*wire.Update)
		if !ok || g == u || &g.Writes[0] == &u.Writes[0] || !reflect.DeepEqual(g, u) {
			t.Fatalf("Recv: %+v; want a copy of %+v", m, u)
		}
		got = append(got, g)
	}
	if got[0] == got[1] || &got[0].Writes[0] == &got[1].Writes[0] {
		t.Fatal("two receives of one Update share it")
	}
}

// sendPings sends pings with nonces from..to-1.
func sendPings(t *testing.T, c Conn, from, to int) {
	t.Helper()
	for i := from; i < to; i++ {
		if err := c.Send(context.Background(), &wire.Ping{Nonce: uint64(i)}); err != nil {
			t.Fatal(err)
		}
	}
}

// drain returns the nonces of the pings waiting at c, without blocking.
func drain(t *testing.T, c Conn) []uint64 {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var got []uint64
	for {
		m, err := c.Recv(ctx)
		if errors.Is(err, context.Canceled) || errors.Is(err, ErrReset) || err == io.EOF {
			return got
		}
		if err != nil {
			t.Fatalf("Recv: %v", err)
		}
		got = append(got, m.(*wire.Ping).Nonce)
	}
}

func seq(from, to int) []uint64 {
	var s []uint64
	for i := from; i < to; i++ {
		s = append(s, uint64(i))
	}
	return s
}

// flush advances time until nothing is in flight.
func flush(n *Network) {
	if due, ok := lastDue(n); ok {
		n.Advance(due - n.Now())
	}
}

func lastDue(n *Network) (uint64, bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	var last uint64
	for _, f := range n.flights {
		last = max(last, f.due)
	}
	return last, len(n.flights) > 0
}

func TestMemDelayKeepsOrder(t *testing.T) {
	n := NewNetwork(7)
	n.SetFaults(Faults{MinDelay: 1, MaxDelay: 20})
	c, s := memPair(t, n)
	sendPings(t, c, 0, 100)
	if got := drain(t, s); len(got) != 0 {
		t.Fatalf("delivered before any tick: %v", got)
	}
	var got []uint64
	for n.InFlight() > 0 {
		due, _ := n.NextDue()
		n.Advance(due - n.Now())
		got = append(got, drain(t, s)...)
	}
	if !slices.Equal(got, seq(0, 100)) {
		t.Fatalf("got %v, want 0..99 in order", got)
	}
	if n.Now() > 100*20 || n.Now() < 1 {
		t.Fatalf("now = %d", n.Now())
	}
}

func TestMemReorder(t *testing.T) {
	n := NewNetwork(7)
	n.SetFaults(Faults{MaxDelay: 20, Reorder: true})
	c, s := memPair(t, n)
	sendPings(t, c, 0, 100)
	flush(n)
	got := drain(t, s)
	if slices.IsSorted(got) {
		t.Fatal("no message overtook another")
	}
	slices.Sort(got)
	if !slices.Equal(got, seq(0, 100)) {
		t.Fatalf("got %v, want each of 0..99 once", got)
	}
}

func TestMemDrop(t *testing.T) {
	n := NewNetwork(7)
	n.SetFaults(Faults{Drop: 0.5})
	c, s := memPair(t, n)
	sendPings(t, c, 0, 200)
	got := drain(t, s)
	if len(got) < 50 || len(got) > 150 || !slices.IsSorted(got) {
		t.Fatalf("with Drop 0.5, 200 sent, got %d: %v", len(got), got)
	}
	n.SetFaults(Faults{Drop: 1})
	sendPings(t, c, 200, 210)
	if got := drain(t, s); len(got) != 0 {
		t.Fatalf("with Drop 1: got %v", got)
	}
}

func TestMemDuplicate(t *testing.T) {
	n := NewNetwork(7)
	n.SetFaults(Faults{Duplicate: 1})
	c, s := memPair(t, n)
	sendPings(t, c, 0, 3)
	if got := drain(t, s); !slices.Equal(got, []uint64{0, 0, 1, 1, 2, 2}) {
		t.Fatalf("got %v, want each twice", got)
	}
}

func TestMemPartitionHeal(t *testing.T) {
	n := NewNetwork(7)
	n.SetFaults(Faults{MinDelay: 5, MaxDelay: 5})
	c, s := memPair(t, n)
	ctx := context.Background()
	sendPings(t, c, 0, 2) // in flight when the partition starts: lost
	n.Partition("server", "client")
	sendPings(t, c, 2, 4) // sent across it: lost
	sendPings(t, s, 0, 1) // the other way too
	if _, err := n.Dial(ctx, "client", "server"); !errors.Is(err, ErrUnreachable) {
		t.Fatalf("Dial across a partition: %v", err)
	}
	if _, err := n.Dial(ctx, "other", "server"); err != nil {
		t.Fatalf("Dial from outside the partition: %v", err)
	}
	flush(n)
	if got := drain(t, s); len(got) != 0 {
		t.Fatalf("across a partition: got %v", got)
	}
	if got := drain(t, c); len(got) != 0 {
		t.Fatalf("across a partition: got %v", got)
	}
	n.Heal("client", "server")
	sendPings(t, c, 4, 6)
	flush(n)
	if got := drain(t, s); !slices.Equal(got, seq(4, 6)) {
		t.Fatalf("after Heal: got %v, want [4 5]", got)
	}
}

func TestMemCut(t *testing.T) {
	n := NewNetwork(7)
	c, s := memPair(t, n)
	ctx := context.Background()
	sendPings(t, c, 0, 2) // delivered at once
	n.SetFaults(Faults{MinDelay: 3, MaxDelay: 3})
	sendPings(t, c, 2, 3) // in flight: lost
	n.Cut(c)
	flush(n)
	if got := drain(t, s); !slices.Equal(got, seq(0, 2)) {
		t.Fatalf("after Cut: got %v, want what was delivered before it", got)
	}
	for _, e := range []Conn{c, s} {
		if _, err := e.Recv(ctx); !errors.Is(err, ErrReset) {
			t.Errorf("Recv after Cut: %v", err)
		}
		if err := e.Send(ctx, &wire.Ping{}); !errors.Is(err, ErrReset) {
			t.Errorf("Send after Cut: %v", err)
		}
	}
}

func TestMemCloseWaitsForInFlight(t *testing.T) {
	n := NewNetwork(7)
	n.SetFaults(Faults{MinDelay: 5, MaxDelay: 5})
	c, s := memPair(t, n)
	sendPings(t, c, 0, 1)
	c.Close()
	if got := drain(t, s); len(got) != 0 {
		t.Fatalf("got %v before the delay", got)
	}
	n.Advance(5)
	if got := drain(t, s); !slices.Equal(got, seq(0, 1)) {
		t.Fatalf("got %v", got)
	}
	if _, err := s.Recv(context.Background()); err != io.EOF {
		t.Fatalf("Recv: %v, want io.EOF", err)
	}
}

func TestMemListener(t *testing.T) {
	n := NewNetwork(1)
	ctx := context.Background()
	if _, err := n.Dial(ctx, "a", "nowhere"); !errors.Is(err, ErrRefused) {
		t.Fatalf("Dial to no listener: %v", err)
	}
	l, err := n.Listen("b")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := n.Listen("b"); err == nil {
		t.Fatal("two listeners on one name")
	}
	c, err := n.Dialer("a")(ctx, "b")
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() {
		_, err := c.Recv(ctx)
		errc <- err
	}()
	l.Close() // c was never accepted: it is reset
	if err := <-errc; !errors.Is(err, ErrReset) {
		t.Fatalf("Recv on a conn its listener dropped: %v", err)
	}
	if _, err := l.Accept(ctx); !errors.Is(err, ErrClosed) {
		t.Fatalf("Accept after Close: %v", err)
	}
	if _, err := n.Dial(ctx, "a", "b"); !errors.Is(err, ErrRefused) {
		t.Fatalf("Dial after listener Close: %v", err)
	}
}

// run is one simulation: two clients of one server, every fault on; it
// returns the trace and what each end received.
func run(t *testing.T, seed uint64) []string {
	n := NewNetwork(seed)
	n.SetRecording(true)
	n.SetFaults(Faults{Drop: 0.2, Duplicate: 0.2, MaxDelay: 8, Reorder: true})
	l, err := n.Listen("server")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ctx := context.Background()
	var ends []Conn
	for _, name := range []string{"c1", "c2"} {
		c, err := n.Dial(ctx, name, "server")
		if err != nil {
			t.Fatal(err)
		}
		s, err := l.Accept(ctx)
		if err != nil {
			t.Fatal(err)
		}
		ends = append(ends, c, s)
	}
	var trace []string
	for step := range 60 {
		e := ends[step%len(ends)]
		sendPings(t, e, step, step+1)
		if step == 30 {
			n.Partition("c1", "server")
		}
		if step == 45 {
			n.Heal("c1", "server")
		}
		n.Advance(uint64(step % 3))
		for i, e := range ends {
			for _, v := range drain(t, e) {
				trace = append(trace, fmt.Sprintf("recv end=%d ping %d", i, v))
			}
		}
	}
	flush(n)
	for _, ev := range n.Events() {
		trace = append(trace, ev.String())
	}
	return trace
}

func TestMemDeterministic(t *testing.T) {
	a, b := run(t, 42), run(t, 42)
	if !slices.Equal(a, b) {
		for i := range min(len(a), len(b)) {
			if a[i] != b[i] {
				t.Fatalf("same seed, different traces at %d: %q vs %q", i, a[i], b[i])
			}
		}
		t.Fatalf("same seed, traces of %d and %d lines", len(a), len(b))
	}
	if slices.Equal(a, run(t, 43)) {
		t.Fatal("different seeds, same trace: the seed is not used")
	}
	var kinds = map[string]bool{}
	for _, line := range a {
		for _, k := range []string{"drop", "duplicate", "deliver", "partition", "heal", "(random)", "(partition)"} {
			if strings.Contains(line, k) {
				kinds[k] = true
			}
		}
	}
	if len(kinds) != 7 {
		t.Fatalf("the trace shows only %v", kinds)
	}
}
