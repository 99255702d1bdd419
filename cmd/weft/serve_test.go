package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"github.com/weft-stm/weft/store/pebblestore"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/weft-stm/weft/transport"
	"github.com/weft-stm/weft/wire"
)

// syncBuffer is a bytes.Buffer safe for the server's and the test's
// goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestServe(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		tls  *tls.Config
	}{
		{"tcp", nil, nil},
		{"dev-tls", []string{"-dev-tls"}, &tls.Config{InsecureSkipVerify: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			args := append([]string{"-listen", "127.0.0.1:0", "-token", "s3cret"}, tc.args...)
			addr, errc, stdout, stderr := startServe(ctx, t, args)

			dctx, dcancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer dcancel()
			hello := func(token string) (transport.Conn, wire.Message) {
				return dialHello(dctx, t, addr, tc.tls, token, 1)
			}
			if _, m := hello("wrong"); m.(*wire.Error).Code != wire.CodeAuth {
				t.Fatalf("wrong token: %+v", m)
			}
			c, m := hello("s3cret")
			if _, ok := m.(*wire.Welcome); !ok {
				t.Fatalf("got %+v", m)
			}
			c.Send(dctx, &wire.OpenShare{Share: 1, Name: "s"})
			if op, err := c.Recv(dctx); err != nil || op.(*wire.Opened).Access != wire.AccessWrite {
				t.Fatalf("open: %+v %v", op, err)
			}

			cancel() // as SIGINT does
			if err := <-errc; err != nil {
				t.Fatalf("serve: %v\n%s", err, stderr.String())
			}
			for {
				m, err := c.Recv(dctx)
				if err != nil {
					t.Fatalf("no shutdown error: %v", err)
				}
				if e, ok := m.(*wire.Error); ok {
					if e.Code != wire.CodeShutdown {
						t.Fatalf("error %v", e)
					}
					break
				}
			}
			out := stdout.String()
			if !strings.Contains(out, "listening on "+addr) || !strings.Contains(out, "shutting down") {
				t.Errorf("stdout: %q", out)
			}
		})
	}
}

// startServe runs serve with args until ctx ends and returns the address
// it listens on, the channel of its result, and its output.
func startServe(ctx context.Context, t *testing.T, args []string) (string, chan error, *syncBuffer, *syncBuffer) {
	t.Helper()
	var stdout, stderr syncBuffer
	ready := make(chan string, 1)
	errc := make(chan error, 1)
	go func() { errc <- serve(ctx, args, &stdout, &stderr, ready) }()
	select {
	case addr := <-ready:
		return addr, errc, &stdout, &stderr
	case err := <-errc:
		t.Fatalf("serve: %v\n%s", err, stderr.String())
		return "", nil, nil, nil
	}
}

// dialHello connects to addr, says Hello with token as replica, and
// returns the connection and the server's answer.
func dialHello(ctx context.Context, t *testing.T, addr string, cfg *tls.Config, token string, replica uint64) (transport.Conn, wire.Message) {
	t.Helper()
	c, err := transport.DialTCP(ctx, addr, cfg, wire.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if err := c.Send(ctx, &wire.Hello{MinVersion: wire.ProtocolVersion, MaxVersion: wire.ProtocolVersion, Replica: replica, Token: token}); err != nil {
		t.Fatal(err)
	}
	m, err := c.Recv(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return c, m
}

func TestServeFlags(t *testing.T) {
	for _, args := range [][]string{
		{"-dev-tls", "-tls-cert", "a", "-tls-key", "b"},
		{"-tls-cert", "a"},
		{"extra"},
		{"-listen", "127.0.0.1:99999"},
		{"-shutdown-timeout", "-5s"},
		{"-allow-unsafe-fsync"},
		{"-max-sessions", "-1"},
		{"-heartbeat", "-1s"},
	} {
		var out bytes.Buffer
		if err := serve(context.Background(), args, &out, &out, nil); err == nil {
			t.Errorf("%q: no error", args)
		}
	}
}

// TestServeSessionFlags: -heartbeat is announced in Welcome, and a
// client beyond -max-sessions is told to try again later.
func TestServeSessionFlags(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	addr, _, _, _ := startServe(ctx, t, []string{"-listen", "127.0.0.1:0", "-max-sessions", "1", "-heartbeat", "2s"})
	dctx, dcancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer dcancel()
	if _, m := dialHello(dctx, t, addr, nil, "", 1); m.(*wire.Welcome).HeartbeatMillis != 2000 {
		t.Fatalf("first session: %+v", m)
	}
	if _, m := dialHello(dctx, t, addr, nil, "", 2); m.(*wire.Error).Code != wire.CodeLimit {
		t.Fatalf("second session: %+v", m)
	}
}

// TestServeConfig: a -config file's tokens and per-share permissions are
// enforced: a feed everyone reads and one principal writes.
func TestServeConfig(t *testing.T) {
	file := filepath.Join(t.TempDir(), "weft.json")
	conf := `{
	  "tokens": {"feeder-token": "feeder", "reader-token": "reader"},
	  "permissions": {"quotes": {"feeder": "write", "*": "read"}, "*": {"feeder": "write"}},
	  "shares": ["quotes"], "no_create": true
	}`
	if err := os.WriteFile(file, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	addr, errc, _, stderr := startServe(ctx, t, []string{"-listen", "127.0.0.1:0", "-config", file})
	dctx, dcancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer dcancel()
	session := func(token string, replica uint64) (transport.Conn, wire.Message) {
		return dialHello(dctx, t, addr, nil, token, replica)
	}
	recv := func(c transport.Conn) wire.Message {
		m, err := c.Recv(dctx)
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	if _, m := session("", 1); m.(*wire.Error).Code != wire.CodeAuth {
		t.Fatalf("no token: %+v", m)
	}
	// open returns the answer to an OpenShare, skipping the transfer.
	open := func(c transport.Conn, h wire.ShareHandle, name string) wire.Message {
		c.Send(dctx, &wire.OpenShare{Share: h, Name: name})
		m := recv(c)
		if op, ok := m.(*wire.Opened); ok && op.Transfer == wire.TransferSnapshot {
			for chunk := recv(c).(*wire.SnapshotChunk); chunk.More; chunk = recv(c).(*wire.SnapshotChunk) {
			}
		}
		return m
	}
	feeder, _ := session("feeder-token", 2)
	reader, _ := session("reader-token", 3)
	if op := open(feeder, 1, "quotes"); op.(*wire.Opened).Access != wire.AccessWrite {
		t.Fatalf("feeder opened %+v", op)
	}
	if op := open(reader, 1, "quotes"); op.(*wire.Opened).Access != wire.AccessRead {
		t.Fatalf("reader opened %+v", op)
	}
	if sc := open(reader, 2, "other"); sc.(*wire.ShareClosed).Code != wire.CodeForbidden {
		t.Fatalf("reader opened a share it has no access to: %+v", sc)
	}
	if sc := open(feeder, 2, "other"); sc.(*wire.ShareClosed).Code != wire.CodeNotFound {
		t.Fatalf("feeder opened a share not declared: %+v", sc)
	}
	cancel()
	if err := <-errc; err != nil {
		t.Fatalf("serve: %v\n%s", err, stderr.String())
	}
}

// TestServeConfigRefused: a config that says something it cannot mean
// stops the server with an error naming the file and the field.
func TestServeConfigRefused(t *testing.T) {
	dir := t.TempDir()
	// Ended: a config wrongly accepted makes serve start and stop at
	// once, with no error, instead of serving for good.
	ended, cancel := context.WithCancel(context.Background())
	cancel()
	for _, tc := range []struct{ conf, want string }{
		{`{"default_acess": "write"}`, "unknown field"},
		{`{"permissions": {"s": {"bob": "admin"}}}`, `permissions["s"]["bob"]: access "admin"`},
		{`{"default_access": "rw"}`, "default_access"},
		{`{"tokens": {"t": "p"}} {}`, "more than one"},
		{`{"tokens": [`, "unexpected EOF"},
		// encoding/json alone keeps the last of duplicate keys (a token
		// given twice gets the second principal), matches keys whatever
		// their case, and takes empty tokens for no authentication.
		{`{"tokens": {"t": "alice", "t": "admin"}}`, `key "t" appears twice in tokens`},
		{`{"tokens": {"t": "alice"}, "tokens": {"t": "admin"}}`, `key "tokens" appears twice`},
		{`{"permissions": {"s": {"bob": "read", "bob": "write"}}}`, `key "bob" appears twice in permissions["s"]`},
		{`{"shares": ["a"], "permissions": {"s": {}, "s": {"*": "write"}}}`, `key "s" appears twice in permissions`},
		{`{"TOKENS": {"t": "alice"}}`, `unknown key "TOKENS"`},
		{`{"No_Create": true}`, `unknown key "No_Create"`},
		{`{"tokens": {}}`, `leave "tokens" out`},
		{`{"tokens": null}`, `leave "tokens" out`},
	} {
		file := filepath.Join(dir, "weft.json")
		if err := os.WriteFile(file, []byte(tc.conf), 0o600); err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		err := serve(ended, []string{"-listen", "127.0.0.1:0", "-config", file}, &out, &out, nil)
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), file) {
			t.Errorf("%s: %v, want an error naming %s and saying %q", tc.conf, err, file, tc.want)
		}
	}
	var out bytes.Buffer
	if err := serve(context.Background(), []string{"-config", "x", "-token", "t"}, &out, &out, nil); err == nil {
		t.Error("-config with -token: no error")
	}
}

// TestServeInterruptedOpen: opening the store can hang (Pebble waits
// forever for a flush on a full disk); SIGTERM must still end serve, with
// an error saying the store did not open, rather than be ignored.
func TestServeInterruptedOpen(t *testing.T) {
	called := make(chan struct{})
	release := make(chan struct{})
	defer close(release)
	old := openPebble
	openPebble = func(dir string, opts pebblestore.Options) (*pebblestore.Store, error) {
		close(called)
		<-release // hangs as Open on a full disk does
		return nil, errors.New("released")
	}
	defer func() { openPebble = old }()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout, stderr syncBuffer
	errc := make(chan error, 1)
	dir := filepath.Join(t.TempDir(), "data")
	go func() { errc <- serve(ctx, []string{"-listen", "127.0.0.1:0", "-data", dir}, &stdout, &stderr, nil) }()
	<-called
	cancel() // as SIGTERM does
	select {
	case err := <-errc:
		t.Logf("serve: %v", err)
		if err == nil || !strings.Contains(err.Error(), dir) {
			t.Errorf("serve interrupted while opening the store: %v, want an error naming %s", err, dir)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("serve ignored the end of its context while the store was opening")
	}
}

// TestServeOpenWarns: a server that others can reach, without tokens or
// TLS, says so; one on loopback, or with a token (here from WEFT_TOKEN)
// and TLS, does not.
func TestServeOpenWarns(t *testing.T) {
	for _, tc := range []struct {
		name     string
		args     []string
		env      string
		auth     bool // the warning that no one authenticates
		cleartxt bool // the warning that nothing is encrypted
	}{
		{"loopback", []string{"-listen", "127.0.0.1:0"}, "", false, false},
		{"open", []string{"-listen", "0.0.0.0:0"}, "", true, true},
		{"token and tls", []string{"-listen", "0.0.0.0:0", "-dev-tls"}, "secret", false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("WEFT_TOKEN", tc.env)
			ctx, cancel := context.WithCancel(context.Background())
			_, errc, _, stderr := startServe(ctx, t, tc.args)
			cancel()
			if err := <-errc; err != nil {
				t.Fatal(err)
			}
			out := stderr.String()
			if got := strings.Contains(out, "no authentication"); got != tc.auth {
				t.Errorf("warns of no authentication: %v, want %v\n%s", got, tc.auth, out)
			}
			if got := strings.Contains(out, "no TLS"); got != tc.cleartxt {
				t.Errorf("warns of no TLS: %v, want %v\n%s", got, tc.cleartxt, out)
			}
		})
	}
}
