package main

import (
	"sync"
	"sync/atomic"
	"testing"
)

// BenchmarkPingPong measures what moving one cache line between two cores
// costs on this machine: two goroutines take turns storing to one word, so
// each op is a round trip (two transfers). docs/benchmarks.md uses it to
// explain how far one shared version counter lets tiny transactions scale.
func BenchmarkPingPong(b *testing.B) {
	var x atomic.Int64
	var wg sync.WaitGroup
	n := int64(b.N)
	wg.Add(2)
	go func() {
		defer wg.Done()
		for i := int64(0); i < n; i++ {
			for x.Load() != 2*i {
			}
			x.Store(2*i + 1)
		}
	}()
	go func() {
		defer wg.Done()
		for i := int64(0); i < n; i++ {
			for x.Load() != 2*i+1 {
			}
			x.Store(2*i + 2)
		}
	}()
	wg.Wait()
}

// BenchmarkCounterPerOp measures what one atomic increment of a word
// shared by two cores adds to a small unit of work (about 80 ns of
// arithmetic, the size of a one-variable transaction): two goroutines each
// do b.N/2 units, each unit followed by an increment of a shared counter
// ("shared"), or of a counter of its own on its own cache line ("own").
// ns/op is wall time per unit, so with perfect scaling "own" is half the
// one-goroutine time; the gap to "shared" is the price of the one write
// every commit makes to a global version counter (docs/benchmarks.md).
func BenchmarkCounterPerOp(b *testing.B) {
	type padded struct {
		n atomic.Uint64
		_ [120]byte
	}
	var shared padded
	var own, sink [2]padded
	unit := func(p *padded) {
		x := p.n.Load()
		for range 60 {
			x = x*6364136223846793005 + 1442695040888963407
		}
		p.n.Store(x)
	}
	for _, bc := range []struct {
		name string
		g    int
		ctr  func(w int) *padded
	}{
		{"1g", 1, func(int) *padded { return &shared }},
		{"2g-own", 2, func(w int) *padded { return &own[w] }},
		{"2g-shared", 2, func(int) *padded { return &shared }},
	} {
		b.Run(bc.name, func(b *testing.B) {
			var wg sync.WaitGroup
			for w := range bc.g {
				ctr := bc.ctr(w)
				wg.Go(func() {
					for range b.N / bc.g {
						unit(&sink[w])
						ctr.n.Add(1)
					}
				})
			}
			wg.Wait()
		})
	}
}
