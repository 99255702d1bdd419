package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/weft-stm/weft/check"
	"github.com/weft-stm/weft/client"
	"github.com/weft-stm/weft/stm"
	"github.com/weft-stm/weft/transport"
	"github.com/weft-stm/weft/wire"
)

// soakDuration is how long TestSoak injects faults: WEFT_SOAK_DURATION (a
// Go duration, e.g. 10m), 20s by default.
func soakDuration(t *testing.T) time.Duration {
	v := os.Getenv("WEFT_SOAK_DURATION")
	if v == "" {
		return 20 * time.Second
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		t.Fatalf("WEFT_SOAK_DURATION=%q: want a positive Go duration", v)
	}
	return d
}

// soakSeed seeds the fault schedule and the clients' workloads:
// WEFT_SOAK_SEED, or the clock. (Timing still varies from run to run.)
func soakSeed(t *testing.T) uint64 {
	if v := os.Getenv("WEFT_SOAK_SEED"); v != "" {
		s, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("WEFT_SOAK_SEED=%q: %v", v, err)
		}
		return s
	}
	return uint64(time.Now().UnixNano())
}

const soakProcs = 4

// soakProc is a client process of TestSoak.
type soakProc struct {
	i       int
	cmd     *exec.Cmd
	stdin   io.WriteCloser
	out     string // its report file
	started atomic.Int64
	acked   atomic.Int64
	aborted atomic.Int64
	done    chan struct{} // closed once it exited and its output is read
	err     error         // how it exited; set before done is closed
}

// soakFaults counts what the schedule injected.
type soakFaults struct {
	kills, resets, cuts, latencies int
}

// TestSoak: the weft binary serves a data directory; soakProcs client
// processes (soakMain) reach it through a fault-injecting proxy and run
// register and list transactions, speculative (Run, up to soakPending in
// flight, chained) and blocking (Atomically), with bank transfers audited
// on snapshots. For the run's duration a seeded schedule injects faults:
// latency changes, connection resets, cuts (black holes, then closes), and
// every few seconds a SIGKILL of the server, restarted on the same address
// and data directory. Then the clients stop, wait for every verdict and
// hand in their histories; a final read of every key, once everything
// settled, completes the history, which check.Check must find free of
// anomalies.
//
// WEFT_SOAK_DURATION sets the duration (default 20s), WEFT_SOAK_SEED the
// seed (logged; timing still differs between runs):
//
//	WEFT_SOAK_DURATION=10m go test ./e2e -run TestSoak -timeout 0 -v
//
// (make soak SOAK_DURATION=10m does the same under the race detector.)
func TestSoak(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the weft binary and starts processes")
	}
	dur, seed := soakDuration(t), soakSeed(t)
	t.Logf("soak: %v, seed %d (WEFT_SOAK_SEED=%d replays the schedule)", dur, seed, seed)
	ctx, cancel := context.WithTimeout(context.Background(), dur+5*time.Minute)
	defer cancel()
	srv := &crashServer{t: t, bin: filepath.Join(t.TempDir(), "weft"), dir: filepath.Join(t.TempDir(), "data")}
	if out, err := exec.CommandContext(ctx, "go", "build", "-o", srv.bin, "../cmd/weft").CombinedOutput(); err != nil {
		t.Fatalf("building weft: %v\n%s", err, out)
	}
	srv.start(ctx)
	t.Cleanup(srv.kill)
	seedSoak(ctx, t, srv.addr)
	px := startProxy(t, srv.addr)
	rng := rand.New(rand.NewPCG(seed, 0x50a4))

	exited := make(chan *soakProc, soakProcs)
	var procs []*soakProc
	dir := t.TempDir()
	for i := range soakProcs {
		p := startSoakProc(ctx, t, i, px.Addr(), seed, dir, exited)
		procs = append(procs, p)
	}

	// The fault schedule.
	var f soakFaults
	began := time.Now()
	end := time.NewTimer(dur)
	defer end.Stop()
	fault := time.NewTimer(soakGap(rng, 50, 400))
	defer fault.Stop()
	kill := time.NewTimer(soakGap(rng, 2000, 5000))
	defer kill.Stop()
	progress := time.NewTicker(5 * time.Second)
	defer progress.Stop()
	for running := true; running; {
		select {
		case <-end.C:
			running = false
		case <-fault.C:
			switch x := rng.IntN(100); {
			case x < 45:
				if px.Reset(rng.IntN(1 << 20)) {
					f.resets++
				}
			case x < 75:
				if px.Cut(rng.IntN(1<<20), soakGap(rng, 100, 1500)) {
					f.cuts++
				}
			default:
				lo := soakGap(rng, 0, 3)
				hi := lo + soakGap(rng, 0, 10)
				if rng.IntN(4) == 0 {
					lo, hi = 0, 0
				}
				px.SetLatency(lo, hi, rng.Uint64())
				f.latencies++
			}
			fault.Reset(soakGap(rng, 50, 400))
		case <-kill.C:
			srv.kill()
			down := time.NewTimer(soakGap(rng, 0, 500)) // the server stays down a while
			select {
			case <-down.C:
			case <-ctx.Done():
			}
			srv.start(ctx)
			f.kills++
			kill.Reset(soakGap(rng, 2000, 5000))
		case <-progress.C:
			var s, a, b int64
			for _, p := range procs {
				s, a, b = s+p.started.Load(), a+p.acked.Load(), b+p.aborted.Load()
			}
			t.Logf("soak %v/%v: %d transactions, %d acknowledged, %d aborted; %d kills, %d resets, %d cuts, %d latency changes",
				time.Since(began).Round(time.Second), dur, s, a, b, f.kills, f.resets, f.cuts, f.latencies)
		case p := <-exited:
			t.Fatalf("client %d exited during the run: %v", p.i, p.err)
		case <-ctx.Done():
			t.Fatal(ctx.Err())
		}
	}

	// Settle: no more faults (cuts already made end on their own); the
	// clients stop, wait for their verdicts and write their histories.
	px.SetLatency(0, 0, 0)
	for _, p := range procs {
		p.stdin.Close()
	}
	var history []check.Txn
	var sum soakReport
	failed := false
	for _, p := range procs {
		select {
		case <-p.done:
		case <-ctx.Done():
			t.Fatalf("client %d did not finish: %v", p.i, ctx.Err())
		}
		if p.err != nil {
			t.Errorf("client %d: %v", p.i, p.err)
			failed = true
			continue
		}
		var rep soakReport
		b, err := os.ReadFile(p.out)
		if err == nil {
			err = json.Unmarshal(b, &rep)
		}
		if err != nil {
			t.Errorf("client %d's report: %v", p.i, err)
			failed = true
			continue
		}
		if len(rep.Txns) == 0 {
			t.Errorf("client %d recorded no transaction", p.i)
			failed = true
		}
		for _, e := range rep.Errors {
			t.Errorf("client %d: %s", p.i, e)
			failed = true
		}
		history = append(history, rep.Txns...)
		sum.Acked += rep.Acked
		sum.Aborted += rep.Aborted
		sum.InDoubt += rep.InDoubt
		sum.Unresolved += rep.Unresolved
		sum.Atomically += rep.Atomically
		sum.Created += rep.Created
		sum.Skipped += rep.Skipped
		sum.Audits += rep.Audits
		sum.Creates = append(sum.Creates, rep.Creates...)
	}
	if failed {
		t.FailNow()
	}

	final, cells := soakFinal(ctx, t, srv.addr, history)
	history = append(history, final)
	res := check.Check(check.History{Txns: history})
	t.Logf("soak done after %v: %d transactions (%d with Atomically), %d acknowledged, %d aborted, %d in doubt, %d unresolved; "+
		"%d cells (%d created), %d runs skipped, %d audits; %d kills, %d resets, %d cuts, %d latency changes; "+
		"checker: %d committed, %d edges",
		time.Since(began).Round(time.Second), len(history)-1, sum.Atomically, sum.Acked, sum.Aborted, sum.InDoubt, sum.Unresolved,
		cells, sum.Created, sum.Skipped, sum.Audits, f.kills, f.resets, f.cuts, f.latencies, res.Committed, res.Edges)
	if !res.OK() {
		for i, a := range res.Anomalies {
			if i == 50 {
				t.Errorf("... and %d more", len(res.Anomalies)-i)
				break
			}
			t.Errorf("%v %v: %s", a.Kind, a.Txns, a.Explanation)
		}
		dump := filepath.Join(os.TempDir(), fmt.Sprintf("weft-soak-%d.json", seed))
		if b, err := json.Marshal(check.History{Txns: history}); err == nil && os.WriteFile(dump, b, 0o644) == nil {
			t.Logf("the history (check.History in JSON) is in %s", dump)
		}
		creates := strings.TrimSuffix(dump, ".json") + "-creates.json"
		if b, err := json.Marshal(sum.Creates); err == nil && os.WriteFile(creates, b, 0o644) == nil {
			t.Logf("which transaction created which cell: %s", creates)
		}
		t.Fatalf("the checker found %d anomalies %v (seed %d)", len(res.Anomalies), res.Counts, seed)
	}
}

// soakGap returns a random duration in [lo, hi] milliseconds.
func soakGap(rng *rand.Rand, lo, hi int) time.Duration {
	return time.Duration(lo+rng.IntN(hi-lo+1)) * time.Millisecond
}

// startSoakProc starts client process i on addr; it goes to exited if it
// ends by itself.
func startSoakProc(ctx context.Context, t *testing.T, i int, addr string, seed uint64, dir string, exited chan<- *soakProc) *soakProc {
	t.Helper()
	p := &soakProc{i: i, out: filepath.Join(dir, fmt.Sprintf("client%d.json", i)), done: make(chan struct{})}
	p.cmd = exec.CommandContext(ctx, os.Args[0], "-test.run=^$")
	p.cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%s %d %d %s", soakEnv, addr, 100+i, seed+uint64(i), p.out))
	p.cmd.Stderr = &testWriter{t: t, prefix: fmt.Sprintf("client %d: ", i)}
	stdout, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if p.stdin, err = p.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		lines := bufio.NewScanner(stdout)
		for lines.Scan() {
			var s, a, b int64
			if _, err := fmt.Sscanf(lines.Text(), "progress %d %d %d", &s, &a, &b); err == nil {
				p.started.Store(s)
				p.acked.Store(a)
				p.aborted.Store(b)
			}
		}
		p.err = p.cmd.Wait()
		close(p.done)
		exited <- p
	}()
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		<-p.done
	})
	return p
}

// seedSoak creates the register cells, with their balances.
func seedSoak(ctx context.Context, t *testing.T, addr string) {
	t.Helper()
	c, s := openSoak(ctx, t, addr, seedReplica)
	defer c.Close()
	if err := s.Atomically(ctx, func(tx *stm.Tx) error {
		for range soakRegs {
			soakBalance.Of(s.Create(tx, soakCell)).Set(tx, soakStart)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

func openSoak(ctx context.Context, t *testing.T, addr string, replica uint64) (*client.Client, *client.Share) {
	t.Helper()
	c, err := client.Dial(ctx, transport.TCPDialer(nil, wire.Limits{}), addr,
		client.Options{Replica: replica, Token: token, NoReconnect: true})
	if err != nil {
		t.Fatal(err)
	}
	s, err := c.Open(ctx, soakShare, soakCell)
	if err != nil {
		c.Close()
		t.Fatal(err)
	}
	return c, s
}

// soakFinal reads every key with a fresh client once the clients are done
// (a final observation: it must see every committed write), at least at
// the highest version acknowledged, and checks the balances' total. It
// returns the observation and the number of cells.
func soakFinal(ctx context.Context, t *testing.T, addr string, history []check.Txn) (check.Txn, int) {
	t.Helper()
	var top uint64
	for _, x := range history {
		if x.Outcome == check.Acknowledged {
			top = max(top, x.Version)
		}
	}
	c, s := openSoak(ctx, t, addr, 999)
	defer c.Close()
	if err := s.WaitVersion(ctx, top); err != nil {
		t.Fatalf("the final reader waiting for version %d: %v", top, err)
	}
	final := check.Txn{ID: check.TxnID{Replica: 999, Seq: 1}, Share: soakShare, Final: true}
	cells := s.Records()
	var total int64
	if err := s.View(ctx, func(tx *stm.Tx) error {
		final.Ops, total = final.Ops[:0], 0
		for _, r := range cells {
			var seen []uint64
			for _, x := range soakItems.Of(r).All(tx) {
				seen = append(seen, uint64(x))
			}
			final.Ops = append(final.Ops, check.Op{Kind: check.ReadList, Key: soakKey("list", r), List: seen})
			if stm.IDOf(r).Replica == seedReplica {
				final.Ops = append(final.Ops, check.Op{Kind: check.ReadReg, Key: soakKey("reg", r), Value: uint64(soakValue.Of(r).Get(tx))})
				total += soakBalance.Of(r).Get(tx)
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if total != soakRegs*soakStart {
		t.Errorf("the final balances total %d, want %d", total, soakRegs*soakStart)
	}
	return final, len(cells)
}
