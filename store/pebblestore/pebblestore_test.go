package pebblestore_test

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"
	"github.com/weft-stm/weft/server"
	"github.com/weft-stm/weft/store/pebblestore"
	"github.com/weft-stm/weft/store/storetest"
	"github.com/weft-stm/weft/wire"
)

var _ server.Store = (*pebblestore.Store)(nil)

// TestConformanceDisk runs the suite on a directory on disk: real syncs,
// no crash.
func TestConformanceDisk(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storetest.Backend {
		dir := filepath.Join(t.TempDir(), "data")
		return storetest.Backend{Open: func() (server.Store, error) { return pebblestore.Open(dir, pebblestore.Options{}) }}
	})
}

// TestConformanceCrash runs the suite on Pebble's crashable in-memory file
// system: a crash keeps what was synced and a random part of what was not
// (torn writes included).
func TestConformanceCrash(t *testing.T) {
	seed := uint64(1)
	storetest.Run(t, func(t *testing.T) storetest.Backend {
		mem := vfs.NewCrashableMem()
		seed++
		rng := rand.New(rand.NewPCG(seed, 7))
		return storetest.Backend{
			Open: func() (server.Store, error) { return pebblestore.Open("/weft", pebblestore.Options{FS: mem}) },
			Crash: func(s server.Store) error {
				// The clone is the disk as the power cut left it; the
				// store goes on writing to the old one while it closes.
				crashed := mem.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: 50, RNG: rand.New(rand.NewPCG(rng.Uint64(), 0))})
				s.Close()
				mem = crashed
				return nil
			},
		}
	})
}

// snapshot returns the names and hashes of every file under dir.
func snapshot(t *testing.T, dir string) map[string][32]byte {
	t.Helper()
	out := map[string][32]byte{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		out[p] = sha256.Sum256(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// refused checks that Open of dir fails with an error naming it and saying
// why, and leaves every file as it was.
func refused(t *testing.T, dir, why string) {
	t.Helper()
	before := snapshot(t, dir)
	s, err := pebblestore.Open(dir, pebblestore.Options{})
	if err == nil {
		s.Close()
		t.Fatalf("Open(%s): no error", dir)
	}
	t.Logf("Open: %v", err)
	if !strings.Contains(err.Error(), dir) || !strings.Contains(err.Error(), why) {
		t.Errorf("Open(%s): %q, want the directory and %q in it", dir, err, why)
	}
	after := snapshot(t, dir)
	if len(after) != len(before) {
		t.Errorf("Open changed the files: %d before, %d after", len(before), len(after))
	}
	for p, h := range before {
		if after[p] != h {
			t.Errorf("Open changed %s", p)
		}
	}
}

func TestRefuseForeignFiles(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("mine"), 0o644); err != nil {
		t.Fatal(err)
	}
	refused(t, dir, "not a Weft store")
}

func TestRefuseForeignPebble(t *testing.T) {
	dir := t.TempDir()
	db, err := pebble.Open(dir, &pebble.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Set([]byte("user/1"), []byte("someone else's"), pebble.Sync); err != nil {
		t.Fatal(err)
	}
	db.Close()
	refused(t, dir, "without the")
}

func TestRefuseOtherFormat(t *testing.T) {
	dir := t.TempDir()
	db, err := pebble.Open(dir, &pebble.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Set([]byte("weft/format"), []byte("weft-store v99"), pebble.Sync); err != nil {
		t.Fatal(err)
	}
	db.Close()
	refused(t, dir, "weft-store v99")
}

// newStore makes a store in dir with a few changes, and closes it.
func newStore(t *testing.T, dir string) {
	t.Helper()
	s, err := pebblestore.Open(dir, pebblestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for v := uint64(1); v <= 3; v++ {
		wait, err := s.Append("s", wire.Change{Version: v})
		if err == nil {
			err = wait()
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestRefuseCorrupt(t *testing.T) {
	for _, target := range []string{"MANIFEST-", "OPTIONS-"} {
		t.Run(strings.TrimSuffix(target, "-"), func(t *testing.T) {
			dir := t.TempDir()
			newStore(t, dir)
			ents, err := os.ReadDir(dir)
			if err != nil {
				t.Fatal(err)
			}
			n := 0
			for _, e := range ents {
				if strings.HasPrefix(e.Name(), target) {
					os.WriteFile(filepath.Join(dir, e.Name()), []byte("garbage\x00\xff garbage garbage"), 0o644)
					n++
				}
			}
			if n == 0 {
				t.Fatalf("no %s* file in %v", target, ents)
			}
			refused(t, dir, "")
		})
	}
}

// TestEmptyDatabase: a Pebble database with no key at all is a creation
// interrupted before the marker was written; it becomes a store.
func TestEmptyDatabase(t *testing.T) {
	dir := t.TempDir()
	db, err := pebble.Open(dir, &pebble.Options{})
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	s, err := pebblestore.Open(dir, pebblestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	newStore(t, filepath.Join(dir, "missing", "nested")) // created with parents
}

// TestFullDisk: once writes fail (ENOSPC), Append fails, the store stays
// failed, and what was acknowledged before is intact when reopened.
func TestFullDisk(t *testing.T) {
	mem := vfs.NewMem()
	var full atomic.Bool
	fsys := errorfs.Wrap(mem, errorfs.InjectorFunc(func(op errorfs.Op) error {
		if op.Kind.ReadOrWrite() == errorfs.OpIsWrite && full.Load() {
			return syscall.ENOSPC
		}
		return nil
	}))
	s, err := pebblestore.Open("/weft", pebblestore.Options{FS: fsys})
	if err != nil {
		t.Fatal(err)
	}
	for v := uint64(1); v <= 5; v++ {
		wait, err := s.Append("s", wire.Change{Version: v})
		if err == nil {
			err = wait()
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	full.Store(true)
	wait, err := s.Append("s", wire.Change{Version: 6})
	if err == nil {
		err = wait()
	}
	if err == nil {
		t.Fatal("Append on a full disk: no error")
	}
	t.Logf("Append on a full disk: %v", err)
	if !errors.Is(err, syscall.ENOSPC) {
		t.Errorf("error %v does not wrap ENOSPC", err)
	}
	full.Store(false)
	// The store stays failed: it cannot know what reached the disk.
	if _, err := s.Append("s", wire.Change{Version: 7}); err == nil {
		t.Error("Append after a failure: no error")
	}
	if err := s.Checkpoint("s", 5, nil); err == nil {
		t.Error("Checkpoint after a failure: no error")
	}
	// Nor does it load: version 6 may be in the memtable, never synced.
	if err := s.Load(func(string, uint64, []wire.Object, []wire.Change) error { return nil }); err == nil {
		t.Error("Load after a failure: no error")
	}
	s.Close()

	s, err = pebblestore.Open("/weft", pebblestore.Options{FS: mem})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var got []uint64
	err = s.Load(func(_ string, _ uint64, _ []wire.Object, chs []wire.Change) error {
		for _, c := range chs {
			got = append(got, c.Version)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) < 5 || got[4] != 5 {
		t.Errorf("after the full disk: versions %v, want 1..5 at least", got)
	}
}

// TestDiskFullAtLogRotation: the disk fills just as Pebble needs its next
// write-ahead log, which Pebble cannot do without (it stops the process).
// The store gives up its reserve, the log is made in the space it held,
// and the write goes through; the store then refuses writes with ENOSPC,
// still loads, accepts writes again once space is freed, and everything
// acknowledged is there when reopened.
func TestDiskFullAtLogRotation(t *testing.T) {
	mem := vfs.NewMem()
	const dir = "/weft"
	reserve := mem.PathJoin(dir, "WEFT-RESERVE")
	var full atomic.Bool
	var refused atomic.Int32
	fsys := errorfs.Wrap(mem, errorfs.InjectorFunc(func(op errorfs.Op) error {
		if !full.Load() || op.Kind.ReadOrWrite() != errorfs.OpIsWrite {
			return nil
		}
		if op.Path == reserve && op.Kind != errorfs.OpRemove {
			return syscall.ENOSPC // no room to set it aside again
		}
		if _, err := mem.Stat(reserve); err != nil {
			return nil // the space the reserve held
		}
		switch op.Kind {
		case errorfs.OpCreate, errorfs.OpReuseForWrite, errorfs.OpFilePreallocate:
			if strings.HasSuffix(op.Path, ".log") {
				refused.Add(1)
				return syscall.ENOSPC
			}
		}
		return nil
	}))
	opts := pebblestore.Options{FS: fsys, Pebble: func(o *pebble.Options) { o.MemTableSize = 64 << 10 }}
	s, err := pebblestore.Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := mem.Stat(reserve); err != nil {
		t.Fatalf("no reserve: %v", err)
	}
	big := wire.String(strings.Repeat("x", 8<<10))
	change := func(v uint64) wire.Change {
		return wire.Change{Version: v, Writes: []wire.Op{{Kind: wire.OpSetField, Object: wire.ObjectID{Replica: 1, Seq: 1}, Field: 1, Value: big}}}
	}
	appendOne := func(v uint64) error {
		wait, err := s.Append("s", change(v))
		if err == nil {
			err = wait()
		}
		return err
	}
	v := uint64(1)
	for ; v <= 5; v++ {
		if err := appendOne(v); err != nil {
			t.Fatal(err)
		}
	}
	full.Store(true)
	var acked []uint64
	for ; ; v++ {
		err := appendOne(v)
		if err == nil {
			acked = append(acked, v)
			continue
		}
		if !errors.Is(err, syscall.ENOSPC) {
			t.Fatalf("v%d on a full disk: %v, want an error wrapping ENOSPC", v, err)
		}
		t.Logf("v%d on a full disk: %v", v, err)
		break
	}
	if refused.Load() == 0 || len(acked) == 0 {
		t.Fatalf("the disk filled at no log rotation (%d refused; %v acknowledged)", refused.Load(), acked)
	}
	if err := s.Checkpoint("s", v-1, nil); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("Checkpoint on a full disk: %v, want ENOSPC", err)
	}
	var loaded int
	if err := s.Load(func(_ string, _ uint64, _ []wire.Object, chs []wire.Change) error { loaded = len(chs); return nil }); err != nil {
		t.Fatalf("Load on a full disk: %v", err)
	}
	if want := int(v - 1); loaded != want {
		t.Fatalf("Load on a full disk: %d changes, want %d", loaded, want)
	}

	full.Store(false) // space freed
	if err := appendOne(v); err != nil {
		t.Fatalf("v%d once space was freed: %v", v, err)
	}
	if _, err := mem.Stat(reserve); err != nil {
		t.Fatalf("the reserve was not set aside again: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = pebblestore.Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var got []uint64
	if err := s.Load(func(_ string, _ uint64, _ []wire.Object, chs []wire.Change) error {
		for _, c := range chs {
			got = append(got, c.Version)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(got) != int(v) || got[len(got)-1] != v {
		t.Fatalf("after reopening: versions %v, want 1..%d", got, v)
	}
}

// TestReserveRefusedAtOpen: a store that cannot set its reserve aside does
// not open, and says why.
func TestReserveRefusedAtOpen(t *testing.T) {
	mem := vfs.NewMem()
	fsys := errorfs.Wrap(mem, errorfs.InjectorFunc(func(op errorfs.Op) error {
		if op.Kind == errorfs.OpFilePreallocate && strings.HasSuffix(op.Path, "WEFT-RESERVE") {
			return syscall.ENOSPC
		}
		return nil
	}))
	_, err := pebblestore.Open("/weft", pebblestore.Options{FS: fsys})
	if err == nil || !errors.Is(err, syscall.ENOSPC) || !strings.Contains(err.Error(), "/weft") {
		t.Fatalf("Open without room for the reserve: %v, want an error naming the directory and wrapping ENOSPC", err)
	}
	s, err := pebblestore.Open("/weft", pebblestore.Options{FS: fsys, Reserve: -1})
	if err != nil {
		t.Fatalf("Open with no reserve: %v", err)
	}
	s.Close()
}

// TestReserveWithoutPreallocate: on a file system that cannot preallocate,
// the reserve is written; with no reserve asked for, one left by an
// earlier run goes.
func TestReserveWithoutPreallocate(t *testing.T) {
	mem := vfs.NewMem()
	fsys := errorfs.Wrap(mem, errorfs.InjectorFunc(func(op errorfs.Op) error {
		if op.Kind == errorfs.OpFilePreallocate {
			return syscall.EOPNOTSUPP
		}
		return nil
	}))
	s, err := pebblestore.Open("/weft", pebblestore.Options{FS: fsys, Reserve: 3 << 20})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	fi, err := mem.Stat("/weft/WEFT-RESERVE")
	if err != nil || fi.Size() != 3<<20 {
		t.Fatalf("reserve %v, %v: want a file of %d bytes", fi, err, 3<<20)
	}
	s, err = pebblestore.Open("/weft", pebblestore.Options{FS: fsys, Reserve: -1})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if _, err := mem.Stat("/weft/WEFT-RESERVE"); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("with no reserve asked for, the old one is still there: %v", err)
	}
}

// TestLoadSyncsFirst: Load shows what Pebble holds, synced or not, so
// with an Append whose wait has not returned it syncs the log first; with
// none, it reads without writing.
func TestLoadSyncsFirst(t *testing.T) {
	var syncs atomic.Int32
	fsys := errorfs.Wrap(vfs.NewMem(), errorfs.InjectorFunc(func(op errorfs.Op) error {
		if strings.HasSuffix(op.Path, ".log") && (op.Kind == errorfs.OpFileSync || op.Kind == errorfs.OpFileSyncData) {
			syncs.Add(1)
		}
		return nil
	}))
	s, err := pebblestore.Open("/weft", pebblestore.Options{FS: fsys})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	load := func() {
		if err := s.Load(func(string, uint64, []wire.Object, []wire.Change) error { return nil }); err != nil {
			t.Fatal(err)
		}
	}
	wait, err := s.Append("s", wire.Change{Version: 1})
	if err != nil {
		t.Fatal(err)
	}
	before := syncs.Load()
	load()
	if syncs.Load() == before {
		t.Fatal("Load with an Append waiting for its sync did not sync the log")
	}
	if err := wait(); err != nil {
		t.Fatal(err)
	}
	before = syncs.Load()
	load()
	if syncs.Load() != before {
		t.Fatal("Load with nothing waiting synced the log")
	}
}

// TestCorruptTable: a data file damaged outside the format marker makes
// Open or Load return an error naming the store, rather than Pebble
// ending the process.
func TestCorruptTable(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	small := func(o *pebble.Options) { o.MemTableSize = 64 << 10 } // flushed to tables early
	s, err := pebblestore.Open(dir, pebblestore.Options{Pebble: small})
	if err != nil {
		t.Fatal(err)
	}
	value := wire.String(strings.Repeat("x", 200))
	for v := uint64(1); v <= 2000; v++ {
		wait, err := s.Append("s", wire.Change{Version: v, Writes: []wire.Op{{Kind: wire.OpVarSet, Object: wire.ObjectID{Replica: 1, Seq: 1}, Value: value}}})
		if err == nil && v%100 == 0 {
			err = wait()
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	tables, _ := filepath.Glob(filepath.Join(dir, "*.sst"))
	if len(tables) == 0 {
		t.Fatal("no table written")
	}
	for _, name := range tables {
		b, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		for i := len(b) / 4; i < len(b)/2; i++ {
			b[i] ^= 0x5a
		}
		if err := os.WriteFile(name, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	s, err = pebblestore.Open(dir, pebblestore.Options{Pebble: small})
	if err == nil {
		err = s.Load(func(string, uint64, []wire.Object, []wire.Change) error { return nil })
		s.Close()
	}
	if err == nil || !strings.Contains(err.Error(), dir) {
		t.Fatalf("a corrupt table: %v, want an error naming %s", err, dir)
	}
	t.Log(err)
}

// TestInUse: a directory another Store holds is reported as in use, not
// as corrupt.
func TestInUse(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	s, err := pebblestore.Open(dir, pebblestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := pebblestore.Open(dir, pebblestore.Options{}); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Fatalf("a directory in use: %v, want an error saying so", err)
	}
}

// removeLogs deletes the write-ahead logs of dir, as a cleanup job matching
// *.log would.
func removeLogs(t *testing.T, dir string) {
	t.Helper()
	logs, _ := filepath.Glob(filepath.Join(dir, "*.log"))
	if len(logs) == 0 {
		t.Fatal("no write-ahead log")
	}
	for _, l := range logs {
		if err := os.Remove(l); err != nil {
			t.Fatal(err)
		}
	}
}

// TestLostWAL: until a memtable flush, acknowledged changes live only in
// the write-ahead log. A store whose log was deleted must be refused, not
// opened empty (or, before the marker was flushed, recreated as new).
func TestLostWAL(t *testing.T) {
	dir := t.TempDir()
	newStore(t, dir)
	removeLogs(t, dir)
	refused(t, dir, "write-ahead log")
}

// TestMarkerOutsideWAL: the marker is flushed when the store is created,
// so that it does not depend on the write-ahead log.
func TestMarkerOutsideWAL(t *testing.T) {
	dir := t.TempDir()
	s, err := pebblestore.Open(dir, pebblestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	removeLogs(t, dir)
	db, err := pebble.Open(dir, &pebble.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	v, closer, err := db.Get([]byte("weft/format"))
	if err != nil {
		t.Fatalf("marker without the write-ahead log: %v", err)
	}
	closer.Close()
	if string(v) != "weft-store v1" {
		t.Errorf("marker %q", v)
	}
}

// TestEmptyDatabaseWithoutLog: a Pebble database with no key and no
// write-ahead log, and no record of one (walFile), is a creation
// interrupted before its first log: it opens, as a new store. With the
// record, its log was deleted: refused.
func TestEmptyDatabaseWithoutLog(t *testing.T) {
	dir := t.TempDir()
	db, err := pebble.Open(dir, &pebble.Options{})
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	removeLogs(t, dir)
	s, err := pebblestore.Open(dir, pebblestore.Options{})
	if err != nil {
		t.Fatalf("an interrupted creation: %v", err)
	}
	s.Close()
	removeLogs(t, dir)
	refused(t, dir, "lost its write-ahead log")
}

// TestWALElsewhere: with the write-ahead logs in a directory of their own
// (Pebble's WALDir), a restart opens: the check for a deleted log does
// not look for them in the data directory.
func TestWALElsewhere(t *testing.T) {
	dir, walDir := t.TempDir(), t.TempDir()
	opts := pebblestore.Options{Pebble: func(o *pebble.Options) { o.WALDir = walDir }}
	for range 2 {
		s, err := pebblestore.Open(dir, opts)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// TestDamagedWALWarns: Pebble takes an unreadable record in its newest
// write-ahead log for the end of the log (a write torn by a crash, which
// was never acknowledged), and opens the store with what came before. A
// damaged log looks the same, so Open must at least say so, as a warning
// naming the directory; a log that ends cleanly must not.
func TestDamagedWALWarns(t *testing.T) {
	open := func(dir string) string {
		t.Helper()
		var buf bytes.Buffer
		log := slog.New(slog.NewTextHandler(&buf, nil))
		s, err := pebblestore.Open(dir, pebblestore.Options{Logger: log})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		return buf.String()
	}
	clean := t.TempDir()
	newStore(t, clean)
	if out := open(clean); strings.Contains(out, "WARN") {
		t.Fatalf("a clean log: %s", out)
	}
	dir := t.TempDir()
	newStore(t, dir)
	logs, _ := filepath.Glob(filepath.Join(dir, "*.log"))
	if len(logs) == 0 {
		t.Fatal("no write-ahead log")
	}
	newest := logs[len(logs)-1]
	b, err := os.ReadFile(newest)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) == 0 {
		t.Fatalf("%s is empty", newest)
	}
	b[len(b)/2] ^= 0xff
	if err := os.WriteFile(newest, b, 0o644); err != nil {
		t.Fatal(err)
	}
	out := open(dir)
	t.Log(out)
	if !strings.Contains(out, "level=WARN") || !strings.Contains(out, dir) || !strings.Contains(out, "write-ahead log") {
		t.Errorf("a damaged log: no warning naming %s: %q", dir, out)
	}
}

// TestUnwritableDir: a directory the server may not write (permissions, a
// read-only mount) is reported as such, not as in use by another server.
func TestUnwritableDir(t *testing.T) {
	for _, errno := range []syscall.Errno{syscall.EACCES, syscall.EROFS} {
		t.Run(errno.Error(), func(t *testing.T) {
			mem := vfs.NewMem()
			s, err := pebblestore.Open("/weft", pebblestore.Options{FS: mem})
			if err != nil {
				t.Fatal(err)
			}
			s.Close()
			fsys := errorfs.Wrap(mem, errorfs.InjectorFunc(func(op errorfs.Op) error {
				if op.Kind.ReadOrWrite() == errorfs.OpIsWrite {
					return errno
				}
				return nil
			}))
			_, err = pebblestore.Open("/weft", pebblestore.Options{FS: fsys})
			t.Logf("Open: %v", err)
			if err == nil || strings.Contains(err.Error(), "in use") || !strings.Contains(err.Error(), errno.Error()) || !strings.Contains(err.Error(), "/weft") {
				t.Errorf("Open of an unwritable directory: %v, want an error naming it and saying %q, not \"in use\"", err, errno.Error())
			}
		})
	}
}
