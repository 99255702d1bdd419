package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/weft-stm/weft/transport"
	"github.com/weft-stm/weft/wire"
)

// session is one client connection. Its reader goroutine (run) receives
// and handles messages and owns the session's state, and sends its own
// answers when it is about to wait; its writer goroutine (writeLoop) sends
// what else the outbox holds (see outbox.go). run starts the writer and
// waits for it.
type session struct {
	srv  *Server
	id   uint64
	conn transport.Conn
	log  *slog.Logger
	lim  wire.Limits
	done func() // unregisters the session; set by Server.register

	readCtx    context.Context // Recv's: ending it stops the session gracefully
	stopRead   context.CancelFunc
	hardCtx    context.Context // ending it abandons every write
	cancelHard context.CancelFunc
	dropCtx    context.Context // ending it abandons the queued writes, not the final Error
	cancelDrop context.CancelFunc
	writerDone chan struct{}
	readDone   chan struct{} // closed by endHandling when the reader stopped handling messages
	readOnce   sync.Once
	buffered   transport.Buffered // conn's, if it has one

	refused bool // beyond Config.MaxSessions: the handshake refuses it; set by register

	// Set by the handshake, then read-only.
	principal string
	replica   uint64
	bound     bool // bindReplica counted the session: done counts it off

	// For the heartbeat (watchHeard): messages received, and whether the
	// reader waits for the next one.
	heard     atomic.Uint64
	receiving atomic.Bool

	handles map[wire.ShareHandle]*handle // open shares; reader goroutine only
	// Handles closed by the client whose ShareClosed still waits for
	// durability (see closeShare), each with its flag set once answered;
	// reader goroutine only.
	closing map[wire.ShareHandle]*atomic.Bool
	waiting atomic.Int32 // commits decided, their answers waiting for durability
	fit     wire.Update  // updateFits's; reader goroutine only
	scratch []byte       // updateFits's; reader goroutine only

	// Transfers (an open's snapshot or deltas) queued and not yet sent;
	// the reader reads no further message until none is left
	// (awaitTransfers).
	owed atomic.Int32

	out struct {
		sync.Mutex
		msgs    []wire.Message // waiting to be sent, in order
		items   int            // in msgs, for the bound: a transfer is one item
		wake    chan struct{}  // capacity 1: something was queued or closing set
		closing bool           // nothing more is queued
		final   *wire.Error    // sent after the queue, then the connection closes
		writing bool           // a goroutine sends: it alone, until the queue is empty
		reader  bool           // the one sending is the reader goroutine

		// The holder of writing's.
		spare []wire.Message // the other buffer of msgs

		// transfers counts the transfers in msgs; sent (capacity 1) is
		// signalled once a batch holding one was sent, or one was
		// dropped (see awaitTransfers).
		transfers int
		sent      chan struct{}

		// bytes counts the bytes of the Updates in msgs (Config.QueueBytes).
		bytes int

		flushTimer *time.Timer // abandons a send of the reader's after reading stopped
	}
}

// handle is a share opened by a session under a handle.
type handle struct {
	sess   *session
	id     wire.ShareHandle
	sh     *share
	access Access
	// gone is set, under sh's lock, once the handle is closed (by the
	// client, by the session's end, or by the share's failure): a transfer
	// still waiting for durability then no longer subscribes it, and the
	// client may open the handle number again.
	gone atomic.Bool
}

func (s *Server) newSession(ctx context.Context, conn transport.Conn) *session {
	sess := &session{srv: s, id: s.nextID.Add(1), conn: conn, lim: s.cfg.Limits,
		handles: map[wire.ShareHandle]*handle{}, writerDone: make(chan struct{}), readDone: make(chan struct{})}
	sess.log = s.log.With("session", sess.id, "remote", conn.RemoteAddr())
	sess.readCtx, sess.stopRead = context.WithCancel(ctx)
	sess.hardCtx, sess.cancelHard = context.WithCancel(context.WithoutCancel(ctx))
	sess.dropCtx, sess.cancelDrop = context.WithCancel(sess.hardCtx)
	sess.out.wake = make(chan struct{}, 1)
	sess.out.sent = make(chan struct{}, 1)
	sess.buffered, _ = conn.(transport.Buffered)
	return sess
}

// discard closes the connection of a session that register did not
// admit, and releases the contexts newSession derived from Serve's (a
// flood of connections closed so would otherwise keep one each).
func (s *session) discard() {
	s.conn.Close()
	s.cancelDrop()
	s.stopRead()
	s.cancelHard()
}

// run is the session's reader goroutine.
func (s *session) run() {
	defer s.done()
	go s.writeLoop()
	stopWatch := context.AfterFunc(s.readCtx, s.readStopped)
	final, reason := s.serve()
	stopWatch()
	s.endHandling()
	if s.srv.shuttingDown() {
		select { // see Shutdown
		case <-s.srv.drain:
		case <-s.hardCtx.Done():
		}
	}
	for _, h := range s.handles {
		h.sh.mu.Lock()
		delete(h.sh.subs, h)
		h.gone.Store(true)
		h.sh.mu.Unlock()
	}
	s.finish(final)
	t := time.NewTimer(s.srv.cfg.FlushTimeout)
	select {
	case <-s.writerDone:
	case <-t.C:
		s.abandon()
		// A write that no context interrupts (one waiting for a TLS
		// handshake) ends when the connection closes.
		s.conn.Close()
		<-s.writerDone
	}
	t.Stop()
	s.out.Lock()
	if s.out.flushTimer != nil {
		s.out.flushTimer.Stop()
	}
	s.out.Unlock()
	s.conn.Close()
	s.stopRead()
	s.cancelHard()
	s.out.Lock()
	if s.out.final != nil {
		reason = s.out.final.Error()
	}
	s.out.Unlock()
	s.log.Info("session closed", "principal", s.principal, "reason", reason)
}

// serve runs the handshake and then handles messages until the session
// ends. It returns the Error to send last (nil: none) and why it ended.
func (s *session) serve() (*wire.Error, string) {
	// Before Welcome both sides apply the default limits (protocol.md
	// section 5), whatever the listener was given; handshake sets the
	// server's once Welcome is queued.
	if ls, ok := s.conn.(transport.LimitSetter); ok {
		ls.SetLimits(wire.DefaultLimits())
	}
	hctx, cancel := context.WithTimeout(s.readCtx, s.srv.cfg.HandshakeTimeout)
	m, err := s.conn.Recv(hctx)
	cancel()
	if err != nil {
		if s.readCtx.Err() == nil && errors.Is(err, context.DeadlineExceeded) {
			return &wire.Error{Code: wire.CodeUnexpected, Message: "no hello received in time"}, "handshake timeout"
		}
		return s.recvFailed(err)
	}
	if f := s.handshake(m); f != nil {
		return f, "handshake refused"
	}
	if hb := s.srv.cfg.Heartbeat; hb > 0 {
		defer s.watchHeard(hb)()
	}
	for {
		// Answers go out when the reader would wait for the next message,
		// so that the answers to a burst of messages go out together.
		if s.buffered == nil || !s.buffered.Buffered() {
			s.flush()
		}
		s.awaitTransfers()
		// Once reading has stopped, no further message is handled, even
		// one already received: Shutdown counts on it (see readStopped).
		if err := s.readCtx.Err(); err != nil {
			return s.recvFailed(err)
		}
		s.receiving.Store(true)
		m, err := s.conn.Recv(s.readCtx)
		s.receiving.Store(false)
		if err != nil {
			return s.recvFailed(err)
		}
		s.heard.Add(1)
		switch m := m.(type) {
		case *wire.Ping:
			s.push(&wire.Pong{Nonce: m.Nonce})
		case *wire.Pong:
		case *wire.OpenShare:
			if f := s.open(m); f != nil {
				return f, "unexpected open_share"
			}
		case *wire.CloseShare:
			s.closeShare(m)
		case *wire.Commit:
			s.commit(m)
		case *wire.Error:
			return nil, "client error: " + m.Error()
		default:
			return &wire.Error{Code: wire.CodeUnexpected,
				Message: fmt.Sprintf("%v is not a client message after the handshake", m.Type())}, "unexpected " + m.Type().String()
		}
	}
}

// watchHeard closes the session once the reader has waited for a
// message and heard none for three heartbeats (Config.Heartbeat): it
// looks every heartbeat. Time the reader spends elsewhere (handling a
// message, or holding off reading while a transfer is unsent) is not
// silence: a client cannot be heard while it is not read. It returns
// what stops it.
func (s *session) watchHeard(every time.Duration) (stop func()) {
	var (
		mu      sync.Mutex
		stopped bool
		last    = s.heard.Load()
		silent  int
		t       *time.Timer
	)
	mu.Lock()
	defer mu.Unlock()
	t = time.AfterFunc(every, func() {
		mu.Lock()
		defer mu.Unlock()
		if stopped {
			return
		}
		if n := s.heard.Load(); n != last || !s.receiving.Load() {
			last, silent = n, 0
		} else if silent++; silent >= 3 {
			msg := fmt.Sprintf("heard nothing for %v (heartbeat %v)", time.Duration(silent)*every, every)
			s.log.Info("session silent; closing it", "principal", s.principal, "heartbeat", every)
			s.finish(&wire.Error{Code: wire.CodeLimit, Message: msg})
			s.stopRead()
			return
		}
		t.Reset(every)
	})
	return func() {
		mu.Lock()
		defer mu.Unlock()
		stopped = true
		t.Stop()
	}
}

// heartbeatMillis is hb as Welcome's heartbeat_millis: 0 for none, at
// least 1 otherwise.
func heartbeatMillis(hb time.Duration) uint32 {
	if hb <= 0 {
		return 0
	}
	return uint32(min(max(hb.Milliseconds(), 1), math.MaxUint32))
}

// endHandling marks the reader as done handling messages (readDone).
func (s *session) endHandling() {
	s.readOnce.Do(func() { close(s.readDone) })
}

// recvFailed returns what to send after a final Recv error.
func (s *session) recvFailed(err error) (*wire.Error, string) {
	var fe *wire.FieldError
	switch {
	case errors.As(err, &fe):
		s.log.Warn("malformed frame", "principal", s.principal, "err", err)
		return &wire.Error{Code: wire.CodeProtocol, Message: fe.Error()}, "malformed frame"
	case s.readCtx.Err() != nil:
		// Shutdown, Serve's context, or the session is closing itself
		// (queue overflow or a failed write: then the final Error is
		// already chosen, and finish keeps it).
		return &wire.Error{Code: wire.CodeShutdown, Message: "server shutting down"}, "stopped"
	}
	return nil, err.Error()
}

func (s *session) handshake(m wire.Message) *wire.Error {
	hello, ok := m.(*wire.Hello)
	if !ok {
		return &wire.Error{Code: wire.CodeUnexpected, Message: fmt.Sprintf("expected hello, got %v", m.Type())}
	}
	v, ok := wire.Negotiate(hello.MinVersion, hello.MaxVersion, wire.MinProtocolVersion, wire.ProtocolVersion)
	if !ok {
		s.log.Info("handshake refused: version", "min", hello.MinVersion, "max", hello.MaxVersion)
		return &wire.Error{Code: wire.CodeVersion, Message: fmt.Sprintf(
			"this server speaks protocol versions %d to %d; the client speaks %d to %d",
			wire.MinProtocolVersion, wire.ProtocolVersion, hello.MinVersion, hello.MaxVersion)}
	}
	if s.refused {
		s.log.Info("handshake refused: sessions", "replica", hello.Replica, "max", s.srv.cfg.MaxSessions)
		return &wire.Error{Code: wire.CodeLimit, Message: fmt.Sprintf(
			"the server serves %d sessions, its most: try again later", s.srv.cfg.MaxSessions)}
	}
	principal, ok := s.srv.cfg.authenticate(hello.Token)
	if !ok {
		s.log.Info("handshake refused: auth", "replica", hello.Replica, "agent", hello.Agent)
		return &wire.Error{Code: wire.CodeAuth, Message: "unknown token"}
	}
	if hello.Replica == 0 {
		return &wire.Error{Code: wire.CodeProtocol, Message: "hello: replica 0 is reserved"}
	}
	if !s.srv.bindReplica(hello.Replica, principal) {
		// The message does not name the owner.
		s.log.Warn("handshake refused: replica of another principal", "principal", principal, "replica", hello.Replica, "agent", hello.Agent)
		return &wire.Error{Code: wire.CodeAuth, Message: fmt.Sprintf("replica %d belongs to another principal: each client needs its own replica id", hello.Replica)}
	}
	s.principal, s.replica = principal, hello.Replica
	s.bound = len(s.srv.cfg.Tokens) > 0
	s.push(&wire.Welcome{Version: v, Session: s.id, Limits: s.lim, HeartbeatMillis: heartbeatMillis(s.srv.cfg.Heartbeat)})
	if ls, ok := s.conn.(transport.LimitSetter); ok {
		ls.SetLimits(s.lim)
	}
	s.log.Info("session opened", "principal", principal, "replica", hello.Replica, "agent", hello.Agent, "version", v)
	return nil
}

// open handles OpenShare. Only a handle already open is fatal.
func (s *session) open(m *wire.OpenShare) *wire.Error {
	// Handles the server closed (their share failed) are free again.
	for id, h := range s.handles {
		if h.gone.Load() {
			delete(s.handles, id)
		}
	}
	for id, answered := range s.closing {
		if answered.Load() {
			delete(s.closing, id)
		}
	}
	if _, ok := s.handles[m.Share]; ok {
		return &wire.Error{Code: wire.CodeUnexpected, Message: fmt.Sprintf("open_share on handle %d, which is open", m.Share)}
	}
	if _, ok := s.closing[m.Share]; ok {
		// Its ShareClosed would follow this open's answers.
		return &wire.Error{Code: wire.CodeUnexpected, Message: fmt.Sprintf("open_share on handle %d before the share_closed answering its close_share", m.Share)}
	}
	refuse := func(code wire.Code, msg string) {
		s.log.Info("share refused", "principal", s.principal, "share", m.Name, "code", code)
		s.push(&wire.ShareClosed{Share: m.Share, Code: code, Message: msg})
	}
	if len(s.handles) >= s.lim.MaxOpenShares {
		refuse(wire.CodeLimit, fmt.Sprintf("at most %d shares may be open", s.lim.MaxOpenShares))
		return nil
	}
	acc := s.srv.cfg.access(m.Name, s.principal)
	if acc == AccessNone {
		refuse(wire.CodeForbidden, fmt.Sprintf("%s may not read share %q", s.principal, m.Name))
		return nil
	}
	// Creating a share takes write access: else any reader could make
	// shares without end (each one memory, and with a store, data).
	sh, err := s.srv.share(m.Name, acc == AccessWrite)
	if err != nil {
		refuse(wire.CodeInternal, err.Error())
		return nil
	}
	if sh == nil {
		msg := fmt.Sprintf("no share %q", m.Name)
		if acc < AccessWrite && !s.srv.cfg.NoCreate {
			msg += " (opening one creates it only with write access)"
		}
		refuse(wire.CodeNotFound, msg)
		return nil
	}
	h := &handle{sess: s, id: m.Share, sh: sh, access: acc}
	s.handles[m.Share] = h

	sh.mu.Lock()
	if sh.failed != nil {
		sh.mu.Unlock()
		delete(s.handles, m.Share)
		refuse(wire.CodeInternal, sh.failed.Error())
		return nil
	}
	if err := sh.beginEpochLocked(); err != nil {
		sh.mu.Unlock()
		delete(s.handles, m.Share)
		refuse(wire.CodeInternal, err.Error())
		return nil
	}
	if !sh.st.InHistory(m.Have, m.Epoch) {
		// Served a delta, or its commits validated, the copy would mix two
		// histories under one numbering.
		e := sh.st.Epoch()
		sh.mu.Unlock()
		delete(s.handles, m.Share)
		s.log.Warn("share refused: the client's copy is of another history", "principal", s.principal,
			"share", m.Name, "have", m.Have, "epoch", fmt.Sprintf("%d:%d", m.Epoch.Version, m.Epoch.ID),
			"version", sh.st.Version(), "server_epoch", fmt.Sprintf("%d:%d", e.Version, e.ID))
		s.push(&wire.ShareClosed{Share: m.Share, Code: wire.CodeDiverged, Message: fmt.Sprintf(
			"the copy at version %d is not in this server's history of share %q (at version %d): its data was restored from a backup or replaced since the copy was made; the copy and its unanswered commits must be dropped, and the share opened again without them",
			m.Have, m.Name, sh.st.Version())})
		return nil
	}
	msgs := s.transfer(sh, m, acc)
	if sh.store == nil {
		if s.push(msgs...) {
			sh.subs[h] = struct{}{} // Updates start after the transfer
		}
	} else {
		// The transfer holds the changes decided so far: it goes once they
		// are durable, and the Updates of later ones after it.
		sh.publishLocked(nil, func() {
			if !h.gone.Load() && s.enqueue(msgs, true) {
				sh.subs[h] = struct{}{}
			}
		}, func() {
			if !h.gone.Swap(true) {
				s.deliver(&wire.ShareClosed{Share: m.Share, Code: wire.CodeInternal, Message: sh.failed.Error()})
			}
		})
	}
	sh.mu.Unlock()
	op := msgs[0].(*wire.Opened)
	// Debug: a client may open and close shares in a loop, and sessions
	// are logged at Info already.
	s.log.Debug("share opened", "principal", s.principal, "share", m.Name, "handle", m.Share,
		"access", acc, "have", m.Have, "version", op.Version, "transfer", op.Transfer)
	return nil
}

// transfer returns Opened and the frames that bring a client holding
// m.Have up to date. sh is locked.
func (s *session) transfer(sh *share, m *wire.OpenShare, acc Access) []wire.Message {
	op := &wire.Opened{Share: m.Share, Version: sh.st.Version(), Access: wire.AccessRead, Epoch: sh.st.Epoch()}
	if acc == AccessWrite {
		op.Access = wire.AccessWrite
	}
	if m.Have == op.Version && m.Have != 0 {
		op.Transfer = wire.TransferNone
		return []wire.Message{op}
	}
	if m.Have != 0 && m.Have < op.Version {
		if changes, ok := sh.st.DeltaSince(m.Have); ok {
			if deltas, ok := splitDelta(m.Share, changes, s.lim); ok {
				op.Transfer = wire.TransferDelta
				return append([]wire.Message{op}, deltas...)
			}
		}
	}
	op.Transfer = wire.TransferSnapshot
	msgs := []wire.Message{op}
	snap := sh.snapshotLocked(s.lim)
	held := make([]heldChunk, len(snap.chunks))
	for i := range snap.chunks {
		held[i] = heldChunk{SnapshotChunk: snap.chunks[i], snap: snap}
		held[i].Share = m.Share
		msgs = append(msgs, &held[i].SnapshotChunk)
	}
	return msgs
}

// deltaHeader bounds a Delta's bytes besides its changes: type, handle,
// more flag and change count.
const deltaHeader = 1 + 5 + 1 + 5

// splitDelta cuts changes into Deltas that fit lim, or returns false if a
// change alone does not fit (the caller then sends a snapshot).
func splitDelta(h wire.ShareHandle, changes []wire.Change, lim wire.Limits) ([]wire.Message, bool) {
	budget := lim.MaxFrameSize - deltaHeader
	var out []wire.Message
	cur := &wire.Delta{Share: h}
	size := 0
	for _, ch := range changes {
		// The encoding of a one-change Delta with handle 0 is 4 bytes
		// (type, handle, more, count) plus the change.
		n := len(wire.AppendMessage(nil, &wire.Delta{Changes: []wire.Change{ch}})) - 4
		if n > budget {
			return nil, false
		}
		if len(cur.Changes) == lim.MaxChanges || size+n > budget {
			cur.More = true
			out = append(out, cur)
			cur, size = &wire.Delta{Share: h}, 0
		}
		cur.Changes = append(cur.Changes, ch) // copies the Change; its Writes are never modified
		size += n
	}
	return append(out, cur), true
}

func (s *session) closeShare(m *wire.CloseShare) {
	sc := &wire.ShareClosed{Share: m.Share, Code: wire.CodeClosed, Message: "closed as asked"}
	h := s.handles[m.Share]
	if h == nil {
		s.push(sc)
		return
	}
	delete(s.handles, m.Share)
	sh := h.sh
	sh.mu.Lock()
	defer sh.mu.Unlock()
	delete(sh.subs, h)
	h.gone.Store(true)
	s.log.Debug("share closed", "share", sh.name, "handle", m.Share)
	if sh.waiting == 0 {
		s.push(sc)
		return
	}
	// After the answers to the commits before it, and the transfer of
	// the open, which wait for durability (see publishLocked). Until
	// then the handle is not free (open).
	answered := new(atomic.Bool)
	if s.closing == nil {
		s.closing = map[wire.ShareHandle]*atomic.Bool{}
	}
	s.closing[m.Share] = answered
	answer := func() {
		answered.Store(true) // before the client can see the answer
		s.deliver(sc)
	}
	sh.publishLocked(nil, answer, answer)
}

// commit handles Commit: the session's checks, then the share's verdict,
// made and answered under the share's lock so that every session gets its
// Acks and Updates of the share in version order.
//
// Commits are decided as they are read; with a store, their answers wait
// for durability, and those are the session's unanswered commits, counted
// in waiting: past max_pending_commits, a commit is aborted with code
// limit (protocol.md section 9).
func (s *session) commit(c *wire.Commit) {
	h := s.handles[c.Share]
	if h == nil {
		s.abort(c, wire.CodeClosed, fmt.Sprintf("share handle %d is not open", c.Share))
		return
	}
	if n := s.waiting.Load(); n >= int32(s.lim.MaxPendingCommits) {
		s.abort(c, wire.CodeLimit, fmt.Sprintf("%d commits of this session are unanswered, the most max_pending_commits allows", n))
		return
	}
	if c.ID.Replica != s.replica {
		s.abort(c, wire.CodeForbidden, fmt.Sprintf("commit %v is not from this session's replica %d", c.ID, s.replica))
		return
	}
	if h.access < AccessWrite {
		// Even without writes: an acknowledged commit makes a version,
		// broadcast to every session with the share open.
		s.abort(c, wire.CodeForbidden, fmt.Sprintf("%s may not commit on share %q (read access)", s.principal, h.sh.name))
		return
	}
	if !s.updateFits(c) {
		s.abort(c, wire.CodeLimit, "its update would not fit in a frame")
		return
	}
	sh := h.sh
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if sh.failed != nil {
		s.abort(c, wire.CodeClosed, fmt.Sprintf("share %q is closed: %v", sh.name, sh.failed))
		return
	}
	r := sh.st.Apply(c)
	var wait func() error
	if r.Ack && !r.Duplicate {
		var err error
		if wait, err = sh.appendLocked(r.Change); err != nil {
			return // the share failed; the commit stays unanswered: in doubt
		}
	}
	reply, u := r.Reply(), r.Update(0)
	if a, ok := reply.(*wire.Abort); ok {
		s.fitAbort(a)
	}
	if !r.Ack || sh.store == nil || s.srv.cfg.InjectAckBeforeSync {
		s.push(reply)
		if u != nil {
			s.broadcast(sh, h, u)
		}
	} else {
		// Acks (a resend's too: its change may not be durable yet) and
		// Updates wait for durability, in version order.
		s.waiting.Add(1)
		sh.publishLocked(wait, func() {
			s.waiting.Add(-1)
			s.deliver(reply)
			if u != nil {
				s.broadcast(sh, h, u)
			}
		}, func() {
			// The store failed: the commit stays unanswered (in doubt),
			// and the share closes; it no longer counts against the
			// session's other shares.
			s.waiting.Add(-1)
		})
	}
	if s.log.Enabled(context.Background(), slog.LevelDebug) {
		s.log.Debug("commit", "share", sh.name, "id", c.ID.String(), "ack", r.Ack, "version", r.Version,
			"code", r.Code, "duplicate", r.Duplicate, "message", r.Message)
	}
}

// broadcast delivers u to every handle open on sh but h. sh is locked.
// The Update is validated and encoded once, not once per session (every
// session has the server's limits); each other handle number gets a
// header of its own before the same bytes (wire.Encoded.WithShare), so
// that a client opening the share under many handles costs a header per
// handle, not a copy of the writes.
func (s *session) broadcast(sh *share, h *handle, u *wire.Update) {
	type encoded struct {
		id wire.ShareHandle
		m  wire.Message
	}
	var encs [4]encoded
	known := encs[:0]
	var first *wire.Encoded // the first encoding, whose bytes the others share
	for sub := range sh.subs {
		if sub == h {
			continue
		}
		var m wire.Message
		for _, e := range known {
			if e.id == sub.id {
				m = e.m
				break
			}
		}
		if m == nil {
			su := *u
			su.Share = sub.id
			m = &su
			var e *wire.Encoded
			var err error
			if first != nil {
				e, err = first.WithShare(sub.id)
			} else if e, err = wire.Encode(&su, s.lim); err == nil {
				first = e
			}
			if err == nil {
				m = e
			} // else the writer meets the error, as without encoding first
			if len(known) < 64 { // past that, a search costs more than a header
				known = append(known, encoded{sub.id, m})
			}
		}
		if n := s.srv.cfg.InjectDropBroadcast; n > 0 && s.srv.broadcasts.Add(1) == int64(n) {
			continue // the injected bug: this Update never leaves
		}
		sub.sess.deliver(m)
	}
}

// fitAbort shortens a, an Abort, until the session's limits let it be sent:
// its message, then its conflicts (as many as fit, first first). A
// commit's conflicts are its reads, but each with a version that may take
// more bytes than the one the client sent.
func (s *session) fitAbort(a *wire.Abort) {
	if wire.Check(a, s.lim) == nil {
		return
	}
	if max := min(s.lim.MaxStringLen, s.lim.MaxFrameSize/8, 1024); len(a.Message) > max {
		a.Message = strings.ToValidUTF8(a.Message[:max], "")
	}
	if wire.Check(a, s.lim) == nil || len(a.Conflicts) == 0 {
		return
	}
	// Keep the conflict with the highest version first: a client waits
	// for that version before it runs the transaction again.
	cs := slices.Clone(a.Conflicts) // the verdict's own stay as they are
	top := 0
	for i, c := range cs {
		if c.Version > cs[top].Version {
			top = i
		}
	}
	cs[0], cs[top] = cs[top], cs[0]
	a.Conflicts = cs
	for n := len(cs); wire.Check(a, s.lim) != nil && n > 1; {
		n = max(n/2, 1)
		a.Conflicts = cs[:n]
	}
}

func (s *session) abort(c *wire.Commit, code wire.Code, msg string) {
	s.log.Debug("commit", "id", c.ID.String(), "ack", false, "code", code, "message", msg)
	s.push(&wire.Abort{ID: c.ID, Code: code, Message: msg})
}

// updateFits reports whether c's Update fits in a frame, whatever the
// handle and version (protocol.md section 9, sizes of broadcasts). It
// encodes into the reader's scratch buffer, so that the check allocates
// nothing.
func (s *session) updateFits(c *wire.Commit) bool {
	s.fit = wire.Update{Share: math.MaxUint32, Version: math.MaxUint64, Origin: c.ID, Writes: c.Writes}
	s.scratch = wire.AppendMessage(s.scratch[:0], &s.fit)
	s.fit.Writes = nil // not kept alive
	fits := len(s.scratch) <= s.lim.MaxFrameSize
	if cap(s.scratch) > 64<<10 {
		s.scratch = nil // one large commit does not hold its size for good
	}
	return fits
}
