// Package pebblestore is a server.Store in a Pebble database in a directory
// on local disk: the default store of `weft serve -data DIR`.
//
// # Layout
//
// The key "weft/format" holds the format marker ("weft-store v1"), written
// when the store is created. Every other key starts with 's' and the share
// name, escaped so that keys sort by name and no name is a prefix of
// another's keys (0x00 becomes 0x00 0xff, and 0x00 0x01 ends the name),
// then one tag byte:
//
//	0x01                       checkpoint header: version, number of chunks (uvarints)
//	0x02 chunk (4 bytes, BE)   checkpoint objects, a chunk of at most ~1 MiB
//	0x03 version (8 bytes, BE) one change
//
// so that one forward scan reads each share's checkpoint and then its
// changes in version order. Values use the wire codec (see
// store/internal/codec).
//
// # Durability and group commit
//
// Append writes the change in a batch with DB.ApplyNoSyncWait and Sync, and
// its wait is Batch.SyncWait. Pebble's commit pipeline writes batches to
// its write-ahead log in the order they are applied and syncs the log once
// for all the batches written while the previous sync ran, so concurrent
// Appends share syncs (group commit), and a change is durable only once
// every change applied before it is. Checkpoint writes the header and
// chunks and range-deletes the old chunks and the changes it covers in one
// synced batch: a crash leaves the old checkpoint or the new one, never a
// mix.
//
// # Refusals
//
// Open refuses, with an error naming the directory and changing nothing in
// it: a directory holding files but no Pebble database; a Pebble database
// Pebble cannot open (corrupt); one without the marker (another program's),
// unless it holds no key at all and still has its write-ahead log (a
// creation interrupted before the marker); one with another marker; and a
// store that lost its write-ahead log. A missing or empty directory is
// created as a new store.
//
// # The write-ahead log
//
// Until Pebble flushes its memtable to a table, acknowledged changes live
// only in the write-ahead log (the *.log files). The marker is flushed to a
// table when the store is created, so it never depends on the log; and
// the file WEFT-WAL records the number of the newest log, written (synced)
// whenever Pebble creates one, before anything is written to it. Open
// refuses a store with no log numbered that or higher (deleted by a
// cleanup job, say) rather than serve it without the changes that were in
// it; removing WEFT-WAL opens it anyway, losing them.
//
// Pebble takes an unreadable record in the newest log for its end: after a
// crash, a write torn mid-way, never acknowledged, which must not stop a
// restart. A log damaged after a clean shutdown looks the same, so Open
// reads the newest log first and logs a warning (Options.Logger) naming
// the directory, the log and the offset where it stops.
//
// A failed write (a full disk, an I/O error) fails the store: that wait and
// every later Append and Checkpoint return the error; what was synced before
// stays intact for the next Open.
//
// A full disk should not get that far. Pebble cannot go on without the
// next write-ahead log, and stops the process when it cannot make one; so
// the store sets disk space aside (Options.Reserve, 16 MiB or three
// memtables by default, in the file WEFT-RESERVE, allocated but empty)
// and gives it up at the first write that finds the disk full, which is
// then retried into that space (vfs.OnDiskFull). From then on the store
// refuses writes, before starting them, with an error wrapping
// syscall.ENOSPC, while the writes it accepted finish and Load still
// works; each write tries to set the reserve aside again, and once that
// succeeds (space was freed) the store accepts writes again. Open fails
// with a clear error if it cannot set the reserve aside. The space goes to
// whichever write finds the disk full first, a flush or a compaction as
// well as a log, which is why it is three memtables' worth; logs kept on
// another disk (Pebble's WALDir) are not covered. A client's cache
// (cache.go) is failed by the refusal instead, as by a failed write: it
// must not take a change after skipping one.
package pebblestore
