package main

import (
	"context"
	"fmt"
	"runtime"

	"github.com/weft-stm/weft/stm"
)

// weft rows of the stm suite. Each worker calls Atomically with a closure
// built once in setup, so the harness adds no allocation per transaction;
// the counts are weft's own.

func weftRMW(spec rmwSpec) (*Instance, error) {
	ctx := context.Background()
	ws := stm.NewWorkspace()
	vars, spacers := newVars(spec, func() *stm.Var[int] { return stm.NewVar(ws, 0) })
	inst := &Instance{
		Check: func(ops []uint64) error {
			return ws.View(ctx, func(tx *stm.Tx) error {
				return spec.check(ops, func(g, i int) int { return vars[g][i].Get(tx) })
			})
		},
		Close: func() error {
			runtime.KeepAlive(spacers)
			return ws.Close()
		},
	}
	for w := range spec.Goroutines {
		vs := vars[spec.group(w)]
		fn := func(tx *stm.Tx) error {
			for _, v := range vs {
				v.Set(tx, v.Get(tx)+1)
			}
			return nil
		}
		inst.Workers = append(inst.Workers, func() error { return ws.Atomically(ctx, fn) })
	}
	return inst, nil
}

func weftArray(n int) (*Instance, error) {
	ctx := context.Background()
	ws := stm.NewWorkspace()
	list := stm.NewList[int](ws)
	if err := ws.Atomically(ctx, func(tx *stm.Tx) error {
		list.Append(tx, make([]int, n)...)
		return nil
	}); err != nil {
		ws.Close()
		return nil, fmt.Errorf("fill list: %w", err)
	}
	round := 0
	// fn may run more than once; it reads round, set outside it.
	fn := func(tx *stm.Tx) error {
		for i := range n {
			list.Set(tx, i, round)
		}
		return nil
	}
	return &Instance{
		Workers: []func() error{func() error {
			round++
			return ws.Atomically(ctx, fn)
		}},
		Check: func(ops []uint64) error {
			return ws.View(ctx, func(tx *stm.Tx) error {
				if got := list.Len(tx); got != n {
					return fmt.Errorf("list has %d elements, want %d", got, n)
				}
				return checkArray(ops, n, round, func(i int) int { return list.Get(tx, i) })
			})
		},
		Close: ws.Close,
	}, nil
}

//go:generate go run github.com/weft-stm/weft/cmd/weft gen -o account.weft.go account.weft

func weftObjectField() (*Instance, error) {
	ctx := context.Background()
	ws := stm.NewWorkspace()
	acct := NewAccount(ws)
	fn := func(tx *stm.Tx) error {
		acct.SetBalance(tx, acct.Balance(tx)+1)
		return nil
	}
	return &Instance{
		Workers: []func() error{func() error { return ws.Atomically(ctx, fn) }},
		Check: func(ops []uint64) error {
			if got := acct.Balance(stm.Auto); uint64(got) != ops[0] {
				return fmt.Errorf("balance %d after %d increments", got, ops[0])
			}
			return nil
		},
		Close: ws.Close,
	}, nil
}

func weftBareVar() (*Instance, error) {
	ctx := context.Background()
	ws := stm.NewWorkspace()
	v := stm.NewVar[int64](ws, 0)
	fn := func(tx *stm.Tx) error {
		v.Set(tx, v.Get(tx)+1)
		return nil
	}
	return &Instance{
		Workers: []func() error{func() error { return ws.Atomically(ctx, fn) }},
		Check: func(ops []uint64) error {
			if got := v.Get(stm.Auto); uint64(got) != ops[0] {
				return fmt.Errorf("value %d after %d increments", got, ops[0])
			}
			return nil
		},
		Close: ws.Close,
	}, nil
}
