package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/weft-stm/weft/check"
	"github.com/weft-stm/weft/client"
	"github.com/weft-stm/weft/stm"
	"github.com/weft-stm/weft/transport"
	"github.com/weft-stm/weft/wire"
)

// soakEnv makes this test binary a client process of TestSoak (see
// TestMain): "addr replica seed outfile".
const soakEnv = "WEFT_E2E_SOAK"

// The soak share: cells holding a register, a list and a balance.
var (
	soakValue   = stm.NewVarField[int64](1, "value")
	soakItems   = stm.NewListField[int64](2, "items")
	soakBalance = stm.NewVarField[int64](3, "balance")
	soakCell    = stm.NewClass("Cell", 2, soakValue, soakItems, soakBalance)
)

const (
	soakShare = "soak"
	// soakRegs cells, created by the test (replica seedReplica), hold the
	// registers and the balances (soakStart each: transfers between them
	// keep the total).
	soakRegs  = 4
	soakStart = 1000
	// Lists are appended to while shorter than soakCap, a few at a time
	// (soakOpen): a transaction that finds fewer open lists creates a
	// cell. This bounds what a list read records, however long the run.
	soakCap  = 24
	soakOpen = 4
	// soakPending bounds the Run commits of a process awaiting verdicts.
	soakPending = 8
)

// soakReport is what a client process writes to its output file once
// every commit it made has its verdict.
type soakReport struct {
	Txns       []check.Txn `json:"txns"`
	Acked      int         `json:"acked"`
	Aborted    int         `json:"aborted"`
	InDoubt    int         `json:"in_doubt"`   // resolved with ErrInDoubt
	Unresolved int         `json:"unresolved"` // no verdict by the deadline
	Atomically int         `json:"atomically"` // of Txns, committed with Atomically
	Created    int         `json:"created"`    // acknowledged cell creations
	Skipped    int         `json:"skipped"`    // Runs refused with ErrNotInShare (a cell whose creation was undone)
	Audits     int         `json:"audits"`
	Errors     []string    `json:"errors"` // broken invariants, unexpected errors
	// Creates says which transaction created which cell (for diagnosis).
	Creates []soakCreate `json:"creates"`
}

type soakCreate struct {
	Txn  check.TxnID `json:"txn"`
	Cell string      `json:"cell"`
}

func (r *soakReport) errorf(format string, args ...any) {
	if len(r.Errors) < 20 {
		r.Errors = append(r.Errors, fmt.Sprintf(format, args...))
	}
}

// soakKey names a cell's register or list for the checker.
func soakKey(kind string, o *stm.Object) string { return soakIDKey(kind, stm.IDOf(o)) }

func soakIDKey(kind string, id wire.ObjectID) string {
	return kind + " " + strconv.FormatUint(id.Replica, 10) + ":" + strconv.FormatUint(id.Seq, 10)
}

// soakMain is a client process of TestSoak. It connects to addr (the
// proxy), runs transactions until its stdin is closed, waits until each
// has its verdict, writes its soakReport to outfile and exits (1 if it
// could not run). It prints "progress <txns> <acked> <aborted>" lines
// every second.
func soakMain(args string) int {
	f := strings.Fields(args)
	if len(f) != 4 {
		fmt.Fprintln(os.Stderr, "usage: addr replica seed outfile")
		return 2
	}
	addr, out := f[0], f[3]
	replica, err1 := strconv.ParseUint(f[1], 10, 64)
	seed, err2 := strconv.ParseUint(f[2], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	stop := make(chan struct{})
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		close(stop)
	}()
	// Nothing may block for ever: the test has its own deadline, this is
	// a backstop.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Hour)
	defer cancel()
	c, s, err := soakDial(ctx, addr, replica, seed)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer c.Close()
	w := &soakWorker{s: s, replica: replica, rng: rand.New(rand.NewPCG(seed, replica))}
	for _, r := range s.Records() {
		if stm.IDOf(r).Replica == seedReplica && len(w.regs) < soakRegs {
			w.regs = append(w.regs, r)
		}
	}
	if len(w.regs) != soakRegs {
		fmt.Fprintf(os.Stderr, "%d register cells, want %d\n", len(w.regs), soakRegs)
		return 1
	}
	w.full = map[wire.ObjectID]bool{}
	progress := time.NewTicker(time.Second)
	defer progress.Stop()
	go func() {
		for range progress.C {
			fmt.Printf("progress %d %d %d\n", w.started.Load(), w.acked.Load(), w.aborted.Load())
		}
	}()

	stopped := w.run(ctx, stop)
	rep := w.finish(ctx, c)
	for _, e := range rep.Errors {
		fmt.Fprintln(os.Stderr, e)
	}
	b, err := json.Marshal(rep)
	if err == nil {
		err = os.WriteFile(out, b, 0o644)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if !stopped {
		return 1 // the workload failed before it was told to stop
	}
	return 0
}

// soakDial dials addr until it gets through (the proxy may reset the
// first attempts, the server may be down) and opens the soak share.
func soakDial(ctx context.Context, addr string, replica, seed uint64) (*client.Client, *client.Share, error) {
	deadline := time.Now().Add(2 * time.Minute)
	var last error
	for wait := 10 * time.Millisecond; time.Now().Before(deadline); wait = min(2*wait, 500*time.Millisecond) {
		dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		c, err := client.Dial(dctx, transport.TCPDialer(nil, wire.Limits{}), addr, client.Options{
			Replica: replica, Token: token, Rand: rand.NewPCG(seed, 17),
			MinBackoff: 5 * time.Millisecond, MaxBackoff: 200 * time.Millisecond})
		if err == nil {
			var s *client.Share
			// Open waits through reconnections; the bound is for a share
			// that never comes.
			s, err = c.Open(dctx, soakShare, soakCell)
			if err == nil {
				cancel()
				return c, s, nil
			}
			c.Close()
		}
		cancel()
		last = err
		time.Sleep(wait) // backoff between attempts: nothing to await
	}
	return nil, nil, fmt.Errorf("could not open the share: %w", last)
}

// soakWorker runs one process's transactions, in order.
type soakWorker struct {
	s       *client.Share
	replica uint64
	rng     *rand.Rand
	regs    []*stm.Object          // the register and balance cells
	full    map[wire.ObjectID]bool // cells whose list was seen at soakCap
	vals    uint64                 // the last value written (low bits)
	txns    []*soakTxn             // every transaction sent, in order
	flight  []*soakTxn             // Run commits maybe awaiting their verdict
	rep     soakReport
	started atomic.Int64
	acked   atomic.Int64
	aborted atomic.Int64
}

// soakTxn is one recorded transaction: the ops of its committed run and
// how it ended.
type soakTxn struct {
	txn     check.Txn
	h       *stm.Handle // Run; nil for Atomically, whose outcome is in txn
	end     atomic.Int64
	created bool
	cell    wire.ObjectID // the cell it created, if created
}

// value returns a value unique in the whole run: the replica id above
// bit 40, a counter below.
func (w *soakWorker) value() uint64 {
	w.vals++
	return w.replica<<40 | w.vals
}

// run runs transactions until stop is closed (it returns true) or a
// transaction fails (false).
func (w *soakWorker) run(ctx context.Context, stop chan struct{}) bool {
	for n := uint64(1); ; n++ {
		select {
		case <-stop:
			return true
		default:
		}
		if n%25 == 0 {
			w.audit(ctx)
		}
		if !w.room(ctx, stop) {
			return ctx.Err() == nil
		}
		if err := w.txn(ctx, n); err != nil {
			w.rep.errorf("transaction %d: %v", n, err)
			return false
		}
	}
}

// room waits until fewer than soakPending Run commits await their
// verdict; it returns false if stop came first.
func (w *soakWorker) room(ctx context.Context, stop chan struct{}) bool {
	for {
		kept := w.flight[:0]
		for _, t := range w.flight {
			if t.h.Status() == stm.Applied {
				kept = append(kept, t)
			}
		}
		clear(w.flight[len(kept):])
		w.flight = kept
		if len(w.flight) < soakPending {
			return true
		}
		select {
		case <-w.flight[0].h.Done():
		case <-stop:
			return false
		case <-ctx.Done():
			return false
		}
	}
}

type soakOp struct {
	cell *stm.Object
	list bool
	read bool
}

// txn runs transaction n: one or two reads and one or two writes
// (register writes, list appends) on random cells, and in a third of them
// a transfer between two balances. Four in five are sent with Run without
// waiting, the others with Atomically.
func (w *soakWorker) txn(ctx context.Context, n uint64) error {
	open := w.openLists(ctx)
	create := len(open) < soakOpen
	var plan []soakOp
	pick := func(read bool) soakOp {
		if len(open) > 0 && w.rng.IntN(2) == 0 {
			return soakOp{cell: open[w.rng.IntN(len(open))], list: true, read: read}
		}
		return soakOp{cell: w.regs[w.rng.IntN(len(w.regs))], read: read}
	}
	for range 1 + w.rng.IntN(2) {
		plan = append(plan, pick(true))
	}
	for range 1 + w.rng.IntN(2) {
		plan = append(plan, pick(false))
	}
	w.rng.Shuffle(len(plan), func(a, b int) { plan[a], plan[b] = plan[b], plan[a] })
	from, to := -1, w.rng.IntN(soakRegs)
	amount := int64(1 + w.rng.IntN(30))
	if w.rng.IntN(3) == 0 {
		from = w.rng.IntN(soakRegs)
	}

	t := &soakTxn{created: create}
	t.txn = check.Txn{ID: check.TxnID{Replica: w.replica, Seq: n}, Share: soakShare, Session: w.replica}
	var ops []check.Op
	fn := func(tx *stm.Tx) error {
		ops = nil // fn may run more than once: only the committed run counts
		if create {
			t.cell = stm.IDOf(w.s.Create(tx, soakCell))
		}
		if from >= 0 && from != to {
			src, dst := soakBalance.Of(w.regs[from]), soakBalance.Of(w.regs[to])
			if src.Get(tx) >= amount {
				src.Set(tx, src.Get(tx)-amount)
				dst.Set(tx, dst.Get(tx)+amount)
			}
		}
		for _, o := range plan {
			switch {
			case o.read && o.list:
				var seen []uint64
				for _, x := range soakItems.Of(o.cell).All(tx) {
					seen = append(seen, uint64(x))
				}
				ops = append(ops, check.Op{Kind: check.ReadList, Key: soakKey("list", o.cell), List: seen})
			case o.read:
				ops = append(ops, check.Op{Kind: check.ReadReg, Key: soakKey("reg", o.cell), Value: uint64(soakValue.Of(o.cell).Get(tx))})
			case o.list:
				v := w.value()
				soakItems.Of(o.cell).Append(tx, int64(v))
				ops = append(ops, check.Op{Kind: check.Append, Key: soakKey("list", o.cell), Value: v})
			default:
				v := w.value()
				soakValue.Of(o.cell).Set(tx, int64(v))
				ops = append(ops, check.Op{Kind: check.Write, Key: soakKey("reg", o.cell), Value: v})
			}
		}
		return nil
	}

	t.txn.Start = time.Now().UnixNano()
	if w.rng.IntN(5) == 0 {
		err := w.s.Atomically(ctx, fn)
		if errors.Is(err, client.ErrNotInShare) {
			w.rep.Skipped++ // as with Run below
			return nil
		}
		t.txn.End = time.Now().UnixNano()
		t.txn.Ops = ops
		var ae *client.AbortError
		switch {
		case err == nil:
			// Acknowledged, but Atomically does not say with which
			// version: the checker orders it by what others read.
			t.txn.Outcome = check.Acknowledged
			w.acked.Add(1)
		case errors.As(err, &ae):
			t.txn.Outcome = check.Aborted
			w.aborted.Add(1)
		case errors.Is(err, client.ErrInDoubt):
			t.txn.End = 0 // Unknown
			w.rep.InDoubt++
		default:
			return fmt.Errorf("atomically: %w", err)
		}
		w.rep.Atomically++
		w.started.Add(1)
		w.txns = append(w.txns, t)
		return nil
	}
	h, err := w.s.Run(ctx, fn)
	switch {
	case errors.Is(err, client.ErrNotInShare):
		// A list of a cell whose creation was undone meanwhile: nothing
		// was sent.
		w.rep.Skipped++
		return nil
	case err != nil:
		return fmt.Errorf("run: %w", err)
	}
	t.txn.Ops = ops
	t.h = h
	h.OnDone(func(h *stm.Handle) {
		t.end.Store(time.Now().UnixNano())
		if h.Status() == stm.Acknowledged {
			w.acked.Add(1)
		} else {
			w.aborted.Add(1)
		}
	})
	w.started.Add(1)
	w.txns = append(w.txns, t)
	w.flight = append(w.flight, t)
	return nil
}

// openLists returns the cells whose list takes appends: the first
// soakOpen cells, in id order, not seen at soakCap (including cells whose
// creation by this process still awaits its verdict).
func (w *soakWorker) openLists(ctx context.Context) []*stm.Object {
	var cand []*stm.Object
	for _, r := range w.s.Records() {
		id := stm.IDOf(r)
		if !w.full[id] {
			cand = append(cand, r)
		}
	}
	var open []*stm.Object
	_ = w.s.View(ctx, func(tx *stm.Tx) error {
		open = open[:0]
		for _, r := range cand {
			if len(open) == soakOpen {
				break
			}
			if soakItems.Of(r).Len(tx) >= soakCap {
				w.full[stm.IDOf(r)] = true
			} else {
				open = append(open, r)
			}
		}
		return nil
	})
	return open
}

// audit checks on a snapshot that the balances hold their total.
func (w *soakWorker) audit(ctx context.Context) {
	var total int64
	err := w.s.View(ctx, func(tx *stm.Tx) error {
		total = 0
		for _, r := range w.regs {
			total += soakBalance.Of(r).Get(tx)
		}
		return nil
	})
	w.rep.Audits++
	if err == nil && total != soakRegs*soakStart {
		w.rep.errorf("audit %d: the balances total %d, want %d", w.rep.Audits, total, soakRegs*soakStart)
	}
}

// finish waits until every commit has its verdict (the server may be
// restarting: the wait is generous) and returns the report.
func (w *soakWorker) finish(ctx context.Context, c *client.Client) *soakReport {
	fctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	if err := c.Flush(fctx); err != nil {
		w.rep.errorf("flush: %v", err)
	}
	for _, t := range w.txns {
		if t.h == nil { // Atomically: known already
			if t.created && t.txn.Outcome == check.Acknowledged {
				w.rep.Created++
			}
			w.rep.Txns = append(w.rep.Txns, t.txn)
			continue
		}
		select {
		case <-t.h.Done():
		case <-fctx.Done():
		}
		x := t.txn
		x.End = t.end.Load()
		switch t.h.Status() {
		case stm.Acknowledged:
			x.Outcome, x.Version = check.Acknowledged, t.h.Version()
			if t.created {
				w.rep.Created++
			}
		case stm.Aborted:
			x.Outcome = check.Aborted
		case stm.InDoubt:
			w.rep.InDoubt++
			x.End = 0
		default:
			w.rep.Unresolved++
			x.End = 0
		}
		w.rep.Txns = append(w.rep.Txns, x)
	}
	for _, t := range w.txns {
		if t.created {
			w.rep.Creates = append(w.rep.Creates, soakCreate{t.txn.ID, soakIDKey("list", t.cell)})
		}
	}
	for _, t := range w.rep.Txns {
		switch t.Outcome {
		case check.Acknowledged:
			w.rep.Acked++
		case check.Aborted:
			w.rep.Aborted++
		}
	}
	if w.rep.InDoubt > 0 {
		w.rep.errorf("%d commits in doubt (the session ended?): %v", w.rep.InDoubt, c.Err())
	}
	if w.rep.Unresolved > 0 {
		w.rep.errorf("%d commits without a verdict after the run", w.rep.Unresolved)
	}
	if err := w.s.Err(); err != nil {
		w.rep.errorf("the share failed: %v", err)
	}
	return &w.rep
}
