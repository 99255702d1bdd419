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
