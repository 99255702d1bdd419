package pebblestore

import (
	"encoding/binary"
	"errors"
	"fmt"
	"log"
	"math"
	"os"
	"sync"
	"sync/atomic"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/weft-stm/weft/store/internal/codec"
	"github.com/weft-stm/weft/wire"
)

// Options configure Open.
type Options struct {
	// FS is the file system the store lives in; nil is the operating
	// system's. Tests pass a vfs.NewCrashableMem to simulate power loss.
	FS vfs.FS
	// Pebble, if not nil, is called with the Pebble options before the
	// database is opened, to tune it (cache, memtable size, logger). It
	// must not change FS or the format settings.
	Pebble func(*pebble.Options)
}

// markerKey holds the format marker.
var markerKey = []byte("weft/format")

// Tags after a share's name in its keys.
const (
	tagHeader = 0x01
	tagChunk  = 0x02
	tagChange = 0x03
)

// ErrClosed is returned by every method of a closed Store.
var ErrClosed = errors.New("pebblestore: store is closed")

// Store is a server.Store in a Pebble database. Its methods may be called
// from many goroutines at once.
type Store struct {
	dir string
	db  *pebble.DB

	// mu is held for reading by every operation on db and for writing by
	// Close, so that Close never closes the database under an operation
	// (Pebble panics on a closed database).
	mu     sync.RWMutex
	closed bool

	// failed holds the first error of a write: the store then refuses
	// every write (see the package doc).
	failed atomic.Pointer[error]

	// As a client's cache (cache.go): seqMu orders the records of the
	// highest commit sequence number, which seqMax holds once seqKnown.
	seqMu    sync.Mutex
	seqMax   uint64
	seqKnown bool
}

// Open opens the store in dir, creating it if dir is missing or empty.
func Open(dir string, opts Options) (*Store, error) {
	fs := opts.FS
	if fs == nil {
		fs = vfs.Default
	}
	fresh := false
	ls, err := fs.List(dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		if err := fs.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("pebblestore: cannot create %s: %w", dir, err)
		}
		fresh = true
	case err != nil:
		return nil, fmt.Errorf("pebblestore: cannot read directory %s: %w", dir, err)
	case len(ls) == 0:
		fresh = true
	}
	if !fresh {
		// Check it read-only first, so that a directory that is not ours
		// is left exactly as it was.
		if err := check(dir, fs, opts); err != nil {
			return nil, err
		}
	}
	db, err := pebble.Open(dir, options(fs, opts, false))
	if err != nil {
		return nil, fmt.Errorf("pebblestore: cannot open %s: %w", dir, err)
	}
	s := &Store{dir: dir, db: db}
	if err := s.ensureMarker(); err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

func options(fs vfs.FS, opts Options, readOnly bool) *pebble.Options {
	o := &pebble.Options{FS: fs, ReadOnly: readOnly, FormatMajorVersion: pebble.FormatNewest, Logger: quietLogger{}}
	if opts.Pebble != nil {
		opts.Pebble(o)
		o.FS, o.ReadOnly, o.FormatMajorVersion = fs, readOnly, pebble.FormatNewest
	}
	// Without a listener Pebble reports a corrupt block through the
	// logger's Fatalf, which ends the process: a server would stop without
	// saying which store, an application with a cache would be killed.
	// With one, the read fails with an error naming the file, and the
	// store's caller reports it.
	if o.EventListener == nil {
		o.EventListener = &pebble.EventListener{}
	}
	if o.EventListener.DataCorruption == nil {
		o.EventListener.DataCorruption = func(pebble.DataCorruptionInfo) {}
	}
	if readOnly {
		o.ErrorIfNotExists = true
	}
	return o
}

// quietLogger drops Pebble's informational messages (one per WAL replayed
// at every Open) and keeps its errors.
type quietLogger struct{}

func (quietLogger) Infof(string, ...any) {}
func (quietLogger) Errorf(format string, args ...any) {
	log.Printf("pebble: "+format, args...)
}
func (quietLogger) Fatalf(format string, args ...any) {
	log.Fatalf("pebble: "+format, args...)
}

// check opens the existing, non-empty directory dir read-only and returns
// an error naming it unless it is a Weft store (or an empty database whose
// creation was interrupted).
func check(dir string, fs vfs.FS, opts Options) error {
	desc, err := pebble.Peek(dir, fs)
	if err != nil {
		return fmt.Errorf("pebblestore: %s is not a readable Weft store (a corrupt or foreign Pebble database?): %w", dir, err)
	}
	if !desc.Exists {
		return fmt.Errorf("pebblestore: %s is not a Weft store: it holds files but no Pebble database; give --data an empty or new directory", dir)
	}
	db, err := pebble.Open(dir, options(fs, opts, true))
	if err != nil {
		// Pebble also fails to open a database another process (or
		// Store) holds: say so rather than suggest corruption.
		lock, lerr := fs.Lock(fs.PathJoin(dir, "LOCK"))
		if lerr != nil {
			return fmt.Errorf("pebblestore: %s is in use (by another weft server?): %w", dir, lerr)
		}
		lock.Close()
		return fmt.Errorf("pebblestore: %s is not a readable Weft store (corrupt?): %w", dir, err)
	}
	defer db.Close()
	marker, closer, err := db.Get(markerKey)
	switch {
	case errors.Is(err, pebble.ErrNotFound):
		it, err := db.NewIter(nil)
		if err != nil {
			return fmt.Errorf("pebblestore: %s: %w", dir, err)
		}
		empty := !it.First()
		if err := errors.Join(it.Error(), it.Close()); err != nil {
			return fmt.Errorf("pebblestore: %s is not a readable Weft store (corrupt?): %w", dir, err)
		}
		if !empty {
			return fmt.Errorf("pebblestore: %s is not a Weft store: a Pebble database without the %q marker (another program's?); refusing to use it", dir, markerKey)
		}
		return nil
	case err != nil:
		return fmt.Errorf("pebblestore: %s is not a readable Weft store (corrupt?): %w", dir, err)
	}
	defer closer.Close()
	if string(marker) != codec.Format {
		return fmt.Errorf("pebblestore: %s holds %q, not %q: another format of store; refusing to use it", dir, marker, codec.Format)
	}
	return nil
}

// ensureMarker writes the marker if the store has none (it was just
// created, as check made sure).
func (s *Store) ensureMarker() error {
	v, closer, err := s.db.Get(markerKey)
	if err == nil {
		ok := string(v) == codec.Format
		closer.Close()
		if ok {
			return nil
		}
		return fmt.Errorf("pebblestore: %s holds %q, not %q", s.dir, v, codec.Format)
	}
	if !errors.Is(err, pebble.ErrNotFound) {
		return fmt.Errorf("pebblestore: %s: %w", s.dir, err)
	}
	if err := s.db.Set(markerKey, []byte(codec.Format), pebble.Sync); err != nil {
		return fmt.Errorf("pebblestore: cannot write the format marker in %s: %w", s.dir, err)
	}
	return nil
}

// Dir returns the directory of the store.
func (s *Store) Dir() string { return s.dir }

// appendShare appends the key prefix of share to b: 's', the escaped name
// and its terminator.
func appendShare(b []byte, share string) []byte {
	b = append(b, 's')
	for i := 0; i < len(share); i++ {
		if share[i] == 0 {
			b = append(b, 0, 0xff)
		} else {
			b = append(b, share[i])
		}
	}
	return append(b, 0, 1)
}

// parseKey splits a share key into the share's name, its tag and the rest.
func parseKey(k []byte) (share string, tag byte, rest []byte, ok bool) {
	if len(k) == 0 || k[0] != 's' {
		return "", 0, nil, false
	}
	var name []byte
	for i := 1; i+1 < len(k); i++ {
		if k[i] != 0 {
			name = append(name, k[i])
			continue
		}
		switch k[i+1] {
		case 0xff:
			name = append(name, 0)
			i++
		case 1:
			if i+2 >= len(k) {
				return "", 0, nil, false
			}
			return string(name), k[i+2], k[i+3:], true
		default:
			return "", 0, nil, false
		}
	}
	return "", 0, nil, false
}

func (s *Store) writable() error {
	if s.closed {
		return ErrClosed
	}
	if p := s.failed.Load(); p != nil {
		return fmt.Errorf("pebblestore: %s failed earlier: %w", s.dir, *p)
	}
	return nil
}

func (s *Store) fail(err error) error {
	s.failed.CompareAndSwap(nil, &err)
	return fmt.Errorf("pebblestore: %s: %w", s.dir, err)
}

// Append writes ch to the write-ahead log without waiting for the sync;
// wait waits for it.
func (s *Store) Append(share string, ch wire.Change) (func() error, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if err := s.writable(); err != nil {
		return nil, err
	}
	key := appendShare(make([]byte, 0, len(share)+12), share)
	key = append(key, tagChange)
	key = binary.BigEndian.AppendUint64(key, ch.Version)
	b := s.db.NewBatch()
	if err := b.Set(key, codec.AppendChange(nil, ch), nil); err != nil {
		b.Close()
		return nil, fmt.Errorf("pebblestore: %s: %w", s.dir, err)
	}
	if err := s.db.ApplyNoSyncWait(b, pebble.Sync); err != nil {
		// Pebble requires SyncWait before Close even on failure.
		b.SyncWait()
		b.Close()
		return nil, s.fail(err)
	}
	var once sync.Once
	var err error
	return func() error {
		once.Do(func() {
			if err = b.SyncWait(); err != nil {
				err = s.fail(err)
			}
			b.Close()
		})
		return err
	}, nil
}

// Checkpoint replaces the share's checkpoint and drops the changes it
// covers, in one synced batch.
func (s *Store) Checkpoint(share string, version uint64, objects []wire.Object) error {
	chunks := codec.EncodeObjects(objects)
	s.mu.RLock()
	defer s.mu.RUnlock()
	if err := s.writable(); err != nil {
		return err
	}
	p := appendShare(nil, share)
	key := func(tag byte, rest ...byte) []byte {
		return append(append(append([]byte(nil), p...), tag), rest...)
	}
	b := s.db.NewBatch()
	defer b.Close()
	var err error
	add := func(e error) {
		if err == nil {
			err = e
		}
	}
	add(b.DeleteRange(key(tagChunk), key(tagChunk+1), nil))
	header := binary.AppendUvarint(nil, version)
	header = binary.AppendUvarint(header, uint64(len(chunks)))
	add(b.Set(key(tagHeader), header, nil))
	for i, c := range chunks {
		add(b.Set(key(tagChunk, binary.BigEndian.AppendUint32(nil, uint32(i))...), c, nil))
	}
	end := key(tagChange + 1)
	if version < math.MaxUint64 {
		end = key(tagChange, binary.BigEndian.AppendUint64(nil, version+1)...)
	}
	add(b.DeleteRange(key(tagChange), end, nil))
	if err != nil {
		return fmt.Errorf("pebblestore: %s: %w", s.dir, err)
	}
	if err := s.db.Apply(b, pebble.Sync); err != nil {
		return s.fail(err)
	}
	return nil
}

// shareState is what Load gathers for one share.
type shareState struct {
	name      string
	version   uint64
	hasHeader bool
	chunks    uint64 // announced by the header
	seen      uint64 // chunks read
	objects   []wire.Object
	changes   []wire.Change
}

// Load scans the shares in key order, which is name order, then each
// share's header, chunks and changes.
func (s *Store) Load(fn func(share string, version uint64, objects []wire.Object, changes []wire.Change) error) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	// After a failed write the database may hold changes that were never
	// synced (Pebble shows its memtable): loading them would hand out a
	// state a crash can take back.
	if err := s.writable(); err != nil {
		return err
	}
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte("s"), UpperBound: []byte("t")})
	if err != nil {
		return fmt.Errorf("pebblestore: %s: %w", s.dir, err)
	}
	defer it.Close()
	corrupt := func(format string, args ...any) error {
		return fmt.Errorf("pebblestore: %s is corrupt: %s", s.dir, fmt.Sprintf(format, args...))
	}
	var cur *shareState
	emit := func() error {
		if cur == nil {
			return nil
		}
		if cur.seen != cur.chunks {
			return corrupt("share %q: checkpoint at %d has %d of its %d chunks", cur.name, cur.version, cur.seen, cur.chunks)
		}
		if err := codec.CheckChanges(cur.name, cur.version, cur.changes); err != nil {
			return corrupt("%v", err)
		}
		return fn(cur.name, cur.version, cur.objects, cur.changes)
	}
	for valid := it.First(); valid; valid = it.Next() {
		name, tag, rest, ok := parseKey(it.Key())
		if !ok {
			return corrupt("unexpected key %q", it.Key())
		}
		if cur == nil || cur.name != name {
			if err := emit(); err != nil {
				return err
			}
			cur = &shareState{name: name}
		}
		val, err := it.ValueAndErr()
		if err != nil {
			return fmt.Errorf("pebblestore: %s: share %q: %w", s.dir, name, err)
		}
		switch tag {
		case tagHeader:
			var n1, n2 int
			cur.version, n1 = binary.Uvarint(val)
			if n1 > 0 {
				cur.chunks, n2 = binary.Uvarint(val[n1:])
			}
			if n1 <= 0 || n2 <= 0 || n1+n2 != len(val) || len(rest) != 0 {
				return corrupt("share %q: bad checkpoint header %x", name, val)
			}
			cur.hasHeader = true
		case tagChunk:
			if !cur.hasHeader || len(rest) != 4 || uint64(binary.BigEndian.Uint32(rest)) != cur.seen {
				return corrupt("share %q: checkpoint chunk %x out of place", name, rest)
			}
			if cur.objects, err = codec.DecodeObjects(cur.objects, val); err != nil {
				return corrupt("share %q: %v", name, err)
			}
			cur.seen++
		case tagChange:
			if len(rest) != 8 {
				return corrupt("share %q: bad change key %x", name, rest)
			}
			ch, err := codec.DecodeChange(val)
			if err != nil {
				return corrupt("share %q: %v", name, err)
			}
			if ch.Version != binary.BigEndian.Uint64(rest) {
				return corrupt("share %q: change of version %d under key of version %d", name, ch.Version, binary.BigEndian.Uint64(rest))
			}
			cur.changes = append(cur.changes, ch)
		default:
			return corrupt("share %q: unknown key tag %#x", name, tag)
		}
	}
	if err := it.Error(); err != nil {
		return fmt.Errorf("pebblestore: %s: %w", s.dir, err)
	}
	return emit()
}

// Close closes the database. Pebble syncs what is in its log first, so
// waits still pending return as their syncs do.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	s.closed = true
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("pebblestore: closing %s: %w", s.dir, err)
	}
	return nil
}
