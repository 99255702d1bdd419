package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestDemo runs the networked demo for a short while: a server on a
// loopback port, clients over TCP creating accounts then transferring. Its
// summary must say the invariant held everywhere.
func TestDemo(t *testing.T) {
	var out, errb syncBuffer
	if code := run([]string{"demo", "-d", "300ms", "-clients", "3", "-accounts", "20"}, &out, &errb); code != 0 {
		t.Fatalf("weft demo: exit %d\nstdout:\n%s\nstderr:\n%s", code, out.String(), errb.String())
	}
	got := out.String()
	sum := regexp.MustCompile(`(?m)^done: (\d+) transfers committed .*, \d+ audits all saw total 20000, .*; all 6 replicas converged to the server's version (\d+)$`)
	m := sum.FindStringSubmatch(got)
	if m == nil {
		t.Fatalf("no summary saying the invariant held in:\n%s", got)
	}
	if m[1] == "0" {
		t.Errorf("no transfer committed:\n%s", got)
	}
	for _, want := range []string{"20 accounts created by 3 clients", "weft demo: server shut down"} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q:\n%s", want, got)
		}
	}
	if errb.String() != "" {
		t.Errorf("stderr:\n%s", errb.String())
	}
}

// TestDemoKeptStore: a second run on the store a first one kept (-data)
// goes on with its accounts and their total.
func TestDemoKeptStore(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	for i, want := range []string{"20 accounts created", "20 accounts kept in the store"} {
		var out, errb syncBuffer
		if code := run([]string{"demo", "-data", dir, "-d", "200ms", "-clients", "2", "-accounts", "20"}, &out, &errb); code != 0 {
			t.Fatalf("run %d: exit %d\nstdout:\n%s\nstderr:\n%s", i+1, code, out.String(), errb.String())
		}
		for _, w := range []string{want, "audits all saw total 20000", "total 20000, as acknowledged"} {
			if !strings.Contains(out.String()+errb.String(), w) {
				t.Errorf("run %d: output lacks %q:\n%s%s", i+1, w, out.String(), errb.String())
			}
		}
	}
}

// TestDemoLocal runs the core-only demo behind -local.
func TestDemoLocal(t *testing.T) {
	var out, errb syncBuffer
	if code := run([]string{"demo", "-local", "-d", "100ms", "-accounts", "10", "-tellers", "2"}, &out, &errb); code != 0 {
		t.Fatalf("weft demo -local: exit %d\nstdout:\n%s\nstderr:\n%s", code, out.String(), errb.String())
	}
	if !strings.Contains(out.String(), "audits all saw total 10000") {
		t.Fatalf("no summary saying the invariant held in:\n%s", out.String())
	}
}

// TestDemoFlags: bad flags are refused before anything starts.
func TestDemoFlags(t *testing.T) {
	for _, args := range [][]string{{"-clients", "0"}, {"-accounts", "1"}, {"extra"}} {
		var out, errb syncBuffer
		if code := run(append([]string{"demo"}, args...), &out, &errb); code != 1 {
			t.Errorf("weft demo %q: exit %d, want 1", args, code)
		}
	}
}

// TestDemoInterrupted: SIGINT during the transfers of an hour-long demo
// ends them there; the checks, the server's shutdown and the removal of
// its temporary store still run, and it exits 0.
func TestDemoInterrupted(t *testing.T) {
	var errb syncBuffer
	out := &signalWriter{on: "commits/s", seen: make(chan struct{})}
	code := make(chan int, 1)
	go func() { code <- run([]string{"demo", "-d", "1h", "-clients", "2", "-accounts", "20"}, out, &errb) }()
	select {
	case <-out.seen: // transferring: the demo catches the signal from now on
	case c := <-code:
		t.Fatalf("exit %d before the transfers\nstdout:\n%s\nstderr:\n%s", c, out.String(), errb.String())
	}
	if err := syscall.Kill(os.Getpid(), syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	if c := <-code; c != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", c, out.String(), errb.String())
	}
	got := out.String()
	for _, want := range []string{"interrupted: the transfers end here", "audits all saw total 20000", "weft demo: server shut down", "as acknowledged"} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q:\n%s", want, got)
		}
	}
	m := regexp.MustCompile(`shares kept in (\S+) \(Pebble\)`).FindStringSubmatch(got)
	if m == nil {
		t.Fatalf("no store directory in:\n%s", got)
	}
	if _, err := os.Stat(m[1]); !os.IsNotExist(err) {
		t.Errorf("the temporary store %s is still there: %v", m[1], err)
	}
}

// signalWriter is a syncBuffer that closes seen once on is written.
type signalWriter struct {
	syncBuffer
	on   string
	seen chan struct{}
	once bool
}

func (w *signalWriter) Write(p []byte) (int, error) {
	n, err := w.syncBuffer.Write(p)
	w.mu.Lock()
	if !w.once && strings.Contains(w.b.String(), w.on) {
		w.once = true
		close(w.seen)
	}
	w.mu.Unlock()
	return n, err
}

// TestDemoInterruptedSetup: SIGINT while the accounts are being created
// (many: it takes seconds) stops the setup at once; the demo fails saying
// so, after shutting its server down and removing its temporary store. A
// user seeing the signal ignored would send a second one, which kills,
// and leaves the store in the temporary directory.
func TestDemoInterruptedSetup(t *testing.T) {
	var errb syncBuffer
	out := &signalWriter{on: "(Pebble)", seen: make(chan struct{})}
	code := make(chan int, 1)
	go func() {
		code <- run([]string{"demo", "-d", "1h", "-clients", "2", "-accounts", "1000000"}, out, &errb)
	}()
	select {
	case <-out.seen: // setting up: the demo catches the signal from now on
	case c := <-code:
		t.Fatalf("exit %d before the setup\nstdout:\n%s\nstderr:\n%s", c, out.String(), errb.String())
	}
	if err := syscall.Kill(os.Getpid(), syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	if c := <-code; c != 1 || !strings.Contains(errb.String(), "interrupted during the setup") {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", c, out.String(), errb.String())
	}
	got := out.String()
	if strings.Contains(got, "accounts created") {
		t.Errorf("the setup went on after the signal:\n%s", got)
	}
	m := regexp.MustCompile(`shares kept in (\S+) \(Pebble\)`).FindStringSubmatch(got)
	if m == nil {
		t.Fatalf("no store directory in:\n%s", got)
	}
	if _, err := os.Stat(m[1]); !os.IsNotExist(err) {
		t.Errorf("the temporary store %s is still there: %v", m[1], err)
	}
}

// TestDemoLongerThanTimeout: transfers that last longer than the bound of
// the demo's steps (demoTimeout, 30 s; shortened here) go on until -d,
// and the checks after them pass: that bound counted from the start had
// the transfers stop silently at 30 s, and the checks fail, for every
// -d above it (an hour-long demo ended by Ctrl-C, say).
func TestDemoLongerThanTimeout(t *testing.T) {
	defer func(d time.Duration) { demoTimeout = d }(demoTimeout)
	demoTimeout = 2 * time.Second
	var out, errb syncBuffer
	if code := run([]string{"demo", "-d", "4s", "-clients", "2", "-accounts", "20"}, &out, &errb); code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out.String(), errb.String())
	}
	rates := regexp.MustCompile(`(?m)^ +(\d+) commits/s`).FindAllStringSubmatch(out.String(), -1)
	if len(rates) < 3 || rates[len(rates)-1][1] == "0" {
		t.Errorf("the transfers did not last -d:\n%s", out.String())
	}
	if !strings.Contains(out.String(), "as acknowledged") {
		t.Errorf("no restart check in:\n%s", out.String())
	}
}
