package client

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"reflect"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/weft-stm/weft/stm"
	"github.com/weft-stm/weft/transport"
	"github.com/weft-stm/weft/wire"
)

var (
	// ErrClosed is returned by every call once Close was called, and wrapped
	// in the error of calls that were waiting when it was.
	ErrClosed = errors.New("client: closed")
	// ErrDisconnected is wrapped by the errors of calls made or waiting
	// when the session ended for good for another reason than Close: the
	// connection failed and Options.NoReconnect is set, or a reconnection
	// was refused. The error also wraps the cause (a *wire.Error, io.EOF,
	// ...).
	ErrDisconnected = errors.New("client: disconnected")
	// ErrInDoubt is wrapped by the error of a commit whose verdict will not
	// be known: the session ended for good (its handle's Status is then
	// stm.InDoubt), or ctx ended while Share.Atomically waited. The commit
	// may or may not have been applied by the server, so retrying it
	// blindly is not safe.
	ErrInDoubt = errors.New("client: commit outcome unknown")
	// ErrNotInShare is returned by Share.Atomically when the transaction
	// wrote an object that is not in the share (a local object, or one of
	// another share), or read one in a transaction that writes (a
	// read-only transaction sends nothing, and is not checked).
	ErrNotInShare = errors.New("client: object is not in the share")
	// ErrShareObject is returned by a transaction of the client's
	// workspace (Workspace().Atomically; a call with stm.Auto panics with
	// an error wrapping it) that wrote an object of a share: it would
	// change this replica only. Write a share's objects in the share's
	// Atomically or Run.
	ErrShareObject = errors.New("client: object of a share written outside the share's transactions")
	// ErrUnknownClass is returned by a Create of a class that was not
	// given to Open, and by a cache whose unanswered commits create one.
	ErrUnknownClass = errors.New("client: record of an unknown class")
	// ErrShareClosed is wrapped by the errors of a share that the server
	// closed or refused (a *ShareClosedError carries the code).
	ErrShareClosed = errors.New("client: share closed")
	// ErrAlreadyOpen is returned by Open for a share the client has open:
	// two replicas of one share under one replica id would each take the
	// other's commits for their own.
	ErrAlreadyOpen = errors.New("client: share already open")
)

// AbortError is a commit the server rejected (or, for CodeDependency, that
// the client aborted because a commit it read from was rejected). The
// commit was not applied, and its local effects were undone. It matches
// stm.ErrAborted with errors.Is.
type AbortError struct {
	Code    wire.Code
	Message string
	// Conflicts are the reads the server found overwritten (CodeConflict),
	// with the version that overwrote each.
	Conflicts []wire.Read
}

func (e *AbortError) Error() string {
	if e.Message == "" {
		return "client: commit aborted: " + e.Code.String()
	}
	return "client: commit aborted: " + e.Code.String() + ": " + e.Message
}

// Is makes an AbortError match stm.ErrAborted.
func (e *AbortError) Is(target error) bool { return target == stm.ErrAborted }

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

// State is the state of a client's connection.
type State uint8

const (
	// Connected: the session is up and the shares follow the server.
	Connected State = iota + 1
	// Reconnecting: the connection failed; the client dials again with
	// backoff. Commits go on locally and are sent once it is back.
	Reconnecting
	// Closed: Close was called, or the session ended for good (Err says
	// why).
	Closed
)

func (s State) String() string {
	switch s {
	case Connected:
		return "connected"
	case Reconnecting:
		return "reconnecting"
	case Closed:
		return "closed"
	}
	return "unknown"
}

// Options configure Dial.
type Options struct {
	// Replica is this replica's id (docs/protocol.md section 5). If 0, one
	// is drawn from Rand. Commit and object ids carry it, numbered from 1
	// in each life of a client: two lives must not share a Replica unless
	// they share a Cache (which keeps the numbering), or the server would
	// take the new life's commits for resends of the old one's.
	Replica uint64
	// Rand is the source a replica id is drawn from when Replica is 0, and
	// that jitters reconnection backoff; the library has no randomness of
	// its own. One of Replica and Rand is required.
	Rand rand.Source
	// Token authenticates the session; empty is anonymous.
	Token string
	// Agent names the software in the server's logs; default "weft-go/1".
	Agent string
	// Workspace options (WithBackoff, WithDispatcher, ...) for the replica;
	// the client adds stm.WithReplica. A dispatcher that runs observers
	// synchronously runs them under the share's lock, on the goroutine
	// that commits or receives: such observers must not call the client
	// or its shares (they would wait for that lock forever), only read
	// the change they are given; and one that panics does so halfway
	// through applying a change: the panic reaches the goroutine that
	// committed or received (a committer's Atomically), and the share is
	// left failed.
	Workspace []stm.Option
	// NoReconnect ends the session for good when the connection fails,
	// instead of reconnecting.
	NoReconnect bool
	// MinBackoff and MaxBackoff bound the wait between reconnection
	// attempts, which doubles from MinBackoff up to MaxBackoff (defaults
	// 20ms and 2s), with jitter when Rand is set.
	MinBackoff, MaxBackoff time.Duration
	// Heartbeat, if positive, watches the connection: after Heartbeat
	// with no message from the server the client sends a Ping, and after
	// one more Heartbeat with none it drops the connection and reconnects
	// (ConnErr then says why). Without it, a server that froze, or a
	// connection a network silently lost, goes unnoticed until a write
	// fails: TCP keeps a dead connection open. 0 (the default) watches
	// with twice the heartbeat the server announces in Welcome (a Weft
	// server's is 15 s: a dead one is noticed in 60 to 90 s), or nothing
	// if it announces none; a negative Heartbeat watches nothing. Choose
	// it above the longest the server may take to answer (a server
	// writing a checkpoint of a share holds its commits meanwhile:
	// seconds for a million objects) and the time one frame (the
	// server's max_frame_size) takes to arrive: else a healthy connection
	// is dropped and opened again, repeatedly. A reader busy with what it
	// received (a large snapshot being applied) does not count as
	// silence.
	Heartbeat time.Duration
	// OnState, if set, is called with each new connection state, in order,
	// on the client's connection goroutine: it must not block.
	OnState func(State)
	// Cache, if set, keeps the replicas and the unanswered commits on disk
	// (see Cache): Dial then succeeds while the server is unreachable (the
	// client starts reconnecting), and Open serves a cached share at once.
	// The replica id is the cache's once it has one. A cache serves one
	// client at a time: Dial refuses one that a client not closed uses.
	Cache Cache
	// OnAbort, if set, is called with every commit the server rejects
	// (and those aborted with it), after its handle is resolved: the way
	// to learn of the rejection of a commit made before a restart, which
	// has no handle any more (Handle.ID is the id a callback names). It
	// runs on the client's reader goroutine, after the handle is resolved,
	// and must not block. (With OnAbort or OnAcknowledge set, a goroutine
	// waiting in Share.Atomically no longer receives its own verdict: a
	// callback taking a lock its caller holds would wait for itself.)
	OnAbort func(share string, id wire.CommitID, err error)
	// OnAcknowledge, if set, is called with every commit the server
	// acknowledges and the version it gave, after its handle is resolved;
	// like OnAbort, it also reports the commits made before a restart. A
	// commit resent after a restart that did not record its answer may be
	// reported twice, with the same version. It runs as OnAbort does and
	// must not block.
	OnAcknowledge func(share string, id wire.CommitID, version uint64)
	// CacheCheckpointEvery bounds what a restart on the cache replays: the
	// changes of a share kept after its checkpoint before the client
	// writes a new one (default DefaultCacheCheckpointEvery).
	CacheCheckpointEvery int

	// InjectNoDeps is a fault for testing the history checker (issue #6)
	// and nothing else: commits name no deps, so one that read an aborted
	// speculative write may still be acknowledged.
	InjectNoDeps bool
}

// Client is one session with a Weft server, and the local replica of the
// shares it opens (one stm.Workspace for all of them). After a network
// failure it reconnects (see Options.NoReconnect).
type Client struct {
	dialer  transport.Dialer
	addr    string
	opts    Options
	replica uint64
	ws      *stm.Workspace

	closeOnce sync.Once
	closing   chan struct{} // closed by Close
	done      chan struct{} // closed when the connection goroutine returns
	heard     atomic.Uint64 // messages received, for the heartbeat (watch)
	sent      atomic.Uint64 // batches sent, for the server's heartbeat (keepAlive)
	waiting   atomic.Bool   // the reader waits for a message (watch)

	mu struct {
		sync.Mutex
		err     error // why the session ended for good, once it has
		state   State
		changed chan struct{} // closed and replaced when state changes
		conn    transport.Conn
		limits  wire.Limits // the server's, from Welcome
		// heartbeat is the server's, from Welcome: the client sends a
		// Ping when it has sent nothing for that long (keepAlive).
		heartbeat time.Duration
		out       []wire.Message
		spare     []wire.Message // out's other slice: the two swap at each send
		wake      chan struct{}  // wakes the writer
		// sending: a goroutine is sending out on conn, in queue order:
		// the writer, which empties it, or a committer sending its lone
		// commit itself, which sends one batch and wakes the writer for
		// the rest (sendQueued).
		sending  bool
		seq      uint64 // the last CommitID sequence used
		nextH    wire.ShareHandle
		shares   map[wire.ShareHandle]*Share
		pending  map[uint64]*spec // unanswered commits, by CommitID.Seq
		connErr  error            // of the last failed attempt to connect (ConnErr)
		room     chan struct{}    // closed when pending falls below the limit; nil while no one waits
		cacheErr error
		rng      *rand.Rand
		recv     *receiver // of conn, while its reader goroutine runs
	}
	leased       atomic.Bool   // a receiver may be leased to committers (see receiver.resume)
	selfReceives atomic.Uint64 // receives by committers (awaitVerdict), for tests
}

// Dial connects to addr with dialer, performs the handshake, and starts
// the client's connection goroutine. The session's limits are those of
// Welcome. ctx bounds the first dial and handshake only: a failure there
// is returned, not retried, unless Options.Cache is set (without
// NoReconnect) and the server could not be reached: the client then
// starts offline from its cache
// (Reconnecting; ConnErr says why). A handshake the server refuses (a
// wrong token, no common protocol version) fails Dial either way, with an
// error wrapping the server's *wire.Error.
func Dial(ctx context.Context, dialer transport.Dialer, addr string, opts Options) (*Client, error) {
	if opts.Cache == nil || !reflect.TypeOf(opts.Cache).Comparable() {
		return dial(ctx, dialer, addr, opts)
	}
	if _, busy := cachesInUse.LoadOrStore(opts.Cache, struct{}{}); busy {
		return nil, errors.New("client: the cache is in use by another client (Close that one first): both would take its replica id and commit numbers")
	}
	c, err := dial(ctx, dialer, addr, opts)
	if err != nil {
		cachesInUse.Delete(opts.Cache)
	}
	return c, err
}

// cachesInUse holds the caches of the clients not closed yet: a cache
// serves one client at a time.
var cachesInUse sync.Map

func dial(ctx context.Context, dialer transport.Dialer, addr string, opts Options) (*Client, error) {
	replica := opts.Replica
	for replica == 0 {
		if opts.Rand == nil {
			return nil, errors.New("client: Options needs a Replica or a Rand")
		}
		replica = opts.Rand.Uint64()
	}
	if opts.Agent == "" {
		opts.Agent = "weft-go/1"
	}
	if opts.CacheCheckpointEvery <= 0 {
		opts.CacheCheckpointEvery = DefaultCacheCheckpointEvery
	}
	if opts.MinBackoff <= 0 {
		opts.MinBackoff = 20 * time.Millisecond
	}
	if opts.MaxBackoff < opts.MinBackoff {
		opts.MaxBackoff = max(2*time.Second, opts.MinBackoff)
	}
	var seq uint64
	if opts.Cache != nil {
		cached, last, err := opts.Cache.Replica()
		switch {
		case err != nil:
			return nil, fmt.Errorf("client: cache: %w", err)
		case cached != 0 && opts.Replica != 0 && cached != opts.Replica:
			return nil, fmt.Errorf("client: the cache belongs to replica %d, not %d", cached, opts.Replica)
		case cached != 0:
			replica, seq = cached, last
		default:
			if err := opts.Cache.SetReplica(replica, 0); err != nil {
				return nil, fmt.Errorf("client: cache: %w", err)
			}
		}
	}
	if seq >= 1<<32 {
		return nil, fmt.Errorf("client: the cache's replica %d has used %d commit numbers: no room for object ids is left", replica, seq)
	}
	c := &Client{dialer: dialer, addr: addr, opts: opts, replica: replica,
		closing: make(chan struct{}), done: make(chan struct{})}
	conn, welcome, err := c.handshake(ctx)
	var refused *refusedError
	switch {
	case err == nil:
	case opts.Cache != nil && !opts.NoReconnect && !errors.As(err, &refused):
		// Offline: the cache serves, and the client reconnects.
		welcome = &wire.Welcome{}
	default:
		return nil, err
	}
	wsOpts := append(append([]stm.Option(nil), opts.Workspace...), stm.WithReplica(replica), stm.WithCommitGuard(c.guard))
	if seq > 0 {
		// Object ids of this life start above those of earlier lives:
		// each life starts at the highest commit number recorded (which
		// it raises before anything it creates is sent), times 2^32, the
		// room it leaves for the objects of one life per commit number.
		wsOpts = append(wsOpts, stm.WithIDsAbove(seq<<32))
	}
	c.ws = stm.NewWorkspace(wsOpts...)
	c.mu.state = Connected
	if conn == nil {
		c.mu.state = Reconnecting
		c.mu.connErr = err
	}
	c.mu.seq = seq
	c.mu.changed = make(chan struct{})
	c.mu.conn = conn
	c.mu.limits = welcome.Limits.WithDefaults()
	c.mu.heartbeat = time.Duration(welcome.HeartbeatMillis) * time.Millisecond
	c.mu.wake = make(chan struct{}, 1)
	c.mu.shares = map[wire.ShareHandle]*Share{}
	c.mu.pending = map[uint64]*spec{}
	if opts.Rand != nil {
		c.mu.rng = rand.New(opts.Rand)
	}
	go c.run(conn)
	return c, nil
}

// handshake dials and says Hello; it returns the connection with the
// server's limits adopted.
func (c *Client) handshake(ctx context.Context) (transport.Conn, *wire.Welcome, error) {
	conn, err := c.dialer(ctx, c.addr)
	if err != nil {
		return nil, nil, fmt.Errorf("client: dial %s: %w", c.addr, err)
	}
	hello := &wire.Hello{MinVersion: wire.MinProtocolVersion, MaxVersion: wire.ProtocolVersion,
		Replica: c.replica, Token: c.opts.Token, Agent: c.opts.Agent}
	if err := conn.Send(ctx, hello); err != nil {
		conn.Close()
		return nil, nil, fmt.Errorf("client: hello: %w", err)
	}
	m, err := conn.Recv(ctx)
	if err != nil {
		conn.Close()
		return nil, nil, fmt.Errorf("client: handshake: %w", err)
	}
	switch m := m.(type) {
	case *wire.Welcome:
		if m.Version < wire.MinProtocolVersion || m.Version > wire.ProtocolVersion {
			// Not a version the Hello offered: what follows may not be in
			// a language this client speaks, and the server's choice will
			// not change.
			err := fmt.Errorf("client: handshake: the server chose protocol version %d, this client speaks %d to %d",
				m.Version, wire.MinProtocolVersion, wire.ProtocolVersion)
			_ = conn.Send(ctx, &wire.Error{Code: wire.CodeVersion, Message: err.Error()})
			conn.Close()
			return nil, nil, &refusedError{err}
		}
		if ls, ok := conn.(transport.LimitSetter); ok {
			ls.SetLimits(m.Limits)
		}
		return conn, m, nil
	case *wire.Error:
		conn.Close()
		switch m.Code {
		case wire.CodeProtocol, wire.CodeVersion, wire.CodeAuth, wire.CodeForbidden:
			return nil, nil, &refusedError{fmt.Errorf("client: handshake refused: %w", m)}
		}
		// The server is going away (a restart), failed, or found the
		// Hello late (a slow link): another attempt may succeed.
		return nil, nil, fmt.Errorf("client: handshake: %w", m)
	default:
		conn.Close()
		return nil, nil, fmt.Errorf("client: handshake: got %v, want welcome", m.Type())
	}
}

// refusedError is a handshake the server refused for good (protocol,
// version, authentication, permission): reconnecting would not help.
type refusedError struct{ error }

func (e *refusedError) Unwrap() error { return e.error }

// Replica returns the replica id of the session.
func (c *Client) Replica() uint64 { return c.replica }

// Workspace returns the local replica: every share's objects live in it.
func (c *Client) Workspace() *stm.Workspace { return c.ws }

// State returns the connection's state.
func (c *Client) State() State {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.mu.state
}

// ConnErr returns why the client is not connected while it is
// Reconnecting (or started offline from its cache): what ended the last
// connection, then why the last attempt to connect failed: a server that
// is away, or one that cannot be reached as configured (a TLS setting that
// does not match the server's, say), which otherwise look alike. It is
// nil once connected.
func (c *Client) ConnErr() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.mu.connErr
}

// WaitState waits until the connection is in state st, or ctx ends.
func (c *Client) WaitState(ctx context.Context, st State) error {
	for {
		c.mu.Lock()
		cur, ch := c.mu.state, c.mu.changed
		c.mu.Unlock()
		if cur == st {
			return nil
		}
		if cur == Closed {
			return c.Err()
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Close ends the session: it closes the connection, waits for the
// client's goroutines to return, and makes every waiting call return an
// error wrapping ErrClosed (ErrInDoubt too for a commit awaiting its
// verdict). The workspace stays readable. Close is idempotent.
func (c *Client) Close() error {
	c.closeOnce.Do(func() {
		close(c.closing)
		c.mu.Lock()
		if c.mu.conn != nil {
			c.mu.conn.Close()
		}
		c.mu.Unlock()
		<-c.done
		if c.opts.Cache != nil && reflect.TypeOf(c.opts.Cache).Comparable() {
			cachesInUse.Delete(c.opts.Cache)
		}
	})
	return nil
}

// Err returns why the session ended, or nil while it is up (connected or
// reconnecting).
func (c *Client) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.mu.err
}

// Flush waits until every commit made before the call (on any share) is
// acknowledged or aborted. It returns nil even if some were aborted (their
// handles say so), ctx's error if it ends first, and, if the session (or a
// share) ended for good with commits unanswered, the error of the first of
// them: it wraps ErrInDoubt and the session's error. On a client whose
// session has ended, it returns that error (Err).
func (c *Client) Flush(ctx context.Context) error {
	c.resumeReader()
	c.mu.Lock()
	ended := c.mu.err
	seqs := slices.Sorted(maps.Keys(c.mu.pending)) // "first" is in commit order
	hs := make([]*stm.Handle, 0, len(seqs))
	for _, seq := range seqs {
		hs = append(hs, c.mu.pending[seq].handle)
	}
	c.mu.Unlock()
	if ended != nil {
		return ended
	}
	return waitAll(ctx, hs)
}

// waitAll waits until every handle of hs is done, or ctx ends. It
// returns the error of the first handle left in doubt (its session or
// share ended: the error wraps ErrInDoubt and why), if any.
func waitAll(ctx context.Context, hs []*stm.Handle) error {
	var doubt error
	for _, h := range hs {
		select {
		case <-h.Done():
			if err := h.Err(); doubt == nil && errors.Is(err, ErrInDoubt) {
				doubt = err
			}
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return doubt
}

// enqueueLocked queues m for the writer of the current connection. While
// reconnecting there is none, and m is dropped: what matters is resent
// from the shares' state once the connection is back. c.mu is locked.
func (c *Client) enqueueLocked(m wire.Message) {
	if c.mu.conn == nil {
		return
	}
	c.mu.out = append(c.mu.out, m)
	if !c.mu.sending {
		c.wakeLocked()
	}
	if c.mu.recv != nil && c.leased.Load() {
		c.mu.recv.resume() // m's answer is awaited
	}
}

func (c *Client) wakeLocked() {
	select {
	case c.mu.wake <- struct{}{}:
	default:
	}
}

// pong queues the answer to a Ping. If the last message queued is a Pong
// not yet sent, it answers this Ping instead, in the same place (its
// nonce replaced): the earlier Ping goes unanswered, which the protocol
// allows, and a server that sends Pings but reads nothing does not make
// the queue grow without end.
func (c *Client) pong(nonce uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if n := len(c.mu.out); n > 0 {
		if p, ok := c.mu.out[n-1].(*wire.Pong); ok {
			p.Nonce = nonce // queued, not being sent: sendQueued took it out otherwise
			return
		}
	}
	c.enqueueLocked(&wire.Pong{Nonce: nonce})
}

func (c *Client) enqueue(m wire.Message) {
	c.mu.Lock()
	c.enqueueLocked(m)
	c.mu.Unlock()
}

// enqueueCommitLocked queues the commit m like enqueueLocked, except when
// it is the only commit in flight and no send is in progress: then it
// returns the connection, and the caller must call sendQueued on it once
// it holds no share's lock. A lone commit is sent by its committer, which
// is about to wait for the verdict in any case, so that a round trip
// costs no hand-off to the writer; commits streamed without waiting go to
// the writer, which sends each backlog with one write.
func (c *Client) enqueueCommitLocked(m wire.Message) transport.Conn {
	if c.mu.conn == nil || c.mu.sending || len(c.mu.pending) != 1 {
		c.enqueueLocked(m)
		return nil
	}
	c.mu.out = append(c.mu.out, m)
	c.mu.sending = true
	return c.mu.conn
}

// sendQueued sends the queue on conn, then clears sending (which the
// caller set): all of it, or with once only what is queued when it starts
// (a committer's send: Run blocks for one write at most, and what was
// queued meanwhile wakes the writer). A failed send closes conn, so that
// the reader sees it, and drops the queue: the connection is done, and
// what matters is resent on the next one. Nothing is sent once conn is no
// longer the current connection (run cleared sending when it replaced
// it).
func (c *Client) sendQueued(conn transport.Conn, once bool) {
	c.mu.Lock()
	for c.mu.conn == conn && len(c.mu.out) > 0 {
		// The batch is this sender's alone until sent: out goes on in the
		// other slice, and spare holds neither meanwhile.
		msgs := c.mu.out
		c.mu.out, c.mu.spare = c.mu.spare[:0], nil
		c.mu.Unlock()
		// No context ends this send but the connection's close: a send
		// blocks only while the server reads nothing, and then the
		// connection is lost and closed anyway.
		err := conn.SendBatch(context.Background(), msgs)
		c.sent.Add(1)
		clear(msgs) // sent messages are not kept alive by the reused slice
		c.mu.Lock()
		if err != nil {
			conn.Close()
			if c.mu.conn == conn {
				c.mu.out = nil
			}
			break
		}
		if c.mu.conn == conn {
			c.mu.spare = msgs[:0]
		}
		if once {
			break
		}
	}
	if c.mu.conn == conn {
		c.mu.sending = false
		if len(c.mu.out) > 0 {
			c.wakeLocked()
		}
	}
	c.mu.Unlock()
}

// run owns the connection: it serves conn, and after a failure dials
// again with backoff, resyncs the shares and resends unanswered commits,
// until Close or a failure that ends the session for good.
func (c *Client) run(conn transport.Conn) {
	defer close(c.done)
	for {
		err := errors.New("client: started offline")
		if conn != nil {
			err = c.serve(conn)
		}
		c.mu.Lock()
		c.mu.conn, c.mu.out, c.mu.spare, c.mu.sending = nil, nil, nil, false
		c.mu.Unlock()
		select {
		case <-c.closing:
			c.end(ErrClosed)
			return
		default:
		}
		if c.opts.NoReconnect {
			c.end(fmt.Errorf("%w: %w", ErrDisconnected, err))
			return
		}
		c.mu.Lock()
		if c.mu.connErr == nil { // the heartbeat may have said why already
			c.mu.connErr = err
		}
		c.mu.Unlock()
		c.setState(Reconnecting)
		conn, err = c.reconnect()
		if err != nil {
			c.end(err)
			return
		}
	}
}

// serve runs conn's writer and reads until the connection fails.
func (c *Client) serve(conn transport.Conn) error {
	quit := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		c.writeLoop(conn, quit)
	}()
	c.mu.Lock()
	hb := c.mu.heartbeat
	c.mu.Unlock()
	if period := c.watchPeriod(hb); period > 0 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.watch(conn, quit, period)
		}()
	}
	if hb > 0 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.keepAlive(quit, hb)
		}()
	}
	err := c.readLoop(conn)
	conn.Close()
	close(quit)
	wg.Wait()
	return err
}

// watchPeriod is the period of watch for a connection whose server
// announced the heartbeat hb: Options.Heartbeat if set, else twice hb (a
// server that asks for one answers the Pings keepAlive sends at least
// every heartbeat, so four of silence mean it is gone), else none.
func (c *Client) watchPeriod(hb time.Duration) time.Duration {
	switch {
	case c.opts.Heartbeat > 0:
		return c.opts.Heartbeat
	case c.opts.Heartbeat < 0:
		return 0
	}
	return 2 * hb
}

// watch is the heartbeat of conn (Options.Heartbeat, or the server's):
// every period it looks whether a message came; after one silent period
// (no message, and the reader waiting for one) it pings, after two it
// closes conn, which ends the reader and so the connection.
func (c *Client) watch(conn transport.Conn, quit chan struct{}, period time.Duration) {
	t := time.NewTicker(period)
	defer t.Stop()
	last, silent := c.heard.Load(), 0
	for {
		select {
		case <-quit:
			return
		case <-t.C:
		}
		if n := c.heard.Load(); n != last || !c.waiting.Load() {
			// Heard from, or busy with what it heard (a large snapshot
			// takes a while to apply): not silent.
			last, silent = n, 0
			continue
		}
		if silent++; silent == 1 {
			c.enqueue(&wire.Ping{Nonce: last})
			continue
		}
		c.mu.Lock()
		c.mu.connErr = fmt.Errorf("client: no message from the server for %v: connection dropped", time.Duration(silent)*period)
		c.mu.Unlock()
		conn.Close()
		return
	}
}

// keepAlive answers the server's heartbeat (Welcome's heartbeat_millis):
// every half heartbeat it looks whether anything was sent since it last
// looked, and sends a Ping if not (one at a time), so that the server
// hears from the client at least every one and a half heartbeats, and
// does not take it for gone (it may close a session silent for three).
func (c *Client) keepAlive(quit chan struct{}, every time.Duration) {
	t := time.NewTicker(max(every/2, time.Millisecond))
	defer t.Stop()
	last, pinged := c.sent.Load(), false
	for {
		select {
		case <-quit:
			return
		case <-t.C:
		}
		if n := c.sent.Load(); n != last {
			last, pinged = n, false
			continue
		}
		if !pinged { // else its Ping waits to be sent: one is enough
			c.enqueue(&wire.Ping{})
			pinged = true
		}
	}
}

// reconnect dials with backoff until a handshake succeeds, then reopens
// every share from the version it holds and resends every unanswered
// commit in order, in that order on the new connection. It returns an
// error only when the session must end: Close, or a refused handshake.
func (c *Client) reconnect() (transport.Conn, error) {
	wait := c.opts.MinBackoff
	for {
		timer := time.NewTimer(c.jitter(wait))
		select {
		case <-c.closing:
			timer.Stop()
			return nil, ErrClosed
		case <-timer.C:
		}
		wait = min(2*wait, c.opts.MaxBackoff)
		ctx, cancel := context.WithTimeout(context.Background(), c.opts.MaxBackoff+5*time.Second)
		go func() { // Close interrupts the attempt

			select {
			case <-c.closing:
				cancel()
			case <-ctx.Done():
			}
		}()
		conn, welcome, err := c.handshake(ctx)
		cancel()
		var refused *refusedError
		switch {
		case errors.As(err, &refused):
			return nil, fmt.Errorf("%w: %w", ErrDisconnected, err)
		case err != nil:
			c.mu.Lock()
			c.mu.connErr = err
			c.mu.Unlock()
			continue
		}
		c.mu.Lock()
		select {
		case <-c.closing:
			c.mu.Unlock()
			conn.Close()
			return nil, ErrClosed
		default:
		}
		lim := welcome.Limits.WithDefaults()
		if err := c.resendableLocked(lim); err != nil {
			// Sent, it would fail the connection, and the next one, for
			// ever: the session ends, and the cache (if any) keeps it.
			c.mu.Unlock()
			conn.Close()
			return nil, fmt.Errorf("%w: %w", ErrDisconnected, err)
		}
		c.mu.conn, c.mu.limits = conn, lim
		c.mu.heartbeat = time.Duration(welcome.HeartbeatMillis) * time.Millisecond
		c.mu.connErr = nil
		shares := make([]*Share, 0, len(c.mu.shares))
		for _, s := range c.mu.shares {
			shares = append(shares, s)
		}
		slices.SortFunc(shares, func(a, b *Share) int { return int(a.handle) - int(b.handle) })
		for _, s := range shares {
			// What the last connection left of a transfer goes with it
			// (no reader runs now): its Acks come again on this one.
			s.expect, s.deferred, s.transfer = wire.TransferNone, nil, nil
			if s.announced {
				c.enqueueLocked(s.reopenMessage())
			}
		}
		pending := make([]*spec, 0, len(c.mu.pending))
		for _, p := range c.mu.pending {
			pending = append(pending, p)
		}
		slices.SortFunc(pending, func(a, b *spec) int { return int(a.commit.ID.Seq - b.commit.ID.Seq) })
		for _, p := range pending {
			c.enqueueLocked(p.commit)
		}
		c.mu.Unlock()
		c.setState(Connected)
		return conn, nil
	}
}

// resendableLocked returns an error if what a reconnection sends again
// (the opens of the shares, the unanswered commits) does not fit lim, the
// limits of the new connection's server: one restarted with a smaller
// max_frame_size, say. c.mu is locked.
func (c *Client) resendableLocked(lim wire.Limits) error {
	for _, s := range c.mu.shares {
		if !s.announced {
			continue
		}
		if err := wire.Check(s.reopenMessage(), lim); err != nil {
			return fmt.Errorf("client: share %q can no longer be opened under the server's limits: %w", s.name, err)
		}
	}
	for _, p := range c.mu.pending {
		if err := wire.Check(p.commit, lim); err != nil {
			return fmt.Errorf("client: unanswered commit %v no longer fits the server's limits (raised again, they would let it be sent): %w", p.commit.ID, err)
		}
	}
	return nil
}

func (c *Client) jitter(d time.Duration) time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.mu.rng == nil || d <= 1 {
		return d
	}
	return d/2 + time.Duration(c.mu.rng.Int64N(int64(d/2)))
}

func (c *Client) setState(st State) {
	c.mu.Lock()
	if c.mu.state == st || c.mu.state == Closed {
		c.mu.Unlock()
		return
	}
	c.mu.state = st
	close(c.mu.changed)
	c.mu.changed = make(chan struct{})
	c.mu.Unlock()
	if c.opts.OnState != nil {
		c.opts.OnState(st)
	}
}

// end ends the session for good with err: every share stops, and every
// unanswered commit is resolved as in doubt.
func (c *Client) end(err error) {
	c.mu.Lock()
	if c.mu.err == nil {
		c.mu.err = err
	}
	err = c.mu.err
	shares := make([]*Share, 0, len(c.mu.shares))
	for _, s := range c.mu.shares {
		shares = append(shares, s)
	}
	pending := c.mu.pending
	c.mu.pending = map[uint64]*spec{}
	c.mu.Unlock()
	for _, s := range shares {
		s.fail(err)
	}
	for _, p := range pending {
		p.handle.Abandon(fmt.Errorf("%w: commit %v: %w", ErrInDoubt, p.commit.ID, err))
	}
	c.setState(Closed)
}

// writeLoop sends what is queued, in order, in batches, unless a
// committer is sending (see enqueueCommitLocked), until quit. A failed
// send closes conn, so that the reader sees it and serve ends.
func (c *Client) writeLoop(conn transport.Conn, quit chan struct{}) {
	for {
		c.mu.Lock()
		if !c.mu.sending && len(c.mu.out) > 0 && c.mu.conn == conn {
			c.mu.sending = true
			c.mu.Unlock()
			c.sendQueued(conn, false)
			continue
		}
		wake := c.mu.wake
		c.mu.Unlock()
		select {
		case <-wake:
		case <-quit:
			return
		}
	}
}

// readLoop receives every message of conn and dispatches it, until the
// connection fails, but while a committer receives (see receiver). It
// applies Acks and Updates to the replicas itself, so that each follows
// its share's version order. Updates of one share that have arrived
// together go to the share together (Share.updates).
func (c *Client) readLoop(conn transport.Conn) error {
	r := newReceiver(c, conn)
	c.mu.Lock()
	c.mu.recv = r
	c.mu.Unlock()
	defer func() {
		r.end()
		c.mu.Lock()
		if c.mu.recv == r {
			c.mu.recv = nil
		}
		c.mu.Unlock()
	}()
	for {
		if err := r.loopTurn(); err != nil {
			return err
		}
		if err := r.receive(context.Background()); err != nil {
			return err
		}
		r.loopReceived()
	}
}

// maxRun is the most Updates the reader gathers into one run.
const maxRun = 256

// shareOf returns the share open under handle h, or nil.
func (c *Client) shareOf(h wire.ShareHandle) *Share {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.mu.shares[h]
}

func (c *Client) toShare(h wire.ShareHandle, m wire.Message) *Share {
	s := c.shareOf(h)
	if s != nil {
		s.receive(m)
	}
	return s
}

func (c *Client) verdict(id wire.CommitID, ack *wire.Ack, abort *wire.Abort) {
	if id.Replica != c.replica {
		return
	}
	c.mu.Lock()
	p := c.mu.pending[id.Seq]
	c.mu.Unlock()
	if p == nil {
		return // answered already (a resent commit), or aborted here first
	}
	if s := p.share; ack != nil && s.expect != wire.TransferNone {
		// Mid-transfer: the acknowledged state is not yet the one the
		// Ack follows. (An Abort changes no acknowledged state.)
		s.deferred = append(s.deferred, func() { c.verdict(id, ack, nil) })
		return
	}
	if ack != nil {
		p.share.acked(p, ack.Version)
	} else {
		p.share.aborted(p, abort)
	}
}

// forget drops answered commits from the client's table.
func (c *Client) forget(ps ...*spec) {
	c.mu.Lock()
	for _, p := range ps {
		if c.mu.pending[p.commit.ID.Seq] == p {
			delete(c.mu.pending, p.commit.ID.Seq)
		}
	}
	if c.mu.room != nil && len(c.mu.pending) < c.mu.limits.MaxPendingCommits {
		close(c.mu.room)
		c.mu.room = nil
	}
	c.mu.Unlock()
}
