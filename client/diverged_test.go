package client_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"path/filepath"
	"slices"
	"sync"
	"testing"

	"github.com/weft-stm/weft/client"
	"github.com/weft-stm/weft/server"
	"github.com/weft-stm/weft/stm"
	"github.com/weft-stm/weft/store/memstore"
	"github.com/weft-stm/weft/transport"
	"github.com/weft-stm/weft/wire"
)

// TestDivergedCache: a server restored from a backup commits past the
// version an offline client's cache holds. Served as before, the client
// would take the new history's changes as a delta onto its copy of the
// old one, and its pending commit would be validated against versions
// that now mean other states. Instead its share fails with code
// diverged, the pending commit is aborted (through the callback, as
// other rejections are) and never applied, the cache forgets both, and
// the next Open shows the server's state.
func TestDivergedCache(t *testing.T) {
	ctx := testCtx(t)
	n := transport.NewNetwork(1)
	serve := func(st server.Store) func() {
		srv, err := server.Open(server.Config{Store: st, DefaultAccess: server.AccessWrite, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		l, err := n.Listen("server")
		if err != nil {
			t.Fatal(err)
		}
		errc := make(chan error, 1)
		go func() { errc <- srv.Serve(context.Background(), l) }()
		var once sync.Once
		stop := func() {
			once.Do(func() {
				if err := srv.Shutdown(ctx); err != nil {
					t.Errorf("Shutdown: %v", err)
				}
				<-errc
			})
		}
		t.Cleanup(stop)
		return stop
	}
	e := &env{t: t, dial: n.Dialer("seed"), addr: "server", net: n}
	stA := memstore.New()
	stopA := serve(stA)
	e.raw("bank", append(createAccount(1, 100), createAccount(2, 100)...)...)
	backup := stA.Backup()

	// The cached client: two acknowledged commits after the backup, then
	// one made offline.
	dir := filepath.Join(t.TempDir(), "cache")
	aborts := make(chan error, 8)
	var offline *stm.Handle
	onAbort := func(_ string, id wire.CommitID, err error) {
		if offline == nil || id != offline.ID() {
			err = fmt.Errorf("commit %v aborted: %w", id, err)
		}
		aborts <- err
	}
	add := func(s *client.Share, k uint64, d int64) *stm.Handle {
		b := balanceF.Of(record(t, s, k))
		return run(t, s, func(tx *stm.Tx) error { b.Set(tx, b.Get(tx)+d); return nil })
	}
	st, c := dialCached(t, e, dir, onAbort)
	s, err := c.Open(ctx, "bank", account)
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := add(s, 1, 1).Wait(ctx); err != nil {
			t.Fatal(err)
		}
	}
	held := s.Version()
	n.Partition("app", "server")
	offline = add(s, 2, 50)
	c.Close()
	st.Close()

	// The server is restored from the backup, and another client commits
	// past the version the cache holds.
	stopA()
	n.Heal("app", "server")
	serve(backup)
	other, os := e.open("bank")
	for os.Version() <= held {
		if err := add(os, 1, 10).Wait(ctx); err != nil {
			t.Fatal(err)
		}
	}

	// The cached client's next life: its copy is refused.
	st, c = dialCached(t, e, dir, onAbort)
	defer st.Close()
	defer c.Close()
	// With a cache Open returns at once, the cached copy shown; the
	// server's refusal then fails the share (or is Open's error, if it
	// came first).
	s, err = c.Open(ctx, "bank", account)
	if err == nil {
		err = s.WaitVersion(ctx, math.MaxUint64)
		s.Close(ctx)
	}
	var sc *client.ShareClosedError
	if !errors.As(err, &sc) || sc.Code != wire.CodeDiverged || !errors.Is(err, client.ErrShareClosed) {
		t.Fatalf("Open of a copy of another history: %v, want ShareClosedError code diverged", err)
	}
	t.Logf("Open: %v", err)
	var ae *client.AbortError
	select {
	case got := <-aborts:
		if !errors.As(got, &ae) || ae.Code != wire.CodeDiverged || !errors.Is(got, stm.ErrAborted) {
			t.Errorf("the offline commit: %v, want aborted with code diverged", got)
		}
	case <-ctx.Done():
		t.Fatal("the offline commit was not reported aborted")
	}

	// Opened again: the server's state, without the offline commit.
	s, err = c.Open(ctx, "bank", account)
	if err != nil {
		t.Fatal(err)
	}
	if err := other.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.WaitVersion(ctx, os.Version()); err != nil {
		t.Fatal(err)
	}
	want := balancesOf(t, os)
	if got := balancesOf(t, s); got != want || s.Pending() != 0 {
		t.Fatalf("reopened: balances %v with %d pending, the server's %v", got, s.Pending(), want)
	}
	if want[1] != 100 {
		t.Fatalf("account 2 holds %d: the offline commit was applied", want[1])
	}
	// And a commit on it is acknowledged.
	if err := add(s, 2, 1).Wait(ctx); err != nil {
		t.Fatal(err)
	}
}

func balancesOf(t *testing.T, s *client.Share) (out [2]int64) {
	t.Helper()
	s.View(testCtx(t), func(tx *stm.Tx) error {
		for i := range out {
			out[i] = balanceF.Of(record(t, s, uint64(i+1))).Get(tx)
		}
		return nil
	})
	return out
}

// TestDivergedSnapshotted: a commit still unanswered when a resync's
// snapshot came may be in that snapshot, and so in the history of a
// server restored from a backup taken after it: when the copy is then
// refused as diverged, such a commit is in doubt, not aborted (an
// application told it aborted would run it again). With the test playing
// the servers: P is decided at version 4 but its Ack is lost; the
// reconnection's snapshot (version 10) holds it, and the connection is
// lost again before P's resent verdict; the server, restored from a
// backup at version 6 (P included), refuses the copy at 10.
func TestDivergedSnapshotted(t *testing.T) {
	ctx := testCtx(t)
	fl, f, c := dialFake(t, client.Options{Replica: 9})
	rec := createAccount(1, 10)[2]
	objs := func(balance int64) []wire.Object {
		fields := slices.Clone(rec.Fields)
		fields[0].Value = wire.Int(balance)
		return []wire.Object{
			{ID: oid(4), Kind: wire.ObjectCounter},
			{ID: oid(5), Kind: wire.ObjectMap},
			{ID: rec.Object, Class: rec.Class, Kind: wire.ObjectRecord, Fields: fields},
		}
	}
	epoch := wire.Epoch{Version: 1, ID: 77}
	sc := make(chan *client.Share, 1)
	go func() {
		s, err := c.Open(ctx, "bank", account)
		if err != nil {
			t.Error(err)
		}
		sc <- s
	}()
	op := f.recv().(*wire.OpenShare)
	f.send(&wire.Opened{Share: op.Share, Version: 3, Access: wire.AccessWrite, Transfer: wire.TransferSnapshot, Epoch: epoch})
	f.send(&wire.SnapshotChunk{Share: op.Share, Objects: objs(10)})
	s := <-sc
	if s == nil {
		t.FailNow()
	}
	o := record(t, s, 1)
	p := run(t, s, func(tx *stm.Tx) error { balanceF.Of(o).Set(tx, balanceF.Of(o).Get(tx)+1); return nil })
	f.recv() // P: decided at version 4, its Ack lost
	f.conn.Close()

	// The reconnection: a snapshot at 10, holding P; the connection is lost
	// before P's resent verdict.
	f = fl.accept(wire.Limits{})
	op = f.recv().(*wire.OpenShare)
	if op.Have != 3 || op.Epoch != epoch {
		t.Fatalf("reopen %+v", op)
	}
	f.recv() // P again
	f.send(&wire.Opened{Share: op.Share, Version: 10, Access: wire.AccessWrite, Transfer: wire.TransferSnapshot, Epoch: epoch})
	f.send(&wire.SnapshotChunk{Share: op.Share, Objects: objs(11)})
	if err := s.WaitVersion(ctx, 10); err != nil {
		t.Fatal(err)
	}
	f.conn.Close()

	// The server restored from a backup at version 6, epoch change at 7.
	f = fl.accept(wire.Limits{})
	op = f.recv().(*wire.OpenShare)
	if op.Have != 10 || op.Epoch != epoch {
		t.Fatalf("reopen %+v", op)
	}
	f.send(&wire.ShareClosed{Share: op.Share, Code: wire.CodeDiverged, Message: "diverged"})
	err := p.Wait(ctx)
	var sce *client.ShareClosedError
	if !errors.As(s.WaitVersion(ctx, math.MaxUint64), &sce) || sce.Code != wire.CodeDiverged {
		t.Fatalf("share: %v, want diverged", s.Err())
	}
	if !errors.Is(err, client.ErrInDoubt) {
		t.Fatalf("P, held by the snapshot, after the copy diverged: %v, want in doubt (the restored server holds it)", err)
	}
}
