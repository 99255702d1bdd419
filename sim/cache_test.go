package sim

import (
	"errors"
	"slices"
	"sync"

	"github.com/weft-stm/weft/store/memstore"
	"github.com/weft-stm/weft/wire"
)

// errKilled fails what a killed application's goroutines still try to
// write to its cache.
var errKilled = errors.New("sim: the application was killed")

// cacheDisk is what a client's offline cache (client.Cache) holds on disk:
// it outlives the application.
type cacheDisk struct {
	mu      sync.Mutex
	shares  *memstore.Store
	replica uint64
	seq     uint64
	pending map[uint64]pendingCommit // by commit number
}

type pendingCommit struct {
	share string
	body  []byte // the encoded commit: what the client passed is not kept
}

// simCache is one life of an application's cache, with the durability of
// the Pebble store it stands for: the writes the interface calls synced
// are durable when they return and make every earlier write durable too (a
// synced batch syncs the log before it); the others (AppendLazy,
// DeletePending) wait in memory until then, or until sync, and a kill
// loses them. Reads see only durable data, which is what a new life reads
// before it writes (the client reads its cache when it dials and opens);
// a read after an unsynced write would need more than this model, so it
// panics.
type simCache struct {
	disk *cacheDisk
	mu   sync.Mutex
	lazy []func(*cacheDisk) error
	dead bool
}

func newSimCache() *simCache {
	return &simCache{disk: &cacheDisk{shares: memstore.New(), pending: map[uint64]pendingCommit{}}}
}

// kill ends this life (its later writes fail, its unsynced ones are
// lost) and returns the cache the application finds when it starts again.
func (c *simCache) kill() *simCache {
	c.mu.Lock()
	c.dead = true
	c.lazy = nil
	c.mu.Unlock()
	return &simCache{disk: c.disk}
}

// sync makes the unsynced writes durable, as the store's log reaching the
// disk on its own would.
func (c *simCache) sync() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.flushLocked()
}

func (c *simCache) flushLocked() error {
	c.disk.mu.Lock()
	defer c.disk.mu.Unlock()
	var first error
	for _, f := range c.lazy {
		if err := f(c.disk); err != nil && first == nil {
			first = err
		}
	}
	c.lazy = nil
	return first
}

// write runs f now and durably if synced (after every earlier write), or
// queues it.
func (c *simCache) write(synced bool, f func(*cacheDisk) error) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.dead {
		return errKilled
	}
	c.lazy = append(c.lazy, f)
	if !synced {
		return nil
	}
	return c.flushLocked()
}

// read runs f on the durable data.
func (c *simCache) read(f func(*cacheDisk) error) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.dead {
		return errKilled
	}
	if len(c.lazy) > 0 {
		panic("sim: a cache read after an unsynced write, which the model does not cover")
	}
	c.disk.mu.Lock()
	defer c.disk.mu.Unlock()
	return f(c.disk)
}

func (c *simCache) AppendLazy(share string, ch wire.Change) error {
	ch.Writes = slices.Clone(ch.Writes) // memstore keeps it; the client reuses the array
	return c.write(false, func(d *cacheDisk) error {
		wait, err := d.shares.Append(share, ch)
		if err == nil {
			err = wait()
		}
		return err
	})
}

func (c *simCache) Checkpoint(share string, version uint64, objects []wire.Object) error {
	return c.write(true, func(d *cacheDisk) error { return d.shares.Checkpoint(share, version, objects) })
}

func (c *simCache) Forget(share string) error {
	return c.write(true, func(d *cacheDisk) error { return d.shares.Forget(share) })
}

func (c *simCache) Load(fn func(share string, version uint64, objects []wire.Object, changes []wire.Change) error) error {
	return c.read(func(d *cacheDisk) error { return d.shares.Load(fn) })
}

func (c *simCache) Replica() (replica, seq uint64, err error) {
	err = c.read(func(d *cacheDisk) error {
		replica, seq = d.replica, d.seq
		return nil
	})
	return replica, seq, err
}

func (c *simCache) SetReplica(replica, seq uint64) error {
	return c.write(true, func(d *cacheDisk) error {
		d.replica, d.seq = replica, seq
		return nil
	})
}

func (c *simCache) PutPending(share string, cm *wire.Commit) error {
	body := wire.AppendMessage(nil, cm)
	seq := cm.ID.Seq
	return c.write(true, func(d *cacheDisk) error {
		d.pending[seq] = pendingCommit{share, body}
		d.seq = max(d.seq, seq)
		return nil
	})
}

func (c *simCache) DeletePending(id wire.CommitID, sync bool) error {
	return c.write(sync, func(d *cacheDisk) error {
		delete(d.pending, id.Seq)
		return nil
	})
}

func (c *simCache) LoadPending(fn func(share string, cm *wire.Commit) error) error {
	return c.read(func(d *cacheDisk) error {
		seqs := make([]uint64, 0, len(d.pending))
		for s := range d.pending {
			seqs = append(seqs, s)
		}
		slices.Sort(seqs)
		for _, s := range seqs {
			p := d.pending[s]
			m, err := wire.DecodeMessage(p.body, wire.DefaultLimits())
			if err != nil {
				return err
			}
			cm, ok := m.(*wire.Commit)
			if !ok {
				return errors.New("sim: a cached commit decodes to another message")
			}
			if err := fn(p.share, cm); err != nil {
				return err
			}
		}
		return nil
	})
}
