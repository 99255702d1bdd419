package client_test

import (
	"testing"

	"github.com/weft-stm/weft/client"
	"github.com/weft-stm/weft/server"
	"github.com/weft-stm/weft/stm"
)

// BenchmarkFanoutTCP: one client pipelines blind writes with Run, 8 others
// receive each over loopback TCP (what fanout-1w-8r measures).
func BenchmarkFanoutTCP(b *testing.B) {
	e := startServer(b, true, server.Config{})
	e.raw("bank", createAccount(1, 0)...)
	_, w := e.open("bank")
	var readers []*client.Share
	for range 8 {
		_, r := e.open("bank")
		readers = append(readers, r)
	}
	v := balanceF.Of(record(b, w, 1))
	ctx := testCtx(b)
	var i int64
	fn := func(tx *stm.Tx) error { v.Set(tx, i); return nil }
	b.ResetTimer()
	for range b.N {
		i++
		if _, err := w.Run(ctx, fn); err != nil {
			b.Fatal(err)
		}
	}
	w.Flush(ctx)
	for _, r := range readers {
		if err := r.WaitVersion(ctx, w.Version()); err != nil {
			b.Fatal(err)
		}
	}
}
