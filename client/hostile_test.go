package client_test

import (
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"
	"github.com/weft-stm/weft/client"
	"github.com/weft-stm/weft/stm"
	"github.com/weft-stm/weft/store/pebblestore"
	"github.com/weft-stm/weft/transport"
	"github.com/weft-stm/weft/wire"
)

// cachedFakeSession is fakeSession with an offline cache in a fresh
// directory.
func cachedFakeSession(t *testing.T) (*fakeServer, *client.Client, *client.Share, *pebblestore.Store) {
	t.Helper()
	st, err := pebblestore.Open(filepath.Join(t.TempDir(), "cache"), pebblestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	f, c, s := fakeSessionOpts(t, wire.Limits{}, client.Options{Replica: 9, Cache: st})
	return f, c, s, st
}

// pendingInCache returns the seqs of the commits the cache holds as
// unanswered.
func pendingInCache(t *testing.T, st *pebblestore.Store) []uint64 {
	t.Helper()
	var seqs []uint64
	if err := st.LoadPending(func(share string, c *wire.Commit) error {
		seqs = append(seqs, c.ID.Seq)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return seqs
}

// TestBadAckKeepsCachedCommit: an Ack the client cannot apply (its version
// skips one) fails the share and leaves the commit in doubt, and changes
// nothing else: the cache still holds the commit as unanswered, so that a
// new opening (or a restart) sends it again, instead of forgetting a commit
// whose fate the client does not know.
func TestBadAckKeepsCachedCommit(t *testing.T) {
	f, _, s, st := cachedFakeSession(t)
	b := balanceF.Of(record(t, s, 1))
	h := run(t, s, func(tx *stm.Tx) error { b.Set(tx, 11); return nil })
	cm := f.recv().(*wire.Commit)
	f.send(&wire.Ack{ID: cm.ID, Version: 5}) // the share is at 3: 4 is next
	if err := h.Wait(testCtx(t)); !errors.Is(err, client.ErrInDoubt) {
		t.Fatalf("commit after a bad Ack: %v, want in doubt", err)
	}
	if s.Err() == nil {
		t.Fatal("the share goes on after an Ack it could not apply")
	}
	if got := pendingInCache(t, st); len(got) != 1 || got[0] != cm.ID.Seq {
		t.Fatalf("the cache holds pending commits %v, want %d still: a commit in doubt was forgotten", got, cm.ID.Seq)
	}
}

// TestTransferFrameWithoutOpened: a SnapshotChunk or a Delta that no
// Opened announced is a protocol violation: the share fails with an error
// saying so, instead of taking the chunk for a snapshot at the version of
// the last Opened (an empty share at an older version here).
func TestTransferFrameWithoutOpened(t *testing.T) {
	for _, m := range []wire.Message{
		&wire.SnapshotChunk{},
		&wire.Delta{},
	} {
		t.Run(m.Type().String(), func(t *testing.T) {
			f, _, s := fakeSession(t)
			f.send(&wire.Update{Share: 1, Version: 4, Origin: wire.CommitID{Replica: 2, Seq: 1},
				Writes: []wire.Op{{Kind: wire.OpCounterAdd, Object: oid(4), Delta: 1}}})
			if err := s.WaitVersion(testCtx(t), 4); err != nil {
				t.Fatal(err)
			}
			switch m := m.(type) {
			case *wire.SnapshotChunk:
				m.Share = 1
			case *wire.Delta:
				m.Share = 1
			}
			f.send(m)
			f.send(&wire.Ping{Nonce: 7}) // once answered, m was handled
			for {
				if p, ok := f.recv().(*wire.Pong); ok && p.Nonce == 7 {
					break
				}
			}
			if s.Err() == nil {
				t.Errorf("the share took an unannounced %v: version %d, %d records", m.Type(), s.Version(), len(s.Records()))
			}
		})
	}
}

// TestStaleAckOfHiddenCommit: an Ack whose version the acknowledged state
// has passed, for a commit that an Update hid (no snapshot came since it
// was sent, which could hold it), contradicts what the server sent: the
// Update took that version. The client must not report the commit
// acknowledged while its writes are nowhere: the share fails, and the
// commit is in doubt.
func TestStaleAckOfHiddenCommit(t *testing.T) {
	f, _, s := fakeSession(t)
	b := balanceF.Of(record(t, s, 1))
	h := run(t, s, func(tx *stm.Tx) error { b.Set(tx, b.Get(tx)+1); return nil })
	cm := f.recv().(*wire.Commit)
	// Another replica's write of the balance p read: p is hidden.
	f.send(&wire.Update{Share: cm.Share, Version: 4, Origin: wire.CommitID{Replica: 2, Seq: 1},
		Writes: []wire.Op{{Kind: wire.OpSetField, Object: oid(3), Field: 1, Value: wire.Int(50)}}})
	f.send(&wire.Ack{ID: cm.ID, Version: 4})
	err := h.Wait(testCtx(t))
	if err == nil {
		var bal int64
		s.View(testCtx(t), func(tx *stm.Tx) error { bal = b.Get(tx); return nil })
		t.Fatalf("commit acknowledged at %d (a version an Update took), its write nowhere: balance %d at version %d", h.Version(), bal, s.Version())
	}
	if !errors.Is(err, client.ErrInDoubt) || s.Err() == nil {
		t.Fatalf("commit %v, share %v: want in doubt and the share failed", err, s.Err())
	}
}

// TestWelcomeVersionChecked: a Welcome choosing a protocol version the
// client did not offer fails Dial with an error saying so (the session
// would go on in a language the server may not speak), for good: the
// server's choice will not change.
func TestWelcomeVersionChecked(t *testing.T) {
	for _, v := range []uint32{0, wire.ProtocolVersion + 1} {
		n := transport.NewNetwork(1)
		l, err := n.Listen("server")
		if err != nil {
			t.Fatal(err)
		}
		errc := make(chan error, 1)
		go func() {
			c, err := client.Dial(testCtx(t), n.Dialer("client"), "server", client.Options{Replica: 9})
			if err == nil {
				c.Close()
			}
			errc <- err
		}()
		conn, err := l.Accept(testCtx(t))
		if err != nil {
			t.Fatal(err)
		}
		f := &fakeServer{t: t, conn: conn}
		f.recv()
		f.send(&wire.Welcome{Version: v, Session: 1})
		if err := <-errc; err == nil || !strings.Contains(err.Error(), "version") {
			t.Errorf("Welcome with version %d: Dial returned %v, want an error naming the version", v, err)
		}
		conn.Close()
		l.Close()
	}
}

// TestCachedCommitOfAnotherReplica: a cache holding an unanswered commit
// of another replica than its own (damaged, or pieced together) is
// refused with an error saying so. Restored, the commit would be sent on
// a session of another replica, which the server aborts (forbidden), and
// the client ignores a verdict on another replica's commit: it would stay
// pending, shown, for ever, and hold up every Flush.
func TestCachedCommitOfAnotherReplica(t *testing.T) {
	st, err := pebblestore.Open(filepath.Join(t.TempDir(), "cache"), pebblestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	rec := createAccount(1, 10)[2]
	if err := st.Checkpoint("bank", 3, []wire.Object{
		{ID: oid(4), Kind: wire.ObjectCounter},
		{ID: oid(5), Kind: wire.ObjectMap},
		{ID: rec.Object, Class: rec.Class, Kind: wire.ObjectRecord, Fields: rec.Fields},
	}); err != nil {
		t.Fatal(err)
	}
	foreign := &wire.Commit{ID: wire.CommitID{Replica: 77, Seq: 1}, Snapshot: 3,
		Writes: []wire.Op{{Kind: wire.OpCounterAdd, Object: oid(4), Delta: 1}}}
	if err := st.PutPending("bank", foreign); err != nil {
		t.Fatal(err)
	}
	if err := st.SetReplica(9, 1); err != nil {
		t.Fatal(err)
	}
	// Offline: no server listens.
	c, err := client.Dial(testCtx(t), transport.NewNetwork(1).Dialer("app"), "server",
		client.Options{Replica: 9, Cache: st, MinBackoff: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s, err := c.Open(testCtx(t), "bank", account)
	if err == nil {
		t.Fatalf("opened from a cache holding a commit of replica 77 as replica 9's: %d pending", s.Pending())
	}
	if !strings.Contains(err.Error(), "replica") {
		t.Errorf("error %q does not say what is wrong", err)
	}
}

// tcpFakeSession is fakeSessionWith over TCP on the loopback: a server
// that stops reading fills the sockets, and the client's sends block.
func tcpFakeSession(t *testing.T, lim wire.Limits) (*fakeServer, *client.Client, *client.Share) {
	t.Helper()
	l, err := transport.ListenTCP("127.0.0.1:0", nil, lim)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	dc := make(chan *client.Client, 1)
	go func() {
		c, err := client.Dial(testCtx(t), transport.TCPDialer(nil, wire.Limits{}), l.Addr(),
			client.Options{Replica: 9, MinBackoff: time.Hour})
		if err != nil {
			t.Error(err)
		}
		dc <- c
	}()
	conn, err := l.Accept(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	f := &fakeServer{t: t, conn: conn}
	f.recv()
	f.send(&wire.Welcome{Version: wire.ProtocolVersion, Session: 1, Limits: lim})
	c := <-dc
	if c == nil {
		t.FailNow()
	}
	t.Cleanup(func() { c.Close() })
	return f, c, reopenFake(t, f, c)
}

// TestPingFloodBounded: a server that sends Pings and reads nothing (its
// socket fills, and the client's writer blocks) does not make the client
// queue a Pong per Ping without end: what waits to be sent stays bounded.
func TestPingFloodBounded(t *testing.T) {
	f, c, s := tcpFakeSession(t, wire.Limits{})
	// Enough Pongs to fill both sockets' buffers many times over.
	const pings, batch = 2_000_000, 1000
	msgs := make([]wire.Message, batch)
	for i := range msgs {
		msgs[i] = &wire.Ping{Nonce: uint64(i)}
	}
	for range pings / batch {
		if err := f.conn.SendBatch(testCtx(t), msgs); err != nil {
			t.Fatal(err)
		}
	}
	// Once the Update after the Pings is applied, the client has queued
	// what it will.
	f.send(&wire.Update{Share: 1, Version: 4, Origin: wire.CommitID{Replica: 2, Seq: 1}})
	if err := s.WaitVersion(testCtx(t), 4); err != nil {
		t.Fatal(err)
	}
	if n := client.Queued(c); n > 1000 {
		t.Fatalf("%d messages queued for a server that reads nothing", n)
	}
}

// TestUnexpectedFromServerNotReading: a server that reads nothing (the
// client's sends block: its socket is full) and sends an unexpected
// message still has its connection ended: the client's reader does not
// wait for ever to tell it so with an Error.
func TestUnexpectedFromServerNotReading(t *testing.T) {
	f, c, s := tcpFakeSession(t, wire.Limits{})
	name := nameF.Of(record(t, s, 1))
	big := strings.Repeat("x", 200_000)
	// 40 MB of commits: more than both sockets hold, the server reads
	// none of it.
	for range 200 {
		run(t, s, func(tx *stm.Tx) error { name.Set(tx, big); return nil })
	}
	f.send(&wire.Welcome{Version: 1}) // unexpected after the handshake
	if err := c.WaitState(testCtx(t), client.Reconnecting); err != nil {
		t.Fatalf("the connection is not ended: %v", err)
	}
}

// openFakeWith dials a client to a fake server end and opens share "bank"
// from a snapshot at version 3 of objs; it returns Open's result.
func openFakeWith(t *testing.T, objs []wire.Object) (*fakeServer, *client.Share, error) {
	t.Helper()
	_, f, c := dialFake(t, client.Options{Replica: 9})
	type opened struct {
		s   *client.Share
		err error
	}
	oc := make(chan opened, 1)
	go func() {
		s, err := c.Open(testCtx(t), "bank", account)
		oc <- opened{s, err}
	}()
	op := f.recv().(*wire.OpenShare)
	f.send(&wire.Opened{Share: op.Share, Version: 3, Access: wire.AccessWrite, Transfer: wire.TransferSnapshot})
	f.send(&wire.SnapshotChunk{Share: op.Share, Objects: objs})
	o := <-oc
	return f, o.s, o.err
}

// TestCollectionRefsChecked: the collections a record's fields refer to
// must be in the share, of the kind its class gives the field, and no
// other record's: else the replica would show objects the acknowledged
// state does not have (a counter where the share has a map, one that is
// not there), or two records' cells for one object, of which Updates
// reach one only. The server keeps no schema and checks none of it, so a
// snapshot, or an Update creating a record (any writer's), that breaks it
// fails the share with an error, instead of a replica that diverges.
func TestCollectionRefsChecked(t *testing.T) {
	rec := createAccount(1, 10)[2]
	account1 := wire.Object{ID: rec.Object, Class: rec.Class, Kind: wire.ObjectRecord, Fields: rec.Fields}
	other := wire.Object{ID: oid(6), Class: rec.Class, Kind: wire.ObjectRecord, Fields: rec.Fields} // account 1's collections
	for name, objs := range map[string][]wire.Object{
		"missing":    {{ID: oid(5), Kind: wire.ObjectMap}, account1},
		"wrong kind": {{ID: oid(4), Kind: wire.ObjectMap}, {ID: oid(5), Kind: wire.ObjectMap}, account1},
		"another's":  {{ID: oid(4), Kind: wire.ObjectCounter}, {ID: oid(5), Kind: wire.ObjectMap}, account1, other},
	} {
		t.Run("snapshot "+name, func(t *testing.T) {
			_, s, err := openFakeWith(t, objs)
			if err == nil {
				t.Fatalf("opened a snapshot whose record's collection is %s: %d records", name, len(s.Records()))
			}
		})
	}
	t.Run("update another's", func(t *testing.T) {
		f, _, s := fakeSession(t)
		f.send(&wire.Update{Share: 1, Version: 4, Origin: wire.CommitID{Replica: 2, Seq: 1},
			Writes: []wire.Op{{Kind: wire.OpCreate, Object: oid(6), Class: rec.Class, ObjectKind: wire.ObjectRecord, Fields: rec.Fields}}})
		f.send(&wire.Ping{Nonce: 7}) // once answered, the Update was handled
		for {
			if p, ok := f.recv().(*wire.Pong); ok && p.Nonce == 7 {
				break
			}
		}
		if s.Err() == nil {
			t.Fatalf("took an Update creating a record on account 1's collections: %d records", len(s.Records()))
		}
	})
}

// TestCachedCommitWithoutShare: a cache holding unanswered commits of a
// share but not the share's state (damaged: a share's state is cached
// before any commit on it) is refused with an error, rather than opening
// the share from the server with those commits neither shown nor sent,
// left to be sent by some later life, long after their verdict may have
// been forgotten.
func TestCachedCommitWithoutShare(t *testing.T) {
	st, err := pebblestore.Open(filepath.Join(t.TempDir(), "cache"), pebblestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() }) // after the client's Close (dialFake)
	cm := &wire.Commit{ID: wire.CommitID{Replica: 9, Seq: 1}, Snapshot: 3,
		Writes: []wire.Op{{Kind: wire.OpCounterAdd, Object: oid(4), Delta: 1}}}
	if err := st.PutPending("bank", cm); err != nil {
		t.Fatal(err)
	}
	_, f, c := dialFake(t, client.Options{Replica: 9, Cache: st})
	errc := make(chan error, 1)
	go func() {
		_, err := c.Open(testCtx(t), "bank", account)
		errc <- err
	}()
	// The Open fails before it asks the server, or asks it.
	mc := make(chan wire.Message, 1)
	go func() {
		m, _ := f.conn.Recv(testCtx(t))
		mc <- m
	}()
	select {
	case err := <-errc:
		if err == nil || !strings.Contains(err.Error(), "cache") {
			t.Fatalf("Open: %v, want an error about the cache", err)
		}
	case m := <-mc:
		t.Fatalf("Open sent %v, with a commit of the share in the cache that it will neither show nor send", m.Type())
	}
}

// TestOpenedNoneChecked: an Opened announcing no transfer is the server
// saying the client's copy is current: only when the client has one, at
// Opened's version (protocol.md section 9). Else the share fails (Open
// returns an error) instead of showing an empty share, or the copy at
// another version, as the server's.
func TestOpenedNoneChecked(t *testing.T) {
	_, f, c := dialFake(t, client.Options{Replica: 9})
	errc := make(chan error, 1)
	go func() {
		s, err := c.Open(testCtx(t), "bank", account)
		if err == nil {
			t.Errorf("opened with no transfer and no copy: version %d, %d records", s.Version(), len(s.Records()))
		}
		errc <- err
	}()
	op := f.recv().(*wire.OpenShare)
	if op.Have != 0 {
		t.Fatalf("have %d", op.Have)
	}
	f.send(&wire.Opened{Share: op.Share, Version: 7, Access: wire.AccessWrite, Transfer: wire.TransferNone})
	<-errc
}

// TestDeltaTransferEndChecked: a delta transfer must bring the replica to
// Opened's version (protocol.md section 9): one that ends short of it, or
// goes past it, fails the share, instead of a replica that shows a state
// the server does not take it to hold (the next Update would not apply).
func TestDeltaTransferEndChecked(t *testing.T) {
	for name, last := range map[string]uint64{"short": 5, "past": 7} {
		t.Run(name, func(t *testing.T) {
			fl, f, c := dialFake(t, client.Options{Replica: 9, MinBackoff: 1, MaxBackoff: 1000})
			s := reopenFake(t, f, c) // at version 3
			f.conn.Close()
			f = fl.accept(wire.Limits{})
			op := f.recv().(*wire.OpenShare)
			if op.Have != 3 {
				t.Fatalf("reopened with have %d", op.Have)
			}
			f.send(&wire.Opened{Share: op.Share, Version: 6, Access: wire.AccessWrite, Transfer: wire.TransferDelta})
			var chs []wire.Change
			for v := uint64(4); v <= last; v++ {
				chs = append(chs, wire.Change{Version: v, Origin: wire.CommitID{Replica: 2, Seq: v},
					Writes: []wire.Op{{Kind: wire.OpCounterAdd, Object: oid(4), Delta: 1}}})
			}
			f.send(&wire.Delta{Share: op.Share, Changes: chs})
			f.send(&wire.Ping{Nonce: 7}) // once answered, the Delta was handled
			for {
				if p, ok := f.recv().(*wire.Pong); ok && p.Nonce == 7 {
					break
				}
			}
			if s.Err() == nil {
				t.Fatalf("a delta to version 6 that ended at %d taken: the share at %d", last, s.Version())
			}
		})
	}
}

// TestAckDuringSnapshotTransfer: Acks may interleave with a transfer
// (protocol.md section 9): an Ack of a commit decided after Opened's
// version, arriving between two chunks of a resync's snapshot, is applied
// once the snapshot is, as if it had come after it.
func TestAckDuringSnapshotTransfer(t *testing.T) {
	fl, f, c := dialFake(t, client.Options{Replica: 9, MinBackoff: 1, MaxBackoff: 1000})
	s := reopenFake(t, f, c) // at version 3
	b := balanceF.Of(record(t, s, 1))
	h := run(t, s, func(tx *stm.Tx) error { b.Set(tx, 77); return nil })
	f.recv()
	f.conn.Close()
	f = fl.accept(wire.Limits{})
	op := f.recv().(*wire.OpenShare)
	cm := f.recv().(*wire.Commit)
	f.send(&wire.Opened{Share: op.Share, Version: 5, Access: wire.AccessWrite, Transfer: wire.TransferSnapshot})
	rec := createAccount(1, 10)[2]
	f.send(&wire.SnapshotChunk{Share: op.Share, More: true, Objects: []wire.Object{{ID: oid(4), Kind: wire.ObjectCounter}, {ID: oid(5), Kind: wire.ObjectMap}}})
	f.send(&wire.Ack{ID: cm.ID, Version: 6})
	f.send(&wire.SnapshotChunk{Share: op.Share, Objects: []wire.Object{{ID: rec.Object, Class: rec.Class, Kind: wire.ObjectRecord, Fields: rec.Fields}}})
	if err := h.Wait(testCtx(t)); err != nil {
		t.Fatalf("commit: %v (share: %v)", err, s.Err())
	}
	if err := s.WaitVersion(testCtx(t), 6); err != nil {
		t.Fatal(err)
	}
	var bal int64
	s.View(testCtx(t), func(tx *stm.Tx) error { bal = b.Get(tx); return nil })
	if h.Version() != 6 || bal != 77 || s.Err() != nil {
		t.Fatalf("acknowledged at %d, balance %d, share %v: want 6, 77, no error", h.Version(), bal, s.Err())
	}
}

// TestCacheInUse: a cache serves one client at a time. A second client
// dialed with a cache another one uses would take the same replica id and
// the same commit numbers: its commits would overwrite the first's in the
// cache (lost if the application crashes), and the server would take one
// for a resend of the other. Dial refuses it; once the first is closed,
// the cache serves again.
func TestCacheInUse(t *testing.T) {
	st, err := pebblestore.Open(filepath.Join(t.TempDir(), "cache"), pebblestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	n := transport.NewNetwork(1) // no server: both start offline
	opts := client.Options{Replica: 9, Cache: st, MinBackoff: time.Hour}
	a, err := client.Dial(testCtx(t), n.Dialer("a"), "server", opts)
	if err != nil {
		t.Fatal(err)
	}
	b, err := client.Dial(testCtx(t), n.Dialer("b"), "server", opts)
	if err == nil {
		b.Close()
		a.Close()
		t.Fatal("a second client dialed with a cache the first uses")
	}
	a.Close()
	b, err = client.Dial(testCtx(t), n.Dialer("b"), "server", opts)
	if err != nil {
		t.Fatalf("after the first client closed: %v", err)
	}
	b.Close()
}

// deleteFailingCache is a cache whose DeletePending fails (a disk full,
// say).
type deleteFailingCache struct{ *pebblestore.Store }

func (deleteFailingCache) DeletePending(wire.CommitID, bool) error {
	return errors.New("injected: no space left on device")
}

// TestRejectionNotForgottenInDoubt: a rejection is reported only once the
// cache has forgotten the commit for good (synced): else, sent again after
// a restart, it could be acknowledged by a server that crashed since. If
// the cache cannot forget it, the commit is in doubt, not rejected, and
// the cache still holds it (to be sent, and answered, after a restart).
func TestRejectionNotForgottenInDoubt(t *testing.T) {
	st, err := pebblestore.Open(filepath.Join(t.TempDir(), "cache"), pebblestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var mu sync.Mutex
	var reported []wire.CommitID
	f, _, s := fakeSessionOpts(t, wire.Limits{}, client.Options{Replica: 9, Cache: deleteFailingCache{st},
		OnAbort: func(_ string, id wire.CommitID, _ error) {
			mu.Lock()
			reported = append(reported, id)
			mu.Unlock()
		}})
	b := balanceF.Of(record(t, s, 1))
	h := run(t, s, func(tx *stm.Tx) error { b.Set(tx, 11); return nil })
	cm := f.recv().(*wire.Commit)
	f.send(&wire.Abort{ID: cm.ID, Code: wire.CodeInternal, Message: "too old"})
	err = h.Wait(testCtx(t))
	if !errors.Is(err, client.ErrInDoubt) {
		t.Errorf("commit rejected, still in the cache: %v, want in doubt", err)
	}
	f.send(&wire.Ping{Nonce: 7}) // once answered, the Abort was handled, callbacks included
	for {
		if p, ok := f.recv().(*wire.Pong); ok && p.Nonce == 7 {
			break
		}
	}
	mu.Lock()
	if len(reported) != 0 {
		t.Errorf("rejection of %v reported, still in the cache", reported)
	}
	mu.Unlock()
	if got := pendingInCache(t, st); len(got) != 1 {
		t.Fatalf("cache holds %v", got)
	}
}

// TestResendOverNewLimits: a server back with a smaller max_frame_size
// than an unanswered commit needs ends the session with an error saying
// so, the commit in doubt; before, the resend failed each connection as
// it came, and the client reconnected for ever, shown as Connected, the
// commit never answered.
func TestResendOverNewLimits(t *testing.T) {
	fl, f, c := dialFake(t, client.Options{Replica: 9, MinBackoff: time.Millisecond, MaxBackoff: time.Millisecond})
	s := reopenFake(t, f, c) // at version 3
	h := run(t, s, func(tx *stm.Tx) error {
		nameF.Of(record(t, s, 1)).Set(tx, strings.Repeat("x", 40<<10))
		return nil
	})
	f.recv() // the commit, unanswered
	f.conn.Close()
	fl.accept(wire.Limits{MaxFrameSize: 16 << 10})
	if err := h.Wait(testCtx(t)); !errors.Is(err, client.ErrInDoubt) || !strings.Contains(err.Error(), "limits") {
		t.Fatalf("the commit that no longer fits: %v, want in doubt, the limits named", err)
	}
	// The handles are resolved as the session ends, before the state
	// says so: wait for it.
	if err := c.WaitState(testCtx(t), client.Closed); err != nil {
		t.Fatalf("client %v (%v), want closed", c.State(), err)
	}
}

// TestLocalConflictNotForgottenInDoubt: an attempt recorded in the cache
// that then fails here (another local commit overwrote what it read) must
// be forgotten before it is run again; a cache that cannot forget it
// (a disk full) would send it after a restart, beside the attempt that
// replaced it: the commit is in doubt, and not run again.
func TestLocalConflictNotForgottenInDoubt(t *testing.T) {
	st, err := pebblestore.Open(filepath.Join(t.TempDir(), "cache"), pebblestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	_, c, s := fakeSessionOpts(t, wire.Limits{}, client.Options{Replica: 9, Cache: deleteFailingCache{st}})
	b := balanceF.Of(record(t, s, 1))
	runs := 0
	err = s.Atomically(testCtx(t), func(tx *stm.Tx) error {
		runs++
		v := b.Get(tx)
		if runs == 1 { // another local commit overwrites what it read
			run(t, s, func(tx *stm.Tx) error { b.Set(tx, 100); return nil })
		}
		b.Set(tx, v+1)
		return nil
	})
	if !errors.Is(err, client.ErrInDoubt) || runs != 1 {
		t.Fatalf("after %d runs: %v, want in doubt after one", runs, err)
	}
	if c.CacheErr() == nil {
		t.Error("CacheErr is nil")
	}
	if got := pendingInCache(t, st); len(got) != 2 {
		t.Fatalf("cache holds %v, want the other commit and the attempt", got)
	}
}

// checkpointCounter is a cache that counts the checkpoints asked of it.
type checkpointCounter struct {
	*pebblestore.Store
	n atomic.Int32
}

func (c *checkpointCounter) Checkpoint(share string, version uint64, objects []wire.Object) error {
	c.n.Add(1)
	return c.Store.Checkpoint(share, version, objects)
}

// TestCacheCheckpointRetriedSparingly: once its cache fails (its disk
// full), a share does not copy itself for a checkpoint at every change it
// receives (each a copy of the whole share), only every
// CacheCheckpointEvery changes; and the cache, failed, takes no change
// after one it refused (its log would have a gap).
func TestCacheCheckpointRetriedSparingly(t *testing.T) {
	mem := vfs.NewMem()
	reserve := mem.PathJoin("/cache", "WEFT-RESERVE")
	var full atomic.Bool
	fsys := errorfs.Wrap(mem, errorfs.InjectorFunc(func(op errorfs.Op) error {
		if !full.Load() || op.Kind.ReadOrWrite() != errorfs.OpIsWrite {
			return nil
		}
		switch _, err := mem.Stat(reserve); {
		case op.Path == reserve:
			if op.Kind == errorfs.OpRemove {
				return nil
			}
			return syscall.ENOSPC // no room to set it aside again
		case err != nil:
			return nil // the room the reserve held
		}
		return syscall.ENOSPC
	}))
	st, err := pebblestore.Open("/cache", pebblestore.Options{FS: fsys})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	cc := &checkpointCounter{Store: st}
	f, c, s := fakeSessionOpts(t, wire.Limits{}, client.Options{Replica: 9, Cache: cc, CacheCheckpointEvery: 5})
	ctx := testCtx(t)
	full.Store(true)
	before := cc.n.Load()
	const n = 40
	for i := range uint64(n) {
		v := 4 + i
		f.send(&wire.Update{Share: 1, Version: v, Origin: wire.CommitID{Replica: 2, Seq: v}, Writes: []wire.Op{
			{Kind: wire.OpSetField, Object: oid(3), Field: 1, Value: wire.Int(int64(i))},
		}})
		if err := s.WaitVersion(ctx, v); err != nil {
			t.Fatal(err)
		}
	}
	if !errors.Is(c.CacheErr(), syscall.ENOSPC) {
		t.Fatalf("cache error %v on a full disk, want ENOSPC", c.CacheErr())
	}
	if got := cc.n.Load() - before; got < 1 || got > n/5+1 {
		t.Fatalf("%d checkpoints tried in %d changes on a failed cache, want 1 to %d", got, n, n/5+1)
	}
	full.Store(false) // space freed: the cache stays failed all the same
	if err := st.AppendLazy("s", wire.Change{Version: 4 + n}); err == nil {
		t.Fatal("the cache took a change after one it refused")
	}
}
