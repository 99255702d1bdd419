package authority

import (
	"cmp"
	"slices"

	"github.com/weft-stm/weft/wire"
)

// Default bounds of a Share's memory (see Config).
const (
	DefaultLogSize  = 1024    // changes kept for DeltaSince
	DefaultLogBytes = 8 << 20 // their memory at most (changeBytes)
	DefaultVerdicts = 1024    // verdicts kept per replica: protocol.md's max_pending_commits
	// DefaultMaxSeqGap: a client numbers its commits across all its
	// shares, so its seqs on one share have gaps as wide as the commits it
	// made on the others (and the Go client's seqs stay below 2^32: its
	// object ids are seq<<32 and up).
	DefaultMaxSeqGap = 1 << 32
	// DefaultRetireAfter: a replica idle for a million versions of a
	// share is forgotten but for its highest seq (Config.RetireAfter).
	DefaultRetireAfter = 1 << 20
	// DefaultTombstonesFor: a removed object's tombstone is kept for a
	// million versions of the share (Config.TombstonesFor).
	DefaultTombstonesFor = 1 << 20
)

// Config bounds the memory of a Share. A zero field means its default.
type Config struct {
	// LogSize is how many recent changes DeltaSince can serve; 0 means
	// DefaultLogSize, and a negative size none (a copy that serves no
	// DeltaSince, as a client's, keeps no change alive).
	LogSize int
	// LogBytes bounds the memory of those changes (an estimate: about 200
	// bytes per op, plus its strings); 0 means DefaultLogBytes. A writer
	// whose every commit fills a frame with small writes would otherwise
	// make the log of each share hold gigabytes. A change larger than
	// LogBytes on its own is not kept: a client behind it gets a
	// snapshot.
	LogBytes int
	// Verdicts is how many decided commits are remembered per replica (the
	// most recently decided ones), so that a resent commit gets its verdict
	// again. protocol.md §9 asks for at least max_pending_commits.
	Verdicts int
	// MaxSeqGap is how far a replica's new commit may number beyond the
	// highest seq of that replica the share decided (remembered or
	// forgotten); 0 means DefaultMaxSeqGap. A commit numbered further is
	// aborted with CodeInvalid and not remembered: forgetting its verdict
	// would raise the replica's horizon (every seq up to the highest
	// forgotten is "too old") as far as one commit chose, up to
	// MaxUint64, refusing every later commit of the replica for good.
	// A replica's first commit on the share is not bounded.
	MaxSeqGap uint64
	// RetireAfter is how many versions a replica may go without a commit
	// decided on the share before its remembered verdicts are forgotten,
	// all but the highest seq decided (retireIdle); 0 means
	// DefaultRetireAfter. A resend of a commit whose verdict was
	// forgotten so is aborted with CodeInternal (its client reports it in
	// doubt): a client that lost its connection before a verdict came
	// and resends it more than that many versions later.
	RetireAfter uint64
	// TombstonesFor is how many versions a removed object's tombstone is
	// kept (forgetTombs); 0 means DefaultTombstonesFor. Within it, a read
	// of the object at a version at or after its removal is current; after
	// it, such a read conflicts, as one of an object the share never had.
	TombstonesFor uint64

	// InjectSkipReads is a fault for testing the history checker (issue
	// #6) and nothing else: commits are acknowledged without validating
	// their reads, so serializability breaks.
	InjectSkipReads bool
}

func (c Config) withDefaults() Config {
	if c.LogSize == 0 {
		c.LogSize = DefaultLogSize
	}
	if c.LogBytes <= 0 {
		c.LogBytes = DefaultLogBytes
	}
	if c.Verdicts <= 0 {
		c.Verdicts = DefaultVerdicts
	}
	if c.MaxSeqGap == 0 {
		c.MaxSeqGap = DefaultMaxSeqGap
	}
	if c.RetireAfter == 0 {
		c.RetireAfter = DefaultRetireAfter
	}
	if c.TombstonesFor == 0 {
		c.TombstonesFor = DefaultTombstonesFor
	}
	return c
}

// Share is the authoritative state of one share: its version, its objects
// with the version of every part, recent changes and recent verdicts. It is a
// deterministic state machine: the same calls in the same order give the same
// results on every node. It is not safe for concurrent use.
type Share struct {
	name     string
	cfg      Config
	version  uint64
	objects  map[wire.ObjectID]*object
	log      []logEntry // the last changes, a ring (appendLog)
	logHead  int        // the oldest change's index in log
	logLen   int        // how many changes log holds
	logBytes int        // their changeBytes
	logFrom  uint64     // DeltaSince(v) works for every v >= logFrom
	verdicts map[uint64]*replicaVerdicts
	// retired holds, for each replica whose verdicts retireIdle forgot,
	// the highest seq it had decided; nextRetire is the version at which
	// remember next looks for idle replicas.
	retired    map[uint64]uint64
	nextRetire uint64
	refs       map[wire.ObjectID]int // live slots holding a ref to each object (refs.go)
	epochs     []wire.Epoch          // the epoch changes held, in version order (epoch.go)
	// tombs are the removals whose tombstones are kept, in version order
	// (forgetTombs).
	tombs   []tomb
	scratch []byte // digest's buffer
}

// New returns an empty share at version 0 with the default Config.
func New(name string) *Share { return NewWithConfig(name, Config{}) }

// NewWithConfig returns an empty share at version 0.
func NewWithConfig(name string, cfg Config) *Share {
	return &Share{name: name, cfg: cfg.withDefaults(),
		objects: map[wire.ObjectID]*object{}, verdicts: map[uint64]*replicaVerdicts{},
		refs: map[wire.ObjectID]int{}}
}

// Name returns the share's name.
func (s *Share) Name() string { return s.name }

// Version returns the share's version: the number of commits acknowledged
// since version 0 (or since the version it was loaded at).
func (s *Share) Version() uint64 { return s.version }

// stamp is the write history of one part, as much as validation needs: the
// version of the last write, the replica that made it, and the version of
// the last write by another replica before the current run of writes by
// that replica (see validRead).
type stamp struct {
	ver    uint64
	by     uint64
	before uint64
}

func (st *stamp) write(v, replica uint64) {
	if st.ver == 0 || st.by != replica {
		st.before = st.ver
	}
	st.ver, st.by = v, replica
}

// loaded is the stamp of state restored from a snapshot: written at v by
// nobody known, so any read older than v conflicts.
func loaded(v uint64) stamp { return stamp{ver: v, by: 0, before: v} }

type elem struct {
	val wire.Value
	st  stamp
}

// entry is a map entry or a set element; absent entries are kept so that
// their version is known, until pruned (object.pruneAbsent).
type entry struct {
	present bool
	val     wire.Value // map value
	st      stamp
}

// tomb is the removal of object id at version ver.
type tomb struct {
	ver uint64
	id  wire.ObjectID
}

// object is one object of the share, or the tombstone of a removed one.
type object struct {
	id      wire.ObjectID
	kind    wire.ObjectKind
	class   uint32
	removed bool
	life    stamp // create and remove: a write to every part
	whole   stamp // the last write to any part (ReadWhole)

	fields  map[uint32]*elem      // record
	val     elem                  // var
	counter int64                 // counter (its stamp is whole)
	entries map[wire.Value]*entry // map, set
	list    []elem                // list (its length's stamp is whole)

	// Map and set: the number of absent entries, and the latest version
	// of those pruneAbsent dropped.
	absent   int
	keyFloor uint64
	// refsIn is the number of refs the object holds (field, var and list
	// values, keys and map values; holdRef): the reference checks skip
	// an object without any.
	refsIn int
}

func newObject(id wire.ObjectID, kind wire.ObjectKind, class uint32) *object {
	o := &object{id: id, kind: kind, class: class}
	switch kind {
	case wire.ObjectRecord:
		o.fields = map[uint32]*elem{}
	case wire.ObjectMap, wire.ObjectSet:
		o.entries = map[wire.Value]*entry{}
	}
	return o
}

// liveIDs returns the ids of the objects in the share, sorted.
func (s *Share) liveIDs() []wire.ObjectID {
	ids := make([]wire.ObjectID, 0, len(s.objects))
	for id, o := range s.objects {
		if !o.removed {
			ids = append(ids, id)
		}
	}
	slices.SortFunc(ids, compareIDs)
	return ids
}

func compareIDs(a, b wire.ObjectID) int {
	return cmp.Or(cmp.Compare(a.Replica, b.Replica), cmp.Compare(a.Seq, b.Seq))
}
