package pebblestore

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
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
// writes back, so it only removes a file.
func (r *reserve) release() {
	if r.full.Swap(true) {
		return
	}
	if err := r.fs.Remove(r.path); err != nil && !errors.Is(err, os.ErrNotExist) {
		r.log.Error("pebblestore: the disk is full, and the reserve cannot be removed", "file", r.path, "err", err)
		return
	}
	r.log.Error("pebblestore: the disk is full: the store gave up its reserve to finish its writes, and refuses new ones until space is freed", "file", r.path, "bytes", r.size)
}

// make sets the reserve aside: the file, its space allocated (a
// preallocation that does not change its size, so it costs no writes).
func (r *reserve) make() error {
	f, err := r.fs.Create(r.path, vfs.WriteCategoryUnspecified)
	if err != nil {
		return err
	}
	err = f.Preallocate(0, r.size)
	if err == nil {
		err = f.Sync()
	}
	if err = errors.Join(err, f.Close()); err != nil {
		r.fs.Remove(r.path)
		return err
	}
	return nil
}

// check returns nil if the store may write: the reserve is in place, or
// was set aside again just now.
func (r *reserve) check(dir string) error {
	if r == nil || !r.full.Load() {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.full.Load() {
		return nil
	}
	if err := r.make(); err != nil {
		return fmt.Errorf("pebblestore: %s: the disk is full (the store gave up its reserve of %d bytes and cannot set it aside again: %v); it refuses writes until space is freed: %w",
			dir, r.size, err, syscall.ENOSPC)
	}
	r.full.Store(false)
	r.log.Info("pebblestore: disk space freed: the store set its reserve aside again and accepts writes", "file", r.path)
	return nil
}
