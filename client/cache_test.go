package client_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/weft-stm/weft/client"
	"github.com/weft-stm/weft/server"
	"github.com/weft-stm/weft/stm"
	"github.com/weft-stm/weft/store/pebblestore"
	"github.com/weft-stm/weft/transport"
	"github.com/weft-stm/weft/wire"
)

// TestOfflineCache: an application with a cache starts while its server
// is unreachable, reads its cached share, commits, is stopped, starts
// again (its earlier commits still pending and shown), commits again;
// meanwhile another client overwrites what one of those commits read.
// When the server is reachable again every pending commit is sent once,
// in order: the conflicting one is aborted (through the callback too),
// the others are acknowledged, and the replicas converge.
func TestOfflineCache(t *testing.T) {
	ctx := testCtx(t)
	e := startServer(t, false, server.Config{})
	var ops []wire.Op
	for n := uint64(1); n <= 3; n++ {
		ops = append(ops, createAccount(n, 100)...)
	}
	e.raw("bank", ops...)
	dir := filepath.Join(t.TempDir(), "cache")
	var mu sync.Mutex
	var aborted []wire.CommitID
	start := func() (*pebblestore.Store, *client.Client, *client.Share) {
		t.Helper()
		st, c := dialCached(t, e, dir, func(share string, id wire.CommitID, err error) {
			mu.Lock()
			aborted = append(aborted, id)
			mu.Unlock()
		})
		s, err := c.Open(ctx, "bank", account)
		if err != nil {
			t.Fatal(err)
		}
		return st, c, s
	}
	balances := func(s *client.Share) (out [3]int64) {
		s.View(ctx, func(tx *stm.Tx) error {
			for i := range out {
				out[i] = balanceF.Of(record(t, s, uint64(i+1))).Get(tx)
			}
			return nil
		})
		return out
	}
	add := func(s *client.Share, n uint64, d int64) *stm.Handle {
		b := balanceF.Of(record(t, s, n))
		return run(t, s, func(tx *stm.Tx) error { b.Set(tx, b.Get(tx)+d); return nil })
	}

	// Online once: the cache gets the share and an acknowledged commit.
	st, c, s := start()
	if err := add(s, 1, 1).Wait(ctx); err != nil {
		t.Fatal(err)
	}
	c.Close()
	st.Close()

	// Offline: start, read, commit, stop.
	e.net.Partition("app", "server")
	st, c, s = start()
	if c.State() != client.Reconnecting {
		t.Fatalf("state %v offline", c.State())
	}
	if got := balances(s); got != [3]int64{101, 100, 100} {
		t.Fatalf("cached share %v", got)
	}
	add(s, 1, 10)
	add(s, 2, 5)
	c.Close()
	st.Close()

	// Another client overwrites account 2 meanwhile.
	other, err := client.Dial(ctx, e.net.Dialer("other"), e.addr, client.Options{Replica: 7})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	os, err := other.Open(ctx, "bank", account)
	if err != nil {
		t.Fatal(err)
	}
	if err := add(os, 2, 100).Wait(ctx); err != nil {
		t.Fatal(err)
	}

	// Offline again: the earlier commits show; one more.
	st, c, s = start()
	defer st.Close()
	defer c.Close()
	if got := balances(s); got != [3]int64{111, 105, 100} {
		t.Fatalf("after a restart offline: %v, want the pending commits shown", got)
	}
	if s.Pending() != 2 {
		t.Fatalf("%d pending after the restart, want 2", s.Pending())
	}
	h3 := add(s, 3, 7)

	e.net.Heal("app", "server")
	if err := c.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if err := h3.Err(); err != nil {
		t.Fatalf("the commit after the restart: %v", err)
	}
	mu.Lock()
	if len(aborted) != 1 || aborted[0].Seq != 3 {
		t.Errorf("aborted %v, want the second offline commit (seq 3)", aborted)
	}
	mu.Unlock()
	if err := s.WaitVersion(ctx, os.Version()); err != nil {
		t.Fatal(err)
	}
	if err := os.WaitVersion(ctx, s.Version()); err != nil {
		t.Fatal(err)
	}
	want := [3]int64{111, 200, 107}
	if got := balances(s); got != want {
		t.Errorf("app: %v, want %v", got, want)
	}
	if got := balances(os); got != want {
		t.Errorf("other: %v, want %v", got, want)
	}
}

// TestCacheObjectIDs: a record created after a restart on the cache gets
// an id no earlier life of the replica used (here, of a record created and
// removed: the cache holds no object to count), so the server takes it.
func TestCacheObjectIDs(t *testing.T) {
	ctx := testCtx(t)
	e := startServer(t, false, server.Config{})
	dir := filepath.Join(t.TempDir(), "cache")
	life := func(remove bool) (wire.ObjectID, error) {
		t.Helper()
		st, err := pebblestore.Open(dir, pebblestore.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		c, err := client.Dial(ctx, e.net.Dialer("app"), e.addr, client.Options{Replica: 42, Cache: st})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		s, err := c.Open(ctx, "ids", account)
		if err != nil {
			t.Fatal(err)
		}
		var o *stm.Object
		if err := s.Atomically(ctx, func(tx *stm.Tx) error {
			o = s.Create(tx, account)
			return nil
		}); err != nil || !remove {
			return stm.IDOf(o), err
		}
		return stm.IDOf(o), s.Atomically(ctx, func(tx *stm.Tx) error {
			s.Remove(tx, o)
			return nil
		})
	}
	first, err := life(true)
	if err != nil {
		t.Fatal(err)
	}
	second, err := life(false)
	if err != nil {
		t.Fatalf("a record created after a restart: %v (the first life's was %v)", err, first)
	}
	if second == first {
		t.Fatalf("both lives created %v", first)
	}
}

// TestReplicaReused: a client restarted without its cache under the same
// replica id numbers its commits from 1 again; the server refuses them
// with a clear error instead of answering with the old verdicts.
func TestReplicaReused(t *testing.T) {
	ctx := testCtx(t)
	e := startServer(t, false, server.Config{})
	life := func() error {
		c, err := client.Dial(ctx, e.net.Dialer("app"), e.addr, client.Options{Replica: 42})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		s, err := c.Open(ctx, "reuse", account)
		if err != nil {
			t.Fatal(err)
		}
		return s.Atomically(ctx, func(tx *stm.Tx) error {
			balanceF.Of(s.Create(tx, account)).Set(tx, 1)
			return nil
		})
	}
	if err := life(); err != nil {
		t.Fatal(err)
	}
	err := life()
	var ae *client.AbortError
	if !errors.As(err, &ae) || ae.Code != wire.CodeInvalid || !strings.Contains(ae.Message, "commit id 42:1 was already used") {
		t.Fatalf("the second life's commit: %v, want aborted: id already used", err)
	}
}

// TestReconnectWhileOpeningFromCache: a client that reconnects while Open
// loads a share from the cache sends the share's restored commits only
// with its OpenShare, so the server applies each once and aborts none
// (sent before the OpenShare, one would be aborted as on a share not
// open, and then sent again by Open).
func TestReconnectWhileOpeningFromCache(t *testing.T) {
	ctx := testCtx(t)
	e := startServer(t, false, server.Config{})
	e.raw("bank", createAccount(1, 100)...)
	dir := filepath.Join(t.TempDir(), "cache")
	var aborted atomic.Int32
	onAbort := func(string, wire.CommitID, error) { aborted.Add(1) }
	start := func() (*pebblestore.Store, *client.Client, *client.Share) {
		t.Helper()
		st, c := dialCached(t, e, dir, onAbort)
		s, err := c.Open(ctx, "bank", account)
		if err != nil {
			t.Fatal(err)
		}
		return st, c, s
	}
	st, c, _ := start() // online once: the cache gets the share
	c.Close()
	st.Close()

	e.net.Partition("app", "server")
	st, c, s := start()
	b := balanceF.Of(record(t, s, 1))
	run(t, s, func(tx *stm.Tx) error { b.Set(tx, b.Get(tx)+1); return nil })
	c.Close()
	st.Close()

	// Restart offline; the connection comes back while Open is between
	// its load from the cache and the announcement of the share.
	var c2 *client.Client
	reconnected := make(chan error, 1)
	client.SetHookAfterFromCache(func() {
		e.net.Heal("app", "server")
		reconnected <- c2.WaitState(ctx, client.Connected)
	})
	defer client.SetHookAfterFromCache(nil)
	st, c2 = dialCached(t, e, dir, onAbort)
	defer st.Close()
	defer c2.Close()
	s, err := c2.Open(ctx, "bank", account)
	if err != nil {
		t.Fatal(err)
	}
	if err := <-reconnected; err != nil {
		t.Fatal(err)
	}
	if err := c2.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if n := aborted.Load(); n != 0 {
		t.Fatalf("%d commits aborted, want none", n)
	}
	_, other := e.open("bank")
	if err := other.WaitVersion(ctx, s.Version()); err != nil {
		t.Fatal(err)
	}
	if _, got := snapshot(t, other); got[oid(3)].Balance != 101 {
		t.Fatalf("balance %d on the server, want 101", got[oid(3)].Balance)
	}
}

// primeCache makes a cache in a fresh directory holding share "bank" as
// the server has it, and returns the directory.
func primeCache(t *testing.T, e *env) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "cache")
	st, c := dialCached(t, e, dir, nil)
	defer st.Close()
	defer c.Close()
	if c.ConnErr() != nil {
		t.Fatalf("connected, ConnErr %v", c.ConnErr())
	}
	if _, err := c.Open(testCtx(t), "bank", account); err != nil {
		t.Fatal(err)
	}
	return dir
}

// dialCached opens the cache in dir and dials a client with it: replica
// 42, reconnecting within milliseconds, its aborts of commits made before
// a restart reported to onAbort.
func dialCached(t *testing.T, e *env, dir string, onAbort func(string, wire.CommitID, error)) (*pebblestore.Store, *client.Client) {
	t.Helper()
	return dialCachedVia(t, e, e.net.Dialer("app"), dir, onAbort)
}

// dialCachedVia is dialCached through dial.
func dialCachedVia(t *testing.T, e *env, dial transport.Dialer, dir string, onAbort func(string, wire.CommitID, error)) (*pebblestore.Store, *client.Client) {
	t.Helper()
	st, err := pebblestore.Open(dir, pebblestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.Dial(testCtx(t), dial, e.addr, client.Options{Replica: 42, Cache: st,
		MinBackoff: 1, MaxBackoff: 5e6, OnAbort: onAbort})
	if err != nil {
		st.Close()
		t.Fatal(err)
	}
	return st, c
}

// TestCacheAfterSnapshotResync: a replica that resyncs by snapshot while
// it has commits pending caches the new state once they are all answered
// (here aborted: no later change would have done it), so a restart
// offline shows the state it last had, not the one before the outage.
func TestCacheAfterSnapshotResync(t *testing.T) {
	ctx := testCtx(t)
	cfg := server.Config{}
	cfg.Share.LogSize = 2 // an outage of more changes resyncs by snapshot
	e := startServer(t, false, cfg)
	e.raw("bank", createAccount(1, 100)...)
	dir := primeCache(t, e)
	e.net.Partition("app", "server")
	st, c := dialCached(t, e, dir, nil) // offline, from the cache
	s, err := c.Open(ctx, "bank", account)
	if err != nil {
		t.Fatal(err)
	}
	b := balanceF.Of(record(t, s, 1))
	h := run(t, s, func(tx *stm.Tx) error { b.Set(tx, b.Get(tx)+1); return nil })

	_, o := e.open("bank")
	ob := balanceF.Of(record(t, o, 1))
	for range 5 {
		if err := o.Atomically(ctx, func(tx *stm.Tx) error { ob.Set(tx, ob.Get(tx)+10); return nil }); err != nil {
			t.Fatal(err)
		}
	}
	e.net.Heal("app", "server")
	if err := h.Wait(ctx); !errors.Is(err, stm.ErrAborted) {
		t.Fatalf("the offline commit: %v, want aborted (conflict)", err)
	}
	if err := s.WaitVersion(ctx, o.Version()); err != nil {
		t.Fatal(err)
	}
	c.Close()
	st.Close()
	restartOffline(t, e, dir, o.Version())
}

// restartOffline starts the application again on its cache in dir, the
// server unreachable, and checks that its share shows version want with
// nothing pending.
func restartOffline(t *testing.T, e *env, dir string, want uint64) *client.Share {
	t.Helper()
	e.net.Partition("app", "server")
	st, c := dialCached(t, e, dir, nil)
	t.Cleanup(func() { st.Close() })
	t.Cleanup(func() { c.Close() })
	s, err := c.Open(testCtx(t), "bank", account)
	if err != nil {
		t.Fatal(err)
	}
	if s.Version() != want || s.Pending() != 0 {
		t.Fatalf("restarted offline at version %d with %d pending, want version %d with none", s.Version(), s.Pending(), want)
	}
	return s
}

// TestCacheAfterSnapshotResyncAcked: as TestCacheAfterSnapshotResync, but
// the server had applied the pending commit and its Ack was lost with the
// connection. The snapshot of the resync holds the commit, whose resend is
// acknowledged at a version the replica already holds: that verdict is the
// one the cache waited for.
func TestCacheAfterSnapshotResyncAcked(t *testing.T) {
	ctx := testCtx(t)
	cfg := server.Config{}
	cfg.Share.LogSize = 2 // an outage of more changes resyncs by snapshot
	e := startServer(t, false, cfg)
	e.raw("bank", createAccount(1, 100)...)
	dir := primeCache(t, e)

	var mu sync.Mutex
	offline, armed := false, false
	lost := make(chan struct{})
	dial := func(ctx context.Context, addr string) (transport.Conn, error) {
		mu.Lock()
		defer mu.Unlock()
		if offline {
			return nil, errors.New("test: offline")
		}
		c, err := e.net.Dial(ctx, "app", addr)
		if err != nil {
			return nil, err
		}
		return &ackLoser{MemConn: c, lose: func() bool {
			mu.Lock()
			defer mu.Unlock()
			if !armed {
				return false
			}
			armed, offline = false, true
			close(lost)
			return true
		}}, nil
	}
	st, c := dialCachedVia(t, e, dial, dir, nil)
	s, err := c.Open(ctx, "bank", account)
	if err != nil {
		t.Fatal(err)
	}
	b := balanceF.Of(record(t, s, 1))
	mu.Lock()
	armed = true
	mu.Unlock()
	h := run(t, s, func(tx *stm.Tx) error { b.Set(tx, b.Get(tx)+1); return nil })
	select {
	case <-lost:
	case <-ctx.Done():
		t.Fatal("the Ack never came")
	}

	_, o := e.open("bank")
	ob := balanceF.Of(record(t, o, 1))
	for range 5 { // past the log: the replica resyncs by snapshot
		if err := o.Atomically(ctx, func(tx *stm.Tx) error { ob.Set(tx, ob.Get(tx)+10); return nil }); err != nil {
			t.Fatal(err)
		}
	}
	mu.Lock()
	offline = false
	mu.Unlock()
	if err := h.Wait(ctx); err != nil {
		t.Fatalf("the commit whose Ack was lost: %v, want acknowledged", err)
	}
	if err := s.WaitVersion(ctx, o.Version()); err != nil {
		t.Fatal(err)
	}
	c.Close()
	st.Close()
	s = restartOffline(t, e, dir, o.Version())
	if got, want := balanceF.Of(record(t, s, 1)).Get(stm.Auto), int64(100+1+50); got != want {
		t.Fatalf("restarted offline with balance %d, want %d", got, want)
	}
}

// ackLoser is a connection that is lost just before the first Ack it
// receives once lose says so.
type ackLoser struct {
	*transport.MemConn
	lose func() bool
}

func (c *ackLoser) Recv(ctx context.Context) (wire.Message, error) {
	m, err := c.MemConn.Recv(ctx)
	if _, ok := m.(*wire.Ack); ok && c.lose() {
		c.MemConn.Close()
		return nil, errors.New("test: connection lost before the Ack")
	}
	return m, err
}

// TestConnErr: a client that starts offline from its cache, or loses its
// server, says why it is not connected; once connected it says nothing.
func TestConnErr(t *testing.T) {
	ctx := testCtx(t)
	e := startServer(t, false, server.Config{})
	e.raw("bank", createAccount(1, 100)...)
	dir := primeCache(t, e)
	e.net.Partition("app", "server")
	st, c := dialCached(t, e, dir, nil)
	defer st.Close()
	defer c.Close()
	if c.State() != client.Reconnecting || c.ConnErr() == nil {
		t.Fatalf("offline: state %v, ConnErr %v; want reconnecting with the dial's error", c.State(), c.ConnErr())
	}
	e.net.Heal("app", "server")
	if err := c.WaitState(ctx, client.Connected); err != nil {
		t.Fatal(err)
	}
	if c.ConnErr() != nil {
		t.Fatalf("reconnected, ConnErr %v", c.ConnErr())
	}
}

// TestConnErrAfterDrop: a client whose connection drops says why at once,
// before any attempt to connect again has failed.
func TestConnErrAfterDrop(t *testing.T) {
	e := startServer(t, false, server.Config{})
	dial, cut := e.recordingDialer("app")
	e.dial = dial
	c := e.clientWith(client.Options{MinBackoff: time.Hour}) // no attempt within the test
	cut(-1)
	if err := c.WaitState(testCtx(t), client.Reconnecting); err != nil {
		t.Fatal(err)
	}
	if c.ConnErr() == nil {
		t.Fatal("reconnecting after the connection dropped, ConnErr nil")
	}
}

// TestHandshakeShutdownRetried: a server that goes away while a
// reconnecting client's Hello is on its way answers it with an Error of
// code shutdown. That is a restart, not a refusal: the client tries again
// and reaches the server that comes back, where an Error of code auth
// would have ended the session.
func TestHandshakeShutdownRetried(t *testing.T) {
	for _, tc := range []struct {
		code   wire.Code
		refuse bool
	}{{wire.CodeShutdown, false}, {wire.CodeInternal, false}, {wire.CodeAuth, true}} {
		t.Run(tc.code.String(), func(t *testing.T) {
			ctx := testCtx(t)
			e := startServer(t, false, server.Config{})
			going, err := e.net.Listen("going")
			if err != nil {
				t.Fatal(err)
			}
			defer going.Close()
			answered := make(chan struct{})
			go func() { // the server going away: it answers one Hello so
				defer close(answered)
				conn, err := going.Accept(ctx)
				if err != nil {
					return
				}
				defer conn.Close()
				if _, err := conn.Recv(ctx); err == nil {
					conn.Send(ctx, &wire.Error{Code: tc.code, Message: "test: " + tc.code.String()})
				}
			}()
			dial, cut := e.recordingDialer("app")
			var dials atomic.Int32
			c, err := client.Dial(ctx, func(ctx context.Context, addr string) (transport.Conn, error) {
				if dials.Add(1) == 2 {
					return e.net.Dial(ctx, "app", "going")
				}
				return dial(ctx, addr)
			}, e.addr, client.Options{Replica: 42, MinBackoff: 1, MaxBackoff: 1})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			cut(-1)
			<-answered
			if tc.refuse {
				if err := c.WaitState(ctx, client.Closed); err != nil || !errors.Is(c.Err(), client.ErrDisconnected) {
					t.Fatalf("after an auth refusal: %v, Err %v; want the session ended", err, c.Err())
				}
				return
			}
			if err := c.WaitState(ctx, client.Connected); err != nil || c.Err() != nil || dials.Load() < 3 {
				t.Fatalf("after a %v answer: %v, state %v, Err %v, %d dials; want connected again", tc.code, err, c.State(), c.Err(), dials.Load())
			}
		})
	}
}
