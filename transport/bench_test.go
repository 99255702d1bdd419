package transport

import (
	"context"
	"sync"
	"testing"

	"github.com/weft-stm/weft/wire"
)

// benchCommit is a small transaction, about the size the replication
// benchmarks send: a couple of reads and writes.
func benchCommit(seq uint64) *wire.Commit {
	return &wire.Commit{
		ID:       wire.CommitID{Replica: 0x5eed, Seq: seq},
		Share:    1,
		Snapshot: seq,
		Reads: []wire.Read{
			{Object: wire.ObjectID{Replica: 1, Seq: 7}, Kind: wire.ReadField, Field: 2, Version: seq},
		},
		Writes: []wire.Op{
			{Kind: wire.OpSetField, Object: wire.ObjectID{Replica: 1, Seq: 7}, Field: 2, Value: wire.Int(int64(seq))},
			{Kind: wire.OpCounterAdd, Object: wire.ObjectID{Replica: 4, Seq: 12}, Delta: 1},
		},
	}
}

// benchPair is tcpPair for benchmarks.
func benchPair(b *testing.B) (client, server *TCPConn) {
	b.Helper()
	ln, err := ListenTCP("127.0.0.1:0", nil, wire.Limits{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { ln.Close() })
	ctx := context.Background()
	ac := make(chan Conn, 1)
	go func() {
		s, err := ln.Accept(ctx)
		if err != nil {
			b.Error(err)
		}
		ac <- s
	}()
	c, err := DialTCP(ctx, ln.Addr(), nil, wire.Limits{})
	if err != nil {
		b.Fatal(err)
	}
	s := <-ac
	if s == nil {
		b.FailNow()
	}
	b.Cleanup(func() { c.Close(); s.Close() })
	return c, s.(*TCPConn)
}

func reportRate(b *testing.B) {
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}

// BenchmarkTCPPingPong is a commit round trip: the client sends a Commit
// and waits for its Ack before the next.
func BenchmarkTCPPingPong(b *testing.B) {
	c, s := benchPair(b)
	ctx := context.Background()
	go echo(ctx, s)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if err := c.Send(ctx, benchCommit(uint64(i))); err != nil {
			b.Fatal(err)
		}
		if _, err := c.Recv(ctx); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	reportRate(b)
}

// echo answers every Commit with an Ack, one Send per Recv, until the
// connection ends.
func echo(ctx context.Context, s Conn) {
	for {
		m, err := s.Recv(ctx)
		if err != nil {
			return
		}
		if err := s.Send(ctx, &wire.Ack{ID: m.(*wire.Commit).ID, Version: 1}); err != nil {
			return
		}
	}
}

// outboxEcho answers Commits with Acks the way the server does: a reader
// queues them, and a writer sends whatever has queued up, with send.
func outboxEcho(ctx context.Context, s Conn, send func([]wire.Message) error) {
	var (
		mu     sync.Mutex
		queue  []wire.Message
		done   bool
		wake   = make(chan struct{}, 1)
		signal = func() {
			select {
			case wake <- struct{}{}:
			default:
			}
		}
	)
	go func() {
		for {
			m, err := s.Recv(ctx)
			mu.Lock()
			if err != nil {
				done = true
			} else {
				queue = append(queue, &wire.Ack{ID: m.(*wire.Commit).ID, Version: 1})
			}
			mu.Unlock()
			signal()
			if err != nil {
				return
			}
		}
	}()
	var batch []wire.Message
	for {
		mu.Lock()
		batch, queue = queue, batch[:0]
		stop := done
		mu.Unlock()
		if len(batch) > 0 {
			if err := send(batch); err != nil {
				return
			}
			clear(batch)
			continue
		}
		if stop {
			return
		}
		<-wake
	}
}

// benchPipelined: the client sends b.N Commits without waiting while
// another goroutine reads the Acks; the server answers with serve.
func benchPipelined(b *testing.B, serve func(ctx context.Context, s *TCPConn)) {
	c, s := benchPair(b)
	ctx := context.Background()
	go serve(ctx, s)
	b.ReportAllocs()
	b.ResetTimer()
	errc := make(chan error, 1)
	go func() {
		for i := range b.N {
			if err := c.Send(ctx, benchCommit(uint64(i))); err != nil {
				errc <- err
				return
			}
		}
		errc <- nil
	}()
	for range b.N {
		if _, err := c.Recv(ctx); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	if err := <-errc; err != nil {
		b.Fatal(err)
	}
	reportRate(b)
}

func BenchmarkTCPPipelined(b *testing.B) {
	// The server answers each Commit as it reads it.
	b.Run("echo", func(b *testing.B) {
		benchPipelined(b, func(ctx context.Context, s *TCPConn) { echo(ctx, s) })
	})
	// The server queues Acks and a writer sends them one Send each.
	b.Run("outbox-send", func(b *testing.B) {
		benchPipelined(b, func(ctx context.Context, s *TCPConn) {
			outboxEcho(ctx, s, func(msgs []wire.Message) error {
				for _, m := range msgs {
					if err := s.Send(ctx, m); err != nil {
						return err
					}
				}
				return nil
			})
		})
	})
	// The same, the writer sending what has queued with one SendBatch.
	b.Run("outbox-batch", func(b *testing.B) {
		benchPipelined(b, func(ctx context.Context, s *TCPConn) {
			outboxEcho(ctx, s, func(msgs []wire.Message) error { return s.SendBatch(ctx, msgs) })
		})
	})
}
