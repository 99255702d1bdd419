package server

import (
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/weft-stm/weft/authority"
	"github.com/weft-stm/weft/wire"
)

// Access is what a principal may do with a share. Its zero value is
// AccessNone, so a Config that says nothing grants nothing.
type Access uint8

// Accesses, weakest first.
const (
	AccessNone  Access = 0 // may not open the share: ShareClosed code forbidden
	AccessRead  Access = 1 // may open it and receive updates; its commits, with writes or not, are aborted (forbidden)
	AccessWrite Access = 2 // may read and commit
)

func (a Access) String() string {
	switch a {
	case AccessNone:
		return "none"
	case AccessRead:
		return "read"
	case AccessWrite:
		return "write"
	}
	return "access(?)"
}

// AnyShare is the share name in Config.Permissions whose entries apply to
// every share that has no entry of its own for the principal.
const AnyShare = "*"

// AnyPrincipal is the principal name in Config.Permissions whose entry
// applies to every principal that has none of its own for that share.
const AnyPrincipal = "*"

// Default values of Config fields left zero.
const (
	DefaultQueueSize        = 4096
	DefaultQueueBytes       = 64 << 20
	DefaultHandshakeTimeout = 10 * time.Second
	DefaultFlushTimeout     = 5 * time.Second
	DefaultMaxSessions      = 10_000
	DefaultHeartbeat        = 15 * time.Second
	DefaultReplicaBinding   = 24 * time.Hour
)

// Config configures a Server. The zero Config accepts any token as the
// anonymous principal and grants no access to any share.
type Config struct {
	// Tokens maps each accepted authentication token to the principal it
	// authenticates. Nil (or empty): authentication is off and every token
	// is accepted, as the principal "anonymous". Otherwise a token not in
	// the map is refused with Error code auth; map "" to a principal to
	// accept anonymous clients.
	Tokens map[string]string

	// Permissions maps a share name, then a principal, to its access.
	// The access of a principal to a share is the first of:
	// Permissions[share][principal], Permissions[share][AnyPrincipal],
	// Permissions[AnyShare][principal], Permissions[AnyShare][AnyPrincipal],
	// DefaultAccess. (A feed everyone reads and one principal writes:
	// {"quotes": {"feeder": AccessWrite, AnyPrincipal: AccessRead}}.)
	Permissions map[string]map[string]Access
	// DefaultAccess applies where Permissions says nothing.
	DefaultAccess Access

	// Shares are created, empty, by New. Other shares are created on their
	// first OpenShare by a principal with write access to them unless
	// NoCreate is set; opening a share that does not exist is otherwise
	// answered with ShareClosed code not_found (a principal with read
	// access only cannot create one).
	Shares   []string
	NoCreate bool
	// Share bounds the memory of each share (its change log and verdicts
	// kept per replica); see authority.Config. Verdicts defaults to
	// Limits.MaxPendingCommits, as protocol.md section 9 asks.
	Share authority.Config

	// Limits are announced in Welcome and enforced on every session once
	// the handshake is done (before it, the default limits apply). Zero
	// fields mean the defaults. MaxOpenShares and MaxPendingCommits (the
	// commits whose answers wait for durability) are enforced by the
	// session.
	Limits wire.Limits

	// QueueSize bounds each session's outbound queue, in messages waiting
	// to be written (a snapshot or delta transfer counts as one). A session
	// whose queue is full when a message is added to it is closed with
	// Error code limit. Default DefaultQueueSize.
	QueueSize int
	// QueueBytes bounds the bytes of other sessions' Updates waiting in a
	// session's queue (an Update up to the frame limit, 1 MiB by default,
	// would let QueueSize of them hold 4 GiB). A session whose queue holds
	// something and would go past it is closed as with QueueSize. Default
	// DefaultQueueBytes (64 MiB).
	QueueBytes int
	// HandshakeTimeout bounds the wait for a client's Hello, and each
	// bounds a TLS handshake before it (Serve gives it to a listener that
	// implements transport.HandshakeTimeoutSetter). Default
	// DefaultHandshakeTimeout.
	HandshakeTimeout time.Duration
	// FlushTimeout bounds the time a closing session spends writing what is
	// left in its queue and its final Error. Default DefaultFlushTimeout.
	FlushTimeout time.Duration
	// MaxSessions bounds the sessions a server serves at once, over all
	// its listeners. A connection beyond it gets Error code limit in
	// answer to its Hello (a client retries with backoff); while
	// refusedSlots connections are being refused so, the next ones are
	// closed at once, unread. Default DefaultMaxSessions; negative: no
	// bound.
	MaxSessions int
	// Heartbeat is announced in Welcome (heartbeat_millis): a client sends
	// a Ping whenever it has sent nothing for that long, and a session
	// the server has heard nothing from for three times as long, while
	// it was waiting for a message, is closed with Error code limit. It
	// is how a server lets go of the sessions of clients that vanished
	// (a machine switched off, a network lost: TCP keeps such a connection
	// open, and the session's shares and queue with it). Choose it above
	// the time one frame (max_frame_size) takes to arrive on the slowest
	// link served, and above a quarter of the longest a share's lock may
	// be held (a checkpoint of a million objects takes about a second):
	// a session waiting for that lock answers no Ping meanwhile, and the
	// Go client drops a connection silent for four heartbeats. Default
	// DefaultHeartbeat; negative: none (Welcome announces 0).
	Heartbeat time.Duration

	// ReplicaBinding is how long a replica id stays bound to the
	// principal whose Hello first used it (with Tokens set; see
	// protocol.md section 5) once the replica has no session: a server
	// serving clients with a new replica id each (a page load each)
	// otherwise keeps a binding of every one for its whole life. After
	// it (and within a quarter of it more), the id is bound again by its
	// next Hello, as after a restart.
	// Default DefaultReplicaBinding; negative: for the life of the server.
	ReplicaBinding time.Duration

	// Logger receives the server's structured logs. Nil: slog.Default().
	Logger *slog.Logger

	// Store keeps the shares durably (see Store; package store holds the
	// implementations). Nil: shares live in memory only. With a store a
	// commit is acknowledged once durable, and Open restores the shares.
	Store Store
	// InjectDropBroadcast is a fault for testing the history checker
	// (issue #6) and nothing else: if n > 0, the n-th Update the server
	// sends (counting each recipient) is dropped.
	InjectDropBroadcast int
	// InjectAckBeforeSync is a fault for testing the history checker
	// (issue #6) and nothing else: Acks and Updates go before the store
	// has synced the change, so a crash can lose acknowledged commits.
	InjectAckBeforeSync bool

	// CheckpointEvery is how many changes of a share the store holds
	// after its last checkpoint before the server writes a new one (at
	// a moment when none of the share's changes waits for durability,
	// if one comes before twice as many), bounding what a restart
	// replays. Default DefaultCheckpointEvery.
	CheckpointEvery int

	// NewEpochID returns the id of each epoch change the server commits
	// (authority.Share.BeginEpoch: one per share, on the share's first
	// open after the server created or loaded it), never 0. Nil: random.
	// A simulation that replays a run sets it.
	NewEpochID func() uint64
}

// randomEpochID is the default Config.NewEpochID.
func randomEpochID() uint64 {
	for {
		if id := rand.Uint64(); id != 0 {
			return id
		}
	}
}

func (c Config) withDefaults() Config {
	c.Limits = c.Limits.WithDefaults()
	if c.Share.Verdicts <= 0 {
		c.Share.Verdicts = c.Limits.MaxPendingCommits
	}
	if c.QueueSize <= 0 {
		c.QueueSize = DefaultQueueSize
	}
	if c.QueueBytes <= 0 {
		c.QueueBytes = DefaultQueueBytes
	}
	if c.HandshakeTimeout <= 0 {
		c.HandshakeTimeout = DefaultHandshakeTimeout
	}
	if c.FlushTimeout <= 0 {
		c.FlushTimeout = DefaultFlushTimeout
	}
	if c.MaxSessions == 0 {
		c.MaxSessions = DefaultMaxSessions
	}
	if c.Heartbeat == 0 {
		c.Heartbeat = DefaultHeartbeat
	}
	if c.ReplicaBinding == 0 {
		c.ReplicaBinding = DefaultReplicaBinding
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.CheckpointEvery <= 0 {
		c.CheckpointEvery = DefaultCheckpointEvery
	}
	if c.NewEpochID == nil {
		c.NewEpochID = randomEpochID
	}
	return c
}

// authenticate returns the principal of token, or false to refuse it.
func (c *Config) authenticate(token string) (string, bool) {
	if len(c.Tokens) == 0 {
		return "anonymous", true
	}
	p, ok := c.Tokens[token]
	return p, ok
}

// access returns what principal may do with the share named share.
func (c *Config) access(share, principal string) Access {
	for _, sh := range [2]string{share, AnyShare} {
		for _, p := range [2]string{principal, AnyPrincipal} {
			if a, ok := c.Permissions[sh][p]; ok {
				return a
			}
		}
	}
	return c.DefaultAccess
}
