package client

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"

	"github.com/weft-stm/weft/stm"
	"github.com/weft-stm/weft/transport"
	"github.com/weft-stm/weft/wire"
)

var (
	// ErrClosed is returned by every call once Close was called, and wrapped
	// in the error of calls that were waiting when it was.
	ErrClosed = errors.New("client: closed")
	// ErrDisconnected is wrapped by the errors of calls made or waiting
	// when the connection ended for another reason than Close (the server
	// closed it, sent Error, or the network failed). The error also wraps
	// the cause (a *wire.Error, io.EOF, ...).
	ErrDisconnected = errors.New("client: disconnected")
	// ErrInDoubt is wrapped by Share.Atomically's error when a commit was
	// sent and its verdict will not be known: the connection ended, or ctx
	// ended while waiting. The commit may or may not have been applied by
	// the server, so retrying it blindly is not safe. (If the verdict does
	// arrive later, the replica still applies it.)
	ErrInDoubt = errors.New("client: commit outcome unknown")
	// ErrNotInShare is returned by Share.Atomically when the transaction
	// read or wrote an object that is not in the share (a local object,
	// or one of another share).
	ErrNotInShare = errors.New("client: object is not in the share")
	// ErrUnknownClass is returned when the share holds a record of a class
	// that was not given to Open.
	ErrUnknownClass = errors.New("client: record of an unknown class")
	// ErrShareClosed is wrapped by the errors of a share that the server
	// closed or refused (a *ShareClosedError carries the code).
	ErrShareClosed = errors.New("client: share closed")
)

// AbortError is a commit the server rejected for another reason than a
// conflict (conflicts are retried): forbidden, invalid, limit, closed,
// internal, dependency. The commit was not applied.
type AbortError struct {
	Code    wire.Code
	Message string
}

func (e *AbortError) Error() string {
	if e.Message == "" {
		return "client: commit aborted: " + e.Code.String()
	}
	return "client: commit aborted: " + e.Code.String() + ": " + e.Message
}

// ShareClosedError is a share the server refused to open or closed.
type ShareClosedError struct {
	Name    string
	Code    wire.Code
	Message string
}

func (e *ShareClosedError) Error() string {
	return fmt.Sprintf("client: share %q closed: %v: %s", e.Name, e.Code, e.Message)
}

func (e *ShareClosedError) Unwrap() error { return ErrShareClosed }

// Options configure Dial.
type Options struct {
	// Replica is this replica's id (docs/protocol.md section 5). If 0, one
	// is drawn from Rand.
	Replica uint64
	// Rand is the source a replica id is drawn from when Replica is 0; the
	// library has no randomness of its own. One of the two is required.
	Rand rand.Source
	// Token authenticates the session; empty is anonymous.
	Token string
	// Agent names the software in the server's logs; default "weft-go/0".
	Agent string
	// Workspace options (WithBackoff, WithDispatcher, ...) for the replica;
	// the client adds stm.WithReplica.
	Workspace []stm.Option
}

// Client is one session with a Weft server, and the local replica of the
// shares it opens (one stm.Workspace for all of them).
type Client struct {
	conn    transport.Conn
	replica uint64
	welcome wire.Welcome
	ws      *stm.Workspace

	sendMu sync.Mutex // one sender at a time (transport.Conn's rule)

	closeOnce sync.Once
	done      chan struct{} // closed when the reader has returned

	mu struct {
		sync.Mutex
		err     error // why the session ended, once it has
		closing bool
		seq     uint64 // the last CommitID sequence used
		nextH   wire.ShareHandle
		shares  map[wire.ShareHandle]*Share
		pending map[uint64]*pending // by CommitID.Seq
	}
}

// pending is a commit sent and not yet answered.
type pending struct {
	share  *Share
	writes []wire.Op
	own    map[wire.ObjectID]*stm.Object // records the commit creates
	done   chan verdict                  // buffered: the reader never blocks on it
}

type verdict struct {
	ack   *wire.Ack
	abort *wire.Abort
	err   error // applying an Ack locally failed
}

// Dial connects to addr with dialer, performs the handshake, and starts
// the client's reader. The session's limits are those of Welcome. ctx
// bounds the dial and handshake only.
func Dial(ctx context.Context, dialer transport.Dialer, addr string, opts Options) (*Client, error) {
	replica := opts.Replica
	for replica == 0 {
		if opts.Rand == nil {
			return nil, errors.New("client: Options needs a Replica or a Rand")
		}
		replica = opts.Rand.Uint64()
	}
	agent := opts.Agent
	if agent == "" {
		agent = "weft-go/0"
	}
	conn, err := dialer(ctx, addr)
	if err != nil {
		return nil, fmt.Errorf("client: dial %s: %w", addr, err)
	}
	hello := &wire.Hello{MinVersion: wire.MinProtocolVersion, MaxVersion: wire.ProtocolVersion,
		Replica: replica, Token: opts.Token, Agent: agent}
	if err := conn.Send(ctx, hello); err != nil {
		conn.Close()
		return nil, fmt.Errorf("client: hello: %w", err)
	}
	m, err := conn.Recv(ctx)
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("client: handshake: %w", err)
	}
	var welcome *wire.Welcome
	switch m := m.(type) {
	case *wire.Welcome:
		welcome = m
	case *wire.Error:
		conn.Close()
		return nil, fmt.Errorf("client: handshake refused: %w", m)
	default:
		conn.Close()
		return nil, fmt.Errorf("client: handshake: got %v, want welcome", m.Type())
	}
	if ls, ok := conn.(transport.LimitSetter); ok {
		ls.SetLimits(welcome.Limits)
	}
	wsOpts := append(append([]stm.Option(nil), opts.Workspace...), stm.WithReplica(replica))
	c := &Client{conn: conn, replica: replica, welcome: *welcome, ws: stm.NewWorkspace(wsOpts...), done: make(chan struct{})}
	c.mu.shares = map[wire.ShareHandle]*Share{}
	c.mu.pending = map[uint64]*pending{}
	go c.readLoop()
	return c, nil
}

// Replica returns the replica id of the session.
func (c *Client) Replica() uint64 { return c.replica }

// Workspace returns the local replica: every share's objects live in it.
func (c *Client) Workspace() *stm.Workspace { return c.ws }

// Close ends the session: it closes the connection, waits for the reader
// to return, and makes every waiting call return an error wrapping
// ErrClosed (ErrInDoubt too for a commit awaiting its verdict). The
// workspace stays readable. Close is idempotent.
func (c *Client) Close() error {
	c.closeOnce.Do(func() {
		c.mu.Lock()
		c.mu.closing = true
		c.mu.Unlock()
		c.conn.Close()
		<-c.done
	})
	return nil
}

// Err returns why the session ended, or nil while it is up.
func (c *Client) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.mu.err
}

func (c *Client) send(ctx context.Context, m wire.Message) error {
	c.sendMu.Lock()
	defer c.sendMu.Unlock()
	return c.conn.Send(ctx, m)
}

// readLoop receives every message of the session and dispatches it. It
// applies Acks and Updates to the replica itself, so that the replica
// follows the share's version order.
func (c *Client) readLoop() {
	defer close(c.done)
	for {
		m, err := c.conn.Recv(context.Background())
		if err != nil {
			c.fail(err)
			return
		}
		switch m := m.(type) {
		case *wire.Ping:
			// Best effort: a failed send ends the connection, which the
			// next Recv reports.
			_ = c.send(context.Background(), &wire.Pong{Nonce: m.Nonce})
		case *wire.Pong:
		case *wire.Error:
			c.fail(m)
			c.conn.Close()
			return
		case *wire.Opened:
			c.toShare(m.Share, m)
		case *wire.SnapshotChunk:
			c.toShare(m.Share, m)
		case *wire.Delta:
			c.toShare(m.Share, m)
		case *wire.Update:
			c.toShare(m.Share, m)
		case *wire.ShareClosed:
			if s := c.toShare(m.Share, m); s != nil {
				c.mu.Lock()
				delete(c.mu.shares, m.Share)
				c.mu.Unlock()
			}
		case *wire.Ack:
			c.verdict(m.ID, verdict{ack: m})
		case *wire.Abort:
			c.verdict(m.ID, verdict{abort: m})
		default:
			err := fmt.Errorf("client: unexpected %v from the server", m.Type())
			_ = c.send(context.Background(), &wire.Error{Code: wire.CodeUnexpected, Message: err.Error()})
			c.fail(err)
			c.conn.Close()
			return
		}
	}
}

func (c *Client) toShare(h wire.ShareHandle, m wire.Message) *Share {
	c.mu.Lock()
	s := c.mu.shares[h]
	c.mu.Unlock()
	if s != nil {
		s.receive(m)
	}
	return s
}

func (c *Client) verdict(id wire.CommitID, v verdict) {
	if id.Replica != c.replica {
		return
	}
	c.mu.Lock()
	p := c.mu.pending[id.Seq]
	delete(c.mu.pending, id.Seq)
	c.mu.Unlock()
	if p == nil {
		return
	}
	if v.ack != nil {
		// The session's own commits are not echoed as Updates: apply them
		// here, in version order with the Updates.
		v.err = p.share.apply(v.ack.Version, p.writes, p.own)
	}
	p.done <- v
}

// fail records why the session ended and wakes every waiter.
func (c *Client) fail(cause error) {
	c.mu.Lock()
	if c.mu.err == nil {
		if c.mu.closing {
			c.mu.err = ErrClosed
		} else {
			c.mu.err = fmt.Errorf("%w: %w", ErrDisconnected, cause)
		}
	}
	shares := make([]*Share, 0, len(c.mu.shares))
	for _, s := range c.mu.shares {
		shares = append(shares, s)
	}
	err := c.mu.err
	c.mu.Unlock()
	for _, s := range shares {
		s.fail(err)
	}
}

// submit sends cm with the next CommitID and waits for its verdict.
// own holds the records the commit creates, by id.
func (c *Client) submit(ctx context.Context, s *Share, cm *wire.Commit, own map[wire.ObjectID]*stm.Object) (verdict, error) {
	p := &pending{share: s, writes: cm.Writes, own: own, done: make(chan verdict, 1)}
	c.mu.Lock()
	if err := c.mu.err; err != nil {
		c.mu.Unlock()
		return verdict{}, err
	}
	c.mu.seq++
	cm.ID = wire.CommitID{Replica: c.replica, Seq: c.mu.seq}
	c.mu.pending[cm.ID.Seq] = p
	c.mu.Unlock()
	if err := c.send(ctx, cm); err != nil {
		var fe *wire.FieldError
		if errors.As(err, &fe) || (ctx.Err() != nil && errors.Is(err, ctx.Err()) && !errors.Is(err, transport.ErrClosed)) {
			// Nothing was sent.
			c.mu.Lock()
			delete(c.mu.pending, cm.ID.Seq)
			c.mu.Unlock()
			return verdict{}, fmt.Errorf("client: commit not sent: %w", err)
		}
		return verdict{}, fmt.Errorf("%w: commit %v: %w", ErrInDoubt, cm.ID, err)
	}
	select {
	case v := <-p.done:
		return v, nil
	case <-c.done:
		select {
		case v := <-p.done: // answered just before the end
			return v, nil
		default:
		}
		return verdict{}, fmt.Errorf("%w: commit %v: %w", ErrInDoubt, cm.ID, c.Err())
	case <-ctx.Done():
		return verdict{}, fmt.Errorf("%w: commit %v: %w", ErrInDoubt, cm.ID, ctx.Err())
	}
}
