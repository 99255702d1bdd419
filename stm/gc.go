package stm

import (
	"math"
	"sync"
	"weak"
)

// Old versions are reclaimed without a shared write on the transaction
// path, so that transactions on disjoint data scale across cores.
//
// Every transaction state (pooled per processor) announces the snapshot of
// the transaction it runs in a field of its own. Every scanEvery versions,
// the commit that took the version scans the announcements of all states
// and takes the oldest: the low-water mark. No live or future
// snapshot is older, so each chain drops, when it is next written, the
// versions below the newest one at or under the mark (chain.push).
//
// The announcement follows the hazard-pointer pattern: a transaction stores
// the clock it read, then reads the clock again and uses that second value
// as its snapshot. A scan that missed the store began before it, so its mark
// is at most the latest version then, which is at most the snapshot.

const scanEvery = 64

const notActive = math.MaxUint64

// registry lists every transaction state through weak pointers, so that
// states the pool drops are collected and then pruned here.
var registry struct {
	mu     sync.Mutex
	states []weak.Pointer[txState]
}

func register(s *txState) {
	registry.mu.Lock()
	registry.states = append(registry.states, weak.Make(s))
	registry.mu.Unlock()
}

// announce publishes the snapshot the state is about to use and returns it.
func (s *txState) announce(ws *Workspace) uint64 {
	if s.annWS.Load() != ws {
		// What the state kept for its writes goes back to the chains of
		// the workspace it leaves (see spares).
		s.spares.releaseAll()
		// Ordered before annSnap's store: a scan that sees the new
		// snapshot also sees the workspace it belongs to.
		s.annWS.Store(ws)
	}
	s.annSnap.Store(ws.commit.ticket.Load())
	return ws.commit.ticket.Load()
}

// retract withdraws the announcement. annWS stays: it only names whose
// snapshot annSnap would be.
func (s *txState) retract() { s.annSnap.Store(notActive) }

// scanLowWater returns the oldest snapshot any transaction of ws may read.
func (ws *Workspace) scanLowWater() uint64 {
	m := ws.commit.ticket.Load()
	raceAcquire()
	registry.mu.Lock()
	kept := registry.states[:0]
	for _, w := range registry.states {
		s := w.Value()
		if s == nil {
			continue
		}
		kept = append(kept, w)
		if s.annWS.Load() == ws {
			if a := s.annSnap.Load(); a < m {
				m = a
			}
		}
	}
	clear(registry.states[len(kept):])
	registry.states = kept
	registry.mu.Unlock()
	return m
}
