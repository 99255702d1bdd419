package authority

import (
	"slices"

	"github.com/weft-stm/weft/wire"
)

// replicaVerdicts remembers one replica's most recently decided commits.
type replicaVerdicts struct {
	bySeq   map[uint64]verdict
	order   []uint64 // seqs in decision order, oldest first
	horizon uint64   // the highest seq forgotten; 0 if none
	top     uint64   // the highest seq remembered, now or before
	last    uint64   // the share's version when the latest was decided (retireIdle)
}

// verdict is what is kept of a decision: enough to answer a resend.
type verdict struct {
	ack       bool
	version   uint64
	code      wire.Code
	message   string
	conflicts []wire.Read
	digest    uint64 // of the commit's content (digestOf); 0 if unknown
}

// digest hashes what a commit asks for (its encoding, without the
// share handle, which is per connection): a resend has the same, another
// commit under the same id almost surely not. It uses the share's scratch
// buffer (the share is used by one goroutine at a time).
func (s *Share) digest(c *wire.Commit) uint64 {
	h := c.Share // set aside for the encoding (a copy would escape)
	c.Share = 0
	s.scratch = wire.AppendMessage(s.scratch[:0], c)
	c.Share = h
	d := uint64(14695981039346656037) // FNV-1a
	for _, b := range s.scratch {
		d = (d ^ uint64(b)) * 1099511628211
	}
	if cap(s.scratch) > 64<<10 {
		s.scratch = nil // a big commit's buffer is not kept
	}
	return d | 1 // never 0, which means unknown
}

// Acknowledged reports whether the share remembers commit id as
// acknowledged (a copy restored from a checkpoint and a log remembers the
// commits of the log, and those its checkpoint remembered).
func (s *Share) Acknowledged(id wire.CommitID) bool {
	v, ok, _ := s.lookup(id)
	return ok && v.ack
}

func (s *Share) lookup(id wire.CommitID) (verdict, bool, bool) {
	rv := s.verdicts[id.Replica]
	if rv == nil {
		h, ok := s.retired[id.Replica]
		return verdict{}, false, ok && id.Seq <= h
	}
	v, ok := rv.bySeq[id.Seq]
	return v, ok, !ok && id.Seq <= rv.horizon
}

// verdictsOf returns replica's verdicts, creating them if needed.
func (s *Share) verdictsOf(replica uint64) *replicaVerdicts {
	rv := s.verdicts[replica]
	if rv == nil {
		rv = &replicaVerdicts{bySeq: map[uint64]verdict{}}
		if h, ok := s.retired[replica]; ok { // back: what it forgot stays too old
			rv.horizon, rv.top = h, h
			delete(s.retired, replica)
		}
		s.verdicts[replica] = rv
	}
	return rv
}

func (s *Share) remember(id wire.CommitID, v verdict) {
	rv := s.verdictsOf(id.Replica)
	rv.bySeq[id.Seq] = v
	rv.top = max(rv.top, id.Seq)
	rv.last = s.version
	if s.version >= s.nextRetire {
		s.nextRetire = s.retireAfterScan(s.version)
		s.retireIdle()
	}
	rv.order = append(rv.order, id.Seq)
	for len(rv.order) > s.cfg.Verdicts {
		old := rv.order[0]
		rv.order = rv.order[1:]
		delete(rv.bySeq, old)
		rv.horizon = max(rv.horizon, old)
	}
	if cap(rv.order) > 4*s.cfg.Verdicts { // let the dropped prefix be freed
		rv.order = append([]uint64(nil), rv.order...)
	}
}

// retireIdle forgets every verdict of the replicas with none decided in
// the last RetireAfter versions, keeping of each only the highest seq
// decided (in retired): a resend at or under it is still too old to
// decide, never a new commit, and a later commit brings the replica back
// (verdictsOf). Each replica that ever committed costs a map entry, not
// its verdicts: a share serving many short-lived replicas (a page load
// each) otherwise grows with every one, checkpoints included. It depends
// on the versions alone, so the nodes of a cluster retire alike.
func (s *Share) retireIdle() {
	for r, rv := range s.verdicts {
		if s.version-rv.last >= s.cfg.RetireAfter {
			if s.retired == nil {
				s.retired = map[uint64]uint64{}
			}
			s.retired[r] = max(rv.top, rv.horizon)
			delete(s.verdicts, r)
		}
	}
}

// retireAfterScan returns the version at which remember next looks for
// idle replicas once it looked at version v: the next multiple of
// RetireAfter/16, so that the looks depend on the versions alone, and a
// share restored from a checkpoint (Restore) looks when the share that
// wrote it does.
func (s *Share) retireAfterScan(v uint64) uint64 {
	step := max(s.cfg.RetireAfter/16, 1)
	return (v/step + 1) * step
}

// beyondGap reports whether id numbers further beyond the highest seq of
// its replica that the share decided than Config.MaxSeqGap allows.
func (s *Share) beyondGap(id wire.CommitID) bool {
	rv := s.verdicts[id.Replica]
	if rv == nil {
		if h, ok := s.retired[id.Replica]; ok {
			return id.Seq > h && id.Seq-h > s.cfg.MaxSeqGap
		}
		return false // its first commit here: seqs have gaps across shares
	}
	known := max(rv.top, rv.horizon)
	return id.Seq > known && id.Seq-known > s.cfg.MaxSeqGap
}

// rememberedKeyBytes and rememberedReads bound the bytes of keys and the
// reads an aborted verdict keeps of its conflicts (see
// rememberedConflicts).
const (
	rememberedKeyBytes = 1 << 10
	rememberedReads    = 64
)

// rememberedConflicts returns what a remembered abort keeps of its
// conflicts, cs. A resend gets them again, and a client only needs their
// highest version (it waits for it before it retries); but a commit's
// reads may fill a frame (keys up to max_string_len), and a replica's
// last Verdicts aborts would keep that much each, after its session
// ended. So conflicts over those bounds are cut: the one with the
// highest version comes first, then the others in order while they fit
// (rememberedReads, and rememberedKeyBytes of keys); the first
// one, if its key alone does not fit, is kept as a read of its whole
// object, at its version.
func rememberedConflicts(cs []wire.Read) []wire.Read {
	keyLen := func(r wire.Read) int {
		if r.Kind != wire.ReadKey {
			return 0
		}
		return len(wire.AppendValue(nil, r.Key))
	}
	total := 0
	for _, c := range cs {
		total += keyLen(c)
	}
	if total <= rememberedKeyBytes && len(cs) <= rememberedReads {
		return cs // all of them, as they were
	}
	top := 0
	for i, c := range cs {
		if c.Version > cs[top].Version {
			top = i
		}
	}
	first := cs[top]
	if keyLen(first) > rememberedKeyBytes {
		first = wire.Read{Object: first.Object, Kind: wire.ReadWhole, Version: first.Version}
	}
	out := []wire.Read{first}
	budget := rememberedKeyBytes - keyLen(first)
	for i, c := range cs {
		if i == top {
			continue
		}
		if n := keyLen(c); n <= budget && len(out) < rememberedReads {
			out = append(out, c)
			budget -= n
		}
	}
	return slices.Clip(out)
}
