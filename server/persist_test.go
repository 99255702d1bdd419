package server_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"

	"github.com/weft-stm/weft/client"
	"github.com/weft-stm/weft/server"
	"github.com/weft-stm/weft/stm"
	"github.com/weft-stm/weft/store/pebblestore"
	"github.com/weft-stm/weft/transport"
	"github.com/weft-stm/weft/wire"
)

var (
	countF  = stm.NewVarField[int64](1, "count")
	counter = stm.NewClass("Counter", 3, countF)
)

// durableEnv is a server on a Pebble store over a crashable in-memory
// file system, served on an in-memory network.
type durableEnv struct {
	srv    *server.Server
	st     *pebblestore.Store
	net    *transport.Network
	served chan error
}

func startDurable(t *testing.T, fs vfs.FS) *durableEnv {
	t.Helper()
	st, err := pebblestore.Open("data", pebblestore.Options{FS: fs})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := server.Open(server.Config{Store: st, DefaultAccess: server.AccessWrite, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	e := &durableEnv{srv: srv, st: st, net: transport.NewNetwork(1), served: make(chan error, 1)}
	l, err := e.net.Listen("server")
	if err != nil {
		t.Fatal(err)
	}
	go func() { e.served <- srv.Serve(context.Background(), l) }()
	return e
}

func (e *durableEnv) stop(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	e.srv.Shutdown(ctx)
	<-e.served
	e.st.Close()
}

func (e *durableEnv) open(t *testing.T, ctx context.Context, replica uint64) (*client.Client, *client.Share) {
	t.Helper()
	c, err := client.Dial(ctx, e.net.Dialer("client"), "server", client.Options{Replica: replica, NoReconnect: true})
	if err != nil {
		t.Fatal(err)
	}
	s, err := c.Open(ctx, "counters", counter)
	if err != nil {
		t.Fatal(err)
	}
	return c, s
}

// TestPowerLoss: clients commit to a server on Pebble; the machine loses
// power at a random moment (the file system keeps what was synced, and
// part of the rest, at random). A server restarted on what survived holds
// every commit acknowledged before the loss, and nothing a client was told
// was aborted.
func TestPowerLoss(t *testing.T) {
	for seed := range uint64(5) {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) { powerLoss(t, seed) })
	}
}

func powerLoss(t *testing.T, seed uint64) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	fs := vfs.NewCrashableMem()
	e := startDurable(t, fs)
	const workers = 4
	{
		c, s := e.open(t, ctx, 1)
		if err := s.Atomically(ctx, func(tx *stm.Tx) error {
			for range workers + 1 {
				s.Create(tx, counter)
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		c.Close()
	}
	// Each worker increments its own counter (never aborted) and the
	// shared one (aborted on a conflict): acked and aborted are counted
	// before the power goes.
	var mu sync.Mutex
	acked := make([]int64, workers+1)
	var crashed atomic.Bool
	var wg sync.WaitGroup
	rng := rand.New(rand.NewPCG(seed, 3))
	target := int64(50 + rng.IntN(200))
	var answers atomic.Int64
	lost := make(chan struct{})
	for i := range workers {
		c, s := e.open(t, ctx, uint64(10+i))
		defer c.Close()
		recs := s.Records()
		own, shared := countF.Of(recs[i]), countF.Of(recs[workers])
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !crashed.Load() {
				h1, err := s.Run(ctx, func(tx *stm.Tx) error { own.Set(tx, own.Get(tx)+1); return nil })
				if err != nil {
					return
				}
				h2, err := s.Run(ctx, func(tx *stm.Tx) error { shared.Set(tx, shared.Get(tx)+1); return nil })
				if err != nil {
					return
				}
				for k, h := range []*stm.Handle{h1, h2} {
					err := h.Wait(ctx)
					mu.Lock()
					if err == nil && !crashed.Load() {
						acked[[]int{i, workers}[k]]++
					}
					mu.Unlock()
					if err != nil && !errors.Is(err, stm.ErrAborted) {
						return
					}
				}
				if answers.Add(2) >= target {
					select {
					case lost <- struct{}{}:
					default:
					}
				}
			}
		}()
	}
	select {
	case <-lost:
	case <-ctx.Done():
		t.Fatal("no answers")
	}
	mu.Lock()
	crashed.Store(true)
	survivor := fs.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: 50, RNG: rand.New(rand.NewPCG(seed, 4))})
	want := append([]int64(nil), acked...)
	mu.Unlock()
	e.stop(t)
	wg.Wait()

	e = startDurable(t, survivor)
	defer e.stop(t)
	c, s := e.open(t, ctx, 99)
	defer c.Close()
	var got []int64
	s.View(ctx, func(tx *stm.Tx) error {
		got = got[:0]
		for _, r := range s.Records() {
			got = append(got, countF.Of(r).Get(tx))
		}
		return nil
	})
	if len(got) != workers+1 {
		t.Fatalf("%d counters after the loss, want %d", len(got), workers+1)
	}
	for i := range got {
		// Commits acknowledged before the loss are there; later ones may
		// be. Each counter counts acknowledged commits only, once each.
		if got[i] < want[i] {
			t.Errorf("counter %d: %d after the loss, %d were acknowledged before it", i, got[i], want[i])
		}
		// At most one commit per worker was unanswered at the loss.
		inFlight := int64(1)
		if i == workers {
			inFlight = workers
		}
		if got[i] > want[i]+inFlight {
			t.Errorf("counter %d: %d after the loss, more than the %d acknowledged and %d in flight", i, got[i], want[i], inFlight)
		}
	}
	t.Logf("acknowledged before the loss %v, restored %v", want, got)
}

// TestFullDiskThenFreed: the disk fills (first where the store's reserve
// lies, which it gives up to finish what it writes, then everywhere):
// commits fail, never acknowledged, and the share closes; once space is
// freed, the same server takes the share back from its store, and commits
// go on, every acknowledged one counted.
func TestFullDiskThenFreed(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	mem := vfs.NewMem()
	reserve := mem.PathJoin("data", "WEFT-RESERVE")
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
	e := startDurable(t, fsys)
	defer e.stop(t)
	c, s := e.open(t, ctx, 1)
	defer c.Close()
	var o *stm.Object
	if err := s.Atomically(ctx, func(tx *stm.Tx) error { o = s.Create(tx, counter); return nil }); err != nil {
		t.Fatal(err)
	}
	acked := 0
	add := func(s *client.Share, o *stm.Object) error {
		n := countF.Of(o)
		err := s.Atomically(ctx, func(tx *stm.Tx) error { n.Set(tx, n.Get(tx)+1); return nil })
		if err == nil {
			acked++
		}
		return err
	}
	for range 5 {
		if err := add(s, o); err != nil {
			t.Fatal(err)
		}
	}
	full.Store(true)
	var err error
	for i := 0; err == nil; i++ {
		if i == 10 {
			t.Fatal("10 commits acknowledged on a full disk")
		}
		err = add(s, o)
	}
	if !errors.Is(err, client.ErrShareClosed) {
		t.Fatalf("commit on a full disk: %v, want the share closed", err)
	}
	t.Logf("commit on a full disk, after %d acknowledged: %v", acked, err)
	if _, err := c.Open(ctx, "counters", counter); err == nil {
		t.Fatal("the share opened again while the disk is full: its first commit (the epoch) should have failed")
	}

	full.Store(false) // space freed
	s2, err := c.Open(ctx, "counters", counter)
	if err != nil {
		t.Fatalf("opening the share once space was freed: %v", err)
	}
	o2 := s2.Records()[0]
	if err := add(s2, o2); err != nil {
		t.Fatalf("a commit once space was freed: %v", err)
	}
	var got int64
	s2.View(ctx, func(tx *stm.Tx) error { got = countF.Of(o2).Get(tx); return nil })
	if got != int64(acked) {
		t.Fatalf("the counter is %d, want the %d acknowledged increments", got, acked)
	}
}

// TestFullDisk: when the disk fills, the commit that could not be made
// durable is not acknowledged (it stays in doubt), the share closes for
// its sessions with an error, and everything acknowledged before is
// intact when the server restarts on the store.
func TestFullDisk(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	mem := vfs.NewMem()
	var full atomic.Bool
	fsys := errorfs.Wrap(mem, errorfs.InjectorFunc(func(op errorfs.Op) error {
		if op.Kind.ReadOrWrite() == errorfs.OpIsWrite && full.Load() {
			return syscall.ENOSPC
		}
		return nil
	}))
	e := startDurable(t, fsys)
	c, s := e.open(t, ctx, 1)
	var o *stm.Object
	if err := s.Atomically(ctx, func(tx *stm.Tx) error { o = s.Create(tx, counter); return nil }); err != nil {
		t.Fatal(err)
	}
	n := countF.Of(o)
	for range 10 {
		if err := s.Atomically(ctx, func(tx *stm.Tx) error { n.Set(tx, n.Get(tx)+1); return nil }); err != nil {
			t.Fatal(err)
		}
	}
	full.Store(true)
	err := s.Atomically(ctx, func(tx *stm.Tx) error { n.Set(tx, n.Get(tx)+1); return nil })
	if !errors.Is(err, client.ErrInDoubt) || !errors.Is(err, client.ErrShareClosed) {
		t.Fatalf("commit on a full disk: %v, want in doubt, the share closed", err)
	}
	var sc *client.ShareClosedError
	if !errors.As(s.Err(), &sc) || sc.Code != wire.CodeInternal {
		t.Fatalf("share error %v, want ShareClosed internal", s.Err())
	}
	t.Logf("commit on a full disk: %v", err)
	c.Close()
	e.stop(t)

	full.Store(false)
	e = startDurable(t, fsys)
	defer e.stop(t)
	c, s = e.open(t, ctx, 2)
	defer c.Close()
	var got int64
	s.View(ctx, func(tx *stm.Tx) error { got = countF.Of(s.Records()[0]).Get(tx); return nil })
	if got < 10 || got > 11 {
		t.Fatalf("after the restart the counter is %d, want the 10 acknowledged (11 if the last reached the disk)", got)
	}
}
