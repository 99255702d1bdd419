package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/weft-stm/weft/stm"
)

// localDemo is "weft demo -local": a bank of accounts in one workspace,
// tellers transferring between them concurrently, an auditor checking the
// total on consistent snapshots, a waiter blocked in Retry until a vault
// fills, and an observer; it prints the commit and conflict rates each
// second. No server, no network: the transactional core alone.
func localDemo(interrupt context.Context, dur time.Duration, accounts, tellers int, stdout io.Writer) error {
	if accounts < 2 || tellers < 1 {
		return errors.New("need at least 2 accounts and 1 teller")
	}
	ctx, cancel := context.WithTimeout(interrupt, dur)
	defer cancel()

	ws := stm.NewWorkspace()
	defer ws.Close()
	const start = 1000
	acct := make([]*stm.Var[int], accounts)
	for i := range acct {
		acct[i] = stm.NewVar(ws, start)
	}
	want := start * accounts
	vault := stm.NewCounter(ws)
	var transfers, conflicts, audits atomic.Int64
	var observed atomic.Int64
	sub := ws.Subscribe(acct[0], func(c stm.Change) { observed.Add(int64(c.Commits)) })
	defer sub.Close()

	fmt.Fprintf(stdout, "weft demo -local: %d accounts of %d, %d tellers, %v\n", accounts, start, tellers, dur)
	var wg sync.WaitGroup
	// The waiter blocks in Retry until the vault holds 1000 fees, on no timer.
	vaultFull := make(chan time.Duration, 1)
	t0 := time.Now()
	wg.Add(1)
	go func() {
		defer wg.Done()
		err := ws.Atomically(ctx, func(tx *stm.Tx) error {
			if vault.Get(tx) < 1000 {
				return tx.Retry()
			}
			return nil
		})
		if err == nil {
			vaultFull <- time.Since(t0)
		}
	}()
	var bad atomic.Value
	for t := range tellers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(t), 42))
			for ctx.Err() == nil {
				from, to, amount := r.IntN(len(acct)), r.IntN(len(acct)), 1+r.IntN(50)
				attempts := 0
				err := ws.Atomically(ctx, func(tx *stm.Tx) error {
					attempts++
					if acct[from].Get(tx) < amount || from == to {
						return nil
					}
					acct[from].Set(tx, acct[from].Get(tx)-amount)
					acct[to].Set(tx, acct[to].Get(tx)+amount)
					vault.Add(tx, 1) // a fee count: commutes, never conflicts
					return nil
				})
				if err == nil {
					transfers.Add(1)
					conflicts.Add(int64(attempts - 1))
				}
			}
		}()
	}
	wg.Add(1)
	go func() { // the auditor: a read-only snapshot never conflicts
		defer wg.Done()
		for ctx.Err() == nil {
			_ = ws.View(ctx, func(tx *stm.Tx) error {
				total := 0
				for _, a := range acct {
					total += a.Get(tx)
				}
				if total != want {
					bad.Store(fmt.Sprintf("audit saw total %d, want %d", total, want))
				}
				return nil
			})
			audits.Add(1)
		}
	}()

	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	var lastT, lastC, lastA int64
	for done := false; !done; {
		select {
		case <-ctx.Done():
			done = true
			continue
		case d := <-vaultFull:
			fmt.Fprintf(stdout, "  waiter: vault reached 1000 fees after %v, woken by a commit (Retry)\n", d.Round(time.Millisecond))
			continue
		case <-tick.C:
		}
		t, c, a := transfers.Load(), conflicts.Load(), audits.Load()
		fmt.Fprintf(stdout, "  %8d transfers/s  %6d conflicts/s  %6d audits/s  version %d\n",
			t-lastT, c-lastC, a-lastA, ws.Version())
		lastT, lastC, lastA = t, c, a
	}
	wg.Wait()
	if msg := bad.Load(); msg != nil {
		return errors.New(msg.(string))
	}
	total := 0
	_ = ws.View(context.Background(), func(tx *stm.Tx) error {
		for _, a := range acct {
			total += a.Get(tx)
		}
		return nil
	})
	fmt.Fprintf(stdout, "done: %d transfers, %d retried after a conflict, %d audits all saw total %d; observer saw %d commits to account 0\n",
		transfers.Load(), conflicts.Load(), audits.Load(), total, observed.Load())
	if total != want {
		return fmt.Errorf("final total %d, want %d", total, want)
	}
	return nil
}
