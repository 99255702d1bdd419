package authority

import (
	"encoding/binary"
	"errors"
	"testing"

	"github.com/weft-stm/weft/wire"
)

// commitN acknowledges n commits of replica r (n versions): the first
// creates a var if the share has none, the others set it.
func commitN(t *testing.T, s *Share, r uint64, n int) {
	t.Helper()
	x := wire.ObjectID{Replica: 1, Seq: 1}
	if !s.Has(x) {
		if res := s.Apply(&wire.Commit{ID: wire.CommitID{Replica: 1, Seq: 1}, Snapshot: s.Version(),
			Writes: []wire.Op{{Kind: wire.OpCreate, Object: x, ObjectKind: wire.ObjectVar}}}); !res.Ack {
			t.Fatalf("create: %+v", res)
		}
		n--
	}
	for range n {
		seq := uint64(2)
		if rv := s.verdicts[r]; rv != nil {
			seq = rv.top + 1
		}
		if res := s.Apply(&wire.Commit{ID: wire.CommitID{Replica: r, Seq: seq}, Snapshot: s.Version(),
			Writes: []wire.Op{{Kind: wire.OpVarSet, Object: x, Value: wire.Uint(seq)}}}); !res.Ack {
			t.Fatalf("commit: %+v", res)
		}
	}
}

// TestInHistory: a copy is in the share's history exactly when it holds
// the share's changes up to its version: the cases of a server restarted
// (same history), restored from a backup and committing again, or
// recreated empty.
func TestInHistory(t *testing.T) {
	// History A: epoch at 1, commits, a restart (epoch at 12), commits.
	a := New("s")
	a.BeginEpoch(101)
	commitN(t, a, 7, 10) // versions 2..11
	backup, objs := a.Checkpoint()
	a.BeginEpoch(102) // 12
	commitN(t, a, 7, 10)
	if got := a.Epoch(); got != (wire.Epoch{Version: 12, ID: 102}) {
		t.Fatalf("Epoch() = %+v", got)
	}
	// History B: A's backup at 11, loaded again, committing again.
	b, err := Restore("s", Config{}, backup, objs, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := b.Epoch(); got != (wire.Epoch{Version: 1, ID: 101}) {
		t.Fatalf("restored Epoch() = %+v", got)
	}
	b.BeginEpoch(201) // 12, as A's 102
	commitN(t, b, 8, 20)
	// History C: recreated empty.
	c := New("s")
	c.BeginEpoch(301)
	commitN(t, c, 9, 40)

	e1, e2 := wire.Epoch{Version: 1, ID: 101}, wire.Epoch{Version: 12, ID: 102}
	for _, tc := range []struct {
		name string
		s    *Share
		have uint64
		e    wire.Epoch
		want bool
	}{
		{"nothing held", b, 0, wire.Epoch{}, true},
		{"A's copy, in A", a, 11, e1, true},
		{"A's copy after its restart, in A", a, 15, e2, true},
		{"A's current copy", a, a.Version(), e2, true},
		{"a copy ahead of A", a, a.Version() + 1, e2, false},
		{"A's copy at its restart, before the epoch change", a, 11, e1, true},
		{"A's copy at the epoch change", a, 12, e2, true},
		{"A's copy claiming no epoch change", a, 5, wire.Epoch{}, false},
		{"A's copy before the backup, in B", b, 11, e1, true},
		{"A's copy at 5, in B", b, 5, e1, true},
		{"A's copy after the backup, in B", b, 15, e2, false},
		{"A's copy at B's epoch change, in B", b, 12, e2, false},
		{"an epoch id B never had", b, 15, wire.Epoch{Version: 12, ID: 999}, false},
		{"an epoch B holds but past the next one", b, 15, e1, false},
		{"B's own copy", b, 20, wire.Epoch{Version: 12, ID: 201}, true},
		{"A's copy in C", c, 11, e1, false},
		{"A's copy in C, as old as can be", c, 1, e1, false},
		{"an epoch at a version past the share", b, 5, wire.Epoch{Version: 1 << 63, ID: 1}, false},
		{"an epoch at the largest version", b, 5, wire.Epoch{Version: ^uint64(0), ID: 1}, false},
	} {
		if got := tc.s.InHistory(tc.have, tc.e); got != tc.want {
			t.Errorf("%s: InHistory(%d, %d:%d) = %v, want %v", tc.name, tc.have, tc.e.Version, tc.e.ID, got, tc.want)
		}
	}
}

// TestEpochsSurviveCheckpoint: a share restored from a checkpoint and the
// changes after it holds every epoch change, and a client's copy (changes
// applied, or a snapshot adopting the last epoch) names the same one.
func TestEpochsSurviveCheckpoint(t *testing.T) {
	s := New("s")
	s.BeginEpoch(11)
	commitN(t, s, 3, 4)
	s.BeginEpoch(12)
	v, objs := s.Checkpoint()
	commitN(t, s, 3, 2)
	s.BeginEpoch(13)
	changes, ok := s.DeltaSince(v)
	if !ok || len(changes) != 3 {
		t.Fatalf("DeltaSince(%d) = %d changes, %v", v, len(changes), ok)
	}
	r, err := Restore("s", Config{}, v, objs, changes)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.epochs) != 3 || r.Epoch() != (wire.Epoch{Version: r.Version(), ID: 13}) {
		t.Fatalf("restored epochs %+v", r.epochs)
	}
	if _, ok := r.verdicts[0]; ok {
		t.Error("an epoch change was remembered as replica 0's commit")
	}
	// A copy at the checkpoint, then the changes after it.
	cp, err := Load("s", Config{}, v, []wire.SnapshotChunk{{Objects: objs[:len(objs)-1]}})
	if err != nil {
		t.Fatal(err)
	}
	if err := cp.AdoptEpoch(wire.Epoch{Version: 6, ID: 12}); err != nil {
		t.Fatal(err)
	}
	if !s.InHistory(cp.Version(), cp.Epoch()) {
		t.Errorf("the copy at %d, epoch %+v, is not in the history", cp.Version(), cp.Epoch())
	}
	for _, ch := range changes {
		if err := cp.ApplyChange(ch); err != nil {
			t.Fatal(err)
		}
	}
	if cp.Epoch() != s.Epoch() || !s.InHistory(cp.Version(), cp.Epoch()) {
		t.Errorf("the copy at %d names epoch %+v, the share %+v", cp.Version(), cp.Epoch(), s.Epoch())
	}
	for _, e := range []wire.Epoch{{Version: cp.Version() + 1, ID: 1}, {Version: 1, ID: 0}, {Version: 0, ID: 5}} {
		if err := cp.AdoptEpoch(e); err == nil {
			t.Errorf("AdoptEpoch(%+v) at version %d: no error", e, cp.Version())
		}
	}
}

// TestEpochsMetaMalformed: a checkpoint whose epochs are out of order,
// past its version or of id 0 is refused, as other bookkeeping is.
func TestEpochsMetaMalformed(t *testing.T) {
	s := New("s")
	s.BeginEpoch(1)
	commitN(t, s, 3, 2)
	v, objs := s.Checkpoint()
	for name, pairs := range map[string][]uint64{
		"out of order":   {3, 1, 2, 1},
		"past the share": {v + 1, 1},
		"id 0":           {1, 0},
		"odd":            {1},
	} {
		var b []byte
		for _, x := range pairs {
			b = binary.AppendUvarint(b, x)
		}
		bad := append([]wire.Object(nil), objs...)
		meta := bad[len(bad)-1]
		meta.Entries = append([]wire.Entry(nil), meta.Entries...)
		for i := range meta.Entries {
			if meta.Entries[i].Key.Text() == metaEpochs {
				meta.Entries[i].Value = wire.Bytes(b)
			}
		}
		bad[len(bad)-1] = meta
		if _, err := Restore("s", Config{}, v, bad, nil); !errors.Is(err, errMeta) {
			t.Errorf("%s: Restore: %v, want %v", name, err, errMeta)
		}
	}
}
