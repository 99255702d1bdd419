package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync/atomic"
	"time"

	"github.com/weft-stm/weft/client"
	"github.com/weft-stm/weft/server"
	"github.com/weft-stm/weft/stm"
	"github.com/weft-stm/weft/transport"
	"github.com/weft-stm/weft/wire"
)

// weft rows of the replication suite. Each instance runs a weft server in
// this process (server.New, Serve on a loopback TCP listener on port 0)
// and clients (package client) dialling it over real loopback TCP, as the
// peers' clients reach theirs. The objects are created on the server by a
// raw protocol session as replica seedReplica (quicker than through a
// replica); the clients then open the share and find them.

//go:generate go run github.com/weft-stm/weft/cmd/weft gen -o replication.weft.go replication.weft

// syncObjects is the number of objects in the share of sync-100k; tests
// shrink it.
var syncObjects = 100_000

const (
	seedReplica = 1      // replica id of the raw session creating objects
	seedBatch   = 10_000 // creates per seeding commit: under max_writes and max_frame_size
)

// replicationClasses are the classes a client of the suite opens shares with.
var replicationClasses = []*stm.Class{CellClass, TallyClass}

// seedID is the id of the n-th object (n ≥ 1) the seeding session creates.
func seedID(n uint64) wire.ObjectID { return wire.ObjectID{Replica: seedReplica, Seq: n} }

// createCells returns the ops creating n Cells (value 0) with ids
// seedID(first) to seedID(first+n-1).
func createCells(first, n uint64) []wire.Op {
	ops := make([]wire.Op, n)
	for i := range ops {
		ops[i] = wire.Op{Kind: wire.OpCreate, Object: seedID(first + uint64(i)),
			Class: uint32(CellClass.ID()), ObjectKind: wire.ObjectRecord,
			Fields: []wire.Field{{ID: uint32(CellFields.Value.ID()), Value: wire.Int(0)}}}
	}
	return ops
}

// createTally returns the ops creating one Tally (record seedID(2), its
// counter seedID(1)).
func createTally() []wire.Op {
	return []wire.Op{
		{Kind: wire.OpCreate, Object: seedID(1), ObjectKind: wire.ObjectCounter},
		{Kind: wire.OpCreate, Object: seedID(2), Class: uint32(TallyClass.ID()), ObjectKind: wire.ObjectRecord,
			Fields: []wire.Field{{ID: uint32(TallyFields.Hits.ID()), Value: wire.Ref(seedID(1))}}},
	}
}

// A weftEnv is an in-process weft server on loopback TCP and the clients
// dialled to it.
type weftEnv struct {
	srv      *server.Server
	addr     string
	dial     transport.Dialer
	served   chan error
	replicas uint64 // the last replica id given to a client
	clients  []*client.Client
	// seedCommits is the last commit sequence number the seeding session
	// used: ids of later seeding commits (on any share) follow it, so the
	// server never sees one commit id twice from seedReplica.
	seedCommits uint64
}

// weftConfig is the configuration of the suites' servers: everyone may
// write every share, and logs are dropped.
func weftConfig() server.Config {
	return server.Config{
		DefaultAccess: server.AccessWrite,
		Logger:        slog.New(slog.DiscardHandler),
	}
}

func startWeft() (*weftEnv, error) {
	return serveWeft(server.New(weftConfig()))
}

// serveWeft serves srv on a loopback TCP listener on a free port. On error
// srv is left as it was.
func serveWeft(srv *server.Server) (*weftEnv, error) {
	l, err := transport.ListenTCP("127.0.0.1:0", nil, wire.Limits{})
	if err != nil {
		return nil, err
	}
	e := &weftEnv{srv: srv, addr: l.Addr(), dial: transport.TCPDialer(nil, wire.Limits{}),
		served: make(chan error, 1), replicas: seedReplica}
	go func() { e.served <- srv.Serve(context.Background(), l) }()
	return e, nil
}

// close closes every client, then shuts the server down.
func (e *weftEnv) close() error { return e.closeWithin(stopTimeout) }

// closeWithin is close with d for the server to finish its work (a
// checkpoint of a large share takes seconds) and stop.
func (e *weftEnv) closeWithin(d time.Duration) error {
	var errs []error
	for _, c := range e.clients {
		errs = append(errs, c.Close())
	}
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	if err := e.srv.Shutdown(ctx); err != nil {
		errs = append(errs, fmt.Errorf("weft Shutdown: %w", err))
	}
	select {
	case err := <-e.served:
		if !errors.Is(err, server.ErrServerClosed) {
			errs = append(errs, fmt.Errorf("weft Serve: %w", err))
		}
	case <-time.After(d):
		errs = append(errs, errors.New("weft server did not stop"))
	}
	return errors.Join(errs...)
}

// closeAfter closes e and returns err; for failed setups.
func (e *weftEnv) closeAfter(err error) error {
	e.close()
	return err
}

// dialClient dials a client with a replica id of its own. Unless
// transient, e closes it.
func (e *weftEnv) dialClient(transient bool) (*client.Client, error) {
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	e.replicas++
	c, err := client.Dial(ctx, e.dial, e.addr, client.Options{Replica: e.replicas, Agent: "weft-bench"})
	if err != nil {
		return nil, err
	}
	if !transient {
		e.clients = append(e.clients, c)
	}
	return c, nil
}

// open dials a client and opens share name with it.
func (e *weftEnv) open(name string) (*client.Share, error) {
	c, err := e.dialClient(false)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	return c.Open(ctx, name, replicationClasses...)
}

// check opens share name with a fresh client, so that what it reads is
// the server's state, and runs fn in a View of it.
func (e *weftEnv) check(name string, fn func(s *client.Share, tx *stm.Tx) error) error {
	c, err := e.dialClient(true)
	if err != nil {
		return err
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	s, err := c.Open(ctx, name, replicationClasses...)
	if err != nil {
		return err
	}
	return s.View(ctx, func(tx *stm.Tx) error { return fn(s, tx) })
}

// seedTimeout bounds a whole seeding: up to a million objects created,
// each commit perhaps synced to a store.
var seedTimeout = 5 * time.Minute

// seed commits batches of ops on share name through a raw protocol
// session as replica seedReplica, one commit per batch, each awaiting its
// Ack. It returns the share version after the last.
func (e *weftEnv) seed(name string, batches ...[]wire.Op) (uint64, error) {
	return e.seedWindow(name, 1, seedTimeout, batches...)
}

// seedWindow is seed with at most window commits sent and not yet
// acknowledged, so that a server on a store can make many durable with
// one sync. The batches must then not conflict: blind writes (no reads).
// Each commit's snapshot is the last version acknowledged when it is sent.
func (e *weftEnv) seedWindow(name string, window int, timeout time.Duration, batches ...[]wire.Op) (uint64, error) {
	return e.seedGen(name, window, timeout, len(batches), func(k int) []wire.Op { return batches[k] }, nil)
}

// seedGen is seedWindow for n commits whose writes batch(k) makes, calling
// progress (if not nil) with the number acknowledged after every 1/10 of n.
func (e *weftEnv) seedGen(name string, window int, timeout time.Duration, n int, batch func(k int) []wire.Op, progress func(acked int)) (uint64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	conn, err := e.dial(ctx, e.addr)
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	if err := conn.Send(ctx, &wire.Hello{MinVersion: wire.MinProtocolVersion, MaxVersion: wire.ProtocolVersion,
		Replica: seedReplica, Agent: "weft-bench-seed"}); err != nil {
		return 0, err
	}
	if m, err := conn.Recv(ctx); err != nil {
		return 0, err
	} else if _, ok := m.(*wire.Welcome); !ok {
		return 0, fmt.Errorf("seed: got %v, want welcome", m.Type())
	}
	if err := conn.Send(ctx, &wire.OpenShare{Share: 1, Name: name}); err != nil {
		return 0, err
	}
	m, err := conn.Recv(ctx)
	if err != nil {
		return 0, err
	}
	op, ok := m.(*wire.Opened)
	if !ok {
		return 0, fmt.Errorf("seed: open %q: got %v, want opened", name, m.Type())
	}
	for more := op.Transfer != wire.TransferNone; more; {
		switch m, err := conn.Recv(ctx); {
		case err != nil:
			return 0, err
		default:
			switch m := m.(type) {
			case *wire.SnapshotChunk:
				more = m.More
			case *wire.Delta:
				more = m.More
			}
		}
	}
	ver := op.Version
	sent, acked := 0, 0
	step := max(n/10, 1)
	for acked < n {
		for sent < n && sent-acked < max(window, 1) {
			e.seedCommits++
			cm := &wire.Commit{ID: wire.CommitID{Replica: seedReplica, Seq: e.seedCommits}, Share: 1, Snapshot: ver, Writes: batch(sent)}
			if err := conn.Send(ctx, cm); err != nil {
				return 0, fmt.Errorf("seed commit %d: %w", sent, err)
			}
			sent++
		}
		m, err := conn.Recv(ctx)
		if err != nil {
			return 0, err
		}
		switch m := m.(type) {
		case *wire.Ack:
			ver = max(ver, m.Version)
			if acked++; progress != nil && acked%step == 0 {
				progress(acked)
			}
		case *wire.Abort:
			return 0, fmt.Errorf("seed commit %v aborted: %s %s", m.ID, m.Code, m.Message)
		}
	}
	return ver, nil
}

// seedCells creates n Cells (ids seedID(1..n)) in share name, in commits
// of at most seedBatch.
// startSeeded starts a server and seeds share with n Cells, returning the
// share version the seeding reached; on error nothing is left running.
func startSeeded(share string, n int) (*weftEnv, uint64, error) {
	e, err := startWeft()
	if err != nil {
		return nil, 0, err
	}
	ver, err := e.seedCells(share, n)
	if err != nil {
		return nil, 0, e.closeAfter(err)
	}
	return e, ver, nil
}

func (e *weftEnv) seedCells(name string, n int) (uint64, error) {
	var batches [][]wire.Op
	for first := 1; first <= n; first += seedBatch {
		batches = append(batches, createCells(uint64(first), uint64(min(seedBatch, n-first+1))))
	}
	return e.seed(name, batches...)
}

// cellsOf returns the Cells of s, in id order.
func cellsOf(s *client.Share, want int) ([]Cell, error) {
	var cells []Cell
	for _, o := range s.Records() {
		if c, ok := AsCell(o); ok {
			cells = append(cells, c)
		}
	}
	if len(cells) != want {
		return nil, fmt.Errorf("share %s holds %d cells, want %d", s.Name(), len(cells), want)
	}
	return cells, nil
}

// weftCommitRTT: one client, one transaction at a time incrementing a
// Cell's value (read, write, Commit, wait for the Ack).
func weftCommitRTT() (*Instance, error) {
	const share = "rtt"
	e, _, err := startSeeded(share, 1)
	if err != nil {
		return nil, err
	}
	s, err := e.open(share)
	if err != nil {
		return nil, e.closeAfter(err)
	}
	cells, err := cellsOf(s, 1)
	if err != nil {
		return nil, e.closeAfter(err)
	}
	cell := cells[0]
	ctx := context.Background()
	fn := func(tx *stm.Tx) error {
		cell.SetValue(tx, cell.Value(tx)+1)
		return nil
	}
	return &Instance{
		Workers: []func() error{func() error { return s.Atomically(ctx, fn) }},
		Check: func(ops []uint64) error {
			if got := cell.Value(stm.Auto); uint64(got) != ops[0] {
				return fmt.Errorf("committer's replica: value %d after %d commits", got, ops[0])
			}
			return e.check(share, func(s *client.Share, tx *stm.Tx) error {
				cells, err := cellsOf(s, 1)
				if err != nil {
					return err
				}
				if got := cells[0].Value(tx); uint64(got) != ops[0] {
					return fmt.Errorf("server: value %d after %d commits", got, ops[0])
				}
				return nil
			})
		},
		Close: e.close,
	}, nil
}

// weftChained: one client sets the values of chainWindow Cells, one Run
// each (a blind write, sent without waiting), then awaits the handles:
// what a pipeline of SETs does.
func weftChained() (*Instance, error) {
	const share = "chained"
	e, _, err := startSeeded(share, chainWindow)
	if err != nil {
		return nil, err
	}
	s, err := e.open(share)
	if err != nil {
		return nil, e.closeAfter(err)
	}
	cells, err := cellsOf(s, chainWindow)
	if err != nil {
		return nil, e.closeAfter(err)
	}
	ctx := context.Background()
	var round int64
	var cell Cell
	fn := func(tx *stm.Tx) error {
		cell.SetValue(tx, round)
		return nil
	}
	hs := make([]*stm.Handle, chainWindow)
	return &Instance{
		Workers: []func() error{func() error {
			round++
			for i, c := range cells {
				cell = c
				h, err := s.Run(ctx, fn)
				if err != nil {
					return err
				}
				hs[i] = h
			}
			wctx, cancel := context.WithTimeout(ctx, opTimeout)
			defer cancel()
			for _, h := range hs {
				if err := h.Wait(wctx); err != nil {
					return err
				}
			}
			return nil
		}},
		Check: func(ops []uint64) error {
			return e.check(share, func(s *client.Share, tx *stm.Tx) error {
				cells, err := cellsOf(s, chainWindow)
				if err != nil {
					return err
				}
				for i, c := range cells {
					if got := c.Value(tx); uint64(got) != ops[0] {
						return fmt.Errorf("server: cell %d holds %d after %d rounds", i, got, ops[0])
					}
				}
				return nil
			})
		},
		Close: e.close,
	}, nil
}

// weftReplRMW: 8 clients, each transaction incrementing the value of a random
// one of 1000 Cells; conflicts are retried by the client. The values sum
// to the committed transactions.
func weftReplRMW() (*Instance, error) {
	const share = "rmw"
	e, _, err := startSeeded(share, replKeys)
	if err != nil {
		return nil, err
	}
	inst := &Instance{
		Check: func(ops []uint64) error {
			return e.check(share, func(s *client.Share, tx *stm.Tx) error {
				cells, err := cellsOf(s, replKeys)
				if err != nil {
					return err
				}
				var total int64
				for _, c := range cells {
					total += c.Value(tx)
				}
				if want := sum(ops); uint64(total) != want {
					return fmt.Errorf("values sum to %d, %d transactions committed", total, want)
				}
				return nil
			})
		},
		Close: e.close,
	}
	ctx := context.Background()
	for w := range replClients {
		s, err := e.open(share)
		if err != nil {
			return nil, e.closeAfter(err)
		}
		cells, err := cellsOf(s, replKeys)
		if err != nil {
			return nil, e.closeAfter(err)
		}
		rng := rand.New(rand.NewPCG(uint64(w)+1, 0x5eed))
		var cell Cell
		fn := func(tx *stm.Tx) error {
			cell.SetValue(tx, cell.Value(tx)+1)
			return nil
		}
		inst.Workers = append(inst.Workers, func() error {
			cell = cells[rng.IntN(len(cells))]
			return s.Atomically(ctx, fn)
		})
	}
	return inst, nil
}

// weftCounter: 8 clients each adding 1 to one Tally's counter per
// transaction. Counter.Add is blind, so the server never aborts one.
func weftCounter() (*Instance, error) {
	e, err := startWeft()
	if err != nil {
		return nil, err
	}
	const share = "counter"
	if _, err := e.seed(share, createTally()); err != nil {
		return nil, e.closeAfter(err)
	}
	tallyOf := func(s *client.Share) (Tally, error) {
		x, ok := s.Object(seedID(2))
		if !ok {
			return Tally{}, fmt.Errorf("share %s has no tally", s.Name())
		}
		t, ok := AsTally(x.(*stm.Object))
		if !ok {
			return Tally{}, fmt.Errorf("share %s: object %v is not a Tally", s.Name(), seedID(2))
		}
		return t, nil
	}
	inst := &Instance{
		Check: func(ops []uint64) error {
			return e.check(share, func(s *client.Share, tx *stm.Tx) error {
				t, err := tallyOf(s)
				if err != nil {
					return err
				}
				if got, want := t.Hits().Get(tx), sum(ops); uint64(got) != want {
					return fmt.Errorf("counter %d after %d increments", got, want)
				}
				return nil
			})
		},
		Close: e.close,
	}
	ctx := context.Background()
	for range replClients {
		s, err := e.open(share)
		if err != nil {
			return nil, e.closeAfter(err)
		}
		t, err := tallyOf(s)
		if err != nil {
			return nil, e.closeAfter(err)
		}
		hits := t.Hits()
		fn := func(tx *stm.Tx) error {
			hits.Add(tx, 1)
			return nil
		}
		inst.Workers = append(inst.Workers, func() error { return s.Atomically(ctx, fn) })
	}
	return inst, nil
}

// deliverCommits records that subscriber i's replica applied n more
// commits (an observer's Change.Commits: the observer coalesces commits
// that arrive while it runs, but counts each).
func (f *fanout) deliverCommits(i int, n uint64) {
	f.got[i].n.Add(n)
	if f.waiting.Load() {
		select {
		case f.wake <- struct{}{}:
		default:
		}
	}
}

// weftFanout: one client commits blind writes of 1, 2, ... to a Cell's
// value, waiting for each Ack; 8 other clients have the share open and
// observe the Cell on their replica (Workspace.Subscribe): each commit
// applied to a replica counts as one delivery. The writer runs at most
// fanoutWindow commits ahead of the slowest reader, as the peers do.
func weftFanout() (*Instance, error) {
	const share = "fanout"
	e, _, err := startSeeded(share, 1)
	if err != nil {
		return nil, err
	}
	f := newFanout(replClients)
	var readers []*client.Share
	var readCells []Cell
	for i := range replClients {
		s, err := e.open(share)
		if err != nil {
			return nil, e.closeAfter(err)
		}
		cells, err := cellsOf(s, 1)
		if err != nil {
			return nil, e.closeAfter(err)
		}
		cell := cells[0]
		// The subscription ends with the client's workspace (Close).
		cell.ObserveValue(func(ch stm.Change) {
			// The replica already holds every commit counted so far.
			if got, seen := cell.Value(stm.Auto), f.got[i].n.Load()+uint64(ch.Commits); uint64(got) < seen {
				f.fail(fmt.Errorf("reader %d holds value %d after %d updates", i, got, seen))
			}
			f.deliverCommits(i, uint64(ch.Commits))
		})
		readers = append(readers, s)
		readCells = append(readCells, cell)
	}
	ws, err := e.open(share)
	if err != nil {
		return nil, e.closeAfter(err)
	}
	wcells, err := cellsOf(ws, 1)
	if err != nil {
		return nil, e.closeAfter(err)
	}
	wcell := wcells[0]
	ctx := context.Background()
	var next int64
	fn := func(tx *stm.Tx) error {
		wcell.SetValue(tx, next) // blind: reads nothing
		return nil
	}
	onDone := func(h *stm.Handle) {
		if err := h.Err(); err != nil {
			f.fail(fmt.Errorf("writer's commit: %w", err))
		}
	}
	return &Instance{
		Workers: []func() error{f.publisher(func(p []byte) error {
			seq, _ := decodeSeq(p)
			next = int64(seq)
			h, err := ws.Run(ctx, fn)
			if err != nil {
				return err
			}
			h.OnDone(onDone)
			return nil
		})},
		Check: func(ops []uint64) error {
			if err := f.check(ops); err != nil {
				return err
			}
			flushCtx, cancel := context.WithTimeout(ctx, opTimeout)
			defer cancel()
			if err := ws.Flush(flushCtx); err != nil {
				return err
			}
			if err := f.failed(); err != nil {
				return err
			}
			for i, s := range readers {
				if got := readCells[i].Value(stm.Auto); uint64(got) != ops[0] {
					return fmt.Errorf("reader %d holds value %d after %d writes", i, got, ops[0])
				}
				if s.Version() != ws.Version() {
					return fmt.Errorf("reader %d at share version %d, writer at %d", i, s.Version(), ws.Version())
				}
			}
			return nil
		},
		Close: e.close,
	}, nil
}

// weftSync: a share of syncObjects Cells is created once in setup; each op
// dials a fresh client, opens the share (snapshot transfer and
// materialisation), checks that it holds every Cell, and closes the
// client.
func weftSync() (*Instance, error) {
	const share = "sync"
	n := syncObjects
	e, ver, err := startSeeded(share, n)
	if err != nil {
		return nil, err
	}
	var opened atomic.Uint64
	ctx := context.Background()
	return &Instance{
		Workers: []func() error{func() error {
			c, err := e.dialClient(true)
			if err != nil {
				return err
			}
			defer c.Close()
			octx, cancel := context.WithTimeout(ctx, opTimeout)
			defer cancel()
			s, err := c.Open(octx, share, replicationClasses...)
			if err != nil {
				return err
			}
			if s.Version() != ver {
				return fmt.Errorf("opened at version %d, want %d", s.Version(), ver)
			}
			for i := range uint64(n) {
				if _, ok := s.Object(seedID(i + 1)); !ok {
					return fmt.Errorf("opened share lacks object %d of %d", i+1, n)
				}
			}
			opened.Add(1)
			return nil
		}},
		Check: func(ops []uint64) error {
			if got := opened.Load(); got != ops[0] {
				return fmt.Errorf("%d complete opens, %d ops counted", got, ops[0])
			}
			return nil
		},
		Close: e.close,
	}, nil
}
