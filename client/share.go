package client

import (
	"context"
	"fmt"
	"slices"
	"sync"

	"github.com/weft-stm/weft/stm"
	"github.com/weft-stm/weft/wire"
)

// internal tags the client's own transactions on the replica (snapshot
// loads, Updates, acknowledged commits), as opposed to the application's.
type internal struct{ share string }

// Share is an open share: its records and their collections, materialised
// in the client's workspace, kept equal to the server's acknowledged state.
type Share struct {
	c       *Client
	name    string
	handle  wire.ShareHandle
	classes map[uint32]*stm.Class

	readyOnce sync.Once
	ready     chan struct{} // closed when the transfer is done or failed

	// Used by the reader goroutine only.
	transfer []wire.Object
	opened   uint64 // Opened's version

	mu struct {
		sync.Mutex
		err     error
		access  wire.Access
		version uint64                           // the share version the replica holds
		index   map[wire.ObjectID]stm.Observable // records and their collections
		entered map[wire.ObjectID]uint64         // share version each joined the replica at
		foreign map[wire.ObjectID]bool           // objects kept out of the replica
		vmap    []verPair                        // increasing local
		txs     map[*stm.Tx]*txWork              // Atomically's transactions running
		changed chan struct{}                    // closed and replaced when version or err changes
	}
}

// verPair says that the replica's local version local holds the share at
// version share.
type verPair struct{ local, share uint64 }

// Open opens the share name, receives its objects and materialises them in
// the client's workspace. Every record in the share must be of one of
// classes (else ErrUnknownClass); objects no record refers to (a
// standalone var or collection) are kept out of the replica, and writes to
// them in Updates are ignored. Open returns once the replica holds the
// share's state as of Opened's version; Updates follow in the background.
// Opening the same name twice gives two independent replicas.
func (c *Client) Open(ctx context.Context, name string, classes ...*stm.Class) (*Share, error) {
	s := &Share{c: c, name: name, classes: map[uint32]*stm.Class{}, ready: make(chan struct{})}
	for _, cl := range classes {
		s.classes[uint32(cl.ID())] = cl
	}
	s.mu.index = map[wire.ObjectID]stm.Observable{}
	s.mu.entered = map[wire.ObjectID]uint64{}
	s.mu.foreign = map[wire.ObjectID]bool{}
	s.mu.txs = map[*stm.Tx]*txWork{}
	s.mu.changed = make(chan struct{})
	c.mu.Lock()
	if err := c.mu.err; err != nil {
		c.mu.Unlock()
		return nil, err
	}
	for {
		c.mu.nextH++
		if c.mu.shares[c.mu.nextH] == nil {
			break
		}
	}
	s.handle = c.mu.nextH
	c.mu.shares[s.handle] = s
	c.mu.Unlock()
	if err := c.send(ctx, &wire.OpenShare{Share: s.handle, Name: name}); err != nil {
		c.mu.Lock()
		delete(c.mu.shares, s.handle)
		c.mu.Unlock()
		return nil, fmt.Errorf("client: open %q: %w", name, err)
	}
	select {
	case <-s.ready:
	case <-ctx.Done():
		// The transfer goes on in the background; the share is abandoned.
		s.Close(context.Background())
		return nil, ctx.Err()
	}
	if err := s.Err(); err != nil {
		return nil, err
	}
	return s, nil
}

// Name returns the share's name.
func (s *Share) Name() string { return s.name }

// Workspace returns the workspace holding the share's objects (the
// client's).
func (s *Share) Workspace() *stm.Workspace { return s.c.ws }

// Version returns the share version the replica holds.
func (s *Share) Version() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.mu.version
}

// Err returns why the share stopped following the server (closed by it,
// the session ended, an Update that could not be applied), or nil.
func (s *Share) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.mu.err
}

// Object returns the share's record or collection with id, if the replica
// has it.
func (s *Share) Object(id wire.ObjectID) (stm.Observable, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	x, ok := s.mu.index[id]
	return x, ok
}

// Records returns the share's records, in id order.
func (s *Share) Records() []*stm.Object {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*stm.Object
	for _, x := range s.mu.index {
		if o, ok := x.(*stm.Object); ok {
			out = append(out, o)
		}
	}
	slices.SortFunc(out, func(a, b *stm.Object) int { return compareIDs(stm.IDOf(a), stm.IDOf(b)) })
	return out
}

func compareIDs(a, b wire.ObjectID) int {
	switch {
	case a.Replica != b.Replica:
		if a.Replica < b.Replica {
			return -1
		}
		return 1
	case a.Seq < b.Seq:
		return -1
	case a.Seq > b.Seq:
		return 1
	}
	return 0
}

// WaitVersion waits until the replica holds version v of the share or
// later. It fails if ctx ends or the share stops following the server
// before.
func (s *Share) WaitVersion(ctx context.Context, v uint64) error {
	for {
		s.mu.Lock()
		ver, err, ch := s.mu.version, s.mu.err, s.mu.changed
		s.mu.Unlock()
		if ver >= v {
			return nil
		}
		if err != nil {
			return err
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Close closes the share on the server. The replica's objects stay in the
// workspace with their last state; the share no longer follows the server.
func (s *Share) Close(ctx context.Context) error {
	s.fail(fmt.Errorf("%w: closed by the client", ErrShareClosed))
	s.c.mu.Lock()
	if s.c.mu.shares[s.handle] == s {
		delete(s.c.mu.shares, s.handle)
	}
	dead := s.c.mu.err != nil
	s.c.mu.Unlock()
	if dead {
		return nil
	}
	// The server answers ShareClosed, ignored now that the handle is free;
	// a reuse of the handle before that answer would be confused with it,
	// so handles are not reused while the counter has not wrapped.
	return s.c.send(ctx, &wire.CloseShare{Share: s.handle})
}

// fail stops the share with err (the first error wins).
func (s *Share) fail(err error) {
	s.mu.Lock()
	if s.mu.err == nil {
		s.mu.err = err
		close(s.mu.changed)
		s.mu.changed = make(chan struct{})
	}
	s.mu.Unlock()
	s.readyOnce.Do(func() { close(s.ready) })
}

// receive handles a message for the share; it runs on the reader.
func (s *Share) receive(m wire.Message) {
	if s.Err() != nil {
		return
	}
	var err error
	switch m := m.(type) {
	case *wire.Opened:
		s.mu.Lock()
		s.mu.access = m.Access
		s.mu.Unlock()
		s.opened = m.Version
		if m.Transfer == wire.TransferNone {
			err = s.load(m.Version, nil)
		}
		s.transfer = nil
	case *wire.SnapshotChunk:
		s.transfer = append(s.transfer, m.Objects...)
		if !m.More {
			err = s.load(s.opened, s.transfer)
			s.transfer = nil
		}
	case *wire.Delta:
		for _, ch := range m.Changes {
			if err = s.apply(ch.Version, ch.Writes, nil); err != nil {
				break
			}
		}
		if err == nil && !m.More {
			s.readyOnce.Do(func() { close(s.ready) })
		}
	case *wire.Update:
		err = s.apply(m.Version, m.Writes, nil)
	case *wire.ShareClosed:
		err = &ShareClosedError{Name: s.name, Code: m.Code, Message: m.Message}
	}
	if err != nil {
		s.fail(err)
	}
}
