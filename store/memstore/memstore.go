package memstore

import (
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/weft-stm/weft/store/internal/codec"
	"github.com/weft-stm/weft/wire"
)

// ErrClosed is returned by every method of a closed Store.
var ErrClosed = errors.New("memstore: store is closed")

// data is what the Stores returned by New and Reopen share.
type data struct {
	mu     sync.Mutex
	shares map[string]*share
}

type share struct {
	version uint64   // the checkpoint's
	chunks  [][]byte // the checkpoint's objects, encoded
	changes [][]byte // after the checkpoint, encoded, in version order
	last    uint64   // the version of the last change (version if none)
}

// Store is an in-memory server.Store. Its methods may be called from many
// goroutines at once.
type Store struct {
	d      *data
	mu     sync.Mutex // guards closed
	closed bool
}

// New returns an empty Store.
func New() *Store { return &Store{d: &data{shares: map[string]*share{}}} }

// Reopen returns a new Store over s's data, as a restart would find it; s
// may be closed or open (both then see the same data).
func (s *Store) Reopen() *Store { return &Store{d: s.d} }

func (s *Store) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// Append stores ch. Its version must follow the share's last one (the
// server's order); anything else is refused, to catch a server bug where it
// happens rather than at the next Load.
func (s *Store) Append(name string, ch wire.Change) (func() error, error) {
	if s.isClosed() {
		return nil, ErrClosed
	}
	b := codec.AppendChange(nil, ch)
	s.d.mu.Lock()
	defer s.d.mu.Unlock()
	sh := s.d.shares[name]
	if sh == nil {
		sh = &share{}
		s.d.shares[name] = sh
	}
	if ch.Version != sh.last+1 {
		return nil, fmt.Errorf("memstore: share %q: append of version %d after %d", name, ch.Version, sh.last)
	}
	sh.changes = append(sh.changes, b)
	sh.last = ch.Version
	return waitNil, nil
}

func waitNil() error { return nil }

// Checkpoint replaces the share's checkpoint and drops the changes at or
// below version.
func (s *Store) Checkpoint(name string, version uint64, objects []wire.Object) error {
	if s.isClosed() {
		return ErrClosed
	}
	chunks := codec.EncodeObjects(objects)
	s.d.mu.Lock()
	defer s.d.mu.Unlock()
	sh := s.d.shares[name]
	if sh == nil {
		sh = &share{}
		s.d.shares[name] = sh
	}
	if version < sh.version {
		return fmt.Errorf("memstore: share %q: checkpoint at version %d older than the one held (%d)", name, version, sh.version)
	}
	// Changes are consecutive after sh.version: the first one to keep is
	// at index version-sh.version.
	drop := 0
	if version > sh.version {
		drop = int(min(version-sh.version, uint64(len(sh.changes))))
	}
	sh.changes = slices.Clone(sh.changes[drop:])
	sh.version, sh.chunks = version, chunks
	sh.last = max(sh.last, version)
	return nil
}

// Backup returns a new Store holding a copy of what s holds now, as a
// copy of a server's data directory would (for tests of a server restored
// from a backup).
func (s *Store) Backup() *Store {
	s.d.mu.Lock()
	defer s.d.mu.Unlock()
	b := New()
	for name, sh := range s.d.shares {
		cp := *sh
		cp.changes = slices.Clone(sh.changes) // the encodings are never modified
		b.d.shares[name] = &cp
	}
	return b
}

// Forget drops the share: its checkpoint and its changes.
func (s *Store) Forget(name string) error {
	if s.isClosed() {
		return ErrClosed
	}
	s.d.mu.Lock()
	defer s.d.mu.Unlock()
	delete(s.d.shares, name)
	return nil
}

// Load calls fn for every share in name order. It decodes under no lock,
// from a copy of the share's state taken under it.
func (s *Store) Load(fn func(share string, version uint64, objects []wire.Object, changes []wire.Change) error) error {
	if s.isClosed() {
		return ErrClosed
	}
	type state struct {
		name    string
		version uint64
		chunks  [][]byte
		changes [][]byte
	}
	s.d.mu.Lock()
	states := make([]state, 0, len(s.d.shares))
	for name, sh := range s.d.shares {
		states = append(states, state{name, sh.version, sh.chunks, slices.Clone(sh.changes)})
	}
	s.d.mu.Unlock()
	slices.SortFunc(states, func(a, b state) int {
		switch {
		case a.name < b.name:
			return -1
		case a.name > b.name:
			return 1
		}
		return 0
	})
	for _, st := range states {
		var objects []wire.Object
		var err error
		for _, c := range st.chunks {
			if objects, err = codec.DecodeObjects(objects, c); err != nil {
				return fmt.Errorf("memstore: share %q: %w", st.name, err)
			}
		}
		var changes []wire.Change
		if len(st.changes) > 0 {
			changes = make([]wire.Change, len(st.changes))
		}
		for i, c := range st.changes {
			if changes[i], err = codec.DecodeChange(c); err != nil {
				return fmt.Errorf("memstore: share %q: %w", st.name, err)
			}
		}
		if err := codec.CheckChanges(st.name, st.version, changes); err != nil {
			return fmt.Errorf("memstore: %w", err)
		}
		if err := fn(st.name, st.version, objects, changes); err != nil {
			return err
		}
	}
	return nil
}

// Close closes s; the data stays for Reopen.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	s.closed = true
	return nil
}
