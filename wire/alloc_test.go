package wire

import (
	"math"
	"runtime"
	"testing"
)

// maxAllocFactor bounds the bytes a decoder allocates per byte of frame
// body. Every element takes at least one input byte, but its Go struct is
// larger: a 3-byte remove op decodes into a ~190-byte Op. The bound is
// documented in docs/protocol.md (section 10).
const maxAllocFactor = 64

// TestAllocationBound decodes frames made of as many of the smallest
// elements as fit, with every count limit out of the way, and checks that
// the memory allocated stays within maxAllocFactor times the frame.
func TestAllocationBound(t *testing.T) {
	const size = 64 << 10
	lim := Limits{MaxFrameSize: size}
	for _, f := range lim.fields() {
		if f != &lim.MaxFrameSize {
			*f = math.MaxInt32
		}
	}
	fill := func(head []byte, elem []byte, tail []byte) []byte {
		n := (size - len(head) - len(tail) - 5) / len(elem)
		b := append(head, appendUvarint(nil, uint64(n))...)
		for range n {
			b = append(b, elem...)
		}
		return append(b, tail...)
	}
	// overclaim: a count as large as the bytes left, which a decoder
	// checking only one byte per element would allocate for in full
	// before failing on the first element that does not fit.
	overclaim := func(head []byte) []byte {
		n := size - len(head) - 5
		b := append(head, appendUvarint(nil, uint64(n))...)
		return append(b, make([]byte, size-len(b))...)
	}
	tests := []struct {
		name    string
		body    []byte
		corrupt bool
	}{
		{"overclaimed ops", overclaim([]byte{byte(TypeUpdate), 0, 0, 0, 0}), true},
		{"overclaimed reads", overclaim([]byte{byte(TypeCommit), 0, 0, 0, 0, 0}), true},
		{"overclaimed objects", overclaim([]byte{byte(TypeSnapshotChunk), 0, 0}), true},
		{"overclaimed entries", overclaim([]byte{byte(TypeSnapshotChunk), 0, 0, 1, 0, 0, 0, byte(ObjectMap)}), true},
		{"overclaimed changes", overclaim([]byte{byte(TypeDelta), 0, 0}), true},
		{"remove ops", fill([]byte{byte(TypeUpdate), 0, 0, 0, 0}, []byte{byte(OpRemove), 0, 0}, nil), false},
		{"null elements", fill([]byte{byte(TypeUpdate), 0, 0, 0, 0, 1, byte(OpListAppend), 0, 0}, []byte{0}, nil), false},
		{"whole reads", fill([]byte{byte(TypeCommit), 0, 0, 0, 0, 0}, []byte{0, 0, 0, 0}, []byte{0}), false},
		{"deps", fill([]byte{byte(TypeCommit), 0, 0, 0, 0}, []byte{0, 0}, []byte{0, 0}), false},
		{"counters", fill([]byte{byte(TypeSnapshotChunk), 0, 0}, []byte{0, 0, 0, byte(ObjectCounter), 0}, nil), false},
		{"empty changes", fill([]byte{byte(TypeDelta), 0, 0}, []byte{0, 0, 0, 0}, nil), false},
		{"record fields", fill([]byte{byte(TypeSnapshotChunk), 0, 0, 1, 0, 0, 0, byte(ObjectRecord)}, []byte{0, 0}, nil), false},
	}
	for _, tt := range tests {
		if len(tt.body) > size {
			t.Fatalf("%s: body of %d bytes", tt.name, len(tt.body))
		}
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		m, err := DecodeMessage(tt.body, lim)
		runtime.ReadMemStats(&after)
		if (err != nil) != tt.corrupt {
			t.Fatalf("%s: %v", tt.name, err)
		}
		runtime.KeepAlive(m)
		alloc := after.TotalAlloc - before.TotalAlloc
		factor := float64(alloc) / float64(len(tt.body))
		t.Logf("%s: %d bytes allocated for %d, %.1fx", tt.name, alloc, len(tt.body), factor)
		if factor > maxAllocFactor {
			t.Errorf("%s: allocated %.1fx the frame size, over %dx", tt.name, factor, maxAllocFactor)
		}
	}
}
