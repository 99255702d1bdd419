package client_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/weft-stm/weft/client"
	"github.com/weft-stm/weft/server"
	"github.com/weft-stm/weft/stm"
	"github.com/weft-stm/weft/transport"
	"github.com/weft-stm/weft/wire"
)

// The tests of receiving by committers (client/recv.go) run in a synctest
// bubble over the in-memory network, which delivers at once: time stands
// still while anything runs, so a lease ends only when the test lets time
// pass, and a wait that the reader goroutine had to wait out a lease for
// shows as time passed.

// leaseHeld makes x's committer the receiver and leaves the connection
// leased to it: it commits with Atomically until a commit read its own
// verdict. (The first is answered through the reader goroutine, which
// then leases; but a committer woken by its verdict may commit again
// before the reader goroutine leased, which then answers that one too.)
func leaseHeld(t *testing.T, c *client.Client, x *client.Share, b *stm.Var[int64]) {
	t.Helper()
	before := client.SelfReceives(c)
	for range 100 {
		if err := x.Atomically(testCtx(t), func(tx *stm.Tx) error { b.Set(tx, b.Get(tx)+1); return nil }); err != nil {
			t.Fatal(err)
		}
		if client.SelfReceives(c) != before {
			return
		}
	}
	t.Fatal("after 100 commits, the committer received nothing itself")
}

// leasedBank starts a server holding one account in share "bank", and a
// client whose committer holds the lease on its connection (leaseHeld);
// it returns them, the client's share and the account's balance.
func leasedBank(t *testing.T) (*env, *client.Client, *client.Share, *stm.Var[int64]) {
	t.Helper()
	e := startServer(t, false, server.Config{})
	e.raw("bank", createAccount(1, 0)...)
	c, x := e.open("bank")
	b := balanceF.Of(record(t, x, 1))
	leaseHeld(t, c, x, b)
	return e, c, x, b
}

// receivingCommit holds every message on the network, then starts an
// Atomically increment of b under ctx on x, whose client c holds the
// lease, and waits until its committer receives. The Atomically's error
// arrives on the channel.
func receivingCommit(ctx context.Context, t *testing.T, e *env, c *client.Client, x *client.Share, b *stm.Var[int64]) <-chan error {
	t.Helper()
	e.net.SetFaults(transport.Faults{MinDelay: 1 << 40, MaxDelay: 1 << 40}) // held until the test releases them
	done := make(chan error, 1)
	before := client.SelfReceives(c)
	go func() {
		done <- x.Atomically(ctx, func(tx *stm.Tx) error { b.Set(tx, b.Get(tx)+1); return nil })
	}()
	synctest.Wait() // the committer waits in its receive
	if client.SelfReceives(c) == before {
		t.Fatal("the committer is not receiving")
	}
	return done
}

// TestCommitterReadsItsVerdict: a goroutine committing with Atomically,
// one commit after another, receives its verdicts itself once it holds
// the lease.
func TestCommitterReadsItsVerdict(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		_, c, x, b := leasedBank(t)
		before, balance := client.SelfReceives(c), b.Get(stm.Auto)
		const n = 20
		for range n {
			if err := x.Atomically(testCtx(t), func(tx *stm.Tx) error { b.Set(tx, b.Get(tx)+1); return nil }); err != nil {
				t.Fatal(err)
			}
		}
		if got := client.SelfReceives(c) - before; got != n {
			t.Fatalf("committers received %d times, want %d", got, n)
		}
		if got := b.Get(stm.Auto); got != balance+n {
			t.Fatalf("balance %d, want %d", got, balance+n)
		}
	})
}

// TestLeaseEnds: while a committer holds the lease, what arrives unasked
// (another client's Update) waits; when the lease runs out the reader
// goroutine receives it.
func TestLeaseEnds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e, _, x, _ := leasedBank(t)
		_, y := e.open("bank")
		yb := balanceF.Of(record(t, y, 1))
		if err := y.Atomically(testCtx(t), func(tx *stm.Tx) error { yb.Set(tx, 100); return nil }); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		time.Sleep(client.LeaseTime)
		synctest.Wait()
		if x.Version() != y.Version() {
			t.Fatalf("after the lease: x at version %d, y at %d", x.Version(), y.Version())
		}
	})
}

// TestLeaseYields: whatever else awaits the connection ends a lease at
// once: an Open, a Run's verdict, Flush, WaitVersion.
func TestLeaseYields(t *testing.T) {
	for _, tc := range []struct {
		name string
		wait func(t *testing.T, e *env, c *client.Client, x, y *client.Share)
	}{
		{"open", func(t *testing.T, e *env, c *client.Client, x, y *client.Share) {
			e.raw("other", createAccount(1, 0)...)
			if _, err := c.Open(testCtx(t), "other", account); err != nil {
				t.Fatal(err)
			}
		}},
		{"run", func(t *testing.T, e *env, c *client.Client, x, y *client.Share) {
			b := balanceF.Of(record(t, x, 1))
			h := run(t, x, func(tx *stm.Tx) error { b.Set(tx, 7); return nil })
			if err := h.Wait(testCtx(t)); err != nil {
				t.Fatal(err)
			}
		}},
		{"flush", func(t *testing.T, e *env, c *client.Client, x, y *client.Share) {
			b := balanceF.Of(record(t, x, 1))
			run(t, x, func(tx *stm.Tx) error { b.Set(tx, 7); return nil })
			if err := c.Flush(testCtx(t)); err != nil {
				t.Fatal(err)
			}
		}},
		{"wait-version", func(t *testing.T, e *env, c *client.Client, x, y *client.Share) {
			yb := balanceF.Of(record(t, y, 1))
			if err := y.Atomically(testCtx(t), func(tx *stm.Tx) error { yb.Set(tx, 100); return nil }); err != nil {
				t.Fatal(err)
			}
			if err := x.WaitVersion(testCtx(t), y.Version()); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				e, c, x, _ := leasedBank(t)
				_, y := e.open("bank")
				start := time.Now()
				tc.wait(t, e, c, x, y)
				if d := time.Since(start); d != 0 {
					t.Fatalf("it waited %v: the lease held it up", d)
				}
			})
		})
	}
}

// TestCommitterReceiveFails: a connection lost while a committer receives
// on it ends it as one lost under the reader goroutine would: the client
// reconnects, resends, and the committer gets its verdict.
func TestCommitterReceiveFails(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := startServer(t, false, server.Config{})
		dial, cut := e.recordingDialer("app")
		e.dial = dial
		e.raw("bank", createAccount(1, 0)...)
		c := e.clientWith(client.Options{MinBackoff: time.Millisecond, MaxBackoff: time.Millisecond})
		x, err := c.Open(testCtx(t), "bank", account)
		if err != nil {
			t.Fatal(err)
		}
		b := balanceF.Of(record(t, x, 1))
		leaseHeld(t, c, x, b)
		want := b.Get(stm.Auto) + 1
		done := receivingCommit(testCtx(t), t, e, c, x, b)
		cut(-1)
		e.net.SetFaults(transport.Faults{})
		if err := <-done; err != nil {
			t.Fatalf("Atomically across a lost connection: %v", err)
		}
		if got := b.Get(stm.Auto); got != want {
			t.Fatalf("balance %d, want %d", got, want)
		}
	})
}

// TestCommitterGivesUp: a committer whose ctx ends while it receives
// returns in doubt, and the reader goroutine takes over at once: the
// verdict still arrives.
func TestCommitterGivesUp(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e, c, x, b := leasedBank(t)
		want := b.Get(stm.Auto) + 1
		ctx, cancel := context.WithCancel(testCtx(t))
		done := receivingCommit(ctx, t, e, c, x, b)
		cancel()
		if err := <-done; !errors.Is(err, client.ErrInDoubt) {
			t.Fatalf("Atomically whose ctx ended: %v, want in doubt", err)
		}
		start := time.Now()
		for e.net.InFlight() > 0 {
			due, _ := e.net.NextDue()
			e.net.Advance(due - e.net.Now())
			synctest.Wait()
		}
		if x.Pending() != 0 || time.Since(start) != 0 {
			t.Fatalf("%d pending after %v: the reader goroutine did not take over", x.Pending(), time.Since(start))
		}
		if got := b.Get(stm.Auto); got != want {
			t.Fatalf("balance %d, want %d", got, want)
		}
	})
}

// TestCommitterInterrupted: a committer receiving while its commit is
// resolved without a message (its share closed) stops receiving at once.
func TestCommitterInterrupted(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e, c, x, b := leasedBank(t)
		done := receivingCommit(testCtx(t), t, e, c, x, b)
		x.Close(testCtx(t))
		synctest.Wait()
		select {
		case err := <-done:
			if !errors.Is(err, client.ErrInDoubt) && !errors.Is(err, client.ErrShareClosed) {
				t.Fatalf("Atomically on a closed share: %v", err)
			}
		default:
			t.Fatal("Atomically still waits after its share closed")
		}
		e.net.SetFaults(transport.Faults{})
	})
}

// TestCallbackUnderCallersLock: with OnAcknowledge set, a committer that
// holds a lock its callback takes does not wait for itself: callbacks run
// where the reader goroutine receives, after the handle is resolved, so
// the callback gets the lock once Atomically has returned.
func TestCallbackUnderCallersLock(t *testing.T) {
	e := startServer(t, false, server.Config{})
	e.raw("bank", createAccount(1, 0)...)
	var mu sync.Mutex
	acked := make(chan struct{}, 1)
	c := e.clientWith(client.Options{OnAcknowledge: func(string, wire.CommitID, uint64) {
		mu.Lock()
		mu.Unlock()
		acked <- struct{}{}
	}})
	x, err := c.Open(testCtx(t), "bank", account)
	if err != nil {
		t.Fatal(err)
	}
	b := balanceF.Of(record(t, x, 1))
	finished := make(chan error, 1)
	go func() {
		for range 5 {
			mu.Lock()
			err := x.Atomically(testCtx(t), func(tx *stm.Tx) error { b.Set(tx, b.Get(tx)+1); return nil })
			mu.Unlock()
			if err != nil {
				finished <- err
				return
			}
			<-acked
		}
		finished <- nil
	}()
	select {
	case err := <-finished:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(testTimeout / 2):
		t.Fatal("Atomically under the lock its OnAcknowledge takes never returned")
	}
}

// TestCommitterPanics: a panic while a committer receives (here in an
// observer that its client's dispatcher runs synchronously, on an Update
// the committer received) ends the connection on its way up: the reader
// goroutine does not wait for a holder that is gone, and Flush and Close
// return. (The share, which the panic left halfway through applying the
// Update, fails on the resync.)
func TestCommitterPanics(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := startServer(t, false, server.Config{})
		e.raw("bank", append(createAccount(1, 0), createAccount(2, 0)...)...)
		c := e.clientWith(client.Options{MinBackoff: time.Millisecond, MaxBackoff: time.Millisecond,
			Workspace: []stm.Option{stm.WithDispatcher(func(work func()) { work() })}})
		x, err := c.Open(testCtx(t), "bank", account)
		if err != nil {
			t.Fatal(err)
		}
		b := balanceF.Of(record(t, x, 1))
		leaseHeld(t, c, x, b)
		// Account 2, which only another client writes: its Update waits
		// on x's leased connection, and x's committer receives it.
		c.Workspace().Subscribe(record(t, x, 2), func(stm.Change) { panic("observer") })
		_, y := e.open("bank")
		yb := balanceF.Of(record(t, y, 2))
		if err := y.Atomically(testCtx(t), func(tx *stm.Tx) error { yb.Set(tx, 100); return nil }); err != nil {
			t.Fatal(err)
		}
		if x.Version() == y.Version() {
			t.Fatal("x received the Update while its connection was leased")
		}
		panicked := make(chan any, 1)
		go func() {
			defer func() { panicked <- recover() }()
			_ = x.Atomically(testCtx(t), func(tx *stm.Tx) error { b.Set(tx, b.Get(tx)+1); return nil })
		}()
		if p := <-panicked; p != "observer" {
			t.Fatalf("Atomically returned or panicked with %v, want the observer's panic", p)
		}
		// Without the connection ended, Flush would wait for good:
		// synctest would report every goroutine blocked.
		err = c.Flush(testCtx(t))
		t.Logf("Flush after the panic: %v", err)
		if x.Err() == nil {
			t.Fatal("the share applied the Update halfway, but did not fail")
		}
		c.Close()
	})
}
