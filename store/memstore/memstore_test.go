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
