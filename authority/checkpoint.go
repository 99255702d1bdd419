package authority

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"

	"github.com/weft-stm/weft/wire"
)

// metaID is the id of the object a checkpoint carries the share's own
// bookkeeping in: replica 0 is no client's, so no commit can name it.
var metaID = wire.ObjectID{Replica: 0, Seq: 1}

// Meta keys: "acked/<replica>" holds that replica's remembered
// acknowledged commits as uvarint pairs (seq, version); "horizon/<replica>"
// the highest seq of that replica whose verdict was forgotten, as one
// uvarint; "removed" the ids of removed objects as uvarint pairs
// (replica, seq).
const metaRemoved = "removed"

// Checkpoint returns what a store keeps to restore the share: its version
// and its objects (whole, live ones), plus one object of the share's own
// (id {0, 1}) with what a snapshot for clients leaves out: the
// acknowledged commits it remembers, so that a commit resent after a
// restart is recognised, and the ids of removed objects, so that none is
// reused. Aborts are not kept: an aborted commit changed nothing, and a
// resend of it is decided again.
func (s *Share) Checkpoint() (uint64, []wire.Object) {
	ids := s.liveIDs()
	objs := make([]wire.Object, 0, len(ids)+1)
	for _, id := range ids {
		o, _ := s.Object(id)
		objs = append(objs, o)
	}
	meta := wire.Object{ID: metaID, Kind: wire.ObjectMap}
	replicas := make([]uint64, 0, len(s.verdicts)+len(s.retired))
	for r := range s.verdicts {
		replicas = append(replicas, r)
	}
	for r := range s.retired {
		replicas = append(replicas, r)
	}
	slices.Sort(replicas)
	for _, r := range replicas {
		rv := s.verdicts[r]
		if rv == nil { // retired: its highest seq alone
			meta.Entries = append(meta.Entries, wire.Entry{Key: wire.String(fmt.Sprintf("horizon/%d", r)),
				Value: wire.Bytes(binary.AppendUvarint(nil, s.retired[r]))})
			continue
		}
		var b []byte
		for _, seq := range rv.order {
			if v := rv.bySeq[seq]; v.ack {
				b = binary.AppendUvarint(b, seq)
				b = binary.AppendUvarint(b, v.version)
			}
		}
		meta.Entries = append(meta.Entries, wire.Entry{Key: wire.String(fmt.Sprintf("acked/%d", r)), Value: wire.Bytes(b)})
		if rv.horizon > 0 {
			// A resend at or under it stays too old to decide (lookup),
			// not a new commit, after a restart too.
			meta.Entries = append(meta.Entries, wire.Entry{Key: wire.String(fmt.Sprintf("horizon/%d", r)),
				Value: wire.Bytes(binary.AppendUvarint(nil, rv.horizon))})
		}
	}
	var removed []byte
	for id, o := range s.objects {
		if o.removed {
			removed = binary.AppendUvarint(removed, id.Replica)
			removed = binary.AppendUvarint(removed, id.Seq)
		}
	}
	meta.Entries = append(meta.Entries, wire.Entry{Key: wire.String(metaRemoved), Value: wire.Bytes(removed)})
	return s.version, append(objs, meta)
}

// Restore rebuilds a share from a checkpoint (what Checkpoint returned,
// or no objects at version 0) and the changes acknowledged after it, in
// version order: the state, the remembered acknowledged commits (those of
// the changes included) and the removed ids are as they were.
func Restore(name string, cfg Config, version uint64, objects []wire.Object, changes []wire.Change) (*Share, error) {
	var meta *wire.Object
	rest := make([]wire.Object, 0, len(objects))
	for i := range objects {
		if objects[i].ID == metaID {
			if meta != nil {
				return nil, fmt.Errorf("authority: restore %q: %w: two objects %v", name, errMeta, metaID)
			}
			meta = &objects[i]
			continue
		}
		rest = append(rest, objects[i])
	}
	s, err := Load(name, cfg, version, []wire.SnapshotChunk{{Objects: rest}})
	if err != nil {
		return nil, err
	}
	// The share that wrote the checkpoint looked for idle replicas when
	// it decided the commit of version (remember), if not earlier since
	// the last multiple of the step: the next look is at the next one.
	s.nextRetire = s.retireAfterScan(version)
	if meta != nil {
		if err := s.restoreMeta(meta); err != nil {
			return nil, fmt.Errorf("authority: restore %q: %w", name, err)
		}
	}
	for _, ch := range changes {
		if err := s.ApplyChange(ch); err != nil {
			return nil, fmt.Errorf("authority: restore %q: %w", name, err)
		}
		s.remember(ch.Origin, verdict{ack: true, version: ch.Version})
	}
	return s, nil
}

var errMeta = errors.New("malformed checkpoint bookkeeping")

func (s *Share) restoreMeta(meta *wire.Object) error {
	pairs := func(v wire.Value, f func(a, b uint64)) error {
		if v.Kind() != wire.KindBytes {
			return errMeta
		}
		b := v.Bytes()
		for len(b) > 0 {
			a, n := binary.Uvarint(b)
			if n <= 0 {
				return errMeta
			}
			c, m := binary.Uvarint(b[n:])
			if m <= 0 {
				return errMeta
			}
			f(a, c)
			b = b[n+m:]
		}
		return nil
	}
	for _, e := range meta.Entries {
		if e.Key.Kind() != wire.KindString {
			return errMeta
		}
		key := e.Key.Text()
		if key == metaRemoved {
			if err := pairs(e.Value, func(r, seq uint64) {
				id := wire.ObjectID{Replica: r, Seq: seq}
				st := loaded(s.version)
				s.objects[id] = &object{id: id, removed: true, life: st, whole: st}
			}); err != nil {
				return err
			}
			continue
		}
		var replica uint64
		if _, err := fmt.Sscanf(key, "horizon/%d", &replica); err == nil {
			if e.Value.Kind() != wire.KindBytes {
				return errMeta
			}
			h, n := binary.Uvarint(e.Value.Bytes())
			if n <= 0 || n != len(e.Value.Bytes()) {
				return fmt.Errorf("%w: key %q", errMeta, key)
			}
			rv := s.verdictsOf(replica)
			rv.horizon = max(rv.horizon, h)
			continue
		}
		if _, err := fmt.Sscanf(key, "acked/%d", &replica); err != nil {
			return fmt.Errorf("%w: key %q", errMeta, key)
		}
		var last uint64
		if err := pairs(e.Value, func(seq, ver uint64) {
			s.remember(wire.CommitID{Replica: replica, Seq: seq}, verdict{ack: true, version: ver})
			last = max(last, ver)
		}); err != nil {
			return err
		}
		if rv := s.verdicts[replica]; rv != nil {
			// Decided at its latest acknowledged version (its aborts are
			// not kept), not now: it retires when it did (retireIdle).
			rv.last = last
		}
	}
	// A replica with a horizon and no verdict was retired (or had only
	// aborts remembered, which are not kept): retired again.
	for r, rv := range s.verdicts {
		if len(rv.bySeq) == 0 {
			if s.retired == nil {
				s.retired = map[uint64]uint64{}
			}
			s.retired[r] = max(rv.top, rv.horizon)
			delete(s.verdicts, r)
		}
	}
	return nil
}
