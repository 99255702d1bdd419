// Package store is the home of the server's storage: the implementations of
// server.Store, the interface through which the server persists its shares,
// and the conformance suite they all pass. It holds no code itself.
//
//   - store/memstore keeps everything in memory: for tests, and for
//     `weft serve` without -data, where nothing is meant to survive a
//     restart.
//   - store/pebblestore keeps the shares in a Pebble database in a
//     directory on local disk: the default of `weft serve -data DIR`.
//   - store/redisstore keeps them in a Redis server, the networked NoSQL
//     option; it refuses a Redis that does not fsync every write.
//   - store/storetest is the conformance suite (crash cases included)
//     that every implementation runs in its own tests.
//
// The contract is server.Store's. In short: Append queues one change of a
// share and returns a wait that blocks until that change, and every change
// queued before it, is durable, so one sync covers many commits (group
// commit); Checkpoint durably replaces a share's state at a version and
// drops the changes it covers; Load returns every share in name order, its
// latest checkpoint and the changes after it, in version order and without
// gaps; a store that is corrupt or not a Weft store makes Open or Load fail
// with an error naming it, never an empty share.
//
// What the implementations share beyond the interface:
//
//   - Changes and objects are stored in the wire codec (a wire.Delta of one
//     change, a wire.SnapshotChunk of objects), so there is one binary
//     format to keep compatible, not two. A string Value must be valid
//     UTF-8, as on the wire.
//   - The versions of a share's changes are consecutive, the first one
//     right after the checkpoint's (0 if none); Load reports a gap as
//     corruption rather than hand the server a history with a hole.
//   - A store marks what it created with a format marker ("weft-store v1")
//     and refuses to open data without it, or with another one.
//   - A write that fails (a full disk, a lost connection) fails the store:
//     that wait and every later Append, Checkpoint and Load return an error, and
//     what was acknowledged before stays intact. The server must restart
//     on a store that works again, since it cannot know which of the
//     unacknowledged changes were written.
//   - A store may instead refuse a write before it starts it (pebblestore,
//     its disk full: see its reserve): Append or Checkpoint returns an
//     error and nothing was written, so the store keeps working: Load
//     works, and later writes may succeed. The server closes the share
//     as for a failure, and the next open takes it back from the store.
package store
