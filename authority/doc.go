// Package authority is the authoritative state of one share, as a pure,
// deterministic state machine: the server (and, in a cluster, every node,
// which must reach the same verdicts) feeds it the commits clients send, in
// one order, and gets back verdicts and the changes to broadcast. It does no
// I/O, starts no goroutine, reads no clock and draws no random number; it
// imports only the standard library and package wire.
//
// # State
//
// A Share holds its version (0 at New, +1 per acknowledged commit, no gaps)
// and its objects by wire.ObjectID: kind, class, value, and for each part
// the version of its last write. The parts are a record's fields, a var's
// value, a counter's value, a map's keys (present or absent), a set's
// elements and a list's indexes; besides, each object has the version of the
// last write to any part ("whole": also a collection's size, a list's
// length) and of its creation or removal. A part never written has the
// version of its object's creation. A removed object stays as a tombstone
// for Config.TombstonesFor versions (default 2^20): reads of it are
// validated against its removal, and its id is not created again; then it
// is forgotten (see Memory).
//
// # Verdicts
//
// Share.Apply decides one commit (protocol.md §9). In order, the first
// failing check decides:
//
//  1. Deps: every dep must have been acknowledged by this Share; a dep that
//     was aborted, or that it does not know (never seen, or forgotten),
//     aborts the commit with wire.CodeDependency.
//  2. Reads: a read is current when the part it covers (wire.ReadWhole:
//     the object's last write to any part; ReadField, ReadKey, ReadIndex:
//     that part and the object's creation or removal) was last written at a
//     version <= read.Version. A read kind that does not fit the object's
//     kind, or an index past a list's end, covers the whole object. A read
//     of an object the share never had conflicts (version 0); one of a
//     removed object conflicts with the removal's version unless it is older
//     than the read. Stale reads abort the commit with wire.CodeConflict,
//     each as sent but with Version set to the version of the last write.
//     A read at a version the share has not reached (no replica saw it)
//     aborts the commit with wire.CodeInvalid.
//  3. Reads of pending writes (protocol.md §9, chained commits): such a
//     read carries the last acknowledged version the client saw, so it
//     arrives older than the dep's write. It is current when the part's last write is
//     the write of one of the commit's deps and every write to the part
//     after read.Version was made by the commit's own replica (its earlier
//     commits, which it saw: acknowledged, or pending and so among its
//     deps). A write by any other replica in between is a conflict.
//  4. Writes are checked in order against the state the ops before them
//     leave: an op on an object not in the share, of the wrong kind for the
//     object, a list_set past the end, a create of an id already used (even
//     by a removed object whose tombstone is kept, or with replica 0), an
//     unknown op kind or object kind abort the commit with
//     wire.CodeInvalid. (ApplyChange, applying what was decided, lets a
//     create take a removed object's id: the authority may have forgotten
//     the tombstone this copy keeps.) Nothing is applied
//     unless all pass.
//  5. References (refs.go): a ref written to an object not in the share
//     after the commit, or the removal of an object a ref still names
//     after it, aborts the commit with wire.CodeInvalid. So the share
//     never holds a ref no replica can resolve. The check costs nothing
//     more than a look at each written value unless the commit removes an
//     object something refers to.
//
// An acknowledged commit gets the next version; its ops are applied in
// order: set_field, var_set, map_put, map_delete, set_add, set_remove and
// list_set are blind overwrites of their part; counter_add adds (wrapping
// at 64 bits), so adds without reads never conflict; list_append appends at
// the current end; create makes an empty object (a record with its fields);
// remove takes the object out of the share.
//
// # Memory
//
// Verdicts are kept per replica for its Config.Verdicts most recently
// decided commits (default 1024, protocol.md's max_pending_commits). A
// resent commit that is remembered gets its verdict again (Result.Duplicate)
// and changes nothing; one older than that (its seq is at most the highest
// forgotten seq of its replica) is aborted with wire.CodeInternal, neither
// applied nor remembered, since it may have been acknowledged. A replica
// with no commit decided in Config.RetireAfter versions (default 2^20) is
// retired: all its verdicts are forgotten but its highest seq, so a share
// that served a million short-lived replicas keeps a map entry of each,
// not their verdicts (about 30 bytes each instead of 850 for a replica of
// one commit). The change
// log keeps the last Config.LogSize changes (default 1024), of at most
// Config.LogBytes of memory (default 8 MiB), for DeltaSince; a negative
// LogSize keeps none.
// Tombstones of removed objects are kept for TombstonesFor versions, then
// forgotten (forgetTombs), so a share whose objects come and go (a game's
// entities) holds the removals of the last TombstonesFor versions, not of
// its whole life. A forgotten object reads as one the share never had (a
// read of it conflicts, even at a version after its removal, where its
// tombstone let it pass; no client copy still holds such an object to
// read), and its id could be created again (clients number their objects
// and never do; nothing refers to the old object).
// Those of deleted map keys and set elements are kept until they are more
// than half of their object's entries (and at least 64); then they are
// all dropped, and a key without an entry reads as written at the latest
// version dropped, by no replica known, as after Load: a read of such a
// key at an older version conflicts even if the key was not written
// since, and the client retries on a newer state. So a map whose keys
// come and go (sessions, cursors, orders) keeps a bounded size, for an
// occasional spurious conflict. Both steps are deterministic: every node
// of a cluster applying the same commits decides the same.
//
// # The caller's duties
//
//  1. Serialise: a Share is not safe for concurrent use. Call Apply for one
//     commit at a time, in the order the commits are to be decided; in a
//     cluster, in log order on every node, so that every node decides the
//     same.
//  2. Check the session's rules first: the share is open, the session may
//     write (else wire.CodeForbidden), the pending limit (wire.CodeLimit).
//     Apply does not know sessions; it uses c.ID, c.Deps, c.Reads and
//     c.Writes only.
//  3. Persist before answering: after an Ack, make the change durable (or,
//     in a cluster, committed) before sending Result.Reply, then send
//     Result.Update to the share's other sessions, in version order. A
//     Duplicate is answered again but not broadcast.
//  4. Do not modify a commit's Writes after Apply: the log and
//     Result.Change keep them. Do not modify what DeltaSince returns.
//  5. To bring a client up to date, first check that its copy is in the
//     share's history (InHistory(have, the epoch it names); else refuse
//     it, code diverged), then use DeltaSince(have) when it returns true,
//     else Snapshot(limits of the session); both are at Version. Before
//     the first commit of each life of the share (created, or loaded from
//     a store), commit an epoch change (BeginEpoch, with a random id: the
//     caller draws it, this package draws none) and persist it as any
//     change (epoch.go says why).
//  6. To restart, Load the last snapshot and Apply the commits after it in
//     their order. Load forgets part versions (all parts are taken as
//     written at the snapshot's version, so older reads conflict once),
//     verdicts (resends of commits decided before the snapshot are treated
//     as new) and tombstones. A cluster that must agree on verdicts across
//     a restore must therefore restore every node from the same snapshot
//     at the same log index.
//  7. Bound what you send: an Ack's Update can exceed max_frame_size when
//     the commit did; the caller, which encodes, aborts it with
//     wire.CodeLimit before calling Apply if it wants to (protocol.md §9).
package authority
