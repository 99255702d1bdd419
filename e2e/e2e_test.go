package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/weft-stm/weft/client"
	"github.com/weft-stm/weft/stm"
	"github.com/weft-stm/weft/transport"
	"github.com/weft-stm/weft/wire"
)

var (
	balance = stm.NewVarField[int64](1, "balance")
	account = stm.NewClass("Account", 1, balance)
)

const (
	share    = "bank"
	accounts = 100
	start    = 1000
	token    = "e2e-token"
)

// clientEnv makes this test binary a client program (see TestMain).
const clientEnv = "WEFT_E2E_CLIENT"

func TestMain(m *testing.M) {
	if args := os.Getenv(clientEnv); args != "" {
		os.Exit(clientMain(args))
	}
	if addr := os.Getenv(cascadeEnv); addr != "" {
		os.Exit(cascadeMain(addr))
	}
	if args := os.Getenv(offlineEnv); args != "" {
		os.Exit(offlineMain(args))
	}
	if args := os.Getenv(soakEnv); args != "" {
		os.Exit(soakMain(args))
	}
	os.Exit(m.Run())
}

// report is what a client process prints when it is done.
type report struct {
	Transfers int    `json:"transfers"`
	Version   uint64 `json:"version"`
	Total     int64  `json:"total"`
	Audits    int    `json:"audits"`
}

// clientMain is a client program: "addr replica transfers". It transfers
// between random accounts, audits the total on snapshots, waits for the
// share to reach the version the server gave its last commit, and prints a
// report.
func clientMain(args string) int {
	f := strings.Fields(args)
	if len(f) != 3 {
		fmt.Fprintln(os.Stderr, "usage: addr replica transfers")
		return 2
	}
	replica, _ := strconv.ParseUint(f[1], 10, 64)
	n, _ := strconv.Atoi(f[2])
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, transport.TCPDialer(nil, wire.Limits{}), f[0], client.Options{Replica: replica, Token: token})
	if err != nil {
		fmt.Fprintln(os.Stderr, "dial:", err)
		return 1
	}
	defer c.Close()
	s, err := c.Open(ctx, share, account)
	if err != nil {
		fmt.Fprintln(os.Stderr, "open:", err)
		return 1
	}
	accts := s.Records()
	rnd := rand.New(rand.NewPCG(replica, 9))
	var rep report
	for range n {
		from, to := accts[rnd.IntN(len(accts))], accts[rnd.IntN(len(accts))]
		if from == to {
			continue
		}
		amount := int64(1 + rnd.IntN(20))
		if err := s.Atomically(ctx, func(tx *stm.Tx) error {
			if balance.Of(from).Get(tx) < amount {
				return nil
			}
			balance.Of(from).Set(tx, balance.Of(from).Get(tx)-amount)
			balance.Of(to).Set(tx, balance.Of(to).Get(tx)+amount)
			return nil
		}); err != nil {
			fmt.Fprintln(os.Stderr, "transfer:", err)
			return 1
		}
		rep.Transfers++
		if err := s.View(ctx, func(tx *stm.Tx) error {
			if t := total(tx, accts); t != accounts*start {
				return fmt.Errorf("audit saw total %d", t)
			}
			rep.Audits++
			return nil
		}); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
	}
	rep.Version = s.Version()
	_ = s.View(ctx, func(tx *stm.Tx) error { rep.Total = total(tx, accts); return nil })
	if err := json.NewEncoder(os.Stdout).Encode(rep); err != nil {
		return 1
	}
	return 0
}

func total(tx *stm.Tx, accts []*stm.Object) int64 {
	var t int64
	for _, a := range accts {
		t += balance.Of(a).Get(tx)
	}
	return t
}

// TestBankAcrossProcesses: the weft binary serves; 4 client processes
// transfer money among 100 accounts at once; every audit each client makes
// on a snapshot sees the same total, and so does a fresh client at the end,
// on a replica that reached the server's last version. The server then
// shuts down gracefully on SIGINT.
func TestBankAcrossProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the weft binary and starts processes")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	bin := filepath.Join(t.TempDir(), "weft")
	if out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, "../cmd/weft").CombinedOutput(); err != nil {
		t.Fatalf("building weft: %v\n%s", err, out)
	}

	srv := exec.CommandContext(ctx, bin, "serve", "-listen", "127.0.0.1:0", "-token", token)
	stdout, err := srv.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	srv.Stderr = &testWriter{t: t, prefix: "server: "}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { // on failure: stop it, and let its output copiers finish
		_ = srv.Process.Kill()
		_ = srv.Wait()
	}()
	lines := bufio.NewScanner(stdout)
	addr := ""
	for addr == "" && lines.Scan() {
		if _, rest, ok := strings.Cut(lines.Text(), "listening on "); ok {
			addr, _, _ = strings.Cut(rest, " ")
		}
	}
	if addr == "" {
		t.Fatalf("the server printed no address: %v", lines.Err())
	}
	go func() { // keep draining the server's stdout
		for lines.Scan() {
		}
	}()

	// The accounts, created by one client (in this process).
	setup := dial(ctx, t, addr, 1)
	bank, err := setup.Open(ctx, share, account)
	if err != nil {
		t.Fatal(err)
	}
	for batch := 0; batch < accounts; batch += 25 {
		if err := bank.Atomically(ctx, func(tx *stm.Tx) error {
			for range 25 {
				balance.Of(bank.Create(tx, account)).Set(tx, start)
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	setup.Close()

	const procs, transfers = 4, 150
	type result struct {
		rep report
		err error
	}
	results := make(chan result, procs)
	for p := range procs {
		cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%s %d %d", clientEnv, addr, 100+p, transfers))
		cmd.Stderr = &testWriter{t: t, prefix: fmt.Sprintf("client %d: ", p)}
		go func() {
			out, err := cmd.Output()
			var r report
			if err == nil {
				err = json.Unmarshal(out, &r)
			}
			results <- result{r, err}
		}()
	}
	var last uint64
	for range procs {
		r := <-results
		if r.err != nil {
			t.Fatalf("client process: %v", r.err)
		}
		if r.rep.Total != accounts*start || r.rep.Audits != r.rep.Transfers || r.rep.Transfers == 0 {
			t.Fatalf("client process reported %+v", r.rep)
		}
		last = max(last, r.rep.Version)
	}

	// A fresh replica converges to the server's state, with the same total.
	check := dial(ctx, t, addr, 2)
	defer check.Close()
	s, err := check.Open(ctx, share, account)
	if err != nil {
		t.Fatal(err)
	}
	if s.Version() < last {
		t.Fatalf("fresh replica at version %d, a client saw %d", s.Version(), last)
	}
	var got int64
	_ = s.View(ctx, func(tx *stm.Tx) error { got = total(tx, s.Records()); return nil })
	if got != accounts*start || len(s.Records()) != accounts {
		t.Fatalf("fresh replica: %d accounts, total %d", len(s.Records()), got)
	}
	check.Close()

	if err := srv.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	if err := srv.Wait(); err != nil {
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() != 0 {
			t.Fatalf("server after SIGINT: %v", err)
		}
	}
}

func dial(ctx context.Context, t *testing.T, addr string, replica uint64) *client.Client {
	t.Helper()
	c, err := client.Dial(ctx, transport.TCPDialer(nil, wire.Limits{}), addr, client.Options{Replica: replica, Token: token})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// testWriter passes a process's stderr to the test log.
type testWriter struct {
	t      *testing.T
	prefix string
}

func (w *testWriter) Write(p []byte) (int, error) {
	for _, line := range strings.Split(strings.TrimRight(string(p), "\n"), "\n") {
		w.t.Log(w.prefix + line)
	}
	return len(p), nil
}
