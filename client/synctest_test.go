package client_test

import (
	"context"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/weft-stm/weft/client"
	"github.com/weft-stm/weft/server"
	"github.com/weft-stm/weft/stm"
	"github.com/weft-stm/weft/transport"
	"github.com/weft-stm/weft/wire"
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

// TestHeartbeat: with Options.Heartbeat, a client whose server goes
// silent pings it after one period, drops the connection after the next
// and dials again, saying why (ConnErr); a server that answers keeps it.
func TestHeartbeat(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f, c, accept := heartbeatSession(t, client.Options{MinBackoff: time.Millisecond, Heartbeat: time.Second}, wire.Welcome{})

		// Answered pings keep the connection.
		for range 3 {
			p, ok := f.recv().(*wire.Ping)
			if !ok {
				t.Fatal("no ping after a silent period")
			}
			f.send(&wire.Pong{Nonce: p.Nonce})
		}
		// A ping left unanswered: the client drops the connection and
		// dials again.
		if _, ok := f.recv().(*wire.Ping); !ok {
			t.Fatal("no ping after a silent period")
		}
		f2 := accept()
		if c.State() != client.Reconnecting || c.ConnErr() == nil || !strings.Contains(c.ConnErr().Error(), "no message from the server") {
			t.Fatalf("state %v, ConnErr %v: want reconnecting after a silent server", c.State(), c.ConnErr())
		}
		f2.send(&wire.Welcome{Version: wire.ProtocolVersion, Session: 2})
		if err := c.WaitState(context.Background(), client.Connected); err != nil {
			t.Fatal(err)
		}
	})
}

// TestHeartbeatBusyReader: a reader busy with what it received (here held
// in an OnAcknowledge callback for many periods) is not taken for a
// silent server.
func TestHeartbeatBusyReader(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		f, c, _ := heartbeatSession(t, client.Options{Heartbeat: time.Second, OnAcknowledge: func(string, wire.CommitID, uint64) { <-release }}, wire.Welcome{})
		s := reopenFake(t, f, c)
		o := record(t, s, 1)
		if _, err := s.Run(context.Background(), func(tx *stm.Tx) error { hitsF.Of(o).Add(tx, 1); return nil }); err != nil {
			t.Fatal(err)
		}
		cm := f.recv().(*wire.Commit)
		f.send(&wire.Ack{ID: cm.ID, Version: 4}) // the reader now waits in OnAcknowledge
		time.Sleep(10 * time.Second)             // ten periods
		close(release)
		synctest.Wait()
		if c.State() != client.Connected {
			t.Fatalf("state %v after the reader was busy for ten periods, want connected", c.State())
		}
		p, ok := f.recv().(*wire.Ping) // the connection lives: the next silence pings
		if !ok {
			t.Fatal("no ping after the reader went back to waiting")
		}
		f.send(&wire.Pong{Nonce: p.Nonce})
	})
}

// heartbeatSession dials a client with opts (as replica 9) to a
// test-driven server end that answers its Hello with welcome, inside a
// synctest bubble; accept takes the client's next connection, up to its
// Hello.
func heartbeatSession(t *testing.T, opts client.Options, welcome wire.Welcome) (f *fakeServer, c *client.Client, accept func() *fakeServer) {
	n := transport.NewNetwork(1)
	l, err := n.Listen("server")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	opts.Replica = 9
	dialed := make(chan *client.Client, 1)
	go func() {
		c, err := client.Dial(context.Background(), n.Dialer("client"), "server", opts)
		if err != nil {
			t.Error(err)
		}
		dialed <- c
	}()
	accept = func() *fakeServer {
		conn, err := l.Accept(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		f := &fakeServer{t: t, conn: conn}
		if _, ok := f.recv().(*wire.Hello); !ok {
			t.Fatal("no hello")
		}
		return f
	}
	f = accept()
	welcome.Version, welcome.Session = wire.ProtocolVersion, 1
	f.send(&welcome)
	c = <-dialed
	t.Cleanup(func() { c.Close() })
	return f, c, accept
}

// TestAnswersServerHeartbeat: a client idle for a minute answers the
// heartbeat its server announces (Config.Heartbeat, a second here) with
// Pings, and so keeps its session: the server closes one silent for three
// heartbeats, which the client would see as a reconnection.
func TestAnswersServerHeartbeat(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := startServer(t, false, server.Config{Heartbeat: time.Second})
		var states []client.State
		c := e.clientWith(client.Options{OnState: func(s client.State) { states = append(states, s) }})
		if _, err := c.Open(testCtx(t), "bank", account); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Minute)
		synctest.Wait()
		if len(states) > 0 || c.State() != client.Connected {
			t.Fatalf("states %v, now %v: the session did not last", states, c.State())
		}
	})
}

// TestWatchesAnnouncedHeartbeat: without Options.Heartbeat, a client
// watches its connection with the heartbeat its server announces: a
// server that answers its Pings keeps it for a minute, and one that goes
// silent is dropped after four to six heartbeats, ConnErr saying why (TCP
// would keep a dead server's connection open for as long as nothing is
// written).
func TestWatchesAnnouncedHeartbeat(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f, c, _ := heartbeatSession(t, client.Options{MinBackoff: time.Hour}, wire.Welcome{HeartbeatMillis: 1000})
		start := time.Now()
		for time.Since(start) < time.Minute { // answered: kept
			p, ok := f.recv().(*wire.Ping)
			if !ok {
				t.Fatal("not a ping")
			}
			f.send(&wire.Pong{Nonce: p.Nonce})
		}
		if c.State() != client.Connected {
			t.Fatalf("state %v with a server that answers", c.State())
		}
		silent := time.Now()
		for {
			if _, err := f.conn.Recv(context.Background()); err != nil {
				break // dropped
			}
			if time.Since(silent) > time.Minute {
				t.Fatal("a silent server's connection kept for a minute")
			}
		}
		if d := time.Since(silent); d < 4*time.Second || d > 6*time.Second {
			t.Errorf("dropped after %v of silence, want 4 to 6 heartbeats", d)
		}
		synctest.Wait()
		if c.State() != client.Reconnecting || c.ConnErr() == nil || !strings.Contains(c.ConnErr().Error(), "no message from the server") {
			t.Fatalf("state %v, ConnErr %v: want reconnecting after a silent server", c.State(), c.ConnErr())
		}
	})
}
