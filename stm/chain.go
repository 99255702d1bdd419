package stm

import "sync/atomic"

// node is one committed version of a cell's state. Nodes are immutable once
// their version is published by the workspace clock, except for prev, which
// trimming cuts once no snapshot can reach past the node.
//
// prev is a plain field, like ver and val, and for the same reasons (an
// atomic store costs a locked instruction per version, a fifth of a
// ten-variable transaction): push writes it before head publishes the
// node, so a reader that loads the node from head sees it; and trimming
// clears it only where no reader goes, on the cut node (a reader stops at
// it: its version is at or under every live snapshot) and on the nodes
// before it, which only snapshots older than the low-water mark reached,
// and those ended before the scan that set the mark (see gc.go).
type node[T any] struct {
	ver  uint64
	val  T
	prev *node[T]
	next *node[T] // newer version; written under the commit lock, used by trim
}

// chain is the version history of one cell: a field, a key, a length, a
// list chunk. head is read lock-free; push and trim run under the commit lock.
type chain[T any] struct {
	head    atomic.Pointer[node[T]]
	cut     *node[T] // oldest node still linked; guarded by the commit lock
	trimmed uint64   // low-water mark at the last trim; guarded by the commit lock
	// free holds trimmed nodes for reuse, linked through next. Trimming
	// pushes (under the commit lock); alloc takes the whole list with one
	// swap, which cannot suffer ABA, and puts back the rest.
	free atomic.Pointer[node[T]]
	// spare is the slot of the transaction state's spares that holds the
	// nodes its last trim recycled, if that state still has them there.
	spare atomic.Int32
}

// hint implements spareChain.
func (c *chain[T]) hint() *atomic.Int32 { return &c.spare }

// maxFree bounds the nodes one trim recycles, and those one slot of a
// transaction state's spares holds.
const maxFree = 2 * scanEvery

// init gives the chain its first version, visible to every snapshot.
func (c *chain[T]) init(val T) {
	n := &node[T]{val: val}
	c.head.Store(n)
	c.cut = n
}

// latest returns the newest published or about-to-be-published version.
// Only the commit path (under the lock) and automatic readers use it.
func (c *chain[T]) latest() *node[T] { return c.head.Load() }

// at returns the newest version not newer than snap. Versions needed by a live
// snapshot are never trimmed (see gc.go), so the walk always ends on a node.
func (c *chain[T]) at(snap uint64) *node[T] {
	n := c.head.Load()
	for n.ver > snap {
		n = n.prev
	}
	return n
}

// push publishes n as version ver. The caller holds the commit lock and has
// not yet advanced the clock to ver, so no reader can observe n half-built.
func (c *chain[T]) push(n *node[T], ver uint64, lowWater uint64) { c.pushIn(n, ver, lowWater, nil) }

// pushIn is push by the commit of s, which keeps what trimming recycles
// for its own next writes to the chain (see spares); s may be nil.
func (c *chain[T]) pushIn(n *node[T], ver uint64, lowWater uint64, s *txState) {
	old := c.head.Load()
	n.ver = ver
	n.prev = old
	n.next = nil
	old.next = n
	c.head.Store(n)
	if lowWater > c.trimmed {
		c.trim(lowWater, s)
	}
}

// trim unlinks every version older than the newest one at or below lowWater:
// no snapshot that can still exist reads them, and no reader can be on them
// (a reader stops at the newest version not newer than its snapshot, which
// is never older than the cut), so they are recycled. Each node is passed
// once over the chain's life, so trimming is amortised O(1) per push.
func (c *chain[T]) trim(lowWater uint64, s *txState) {
	old := c.cut
	n := old
	for n.next != nil && n.next.ver <= lowWater {
		n = n.next
	}
	c.trimmed = lowWater
	if n == old {
		return
	}
	n.prev = nil
	c.cut = n
	// Recycle old .. n's predecessor, at most maxFree of them.
	var first, last *node[T]
	k := 0
	for x := old; x != n && k < maxFree; k++ {
		nx := x.next
		x.prev = nil
		x.next = first
		if first == nil {
			last = x
		}
		first = x
		x = nx
	}
	if first == nil {
		return
	}
	if s != nil && s.spares.keep(c, first, k, func(rest any) { last.next, _ = rest.(*node[T]) }) {
		return
	}
	c.giveBack(first, last)
}

// giveBack pushes the nodes first..last (linked through next) onto the
// shared free list.
func (c *chain[T]) giveBack(first, last *node[T]) {
	for {
		top := c.free.Load()
		last.next = top
		if c.free.CompareAndSwap(top, first) {
			return
		}
	}
}

// release implements spareChain.
func (c *chain[T]) release(list any) {
	first := list.(*node[T])
	last := first
	for last.next != nil {
		last = last.next
	}
	c.giveBack(first, last)
}

// allocIn is alloc for a write of s: a node s kept from trimming the chain
// if it has one, without an atomic operation; s may be nil.
func (c *chain[T]) allocIn(s *txState) *node[T] {
	if s != nil {
		sp := &s.spares
		if i := c.spare.Load(); sp.chains[i] == c {
			n := sp.lists[i].(*node[T])
			if n.next != nil {
				sp.lists[i], sp.lens[i] = n.next, sp.lens[i]-1
			} else {
				sp.clear(i)
			}
			n.next = nil
			return n
		}
	}
	return c.alloc()
}

// alloc returns a node for a new version: a recycled one if any. The node's
// val holds stale data the caller overwrites.
func (c *chain[T]) alloc() *node[T] {
	n := c.free.Swap(nil)
	if n == nil {
		return &node[T]{}
	}
	if rest := n.next; rest != nil {
		// Put the rest back; if trimming refilled the list meanwhile, let
		// the garbage collector have ours.
		c.free.CompareAndSwap(nil, rest)
	}
	n.next = nil
	return n
}

// length returns how many versions are still linked (for tests).
func (c *chain[T]) length() int {
	k := 0
	for n := c.head.Load(); n != nil; n = n.prev {
		k++
	}
	return k
}

// spares holds, per chain, the nodes that the commits of one transaction
// state recycled (chain.trim), for that state's next writes to the chain:
// a goroutine that keeps writing the same cells reuses their versions
// without the shared free list's two atomic operations per write. A slot
// is found through the chain's spare hint (or a search, when another
// state moved the hint). What a state keeps goes back to the chains'
// shared lists when another chain needs its slot, when the slot has not
// been used for staleTrims of the state's trims (so that a state keeps
// no chain, and thus no object or workspace, alive for long after it
// stopped writing it), and when the state moves to another workspace.
type spares struct {
	chains [spareSlots]spareChain // nil for an empty slot
	lists  [spareSlots]any        // the slot's *node[T]s, linked through next
	lens   [spareSlots]int
	used   [spareSlots]uint32 // tick of the slot's last use
	tick   uint32             // counts the state's trims
	evict  int32              // the slot taken next when none is empty
	age    int32              // the slot checked for staleness next
}

// spareChain is a *chain[T] as spares sees it.
type spareChain interface {
	release(list any)    // pushes a list of its nodes onto its shared free list
	hint() *atomic.Int32 // the chain's spare
}

const (
	spareSlots = 32
	staleTrims = 1024
)

// keep adds the list of k nodes from first to c's slot (link sets the
// next of the list's last node), or gives c a slot, and reports whether
// it did: not when c's slot holds maxFree nodes already.
func (sp *spares) keep(c spareChain, first any, k int, link func(rest any)) bool {
	sp.tick++
	sp.expire()
	h := c.hint()
	i := h.Load()
	if sp.chains[i] != c {
		i = -1
		for j := range sp.chains {
			if sp.chains[j] == c {
				i = int32(j)
				h.Store(i)
				break
			}
		}
	}
	if i >= 0 {
		if sp.lens[i]+k > maxFree {
			return false
		}
		link(sp.lists[i])
		sp.lists[i], sp.lens[i], sp.used[i] = first, sp.lens[i]+k, sp.tick
		return true
	}
	i = sp.take()
	sp.chains[i], sp.lists[i], sp.lens[i], sp.used[i] = c, first, k, sp.tick
	h.Store(i)
	return true
}

// take returns an empty slot, or empties the next one in turn.
func (sp *spares) take() int32 {
	for i := range sp.chains {
		if sp.chains[i] == nil {
			return int32(i)
		}
	}
	i := sp.evict
	sp.evict = (sp.evict + 1) % spareSlots
	sp.releaseSlot(i)
	return i
}

// expire releases the next slot in turn if it went unused for staleTrims
// trims.
func (sp *spares) expire() {
	i := sp.age
	sp.age = (sp.age + 1) % spareSlots
	if sp.chains[i] != nil && sp.tick-sp.used[i] > staleTrims {
		sp.releaseSlot(i)
	}
}

func (sp *spares) releaseSlot(i int32) {
	if sp.chains[i] != nil {
		sp.chains[i].release(sp.lists[i])
	}
	sp.clear(i)
}

func (sp *spares) clear(i int32) {
	sp.chains[i], sp.lists[i], sp.lens[i], sp.used[i] = nil, nil, 0, 0
}

// releaseAll empties every slot.
func (sp *spares) releaseAll() {
	for i := range sp.chains {
		sp.releaseSlot(int32(i))
	}
}
