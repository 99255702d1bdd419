package redisstore_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/redis/go-redis/v9"
	"github.com/weft-stm/weft/server"
	"github.com/weft-stm/weft/store/redisstore"
	"github.com/weft-stm/weft/store/storetest"
	"github.com/weft-stm/weft/wire"
)

var _ server.Store = (*redisstore.Store)(nil)

// A redisServer is a redis-server process on a loopback port, with its
// append-only file in a test's directory, fsynced on every write.
type redisServer struct {
	t    *testing.T
	bin  string
	dir  string
	port int
	args []string // more flags for redis-server, after the defaults
	cmd  *exec.Cmd
	out  *bytes.Buffer
	done chan struct{} // closed when the process exited
}

// startRedis starts a redis-server for the test, or skips it when there is
// no redis-server binary.
func startRedis(t *testing.T) *redisServer {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Skip("redis-server not found in PATH: the redis store tests need it (apt-get install redis-server)")
	}
	s := &redisServer{t: t, bin: bin, dir: t.TempDir()}
	// A free port found by listening and closing may be taken by another
	// process first: try a few.
	for range 3 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		s.port = ln.Addr().(*net.TCPAddr).Port
		ln.Close()
		if err = s.start(); err == nil {
			t.Cleanup(s.kill)
			return s
		}
		t.Logf("starting redis-server: %v", err)
	}
	t.Fatal("could not start redis-server")
	return nil
}

// start runs redis-server and returns once it logged that it accepts
// connections (after loading its append-only file), or exited.
func (s *redisServer) start() error {
	args := []string{
		"--port", strconv.Itoa(s.port), "--bind", "127.0.0.1",
		"--appendonly", "yes", "--appendfsync", "always", "--save", "",
		"--dir", s.dir, "--daemonize", "no", "--logfile", ""}
	s.cmd = exec.Command(s.bin, append(args, s.args...)...)
	pr, pw := io.Pipe()
	s.cmd.Stdout, s.cmd.Stderr = pw, pw
	if err := s.cmd.Start(); err != nil {
		return err
	}
	s.done = make(chan struct{})
	s.out = new(bytes.Buffer)
	ready := make(chan struct{})
	var once sync.Once
	var mu sync.Mutex
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			mu.Lock()
			s.out.WriteString(sc.Text() + "\n")
			mu.Unlock()
			if strings.Contains(sc.Text(), "Ready to accept connections") {
				once.Do(func() { close(ready) })
			}
		}
	}()
	go func() {
		s.cmd.Wait()
		pw.Close()
		close(s.done)
	}()
	select {
	case <-ready:
		return nil
	case <-s.done:
		mu.Lock()
		defer mu.Unlock()
		return fmt.Errorf("redis-server exited at start: %s", s.out.String())
	}
}

// kill ends the process at once, as a crash would (SIGKILL).
func (s *redisServer) kill() {
	s.cmd.Process.Kill()
	<-s.done
}

func (s *redisServer) url() string { return fmt.Sprintf("redis://127.0.0.1:%d/0", s.port) }

func (s *redisServer) client(t *testing.T) *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: fmt.Sprintf("127.0.0.1:%d", s.port)})
	t.Cleanup(func() { c.Close() })
	return c
}

// TestConformance runs the suite against one redis-server, each case under
// its own prefix. A crash is a SIGKILL of redis-server and a restart on the
// same append-only file: with appendfsync always every acknowledged change
// is in it.
func TestConformance(t *testing.T) {
	srv := startRedis(t)
	n := 0
	storetest.Run(t, func(t *testing.T) storetest.Backend {
		n++
		prefix := fmt.Sprintf("case%d:", n)
		return storetest.Backend{
			Open: func() (server.Store, error) {
				return redisstore.Open(context.Background(), srv.url(), redisstore.Options{Prefix: prefix})
			},
			Crash: func(s server.Store) error {
				srv.kill()
				s.Close()
				return srv.start()
			},
		}
	})
}

func TestRefuseUnsafeFsync(t *testing.T) {
	srv := startRedis(t)
	admin := srv.client(t)
	ctx := context.Background()
	for _, set := range [][2]string{{"appendfsync", "everysec"}, {"appendonly", "no"}, {"maxmemory-policy", "allkeys-lru"}} {
		prefix := "unsafe-" + set[0] + ":"
		t.Run(set[0]+"="+set[1], func(t *testing.T) {
			if err := admin.ConfigSet(ctx, set[0], set[1]).Err(); err != nil {
				t.Fatal(err)
			}
			defer func() {
				if err := admin.ConfigSet(ctx, "appendonly", "yes").Err(); err != nil {
					t.Fatal(err)
				}
				if err := admin.ConfigSet(ctx, "appendfsync", "always").Err(); err != nil {
					t.Fatal(err)
				}
				if err := admin.ConfigSet(ctx, "maxmemory-policy", "noeviction").Err(); err != nil {
					t.Fatal(err)
				}
			}()
			s, err := redisstore.Open(ctx, srv.url(), redisstore.Options{Prefix: prefix})
			if err == nil {
				s.Close()
				t.Fatal("Open: no error")
			}
			t.Logf("Open: %v", err)
			for _, want := range []string{set[0] + ` "` + set[1] + `"`, "--appendfsync always", strconv.Itoa(srv.port)} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error does not say %q", want)
				}
			}
			// Nothing was written.
			if n, err := admin.Exists(ctx, prefix+"format").Result(); err != nil || n != 0 {
				t.Errorf("refused Open wrote its marker (%d, %v)", n, err)
			}

			var logs bytes.Buffer
			s, err = redisstore.Open(ctx, srv.url(), redisstore.Options{
				Prefix: prefix, AllowUnsafeFsync: true,
				Logger: slog.New(slog.NewTextHandler(&logs, nil)),
			})
			if err != nil {
				t.Fatalf("Open with the override: %v", err)
			}
			s.Close()
			t.Logf("warning: %s", logs.String())
			if !strings.Contains(logs.String(), "level=WARN") || !strings.Contains(logs.String(), "NOT DURABLE") {
				t.Errorf("Open with the override logged %q, want a warning", logs.String())
			}
		})
	}
}

func TestRefuseForeign(t *testing.T) {
	srv := startRedis(t)
	admin := srv.client(t)
	ctx := context.Background()
	admin.Set(ctx, "app:user:1", "someone else's", 0)
	admin.Set(ctx, "old:format", "weft-store v99", 0)
	for prefix, want := range map[string]string{"app:": "not a Weft store", "old:": "weft-store v99"} {
		s, err := redisstore.Open(ctx, srv.url(), redisstore.Options{Prefix: prefix})
		if err == nil {
			s.Close()
			t.Errorf("Open with prefix %q: no error", prefix)
			continue
		}
		t.Logf("Open: %v", err)
		if !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), prefix) {
			t.Errorf("Open with prefix %q: %v, want %q and the prefix in it", prefix, err, want)
		}
	}
	if n, _ := admin.DBSize(ctx).Result(); n != 2 {
		t.Errorf("refused Opens changed the keys: %d, want 2", n)
	}
	// A prefix whose glob characters must not match other keys.
	admin.Set(ctx, "a1:x", "x", 0)
	s, err := redisstore.Open(ctx, srv.url(), redisstore.Options{Prefix: "a?:"})
	if err != nil {
		t.Fatalf("Open with prefix \"a?:\": %v", err)
	}
	s.Close()
}

// TestServerDown: when Redis goes away, waits fail, the store stays failed,
// and what was acknowledged is there after Redis restarts.
func TestServerDown(t *testing.T) {
	srv := startRedis(t)
	ctx := context.Background()
	s, err := redisstore.Open(ctx, srv.url(), redisstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for v := uint64(1); v <= 3; v++ {
		wait, err := s.Append("s", wire.Change{Version: v})
		if err == nil {
			err = wait()
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	srv.kill()
	wait, err := s.Append("s", wire.Change{Version: 4})
	if err == nil {
		err = wait()
	}
	if err == nil {
		t.Fatal("Append with Redis down: no error")
	}
	t.Logf("Append with Redis down: %v", err)
	if err := srv.start(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Append("s", wire.Change{Version: 4}); err == nil {
		t.Error("Append after a failure: no error")
	}
	if err := s.Load(func(string, uint64, []wire.Object, []wire.Change) error { return nil }); err == nil {
		t.Error("Load after a failure: no error")
	}
	s.Close()
	s, err = redisstore.Open(ctx, srv.url(), redisstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var got []uint64
	if err := s.Load(func(_ string, _ uint64, _ []wire.Object, chs []wire.Change) error {
		for _, c := range chs {
			got = append(got, c.Version)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 {
		t.Errorf("after the restart: versions %v, want [1 2 3]", got)
	}
}

// appendOne appends version v to share "s" and waits for it.
func appendOne(s *redisstore.Store, v uint64) error {
	wait, err := s.Append("s", wire.Change{Version: v})
	if err == nil {
		err = wait()
	}
	return err
}

// TestFsyncRecheckedAtRuntime: Open's check of appendfsync does not hold
// forever (CONFIG SET at runtime): a commit Redis may not have synced must
// not be acknowledged, unless the unsafe-fsync override is set.
func TestFsyncRecheckedAtRuntime(t *testing.T) {
	srv := startRedis(t)
	admin := srv.client(t)
	ctx := context.Background()
	s, err := redisstore.Open(ctx, srv.url(), redisstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := appendOne(s, 1); err != nil {
		t.Fatal(err)
	}
	if err := admin.ConfigSet(ctx, "appendfsync", "everysec").Err(); err != nil {
		t.Fatal(err)
	}
	err = appendOne(s, 2)
	t.Logf("Append after CONFIG SET appendfsync everysec: %v", err)
	if err == nil || !strings.Contains(err.Error(), "appendfsync") {
		t.Errorf("Append after CONFIG SET appendfsync everysec: %v, want an error saying so", err)
	}

	// With the override, the operator accepted the risk.
	u, err := redisstore.Open(ctx, srv.url(), redisstore.Options{Prefix: "unsafe:", AllowUnsafeFsync: true, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	if err := appendOne(u, 1); err != nil {
		t.Errorf("Append with the override: %v", err)
	}
}

// TestRedisRestartedUnsafe: go-redis reconnects silently when Redis
// restarts, so what Open checked must be checked again on each new
// connection: a Redis restarted without its append-only file, or empty
// (the store's marker gone), fails the commits rather than acknowledge
// them into a store that will not be there.
func TestRedisRestartedUnsafe(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"appendonly no", []string{"--appendonly", "no"}, "appendonly"},
		{"empty", nil, "marker"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := startRedis(t)
			ctx := context.Background()
			s, err := redisstore.Open(ctx, srv.url(), redisstore.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if err := appendOne(s, 1); err != nil {
				t.Fatal(err)
			}
			srv.kill()
			srv.dir = t.TempDir() // its append-only file is not there
			srv.args = tc.args
			if err := srv.start(); err != nil {
				t.Fatal(err)
			}
			err = appendOne(s, 2)
			t.Logf("Append after the restart: %v", err)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Append after a restart with %s: %v, want an error about %s", tc.name, err, tc.want)
			}
		})
	}
}

// TestSharesSetLost: a share whose name is missing from the shares set
// (the set deleted or evicted) would load as no share at all, and its next
// commits would be appended to its old change list. Load refuses instead,
// naming the keys.
func TestSharesSetLost(t *testing.T) {
	srv := startRedis(t)
	admin := srv.client(t)
	ctx := context.Background()
	s, err := redisstore.Open(ctx, srv.url(), redisstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := appendOne(s, 1); err != nil {
		t.Fatal(err)
	}
	if err := s.Checkpoint("cp", 3, nil); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if err := admin.SRem(ctx, "weft:shares", "s", "cp").Err(); err != nil {
		t.Fatal(err)
	}
	s, err = redisstore.Open(ctx, srv.url(), redisstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	err = s.Load(func(name string, _ uint64, _ []wire.Object, _ []wire.Change) error {
		t.Errorf("Load returned share %q", name)
		return nil
	})
	t.Logf("Load: %v", err)
	if err == nil || !strings.Contains(err.Error(), "corrupt") || !strings.Contains(err.Error(), "weft:c:s") || !strings.Contains(err.Error(), "weft:k:cp") {
		t.Errorf("Load without the shares set: %v, want a corruption error naming weft:c:s and weft:k:cp", err)
	}
}

// TestConnectionErrors: a Redis that cannot be reached, or that wants a
// password Weft lacks, is reported as that, not as a durability refusal.
func TestConnectionErrors(t *testing.T) {
	ctx := context.Background()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()
	srv := startRedis(t)
	srv.kill()
	srv.args = []string{"--requirepass", "s3cret"}
	if err := srv.start(); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, url, want string }{
		{"unreachable", "redis://" + closed + "/0", "cannot connect"},
		{"no password", srv.url(), "authentication"},
		{"wrong password", fmt.Sprintf("redis://:wrong@127.0.0.1:%d/0", srv.port), "authentication"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := redisstore.Open(ctx, tc.url, redisstore.Options{})
			if err == nil {
				s.Close()
				t.Fatal("Open: no error")
			}
			t.Logf("Open: %v", err)
			if !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "refusing") || strings.Contains(err.Error(), "s3cret") {
				t.Errorf("Open: %v, want %q and no durability refusal", err, tc.want)
			}
		})
	}
	s, err := redisstore.Open(ctx, fmt.Sprintf("redis://:s3cret@127.0.0.1:%d/0", srv.port), redisstore.Options{})
	if err != nil {
		t.Fatalf("Open with the password: %v", err)
	}
	s.Close()
}
