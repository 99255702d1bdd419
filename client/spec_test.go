package client_test

import (
	"errors"
	"maps"
	"runtime"
	"sync"
	"testing"

	"github.com/weft-stm/weft/authority"
	"github.com/weft-stm/weft/client"
	"github.com/weft-stm/weft/server"
	"github.com/weft-stm/weft/stm"
	"github.com/weft-stm/weft/transport"
	"github.com/weft-stm/weft/wire"
)

// pump advances the in-memory network from one due message to the next
// until cond holds (each step lets the goroutines run).
func pump(t *testing.T, n *transport.Network, cond func() bool) {
	t.Helper()
	ctx := testCtx(t)
	for !cond() {
		if ctx.Err() != nil {
			buf := make([]byte, 1<<20)
			t.Fatalf("pump: condition not reached\n%s", buf[:runtime.Stack(buf, true)])
		}
		if due, ok := n.NextDue(); ok {
			n.Advance(due - n.Now())
		}
		runtime.Gosched()
	}
}

// await waits, without moving the network's time, until cond holds.
func await(t *testing.T, cond func() bool) {
	t.Helper()
	ctx := testCtx(t)
	for !cond() {
		if ctx.Err() != nil {
			t.Fatal("await: condition not reached")
		}
		runtime.Gosched()
	}
}

// first delivers the one commit in flight to the server and waits until
// the server has answered it: an Ack to its client and an Update to the
// other, both still in flight.
func first(t *testing.T, n *transport.Network) {
	t.Helper()
	await(t, func() bool { return n.InFlight() == 1 })
	n.Advance(5)
	await(t, func() bool { return n.InFlight() == 2 })
}

// delayed is a server over an in-memory network with accounts 1 to 3
// (balance 100), two clients on it, and every message from now on taking
// 5 ticks: nothing moves unless the test advances the network.
func delayed(t *testing.T) (e *env, x, y *client.Share) {
	e = startServer(t, false, server.Config{})
	var ops []wire.Op
	for n := uint64(1); n <= 3; n++ {
		ops = append(ops, createAccount(n, 100)...)
	}
	e.raw("bank", ops...)
	_, x = e.open("bank")
	_, y = e.open("bank")
	e.net.SetFaults(transport.Faults{MinDelay: 5, MaxDelay: 5})
	return e, x, y
}

func done(hs ...*stm.Handle) func() bool {
	return func() bool {
		for _, h := range hs {
			if h.Status() == stm.Applied {
				return false
			}
		}
		return true
	}
}

func run(t *testing.T, s *client.Share, fn func(tx *stm.Tx) error) *stm.Handle {
	t.Helper()
	h, err := s.Run(testCtx(t), fn)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// converge waits until every share holds the version of the last and
// has nothing pending, and checks that they all hold the same accounts.
func converge(t *testing.T, e *env, shares ...*client.Share) map[wire.ObjectID]accountState {
	t.Helper()
	ctx := testCtx(t)
	idle := func() bool {
		for _, s := range shares {
			if s.Pending() > 0 {
				return false
			}
		}
		return true
	}
	if e.net != nil {
		pump(t, e.net, idle)
	}
	for _, s := range shares {
		if err := s.Workspace().Flush(ctx); err != nil {
			t.Fatal(err)
		}
	}
	var want map[wire.ObjectID]accountState
	var top uint64
	for _, s := range shares {
		top = max(top, s.Version())
	}
	for i, s := range shares {
		if e.net != nil {
			pump(t, e.net, func() bool { return s.Version() >= top })
		} else if err := s.WaitVersion(ctx, top); err != nil {
			t.Fatal(err)
		}
		_, got := snapshot(t, s)
		if i == 0 {
			want = got
		} else if !maps.EqualFunc(got, want, func(a, b accountState) bool {
			return a.Balance == b.Balance && a.Name == b.Name && a.Hits == b.Hits && maps.Equal(a.Tags, b.Tags)
		}) {
			t.Fatalf("replica %d: %+v, replica 0: %+v", i, got, want)
		}
	}
	return want
}

// TestCascade is the case of the issue: A is pending, B reads A's write,
// C is independent; the server rejects A (another replica wrote what A
// read first): B is aborted with it, C is acknowledged, and the replica is
// the acknowledged state plus C.
func TestCascade(t *testing.T) {
	e, x, y := delayed(t)
	n := e.net
	// y's commit reaches the server first...
	hy := run(t, y, func(tx *stm.Tx) error {
		b := balanceF.Of(record(t, y, 1))
		b.Set(tx, b.Get(tx)+1)
		return nil
	})
	first(t, n)
	// ...while x, which has not seen it, chains A and B and runs C.
	a1, a2, a3 := balanceF.Of(record(t, x, 1)), balanceF.Of(record(t, x, 2)), balanceF.Of(record(t, x, 3))
	hA := run(t, x, func(tx *stm.Tx) error { a1.Set(tx, a1.Get(tx)+10); return nil })
	hB := run(t, x, func(tx *stm.Tx) error { a2.Set(tx, a1.Get(tx)+5); return nil })
	hC := run(t, x, func(tx *stm.Tx) error { a3.Set(tx, a3.Get(tx)+7); return nil })
	x.View(testCtx(t), func(tx *stm.Tx) error {
		if a1.Get(tx) != 110 || a2.Get(tx) != 115 || a3.Get(tx) != 107 {
			t.Errorf("speculative state %d %d %d, want 110 115 107", a1.Get(tx), a2.Get(tx), a3.Get(tx))
		}
		return nil
	})
	pump(t, n, done(hy, hA, hB, hC))

	var ae *client.AbortError
	if err := hA.Err(); !errors.As(err, &ae) || ae.Code != wire.CodeConflict {
		t.Errorf("A: %v, want a conflict", err)
	}
	if err := hB.Err(); !errors.As(err, &ae) || ae.Code != wire.CodeDependency || !errors.Is(err, stm.ErrAborted) {
		t.Errorf("B: %v, want a dependency abort", err)
	}
	if hC.Status() != stm.Acknowledged || hy.Status() != stm.Acknowledged {
		t.Errorf("C: %v (%v), y: %v", hC.Status(), hC.Err(), hy.Status())
	}
	got := converge(t, e, x, y)
	if b := got[oid(3)].Balance; b != 101 {
		t.Errorf("account 1: %d, want y's 101", b)
	}
	if b := got[oid(6)].Balance; b != 100 {
		t.Errorf("account 2: %d, want 100 (B undone)", b)
	}
	if b := got[oid(9)].Balance; b != 107 {
		t.Errorf("account 3: %d, want C's 107", b)
	}
}

// TestPendingUnderRemote: another replica's commit ordered before a
// pending one, on the same parts, is shown under it: blind writes of a
// field and a map key keep the pending value, counter increments add up.
func TestPendingUnderRemote(t *testing.T) {
	e, x, y := delayed(t)
	n := e.net
	write := func(s *client.Share, name string, hits, tag int64) *stm.Handle {
		o := record(t, s, 1)
		return run(t, s, func(tx *stm.Tx) error {
			nameF.Of(o).Set(tx, name)
			hitsF.Of(o).Add(tx, hits)
			tagsF.Of(o).PutFast(tx, "k", tag)
			return nil
		})
	}
	hy := write(y, "y", 10, 2)
	first(t, n)
	hx := write(x, "x", 1, 1)
	pump(t, n, done(hx, hy))
	if hx.Err() != nil || hy.Err() != nil {
		t.Fatal(hx.Err(), hy.Err())
	}
	got := converge(t, e, x, y)[oid(3)]
	if got.Name != "x" || got.Hits != 11 || got.Tags["k"] != 1 {
		t.Errorf("account 1: %+v, want name x, hits 11, tag k 1", got)
	}
}

// TestChained: one client chains many commits without waiting, each
// reading the previous one's write; all are acknowledged in order, and
// another replica converges.
func TestChained(t *testing.T) {
	both(t, func(t *testing.T, tcp bool) {
		e := startServer(t, tcp, server.Config{})
		e.raw("bank", createAccount(1, 0)...)
		_, x := e.open("bank")
		_, y := e.open("bank")
		b := balanceF.Of(record(t, x, 1))
		const N = 500
		hs := make([]*stm.Handle, N)
		for i := range hs {
			hs[i] = run(t, x, func(tx *stm.Tx) error { b.Set(tx, b.Get(tx)+1); return nil })
		}
		for i, h := range hs {
			if err := h.Wait(testCtx(t)); err != nil {
				t.Fatalf("commit %d: %v", i, err)
			}
			if i > 0 && h.Version() <= hs[i-1].Version() {
				t.Fatalf("commit %d acknowledged at %d, after %d", i, h.Version(), hs[i-1].Version())
			}
		}
		if got := converge(t, e, x, y)[oid(3)].Balance; got != N {
			t.Fatalf("balance %d, want %d", got, N)
		}
	})
}

// TestReconnectResend: the connection breaks with commits in flight and
// more are made while it is down; the client reconnects, resyncs and
// resends, and every commit is applied exactly once (a counter counts
// them).
func TestReconnectResend(t *testing.T) {
	e := startServer(t, false, server.Config{})
	e.raw("bank", createAccount(1, 0)...)
	dial, cut := e.recordingDialer("client")
	var states []client.State
	var smu sync.Mutex
	c, err := client.Dial(testCtx(t), dial, e.addr, client.Options{Replica: 5, OnState: func(s client.State) {
		smu.Lock()
		states = append(states, s)
		smu.Unlock()
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	x, err := c.Open(testCtx(t), "bank", account)
	if err != nil {
		t.Fatal(err)
	}
	_, y := e.open("bank")
	o := record(t, x, 1)
	var hs []*stm.Handle
	commit := func() {
		hs = append(hs, run(t, x, func(tx *stm.Tx) error {
			hitsF.Of(o).Add(tx, 1)
			b := balanceF.Of(o)
			b.Set(tx, b.Get(tx)+1)
			return nil
		}))
	}
	for range 50 {
		commit()
	}
	cut(0)
	for range 50 {
		commit()
	}
	if err := c.Flush(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	for i, h := range hs {
		if err := h.Err(); err != nil {
			t.Fatalf("commit %d: %v", i, err)
		}
	}
	got := converge(t, e, x, y)[oid(3)]
	if got.Hits != 100 || got.Balance != 100 {
		t.Fatalf("hits %d balance %d, want 100 and 100", got.Hits, got.Balance)
	}
	if err := c.WaitState(testCtx(t), client.Connected); err != nil {
		t.Fatal(err)
	}
	smu.Lock()
	defer smu.Unlock()
	if len(states) < 2 || states[0] != client.Reconnecting || states[len(states)-1] != client.Connected {
		t.Errorf("states %v, want reconnecting then connected", states)
	}
}

// cutOff starts a server whose change log keeps 4 changes, holding
// account 1, and two clients of its share "bank": x, whose connection the
// returned func cuts, and y. Holding x's traffic (e.net.SetFaults) keeps
// its commits pending; a cut after more than 4 commits of y makes x
// resync from a snapshot.
func cutOff(t *testing.T) (e *env, c *client.Client, x, y *client.Share, cut func(int)) {
	t.Helper()
	e = startServer(t, false, server.Config{Share: authority.Config{LogSize: 4}})
	e.raw("bank", createAccount(1, 0)...)
	dial, cut := e.recordingDialer("client")
	c, err := client.Dial(testCtx(t), dial, e.addr, client.Options{Replica: 5})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	x, err = c.Open(testCtx(t), "bank", account)
	if err != nil {
		t.Fatal(err)
	}
	_, y = e.open("bank")
	return e, c, x, y, cut
}

// TestReconnectSnapshot: while a client is cut off with commits pending,
// others commit more than the server's log keeps, so the reconnection
// resyncs from a snapshot: the pending commits are resent, each applied
// exactly once, and every replica converges.
func TestReconnectSnapshot(t *testing.T) {
	e, c, x, y, cut := cutOff(t)
	ox, oy := record(t, x, 1), record(t, y, 1)
	// Hold x's traffic so that its commits are pending when it is cut.
	e.net.SetFaults(transport.Faults{MinDelay: 1 << 40, MaxDelay: 1 << 40})
	var hs []*stm.Handle
	for range 20 {
		hs = append(hs, run(t, x, func(tx *stm.Tx) error { hitsF.Of(ox).Add(tx, 1); return nil }))
	}
	cut(0)
	e.net.SetFaults(transport.Faults{})
	for range 10 {
		if err := y.Atomically(testCtx(t), func(tx *stm.Tx) error { hitsF.Of(oy).Add(tx, 100); return nil }); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Flush(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	for i, h := range hs {
		if err := h.Err(); err != nil {
			t.Fatalf("commit %d: %v", i, err)
		}
	}
	if got := converge(t, e, x, y)[oid(3)].Hits; got != 1020 {
		t.Fatalf("hits %d, want 1020", got)
	}
}

// TestRemovedRecordSurvivesResync: a pending Remove hidden by a snapshot
// resync, then aborted by the server, leaves the application's object in
// the share, as an abort without a resync does: the snapshot's record is
// that object, not a new one, so updates reach it and its writes are
// based on what it shows.
func TestRemovedRecordSurvivesResync(t *testing.T) {
	e, c, x, y, cut := cutOff(t)
	ox, oy := record(t, x, 1), record(t, y, 1)
	// The removal reads the balance, so y's writes make the server abort
	// it; it stays unsent until the connection is cut.
	e.net.SetFaults(transport.Faults{MinDelay: 1 << 40, MaxDelay: 1 << 40})
	h := run(t, x, func(tx *stm.Tx) error {
		if balanceF.Of(ox).Get(tx) == 0 {
			x.Remove(tx, ox)
		}
		return nil
	})
	cut(0)
	e.net.SetFaults(transport.Faults{})
	// More commits than the server's log keeps: the reconnection brings a
	// snapshot.
	for range 10 {
		if err := y.Atomically(testCtx(t), func(tx *stm.Tx) error {
			b := balanceF.Of(oy)
			b.Set(tx, b.Get(tx)+1)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Flush(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	if h.Err() == nil {
		t.Fatal("the removal was acknowledged: its read was overwritten")
	}
	if cur, _ := x.Object(stm.IDOf(ox)); cur != ox {
		t.Fatal("after the aborted removal the share holds another object than the application's")
	}
	if err := x.Atomically(testCtx(t), func(tx *stm.Tx) error {
		b := balanceF.Of(ox)
		b.Set(tx, b.Get(tx)+100)
		return nil
	}); err != nil {
		t.Fatalf("write through the application's object: %v", err)
	}
	converge(t, e, x, y)
	if _, got := snapshot(t, y); got[oid(3)].Balance != 110 {
		t.Fatalf("balance %d, want 110 (10 increments, then 100 added)", got[oid(3)].Balance)
	}
}
