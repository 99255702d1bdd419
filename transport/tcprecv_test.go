package transport

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/weft-stm/weft/wire"
)

// rawPair connects a raw socket to a listener with limits lim, so that a
// test writes exactly the bytes it wants, split where it wants.
func rawPair(t *testing.T, lim wire.Limits) (net.Conn, *TCPConn) {
	t.Helper()
	ln, err := ListenTCP("127.0.0.1:0", nil, lim)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	raw, err := net.Dial("tcp", ln.Addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { raw.Close() })
	s, err := ln.Accept(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return raw, s.(*TCPConn)
}

func frames(msgs ...wire.Message) []byte {
	var b []byte
	for _, m := range msgs {
		b = wire.AppendFrame(b, m)
	}
	return b
}

// Frames already buffered are still read under the limits set after the
// Recv before them, stricter or looser.
func TestTCPLimitsAfterRecvWithBufferedFrames(t *testing.T) {
	ctx := context.Background()
	hello := &wire.Hello{Token: strings.Repeat("t", 64)}
	stream := frames(&wire.Ping{Nonce: 1}, hello, &wire.Ping{Nonce: 2})

	t.Run("stricter", func(t *testing.T) {
		raw, s := rawPair(t, wire.Limits{})
		if _, err := raw.Write(stream); err != nil {
			t.Fatal(err)
		}
		if m, err := s.Recv(ctx); err != nil || m.(*wire.Ping).Nonce != 1 {
			t.Fatalf("Recv: %v, %v", m, err)
		}
		s.SetLimits(wire.Limits{MaxFrameSize: 16})
		if _, err := s.Recv(ctx); !errors.Is(err, wire.ErrFrameTooLarge) {
			t.Fatalf("Recv under the new limits: %v, want ErrFrameTooLarge", err)
		}
	})
	t.Run("looser", func(t *testing.T) {
		raw, s := rawPair(t, wire.Limits{MaxFrameSize: 16})
		if _, err := raw.Write(stream); err != nil {
			t.Fatal(err)
		}
		if m, err := s.Recv(ctx); err != nil || m.(*wire.Ping).Nonce != 1 {
			t.Fatalf("Recv: %v, %v", m, err)
		}
		s.SetLimits(wire.Limits{})
		if m, err := s.Recv(ctx); err != nil || m.(*wire.Hello).Token != hello.Token {
			t.Fatalf("Recv under the new limits: %v, %v", m, err)
		}
		if m, err := s.Recv(ctx); err != nil || m.(*wire.Ping).Nonce != 2 {
			t.Fatalf("Recv: %v, %v", m, err)
		}
	})
}

// A Recv cancelled while a frame is half arrived loses nothing: the next
// Recv returns the whole frame, for frames that fit the read buffer (Recv
// waits itself) and frames that do not (the reader goroutine reads them).
func TestTCPRecvCancelledMidFrame(t *testing.T) {
	for _, size := range []int{100, 3 * recvBufSize} {
		raw, s := rawPair(t, wire.Limits{})
		m := &wire.Hello{Token: strings.Repeat("t", size)}
		stream := frames(&wire.Ping{Nonce: 1}, m, &wire.Ping{Nonce: 2})
		cut := len(stream) - size/2
		if _, err := raw.Write(stream[:cut]); err != nil {
			t.Fatal(err)
		}
		if got, err := s.Recv(context.Background()); err != nil || got.(*wire.Ping).Nonce != 1 {
			t.Fatalf("size %d: Recv: %v, %v", size, got, err)
		}
		for range 2 {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
			_, err := s.Recv(ctx)
			cancel()
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("size %d: Recv of a partial frame: %v, want DeadlineExceeded", size, err)
			}
		}
		if _, err := raw.Write(stream[cut:]); err != nil {
			t.Fatal(err)
		}
		if got, err := s.Recv(context.Background()); err != nil || got.(*wire.Hello).Token != m.Token {
			t.Fatalf("size %d: Recv after the cancelled ones: %v", size, err)
		}
		if got, err := s.Recv(context.Background()); err != nil || got.(*wire.Ping).Nonce != 2 {
			t.Fatalf("size %d: Recv: %v, %v", size, got, err)
		}
	}
}

// Frames of every size around the read buffer's, sent in one batch, arrive
// whole and in order, over TCP and TLS.
func TestTCPMixedFrameSizes(t *testing.T) {
	st := newTLS(t, false)
	for _, useTLS := range []bool{false, true} {
		t.Run(map[bool]string{false: "tcp", true: "tls"}[useTLS], func(t *testing.T) {
			c, s := tcpPair(t, nil, nil)
			if useTLS {
				c, s = tcpPair(t, st.server, st.client)
			}
			ctx := context.Background()
			var msgs []wire.Message
			for _, n := range []int{0, 1, 100, recvBufSize - 20, recvBufSize, recvBufSize + 1, 5, 200 << 10, 3, recvBufSize / 2, recvBufSize / 2} {
				msgs = append(msgs, &wire.Hello{Token: strings.Repeat("t", n)})
			}
			errc := make(chan error, 1)
			go func() { errc <- c.SendBatch(ctx, msgs) }()
			for i, want := range msgs {
				m, err := s.Recv(ctx)
				if err != nil {
					t.Fatalf("message %d: %v", i, err)
				}
				if m.(*wire.Hello).Token != want.(*wire.Hello).Token {
					t.Fatalf("message %d: token of %d bytes, want %d", i, len(m.(*wire.Hello).Token), len(want.(*wire.Hello).Token))
				}
			}
			if err := <-errc; err != nil {
				t.Fatal(err)
			}
		})
	}
}

// A context stays watched from one call to the next; once it has ended
// between calls, a call with another context is not interrupted by the
// deadline its end set, in either direction.
func TestTCPContextEndedBetweenCalls(t *testing.T) {
	raw, s := rawPair(t, wire.Limits{})
	ctx, cancel := context.WithCancel(context.Background())
	other, cancelOther := context.WithCancel(context.Background())
	defer cancelOther()

	// Reads: the watch is set up by a Recv that has to wait.
	go raw.Write(frames(&wire.Ping{Nonce: 1}))
	if got, err := s.Recv(ctx); err != nil || got.(*wire.Ping).Nonce != 1 {
		t.Fatalf("Recv: %v, %v", got, err)
	}
	cancel()
	if _, err := s.Recv(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Recv with the ended context: %v, want Canceled", err)
	}
	go raw.Write(frames(&wire.Ping{Nonce: 2}))
	if got, err := s.Recv(other); err != nil || got.(*wire.Ping).Nonce != 2 {
		t.Fatalf("Recv with another context: %v, %v", got, err)
	}

	// Writes.
	wctx, wcancel := context.WithCancel(context.Background())
	if err := s.Send(wctx, &wire.Ping{Nonce: 3}); err != nil {
		t.Fatal(err)
	}
	wcancel()
	if err := s.Send(wctx, &wire.Ping{Nonce: 4}); !errors.Is(err, context.Canceled) {
		t.Fatalf("Send with the ended context: %v, want Canceled", err)
	}
	if err := s.Send(other, &wire.Ping{Nonce: 5}); err != nil {
		t.Fatalf("Send with another context: %v", err)
	}
	if err := s.Send(context.Background(), &wire.Ping{Nonce: 6}); err != nil {
		t.Fatalf("Send with no context: %v", err)
	}
	r := wire.NewReader(raw, wire.Limits{})
	for _, want := range []uint64{3, 5, 6} {
		m, err := r.ReadMessage()
		if err != nil || m.(*wire.Ping).Nonce != want {
			t.Fatalf("peer read %v, %v; want Ping %d", m, err, want)
		}
	}
}
