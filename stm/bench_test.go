package stm

import (
	"context"
	"sync"
	"testing"
)

func BenchmarkVarRMW(b *testing.B) {
	ws := NewWorkspace()
	v := NewVar(ws, 0)
	ctx := context.Background()
	fn := func(tx *Tx) error { v.Set(tx, v.Get(tx)+1); return nil }
	b.ReportAllocs()
	for b.Loop() {
		if err := ws.Atomically(ctx, fn); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVarRMW2G runs two goroutines, each on its own variable: disjoint
// transactions should scale with cores.
func BenchmarkVarRMW2G(b *testing.B) {
	ws := NewWorkspace()
	ctx := context.Background()
	b.ReportAllocs()
	var wg sync.WaitGroup
	n := b.N
	for g := 0; g < 2; g++ {
		v := NewVar(ws, 0)
		fn := func(tx *Tx) error { v.Set(tx, v.Get(tx)+1); return nil }
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < n/2; i++ {
				_ = ws.Atomically(ctx, fn)
			}
		}()
	}
	wg.Wait()
}

func Benchmark10VarRMW(b *testing.B) {
	ws := NewWorkspace()
	vs := make([]*Var[int], 10)
	for i := range vs {
		vs[i] = NewVar(ws, 0)
	}
	ctx := context.Background()
	fn := func(tx *Tx) error {
		for _, v := range vs {
			v.Set(tx, v.Get(tx)+1)
		}
		return nil
	}
	b.ReportAllocs()
	for b.Loop() {
		_ = ws.Atomically(ctx, fn)
	}
}

func BenchmarkList1000(b *testing.B) {
	ws := NewWorkspace()
	l := NewList[int](ws)
	ctx := context.Background()
	_ = ws.Atomically(ctx, func(tx *Tx) error {
		for i := 0; i < 1000; i++ {
			l.Append(tx, 0)
		}
		return nil
	})
	k := 0
	fn := func(tx *Tx) error {
		for i := 0; i < 1000; i++ {
			l.Set(tx, i, k)
		}
		return nil
	}
	b.ReportAllocs()
	for b.Loop() {
		k++
		_ = ws.Atomically(ctx, fn)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/1000, "ns/elem")
}

// BenchmarkObjectFieldRMW is BenchmarkVarRMW through a record's field
// handle, the path generated classes take.
func BenchmarkObjectFieldRMW(b *testing.B) {
	ws := NewWorkspace()
	balance := NewVarField[int](1, "balance")
	acct := NewObject(ws, NewClass("Account", 1, balance))
	ctx := context.Background()
	fn := func(tx *Tx) error {
		v := balance.Of(acct)
		v.Set(tx, v.Get(tx)+1)
		return nil
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := ws.Atomically(ctx, fn); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkTenVarRMW2G is Benchmark10VarRMW on two goroutines with disjoint
// variables: larger transactions amortise the one shared version counter.
func BenchmarkTenVarRMW2G(b *testing.B) {
	ws := NewWorkspace()
	ctx := context.Background()
	var wg sync.WaitGroup
	n := b.N
	for g := 0; g < 2; g++ {
		vs := make([]*Var[int], 10)
		for i := range vs {
			vs[i] = NewVar(ws, 0)
		}
		fn := func(tx *Tx) error {
			for _, v := range vs {
				v.Set(tx, v.Get(tx)+1)
			}
			return nil
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < n/2; i++ {
				_ = ws.Atomically(ctx, fn)
			}
		}()
	}
	wg.Wait()
}
