// Package client is the Go client of a Weft server: a replica of the
// shares it opens, on which transactions commit speculatively. A
// transaction runs on the local replica (an stm.Workspace), is applied
// there at once, and is sent to the server without waiting; the server's
// verdict arrives later through the commit's stm.Handle. Transactions can
// chain: one that reads what a pending commit wrote depends on it, and if
// the server rejects a commit, it and exactly the transactions that
// depended on it are aborted and undone. docs/replication.md section 8b
// is the design.
//
// # Basics
//
//  1. Dial(ctx, dialer, addr, Options) connects (transport.TCPDialer, an
//     in-memory transport.Network's Dialer, ...), says Hello and adopts the
//     limits of Welcome. The replica id is Options.Replica, or drawn from
//     Options.Rand: the package has no randomness of its own.
//  2. Open(ctx, name, classes...) opens a share and materialises it in the
//     client's workspace: every record of one of the classes given
//     (stm.Materialize) and the collections its fields refer to; records
//     of other classes, with their collections, are kept out of the
//     replica, so that an older application works on beside a newer one. Find objects with Share.Object or
//     Share.Records; add records with Share.Create and remove them with
//     Share.Remove, inside a transaction.
//  3. Share.Run(ctx, fn) runs fn on the replica, commits it there and
//     sends it: it returns once the commit is applied locally, with a
//     handle that is acknowledged (with the share version the server gave
//     it) or aborted (an *AbortError), or in doubt (stm.InDoubt, an error
//     wrapping ErrInDoubt) if the session ends for good before the
//     verdict. Share.Atomically is Run that waits
//     for the verdict and runs fn again after a conflict or a dependency
//     abort; while its commit is the only one awaited, it receives the
//     verdict from the connection itself, which saves a wake-up of
//     another goroutine per round trip, and keeps receiving for the
//     next one for a millisecond (what others commit meanwhile reaches
//     the replica that much later at most; anything that awaits the
//     connection ends that at once). Client.Flush waits until every
//     commit made so far is answered.
//  4. Share.View reads the replica; Share.WaitVersion waits for a version
//     of the acknowledged state (after another client's commit, say);
//     Share.Version is the version held, Share.Pending how many commits
//     await their verdict.
//
// # How the replica follows the server
//
// A share keeps two states. The acknowledged one is the share as the
// server decided it, in wire form (an authority.Share that only applies
// decided changes); the replica, which the application reads, is the
// acknowledged state with this client's pending commits applied on top,
// in the order they were sent (which is their local commit order: a
// commit is applied and queued under one lock).
//
//   - An Update (another replica's commit, ordered by the server before
//     every commit of ours still pending) is applied to both. Pending
//     commits it dooms stop showing (hidden): those that read an object
//     it writes, and, in order, those that read or wrote an object a
//     hidden commit writes; so what shows is always a state the server
//     can reach. In the replica the Update is applied as is to objects no
//     shown pending commit writes; the objects one does are rebuilt
//     instead: their acknowledged state (stm.SetState), then the shown
//     pending commits' ops on them re-applied in order. So a blind write
//     of ours stays on top of another's, and counter increments add up.
//     A hidden commit's Ack applies it like an Update; a transaction that
//     touches what a hidden commit wrote waits for its verdict first.
//     Updates of one share that arrive together, all writing the same
//     objects, which no shown pending commit read or writes (a stream of
//     quotes, say), are applied to the replica as one local commit, which
//     observers count as one commit per Update (stm.Change.Commits); the
//     states in between are never shown, as a reader that came a moment
//     later would not have seen them.
//   - An Ack applies the commit to the acknowledged state; the replica
//     shows it already.
//   - An Abort rejects the commit and every pending commit that depends
//     on it, transitively; the objects they wrote are rebuilt the same
//     way, and objects they created leave the index.
//
// Every read of a commit is sent at the share version of the acknowledged
// state the transaction's snapshot held (the client maps local versions
// to share versions as it applies changes), and the commit names as deps,
// for each object it read, the shown pending commits that write it, from
// the last that also read it on (that one depends on those before it),
// and, for each object it read or wrote that a pending commit created,
// that commit (the object exists only if it is acknowledged).
// Deps are by object, not by the version of the part read: a counter's
// value holds every pending increment, and a rebuild whose ops cancel out
// installs no new version. docs/protocol.md section 9 says how the server
// judges such reads. TestRandomSpeculation checks it all against
// invariants (totals, counters that must not go below zero, exactly-once
// increments) under random delays and cut connections.
//
// # Reconnection
//
// When the connection fails, the client (unless Options.NoReconnect) dials
// again with exponential backoff, says Hello with the same replica id,
// reopens every share from the version of its acknowledged state, and
// resends every unanswered commit, in order. The server answers a commit
// it already decided with the same verdict without applying it twice; a
// Delta that reports one of our commits acknowledges it. If the server
// answers with a snapshot instead of a delta, the pending commits' writes
// stop showing until their verdicts arrive, and an Ack newer than the
// snapshot applies them. Client.State and Options.OnState tell the state;
// commits go on locally while reconnecting. A handshake refused for good
// (an Error of code protocol, version, auth or forbidden) ends the session
// (ErrDisconnected); one answered with another code (shutdown: the server
// is restarting) is tried again.
//
// # Offline cache
//
// With Options.Cache (store/pebblestore's Store is one) the client keeps
// each share's acknowledged state (a checkpoint, then the changes after
// it, written without waiting for a sync) and every commit from before it
// shows until it is answered (synced), with its replica id and the
// highest commit number used. Dial then succeeds while the server is
// unreachable (the client starts Reconnecting), Open serves a cached share
// at once with its unanswered commits shown again, and once connected
// they are sent, in order, under their ids: the server answers one it
// already decided with that verdict. Options.OnAbort and OnAcknowledge
// report every verdict, including those of commits made before a restart;
// Handle.ID is the id they name. The cache's latest acknowledged changes
// may be lost in a crash, and changes of others may have come in while a
// commit was pending: a restored commit whose reads do not hold on the
// restored state is hidden (with what builds on it) until its verdict,
// as after a resync. A rejection is removed from the cache, synced, before
// it is reported, so that a rejected commit is never sent again (a server
// that crashed since has forgotten it, and could acknowledge it).
//
// A copy is only as good as the history it came from. A server restored
// from a backup of its data, or started again on empty data, gives the
// versions a copy holds to other changes; it tells such a copy by the
// epoch change it names (protocol.md §9, epochs) and refuses it with
// ShareClosed code diverged. The share then fails with a
// *ShareClosedError of that code (Share.Err; Open returns it if it came
// before Open returned, as it always does without a cache); its
// unanswered commits are aborted
// with an *AbortError of code diverged (their handles, Options.OnAbort),
// since the server's history holds none of them (but for those a resync's
// snapshot came after while they were unanswered: that snapshot may hold
// one, so they are in doubt, ErrInDoubt); and the cache forgets
// the share and those commits before the failure shows. The next Open
// of the share starts from the server's state.
//
// # Flow control
//
// A client keeps at most the server's max_pending_commits commits in
// flight (Run waits for room): the server remembers that many verdicts per
// replica, so every resend is recognised. That holds offline too: a client
// that started offline from its cache assumes the protocol's default
// (1024), so its 1025th unanswered commit waits (for ctx, or for the
// server to answer). Client.ConnErr says why a client is not connected
// (a server away, or a TLS setting that does not match the server's look
// alike otherwise).
//
// # Caveats
//
//   - A transaction touches one share; touching anything else is
//     ErrNotInShare. A share's objects are written in Share.Run or
//     Share.Atomically only: a transaction of the workspace itself that
//     writes one fails with ErrShareObject, and a call with stm.Auto on
//     one panics with it (either would change this replica only).
//   - Objects no record refers to (a standalone var) are kept out of the
//     replica and cannot be created.
//   - The client tags a share's transactions (stm.Tx.SetTag): Create and
//     Remove find their transaction by it, so do not set another.
//   - The objects of a share that is closed (by Close, by the server, or
//     because the session ended for good) are retired: using one in a
//     transaction fails with stm.ErrRetired. Take the objects of a new
//     opening from the new Share.
//   - A share can be open once per client (ErrAlreadyOpen).
//   - The map from local to share versions grows by one entry per version
//     received, for the life of the share.
//   - Ping is answered. The client sends a Ping whenever it has sent
//     nothing for the heartbeat its server announces in Welcome, so that
//     the server does not take it for gone, and drops a connection on
//     which it heard nothing for four to six such heartbeats (or per
//     Options.Heartbeat). A server that announces none, without
//     Options.Heartbeat, is not watched: a frozen one is not noticed.
package client
