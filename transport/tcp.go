package transport

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
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
	hs  atomic.Int64 // the TLS handshake timeout, in nanoseconds (SetHandshakeTimeout)

	closeOnce sync.Once
	closing   chan struct{}
}

// DefaultHandshakeTimeout bounds the TLS handshake of an accepted
// connection unless SetHandshakeTimeout says otherwise.
const DefaultHandshakeTimeout = 10 * time.Second

// ListenTCP listens on addr (such as "127.0.0.1:0"). With a non-nil cfg the
// connections use TLS, version 1.3 only (cfg is cloned and its MinVersion
// raised); the handshake runs in the connection's reader goroutine as soon
// as Accept returns, so that a slow or bad client never holds up Accept,
// and its failure is the first Recv's error. It is bounded by the
// listener's handshake timeout (DefaultHandshakeTimeout, or
// SetHandshakeTimeout's): a client that says nothing is closed then. Set cfg.ClientAuth (and ClientCAs) for mutual
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
	l := &TCPListener{ln: ln, tcp: tcp.(*net.TCPListener), lim: lim, closing: make(chan struct{})}
	l.hs.Store(int64(DefaultHandshakeTimeout))
	return l, nil
}

// SetHandshakeTimeout implements HandshakeTimeoutSetter: the TLS
// handshake of the connections accepted from now on must end within d
// (d <= 0: DefaultHandshakeTimeout), or the connection is closed and its
// first Recv fails.
func (l *TCPListener) SetHandshakeTimeout(d time.Duration) {
	if d <= 0 {
		d = DefaultHandshakeTimeout
	}
	l.hs.Store(int64(d))
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
	return newTCPConn(nc, l.lim, time.Duration(l.hs.Load())), nil
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
	return newTCPConn(nc, lim, DefaultHandshakeTimeout), nil // the handshake is done
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
// Sending: Send writes one frame with one Write; SendBatch encodes all its
// messages into one buffer first and writes them with one Write, so that a
// burst costs one system call.
//
// Receiving: the socket is read through a buffer of recvBufSize bytes, so
// that one read system call brings in every frame that has arrived. Recv
// decodes a frame in its own goroutine when the frame is whole in the
// buffer, and otherwise waits for more bytes itself; an ended ctx
// interrupts that wait with a past read deadline, which consumes nothing,
// since no frame is parsed until all of it is buffered. Only what cannot
// wait that way goes to a reader goroutine owned by the connection (and
// waited for by Close): a frame longer than the buffer, read while its
// bytes arrive, and, over TLS, the first frame, behind the server's
// handshake. A Recv whose ctx ends while the goroutine reads leaves that
// frame to the next Recv, so cancelling loses nothing either way.
//
// Bytes are read ahead, frames never are: a frame's length is checked
// against MaxFrameSize, and its body decoded, only by the Recv that returns
// it, under the limits in force when that Recv starts. So SetLimits after a
// Recv governs the next frame (as the handshake needs: the client adopts
// the limits from Welcome before it reads further), and nothing larger
// than the buffer is held beyond what a frame within the limits needs.
type TCPConn struct {
	nc  net.Conn
	raw net.Conn // the socket under nc (nc itself without TLS): see Close
	lim atomic.Pointer[wire.Limits]

	sendSem chan struct{} // held by the Send in progress
	cw      countWriter
	w       *wire.Writer // writes frames to cw
	bw      *wire.Writer // encodes a batch into batch (AppendFrame: it writes nothing)
	batch   []byte
	wlim    *wire.Limits // the limits w and bw have
	swatch  deadlineWatch

	// Owned by the Recv in progress (recvMu) unless asked, when the
	// reader goroutine owns rb and r until it sends its result. A mutex,
	// not a channel: Recv and Buffered take it once per message, and
	// only a caller breaking the one-receiver rule ever waits for it.
	recvMu  sync.Mutex // held by the Recv in progress
	rb      readBuf
	r       *wire.Reader // reads from rb
	rlim    *wire.Limits // the limits r has
	rwatch  deadlineWatch
	direct  bool          // Recv may read the socket itself: the TLS handshake is over
	asked   bool          // the reader goroutine reads a frame not yet returned
	rerr    error         // the final Recv error
	hs      time.Duration // bounds a TLS server's handshake (readLoop)
	want    chan struct{}
	results chan recvResult

	closeOnce sync.Once
	closing   chan struct{}
	wg        sync.WaitGroup
}

// recvBufSize is the size of a connection's read buffer: room for many
// small frames per read system call, at a memory cost per connection.
const recvBufSize = 16 << 10

// maxBatchBuf is the largest batch buffer a connection keeps between
// batches, so that one large burst does not hold memory for good.
const maxBatchBuf = 256 << 10

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

func newTCPConn(nc net.Conn, lim wire.Limits, hs time.Duration) *TCPConn {
	c := &TCPConn{
		nc:      nc,
		hs:      hs,
		raw:     nc,
		sendSem: make(chan struct{}, 1),
		want:    make(chan struct{}, 1),
		results: make(chan recvResult, 1),
		closing: make(chan struct{}),
	}
	l := lim.WithDefaults()
	c.lim.Store(&l)
	c.cw.w = nc
	c.w = wire.NewWriter(&c.cw, l)
	c.bw = wire.NewWriter(io.Discard, l)
	c.wlim = &l
	c.rb = readBuf{nc: nc, buf: make([]byte, recvBufSize)}
	c.r = wire.NewReader(&c.rb, l) // rb is an io.ByteReader: not wrapped again
	c.rlim = &l
	c.swatch.set, c.rwatch.set = nc.SetWriteDeadline, nc.SetReadDeadline
	tc, isTLS := nc.(*tls.Conn)
	if isTLS {
		c.raw = tc.NetConn()
	}
	c.direct = !isTLS
	c.wg.Add(1)
	go c.readLoop()
	return c
}

// readLoop reads one message per request until a read fails or the
// connection closes. results has room for the one outstanding request, so
// the loop never blocks on it.
func (c *TCPConn) readLoop() {
	defer c.wg.Done()
	// A TLS server's handshake starts at once, not at the first Recv: the
	// client's DialTCP waits for it. Close ends it by closing the socket,
	// and so does the timeout: else a client that says nothing would hold
	// the connection, and a Send (which waits for the handshake) forever.
	var hsErr error
	if tc, ok := c.nc.(*tls.Conn); ok {
		ctx, cancel := context.WithTimeout(context.Background(), c.hs)
		hsErr = tc.HandshakeContext(ctx)
		if hsErr != nil && ctx.Err() != nil {
			hsErr = fmt.Errorf("not done within %v: %w", c.hs, hsErr)
		}
		cancel()
	}
	for {
		select {
		case <-c.want:
		case <-c.closing:
			return
		}
		if hsErr != nil {
			c.results <- recvResult{nil, fmt.Errorf("tls handshake: %w", hsErr)}
			return
		}
		m, err := c.r.ReadMessage()
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
	return c.send(ctx, func() error { return c.w.WriteMessage(m) })
}

// SendBatch implements Conn. Every message is validated and encoded into
// one buffer before anything is written, so an invalid message, wherever
// it is in msgs, sends none of them; the buffer then goes out with one
// Write.
func (c *TCPConn) SendBatch(ctx context.Context, msgs []wire.Message) error {
	return c.send(ctx, func() error {
		c.batch = c.batch[:0]
		for _, m := range msgs {
			var err error
			// Straight into the batch buffer; a wire.Encoded is copied
			// as it is.
			if c.batch, err = c.bw.AppendFrame(c.batch, m); err != nil {
				return err // a *wire.FieldError, and cw has written nothing
			}
		}
		var err error
		if len(c.batch) > 0 {
			_, err = c.cw.Write(c.batch)
		}
		if cap(c.batch) > maxBatchBuf {
			c.batch = nil
		}
		return err
	})
}

// send runs write, which writes through c.cw, as the Send in progress,
// with ctx's end interrupting it, and sorts out its error.
func (c *TCPConn) send(ctx context.Context, write func() error) error {
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
		c.bw.SetLimits(*l)
		c.wlim = l
	}
	// The wire.Writer takes no context: an ended ctx sets a past write
	// deadline, which fails the write.
	c.swatch.watch(ctx)
	c.cw.n = 0
	err := write()
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
	c.recvMu.Lock()
	defer c.recvMu.Unlock()
	if c.rerr != nil {
		return nil, c.rerr
	}
	select {
	case <-c.closing:
		return nil, ErrClosed
	default:
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if !c.asked {
		// r is ours: give it the limits this frame is read under.
		if l := c.lim.Load(); l != c.rlim {
			c.r.SetLimits(*l)
			c.rlim = l
		}
		if c.direct {
			ok, err := c.await(ctx)
			if err != nil {
				return nil, err
			}
			if ok {
				return c.result(c.r.ReadMessage())
			}
		}
		// The reader goroutine's reads are not this Recv's to interrupt
		// through a deadline (it selects on ctx instead).
		c.rwatch.release()
		c.want <- struct{}{} // room for one, and the loop took the last
		c.asked = true
	}
	select {
	case r := <-c.results:
		c.asked = false
		c.direct = true // the handshake is over, if there was one
		return c.result(r.m, r.err)
	case <-c.closing:
		return nil, ErrClosed
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Buffered implements Buffered: a whole frame (or a bad length prefix, or
// the error that ended the stream) is in the read buffer.
func (c *TCPConn) Buffered() bool {
	if !c.recvMu.TryLock() {
		return false // a Recv is in progress: not called as documented
	}
	defer c.recvMu.Unlock()
	if c.rerr != nil {
		return true
	}
	if c.asked || !c.direct {
		return false // the reader goroutine owns the buffer
	}
	return c.rb.err != nil || c.rb.frameState(c.lim.Load().MaxFrameSize) == frameReady
}

func (c *TCPConn) result(m wire.Message, err error) (wire.Message, error) {
	if err != nil {
		c.rerr = c.recvErr(err)
		return nil, c.rerr
	}
	return m, nil
}

// await reads from the socket into the buffer until the next frame can be
// read without blocking (ok), or needs the reader goroutine because it is
// longer than the buffer (!ok). It returns ctx.Err() when ctx ends first:
// what it read stays in the buffer, so nothing is lost. A failed read is
// kept in the buffer, to be reported by the Reader as it would have been.
func (c *TCPConn) await(ctx context.Context) (bool, error) {
	for {
		switch c.rb.frameState(c.rlim.MaxFrameSize) {
		case frameReady:
			return true, nil
		case frameTooLong:
			return false, nil
		}
		if c.rb.err != nil {
			return true, nil // the Reader reports it, without reading
		}
		if err := ctx.Err(); err != nil {
			return false, err
		}
		// Only now, when a read may block, is ctx watched: a Recv that
		// finds its frame buffered pays nothing for it.
		c.rwatch.watch(ctx)
		if err := c.rb.fill(); err != nil {
			if ctxErr := ctx.Err(); ctxErr != nil && errors.Is(err, os.ErrDeadlineExceeded) {
				return false, ctxErr // interrupted: not a failure of the stream
			}
			c.rb.err = err
		}
	}
}

// readBuf buffers the socket for the wire.Reader, like a bufio.Reader, but
// lets Recv look at the buffered bytes and fill the buffer itself with an
// interruptible read.
type readBuf struct {
	nc   net.Conn
	buf  []byte
	r, w int   // buf[r:w] is unread
	err  error // the error that ended the stream; kept once the buffer is drained
}

// Read implements io.Reader for the wire.Reader.
func (b *readBuf) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if b.r == b.w {
		if b.err != nil {
			return 0, b.err
		}
		if len(p) >= len(b.buf) {
			// A long frame body: read straight into it.
			n, err := b.nc.Read(p)
			b.err = err
			return n, err
		}
		b.r, b.w = 0, 0
		n, err := b.nc.Read(b.buf)
		b.w, b.err = n, err
		if n == 0 {
			return 0, err
		}
	}
	n := copy(p, b.buf[b.r:b.w])
	b.r += n
	return n, nil
}

// ReadByte implements io.ByteReader for the wire.Reader.
func (b *readBuf) ReadByte() (byte, error) {
	for empty := 0; b.r == b.w; empty++ {
		if b.err != nil {
			return 0, b.err
		}
		if empty == 100 {
			return 0, io.ErrNoProgress
		}
		b.r, b.w = 0, 0
		n, err := b.nc.Read(b.buf)
		b.w, b.err = n, err
	}
	c := b.buf[b.r]
	b.r++
	return c, nil
}

// fill makes room at the end of the buffer and reads once into it.
func (b *readBuf) fill() error {
	if b.r > 0 {
		b.w = copy(b.buf, b.buf[b.r:b.w])
		b.r = 0
	}
	n, err := b.nc.Read(b.buf[b.w:])
	b.w += n
	return err
}

const (
	frameShort   = iota // more bytes are needed
	frameReady          // reading the next frame will not block: it is whole, or its length prefix is bad
	frameTooLong        // the next frame cannot fit in the buffer
)

// frameState says whether the next frame is whole in the buffer. It reads
// the length prefix as wire.Reader does, failing at the same byte for the
// same reasons, so that a bad prefix is reported by the Reader without
// waiting for bytes that may never come.
func (b *readBuf) frameState(maxFrame int) int {
	var n uint64
	for i := 0; i < 5; i++ { // a length prefix has at most 5 bytes
		if b.r+i >= b.w {
			return frameShort
		}
		c := b.buf[b.r+i]
		n |= uint64(c&0x7f) << (7 * i)
		switch {
		case n > uint64(maxFrame), c == 0 && i > 0:
			return frameReady
		case c < 0x80:
			switch total := i + 1 + int(n); {
			case total <= b.w-b.r:
				return frameReady
			case total > len(b.buf):
				return frameTooLong
			}
			return frameShort
		}
	}
	return frameReady // a fifth byte that says more follow
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
//
// Over TLS it closes the socket without a close_notify alert: crypto/tls
// gives that write 5 s of its own, which a peer that stopped reading (a
// send interrupted by its context, a slow consumer dropped) would make
// Close wait out. Frames are self-delimiting, and a deliberate end is
// said by an Error frame first, so the alert adds nothing.
func (c *TCPConn) Close() error {
	var err error
	c.closeOnce.Do(func() {
		close(c.closing)
		err = c.raw.Close()
		c.wg.Wait()
		// No context keeps the connection alive through its watch.
		c.swatch.close()
		c.rwatch.close()
	})
	return err
}

// deadlineWatch makes the end of a context interrupt the blocking reads
// (or the writes) of a connection, by setting a deadline in the past. It
// stays registered from one call to the next as long as they pass
// contexts that end together (the same Done channel): a goroutine reading
// or writing with one context for its life registers it once, not at
// every call. Its methods are called by the holder of the direction's
// semaphore, and by Close.
type deadlineWatch struct {
	set func(time.Time) error // the connection's SetReadDeadline or SetWriteDeadline

	mu     sync.Mutex // Close may release the watch while a call holds it
	done   <-chan struct{}
	stop   func() bool
	fired  chan struct{}
	closed bool
}

// watch makes ctx's end interrupt the calls from now on.
func (w *deadlineWatch) watch(ctx context.Context) {
	d := ctx.Done()
	w.mu.Lock()
	defer w.mu.Unlock()
	if d == w.done || w.closed {
		return
	}
	w.releaseLocked()
	if d == nil {
		return
	}
	fired, set := make(chan struct{}), w.set
	w.done, w.fired = d, fired
	w.stop = context.AfterFunc(ctx, func() {
		set(time.Unix(1, 0))
		close(fired)
	})
}

// release stops watching; a deadline the watch set is cleared.
func (w *deadlineWatch) release() {
	w.mu.Lock()
	w.releaseLocked()
	w.mu.Unlock()
}

// close releases the watch for good.
func (w *deadlineWatch) close() {
	w.mu.Lock()
	w.closed = true
	w.releaseLocked()
	w.mu.Unlock()
}

func (w *deadlineWatch) releaseLocked() {
	if w.stop == nil {
		return
	}
	if !w.stop() {
		<-w.fired
		w.set(time.Time{})
	}
	w.done, w.stop, w.fired = nil, nil, nil
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
