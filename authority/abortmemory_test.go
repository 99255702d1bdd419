package authority_test

import (
	"strings"
	"testing"

	"github.com/weft-stm/weft/authority"
	"github.com/weft-stm/weft/wire"
)

// TestRememberedAbortBounded: an aborted commit's verdict is remembered
// (a resend gets it again), but not its reads: a commit whose reads fill a
// frame (keys of max_string_len) and conflict, resent or not, would
// otherwise keep a frame's worth of memory per remembered verdict, up to
// Verdicts of them per replica, long after its session ended (the
// review's attack: 1 MiB commits reading keys of an object that does not
// exist, about 1 GiB per replica id and share). The first answer carries
// every conflict; a resend's carries the one with the highest version,
// which is what a client waits for before it retries.
func TestRememberedAbortBounded(t *testing.T) {
	s := authority.New("s")
	m := wire.ObjectID{Replica: 7, Seq: 1}
	if r := s.Apply(&wire.Commit{ID: wire.CommitID{Replica: 7, Seq: 1}, Writes: []wire.Op{
		{Kind: wire.OpCreate, Object: m, ObjectKind: wire.ObjectMap},
		{Kind: wire.OpMapPut, Object: m, Key: wire.String("k"), Value: wire.Int(1)},
	}}); !r.Ack {
		t.Fatalf("%+v", r)
	}
	if r := s.Apply(&wire.Commit{ID: wire.CommitID{Replica: 7, Seq: 2}, Writes: []wire.Op{
		{Kind: wire.OpMapPut, Object: m, Key: wire.String("k"), Value: wire.Int(2)},
	}}); !r.Ack {
		t.Fatalf("%+v", r)
	}
	big := strings.Repeat("x", 200<<10)
	c := &wire.Commit{ID: wire.CommitID{Replica: 8, Seq: 1}, Reads: []wire.Read{
		{Object: wire.ObjectID{Replica: 9, Seq: 9}, Kind: wire.ReadKey, Key: wire.String(big + "1")},
		{Object: m, Kind: wire.ReadKey, Key: wire.String("k"), Version: 1},
		{Object: wire.ObjectID{Replica: 9, Seq: 9}, Kind: wire.ReadKey, Key: wire.String(big + "2")},
		{Object: m, Kind: wire.ReadKey, Key: wire.String(big + "3"), Version: 0},
	}}
	first := s.Apply(c)
	if first.Ack || first.Code != wire.CodeConflict || len(first.Conflicts) != 4 {
		t.Fatalf("first answer: code %v, %d conflicts, want conflict with 4", first.Code, len(first.Conflicts))
	}
	again := s.Apply(c)
	if !again.Duplicate || again.Code != wire.CodeConflict {
		t.Fatalf("resend: duplicate %v code %v, want the remembered conflict", again.Duplicate, again.Code)
	}
	kept := 0
	var top uint64
	for _, rd := range again.Conflicts {
		kept += len(wire.AppendValue(nil, rd.Key))
		top = max(top, rd.Version)
	}
	if kept > 1<<10 {
		t.Errorf("the remembered verdict keeps %d bytes of keys", kept)
	}
	if top != 2 {
		t.Errorf("the resend's conflicts %+v: highest version %d, want 2", again.Conflicts, top)
	}
}
