package server

import (
	"context"
	"log/slog"
	"sync"
	"testing"

	"github.com/weft-stm/weft/wire"
)

// Benchmarks of the server's hot path with raw protocol clients over
// loopback TCP, so that the client package's costs are left out.

func benchConfig() Config {
	return Config{DefaultAccess: AccessWrite, Logger: slog.New(slog.DiscardHandler)}
}

// BenchmarkServerRTT: one session commits a blind write and waits for its
// Ack, b.N times.
func BenchmarkServerRTT(b *testing.B) {
	h := startTCP(b, benchConfig())
	c := h.dial(2, "")
	c.open(1, "s", 0)
	c.ack(c.commit(1, 0, nil, createVar(oid(2, 1), 0)...).ID)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		c.seq++
		m := &wire.Commit{ID: wire.CommitID{Replica: 2, Seq: c.seq}, Share: 1,
			Writes: []wire.Op{setVar(oid(2, 1), int64(i))}}
		if err := c.conn.Send(ctx, m); err != nil {
			b.Fatal(err)
		}
		if a, err := c.conn.Recv(ctx); err != nil {
			b.Fatal(err)
		} else if _, ok := a.(*wire.Ack); !ok {
			b.Fatalf("got %v", a.Type())
		}
	}
}

// BenchmarkServerChained: one session sends windows of 1000 blind writes
// back to back, then reads their Acks.
func BenchmarkServerChained(b *testing.B) {
	h := startTCP(b, benchConfig())
	c := h.dial(2, "")
	c.open(1, "s", 0)
	c.ack(c.commit(1, 0, nil, createVar(oid(2, 1), 0)...).ID)
	const window = 1000
	ctx := context.Background()
	msgs := make([]wire.Message, 0, window)
	b.ReportAllocs()
	b.ResetTimer()
	for done := 0; done < b.N; {
		n := min(window, b.N-done)
		msgs = msgs[:0]
		for i := range n {
			c.seq++
			msgs = append(msgs, &wire.Commit{ID: wire.CommitID{Replica: 2, Seq: c.seq}, Share: 1,
				Writes: []wire.Op{setVar(oid(2, 1), int64(done+i))}})
		}
		if err := c.conn.SendBatch(ctx, msgs); err != nil {
			b.Fatal(err)
		}
		for range n {
			if _, ok := c.recv().(*wire.Ack); !ok {
				b.Fatal("not an ack")
			}
		}
		done += n
	}
}

// BenchmarkServerFanout: one session pipelines blind writes (windows of
// 1000) to a share 8 other sessions have open; each op is one commit and
// 8 deliveries.
func BenchmarkServerFanout(b *testing.B) {
	const readers, window = 8, 1000
	h := startTCP(b, benchConfig())
	w := h.dial(2, "")
	w.open(1, "s", 0)
	w.ack(w.commit(1, 0, nil, createVar(oid(2, 1), 0)...).ID)
	rs := make([]*client, readers)
	for i := range rs {
		rs[i] = h.dial(uint64(10+i), "")
		rs[i].open(1, "s", 0)
	}
	ctx := context.Background()
	msgs := make([]wire.Message, 0, window)
	b.ReportAllocs()
	b.ResetTimer()
	var wg sync.WaitGroup
	for _, r := range rs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range b.N {
				m, err := r.conn.Recv(ctx)
				if err != nil {
					b.Error(err)
					return
				}
				if _, ok := m.(*wire.Update); !ok {
					b.Errorf("got %v", m.Type())
					return
				}
			}
		}()
	}
	for done := 0; done < b.N; {
		n := min(window, b.N-done)
		msgs = msgs[:0]
		for i := range n {
			w.seq++
			msgs = append(msgs, &wire.Commit{ID: wire.CommitID{Replica: 2, Seq: w.seq}, Share: 1,
				Writes: []wire.Op{setVar(oid(2, 1), int64(done+i))}})
		}
		if err := w.conn.SendBatch(ctx, msgs); err != nil {
			b.Fatal(err)
		}
		for range n {
			if _, ok := w.recv().(*wire.Ack); !ok {
				b.Fatal("not an ack")
			}
		}
		done += n
	}
	wg.Wait()
	b.ReportMetric(float64(b.N*readers)/b.Elapsed().Seconds(), "deliveries/s")
}

// BenchmarkServerRTTHandoff is BenchmarkServerRTT with the goroutines of
// package client: a reader goroutine hands each Ack to the caller, and
// (writer) the caller hands each commit to a writer goroutine, or (direct)
// sends it itself. Beside BenchmarkServerRTT it prices the client's
// hand-offs.
func BenchmarkServerRTTHandoff(b *testing.B) {
	b.Run("writer", func(b *testing.B) { benchRTTHandoff(b, true) })
	b.Run("direct", func(b *testing.B) { benchRTTHandoff(b, false) })
}

func benchRTTHandoff(b *testing.B, writer bool) {
	h := startTCP(b, benchConfig())
	c := h.dial(2, "")
	c.open(1, "s", 0)
	c.ack(c.commit(1, 0, nil, createVar(oid(2, 1), 0)...).ID)
	ctx := context.Background()
	out := make(chan wire.Message, 1)
	acks := make(chan struct{}, 1)
	go func() {
		for m := range out {
			if err := c.conn.Send(ctx, m); err != nil {
				b.Error(err)
				return
			}
		}
	}()
	go func() {
		for {
			if _, err := c.conn.Recv(ctx); err != nil {
				return
			}
			acks <- struct{}{}
		}
	}()
	defer close(out)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		c.seq++
		m := &wire.Commit{ID: wire.CommitID{Replica: 2, Seq: c.seq}, Share: 1,
			Writes: []wire.Op{setVar(oid(2, 1), int64(i))}}
		if writer {
			out <- m
		} else if err := c.conn.Send(ctx, m); err != nil {
			b.Fatal(err)
		}
		<-acks
	}
}
