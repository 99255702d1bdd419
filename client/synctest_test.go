package client_test

import (
	"testing"
	"testing/synctest"

	"github.com/weft-stm/weft/server"
	"github.com/weft-stm/weft/stm"
	"github.com/weft-stm/weft/transport"
)

// TestSynctestBubble: a server, its store-less shares and two clients run
// inside a testing/synctest bubble over the in-memory network, with every
// message held until the test advances the network, and synctest.Wait
// finds each quiescent point: what the deterministic simulation of issue
// #6 is built on (docs/simulation.md). A goroutine, timer or real I/O that
// escaped the bubble's model would make Wait return early or hang.
func TestSynctestBubble(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := startServer(t, false, server.Config{})
		e.raw("bank", createAccount(1, 0)...)
		_, x := e.open("bank")
		_, y := e.open("bank")
		e.net.SetFaults(transport.Faults{MinDelay: 1, MaxDelay: 1})
		b := balanceF.Of(record(t, x, 1))
		h, err := x.Run(testCtx(t), func(tx *stm.Tx) error { b.Set(tx, 5); return nil })
		if err != nil {
			t.Fatal(err)
		}
		steps := 0
		for h.Status() != stm.Acknowledged {
			synctest.Wait()
			if due, ok := e.net.NextDue(); ok {
				e.net.Advance(due - e.net.Now())
				steps++
			}
		}
		synctest.Wait()
		for y.Version() < x.Version() {
			synctest.Wait()
			if due, ok := e.net.NextDue(); ok {
				e.net.Advance(due - e.net.Now())
				steps++
			}
		}
		t.Logf("acknowledged after %d network steps; y at %d", steps, y.Version())
	})
}
