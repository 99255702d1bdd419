package main

import (
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"strconv"

	"github.com/cockroachdb/pebble/v2"
)

// Suite durable (issue #5): acknowledged commits that survive a crash,
// with a weft server persisting to a store (Pebble, Redis), beside the
// stores alone; and how long a server holding a large share takes to
// restart. The weft rows live in suite_durable_weft.go, the raw store rows
// here.

// sysPebble is the raw Pebble row (sysRedis, the raw Redis row, is the
// replication suite's).
const sysPebble = "pebble"

// durableClients is the number of concurrent committers of durable-64c.
const durableClients = 64

// Sizes of restart-1m; tests shrink them.
var (
	restartObjects = 1_000_000 // Cells of the large share
	restartLog     = 10_000    // single commits in the log after its checkpoint
)

func durableSuite() *Suite {
	return &Suite{
		Name:      "durable",
		Doc:       "durable (fsynced) commits through a weft server on a store, beside the store alone; restart time",
		Reference: sysWeft,
		Cases: []Case{
			{
				Name: "durable-64c",
				Doc:  "64 concurrent committers, each commit acknowledged once durable (Pebble)",
				Unit: "commits/s",
				Rows: []Row{
					weftRow("in-process weft server (server.Open) on a Pebble store (store/pebblestore) in a fresh temp dir; 64 clients over loopback TCP, each Atomically incrementing the Cell of a share of its own (with one shared share every commit would also go to the 63 other replicas: fanout-1w-8r measures that)",
						weftDurable(openPebbleStore, false)),
					{System: sysPebble, Note: "github.com/cockroachdb/pebble/v2 in a fresh temp dir, 64 goroutines each Set(own key, 8 bytes, pebble.Sync)",
						Setup: pebbleSync},
					{System: sysTCPEcho, Note: "bare loopback TCP echo server, 64 clients, 64-byte frames, a goroutine per connection on both sides: the round trips/s 64 connections allow on this machine, whatever the server does (each commit is one round trip)",
						Setup: func() (*Instance, error) { return tcpEcho(durableClients) }},
				},
			},
			{
				Name: "durable-64g",
				Doc:  "64 goroutines of one application committing through one client (one connection), each commit acknowledged once durable (Pebble)",
				Unit: "commits/s",
				Rows: []Row{
					weftRow("the server of durable-64c; one client over loopback TCP with the 64 shares open, 64 goroutines each Atomically incrementing the Cell of its share",
						weftDurable(openPebbleStore, true)),
					{System: sysPebble, Note: "as in durable-64c: 64 goroutines each Set(own key, 8 bytes, pebble.Sync)",
						Setup: pebbleSync},
				},
			},
			{
				Name: "durable-64c-redis",
				Doc:  "64 concurrent committers, each commit acknowledged once durable (Redis, appendfsync always)",
				Unit: "commits/s",
				Rows: []Row{
					weftRow("the weft workload of durable-64c on a Redis store (store/redisstore) against redis-server --appendonly yes --appendfsync always",
						weftDurable(openRedisStore, false)),
					{System: sysRedis, Note: "redis-server --appendonly yes --appendfsync always, 64 go-redis connections each SET own key",
						Setup: redisDurableSet},
				},
			},
			{
				Name:         "restart-1m",
				Doc:          "a server whose Pebble store holds a share of 1,000,000 objects (checkpoint + 10,000 logged commits): store open to serving a small share",
				Unit:         "s",
				SecondsPerOp: true,
				Rows: []Row{weftRow("one op: pebblestore.Open, server.Open (restores every share), listen, Serve, dial a client, Open a small other share; closing them afterwards is not timed",
					weftRestart)},
			},
		},
	}
}

// ---- pebble ----

// pebbleSync: 64 goroutines each writing its own key, every Set synced
// (pebble.Sync), so each returns once the write is on disk; Pebble
// commits concurrent Sets in one WAL sync. Each key holds the number of
// its goroutine's writes.
func pebbleSync() (*Instance, error) {
	dir, err := os.MkdirTemp("", "bench-pebble-")
	if err != nil {
		return nil, err
	}
	db, err := pebble.Open(dir, &pebble.Options{Logger: quietPebbleLogger{}})
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	keys := make([][]byte, durableClients)
	inst := &Instance{
		Check: func(ops []uint64) error {
			for i, k := range keys {
				v, closer, err := db.Get(k)
				if err != nil {
					return fmt.Errorf("key %s: %w", k, err)
				}
				got := binary.BigEndian.Uint64(v)
				closer.Close()
				if got != ops[i] {
					return fmt.Errorf("key %s holds %d after %d writes", k, got, ops[i])
				}
			}
			return nil
		},
		Close: func() error {
			defer os.RemoveAll(dir)
			return db.Close()
		},
	}
	for i := range keys {
		keys[i] = []byte("durable:" + strconv.Itoa(i))
		key, val := keys[i], make([]byte, 8)
		var n uint64
		inst.Workers = append(inst.Workers, func() error {
			n++
			binary.BigEndian.PutUint64(val, n)
			return db.Set(key, val, pebble.Sync)
		})
	}
	return inst, nil
}

// quietPebbleLogger drops Pebble's informational messages, as pebblestore
// does, so the raw row prints no more than the weft row.
type quietPebbleLogger struct{}

func (quietPebbleLogger) Infof(string, ...any) {}
func (quietPebbleLogger) Errorf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "pebble: "+format+"\n", args...)
}
func (quietPebbleLogger) Fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "pebble: "+format+"\n", args...)
	os.Exit(1)
}

// ---- redis ----

// redisDurableSet: 64 connections each SETting its own key to the number
// of its writes, against a redis-server that fsyncs its append-only file
// before replying (appendfsync always; it too batches the fsync of
// concurrent clients).
func redisDurableSet() (*Instance, error) {
	env, err := newRedisEnv(durableClients, redisOptions{fsyncAlways: true})
	if err != nil {
		return nil, err
	}
	ctx := context.Background()
	// The comparison is only fair if redis-server really fsyncs.
	if cfg, err := env.admin.ConfigGet(ctx, "append*").Result(); err != nil {
		env.close()
		return nil, err
	} else if cfg["appendonly"] != "yes" || cfg["appendfsync"] != "always" {
		env.close()
		return nil, fmt.Errorf("redis-server runs with appendonly %q, appendfsync %q, want yes, always", cfg["appendonly"], cfg["appendfsync"])
	}
	keys := make([]string, durableClients)
	inst := &Instance{
		Check: func(ops []uint64) error {
			vals, err := env.admin.MGet(ctx, keys...).Result()
			if err != nil {
				return err
			}
			for i, v := range vals {
				if want := strconv.FormatUint(ops[i], 10); v != want {
					return fmt.Errorf("key %s = %v after %d SETs", keys[i], v, ops[i])
				}
			}
			return nil
		},
		Close: env.close,
	}
	for i, c := range env.clients {
		keys[i] = "durable:" + strconv.Itoa(i)
		key := keys[i]
		var n uint64
		inst.Workers = append(inst.Workers, func() error {
			n++
			return c.Set(ctx, key, n, 0).Err()
		})
	}
	return inst, nil
}
