// Package redisstore is a server.Store in a Redis server: the networked
// NoSQL option, for a Weft server whose disk is not where its data should
// live.
//
// # Durability
//
// Open first PINGs Redis, so that an unreachable Redis, or one that wants a
// password the URL lacks, is reported as that, not as a durability
// refusal.
//
// Redis acknowledges a write durably only with the append-only file on and
// fsynced before every reply (appendonly yes, appendfsync always). Open
// checks both with CONFIG GET and refuses any other setting, with an error
// saying how to fix it; Options.AllowUnsafeFsync overrides the refusal,
// and Open then logs a loud warning, since an acknowledged commit may then
// be lost if the Redis machine fails. A Redis where CONFIG is disabled is
// refused the same way.
//
// The settings can change after Open: CONFIG SET at runtime, or a Redis
// restarted with others, to which go-redis reconnects silently. So every
// new connection is checked again, settings and marker (a Redis restarted
// empty has none), and fails if they do not hold, which fails the store;
// and every pipeline of Appends, and every Checkpoint, ends with CONFIG GET
// append*, so that writes Redis may not have synced are not acknowledged.
// With AllowUnsafeFsync only the marker is checked.
//
// # Layout
//
// Every key starts with Options.Prefix ("weft:" by default), so several
// stores (or tests) can share one Redis:
//
//	PREFIX format        the format marker ("weft-store v1"), set at creation
//	PREFIX shares        a set of the share names
//	PREFIX k:NAME        list: the checkpoint header (version, chunk count as
//	                     uvarints) followed by its chunks of objects
//	PREFIX c:NAME        list: the changes after the checkpoint, in version order
//
// Values use the wire codec (see store/internal/codec). Open refuses a
// prefix that holds keys but no marker, or another marker; Load refuses
// k: or c: keys of a share not in the shares set, as corruption. The keys of one
// store are not meant to be spread over a Redis Cluster.
//
// # Group commit
//
// A single writer goroutine takes the Appends queued since its last round
// trip, in call order, and sends them in one pipeline (one RPUSH for each run
// of changes to one share, SADD each new share name). Redis with appendfsync always writes and syncs
// its log once for all the commands it read in one go before it replies, so
// the pipeline costs about one round trip and one fsync; the writer then
// resolves the waits. Since the writer sends in call order and Redis logs
// in the order it executes, a change is durable only once every change
// queued before it is. A Checkpoint goes through the same queue, so it
// follows the changes appended before it: it writes the new checkpoint
// list and trims the changes it covers in one MULTI/EXEC.
//
// Commands are never retried: a retried RPUSH could store a change twice.
// A failed round trip fails the store (see package store).
package redisstore
