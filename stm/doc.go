// Package stm is Weft's transactional core: a multi-version software
// transactional memory over a workspace's objects.
//
// # Basics
//
// A Workspace holds transactional objects: Var (a single value), Counter,
// Map, Set, List, and Object (a record of a Class, whose fields are such
// cells; generated classes wrap it). A transaction reads one consistent
// snapshot of all of them and buffers its writes; its commit validates that
// nothing it read has changed since the snapshot and then applies every
// write at once, as the workspace's next version.
//
//	ws := stm.NewWorkspace()
//	from, to := stm.NewVar(ws, 100), stm.NewVar(ws, 0)
//	err := ws.Atomically(ctx, func(tx *stm.Tx) error {
//		if from.Get(tx) < 10 {
//			return tx.Retry() // wait until from changes, then run again
//		}
//		from.Set(tx, from.Get(tx)-10)
//		to.Set(tx, to.Get(tx)+10)
//		return nil
//	})
//
// Every accessor takes the transaction as its first argument. Passing
// stm.Auto instead runs that one call as its own automatic transaction,
// committed at once: balance.Set(stm.Auto, 3). Calls that answer something
// only the commit can know (Set.Add's "was it absent?", Map.Put's old value)
// return the zero value under Auto.
//
// # Guarantees
//
//   - Snapshot reads: a transaction sees the state as of its snapshot and
//     its own writes, whatever commits meanwhile. A read-only transaction
//     (View, BeginReadOnly, or one that wrote nothing) never conflicts and
//     never waits for another transaction; at most, reading an object, it
//     lets a commit that is installing that object finish (no user code
//     runs meanwhile).
//   - Serializable commits: a transaction that wrote commits only if
//     nothing it read changed after its snapshot; commits are totally
//     ordered by version. Commits of disjoint objects run in parallel: a
//     commit locks only the objects it writes.
//   - Conflicts are per field of a record, per key of a map or set, per
//     index of a list, not per object. Writes that read nothing (Var.Set,
//     Counter.Add, Map.PutFast, Set.AddFast, List.Append) never cause a
//     conflict. Len and iteration read the size or the whole contents.
//   - A conflict is a *ConflictError naming the object, field, and key or
//     index; errors.Is(err, ErrConflict) matches it.
//   - Old versions are reclaimed once no live snapshot can read them: an
//     object drops them (at most scanEvery commits after that) when it is
//     next written, so memory stays flat under any run of commits; an
//     object never written again keeps the versions it has.
//
// # Transactions
//
// Atomically retries on conflict (with backoff, see WithBackoff) and on
// Retry, and returns fn's own error untouched. View is its read-only
// counterpart. Run returns the commit's Handle: a future that reaches
// Applied, then Acknowledged or Aborted (or InDoubt, when the verdict of a
// remote authority cannot reach it any more). Embedded, a commit is
// acknowledged as soon as it is applied; a remote authority (a Weft
// server) answers later through the same Handle. Begin / Commit / Abort
// are for code that holds a transaction itself. Tx.Nested runs a nested transaction whose
// writes are kept if it returns nil; Tx.OrElse tries alternatives.
//
// Observers (Workspace.Subscribe) are called after each commit that changed
// what they watch, with the fields, keys or indices that changed; a slow
// observer receives the commits that happened meanwhile coalesced into one
// call, and never holds up a commit.
//
// # Records and schema evolution
//
// EncodeRecord and DecodeRecord turn a record into the wire protocol's form
// and back: the form the network and storage layers carry. Fields are keyed
// by their stable ids, so two versions of a class interoperate: data
// written under an older class reads under a newer one (new fields keep
// their zero value), and data written under a newer class reads under an
// older one with the fields the older class lacks kept on the object as
// unknown fields, written back unchanged by EncodeRecord, never dropped.
//
// # Caveats
//
//   - A Tx is valid only inside the function it was given to, or between
//     Begin and Commit/Abort. Using it afterwards panics; committing twice
//     returns ErrTxDone. Inside the function of Atomically, View, Run (or
//     Call, for a layer with its own commit loop), Commit and AwaitChange
//     return ErrEndInFn and Abort panics with it: the runner commits. An
//     object of another workspace stops the function with
//     ErrWrongWorkspace. A Tx is not safe for concurrent use.
//   - fn may run several times: it must not have effects outside the
//     transaction (no I/O, no sending on channels) other than ones that are
//     safe to repeat.
//   - Values are stored as given. Slices and maps stored in a Var must be
//     treated as immutable afterwards.
//   - A transaction left open (Begin without Commit or Abort) pins the
//     versions its snapshot reads until it is ended or garbage collected.
//   - A panic inside fn rolls the transaction back and continues upward.
//   - An index out of range panics, as for a Go slice.
//
// # Purity
//
// The package does no I/O, reads no clock, starts no goroutine of its own
// except through the dispatcher it is given for observers (WithDispatcher),
// and uses no global random source, so that a simulation can drive it
// deterministically. A test enforces its import list.
package stm
