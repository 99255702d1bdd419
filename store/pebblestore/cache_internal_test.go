package pebblestore

import (
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/weft-stm/weft/wire"
)

// TestPutPendingRecordsHighest: commits of two shares recorded at once
// leave the highest number in the replica record, whatever order their
// writes take, so that a restart never numbers a commit again (and the
// record holds it even once the commit is answered and its pending
// record deleted).
func TestPutPendingRecordsHighest(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "cache"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for round := range uint64(200) {
		hi := 2*round + 2
		var wg sync.WaitGroup
		for _, seq := range []uint64{hi - 1, hi} {
			wg.Go(func() {
				if err := s.PutPending(fmt.Sprint("share", seq%2), &wire.Commit{ID: wire.CommitID{Replica: 42, Seq: seq}}); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		for _, seq := range []uint64{hi - 1, hi} {
			if err := s.DeletePending(wire.CommitID{Replica: 42, Seq: seq}, false); err != nil {
				t.Fatal(err)
			}
		}
		s.mu.RLock()
		_, rec, err := s.recorded()
		s.mu.RUnlock()
		if err != nil || rec != hi {
			t.Fatalf("after commits %d and %d: the record says %d (%v)", hi-1, hi, rec, err)
		}
		if _, seq, err := s.Replica(); err != nil || seq != hi {
			t.Fatalf("Replica: %d (%v), want %d", seq, err, hi)
		}
	}
}

// TestLoadPendingChecksKeys: a pending commit stored under another number
// than its own is corruption, reported, not a commit sent under an id the
// cache does not account for.
func TestLoadPendingChecksKeys(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "cache"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.PutPending("s", &wire.Commit{ID: wire.CommitID{Replica: 42, Seq: 3}}); err != nil {
		t.Fatal(err)
	}
	v, closer, err := s.db.Get(pendingKey(3))
	if err != nil {
		t.Fatal(err)
	}
	val := append([]byte(nil), v...)
	closer.Close()
	if err := s.db.Set(pendingKey(4), val, nil); err != nil { // the same commit under number 4
		t.Fatal(err)
	}
	err = s.LoadPending(func(string, *wire.Commit) error { return nil })
	if err == nil || !strings.Contains(err.Error(), "corrupt") {
		t.Fatalf("a commit under another number: %v, want corruption reported", err)
	}
}
