package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/weft-stm/weft/client"
	"github.com/weft-stm/weft/server"
	"github.com/weft-stm/weft/stm"
	"github.com/weft-stm/weft/store/pebblestore"
	"github.com/weft-stm/weft/store/redisstore"
	"github.com/weft-stm/weft/wire"
)

// weft rows of the durable suite: in-process servers built by server.Open
// on a store, as a deployment runs them, and clients over loopback TCP.
// Every row also reads its store directly (Store.Load) to check that what
// the server acknowledged is really there: a server that ignored its
// store would otherwise report in-memory throughput as durable.

// restartTimeout bounds the slow steps of restart-1m: seeding, restoring
// and transferring a share of restartObjects.
var restartTimeout = 5 * time.Minute

// restartHistory is how many commits restart-1m makes to its large share
// before the logged ones (-restart-history), by a server checkpointing as
// by default, so that the store is as such a history leaves it; 0 makes
// none. historyTimeout bounds them.
var (
	setupProgress          io.Writer = os.Stderr // run's progress writer
	restartHistory         int
	historyTimeout         = 2 * time.Hour
	historyCheckpointEvery = server.DefaultCheckpointEvery // smaller in tests
)

// errNotPersisted marks a server that acknowledged commits its store does
// not hold at all: Config.Store is not (yet) honoured. The rows skip on it
// rather than fail, saying so; a store holding only part of what was
// acknowledged fails the row.
var errNotPersisted = errors.New("server does not persist to Config.Store: acknowledged commits are not in the store")

// A storeOpener makes a fresh, empty store for one instance; release
// removes what it made (the store itself is closed by the caller).
type storeOpener func() (st server.Store, release func() error, err error)

// openPebbleStore opens a Pebble store in a fresh temporary directory.
func openPebbleStore() (server.Store, func() error, error) {
	dir, err := os.MkdirTemp("", "bench-weft-pebble-")
	if err != nil {
		return nil, nil, err
	}
	st, err := pebblestore.Open(dir, pebblestore.Options{})
	if err != nil {
		os.RemoveAll(dir)
		return nil, nil, err
	}
	return st, func() error { return os.RemoveAll(dir) }, nil
}

// openRedisStore starts a redis-server fsyncing every write (which
// redisstore insists on) and opens a Redis store on it. No redis-server is
// ErrSkip.
func openRedisStore() (server.Store, func() error, error) {
	srv, err := startRedis(redisOptions{fsyncAlways: true})
	if err != nil {
		return nil, nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	st, err := redisstore.Open(ctx, "redis://"+srv.addr+"/0", redisstore.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		srv.stop()
		return nil, nil, err
	}
	return st, srv.stop, nil
}

// closeStore closes st; a store the server closed already is not an error.
func closeStore(st server.Store) error {
	err := st.Close()
	if errors.Is(err, pebblestore.ErrClosed) || errors.Is(err, redisstore.ErrClosed) {
		return nil
	}
	return err
}

// A storedShare is what a store holds of one share, replayed: its
// checkpoint, the changes after it, and the value of every Cell.
type storedShare struct {
	checkpoint uint64 // version of the checkpoint, 0 if none
	objects    int    // objects in the checkpoint
	changes    int    // changes after it
	version    uint64 // the last version
	cells      map[wire.ObjectID]int64
}

// loadShare replays share from st (nil if st holds no such share),
// checking that its changes follow the checkpoint without gaps.
func loadShare(st server.Store, share string) (*storedShare, error) {
	var got *storedShare
	valueField, cellClass := uint32(CellFields.Value.ID()), uint32(CellClass.ID())
	err := st.Load(func(name string, version uint64, objects []wire.Object, changes []wire.Change) error {
		if name != share {
			return nil
		}
		s := &storedShare{checkpoint: version, objects: len(objects), changes: len(changes), version: version,
			cells: map[wire.ObjectID]int64{}}
		for _, o := range objects {
			if o.Class != cellClass {
				continue
			}
			s.cells[o.ID] = 0
			for _, f := range o.Fields {
				if f.ID == valueField {
					s.cells[o.ID] = f.Value.Int()
				}
			}
		}
		for _, ch := range changes {
			if ch.Version != s.version+1 {
				return fmt.Errorf("share %s: change of version %d follows version %d", name, ch.Version, s.version)
			}
			s.version = ch.Version
			for _, op := range ch.Writes {
				switch {
				case op.Kind == wire.OpCreate && op.Class == cellClass:
					s.cells[op.Object] = 0
					for _, f := range op.Fields {
						if f.ID == valueField {
							s.cells[op.Object] = f.Value.Int()
						}
					}
				case op.Kind == wire.OpSetField && op.Field == valueField:
					s.cells[op.Object] = op.Value.Int()
				}
			}
		}
		got = s
		return nil
	})
	return got, err
}

// openStored is server.Open on st with weftConfig, served on loopback.
func openStored(st server.Store, checkpointEvery int) (*weftEnv, error) {
	cfg := weftConfig()
	cfg.Store, cfg.CheckpointEvery = st, checkpointEvery
	srv, err := server.Open(cfg)
	if err != nil {
		return nil, err
	}
	return serveWeft(srv)
}

// cellAt returns the Cell with id seedID(n) in s.
func cellAt(s *client.Share, n uint64) (Cell, error) {
	x, ok := s.Object(seedID(n))
	if !ok {
		return Cell{}, fmt.Errorf("share %s has no object %v", s.Name(), seedID(n))
	}
	o, _ := x.(*stm.Object)
	c, ok := AsCell(o)
	if !ok {
		return Cell{}, fmt.Errorf("share %s: object %v is not a Cell", s.Name(), seedID(n))
	}
	return c, nil
}

// weftDurable: a server on the store open makes, 64 committers each
// incrementing the Cell of a share of its own in Atomically: one op is one
// commit acknowledged once durable. A share per committer keeps the case
// about durability (what a store alone does): with one share every commit
// would also reach the 63 other replicas, which fanout-1w-8r measures.
// The committers are 64 clients (64 connections), or, with oneClient, 64
// goroutines of one client, as one application would commit.
func weftDurable(open storeOpener, oneClient bool) func() (*Instance, error) {
	return func() (*Instance, error) {
		st, release, err := open()
		if err != nil {
			return nil, err
		}
		e, err := openStored(st, 0)
		if err != nil {
			closeStore(st)
			release()
			return nil, err
		}
		closeAll := func() error {
			return errors.Join(e.close(), closeStore(st), release())
		}
		fail := func(err error) (*Instance, error) {
			closeAll()
			return nil, err
		}
		shareOf := func(i int) string { return fmt.Sprintf("durable-%d", i) }
		seeded := make([]uint64, durableClients)
		for i := range durableClients {
			if seeded[i], err = e.seedCells(shareOf(i), 1); err != nil {
				return fail(err)
			}
			// The seeding was acknowledged, so it must be in the store; a
			// store holding nothing means the server does not use it.
			switch got, err := loadShare(st, shareOf(i)); {
			case err != nil:
				return fail(err)
			case got == nil:
				return fail(skipRow("%v", errNotPersisted))
			case got.version != seeded[i] || len(got.cells) != 1:
				return fail(fmt.Errorf("store holds version %d and %d cells of %s, the server acknowledged version %d with 1",
					got.version, len(got.cells), shareOf(i), seeded[i]))
			}
		}
		inst := &Instance{
			Check: func(ops []uint64) error {
				for i := range durableClients {
					if err := e.check(shareOf(i), func(s *client.Share, tx *stm.Tx) error {
						c, err := cellAt(s, 1)
						if err != nil {
							return err
						}
						if got := c.Value(tx); uint64(got) != ops[i] {
							return fmt.Errorf("server: client %d's cell holds %d after %d commits", i, got, ops[i])
						}
						return nil
					}); err != nil {
						return err
					}
					// Every op returned, so every commit was acknowledged,
					// hence durable: the store must hold each one.
					got, err := loadShare(st, shareOf(i))
					if err != nil {
						return err
					}
					if got == nil {
						return errNotPersisted
					}
					if want := seeded[i] + ops[i]; got.version != want {
						return fmt.Errorf("store: share %s at version %d, want %d (%d commits acknowledged after seeding)", shareOf(i), got.version, want, ops[i])
					}
					if v := got.cells[seedID(1)]; uint64(v) != ops[i] {
						return fmt.Errorf("store: client %d's cell holds %d after %d commits", i, v, ops[i])
					}
				}
				return nil
			},
			Close: closeAll,
		}
		ctx := context.Background()
		var shared *client.Client
		if oneClient {
			if shared, err = e.dialClient(false); err != nil {
				return fail(err)
			}
		}
		for i := range durableClients {
			var s *client.Share
			if shared != nil {
				octx, cancel := context.WithTimeout(ctx, opTimeout)
				s, err = shared.Open(octx, shareOf(i), replicationClasses...)
				cancel()
			} else {
				s, err = e.open(shareOf(i))
			}
			if err != nil {
				return fail(err)
			}
			cell, err := cellAt(s, 1)
			if err != nil {
				return fail(err)
			}
			fn := func(tx *stm.Tx) error {
				cell.SetValue(tx, cell.Value(tx)+1)
				return nil
			}
			inst.Workers = append(inst.Workers, func() error { return s.Atomically(ctx, fn) })
		}
		return inst, nil
	}
}

// Shares of restart-1m.
const (
	restartBig   = "big"
	restartSmall = "small"
	smallCells   = 10 // Cells of the small share
	logCells     = 64 // Cells of the big share the logged commits write
	logWindow    = 256
)

// weftRestart builds, untimed, a Pebble store holding a share of
// restartObjects Cells: a first server creates them (in commits of
// seedBatch) with CheckpointEvery set so that the last seeding commit
// writes a checkpoint; a second server, opened on the store, then commits
// restartLog single blind writes (CheckpointEvery now above that), so a
// restart loads the checkpoint and replays a log. The small share (10
// Cells) is what each op opens. One op restarts a server on the store
// until a client has the small share open; Check restarts once more and
// opens the large share in full.
func weftRestart() (*Instance, error) {
	dir, err := os.MkdirTemp("", "bench-restart-")
	if err != nil {
		return nil, err
	}
	release := func() error { return os.RemoveAll(dir) }
	seedCommits := (restartObjects + seedBatch - 1) / seedBatch
	st, err := pebblestore.Open(dir, pebblestore.Options{})
	if err != nil {
		release()
		return nil, err
	}

	// Phase 1: create the shares; the big share's checkpoint is written
	// by its last seeding commit (its changes: the open's epoch change,
	// then the seeding commits).
	e, err := openStored(st, seedCommits+1)
	if err != nil {
		closeStore(st)
		release()
		return nil, err
	}
	smallVer, err := e.seedCells(restartSmall, smallCells)
	var seeded uint64
	if err == nil {
		seeded, err = e.seedCells(restartBig, restartObjects)
	}
	if err != nil {
		err = fmt.Errorf("seeding the shares: %w", err)
	}
	if err = errors.Join(err, e.closeWithin(restartTimeout), closeStore(st)); err != nil {
		release()
		return nil, err
	}
	if st, err = pebblestore.Open(dir, pebblestore.Options{}); err != nil {
		release()
		return nil, err
	}
	got, err := loadShare(st, restartBig)
	switch {
	case err != nil:
	case got == nil:
		err = skipRow("%v", errNotPersisted)
	case got.checkpoint == 0:
		err = fmt.Errorf("store holds no checkpoint of share %s after %d commits with CheckpointEvery %d", restartBig, seedCommits, seedCommits+1)
	case got.version != seeded || len(got.cells) != restartObjects:
		err = fmt.Errorf("store holds share %s at version %d with %d cells, the server acknowledged version %d with %d",
			restartBig, got.version, len(got.cells), seeded, restartObjects)
	}
	if err != nil {
		closeStore(st)
		release()
		return nil, err
	}

	// Phase 1b (-restart-history): a restored server, checkpointing as
	// by default, commits the history; the store then holds its last
	// checkpoint and the changes after it (up to twice CheckpointEvery).
	cp, pre := seeded, 0
	seq := uint64(seedCommits + 1) // the seeding session's commit ids so far (one for the small share)
	if restartHistory > 0 {
		seeded, seq, err = writeHistory(st, seeded, seq)
		var got *storedShare
		if err == nil {
			got, err = loadShare(st, restartBig)
		}
		if err == nil && (got.version != seeded || len(got.cells) != restartObjects) {
			err = fmt.Errorf("store holds share %s at version %d with %d cells, the server acknowledged version %d with %d",
				restartBig, got.version, len(got.cells), seeded, restartObjects)
		}
		if err != nil {
			closeStore(st)
			release()
			return nil, fmt.Errorf("writing the history: %w", err)
		}
		cp, pre = got.checkpoint, got.changes
	}
	// The log's server adds its epoch change to the changes after cp.
	logEvery := 2*(pre+1+restartLog) + seedCommits // no checkpoint while the log is written or restored

	// Phase 2: a restored server commits the log.
	counts, err := writeLog(st, logEvery, seeded, seq)
	if err != nil {
		err = fmt.Errorf("writing the log: %w", err)
	}
	if err = errors.Join(err, closeStore(st)); err != nil {
		release()
		return nil, err
	}
	want, err := checkRestartStore(dir, cp, pre+1+restartLog, counts)
	if err != nil {
		release()
		return nil, err
	}

	// restart is one op: the store open to the small share open, timed;
	// it returns the running server and a stop function (untimed).
	restart := func() (time.Duration, *weftEnv, func() error, error) {
		start := time.Now()
		st, err := pebblestore.Open(dir, pebblestore.Options{})
		if err != nil {
			return 0, nil, nil, err
		}
		e, err := openStored(st, logEvery)
		if err != nil {
			closeStore(st)
			return 0, nil, nil, err
		}
		stop := func() error { return errors.Join(e.close(), closeStore(st)) }
		s, err := e.open(restartSmall)
		if err != nil {
			err = fmt.Errorf("restarted server: opening share %s: %w", restartSmall, err)
			return 0, nil, nil, errors.Join(err, stop())
		}
		took := time.Since(start)
		smallVer++ // the open's epoch change (authority/epoch.go), kept in the store
		if s.Version() != smallVer {
			return 0, nil, nil, errors.Join(fmt.Errorf("restarted server opened share %s at version %d, want %d", restartSmall, s.Version(), smallVer), stop())
		}
		if _, err := cellsOf(s, smallCells); err != nil {
			return 0, nil, nil, errors.Join(err, stop())
		}
		return took, e, stop, nil
	}
	var timed time.Duration
	var restarts uint64
	return &Instance{
		Workers: []func() error{func() error {
			took, _, stop, err := restart()
			if err != nil {
				return err
			}
			timed += took
			restarts++
			return stop()
		}},
		Elapsed: func() time.Duration { return timed },
		Check: func(ops []uint64) error {
			if restarts != ops[0] {
				return fmt.Errorf("%d restarts served the small share, %d ops counted", restarts, ops[0])
			}
			// The ops must have left the store as setup made it, or
			// the later ones measured another restart.
			if _, err := checkRestartStore(dir, cp, pre+1+restartLog, counts); err != nil {
				return fmt.Errorf("after %d restarts: %w", ops[0], err)
			}
			_, e, stop, err := restart()
			if err != nil {
				return err
			}
			err = e.checkBig(want, counts)
			return errors.Join(err, stop())
		},
		Close: release,
	}, nil
}

// writeHistory opens a server on st, checkpointing every
// historyCheckpointEvery changes as a default server does, and
// commits restartHistory blind writes to the big share after version
// from, through the seeding session (whose commit ids continue after seq;
// the server keeps verdicts across a restart): commit k sets Cell
// k%restartObjects+1 to k+1. It returns the share's version and the last
// commit id used.
func writeHistory(st server.Store, from, seq uint64) (uint64, uint64, error) {
	e, err := openStored(st, historyCheckpointEvery)
	if err != nil {
		return 0, 0, err
	}
	e.seedCommits = seq
	start := time.Now()
	valueField := uint32(CellFields.Value.ID())
	ver, err := e.seedGen(restartBig, logWindow, historyTimeout, restartHistory, func(k int) []wire.Op {
		return []wire.Op{{Kind: wire.OpSetField, Object: seedID(uint64(k%restartObjects) + 1), Field: valueField, Value: wire.Int(int64(k + 1))}}
	}, func(n int) {
		fmt.Fprintf(setupProgress, "durable/restart-1m setup: %d of %d history commits (%.0f/s)\n", n, restartHistory, float64(n)/time.Since(start).Seconds())
	})
	// The open's epoch change (authority/epoch.go), then the history.
	if want := from + 1 + uint64(restartHistory); err == nil && ver != want {
		err = fmt.Errorf("history reached version %d, want %d", ver, want)
	}
	return ver, e.seedCommits, errors.Join(err, e.closeWithin(restartTimeout))
}

// writeLog opens a server on st (restoring what the phases before wrote)
// and commits restartLog blind writes to the big share through the
// seeding session, after commit id seq, at most logWindow in flight so
// that the store can sync many at once: commit k sets Cell k%logCells+1 to
// the number of commits to it so far. It returns each of those Cells'
// final value.
func writeLog(st server.Store, checkpointEvery int, seeded, seq uint64) ([]int64, error) {
	e, err := openStored(st, checkpointEvery)
	if err != nil {
		return nil, err
	}
	// Commit ids of the seeding replica continue those the phases before
	// used, since the server keeps verdicts across a restart.
	e.seedCommits = seq
	counts := make([]int64, logCells)
	batches := make([][]wire.Op, restartLog)
	for k := range batches {
		c := k % logCells
		counts[c]++
		batches[k] = []wire.Op{{Kind: wire.OpSetField, Object: seedID(uint64(c) + 1),
			Field: uint32(CellFields.Value.ID()), Value: wire.Int(counts[c])}}
	}
	ver, err := e.seedWindow(restartBig, logWindow, restartTimeout, batches...)
	// The open's epoch change (authority/epoch.go), then the log.
	if want := seeded + 1 + uint64(restartLog); err == nil && ver != want {
		err = fmt.Errorf("log commits reached version %d, want %d: share %s not restored at version %d?", ver, want, restartBig, seeded)
	}
	return counts, errors.Join(err, e.closeWithin(restartTimeout))
}

// checkRestartStore opens the store in dir and checks that the big share
// has a checkpoint at cp followed by changes changes, the last of them the
// log's, with the values they wrote; it returns the share's last version.
func checkRestartStore(dir string, cp uint64, changes int, counts []int64) (uint64, error) {
	st, err := pebblestore.Open(dir, pebblestore.Options{})
	if err != nil {
		return 0, err
	}
	got, err := loadShare(st, restartBig)
	err = errors.Join(err, closeStore(st))
	switch {
	case err != nil:
		return 0, err
	case got == nil:
		return 0, fmt.Errorf("store holds no share %s", restartBig)
	case got.checkpoint != cp || got.changes != changes:
		return 0, fmt.Errorf("store holds share %s as a checkpoint at version %d and %d changes, want a checkpoint at %d and %d changes",
			restartBig, got.checkpoint, got.changes, cp, changes)
	case len(got.cells) != restartObjects:
		return 0, fmt.Errorf("store holds %d cells of share %s, want %d", len(got.cells), restartBig, restartObjects)
	}
	for i, n := range counts {
		if v := got.cells[seedID(uint64(i)+1)]; v != n {
			return 0, fmt.Errorf("store: cell %d of share %s holds %d, want %d", i+1, restartBig, v, n)
		}
	}
	return got.version, nil
}

// checkBig opens the big share with a fresh client and checks that it
// holds every Cell, at the logged version, with the logged values.
func (e *weftEnv) checkBig(version uint64, counts []int64) error {
	c, err := e.dialClient(true)
	if err != nil {
		return err
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), restartTimeout)
	defer cancel()
	s, err := c.Open(ctx, restartBig, replicationClasses...)
	if err != nil {
		return err
	}
	if s.Version() != version+1 { // and the open's epoch change
		return fmt.Errorf("restarted server opened share %s at version %d, want %d", restartBig, s.Version(), version+1)
	}
	if _, err := cellsOf(s, restartObjects); err != nil {
		return err
	}
	return s.View(ctx, func(tx *stm.Tx) error {
		for i, n := range counts {
			cell, err := cellAt(s, uint64(i)+1)
			if err != nil {
				return err
			}
			if v := cell.Value(tx); v != n {
				return fmt.Errorf("restarted server: cell %d of share %s holds %d, want %d", i+1, restartBig, v, n)
			}
		}
		return nil
	})
}
