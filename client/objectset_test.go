package client

import (
	"slices"
	"testing"

	"github.com/weft-stm/weft/wire"
)

// TestObjectSetAdd adds objects with repeats, before and after the list
// is long enough to be indexed, and checks the list against a plain
// search: each object once, in the order first added.
func TestObjectSetAdd(t *testing.T) {
	var set objectSet
	var got, want []wire.ObjectID
	for i := range 200 {
		// Runs of one object, and objects coming back after others.
		id := wire.ObjectID{Replica: 1, Seq: uint64((i / 3) % 40)}
		if i%7 == 0 {
			id.Seq = uint64(i % 5)
		}
		got = set.add(got, id)
		if !slices.Contains(want, id) {
			want = append(want, id)
		}
		if !slices.Equal(got, want) {
			t.Fatalf("after %d adds: %v, want %v", i+1, got, want)
		}
	}
	if set == nil {
		t.Fatalf("a list of %d objects was never indexed", len(got))
	}
}
