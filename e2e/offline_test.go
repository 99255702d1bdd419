package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/weft-stm/weft/client"
	"github.com/weft-stm/weft/stm"
	"github.com/weft-stm/weft/store/pebblestore"
	"github.com/weft-stm/weft/transport"
	"github.com/weft-stm/weft/wire"
)

// offlineEnv makes this test binary the application of TestOfflineApp:
// "addr cachedir phase".
const offlineEnv = "WEFT_E2E_OFFLINE"

// offlineReport is what the application prints at the end of a phase.
type offlineReport struct {
	State    string   `json:"state"`
	Balances []int64  `json:"balances"`
	Pending  int      `json:"pending"`
	Aborted  []uint64 `json:"aborted"` // commit numbers reported by OnAbort
	Failed   []string `json:"failed"`  // handles that did not end acknowledged
}

// offlineMain is the application. Phases:
//   - online: adds 1 to account 1 and waits for the Ack;
//   - offline: adds 10 to account 1 and 5 to account 2 without waiting,
//     prints its report, and waits to be killed;
//   - resume: adds 7 to account 3, waits until every commit is answered
//     (the test starts the server meanwhile), prints its report;
//   - diverged: waits until its share fails (its cached copy refused by a
//     server restored from a backup), notes the error in Failed, then
//     closes and opens the share again and prints its report.
func offlineMain(args string) int {
	f := strings.Fields(args)
	if len(f) != 3 {
		fmt.Fprintln(os.Stderr, "usage: addr cachedir phase")
		return 2
	}
	addr, dir, phase := f[0], f[1], f[2]
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	st, err := pebblestore.Open(dir, pebblestore.Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer st.Close()
	var mu sync.Mutex
	var rep offlineReport
	c, err := client.Dial(ctx, transport.TCPDialer(nil, wire.Limits{}), addr, client.Options{
		Replica: 77, Token: token, Cache: st, MinBackoff: 5 * time.Millisecond, MaxBackoff: 50 * time.Millisecond,
		OnAbort: func(_ string, id wire.CommitID, _ error) {
			mu.Lock()
			rep.Aborted = append(rep.Aborted, id.Seq)
			mu.Unlock()
		}})
	if err != nil {
		fmt.Fprintln(os.Stderr, "dial:", err)
		return 1
	}
	defer c.Close()
	rep.State = c.State().String()
	s, openErr := c.Open(ctx, share, account)
	// With a cache Open shows the cached copy at once, and a refusal of
	// it fails the share after; but one that comes first is Open's error.
	if openErr != nil && !(phase == "diverged" && errors.Is(openErr, client.ErrShareClosed)) {
		fmt.Fprintln(os.Stderr, "open:", openErr)
		return 1
	}
	var recs []*stm.Object
	if s != nil {
		recs = s.Records()
	}
	add := func(n int, d int64) *stm.Handle {
		b := balance.Of(recs[n])
		h, err := s.Run(ctx, func(tx *stm.Tx) error { b.Set(tx, b.Get(tx)+d); return nil })
		if err != nil {
			fmt.Fprintln(os.Stderr, "run:", err)
			os.Exit(1)
		}
		return h
	}
	print := func() int {
		rep.Pending = s.Pending()
		s.View(ctx, func(tx *stm.Tx) error {
			rep.Balances = rep.Balances[:0]
			for _, r := range recs {
				rep.Balances = append(rep.Balances, balance.Of(r).Get(tx))
			}
			return nil
		})
		mu.Lock()
		defer mu.Unlock()
		if err := json.NewEncoder(os.Stdout).Encode(rep); err != nil {
			return 1
		}
		return 0
	}
	switch phase {
	case "online":
		if err := add(0, 1).Wait(ctx); err != nil {
			rep.Failed = append(rep.Failed, err.Error())
		}
		return print()
	case "offline":
		add(0, 10)
		add(1, 5)
		code := print()
		io.Copy(io.Discard, os.Stdin) // until killed
		return code
	case "diverged":
		err := openErr
		if err == nil {
			err = s.WaitVersion(ctx, math.MaxUint64)
			s.Close(ctx)
		}
		rep.Failed = append(rep.Failed, fmt.Sprint(err))
		if s, err = c.Open(ctx, share, account); err != nil {
			fmt.Fprintln(os.Stderr, "open again:", err)
			return 1
		}
		recs = s.Records()
		return print()
	case "resume":
		h := add(2, 7)
		if err := c.Flush(ctx); err != nil {
			fmt.Fprintln(os.Stderr, "flush:", err)
			return 1
		}
		if err := h.Err(); err != nil {
			rep.Failed = append(rep.Failed, err.Error())
		}
		return print()
	}
	return 2
}

// TestOfflineApp: an application with a cache (separate processes: the
// weft binary serving a data directory, and this test binary as the
// application) starts while the server is down, reads its cached share,
// commits, is killed, starts again, commits again; when the server comes
// back every pending commit is sent once, in order, and validated: one
// that another client made stale meanwhile is aborted and reported through
// the application's callback, never merged; the others are acknowledged.
func TestOfflineApp(t *testing.T) {
	ctx := e2eContext(t)
	srv := startBankServer(ctx, t)
	cache := filepath.Join(t.TempDir(), "cache")
	app := func(phase string) (*exec.Cmd, *bufio.Scanner, io.WriteCloser) {
		cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), offlineEnv+"="+srv.addr+" "+cache+" "+phase)
		cmd.Stderr = &testWriter{t: t, prefix: phase + ": "}
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		in, err := cmd.StdinPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
		return cmd, bufio.NewScanner(out), in
	}
	read := func(phase string, lines *bufio.Scanner) offlineReport {
		t.Helper()
		if !lines.Scan() {
			t.Fatalf("%s: no report: %v", phase, lines.Err())
		}
		var rep offlineReport
		if err := json.Unmarshal(lines.Bytes(), &rep); err != nil {
			t.Fatalf("%s: %v: %q", phase, err, lines.Text())
		}
		t.Logf("%s: %+v", phase, rep)
		return rep
	}

	cmd, lines, _ := app("online")
	if rep := read("online", lines); fmt.Sprint(rep.Balances) != "[101 100 100]" || len(rep.Failed) > 0 {
		t.Fatalf("online: %+v", rep)
	}
	cmd.Wait()

	srv.kill() // the server is down
	cmd, lines, _ = app("offline")
	if rep := read("offline", lines); rep.State != "reconnecting" || fmt.Sprint(rep.Balances) != "[111 105 100]" || rep.Pending != 2 {
		t.Fatalf("offline: %+v", rep)
	}
	cmd.Process.Kill() // killed with its commits pending
	cmd.Wait()

	// Another client makes account 2 stale for the application meanwhile.
	srv.start(ctx)
	c, s, err := openBank(ctx, srv.addr, 5)
	if err != nil {
		t.Fatal(err)
	}
	b := balance.Of(s.Records()[1])
	if err := s.Atomically(ctx, func(tx *stm.Tx) error { b.Set(tx, b.Get(tx)+100); return nil }); err != nil {
		t.Fatal(err)
	}
	c.Close()
	srv.kill()

	// Back, still offline: its commits show; one more; then the server.
	cmd, lines, _ = app("resume")
	srv.start(ctx)
	rep := read("resume", lines)
	if len(rep.Failed) > 0 || fmt.Sprint(rep.Aborted) != "[3]" || fmt.Sprint(rep.Balances) != "[111 200 107]" || rep.Pending != 0 {
		t.Fatalf("resume: %+v; want commit 3 (account 2 += 5) aborted, the others applied once", rep)
	}
	cmd.Wait()
	if got := serverBalances(ctx, t, srv.addr); got != "[111 200 107]" {
		t.Fatalf("the server holds %s, want [111 200 107]", got)
	}
}

// TestRestoredBackupApp: the server's data directory is restored from a
// backup (separate processes: the weft binary, and this test binary as
// the application) after an application with a cache saw versions the
// backup lacks and made commits offline; another client commits past the
// cache's version. The application's copy is refused (code diverged), not
// served the new history's changes as a delta: its offline commits are
// reported aborted and never applied, and the share opened again shows
// the server's state.
func TestRestoredBackupApp(t *testing.T) {
	ctx := e2eContext(t)
	srv := startBankServer(ctx, t)
	cache := filepath.Join(t.TempDir(), "cache")
	phase := func(name string) offlineReport {
		t.Helper()
		cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), offlineEnv+"="+srv.addr+" "+cache+" "+name)
		cmd.Stderr = &testWriter{t: t, prefix: name + ": "}
		cmd.Stdin = strings.NewReader("") // the offline phase waits for its end
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		var rep offlineReport
		if err := json.Unmarshal(out, &rep); err != nil {
			t.Fatalf("%s: %v: %q", name, err, out)
		}
		t.Logf("%s: %+v", name, rep)
		return rep
	}

	phase("online") // account 1 += 1, acknowledged
	srv.kill()
	backup := filepath.Join(t.TempDir(), "backup")
	if err := os.CopyFS(backup, os.DirFS(srv.dir)); err != nil {
		t.Fatal(err)
	}
	srv.start(ctx)
	phase("online") // account 1 += 1 again: a version the backup lacks
	srv.kill()
	if rep := phase("offline"); rep.Pending != 2 {
		t.Fatalf("offline: %+v", rep)
	}

	// The data directory is restored from the backup; another client
	// commits past the version the application's cache holds.
	if err := os.RemoveAll(srv.dir); err != nil {
		t.Fatal(err)
	}
	if err := os.CopyFS(srv.dir, os.DirFS(backup)); err != nil {
		t.Fatal(err)
	}
	srv.start(ctx)
	c, s, err := openBank(ctx, srv.addr, 5)
	if err != nil {
		t.Fatal(err)
	}
	b := balance.Of(s.Records()[1])
	for range 3 {
		if err := s.Atomically(ctx, func(tx *stm.Tx) error { b.Set(tx, b.Get(tx)+100); return nil }); err != nil {
			t.Fatal(err)
		}
	}
	c.Close()

	rep := phase("diverged")
	if len(rep.Failed) != 1 || !strings.Contains(rep.Failed[0], "diverged") || fmt.Sprint(rep.Aborted) != "[3 4]" ||
		fmt.Sprint(rep.Balances) != "[101 400 100]" || rep.Pending != 0 {
		t.Fatalf("diverged: %+v; want the share refused (diverged), commits 3 and 4 (made offline) aborted, and the server's [101 400 100]", rep)
	}
	if got := serverBalances(ctx, t, srv.addr); got != "[101 400 100]" {
		t.Fatalf("the server holds %s, want [101 400 100]", got)
	}
}

// startBankServer builds the weft binary, serves a data directory with it,
// and creates accounts 1 to 3 with balance 100 (seedCascade).
func startBankServer(ctx context.Context, t *testing.T) *crashServer {
	t.Helper()
	srv := &crashServer{t: t, bin: filepath.Join(t.TempDir(), "weft"), dir: filepath.Join(t.TempDir(), "data")}
	if out, err := exec.CommandContext(ctx, "go", "build", "-o", srv.bin, "../cmd/weft").CombinedOutput(); err != nil {
		t.Fatalf("building weft: %v\n%s", err, out)
	}
	srv.start(ctx)
	t.Cleanup(srv.kill)
	seedCascade(ctx, t, srv.addr)
	return srv
}

// serverBalances reads the accounts' balances on the server at addr, as a
// new client (replica 6) sees them.
func serverBalances(ctx context.Context, t *testing.T, addr string) string {
	t.Helper()
	c, s, err := openBank(ctx, addr, 6)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var got []int64
	s.View(ctx, func(tx *stm.Tx) error {
		got = got[:0]
		for _, r := range s.Records() {
			got = append(got, balance.Of(r).Get(tx))
		}
		return nil
	})
	return fmt.Sprint(got)
}
