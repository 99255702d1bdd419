package client_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/weft-stm/weft/client"
	"github.com/weft-stm/weft/server"
	"github.com/weft-stm/weft/stm"
	"github.com/weft-stm/weft/transport"
	"github.com/weft-stm/weft/wire"
)

// testTimeout bounds every wait, so that a bug fails a test instead of
// hanging it; no test waits for time to pass.
const testTimeout = 30 * time.Second

func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}

// The test schema: an account with a balance, a name, a counter of hits
// and a map of tags (collections are objects of their own on the wire).
var (
	balanceF = stm.NewVarField[int64](1, "balance")
	nameF    = stm.NewVarField[string](2, "name")
	hitsF    = stm.NewCounterField(3, "hits")
	tagsF    = stm.NewMapField[string, int64](4, "tags")
	account  = stm.NewClass("Account", 7, balanceF, nameF, hitsF, tagsF)
)

// env is a server reachable through dial at addr.
type env struct {
	t    testing.TB
	srv  *server.Server
	dial transport.Dialer
	addr string
	seed uint64
	net  *transport.Network // the in-memory network, if not TCP
}

func startServer(t testing.TB, tcp bool, cfg server.Config) *env {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.DefaultAccess == server.AccessNone && cfg.Permissions == nil {
		cfg.DefaultAccess = server.AccessWrite
	}
	var l transport.Listener
	e := &env{t: t, srv: server.New(cfg)}
	if tcp {
		tl, err := transport.ListenTCP("127.0.0.1:0", nil, cfg.Limits)
		if err != nil {
			t.Fatal(err)
		}
		l, e.dial = tl, transport.TCPDialer(nil, wire.Limits{})
	} else {
		n := transport.NewNetwork(1)
		ml, err := n.Listen("server")
		if err != nil {
			t.Fatal(err)
		}
		l, e.dial, e.net = ml, n.Dialer("client"), n
	}
	e.addr = l.Addr()
	errc := make(chan error, 1)
	go func() { errc <- e.srv.Serve(context.Background(), l) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		defer cancel()
		if err := e.srv.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		if err := <-errc; !errors.Is(err, server.ErrServerClosed) {
			t.Errorf("Serve: %v", err)
		}
	})
	return e
}

// both runs f over the in-memory network and over TCP loopback.
func both(t *testing.T, f func(t *testing.T, tcp bool)) {
	t.Run("mem", func(t *testing.T) { f(t, false) })
	t.Run("tcp", func(t *testing.T) { f(t, true) })
}

// client dials a new client with a replica id from a seeded source.
func (e *env) client() *client.Client {
	e.t.Helper()
	return e.clientWith(client.Options{})
}

// clientWith dials a new client with opts and a replica id from a seeded
// source.
func (e *env) clientWith(opts client.Options) *client.Client {
	e.t.Helper()
	e.seed++
	opts.Rand = rand.NewPCG(e.seed, 42)
	c, err := client.Dial(testCtx(e.t), e.dial, e.addr, opts)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { c.Close() })
	return c
}

func (e *env) open(name string) (*client.Client, *client.Share) {
	e.t.Helper()
	c := e.client()
	s, err := c.Open(testCtx(e.t), name, account)
	if err != nil {
		e.t.Fatal(err)
	}
	return c, s
}

// raw commits ops on share name through a raw protocol session, as
// replica 1, and returns the version it got.
func (e *env) raw(name string, ops ...wire.Op) uint64 {
	e.t.Helper()
	ctx := testCtx(e.t)
	conn, err := e.dial(ctx, e.addr)
	if err != nil {
		e.t.Fatal(err)
	}
	defer conn.Close()
	must := func(err error) {
		if err != nil {
			e.t.Helper()
			e.t.Fatal(err)
		}
	}
	recv := func() wire.Message {
		m, err := conn.Recv(ctx)
		must(err)
		return m
	}
	e.seed++
	must(conn.Send(ctx, &wire.Hello{MinVersion: wire.ProtocolVersion, MaxVersion: wire.ProtocolVersion, Replica: 1, Agent: "seed"}))
	recv()
	must(conn.Send(ctx, &wire.OpenShare{Share: 1, Name: name}))
	op := recv().(*wire.Opened)
	for more := op.Transfer != wire.TransferNone; more; {
		switch m := recv().(type) {
		case *wire.SnapshotChunk:
			more = m.More
		case *wire.Delta:
			more = m.More
		}
	}
	must(conn.Send(ctx, &wire.Commit{ID: wire.CommitID{Replica: 1, Seq: e.seed}, Share: 1, Snapshot: op.Version, Writes: ops}))
	var v uint64
	for v == 0 {
		switch m := recv().(type) {
		case *wire.Ack:
			v = m.Version
		case *wire.Abort:
			e.t.Fatalf("seed commit aborted: %+v", m)
		}
	}
	// Closed, and known closed by the server, before it returns: tests
	// that count the messages in flight must not find an Update to this
	// connection among them.
	must(conn.Send(ctx, &wire.CloseShare{Share: 1}))
	for {
		if _, ok := recv().(*wire.ShareClosed); ok {
			return v
		}
	}
}

func oid(seq uint64) wire.ObjectID { return wire.ObjectID{Replica: 1, Seq: seq} }

// createAccount returns the ops creating account n (ids 3n, 3n+1, 3n+2
// for the record, its counter and its map) with balance and name.
func createAccount(n uint64, balance int64) []wire.Op {
	rec, hits, tags := oid(3*n), oid(3*n+1), oid(3*n+2)
	return []wire.Op{
		{Kind: wire.OpCreate, Object: hits, ObjectKind: wire.ObjectCounter},
		{Kind: wire.OpCreate, Object: tags, ObjectKind: wire.ObjectMap},
		{Kind: wire.OpCreate, Object: rec, Class: uint32(account.ID()), ObjectKind: wire.ObjectRecord, Fields: []wire.Field{
			{ID: 1, Value: wire.Int(balance)},
			{ID: 2, Value: wire.String(fmt.Sprint("acct", n))},
			{ID: 3, Value: wire.Ref(hits)},
			{ID: 4, Value: wire.Ref(tags)},
		}},
	}
}

// record returns the share's account n.
func record(t testing.TB, s *client.Share, n uint64) *stm.Object {
	t.Helper()
	x, ok := s.Object(oid(3 * n))
	if !ok {
		t.Fatalf("share %s has no account %d", s.Name(), n)
	}
	return x.(*stm.Object)
}

// accountState is what a test compares of an account.
type accountState struct {
	Balance int64
	Name    string
	Hits    int64
	Tags    map[string]int64
}

func stateOf(tx *stm.Tx, o *stm.Object) accountState {
	st := accountState{Balance: balanceF.Of(o).Get(tx), Name: nameF.Of(o).Get(tx), Hits: hitsF.Of(o).Get(tx), Tags: map[string]int64{}}
	for k, v := range tagsF.Of(o).All(tx) {
		st.Tags[k] = v
	}
	return st
}

// snapshot returns the state of every account of s, by record id, and the
// share version it is at.
func snapshot(t testing.TB, s *client.Share) (uint64, map[wire.ObjectID]accountState) {
	t.Helper()
	out := map[wire.ObjectID]accountState{}
	recs := s.Records()
	ver, err := s.ViewVersion(testCtx(t), func(tx *stm.Tx) error {
		clear(out)
		for _, o := range recs {
			out[stm.IDOf(o)] = stateOf(tx, o)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return ver, out
}

// recordingDialer dials the in-memory network as endpoint from and keeps
// the connections, so that cut(i) breaks the i-th (cut(-1): the last).
func (e *env) recordingDialer(from string) (transport.Dialer, func(i int)) {
	var mu sync.Mutex
	var conns []*transport.MemConn
	dial := func(ctx context.Context, addr string) (transport.Conn, error) {
		c, err := e.net.Dial(ctx, from, addr)
		if err == nil {
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
		return c, err
	}
	cut := func(i int) {
		mu.Lock()
		defer mu.Unlock()
		if i < 0 {
			i = len(conns) - 1
		}
		e.net.Cut(conns[i])
	}
	return dial, cut
}
