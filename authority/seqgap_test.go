package authority_test

import (
	"math"
	"testing"

	"github.com/weft-stm/weft/authority"
	"github.com/weft-stm/weft/wire"
)

// TestSeqGap: a commit numbered far beyond its replica's highest on the
// share is refused and not remembered, so forgetting verdicts never
// raises the replica's horizon past what it committed (the review's
// attack: seq MaxUint64, then Verdicts more commits, made every later
// commit of the replica "too old", for good). Gaps that a client
// numbering its commits across shares leaves are accepted.
func TestSeqGap(t *testing.T) {
	cfg := authority.Config{Verdicts: 2}
	s := authority.NewWithConfig("s", cfg)
	ctr := wire.ObjectID{Replica: 7, Seq: 1}
	add := func(seq uint64) *wire.Commit {
		return &wire.Commit{ID: wire.CommitID{Replica: 7, Seq: seq},
			Writes: []wire.Op{{Kind: wire.OpCounterAdd, Object: ctr, Delta: 1}}}
	}
	if r := s.Apply(&wire.Commit{ID: wire.CommitID{Replica: 7, Seq: 1},
		Writes: []wire.Op{{Kind: wire.OpCreate, Object: ctr, ObjectKind: wire.ObjectCounter}}}); !r.Ack {
		t.Fatalf("%+v", r)
	}
	// A gap of a million: the replica's commits on its other shares.
	if r := s.Apply(add(1_000_001)); !r.Ack {
		t.Fatalf("commit after a gap: %+v", r)
	}
	for _, seq := range []uint64{math.MaxUint64, 1_000_001 + authority.DefaultMaxSeqGap + 1} {
		if r := s.Apply(add(seq)); r.Ack || r.Code != wire.CodeInvalid {
			t.Fatalf("commit 7:%d: %+v, want code invalid", seq, r)
		}
	}
	// More commits than the share remembers: the refused ones did not
	// count, so the horizon is below the replica's next commits.
	for seq := uint64(1_000_002); seq < 1_000_002+3; seq++ {
		if r := s.Apply(add(seq)); !r.Ack {
			t.Fatalf("commit 7:%d: %+v", seq, r)
		}
	}
	ver, objs := s.Checkpoint()
	restored, err := authority.Restore("s", cfg, ver, objs, nil)
	if err != nil {
		t.Fatal(err)
	}
	for name, sh := range map[string]*authority.Share{"before the restart": s, "after": restored} {
		if r := sh.Apply(add(math.MaxUint64)); r.Ack || r.Code != wire.CodeInvalid {
			t.Errorf("%s: commit 7:%d: %+v, want code invalid", name, uint64(math.MaxUint64), r)
		}
		if r := sh.Apply(add(1_000_010)); !r.Ack {
			t.Errorf("%s: the replica's next commit: %+v", name, r)
		}
		if o, _ := sh.Object(ctr); o.Counter != 5 {
			t.Errorf("%s: counter %d, want 5", name, o.Counter)
		}
	}
}
