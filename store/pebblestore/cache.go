package pebblestore

import (
	"encoding/binary"
	"fmt"

	"github.com/cockroachdb/pebble/v2"
	"github.com/weft-stm/weft/store/internal/codec"
	"github.com/weft-stm/weft/wire"
)

// A Store is also a client's offline cache (client.Cache): the replicas of
// its shares kept as a server keeps shares (Append, Checkpoint, Load; the
// client appends without waiting, with AppendLazy), plus the client's own
// commits not yet answered and its replica id, under keys of their own.
var (
	replicaKey = []byte("c/replica") // the client's replica id and last commit seq
	pendingLo  = []byte("p/")        // "p/" + seq (8 bytes, big-endian): a pending commit
	pendingHi  = []byte("p0")
)

func pendingKey(seq uint64) []byte {
	return binary.BigEndian.AppendUint64(append([]byte(nil), pendingLo...), seq)
}

// cacheWritable is writable for the cache's own writes, except that a
// refusal (the disk full: see reserve) fails the store as a failed write
// does. A cache goes on after an error, and one that skipped a change, or
// the forgetting of a commit, and then wrote again would hold a wrong
// history for the next start: with the store failed, it holds an older
// one.
func (s *Store) cacheWritable() error {
	if err := s.readable(); err != nil {
		return err
	}
	if err := s.reserve.check(s.dir); err != nil {
		s.failed.CompareAndSwap(nil, &err)
		return err
	}
	return nil
}

// AppendLazy writes ch like Append but does not wait for a sync: a client
// caching what its server already keeps loses nothing it cannot fetch
// again if the last changes do not survive a crash.
func (s *Store) AppendLazy(share string, ch wire.Change) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if err := s.cacheWritable(); err != nil {
		return err
	}
	key := appendShare(make([]byte, 0, len(share)+12), share)
	key = append(key, tagChange)
	key = binary.BigEndian.AppendUint64(key, ch.Version)
	if err := s.db.Set(key, codec.AppendChange(nil, ch), pebble.NoSync); err != nil {
		return s.fail(err)
	}
	return nil
}

// Forget drops share, its checkpoint and its changes, synced: the next
// Load does not hold it. (A client's cache forgets a share whose copy is
// not in its server's history.)
func (s *Store) Forget(share string) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if err := s.cacheWritable(); err != nil {
		return err
	}
	p := appendShare(nil, share)
	if err := s.db.DeleteRange(p, append(p, 0xff), pebble.Sync); err != nil {
		return s.fail(err)
	}
	return nil
}

// Replica returns the replica id recorded by SetReplica (0 if none) and the
// highest commit sequence number recorded (by SetReplica or PutPending),
// or of a pending commit, whichever is higher.
func (s *Store) Replica() (replica, seq uint64, err error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return 0, 0, ErrClosed
	}
	replica, seq, err = s.recorded()
	if err != nil {
		return 0, 0, err
	}
	// A guard: every pending commit's number is recorded too (PutPending).
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: pendingLo, UpperBound: pendingHi})
	if err != nil {
		return 0, 0, fmt.Errorf("pebblestore: %s: %w", s.dir, err)
	}
	defer it.Close()
	if it.Last() && len(it.Key()) == len(pendingLo)+8 {
		seq = max(seq, binary.BigEndian.Uint64(it.Key()[len(pendingLo):]))
	}
	return replica, seq, nil
}

// recorded reads the replica record. s.mu is held.
func (s *Store) recorded() (replica, seq uint64, err error) {
	v, closer, err := s.db.Get(replicaKey)
	if err == pebble.ErrNotFound {
		return 0, 0, nil
	}
	if err != nil {
		return 0, 0, fmt.Errorf("pebblestore: %s: %w", s.dir, err)
	}
	defer closer.Close()
	if len(v) != 16 {
		return 0, 0, fmt.Errorf("pebblestore: %s is corrupt: replica record of %d bytes", s.dir, len(v))
	}
	return binary.BigEndian.Uint64(v), binary.BigEndian.Uint64(v[8:]), nil
}

// highestLocked returns the highest commit sequence number recorded, with
// seq, and remembers it. s.seqMu and s.mu are held.
func (s *Store) highestLocked(seq uint64) (uint64, error) {
	if !s.seqKnown {
		_, rec, err := s.recorded()
		if err != nil {
			return 0, err
		}
		s.seqMax, s.seqKnown = rec, true
	}
	s.seqMax = max(s.seqMax, seq)
	return s.seqMax, nil
}

// SetReplica records the client's replica id and highest commit sequence
// number (never lower than one recorded before), synced.
func (s *Store) SetReplica(replica, seq uint64) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if err := s.cacheWritable(); err != nil {
		return err
	}
	s.seqMu.Lock()
	defer s.seqMu.Unlock()
	seq, err := s.highestLocked(seq)
	if err != nil {
		return err
	}
	v := binary.BigEndian.AppendUint64(binary.BigEndian.AppendUint64(nil, replica), seq)
	if err := s.db.Set(replicaKey, v, pebble.Sync); err != nil {
		return s.fail(err)
	}
	return nil
}

// PutPending records c, a commit of share not yet answered, and that its
// sequence number is the highest used, synced: once it returns, c is sent
// again after a crash (and its number never reused).
//
// Commits of several shares are recorded concurrently: each record holds
// the highest number so far, and records reach the log in the order they
// were made (enqueued under seqMu, synced outside it, so that they still
// share syncs), so the last one holds the highest.
func (s *Store) PutPending(share string, c *wire.Commit) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if err := s.cacheWritable(); err != nil {
		return err
	}
	val := binary.AppendUvarint(nil, uint64(len(share)))
	val = append(val, share...)
	val = wire.AppendMessage(val, c)
	b := s.db.NewBatch()
	defer b.Close()
	if err := b.Set(pendingKey(c.ID.Seq), val, nil); err != nil {
		return fmt.Errorf("pebblestore: %s: %w", s.dir, err)
	}
	s.seqMu.Lock()
	seq, err := s.highestLocked(c.ID.Seq)
	if err == nil {
		rv := binary.BigEndian.AppendUint64(binary.BigEndian.AppendUint64(nil, c.ID.Replica), seq)
		if err = b.Set(replicaKey, rv, nil); err != nil {
			err = fmt.Errorf("pebblestore: %s: %w", s.dir, err)
		}
	}
	if err != nil {
		s.seqMu.Unlock()
		return err
	}
	err = s.db.ApplyNoSyncWait(b, pebble.Sync)
	s.seqMu.Unlock()
	if err == nil {
		err = b.SyncWait()
	} else {
		b.SyncWait() // Pebble requires it before Close even on failure
	}
	if err != nil {
		return s.fail(err)
	}
	return nil
}

// DeletePending forgets the pending commit id, synced if sync is set (see
// client.Cache: an acknowledged commit sent again after a crash is
// answered with the verdict the server gave, a rejected one must not be
// sent again).
func (s *Store) DeletePending(id wire.CommitID, sync bool) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if err := s.cacheWritable(); err != nil {
		return err
	}
	opt := pebble.NoSync
	if sync {
		opt = pebble.Sync
	}
	if err := s.db.Delete(pendingKey(id.Seq), opt); err != nil {
		return s.fail(err)
	}
	return nil
}

// LoadPending calls fn with every pending commit, in sequence order.
func (s *Store) LoadPending(fn func(share string, c *wire.Commit) error) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return ErrClosed
	}
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: pendingLo, UpperBound: pendingHi})
	if err != nil {
		return fmt.Errorf("pebblestore: %s: %w", s.dir, err)
	}
	defer it.Close()
	for valid := it.First(); valid; valid = it.Next() {
		val, err := it.ValueAndErr()
		if err != nil {
			return fmt.Errorf("pebblestore: %s: %w", s.dir, err)
		}
		n, k := binary.Uvarint(val)
		if k <= 0 || uint64(len(val)-k) < n {
			return fmt.Errorf("pebblestore: %s is corrupt: pending commit %x", s.dir, it.Key())
		}
		share := string(val[k : k+int(n)])
		m, err := wire.DecodeMessage(val[k+int(n):], codec.Limits())
		if err != nil {
			return fmt.Errorf("pebblestore: %s is corrupt: pending commit %x: %w", s.dir, it.Key(), err)
		}
		c, ok := m.(*wire.Commit)
		if !ok {
			return fmt.Errorf("pebblestore: %s is corrupt: pending %x holds a %v", s.dir, it.Key(), m.Type())
		}
		// The key is the commit's number: a commit under another number
		// would be sent under an id the cache does not account for.
		if key := it.Key(); len(key) != len(pendingLo)+8 || binary.BigEndian.Uint64(key[len(pendingLo):]) != c.ID.Seq {
			return fmt.Errorf("pebblestore: %s is corrupt: pending %x holds commit %v", s.dir, key, c.ID)
		}
		if err := fn(share, c); err != nil {
			return err
		}
	}
	return it.Error()
}
