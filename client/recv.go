package client

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/weft-stm/weft/stm"
	"github.com/weft-stm/weft/transport"
	"github.com/weft-stm/weft/wire"
)

// Receiving. One goroutine at a time receives from a connection and
// dispatches what it receives (a leader/follower scheme): the
// connection's reader goroutine (readLoop) by default, or a goroutine
// waiting in Atomically for the verdict of its commit, the only one in
// flight. That committer reads and dispatches until its verdict arrives,
// so that a round trip costs no hand-off between goroutines: the reader
// goroutine waking the parked committer costs a wake-up of an idle
// thread, which on a 2-vCPU VM cost about as much as the round trip
// itself (commit-rtt: 0.27-0.36x the bare echo with GOMAXPROCS=2,
// 0.57-0.68x with 1). Once it has its verdict, the committer leaves the
// connection unread for leaseTime, so that its next commit reads its own
// verdict too; the reader goroutine resumes when the lease runs out, or at
// once when anything else awaits the connection (another commit, an
// Open, a WaitVersion).

// leaseTime is how long a committer that read its own verdict keeps the
// connection from the reader goroutine for its next commit. What arrives
// meanwhile unasked (other replicas' Updates) waits that long at most.
const leaseTime = time.Millisecond

// Who receives.
const (
	holderNone      = iota // no one: the connection is leased to committers, or free
	holderLoop             // the reader goroutine
	holderCommitter        // a committer awaiting its verdict
)

// receiver is the receiving side of one connection.
type receiver struct {
	c        *Client
	conn     transport.Conn
	buffered transport.Buffered // conn's, if it has one

	// want: a committer would read its verdicts itself; the reader
	// goroutine stops receiving after the next message if no other
	// commit awaits a verdict.
	want atomic.Bool
	wake chan struct{} // (capacity 1) the reader goroutine's turn may have come

	mu     sync.Mutex
	holder int
	lease  time.Time   // while holder is none, the reader goroutine waits until then
	err    error       // a committer's receive ended the connection: the reader goroutine returns it
	timer  *time.Timer // wakes the reader goroutine when a lease runs out
	// noLease: something awaits the connection (resume) while a holder
	// receives: it must not lease the connection when it is done.
	noLease bool
	// ictx, cancelled by icancel, is what committers receive under
	// (committerTurn).
	ictx    context.Context
	icancel context.CancelFunc

	// What the holder alone touches: a message received while gathering
	// Updates (handled next), and the gathered run.
	next wire.Message
	run  []*wire.Update
}

// errorSendTime bounds the wait to send the Error that tells the server
// why the client ends the connection.
const errorSendTime = time.Second

// errEnded: the reader goroutine is gone; committers wait for verdicts
// from the next connection's.
var errEnded = errors.New("client: connection ended")

func newReceiver(c *Client, conn transport.Conn) *receiver {
	r := &receiver{c: c, conn: conn, wake: make(chan struct{}, 1), holder: holderLoop}
	r.buffered, _ = conn.(transport.Buffered)
	return r
}

func (r *receiver) signal() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// loopTurn waits until the reader goroutine may receive, and makes it the
// holder; it returns the error a committer's receive ended the connection
// with. It is woken (wake) when a committer's turn or a lease ends: a
// committer receiving costs the reader goroutine no wake-up.
func (r *receiver) loopTurn() error {
	for {
		r.mu.Lock()
		switch {
		case r.err != nil:
			err := r.err
			r.mu.Unlock()
			return err
		case r.holder == holderLoop:
			r.mu.Unlock()
			return nil
		case r.holder == holderNone && !time.Now().Before(r.lease):
			r.holder, r.noLease = holderLoop, false
			r.c.leased.Store(false)
			r.mu.Unlock()
			return nil
		}
		r.mu.Unlock()
		<-r.wake
	}
}

// leaseLocked leases the connection to committers for leaseTime; the
// timer wakes the reader goroutine when it runs out (pushed back at each
// new lease, it does not fire while commits keep coming). r.mu is locked.
func (r *receiver) leaseLocked() {
	r.want.Store(false) // granted
	r.c.leased.Store(true)
	r.holder, r.lease = holderNone, time.Now().Add(leaseTime)
	if r.timer == nil {
		r.timer = time.AfterFunc(leaseTime, r.signal)
	} else {
		r.timer.Reset(leaseTime)
	}
}

// loopReceived is called by the reader goroutine after each message it
// dispatched: if a committer wants to read its verdicts and none other is
// awaited, the connection is leased to it.
func (r *receiver) loopReceived() {
	if !r.want.Load() {
		return
	}
	r.c.leased.Store(true) // before awaited: see release
	if r.c.awaited() > 0 {
		return
	}
	r.mu.Lock()
	if r.noLease {
		r.want.Store(false)
		r.noLease = false
	} else {
		r.leaseLocked()
	}
	r.mu.Unlock()
}

// end is called when the reader goroutine returns: no one receives on the
// connection any more.
func (r *receiver) end() {
	r.mu.Lock()
	if r.err == nil {
		r.err = errEnded
	}
	r.holder = holderLoop
	if r.timer != nil {
		r.timer.Stop()
	}
	r.mu.Unlock()
}

// resume ends a committers' lease: something else awaits the connection.
func (r *receiver) resume() {
	r.mu.Lock()
	switch {
	case r.holder == holderNone && !r.lease.IsZero():
		r.lease = time.Time{}
		r.c.leased.Store(false)
		r.signal()
	case r.holder != holderNone:
		// The holder may be about to lease, having counted the verdicts
		// awaited before this one's commit was made.
		r.noLease = true
	}
	r.mu.Unlock()
}

// take makes the calling committer the holder if no one receives.
func (r *receiver) take() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.holder != holderNone || r.err != nil {
		return false
	}
	r.holder = holderCommitter
	return true
}

// release ends a committer's turn: err, a failure of the connection, ends
// it; else the connection is leased to committers again, unless other
// verdicts are awaited or the committer stopped waiting (ctxDone).
func (r *receiver) release(err error, ctxDone bool) {
	// leased is set before the verdicts awaited are counted: a commit
	// made after the count then finds it set, and its resume either ends
	// the lease or, if it comes first, stops it (noLease).
	r.c.leased.Store(true)
	awaited := r.c.awaited()
	r.mu.Lock()
	defer r.mu.Unlock()
	r.holder = holderNone
	switch {
	case err != nil:
		r.err = err
		r.signal()
	case ctxDone || awaited > 0 || r.noLease:
		r.noLease = false
		r.lease = time.Time{}
		r.signal()
	default:
		r.leaseLocked()
	}
}

// receive receives one message (more for a run of Updates) and dispatches
// it; it returns the error that ends the connection (or ctx's). The caller
// holds the connection.
func (r *receiver) receive(ctx context.Context) error {
	m, err := r.recv(ctx)
	if err != nil {
		return err
	}
	return r.dispatch(m)
}

// recv returns the next message: the one gathering Updates left, or the
// connection's next.
func (r *receiver) recv(ctx context.Context) (wire.Message, error) {
	if m := r.next; m != nil {
		r.next = nil
		return m, nil
	}
	c := r.c
	c.waiting.Store(true)
	m, err := r.conn.Recv(ctx)
	c.waiting.Store(false)
	if err != nil {
		return nil, err
	}
	c.heard.Add(1)
	return m, nil
}

// dispatch handles m, a message the holder received; it returns the error
// that ends the connection.
func (r *receiver) dispatch(m wire.Message) error {
	c, conn := r.c, r.conn
	switch m := m.(type) {
	case *wire.Ping:
		c.pong(m.Nonce)
	case *wire.Pong:
	case *wire.Error:
		return m
	case *wire.Opened:
		c.toShare(m.Share, m)
	case *wire.SnapshotChunk:
		c.toShare(m.Share, m)
	case *wire.Delta:
		c.toShare(m.Share, m)
	case *wire.Update:
		run := append(r.run[:0], m)
		var err error
		for r.buffered != nil && len(run) < maxRun && r.buffered.Buffered() {
			var n wire.Message
			if n, err = conn.Recv(context.Background()); err != nil {
				break
			}
			if u, ok := n.(*wire.Update); ok && u.Share == m.Share {
				run = append(run, u)
				continue
			}
			r.next = n
			break
		}
		if s := c.shareOf(m.Share); s != nil {
			s.updates(run)
		}
		// Applied, the Updates are no longer needed: the replica, the
		// acknowledged state and the cache (Cache.AppendLazy) copy what
		// they keep of the ops.
		for _, u := range run {
			wire.ReleaseUpdate(u)
		}
		clear(run) // not kept alive by the reused buffer
		r.run = run[:0]
		if err != nil {
			return err
		}
	case *wire.ShareClosed:
		if s := c.toShare(m.Share, m); s != nil {
			c.mu.Lock()
			if c.mu.shares[m.Share] == s {
				delete(c.mu.shares, m.Share)
			}
			c.mu.Unlock()
		}
	case *wire.Ack:
		c.verdict(m.ID, m, nil)
	case *wire.Abort:
		c.verdict(m.ID, nil, m)
	default:
		err := fmt.Errorf("client: unexpected %v from the server", m.Type())
		// Told if it can be within errorSendTime: a server that reads
		// nothing (the writer blocked, the socket full) must not keep the
		// reader, and the connection, for ever.
		ctx, cancel := context.WithTimeout(context.Background(), errorSendTime)
		_ = conn.Send(ctx, &wire.Error{Code: wire.CodeUnexpected, Message: err.Error()})
		cancel()
		return err
	}
	return nil
}

// wantVerdictLocked is called as a committer that will await its verdict
// (Atomically) queues its commit: the receiver knows it before the
// verdict can arrive, so that the reader goroutine, if it receives the
// verdict, leases the connection to the committer's next commit. Set
// later (in awaitVerdict), it lost that race whenever the verdict came
// first, and the next commit was answered through the reader goroutine
// too. c.mu is locked.
func (c *Client) wantVerdictLocked() {
	if r := c.mu.recv; r != nil && c.opts.OnAbort == nil && c.opts.OnAcknowledge == nil {
		r.want.Store(true)
	}
}

// awaitVerdict waits until h is resolved or ctx ends (then it returns
// ctx's error), receiving on the connection itself while it may. With
// Options.OnAbort or OnAcknowledge set it never receives: those callbacks
// run on the receiving goroutine, and a committer running the callback of
// its own commit while it holds a lock the callback takes (a usual way to
// record verdicts) would wait for itself.
func (c *Client) awaitVerdict(ctx context.Context, h *stm.Handle) error {
	done := h.Done()
	select {
	case <-done:
		return nil
	default:
	}
	c.mu.Lock()
	r := c.mu.recv
	c.mu.Unlock()
	if r != nil && c.opts.OnAbort == nil && c.opts.OnAcknowledge == nil {
		if r.take() {
			if err := r.committerTurn(ctx, h); err != nil {
				return err
			}
		} else {
			r.want.Store(true) // r may be a newer connection than the commit's
		}
	}
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// committerTurn receives and dispatches until h is resolved, the
// connection fails (the reader goroutine then ends it) or ctx ends (its
// error is returned); then it releases the connection. A handle resolved
// without a message (Share.Close, the share failing) interrupts the
// receive, as ctx's end does. A panic (in an observer dispatched
// synchronously, say) ends the connection on its way up, so that the
// reader goroutine does not wait for a holder that is gone.
func (r *receiver) committerTurn(ctx context.Context, h *stm.Handle) error {
	// The receives use the receiver's interrupt context, not ctx: the
	// connection watches one context while it stays the same, and one
	// derived per turn would cost a goroutine per commit when cancelled.
	ictx := r.interruptible()
	stop := context.AfterFunc(ctx, func() { r.interrupt(ictx) })
	defer stop()
	var blocked atomic.Bool // the committer waits in the connection's Recv
	h.OnDone(func(*stm.Handle) {
		if blocked.Load() {
			r.interrupt(ictx) // resolved by another goroutine: stop waiting for a message
		}
	})
	released := false
	defer func() {
		if !released {
			r.release(errPanicked, false)
		}
	}()
	done := h.Done()
	var err error
	for {
		blocked.Store(true)
		select {
		case <-done:
			blocked.Store(false)
			released = true
			r.release(nil, false)
			return nil
		default:
		}
		r.c.selfReceives.Add(1)
		var m wire.Message
		m, err = r.recv(ictx)
		blocked.Store(false)
		if err != nil {
			break
		}
		if err = r.dispatch(m); err != nil {
			break
		}
	}
	released = true
	if ictx.Err() != nil && errors.Is(err, ictx.Err()) {
		// Interrupted: h was resolved meanwhile, or ctx ended.
		r.release(nil, true)
		select {
		case <-done:
			return nil
		default:
		}
		return ctx.Err()
	}
	r.release(err, false) // the reader goroutine ends the connection with it
	return nil
}

// interruptible returns the context committers receive under, a new one
// once the last was cancelled.
func (r *receiver) interruptible() context.Context {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ictx == nil || r.ictx.Err() != nil {
		r.ictx, r.icancel = context.WithCancel(context.Background())
	}
	return r.ictx
}

// interrupt cancels ictx, if it is still the receiver's: the committer
// receiving under it stops waiting.
func (r *receiver) interrupt(ictx context.Context) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ictx == ictx {
		r.icancel()
	}
}

// errPanicked ends a connection whose committer panicked while it held it.
var errPanicked = errors.New("client: a goroutine receiving from the server panicked")

// resumeReader ends a committers' lease of the current connection, if
// any: something else awaits it.
func (c *Client) resumeReader() {
	if !c.leased.Load() {
		return
	}
	c.mu.Lock()
	r := c.mu.recv
	c.mu.Unlock()
	if r != nil {
		r.resume()
	}
}

// awaited returns the number of commits awaiting a verdict.
func (c *Client) awaited() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.mu.pending)
}
