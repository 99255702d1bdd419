package client

import (
	"flag"
	"math"
	"os"
	"slices"
	"testing"

	"github.com/weft-stm/weft/wire"
)

// The package's tests, inside and outside it, run with the share's
// bookkeeping checked as it goes; its benchmarks measure the share as an
// application runs it, without (so go test -bench runs the tests it runs
// beside them without the checks too: pass -run '^$').
func TestMain(m *testing.M) {
	flag.Parse()
	checkInvariants = flag.Lookup("test.bench").Value.String() == ""
	os.Exit(m.Run())
}

func TestNotOverwritten(t *testing.T) {
	a, b := wire.ObjectID{Replica: 1, Seq: 1}, wire.ObjectID{Replica: 1, Seq: 2}
	nan := wire.Float(math.NaN())
	set := func(o wire.ObjectID, f uint32) wire.Op {
		return wire.Op{Kind: wire.OpSetField, Object: o, Field: f, Value: wire.Int(1)}
	}
	put := func(o wire.ObjectID, k wire.Value) wire.Op {
		return wire.Op{Kind: wire.OpMapPut, Object: o, Key: k, Value: wire.Int(1)}
	}
	del := func(o wire.ObjectID, k wire.Value) wire.Op { return wire.Op{Kind: wire.OpMapDelete, Object: o, Key: k} }
	varSet := wire.Op{Kind: wire.OpVarSet, Object: a, Value: wire.Int(2)}
	add := wire.Op{Kind: wire.OpCounterAdd, Object: a, Delta: 1}
	appendOp := wire.Op{Kind: wire.OpListAppend, Object: a, Values: []wire.Value{wire.Int(1)}}
	listSet := wire.Op{Kind: wire.OpListSet, Object: a, Index: 0, Value: wire.Int(1)}
	cases := []struct {
		name      string
		ops, last []wire.Op
		want      []wire.Op
	}{
		{"same field", []wire.Op{set(a, 1)}, []wire.Op{set(a, 1)}, nil},
		{"other field", []wire.Op{set(a, 1)}, []wire.Op{set(a, 2)}, []wire.Op{set(a, 1)}},
		{"other object", []wire.Op{set(a, 1)}, []wire.Op{set(b, 1)}, []wire.Op{set(a, 1)}},
		{"var", []wire.Op{varSet}, []wire.Op{varSet}, nil},
		{"counter adds add up", []wire.Op{add}, []wire.Op{add}, []wire.Op{add}},
		{"appends add up", []wire.Op{appendOp}, []wire.Op{appendOp}, []wire.Op{appendOp}},
		{"list set kept", []wire.Op{listSet}, []wire.Op{listSet}, []wire.Op{listSet}},
		{"put then delete", []wire.Op{put(a, wire.String("k"))}, []wire.Op{del(a, wire.String("k"))}, nil},
		{"delete then put", []wire.Op{del(a, wire.String("k"))}, []wire.Op{put(a, wire.String("k"))}, nil},
		{"other key", []wire.Op{put(a, wire.String("k"))}, []wire.Op{put(a, wire.String("j"))}, []wire.Op{put(a, wire.String("k"))}},
		{"NaN keys never match", []wire.Op{put(a, nan)}, []wire.Op{put(a, nan)}, []wire.Op{put(a, nan)}},
		{"some of several", []wire.Op{set(a, 1), set(a, 2), put(b, wire.Int(3)), set(b, 1)},
			[]wire.Op{set(a, 2), set(b, 1)}, []wire.Op{set(a, 1), put(b, wire.Int(3))}},
	}
	for _, c := range cases {
		got := notOverwritten(c.ops, c.last)
		if !slices.EqualFunc(got, c.want, func(x, y wire.Op) bool {
			return x.Kind == y.Kind && x.Object == y.Object && x.Field == y.Field && x.Key == y.Key
		}) {
			t.Errorf("%s: kept %v, want %v", c.name, got, c.want)
		}
	}
}
