package authority_test

import (
	"testing"

	"github.com/weft-stm/weft/authority"
	"github.com/weft-stm/weft/wire"
)

// TestReadCurrent: a read holds while no other replica wrote its part
// since, and the state has reached its version; the reader's own later
// writes do not break it (a client restoring its cached commits saw them).
func TestReadCurrent(t *testing.T) {
	s := authority.New("s")
	obj := wire.ObjectID{Replica: 1, Seq: 1}
	by := func(replica, seq uint64, ops ...wire.Op) {
		t.Helper()
		if r := s.Apply(&wire.Commit{ID: wire.CommitID{Replica: replica, Seq: seq}, Writes: ops}); r.Code != 0 {
			t.Fatalf("commit %d:%d: %v %s", replica, seq, r.Code, r.Message)
		}
	}
	set := func(field uint32, v int64) wire.Op {
		return wire.Op{Kind: wire.OpSetField, Object: obj, Field: field, Value: wire.Int(v)}
	}
	by(1, 1, wire.Op{Kind: wire.OpCreate, Object: obj, ObjectKind: wire.ObjectRecord, Class: 1}) // v1
	by(2, 1, set(1, 10))                                                                         // v2: another replica writes field 1
	by(1, 2, set(2, 20))                                                                         // v3: the reader's own write of field 2
	read := func(field uint32, at uint64) wire.Read {
		return wire.Read{Object: obj, Kind: wire.ReadField, Field: field, Version: at}
	}
	for _, c := range []struct {
		what string
		rd   wire.Read
		want bool
	}{
		{"field 1 read after the other's write", read(1, 2), true},
		{"field 1 read before the other's write", read(1, 1), false},
		{"field 2 read before the reader's own write", read(2, 1), true},
		{"a read at a version the state has not reached", read(1, 4), false},
		{"an object the state lacks", wire.Read{Object: wire.ObjectID{Replica: 1, Seq: 9}, Kind: wire.ReadWhole, Version: 3}, false},
	} {
		if got := s.ReadCurrent(c.rd, 1); got != c.want {
			t.Errorf("%s: ReadCurrent %v, want %v", c.what, got, c.want)
		}
	}
	if s.ReadCurrent(read(2, 1), 2) {
		t.Error("field 2 read before replica 1's write holds for replica 2")
	}
}
