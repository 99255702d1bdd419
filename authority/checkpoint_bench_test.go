package authority

import (
	"testing"

	"github.com/weft-stm/weft/wire"
)

// BenchmarkCheckpoint1M: Checkpoint of a million records of one field, the
// time a server holds the share's lock for it (go test ./authority -run
// XXX -bench Checkpoint1M -benchtime 3x -benchmem).
func BenchmarkCheckpoint1M(b *testing.B) {
	s := New("s")
	const n = 1_000_000
	var ops []wire.Op
	seq := uint64(0)
	for i := uint64(1); i <= n; i++ {
		ops = append(ops, wire.Op{Kind: wire.OpCreate, Object: wire.ObjectID{Replica: 1, Seq: i}, ObjectKind: wire.ObjectRecord, Class: 1,
			Fields: []wire.Field{{ID: 1, Value: wire.Int(int64(i))}}})
		if len(ops) == 1000 {
			seq++
			if r := s.Apply(&wire.Commit{ID: wire.CommitID{Replica: 1, Seq: seq}, Writes: ops}); !r.Ack {
				b.Fatal(r)
			}
			ops = nil
		}
	}
	b.ResetTimer()
	for range b.N {
		_, objs := s.Checkpoint()
		if len(objs) != n+1 {
			b.Fatal(len(objs))
		}
	}
}
