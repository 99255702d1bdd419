package authority

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/weft-stm/weft/wire"
)

// TestRetireIdle: a replica with no commit decided for RetireAfter
// versions keeps only its highest seq (a million short-lived replicas,
// a page load each, cost a map entry each, not their verdicts). A resend
// of its commits is then too old (CodeInternal), never applied again,
// through a checkpoint and restore too; a later commit brings it back,
// with its old commits still too old; a commit numbered beyond
// MaxSeqGap of its highest is refused as before.
func TestRetireIdle(t *testing.T) {
	cfg := Config{RetireAfter: 10, MaxSeqGap: 100}
	s := NewWithConfig("s", cfg)
	x := wire.ObjectID{Replica: 1, Seq: 1}
	c1 := &wire.Commit{ID: wire.CommitID{Replica: 1, Seq: 1}, Writes: []wire.Op{{Kind: wire.OpCreate, Object: x, ObjectKind: wire.ObjectCounter}}}
	c2 := &wire.Commit{ID: wire.CommitID{Replica: 1, Seq: 2}, Writes: []wire.Op{{Kind: wire.OpCounterAdd, Object: x, Delta: 1}}}
	for _, c := range []*wire.Commit{c1, c2} {
		if r := s.Apply(c); !r.Ack {
			t.Fatalf("%+v", r)
		}
	}
	for seq := range uint64(30) { // replica 2, busy; replica 1 idle
		if r := s.Apply(&wire.Commit{ID: wire.CommitID{Replica: 2, Seq: seq + 1}, Writes: []wire.Op{{Kind: wire.OpCounterAdd, Object: x, Delta: 10}}}); !r.Ack {
			t.Fatalf("%+v", r)
		}
	}
	if s.verdicts[1] != nil || s.retired[1] != 2 || s.verdicts[2] == nil {
		t.Fatalf("replica 1 not retired: verdicts %v, retired %v", s.verdicts[1], s.retired)
	}
	tooOld := func(s *Share, c *wire.Commit) {
		t.Helper()
		v := s.Version()
		if r := s.Apply(c); r.Ack || r.Duplicate || r.Code != wire.CodeInternal || s.Version() != v {
			t.Fatalf("resend of %v: %+v, want too old and nothing applied", c.ID, r)
		}
	}
	tooOld(s, c1)
	tooOld(s, c2)

	// Through a checkpoint: still retired.
	version, objs := s.Checkpoint()
	r, err := Restore("s", cfg, version, objs, nil)
	if err != nil {
		t.Fatal(err)
	}
	if r.verdicts[1] != nil || r.retired[1] != 2 {
		t.Fatalf("restored: verdicts %v, retired %v", r.verdicts[1], r.retired)
	}
	tooOld(r, c2)
	if g := r.Apply(&wire.Commit{ID: wire.CommitID{Replica: 1, Seq: 103}}); g.Code != wire.CodeInvalid {
		t.Fatalf("a commit beyond the gap of a retired replica: %+v", g)
	}

	// Back: a new commit is decided, the old ones stay too old.
	c3 := &wire.Commit{ID: wire.CommitID{Replica: 1, Seq: 3}, Writes: []wire.Op{{Kind: wire.OpCounterAdd, Object: x, Delta: 100}}}
	if g := r.Apply(c3); !g.Ack {
		t.Fatalf("%+v", g)
	}
	if g := r.Apply(c3); !g.Duplicate {
		t.Fatalf("resend of the new commit: %+v", g)
	}
	tooOld(r, c1)
	if r.retired[1] != 0 || r.verdicts[1] == nil || r.verdicts[1].horizon != 2 {
		t.Fatalf("replica 1 not back: %+v", r.verdicts[1])
	}
	if o, _ := r.Object(x); o.Counter != 1+300+100 {
		t.Fatalf("counter %d", o.Counter)
	}
}

// TestRetireAfterRestore: a share restored from a checkpoint retires its
// replicas when the share that wrote the checkpoint does, given the same
// commits after it (acknowledged ones: aborts are not kept): a resend
// gets the same answer from both.
func TestRetireAfterRestore(t *testing.T) {
	for seed := range uint64(20) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) { retireAfterRestore(t, seed) })
	}
}

func retireAfterRestore(t *testing.T, seed uint64) {
	cfg := Config{RetireAfter: 64}
	rng := rand.New(rand.NewPCG(seed, 4))
	x := wire.ObjectID{Replica: 1, Seq: 1}
	seqs := map[uint64]uint64{1: 1}
	commit := func() *wire.Commit {
		r := 1 + rng.Uint64N(20)
		if rng.IntN(4) == 0 {
			r = 100 + rng.Uint64N(1000) // seldom back
		}
		seqs[r]++
		return &wire.Commit{ID: wire.CommitID{Replica: r, Seq: seqs[r]}, Writes: []wire.Op{{Kind: wire.OpCounterAdd, Object: x, Delta: 1}}}
	}
	s := NewWithConfig("s", cfg)
	if r := s.Apply(&wire.Commit{ID: wire.CommitID{Replica: 1, Seq: 1}, Writes: []wire.Op{{Kind: wire.OpCreate, Object: x, ObjectKind: wire.ObjectCounter}}}); !r.Ack {
		t.Fatal(r)
	}
	for range 150 {
		s.Apply(commit())
	}
	for round := range 5 {
		version, objs := s.Checkpoint()
		r, err := Restore("s", cfg, version, objs, nil)
		if err != nil {
			t.Fatal(err)
		}
		for i := range 200 {
			c := commit()
			if a, b := s.Apply(c), r.Apply(c); !a.Ack || !b.Ack {
				t.Fatalf("%v: %+v, restored %+v", c.ID, a, b)
			}
			for rep, top := range seqs {
				id := wire.CommitID{Replica: rep, Seq: top}
				_, _, fs := s.lookup(id)
				_, _, fr := r.lookup(id)
				if fs != fr {
					t.Fatalf("round %d, commit %d after the checkpoint at %d: a resend of %v too old %v, restored %v", round, i, version, id, fs, fr)
				}
			}
		}
	}
}
