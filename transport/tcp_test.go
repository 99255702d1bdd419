package transport

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/weft-stm/weft/wire"
)

// tcpPair dials a fresh listener on loopback.
func tcpPair(t *testing.T, server, client *tls.Config) (*TCPConn, *TCPConn) {
	t.Helper()
	ln, err := ListenTCP("127.0.0.1:0", server, wire.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	ctx := context.Background()
	// Accept first: a TLS client's DialTCP waits for the server's side of
	// the handshake, which starts when Accept returns.
	type accepted struct {
		c   Conn
		err error
	}
	ac := make(chan accepted, 1)
	go func() {
		s, err := ln.Accept(ctx)
		ac <- accepted{s, err}
	}()
	c, err := DialTCP(ctx, ln.Addr(), client, wire.Limits{})
	a := <-ac
	if a.err != nil {
		t.Fatal(a.err)
	}
	t.Cleanup(func() { a.c.Close() })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c, a.c.(*TCPConn)
}

type tlsSetup struct {
	server, client *tls.Config
}

func newTLS(t *testing.T, mutual bool) tlsSetup {
	t.Helper()
	scert, err := DevCertificate("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	spool := x509.NewCertPool()
	spool.AddCert(scert.Leaf)
	st := tlsSetup{
		server: &tls.Config{Certificates: []tls.Certificate{scert}},
		client: &tls.Config{RootCAs: spool},
	}
	if mutual {
		ccert, err := DevCertificate("client")
		if err != nil {
			t.Fatal(err)
		}
		cpool := x509.NewCertPool()
		cpool.AddCert(ccert.Leaf)
		st.server.ClientAuth = tls.RequireAndVerifyClientCert
		st.server.ClientCAs = cpool
		st.client.Certificates = []tls.Certificate{ccert}
	}
	return st
}

func TestTCPConn(t *testing.T) {
	testConn(t, func(t *testing.T) (Conn, Conn) { return tcpPair(t, nil, nil) })
}

func TestTLSConn(t *testing.T) {
	st := newTLS(t, false)
	testConn(t, func(t *testing.T) (Conn, Conn) {
		c, s := tcpPair(t, st.server, st.client)
		if cs, ok := c.TLSConnectionState(); !ok || cs.Version != tls.VersionTLS13 {
			t.Fatalf("TLS state %v %v, want TLS 1.3", ok, cs.Version)
		}
		return c, s
	})
}

func TestMutualTLSConn(t *testing.T) {
	st := newTLS(t, true)
	testConn(t, func(t *testing.T) (Conn, Conn) { return tcpPair(t, st.server, st.client) })
}

func TestMutualTLSPeerCertificate(t *testing.T) {
	st := newTLS(t, true)
	c, s := tcpPair(t, st.server, st.client)
	ctx := context.Background()
	if err := c.Send(ctx, &wire.Ping{}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Recv(ctx); err != nil {
		t.Fatal(err)
	}
	cs, _ := s.TLSConnectionState()
	if len(cs.PeerCertificates) != 1 || cs.PeerCertificates[0].Subject.CommonName != "client" {
		t.Fatalf("server sees client certificates %v", cs.PeerCertificates)
	}
}

// acceptRecvErr accepts one connection and returns its first Recv's error.
func acceptRecvErr(ln *TCPListener) <-chan error {
	errc := make(chan error, 1)
	go func() {
		s, err := ln.Accept(context.Background())
		if err != nil {
			errc <- err
			return
		}
		defer s.Close()
		_, err = s.Recv(context.Background())
		errc <- err
	}()
	return errc
}

func TestTLS12ClientRefused(t *testing.T) {
	st := newTLS(t, false)
	ln, err := ListenTCP("127.0.0.1:0", st.server, wire.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	errc := acceptRecvErr(ln)
	old := st.client.Clone()
	old.MaxVersion = tls.VersionTLS12
	tc, err := tls.Dial("tcp", ln.Addr(), old)
	if err == nil {
		tc.Close()
		t.Fatal("a TLS 1.2 client completed the handshake")
	}
	if serr := <-errc; serr == nil || !strings.Contains(serr.Error(), "version") {
		t.Fatalf("server Recv: %v, want a protocol version error", serr)
	}
}

func TestMutualTLSWrongClientRefused(t *testing.T) {
	st := newTLS(t, true)
	stranger, err := DevCertificate("client")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		certs []tls.Certificate
	}{{"wrong cert", []tls.Certificate{stranger}}, {"no cert", nil}} {
		t.Run(tc.name, func(t *testing.T) {
			ln, err := ListenTCP("127.0.0.1:0", st.server, wire.Limits{})
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			errc := acceptRecvErr(ln)
			cfg := st.client.Clone()
			cfg.Certificates = tc.certs
			ctx := context.Background()
			// Under TLS 1.3 the client's handshake ends before the server
			// has checked its certificate: the refusal comes as the first
			// Recv's error.
			c, err := DialTCP(ctx, ln.Addr(), cfg, wire.Limits{})
			if err == nil {
				_, err = c.Recv(ctx)
				c.Close()
			}
			if err == nil || !strings.Contains(err.Error(), "certificate") {
				t.Fatalf("client: %v, want a certificate alert", err)
			}
			if serr := <-errc; serr == nil || !strings.Contains(serr.Error(), "certificate") {
				t.Fatalf("server Recv: %v, want a certificate error", serr)
			}
		})
	}
}

// A raw client announces a frame over the limit: the server's Recv fails
// with the wire error; it answers Error and closes, which the client sees.
func TestTCPOversizedFrame(t *testing.T) {
	ln, err := ListenTCP("127.0.0.1:0", nil, wire.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	raw, err := net.Dial("tcp", ln.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	ctx := context.Background()
	s, err := ln.Accept(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	prefix := binary.AppendUvarint(nil, uint64(wire.DefaultLimits().MaxFrameSize+1))
	if _, err := raw.Write(prefix); err != nil {
		t.Fatal(err)
	}
	_, err = s.Recv(ctx)
	if !errors.Is(err, wire.ErrFrameTooLarge) {
		t.Fatalf("Recv: %v, want ErrFrameTooLarge", err)
	}
	if err := s.Send(ctx, &wire.Error{Code: wire.CodeProtocol, Message: err.Error()}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	r := wire.NewReader(raw, wire.Limits{})
	m, err := r.ReadMessage()
	if e, ok := m.(*wire.Error); err != nil || !ok || e.Code != wire.CodeProtocol {
		t.Fatalf("client read %v, %v; want an Error frame", m, err)
	}
	if _, err := r.ReadMessage(); err != io.EOF {
		t.Fatalf("client read after Error: %v, want io.EOF", err)
	}
}

// A Send stuck behind a peer that does not read ends with its ctx, and the
// connection, with part of a frame on it, is closed.
func TestTCPSendInterrupted(t *testing.T) {
	c, _ := tcpPair(t, nil, nil)
	big := strings.Repeat("x", wire.DefaultLimits().MaxStringLen)
	m := &wire.Update{Writes: []wire.Op{
		{Kind: wire.OpVarSet, Value: wire.String(big)},
		{Kind: wire.OpVarSet, Value: wire.String(big)},
		{Kind: wire.OpVarSet, Value: wire.String(big)},
	}}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	var err error
	for i := 0; i < 1000 && err == nil; i++ {
		err = c.Send(ctx, m)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Send: %v, want DeadlineExceeded", err)
	}
	if err := c.Send(context.Background(), &wire.Ping{}); !errors.Is(err, ErrClosed) {
		t.Fatalf("Send after an interrupted Send: %v, want ErrClosed", err)
	}
}

func TestTCPAccept(t *testing.T) {
	ln, err := ListenTCP("127.0.0.1:0", nil, wire.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := ln.Accept(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Accept with cancelled ctx: %v", err)
	}
	dctx, dcancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer dcancel()
	if _, err := ln.Accept(dctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Accept past deadline: %v", err)
	}
	// Still listening after an interrupted Accept.
	c, err := TCPDialer(nil, wire.Limits{})(context.Background(), ln.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s, err := ln.Accept(context.Background())
	if err != nil {
		t.Fatalf("Accept after an interrupted one: %v", err)
	}
	s.Close()
	errc := make(chan error, 1)
	go func() {
		_, err := ln.Accept(context.Background())
		errc <- err
	}()
	ln.Close()
	if err := <-errc; !errors.Is(err, ErrClosed) {
		t.Fatalf("Accept after Close: %v, want ErrClosed", err)
	}
}

func TestDevCertificate(t *testing.T) {
	cert, err := DevCertificate("localhost", "10.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert.Leaf)
	for _, host := range []string{"localhost", "10.0.0.1"} {
		if _, err := cert.Leaf.Verify(x509.VerifyOptions{DNSName: host, Roots: pool}); err != nil {
			t.Errorf("%s: %v", host, err)
		}
	}
	if !bytes.Equal(cert.Certificate[0], cert.Leaf.Raw) {
		t.Error("Leaf is not the certificate")
	}
}

// TestTLSSendInterrupted: over TLS too, a Send to a peer that stopped
// reading fails when its context ends, not after the 5 s crypto/tls gives
// the close_notify alert a full socket would never take (see Close).
func TestTLSSendInterrupted(t *testing.T) {
	st := newTLS(t, false)
	c, s := tcpPair(t, st.server, st.client)
	// Small fixed socket buffers (no autotuning), so that they fill at once.
	c.raw.(*net.TCPConn).SetWriteBuffer(4096)
	s.raw.(*net.TCPConn).SetReadBuffer(4096)
	m := &wire.Error{Message: strings.Repeat("x", 64<<10)}
	var err error
	var took time.Duration
	for i := 0; i < 1000 && err == nil; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		start := time.Now()
		err = c.Send(ctx, m)
		took = time.Since(start)
		cancel()
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Send: %v, want DeadlineExceeded", err)
	}
	if took > 3*time.Second {
		t.Fatalf("a Send with a 200 ms deadline returned after %v", took)
	}
}
