package pebblestore

import (
	"path/filepath"
	"slices"
	"testing"

	"github.com/weft-stm/weft/wire"
)

// TestForget: Forget drops one share's checkpoint and changes, durably,
// and nothing of the shares whose names it prefixes or that escape to a
// key beside it, nor the cache's pending commits and replica record.
func TestForget(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "cache")
	s, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	names := []string{"a", "ab", "a\x00", "a\x00b", "b"}
	for i, name := range names {
		obj := wire.Object{ID: wire.ObjectID{Replica: 1, Seq: uint64(i + 1)}, Kind: wire.ObjectVar, Value: wire.Int(int64(i))}
		if err := s.Checkpoint(name, 2, []wire.Object{obj}); err != nil {
			t.Fatal(err)
		}
		if err := s.AppendLazy(name, wire.Change{Version: 3, Origin: wire.CommitID{Replica: 1, Seq: 9}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.SetReplica(42, 7); err != nil {
		t.Fatal(err)
	}
	if err := s.PutPending("a", &wire.Commit{ID: wire.CommitID{Replica: 42, Seq: 8}}); err != nil {
		t.Fatal(err)
	}
	if err := s.Forget("a"); err != nil {
		t.Fatal(err)
	}
	if err := s.Forget("never held"); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s, err = Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var held []string
	err = s.Load(func(name string, version uint64, objects []wire.Object, changes []wire.Change) error {
		held = append(held, name)
		if version != 2 || len(objects) != 1 || len(changes) != 1 || changes[0].Version != 3 {
			t.Errorf("share %q: version %d, %d objects, changes %+v", name, version, len(objects), changes)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"a\x00", "a\x00b", "ab", "b"}; !slices.Equal(held, want) {
		t.Errorf("after Forget(%q): shares %q, want %q", "a", held, want)
	}
	if r, seq, err := s.Replica(); err != nil || r != 42 || seq != 8 {
		t.Errorf("Replica() = %d, %d, %v; want 42, 8", r, seq, err)
	}
	n := 0
	if err := s.LoadPending(func(string, *wire.Commit) error { n++; return nil }); err != nil || n != 1 {
		t.Errorf("LoadPending: %d commits, %v; want the one put (Forget leaves pending commits to DeletePending)", n, err)
	}
}
