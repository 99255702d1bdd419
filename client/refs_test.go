package client_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/weft-stm/weft/client"
	"github.com/weft-stm/weft/server"
	"github.com/weft-stm/weft/stm"
	"github.com/weft-stm/weft/store/pebblestore"
	"github.com/weft-stm/weft/transport"
	"github.com/weft-stm/weft/wire"
)

// A record with a reference to another record: the references between
// records that a share must keep resolvable.
var (
	refF = stm.NewVarField[*stm.Object](1, "ref")
	node = stm.NewClass("Node", 8, refF)
)

// TestRemoveReferencedRefused: removing a record another one still refers
// to is refused by the server (code invalid), and the share stays
// openable; once the reference is cleared in the same commit, it goes.
func TestRemoveReferencedRefused(t *testing.T) {
	ctx := testCtx(t)
	e := startServer(t, false, server.Config{})
	ops := createAccount(1, 100)
	ops = append(ops, wire.Op{Kind: wire.OpCreate, Object: oid(10), Class: uint32(node.ID()), ObjectKind: wire.ObjectRecord,
		Fields: []wire.Field{{ID: 1, Value: wire.Ref(oid(3))}}})
	e.raw("bank", ops...)
	c := e.client()
	s, err := c.Open(ctx, "bank", account, node)
	if err != nil {
		t.Fatal(err)
	}
	acct := record(t, s, 1)
	x, _ := s.Object(oid(10))
	n := x.(*stm.Object)
	err = s.Atomically(ctx, func(tx *stm.Tx) error { s.Remove(tx, acct); return nil })
	var ae *client.AbortError
	if !errors.As(err, &ae) || ae.Code != wire.CodeInvalid || !strings.Contains(ae.Error(), "still name") {
		t.Fatalf("removal of a referenced record: %v, want aborted as invalid", err)
	}
	if _, err := e.client().Open(ctx, "bank", account, node); err != nil {
		t.Fatalf("Open after the refused removal: %v", err)
	}
	if err := s.Atomically(ctx, func(tx *stm.Tx) error {
		refF.Of(n).Set(tx, nil)
		s.Remove(tx, acct)
		return nil
	}); err != nil {
		t.Fatalf("removal with the reference cleared: %v", err)
	}
	if _, err := e.client().Open(ctx, "bank", account, node); err != nil {
		t.Fatalf("Open after the removal: %v", err)
	}
}

// TestRefToRejectedCreation: a commit storing a reference to a record a
// pending commit created depends on that commit, so when the server
// rejects the creator, the reference goes too, and the share holds no
// reference to a record that never existed.
func TestRefToRejectedCreation(t *testing.T) {
	ctx := testCtx(t)
	e, s, offline, online := refClient(t)
	acct := record(t, s, 1)
	xr, _ := s.Object(oid(10))
	r := xr.(*stm.Object)

	// Offline, so that both commits are pending when another client
	// changes what the first read.
	offline()
	var x *stm.Object
	h1 := run(t, s, func(tx *stm.Tx) error {
		b := balanceF.Of(acct)
		b.Set(tx, b.Get(tx)+1)
		x = s.Create(tx, account)
		return nil
	})
	h2 := run(t, s, func(tx *stm.Tx) error { refF.Of(r).Set(tx, x); return nil })
	e.raw("bank", wire.Op{Kind: wire.OpSetField, Object: oid(3), Field: 1, Value: wire.Int(500)})
	online()
	await(t, done(h1, h2))
	if h1.Err() == nil {
		t.Fatal("the creator was acknowledged, though its read was overwritten")
	}
	var ae *client.AbortError
	if !errors.As(h2.Err(), &ae) || ae.Code != wire.CodeDependency {
		t.Fatalf("the reference to the rejected creator's record: %v, want aborted as its dependent", h2.Err())
	}
	if _, err := e.client().Open(ctx, "bank", account, node); err != nil {
		t.Fatalf("Open: %v", err)
	}
}

// TestRestoreRefToRemoved: a commit restored from the cache that refers
// to a record the cached acknowledged state no longer holds (another
// replica removed it before the commit's verdict came) is restored hidden,
// rather than failing every Open of the share from the cache.
func TestRestoreRefToRemoved(t *testing.T) {
	ctx := testCtx(t)
	dir := t.TempDir()
	n := transport.NewNetwork(1)
	l, err := n.Listen("server")
	if err != nil {
		t.Fatal(err)
	}
	st, err := pebblestore.Open(dir, pebblestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	dc := make(chan *client.Client, 1)
	go func() {
		c, err := client.Dial(ctx, n.Dialer("client"), "server", client.Options{Replica: 9, Cache: st, MinBackoff: time.Hour})
		if err != nil {
			t.Error(err)
		}
		dc <- c
	}()
	conn, err := l.Accept(ctx)
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeServer{t: t, conn: conn}
	f.recv()
	f.send(&wire.Welcome{Version: wire.ProtocolVersion, Session: 1})
	c := <-dc
	sc := make(chan *client.Share, 1)
	go func() {
		s, err := c.Open(ctx, "bank", account, node)
		if err != nil {
			t.Error(err)
		}
		sc <- s
	}()
	op := f.recv().(*wire.OpenShare)
	f.send(&wire.Opened{Share: op.Share, Version: 3, Access: wire.AccessWrite, Transfer: wire.TransferSnapshot})
	rec := createAccount(1, 10)[2]
	f.send(&wire.SnapshotChunk{Share: op.Share, Objects: []wire.Object{
		{ID: oid(4), Kind: wire.ObjectCounter}, {ID: oid(5), Kind: wire.ObjectMap},
		{ID: rec.Object, Class: rec.Class, Kind: wire.ObjectRecord, Fields: rec.Fields},
	}})
	s := <-sc
	x := record(t, s, 1)
	// A new node referring to account 1, sent, left unanswered.
	h := run(t, s, func(tx *stm.Tx) error { refF.Of(s.Create(tx, node)).Set(tx, x); return nil })
	f.recv()
	// Another replica removed account 1 first (the server will reject
	// the node's reference): the node stops showing at once.
	f.send(&wire.Update{Share: op.Share, Version: 4, Origin: wire.CommitID{Replica: 2, Seq: 1}, Writes: []wire.Op{
		{Kind: wire.OpRemove, Object: oid(3)}, {Kind: wire.OpRemove, Object: oid(4)}, {Kind: wire.OpRemove, Object: oid(5)}}})
	if err := s.WaitVersion(ctx, 4); err != nil {
		t.Fatal(err)
	}
	if len(s.Records()) != 0 {
		t.Fatalf("records %v shown after the removal, want none", s.Records())
	}
	// The application stops before the verdict, and starts again offline.
	c.Close()
	conn.Close()
	l.Close()
	st.Close()
	if h.Status() == stm.Acknowledged {
		t.Fatal("acknowledged without an Ack")
	}
	st, err = pebblestore.Open(dir, pebblestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	c, err = client.Dial(ctx, n.Dialer("client"), "server", client.Options{Replica: 9, Cache: st, MinBackoff: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s, err = c.Open(ctx, "bank", account, node)
	if err != nil {
		t.Fatalf("Open from the cache: %v", err)
	}
	if s.Pending() != 1 || len(s.Records()) != 0 {
		t.Fatalf("after the restart: %d pending, records %v; want the commit pending and hidden", s.Pending(), s.Records())
	}
}

// TestRefToPendingRemoval: a pending commit removes account 1; before its
// verdict, another replica's decided change stores a ref to account 1.
// The server will reject the removal (the ref still names it): the client
// stops showing the removal, so the record is back to resolve the ref,
// and the share goes on.
func TestRefToPendingRemoval(t *testing.T) {
	ctx := testCtx(t)
	e, s, offline, online := refClient(t)
	acct := record(t, s, 1)
	offline()
	h := run(t, s, func(tx *stm.Tx) error { s.Remove(tx, acct); return nil })
	v := e.raw("bank", wire.Op{Kind: wire.OpSetField, Object: oid(10), Field: 1, Value: wire.Ref(oid(3))})
	online()
	await(t, done(h))
	var ae *client.AbortError
	if !errors.As(h.Err(), &ae) || ae.Code != wire.CodeInvalid {
		t.Fatalf("the removal of a record a ref names: %v, want aborted as invalid", h.Err())
	}
	if err := s.WaitVersion(ctx, v); err != nil {
		t.Fatalf("WaitVersion(%d): %v (share Err: %v)", v, err, s.Err())
	}
	if s.Err() != nil {
		t.Fatalf("share failed: %v", s.Err())
	}
	if _, ok := s.Object(oid(3)); !ok {
		t.Fatal("the record whose removal was refused is not in the share")
	}
}

// refClient starts a server whose share "bank" holds account 1 and an
// empty Node 1:10, and dials a client (replica 20, reconnecting within
// milliseconds) that opens it with the Account and Node classes; offline
// cuts it off from the server until online.
func refClient(t *testing.T) (e *env, s *client.Share, offline, online func()) {
	t.Helper()
	ctx := testCtx(t)
	e = startServer(t, false, server.Config{})
	ops := createAccount(1, 100)
	ops = append(ops, wire.Op{Kind: wire.OpCreate, Object: oid(10), Class: uint32(node.ID()), ObjectKind: wire.ObjectRecord})
	e.raw("bank", ops...)
	dial, cut := e.recordingDialer("app")
	c, err := client.Dial(ctx, dial, e.addr, client.Options{Replica: 20, MinBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if s, err = c.Open(ctx, "bank", account, node); err != nil {
		t.Fatal(err)
	}
	offline = func() {
		e.net.Partition("app", "server")
		cut(-1)
		if err := c.WaitState(ctx, client.Reconnecting); err != nil {
			t.Fatal(err)
		}
	}
	online = func() { e.net.Heal("app", "server") }
	return e, s, offline, online
}
