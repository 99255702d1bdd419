package e2e

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/weft-stm/weft/client"
	"github.com/weft-stm/weft/stm"
	"github.com/weft-stm/weft/transport"
	"github.com/weft-stm/weft/wire"
)

// crashCycles is how many times TestCrashRestart kills the server;
// WEFT_CRASH_CYCLES sets it (make crash runs 1000).
func crashCycles() int {
	if n, err := strconv.Atoi(os.Getenv("WEFT_CRASH_CYCLES")); err == nil && n > 0 {
		return n
	}
	return 20
}

// crashServer is the weft binary serving a data directory on a fixed
// address, started again after each kill.
type crashServer struct {
	t    *testing.T
	bin  string
	dir  string
	addr string
	cmd  *exec.Cmd
	log  *os.File
}

// start starts the server and waits until it listens.
func (s *crashServer) start(ctx context.Context) {
	s.t.Helper()
	listen := s.addr
	if listen == "" {
		listen = "127.0.0.1:0"
	}
	cmd := exec.CommandContext(ctx, s.bin, "serve", "-listen", listen, "-token", token, "-data", s.dir)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		s.t.Fatal(err)
	}
	// The server's log goes to a file (thousands of restarts would flood
	// the test's output), shown if the test fails.
	if s.log == nil {
		f, err := os.Create(filepath.Join(s.t.TempDir(), "server.log"))
		if err != nil {
			s.t.Fatal(err)
		}
		s.log = f
		s.t.Cleanup(func() {
			if s.t.Failed() {
				if b, err := os.ReadFile(f.Name()); err == nil {
					if len(b) > 8<<10 {
						b = b[len(b)-8<<10:]
					}
					s.t.Logf("the end of the server's log:\n%s", b)
				}
			}
			f.Close()
		})
	}
	cmd.Stderr = s.log
	if err := cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	s.cmd = cmd
	lines := bufio.NewScanner(stdout)
	for lines.Scan() {
		if _, rest, ok := strings.Cut(lines.Text(), "listening on "); ok {
			s.addr, _, _ = strings.Cut(rest, " ")
			go io.Copy(io.Discard, stdout)
			return
		}
	}
	_ = cmd.Wait()
	s.t.Fatalf("the server printed no address: %v", lines.Err())
}

// kill kills the server with SIGKILL, as a crash would.
func (s *crashServer) kill() {
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGKILL)
	_ = s.cmd.Wait()
	s.cmd = nil
}

// crashWorker is a client committing while the server is killed under
// it. Its own account's balance counts its acknowledged increments (it
// alone writes it, so none conflicts); the shared account counts the
// acknowledged read-modify-writes of every worker (those that conflict are
// aborted and must leave no trace).
type crashWorker struct {
	c        *client.Client
	s        *client.Share
	own      *stm.Object
	shared   *stm.Object
	acked    atomic.Int64 // increments of own acknowledged
	sharedOK atomic.Int64 // read-modify-writes of shared acknowledged
	aborted  atomic.Int64
}

// TestCrashRestart: the weft binary serves a data directory under load
// from several clients and is killed with SIGKILL at random moments, then
// started again, crashCycles times. After each restart, once every client
// has its answers: every acknowledged commit is present exactly once,
// none reported aborted is, and every replica converges.
func TestCrashRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the weft binary and starts processes")
	}
	cycles := crashCycles()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second+time.Duration(cycles)*time.Second)
	defer cancel()
	srv := &crashServer{t: t, bin: filepath.Join(t.TempDir(), "weft"), dir: filepath.Join(t.TempDir(), "data")}
	if out, err := exec.CommandContext(ctx, "go", "build", "-o", srv.bin, "../cmd/weft").CombinedOutput(); err != nil {
		t.Fatalf("building weft: %v\n%s", err, out)
	}
	srv.start(ctx)
	t.Cleanup(srv.kill)

	const workers = 4
	seedCrash(ctx, t, srv.addr, workers)
	var ws []*crashWorker
	for i := range workers {
		c, err := client.Dial(ctx, transport.TCPDialer(nil, wire.Limits{}), srv.addr,
			client.Options{Replica: uint64(100 + i), Token: token, MinBackoff: 5 * time.Millisecond, MaxBackoff: 100 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		s, err := c.Open(ctx, share, account)
		if err != nil {
			t.Fatal(err)
		}
		recs := s.Records()
		ws = append(ws, &crashWorker{c: c, s: s, own: recs[i], shared: recs[workers]})
	}

	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))
	var total atomic.Int64 // commits answered, all workers: what a kill waits for
	answered := make(chan struct{}, 1)
	for cycle := range cycles {
		// Run the workers until a random number of answers, then kill.
		stop := make(chan struct{})
		var wg sync.WaitGroup
		errs := make(chan error, workers)
		for _, w := range ws {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := w.run(ctx, stop, &total, answered); err != nil {
					errs <- err
				}
			}()
		}
		target := total.Load() + int64(20+rng.IntN(300))
		for total.Load() < target && len(errs) == 0 {
			select {
			case <-answered:
			case <-ctx.Done():
				t.Fatalf("cycle %d: %d answers, waiting for %d", cycle, total.Load(), target)
			}
		}
		srv.kill()
		srv.start(ctx)
		close(stop)
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatalf("cycle %d: %v", cycle, err)
		}
		checkCrash(ctx, t, cycle, srv.addr, ws)
		if cycles > 20 && (cycle+1)%50 == 0 {
			t.Logf("%d of %d kills checked", cycle+1, cycles)
		}
	}
	t.Logf("%d kills; %d increments and %d read-modify-writes acknowledged, %d aborted",
		cycles, sumOf(ws, func(w *crashWorker) int64 { return w.acked.Load() }),
		sumOf(ws, func(w *crashWorker) int64 { return w.sharedOK.Load() }),
		sumOf(ws, func(w *crashWorker) int64 { return w.aborted.Load() }))
}

func sumOf(ws []*crashWorker, f func(*crashWorker) int64) int64 {
	var n int64
	for _, w := range ws {
		n += f(w)
	}
	return n
}

// run commits until stop: an increment of its own account (Atomically:
// waits for the verdict through reconnections), then a read-modify-write
// of the shared account (Run: a conflict aborts it, and it counts as
// such). It returns once stop is closed and every commit is answered.
func (w *crashWorker) run(ctx context.Context, stop chan struct{}, total *atomic.Int64, answered chan struct{}) error {
	own, shared := balance.Of(w.own), balance.Of(w.shared)
	for {
		select {
		case <-stop:
			return w.c.Flush(ctx)
		default:
		}
		if err := w.s.Atomically(ctx, func(tx *stm.Tx) error {
			own.Set(tx, own.Get(tx)+1)
			return nil
		}); err != nil {
			return fmt.Errorf("increment: %w", err)
		}
		w.acked.Add(1)
		h, err := w.s.Run(ctx, func(tx *stm.Tx) error {
			shared.Set(tx, shared.Get(tx)+1)
			return nil
		})
		if err != nil {
			return fmt.Errorf("read-modify-write: %w", err)
		}
		switch err := h.Wait(ctx); {
		case err == nil:
			w.sharedOK.Add(1)
		case errors.Is(err, stm.ErrAborted):
			w.aborted.Add(1)
		default:
			return fmt.Errorf("read-modify-write: %w", err)
		}
		total.Add(2)
		select {
		case answered <- struct{}{}:
		default:
		}
	}
}

// seedCrash creates one account per worker and a shared one, all at 0.
func seedCrash(ctx context.Context, t *testing.T, addr string, workers int) {
	t.Helper()
	c, s, err := openBank(ctx, addr, seedReplica)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := s.Atomically(ctx, func(tx *stm.Tx) error {
		for range workers + 1 {
			s.Create(tx, account)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

// checkCrash reads the share with a fresh client and compares it with
// what the workers were told, then checks every worker's replica holds
// the same.
func checkCrash(ctx context.Context, t *testing.T, cycle int, addr string, ws []*crashWorker) {
	t.Helper()
	c, s, err := openBank(ctx, addr, 999)
	if err != nil {
		t.Fatalf("cycle %d: %v", cycle, err)
	}
	defer c.Close()
	recs := s.Records()
	var got []int64
	var want []int64
	if err := s.View(ctx, func(tx *stm.Tx) error {
		got = got[:0]
		for _, r := range recs {
			got = append(got, balance.Of(r).Get(tx))
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	for _, w := range ws {
		want = append(want, w.acked.Load())
	}
	want = append(want, sumOf(ws, func(w *crashWorker) int64 { return w.sharedOK.Load() }))
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("cycle %d: the server holds %v, the clients were acknowledged %v", cycle, got, want)
	}
	for i, w := range ws {
		if err := w.s.WaitVersion(ctx, s.Version()); err != nil {
			t.Fatal(err)
		}
		var mine []int64
		w.s.View(ctx, func(tx *stm.Tx) error {
			mine = mine[:0]
			for _, r := range w.s.Records() {
				mine = append(mine, balance.Of(r).Get(tx))
			}
			return nil
		})
		if fmt.Sprint(mine) != fmt.Sprint(want) {
			t.Fatalf("cycle %d: worker %d holds %v, want %v", cycle, i, mine, want)
		}
	}
}
