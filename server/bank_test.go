package server

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/weft-stm/weft/transport"
	"github.com/weft-stm/weft/wire"
)

const (
	accounts = 100
	opening  = 1000
)

// bankClient is a raw client that keeps a replica of the accounts and
// checks that the versions it sees (Acks and Updates) have no gaps.
type bankClient struct {
	conn    transport.Conn
	replica uint64
	seq     uint64
	version uint64
	vars    map[wire.ObjectID]int64
	acks    int
	aborts  int
}

func (b *bankClient) recv(ctx context.Context) (wire.Message, error) {
	return b.conn.Recv(ctx)
}

// apply applies the writes of the commit that created version v.
func (b *bankClient) apply(v uint64, ops []wire.Op) error {
	if v != b.version+1 {
		return fmt.Errorf("replica %d: version %d after %d", b.replica, v, b.version)
	}
	b.version = v
	for _, op := range ops {
		if op.Kind == wire.OpVarSet {
			b.vars[op.Object] = op.Value.Int()
		}
	}
	return nil
}

// transfer moves money between two random accounts, retrying on conflict.
func (b *bankClient) transfer(ctx context.Context, rng *rand.Rand) error {
	from := oid(1, rng.Uint64N(accounts)+1)
	to := oid(1, rng.Uint64N(accounts)+1)
	for from == to {
		to = oid(1, rng.Uint64N(accounts)+1)
	}
	amount := rng.Int64N(50)
	for {
		b.seq++
		c := &wire.Commit{ID: wire.CommitID{Replica: b.replica, Seq: b.seq}, Share: 1, Snapshot: b.version,
			Reads:  []wire.Read{readWhole(from, b.version), readWhole(to, b.version)},
			Writes: []wire.Op{setVar(from, b.vars[from]-amount), setVar(to, b.vars[to]+amount)}}
		if err := b.conn.Send(ctx, c); err != nil {
			return err
		}
		for answered := false; !answered; {
			m, err := b.recv(ctx)
			if err != nil {
				return err
			}
			switch m := m.(type) {
			case *wire.Update:
				if err := b.apply(m.Version, m.Writes); err != nil {
					return err
				}
			case *wire.Ack:
				if m.ID != c.ID {
					return fmt.Errorf("ack for %v, want %v", m.ID, c.ID)
				}
				b.acks++
				return b.apply(m.Version, c.Writes)
			case *wire.Abort:
				if m.ID != c.ID || m.Code != wire.CodeConflict {
					return fmt.Errorf("abort %+v", m)
				}
				b.aborts++
				answered = true // the Updates that beat it have arrived: retry
			default:
				return fmt.Errorf("unexpected %T", m)
			}
		}
	}
}

func TestBankTransfers(t *testing.T) {
	for _, tc := range []struct {
		name  string
		start func(testing.TB, Config) *harness
	}{{"mem", startMem}, {"tcp", startTCP}} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := openConfig(t)
			cfg.Logger = slog.New(slog.DiscardHandler) // a debug log per commit is too many
			h := tc.start(t, cfg)
			testBank(t, h, 4, 100)
		})
	}
}

func testBank(t *testing.T, h *harness, clients, transfers int) {
	// The bank opens with 100 accounts.
	setup := h.dial(1, "")
	base, _ := setup.open(1, "bank", 0) // at its epoch change
	var ops []wire.Op
	for i := range uint64(accounts) {
		ops = append(ops, createVar(oid(1, i+1), opening)...)
	}
	setup.ack(setup.commit(1, 0, nil, ops...).ID)
	setup.conn.Close()

	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	bcs := make([]*bankClient, clients)
	for i := range bcs {
		c := h.dial(uint64(10+i), "")
		op, frames := c.open(1, "bank", 0)
		bcs[i] = &bankClient{conn: c.conn, replica: c.replica, version: op.Version, vars: snapshotVars(t, frames)}
	}
	errs := make([]error, clients)
	var wg sync.WaitGroup
	for i, b := range bcs {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(i), 42))
			for range transfers {
				if err := b.transfer(ctx, rng); err != nil {
					errs[i] = err
					return
				}
			}
		})
	}
	wg.Wait()
	final := base.Version + 1 // the accounts
	aborts := 0
	for i, b := range bcs {
		if errs[i] != nil {
			t.Fatalf("client %d: %v", i, errs[i])
		}
		final += uint64(b.acks)
		aborts += b.aborts
	}
	t.Logf("%d transfers, %d conflicts retried", final-base.Version-1, aborts)

	// Every session receives every update, gap-free, and then nothing.
	_, state := h.state("bank")
	for i, b := range bcs {
		for b.version < final {
			m, err := b.recv(ctx)
			if err != nil {
				t.Fatal(err)
			}
			u, ok := m.(*wire.Update)
			if !ok {
				t.Fatalf("client %d: %T", i, m)
			}
			if err := b.apply(u.Version, u.Writes); err != nil {
				t.Fatal(err)
			}
		}
		(&client{t: t, conn: b.conn, nonce: 100}).quiet()
		if fmt.Sprint(b.vars) != fmt.Sprint(state) {
			t.Errorf("client %d's replica differs from the server's state", i)
		}
	}
	total := int64(0)
	for _, v := range state {
		total += v
	}
	if len(state) != accounts || total != accounts*opening {
		t.Fatalf("%d accounts, total %d, want %d", len(state), total, accounts*opening)
	}
}
