package transport

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/weft-stm/weft/wire"
)

// TCPListener accepts TCP connections, with TLS 1.3 when it was given a
// tls.Config.
type TCPListener struct {
	ln  net.Listener // tcp, or tls over it
	tcp *net.TCPListener
	lim wire.Limits

	closeOnce sync.Once
	closing   chan struct{}
}

// ListenTCP listens on addr (such as "127.0.0.1:0"). With a non-nil cfg the
// connections use TLS, version 1.3 only (cfg is cloned and its MinVersion
// raised); the handshake runs in the connection's reader goroutine as soon
// as Accept returns, so that a slow or bad client never holds up Accept,
// and its failure is the first Recv's error. Set cfg.ClientAuth (and ClientCAs) for mutual
// TLS. lim are the limits of the accepted connections (see LimitSetter).
func ListenTCP(addr string, cfg *tls.Config, lim wire.Limits) (*TCPListener, error) {
	tcp, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("transport: listen: %w", err)
	}
	ln := tcp
	if cfg != nil {
		ln = tls.NewListener(tcp, tls13(cfg))
	}
	return &TCPListener{ln: ln, tcp: tcp.(*net.TCPListener), lim: lim, closing: make(chan struct{})}, nil
}

func tls13(cfg *tls.Config) *tls.Config {
	cfg = cfg.Clone()
	cfg.MinVersion = tls.VersionTLS13
	if cfg.MaxVersion != 0 && cfg.MaxVersion < tls.VersionTLS13 {
		cfg.MaxVersion = tls.VersionTLS13
	}
	return cfg
}

// Accept waits for the next connection. It is for one goroutine at a
// time: an ended ctx interrupts the Accept in progress.
func (l *TCPListener) Accept(ctx context.Context) (Conn, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	// net.Listener.Accept takes no context: an ended ctx sets a past
	// deadline, which fails the Accept.
	var fired chan struct{}
	var stop func() bool
	if ctx.Done() != nil {
		fired = make(chan struct{})
		stop = context.AfterFunc(ctx, func() {
			l.tcp.SetDeadline(time.Unix(1, 0))
			close(fired)
		})
	}
	nc, err := l.ln.Accept()
	if stop != nil && !stop() {
		<-fired
		l.tcp.SetDeadline(time.Time{})
	}
	if err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return nil, ctxErr
		}
		return nil, l.acceptErr(err)
	}
	return newTCPConn(nc, l.lim), nil
}

func (l *TCPListener) acceptErr(err error) error {
	select {
	case <-l.closing:
		return ErrClosed
	default:
	}
	if errors.Is(err, net.ErrClosed) {
		return ErrClosed
	}
	return fmt.Errorf("transport: accept: %w", err)
}

// Close stops listening.
func (l *TCPListener) Close() error {
	var err error
	l.closeOnce.Do(func() {
		close(l.closing)
		err = l.ln.Close()
	})
	return err
}

// Addr returns the address listened on, with the port chosen when addr's
// was 0.
func (l *TCPListener) Addr() string { return l.ln.Addr().String() }

// DialTCP connects to addr. With a non-nil cfg it uses TLS 1.3 only (cfg is
// cloned, its MinVersion raised, and ServerName set from addr when empty)
// and completes the handshake before returning. Under TLS 1.3 a server
// that refuses the client's certificate says so after the client's side of
// the handshake, so that refusal is the first Recv's error.
func DialTCP(ctx context.Context, addr string, cfg *tls.Config, lim wire.Limits) (*TCPConn, error) {
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("transport: dial: %w", err)
	}
	if cfg != nil {
		cfg = tls13(cfg)
		if cfg.ServerName == "" {
			if host, _, err := net.SplitHostPort(addr); err == nil {
				cfg.ServerName = host
			}
		}
		tc := tls.Client(nc, cfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			nc.Close()
			return nil, fmt.Errorf("transport: tls handshake: %w", err)
		}
		nc = tc
	}
	return newTCPConn(nc, lim), nil
}

// TCPDialer returns a Dialer that calls DialTCP with cfg and lim.
func TCPDialer(cfg *tls.Config, lim wire.Limits) Dialer {
	return func(ctx context.Context, addr string) (Conn, error) {
		return DialTCP(ctx, addr, cfg, lim)
	}
}

// TCPConn is a connection over TCP (or TLS over TCP), framed with
// wire.Reader and wire.Writer.
//
// A reader goroutine, owned by the connection and waited for by Close,
// reads one frame for each Recv that asks; a Recv whose ctx ends leaves the
// frame being read to the next Recv, so cancelling loses nothing. It never
// reads ahead of the Recvs, so that SetLimits after a Recv governs the next
// frame.
type TCPConn struct {
	nc  net.Conn
	lim atomic.Pointer[wire.Limits]

	sendSem chan struct{} // held by the Send in progress
	cw      countWriter
	w       *wire.Writer
	wlim    *wire.Limits // the limits w has

	recvSem chan struct{} // held by the Recv in progress
	asked   bool          // a frame was asked for and not yet returned (guarded by recvSem)
	rerr    error         // the final Recv error (guarded by recvSem)
	want    chan *wire.Limits
	results chan recvResult

	closeOnce sync.Once
	closing   chan struct{}
	wg        sync.WaitGroup
}

type recvResult struct {
	m   wire.Message
	err error
}

// countWriter counts the bytes written, so that Send knows whether a
// failed write left part of a frame on the stream.
type countWriter struct {
	w io.Writer
	n int
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += n
	return n, err
}

func newTCPConn(nc net.Conn, lim wire.Limits) *TCPConn {
	c := &TCPConn{
		nc:      nc,
		sendSem: make(chan struct{}, 1),
		recvSem: make(chan struct{}, 1),
		want:    make(chan *wire.Limits, 1),
		results: make(chan recvResult, 1),
		closing: make(chan struct{}),
	}
	l := lim.WithDefaults()
	c.lim.Store(&l)
	c.cw.w = nc
	c.w = wire.NewWriter(&c.cw, l)
	c.wlim = &l
	c.wg.Add(1)
	go c.readLoop(wire.NewReader(nc, l))
	return c
}

// readLoop reads one message per request until a read fails or the
// connection closes. results has room for the one outstanding request, so
// the loop never blocks on it.
func (c *TCPConn) readLoop(r *wire.Reader) {
	defer c.wg.Done()
	// A TLS server's handshake starts at once, not at the first Recv: the
	// client's DialTCP waits for it. Close ends it by closing the socket.
	var hsErr error
	if tc, ok := c.nc.(*tls.Conn); ok {
		hsErr = tc.Handshake()
	}
	for {
		select {
		case lim := <-c.want:
			r.SetLimits(*lim)
		case <-c.closing:
			return
		}
		if hsErr != nil {
			c.results <- recvResult{nil, fmt.Errorf("tls handshake: %w", hsErr)}
			return
		}
		m, err := r.ReadMessage()
		c.results <- recvResult{m, err}
		if err != nil {
			return
		}
	}
}

// SetLimits implements LimitSetter.
func (c *TCPConn) SetLimits(lim wire.Limits) {
	l := lim.WithDefaults()
	c.lim.Store(&l)
}

// Send implements Conn.
func (c *TCPConn) Send(ctx context.Context, m wire.Message) error {
	select {
	case c.sendSem <- struct{}{}:
	case <-c.closing:
		return ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-c.sendSem }()
	select {
	case <-c.closing:
		return ErrClosed
	default:
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if l := c.lim.Load(); l != c.wlim {
		c.w.SetLimits(*l)
		c.wlim = l
	}
	// The wire.Writer takes no context: an ended ctx sets a past write
	// deadline, which fails the write.
	var fired chan struct{}
	var stop func() bool
	if ctx.Done() != nil {
		fired = make(chan struct{})
		stop = context.AfterFunc(ctx, func() {
			c.nc.SetWriteDeadline(time.Unix(1, 0))
			close(fired)
		})
	}
	c.cw.n = 0
	err := c.w.WriteMessage(m)
	if stop != nil && !stop() {
		<-fired
		c.nc.SetWriteDeadline(time.Time{})
	}
	if err == nil {
		return nil
	}
	var fe *wire.FieldError
	if c.cw.n == 0 && errors.As(err, &fe) {
		return err // invalid message, nothing written
	}
	// Part of a frame may be on the stream (and a TLS conn whose write
	// failed is unusable in any case): the connection is done.
	c.Close()
	if ctxErr := ctx.Err(); ctxErr != nil {
		return fmt.Errorf("%w: send interrupted: %w", ErrClosed, ctxErr)
	}
	if errors.Is(err, net.ErrClosed) {
		return ErrClosed
	}
	return fmt.Errorf("%w: send: %w", ErrClosed, err)
}

// Recv implements Conn.
func (c *TCPConn) Recv(ctx context.Context) (wire.Message, error) {
	select {
	case c.recvSem <- struct{}{}:
	case <-c.closing:
		return nil, ErrClosed
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer func() { <-c.recvSem }()
	if c.rerr != nil {
		return nil, c.rerr
	}
	select {
	case <-c.closing:
		return nil, ErrClosed
	default:
	}
	if !c.asked {
		c.want <- c.lim.Load() // room for one, and the loop took the last
		c.asked = true
	}
	select {
	case r := <-c.results:
		c.asked = false
		if r.err != nil {
			c.rerr = c.recvErr(r.err)
			return nil, c.rerr
		}
		return r.m, nil
	case <-c.closing:
		return nil, ErrClosed
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (c *TCPConn) recvErr(err error) error {
	select {
	case <-c.closing:
		return ErrClosed
	default:
	}
	var fe *wire.FieldError
	switch {
	case errors.As(err, &fe), err == io.EOF:
		return err
	case errors.Is(err, net.ErrClosed):
		return ErrClosed
	}
	return fmt.Errorf("transport: recv: %w", err)
}

// Close closes the connection and waits for its reader goroutine.
func (c *TCPConn) Close() error {
	var err error
	c.closeOnce.Do(func() {
		close(c.closing)
		err = c.nc.Close()
		c.wg.Wait()
	})
	return err
}

// RemoteAddr returns the peer's address.
func (c *TCPConn) RemoteAddr() string { return c.nc.RemoteAddr().String() }

// TLSConnectionState returns the TLS state (such as the peer's verified
// certificates, for a server that authorises cluster nodes by them) and
// whether the connection uses TLS. The handshake may not be complete on a
// server until the first Send or Recv has returned.
func (c *TCPConn) TLSConnectionState() (tls.ConnectionState, bool) {
	tc, ok := c.nc.(*tls.Conn)
	if !ok {
		return tls.ConnectionState{}, false
	}
	return tc.ConnectionState(), true
}
