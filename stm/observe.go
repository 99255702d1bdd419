package stm

import (
	"slices"
	"sync"
	"sync/atomic"
)

// Observable is anything Subscribe accepts: *Var, *Counter, *Map, *Set,
// *List and *Object.
type Observable interface {
	observed() *base
}

func (b *base) observed() *base { return b }

// Change tells an observer what the commits since its last call changed.
// Several commits are coalesced into one Change when the observer is slower
// than they arrive.
type Change struct {
	Version uint64    // the version of the latest commit included
	Commits int       // how many commits this Change covers (0 if it only carries more of one the previous Change counted)
	Fields  []FieldID // for an *Object: the fields that changed; 0 stands for its unknown fields (record.go)
	Keys    []any     // for a *Map or *Set: keys changed; for a *List: indices written
}

// Subscription is an observer registered with Subscribe.
type Subscription struct {
	ws      *Workspace
	b       *base
	fn      func(Change)
	mu      sync.Mutex
	pending Change
	has     bool
	running bool
	closed  bool
	fields  map[FieldID]struct{}
	keys    map[any]struct{}
}

// subscribers is an object's observer list, copied on write so that the
// commit path reads it with one atomic load.
type subscribers struct {
	list atomic.Pointer[[]*Subscription]
}

func (s *subscribers) any() bool { return s.list.Load() != nil }

// Observed reports whether a subscription would hear of a change of x:
// one to x itself, for a field or collection of a record one to the
// record, and for a record one to any of its fields or collections. A
// replica applying other replicas' commits together may then count them
// as it likes (Tx.SetCommits), as no observer counts them. A Subscribe
// that runs concurrently is not seen.
func Observed(x Observable) bool {
	if o, ok := x.(*Object); ok && o.partSubs.Load() > 0 {
		return true
	}
	b := x.observed()
	return b.subs.any() || (b.owner != nil && b.owner.subs.any())
}

// Subscribe calls fn after each commit that changed obj, with what changed.
// Calls for one subscription never overlap; while fn runs, later commits are
// coalesced into the next call. A commit never waits for an observer.
// obj must belong to ws.
func (ws *Workspace) Subscribe(obj Observable, fn func(Change)) *Subscription {
	b := obj.observed()
	if b.ws != ws {
		panic("stm: Subscribe to an object of another workspace")
	}
	sub := &Subscription{ws: ws, b: b, fn: fn}
	ws.subMu.Lock()
	old := b.subs.list.Load()
	var l []*Subscription
	if old != nil {
		l = slices.Clone(*old)
	}
	l = append(l, sub)
	b.subs.list.Store(&l)
	if b.owner != nil {
		b.owner.partSubs.Add(1)
	}
	ws.subMu.Unlock()
	return sub
}

// Close ends the subscription; a call already running finishes.
func (s *Subscription) Close() {
	s.ws.subMu.Lock()
	s.mu.Lock()
	closed := s.closed
	s.closed = true
	s.mu.Unlock()
	if !closed {
		if old := s.b.subs.list.Load(); old != nil {
			l := slices.DeleteFunc(slices.Clone(*old), func(x *Subscription) bool { return x == s })
			if len(l) == 0 {
				s.b.subs.list.Store(nil)
			} else {
				s.b.subs.list.Store(&l)
			}
		}
		if s.b.owner != nil {
			s.b.owner.partSubs.Add(-1)
		}
	}
	s.ws.subMu.Unlock()
}

// post merges a change of the commit at version ver into the pending one,
// adding commits to its count, and starts a delivery if none runs.
func (s *Subscription) post(ver uint64, commits int, field FieldID, hasField bool, keys []any) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.pending.Version = max(s.pending.Version, ver)
	s.pending.Commits += commits
	if hasField {
		if s.fields == nil {
			s.fields = map[FieldID]struct{}{}
		}
		if _, ok := s.fields[field]; !ok {
			s.fields[field] = struct{}{}
			s.pending.Fields = append(s.pending.Fields, field)
		}
	}
	for _, k := range keys {
		if s.keys == nil {
			s.keys = map[any]struct{}{}
		}
		if _, ok := s.keys[k]; !ok {
			s.keys[k] = struct{}{}
			s.pending.Keys = append(s.pending.Keys, k)
		}
	}
	s.has = true
	start := !s.running
	s.running = true
	s.mu.Unlock()
	if start {
		s.ws.dispatch(s.deliver)
	}
}

// deliver calls fn until nothing is pending.
func (s *Subscription) deliver() {
	for {
		s.mu.Lock()
		if !s.has || s.closed {
			s.running = false
			s.mu.Unlock()
			return
		}
		c := s.pending
		s.pending, s.has, s.fields, s.keys = Change{}, false, nil, nil
		s.mu.Unlock()
		s.fn(c)
	}
}

// SetCommits makes the transaction's commit count as n commits in the
// Changes its observers get (Change.Commits), where a commit counts as
// one: a replica that applies n commits of other replicas as one local
// commit says so. The last call wins; n below 1 counts as 1.
func (tx *Tx) SetCommits(n int) { tx.st().commits = n }

// changeSet collects, during a commit, what observed objects changed.
type changeSet struct {
	items []changeItem
}

type changeItem struct {
	b    *base
	keys []any
}

// wants reports whether anyone observes b (directly or through its record).
func (cs *changeSet) wants(b *base) bool { return Observed(b) }

func (cs *changeSet) add(b *base, keys []any) {
	cs.items = append(cs.items, changeItem{b: b, keys: keys})
}

// deliver posts the changes of the commit at version ver, which stands
// for commits commits (Tx.SetCommits). A subscription that gets several
// posts of the commit (an observed record, one per field changed) counts
// it on the first.
func (cs *changeSet) deliver(ver uint64, commits int) {
	var buf [8]*Subscription
	counted := buf[:0]
	var many map[*Subscription]bool // once counted is long
	count := func(s *Subscription) int {
		switch {
		case many != nil:
			if many[s] {
				return 0
			}
			many[s] = true
		case slices.Contains(counted, s):
			return 0
		case len(counted) == 16:
			many = map[*Subscription]bool{s: true}
			for _, c := range counted {
				many[c] = true
			}
		default:
			counted = append(counted, s)
		}
		return commits
	}
	for _, it := range cs.items {
		if l := it.b.subs.list.Load(); l != nil {
			for _, s := range *l {
				s.post(ver, count(s), 0, false, it.keys)
			}
		}
		if o := it.b.owner; o != nil {
			if l := o.subs.list.Load(); l != nil {
				for _, s := range *l {
					s.post(ver, count(s), it.b.field, true, nil)
				}
			}
		}
	}
}
