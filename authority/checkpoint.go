package authority

import (
	"cmp"
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
// uvarint; "tombstones" the removed objects whose tombstones are kept as
// uvarint triples (version of the removal, replica, seq), in version
// order; "removed" (checkpoints written before tombstones were forgotten)
// their ids as uvarint pairs (replica, seq), taken as removed at the
// checkpoint's version; "epochs" the epoch changes as uvarint pairs
// (version, id).
const (
	metaTombstones = "tombstones"
	metaRemoved    = "removed"
	metaEpochs     = "epochs"
)

// Checkpoint returns what a store keeps to restore the share: its version
// and its objects (whole, live ones), plus one object of the share's own
// (id {0, 1}) with what a snapshot for clients leaves out: the
// acknowledged commits it remembers, so that a commit resent after a
// restart is recognised, the tombstones of removed objects with their
// removals' versions (reads of them are validated as before the restart,
// and each is forgotten when it would have been: forgetTombs), and the
// epoch changes. Aborts are not kept: an aborted commit changed nothing, and a
// resend of it is decided again.
func (s *Share) Checkpoint() (uint64, []wire.Object) {
	// A server holds the share's lock meanwhile (a second for a million
	// objects when each was copied on its own): one chunker for all.
	// Sorted by id with the ids beside the pointers: compared through
	// the pointers, the sort took half of the time.
	type idObject struct {
		id wire.ObjectID
		o  *object
	}
	live := make([]idObject, 0, len(s.objects))
	for id, o := range s.objects {
		if !o.removed {
			live = append(live, idObject{id, o})
		}
	}
	slices.SortFunc(live, func(a, b idObject) int { return compareIDs(a.id, b.id) })
	const unbounded = int(^uint(0) >> 2)
	b := chunker{lim: wire.Limits{MaxObjects: unbounded, MaxElements: unbounded}, budget: unbounded,
		cur: make([]wire.Object, 0, len(live)+1)}
	for _, x := range live {
		x.o.pieces(&b)
	}
	objs := b.cur
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
	var tombs []byte
	for _, t := range s.tombs {
		if o := s.objects[t.id]; o != nil && o.removed && o.life.ver == t.ver {
			tombs = binary.AppendUvarint(tombs, t.ver)
			tombs = binary.AppendUvarint(tombs, t.id.Replica)
			tombs = binary.AppendUvarint(tombs, t.id.Seq)
		}
	}
	meta.Entries = append(meta.Entries, wire.Entry{Key: wire.String(metaTombstones), Value: wire.Bytes(tombs)})
	var epochs []byte
	for _, e := range s.epochs {
		epochs = binary.AppendUvarint(epochs, e.Version)
		epochs = binary.AppendUvarint(epochs, e.ID)
	}
	meta.Entries = append(meta.Entries, wire.Entry{Key: wire.String(metaEpochs), Value: wire.Bytes(epochs)})
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
		if !isEpoch(ch) { // no client's commit
			s.remember(ch.Origin, verdict{ack: true, version: ch.Version})
		}
	}
	return s, nil
}

var errMeta = errors.New("malformed checkpoint bookkeeping")

// restoreTomb restores the tombstone of id, removed at version v (its
// other versions are unknown: v for all, as Load takes them), unless the
// share holds id already (live, or listed twice).
func (s *Share) restoreTomb(v uint64, id wire.ObjectID) error {
	if _, ok := s.objects[id]; ok {
		return fmt.Errorf("%w: a tombstone of %v, which it holds already", errMeta, id)
	}
	st := loaded(v)
	s.objects[id] = &object{id: id, removed: true, life: st, whole: st}
	s.tombs = append(s.tombs, tomb{ver: v, id: id})
	return nil
}

func (s *Share) restoreMeta(meta *wire.Object) error {
	seen := map[string]bool{}
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
		if key == metaRemoved || key == metaTombstones || key == metaEpochs {
			// Each once, and tombstones one way: else their list would
			// not be in version order.
			if seen[key] || seen[metaRemoved] && key == metaTombstones || seen[metaTombstones] && key == metaRemoved {
				return fmt.Errorf("%w: key %q again", errMeta, key)
			}
			seen[key] = true
		}
		if key == metaEpochs {
			var prev uint64
			var bad error
			if err := pairs(e.Value, func(v, id uint64) {
				if v <= prev || v > s.version || id == 0 {
					bad = fmt.Errorf("%w: epoch %d:%d after version %d", errMeta, v, id, prev)
				}
				prev = v
				s.epochs = append(s.epochs, wire.Epoch{Version: v, ID: id})
			}); err != nil {
				return err
			}
			if bad != nil {
				return bad
			}
			continue
		}
		if key == metaRemoved {
			var bad error
			if err := pairs(e.Value, func(r, seq uint64) {
				bad = cmp.Or(bad, s.restoreTomb(s.version, wire.ObjectID{Replica: r, Seq: seq}))
			}); err != nil {
				return err
			}
			if bad != nil {
				return bad
			}
			continue
		}
		if key == metaTombstones {
			b, prev := e.Value.Bytes(), uint64(0)
			if e.Value.Kind() != wire.KindBytes {
				return errMeta
			}
			for len(b) > 0 {
				var x [3]uint64
				for i := range x {
					v, n := binary.Uvarint(b)
					if n <= 0 {
						return fmt.Errorf("%w: key %q", errMeta, key)
					}
					x[i], b = v, b[n:]
				}
				if x[0] < prev || x[0] > s.version {
					return fmt.Errorf("%w: a tombstone of version %d after %d, in a checkpoint at %d", errMeta, x[0], prev, s.version)
				}
				prev = x[0]
				if err := s.restoreTomb(x[0], wire.ObjectID{Replica: x[1], Seq: x[2]}); err != nil {
					return err
				}
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
