package transport

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/weft-stm/weft/wire"
)

// pairFunc makes a connected pair of Conns; the test closes them.
type pairFunc func(t *testing.T) (client, server Conn)

// testConn is the conformance suite every Conn implementation passes.
func testConn(t *testing.T, pair pairFunc) {
	t.Run("RoundTripEveryType", func(t *testing.T) { testRoundTrip(t, pair) })
	t.Run("CloseUnblocksRecv", func(t *testing.T) { testCloseUnblocksRecv(t, pair) })
	t.Run("RecvContext", func(t *testing.T) { testRecvContext(t, pair) })
	t.Run("PeerCloseIsEOF", func(t *testing.T) { testPeerClose(t, pair) })
	t.Run("AfterClose", func(t *testing.T) { testAfterClose(t, pair) })
	t.Run("InvalidSendNotFinal", func(t *testing.T) { testInvalidSend(t, pair) })
	t.Run("MalformedFrameIsFinal", func(t *testing.T) { testMalformed(t, pair) })
	t.Run("FrameOverReceiverLimit", func(t *testing.T) { testFrameTooLarge(t, pair) })
	t.Run("SendBatch", func(t *testing.T) { testSendBatch(t, pair) })
	t.Run("InvalidBatchSendsNothing", func(t *testing.T) { testInvalidBatch(t, pair) })
}

// vectorMessages decodes the valid test vectors of the wire package: every
// message type, with the exact frame each must encode to.
func vectorMessages(t *testing.T) (names []string, msgs []wire.Message, frames [][]byte) {
	t.Helper()
	data, err := os.ReadFile("../wire/testdata/vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	var vf struct {
		Valid []struct {
			Name  string `json:"name"`
			Frame string `json:"frame"`
		} `json:"valid"`
	}
	if err := json.Unmarshal(data, &vf); err != nil {
		t.Fatal(err)
	}
	seen := map[wire.Type]bool{}
	for _, v := range vf.Valid {
		frame, err := hex.DecodeString(strings.Join(strings.Fields(v.Frame), ""))
		if err != nil {
			t.Fatalf("%s: %v", v.Name, err)
		}
		m, err := wire.NewDecoder(frame, wire.Limits{}).Decode()
		if err != nil {
			t.Fatalf("%s: %v", v.Name, err)
		}
		seen[m.Type()] = true
		names, msgs, frames = append(names, v.Name), append(msgs, m), append(frames, frame)
	}
	for _, typ := range wire.Types() {
		if !seen[typ] {
			t.Fatalf("no vector of type %v", typ)
		}
	}
	return names, msgs, frames
}

func testRoundTrip(t *testing.T, pair pairFunc) {
	c, s := pair(t)
	names, msgs, frames := vectorMessages(t)
	ctx := context.Background()
	for _, dir := range []struct {
		name     string
		from, to Conn
	}{{"client->server", c, s}, {"server->client", s, c}} {
		// Send everything first, then read, so that frames travel back to
		// back in one stream.
		errc := make(chan error, 1)
		go func() {
			for _, m := range msgs {
				if err := dir.from.Send(ctx, m); err != nil {
					errc <- err
					return
				}
			}
			errc <- nil
		}()
		for i := range msgs {
			got, err := dir.to.Recv(ctx)
			if err != nil {
				t.Fatalf("%s %s: Recv: %v", dir.name, names[i], err)
			}
			if enc := wire.AppendFrame(nil, got); !bytes.Equal(enc, frames[i]) {
				t.Errorf("%s %s: got frame % x, want % x", dir.name, names[i], enc, frames[i])
			}
		}
		if err := <-errc; err != nil {
			t.Fatalf("%s: Send: %v", dir.name, err)
		}
	}
}

func testCloseUnblocksRecv(t *testing.T, pair pairFunc) {
	c, _ := pair(t)
	errc := make(chan error, 1)
	go func() {
		_, err := c.Recv(context.Background())
		errc <- err
	}()
	// Whether Close comes before or during the Recv, the Recv must end with
	// ErrClosed.
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; !errors.Is(err, ErrClosed) {
		t.Fatalf("Recv after Close: %v, want ErrClosed", err)
	}
}

func testRecvContext(t *testing.T, pair pairFunc) {
	c, s := pair(t)
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := s.Recv(ctx)
		errc <- err
	}()
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("Recv with cancelled ctx: %v", err)
	}
	dctx, dcancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer dcancel()
	if _, err := s.Recv(dctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Recv past deadline: %v", err)
	}
	// Not final: the next message still arrives, whole.
	if err := c.Send(context.Background(), &wire.Ping{Nonce: 7}); err != nil {
		t.Fatal(err)
	}
	m, err := s.Recv(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if p, ok := m.(*wire.Ping); !ok || p.Nonce != 7 {
		t.Fatalf("got %#v, want ping 7", m)
	}
}

func testPeerClose(t *testing.T, pair pairFunc) {
	c, s := pair(t)
	ctx := context.Background()
	if err := c.Send(ctx, &wire.Ping{Nonce: 1}); err != nil {
		t.Fatal(err)
	}
	c.Close()
	if m, err := s.Recv(ctx); err != nil || m.(*wire.Ping).Nonce != 1 {
		t.Fatalf("Recv before EOF: %v, %v", m, err)
	}
	for range 2 { // final: the same again
		if _, err := s.Recv(ctx); err != io.EOF {
			t.Fatalf("Recv after peer Close: %v, want io.EOF", err)
		}
	}
}

func testAfterClose(t *testing.T, pair pairFunc) {
	c, _ := pair(t)
	c.Close()
	if err := c.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if err := c.Send(context.Background(), &wire.Ping{}); !errors.Is(err, ErrClosed) {
		t.Errorf("Send after Close: %v", err)
	}
	if _, err := c.Recv(context.Background()); !errors.Is(err, ErrClosed) {
		t.Errorf("Recv after Close: %v", err)
	}
}

func testInvalidSend(t *testing.T, pair pairFunc) {
	c, s := pair(t)
	ctx := context.Background()
	bad := &wire.Hello{Agent: strings.Repeat("x", wire.DefaultLimits().MaxNameLen+1)}
	err := c.Send(ctx, bad)
	var fe *wire.FieldError
	if !errors.As(err, &fe) || !errors.Is(err, wire.ErrLimit) {
		t.Fatalf("Send of an invalid message: %v, want a *wire.FieldError wrapping ErrLimit", err)
	}
	if err := c.Send(ctx, &wire.Ping{Nonce: 2}); err != nil {
		t.Fatalf("Send after an invalid one: %v", err)
	}
	if m, err := s.Recv(ctx); err != nil || m.(*wire.Ping).Nonce != 2 {
		t.Fatalf("Recv: %v, %v", m, err)
	}
}

// A frame longer than the receiver's MaxFrameSize fails the receiver's
// Recv with ErrFrameTooLarge, whatever the transport.
func testFrameTooLarge(t *testing.T, pair pairFunc) {
	c, s := pair(t)
	ctx := context.Background()
	s.(LimitSetter).SetLimits(wire.Limits{MaxFrameSize: 16})
	if err := c.Send(ctx, &wire.Hello{Token: strings.Repeat("t", 64)}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Recv(ctx); !errors.Is(err, wire.ErrFrameTooLarge) {
		t.Fatalf("Recv of a frame over the receiver's MaxFrameSize: %v", err)
	}
}

// The receiver's limits are lower than the sender's: the frame is
// malformed for the receiver, whose Recv fails for good while its Send
// still works, to report the error.
func testMalformed(t *testing.T, pair pairFunc) {
	c, s := pair(t)
	ctx := context.Background()
	s.(LimitSetter).SetLimits(wire.Limits{MaxStringLen: 4})
	if err := c.Send(ctx, &wire.Hello{Token: "a long token"}); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		_, err := s.Recv(ctx)
		var fe *wire.FieldError
		if !errors.As(err, &fe) || !errors.Is(err, wire.ErrLimit) || fe.Field != "hello.token" {
			t.Fatalf("Recv of a frame over the limits: %v", err)
		}
	}
	if err := s.Send(ctx, &wire.Error{Code: wire.CodeProtocol, Message: "bad"}); err != nil {
		t.Fatalf("Send after a malformed frame: %v", err)
	}
	m, err := c.Recv(ctx)
	if e, ok := m.(*wire.Error); err != nil || !ok || e.Code != wire.CodeProtocol {
		t.Fatalf("client Recv: %v, %v", m, err)
	}
	s.Close()
	if _, err := c.Recv(ctx); err != io.EOF {
		t.Fatalf("client Recv after server Close: %v, want io.EOF", err)
	}
}
