package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
	"weak"

	"github.com/weft-stm/weft/authority"
	"github.com/weft-stm/weft/transport"
	"github.com/weft-stm/weft/wire"
)

// ErrServerClosed is returned by Serve after Shutdown.
var ErrServerClosed = errors.New("server: closed")

// Server is the authority for a set of shares. Create it with New; it is
// safe for concurrent use.
type Server struct {
	cfg        Config
	log        *slog.Logger
	sessions   sync.WaitGroup // every session goroutine (reader and writer)
	nextID     atomic.Uint64  // session ids
	drain      chan struct{}  // closed by Shutdown once every session stopped reading
	drainOne   sync.Once
	broadcasts atomic.Int64 // Updates broadcast, while Config.InjectDropBroadcast counts them
	pub        publisher    // with a store (persist.go)
	cps        checkpoints  // checkpoints being written (persist.go)
	// hookSyncWait, for tests, runs when Shutdown starts waiting for the
	// syncs of commits decided before the sessions stopped reading.
	hookSyncWait func()
	restored     sync.Once // the store's shares are loaded (persist.go)
	restoreErr   error
	// hookRestoreWait, for tests, runs when Shutdown starts waiting for
	// a restore in progress.
	hookRestoreWait func()
	// hookCheckpointWait, for tests, runs when Shutdown starts waiting for
	// the checkpoints being written.
	hookCheckpointWait func()

	mu struct {
		sync.Mutex
		shares map[string]*share
		failed map[string]struct{} // shares whose store failed: opens restore them
		// replicas binds each replica id to the principal whose Hello
		// first used it (with Tokens set; see bindReplica); nextRelease
		// is when bindReplica next releases the idle ones.
		replicas    map[uint64]*binding
		nextRelease time.Time
		live        map[*session]struct{}
		admitted    int                              // live sessions not refused (Config.MaxSessions)
		refusing    int                              // live sessions being refused (refusedSlots)
		accepts     map[*context.CancelFunc]struct{} // the accept loops of Serve calls
		shutdown    bool
	}
}

// New returns a server configured by cfg. It starts and reads nothing:
// call Serve, which restores what Config.Store holds first (Open does it
// at once, to report an unreadable store before anything listens).
func New(cfg Config) *Server {
	s := &Server{cfg: cfg.withDefaults(), drain: make(chan struct{})}
	s.log = s.cfg.Logger
	s.mu.shares = map[string]*share{}
	s.mu.failed = map[string]struct{}{}
	s.mu.replicas = map[uint64]*binding{}
	s.mu.live = map[*session]struct{}{}
	s.mu.accepts = map[*context.CancelFunc]struct{}{}
	for _, name := range s.cfg.Shares {
		s.mu.shares[name] = s.newShare(name, authority.NewWithConfig(name, s.cfg.Share))
	}
	return s
}

// Serve accepts sessions on l and runs each until it ends. It returns when
// ctx ends (ctx.Err(), after ending its sessions as Shutdown does and
// waiting for them), after Shutdown (ErrServerClosed, at once: Shutdown
// waits for the sessions), or when Accept fails for good (the listener
// was closed, say); a temporary failure (an error with a Temporary method
// that says so, such as EMFILE when the process is out of file
// descriptors) is logged and Accept retried, after 5 ms, then twice as
// long each time in a row, up to 1 s. It closes l before
// returning. Serve may be called several times, on several listeners.
// With Config.Store, the first Serve of a server made by New first
// restores the shares the store holds (as Open does), and returns the
// error if they cannot be read. When ctx ends, checkpoints being written
// may still run once Serve returned: call Shutdown (which waits for them)
// before closing the store.
func (s *Server) Serve(ctx context.Context, l transport.Listener) error {
	defer l.Close()
	if s.shuttingDown() {
		return ErrServerClosed
	}
	if err := s.restoreOnce(); err != nil {
		return err
	}
	actx, cancel := context.WithCancel(ctx)
	defer cancel()
	s.mu.Lock()
	if s.mu.shutdown {
		s.mu.Unlock()
		return ErrServerClosed
	}
	s.mu.accepts[&cancel] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.mu.accepts, &cancel)
		s.mu.Unlock()
	}()

	if hs, ok := l.(transport.HandshakeTimeoutSetter); ok {
		// A TLS handshake counts against the time to say Hello.
		hs.SetHandshakeTimeout(s.cfg.HandshakeTimeout)
	}
	var mine sync.WaitGroup // this Serve's sessions, waited when ctx ends
	// One type each in the log, "none" too.
	maxSessions, heartbeat := fmt.Sprint(s.cfg.MaxSessions), s.cfg.Heartbeat.String()
	if s.cfg.MaxSessions <= 0 {
		maxSessions = "none"
	}
	if s.cfg.Heartbeat <= 0 {
		heartbeat = "none"
	}
	s.log.Info("server listening", "addr", l.Addr(), "max_sessions", maxSessions, "heartbeat", heartbeat)
	var delay time.Duration // before the next Accept, after a temporary failure
	for {
		conn, err := l.Accept(actx)
		if err != nil {
			switch {
			case ctx.Err() != nil:
				mine.Wait() // sessions' contexts derive from ctx: they are ending
				return ctx.Err()
			case s.shuttingDown():
				return ErrServerClosed
			case temporary(err):
				// Out of file descriptors (EMFILE), a connection reset
				// before it was accepted, ...: the sessions that run
				// still deserve their server, and the condition may
				// pass. Wait a little longer each time, as net/http does.
				delay = min(max(2*delay, minAcceptDelay), maxAcceptDelay)
				s.log.Warn("accept failed, retrying", "err", err, "in", delay)
				t := time.NewTimer(delay)
				select {
				case <-t.C:
				case <-actx.Done(): // the next Accept says why
					t.Stop()
				}
				continue
			}
			return fmt.Errorf("server: accept: %w", err)
		}
		delay = 0
		sess := s.newSession(ctx, conn)
		switch s.register(sess, &mine) {
		case registerShutdown:
			sess.discard()
			return ErrServerClosed
		case registerFull:
			sess.discard()
			continue
		}
		go sess.run()
	}
}

// binding is a replica id's principal, the replica's sessions that use
// it, and since when it has had none.
type binding struct {
	principal string
	sessions  int
	idle      time.Time
}

// bindReplica reports whether principal may use replica, and if so counts
// a session of it (a session counted is counted off when it ends,
// unbindReplicaLocked): the first principal to say
// Hello with a replica id owns it while the replica has sessions, and
// for Config.ReplicaBinding after the last, so that no other can commit
// under it (its CommitIDs, and so the verdicts the authority keeps for
// it, are the replica's own). Replica ids are not secret (every Update
// names its origin), so the binding is what stops a principal from
// claiming another's. Without Tokens every client is the same principal,
// and nothing is bound. The binding lives in memory: after a restart, or
// once released, a replica is bound again by its next Hello
// (docs/protocol.md section 5).
func (s *Server) bindReplica(replica uint64, principal string) bool {
	if len(s.cfg.Tokens) == 0 {
		return true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.releaseReplicasLocked()
	b := s.mu.replicas[replica]
	if b == nil {
		b = &binding{principal: principal}
		s.mu.replicas[replica] = b
	}
	if b.principal != principal {
		return false
	}
	b.sessions++
	return true
}

// unbindReplicaLocked counts off a session of replica that bindReplica
// counted. s.mu is locked.
func (s *Server) unbindReplicaLocked(replica uint64) {
	if b := s.mu.replicas[replica]; b != nil {
		if b.sessions--; b.sessions == 0 {
			b.idle = time.Now()
		}
	}
}

// releaseReplicasLocked drops the bindings of replicas without a session
// for Config.ReplicaBinding, at most every quarter of it (and every
// second): a look at every binding, paid for by the Hellos of that time.
// s.mu is locked.
func (s *Server) releaseReplicasLocked() {
	after := s.cfg.ReplicaBinding
	now := time.Now()
	if after < 0 || now.Before(s.mu.nextRelease) {
		return
	}
	for r, b := range s.mu.replicas {
		if b.sessions == 0 && now.Sub(b.idle) >= after {
			delete(s.mu.replicas, r)
		}
	}
	s.mu.nextRelease = now.Add(max(after/4, time.Second))
}

// Bounds of Serve's wait before it accepts again after a temporary failure.
const (
	minAcceptDelay = 5 * time.Millisecond
	maxAcceptDelay = time.Second
)

// temporary reports whether err, from Accept, may pass: the listener
// still works (a resource ran out, EMFILE or ENFILE, or a connection was
// reset before it was accepted).
func temporary(err error) bool {
	var te interface{ Temporary() bool }
	return errors.As(err, &te) && te.Temporary()
}

func (s *Server) shuttingDown() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.mu.shutdown
}

// refusedSlots is how many connections beyond Config.MaxSessions may be
// refused at once with an Error (each holds a session until its Hello
// is read and the Error written, within HandshakeTimeout and
// FlushTimeout); the next ones are closed at once.
const refusedSlots = 64

// Outcomes of register.
const (
	registered       = iota
	registerShutdown // the server is shutting down
	registerFull     // Config.MaxSessions and refusedSlots are taken: close the connection
)

// register adds sess to the live sessions and to both wait groups, unless
// the server is shutting down or full. A session beyond
// Config.MaxSessions is registered to be refused (sess.refused): its
// handshake answers Error code limit.
func (s *Server) register(sess *session, mine *sync.WaitGroup) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mu.shutdown {
		return registerShutdown
	}
	if max := s.cfg.MaxSessions; max > 0 && s.mu.admitted >= max {
		if s.mu.refusing >= refusedSlots {
			return registerFull
		}
		sess.refused = true
		s.mu.refusing++
	} else {
		s.mu.admitted++
	}
	s.mu.live[sess] = struct{}{}
	s.sessions.Add(1)
	mine.Add(1)
	sess.done = func() {
		s.mu.Lock()
		delete(s.mu.live, sess)
		if sess.bound {
			s.unbindReplicaLocked(sess.replica)
		}
		if sess.refused {
			s.mu.refusing--
		} else {
			s.mu.admitted--
		}
		s.mu.Unlock()
		mine.Done()
		s.sessions.Done()
	}
	return registered
}

// Shutdown stops the server gracefully: every Serve stops accepting, and
// every session stops reading, finishes the message it was handling, has
// what is in its outbound queue written (acknowledgements included, with a
// store once the changes they answer are durable), gets
// Error code shutdown and is closed. Shutdown waits for all of it, and
// for a restore of the store's shares in progress (see Serve) and the
// checkpoints being written, so that the store may be closed once it
// returns (also after a Serve returned because its ctx ended: call
// Shutdown before closing the store). If ctx ends first, the sessions' remaining writes are
// abandoned and their connections closed; Shutdown still waits for their
// goroutines to return (which they then do promptly), and returns
// ctx.Err(); a checkpoint still being written then fails once the store
// is closed, which costs only a longer restart.
func (s *Server) Shutdown(ctx context.Context) error {
	// A restore that a Serve started reads the store: wait for it, so
	// that the store may be closed once Shutdown returns. One that did
	// not start never will.
	if s.hookRestoreWait != nil {
		s.hookRestoreWait()
	}
	s.restored.Do(func() { s.restoreErr = ErrServerClosed })
	s.mu.Lock()
	s.mu.shutdown = true
	for cancel := range s.mu.accepts {
		(*cancel)()
	}
	live := make([]*session, 0, len(s.mu.live))
	for sess := range s.mu.live {
		live = append(live, sess)
	}
	s.mu.Unlock()
	for _, sess := range live {
		sess.stopRead()
	}
	// Two phases: first every session stops reading (finishing the message
	// it was handling, whose answers and Updates are queued), then every
	// session writes its queue and closes. So every commit acknowledged
	// reaches every session that has its share open.
	expired := false
	for _, sess := range live {
		select {
		case <-sess.readDone:
		case <-ctx.Done():
			expired = true
		}
		if expired {
			break
		}
	}
	// With a store, Acks and Updates of commits decided before reading
	// stopped may still wait for their sync: they are queued once it
	// lands, before the sessions write their queues and close.
	if s.hookSyncWait != nil {
		s.hookSyncWait()
	}
	if !expired && s.pub.waitIdle(ctx) != nil {
		expired = true
	}
	s.drainOne.Do(func() { close(s.drain) })
	if expired {
		for _, sess := range live {
			sess.abandon()
		}
	}
	done := make(chan struct{})
	go func() { // owned by Shutdown, which waits for done on every path
		s.sessions.Wait()
		close(done)
	}()
	select {
	case <-done:
		if expired { // the sessions were abandoned, however fast they went
			s.log.Warn("server shut down: flush abandoned", "err", ctx.Err())
			return ctx.Err()
		}
		if s.hookCheckpointWait != nil {
			s.hookCheckpointWait()
		}
		if err := s.cps.wait(ctx); err != nil {
			s.log.Warn("server shut down: checkpoint abandoned", "err", err)
			return err
		}
		s.log.Info("server shut down")
		return nil
	case <-ctx.Done():
		for _, sess := range live {
			sess.abandon()
		}
		<-done
		s.log.Warn("server shut down: flush abandoned", "err", ctx.Err())
		return ctx.Err()
	}
}

// share is the server's side of one share: the authoritative state and
// the open handles of sessions, under one lock. Holding mu serialises
// Apply and orders every session's Acks and Updates by version.
//
// Lock order: share.mu, then session.out.mu or publisher.mu. Server.mu is
// never held with any of them.
type share struct {
	name  string
	srv   *Server
	store Store // the server's, or nil
	mu    sync.Mutex
	st    *authority.Share
	subs  map[*handle]struct{} // open handles, of every session

	// The latest snapshot built, while a transfer holds it (see
	// snapshotLocked).
	snap weak.Pointer[snapshot]

	// With a store (see persist.go).
	waiting       int         // items on the publisher, not yet published
	failed        error       // the store failed: the share is closed
	left          atomic.Bool // failed: the next open restores it (Server.share)
	checkpointed  uint64      // version of the last checkpoint
	checkpointing bool        // a checkpoint goroutine runs

	epoch bool // the epoch change of this life of the share is committed (beginEpochLocked)
}

// snapshot is a share's snapshot at one version, shared by the transfers
// of the sessions that open the share at that version.
type snapshot struct {
	version uint64
	chunks  []wire.SnapshotChunk // handle 0; never modified
}

// heldChunk is a session's chunk of a snapshot: the snapshot's objects
// under the session's handle. While it waits to be sent it keeps the
// snapshot, and so the share's cache of it, alive.
type heldChunk struct {
	wire.SnapshotChunk
	snap *snapshot
}

// snapshotLocked returns the share's snapshot at its version under lim
// (the server's limits, the same for every session). A snapshot is built
// whole, every object of the share as wire values, under the share's
// lock: the opens of a share at one version share one, cached for as
// long as a transfer of it is queued somewhere (a weak pointer), so that
// opening a large share again and again, from one session or many, does
// not build it again and again. sh is locked.
func (sh *share) snapshotLocked(lim wire.Limits) *snapshot {
	v := sh.st.Version()
	if snap := sh.snap.Value(); snap != nil && snap.version == v {
		return snap
	}
	snap := &snapshot{version: v, chunks: sh.st.Snapshot(lim)}
	sh.snap = weak.Make(snap)
	return snap
}

func (s *Server) newShare(name string, st *authority.Share) *share {
	return &share{name: name, srv: s, store: s.cfg.Store, st: st, subs: map[*handle]struct{}{}}
}

// share returns the share named name, creating it if create and the
// config allow (nil if not), or the error of restoring a share whose
// store failed.
func (s *Server) share(name string, create bool) (*share, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sh := s.mu.shares[name]
	if sh != nil && sh.left.Load() {
		// Its failure has not made it leave yet (failLocked): it leaves
		// now, so that this open restores it rather than find it failed.
		delete(s.mu.shares, name)
		s.mu.failed[name] = struct{}{}
		sh = nil
	}
	if _, failed := s.mu.failed[name]; sh == nil && failed {
		// A share whose store failed left the server: take it back from
		// what the store holds. (Every other share of the store was
		// loaded at start, so only these are looked for there.)
		restored, err := s.restoreOne(name)
		if err != nil {
			s.log.Error("restoring a share failed", "share", name, "err", err)
			return nil, fmt.Errorf("share %q failed and cannot be restored: %w", name, err)
		}
		delete(s.mu.failed, name)
		if restored != nil {
			s.mu.shares[name] = restored
			return restored, nil
		}
	}
	if sh == nil && create && !s.cfg.NoCreate {
		sh = s.newShare(name, authority.NewWithConfig(name, s.cfg.Share))
		s.mu.shares[name] = sh
		s.log.Info("share created", "share", name)
	}
	return sh, nil
}
