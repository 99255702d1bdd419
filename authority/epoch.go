package authority

import (
	"cmp"
	"fmt"
	"slices"

	"github.com/weft-stm/weft/wire"
)

// Epochs. A version number names a state only within one history of a
// share. A server restored from a backup, or recreated empty, and
// committing again, gives the same numbers to other changes; a client
// holding version v of the old history would then take the new history's
// changes after v as a delta onto its copy, and have its unanswered
// commits validated against reads of versions that meant something else.
// So each time a server creates a share or loads it from its store, it
// commits an epoch change (BeginEpoch) before any other: no writes, and a
// random id as its origin's seq (replica 0 is no client's). Two histories
// that split differ from the next epoch change on. A copy names the last
// epoch change it holds, and InHistory decides from the share's list of
// epoch changes, exactly, whether the copy's version is in its history.

// BeginEpoch commits the epoch change id (not 0) as the next version and
// returns it, for the caller to store and publish like any change.
func (s *Share) BeginEpoch(id uint64) wire.Change {
	ch := wire.Change{Version: s.version + 1, Origin: wire.CommitID{Replica: 0, Seq: id}}
	if err := s.ApplyChange(ch); err != nil {
		panic(err) // the next version, and no writes: it cannot fail
	}
	return ch
}

// isEpoch reports whether ch is an epoch change.
func isEpoch(ch wire.Change) bool { return ch.Origin.Replica == 0 }

// noteEpoch records ch, just applied, if it is an epoch change.
func (s *Share) noteEpoch(ch wire.Change) {
	if isEpoch(ch) {
		s.epochs = append(s.epochs, wire.Epoch{Version: ch.Version, ID: ch.Origin.Seq})
	}
}

// Epoch returns the last epoch change the share holds (zero if none).
func (s *Share) Epoch() wire.Epoch {
	if len(s.epochs) == 0 {
		return wire.Epoch{}
	}
	return s.epochs[len(s.epochs)-1]
}

// AdoptEpoch records e as the last epoch change of a copy loaded from a
// snapshot (Load) at a version at or after e's: the copy holds none of the
// changes, and must name it when opened again.
func (s *Share) AdoptEpoch(e wire.Epoch) error {
	if e.Version > s.version || (e.Version == 0) != (e.ID == 0) {
		return fmt.Errorf("authority: share %q at version %d: epoch %d:%d", s.name, s.version, e.Version, e.ID)
	}
	s.epochs = nil
	if e.Version > 0 {
		s.epochs = []wire.Epoch{e}
	}
	return nil
}

// InHistory reports whether a copy of the share at version have, whose
// last epoch change is e (zero if none), is in the share's history: it
// holds the same changes as the share up to have. It is if it holds
// nothing (have 0); otherwise the share must hold e, have must not be
// past the share's version, nor reach the share's next epoch change after
// e (the copy would hold it, and name it). A copy with no epoch change
// must be older than the share's first.
func (s *Share) InHistory(have uint64, e wire.Epoch) bool {
	if have == 0 {
		return true
	}
	if have > s.version {
		return false
	}
	// The first epoch change after e (or the first of all, e zero).
	next, _ := slices.BinarySearchFunc(s.epochs, e.Version+1, func(x wire.Epoch, v uint64) int { return cmp.Compare(x.Version, v) })
	if e.Version != 0 {
		i := next - 1
		if i < 0 || s.epochs[i] != e {
			return false
		}
	}
	return next == len(s.epochs) || have < s.epochs[next].Version
}
