package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
)

// Peer rows of the replication suite. Everything listens on 127.0.0.1
// only, every wait is bounded, and each instance's Close stops what its
// Setup started (servers, connections, goroutines).

// Bounds on the waits of the replication peers.
var (
	serverStartTimeout = 10 * time.Second // redis-server answering PING, nats ready
	stopTimeout        = 5 * time.Second  // a server or goroutine stopping after Close
	opTimeout          = 10 * time.Second // one network read or write
	// fanoutDrainTimeout bounds how long Check waits for subscribers to
	// receive what was published.
	fanoutDrainTimeout = 10 * time.Second
)

// maxRMWAborts bounds the retries of one rmw-8c transaction.
const maxRMWAborts = 10_000

func sum(ops []uint64) uint64 {
	var n uint64
	for _, o := range ops {
		n += o
	}
	return n
}

// ---- tcp-echo ----

// tcpEchoRTT: a loopback TCP server echoing 64-byte frames to one client,
// which sends a numbered frame and waits for it to come back.
func tcpEchoRTT() (*Instance, error) { return tcpEcho(1) }

// tcpEcho: a loopback TCP server echoing 64-byte frames to n clients,
// each of which sends a numbered frame and waits for it to come back, a
// goroutine per connection on both sides, as Go servers do.
func tcpEcho(n int) (*Instance, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	var echoed atomic.Uint64
	var served sync.WaitGroup
	accepted := make(chan net.Conn, n)
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer served.Wait()
		for range n {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			accepted <- conn
			served.Go(func() {
				buf := make([]byte, rttFrameBytes)
				for {
					if _, err := io.ReadFull(conn, buf); err != nil {
						return
					}
					echoed.Add(1) // before the reply, so Check never runs ahead of it
					if _, err := conn.Write(buf); err != nil {
						return
					}
				}
			})
		}
	}()
	var conns []net.Conn
	// stop closes the connections, which ends the echo goroutines, and
	// waits for the server.
	stop := func() error {
		var err error
		for _, c := range conns {
			err = errors.Join(err, c.Close())
		}
		conns = nil
		ln.Close()
		for {
			select {
			case c := <-accepted:
				c.Close()
			case <-done:
				return err
			case <-time.After(stopTimeout):
				return errors.Join(err, errors.New("echo server did not stop"))
			}
		}
	}
	var workers []func() error
	for range n {
		conn, err := net.DialTimeout("tcp", ln.Addr().String(), opTimeout)
		if err != nil {
			stop()
			return nil, err
		}
		conns = append(conns, conn)
		out, in := make([]byte, rttFrameBytes), make([]byte, rttFrameBytes)
		var seq uint64
		workers = append(workers, func() error {
			seq++
			binary.BigEndian.PutUint64(out, seq)
			if _, err := conn.Write(out); err != nil {
				return err
			}
			if _, err := io.ReadFull(conn, in); err != nil {
				return err
			}
			if !bytes.Equal(in, out) {
				return fmt.Errorf("frame %d came back as %x", seq, in[:8])
			}
			return nil
		})
	}
	return &Instance{
		Workers: workers,
		Check: func(ops []uint64) error {
			var sum uint64
			for _, o := range ops {
				sum += o
			}
			if got := echoed.Load(); got != sum {
				return fmt.Errorf("server echoed %d frames, clients counted %d round trips", got, sum)
			}
			return nil
		},
		Close: stop,
	}, nil
}

// ---- redis-server ----

// redisServerBin is the redis-server the suite starts (looked up in PATH);
// tests point it at a missing name to check the skip.
var redisServerBin = "redis-server"

// A redisServer is a redis-server process of one instance, on a free
// loopback port, in a temporary directory.
type redisServer struct {
	cmd    *exec.Cmd
	dir    string
	addr   string
	out    bytes.Buffer // stdout and stderr, read once the process exited
	exited chan struct{}
}

// redisOptions say how a redis-server is started. The zero value persists
// nothing, as the replication suite wants: its rows measure the network
// and the server, not a disk.
type redisOptions struct {
	// fsyncAlways keeps an append-only file fsynced before every reply
	// (--appendonly yes --appendfsync always): what redisstore requires,
	// and the durability the durable suite compares.
	fsyncAlways bool
}

// args are redis-server's persistence arguments for o.
func (o redisOptions) args() []string {
	if o.fsyncAlways {
		return []string{"--save", "", "--appendonly", "yes", "--appendfsync", "always"}
	}
	return []string{"--save", "", "--appendonly", "no"}
}

// startRedis starts a redis-server and waits until it answers PING. A
// missing binary is ErrSkip.
func startRedis(opts redisOptions) (*redisServer, error) {
	bin, err := exec.LookPath(redisServerBin)
	if err != nil {
		return nil, skipRow("%s not found in PATH, redis rows need it (apt-get install redis-server)", redisServerBin)
	}
	// The free port is found by listening on it and closing it, so another
	// process may take it first: try a few.
	var errs []error
	for range 3 {
		srv, err := startRedisOnce(bin, opts)
		if err == nil {
			return srv, nil
		}
		errs = append(errs, err)
	}
	return nil, errors.Join(errs...)
}

func startRedisOnce(bin string, opts redisOptions) (*redisServer, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	dir, err := os.MkdirTemp("", "bench-redis-")
	if err != nil {
		return nil, err
	}
	s := &redisServer{dir: dir, addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), exited: make(chan struct{})}
	args := append([]string{"--port", strconv.Itoa(port), "--bind", "127.0.0.1"}, opts.args()...)
	args = append(args, "--dir", dir, "--daemonize", "no", "--logfile", "")
	s.cmd = exec.Command(bin, args...)
	s.cmd.Stdout, s.cmd.Stderr = &s.out, &s.out
	s.cmd.Dir = dir
	if err := s.cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	go func() { s.cmd.Wait(); close(s.exited) }()

	deadline := time.Now().Add(serverStartTimeout)
	for {
		if pingRedis(s.addr) == nil {
			return s, nil
		}
		select {
		case <-s.exited:
			os.RemoveAll(dir)
			return nil, fmt.Errorf("redis-server on port %d exited at start: %s", port, strings.TrimSpace(s.out.String()))
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			s.stop()
			return nil, fmt.Errorf("redis-server on %s did not answer PING within %v", s.addr, serverStartTimeout)
		}
	}
}

// pingRedis sends one PING over a fresh connection.
func pingRedis(addr string) error {
	conn, err := net.DialTimeout("tcp", addr, 100*time.Millisecond)
	if err != nil {
		return err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(500 * time.Millisecond))
	if _, err := io.WriteString(conn, "PING\r\n"); err != nil {
		return err
	}
	buf := make([]byte, 7)
	if _, err := io.ReadFull(conn, buf); err != nil {
		return err
	}
	if string(buf) != "+PONG\r\n" {
		return fmt.Errorf("PING answered %q", buf)
	}
	return nil
}

// stop terminates the server (SIGTERM, then SIGKILL) and removes its
// directory.
func (s *redisServer) stop() error {
	defer os.RemoveAll(s.dir)
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
		return nil
	case <-time.After(stopTimeout):
	}
	s.cmd.Process.Kill()
	select {
	case <-s.exited:
	case <-time.After(stopTimeout):
	}
	return fmt.Errorf("redis-server on %s ignored SIGTERM for %v; killed", s.addr, stopTimeout)
}

// newRedisClient is a go-redis client for one connection's worth of
// traffic. Retries are off: a retried INCR or SET could count twice.
func newRedisClient(addr string) *redis.Client {
	return redis.NewClient(&redis.Options{
		Addr:                     addr,
		Protocol:                 2,
		DisableIdentity:          true,
		MaxRetries:               -1,
		PoolSize:                 2,
		DialTimeout:              opTimeout,
		ReadTimeout:              opTimeout,
		WriteTimeout:             opTimeout,
		MaintNotificationsConfig: &maintnotifications.Config{Mode: maintnotifications.ModeDisabled},
	})
}

// A redisEnv is a redis-server with n clients and one more for checks.
type redisEnv struct {
	srv     *redisServer
	admin   *redis.Client
	clients []*redis.Client
}

func newRedisEnv(n int, opts redisOptions) (*redisEnv, error) {
	srv, err := startRedis(opts)
	if err != nil {
		return nil, err
	}
	e := &redisEnv{srv: srv, admin: newRedisClient(srv.addr)}
	for range n {
		e.clients = append(e.clients, newRedisClient(srv.addr))
	}
	return e, nil
}

func (e *redisEnv) close() error {
	var errs []error
	for _, c := range append(e.clients, e.admin) {
		errs = append(errs, c.Close())
	}
	errs = append(errs, e.srv.stop())
	return errors.Join(errs...)
}

// ---- redis rows ----

// redisChained: one client SETs the same 1000 keys to the op's number in
// a pipeline of 1000, so after n ops every key holds n.
func redisChained() (*Instance, error) {
	env, err := newRedisEnv(1, redisOptions{})
	if err != nil {
		return nil, err
	}
	ctx := context.Background()
	keys := make([]string, chainWindow)
	for i := range keys {
		keys[i] = "chain:" + strconv.Itoa(i)
	}
	pipe := env.clients[0].Pipeline()
	var round int64
	return &Instance{
		Workers: []func() error{func() error {
			round++
			for _, k := range keys {
				pipe.Set(ctx, k, round, 0)
			}
			cmds, err := pipe.Exec(ctx)
			if err != nil {
				return err
			}
			if len(cmds) != len(keys) {
				return fmt.Errorf("%d replies to %d SETs", len(cmds), len(keys))
			}
			for _, c := range cmds {
				if v := c.(*redis.StatusCmd).Val(); v != "OK" {
					return fmt.Errorf("SET answered %q", v)
				}
			}
			return nil
		}},
		Check: func(ops []uint64) error {
			vals, err := env.admin.MGet(ctx, keys...).Result()
			if err != nil {
				return err
			}
			want := strconv.FormatUint(ops[0], 10)
			for i, v := range vals {
				if v != want {
					return fmt.Errorf("key %s = %v after %d rounds, want %s", keys[i], v, ops[0], want)
				}
			}
			if n, err := env.admin.DBSize(ctx).Result(); err != nil || n != int64(len(keys)) {
				return fmt.Errorf("DBSIZE %d (%v), want %d", n, err, len(keys))
			}
			return nil
		},
		Close: env.close,
	}, nil
}

// redisRMW: 8 clients, each transaction increments a random one of 1000
// keys with WATCH/GET/MULTI/SET/EXEC, retried when EXEC aborts; the keys
// sum to the committed transactions.
func redisRMW() (*Instance, error) {
	env, err := newRedisEnv(replClients, redisOptions{})
	if err != nil {
		return nil, err
	}
	ctx := context.Background()
	keys := make([]string, replKeys)
	for i := range keys {
		keys[i] = "rmw:" + strconv.Itoa(i)
	}
	inst := &Instance{
		Check: func(ops []uint64) error {
			vals, err := env.admin.MGet(ctx, keys...).Result()
			if err != nil {
				return err
			}
			var total uint64
			for i, v := range vals {
				if v == nil {
					continue
				}
				n, err := strconv.ParseUint(v.(string), 10, 64)
				if err != nil {
					return fmt.Errorf("key %s: %v", keys[i], err)
				}
				total += n
			}
			if want := sum(ops); total != want {
				return fmt.Errorf("keys sum to %d, %d transactions committed", total, want)
			}
			return nil
		},
		Close: env.close,
	}
	for w, c := range env.clients {
		rng := rand.New(rand.NewPCG(uint64(w)+1, 0x5eed))
		var key string
		fn := func(tx *redis.Tx) error {
			v, err := tx.Get(ctx, key).Int64()
			if err != nil && err != redis.Nil {
				return err
			}
			_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
				p.Set(ctx, key, v+1, 0)
				return nil
			})
			return err
		}
		inst.Workers = append(inst.Workers, func() error {
			key = keys[rng.IntN(len(keys))]
			for range maxRMWAborts {
				err := c.Watch(ctx, fn, key)
				if err != redis.TxFailedErr {
					return err
				}
			}
			return fmt.Errorf("key %s: %d aborts in a row", key, maxRMWAborts)
		})
	}
	return inst, nil
}

// redisCounter: 8 clients INCR one key; it ends at the increments done,
// and each client sees the values it gets back rise.
func redisCounter() (*Instance, error) {
	env, err := newRedisEnv(replClients, redisOptions{})
	if err != nil {
		return nil, err
	}
	ctx := context.Background()
	const key = "counter"
	inst := &Instance{
		Check: func(ops []uint64) error {
			got, err := env.admin.Get(ctx, key).Uint64()
			if err == redis.Nil {
				got, err = 0, nil
			}
			if err != nil {
				return err
			}
			if want := sum(ops); got != want {
				return fmt.Errorf("counter %d after %d increments", got, want)
			}
			return nil
		},
		Close: env.close,
	}
	for _, c := range env.clients {
		var last int64
		inst.Workers = append(inst.Workers, func() error {
			v, err := c.Incr(ctx, key).Result()
			if err != nil {
				return err
			}
			if v <= last {
				return fmt.Errorf("INCR returned %d after %d", v, last)
			}
			last = v
			return nil
		})
	}
	return inst, nil
}

// ---- fanout ----

// A fanout tracks what each subscriber received of a publisher's numbered
// messages (1, 2, ...): each must arrive once, in order. The publisher
// waits when it runs fanoutWindow messages ahead of the slowest
// subscriber, so at most that many are in flight when the clock stops.
type fanout struct {
	got       []paddedCount
	published atomic.Uint64 // messages the publisher sent (or queued to send)
	wake      chan struct{}
	waiting   atomic.Bool
	mu        sync.Mutex
	err       error
}

type paddedCount struct {
	n atomic.Uint64
	_ [56]byte // one cache line per subscriber
}

func newFanout(subscribers int) *fanout {
	return &fanout{got: make([]paddedCount, subscribers), wake: make(chan struct{}, 1)}
}

// encodeSeq writes message number seq into buf's first 8 bytes.
func encodeSeq(buf []byte, seq uint64) { binary.BigEndian.PutUint64(buf, seq) }

// decodeSeq reads a message number from a payload.
func decodeSeq[T string | []byte](b T) (uint64, bool) {
	if len(b) < 8 {
		return 0, false
	}
	var v uint64
	for i := range 8 {
		v = v<<8 | uint64(b[i])
	}
	return v, true
}

func (f *fanout) fail(err error) {
	f.mu.Lock()
	if f.err == nil {
		f.err = err
	}
	f.mu.Unlock()
	select {
	case f.wake <- struct{}{}:
	default:
	}
}

func (f *fanout) failed() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.err
}

// deliver records that subscriber i received message seq.
func (f *fanout) deliver(i int, seq uint64, ok bool) {
	c := &f.got[i].n
	want := c.Load() + 1
	switch {
	case !ok:
		f.fail(fmt.Errorf("subscriber %d received a malformed message", i))
		return
	case seq < want:
		f.fail(fmt.Errorf("subscriber %d received message %d again (expected %d)", i, seq, want))
		return
	case seq > want:
		f.fail(fmt.Errorf("subscriber %d received message %d, messages %d..%d lost", i, seq, want, seq-1))
		return
	}
	c.Store(seq)
	if f.waiting.Load() {
		select {
		case f.wake <- struct{}{}:
		default:
		}
	}
}

func (f *fanout) slowest() uint64 {
	m := f.got[0].n.Load()
	for i := range f.got[1:] {
		m = min(m, f.got[i+1].n.Load())
	}
	return m
}

func (f *fanout) counts() []uint64 {
	out := make([]uint64, len(f.got))
	for i := range f.got {
		out[i] = f.got[i].n.Load()
	}
	return out
}

// await blocks until every subscriber received message n, for at most
// timeout.
func (f *fanout) await(n uint64, timeout time.Duration) error {
	if f.slowest() >= n {
		return f.failed()
	}
	defer f.waiting.Store(false)
	deadline := time.Now().Add(timeout)
	for {
		f.waiting.Store(true) // before the check: a delivery after it wakes us
		if err := f.failed(); err != nil {
			return err
		}
		if f.slowest() >= n {
			return nil
		}
		left := time.Until(deadline)
		if left <= 0 {
			return fmt.Errorf("subscribers received %v of %d messages within %v", f.counts(), n, timeout)
		}
		select {
		case <-f.wake:
		case <-time.After(min(left, 10*time.Millisecond)):
		}
	}
}

// publisher returns the worker publishing message 1, 2, ... with publish.
func (f *fanout) publisher(publish func(payload []byte) error) func() error {
	buf := make([]byte, 16)
	var seq uint64
	return func() error {
		seq++
		if seq > fanoutWindow {
			if err := f.await(seq-fanoutWindow, opTimeout); err != nil {
				return err
			}
		}
		encodeSeq(buf, seq)
		if err := publish(buf); err != nil {
			return err
		}
		f.published.Store(seq)
		return nil
	}
}

// check waits for every subscriber to receive all published messages,
// then checks that each received ops[0], the publisher's count of its ops.
// It waits for no more than were published: a count above that is
// reported at once, not after fanoutDrainTimeout.
func (f *fanout) check(ops []uint64) error {
	if err := f.await(min(ops[0], f.published.Load()), fanoutDrainTimeout); err != nil {
		return err
	}
	for i, n := range f.counts() {
		if n != ops[0] {
			return fmt.Errorf("subscriber %d received %d of %d messages", i, n, ops[0])
		}
	}
	return f.failed()
}

const fanoutSubject = "fanout"

// natsFanout: an embedded nats-server, one publishing connection and 8
// subscribing ones.
func natsFanout() (*Instance, error) {
	ns, err := server.NewServer(&server.Options{
		Host:   "127.0.0.1",
		Port:   server.RANDOM_PORT,
		NoLog:  true,
		NoSigs: true,
	})
	if err != nil {
		return nil, err
	}
	go ns.Start()
	var conns []*nats.Conn
	closeAll := func() error {
		for _, c := range conns {
			c.Close()
		}
		ns.Shutdown()
		done := make(chan struct{})
		go func() { ns.WaitForShutdown(); close(done) }()
		select {
		case <-done:
			return nil
		case <-time.After(stopTimeout):
			return errors.New("nats-server did not shut down")
		}
	}
	if !ns.ReadyForConnections(serverStartTimeout) {
		closeAll()
		return nil, fmt.Errorf("nats-server not ready within %v", serverStartTimeout)
	}
	f := newFanout(replClients)
	connect := func() (*nats.Conn, error) {
		nc, err := nats.Connect(ns.ClientURL(),
			nats.NoReconnect(),
			nats.Timeout(opTimeout),
			nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
				f.fail(fmt.Errorf("nats: %w", err))
			}))
		if err == nil {
			conns = append(conns, nc)
		}
		return nc, err
	}
	pub, err := connect()
	if err != nil {
		closeAll()
		return nil, err
	}
	for i := range replClients {
		nc, err := connect()
		if err == nil {
			_, err = nc.Subscribe(fanoutSubject, func(m *nats.Msg) {
				seq, ok := decodeSeq(m.Data)
				f.deliver(i, seq, ok)
			})
		}
		if err == nil {
			err = nc.FlushTimeout(opTimeout) // the server has the subscription
		}
		if err != nil {
			closeAll()
			return nil, err
		}
	}
	return &Instance{
		Workers: []func() error{f.publisher(func(p []byte) error { return pub.Publish(fanoutSubject, p) })},
		Check:   f.check,
		Close:   closeAll,
	}, nil
}

// redisFanout: one client PUBLISHes to 8 SUBSCRIBE connections, pipelined
// as the weft writer's commits and the nats publisher's messages are: the
// publisher hands each message to a sender goroutine, which sends what is
// queued as one go-redis pipeline of at most fanoutBatch PUBLISHes and
// checks each reply (the number of receivers, which must be 8).
func redisFanout() (*Instance, error) {
	env, err := newRedisEnv(1+replClients, redisOptions{})
	if err != nil {
		return nil, err
	}
	ctx := context.Background()
	f := newFanout(replClients)
	var (
		subs []*redis.PubSub
		wg   sync.WaitGroup
	)
	closeAll := func() error {
		for _, ps := range subs {
			ps.Close()
		}
		done := make(chan struct{})
		go func() { wg.Wait(); close(done) }()
		var errs []error
		select {
		case <-done:
		case <-time.After(stopTimeout):
			errs = append(errs, errors.New("redis subscribers did not stop"))
		}
		return errors.Join(append(errs, env.close())...)
	}
	for i, c := range env.clients[1:] {
		ps := c.Subscribe(ctx, fanoutSubject)
		subs = append(subs, ps)
		rctx, cancel := context.WithTimeout(ctx, opTimeout)
		_, err := ps.Receive(rctx) // the subscription is confirmed
		cancel()
		if err != nil {
			closeAll()
			return nil, fmt.Errorf("subscribe: %w", err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				m, err := ps.ReceiveMessage(ctx)
				if err != nil {
					return // closed
				}
				seq, ok := decodeSeq(m.Payload)
				f.deliver(i, seq, ok)
			}
		}()
	}
	pub := env.clients[0]
	// The window (fanout.publisher) bounds what is queued.
	queue := make(chan []byte, fanoutWindow)
	sent := make(chan struct{})
	go func() {
		defer close(sent)
		batch := make([][]byte, 0, fanoutBatch)
		for p := range queue {
			batch = append(batch[:0], p)
		more:
			for len(batch) < fanoutBatch {
				select {
				case p, ok := <-queue:
					if !ok {
						break more
					}
					batch = append(batch, p)
				default:
					break more
				}
			}
			cmds, err := pub.Pipelined(ctx, func(pp redis.Pipeliner) error {
				for _, b := range batch {
					pp.Publish(ctx, fanoutSubject, b)
				}
				return nil
			})
			if err != nil {
				f.fail(fmt.Errorf("PUBLISH pipeline: %w", err))
				continue
			}
			for _, c := range cmds {
				if n := c.(*redis.IntCmd).Val(); n != replClients {
					f.fail(fmt.Errorf("PUBLISH reached %d subscribers, want %d", n, replClients))
				}
			}
		}
	}()
	stopSender := sync.OnceFunc(func() { close(queue); <-sent })
	return &Instance{
		Workers: []func() error{f.publisher(func(p []byte) error {
			queue <- bytes.Clone(p) // the publisher reuses p
			return nil
		})},
		Check: f.check,
		Close: func() error { stopSender(); return closeAll() },
	}, nil
}

// fanoutBatch bounds the PUBLISHes of one Redis pipeline.
const fanoutBatch = 256
