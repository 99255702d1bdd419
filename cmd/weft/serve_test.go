package main

import (
	"bytes"
	"context"
	"crypto/tls"
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
			var stdout, stderr syncBuffer
			ready := make(chan string, 1)
			errc := make(chan error, 1)
			args := append([]string{"-listen", "127.0.0.1:0", "-token", "s3cret"}, tc.args...)
			go func() { errc <- serve(ctx, args, &stdout, &stderr, ready) }()
			var addr string
			select {
			case addr = <-ready:
			case err := <-errc:
				t.Fatalf("serve: %v\n%s", err, stderr.String())
			}

			dctx, dcancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer dcancel()
			hello := func(token string) (transport.Conn, wire.Message) {
				c, err := transport.DialTCP(dctx, addr, tc.tls, wire.Limits{})
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { c.Close() })
				if err := c.Send(dctx, &wire.Hello{MinVersion: 1, MaxVersion: 1, Replica: 1, Token: token}); err != nil {
					t.Fatal(err)
				}
				m, err := c.Recv(dctx)
				if err != nil {
					t.Fatal(err)
				}
				return c, m
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

func TestServeFlags(t *testing.T) {
	for _, args := range [][]string{
		{"-dev-tls", "-tls-cert", "a", "-tls-key", "b"},
		{"-tls-cert", "a"},
		{"extra"},
		{"-listen", "127.0.0.1:99999"},
		{"-shutdown-timeout", "-5s"},
		{"-allow-unsafe-fsync"},
	} {
		var out bytes.Buffer
		if err := serve(context.Background(), args, &out, &out, nil); err == nil {
			t.Errorf("%q: no error", args)
		}
	}
}
