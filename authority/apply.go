package authority

import (
	"fmt"
	"strings"

	"github.com/weft-stm/weft/wire"
)

// Result is the verdict on one commit.
type Result struct {
	ID  wire.CommitID
	Ack bool // true: acknowledged at Version; false: aborted with Code

	Version   uint64      // Ack: the share version the commit created
	Code      wire.Code   // Abort: CodeConflict, CodeDependency, CodeInvalid or CodeInternal
	Message   string      // Abort: for people
	Conflicts []wire.Read // CodeConflict: the invalidated reads, Version set to the version that overwrote each (0: unknown object)

	// Duplicate is true when the commit had already been decided: the
	// verdict is the earlier one, nothing changed, nothing is broadcast.
	Duplicate bool
	// Change is what to broadcast for a new Ack: the commit's writes at
	// Version. Its Writes alias the commit's.
	Change wire.Change
}

// Reply returns the message that answers the commit: *wire.Ack or
// *wire.Abort.
func (r Result) Reply() wire.Message {
	if r.Ack {
		return &wire.Ack{ID: r.ID, Version: r.Version}
	}
	return &wire.Abort{ID: r.ID, Code: r.Code, Message: r.Message, Conflicts: r.Conflicts}
}

// Update returns the Update to send to the share's other sessions under
// handle h, or nil when there is nothing to broadcast (an abort, a
// duplicate).
func (r Result) Update(h wire.ShareHandle) *wire.Update {
	if !r.Ack || r.Duplicate {
		return nil
	}
	return &wire.Update{Share: h, Version: r.Change.Version, Origin: r.Change.Origin, Writes: r.Change.Writes}
}

func (v verdict) result(id wire.CommitID) Result {
	return Result{ID: id, Ack: v.ack, Version: v.version, Code: v.code, Message: v.message, Conflicts: v.conflicts}
}

// Apply decides the commit c and, if it is acknowledged, applies it: the
// share's version goes up by one. An aborted commit changes nothing but the
// memory of verdicts. A commit already decided gets its earlier verdict
// again, with Duplicate set; one whose id was decided for a commit with
// other content (a replica id shared by two clients, or by two lives of
// one without its cache) is aborted with CodeInvalid, and nothing is
// remembered of it. (Verdicts restored from a checkpoint or a log carry no
// content, so that check is only made for commits decided since.)
//
// A new commit whose seq is more than Config.MaxSeqGap beyond the highest
// its replica had decided on the share is aborted with CodeInvalid and not
// remembered.
//
// The checks, in order (the first failing one decides):
//
//  1. deps: each must be a commit acknowledged earlier; an aborted or
//     unknown dep aborts with CodeDependency;
//  2. reads: each must still be current (see doc.go); otherwise
//     CodeConflict with every stale read;
//  3. writes: each must apply to the state left by the ops before it in the
//     commit, and each object it creates must have an id of the commit's
//     replica; otherwise CodeInvalid.
//
// c.Share and c.Snapshot are not used (Apply zeroes c.Share while it
// hashes c, and restores it). Apply keeps c.Writes (in the log and
// in Result.Change): the caller must not modify them afterwards.
func (s *Share) Apply(c *wire.Commit) Result {
	if c == nil {
		return Result{Code: wire.CodeInvalid, Message: "nil commit"}
	}
	digest := s.digest(c)
	if v, ok, forgotten := s.lookup(c.ID); ok {
		if v.digest != 0 && v.digest != digest {
			return Result{ID: c.ID, Code: wire.CodeInvalid, Message: fmt.Sprintf(
				"commit id %v was already used by another commit: replica %d is shared by two clients, or by two lives of one without its cache", c.ID, c.ID.Replica)}
		}
		r := v.result(c.ID)
		r.Duplicate = true
		return r
	} else if forgotten {
		// Not remembered: it may have been acknowledged, so it must not be
		// applied again; it is not decided again either.
		return Result{ID: c.ID, Code: wire.CodeInternal,
			Message: fmt.Sprintf("commit %v is too old: its verdict is no longer kept", c.ID)}
	} else if s.beyondGap(c.ID) {
		// Not remembered either: see Config.MaxSeqGap.
		return Result{ID: c.ID, Code: wire.CodeInvalid, Message: fmt.Sprintf(
			"commit %v numbers more than %d beyond replica %d's highest commit on this share", c.ID, s.cfg.MaxSeqGap, c.ID.Replica)}
	}
	v := s.decide(c)
	v.digest = digest
	r := v.result(c.ID) // every conflict, for the first answer
	v.conflicts = rememberedConflicts(v.conflicts)
	s.remember(c.ID, v)
	if v.ack {
		r.Change = wire.Change{Version: s.version, Origin: c.ID, Writes: c.Writes} // as logged
	}
	return r
}

func (s *Share) decide(c *wire.Commit) verdict {
	depVers := map[uint64]bool{}
	for _, d := range c.Deps {
		dv, ok, forgotten := s.lookup(d)
		switch {
		case forgotten:
			return abort(wire.CodeDependency, "dependency %v is too old: its verdict is no longer kept", d)
		case !ok:
			return abort(wire.CodeDependency, "dependency %v is unknown", d)
		case !dv.ack:
			return abort(wire.CodeDependency, "dependency %v was aborted", d)
		}
		depVers[dv.version] = true
	}
	for _, rd := range c.Reads {
		if rd.Version > s.version {
			// No replica can have seen it: a read "at" it would pass
			// every check below.
			return abort(wire.CodeInvalid, "read of %s at version %d, beyond the share's %d", describeRead(rd), rd.Version, s.version)
		}
	}
	var conflicts []wire.Read
	for _, rd := range c.Reads {
		if s.cfg.InjectSkipReads {
			break
		}
		if ver, ok := s.checkRead(&rd, c.ID.Replica, depVers); !ok {
			rd.Version = ver
			conflicts = append(conflicts, rd)
		}
	}
	if len(conflicts) > 0 {
		return verdict{code: wire.CodeConflict, conflicts: conflicts,
			message: fmt.Sprintf("%d read(s) overwritten, first %v", len(conflicts), describeRead(conflicts[0]))}
	}
	if err := s.checkWrites(c.Writes, false); err != nil {
		return abort(wire.CodeInvalid, "%v", err)
	}
	if err := checkCreators(c); err != nil {
		return abort(wire.CodeInvalid, "%v", err)
	}
	if err := s.checkRefs(c.Writes); err != nil {
		return abort(wire.CodeInvalid, "%v", err)
	}
	s.version++
	for i := range c.Writes {
		s.applyOp(&c.Writes[i], s.version, c.ID.Replica)
	}
	s.forgetTombs()
	s.appendLog(wire.Change{Version: s.version, Origin: c.ID, Writes: c.Writes})
	return verdict{ack: true, version: s.version}
}

// checkCreators checks that the objects c creates have ids of c's
// replica: a replica numbers its own objects, and one that created
// objects with another's ids would take them before it (the other's
// creates then fail as "object id already used"). Only new commits are
// checked: ApplyChange replays what was decided, perhaps before this rule.
func checkCreators(c *wire.Commit) error {
	for i := range c.Writes {
		op := &c.Writes[i]
		if op.Kind == wire.OpCreate && op.Object.Replica != c.ID.Replica {
			return fmt.Errorf("writes[%d] (%v on %v): the object id is replica %d's, not the committing replica %d's",
				i, op.Kind, op.Object, op.Object.Replica, c.ID.Replica)
		}
	}
	return nil
}

func abort(code wire.Code, format string, args ...any) verdict {
	return verdict{code: code, message: fmt.Sprintf(format, args...)}
}

func describeRead(r wire.Read) string {
	switch r.Kind {
	case wire.ReadField:
		return fmt.Sprintf("%v field %d", r.Object, r.Field)
	case wire.ReadKey:
		// A key may be as long as a string may: the message shows its
		// start (an Abort must fit the session's limits).
		k := fmt.Sprint(r.Key)
		if len(k) > 64 {
			k = strings.ToValidUTF8(k[:64], "") + "…"
		}
		return fmt.Sprintf("%v key %s", r.Object, k)
	case wire.ReadIndex:
		return fmt.Sprintf("%v index %d", r.Object, r.Index)
	}
	return fmt.Sprintf("%v (whole)", r.Object)
}

// valid reports whether a part with stamp st is unchanged for a reader that
// saw it at version r, from replica replica with acknowledged deps at the
// versions in deps.
func valid(st stamp, r, replica uint64, deps map[uint64]bool) bool {
	if st.ver <= r {
		return true
	}
	// Overwritten since r, but perhaps only by the reader's own earlier
	// commits, the last of them a dep whose write it read.
	return deps[st.ver] && st.by == replica && st.before <= r
}

// checkRead returns whether rd is still current and, if not, the version of
// the write that overwrote it (0 for an object the share never had).
func (s *Share) checkRead(rd *wire.Read, replica uint64, deps map[uint64]bool) (uint64, bool) {
	o := s.objects[rd.Object]
	if o == nil {
		return 0, false
	}
	sts := [2]stamp{o.whole}
	n := 1
	if !o.removed {
		if part, ok := o.part(rd); ok {
			sts = [2]stamp{part, o.life}
			n = 2
		}
	}
	var bad uint64
	ok := true
	for _, st := range sts[:n] {
		if !valid(st, rd.Version, replica, deps) {
			ok = false
			bad = max(bad, st.ver)
		}
	}
	return bad, ok
}

// ReadCurrent reports whether rd, a read that a client of replica made at
// rd.Version, still holds in this state as far as other replicas go: the
// state has reached rd.Version, has the object, and no other replica wrote
// the part since. The server's validation accepts the reader's own later
// writes only when they are deps it read; a client uses this weaker test
// to decide whether one of its unanswered commits, restored from its
// cache, can be shown on the acknowledged state it restored, where its own
// writes since are those of its earlier commits, which it saw.
func (s *Share) ReadCurrent(rd wire.Read, replica uint64) bool {
	if rd.Version > s.version {
		return false
	}
	o := s.objects[rd.Object]
	if o == nil {
		return false
	}
	sts := [2]stamp{o.whole}
	n := 1
	if !o.removed {
		if part, ok := o.part(&rd); ok {
			sts = [2]stamp{part, o.life}
			n = 2
		}
	}
	for _, st := range sts[:n] {
		if st.ver > rd.Version && (st.by != replica || st.before > rd.Version) {
			return false
		}
	}
	return true
}

// part returns the stamp of the part rd covers, or false when rd covers the
// whole object (ReadWhole, a read kind that does not fit the object's kind,
// an index past the end of a list).
func (o *object) part(rd *wire.Read) (stamp, bool) {
	switch {
	case rd.Kind == wire.ReadField && o.kind == wire.ObjectRecord:
		if f := o.fields[rd.Field]; f != nil {
			return f.st, true
		}
		return stamp{}, true
	case rd.Kind == wire.ReadKey && (o.kind == wire.ObjectMap || o.kind == wire.ObjectSet):
		if e := o.entries[rd.Key]; e != nil {
			return e.st, true
		}
		return loaded(o.keyFloor), true // see pruneAbsent
	case rd.Kind == wire.ReadIndex && o.kind == wire.ObjectList && rd.Index < uint64(len(o.list)):
		return o.list[rd.Index].st, true
	}
	return stamp{}, false
}

// shadow is what write validation tracks of an object while it walks a
// commit's ops.
type shadow struct {
	id      wire.ObjectID
	exists  bool
	kind    wire.ObjectKind
	listLen uint64
}

// shadows holds the shadows of the objects a commit's ops touched so far.
// Most commits touch a few objects: those are searched in a list that
// lives on the caller's stack; a map indexes the list once it grows long.
type shadows struct {
	list  []shadow
	index map[wire.ObjectID]int // nil while the list is short
}

const shadowsLinear = 16

// find returns the position of id's shadow, or -1.
func (ss shadows) find(id wire.ObjectID) int {
	if ss.index != nil {
		if i, ok := ss.index[id]; ok {
			return i
		}
		return -1
	}
	for i := range ss.list {
		if ss.list[i].id == id {
			return i
		}
	}
	return -1
}

// add returns ss with sh appended, at position len(ss.list).
func (ss shadows) add(sh shadow) shadows {
	ss.list = append(ss.list, sh)
	n := len(ss.list)
	switch {
	case ss.index != nil:
		ss.index[sh.id] = n - 1
	case n > shadowsLinear:
		ss.index = make(map[wire.ObjectID]int, 2*n)
		for i := range ss.list {
			ss.index[ss.list[i].id] = i
		}
	}
	return ss
}

// shadowOf returns the shadow of id in the current state.
func (s *Share) shadowOf(id wire.ObjectID) shadow {
	sh := shadow{id: id}
	if o := s.objects[id]; o != nil && !o.removed {
		sh.exists, sh.kind, sh.listLen = true, o.kind, uint64(len(o.list))
	}
	return sh
}

// opObjectKind returns the kind of object op kind k applies to, and
// whether k is an op on an existing object.
func opObjectKind(k wire.OpKind) (wire.ObjectKind, bool) {
	switch k {
	case wire.OpSetField:
		return wire.ObjectRecord, true
	case wire.OpVarSet:
		return wire.ObjectVar, true
	case wire.OpCounterAdd:
		return wire.ObjectCounter, true
	case wire.OpMapPut, wire.OpMapDelete:
		return wire.ObjectMap, true
	case wire.OpSetAdd, wire.OpSetRemove:
		return wire.ObjectSet, true
	case wire.OpListSet, wire.OpListAppend:
		return wire.ObjectList, true
	}
	return 0, false
}

// checkWrites validates ops against the current state without changing it.
// decided (ApplyChange) lets a create take the id of a removed object: the
// authority forgot its tombstone (forgetTombs) when this copy, keeping
// them for longer (a client's TombstonesFor is not the server's), did not.
func (s *Share) checkWrites(ops []wire.Op, decided bool) error {
	var buf [8]shadow
	ss := shadows{list: buf[:0]}
	fail := func(i int, format string, args ...any) error {
		return fmt.Errorf("writes[%d] (%v on %v): %s", i, ops[i].Kind, ops[i].Object, fmt.Sprintf(format, args...))
	}
	for i := range ops {
		op := &ops[i]
		switch op.Kind {
		case wire.OpCreate:
			if op.Object.Replica == 0 {
				// Replica 0 is no client's: its ids are the share's own
				// (a checkpoint's bookkeeping, metaID).
				return fail(i, "object ids of replica 0 are reserved")
			}
			if o, inShare := s.objects[op.Object]; (inShare && !(decided && o.removed)) || ss.find(op.Object) >= 0 {
				return fail(i, "object id already used")
			}
			if op.ObjectKind < wire.ObjectRecord || op.ObjectKind > wire.ObjectList {
				return fail(i, "bad object kind %v", op.ObjectKind)
			}
			if len(op.Fields) > 0 && op.ObjectKind != wire.ObjectRecord {
				return fail(i, "fields on a %v", op.ObjectKind)
			}
			ss = ss.add(shadow{id: op.Object, exists: true, kind: op.ObjectKind})
			continue
		case wire.OpRemove:
			j := ss.find(op.Object)
			if j < 0 {
				j, ss = len(ss.list), ss.add(s.shadowOf(op.Object))
			}
			if !ss.list[j].exists {
				return fail(i, "no such object in the share")
			}
			ss.list[j].exists = false
			continue
		}
		want, ok := opObjectKind(op.Kind)
		if !ok {
			return fail(i, "unknown op kind")
		}
		j := ss.find(op.Object)
		if j < 0 {
			j, ss = len(ss.list), ss.add(s.shadowOf(op.Object))
		}
		sh := &ss.list[j]
		switch {
		case !sh.exists:
			return fail(i, "no such object in the share")
		case sh.kind != want:
			return fail(i, "object is a %v", sh.kind)
		case op.Kind == wire.OpListSet && op.Index >= sh.listLen:
			return fail(i, "index %d out of range (length %d)", op.Index, sh.listLen)
		case op.Kind == wire.OpListAppend:
			sh.listLen += uint64(len(op.Values))
		}
	}
	return nil
}

// applyOp applies one op validated by checkWrites, as a write at version v
// by replica.
func (s *Share) applyOp(op *wire.Op, v, replica uint64) {
	if op.Kind == wire.OpCreate {
		o := newObject(op.Object, op.ObjectKind, op.Class)
		o.life.write(v, replica)
		o.whole.write(v, replica)
		for _, f := range op.Fields {
			s.setField(o, f.ID, f.Value, v, replica)
		}
		s.objects[op.Object] = o
		return
	}
	o := s.objects[op.Object]
	o.whole.write(v, replica)
	switch op.Kind {
	case wire.OpRemove:
		// A tombstone, for TombstonesFor versions (forgetTombs): reads of it
		// conflict with the removal, and its id is not created again.
		s.countRefsOf(o, -1)
		*o = object{id: o.id, kind: o.kind, class: o.class, removed: true, life: o.life, whole: o.whole}
		o.life.write(v, replica)
		s.tombs = append(s.tombs, tomb{ver: v, id: o.id})
	case wire.OpSetField:
		s.setField(o, op.Field, op.Value, v, replica)
	case wire.OpVarSet:
		s.holdRef(o, o.val.val, -1)
		s.holdRef(o, op.Value, 1)
		o.val.val = op.Value
		o.val.st.write(v, replica)
	case wire.OpCounterAdd:
		o.counter += op.Delta // wraps, like int64 arithmetic everywhere
	case wire.OpMapPut, wire.OpSetAdd:
		s.setEntry(o, op.Key, true, op.Value, v, replica)
	case wire.OpMapDelete, wire.OpSetRemove:
		s.setEntry(o, op.Key, false, wire.Null(), v, replica)
	case wire.OpListSet:
		s.holdRef(o, o.list[op.Index].val, -1)
		s.holdRef(o, op.Value, 1)
		o.list[op.Index].val = op.Value
		o.list[op.Index].st.write(v, replica)
	case wire.OpListAppend:
		for _, x := range op.Values {
			s.holdRef(o, x, 1)
			e := elem{val: x}
			e.st.write(v, replica)
			o.list = append(o.list, e)
		}
	}
}

func (s *Share) setField(o *object, id uint32, x wire.Value, v, replica uint64) {
	f := o.fields[id]
	if f == nil {
		f = &elem{}
		o.fields[id] = f
	}
	s.holdRef(o, f.val, -1)
	s.holdRef(o, x, 1)
	f.val = x
	f.st.write(v, replica)
}

func (s *Share) setEntry(o *object, k wire.Value, present bool, x wire.Value, v, replica uint64) {
	e := o.entries[k]
	if e == nil {
		// As a key without an entry reads (object.part): written at
		// keyFloor by no replica known, so that the stamp's before does
		// not pass over the writes pruneAbsent forgot.
		e = &entry{st: loaded(o.keyFloor)}
		o.entries[k] = e
		o.absent++ // until made present below
	}
	if e.present {
		s.holdRef(o, k, -1)
		s.holdRef(o, e.val, -1)
		o.absent++
	}
	if present {
		s.holdRef(o, k, 1)
		s.holdRef(o, x, 1)
		o.absent--
	}
	e.present, e.val = present, x
	e.st.write(v, replica)
	if !present && o.absent > pruneAbsentMin && o.absent > len(o.entries)/2 {
		o.pruneAbsent()
	}
}

// pruneAbsentMin is how many absent entries an object keeps at least
// before pruneAbsent drops them (a variable for tests).
var pruneAbsentMin = 64

// forgetTombs drops the tombstones of objects removed TombstonesFor
// versions ago or more: a share whose objects come and go (the entities
// of a game, the sessions of a service) keeps a bounded number of them,
// in memory and in checkpoints. A read of a forgotten object still
// conflicts (as one of an object the share never had), a write to it is
// still invalid, and no ref can name it (refs.go); only its id may be
// created again, which a client numbering its objects, as the protocol
// asks, never does, and which is harmless if one did: nothing refers to
// the old object, and a read of it conflicts with the new one's creation.
// It depends on the versions alone, so the nodes of a cluster, and a
// share restored from a checkpoint (which keeps the removals' versions),
// forget alike.
func (s *Share) forgetTombs() {
	n := 0
	for n < len(s.tombs) && s.version-s.tombs[n].ver >= s.cfg.TombstonesFor {
		t := s.tombs[n]
		if o := s.objects[t.id]; o != nil && o.removed && o.life.ver == t.ver {
			delete(s.objects, t.id)
		}
		n++
	}
	if n > 0 {
		// The dead prefix goes when append next copies the array.
		s.tombs = s.tombs[n:]
		if len(s.tombs) == 0 {
			s.tombs = nil
		}
	}
}

// pruneAbsent drops o's absent entries (keys deleted, elements removed),
// which were kept only for their stamps: a map whose keys come and go
// (sessions, cursors, orders) would otherwise grow without end. It is
// called once they are more than half of o's entries, so its cost is
// paid once per as many deletes as there are entries. A key without an
// entry then reads as written at keyFloor, the latest version pruned, by
// no replica known (as state restored from a snapshot does): a read of
// it at an older version conflicts, even if the key was not written
// since, and the client retries on a newer state.
func (o *object) pruneAbsent() {
	for k, e := range o.entries {
		if !e.present {
			o.keyFloor = max(o.keyFloor, e.st.ver)
			delete(o.entries, k)
		}
	}
	o.absent = 0
}

// appendLog adds ch to the log, a ring of the last changes: at most
// LogSize of them, of at most LogBytes (changeBytes) in all. The oldest
// make room for the newest; a change larger than LogBytes on its own
// empties the log, and DeltaSince then serves only the current version.
// Once the ring has grown to the count it holds, keeping the log
// allocates nothing per change.
func (s *Share) appendLog(ch wire.Change) {
	if s.cfg.LogSize < 0 {
		s.logFrom = ch.Version
		return
	}
	size := changeBytes(ch)
	for s.logLen > 0 && (s.logLen >= s.cfg.LogSize || s.logBytes+size > s.cfg.LogBytes) {
		s.dropOldestLog()
	}
	if size > s.cfg.LogBytes {
		s.logFrom = ch.Version
		return
	}
	if s.logLen == len(s.log) { // no free slot: grow, unrolling the ring
		grown := make([]logEntry, min(max(2*len(s.log), 16), s.cfg.LogSize))
		for i := range s.logLen {
			grown[i] = s.log[(s.logHead+i)%len(s.log)]
		}
		s.log, s.logHead = grown, 0
	}
	s.log[(s.logHead+s.logLen)%len(s.log)] = logEntry{ch: ch, bytes: size}
	s.logLen++
	s.logBytes += size
	s.logFrom = s.logAt(0).Version - 1
}

// dropOldestLog removes the oldest change from the log, which holds one.
func (s *Share) dropOldestLog() {
	s.logBytes -= s.log[s.logHead].bytes
	s.log[s.logHead] = logEntry{} // its ops are no longer kept alive
	s.logHead = (s.logHead + 1) % len(s.log)
	s.logLen--
}

// logAt returns the log's change i, counted from the oldest.
func (s *Share) logAt(i int) wire.Change { return s.log[(s.logHead+i)%len(s.log)].ch }

// logEntry is a change in the log, with its changeBytes.
type logEntry struct {
	ch    wire.Change
	bytes int
}

// Sizes in bytes of what a change in the log holds, for changeBytes: the
// unsafe.Sizeof of each type on a 64-bit platform (this package may not
// import unsafe; TestChangeBytes checks them).
const (
	changeSize = 48  // wire.Change
	opSize     = 184 // wire.Op
	valueSize  = 40  // wire.Value
	fieldSize  = 48  // wire.Field
)

// changeBytes estimates the memory ch holds: its ops, the values of list
// appends and fields of creates, and the strings and bytes of every value
// (which may share memory: then it counts them more than once, erring on
// the side of keeping less). It is what LogBytes bounds: a change of
// 16384 small writes takes a few bytes each on the wire but about 200
// each here.
func changeBytes(ch wire.Change) int {
	n := changeSize + len(ch.Writes)*opSize
	for i := range ch.Writes {
		op := &ch.Writes[i]
		n += op.Key.Len() + op.Value.Len()
		for _, v := range op.Values {
			n += valueSize + v.Len()
		}
		for _, f := range op.Fields {
			n += fieldSize + f.Value.Len()
		}
	}
	return n
}
