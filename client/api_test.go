package client_test

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/weft-stm/weft/client"
	"github.com/weft-stm/weft/server"
	"github.com/weft-stm/weft/stm"
	"github.com/weft-stm/weft/store/pebblestore"
	"github.com/weft-stm/weft/wire"
)

// What the client's calls promise when the client or a share ends.

// retrying starts run (Atomically or View) with a function that retries
// until the balance of account 1 reaches 100, and returns its result
// channel once the function has retried.
func retrying(t *testing.T, s *client.Share, run func(context.Context, func(*stm.Tx) error) error) chan error {
	o := record(t, s, 1)
	var once sync.Once
	started := make(chan struct{})
	errc := make(chan error, 1)
	go func() {
		errc <- run(testCtx(t), func(tx *stm.Tx) error {
			if balanceF.Of(o).Get(tx) < 100 {
				once.Do(func() { close(started) })
				return tx.Retry()
			}
			return nil
		})
	}()
	<-started
	return errc
}

// A call waiting in Retry (Atomically or View) returns when the client
// closes (an error wrapping ErrClosed), the server closes the share or the
// application does (the share's Err), not at its context's end.
func TestRetryEndsWithTheShare(t *testing.T) {
	for _, view := range []bool{false, true} {
		runner := func(s *client.Share) func(context.Context, func(*stm.Tx) error) error {
			if view {
				return s.View
			}
			return s.Atomically
		}
		_, c, s := fakeSession(t)
		errc := retrying(t, s, runner(s))
		c.Close()
		if err := <-errc; !errors.Is(err, client.ErrClosed) {
			t.Fatalf("view %v: waiting in Retry, then Close: %v, want ErrClosed", view, err)
		}

		f, _, s := fakeSession(t)
		errc = retrying(t, s, runner(s))
		f.send(&wire.ShareClosed{Share: 1, Code: wire.CodeForbidden, Message: "revoked"})
		var sc *client.ShareClosedError
		if err := <-errc; !errors.As(err, &sc) || sc.Code != wire.CodeForbidden {
			t.Fatalf("view %v: waiting in Retry, then ShareClosed: %v, want the share's error", view, err)
		}

		_, _, s = fakeSession(t)
		errc = retrying(t, s, runner(s))
		s.Close(testCtx(t))
		if err := <-errc; !errors.Is(err, client.ErrShareClosed) {
			t.Fatalf("view %v: waiting in Retry, then Share.Close: %v, want ErrShareClosed", view, err)
		}
	}
}

// Flush returns the error of a commit left unanswered when the session
// ends (or, called after, the session's error), not nil; the commit's
// handle is in doubt.
func TestFlushReportsDoubt(t *testing.T) {
	f, c, s := fakeSession(t)
	o := record(t, s, 1)
	h := run(t, s, func(tx *stm.Tx) error { hitsF.Of(o).Add(tx, 1); return nil })
	f.recv() // the commit, never answered
	flushc := make(chan error, 2)
	go func() { flushc <- c.Flush(testCtx(t)) }()
	go func() { flushc <- s.Flush(testCtx(t)) }()
	c.Close()
	for range 2 {
		if err := <-flushc; !errors.Is(err, client.ErrClosed) {
			t.Fatalf("Flush with a commit unanswered at Close: %v, want an error wrapping ErrClosed", err)
		}
	}
	// Its handle says in doubt, not aborted: the server may have applied it.
	if st, err := h.Status(), h.Err(); st != stm.InDoubt || !errors.Is(err, client.ErrInDoubt) {
		t.Fatalf("handle of the unanswered commit: %v (%v), want in doubt", st, err)
	}
}

// slowLoad is a cache whose Load first runs hook.
type slowLoad struct {
	*pebblestore.Store
	hook func()
}

func (c *slowLoad) Load(fn func(string, uint64, []wire.Object, []wire.Change) error) error {
	if c.hook != nil {
		c.hook()
	}
	return c.Store.Load(fn)
}

// A client closed while Open loads the cache leaves the commits it
// restored in doubt: Open fails, and nothing waits for them for ever.
func TestCloseDuringCacheLoad(t *testing.T) {
	ctx := testCtx(t)
	e := startServer(t, false, server.Config{})
	e.raw("bank", createAccount(1, 100)...)
	dir := filepath.Join(t.TempDir(), "cache")
	st, c := dialCached(t, e, dir, nil)
	if _, err := c.Open(ctx, "bank", account); err != nil {
		t.Fatal(err)
	}
	c.Close()
	st.Close()
	e.net.Partition("app", "server")
	st, c = dialCached(t, e, dir, nil)
	s, err := c.Open(ctx, "bank", account)
	if err != nil {
		t.Fatal(err)
	}
	b := balanceF.Of(record(t, s, 1))
	run(t, s, func(tx *stm.Tx) error { b.Set(tx, b.Get(tx)+1); return nil })
	c.Close()
	st.Close()

	st, err = pebblestore.Open(dir, pebblestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	cache := &slowLoad{Store: st}
	c2, err := client.Dial(ctx, e.net.Dialer("app"), e.addr, client.Options{Replica: 42, Cache: cache, MinBackoff: 1, MaxBackoff: 5e6})
	if err != nil {
		t.Fatal(err)
	}
	cache.hook = func() { c2.Close() } // returns once the session has ended
	if _, err := c2.Open(ctx, "bank", account); !errors.Is(err, client.ErrClosed) {
		t.Fatalf("Open while the client closes: %v, want ErrClosed", err)
	}
	if err := c2.Flush(ctx); !errors.Is(err, client.ErrClosed) {
		t.Fatalf("Flush after Close: %v, want ErrClosed (not a wait for ever)", err)
	}
}

// A function that calls Retry and returns nil (an OrElse whose
// alternatives all retried, its error dropped) still waits for a change
// and runs again, in Atomically and View alike, as the workspace's do.
func TestRetryNotPassedOn(t *testing.T) {
	for _, view := range []bool{false, true} {
		f, _, s := fakeSession(t)
		o := record(t, s, 1)
		runner := s.Atomically
		if view {
			runner = s.View
		}
		var runs atomic.Int32
		started := make(chan struct{})
		errc := make(chan error, 1)
		go func() {
			errc <- runner(testCtx(t), func(tx *stm.Tx) error {
				if runs.Add(1) == 1 {
					close(started)
				}
				if balanceF.Of(o).Get(tx) < 100 {
					_ = tx.OrElse(func(tx *stm.Tx) error { return tx.Retry() })
				}
				return nil
			})
		}()
		<-started
		f.send(&wire.Update{Share: 1, Version: 4, Origin: wire.CommitID{Replica: 2, Seq: 1},
			Writes: []wire.Op{{Kind: wire.OpSetField, Object: oid(3), Field: 1, Value: wire.Int(100)}}})
		if err := <-errc; err != nil || runs.Load() != 2 {
			t.Fatalf("view %v: %v after %d runs, want nil after 2 (one before the change, one after)", view, err, runs.Load())
		}
	}
}
