package stm_test

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/weft-stm/weft/stm"
)

func ExampleWorkspace_Atomically() {
	ctx := context.Background()
	ws := stm.NewWorkspace()
	alice, bob := stm.NewVar(ws, 100), stm.NewVar(ws, 0)

	err := ws.Atomically(ctx, func(tx *stm.Tx) error {
		if alice.Get(tx) < 30 {
			return errors.New("insufficient funds")
		}
		alice.Set(tx, alice.Get(tx)-30)
		bob.Set(tx, bob.Get(tx)+30)
		return nil
	})
	fmt.Println(err, alice.Get(stm.Auto), bob.Get(stm.Auto))
	// Output: <nil> 70 30
}

func ExampleTx_Retry() {
	ctx := context.Background()
	ws := stm.NewWorkspace()
	seats := stm.NewVar(ws, 0)
	booked := make(chan int)
	go func() {
		_ = ws.Atomically(ctx, func(tx *stm.Tx) error {
			n := seats.Get(tx)
			if n == 0 {
				return tx.Retry() // blocks until seats changes
			}
			seats.Set(tx, n-1)
			return nil
		})
		booked <- seats.Get(stm.Auto)
	}()
	seats.Set(stm.Auto, 2) // a seat frees up: the booking goes through
	fmt.Println("seats left:", <-booked)
	// Output: seats left: 1
}

func ExampleAuto() {
	ws := stm.NewWorkspace()
	tags := stm.NewSet[string](ws)
	tags.AddFast(stm.Auto, "go") // its own transaction, committed at once
	fmt.Println(tags.Add(stm.Auto, "stm"), tags.Len(stm.Auto))
	// Output: false 2
}

func ExampleMap() {
	ctx := context.Background()
	ws := stm.NewWorkspace()
	stock := stm.NewMap[string, int](ws)
	_ = ws.Atomically(ctx, func(tx *stm.Tx) error {
		stock.PutFast(tx, "apples", 3) // blind write: reads nothing, never conflicts
		old, existed := stock.Put(tx, "pears", 5)
		fmt.Println(old, existed)
		return nil
	})
	_ = ws.View(ctx, func(tx *stm.Tx) error {
		var keys []string
		for k := range stock.All(tx) {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		fmt.Println(keys, stock.Len(tx))
		return nil
	})
	// Output:
	// 0 false
	// [apples pears] 2
}

func ExampleNewClass() {
	ctx := context.Background()
	name := stm.NewVarField[string](1, "name")
	friends := stm.NewSetField[*stm.Object](2, "friends")
	posts := stm.NewCounterField(3, "posts")
	user := stm.NewClass("User", 1, name, friends, posts)

	ws := stm.NewWorkspace()
	ada, bob := stm.NewObject(ws, user), stm.NewObject(ws, user)
	_ = ws.Atomically(ctx, func(tx *stm.Tx) error {
		name.Of(ada).Set(tx, "Ada")
		name.Of(bob).Set(tx, "Bob")
		friends.Of(ada).AddFast(tx, bob) // references make a graph
		posts.Of(ada).Add(tx, 1)         // increments commute
		return nil
	})
	_ = ws.View(ctx, func(tx *stm.Tx) error {
		for f := range friends.Of(ada).All(tx) {
			fmt.Println(name.Of(ada).Get(tx), "->", name.Of(f).Get(tx), posts.Of(ada).Get(tx))
		}
		return nil
	})
	// Output: Ada -> Bob 1
}

func ExampleWorkspace_Run() {
	ctx := context.Background()
	ws := stm.NewWorkspace()
	v := stm.NewVar(ws, 0)
	h, _ := ws.Run(ctx, func(tx *stm.Tx) error { v.Set(tx, 1); return nil })
	fmt.Println(h.Status(), h.Wait(ctx), h.Version())
	// Output: acknowledged <nil> 1
}
