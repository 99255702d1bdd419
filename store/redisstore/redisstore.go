package redisstore

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/redis/go-redis/v9"
	"github.com/weft-stm/weft/store/internal/codec"
	"github.com/weft-stm/weft/wire"
)

// Options configure Open.
type Options struct {
	// Prefix starts every key of the store; "" means "weft:".
	Prefix string
	// AllowUnsafeFsync opens a Redis that does not fsync every write
	// (appendonly no, or appendfsync other than always), that may evict
	// the store's keys (maxmemory-policy allkeys-*), or whose CONFIG
	// command is disabled. Acknowledged commits may then be lost when the
	// Redis machine fails; Open logs a warning saying so.
	AllowUnsafeFsync bool
	// Logger receives that warning; nil is slog.Default().
	Logger *slog.Logger
	// MaxBatch is the most changes the writer sends in one pipeline;
	// 0 means 1024.
	MaxBatch int
}

// ErrClosed is returned by every method of a closed Store.
var ErrClosed = errors.New("redisstore: store is closed")

// An op is one queued write: an Append (change set) or a Checkpoint.
type op struct {
	share   string
	change  []byte   // an Append's encoded change
	version uint64   // a Checkpoint's
	chunks  [][]byte // a Checkpoint's objects
	cp      bool
	err     error
	done    chan struct{}
}

// Store is a server.Store in Redis. Its methods may be called from many
// goroutines at once.
type Store struct {
	rdb    *redis.Client
	name   string // for errors: the address and prefix
	prefix string
	max    int
	unsafe bool // Options.AllowUnsafeFsync

	// opened is set once Open checked the settings and the marker: from
	// then on every new connection is checked too (see checkConn).
	opened atomic.Bool

	mu      sync.Mutex
	queue   []*op
	wake    chan struct{} // has a value when queue is not empty or closed is set
	closed  bool
	failed  error
	known   map[string]bool // share names added to the shares set (writer only)
	stopped chan struct{}   // closed when the writer returns
}

// Open connects to the Redis at url (redis://[user:password@]host:port/db,
// as go-redis parses it), checks its durability settings and the format
// marker, and creates the marker if the prefix holds nothing.
func Open(ctx context.Context, url string, opts Options) (*Store, error) {
	ro, err := redis.ParseURL(url)
	if err != nil {
		return nil, fmt.Errorf("redisstore: bad URL: %w", err)
	}
	// Never retry: a retried RPUSH could store a change twice.
	ro.MaxRetries = -1
	prefix := opts.Prefix
	if prefix == "" {
		prefix = "weft:"
	}
	s := &Store{
		name:    fmt.Sprintf("redis %s prefix %q", ro.Addr, prefix),
		prefix:  prefix,
		max:     opts.MaxBatch,
		unsafe:  opts.AllowUnsafeFsync,
		wake:    make(chan struct{}, 1),
		known:   map[string]bool{},
		stopped: make(chan struct{}),
	}
	if s.max <= 0 {
		s.max = 1024
	}
	// go-redis reconnects silently (a Redis restart, a dropped
	// connection): check each new connection as Open checks the first.
	ro.OnConnect = func(ctx context.Context, cn *redis.Conn) error {
		if !s.opened.Load() {
			return nil // Open checks it, with its own errors
		}
		return s.checkConn(ctx, cn)
	}
	s.rdb = redis.NewClient(ro)
	// A Redis that cannot be reached or will not let Weft in is not a
	// durability problem: say what it is.
	if err := s.rdb.Ping(ctx).Err(); err != nil {
		s.rdb.Close()
		return nil, connError(s.name, err)
	}
	if err := s.checkFsync(ctx, opts); err != nil {
		s.rdb.Close()
		return nil, err
	}
	if err := s.checkMarker(ctx); err != nil {
		s.rdb.Close()
		return nil, err
	}
	s.opened.Store(true)
	go s.writer()
	return s, nil
}

// connError describes a failure to talk to Redis at all.
func connError(name string, err error) error {
	msg := err.Error()
	if strings.HasPrefix(msg, "NOAUTH") || strings.HasPrefix(msg, "WRONGPASS") || strings.Contains(msg, "invalid password") {
		return fmt.Errorf("redisstore: %s: authentication failed (%w); give the user and password in the URL: redis://[user]:password@host:port/db", name, err)
	}
	return fmt.Errorf("redisstore: cannot connect to %s: %w", name, err)
}

// fsyncProblem says what in a Redis's settings (CONFIG GET append* and
// maxmemory-policy) makes it lose acknowledged writes, or "".
func fsyncProblem(vals, policy map[string]string) string {
	switch {
	case vals["appendonly"] != "yes":
		return fmt.Sprintf("it runs with appendonly %q, so it keeps nothing on disk between its snapshots", vals["appendonly"])
	case vals["appendfsync"] != "always":
		return fmt.Sprintf("it runs with appendfsync %q, so it acknowledges writes before they are on disk", vals["appendfsync"])
	case strings.HasPrefix(policy["maxmemory-policy"], "allkeys-"):
		// The store's keys have no expiry, so only allkeys-* policies
		// evict them; an evicted change list would read as no changes.
		return fmt.Sprintf("it runs with maxmemory-policy %q, so it may evict the store's keys when its memory is full", policy["maxmemory-policy"])
	}
	return ""
}

// durabilityProblem reads the settings of the Redis behind c and says
// what makes it unsafe, or "".
func durabilityProblem(ctx context.Context, c redis.Cmdable) string {
	vals, err := c.ConfigGet(ctx, "append*").Result()
	var policy map[string]string
	if err == nil {
		policy, err = c.ConfigGet(ctx, "maxmemory-policy").Result()
	}
	if err != nil {
		return fmt.Sprintf("cannot check its durability settings (CONFIG GET failed: %v)", err)
	}
	return fsyncProblem(vals, policy)
}

func (s *Store) checkFsync(ctx context.Context, opts Options) error {
	problem := durabilityProblem(ctx, s.rdb)
	if problem == "" {
		return nil
	}
	if !opts.AllowUnsafeFsync {
		return fmt.Errorf("redisstore: refusing %s: %s, and a commit Weft acknowledged could be lost. "+
			"Run redis-server with --appendonly yes --appendfsync always and a maxmemory-policy that does not evict keys without expiry (noeviction, the default, or volatile-*) "+
			"(or CONFIG SET each, then CONFIG REWRITE), "+
			"or accept the risk with the unsafe-fsync override", s.name, problem)
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	log.Warn("REDIS STORE IS NOT DURABLE: acknowledged commits may be lost if Redis or its machine fails; opened anyway because the unsafe-fsync override is set",
		"store", s.name, "problem", problem)
	return nil
}

// checkConn checks a new connection to Redis after Open: the durability
// settings (unless the unsafe-fsync override is set) and the marker. An
// error fails the connection, hence the command that needed it, hence the
// store: a Redis restarted without its append-only file, or empty, gets no
// commit acknowledged.
func (s *Store) checkConn(ctx context.Context, cn *redis.Conn) error {
	if !s.unsafe {
		if problem := durabilityProblem(ctx, cn); problem != "" {
			// The caller's error names the store.
			return fmt.Errorf("refusing a new connection: %s, and a commit Weft acknowledged could be lost "+
				"(Redis restarted with other settings, or changed at runtime?); restart Redis with --appendonly yes --appendfsync always, then the Weft server", problem)
		}
	}
	marker, err := cn.Get(ctx, s.key("format")).Result()
	switch {
	case errors.Is(err, redis.Nil):
		return fmt.Errorf("the store has lost its %q marker: Redis restarted empty (without its append-only file, or another Redis?); "+
			"refusing to write into it. Restore Redis's data, then restart the Weft server", s.key("format"))
	case err != nil:
		return err
	case marker != codec.Format:
		return fmt.Errorf("the store's marker is now %q, not %q; refusing to write into it", marker, codec.Format)
	}
	return nil
}

// fsyncLost checks the result of CONFIG GET append* sent after writes:
// Redis may have been set to sync less often at runtime (CONFIG SET), and
// the writes are then not acknowledged.
func (s *Store) fsyncLost(cfg *redis.MapStringStringCmd) error {
	if err := cfg.Err(); err != nil {
		return fmt.Errorf("cannot check Redis's durability settings (CONFIG GET failed: %w)", err)
	}
	if problem := fsyncProblem(cfg.Val(), nil); problem != "" {
		return fmt.Errorf("refusing to acknowledge writes: %s (changed at runtime?); "+
			"set appendonly yes and appendfsync always again, then restart the Weft server", problem)
	}
	return nil
}

func (s *Store) key(parts ...string) string {
	k := s.prefix
	for _, p := range parts {
		k += p
	}
	return k
}

func (s *Store) checkMarker(ctx context.Context) error {
	marker, err := s.rdb.Get(ctx, s.key("format")).Result()
	if err == nil {
		if marker != codec.Format {
			return fmt.Errorf("redisstore: %s holds %q, not %q: another format of store; refusing to use it", s.name, marker, codec.Format)
		}
		return nil
	}
	if !errors.Is(err, redis.Nil) {
		return fmt.Errorf("redisstore: %s: %w", s.name, err)
	}
	// No marker: the prefix must hold nothing at all.
	var cursor uint64
	for {
		keys, next, err := s.rdb.Scan(ctx, cursor, escapeGlob(s.prefix)+"*", 1000).Result()
		if err != nil {
			return fmt.Errorf("redisstore: %s: %w", s.name, err)
		}
		if len(keys) > 0 {
			return fmt.Errorf("redisstore: %s is not a Weft store: it holds keys (%q, ...) but no %q marker; refusing to use it (choose another prefix or database)", s.name, keys[0], s.key("format"))
		}
		if cursor = next; cursor == 0 {
			break
		}
	}
	ok, err := s.rdb.SetNX(ctx, s.key("format"), codec.Format, 0).Result()
	if err != nil {
		return fmt.Errorf("redisstore: cannot write the format marker in %s: %w", s.name, err)
	}
	if !ok { // another server created it meanwhile
		return s.checkMarker(ctx)
	}
	return nil
}

// escapeGlob escapes the glob characters of SCAN MATCH.
func escapeGlob(p string) string {
	var b []byte
	for i := 0; i < len(p); i++ {
		switch p[i] {
		case '*', '?', '[', ']', '\\':
			b = append(b, '\\')
		}
		b = append(b, p[i])
	}
	return string(b)
}

// enqueue queues o for the writer.
func (s *Store) enqueue(o *op) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	if s.failed != nil {
		return fmt.Errorf("redisstore: %s failed earlier: %w", s.name, s.failed)
	}
	s.queue = append(s.queue, o)
	select {
	case s.wake <- struct{}{}:
	default:
	}
	return nil
}

// Append queues ch for the writer; wait waits for Redis's reply.
func (s *Store) Append(share string, ch wire.Change) (func() error, error) {
	o := &op{share: share, change: codec.AppendChange(nil, ch), done: make(chan struct{})}
	if err := s.enqueue(o); err != nil {
		return nil, err
	}
	return func() error { <-o.done; return o.err }, nil
}

// Checkpoint queues the checkpoint behind the Appends before it and waits
// for it.
func (s *Store) Checkpoint(share string, version uint64, objects []wire.Object) error {
	o := &op{share: share, version: version, chunks: codec.EncodeObjects(objects), cp: true, done: make(chan struct{})}
	if err := s.enqueue(o); err != nil {
		return err
	}
	<-o.done
	return o.err
}

// writer sends the queue to Redis until the store is closed and the queue
// drained.
func (s *Store) writer() {
	defer close(s.stopped)
	for {
		s.mu.Lock()
		for len(s.queue) == 0 && !s.closed {
			s.mu.Unlock()
			<-s.wake
			s.mu.Lock()
		}
		if len(s.queue) == 0 {
			s.mu.Unlock()
			return
		}
		// Take the appends at the head, or one checkpoint.
		n := 0
		if s.queue[0].cp {
			n = 1
		} else {
			for n < len(s.queue) && n < s.max && !s.queue[n].cp {
				n++
			}
		}
		batch := slices.Clone(s.queue[:n])
		s.queue = slices.Delete(s.queue, 0, n)
		failed := s.failed
		s.mu.Unlock()

		var err error
		switch {
		case failed != nil:
			err = fmt.Errorf("redisstore: %s failed earlier: %w", s.name, failed)
		case batch[0].cp:
			err = s.writeCheckpoint(batch[0])
		default:
			err = s.writeAppends(batch)
		}
		if err != nil && failed == nil {
			s.mu.Lock()
			s.failed = err
			s.mu.Unlock()
			err = fmt.Errorf("redisstore: %s: %w", s.name, err)
		}
		for _, o := range batch {
			o.err = err
			close(o.done)
		}
	}
}

func (s *Store) writeAppends(batch []*op) error {
	ctx := context.Background()
	p := s.rdb.Pipeline()
	var added []string
	// Consecutive changes of one share go in one RPUSH: Redis then parses
	// and executes one command for them, not one each, while its event
	// loop (which also fsyncs) is all that stands between a batch and its
	// acknowledgement.
	vals := make([]any, 0, len(batch))
	for i, o := range batch {
		if !s.known[o.share] && !slices.Contains(added, o.share) {
			p.SAdd(ctx, s.key("shares"), o.share)
			added = append(added, o.share)
		}
		vals = append(vals, o.change)
		if i+1 == len(batch) || batch[i+1].share != o.share {
			p.RPush(ctx, s.key("c:", o.share), vals...)
			vals = vals[len(vals):]
		}
	}
	// Redis syncs its log once for the whole pipeline, after this reads
	// the setting that sync follows.
	var cfg *redis.MapStringStringCmd
	if !s.unsafe {
		cfg = p.ConfigGet(ctx, "append*")
	}
	cmds, err := p.Exec(ctx)
	if err != nil {
		return err
	}
	for _, c := range cmds {
		if c.Err() != nil {
			return c.Err()
		}
	}
	if cfg != nil {
		if err := s.fsyncLost(cfg); err != nil {
			return err
		}
	}
	for _, n := range added {
		s.known[n] = true
	}
	return nil
}

func (s *Store) writeCheckpoint(o *op) error {
	ctx := context.Background()
	ck := s.key("c:", o.share)
	// The writer is the only one to change the list, so its head stays
	// put until the transaction below.
	head, err := s.rdb.LIndex(ctx, ck, 0).Bytes()
	drop := int64(0)
	switch {
	case errors.Is(err, redis.Nil):
	case err != nil:
		return err
	default:
		first, err := codec.DecodeChange(head)
		if err != nil {
			return fmt.Errorf("share %q: %w", o.share, err)
		}
		if o.version >= first.Version {
			drop = int64(o.version - first.Version + 1)
		}
	}
	header := binary.AppendUvarint(nil, o.version)
	header = binary.AppendUvarint(header, uint64(len(o.chunks)))
	kk := s.key("k:", o.share)
	cmds, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.SAdd(ctx, s.key("shares"), o.share)
		p.Del(ctx, kk)
		vals := make([]any, 0, 1+len(o.chunks))
		vals = append(vals, header)
		for _, c := range o.chunks {
			vals = append(vals, c)
		}
		p.RPush(ctx, kk, vals...)
		if drop > 0 {
			p.LTrim(ctx, ck, drop, -1)
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, c := range cmds {
		if c.Err() != nil {
			return c.Err()
		}
	}
	if !s.unsafe {
		if err := s.fsyncLost(s.rdb.ConfigGet(ctx, "append*")); err != nil {
			return err
		}
	}
	s.known[o.share] = true
	return nil
}

// Load reads every share in name order, each share's checkpoint and
// changes in one transaction.
func (s *Store) Load(fn func(share string, version uint64, objects []wire.Object, changes []wire.Change) error) error {
	s.mu.Lock()
	closed, failed := s.closed, s.failed
	s.mu.Unlock()
	if closed {
		return ErrClosed
	}
	if failed != nil {
		// Redis may hold changes whose write was not confirmed (in
		// doubt): loading them would hand out what may not be durable.
		return fmt.Errorf("redisstore: %s failed earlier: %w", s.name, failed)
	}
	ctx := context.Background()
	names, err := s.rdb.SMembers(ctx, s.key("shares")).Result()
	if err != nil {
		return fmt.Errorf("redisstore: %s: %w", s.name, err)
	}
	slices.Sort(names)
	corrupt := func(format string, args ...any) error {
		return fmt.Errorf("redisstore: %s is corrupt: %s", s.name, fmt.Sprintf(format, args...))
	}
	// A share missing from the set would load as no share, and its next
	// commits would go onto its old change list.
	orphans, err := s.unlisted(ctx, names)
	if err != nil {
		return fmt.Errorf("redisstore: %s: %w", s.name, err)
	}
	if len(orphans) > 0 {
		shown := orphans
		if len(shown) > 10 {
			shown = shown[:10]
		}
		return corrupt("%d keys of shares missing from the set %q (deleted or evicted?): %q; refusing to load the shares without them. "+
			"If those shares are meant to be kept, SADD their names to %q", len(orphans), s.key("shares"), shown, s.key("shares"))
	}
	for _, name := range names {
		var cp, chs *redis.StringSliceCmd
		_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
			cp = p.LRange(ctx, s.key("k:", name), 0, -1)
			chs = p.LRange(ctx, s.key("c:", name), 0, -1)
			return nil
		})
		if err != nil {
			return fmt.Errorf("redisstore: %s: share %q: %w", s.name, name, err)
		}
		var version uint64
		var objects []wire.Object
		if v := cp.Val(); len(v) > 0 {
			h := []byte(v[0])
			var n1, n2 int
			var count uint64
			version, n1 = binary.Uvarint(h)
			if n1 > 0 {
				count, n2 = binary.Uvarint(h[n1:])
			}
			if n1 <= 0 || n2 <= 0 || n1+n2 != len(h) || count != uint64(len(v)-1) {
				return corrupt("share %q: bad checkpoint header %x for %d chunks", name, h, len(v)-1)
			}
			for _, c := range v[1:] {
				if objects, err = codec.DecodeObjects(objects, []byte(c)); err != nil {
					return corrupt("share %q: %v", name, err)
				}
			}
		}
		var changes []wire.Change
		for _, c := range chs.Val() {
			ch, err := codec.DecodeChange([]byte(c))
			if err != nil {
				return corrupt("share %q: %v", name, err)
			}
			changes = append(changes, ch)
		}
		if err := codec.CheckChanges(name, version, changes); err != nil {
			return corrupt("%v", err)
		}
		if err := fn(name, version, objects, changes); err != nil {
			return err
		}
	}
	return nil
}

// unlisted returns, sorted, the checkpoint and change keys of shares that
// are not in names.
func (s *Store) unlisted(ctx context.Context, names []string) ([]string, error) {
	var out []string
	for _, kind := range []string{"k:", "c:"} {
		p := s.key(kind)
		iter := s.rdb.Scan(ctx, 0, escapeGlob(p)+"*", 1000).Iterator()
		for iter.Next(ctx) {
			if _, found := slices.BinarySearch(names, strings.TrimPrefix(iter.Val(), p)); !found {
				out = append(out, iter.Val())
			}
		}
		if err := iter.Err(); err != nil {
			return nil, err
		}
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// Close lets the writer send what is queued, then closes the connection.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrClosed
	}
	s.closed = true
	select {
	case s.wake <- struct{}{}:
	default:
	}
	s.mu.Unlock()
	<-s.stopped
	return s.rdb.Close()
}
