package sim

import (
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"hash"
	"hash/fnv"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/weft-stm/weft/check"
	"github.com/weft-stm/weft/client"
	"github.com/weft-stm/weft/server"
	"github.com/weft-stm/weft/stm"
	"github.com/weft-stm/weft/transport"
	"github.com/weft-stm/weft/wire"
)

var (
	seeds     = flag.Int("sim.seeds", 200, "how many seeds TestSim runs")
	oneSeed   = flag.Int64("sim.seed", -1, "run only this seed (replay)")
	txns      = flag.Int("sim.txns", 1000, "transactions per seed")
	inject    = flag.String("sim.inject", "", "turn on an injected bug: "+injectNames)
	traceRuns = flag.Bool("sim.trace", false, "log each seed's steps and trace hash")
	nClients  = flag.Int("sim.clients", 3, "client applications per run")
	bursts    = flag.Bool("sim.bursts", false, "now and then deliver a burst of up to 8 messages at once (runs are then not replayable)")
)

// The injected bugs the checker must catch (issue #6).
const (
	injectSkipReads = "skip-read-validation" // the server acknowledges without validating reads
	injectNoDeps    = "no-deps"              // a commit that read an aborted speculative write may commit
	injectDrop      = "drop-broadcast"       // the server drops one Update
	injectAckEarly  = "ack-before-sync"      // the server acknowledges before the store synced
	injectNames     = injectSkipReads + ", " + injectNoDeps + ", " + injectDrop + ", " + injectAckEarly
)

// The simulated schema: a cell holds a register, a list, a balance, a
// counter and a set.
var (
	valueF   = stm.NewVarField[int64](1, "value")
	itemsF   = stm.NewListField[int64](2, "items")
	balanceF = stm.NewVarField[int64](3, "balance") // bank transfers: the total never changes
	hitsF    = stm.NewCounterField(4, "hits")       // blind increments: each acknowledged one counts once
	tagsF    = stm.NewSetField[int64](5, "tags")    // AddFast of unique elements: every acknowledged one, no aborted one
	cellC    = stm.NewClass("Cell", 1, valueF, itemsF, balanceF, hitsF, tagsF)
)

const (
	simBalance = 100 // each cell's opening balance
	simCells   = 4
	simShare   = "sim"
	maxChain   = 8  // a client starts no transaction while this many of its commits are unanswered
	raceSeeds  = 40 // TestSim's default under the race detector
)

// run is one seeded simulation: a server and clients in a synctest
// bubble over an in-memory network on which the simulator delivers one
// message per step.
type run struct {
	t     *testing.T
	seed  uint64
	bug   string
	rng   *rand.Rand
	net   *transport.Network
	trace hash.Hash64
	steps int
	// clock counts the steps too, for the clients' goroutines: the time of
	// the history's real-time check (check.Txn Start and End).
	clock atomic.Int64
	work  []chan func()

	cfg     server.Config
	store   *simStore
	servers []*simServer // every life of the server, the current last

	// The clients: each an application with an offline cache, which the
	// simulator takes offline (a partition) and kills and starts again.
	clients  []*client.Client
	shares   []*client.Share
	caches   []*simCache
	lives    []int  // how many times each client was started
	offline  []bool // partitioned from the server
	open     [][]*pendingTxn
	maxChain int             // the most unanswered commits a client had when it started a transaction
	cellIDs  []wire.ObjectID // the four cells; other records are notes

	mu        sync.Mutex
	conns     []*transport.MemConn // every connection dialled, in dial order
	connOwner []int                // the client that dialled each
	history   []check.Txn
	views     []check.Txn // read-only snapshots the audits recorded, checked with the history
	errs      []error
	running   []int // per client, workload transactions not yet returned from Run
	verdicts  map[wire.CommitID]verdict
	ackedAt   map[wire.CommitID]int64 // when a callback first reported the Ack
	vErrs     []error                 // of the verdict callbacks, which run on the clients' goroutines
}

// verdict is an answer to a commit, as a client's OnAcknowledge or
// OnAbort reported it.
type verdict struct {
	version uint64
	aborted bool
}

// outcome is a simulation's result.
type outcome struct {
	hash      uint64
	txns      int
	maxChain  int
	restarts  int
	views     int // read-only snapshots checked with the history
	anomalies check.Result
	errs      []error
}

func (r *run) note(parts ...uint64) {
	var b [8]byte
	for _, p := range parts {
		binary.LittleEndian.PutUint64(b[:], p)
		r.trace.Write(b[:])
	}
}

// step waits for quiescence, then delivers a message (or a burst of
// them) to an end chosen by pick among those waiting, or, if none waits, lets fake time pass so
// that timers (reconnection backoff) fire. It reports whether anything
// was waiting.
func (r *run) step(pick func(n int) int) bool {
	synctest.Wait()
	r.steps++
	r.clock.Add(1)
	ends := r.net.Waiting()
	if len(ends) == 0 {
		if r.store != nil && r.store.pending() {
			r.store.sync()
			r.note(4)
			synctest.Wait()
			return false
		}
		time.Sleep(time.Millisecond)
		r.note(0)
		return false
	}
	e := ends[pick(len(ends))]
	// With -sim.bursts, now and then a burst, as TCP hands them over: the
	// receiver finds several messages arrived together (a client applies
	// a run of Updates as one local commit, a session answers several
	// commits with one write). The receiver then wakes other goroutines
	// (an application whose commit it acknowledged, a session's writer)
	// while it goes on with the burst, and the scheduler decides who
	// goes first: the run is not replayable, so bursts are off by
	// default. A fixed order (pick always 0) delivers one.
	burst := 1
	if *bursts && pick(4) == 0 {
		burst += pick(8)
	}
	h, _ := r.net.DeliverN(e, burst)
	toServer := uint64(0)
	if e.To == "server" {
		toServer = 1
	}
	r.note(1, e.Conn, toServer, h)
	synctest.Wait() // the receiver is done with it before anything else moves
	return true
}

// await steps, delivering in a fixed order, until cond holds, and
// reports whether it did. If it never does (a bug: a reply lost, a
// replica stuck), that is one of the seed's errors, and the run goes on
// to its checks and its teardown: a test failing inside the bubble would
// leave its goroutines blocked, which synctest turns into a panic that
// ends every seed after it.
func (r *run) await(what string, cond func() bool, why ...func() string) bool {
	for i := 0; !cond(); i++ {
		if i > 200_000 {
			for _, f := range why {
				what += ": " + f()
			}
			r.mu.Lock()
			r.errs = append(r.errs, fmt.Errorf("%s never happened", what))
			r.mu.Unlock()
			return false
		}
		r.step(func(int) int { return 0 })
	}
	synctest.Wait()
	return true
}

// closed is a condition for await: done is closed.
func closed(done chan struct{}) func() bool {
	return func() bool {
		select {
		case <-done:
			return true
		default:
			return false
		}
	}
}

// endpoint is client i's name on the network.
func endpoint(i int) string { return fmt.Sprintf("client%d", i) }

// dialer dials from client i's endpoint.
func (r *run) dialer(i int) transport.Dialer {
	return func(ctx context.Context, addr string) (transport.Conn, error) {
		c, err := r.net.Dial(ctx, endpoint(i), addr)
		if err == nil {
			r.mu.Lock()
			r.conns = append(r.conns, c)
			r.connOwner = append(r.connOwner, i)
			r.mu.Unlock()
		}
		return c, err
	}
}

// cutClient breaks every connection of client i.
func (r *run) cutClient(i int) {
	r.mu.Lock()
	var cs []*transport.MemConn
	for k, c := range r.conns {
		if r.connOwner[k] == i {
			cs = append(cs, c)
		}
	}
	r.mu.Unlock()
	for _, c := range cs {
		r.net.Cut(c)
	}
}

// startClient starts a life of client i on its cache: it dials and opens
// the share while the simulator delivers (offline, the cache serves both).
func (r *run) startClient(ctx context.Context, i int) {
	done := make(chan struct{})
	var c *client.Client
	var s *client.Share
	go func() {
		defer close(done)
		var err error
		c, err = client.Dial(ctx, r.dialer(i), "server", client.Options{
			Replica: uint64(10 + i), Rand: rand.NewPCG(r.seed, uint64(i)|uint64(r.lives[i])<<8),
			MinBackoff: time.Millisecond, MaxBackoff: 20 * time.Millisecond,
			Cache: r.caches[i], CacheCheckpointEvery: 50, // restarts replay little, and checkpoints are exercised
			OnAcknowledge: func(_ string, id wire.CommitID, v uint64) {
				r.answered(id, verdict{version: v})
			},
			OnAbort: func(_ string, id wire.CommitID, _ error) {
				r.answered(id, verdict{aborted: true})
			},
			InjectNoDeps: r.bug == injectNoDeps})
		if err != nil {
			r.t.Error(err)
			return
		}
		s, err = c.Open(ctx, simShare, cellC)
		if err != nil {
			r.t.Error(err)
		}
	}()
	if !r.await("a client opening the share", closed(done)) || s == nil {
		r.t.Fatalf("seed %d: %v", r.seed, r.errs)
	}
	r.lives[i]++
	r.clients[i], r.shares[i] = c, s
}

// answered records a verdict a client reported; a commit answered twice
// (a resend after a restart) must be answered alike.
func (r *run) answered(id wire.CommitID, v verdict) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if old, ok := r.verdicts[id]; ok && old != v {
		r.vErrs = append(r.vErrs, fmt.Errorf("commit %v answered %+v, then %+v", id, old, v))
	}
	r.verdicts[id] = v
	if _, ok := r.ackedAt[id]; !ok && !v.aborted {
		r.ackedAt[id] = r.clock.Load()
	}
}

// toggleOffline takes client i offline (a partition from the server, which
// breaks its connections and refuses new ones: it commits on, unanswered)
// or brings it back.
func (r *run) toggleOffline(i int) {
	if r.offline[i] {
		r.net.Heal(endpoint(i), "server")
	} else {
		r.net.Partition(endpoint(i), "server")
		r.cutClient(i)
	}
	r.offline[i] = !r.offline[i]
	r.note(6, uint64(i))
	synctest.Wait()
}

// restart kills client i's application between two of its transactions
// and starts it again on its cache: what the cache had not synced is lost,
// its unanswered commits are sent again by the new life, which learns
// their verdicts through the callbacks. It reports whether it did (not
// while a transaction of the client runs).
func (r *run) restart(ctx context.Context, i int) bool {
	r.mu.Lock()
	busy := r.running[i] > 0
	r.mu.Unlock()
	if busy {
		return false
	}
	// Dead: no message of the old life reaches the server any more (the
	// partition keeps its reconnection loop out until Close stops it).
	r.net.Partition(endpoint(i), "server")
	r.cutClient(i)
	r.caches[i] = r.caches[i].kill()
	synctest.Wait()
	old := r.clients[i]
	done := make(chan struct{})
	go func() { old.Close(); close(done) }()
	r.await("a killed client's end", closed(done))
	if !r.offline[i] {
		r.net.Heal(endpoint(i), "server")
	}
	r.startClient(ctx, i)
	r.note(7, uint64(i))
	synctest.Wait()
	return true
}

// simulate runs seed and returns its outcome.
func simulate(t *testing.T, seed uint64, budget int, bug string) outcome {
	var out outcome
	synctest.Test(t, func(t *testing.T) {
		r := &run{t: t, seed: seed, bug: bug, rng: rand.New(rand.NewPCG(seed, 0x51)), trace: fnv.New64a(),
			verdicts: map[wire.CommitID]verdict{}, ackedAt: map[wire.CommitID]int64{}}
		r.net = transport.NewNetwork(seed)
		// Nothing is ever due by time: the simulator delivers.
		r.net.SetFaults(transport.Faults{MinDelay: 1 << 50, MaxDelay: 1 << 50})
		ctx := context.Background()
		cfg := server.Config{DefaultAccess: server.AccessWrite, Logger: slog.New(slog.DiscardHandler),
			CheckpointEvery: 100} // power losses restore from checkpoints, and replay little
		cfg.Share.InjectSkipReads = bug == injectSkipReads
		if bug == injectDrop {
			cfg.InjectDropBroadcast = 20 // past the setup's Updates, early in a server's life (a power loss restarts the count)
		}
		cfg.InjectAckBeforeSync = bug == injectAckEarly
		// Epoch ids go into Opened: drawn from the seed, the run replays.
		var epochMu sync.Mutex
		epochs := rand.New(rand.NewPCG(seed, 0xe90c))
		cfg.NewEpochID = func() uint64 {
			epochMu.Lock()
			defer epochMu.Unlock()
			return epochs.Uint64() | 1
		}
		r.store = newSimStore()
		cfg.Store = r.store
		r.cfg = cfg
		r.start(ctx)

		// Clients: each dials and opens while the simulator delivers.
		r.clients = make([]*client.Client, *nClients)
		r.shares = make([]*client.Share, *nClients)
		r.lives = make([]int, *nClients)
		r.offline = make([]bool, *nClients)
		r.open = make([][]*pendingTxn, *nClients)
		r.running = make([]int, *nClients)
		for i := range *nClients {
			r.caches = append(r.caches, newSimCache())
			r.startClient(ctx, i)
		}
		shares := r.shares
		// Cells, created by client 0.
		created := make(chan error, 1)
		go func() {
			created <- shares[0].Atomically(ctx, func(tx *stm.Tx) error {
				for range simCells {
					balanceF.Of(shares[0].Create(tx, cellC)).Set(tx, simBalance)
				}
				return nil
			})
		}()
		var cerr error
		if !r.await("the cells", func() bool {
			select {
			case cerr = <-created:
				return true
			default:
				return false
			}
		}) {
			t.Fatalf("seed %d: %v", seed, r.errs)
		}
		if cerr != nil {
			t.Fatal(cerr)
		}
		for _, s := range shares {
			if !r.await("every replica holding the cells", func() bool { return len(s.Records()) == simCells }) {
				t.Fatalf("seed %d: %v", seed, r.errs)
			}
		}
		for _, o := range shares[0].Records() {
			r.cellIDs = append(r.cellIDs, stm.IDOf(o))
		}

		// The random phase; each client's transactions run on a worker.
		for range *nClients {
			ch := make(chan func(), budget)
			r.work = append(r.work, ch)
			go func() {
				for f := range ch {
					f()
				}
			}()
		}
		defer func() {
			for _, ch := range r.work {
				close(ch)
			}
		}()
		started := 0
		var hs []*pendingTxn
		for started < budget {
			switch x := r.rng.IntN(100); {
			case x < 30:
				i := r.rng.IntN(*nClients)
				if r.chain(i) >= maxChain {
					r.step(r.rng.IntN)
					break
				}
				p := r.txn(ctx, shares[i], i, started)
				if p == nil { // a life started on a cache older than the cells
					r.step(r.rng.IntN)
					break
				}
				hs = append(hs, p)
				r.open[i] = append(r.open[i], p)
				started++
				r.note(2, uint64(i))
				synctest.Wait() // it commits (or blocks) before anything else moves
			case x < 32:
				// A connection that is still up: most dialled ones are
				// long gone, and cutting them again does nothing.
				r.mu.Lock()
				conns := slices.Clone(r.conns)
				r.mu.Unlock()
				var up []*transport.MemConn
				for _, c := range conns {
					if c.Up() {
						up = append(up, c)
					}
				}
				if len(up) == 0 {
					break
				}
				c := up[r.rng.IntN(len(up))]
				r.net.Cut(c)
				r.note(3, c.ID())
				synctest.Wait()
			case x < 40:
				r.store.sync()
				r.caches[r.rng.IntN(*nClients)].sync()
				r.note(4)
				synctest.Wait()
			case x < 41:
				r.crash(ctx)
			case x < 44:
				r.audit(ctx, r.rng.IntN(*nClients))
			case x < 45:
				// A client goes offline or comes back, or its application is
				// killed and starts again, each once in 400 steps.
				switch i := r.rng.IntN(*nClients); r.rng.IntN(4) {
				case 0:
					r.toggleOffline(i)
				case 1:
					if r.restart(ctx, i) {
						out.restarts++
					}
				default:
					r.step(r.rng.IntN)
				}
			default:
				r.step(r.rng.IntN)
			}
		}
		// Settle: every client comes back, and everything is delivered
		// until every transaction is answered.
		for i := range *nClients {
			if r.offline[i] {
				r.toggleOffline(i)
			}
		}
		var waiting string // what the settling waits for, said if it never comes
		r.await("every transaction answered", func() bool {
			r.mu.Lock()
			defer r.mu.Unlock()
			for i, n := range r.running {
				if n > 0 {
					waiting = fmt.Sprintf("client %d runs %d transactions (pending %d)", i, n, r.shares[i].Pending())
					return false
				}
			}
			for k, p := range hs {
				// (A client whose replica failed learns no more verdicts:
				// that is reported below.)
				// A commit of a killed life learns its verdict in the
				// client's current life.
				err := p.share.Err()
				alive := err == nil || errors.Is(err, client.ErrClosed) && r.shares[p.client].Err() == nil
				if o, _ := r.outcomeLocked(p); p.h != nil && o == check.Unknown && alive {
					waiting = fmt.Sprintf("client %d's transaction %d (commit %v, %v: %v) is unanswered", p.client, k, p.h.ID(), p.h.Status(), p.h.Err())
					return false
				}
			}
			return true
		}, func() string { return waiting })
		top := uint64(0)
		for _, s := range shares {
			top = max(top, s.Version())
		}
		for _, s := range shares {
			// A replica that failed (its share's Err) is done: it is
			// reported below.
			r.await("every replica at the last version", func() bool { return s.Version() >= top || s.Err() != nil })
		}
		r.mu.Lock()
		r.errs = append(r.errs, r.vErrs...)
		for k, p := range hs {
			o, v := r.outcomeLocked(p)
			r.history = append(r.history, r.txnOf(p, k, o, v))
			if p.err != nil {
				r.errs = append(r.errs, fmt.Errorf("client %d, transaction %d: %w", p.client, k, p.err))
			}
		}
		r.mu.Unlock()
		failed := map[*client.Share]bool{} // every life's replica, once
		for _, p := range hs {
			if err := p.share.Err(); err != nil && !failed[p.share] && !errors.Is(err, client.ErrClosed) {
				failed[p.share] = true
				r.errs = append(r.errs, fmt.Errorf("client %d's replica failed: %w", p.client, err))
			}
		}
		for i, s := range shares {
			if err := s.Err(); err != nil && !failed[s] {
				r.errs = append(r.errs, fmt.Errorf("client %d's replica failed: %w", i, err))
			}
		}
		r.history = append(r.history, r.finalRead(ctx, shares[0]))
		r.audit(ctx, 0)
		r.history = append(r.history, r.views...)
		out.views = len(r.views)
		// The history reads client 0's replica; every other one must hold
		// the same, counters and sets included (written blind, they are in
		// no read of the history).
		want := r.dump(ctx, shares[0])
		for i, s := range shares[1:] {
			if got := r.dump(ctx, s); got != want && s.Err() == nil && shares[0].Err() == nil {
				r.errs = append(r.errs, fmt.Errorf("client %d's replica differs from client 0's at version %d:\n%s\nclient 0:\n%s", i+1, s.Version(), got, want))
			}
		}
		incs := make([]int64, simCells)
		for k, p := range hs {
			if r.history[k].Outcome == check.Acknowledged {
				for c, n := range p.incs {
					incs[c] += n
				}
			}
		}
		cells, _ := r.cellsOf(shares[0])
		shares[0].View(ctx, func(tx *stm.Tx) error {
			for c, cell := range cells {
				if got := hitsF.Of(cell).Get(tx); got != incs[c] {
					r.errs = append(r.errs, fmt.Errorf("cell %d counts %d hits, %d increments were acknowledged", c, got, incs[c]))
				}
			}
			// Every acknowledged AddFast is in its set, no aborted one is.
			for k, p := range hs {
				if p.tag < 0 || p.h == nil {
					continue
				}
				in := tagsF.Of(cells[p.tag]).Contains(tx, p.tagV)
				switch o := r.history[k].Outcome; {
				case o == check.Acknowledged && !in:
					r.errs = append(r.errs, fmt.Errorf("transaction %d's acknowledged AddFast to cell %d is lost", k, p.tag))
				case o == check.Aborted && in:
					r.errs = append(r.errs, fmt.Errorf("transaction %d's aborted AddFast to cell %d is visible", k, p.tag))
				}
			}
			return nil
		})

		out.hash = r.trace.Sum64()
		if *traceRuns {
			t.Logf("seed %d: %d steps, trace %016x", seed, r.steps, out.hash)
		}
		out.txns = len(hs)
		out.maxChain = r.maxChain
		out.anomalies = check.Check(check.History{Txns: r.history})
		out.errs = r.errs

		for _, c := range r.clients {
			c.Close()
		}
		sctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		for _, sv := range r.servers {
			done := make(chan struct{})
			go func() { sv.srv.Shutdown(sctx); close(done) }()
			r.await("a server's shutdown", closed(done))
			<-sv.served
		}
	})
	return out
}

// simServer is one life of the server.
type simServer struct {
	srv    *server.Server
	l      *transport.MemListener
	served chan error
}

// start starts a server on the store, restoring what it holds.
func (r *run) start(ctx context.Context) {
	srv, err := server.Open(r.cfg)
	if err != nil {
		r.t.Fatal(err)
	}
	l, err := r.net.Listen("server")
	if err != nil {
		r.t.Fatal(err)
	}
	sv := &simServer{srv: srv, l: l, served: make(chan error, 1)}
	go func() { sv.served <- srv.Serve(ctx, l) }()
	r.servers = append(r.servers, sv)
}

// crash is a power loss of the server's machine: every connection breaks,
// what the store had not synced is lost, and a new server starts on what
// it holds. The old server hears from nobody again (it is shut down at
// the end).
func (r *run) crash(ctx context.Context) {
	old := r.servers[len(r.servers)-1]
	old.l.Close()
	r.mu.Lock()
	conns := append([]*transport.MemConn(nil), r.conns...)
	r.mu.Unlock()
	for _, c := range conns {
		r.net.Cut(c)
	}
	synctest.Wait()
	r.store.crash()
	synctest.Wait()
	r.start(ctx)
	r.note(5)
	synctest.Wait()
}

// pendingTxn is a workload transaction: what its committed run did, and
// its handle.
type pendingTxn struct {
	client int
	share  *client.Share // of the client's life that ran it
	ops    []check.Op
	incs   map[int]int64 // counter increments of the committed run, by cell
	tag    int           // the cell whose set the transaction adds tagV to, or -1
	tagV   int64
	h      *stm.Handle
	err    error
	gone   bool // Run refused it: a note it touched was gone (its creation undone)
	// start is the clock when Run was called (before its commit was sent);
	// acked, when its handle was acknowledged (0: not, or not yet).
	start int64
	acked atomic.Int64
}

// txn is p as the checker sees it, with its outcome. An acknowledged one
// has its Start and End, the end being when its client learned the Ack
// (from its handle, or, in doubt there, from a later life's callback).
func (r *run) txnOf(p *pendingTxn, k int, o check.Outcome, v uint64) check.Txn {
	t := check.Txn{ID: check.TxnID{Replica: uint64(p.client), Seq: uint64(k)}, Share: simShare,
		Session: uint64(p.client), Ops: p.ops, Outcome: o, Version: v, Start: p.start}
	if o == check.Acknowledged {
		t.End = p.acked.Load()
		if t.End == 0 && p.h != nil {
			t.End = r.ackedAt[p.h.ID()]
		}
	}
	return t
}

// outcomeLocked is the verdict of p's commit as its handle tells it, or,
// for one its handle leaves in doubt (its application was killed), as a
// later life of the client learned it from the server; Unknown while
// neither knows (or if Run failed: nothing was committed). Where both
// know, they must agree.
func (r *run) outcomeLocked(p *pendingTxn) (check.Outcome, uint64) {
	if p.gone {
		return check.Aborted, 0 // nothing was sent
	}
	if p.h == nil {
		return check.Unknown, 0
	}
	v, ok := r.verdicts[p.h.ID()]
	switch st := p.h.Status(); {
	case st == stm.Acknowledged:
		if ok && (v.aborted || v.version != p.h.Version()) {
			r.vErrs = append(r.vErrs, fmt.Errorf("commit %v: its handle says acknowledged at %d, a callback %+v", p.h.ID(), p.h.Version(), v))
		}
		return check.Acknowledged, p.h.Version()
	case st == stm.Aborted:
		if ok && !v.aborted {
			r.vErrs = append(r.vErrs, fmt.Errorf("commit %v: its handle says aborted (%v), a callback %+v", p.h.ID(), p.h.Err(), v))
		}
		return check.Aborted, 0
	case ok && v.aborted:
		return check.Aborted, 0
	case ok:
		return check.Acknowledged, v.version
	}
	return check.Unknown, 0
}

// chain is how many of client i's transactions are unanswered (running,
// or committed and pending), noted in maxChain.
func (r *run) chain(i int) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	live := r.open[i][:0]
	for _, p := range r.open[i] {
		if o, _ := r.outcomeLocked(p); o == check.Unknown && (p.h != nil || p.err == nil) {
			live = append(live, p)
		}
	}
	r.open[i] = live
	r.maxChain = max(r.maxChain, len(live))
	return len(live)
}

// cellsOf returns s's replica of the four cells, in order (nil if it
// lacks one: a life started on a cache older than them), and the other
// records, the notes, in id order.
func (r *run) cellsOf(s *client.Share) (cells, notes []*stm.Object) {
	byID := map[wire.ObjectID]*stm.Object{}
	for _, o := range s.Records() {
		if slices.Contains(r.cellIDs, stm.IDOf(o)) {
			byID[stm.IDOf(o)] = o
		} else {
			notes = append(notes, o)
		}
	}
	for _, id := range r.cellIDs {
		if byID[id] == nil {
			return nil, notes
		}
		cells = append(cells, byID[id])
	}
	return cells, notes
}

func noteKey(id wire.ObjectID) string { return fmt.Sprintf("note%v/list", id) }

// txn starts a workload transaction on client i: one or two reads and one
// or two writes (register writes and list appends of values unique in
// the run) on random cells, committed speculatively with Run; it returns
// nil if the client's replica lacks the cells.
//
// Besides, notes: an eighth of the transactions create a record (a note)
// and append to its list, a third append to the list of a note the
// replica shows (created by a commit perhaps still pending), a third read
// one.
func (r *run) txn(ctx context.Context, s *client.Share, i, n int) *pendingTxn {
	cells, notes := r.cellsOf(s)
	if cells == nil {
		return nil
	}
	mkNote := r.rng.IntN(8) == 0
	var addTo, readOf *stm.Object
	if len(notes) > 0 && r.rng.IntN(3) == 0 {
		addTo = notes[r.rng.IntN(len(notes))]
	}
	if len(notes) > 0 && r.rng.IntN(3) == 0 {
		readOf = notes[r.rng.IntN(len(notes))]
	}
	type op struct {
		cell int
		list bool
		read bool
	}
	var plan []op
	for range 1 + r.rng.IntN(2) {
		plan = append(plan, op{cell: r.rng.IntN(simCells), list: r.rng.IntN(2) == 0, read: true})
	}
	for range 1 + r.rng.IntN(2) {
		plan = append(plan, op{cell: r.rng.IntN(simCells), list: r.rng.IntN(2) == 0})
	}
	r.rng.Shuffle(len(plan), func(a, b int) { plan[a], plan[b] = plan[b], plan[a] })
	// Besides: a transfer between two cells' balances (it reads both), and
	// a blind counter increment, each in a third of the transactions.
	from, to, amount := -1, r.rng.IntN(simCells), int64(1+r.rng.IntN(30))
	if r.rng.IntN(3) == 0 {
		from = r.rng.IntN(simCells)
	}
	inc := -1
	if r.rng.IntN(3) == 0 {
		inc = r.rng.IntN(simCells)
	}
	p := &pendingTxn{client: i, share: s, tag: -1}
	if r.rng.IntN(3) == 0 {
		p.tag, p.tagV = r.rng.IntN(simCells), int64(i+1)<<40|int64(n+1)<<8
	}
	fn := func(tx *stm.Tx) error {
		p.ops = p.ops[:0]
		p.incs = nil
		if from >= 0 && from != to {
			f, t := balanceF.Of(cells[from]), balanceF.Of(cells[to])
			if f.Get(tx) >= amount {
				f.Set(tx, f.Get(tx)-amount)
				t.Set(tx, t.Get(tx)+amount)
			}
		}
		if inc >= 0 {
			hitsF.Of(cells[inc]).Add(tx, 1)
			p.incs = map[int]int64{inc: 1}
		}
		if p.tag >= 0 {
			tagsF.Of(cells[p.tag]).AddFast(tx, p.tagV)
		}
		for k, o := range plan {
			c := cells[o.cell]
			key := fmt.Sprintf("cell%d/%v", o.cell, map[bool]string{true: "list", false: "reg"}[o.list])
			v := uint64(i+1)<<40 | uint64(n+1)<<8 | uint64(k+1)
			switch {
			case o.read && o.list:
				var seen []uint64
				for _, x := range itemsF.Of(c).All(tx) {
					seen = append(seen, uint64(x))
				}
				p.ops = append(p.ops, check.Op{Kind: check.ReadList, Key: key, List: seen})
			case o.read:
				p.ops = append(p.ops, check.Op{Kind: check.ReadReg, Key: key, Value: uint64(valueF.Of(c).Get(tx))})
			case o.list:
				itemsF.Of(c).Append(tx, int64(v))
				p.ops = append(p.ops, check.Op{Kind: check.Append, Key: key, Value: v})
			default:
				valueF.Of(c).Set(tx, int64(v))
				p.ops = append(p.ops, check.Op{Kind: check.Write, Key: key, Value: v})
			}
		}
		base := uint64(i+1)<<40 | uint64(n+1)<<8
		if mkNote {
			o := s.Create(tx, cellC)
			itemsF.Of(o).Append(tx, int64(base|0xf1))
			p.ops = append(p.ops, check.Op{Kind: check.Append, Key: noteKey(stm.IDOf(o)), Value: base | 0xf1})
		}
		if addTo != nil {
			itemsF.Of(addTo).Append(tx, int64(base|0xf2))
			p.ops = append(p.ops, check.Op{Kind: check.Append, Key: noteKey(stm.IDOf(addTo)), Value: base | 0xf2})
		}
		if readOf != nil {
			var seen []uint64
			for _, x := range itemsF.Of(readOf).All(tx) {
				seen = append(seen, uint64(x))
			}
			p.ops = append(p.ops, check.Op{Kind: check.ReadList, Key: noteKey(stm.IDOf(readOf)), List: seen})
		}
		return nil
	}
	r.mu.Lock()
	r.running[i]++
	r.mu.Unlock()
	// One worker per client runs its transactions in order: two Runs of
	// one client released by the same verdict would race for the share.
	r.work[i] <- func() {
		start := r.clock.Load()
		h, err := s.Run(ctx, fn)
		if h != nil {
			h.OnDone(func(h *stm.Handle) {
				if h.Status() == stm.Acknowledged {
					p.acked.Store(r.clock.Load())
				}
			})
		}
		r.mu.Lock()
		p.start = start
		if errors.Is(err, client.ErrNotInShare) && (addTo != nil || readOf != nil) {
			p.gone, err = true, nil
		}
		p.h, p.err = h, err
		r.running[i]--
		r.mu.Unlock()
	}
	return p
}

// audit checks, on client i's replica, that the transfers kept the total
// of the balances. When the replica shows no pending commit, its snapshot
// must be the server's state at the replica's version: it goes into the
// history as a read-only transaction (every register and list, each read
// at that version), which the checker places among the commits.
func (r *run) audit(ctx context.Context, i int) {
	s := r.shares[i]
	cells, notes := r.cellsOf(s)
	if cells == nil {
		return // a life started on a cache older than the cells
	}
	// Nothing moves while the simulator runs this (no step delivers), so
	// the version and the pending commits seen around the View are those
	// the View saw; compare them anyway.
	at, pending := s.Version(), s.Pending()
	var total int64
	var ops []check.Op
	s.View(ctx, func(tx *stm.Tx) error {
		total = 0
		for _, c := range cells {
			total += balanceF.Of(c).Get(tx)
		}
		ops = readAll(tx, cells, notes, ops[:0])
		return nil
	})
	if s.Err() != nil {
		return
	}
	if total != simCells*simBalance {
		r.errs = append(r.errs, fmt.Errorf("a snapshot shows a total of %d, not %d", total, simCells*simBalance))
	}
	if pending > 0 || s.Pending() > 0 || s.Version() != at || at == 0 {
		return // it may show speculative writes: not a state of the server
	}
	for k := range ops {
		ops[k].At = at
	}
	r.views = append(r.views, check.Txn{ID: check.TxnID{Replica: viewReplica, Seq: uint64(len(r.views))},
		Share: simShare, Session: uint64(i), Outcome: check.Acknowledged, Ops: ops})
}

// viewReplica is the replica of the audits' read-only transactions in
// the history (check.TxnID), apart from the clients' (0 to nClients-1)
// and the final read's (999).
const viewReplica = 1000

// readAll appends to ops a read of every register and list of the cells
// and notes, under the keys of the workload's transactions.
func readAll(tx *stm.Tx, cells, notes []*stm.Object, ops []check.Op) []check.Op {
	list := func(o *stm.Object) []uint64 {
		var seen []uint64
		for _, x := range itemsF.Of(o).All(tx) {
			seen = append(seen, uint64(x))
		}
		return seen
	}
	for i, c := range cells {
		ops = append(ops,
			check.Op{Kind: check.ReadList, Key: fmt.Sprintf("cell%d/list", i), List: list(c)},
			check.Op{Kind: check.ReadReg, Key: fmt.Sprintf("cell%d/reg", i), Value: uint64(valueF.Of(c).Get(tx))})
	}
	for _, o := range notes {
		ops = append(ops, check.Op{Kind: check.ReadList, Key: noteKey(stm.IDOf(o)), List: list(o)})
	}
	return ops
}

// dump describes every record of s's replica, cells then notes in id
// order, with every field.
func (r *run) dump(ctx context.Context, s *client.Share) string {
	cells, notes := r.cellsOf(s)
	slices.SortFunc(notes, func(a, b *stm.Object) int {
		return cmp.Or(cmp.Compare(stm.IDOf(a).Replica, stm.IDOf(b).Replica), cmp.Compare(stm.IDOf(a).Seq, stm.IDOf(b).Seq))
	})
	var b strings.Builder
	s.View(ctx, func(tx *stm.Tx) error {
		b.Reset()
		for _, o := range append(cells, notes...) {
			var items []int64
			for _, x := range itemsF.Of(o).All(tx) {
				items = append(items, x)
			}
			fmt.Fprintf(&b, "%v: value %d, items %v, balance %d, hits %d, tags %v\n", stm.IDOf(o),
				valueF.Of(o).Get(tx), items, balanceF.Of(o).Get(tx), hitsF.Of(o).Get(tx), slices.Sorted(tagsF.Of(o).All(tx)))
		}
		return nil
	})
	return b.String()
}

// finalRead reads every key once the run settled.
func (r *run) finalRead(ctx context.Context, s *client.Share) check.Txn {
	t := check.Txn{ID: check.TxnID{Replica: 999}, Share: simShare, Final: true}
	cells, notes := r.cellsOf(s)
	s.View(ctx, func(tx *stm.Tx) error {
		t.Ops = readAll(tx, cells, notes, t.Ops[:0])
		return nil
	})
	return t
}

// TestSim runs -sim.seeds seeds (or -sim.seed) and checks each history;
// the last line is "N seeds, T transactions, A anomalies".
func TestSim(t *testing.T) {
	n := *seeds
	explicit := false
	flag.Visit(func(f *flag.Flag) { explicit = explicit || f.Name == "sim.seeds" })
	if raceEnabled && !explicit {
		// The race detector makes a seed 4 times slower: enough seeds to
		// look for races; make test runs the 200 without it.
		n = raceSeeds
	}
	list := make([]uint64, 0, n)
	if *oneSeed >= 0 {
		list = append(list, uint64(*oneSeed))
	} else {
		for s := range n {
			list = append(list, uint64(s))
		}
	}
	total, anomalies, deepest, restarts, views, ran := 0, 0, 0, 0, 0, 0
	began := time.Now()
	every := max(1, len(list)/20) // progress lines on long runs
	for k, seed := range list {
		out := simulate(t, seed, *txns, *inject)
		ran++
		total += out.txns
		deepest, restarts, views = max(deepest, out.maxChain), restarts+out.restarts, views+out.views
		anomalies += len(out.anomalies.Anomalies) + len(out.errs)
		for _, a := range out.anomalies.Anomalies {
			t.Errorf("seed %d: %v", seed, a)
		}
		for _, err := range out.errs {
			t.Errorf("seed %d: %v", seed, err)
		}
		if t.Failed() {
			t.Logf("replay: go test ./sim -run '^TestSim$' -v -sim.seed %d%s", seed, replayFlags())
			break
		}
		if len(list) >= 100 && (k+1)%every == 0 {
			t.Logf("%d/%d seeds, %d transactions, %d anomalies, %s", k+1, len(list), total, anomalies, time.Since(began).Round(time.Second))
		}
	}
	t.Logf("deepest speculative chain %d, %d application restarts, %d read-only snapshots checked", deepest, restarts, views)
	t.Logf("%d seeds, %d transactions, %d anomalies", ran, total, anomalies)
}

// TestSimReplay: a seed replays the identical run (the same trace hash),
// and another seed gives another run.
// replayFlags returns the -sim flags set to other than their defaults,
// for a replay command that runs the same simulation.
func replayFlags() string {
	var b strings.Builder
	flag.Visit(func(f *flag.Flag) {
		if strings.HasPrefix(f.Name, "sim.") && f.Name != "sim.seed" && f.Name != "sim.seeds" {
			fmt.Fprintf(&b, " -%s=%q", f.Name, f.Value.String())
		}
	})
	return b.String()
}

func TestSimReplay(t *testing.T) {
	for _, seed := range []uint64{3, 7, 11} {
		a, b := simulate(t, seed, 150, ""), simulate(t, seed, 150, "")
		if a.hash != b.hash {
			t.Fatalf("seed %d ran twice: trace hashes %016x and %016x", seed, a.hash, b.hash)
		}
	}
	if a, b := simulate(t, 7, 150, ""), simulate(t, 8, 150, ""); a.hash == b.hash {
		t.Fatalf("seeds 7 and 8 gave the same trace %016x", a.hash)
	}
}

// TestSimCatchesInjected: each injected bug is caught within 100 seeds
// (an anomaly in the history, or a client that fails).
func TestSimCatchesInjected(t *testing.T) {
	for _, bug := range []string{injectSkipReads, injectNoDeps, injectDrop, injectAckEarly} {
		t.Run(bug, func(t *testing.T) {
			for seed := range uint64(100) {
				out := simulate(t, seed, 200, bug)
				if len(out.anomalies.Anomalies) > 0 || len(out.errs) > 0 {
					t.Logf("caught at seed %d: %d anomalies, first %v", seed, len(out.anomalies.Anomalies), first(out))
					return
				}
			}
			t.Fatalf("%s was not caught in 100 seeds", bug)
		})
	}
}

func first(out outcome) any {
	if len(out.anomalies.Anomalies) > 0 {
		return out.anomalies.Anomalies[0]
	}
	return out.errs[0]
}
