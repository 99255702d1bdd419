package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/weft-stm/weft/client"
	"github.com/weft-stm/weft/stm"
	"github.com/weft-stm/weft/transport"
	"github.com/weft-stm/weft/wire"
)

// The cascade of client/spec_test.go's TestCascade, over TCP against the
// weft binary. Accounts 1 to 3 hold 100. Client X reaches the server
// through a proxy that holds what the server sends it, so X does not see Y
// commit acct1 += 1. X then runs, without waiting: A: acct1 += 10; B:
// acct2 = acct1 + 5 (reading A's pending write); C: acct3 += 7. The server
// rejects A (its read of acct1 is stale), B goes with A, C is
// acknowledged; once the proxy lets the verdicts through, X and Y hold
// acct1 101, acct2 100, acct3 107.

var (
	speculative = []int64{110, 115, 107} // X before the verdicts
	final       = []int64{101, 100, 107}
)

// cascadeEnv makes this test binary the client X of
// TestCascadeAcrossProcesses (see TestMain); its value is the address.
const cascadeEnv = "WEFT_E2E_CASCADE"

// Replica ids: the seeding client, Y and X.
const seedReplica, yReplica, xReplica = 1, 2, 3

// TestCascadeTCP: X and Y are clients of this process.
func TestCascadeTCP(t *testing.T) {
	ctx := e2eContext(t)
	addr := startWeft(ctx, t)
	seedCascade(ctx, t, addr)
	px := startProxy(t, addr)
	x := openShare(ctx, t, px.Addr(), xReplica)
	y := openShare(ctx, t, addr, yReplica)

	px.Hold()
	commitY(ctx, t, y)
	hs, err := cascade(ctx, x)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := balances(ctx, x); err != nil || !slices.Equal(got, speculative) {
		t.Fatalf("X before the verdicts: %v %v, want %v", got, err, speculative)
	}
	px.Release()

	if err := checkVerdicts(ctx, hs); err != nil {
		t.Fatal(err)
	}
	for _, s := range []*client.Share{x, y} {
		if err := checkFinal(ctx, s, hs[2].Version()); err != nil {
			t.Fatal(err)
		}
	}
}

// TestCascadeAcrossProcesses: X is a client process (cascadeMain), behind
// a proxy of this process; Y is a client of this process. They follow a
// script over X's stdin and stdout: X says "ready" once the share is open;
// the test holds the proxy, has Y commit and says "go <Y's version>"; X
// runs A, B and C and says "sent"; the test releases the proxy; X checks
// the verdicts and its final state and reports them in JSON.
func TestCascadeAcrossProcesses(t *testing.T) {
	ctx := e2eContext(t)
	addr := startWeft(ctx, t)
	seedCascade(ctx, t, addr)
	px := startProxy(t, addr)
	y := openShare(ctx, t, addr, yReplica)

	// CommandContext kills X when ctx ends, which ends the reads of its
	// stdout below: no wait is unbounded.
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), cascadeEnv+"="+px.Addr())
	cmd.Stderr = &testWriter{t: t, prefix: "X: "}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	lines := bufio.NewScanner(stdout)
	expect := func(want string) {
		t.Helper()
		if !lines.Scan() || lines.Text() != want {
			t.Fatalf("X said %q (%v), want %q", lines.Text(), lines.Err(), want)
		}
	}

	expect("ready")
	px.Hold()
	v := commitY(ctx, t, y)
	if _, err := fmt.Fprintf(stdin, "go %d\n", v); err != nil {
		t.Fatal(err)
	}
	expect("sent")
	px.Release()

	var rep cascadeReport
	if !lines.Scan() {
		t.Fatalf("X reported nothing: %v", lines.Err())
	}
	if err := json.Unmarshal(lines.Bytes(), &rep); err != nil {
		t.Fatalf("X's report %q: %v", lines.Text(), err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("X: %v (report %+v)", err, rep)
	}
	if !slices.Equal(rep.Speculative, speculative) || !slices.Equal(rep.Final, final) || rep.Version <= v {
		t.Fatalf("X reported %+v, want speculative %v, final %v, C after version %d", rep, speculative, final, v)
	}
	if err := checkFinal(ctx, y, rep.Version); err != nil {
		t.Fatal(err)
	}
}

// cascadeReport is what X prints when it is done.
type cascadeReport struct {
	Speculative []int64 `json:"speculative"` // the balances before the verdicts
	Final       []int64 `json:"final"`       // the balances after them
	Version     uint64  `json:"version"`     // the version C was acknowledged with
}

// cascadeMain is client X of TestCascadeAcrossProcesses, connecting to
// addr. It exits with 1 if a check fails. The test kills it if it stops
// answering; a read of stdin has no deadline of its own.
func cascadeMain(addr string) int {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	err := func() error {
		c, x, err := openBank(ctx, addr, xReplica)
		if err != nil {
			return err
		}
		defer c.Close()
		fmt.Println("ready")
		var v uint64
		in := bufio.NewScanner(os.Stdin)
		if !in.Scan() {
			return fmt.Errorf("no go: %v", in.Err())
		}
		if _, err := fmt.Sscanf(in.Text(), "go %d", &v); err != nil {
			return fmt.Errorf("%q: %w", in.Text(), err)
		}
		hs, err := cascade(ctx, x)
		if err != nil {
			return err
		}
		var rep cascadeReport
		if rep.Speculative, err = balances(ctx, x); err != nil {
			return err
		}
		fmt.Println("sent")
		if err := checkVerdicts(ctx, hs); err != nil {
			return err
		}
		rep.Version = hs[2].Version()
		if err := x.WaitVersion(ctx, v); err != nil {
			return err
		}
		if rep.Final, err = balances(ctx, x); err != nil {
			return err
		}
		if err := json.NewEncoder(os.Stdout).Encode(rep); err != nil {
			return err
		}
		if !slices.Equal(rep.Speculative, speculative) || !slices.Equal(rep.Final, final) {
			return fmt.Errorf("balances %v then %v, want %v then %v", rep.Speculative, rep.Final, speculative, final)
		}
		return nil
	}()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// cascade runs A, B and C on x, without waiting for their verdicts.
func cascade(ctx context.Context, x *client.Share) ([]*stm.Handle, error) {
	a := x.Records()
	if len(a) != 3 {
		return nil, fmt.Errorf("%d accounts, want 3", len(a))
	}
	b1, b2, b3 := balance.Of(a[0]), balance.Of(a[1]), balance.Of(a[2])
	var hs []*stm.Handle
	for _, fn := range []func(tx *stm.Tx) error{
		func(tx *stm.Tx) error { b1.Set(tx, b1.Get(tx)+10); return nil },
		func(tx *stm.Tx) error { b2.Set(tx, b1.Get(tx)+5); return nil },
		func(tx *stm.Tx) error { b3.Set(tx, b3.Get(tx)+7); return nil },
	} {
		h, err := x.Run(ctx, fn)
		if err != nil {
			return nil, err
		}
		hs = append(hs, h)
	}
	return hs, nil
}

// checkVerdicts waits for A, B and C's verdicts: A conflicts with Y's
// commit, B is aborted with A, C is acknowledged.
func checkVerdicts(ctx context.Context, hs []*stm.Handle) error {
	var errs []error
	for i, want := range []wire.Code{wire.CodeConflict, wire.CodeDependency} {
		var ae *client.AbortError
		if err := hs[i].Wait(ctx); !errors.As(err, &ae) || ae.Code != want {
			errs = append(errs, fmt.Errorf("%c: %v, want an abort with %v", 'A'+i, err, want))
		}
	}
	if err := hs[2].Wait(ctx); err != nil {
		errs = append(errs, fmt.Errorf("C: %v, want an ack", err))
	}
	return errors.Join(errs...)
}

// checkFinal waits until s holds version v, then checks its balances.
func checkFinal(ctx context.Context, s *client.Share, v uint64) error {
	if err := s.WaitVersion(ctx, v); err != nil {
		return err
	}
	got, err := balances(ctx, s)
	if err == nil && !slices.Equal(got, final) {
		err = fmt.Errorf("balances %v at version %d, want %v", got, s.Version(), final)
	}
	return err
}

// balances returns the balances of the share's accounts, in id order.
func balances(ctx context.Context, s *client.Share) ([]int64, error) {
	var out []int64
	accts := s.Records()
	err := s.View(ctx, func(tx *stm.Tx) error {
		out = out[:0]
		for _, a := range accts {
			out = append(out, balance.Of(a).Get(tx))
		}
		return nil
	})
	return out, err
}

// commitY has Y add 1 to acct1 and returns once it is acknowledged, with
// Y's version then.
func commitY(ctx context.Context, t *testing.T, y *client.Share) uint64 {
	t.Helper()
	b := balance.Of(y.Records()[0])
	if err := y.Atomically(ctx, func(tx *stm.Tx) error { b.Set(tx, b.Get(tx)+1); return nil }); err != nil {
		t.Fatal(err)
	}
	return y.Version()
}

// seedCascade creates accounts 1 to 3 with balance 100, the way
// TestBankAcrossProcesses creates its accounts. Created in one commit by
// one replica, they have ids in that order.
func seedCascade(ctx context.Context, t *testing.T, addr string) {
	t.Helper()
	c, s, err := openBank(ctx, addr, seedReplica)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := s.Atomically(ctx, func(tx *stm.Tx) error {
		for range 3 {
			balance.Of(s.Create(tx, account)).Set(tx, 100)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

// openShare opens the bank at addr as replica, for the rest of the test.
func openShare(ctx context.Context, t *testing.T, addr string, replica uint64) *client.Share {
	t.Helper()
	c, s, err := openBank(ctx, addr, replica)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return s
}

// openBank dials addr and opens the bank. The client does not reconnect:
// a connection that fails shows as an error rather than being resent
// over quietly.
func openBank(ctx context.Context, addr string, replica uint64) (*client.Client, *client.Share, error) {
	c, err := client.Dial(ctx, transport.TCPDialer(nil, wire.Limits{}), addr,
		client.Options{Replica: replica, Token: token, NoReconnect: true})
	if err != nil {
		return nil, nil, err
	}
	s, err := c.Open(ctx, share, account)
	if err != nil {
		c.Close()
		return nil, nil, err
	}
	return c, s, nil
}

func e2eContext(t *testing.T) context.Context {
	if testing.Short() {
		t.Skip("builds the weft binary and starts processes")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// startWeft builds the weft binary, starts it as a server until the test
// ends, and returns the address it listens on. The server admits clients
// with the token, or as args (flags of weft serve) say.
func startWeft(ctx context.Context, t *testing.T, args ...string) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "weft")
	if out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, "../cmd/weft").CombinedOutput(); err != nil {
		t.Fatalf("building weft: %v\n%s", err, out)
	}
	if len(args) == 0 {
		args = []string{"-token", token}
	}
	srv := exec.CommandContext(ctx, bin, append([]string{"serve", "-listen", "127.0.0.1:0"}, args...)...)
	stdout, err := srv.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	srv.Stderr = &testWriter{t: t, prefix: "server: "}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { // stop it, and let its output copiers finish
		_ = srv.Process.Kill()
		_ = srv.Wait()
	})
	lines := bufio.NewScanner(stdout)
	for lines.Scan() {
		if _, rest, ok := strings.Cut(lines.Text(), "listening on "); ok {
			addr, _, _ := strings.Cut(rest, " ")
			go io.Copy(io.Discard, stdout) // keep draining it
			return addr
		}
	}
	t.Fatalf("the server printed no address: %v", lines.Err())
	return ""
}
