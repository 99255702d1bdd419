package client_test

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"strconv"
	"sync"
	"testing"

	"github.com/weft-stm/weft/client"
	"github.com/weft-stm/weft/server"
	"github.com/weft-stm/weft/stm"
	"github.com/weft-stm/weft/transport"
	"github.com/weft-stm/weft/wire"
)

// TestRandomSpeculation runs clients that chain random speculative commits
// (transfers that read, blind writes of names and map keys, counter
// increments, counter drains) over a network with random delays, with connections cut at
// random, and checks what the issue promises: the total of the transfers
// never changes and no counter is below 0 in any snapshot of any replica;
// every counter equals the increments minus the drains acknowledged (each
// applied exactly once, none of an aborted commit); every replica converges to the server's state.
func TestRandomSpeculation(t *testing.T) {
	for seed := range uint64(randomSeeds) {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) { randomRun(t, seed) })
	}
}

func randomRun(t *testing.T, seed uint64) {
	const (
		clients  = 3
		accounts = 6
		commits  = 150 // per client
		start    = 100
	)
	e := startServer(t, false, server.Config{})
	var ops []wire.Op
	for n := uint64(1); n <= accounts; n++ {
		ops = append(ops, createAccount(n, start)...)
	}
	e.raw("bank", ops...)
	dial, cut := e.recordingDialer("client")
	var shares []*client.Share
	for i := range clients {
		c, err := client.Dial(testCtx(t), dial, e.addr, client.Options{Replica: uint64(10 + i), MinBackoff: 1})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		s, err := c.Open(testCtx(t), "bank", account)
		if err != nil {
			t.Fatal(err)
		}
		shares = append(shares, s)
	}
	e.net.SetFaults(transport.Faults{MinDelay: 0, MaxDelay: 3})

	// Each client's worker makes its commits, auditing as it goes; the
	// test goroutine drives the network meanwhile.
	type outcome struct {
		hits           map[wire.ObjectID]int64 // increments acknowledged, by record
		acked, aborted int
		err            error
		audit          error
	}
	results := make(chan outcome, clients)
	var drainMu sync.Mutex
	drains := map[wire.ObjectID]int64{} // amounts drained by acknowledged drains
	var running sync.WaitGroup
	for i, s := range shares {
		running.Add(1)
		go func() {
			defer running.Done()
			rng := rand.New(rand.NewPCG(seed, uint64(i)))
			out := outcome{hits: map[wire.ObjectID]int64{}}
			recs := s.Records()
			var hs []*stm.Handle
			var adds []map[wire.ObjectID]int64
			for range commits {
				a, b := recs[rng.IntN(len(recs))], recs[rng.IntN(len(recs))]
				add := map[wire.ObjectID]int64{}
				var fn func(tx *stm.Tx) error
				var drained *int64
				switch rng.IntN(5) {
				case 0, 1: // a transfer: reads both balances
					amount := int64(1 + rng.IntN(30))
					fn = func(tx *stm.Tx) error {
						if a == b || balanceF.Of(a).Get(tx) < amount {
							return nil
						}
						balanceF.Of(a).Set(tx, balanceF.Of(a).Get(tx)-amount)
						balanceF.Of(b).Set(tx, balanceF.Of(b).Get(tx)+amount)
						return nil
					}
				case 2: // blind writes
					name, key := fmt.Sprint("n", rng.IntN(5)), fmt.Sprint("k", rng.IntN(3))
					fn = func(tx *stm.Tx) error {
						nameF.Of(a).Set(tx, name)
						tagsF.Of(b).PutFast(tx, key, int64(i))
						return nil
					}
				case 3: // an increment, and a read of another counter
					add[stm.IDOf(a)] = 1
					fn = func(tx *stm.Tx) error {
						hitsF.Of(a).Add(tx, 1)
						hitsF.Of(b).Get(tx)
						return nil
					}
				case 4: // a drain: a counter read, then taken to 0; a stale
					// read would take it below 0 or leave some behind
					drained = new(int64)
					fn = func(tx *stm.Tx) error {
						*drained = hitsF.Of(a).Get(tx)
						hitsF.Of(a).Add(tx, -*drained)
						return nil
					}
				}
				if rng.IntN(6) == 0 {
					// Atomically: the committer receives its verdict
					// itself (client/recv.go), through the cuts too.
					err := s.Atomically(testCtx(t), fn)
					switch {
					case err == nil:
						out.acked++
						for id, n := range add {
							out.hits[id] += n
						}
						if drained != nil {
							drainMu.Lock()
							drains[stm.IDOf(a)] += *drained
							drainMu.Unlock()
						}
					case errors.Is(err, stm.ErrAborted):
						out.aborted++
					default:
						out.err = fmt.Errorf("Atomically: %w", err)
					}
					if out.err != nil {
						break
					}
					continue
				}
				h, err := s.Run(testCtx(t), fn)
				if err != nil {
					out.err = err
					break
				}
				if drained != nil {
					d, id := drained, stm.IDOf(a)
					h.OnDone(func(h *stm.Handle) {
						if h.Err() == nil {
							drainMu.Lock()
							drains[id] += *d
							drainMu.Unlock()
						}
					})
				}
				hs, adds = append(hs, h), append(adds, add)
				if rng.IntN(8) == 0 {
					// Let the network catch up now and then, so that
					// updates arrive under pending commits.
					_ = h.Wait(testCtx(t))
				}
				if err := s.View(testCtx(t), func(tx *stm.Tx) error {
					var total int64
					for _, r := range recs {
						total += balanceF.Of(r).Get(tx)
						if n := hitsF.Of(r).Get(tx); n < 0 {
							return fmt.Errorf("client %d saw counter %d", i, n)
						}
					}
					if total != accounts*start {
						return fmt.Errorf("client %d saw total %d", i, total)
					}
					return nil
				}); err != nil && out.audit == nil {
					out.audit = err
				}
			}
			for k, h := range hs {
				if err := h.Wait(testCtx(t)); err == nil {
					out.acked++
					for id, n := range adds[k] {
						out.hits[id] += n
					}
				} else if errors.Is(err, stm.ErrAborted) {
					out.aborted++
				} else if out.err == nil {
					out.err = fmt.Errorf("commit %d: %w", k, err)
				}
			}
			results <- out
		}()
	}
	finished := make(chan struct{})
	go func() { running.Wait(); close(finished) }()
	rng := rand.New(rand.NewPCG(seed, 99))
	ctx := testCtx(t)
	cuts := 0
	for busy := true; busy; {
		select {
		case <-finished:
			busy = false
		case <-ctx.Done():
			t.Fatal("clients did not finish")
		default:
		}
		if rng.IntN(400) == 0 {
			cuts++
			cut(-1)
		}
		if due, ok := e.net.NextDue(); ok {
			e.net.Advance(due - e.net.Now())
		}
		runtimeYield()
	}
	hits := map[wire.ObjectID]int64{}
	var acked, aborted int
	for range clients {
		out := <-results
		acked, aborted = acked+out.acked, aborted+out.aborted
		if out.err != nil {
			t.Fatal(out.err)
		}
		if out.audit != nil {
			t.Error(out.audit)
		}
		for id, n := range out.hits {
			hits[id] += n
		}
	}
	t.Logf("%d commits acknowledged, %d aborted, %d connections cut", acked, aborted, cuts)
	if aborted == 0 {
		t.Error("no commit was aborted: the run tests no cascade")
	}
	e.net.SetFaults(transport.Faults{})
	got := converge(t, e, shares...)
	var total int64
	for id, st := range got {
		total += st.Balance
		if want := hits[id] - drains[id]; st.Hits != want {
			t.Errorf("account %v: counter %d, want %d (%d increments and %d drained acknowledged)", id, st.Hits, want, hits[id], drains[id])
		}
	}
	if total != accounts*start {
		t.Errorf("total %d, want %d", total, accounts*start)
	}
}

// runtimeYield lets the clients' and the server's goroutines run between
// two steps of the network.
func runtimeYield() { runtime.Gosched() }

// randomSeeds is how many seeds TestRandomSpeculation runs;
// WEFT_RANDOM_SEEDS raises it for a longer search.
var randomSeeds = func() int {
	if n, err := strconv.Atoi(os.Getenv("WEFT_RANDOM_SEEDS")); err == nil && n > 0 {
		return n
	}
	return 6
}()
