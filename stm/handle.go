package stm

import (
	"context"
	"sync"

	"github.com/weft-stm/weft/wire"
)

// Status is the stage a commit has reached.
type Status uint8

const (
	// Pending: not yet applied locally.
	Pending Status = iota
	// Applied: visible in the local replica, awaiting the authority.
	Applied
	// Acknowledged: validated by the authority and given its global version.
	Acknowledged
	// Aborted: rejected; Err says why.
	Aborted
	// InDoubt: the verdict will not reach this handle (the session that
	// would have carried it ended for good); Err says why. The authority
	// may or may not have applied the commit.
	InDoubt
)

func (s Status) String() string {
	switch s {
	case Pending:
		return "pending"
	case Applied:
		return "applied"
	case Acknowledged:
		return "acknowledged"
	case Aborted:
		return "aborted"
	case InDoubt:
		return "in doubt"
	}
	return "unknown"
}

// Handle is the future of one commit. A commit is applied locally, then
// either acknowledged by its authority (the server, or the workspace itself
// when embedded) or aborted with the reason, or, when the verdict cannot
// reach it any more, left in doubt. Wait, Done, OnDone and Status observe
// it; all are safe for concurrent use.
type Handle struct {
	id      wire.CommitID // set at creation, never changed
	mu      sync.Mutex
	status  Status
	version uint64
	err     error
	done    chan struct{} // closed at the verdict (or doubt); made by the first Done before that
	onDone  []func(*Handle)
}

var closedChan = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

func ackedHandle(ver uint64) *Handle {
	return &Handle{status: Acknowledged, version: ver, done: closedChan}
}

func abortedHandle(err error) *Handle {
	return &Handle{status: Aborted, err: err, done: closedChan}
}

// NewHandle returns a handle in the Applied stage, for authorities that
// acknowledge later (see Handle.Resolve).
func NewHandle() *Handle {
	return &Handle{status: Applied}
}

// NewHandleFor is NewHandle for a commit its authority knows by id (a
// client's commit: its replica and number), which ID reports.
func NewHandleFor(id wire.CommitID) *Handle {
	return &Handle{id: id, status: Applied}
}

// ID returns the id the commit is known by to its authority, the one a
// client's Options.OnAbort and OnAcknowledge report, so that an
// application can tell which of its commits a callback is about (after a
// restart, the handles are gone but the ids it kept are not). It is zero
// for the embedded workspace, which names commits by version only.
func (h *Handle) ID() wire.CommitID { return h.id }

// Resolve moves an applied handle to Acknowledged with version ver (err nil)
// or to Aborted with err. Only the first Resolve or Abandon has an effect;
// callbacks registered with OnDone then run on the caller's goroutine.
func (h *Handle) Resolve(ver uint64, err error) {
	if err != nil {
		h.finish(Aborted, 0, err)
	} else {
		h.finish(Acknowledged, ver, nil)
	}
}

// Abandon moves an applied handle to InDoubt with err (not nil): its
// verdict will not reach it. Only the first Resolve or Abandon has an
// effect; callbacks registered with OnDone then run on the caller's
// goroutine.
func (h *Handle) Abandon(err error) { h.finish(InDoubt, 0, err) }

func (h *Handle) finish(status Status, ver uint64, err error) {
	h.mu.Lock()
	if h.status >= Acknowledged {
		h.mu.Unlock()
		return
	}
	h.status, h.version, h.err = status, ver, err
	cbs := h.onDone
	h.onDone = nil
	if h.done != nil {
		close(h.done)
	} else {
		h.done = closedChan
	}
	h.mu.Unlock()
	for _, f := range cbs {
		f(h)
	}
}

// Status returns the commit's current stage.
func (h *Handle) Status() Status {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.status
}

// Done is closed when the commit is acknowledged, aborted or left in doubt.
func (h *Handle) Done() <-chan struct{} {
	h.mu.Lock()
	defer h.mu.Unlock()
	// Made on demand: a pipelining committer that checks its handles once
	// they are answered (Status, OnDone, Wait) never needs one.
	if h.done == nil {
		h.done = make(chan struct{})
	}
	return h.done
}

// Wait blocks until the commit is acknowledged (nil), aborted or left in
// doubt (its error), or ctx ends (ctx's error).
func (h *Handle) Wait(ctx context.Context) error {
	h.mu.Lock()
	if h.status >= Acknowledged {
		err := h.err
		h.mu.Unlock()
		return err
	}
	h.mu.Unlock()
	select {
	case <-h.Done():
		return h.Err()
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Err returns why the commit was aborted or is in doubt, or nil.
func (h *Handle) Err() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.err
}

// Version returns the version the authority gave the commit once it is
// acknowledged, and 0 before. For a transaction that wrote nothing it is
// the snapshot the transaction read.
func (h *Handle) Version() uint64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.version
}

// OnDone calls f once the commit is acknowledged, aborted or left in
// doubt: at once, on the caller's goroutine, if it already is; else on
// the goroutine that gives the verdict (for a client of a server, its
// connection's reader).
// So f must be quick and must not wait for another verdict (Atomically,
// Flush, Wait on another handle): the verdict it waits for would have to
// come through the goroutine it holds. Hand such work to a goroutine.
func (h *Handle) OnDone(f func(*Handle)) {
	h.mu.Lock()
	if h.status >= Acknowledged {
		h.mu.Unlock()
		f(h)
		return
	}
	h.onDone = append(h.onDone, f)
	h.mu.Unlock()
}
