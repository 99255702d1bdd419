package authority

import (
	"strconv"
	"strings"
	"testing"

	"github.com/weft-stm/weft/wire"
)

// TestCheckWrites: write validation tracks the objects a commit creates,
// removes and appends to, the same for a commit of a few objects (searched
// in a list) as for one of many (indexed by a map), and names the op that
// fails.
func TestCheckWrites(t *testing.T) {
	for _, n := range []int{3, shadowsLinear + 24} {
		s := New("test")
		id := func(i int) wire.ObjectID { return wire.ObjectID{Replica: 1, Seq: uint64(i + 1)} }
		list := id(n)
		var ops []wire.Op
		for i := range n {
			ops = append(ops, wire.Op{Kind: wire.OpCreate, Object: id(i), ObjectKind: wire.ObjectVar})
		}
		ops = append(ops, wire.Op{Kind: wire.OpCreate, Object: list, ObjectKind: wire.ObjectList})
		for i := range n {
			ops = append(ops, wire.Op{Kind: wire.OpVarSet, Object: id(i), Value: wire.Int(int64(i))})
		}
		ops = append(ops,
			wire.Op{Kind: wire.OpListAppend, Object: list, Values: []wire.Value{wire.Int(1), wire.Int(2)}},
			wire.Op{Kind: wire.OpListSet, Object: list, Index: 1, Value: wire.Int(3)})
		if err := s.checkWrites(ops); err != nil {
			t.Fatalf("%d objects: %v", n, err)
		}
		bad := []struct {
			op   wire.Op
			want string
		}{
			{wire.Op{Kind: wire.OpCreate, Object: id(n - 1), ObjectKind: wire.ObjectVar}, "already used"},
			{wire.Op{Kind: wire.OpListSet, Object: list, Index: 2, Value: wire.Int(0)}, "out of range (length 2)"},
			{wire.Op{Kind: wire.OpCounterAdd, Object: id(n / 2), Delta: 1}, "object is a var"},
			{wire.Op{Kind: wire.OpVarSet, Object: id(n + 5), Value: wire.Int(0)}, "no such object"},
		}
		for _, b := range bad {
			at := len(ops)
			err := s.checkWrites(append(ops[:at:at], b.op))
			if err == nil || !strings.Contains(err.Error(), b.want) || !strings.HasPrefix(err.Error(), "writes["+strconv.Itoa(at)+"]") {
				t.Errorf("%d objects, then %v: %v, want writes[%d] ... %s", n, b.op.Kind, err, at, b.want)
			}
		}
		removed := append(ops[:len(ops):len(ops)],
			wire.Op{Kind: wire.OpRemove, Object: id(0)},
			wire.Op{Kind: wire.OpVarSet, Object: id(0), Value: wire.Int(0)})
		if err := s.checkWrites(removed); err == nil || !strings.Contains(err.Error(), "no such object") {
			t.Errorf("%d objects: a write after the object's removal: %v", n, err)
		}
	}
}
