// Package client is the Go client of a Weft server, version 0: a
// non-speculative replica. A transaction runs on the local replica (an
// stm.Workspace) but is committed by the server: the client sends its
// record and waits for the verdict before the transaction counts. So the
// replica always equals the state the server acknowledged, and nothing is
// ever rolled back. Speculative, chained commits (docs/replication.md
// section 8b) are to come on top of this.
//
// # Basics
//
//  1. Dial(ctx, dialer, addr, Options) connects (transport.TCPDialer, an
//     in-memory transport.Network's Dialer, ...), says Hello and adopts the
//     limits of Welcome. The replica id is Options.Replica, or drawn from
//     Options.Rand: the package has no randomness of its own. The client
//     owns one goroutine, its reader; Close ends it and waits for it.
//  2. Open(ctx, name, classes...) opens a share and materialises it in the
//     client's workspace: every record (stm.Materialize, of one of the
//     classes given: another class is ErrUnknownClass) and the collections
//     its fields refer to, filled as one internal local transaction.
//     Find objects with Share.Object or Share.Records; add records with
//     Share.Create, inside Share.Atomically.
//  3. Share.Atomically(ctx, fn) runs fn on the replica, sends what it read
//     and wrote (reads translated to share versions) as a Commit, discards
//     the local transaction and waits for the verdict:
//     - Ack: the writes are applied to the replica, as the share version
//     the server gave them, before Atomically returns nil;
//     - Abort conflict: Atomically waits until the replica holds the
//     conflicting version and runs fn again;
//     - any other Abort: an *AbortError with the code; nothing was applied.
//     fn's own error is returned untouched and nothing is sent; a
//     transaction that wrote nothing needs no round trip.
//  4. Share.View reads the replica; Share.WaitVersion waits for a version
//     (after another client's commit, say); Share.Version is the version
//     held.
//
// # How the replica follows the server
//
// The reader applies, in the share's version order, every Update (another
// session's commit) and every Ack of this client's own commits (which the
// server does not echo) as one local transaction each, tagged with
// Tx.SetTag so that they can be told from the application's. It records
// which local version holds which share version: a transaction's read at a
// local version is sent at the share version of the internal commit that
// wrote it (never older than the version at which its object joined the
// replica), and its snapshot likewise.
//
// # Caveats (version 0)
//
//   - Share.Create(tx, class) adds a record (and its collections) to the
//     share within Atomically's transaction, Share.Remove(tx, o) removes
//     one: the commit carries create ops (the record with its fields as
//     the transaction left them, then each collection, empty) before the
//     transaction's writes, and remove ops after them. A transaction that
//     fails, retries or is aborted creates and removes nothing. Objects no
//     record refers to (a standalone var) are kept out of the replica and
//     cannot be created.
//   - A transaction touches one share; touching anything else is
//     ErrNotInShare. Do not commit on share objects with the workspace's
//     own Atomically: that would change the replica behind the server's
//     back.
//   - Tx.Retry in Atomically waits for any new version of the share, not
//     only for what fn read (View's Retry is precise).
//   - No reconnection: when the session ends, calls fail with an error
//     wrapping ErrDisconnected (or ErrClosed after Close), and a commit
//     awaiting its verdict with ErrInDoubt: it may have been applied.
//   - The map from local to share versions grows by one entry per version
//     received, for the life of the share.
//   - Ping is answered; heartbeats are not sent.
package client
