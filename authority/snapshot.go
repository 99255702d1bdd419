package authority

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"slices"

	"github.com/weft-stm/weft/wire"
)

// DeltaSince returns the changes after version v, in version order, and
// true; or false when the log no longer reaches back to v (or v is ahead
// of the share): the caller then sends a snapshot. The slice is the
// caller's; the changes' ops are shared with the log: do not modify them.
func (s *Share) DeltaSince(v uint64) ([]wire.Change, bool) {
	if v > s.version || v < s.logFrom {
		return nil, false
	}
	// The log's versions follow each other: v+1 is at v+1-oldest.
	i := s.logLen
	if i > 0 {
		i = int(v + 1 - s.logAt(0).Version)
	}
	out := make([]wire.Change, s.logLen-i)
	for j := range out {
		out[j] = s.logAt(i + j)
	}
	return out, true
}

// Snapshot returns the share's objects at Version, in chunks that fit lim:
// at most MaxObjects objects and MaxFrameSize bytes per chunk, at most
// MaxElements fields, entries or elements per object piece; larger objects
// are split (protocol.md §8.3). Objects come in id order, map entries and
// set elements in the order of their encoding, so the result is
// deterministic. An empty share is one chunk with no objects. The Share
// handle of each chunk is 0, for the caller to set; More is set on all but
// the last. A single value larger than a frame cannot fit and is sent alone.
func (s *Share) Snapshot(lim wire.Limits) []wire.SnapshotChunk {
	lim = lim.WithDefaults()
	b := chunker{lim: lim, budget: lim.MaxFrameSize - chunkHeader}
	for _, id := range s.liveIDs() {
		s.objects[id].pieces(&b)
	}
	b.flush()
	if len(b.chunks) == 0 {
		b.chunks = []wire.SnapshotChunk{{}}
	}
	for i := range b.chunks {
		b.chunks[i].More = i < len(b.chunks)-1
	}
	return b.chunks
}

// chunkHeader bounds a snapshot chunk's bytes besides its objects: type,
// handle, more flag and object count.
const chunkHeader = 1 + 5 + 1 + 5

type chunker struct {
	lim    wire.Limits
	budget int
	chunks []wire.SnapshotChunk
	cur    []wire.Object
	size   int
}

func (b *chunker) flush() {
	if len(b.cur) > 0 {
		b.chunks = append(b.chunks, wire.SnapshotChunk{Objects: b.cur})
		b.cur, b.size = nil, 0
	}
}

func (b *chunker) fits(n int) bool { return b.size+n <= b.budget }

// start opens a new piece of o, whose first extra bytes of state must fit
// too, in a new chunk if the current one is full.
func (b *chunker) start(o *object, extra int) *wire.Object {
	n := pieceHeader(o) + uvarintLen(0) + extra
	if len(b.cur) >= b.lim.MaxObjects || !b.fits(n) {
		b.flush()
	}
	b.cur = append(b.cur, wire.Object{ID: o.id, Class: o.class, Kind: o.kind})
	b.size += n
	return &b.cur[len(b.cur)-1]
}

// add accounts for one more element of n bytes in the piece p, which holds
// count elements, and returns the piece to add it to: p, or a new piece
// when p is full (MaxElements) or its chunk is (MaxFrameSize).
func (b *chunker) add(o *object, p *wire.Object, count, n int) *wire.Object {
	grow := n + uvarintLen(uint64(count+1)) - uvarintLen(uint64(count))
	if count < b.lim.MaxElements && b.fits(grow) || count == 0 && len(b.cur) == 1 {
		b.size += grow // (the second case: too large for any chunk, sent alone)
		return p
	}
	if count == 0 { // an empty piece: move it to a new chunk
		b.cur = b.cur[:len(b.cur)-1]
		b.flush()
	}
	return b.add(o, b.start(o, 0), 0, n)
}

func pieceHeader(o *object) int {
	return 1 + uvarintLen(o.id.Replica) + uvarintLen(o.id.Seq) + uvarintLen(uint64(o.class)) + 1
}

func uvarintLen(x uint64) int {
	var buf [binary.MaxVarintLen64]byte
	return binary.PutUvarint(buf[:], x)
}

func valueLen(v wire.Value) int { return wire.ValueSize(v) }

func compareValues(a, b wire.Value) int {
	return bytes.Compare(wire.AppendValue(nil, a), wire.AppendValue(nil, b))
}

// pieces adds o to the chunks, split as needed.
func (o *object) pieces(b *chunker) {
	switch o.kind {
	case wire.ObjectVar:
		b.start(o, valueLen(o.val.val)).Value = o.val.val
		return
	case wire.ObjectCounter:
		b.start(o, binary.MaxVarintLen64).Counter = o.counter
		return
	}
	p := b.start(o, 0)
	switch o.kind {
	case wire.ObjectRecord:
		var few [8]uint32 // most records: no allocation
		ids := few[:0]
		for id := range o.fields {
			ids = append(ids, id)
		}
		slices.Sort(ids)
		for _, id := range ids {
			x := o.fields[id].val
			p = b.add(o, p, len(p.Fields), uvarintLen(uint64(id))+valueLen(x))
			p.Fields = append(p.Fields, wire.Field{ID: id, Value: x})
		}
	case wire.ObjectMap, wire.ObjectSet:
		keys := make([]wire.Value, 0, len(o.entries))
		for k, e := range o.entries {
			if e.present {
				keys = append(keys, k)
			}
		}
		slices.SortFunc(keys, compareValues)
		for _, k := range keys {
			if o.kind == wire.ObjectSet {
				p = b.add(o, p, len(p.Elems), valueLen(k))
				p.Elems = append(p.Elems, k)
				continue
			}
			x := o.entries[k].val
			p = b.add(o, p, len(p.Entries), valueLen(k)+valueLen(x))
			p.Entries = append(p.Entries, wire.Entry{Key: k, Value: x})
		}
	case wire.ObjectList:
		for _, e := range o.list {
			p = b.add(o, p, len(p.Elems), valueLen(e.val))
			p.Elems = append(p.Elems, e.val)
		}
	}
}

// Load returns a share rebuilt from a snapshot taken at version (the chunks
// of Snapshot, or of the SnapshotChunk messages that followed an Opened with
// that version), split objects merged. The log and the verdicts start
// empty, and every part is taken as written at version: a read older than
// version conflicts (its reader retries), since a snapshot does not say
// when each part was last written.
func Load(name string, cfg Config, version uint64, chunks []wire.SnapshotChunk) (*Share, error) {
	s := NewWithConfig(name, cfg)
	s.version, s.logFrom = version, version
	st := loaded(version)
	for ci := range chunks {
		for oi := range chunks[ci].Objects {
			p := &chunks[ci].Objects[oi]
			if err := s.loadPiece(p, st); err != nil {
				return nil, fmt.Errorf("authority: load: chunk %d object %d (%v): %w", ci, oi, p.ID, err)
			}
		}
	}
	return s, nil
}

func (s *Share) loadPiece(p *wire.Object, st stamp) error {
	o := s.objects[p.ID]
	if o == nil {
		if p.Kind < wire.ObjectRecord || p.Kind > wire.ObjectList {
			return fmt.Errorf("bad kind %v", p.Kind)
		}
		o = newObject(p.ID, p.Kind, p.Class)
		o.life, o.whole = st, st
		o.val.st = st
		o.val.val, o.counter = p.Value, p.Counter
		s.holdRef(o, p.Value, 1)
		s.objects[p.ID] = o
	} else if o.kind != p.Kind || o.class != p.Class {
		return fmt.Errorf("piece of kind %v class %d continues a %v of class %d", p.Kind, p.Class, o.kind, o.class)
	} else if o.kind == wire.ObjectVar || o.kind == wire.ObjectCounter {
		return fmt.Errorf("a %v is never split", o.kind)
	}
	switch o.kind {
	case wire.ObjectRecord:
		for _, f := range p.Fields {
			if old := o.fields[f.ID]; old != nil {
				s.holdRef(o, old.val, -1)
			}
			s.holdRef(o, f.Value, 1)
			o.fields[f.ID] = &elem{val: f.Value, st: st}
		}
	case wire.ObjectMap:
		for _, e := range p.Entries {
			if old := o.entries[e.Key]; old != nil {
				s.holdRef(o, e.Key, -1)
				s.holdRef(o, old.val, -1)
			}
			s.holdRef(o, e.Key, 1)
			s.holdRef(o, e.Value, 1)
			o.entries[e.Key] = &entry{present: true, val: e.Value, st: st}
		}
	case wire.ObjectSet:
		for _, k := range p.Elems {
			if o.entries[k] == nil {
				s.holdRef(o, k, 1)
			}
			o.entries[k] = &entry{present: true, st: st}
		}
	case wire.ObjectList:
		for _, x := range p.Elems {
			s.holdRef(o, x, 1)
			o.list = append(o.list, elem{val: x, st: st})
		}
	}
	return nil
}
