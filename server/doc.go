// Package server is a Weft server: the authority for a set of shares. It
// speaks the session protocol of docs/protocol.md over any
// transport.Listener (TCP with or without TLS, the in-memory Network), and
// decides commits with one authority.Share per share.
//
// # Running a server
//
//  1. Build a Config: who may connect (Tokens), what each principal may do
//     with each share (Permissions, DefaultAccess: none, read or write),
//     which shares exist (Shares; others are created on first open by a
//     principal with write access unless NoCreate), the Limits to announce, a *slog.Logger, and a Store to
//     keep the shares in (see Durability).
//  2. New(cfg), or Open(cfg) with a Store (it restores the shares the
//     store holds and reports an unreadable store at once; otherwise the
//     first Serve does both), then Serve(ctx, listener) for each listener,
//     each in its own goroutine. Serve owns the listener and closes it
//     when it returns.
//  3. To stop, call Shutdown(ctx): Serve returns ErrServerClosed, every
//     session stops reading, finishes the message in hand, writes what is
//     queued for it (Acks already decided, with a store once their changes
//     are durable, and the Updates of every acknowledged commit to every
//     session with the share open), receives Error code shutdown and is
//     closed. If ctx ends first, queued writes are abandoned. Shutdown
//     returns when every session goroutine has, and a restore or
//     checkpoints of the store in progress are done: the store may then
//     be closed (call Shutdown before closing it, also after Serve
//     returned on its ctx). Ending the context given
//     to Serve ends that Serve's sessions each on its own: it stops
//     reading and writes what is queued for it, but does not wait for
//     the other sessions' last commits or for syncs in progress, whose
//     answers are then lost (the clients resend those commits). Serve
//     waits for them.
//
// # What a session gets
//
//   - Handshake: the highest common protocol version, or Error version; an
//     unknown token (when Tokens is set) gets Error auth, and so does a
//     replica id that another principal's Hello used first on this server
//     (since it started; with Tokens set); replica 0 (reserved)
//     gets Error protocol; anything but Hello
//     first, or nothing within HandshakeTimeout, gets Error unexpected. Each
//     Error is followed by the close of the connection. After Welcome the
//     announced limits apply both ways.
//   - OpenShare: ShareClosed forbidden (access none), not_found (no such
//     share, and NoCreate or only read access: creating takes write),
//     limit (max_open_shares), diverged (the copy, have and epoch, is not
//     in the share's history; the first open of a share since the server
//     created or loaded it commits its epoch change: protocol.md §9,
//     epochs); else Opened with the access, then nothing
//     (have equals the version), Deltas (0 < have < version and the change
//     log still reaches have), or SnapshotChunks; then the share's Updates.
//     Reopening a handle that is open, or whose CloseShare is not answered
//     yet, is Error unexpected.
//   - Commit: Abort closed (handle not open), forbidden (any commit on a
//     read share, with writes or not, or a CommitID whose replica is not
//     the session's), limit (its Update would not fit in
//     max_frame_size); else the share's verdict
//     (authority.Share.Apply): Ack, or Abort conflict / dependency /
//     invalid / internal. A resent commit gets its earlier verdict and is
//     not applied or broadcast again. Each acknowledged commit is broadcast
//     as an Update to every other handle open on the share, in version
//     order, never to the committing handle and never to a session without
//     the share open (so never to one without read access).
//   - CloseShare: ShareClosed closed, after the answers to earlier commits.
//   - Ping: Pong. Pong: ignored. Error: the session ends.
//   - A malformed or oversized frame: Error protocol naming the field, then
//     close; nothing of it is applied. A server-bound message type: Error
//     unexpected, then close. Other sessions never notice.
//
// # Ordering and back-pressure
//
// A share's commits are decided one at a time under the share's lock, and
// their Ack and Updates are queued, under the same lock, to each session's
// outbound queue, so every session sees a share's versions in order and
// without gaps. Queuing never blocks. A session's queue is sent, in order,
// by its reader goroutine when it is about to wait for the client's next
// message and no send is in progress (so a round trip costs no hand-off
// between goroutines), and otherwise by its writer goroutine: what other
// sessions queue (Updates), a backlog, and what is left when the session
// closes. A client that does not read its answers is thus no longer read
// once its connection's buffers are full. A transfer (an open's snapshot or
// deltas, built whole) must have been sent before the reader reads the
// next message, so a client that opens shares without reading holds one
// at most. A session whose queue already holds
// Config.QueueSize messages (default 4096; a whole snapshot or delta
// transfer counts as one), or other sessions' Updates of Config.QueueBytes
// (default 64 MiB), when another is added has fallen behind: its
// queue is dropped and it gets Error code limit (best effort: it is written
// once the write in progress is abandoned, within FlushTimeout) and is
// closed. The other sessions are not slowed down.
//
// # Durability
//
// Without Config.Store the shares live in memory and a restart loses
// them. With one (package store: Pebble, Redis, memory), Open (or the
// first Serve of a server made by New) restores every share from its
// latest checkpoint and the changes after it
// (authority.Restore: the acknowledged verdicts come back too, so a commit
// resent after a restart is answered, not applied again). A commit is
// decided and its change queued in the store under the share's lock; its
// Ack, its Updates, and the transfer to a session opening the share meanwhile
// wait on the server's publisher (one goroutine for every share; a share
// whose lock is busy gets one of its own meanwhile, so that it holds up no
// other) until the change is synced, in version order, so many commits
// share one sync and nothing a client sees was not durable first
// (persist.go). Every Config.CheckpointEvery changes (at most twice as
// many under steady load) the share writes a checkpoint (its commits wait
// meanwhile), bounding what a restart replays. If the store fails (a full
// disk), the commits waiting are not answered (in doubt: they may or may
// not be durable), the share closes with ShareClosed code internal for its
// sessions and for those whose open was waiting, and a later open asks the
// store for it again. A failed store refuses (it may hold changes that were
// never durable), so those opens get ShareClosed internal until the server
// restarts on a store that works.
//
// # Caveats
//
//   - Commits are decided as they are read, so a session's unanswered
//     commits are those whose answers wait for durability; past
//     max_pending_commits of them, a commit is aborted with code limit.
//   - A second session of the same replica does not replace the first
//     (the first ends once silent for three heartbeats, if it is gone).
//   - Permissions are read at OpenShare; changing them needs a restart.
package server
