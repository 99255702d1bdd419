package client_test

import (
	"testing"

	"github.com/weft-stm/weft/server"
	"github.com/weft-stm/weft/stm"
)

// BenchmarkChainedTCP: one client runs blind writes without waiting, over
// loopback TCP to an in-process server; every 1000 it awaits the handles.
func BenchmarkChainedTCP(b *testing.B) {
	e := startServer(b, true, server.Config{})
	e.raw("bank", createAccount(1, 0)...)
	_, s := e.open("bank")
	v := balanceF.Of(record(b, s, 1))
	ctx := testCtx(b)
	hs := make([]*stm.Handle, 0, 1000)
	var i int64
	fn := func(tx *stm.Tx) error { v.Set(tx, i); return nil }
	b.ResetTimer()
	for range b.N {
		i++
		h, err := s.Run(ctx, fn)
		if err != nil {
			b.Fatal(err)
		}
		if hs = append(hs, h); len(hs) == cap(hs) {
			for _, h := range hs {
				if err := h.Wait(ctx); err != nil {
					b.Fatal(err)
				}
			}
			hs = hs[:0]
		}
	}
	if err := s.Flush(ctx); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkRoundTripTCP: one client, each commit awaiting its Ack.
func BenchmarkRoundTripTCP(b *testing.B) {
	e := startServer(b, true, server.Config{})
	e.raw("bank", createAccount(1, 0)...)
	_, s := e.open("bank")
	v := balanceF.Of(record(b, s, 1))
	ctx := testCtx(b)
	fn := func(tx *stm.Tx) error { v.Set(tx, v.Get(tx)+1); return nil }
	b.ResetTimer()
	for range b.N {
		if err := s.Atomically(ctx, fn); err != nil {
			b.Fatal(err)
		}
	}
}
