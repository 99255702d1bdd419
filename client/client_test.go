package client_test

import (
	"context"
	"errors"
	"maps"
	"math/rand/v2"
	"reflect"
	"sync"
	"testing"

	"github.com/weft-stm/weft/client"
	"github.com/weft-stm/weft/server"
	"github.com/weft-stm/weft/stm"
	"github.com/weft-stm/weft/transport"
	"github.com/weft-stm/weft/wire"
)

func TestOpenSnapshot(t *testing.T) {
	both(t, func(t *testing.T, tcp bool) {
		e := startServer(t, tcp, server.Config{})
		ops := append(createAccount(1, 10), createAccount(2, 20)...)
		ops = append(ops,
			wire.Op{Kind: wire.OpCounterAdd, Object: oid(4), Delta: 5},
			wire.Op{Kind: wire.OpMapPut, Object: oid(5), Key: wire.String("vip"), Value: wire.Int(1)},
			// A standalone var: no record refers to it, so it stays out.
			wire.Op{Kind: wire.OpCreate, Object: oid(99), ObjectKind: wire.ObjectVar},
		)
		ver := e.raw("bank", ops...)
		_, s := e.open("bank")
		if s.Version() != ver {
			t.Fatalf("version %d, want %d", s.Version(), ver)
		}
		v, got := snapshot(t, s)
		want := map[wire.ObjectID]accountState{
			oid(3): {Balance: 10, Name: "acct1", Hits: 5, Tags: map[string]int64{"vip": 1}},
			oid(6): {Balance: 20, Name: "acct2", Tags: map[string]int64{}},
		}
		if v != ver || !reflect.DeepEqual(got, want) {
			t.Fatalf("snapshot at %d: %+v, want %+v at %d", v, got, want, ver)
		}
		if _, ok := s.Object(oid(99)); ok {
			t.Fatal("a standalone var was materialised")
		}
	})
}

// Schema evolution: a newer application (v2) adds the class Comment and
// a field of Account that refers to the latest comment; the older one
// (v1: Account alone) keeps working. Comments, and their collections, are
// kept out of v1's replica (not in Records, not found by Object), whether
// they come in its snapshot or in Updates, created, written or removed;
// v1's commits leave v2's data intact.
var (
	textF     = stm.NewVarField[string](1, "text")
	votesF    = stm.NewMapField[string, int64](2, "votes")
	comment   = stm.NewClass("Comment", 9, textF, votesF)
	balanceV2 = stm.NewVarField[int64](1, "balance")
	latestF   = stm.NewVarField[*stm.Object](9, "latest")
	accountV2 = stm.NewClass("Account", 7, balanceV2, latestF) // v2 reads only these
)

func createComment(rec, votes uint64, text string) []wire.Op {
	return []wire.Op{
		{Kind: wire.OpCreate, Object: oid(votes), ObjectKind: wire.ObjectMap},
		{Kind: wire.OpCreate, Object: oid(rec), Class: uint32(comment.ID()), ObjectKind: wire.ObjectRecord, Fields: []wire.Field{
			{ID: 1, Value: wire.String(text)}, {ID: 2, Value: wire.Ref(oid(votes))},
		}},
		{Kind: wire.OpSetField, Object: oid(3), Field: 9, Value: wire.Ref(oid(rec))},
	}
}

func TestUnknownClass(t *testing.T) {
	ctx := testCtx(t)
	cfg := server.Config{}
	cfg.Share.LogSize = 2 // an outage of more changes resyncs by snapshot
	e := startServer(t, false, cfg)
	e.raw("bank", createAccount(1, 10)...)
	_, early := e.open("bank") // comments reach it in Updates

	// A third v1 replica is offline while the comment comes: it resyncs
	// by snapshot.
	var conns []*transport.MemConn
	dial := func(ctx context.Context, addr string) (transport.Conn, error) {
		c, err := e.net.Dialer("offline")(ctx, addr)
		if mc, ok := c.(*transport.MemConn); ok {
			conns = append(conns, mc)
		}
		return c, err
	}
	offline, err := client.Dial(ctx, dial, e.addr, client.Options{Replica: 77})
	if err != nil {
		t.Fatal(err)
	}
	defer offline.Close()
	resynced, err := offline.Open(ctx, "bank", account)
	if err != nil {
		t.Fatal(err)
	}
	e.net.Partition("offline", "server")
	e.net.Cut(conns[0])

	e.raw("bank", wire.Op{Kind: wire.OpCounterAdd, Object: oid(4), Delta: 1})
	e.raw("bank", createComment(100, 101, "first")...)
	_, late := e.open("bank") // a comment is in its snapshot
	v := e.raw("bank", wire.Op{Kind: wire.OpMapPut, Object: oid(101), Key: wire.String("ann"), Value: wire.Int(1)})
	e.net.Heal("offline", "server")
	v1 := func(s *client.Share, ids ...uint64) {
		t.Helper()
		if err := s.WaitVersion(ctx, v); err != nil {
			t.Fatal(err)
		}
		if err := s.Err(); err != nil {
			t.Fatalf("share failed: %v", err)
		}
		if rs := s.Records(); len(rs) != 1 || stm.IDOf(rs[0]) != oid(3) {
			t.Fatalf("records %v, want account 1 alone", rs)
		}
		for _, id := range ids {
			if _, ok := s.Object(oid(id)); ok {
				t.Fatalf("object %v of a comment is in the replica", oid(id))
			}
		}
	}
	v1(early, 100, 101)
	v1(late, 100, 101)
	v1(resynced, 100, 101)

	// v1 writes the account that refers to a comment; v2 writes on.
	if err := late.Atomically(ctx, func(tx *stm.Tx) error {
		b := balanceF.Of(record(t, late, 1))
		b.Set(tx, b.Get(tx)+10)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	e.raw("bank", createComment(102, 103, "second")...)
	v = e.raw("bank", wire.Op{Kind: wire.OpRemove, Object: oid(100)}, wire.Op{Kind: wire.OpRemove, Object: oid(101)})
	v1(early, 100, 101, 102, 103)
	v1(late, 100, 101, 102, 103)
	v1(resynced, 100, 101, 102, 103)

	// v2 finds all of it.
	c2 := e.client()
	s2, err := c2.Open(ctx, "bank", accountV2, comment)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := s2.Object(oid(100)); ok {
		t.Fatal("the removed comment is back")
	}
	x, ok := s2.Object(oid(102))
	if !ok {
		t.Fatal("v2 does not find its comment")
	}
	acct := record(t, s2, 1)
	if err := s2.Atomically(ctx, func(tx *stm.Tx) error {
		if got := balanceV2.Of(acct).Get(tx); got != 20 {
			t.Errorf("balance %d, want 20", got)
		}
		if got := latestF.Of(acct).Get(tx); got != x {
			t.Errorf("latest comment %v, want %v", got, x)
		}
		if got := textF.Of(x.(*stm.Object)).Get(tx); got != "second" {
			t.Errorf("comment text %q", got)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

func TestCommitSeenByOther(t *testing.T) {
	both(t, func(t *testing.T, tcp bool) {
		e := startServer(t, tcp, server.Config{})
		e.raw("bank", createAccount(1, 10)...)
		_, a := e.open("bank")
		_, b := e.open("bank")
		ctx := testCtx(t)
		oa := record(t, a, 1)
		err := a.Atomically(ctx, func(tx *stm.Tx) error {
			balanceF.Of(oa).Set(tx, balanceF.Of(oa).Get(tx)+5)
			nameF.Of(oa).Set(tx, "renamed")
			hitsF.Of(oa).Add(tx, 2)
			tagsF.Of(oa).PutFast(tx, "k", 7)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		want := accountState{Balance: 15, Name: "renamed", Hits: 2, Tags: map[string]int64{"k": 7}}
		// The committer's replica has its own write once Atomically returns.
		if _, got := snapshot(t, a); !reflect.DeepEqual(got[oid(3)], want) {
			t.Fatalf("committer sees %+v, want %+v", got[oid(3)], want)
		}
		if err := b.WaitVersion(ctx, a.Version()); err != nil {
			t.Fatal(err)
		}
		if _, got := snapshot(t, b); !reflect.DeepEqual(got[oid(3)], want) {
			t.Fatalf("other client sees %+v, want %+v", got[oid(3)], want)
		}
		// And a later transaction on b reads and writes on top of it.
		ob := record(t, b, 1)
		if err := b.Atomically(ctx, func(tx *stm.Tx) error {
			balanceF.Of(ob).Set(tx, balanceF.Of(ob).Get(tx)*2)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if err := a.WaitVersion(ctx, b.Version()); err != nil {
			t.Fatal(err)
		}
		a.View(ctx, func(tx *stm.Tx) error {
			if got := balanceF.Of(oa).Get(tx); got != 30 {
				t.Errorf("balance %d, want 30", got)
			}
			return nil
		})
	})
}

// TestRemoteCreate: a record created after the open arrives by Update.
func TestRemoteCreate(t *testing.T) {
	e := startServer(t, false, server.Config{})
	_, s := e.open("bank")
	ver := e.raw("bank", createAccount(5, 50)...)
	ctx := testCtx(t)
	if err := s.WaitVersion(ctx, ver); err != nil {
		t.Fatal(err)
	}
	o := record(t, s, 5)
	if err := s.Atomically(ctx, func(tx *stm.Tx) error {
		hitsF.Of(o).Add(tx, 1)
		tagsF.Of(o).PutFast(tx, "new", 1)
		balanceF.Of(o).Set(tx, balanceF.Of(o).Get(tx)+1)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	_, fresh := e.open("bank")
	_, got := snapshot(t, fresh)
	want := accountState{Balance: 51, Name: "acct5", Hits: 1, Tags: map[string]int64{"new": 1}}
	if !reflect.DeepEqual(got[oid(15)], want) {
		t.Fatalf("fresh snapshot %+v, want %+v", got[oid(15)], want)
	}
}

// TestConflictRetried: a read-modify-write that loses the race to another
// client's is retried on the new state, so both increments count once.
func TestConflictRetried(t *testing.T) {
	both(t, func(t *testing.T, tcp bool) {
		e := startServer(t, tcp, server.Config{})
		e.raw("bank", createAccount(1, 100)...)
		_, a := e.open("bank")
		_, b := e.open("bank")
		ctx := testCtx(t)
		oa, ob := record(t, a, 1), record(t, b, 1)
		incr := func(o *stm.Object) func(tx *stm.Tx) error {
			return func(tx *stm.Tx) error {
				balanceF.Of(o).Set(tx, balanceF.Of(o).Get(tx)+1)
				return nil
			}
		}
		runs := 0
		err := a.Atomically(ctx, func(tx *stm.Tx) error {
			runs++
			if err := incr(oa)(tx); err != nil {
				return err
			}
			if runs == 1 {
				// b commits after a read, before a commits: a's first
				// attempt must be aborted by the server.
				if err := b.Atomically(ctx, incr(ob)); err != nil {
					t.Errorf("b: %v", err)
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if runs != 2 {
			t.Errorf("a ran %d times, want 2 (one conflict, one retry)", runs)
		}
		_, fresh := e.open("bank")
		for _, s := range []*client.Share{a, b, fresh} {
			if err := s.WaitVersion(ctx, a.Version()); err != nil {
				t.Fatal(err)
			}
			_, got := snapshot(t, s)
			if got[oid(3)].Balance != 102 {
				t.Errorf("%v: balance %d, want 102", s, got[oid(3)].Balance)
			}
		}
	})
}

// TestConcurrentIncrements: many clients increment one field at once;
// every increment lands exactly once.
func TestConcurrentIncrements(t *testing.T) {
	e := startServer(t, false, server.Config{})
	e.raw("bank", createAccount(1, 0)...)
	const clients, each = 4, 25
	ctx := testCtx(t)
	var wg sync.WaitGroup
	for range clients {
		_, s := e.open("bank")
		o := record(t, s, 1)
		wg.Go(func() {
			for range each {
				if err := s.Atomically(ctx, func(tx *stm.Tx) error {
					balanceF.Of(o).Set(tx, balanceF.Of(o).Get(tx)+1)
					return nil
				}); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	_, fresh := e.open("bank")
	if _, got := snapshot(t, fresh); got[oid(3)].Balance != clients*each {
		t.Fatalf("balance %d, want %d", got[oid(3)].Balance, clients*each)
	}
}

// TestBank: 4 clients move money among 100 accounts concurrently; every
// snapshot any client takes sums to the initial total, and every replica
// ends equal to a fresh client's snapshot.
func TestBank(t *testing.T) {
	both(t, func(t *testing.T, tcp bool) {
		const accounts, clients, transfers, initial = 100, 4, 150, 100
		e := startServer(t, tcp, server.Config{})
		var ops []wire.Op
		for n := uint64(1); n <= accounts; n++ {
			ops = append(ops, createAccount(n, initial)...)
		}
		e.raw("bank", ops...)
		ctx := testCtx(t)
		shares := make([]*client.Share, clients)
		for i := range shares {
			_, shares[i] = e.open("bank")
		}
		total := func(t *testing.T, s *client.Share) {
			v, got := snapshot(t, s)
			var sum int64
			for _, st := range got {
				sum += st.Balance
			}
			if len(got) != accounts || sum != accounts*initial {
				t.Errorf("%d accounts summing to %d at version %d, want %d and %d", len(got), sum, v, accounts, accounts*initial)
			}
		}
		var wg sync.WaitGroup
		for i, s := range shares {
			rng := rand.New(rand.NewPCG(uint64(i), 7))
			recs := s.Records()
			wg.Go(func() {
				for range transfers {
					from, to := recs[rng.IntN(accounts)], recs[rng.IntN(accounts)]
					amount := int64(rng.IntN(30))
					err := s.Atomically(ctx, func(tx *stm.Tx) error {
						fb := balanceF.Of(from).Get(tx)
						if fb < amount {
							return nil // not enough: a read-only transaction
						}
						balanceF.Of(from).Set(tx, fb-amount)
						balanceF.Of(to).Set(tx, balanceF.Of(to).Get(tx)+amount)
						hitsF.Of(to).Add(tx, 1)
						return nil
					})
					if err != nil {
						t.Error(err)
						return
					}
					total(t, s)
				}
			})
		}
		wg.Wait()
		_, fresh := e.open("bank")
		fv, want := snapshot(t, fresh)
		for i, s := range shares {
			if err := s.WaitVersion(ctx, fv); err != nil {
				t.Fatal(err)
			}
			v, got := snapshot(t, s)
			if v != fv || !maps.EqualFunc(got, want, func(a, b accountState) bool { return reflect.DeepEqual(a, b) }) {
				t.Errorf("client %d at version %d differs from the server's state at %d", i, v, fv)
			}
		}
		total(t, fresh)
	})
}

func TestLocalObjectRefused(t *testing.T) {
	e := startServer(t, false, server.Config{})
	_, s := e.open("empty")
	// A transaction touching an object outside the share is refused before
	// anything is sent.
	local := stm.NewVar(s.Workspace(), 1)
	err := s.Atomically(testCtx(t), func(tx *stm.Tx) error {
		local.Set(tx, 2)
		return nil
	})
	if !errors.Is(err, client.ErrNotInShare) {
		t.Fatalf("write to a local object: %v, want ErrNotInShare", err)
	}
}

// Each client has a workspace of its own: an object of one client's
// replica touched in another client's transaction stops fn, and the
// commit fails with stm.ErrWrongWorkspace without reaching the server.
func TestOtherClientsObjectRefused(t *testing.T) {
	e := startServer(t, false, server.Config{})
	e.raw("bank", createAccount(1, 10)...)
	_, a := e.open("bank")
	_, b := e.open("bank")
	oa, ob := record(t, a, 1), record(t, b, 1)
	reached := false
	err := a.Atomically(testCtx(t), func(tx *stm.Tx) error {
		balanceF.Of(oa).Set(tx, balanceF.Of(ob).Get(tx)+1)
		reached = true
		return nil
	})
	if !errors.Is(err, stm.ErrWrongWorkspace) || reached {
		t.Fatalf("read of another client's object: %v (fn went on: %v), want ErrWrongWorkspace", err, reached)
	}
	if _, err := a.Run(testCtx(t), func(tx *stm.Tx) error { balanceF.Of(ob).Set(tx, 1); return nil }); !errors.Is(err, stm.ErrWrongWorkspace) {
		t.Fatalf("write of another client's object: %v, want ErrWrongWorkspace", err)
	}
	if err := a.Flush(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	if _, got := snapshot(t, a); got[oid(3)].Balance != 10 {
		t.Fatalf("balance %d after refused commits, want 10", got[oid(3)].Balance)
	}
}

// fn may not commit the transaction the client runs it in: Commit is
// refused (stm.ErrEndInFn), and the commit goes to the server as usual
// once fn returns, so the replica and the server agree.
func TestCommitInsideFnRefused(t *testing.T) {
	e := startServer(t, false, server.Config{})
	e.raw("bank", createAccount(1, 10)...)
	_, s := e.open("bank")
	o := record(t, s, 1)
	err := s.Atomically(testCtx(t), func(tx *stm.Tx) error {
		balanceF.Of(o).Set(tx, 11)
		if _, err := tx.Commit(); !errors.Is(err, stm.ErrEndInFn) {
			t.Errorf("Commit inside fn: %v, want stm.ErrEndInFn", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	_, other := e.open("bank")
	if err := other.WaitVersion(testCtx(t), s.Version()); err != nil {
		t.Fatal(err)
	}
	if _, got := snapshot(t, other); got[oid(3)].Balance != 11 {
		t.Fatalf("the server has balance %d, want 11", got[oid(3)].Balance)
	}
}

func TestFnErrorUntouched(t *testing.T) {
	e := startServer(t, false, server.Config{})
	e.raw("bank", createAccount(1, 10)...)
	_, s := e.open("bank")
	o := record(t, s, 1)
	boom := errors.New("boom")
	err := s.Atomically(testCtx(t), func(tx *stm.Tx) error {
		balanceF.Of(o).Set(tx, 0)
		return boom
	})
	if err != boom {
		t.Fatalf("got %v, want fn's error itself", err)
	}
	if _, got := snapshot(t, s); got[oid(3)].Balance != 10 {
		t.Fatalf("balance %d after a failed fn, want 10", got[oid(3)].Balance)
	}
}

func TestRetryWaitsForUpdate(t *testing.T) {
	e := startServer(t, false, server.Config{})
	e.raw("bank", createAccount(1, 0)...)
	_, a := e.open("bank")
	_, b := e.open("bank")
	ctx := testCtx(t)
	oa, ob := record(t, a, 1), record(t, b, 1)
	done := make(chan error, 1)
	started := make(chan struct{})
	var once sync.Once
	go func() {
		done <- a.Atomically(ctx, func(tx *stm.Tx) error {
			bal := balanceF.Of(oa).Get(tx)
			if bal == 0 {
				once.Do(func() { close(started) })
				return tx.Retry()
			}
			balanceF.Of(oa).Set(tx, bal-1)
			return nil
		})
	}()
	<-started
	if err := b.Atomically(ctx, func(tx *stm.Tx) error { balanceF.Of(ob).Set(tx, 5); return nil }); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if _, got := snapshot(t, a); got[oid(3)].Balance != 4 {
		t.Fatalf("balance %d, want 4", got[oid(3)].Balance)
	}
}

func TestDialNeedsReplica(t *testing.T) {
	e := startServer(t, false, server.Config{})
	if _, err := client.Dial(testCtx(t), e.dial, e.addr, client.Options{}); err == nil {
		t.Fatal("Dial with neither Replica nor Rand succeeded")
	}
	c, err := client.Dial(testCtx(t), e.dial, e.addr, client.Options{Replica: 77})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if c.Replica() != 77 {
		t.Fatalf("replica %d", c.Replica())
	}
}

func TestCloseAfterServerShutdown(t *testing.T) {
	e := startServer(t, false, server.Config{})
	c := e.clientWith(client.Options{NoReconnect: true})
	ctx := testCtx(t)
	s, err := c.Open(ctx, "bank", account)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	err = s.WaitVersion(ctx, 100)
	var we *wire.Error
	if !errors.Is(err, client.ErrDisconnected) || !errors.As(err, &we) || we.Code != wire.CodeShutdown {
		t.Fatalf("WaitVersion after shutdown: %v, want ErrDisconnected wrapping Error shutdown", err)
	}
}

// An object kept from a share closed and opened again is not the
// reopened share's object of the same id: it is retired, and a commit
// touching it, storing a reference to it or removing it fails, sending
// nothing (its write would reach the server and every other replica but
// not this one).
func TestObjectOfEarlierOpening(t *testing.T) {
	e := startServer(t, false, server.Config{})
	ops := append(createAccount(1, 10), wire.Op{Kind: wire.OpCreate, Object: oid(10), Class: uint32(node.ID()), ObjectKind: wire.ObjectRecord})
	e.raw("bank", ops...)
	c := e.client()
	s, err := c.Open(testCtx(t), "bank", account, node)
	if err != nil {
		t.Fatal(err)
	}
	old := record(t, s, 1)
	oldHits := hitsF.Of(old)
	if err := s.Close(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	s2, err := c.Open(testCtx(t), "bank", account, node)
	if err != nil {
		t.Fatal(err)
	}
	base := s2.Version()
	x, _ := s2.Object(oid(10))
	n := x.(*stm.Object)
	for _, tc := range []struct {
		name string
		fn   func(tx *stm.Tx) error
	}{
		{"field write", func(tx *stm.Tx) error { balanceF.Of(old).Set(tx, 99); return nil }},
		{"counter add", func(tx *stm.Tx) error { oldHits.Add(tx, 5); return nil }},
		{"stale read", func(tx *stm.Tx) error {
			balanceF.Of(record(t, s2, 1)).Set(tx, balanceF.Of(old).Get(tx)+1)
			return nil
		}},
		{"reference", func(tx *stm.Tx) error { refF.Of(n).Set(tx, old); return nil }},
		{"reference in a created record", func(tx *stm.Tx) error { refF.Of(s2.Create(tx, node)).Set(tx, old); return nil }},
		{"removal", func(tx *stm.Tx) error { s2.Remove(tx, old); return nil }},
	} {
		if err := s2.Atomically(testCtx(t), tc.fn); !errors.Is(err, stm.ErrRetired) {
			t.Fatalf("%s through an object of the closed opening: %v, want ErrRetired", tc.name, err)
		}
	}
	if err := s2.Flush(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	if s2.Version() != base {
		t.Fatalf("share at version %d, want %d: nothing sent", s2.Version(), base)
	}
	b, err := e.client().Open(testCtx(t), "bank", account, node)
	if err != nil {
		t.Fatal(err)
	}
	if b.Version() != base || len(b.Records()) != 2 {
		t.Fatalf("server holds version %d with %d records, want version %d with 2", b.Version(), len(b.Records()), base)
	}
}

// A transaction of the workspace itself (or stm.Auto) that writes an
// object of an open share is refused: the write would stay on this
// replica. Reading share objects into local ones is fine.
func TestWorkspaceTxOnShareObject(t *testing.T) {
	e := startServer(t, false, server.Config{})
	e.raw("bank", createAccount(1, 10)...)
	_, s := e.open("bank")
	o := record(t, s, 1)
	ws := s.Workspace()
	err := ws.Atomically(testCtx(t), func(tx *stm.Tx) error { balanceF.Of(o).Set(tx, 99); return nil })
	if !errors.Is(err, client.ErrShareObject) {
		t.Fatalf("workspace transaction writing a share's record: %v, want ErrShareObject", err)
	}
	func() {
		defer func() {
			if err, _ := recover().(error); !errors.Is(err, client.ErrShareObject) {
				t.Fatalf("stm.Auto write of a share's record: recovered %v, want a panic with ErrShareObject", err)
			}
		}()
		hitsF.Of(o).Add(stm.Auto, 1)
	}()
	// A field the class does not have (kept in the record's map of
	// unknown fields) is the record's too.
	unknown := wire.Object{ID: oid(3), Class: uint32(account.ID()), Kind: wire.ObjectRecord, Fields: []wire.Field{{ID: 9, Value: wire.Int(42)}}}
	err = ws.Atomically(testCtx(t), func(tx *stm.Tx) error { return stm.DecodeRecord(tx, o, unknown, nil) })
	if !errors.Is(err, client.ErrShareObject) {
		t.Fatalf("workspace transaction writing an unknown field of a share's record: %v, want ErrShareObject", err)
	}
	local := stm.NewVar(ws, int64(0))
	if err := ws.Atomically(testCtx(t), func(tx *stm.Tx) error { local.Set(tx, balanceF.Of(o).Get(tx)); return nil }); err != nil {
		t.Fatalf("workspace transaction reading a share's record into a local var: %v", err)
	}
	if _, got := snapshot(t, s); got[oid(3)].Balance != 10 || got[oid(3)].Hits != 0 {
		t.Fatalf("replica holds account 1 as %+v, want it untouched", got[oid(3)])
	}
}
