package main

import (
	"context"
	crand "crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/weft-stm/weft/client"
	"github.com/weft-stm/weft/server"
	"github.com/weft-stm/weft/stm"
	"github.com/weft-stm/weft/store/pebblestore"
	"github.com/weft-stm/weft/transport"
	"github.com/weft-stm/weft/wire"
)

// The demo's schema: an account with a balance and a counter of the
// transfers it received (a collection: an object of its own on the wire,
// created with its record).
var (
	demoBalance  = stm.NewVarField[int64](1, "balance")
	demoReceived = stm.NewCounterField(2, "received")
	demoAccount  = stm.NewClass("Account", 1, demoBalance, demoReceived)
)

const (
	demoShare = "bank"
	demoStart = 1000 // each account's opening balance
	demoBatch = 25   // accounts created per transaction
)

// demoTimeout bounds each step of the demo but the transfers, which last
// -d: the setup, what is in flight when the transfers end, the checks,
// the shutdown and the restart. (A variable for the tests.)
var demoTimeout = 30 * time.Second

// runDemo is "weft demo": it starts a server in the process on a loopback
// TCP port (default settings, access granted to the demo's token) and
// clients over real TCP: tellers that create the accounts (Share.Create)
// then transfer between them at random (Share.Atomically), an auditor
// checking the total on snapshots (Share.View) and a watcher counting the
// updates it receives. It prints live rates each second and a summary,
// checks that every replica converged to the server's version, and shuts
// down gracefully. With -local it runs the core-only demo instead.
func runDemo(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dur := fs.Duration("d", 5*time.Second, "how long to transfer")
	clients := fs.Int("clients", 4, "transferring clients (each its own TCP session)")
	accounts := fs.Int("accounts", 100, "number of accounts")
	local := fs.Bool("local", false, "run the core alone in one workspace: no server, no network")
	tellers := fs.Int("tellers", 4, "with -local: concurrent transferring goroutines")
	dataDir := fs.String("data", "", "keep the server's shares in `dir` (Pebble; default: a temporary directory, removed at the end)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	// SIGINT or SIGTERM ends the transfers early: the demo then checks,
	// shuts its server down and removes its temporary directory, as at
	// the end of -d. During the setup it stops the setup, and the demo
	// fails, after the same shutdown and removal. A second one kills it.
	interrupt, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	context.AfterFunc(interrupt, stop)
	if *local {
		return localDemo(interrupt, *dur, *accounts, *tellers, stdout)
	}
	if *accounts < 2 || *clients < 1 {
		return errors.New("need at least 2 accounts and 1 client")
	}
	d := &netDemo{dur: *dur, nClients: *clients, nAccounts: *accounts, out: stdout, token: crand.Text(), dir: *dataDir,
		interrupt: interrupt}
	if d.dir == "" {
		dir, err := os.MkdirTemp("", "weft-demo-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		d.dir = dir
	}
	return d.run(stderr)
}

// netDemo is one run of the networked demo.
type netDemo struct {
	dur                 time.Duration
	nClients, nAccounts int
	out                 io.Writer
	token               string
	dir                 string          // the server's Pebble store
	interrupt           context.Context // ended by SIGINT or SIGTERM: the setup stops, the transfers end early

	addr    string
	conns   []*client.Client // every client, tellers first
	tellers []*client.Share
	auditor *client.Share
	watcher *client.Share

	commits, conflicts, audits, updates atomic.Int64
	badAudit                            atomic.Value // string: the first wrong total seen
}

func (d *netDemo) run(stderr io.Writer) error {
	cfg := server.Config{
		Tokens:      map[string]string{d.token: "demo"},
		Permissions: map[string]map[string]server.Access{server.AnyShare: {"demo": server.AccessWrite}},
		Logger:      slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	}
	st, err := pebblestore.Open(d.dir, pebblestore.Options{})
	if err != nil {
		return err
	}
	cfg.Store = st
	srv, err := server.Open(cfg)
	if err != nil {
		st.Close()
		return err
	}
	l, err := transport.ListenTCP("127.0.0.1:0", nil, cfg.Limits)
	if err != nil {
		st.Close()
		return err
	}
	d.addr = l.Addr()
	served := make(chan error, 1)
	go func() { served <- srv.Serve(context.Background(), l) }()
	fmt.Fprintf(d.out, "weft demo: server on %s, shares kept in %s (Pebble); %d clients, %d accounts of %d, transfers for %v\n",
		d.addr, d.dir, d.nClients, d.nAccounts, demoStart, d.dur)

	err = d.play()
	for _, c := range d.conns {
		c.Close()
	}
	ctx, cancel := context.WithTimeout(context.Background(), demoTimeout)
	defer cancel()
	serr := srv.Shutdown(ctx)
	if e := <-served; !errors.Is(e, server.ErrServerClosed) && serr == nil {
		serr = e
	}
	if err == nil && serr != nil {
		err = fmt.Errorf("shutdown: %w", serr)
	}
	st.Close()
	if err == nil {
		fmt.Fprintln(d.out, "weft demo: server shut down")
		err = d.restart(cfg)
	}
	return err
}

// connect dials a client of the demo and opens the share.
func (d *netDemo) connect(ctx context.Context, n int) (*client.Share, error) {
	c, err := client.Dial(ctx, transport.TCPDialer(nil, wire.Limits{}), d.addr, client.Options{
		Token: d.token,
		Rand:  rand.NewPCG(uint64(time.Now().UnixNano()), uint64(n)),
		Agent: "weft-demo",
	})
	if err != nil {
		return nil, err
	}
	d.conns = append(d.conns, c)
	return c.Open(ctx, demoShare, demoAccount)
}

// play runs the demo against the server: setup, transfers, then checks.
func (d *netDemo) play() error {
	sctx, cancel := context.WithTimeout(context.Background(), demoTimeout)
	err := d.setup(sctx)
	cancel()
	if err != nil {
		if d.interrupt.Err() != nil {
			return errors.New("interrupted during the setup: no transfers to check")
		}
		return err
	}

	// stop ends the transfers, audits and watching, after -d however
	// long; ctx bounds what is in flight then by demoTimeout.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stop, halt := context.WithCancel(ctx)
	defer halt()
	var wg sync.WaitGroup
	errs := make(chan error, d.nClients+2)
	for i, s := range d.tellers {
		wg.Go(func() { errs <- d.teller(ctx, stop, s, uint64(i)) })
	}
	wg.Go(func() { errs <- d.audit(ctx, stop) })
	wg.Go(func() { errs <- d.watch(stop) })

	d.report(time.After(d.dur))
	halt()
	bound := time.AfterFunc(demoTimeout, cancel)
	wg.Wait()
	bound.Stop()
	close(errs)
	for err := range errs {
		if err != nil {
			return err
		}
	}
	cctx, ccancel := context.WithTimeout(context.Background(), demoTimeout)
	defer ccancel()
	return d.check(cctx)
}

// setup connects the clients and creates the accounts (unless the store
// holds them). SIGINT or SIGTERM stops it, as it may take long (many
// accounts): else a second signal, which kills, would leave the temporary
// store.
func (d *netDemo) setup(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(d.interrupt, cancel)()
	for i := range d.nClients + 2 {
		s, err := d.connect(ctx, i)
		if err != nil {
			return err
		}
		switch i {
		case d.nClients:
			d.auditor = s
		case d.nClients + 1:
			d.watcher = s
		default:
			d.tellers = append(d.tellers, s)
		}
	}
	setup := time.Now()
	if kept := len(d.watcher.Records()); kept > 0 {
		// A store kept from an earlier run (-data): its accounts go on,
		// and so does their total.
		d.nAccounts = kept
		fmt.Fprintf(d.out, "  %d accounts kept in the store from an earlier run (share version %d)\n",
			kept, d.watcher.Version())
	} else {
		if err := d.createAccounts(ctx); err != nil {
			return err
		}
		fmt.Fprintf(d.out, "  %d accounts created by %d clients in %v (share version %d)\n",
			d.nAccounts, d.nClients, time.Since(setup).Round(time.Millisecond), d.watcher.Version())
	}
	return nil
}

// createAccounts has each teller create its part of the accounts, in
// batches of demoBatch per transaction, then waits until every client
// holds them all.
func (d *netDemo) createAccounts(ctx context.Context) error {
	var wg sync.WaitGroup
	errs := make([]error, len(d.tellers))
	for i, s := range d.tellers {
		wg.Go(func() {
			mine := d.nAccounts / len(d.tellers)
			if i < d.nAccounts%len(d.tellers) {
				mine++
			}
			for mine > 0 && errs[i] == nil {
				n := min(mine, demoBatch)
				errs[i] = s.Atomically(ctx, func(tx *stm.Tx) error {
					for range n {
						demoBalance.Of(s.Create(tx, demoAccount)).Set(tx, demoStart)
					}
					return nil
				})
				mine -= n
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("creating accounts: %w", err)
	}
	var top uint64
	for _, s := range d.tellers {
		top = max(top, s.Version())
	}
	for _, s := range d.shares() {
		if err := s.WaitVersion(ctx, top); err != nil {
			return err
		}
		if n := len(s.Records()); n != d.nAccounts {
			return fmt.Errorf("a client holds %d accounts, want %d", n, d.nAccounts)
		}
	}
	return nil
}

func (d *netDemo) shares() []*client.Share {
	return append(append([]*client.Share(nil), d.tellers...), d.auditor, d.watcher)
}

// teller transfers between random accounts until stop. Each transfer runs
// to its verdict (ctx only bounds it), so every one counted is committed.
func (d *netDemo) teller(ctx, stop context.Context, s *client.Share, seed uint64) error {
	r := rand.New(rand.NewPCG(seed, 7))
	acct := s.Records()
	for stop.Err() == nil {
		from, to, amount := acct[r.IntN(len(acct))], acct[r.IntN(len(acct))], int64(1+r.IntN(50))
		if from == to {
			continue
		}
		runs := 0
		wrote := false
		err := s.Atomically(ctx, func(tx *stm.Tx) error {
			runs++
			bal := demoBalance.Of(from).Get(tx)
			wrote = bal >= amount
			if !wrote {
				return nil
			}
			demoBalance.Of(from).Set(tx, bal-amount)
			demoBalance.Of(to).Set(tx, demoBalance.Of(to).Get(tx)+amount)
			demoReceived.Of(to).Add(tx, 1) // commutes: never a conflict
			return nil
		})
		if err != nil {
			return fmt.Errorf("transfer: %w", err)
		}
		if wrote {
			d.commits.Add(1)
		}
		d.conflicts.Add(int64(runs - 1))
	}
	return nil
}

// audit sums the balances on snapshots of the auditor's replica, once per
// share version, until stop: a read-only transaction sees one version, so
// always the total.
func (d *netDemo) audit(ctx, stop context.Context) error {
	acct := d.auditor.Records()
	want := int64(demoStart * d.nAccounts)
	for stop.Err() == nil {
		var total int64
		ver, err := d.auditor.ViewVersion(ctx, func(tx *stm.Tx) error {
			total = 0
			for _, a := range acct {
				total += demoBalance.Of(a).Get(tx)
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("audit: %w", err)
		}
		if total != want {
			d.badAudit.CompareAndSwap(nil, fmt.Sprintf("audit at version %d saw total %d, want %d", ver, total, want))
		}
		d.audits.Add(1)
		if err := d.auditor.WaitVersion(stop, ver+1); err != nil && stop.Err() == nil {
			return fmt.Errorf("audit: %w", err)
		}
	}
	return nil
}

// watch counts the share versions the watcher's replica receives until
// stop.
func (d *netDemo) watch(stop context.Context) error {
	for {
		v := d.watcher.Version()
		if err := d.watcher.WaitVersion(stop, v+1); err != nil {
			if stop.Err() != nil {
				return nil
			}
			return fmt.Errorf("watcher: %w", err)
		}
		d.updates.Add(int64(d.watcher.Version() - v))
	}
}

// report prints the rates each second until end fires.
func (d *netDemo) report(end <-chan time.Time) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	var lastC, lastR, lastA int64
	for {
		select {
		case <-end:
			return
		case <-d.interrupt.Done():
			fmt.Fprintln(d.out, "  interrupted: the transfers end here (again to kill)")
			return
		case <-tick.C:
		}
		c, r, a := d.commits.Load(), d.conflicts.Load(), d.audits.Load()
		live := 0
		for _, cl := range d.conns {
			if cl.Err() == nil {
				live++
			}
		}
		fmt.Fprintf(d.out, "  %7d commits/s  %6d conflicts retried/s  %6d audits/s  version %-8d %d clients connected\n",
			c-lastC, r-lastR, a-lastA, d.watcher.Version(), live)
		lastC, lastR, lastA = c, r, a
	}
}

// check reads the server's version through a fresh client and waits for
// every replica to reach it with the right total; it prints the summary.
func (d *netDemo) check(ctx context.Context) error {
	if msg := d.badAudit.Load(); msg != nil {
		return errors.New(msg.(string))
	}
	fresh, err := d.connect(ctx, d.nClients+2)
	if err != nil {
		return err
	}
	final := fresh.Version() // every transfer was answered: nothing is in flight
	want := int64(demoStart * d.nAccounts)
	for _, s := range append(d.shares(), fresh) {
		if err := s.WaitVersion(ctx, final); err != nil {
			return fmt.Errorf("replica did not reach version %d: %w", final, err)
		}
		var total int64
		ver, err := s.ViewVersion(ctx, func(tx *stm.Tx) error {
			total = 0
			for _, a := range s.Records() {
				total += demoBalance.Of(a).Get(tx)
			}
			return nil
		})
		if err != nil {
			return err
		}
		if ver != final || total != want {
			return fmt.Errorf("a replica holds version %d with total %d, want version %d with total %d", ver, total, final, want)
		}
	}
	fmt.Fprintf(d.out, "done: %d transfers committed (%d conflicts retried), %d audits all saw total %d, watcher received %d updates; all %d replicas converged to the server's version %d\n",
		d.commits.Load(), d.conflicts.Load(), d.audits.Load(), want, d.updates.Load(), len(d.conns), final)
	return nil
}

// restart opens the demo's store again with a new server, as after a
// restart, and checks that it holds what the clients were acknowledged:
// the last version the watcher saw, and the total.
func (d *netDemo) restart(cfg server.Config) error {
	start := time.Now()
	st, err := pebblestore.Open(d.dir, pebblestore.Options{})
	if err != nil {
		return err
	}
	defer st.Close()
	cfg.Store = st
	srv, err := server.Open(cfg)
	if err != nil {
		return err
	}
	l, err := transport.ListenTCP("127.0.0.1:0", nil, cfg.Limits)
	if err != nil {
		return err
	}
	d.addr = l.Addr()
	served := make(chan error, 1)
	go func() { served <- srv.Serve(context.Background(), l) }()
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), demoTimeout)
		defer cancel()
		srv.Shutdown(ctx)
		<-served
	}()
	ctx, cancel := context.WithTimeout(context.Background(), demoTimeout)
	defer cancel()
	// Opened after the restart, the share takes one more version: the
	// server's epoch change (authority/epoch.go).
	want := d.watcher.Version() + 1
	s, err := d.connect(ctx, d.nClients+2)
	if err != nil {
		return err
	}
	defer d.conns[len(d.conns)-1].Close()
	var total int64
	s.View(ctx, func(tx *stm.Tx) error {
		total = 0
		for _, a := range s.Records() {
			total += demoBalance.Of(a).Get(tx)
		}
		return nil
	})
	if s.Version() != want || total != int64(d.nAccounts*demoStart) {
		return fmt.Errorf("after a restart the store holds version %d and a total of %d, want %d and %d",
			s.Version(), total, want, d.nAccounts*demoStart)
	}
	fmt.Fprintf(d.out, "weft demo: a new server restored the store in %v: version %d, total %d, as acknowledged (and its epoch change)\n",
		time.Since(start).Round(time.Millisecond), s.Version(), total)
	return nil
}
