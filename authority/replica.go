package authority

import (
	"fmt"

	"github.com/weft-stm/weft/wire"
)

// ApplyChange applies a change the authority already decided (an Update, a
// Delta's change, or an Ack of one's own commit with its writes) to a copy
// of the share, as a client keeps the acknowledged state: no reads are
// validated and no verdict is remembered, but ch.Version must be the next
// version, and the writes must apply (as for Apply, but for a create of
// the id of a removed object: see checkWrites). On an error nothing
// changes. ch.Writes is kept in the log: the caller must not modify it.
func (s *Share) ApplyChange(ch wire.Change) error {
	if ch.Version != s.version+1 {
		return fmt.Errorf("authority: change to version %d after version %d", ch.Version, s.version)
	}
	if err := s.checkWrites(ch.Writes, true); err != nil {
		return fmt.Errorf("authority: change to version %d: %w", ch.Version, err)
	}
	s.version++
	for i := range ch.Writes {
		s.applyOp(&ch.Writes[i], s.version, ch.Origin.Replica)
	}
	s.forgetTombs()
	s.appendLog(ch)
	s.noteEpoch(ch)
	return nil
}

// Has reports whether the share holds the live object id (Object without
// the copy).
func (s *Share) Has(id wire.ObjectID) bool {
	o := s.objects[id]
	return o != nil && !o.removed
}

// Kind returns the kind of the live object id, and whether the share has
// it.
func (s *Share) Kind(id wire.ObjectID) (wire.ObjectKind, bool) {
	o := s.objects[id]
	if o == nil || o.removed {
		return 0, false
	}
	return o.kind, true
}

// Object returns the state of the live object id, whole (never split as a
// snapshot may split it), and whether the share has it.
func (s *Share) Object(id wire.ObjectID) (wire.Object, bool) {
	o := s.objects[id]
	if o == nil || o.removed {
		return wire.Object{}, false
	}
	const unbounded = int(^uint(0) >> 2)
	b := chunker{lim: wire.Limits{MaxObjects: unbounded, MaxElements: unbounded}, budget: unbounded}
	o.pieces(&b)
	b.flush()
	return b.chunks[0].Objects[0], true
}
