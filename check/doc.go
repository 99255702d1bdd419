// Package check finds isolation anomalies in a history of Weft transactions,
// as observed by clients. It is the checker of issue #6: the deterministic
// simulation and the soak tests record what their clients saw and hand it
// to Check, which says whether some serial order explains it.
//
// The approach is Jepsen's Elle (list-append and read-write-register
// inference), adapted to what Weft exposes: the server gives every
// acknowledged commit a version of its share, and a read says the share
// version it saw (wire Read.Version). The package is pure: no I/O, no clock,
// no randomness, no dependency on the rest of Weft (TxnID has the layout of
// wire.CommitID, so conversion is a type conversion).
//
// # Model
//
// A History is a set of transactions (Txn). Each has an ID, a Share, an
// Outcome (Acknowledged with the Version the server assigned, Aborted, or
// Unknown when the client never learned the verdict), optional real-time
// Start/End, and its operations in program order. Keys name object parts
// ("object 1:7 field 3", "list 1:9") and are scoped by share. A key is used
// either as a list (Append a value, ReadList the whole list) or as a
// register (Write a value, ReadReg its value, 0 when never written).
// Written values are non-zero and unique per key, so a value seen names
// the write that produced it. A read may carry At, the share version it
// saw. A transaction marked Final is a read-only observation made once
// everything settled: it must see every committed write.
//
// Which transactions committed: acknowledged ones, final observations, and
// in-doubt ones whose writes some committed transaction read (they must
// have committed). In-doubt transactions nobody saw are ignored; aborted
// ones never commit. Reads of aborted and ignored transactions are not
// checked (their reads were never validated).
//
// # Dependency graph
//
// Nodes are the committed transactions. Edges:
//   - ww: the version order of writes to a key. For a list, the order of its
//     longest committed read (every other read must be a prefix of it); for
//     a register, the server's versions.
//   - wr: a transaction read the value another wrote (for a list, the
//     writer of the last element it saw; earlier ones follow through ww).
//   - rw: a transaction read the state just before another's write to the
//     key (the next append after its prefix, the next register write after
//     the one it saw; a read of a register's initial value precedes every
//     write, including those of in-doubt transactions).
//   - vo: consecutive versions of a share. Weft serializes each commit at
//     its version, so a cycle through vo edges is a dependency against the
//     server's order even if the dependencies alone are acyclic.
//
// Strongly connected components are found with Tarjan's algorithm; within
// each, as Elle does, a short cycle of each class is searched by breadth
// first search: among ww edges (G0), among ww and wr edges through a wr
// edge (G1c), an rw edge closed by a ww/wr path (G-single), and otherwise
// any cycle (G2, or VersionOrder when it needs vo edges). Edges between the
// same pair are merged and count as their strongest type (ww, then wr,
// then rw). The search per component is bounded (Result.Truncated), so a
// pathological history still finishes; clean histories have no components
// and cost linear time.
//
// # Anomalies
//
//   - G0 (write cycle): writes of two or more commits interleave on several
//     keys, e.g. list x orders T1 before T2 and list y T2 before T1.
//   - G1a (aborted read): a committed transaction read a value written by
//     an aborted one, e.g. it read a speculative write whose commit later
//     aborted yet was itself acknowledged.
//   - G1b (intermediate read): a committed transaction read a value its
//     writer overwrote (register) or followed with another append to the
//     same list (a list state splitting a transaction's appends).
//   - G1c (circular information flow): a cycle of ww and wr edges.
//   - G-single (read skew, lost update): a cycle with exactly one rw edge.
//   - G2 (write skew): a cycle with two or more rw edges.
//   - LostWrite: the final state lacks a committed write (a list misses an
//     append; a register holds an older version than the newest
//     acknowledged write), e.g. an ack sent before the store synced.
//   - AbortedVisible: the final state holds an aborted write.
//   - GarbageRead: a read saw a value no transaction wrote.
//   - Internal: a read ignored its own transaction's earlier writes.
//   - IncompatibleOrder: two reads of a list are not prefixes of one another.
//   - StaleRead: a read at version At misses a write acknowledged with a
//     version <= At, e.g. a client that dropped a broadcast yet claims the
//     version. (Seeing a write of a higher version is not flagged: a read
//     may see a pending speculative commit it depends on.)
//   - VersionOrder: a dependency cycle through the version order, e.g. a
//     server that skipped read validation acknowledged a commit whose read
//     was overwritten by an earlier version.
//   - DuplicateVersion: two commits got the same version of a share.
//   - RealTime: a commit acknowledged before another was sent got the
//     higher version (the server's order must respect real time).
//   - DuplicateWrite: a read of a list holds one appended value twice (an
//     append applied twice, e.g. a resend the server did not recognise).
//   - Malformed: the history breaks this contract (duplicate or zero
//     written value, a key used as list and register, a final observation
//     that writes); the offending operation is left out.
//
// # Contract
//
// Check never modifies its input, never panics on well-typed input, and
// returns the same Result for the same History: anomalies are sorted by
// kind, then by transaction IDs, then by explanation. Explanations and
// Anomaly.Txns name transactions by ID ("T1:2"); a cycle lists its
// transactions in edge order.
//
// What the recorder must capture, per transaction: the commit ID, the
// share, the verdict (ack version, abort, or nothing), each write with its
// unique value, and each read with the full value seen (the whole list for
// lists) and, when known, the version it was read at; then, once the run
// has settled, one Final transaction reading every key.
package check
