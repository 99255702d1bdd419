package client_test

import (
	"testing"

	"github.com/weft-stm/weft/authority"
	"github.com/weft-stm/weft/client"
	"github.com/weft-stm/weft/server"
	"github.com/weft-stm/weft/stm"
	"github.com/weft-stm/weft/transport"
)

// TestRemovedRecordSurvivesResync: a pending Remove hidden by a snapshot
// resync, then aborted by the server, leaves the application's object in
// the share, as an abort without a resync does: the snapshot's record is
// that object, not a new one, so updates reach it and its writes are
// based on what it shows.
func TestRemovedRecordSurvivesResync(t *testing.T) {
	e := startServer(t, false, server.Config{Share: authority.Config{LogSize: 4}})
	e.raw("bank", createAccount(1, 0)...)
	dial, cut := e.recordingDialer()
	c, err := client.Dial(testCtx(t), dial, e.addr, client.Options{Replica: 5})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	x, err := c.Open(testCtx(t), "bank", account)
	if err != nil {
		t.Fatal(err)
	}
	_, y := e.open("bank")
	ox, oy := record(t, x, 1), record(t, y, 1)
	// The removal reads the balance, so y's writes make the server abort
	// it; it stays unsent until the connection is cut.
	e.net.SetFaults(transport.Faults{MinDelay: 1 << 40, MaxDelay: 1 << 40})
	h := run(t, x, func(tx *stm.Tx) error {
		if balanceF.Of(ox).Get(tx) == 0 {
			x.Remove(tx, ox)
		}
		return nil
	})
	cut(0)
	e.net.SetFaults(transport.Faults{})
	// More commits than the server's log keeps: the reconnection brings a
	// snapshot.
	for range 10 {
		if err := y.Atomically(testCtx(t), func(tx *stm.Tx) error {
			b := balanceF.Of(oy)
			b.Set(tx, b.Get(tx)+1)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Flush(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	if h.Err() == nil {
		t.Fatal("the removal was acknowledged: its read was overwritten")
	}
	if cur, _ := x.Object(stm.IDOf(ox)); cur != ox {
		t.Fatal("after the aborted removal the share holds another object than the application's")
	}
	if err := x.Atomically(testCtx(t), func(tx *stm.Tx) error {
		b := balanceF.Of(ox)
		b.Set(tx, b.Get(tx)+100)
		return nil
	}); err != nil {
		t.Fatalf("write through the application's object: %v", err)
	}
	converge(t, e, x, y)
	if _, got := snapshot(t, y); got[oid(3)].Balance != 110 {
		t.Fatalf("balance %d, want 110 (10 increments, then 100 added)", got[oid(3)].Balance)
	}
}
