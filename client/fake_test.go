package client_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/weft-stm/weft/client"
	"github.com/weft-stm/weft/server"
	"github.com/weft-stm/weft/stm"
	"github.com/weft-stm/weft/transport"
	"github.com/weft-stm/weft/wire"
)

// fakeServer is the server end of one session, driven by the test.
type fakeServer struct {
	t    *testing.T
	conn transport.Conn
}

func (f *fakeServer) recv() wire.Message {
	f.t.Helper()
	m, err := f.conn.Recv(testCtx(f.t))
	if err != nil {
		f.t.Fatal(err)
	}
	return m
}

func (f *fakeServer) send(m wire.Message) {
	f.t.Helper()
	if err := f.conn.Send(testCtx(f.t), m); err != nil {
		f.t.Fatal(err)
	}
}

// fakeSession dials a client to a test-driven server end and opens share
// "bank" holding account 1 at version 3.
func fakeSession(t *testing.T) (*fakeServer, *client.Client, *client.Share) {
	return fakeSessionWith(t, wire.Limits{})
}

// fakeSessionWith is fakeSession with the server announcing lim.
func fakeSessionWith(t *testing.T, lim wire.Limits) (*fakeServer, *client.Client, *client.Share) {
	return fakeSessionOpts(t, lim, client.Options{Replica: 9})
}

// fakeSessionOpts is fakeSessionWith with the client dialed with opts
// (whose Replica must be 9).
func fakeSessionOpts(t *testing.T, lim wire.Limits, opts client.Options) (*fakeServer, *client.Client, *client.Share) {
	n := transport.NewNetwork(1)
	l, err := n.Listen("server")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	type dialed struct {
		c   *client.Client
		err error
	}
	dc := make(chan dialed, 1)
	go func() {
		c, err := client.Dial(testCtx(t), n.Dialer("client"), "server", opts)
		dc <- dialed{c, err}
	}()
	conn, err := l.Accept(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	f := &fakeServer{t: t, conn: conn}
	if h, ok := f.recv().(*wire.Hello); !ok || h.Replica != 9 {
		t.Fatalf("hello: %+v", h)
	}
	f.send(&wire.Welcome{Version: wire.ProtocolVersion, Session: 1, Limits: lim})
	d := <-dc
	if d.err != nil {
		t.Fatal(d.err)
	}
	t.Cleanup(func() { d.c.Close() })
	sc := make(chan *client.Share, 1)
	go func() {
		s, err := d.c.Open(testCtx(t), "bank", account)
		if err != nil {
			t.Error(err)
		}
		sc <- s
	}()
	op := f.recv().(*wire.OpenShare)
	f.send(&wire.Opened{Share: op.Share, Version: 3, Access: wire.AccessWrite, Transfer: wire.TransferSnapshot})
	objs := []wire.Object{
		{ID: oid(4), Kind: wire.ObjectCounter, Counter: 2},
		{ID: oid(5), Kind: wire.ObjectMap},
	}
	rec := createAccount(1, 10)[2]
	// Split record: its fields in two pieces, in two chunks.
	f.send(&wire.SnapshotChunk{Share: op.Share, More: true, Objects: append(objs, wire.Object{ID: rec.Object, Class: rec.Class, Kind: wire.ObjectRecord, Fields: rec.Fields[:2]})})
	f.send(&wire.SnapshotChunk{Share: op.Share, Objects: []wire.Object{{ID: rec.Object, Class: rec.Class, Kind: wire.ObjectRecord, Fields: rec.Fields[2:]}}})
	s := <-sc
	if s == nil {
		t.FailNow()
	}
	return f, d.c, s
}

// TestProtocol checks what the client sends and does with verdicts, with
// the test playing the server: a read-only transaction sends nothing, a
// commit carries share versions, an Ack applies it at its version, an
// abort other than a conflict is an *AbortError, and Close unblocks a
// commit waiting for its verdict and a WaitVersion.
func TestProtocol(t *testing.T) {
	f, c, s := fakeSession(t)
	ctx := testCtx(t)
	o := record(t, s, 1)
	if _, got := snapshot(t, s); got[oid(3)].Hits != 2 || got[oid(3)].Balance != 10 || s.Version() != 3 {
		t.Fatalf("snapshot %+v at %d", got, s.Version())
	}
	// Read-only: no round trip (the next frame the server gets is the
	// commit below).
	if err := s.Atomically(ctx, func(tx *stm.Tx) error { balanceF.Of(o).Get(tx); return nil }); err != nil {
		t.Fatal(err)
	}

	errc := make(chan error, 1)
	go func() {
		errc <- s.Atomically(ctx, func(tx *stm.Tx) error {
			balanceF.Of(o).Set(tx, balanceF.Of(o).Get(tx)+1)
			return nil
		})
	}()
	cm := f.recv().(*wire.Commit)
	if cm.ID != (wire.CommitID{Replica: 9, Seq: 1}) || cm.Snapshot != 3 || len(cm.Reads) != 1 || cm.Reads[0].Version != 3 {
		t.Fatalf("commit %+v", cm)
	}
	// An Update from elsewhere, then the Ack.
	f.send(&wire.Update{Share: cm.Share, Version: 4, Origin: wire.CommitID{Replica: 2, Seq: 1},
		Writes: []wire.Op{{Kind: wire.OpCounterAdd, Object: oid(4), Delta: 1}}})
	f.send(&wire.Ack{ID: cm.ID, Version: 5})
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if _, got := snapshot(t, s); got[oid(3)].Hits != 3 || got[oid(3)].Balance != 11 || s.Version() != 5 {
		t.Fatalf("after ack: %+v at %d", got, s.Version())
	}

	go func() {
		errc <- s.Atomically(ctx, func(tx *stm.Tx) error { nameF.Of(o).Set(tx, "x"); return nil })
	}()
	cm = f.recv().(*wire.Commit)
	if cm.Snapshot != 5 {
		t.Fatalf("second commit's snapshot %d, want 5", cm.Snapshot)
	}
	f.send(&wire.Abort{ID: cm.ID, Code: wire.CodeForbidden, Message: "read only"})
	var ae *client.AbortError
	if err := <-errc; !errors.As(err, &ae) || ae.Code != wire.CodeForbidden {
		t.Fatalf("got %v, want an AbortError forbidden", err)
	}

	// A commit left unanswered, and a wait for a version that never comes.
	go func() {
		errc <- s.Atomically(ctx, func(tx *stm.Tx) error { hitsF.Of(o).Add(tx, 1); return nil })
	}()
	f.recv()
	waitc := make(chan error, 1)
	go func() { waitc <- s.WaitVersion(ctx, 99) }()
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; !errors.Is(err, client.ErrInDoubt) || !errors.Is(err, client.ErrClosed) {
		t.Fatalf("pending commit after Close: %v, want ErrInDoubt and ErrClosed", err)
	}
	if err := <-waitc; !errors.Is(err, client.ErrClosed) {
		t.Fatalf("WaitVersion after Close: %v, want ErrClosed", err)
	}
	if err := s.Atomically(ctx, func(tx *stm.Tx) error { hitsF.Of(o).Add(tx, 1); return nil }); !errors.Is(err, client.ErrClosed) {
		t.Fatalf("Atomically after Close: %v", err)
	}
}

// TestProtocolCascade: with the test playing the server, a chain of
// pending commits is sent with its deps and share versions, and an Abort
// of the first aborts exactly its dependents at once, undoing their
// writes, while an independent commit stays applied and pending.
func TestProtocolCascade(t *testing.T) {
	f, _, s := fakeSession(t)
	o := record(t, s, 1)
	b, hits, name := balanceF.Of(o), hitsF.Of(o), nameF.Of(o)
	hA := run(t, s, func(tx *stm.Tx) error { b.Set(tx, b.Get(tx)+1); return nil })
	hB := run(t, s, func(tx *stm.Tx) error { name.Set(tx, fmt.Sprint(b.Get(tx))); return nil })
	hC := run(t, s, func(tx *stm.Tx) error { hits.Add(tx, 5); return nil })
	hD := run(t, s, func(tx *stm.Tx) error { hits.Add(tx, hits.Get(tx)); return nil }) // reads C's
	var cms []*wire.Commit
	for range 4 {
		cms = append(cms, f.recv().(*wire.Commit))
	}
	for i, cm := range cms {
		if cm.ID.Seq != uint64(i+1) || cm.Snapshot != 3 {
			t.Fatalf("commit %d: %+v", i, cm)
		}
		for _, r := range cm.Reads {
			if r.Version != 3 {
				t.Errorf("commit %d reads at %d, want the acknowledged 3", i, r.Version)
			}
		}
	}
	if len(cms[0].Deps) != 0 || len(cms[2].Deps) != 0 {
		t.Errorf("A and C have deps: %v %v", cms[0].Deps, cms[2].Deps)
	}
	if len(cms[1].Deps) != 1 || cms[1].Deps[0] != cms[0].ID || len(cms[3].Deps) != 1 || cms[3].Deps[0] != cms[2].ID {
		t.Errorf("deps: B %v, D %v; want A and C", cms[1].Deps, cms[3].Deps)
	}
	state := func() accountState { _, got := snapshot(t, s); return got[oid(3)] }
	if st := state(); st.Balance != 11 || st.Name != "11" || st.Hits != 14 {
		t.Fatalf("speculative state %+v", st)
	}
	f.send(&wire.Abort{ID: cms[0].ID, Code: wire.CodeConflict})
	await(t, done(hA, hB))
	var ae *client.AbortError
	if !errors.As(hB.Err(), &ae) || ae.Code != wire.CodeDependency {
		t.Fatalf("B: %v, want aborted as A's dependent", hB.Err())
	}
	if hC.Status() != stm.Applied || hD.Status() != stm.Applied || s.Pending() != 2 {
		t.Fatalf("C %v, D %v, pending %d: want both still applied", hC.Status(), hD.Status(), s.Pending())
	}
	if st := state(); st.Balance != 10 || st.Name != "acct1" || st.Hits != 14 {
		t.Fatalf("after the abort: %+v, want balance and name undone, hits kept", st)
	}
	f.send(&wire.Ack{ID: cms[2].ID, Version: 4})
	f.send(&wire.Ack{ID: cms[3].ID, Version: 5})
	await(t, done(hC, hD))
	if st := state(); st.Hits != 14 || s.Version() != 5 || s.Pending() != 0 {
		t.Fatalf("after the acks: %+v at %d, %d pending", st, s.Version(), s.Pending())
	}
}

// TestPendingLimit: a client has at most the server's max_pending_commits
// commits in flight; Run waits for room.
func TestPendingLimit(t *testing.T) {
	f, c, s := fakeSessionWith(t, wire.Limits{MaxPendingCommits: 2})
	_ = c
	o := record(t, s, 1)
	third := make(chan *stm.Handle, 1)
	go func() {
		for range 2 {
			run(t, s, func(tx *stm.Tx) error { hitsF.Of(o).Add(tx, 1); return nil })
		}
		third <- run(t, s, func(tx *stm.Tx) error { hitsF.Of(o).Add(tx, 1); return nil })
	}()
	first := f.recv().(*wire.Commit)
	f.recv()
	select {
	case <-third:
		t.Fatal("a third commit ran with two in flight")
	default:
	}
	f.send(&wire.Ack{ID: first.ID, Version: 4})
	if cm := f.recv().(*wire.Commit); cm.ID.Seq != 3 {
		t.Fatalf("third commit %v", cm.ID)
	}
	<-third
}

// TestAbortOnPendingCreated: a commit that wrote a record and a collection
// that a still-pending commit created is aborted: its writes leave them,
// and the creator's and a later commit's stay (the acknowledged state
// lacks both objects, so they are rebuilt from the creating commit).
func TestAbortOnPendingCreated(t *testing.T) {
	f, _, s := fakeSession(t)
	o := record(t, s, 1)
	var n *stm.Object
	hP := run(t, s, func(tx *stm.Tx) error {
		n = s.Create(tx, account)
		balanceF.Of(n).Set(tx, 5)
		tagsF.Of(n).Put(tx, "a", 1)
		return nil
	})
	hQ := run(t, s, func(tx *stm.Tx) error {
		tagsF.Of(n).Put(tx, "b", 2)
		balanceF.Of(n).Set(tx, balanceF.Of(o).Get(tx))
		return nil
	})
	hR := run(t, s, func(tx *stm.Tx) error { nameF.Of(n).Set(tx, "new"); return nil })
	var cms []*wire.Commit
	for range 3 {
		cms = append(cms, f.recv().(*wire.Commit))
	}
	state := func() accountState {
		t.Helper()
		_, got := snapshot(t, s)
		st, ok := got[stm.IDOf(n)]
		if !ok {
			t.Fatal("the created record is gone")
		}
		return st
	}
	if st := state(); st.Balance != 10 || st.Name != "new" || len(st.Tags) != 2 {
		t.Fatalf("speculative state %+v", st)
	}
	f.send(&wire.Abort{ID: cms[1].ID, Code: wire.CodeConflict})
	await(t, done(hQ))
	if hP.Status() != stm.Applied || hR.Status() != stm.Applied {
		t.Fatalf("P %v, R %v: want both still applied", hP.Status(), hR.Status())
	}
	if st := state(); st.Balance != 5 || st.Name != "new" || len(st.Tags) != 1 || st.Tags["a"] != 1 {
		t.Fatalf("after Q's abort: %+v, want balance 5, name new, tags {a:1}", st)
	}
	f.send(&wire.Ack{ID: cms[0].ID, Version: 4})
	f.send(&wire.Ack{ID: cms[2].ID, Version: 5})
	await(t, done(hP, hR))
	if st := state(); st.Balance != 5 || st.Name != "new" || len(st.Tags) != 1 || s.Pending() != 0 {
		t.Fatalf("after the acks: %+v, %d pending", st, s.Pending())
	}
}

// TestDependsOnCreator: a commit that touches a record or collection a
// pending commit created depends on that commit, and goes with it.
func TestDependsOnCreator(t *testing.T) {
	f, _, s := fakeSession(t)
	var n *stm.Object
	hP := run(t, s, func(tx *stm.Tx) error { n = s.Create(tx, account); return nil })
	hQ := run(t, s, func(tx *stm.Tx) error { tagsF.Of(n).Put(tx, "q", 1); return nil })
	hR := run(t, s, func(tx *stm.Tx) error { _ = nameF.Of(n).Get(tx); hitsF.Of(record(t, s, 1)).Add(tx, 1); return nil })
	p, q, r := f.recv().(*wire.Commit), f.recv().(*wire.Commit), f.recv().(*wire.Commit)
	if !slices.Equal(q.Deps, []wire.CommitID{p.ID}) || !slices.Equal(r.Deps, []wire.CommitID{p.ID}) {
		t.Fatalf("deps: Q %v, R %v; want the creator %v", q.Deps, r.Deps, p.ID)
	}
	f.send(&wire.Abort{ID: p.ID, Code: wire.CodeConflict})
	await(t, done(hP, hQ, hR))
	var ae *client.AbortError
	for _, h := range []*stm.Handle{hQ, hR} {
		if !errors.As(h.Err(), &ae) || ae.Code != wire.CodeDependency {
			t.Fatalf("%v: want aborted as the creator's dependent", h.Err())
		}
	}
}

// TestUpdateRunOfManyObjects: Updates that arrive together and write
// different objects (many writers on many records) are applied as one
// local commit when nobody observes those objects; once one is observed,
// Update by Update, so that its observer counts only the commits that
// changed it.
func TestUpdateRunOfManyObjects(t *testing.T) {
	f, c, s := fakeSession(t)
	ctx := testCtx(t)
	ws := c.Workspace()
	var create []wire.Op
	for n := uint64(2); n <= 4; n++ {
		create = append(create, createAccount(n, 0)...)
	}
	f.send(&wire.Update{Share: 1, Version: 4, Origin: wire.CommitID{Replica: 2, Seq: 1}, Writes: create})
	if err := s.WaitVersion(ctx, 4); err != nil {
		t.Fatal(err)
	}
	// run sends 8 Updates from version from, the i-th setting account
	// 1+i%4's balance to 100*from+i, and returns the local commits they took.
	run := func(from uint64) uint64 {
		local := ws.Version()
		msgs := make([]wire.Message, 8)
		for i := range msgs {
			v := from + uint64(i)
			msgs[i] = &wire.Update{Share: 1, Version: v, Origin: wire.CommitID{Replica: 2, Seq: v}, Writes: []wire.Op{
				{Kind: wire.OpSetField, Object: oid(3 * (1 + uint64(i)%4)), Field: 1, Value: wire.Int(int64(100*from) + int64(i))},
			}}
		}
		if err := f.conn.SendBatch(ctx, msgs); err != nil {
			t.Fatal(err)
		}
		if err := s.WaitVersion(ctx, from+7); err != nil {
			t.Fatal(err)
		}
		_, got := snapshot(t, s)
		for n := uint64(1); n <= 4; n++ {
			if want := int64(100*from) + int64(n+3); got[oid(3*n)].Balance != want {
				t.Fatalf("account %d: balance %d after the run from %d, want %d", n, got[oid(3*n)].Balance, from, want)
			}
		}
		return ws.Version() - local
	}
	if got := run(5); got != 1 {
		t.Fatalf("8 Updates of 4 unobserved records sent together took %d local commits, want 1", got)
	}

	// Observed: a record, or one field of one.
	from := uint64(13)
	for _, x := range []stm.Observable{record(t, s, 2), balanceF.Of(record(t, s, 3))} {
		counts := make(chan int, 16)
		sub := ws.Subscribe(x, func(ch stm.Change) { counts <- ch.Commits })
		if got := run(from); got != 8 {
			t.Fatalf("8 Updates of 4 records, %T observed, took %d local commits, want 8", x, got)
		}
		from += 8
		seen := 0
		for seen < 2 { // the observer runs after the commits
			select {
			case n := <-counts:
				seen += n
			case <-ctx.Done():
				t.Fatalf("the observer of %T counted %d commits, want 2", x, seen)
			}
		}
		if seen != 2 {
			t.Fatalf("the observer of %T counted %d commits, want the 2 that changed it", x, seen)
		}
		sub.Close()
	}
	if got := run(from); got != 1 {
		t.Fatalf("8 Updates of 4 records no longer observed took %d local commits, want 1", got)
	}
}

// TestUpdateRun: Updates of a share that arrive together and write the
// same objects are applied to the replica as one local commit, which
// observers count as one commit per Update; a run that also touches
// something else is applied Update by Update, with the same result.
func TestUpdateRun(t *testing.T) {
	f, c, s := fakeSession(t)
	ctx := testCtx(t)
	o := record(t, s, 1)
	ws := c.Workspace()
	counts := make(chan int, 128)
	defer ws.Subscribe(o, func(ch stm.Change) { counts <- ch.Commits }).Close()

	send := func(from uint64, n int, extra bool) {
		msgs := make([]wire.Message, n)
		for i := range msgs {
			w := []wire.Op{{Kind: wire.OpCounterAdd, Object: oid(4), Delta: 1}}
			if extra && i == n/2 {
				w = append(w, wire.Op{Kind: wire.OpMapPut, Object: oid(5), Key: wire.String("k"), Value: wire.Int(int64(i))})
			}
			msgs[i] = &wire.Update{Share: 1, Version: from + uint64(i), Origin: wire.CommitID{Replica: 2, Seq: from + uint64(i)}, Writes: w}
		}
		if err := f.conn.SendBatch(ctx, msgs); err != nil {
			t.Fatal(err)
		}
		if err := s.WaitVersion(ctx, from+uint64(n)-1); err != nil {
			t.Fatal(err)
		}
	}

	local := ws.Version()
	send(4, 50, false)
	if got := ws.Version() - local; got != 1 {
		t.Fatalf("50 Updates of one counter sent together took %d local commits, want 1", got)
	}
	if _, got := snapshot(t, s); got[oid(3)].Hits != 52 {
		t.Fatalf("hits %d after 50 increments of 2, want 52", got[oid(3)].Hits)
	}

	local = ws.Version()
	send(54, 10, true) // the sixth also writes the map
	if got := ws.Version() - local; got != 10 {
		t.Fatalf("10 Updates, one of them writing another object too, took %d local commits, want 10", got)
	}
	if _, got := snapshot(t, s); got[oid(3)].Hits != 62 {
		t.Fatalf("hits %d after 10 more increments, want 62", got[oid(3)].Hits)
	}
	seen := 0
	for seen < 60 { // the observer runs after the commits
		select {
		case n := <-counts:
			seen += n
		case <-ctx.Done():
			t.Fatalf("observers counted %d commits, want 60", seen)
		}
	}
	if got, _ := tagsF.Of(o).Get(stm.Auto, "k"); got != 5 {
		t.Fatalf("tag k = %d, want 5", got)
	}
	select {
	case n := <-counts:
		t.Fatalf("observers counted %d commits more than the 60 Updates", n)
	default:
	}

	// A run of Updates setting the balance and a tag: what the last one
	// overwrites is not written before it, and every value is the last.
	msgs := make([]wire.Message, 20)
	for i := range msgs {
		v := uint64(64 + i)
		msgs[i] = &wire.Update{Share: 1, Version: v, Origin: wire.CommitID{Replica: 2, Seq: v}, Writes: []wire.Op{
			{Kind: wire.OpSetField, Object: oid(3), Field: 1, Value: wire.Int(int64(1000 + i))},
			{Kind: wire.OpMapPut, Object: oid(5), Key: wire.String("k"), Value: wire.Int(int64(i))},
		}}
	}
	local = ws.Version()
	if err := f.conn.SendBatch(ctx, msgs); err != nil {
		t.Fatal(err)
	}
	if err := s.WaitVersion(ctx, 83); err != nil {
		t.Fatal(err)
	}
	if got := ws.Version() - local; got != 1 {
		t.Fatalf("20 Updates setting a field and a key took %d local commits, want 1", got)
	}
	if _, got := snapshot(t, s); got[oid(3)].Balance != 1019 {
		t.Fatalf("balance %d after the run, want 1019", got[oid(3)].Balance)
	}
	if got, _ := tagsF.Of(o).Get(stm.Auto, "k"); got != 19 {
		t.Fatalf("tag k = %d after the run, want 19", got)
	}
	for seen = 0; seen < 20; {
		select {
		case n := <-counts:
			seen += n
		case <-ctx.Done():
			t.Fatalf("observers counted %d commits of the run, want 20", seen)
		}
	}
	// The acknowledged state ended the run as the replica did: a commit
	// on both, aborted, is undone from it.
	h, err := s.Run(ctx, func(tx *stm.Tx) error {
		balanceF.Of(o).Set(tx, 1)
		tagsF.Of(o).PutFast(tx, "k", -1)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	f.send(&wire.Abort{ID: f.recv().(*wire.Commit).ID, Code: wire.CodeConflict, Message: "no"})
	if err := h.Wait(ctx); err == nil {
		t.Fatal("the commit was not aborted")
	}
	if _, got := snapshot(t, s); got[oid(3)].Balance != 1019 {
		t.Fatalf("balance %d after the abort, want 1019", got[oid(3)].Balance)
	}
	if got, _ := tagsF.Of(o).Get(stm.Auto, "k"); got != 19 {
		t.Fatalf("tag k = %d after the abort, want 19", got)
	}

	// With a blind increment of ours pending on the counter: a run of
	// increments of it is still one local commit, shown under ours
	// (increments commute), and our Ack then changes nothing shown.
	hp, err := s.Run(ctx, func(tx *stm.Tx) error { hitsF.Of(o).Add(tx, 100); return nil })
	if err != nil {
		t.Fatal(err)
	}
	cmp := f.recv().(*wire.Commit)
	local = ws.Version()
	send(84, 5, false)
	if got := ws.Version() - local; got != 1 {
		t.Fatalf("5 increments beside a pending increment took %d local commits, want 1", got)
	}
	if _, got := snapshot(t, s); got[oid(3)].Hits != 167 {
		t.Fatalf("hits %d with 5 increments under a pending 100, want 167", got[oid(3)].Hits)
	}
	f.send(&wire.Ack{ID: cmp.ID, Version: 89})
	if err := hp.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	if _, got := snapshot(t, s); got[oid(3)].Hits != 167 {
		t.Fatalf("hits %d once the increment is acknowledged, want 167", got[oid(3)].Hits)
	}

	// With a commit of ours pending on the record's balance: a run on the
	// counter, which the commit neither read nor wrote, is still one
	// local commit; a run on the balance dooms the commit and goes
	// Update by Update.
	h, err = s.Run(ctx, func(tx *stm.Tx) error { balanceF.Of(o).Set(tx, balanceF.Of(o).Get(tx)+1); return nil })
	if err != nil {
		t.Fatal(err)
	}
	cm := f.recv().(*wire.Commit)
	local = ws.Version()
	send(90, 5, false)
	if got := ws.Version() - local; got != 1 {
		t.Fatalf("5 Updates of the counter beside a pending commit on the balance took %d local commits, want 1", got)
	}
	msgs = make([]wire.Message, 3)
	for i := range msgs {
		v := uint64(95 + i)
		msgs[i] = &wire.Update{Share: 1, Version: v, Origin: wire.CommitID{Replica: 2, Seq: v},
			Writes: []wire.Op{{Kind: wire.OpSetField, Object: oid(3), Field: 1, Value: wire.Int(int64(100 + i))}}}
	}
	local = ws.Version()
	if err := f.conn.SendBatch(ctx, msgs); err != nil {
		t.Fatal(err)
	}
	if err := s.WaitVersion(ctx, 97); err != nil {
		t.Fatal(err)
	}
	if got := ws.Version() - local; got < 3 {
		t.Fatalf("3 Updates of the balance a pending commit read took %d local commits, want one each", got)
	}
	if _, got := snapshot(t, s); got[oid(3)].Balance != 102 || got[oid(3)].Hits != 172 {
		t.Fatalf("balance %d, hits %d: want 102 (the pending increment hidden), 172", got[oid(3)].Balance, got[oid(3)].Hits)
	}
	f.send(&wire.Abort{ID: cm.ID, Code: wire.CodeConflict, Message: "stale read"})
	if err := h.Wait(ctx); err == nil {
		t.Fatal("the doomed commit was not aborted")
	}
}

// TestTouchCreatedByHiddenCommit: a transaction touching a record that a
// hidden commit created (doomed by an Update, so out of the replica until
// its verdict) waits for that verdict, as for what hidden commits wrote,
// rather than failing with ErrNotInShare; once the creator is
// acknowledged, it commits.
func TestTouchCreatedByHiddenCommit(t *testing.T) {
	f, _, s := fakeSession(t)
	o := record(t, s, 1)
	var n *stm.Object
	hP := run(t, s, func(tx *stm.Tx) error {
		n = s.Create(tx, account)
		balanceF.Of(n).Set(tx, balanceF.Of(o).Get(tx))
		return nil
	})
	p := f.recv().(*wire.Commit)
	// Another replica's write of what P read dooms P: it stops showing.
	f.send(&wire.Update{Share: p.Share, Version: 4, Origin: wire.CommitID{Replica: 2, Seq: 1},
		Writes: []wire.Op{{Kind: wire.OpSetField, Object: oid(3), Field: 1, Value: wire.Int(50)}}})
	if err := s.WaitVersion(testCtx(t), 4); err != nil {
		t.Fatal(err)
	}
	if _, ok := s.Object(stm.IDOf(n)); ok {
		t.Fatal("the record of a doomed commit still shows")
	}
	touch := func(tx *stm.Tx) error { nameF.Of(n).Set(tx, "touched"); return nil }
	ctx, cancel := context.WithTimeout(testCtx(t), 20*time.Millisecond)
	_, err := s.Run(ctx, touch)
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("touching the record of a hidden commit: %v, want a wait for its verdict", err)
	}
	errc := make(chan error, 1)
	go func() { _, err := s.Run(testCtx(t), touch); errc <- err }()
	f.send(&wire.Ack{ID: p.ID, Version: 5})
	await(t, done(hP))
	if err := <-errc; err != nil {
		t.Fatalf("after the creator's Ack: %v", err)
	}
	if q := f.recv().(*wire.Commit); len(q.Writes) != 1 || q.Writes[0].Object != stm.IDOf(n) {
		t.Fatalf("commit %+v, want the write of the record's name", q)
	}
}

// fakeListener is a fake server's listener, open until the test ends, so
// that the client can reconnect.
type fakeListener struct {
	t *testing.T
	l transport.Listener
}

// accept accepts the client's next connection and answers its Hello with
// a Welcome announcing lim.
func (fl *fakeListener) accept(lim wire.Limits) *fakeServer {
	t := fl.t
	t.Helper()
	conn, err := fl.l.Accept(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	f := &fakeServer{t: t, conn: conn}
	if _, ok := f.recv().(*wire.Hello); !ok {
		t.Fatal("the client did not say Hello")
	}
	f.send(&wire.Welcome{Version: wire.ProtocolVersion, Session: 1, Limits: lim})
	return f
}

// dialFake dials a client with opts (whose Replica must be 9) to a fake
// server and accepts its first connection (fakeListener.accept, with the
// default limits); the client is closed when the test ends.
func dialFake(t *testing.T, opts client.Options) (*fakeListener, *fakeServer, *client.Client) {
	t.Helper()
	n := transport.NewNetwork(1)
	l, err := n.Listen("server")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	dc := make(chan *client.Client, 1)
	go func() {
		c, err := client.Dial(testCtx(t), n.Dialer("client"), "server", opts)
		if err != nil {
			t.Error(err)
		}
		dc <- c
	}()
	fl := &fakeListener{t: t, l: l}
	f := fl.accept(wire.Limits{})
	c := <-dc
	if c == nil {
		t.FailNow()
	}
	t.Cleanup(func() { c.Close() })
	return fl, f, c
}

// reopenFake opens share "bank" again on the fake server's session and
// answers with account 1 at version 3, as fakeSession's first opening.
func reopenFake(t *testing.T, f *fakeServer, c *client.Client) *client.Share {
	t.Helper()
	sc := make(chan *client.Share, 1)
	go func() {
		s, err := c.Open(testCtx(t), "bank", account)
		if err != nil {
			t.Error(err)
		}
		sc <- s
	}()
	var op *wire.OpenShare
	for op == nil {
		op, _ = f.recv().(*wire.OpenShare)
	}
	f.send(&wire.Opened{Share: op.Share, Version: 3, Access: wire.AccessWrite, Transfer: wire.TransferSnapshot})
	rec := createAccount(1, 10)[2]
	f.send(&wire.SnapshotChunk{Share: op.Share, Objects: []wire.Object{
		{ID: oid(4), Kind: wire.ObjectCounter},
		{ID: oid(5), Kind: wire.ObjectMap},
		{ID: rec.Object, Class: rec.Class, Kind: wire.ObjectRecord, Fields: rec.Fields},
	}})
	s := <-sc
	if s == nil {
		t.FailNow()
	}
	return s
}

// A record whose removal is still pending when its share closes is
// retired too (it is out of the index until the verdict): after a new
// opening, a commit through it fails instead of passing for the new
// opening's record of the same id.
func TestRetiredPendingRemoval(t *testing.T) {
	f, c, s := fakeSession(t)
	old := record(t, s, 1)
	run(t, s, func(tx *stm.Tx) error { s.Remove(tx, old); return nil })
	f.recv() // the removal, never answered
	s.Close(testCtx(t))
	s2 := reopenFake(t, f, c)
	err := s2.Atomically(testCtx(t), func(tx *stm.Tx) error { balanceF.Of(old).Set(tx, 99); return nil })
	if !errors.Is(err, stm.ErrRetired) || s2.Pending() != 0 {
		t.Fatalf("write through the record removed by the closed opening: %v, %d pending; want ErrRetired, nothing sent", err, s2.Pending())
	}
}

// The commit guard takes no lock: a share transaction that sets its own
// tag commits, and an observer called synchronously (under the share's
// lock) may commit a local transaction.
func TestGuardTakesNoLock(t *testing.T) {
	_, _, s := fakeSession(t)
	o := record(t, s, 1)
	if _, err := s.Run(testCtx(t), func(tx *stm.Tx) error {
		tx.SetTag("mine")
		hitsF.Of(o).Add(tx, 1)
		return nil
	}); err != nil {
		t.Fatalf("Run with tx.SetTag: %v", err)
	}

	e := startServer(t, false, server.Config{})
	e.raw("bank", createAccount(1, 10)...)
	c := e.clientWith(client.Options{Workspace: []stm.Option{stm.WithDispatcher(func(w func()) { w() })}})
	s2, err := c.Open(testCtx(t), "bank", account)
	if err != nil {
		t.Fatal(err)
	}
	ws := s2.Workspace()
	local := stm.NewVar(ws, int64(0))
	seen := make(chan error, 16)
	sub := ws.Subscribe(record(t, s2, 1), func(stm.Change) {
		seen <- ws.Atomically(context.Background(), func(tx *stm.Tx) error { local.Set(tx, local.Get(tx)+1); return nil })
	})
	defer sub.Close()
	_, o2 := e.open("bank")
	if err := o2.Atomically(testCtx(t), func(tx *stm.Tx) error { balanceF.Of(record(t, o2, 1)).Set(tx, 5); return nil }); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-seen:
		if err != nil {
			t.Fatalf("observer's local commit: %v", err)
		}
	case <-testCtx(t).Done():
		t.Fatal("observer's local commit deadlocked")
	}
}

// A record that has left the share for good (its removal acknowledged,
// or its creation aborted) is the application's: the workspace may write
// it; one whose removal is still pending is not (the removal may abort).
func TestLeftShareUnbound(t *testing.T) {
	f, _, s := fakeSession(t)
	ws := s.Workspace()
	old := record(t, s, 1)
	h := run(t, s, func(tx *stm.Tx) error { s.Remove(tx, old); return nil })
	cm := f.recv().(*wire.Commit)
	if err := ws.Atomically(testCtx(t), func(tx *stm.Tx) error { balanceF.Of(old).Set(tx, 1); return nil }); !errors.Is(err, client.ErrShareObject) {
		t.Fatalf("workspace write of a record whose removal is pending: %v, want ErrShareObject", err)
	}
	f.send(&wire.Ack{ID: cm.ID, Version: 4})
	if err := h.Wait(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	if err := ws.Atomically(testCtx(t), func(tx *stm.Tx) error { balanceF.Of(old).Set(tx, 1); return nil }); err != nil {
		t.Fatalf("workspace write of a record removed from the share: %v", err)
	}

	var o *stm.Object
	h = run(t, s, func(tx *stm.Tx) error { o = s.Create(tx, account); balanceF.Of(o).Set(tx, 5); return nil })
	cm = f.recv().(*wire.Commit)
	f.send(&wire.Abort{ID: cm.ID, Code: wire.CodeInvalid, Message: "no"})
	if err := h.Wait(testCtx(t)); err == nil {
		t.Fatal("creation not aborted")
	}
	if err := ws.Atomically(testCtx(t), func(tx *stm.Tx) error { balanceF.Of(o).Set(tx, 1); hitsF.Of(o).Add(tx, 1); return nil }); err != nil {
		t.Fatalf("workspace write of a record whose creation was aborted: %v", err)
	}
}
