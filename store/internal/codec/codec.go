package codec

import (
	"fmt"
	"math"

	"github.com/weft-stm/weft/wire"
)

// Format is the format marker every store writes when it creates its data
// and checks when it opens it. A change to what the stores write (key
// layout or encoding) needs a new one, so that an old server refuses new
// data instead of misreading it.
const Format = "weft-store v1"

// ChunkSize is the size above which EncodeObjects starts a new chunk. It
// keeps each stored value far below what the databases handle well in one
// piece, while a chunk still holds many small objects.
const ChunkSize = 1 << 20

// limits are as large as the decoder allows: the data was written by the
// server itself, so the limits for peers do not apply.
var limits = wire.Limits{
	MaxFrameSize: math.MaxInt32, MaxStringLen: math.MaxInt32, MaxNameLen: math.MaxInt32,
	MaxReads: math.MaxInt32, MaxWrites: math.MaxInt32, MaxDeps: math.MaxInt32,
	MaxObjects: math.MaxInt32, MaxChanges: math.MaxInt32, MaxElements: math.MaxInt32,
	MaxPendingCommits: math.MaxInt32, MaxOpenShares: math.MaxInt32,
}

// AppendChange appends the encoding of ch to b.
func AppendChange(b []byte, ch wire.Change) []byte {
	return wire.AppendMessage(b, &wire.Delta{Changes: []wire.Change{ch}})
}

// DecodeChange decodes what AppendChange wrote.
func DecodeChange(b []byte) (wire.Change, error) {
	m, err := wire.DecodeMessage(b, limits)
	if err != nil {
		return wire.Change{}, fmt.Errorf("change: %w", err)
	}
	d, ok := m.(*wire.Delta)
	if !ok || len(d.Changes) != 1 {
		return wire.Change{}, fmt.Errorf("change: holds a %v, not one change", m.Type())
	}
	return d.Changes[0], nil
}

// EncodeObjects encodes objects in chunks: each chunk holds whole objects,
// in order, and is at most ChunkSize bytes unless it holds a single larger
// object. No objects give no chunks.
func EncodeObjects(objects []wire.Object) [][]byte {
	var chunks [][]byte
	// Encode one object at a time to learn its size; the wire codec has no
	// size function, and encoding twice costs less than guessing.
	var one []byte
	start := 0
	size := 0
	flush := func(end int) {
		if end > start {
			chunks = append(chunks, wire.AppendMessage(make([]byte, 0, size+16), &wire.SnapshotChunk{Objects: objects[start:end]}))
		}
		start, size = end, 0
	}
	for i := range objects {
		one = wire.AppendMessage(one[:0], &wire.SnapshotChunk{Objects: objects[i : i+1]})
		if size > 0 && size+len(one) > ChunkSize {
			flush(i)
		}
		size += len(one)
	}
	flush(len(objects))
	return chunks
}

// DecodeObjects decodes one chunk written by EncodeObjects and appends its
// objects to objects.
func DecodeObjects(objects []wire.Object, chunk []byte) ([]wire.Object, error) {
	m, err := wire.DecodeMessage(chunk, limits)
	if err != nil {
		return objects, fmt.Errorf("checkpoint chunk: %w", err)
	}
	c, ok := m.(*wire.SnapshotChunk)
	if !ok {
		return objects, fmt.Errorf("checkpoint chunk: holds a %v, not objects", m.Type())
	}
	return append(objects, c.Objects...), nil
}

// CheckChanges returns an error if the versions of changes are not
// consecutive, starting right after version (the checkpoint's). Every
// store's Load calls it, so that a hole in a share's history (a bug, or
// storage that lost a write it had acknowledged) is reported instead of
// handed to the server.
func CheckChanges(share string, version uint64, changes []wire.Change) error {
	want := version + 1
	for _, ch := range changes {
		if ch.Version != want {
			return fmt.Errorf("share %q: change at version %d where %d was expected (checkpoint at %d)", share, ch.Version, want, version)
		}
		want++
	}
	return nil
}

// Limits returns the limits the stores decode their own data with: as
// large as the decoder allows.
func Limits() wire.Limits { return limits }
