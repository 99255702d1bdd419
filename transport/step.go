package transport

import (
	"cmp"
	"container/heap"
	"hash/fnv"
	"slices"
)

// End names the receiving end of a connection of a Network: the
// connection's ID and the endpoint the end belongs to (its LocalAddr).
type End struct {
	Conn uint64
	To   string
}

// Waiting returns the ends that have messages in flight to them, sorted:
// the choices of a simulator that delivers one message at a time (see
// DeliverOne), in an order that does not depend on which goroutine sent
// first.
func (n *Network) Waiting() []End {
	n.mu.Lock()
	defer n.mu.Unlock()
	var ends []End
	for _, f := range n.flights {
		e := End{Conn: f.to.id, To: f.to.local}
		if !slices.Contains(ends, e) {
			ends = append(ends, e)
		}
	}
	slices.SortFunc(ends, func(a, b End) int {
		return cmp.Or(cmp.Compare(a.Conn, b.Conn), cmp.Compare(a.To, b.To))
	})
	return ends
}

// DeliverOne delivers the oldest message in flight to end e, whatever its
// due tick (time does not move), as Advance would have delivered it. It
// returns a hash of what was delivered (the frame's bytes when the network
// encodes, else the message type) and whether there was a message. A
// simulator that delivers one message per step, waiting for the receiver
// to be done with it, gets the same run from the same choices.
func (n *Network) DeliverOne(e End) (uint64, bool) {
	h, k := n.DeliverN(e, 1)
	return h, k == 1
}

// DeliverN is DeliverOne for the up to k oldest messages in flight to e,
// in order, delivered at once: the receiver finds them all arrived (its
// Buffered says so after each Recv), as a TCP connection may hand over a
// burst. It returns a hash of what was delivered and how many messages.
func (n *Network) DeliverN(e End, k int) (uint64, int) {
	n.mu.Lock()
	defer n.mu.Unlock()
	h := fnv.New64a()
	done := 0
	for ; done < k; done++ {
		best := -1
		for i, f := range n.flights {
			if f.to.id == e.Conn && f.to.local == e.To && (best < 0 || f.order < n.flights[best].order) {
				best = i
			}
		}
		if best < 0 {
			break
		}
		f := heap.Remove(&n.flights, best).(*flight)
		f.to.inflight--
		if f.it.frame != nil {
			h.Write(f.it.frame)
		} else {
			h.Write([]byte{byte(f.t)})
		}
		n.deliverLocked(f)
	}
	return h.Sum64(), done
}
