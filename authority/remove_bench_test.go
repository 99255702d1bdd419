package authority

import (
	"testing"

	"github.com/weft-stm/weft/wire"
)

// BenchmarkRemoveReferenced: a commit removing a list of a million numbers
// that a record still refers to, rejected (the hostile review's probe: 10
// bytes of commit, repeated). The reference check need not read the list,
// which holds no ref.
func BenchmarkRemoveReferenced(b *testing.B) {
	s := New("s")
	list, rec := wire.ObjectID{Replica: 1, Seq: 1}, wire.ObjectID{Replica: 1, Seq: 2}
	vals := make([]wire.Value, 1_000_000)
	for i := range vals {
		vals[i] = wire.Int(int64(i))
	}
	if r := s.Apply(&wire.Commit{ID: wire.CommitID{Replica: 1, Seq: 1}, Writes: []wire.Op{
		{Kind: wire.OpCreate, Object: list, ObjectKind: wire.ObjectList},
		{Kind: wire.OpListAppend, Object: list, Values: vals},
		{Kind: wire.OpCreate, Object: rec, ObjectKind: wire.ObjectRecord, Fields: []wire.Field{{ID: 1, Value: wire.Ref(list)}}},
	}}); !r.Ack {
		b.Fatal(formatResult(r))
	}
	b.ResetTimer()
	for i := range b.N {
		r := s.Apply(&wire.Commit{ID: wire.CommitID{Replica: 2, Seq: uint64(i + 1)}, Writes: []wire.Op{{Kind: wire.OpRemove, Object: list}}})
		if r.Ack || r.Code != wire.CodeInvalid {
			b.Fatal(formatResult(r))
		}
	}
}
