package pebblestore_test

import (
	"encoding/binary"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/weft-stm/weft/store/pebblestore"
	"github.com/weft-stm/weft/wire"
)

// committers is the concurrency of issue #5's durable-64c floor.
const committers = 64

// benchChange is a small commit's change: two writes.
func benchChange(v uint64) wire.Change {
	return wire.Change{Version: v, Origin: wire.CommitID{Replica: 1, Seq: v}, Writes: []wire.Op{
		{Kind: wire.OpCounterAdd, Object: wire.ObjectID{Replica: 1, Seq: 1}, Delta: 1},
		{Kind: wire.OpVarSet, Object: wire.ObjectID{Replica: 1, Seq: 2}, Value: wire.String("a short string value")},
	}}
}

// runCommitters runs b.N commits from committers goroutines, each on its own
// share, and reports commits per second.
func runCommitters(b *testing.B, commit func(g int, v uint64) error) {
	var next atomic.Int64
	var wg sync.WaitGroup
	var failed atomic.Pointer[error]
	b.ResetTimer()
	start := time.Now()
	for g := range committers {
		wg.Go(func() {
			for v := uint64(1); next.Add(1) <= int64(b.N); v++ {
				if err := commit(g, v); err != nil {
					failed.CompareAndSwap(nil, &err)
					return
				}
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	if p := failed.Load(); p != nil {
		b.Fatal(*p)
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "commits/s")
}

// BenchmarkAppend64: 64 committers, each Append then wait, as the server
// does: Pebble's commit pipeline groups their syncs.
func BenchmarkAppend64(b *testing.B) {
	s, err := pebblestore.Open(filepath.Join(b.TempDir(), "data"), pebblestore.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	names := make([]string, committers)
	var locks [committers]sync.Mutex
	for i := range names {
		names[i] = "share-" + string(rune('A'+i%26)) + string(rune('a'+i/26))
	}
	runCommitters(b, func(g int, v uint64) error {
		locks[g].Lock()
		wait, err := s.Append(names[g], benchChange(v))
		locks[g].Unlock()
		if err != nil {
			return err
		}
		return wait()
	})
}

// BenchmarkPebbleSync64: for comparison, 64 goroutines each doing a plain
// pebble Set with Sync of a value of the same size.
func BenchmarkPebbleSync64(b *testing.B) {
	db, err := pebble.Open(filepath.Join(b.TempDir(), "data"), &pebble.Options{Logger: noLogger{}})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	val := make([]byte, 64)
	runCommitters(b, func(g int, v uint64) error {
		key := binary.BigEndian.AppendUint64([]byte{byte(g)}, v)
		return db.Set(key, val, pebble.Sync)
	})
}

// BenchmarkAppend1: one committer, for the cost of an unshared sync.
func BenchmarkAppend1(b *testing.B) {
	s, err := pebblestore.Open(filepath.Join(b.TempDir(), "data"), pebblestore.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	b.ResetTimer()
	start := time.Now()
	for v := uint64(1); v <= uint64(b.N); v++ {
		wait, err := s.Append("s", benchChange(v))
		if err == nil {
			err = wait()
		}
		if err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "commits/s")
}

// noLogger drops Pebble's messages, which would interleave with the
// benchmark's lines.
type noLogger struct{}

func (noLogger) Infof(string, ...any)         {}
func (noLogger) Errorf(string, ...any)        {}
func (noLogger) Fatalf(f string, args ...any) { panic(fmt.Sprintf(f, args...)) }
