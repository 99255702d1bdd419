package pebblestore

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	iofs "io/fs"
	"log/slog"
	"math"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/wal"
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
	// Logger receives the store's warnings (a write-ahead log that could
	// not be recorded, a damaged one, a full disk); nil is slog.Default().
	Logger *slog.Logger
	// Reserve is the disk space, in bytes, that the store sets aside in
	// its directory (the file WEFT-RESERVE) and gives up when the disk
	// fills, so that Pebble can finish the writes it started: without it,
	// Pebble stops the process when it cannot write a log. The store then
	// refuses writes with an error wrapping syscall.ENOSPC until the space
	// can be set aside again. 0 is three memtables' worth, at least 16
	// MiB; a negative Reserve sets none aside.
	Reserve int64
}

// walFile names the file in which the store records the number of the
// newest write-ahead log (see walRecorder).
const walFile = "WEFT-WAL"

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
	// reserve is the space set aside for a full disk (reserve.go); nil if
	// none.
	reserve *reserve
	// waits counts the Appends whose wait has not returned: their changes
	// may not be synced yet (see Load).
	waits atomic.Int64

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
		warnDamagedWAL(dir, fs, logger(opts))
	}
	var res *reserve
	pfs := fs
	if opts.Reserve >= 0 {
		res = &reserve{fs: fs, path: fs.PathJoin(dir, reserveFile), size: opts.Reserve, log: logger(opts)}
		pfs = res.wrap(fs)
	}
	o := options(dir, pfs, opts, false)
	if res != nil && res.size == 0 {
		mem := int64(o.MemTableSize)
		if mem == 0 {
			mem = 4 << 20 // Pebble's default
		}
		res.size = max(minReserve, 3*mem)
	}
	if walHere(dir, o) {
		rec := &walRecorder{fs: fs, dir: dir, log: logger(opts)}
		created := o.EventListener.WALCreated
		o.EventListener.WALCreated = func(info pebble.WALCreateInfo) {
			if created != nil {
				created(info)
			}
			if info.Err == nil {
				rec.record(uint64(info.FileNum))
			}
		}
	}
	db, err := pebble.Open(dir, o)
	if err != nil {
		return nil, fmt.Errorf("pebblestore: cannot open %s: %w", dir, err)
	}
	s := &Store{dir: dir, db: db, reserve: res}
	if err := s.ensureMarker(); err != nil {
		db.Close()
		return nil, err
	}
	if res != nil {
		if err := res.make(); err != nil {
			db.Close()
			return nil, fmt.Errorf("pebblestore: %s: cannot set aside %d bytes of disk for when it fills (the disk is full? free space, or open the store with a smaller Options.Reserve): %w", dir, res.size, err)
		}
		res.full.Store(false) // (given up while Pebble opened, if it had no room)
	} else if err := fs.Remove(fs.PathJoin(dir, reserveFile)); err != nil && !errors.Is(err, os.ErrNotExist) {
		db.Close()
		return nil, fmt.Errorf("pebblestore: %s: cannot remove the reserve of an earlier run: %w", dir, err)
	}
	return s, nil
}

func options(dir string, fs vfs.FS, opts Options, readOnly bool) *pebble.Options {
	log := logger(opts)
	o := &pebble.Options{FS: fs, ReadOnly: readOnly, FormatMajorVersion: pebble.FormatNewest, Logger: newPebbleLogger(log, dir)}
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

func logger(opts Options) *slog.Logger {
	if opts.Logger != nil {
		return opts.Logger
	}
	return slog.Default()
}

// A walRecorder keeps walFile naming the newest write-ahead log, which
// Pebble never deletes: check refuses a store whose directory holds no log
// numbered that or higher, since the acknowledged changes not yet flushed
// to tables were in it (a cleanup job deleting *.log files, say). Pebble
// numbers its logs in increasing order, so a walFile left behind by a
// failed write still names a number no higher than the newest log's.
type walRecorder struct {
	fs  vfs.FS
	dir string
	log *slog.Logger
}

// record writes walFile atomically and durably. Pebble calls it when it
// creates a log, before writing to it.
func (r *walRecorder) record(num uint64) {
	path := r.fs.PathJoin(r.dir, walFile)
	tmp := path + ".tmp"
	err := func() error {
		f, err := r.fs.Create(tmp, vfs.WriteCategoryUnspecified)
		if err != nil {
			return err
		}
		_, err = f.Write([]byte(strconv.FormatUint(num, 10) + "\n"))
		if err == nil {
			err = f.Sync()
		}
		if err = errors.Join(err, f.Close()); err != nil {
			return err
		}
		if err := r.fs.Rename(tmp, path); err != nil {
			return err
		}
		d, err := r.fs.OpenDir(r.dir)
		if err != nil {
			return err
		}
		return errors.Join(d.Sync(), d.Close())
	}()
	if err != nil {
		// The store still works; only the check for a deleted log is
		// weaker until the next log is recorded.
		r.log.Warn("pebblestore: cannot record the newest write-ahead log", "dir", r.dir, "log", num, "err", err)
	}
}

// checkWAL returns an error naming dir if walFile names a log and no log
// numbered that or higher is in dir.
func checkWAL(dir string, fs vfs.FS, ls []string) error {
	f, err := fs.Open(fs.PathJoin(dir, walFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil // a store from before walFile, or created just now
	}
	if err != nil {
		return fmt.Errorf("pebblestore: %s: %w", dir, err)
	}
	b, err := io.ReadAll(f)
	f.Close()
	if err != nil {
		return fmt.Errorf("pebblestore: %s: %w", dir, err)
	}
	want, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		return fmt.Errorf("pebblestore: %s is corrupt: %s holds %q, not a log number", dir, walFile, b)
	}
	if newest, ok := newestWAL(ls); ok && newest >= want {
		return nil
	}
	return fmt.Errorf("pebblestore: %s has lost its write-ahead log (%06d.log, deleted?): the acknowledged commits it held are gone; "+
		"refusing to open it without them. Restore the directory from a backup, or put the log back; "+
		"to open what is left anyway (losing those commits), remove %s", dir, want, fs.PathJoin(dir, walFile))
}

// warnDamagedWAL reads the newest write-ahead log of dir as Pebble will
// replay it, and logs a warning if it ends in an unreadable record. Pebble
// takes that for the end of the log, silently: after a crash it is a torn
// write, never acknowledged; after a clean shutdown it is damage, and the
// changes after it are lost. Only an operator can tell which.
func warnDamagedWAL(dir string, fs vfs.FS, log *slog.Logger) {
	logs, err := wal.Scan(wal.Dir{FS: fs, Dirname: dir})
	if err != nil || len(logs) == 0 {
		return // Pebble reports what it cannot read
	}
	ll := logs[len(logs)-1]
	r := ll.OpenForRead()
	defer r.Close()
	records := 0
	for {
		rec, off, err := r.NextRecord()
		if err == nil {
			_, err = io.Copy(io.Discard, rec)
		}
		if errors.Is(err, io.EOF) {
			return
		}
		if err != nil {
			size := int64(-1)
			if st, serr := fs.Stat(off.PhysicalFile); serr == nil {
				size = st.Size()
			}
			log.Warn("pebblestore: the write-ahead log ends in an unreadable record; the store opens with the changes before it. "+
				"After a crash or power loss this is a write that was never acknowledged (normal); "+
				"after a clean shutdown the log is damaged and the acknowledged changes after that point are lost",
				"dir", dir, "log", off.PhysicalFile, "offset", off.Physical, "size", size, "records", records, "err", err.Error())
			return
		}
		records++
	}
}

// newestWAL returns the highest number of a write-ahead log among the file
// names ls.
func newestWAL(ls []string) (uint64, bool) {
	var max uint64
	found := false
	for _, name := range ls {
		base, ok := strings.CutSuffix(name, ".log")
		if !ok {
			continue
		}
		base, _, _ = strings.Cut(base, "-") // 000123-001.log: a log continued after a failover
		n, err := strconv.ParseUint(base, 10, 64)
		if err != nil {
			continue
		}
		if !found || n > max {
			max, found = n, true
		}
	}
	return max, found
}

// logInterval is how often the store logs one of Pebble's error formats.
const logInterval = 10 * time.Second

// A pebbleLogger passes Pebble's errors to the store's logger, naming the
// directory, at most one line per message format every logInterval: on a
// full disk Pebble retries a failing flush without pause and logs each
// failure. It drops Pebble's informational messages (one per WAL replayed
// at every Open; a damaged one is reported by warnDamagedWAL).
type pebbleLogger struct {
	log *slog.Logger
	dir string
	now func() time.Time

	mu   sync.Mutex
	last map[string]time.Time // by format: when last logged
	left map[string]int       // by format: how many left out since
}

func newPebbleLogger(log *slog.Logger, dir string) *pebbleLogger {
	return &pebbleLogger{log: log, dir: dir, now: time.Now, last: map[string]time.Time{}, left: map[string]int{}}
}

func (*pebbleLogger) Infof(string, ...any) {}

func (l *pebbleLogger) Errorf(format string, args ...any) {
	l.mu.Lock()
	now := l.now()
	if last, ok := l.last[format]; ok && now.Sub(last) < logInterval {
		l.left[format]++
		l.mu.Unlock()
		return
	}
	left := l.left[format]
	l.last[format], l.left[format] = now, 0
	l.mu.Unlock()
	attrs := []any{"dir", l.dir}
	if left > 0 {
		attrs = append(attrs, "suppressed", left)
	}
	l.log.Error("pebble: "+fmt.Sprintf(format, args...), attrs...)
}

func (l *pebbleLogger) Fatalf(format string, args ...any) {
	l.log.Error("pebble: "+fmt.Sprintf(format, args...), "dir", l.dir)
	os.Exit(1)
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
		return fmt.Errorf("pebblestore: %s is not a Weft store: it holds files but no Pebble database; give -data an empty or new directory", dir)
	}
	ls, err := fs.List(dir)
	if err != nil {
		return fmt.Errorf("pebblestore: cannot read directory %s: %w", dir, err)
	}
	if walHere(dir, options(dir, fs, opts, true)) {
		if err := checkWAL(dir, fs, ls); err != nil {
			return err
		}
	}
	db, err := pebble.Open(dir, options(dir, fs, opts, true))
	if err != nil {
		// Pebble also fails to open a database another process (or
		// Store) holds: say so rather than suggest corruption.
		lock, lerr := fs.Lock(fs.PathJoin(dir, "LOCK"))
		if lerr != nil && unwritable(lerr) {
			return fmt.Errorf("pebblestore: cannot open %s: this process may not write there (%w); check the directory's owner and permissions, and that it is not on a read-only file system", dir, lerr)
		}
		if lerr != nil {
			return fmt.Errorf("pebblestore: %s is in use (by another weft server, or client cache, or Store in this process?): %w", dir, lerr)
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
		// An interrupted creation (the marker is written, and flushed to
		// a table, right after Pebble creates the database). A store whose
		// write-ahead log was deleted is caught by checkWAL before.
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

// unwritable reports whether err says that a file may not be written:
// permissions or a read-only file system, not a lock held elsewhere.
func unwritable(err error) bool {
	return errors.Is(err, iofs.ErrPermission) || errors.Is(err, syscall.EROFS)
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
	// Flushed to a table, the marker no longer depends on the write-ahead
	// log: check can then tell a database without it from a store that
	// lost its log.
	if err := s.db.Flush(); err != nil {
		return fmt.Errorf("pebblestore: cannot flush the format marker in %s: %w", s.dir, err)
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

// readable returns nil unless the store is closed or failed.
func (s *Store) readable() error {
	if s.closed {
		return ErrClosed
	}
	if p := s.failed.Load(); p != nil {
		return fmt.Errorf("pebblestore: %s failed earlier: %w", s.dir, *p)
	}
	return nil
}

// writable returns nil if the store may write: it is readable and its
// reserve is in place.
func (s *Store) writable() error {
	if err := s.readable(); err != nil {
		return err
	}
	return s.reserve.check(s.dir)
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
	s.waits.Add(1)
	var once sync.Once
	var err error
	return func() error {
		once.Do(func() {
			if err = b.SyncWait(); err != nil {
				err = s.fail(err)
			}
			b.Close()
			s.waits.Add(-1)
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
	if err := s.readable(); err != nil {
		return err
	}
	if s.waits.Load() > 0 && s.reserve.check(s.dir) == nil {
		// Pebble shows changes before they are synced: a share taken back
		// from the store while its last changes wait for their sync (the
		// server restores a share whose store refused a change) must not
		// serve a state a crash can take back. A synced write makes every
		// write before it durable. (With the disk full it is not tried:
		// the changes' own syncs finish meanwhile.)
		if err := s.db.LogData(nil, pebble.Sync); err != nil {
			return s.fail(err)
		}
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

// walHere reports whether Pebble keeps its write-ahead logs in dir with
// options o: the check for a deleted log (walFile) looks there only. A log
// directory of its own (WALDir) or a failover directory is the operator's
// to keep.
func walHere(dir string, o *pebble.Options) bool {
	return (o.WALDir == "" || o.WALDir == dir) && o.WALFailover == nil
}
