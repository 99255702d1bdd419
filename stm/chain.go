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

// maxFree bounds the nodes a chain keeps for reuse.
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
	if s != nil {
		sp := &s.spares
		if i := c.spare.Load(); sp.chains[i] == c {
			if sp.lens[i]+k <= maxFree {
				last.next, _ = sp.lists[i].(*node[T])
				sp.lists[i], sp.lens[i] = first, sp.lens[i]+k
				return
			}
		} else {
			i := sp.take()
			sp.chains[i], sp.lists[i], sp.lens[i] = c, first, k
			c.spare.Store(i)
			return
		}
	}
	for {
		top := c.free.Load()
		last.next = top
		if c.free.CompareAndSwap(top, first) {
			return
		}
	}
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
				sp.chains[i], sp.lists[i], sp.lens[i] = nil, nil, 0
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
// is found through the chain's spare hint; a chain whose nodes are taken
// away by another (spareSlots chains at a time) leaves them to the garbage
// collector, and the shared free list serves it again.
type spares struct {
	chains [spareSlots]any // the *chain[T] of each slot; nil for an empty one
	lists  [spareSlots]any // its *node[T]s, linked through next
	lens   [spareSlots]int
	evict  int32 // the slot taken next when none is empty
}

const spareSlots = 32

// take returns an empty slot, or empties the next one in turn.
func (sp *spares) take() int32 {
	for i := range sp.chains {
		if sp.chains[i] == nil {
			return int32(i)
		}
	}
	i := sp.evict
	sp.evict = (sp.evict + 1) % spareSlots
	return i
}
