package pebblestore

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// reserveFile names the file in which the store sets disk space aside.
const reserveFile = "WEFT-RESERVE"

// minReserve is the least space a store sets aside by default; it sets
// aside three memtables' worth if that is more (Options.Reserve).
const minReserve = 16 << 20

// A reserve is disk space the store holds in reserveFile and gives up when
// the disk fills. Pebble stops the process when it cannot close a
// write-ahead log or create the next one (it cannot tell what reached the
// disk), so a full disk must never reach it there. The store's file system
// is wrapped with vfs.OnDiskFull: the first write to fail with ENOSPC
// makes the reserve go, and is retried once, into the space it freed. The
// store then refuses new writes with an error that wraps ENOSPC, until the
// reserve can be set aside again (someone freed space): what it already
// acknowledged stays intact, and the writes it accepted before finish.
type reserve struct {
	fs   vfs.FS // the file system beneath the wrapper
	path string
	size int64
	log  *slog.Logger

	full atomic.Bool // given up: writes are refused
	mu   sync.Mutex  // orders the attempts to set it aside again
}

// wrap returns fs with the reserve given up on a full disk.
func (r *reserve) wrap(fs vfs.FS) vfs.FS {
	return vfs.OnDiskFull(fs, r.release)
}

// release gives the reserve up. It runs while the file system holds new
// writes back, so it only removes a file; it waits for an attempt to set
// the reserve aside again (check), which writes beneath the wrapper, and
// then removes what that attempt made.
func (r *reserve) release() {
	r.mu.Lock()
	defer r.mu.Unlock()
	first := !r.full.Swap(true)
	err := r.fs.Remove(r.path)
	switch {
	case err != nil && !errors.Is(err, os.ErrNotExist):
		r.log.Error("pebblestore: the disk is full, and the reserve cannot be removed", "file", r.path, "err", err)
	case first:
		r.log.Error("pebblestore: the disk is full: the store gave up its reserve to finish its writes, and refuses new ones until space is freed", "file", r.path, "bytes", r.size)
	}
}

// make sets the reserve aside: the file, its space allocated. On Linux a
// preallocation does that without writing (fallocate, the size left at
// 0); elsewhere Pebble's preallocation does nothing, and where the file
// system cannot preallocate the call fails: then the file is written
// with zeros.
func (r *reserve) make() error {
	f, err := r.fs.Create(r.path, vfs.WriteCategoryUnspecified)
	if err != nil {
		return err
	}
	err = errors.ErrUnsupported
	if runtime.GOOS == "linux" {
		err = f.Preallocate(0, r.size)
	}
	if err != nil && !errors.Is(err, syscall.ENOSPC) {
		err = writeZeros(f, r.size)
	}
	if err == nil {
		err = f.Sync()
	}
	if err = errors.Join(err, f.Close()); err == nil {
		err = syncDir(r.fs, r.fs.PathDir(r.path))
	}
	if err != nil {
		r.fs.Remove(r.path)
		return err
	}
	return nil
}

func writeZeros(f vfs.File, n int64) error {
	zeros := make([]byte, min(n, 1<<20))
	for n > 0 {
		k, err := f.Write(zeros[:min(n, int64(len(zeros)))])
		if err != nil {
			return err
		}
		n -= int64(k)
	}
	return nil
}

func syncDir(fs vfs.FS, dir string) error {
	d, err := fs.OpenDir(dir)
	if err != nil {
		return err
	}
	return errors.Join(d.Sync(), d.Close())
}

// check returns nil if the store may write: the reserve is in place, or
// was set aside again just now. It tries that only when the disk has room
// for the reserve twice over (when it can tell), so that setting it aside
// does not take the last of the space.
func (r *reserve) check(dir string) error {
	if r == nil || !r.full.Load() {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.full.Load() {
		return nil
	}
	var err error
	if u, uerr := r.fs.GetDiskUsage(r.fs.PathDir(r.path)); uerr == nil && u.AvailBytes < 2*uint64(r.size) {
		err = fmt.Errorf("%d bytes free", u.AvailBytes)
	} else {
		err = r.make()
	}
	if err != nil {
		return fmt.Errorf("pebblestore: %s: the disk is full (the store gave up its reserve of %d bytes and cannot set it aside again: %v); it refuses writes until space is freed: %w",
			dir, r.size, err, syscall.ENOSPC)
	}
	r.full.Store(false)
	r.log.Info("pebblestore: disk space freed: the store set its reserve aside again and accepts writes", "file", r.path)
	return nil
}
