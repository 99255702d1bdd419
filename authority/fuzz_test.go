package authority

import (
	"testing"

	"github.com/weft-stm/weft/wire"
)

// byteGen draws small numbers from fuzz input; past its end it gives zeros.
type byteGen struct{ b []byte }

func (g *byteGen) n(k int) int {
	if len(g.b) == 0 {
		return 0
	}
	x := int(g.b[0]) % k
	g.b = g.b[1:]
	return x
}

func (g *byteGen) value() wire.Value {
	switch g.n(4) {
	case 0:
		return wire.Int(int64(g.n(4)))
	case 1:
		return wire.String(string(rune('a' + g.n(3))))
	case 2:
		return wire.Null()
	}
	return wire.Ref(g.id())
}

func (g *byteGen) id() wire.ObjectID {
	return wire.ObjectID{Replica: uint64(g.n(3)), Seq: uint64(g.n(6))}
}

// commit draws a commit over a small space of ids, kinds and versions, so
// that valid, conflicting, invalid, dependent and resent commits all occur.
func (g *byteGen) commit(version uint64) *wire.Commit {
	c := &wire.Commit{ID: wire.CommitID{Replica: uint64(g.n(3)), Seq: uint64(g.n(8))}}
	for range g.n(3) {
		c.Deps = append(c.Deps, wire.CommitID{Replica: uint64(g.n(3)), Seq: uint64(g.n(8))})
	}
	for range g.n(4) {
		c.Reads = append(c.Reads, wire.Read{Object: g.id(), Kind: wire.ReadKind(g.n(5)),
			Field: uint32(g.n(3)), Key: g.value(), Index: uint64(g.n(4)),
			Version: version - min(version, uint64(g.n(4)))})
	}
	for range g.n(5) {
		op := wire.Op{Kind: wire.OpKind(g.n(13)), Object: g.id(), Field: uint32(g.n(3)),
			Key: g.value(), Value: g.value(), Delta: int64(g.n(256)) << 56, Index: uint64(g.n(4)),
			Class: uint32(g.n(2)), ObjectKind: wire.ObjectKind(g.n(8))}
		for range g.n(3) {
			op.Values = append(op.Values, g.value())
		}
		for range g.n(2) {
			op.Fields = append(op.Fields, wire.Field{ID: uint32(g.n(3)), Value: g.value()})
		}
		c.Writes = append(c.Writes, op)
	}
	return c
}

// FuzzApply feeds commits drawn from the input, and any commit the input
// decodes to, to a Share: it never panics; an abort or a duplicate changes
// nothing; an ack adds exactly one version; snapshots stay within their
// limits and load back to the same state.
func FuzzApply(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte("\x00\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f"))
	f.Add([]byte{0, 1, 0, 0, 0, 1, 10, 1, 1, 0, 0, 0, 0, 0, 0, 6, 0, 0, 0, 0, 0, 0})
	f.Add(wire.AppendMessage(nil, &wire.Commit{ID: wire.CommitID{Replica: 1, Seq: 1},
		Writes: []wire.Op{{Kind: wire.OpCreate, Object: wire.ObjectID{Replica: 1, Seq: 1}, ObjectKind: wire.ObjectList}}}))
	f.Fuzz(func(t *testing.T, data []byte) {
		s := NewWithConfig("fuzz", Config{LogSize: 4, Verdicts: 4})
		// Some state to work on.
		s.Apply(&wire.Commit{ID: wire.CommitID{Replica: 9, Seq: 1}, Writes: []wire.Op{
			{Kind: wire.OpCreate, Object: wire.ObjectID{Replica: 3, Seq: 1}, ObjectKind: wire.ObjectRecord, Fields: []wire.Field{{ID: 1, Value: wire.Int(1)}}},
			{Kind: wire.OpCreate, Object: wire.ObjectID{Replica: 1, Seq: 1}, ObjectKind: wire.ObjectList},
			{Kind: wire.OpCreate, Object: wire.ObjectID{Replica: 1, Seq: 2}, ObjectKind: wire.ObjectMap},
			{Kind: wire.OpCreate, Object: wire.ObjectID{Replica: 2, Seq: 3}, ObjectKind: wire.ObjectCounter},
		}})
		apply := func(c *wire.Commit) {
			before, v := dump(s, true), s.Version()
			r := s.Apply(c)
			checkRefCounts(t, s)
			switch {
			case r.Ack && !r.Duplicate:
				if s.Version() != v+1 || r.Version != v+1 || r.Update(1) == nil {
					t.Fatalf("ack: version %d -> %d, result %s", v, s.Version(), formatResult(r))
				}
			default:
				if after := dump(s, true); after != before {
					t.Fatalf("%s changed the state:\n%s\nto\n%s", formatResult(r), before, after)
				}
				if r.Update(1) != nil {
					t.Fatalf("%s has an update", formatResult(r))
				}
			}
		}
		if m, err := wire.DecodeMessage(data, wire.Limits{}); err == nil {
			if c, ok := m.(*wire.Commit); ok {
				apply(c)
			}
		}
		g := &byteGen{b: data}
		for len(g.b) > 0 {
			apply(g.commit(s.Version()))
		}
		lim := wire.Limits{MaxFrameSize: 64, MaxObjects: 2, MaxElements: 2}
		chunks := s.Snapshot(lim)
		for i := range chunks {
			if err := wire.Validate(&chunks[i], lim); err != nil {
				t.Fatalf("chunk %d: %v", i, err)
			}
		}
		l, err := Load("copy", Config{}, s.Version(), chunks)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := dump(l, false), dump(s, false); got != want {
			t.Fatalf("load:\n%s\nwant\n%s", got, want)
		}
		checkRefCounts(t, l)
	})
}

// FuzzRestoreMeta restores checkpoints whose bookkeeping (the object
// {0, 1}: acknowledged commits, horizons, tombstones, epochs) is drawn from
// the input, as a damaged store could hold it: Restore never panics, and a
// share it accepts checkpoints to bookkeeping that restores to the same
// checkpoint.
func FuzzRestoreMeta(f *testing.F) {
	f.Add([]byte{0, 4, 1, 2, 3, 4, 4, 6, 1, 5, 9, 1, 7, 2})
	f.Add([]byte{3, 9, 5, 1, 100, 200, 1, 4, 2, 1, 7})
	keys := []string{"acked/1", "horizon/1", metaRemoved, metaTombstones, metaEpochs, "acked/x", "other"}
	f.Fuzz(func(t *testing.T, data []byte) {
		meta := wire.Object{ID: metaID, Kind: wire.ObjectMap}
		for len(data) >= 2 {
			k, n := int(data[0])%len(keys), int(data[1])%16
			data = data[2:]
			n = min(n, len(data))
			meta.Entries = append(meta.Entries, wire.Entry{Key: wire.String(keys[k]), Value: wire.Bytes(data[:n])})
			data = data[n:]
		}
		s, err := Restore("s", Config{}, 40, []wire.Object{meta}, nil)
		if err != nil {
			return
		}
		v, objs := s.Checkpoint()
		r, err := Restore("s", Config{}, v, objs, nil)
		if err != nil {
			t.Fatalf("a checkpoint of a restored share does not restore: %v", err)
		}
		if _, again := r.Checkpoint(); !sameObjects(again, objs) {
			t.Fatalf("checkpoint %+v restores to checkpoint %+v", objs, again)
		}
	})
}

func sameObjects(a, b []wire.Object) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		ea, eb := a[i].Entries, b[i].Entries
		if a[i].ID != b[i].ID || len(ea) != len(eb) {
			return false
		}
		for j := range ea {
			if ea[j].Key != eb[j].Key || string(ea[j].Value.Bytes()) != string(eb[j].Value.Bytes()) {
				return false
			}
		}
	}
	return true
}
