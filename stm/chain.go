package stm

import "sync/atomic"

// node is one committed version of a cell's state. Nodes are immutable once
// their version is published by the workspace clock, except for prev, which
// trimming cuts once no snapshot can reach past the node.
type node[T any] struct {
	ver  uint64
	val  T
	prev atomic.Pointer[node[T]]
	next *node[T] // newer version; written under the commit lock, used by trim
}

// chain is the version history of one cell: a field, a key, a length, a
// list chunk. head is read lock-free; push and trim run under the commit lock.
type chain[T any] struct {
	head    atomic.Pointer[node[T]]
	cut     *node[T] // oldest node still linked; guarded by the commit lock
	trimmed uint64   // low-water mark at the last trim; guarded by the commit lock
}

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
		n = n.prev.Load()
	}
	return n
}

// push publishes n as version ver. The caller holds the commit lock and has
// not yet advanced the clock to ver, so no reader can observe n half-built.
func (c *chain[T]) push(n *node[T], ver uint64, lowWater uint64) {
	old := c.head.Load()
	n.ver = ver
	n.prev.Store(old)
	n.next = nil
	old.next = n
	c.head.Store(n)
	if lowWater > c.trimmed {
		c.trim(lowWater)
	}
}

// trim unlinks every version older than the newest one at or below lowWater:
// no snapshot that can still exist reads them. Each node is passed once over
// the chain's life, so trimming is amortised O(1) per push.
func (c *chain[T]) trim(lowWater uint64) {
	n := c.cut
	for n.next != nil && n.next.ver <= lowWater {
		n = n.next
	}
	if n != c.cut {
		n.prev.Store(nil)
		c.cut = n
	}
	c.trimmed = lowWater
}

// length returns how many versions are still linked (for tests).
func (c *chain[T]) length() int {
	k := 0
	for n := c.head.Load(); n != nil; n = n.prev.Load() {
		k++
	}
	return k
}
