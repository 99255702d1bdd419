package memstore_test

import (
	"testing"

	"github.com/weft-stm/weft/server"
	"github.com/weft-stm/weft/store/memstore"
	"github.com/weft-stm/weft/store/storetest"
	"github.com/weft-stm/weft/wire"
)

var _ server.Store = (*memstore.Store)(nil)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storetest.Backend {
		var last *memstore.Store
		return storetest.Backend{Open: func() (server.Store, error) {
			if last == nil {
				last = memstore.New()
			} else {
				last = last.Reopen()
			}
			return last, nil
		}}
	})
}

// TestOrder: an Append out of version order is refused where it happens.
func TestOrder(t *testing.T) {
	s := memstore.New()
	if _, err := s.Append("s", wire.Change{Version: 2}); err == nil {
		t.Error("Append of version 2 first: no error")
	}
	if _, err := s.Append("s", wire.Change{Version: 1}); err != nil {
		t.Fatal(err)
	}
	if err := s.Checkpoint("s", 5, nil); err != nil {
		t.Fatal(err)
	}
	if err := s.Checkpoint("s", 4, nil); err == nil {
		t.Error("Checkpoint older than the one held: no error")
	}
	if _, err := s.Append("s", wire.Change{Version: 2}); err == nil {
		t.Error("Append of version 2 after a checkpoint at 5: no error")
	}
	if _, err := s.Append("s", wire.Change{Version: 6}); err != nil {
		t.Error(err)
	}
}

// TestBackupAndForget: a Backup holds what the store held when it was
// taken, whatever the store does after; Forget drops one share.
func TestBackupAndForget(t *testing.T) {
	s := memstore.New()
	for _, name := range []string{"a", "b"} {
		for v := uint64(1); v <= 2; v++ {
			if _, err := s.Append(name, wire.Change{Version: v}); err != nil {
				t.Fatal(err)
			}
		}
	}
	b := s.Backup()
	if _, err := s.Append("a", wire.Change{Version: 3}); err != nil {
		t.Fatal(err)
	}
	if err := s.Forget("b"); err != nil {
		t.Fatal(err)
	}
	held := func(st *memstore.Store) map[string]int {
		out := map[string]int{}
		if err := st.Load(func(name string, _ uint64, _ []wire.Object, changes []wire.Change) error {
			out[name] = len(changes)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		return out
	}
	if got := held(s); len(got) != 1 || got["a"] != 3 {
		t.Errorf("the store holds %v, want a with 3 changes", got)
	}
	if got := held(b); len(got) != 2 || got["a"] != 2 || got["b"] != 2 {
		t.Errorf("the backup holds %v, want a and b with 2 changes each", got)
	}
}
