package transport

import (
	"bytes"
	"container/heap"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync"

	"github.com/weft-stm/weft/wire"
)

// Network is an in-memory network of named endpoints, for tests and
// deterministic simulation. It starts no goroutine and never reads the
// clock: time is a tick counter that only Advance moves, and every random
// choice comes from one PCG source seeded by NewNetwork. Given the same
// seed and the same calls in the same order (Send, Advance, Dial, the fault
// controls, ...), it makes the same choices and delivers the same frames at
// the same ticks; Events records them.
//
// Endpoints are names. A Listener is bound to a name; a dialler names
// itself and the listener it calls (Dial's from and to). Faults apply to
// messages, at Send, in this order:
//
//  1. Partition: if from and to are partitioned the message is lost. It is
//     also lost if they are partitioned when it falls due (so messages in
//     flight when a partition starts are lost). Dial across a partition
//     fails with ErrUnreachable. Existing connections are not broken: their
//     messages vanish until Heal, as in a real partition before timeouts.
//  2. Drop: with probability Faults.Drop the message is lost.
//  3. Duplicate: with probability Faults.Duplicate a message that was not
//     lost is delivered twice, each copy with its own delay.
//  4. Delay: each copy falls due after a delay drawn uniformly from
//     [Faults.MinDelay, Faults.MaxDelay] ticks. Without Faults.Reorder a
//     copy never falls due before one sent earlier on the same connection
//     in the same direction (its due tick is raised to that one's), so each
//     direction stays in order; with Reorder the delays are independent and
//     later messages may overtake earlier ones. A copy whose due tick is the
//     current tick is delivered during Send; the others when Advance
//     reaches their tick, in order of due tick and then of sending.
//
// Delivered messages wait in the receiving end's queue for Recv. Lost
// messages are lost silently, unlike over TCP, where a stream either
// delivers every frame in order or breaks: Drop and Duplicate model an
// unreliable session layer, while Cut models a broken stream. The zero
// Faults (the default) make a perfect network: no loss, no delay, in order.
//
// Messages pass through the real codec by default: Send validates and
// encodes with a wire.Writer under the sending end's limits, and Recv
// decodes under the receiving end's, so the same bytes as over TCP are
// exercised and the receiver owns what it gets. SetEncoding(false) passes
// the message values themselves (validated, not encoded): faster, but the
// receiver gets the sender's pointer, and both copies of a duplicate are the
// same pointer; but for Updates, which each Recv copies (the Update and
// its Writes), since a weft client gives the Updates it receives back for
// reuse (wire.ReleaseUpdate) while a server sends one to many sessions.
//
// Network is safe for concurrent use, but determinism needs a
// deterministic order of calls, such as one goroutine driving every
// endpoint.
type Network struct {
	mu        sync.Mutex
	rng       *rand.Rand
	now       uint64
	seq       uint64 // messages sent
	order     uint64 // copies scheduled, for ties between due ticks
	conns     uint64 // connections made
	faults    Faults
	raw       bool // SetEncoding(false)
	listeners map[string]*MemListener
	parts     map[[2]string]bool
	flights   flightHeap
	record    bool
	events    []Event
}

// Faults are the random faults of a Network; see Network for what each
// does. The zero Faults is a perfect network.
type Faults struct {
	Drop      float64 // probability that a message is lost, 0 to 1
	Duplicate float64 // probability that a message not lost is delivered twice, 0 to 1
	MinDelay  uint64  // least delay of a message, in ticks
	MaxDelay  uint64  // greatest delay of a message, in ticks; raised to MinDelay if less
	Reorder   bool    // delays are independent, so messages may overtake each other
}

// NewNetwork returns a perfect network (zero Faults) at tick 0 whose random
// choices come from a PCG source seeded with seed.
func NewNetwork(seed uint64) *Network {
	return &Network{
		rng:       rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15)),
		listeners: make(map[string]*MemListener),
		parts:     make(map[[2]string]bool),
	}
}

// SetFaults sets the faults that apply to messages sent from now on.
// Probabilities are clamped to [0, 1].
func (n *Network) SetFaults(f Faults) {
	f.Drop = min(max(f.Drop, 0), 1)
	f.Duplicate = min(max(f.Duplicate, 0), 1)
	f.MaxDelay = max(f.MaxDelay, f.MinDelay)
	n.mu.Lock()
	n.faults = f
	n.mu.Unlock()
}

// SetEncoding chooses whether messages pass through the codec (true, the
// default) or as the values sent.
func (n *Network) SetEncoding(on bool) {
	n.mu.Lock()
	n.raw = !on
	n.mu.Unlock()
}

// SetRecording turns the recording of Events on or off (off by default,
// so that a long simulation does not keep every event).
func (n *Network) SetRecording(on bool) {
	n.mu.Lock()
	n.record = on
	n.mu.Unlock()
}

// Events returns the events recorded since the last call, and forgets them.
func (n *Network) Events() []Event {
	n.mu.Lock()
	defer n.mu.Unlock()
	ev := n.events
	n.events = nil
	return ev
}

// Now returns the current tick.
func (n *Network) Now() uint64 {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.now
}

// InFlight returns the number of message copies sent and not yet due.
func (n *Network) InFlight() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return len(n.flights)
}

// NextDue returns the tick at which the next message in flight falls due,
// and false when none is in flight.
func (n *Network) NextDue() (uint64, bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if len(n.flights) == 0 {
		return 0, false
	}
	return n.flights[0].due, true
}

// Advance moves time forward by ticks, delivering (or losing, see Network)
// every message copy that falls due meanwhile, in order of due tick and
// then of sending.
func (n *Network) Advance(ticks uint64) {
	n.mu.Lock()
	defer n.mu.Unlock()
	end := n.now + ticks
	for len(n.flights) > 0 && n.flights[0].due <= end {
		f := heap.Pop(&n.flights).(*flight)
		n.now = f.due
		f.to.inflight--
		n.deliverLocked(f)
	}
	n.now = end
}

// Partition cuts all traffic between endpoints a and b, both ways, until
// Heal: dials fail, and messages sent across it, or in flight when they
// fall due, are dropped. Connections across it stay up, losing what they
// carry, which TCP never does (it retransmits, then resets the
// connection): to model a TCP partition, Cut the connections too, as the
// simulation does (sim's toggleOffline).
func (n *Network) Partition(a, b string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.parts[pair(a, b)] = true
	n.eventLocked(Event{Kind: EventPartition, From: a, To: b})
}

// Heal ends a partition between a and b: messages sent from then on pass.
func (n *Network) Heal(a, b string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	delete(n.parts, pair(a, b))
	n.eventLocked(Event{Kind: EventHeal, From: a, To: b})
}

func pair(a, b string) [2]string {
	if b < a {
		a, b = b, a
	}
	return [2]string{a, b}
}

// Cut breaks connection c (either end of it), as a network failure
// breaks a TCP connection: messages in flight on it are lost; each end can
// still Recv what was already delivered to it, and then Recv, like Send,
// returns ErrReset.
func (n *Network) Cut(c *MemConn) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if c.reset {
		return
	}
	for _, e := range [2]*MemConn{c, c.peer} {
		e.reset = true
		e.wakeLocked()
	}
	n.eventLocked(Event{Kind: EventCut, Conn: c.id, From: c.local, To: c.remote})
}

// Listen binds a listener to name. Its connections start with the default
// limits.
func (n *Network) Listen(name string) (*MemListener, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if _, ok := n.listeners[name]; ok {
		return nil, fmt.Errorf("transport: listen %q: address in use", name)
	}
	l := &MemListener{n: n, name: name, wake: make(chan struct{})}
	n.listeners[name] = l
	return l, nil
}

// Dial connects endpoint from to the listener at to. Connecting takes no
// time and no message: the connection exists at once at both ends, and the
// listener's next Accept returns its other end. It fails with ErrRefused
// when nothing listens at to, ErrUnreachable when from and to are
// partitioned. The connection starts with the default limits.
func (n *Network) Dial(ctx context.Context, from, to string) (*MemConn, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	l := n.listeners[to]
	if l == nil {
		return nil, fmt.Errorf("transport: dial %q: %w", to, ErrRefused)
	}
	if n.parts[pair(from, to)] {
		return nil, fmt.Errorf("transport: dial %q from %q: %w", to, from, ErrUnreachable)
	}
	n.conns++
	c := n.newConnLocked(n.conns, from, to)
	s := n.newConnLocked(n.conns, to, from)
	c.peer, s.peer = s, c
	l.queue = append(l.queue, s)
	l.wakeLocked()
	n.eventLocked(Event{Kind: EventDial, Conn: c.id, From: from, To: to})
	return c, nil
}

// Dialer returns a Dialer that dials from endpoint from.
func (n *Network) Dialer(from string) Dialer {
	return func(ctx context.Context, addr string) (Conn, error) {
		return n.Dial(ctx, from, addr)
	}
}

func (n *Network) newConnLocked(id uint64, local, remote string) *MemConn {
	lim := wire.DefaultLimits()
	c := &MemConn{n: n, id: id, local: local, remote: remote, lim: lim, wake: make(chan struct{})}
	c.w = wire.NewWriter(&c.buf, lim)
	return c
}

func (n *Network) eventLocked(e Event) {
	if n.record {
		e.Tick = n.now
		n.events = append(n.events, e)
	}
}

// sendLocked applies the faults to a message from c and schedules its
// copies.
func (n *Network) sendLocked(c *MemConn, it item, t wire.Type) {
	n.seq++
	ev := Event{Kind: EventSend, Conn: c.id, From: c.local, To: c.remote, Seq: n.seq, Type: t}
	n.eventLocked(ev)
	if n.parts[pair(c.local, c.remote)] {
		ev.Kind, ev.Note = EventDrop, "partition"
		n.eventLocked(ev)
		return
	}
	f := n.faults
	if f.Drop > 0 && n.rng.Float64() < f.Drop {
		ev.Kind, ev.Note = EventDrop, "random"
		n.eventLocked(ev)
		return
	}
	copies := 1
	if f.Duplicate > 0 && n.rng.Float64() < f.Duplicate {
		copies = 2
		ev.Kind = EventDuplicate
		n.eventLocked(ev)
	}
	to := c.peer
	for range copies {
		due := n.now + f.MinDelay
		if f.MaxDelay > f.MinDelay {
			due += n.rng.Uint64N(f.MaxDelay - f.MinDelay + 1)
		}
		if !f.Reorder {
			due = max(due, to.lastDue)
			to.lastDue = due
		}
		n.order++
		fl := &flight{due: due, order: n.order, seq: n.seq, to: to, it: it, t: t}
		if due == n.now {
			n.deliverLocked(fl)
			continue
		}
		to.inflight++
		heap.Push(&n.flights, fl)
	}
}

func (n *Network) deliverLocked(f *flight) {
	to := f.to
	ev := Event{Kind: EventDeliver, Conn: to.id, From: to.remote, To: to.local, Seq: f.seq, Type: f.t}
	switch {
	case n.parts[pair(to.local, to.remote)]:
		ev.Kind, ev.Note = EventDrop, "partition"
	case to.reset:
		ev.Kind, ev.Note = EventDrop, "reset"
	case to.closed:
		ev.Kind, ev.Note = EventDrop, "closed"
	default:
		to.inbox = append(to.inbox, f.it)
	}
	n.eventLocked(ev)
	to.wakeLocked()
}

// MemListener is a listener on a Network.
type MemListener struct {
	n      *Network
	name   string
	queue  []*MemConn // dialled, not yet accepted (guarded by n.mu)
	closed bool       // guarded by n.mu
	wake   chan struct{}
}

// Accept returns the next connection dialled to the listener.
func (l *MemListener) Accept(ctx context.Context) (Conn, error) {
	n := l.n
	for {
		n.mu.Lock()
		if l.closed {
			n.mu.Unlock()
			return nil, ErrClosed
		}
		if len(l.queue) > 0 {
			c := l.queue[0]
			l.queue[0] = nil
			l.queue = l.queue[1:]
			n.mu.Unlock()
			return c, nil
		}
		w := l.wake
		n.mu.Unlock()
		select {
		case <-w:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// Close unbinds the listener's name. Connections dialled and not accepted
// are reset.
func (l *MemListener) Close() error {
	n := l.n
	n.mu.Lock()
	defer n.mu.Unlock()
	if l.closed {
		return nil
	}
	l.closed = true
	delete(n.listeners, l.name)
	for _, s := range l.queue {
		for _, e := range [2]*MemConn{s, s.peer} {
			e.reset = true
			e.wakeLocked()
		}
	}
	l.queue = nil
	l.wakeLocked()
	return nil
}

// Addr returns the listener's name.
func (l *MemListener) Addr() string { return l.name }

func (l *MemListener) wakeLocked() {
	close(l.wake)
	l.wake = make(chan struct{})
}

// MemConn is one end of a connection on a Network. Its state is guarded
// by the Network's lock.
type MemConn struct {
	n             *Network
	id            uint64
	local, remote string
	peer          *MemConn

	lim wire.Limits
	w   *wire.Writer // encodes into buf
	buf bytes.Buffer

	inbox      []item // delivered, not yet received
	inflight   int    // copies in flight to this end
	lastDue    uint64 // due tick of the last copy scheduled to this end
	closed     bool   // Close was called on this end
	peerClosed bool   // Close was called on the other end
	reset      bool   // the connection was cut
	rerr       error  // the final Recv error, once there is one
	wake       chan struct{}
}

type item struct {
	frame []byte       // the frame body, when encoding
	m     wire.Message // the message, when not
}

// ID returns the connection's number, the same at both ends; Events name
// connections by it.
func (c *MemConn) ID() uint64 { return c.id }

// Up reports whether the connection still carries messages: neither end
// closed it and it was not cut.
func (c *MemConn) Up() bool {
	c.n.mu.Lock()
	defer c.n.mu.Unlock()
	return !c.closed && !c.peerClosed && !c.reset
}

// LocalAddr returns the name of this end's endpoint.
func (c *MemConn) LocalAddr() string { return c.local }

// RemoteAddr returns the name of the peer's endpoint.
func (c *MemConn) RemoteAddr() string { return c.remote }

// SetLimits implements LimitSetter.
func (c *MemConn) SetLimits(lim wire.Limits) {
	c.n.mu.Lock()
	defer c.n.mu.Unlock()
	c.lim = lim.WithDefaults()
	c.w.SetLimits(c.lim)
}

// Send implements Conn. It never blocks: the message is scheduled (or
// lost) at once, and a Send to a peer that has closed succeeds, its message
// lost on arrival.
func (c *MemConn) Send(ctx context.Context, m wire.Message) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	n := c.n
	n.mu.Lock()
	defer n.mu.Unlock()
	switch {
	case c.closed:
		return ErrClosed
	case c.reset:
		return ErrReset
	}
	it, err := c.itemLocked(m)
	if err != nil {
		return err
	}
	n.sendLocked(c, it, m.Type())
	return nil
}

// SendBatch implements Conn: the messages are validated (and encoded)
// first, so that an invalid one sends none of them, then scheduled in
// order exactly as that many Sends would, with the same random choices and
// events.
func (c *MemConn) SendBatch(ctx context.Context, msgs []wire.Message) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	n := c.n
	n.mu.Lock()
	defer n.mu.Unlock()
	switch {
	case c.closed:
		return ErrClosed
	case c.reset:
		return ErrReset
	}
	its := make([]item, len(msgs))
	for i, m := range msgs {
		it, err := c.itemLocked(m)
		if err != nil {
			return err
		}
		its[i] = it
	}
	for i, it := range its {
		n.sendLocked(c, it, msgs[i].Type())
	}
	return nil
}

// itemLocked validates m under c's limits and makes what travels for it.
func (c *MemConn) itemLocked(m wire.Message) (item, error) {
	var it item
	if c.n.raw {
		if err := wire.Validate(m, c.lim); err != nil {
			return item{}, err
		}
		if e, ok := m.(*wire.Encoded); ok {
			m = e.Message() // the receiver gets what it would decode
		}
		it.m = m
		return it, nil
	}
	c.buf.Reset()
	if err := c.w.WriteMessage(m); err != nil {
		return item{}, err // a *wire.FieldError: writing to a bytes.Buffer does not fail
	}
	// The whole frame, length prefix included: the receiver reads it with
	// a wire.Reader under its own limits, as over TCP.
	it.frame = bytes.Clone(c.buf.Bytes())
	return it, nil
}

// Recv implements Conn. Messages already delivered are returned even after
// the peer closed or the connection was cut; then Recv returns io.EOF once
// nothing sent before the peer's Close is still in flight, or ErrReset.
func (c *MemConn) Recv(ctx context.Context) (wire.Message, error) {
	n := c.n
	for {
		n.mu.Lock()
		switch {
		case c.closed:
			n.mu.Unlock()
			return nil, ErrClosed
		case c.rerr != nil:
			err := c.rerr
			n.mu.Unlock()
			return nil, err
		case len(c.inbox) > 0:
			it := c.inbox[0]
			c.inbox[0] = item{}
			c.inbox = c.inbox[1:]
			m, err := it.m, error(nil)
			if it.frame != nil {
				if m, err = wire.NewReader(bytes.NewReader(it.frame), c.lim).ReadMessage(); err != nil {
					c.rerr = err
				}
			} else if u, ok := m.(*wire.Update); ok {
				cp := *u // the receiver's own: see SetEncoding
				cp.Writes = slices.Clone(u.Writes)
				m = &cp
			}
			n.mu.Unlock()
			return m, err
		case c.reset:
			n.mu.Unlock()
			return nil, ErrReset
		case c.peerClosed && c.inflight == 0:
			n.mu.Unlock()
			return nil, io.EOF
		}
		w := c.wake
		n.mu.Unlock()
		select {
		case <-w:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// Buffered implements Buffered: a message was delivered and not yet
// received, or Recv has its final error (the cases where it returns at
// once).
func (c *MemConn) Buffered() bool {
	c.n.mu.Lock()
	defer c.n.mu.Unlock()
	return c.closed || c.rerr != nil || len(c.inbox) > 0 || c.reset || (c.peerClosed && c.inflight == 0)
}

// Close implements Conn. The peer's Recv returns io.EOF once it has
// received what this end sent before Close (less what the faults lose).
func (c *MemConn) Close() error {
	n := c.n
	n.mu.Lock()
	defer n.mu.Unlock()
	if c.closed {
		return nil
	}
	c.closed = true
	c.inbox = nil
	c.peer.peerClosed = true
	c.wakeLocked()
	c.peer.wakeLocked()
	n.eventLocked(Event{Kind: EventClose, Conn: c.id, From: c.local, To: c.remote})
	return nil
}

func (c *MemConn) wakeLocked() {
	close(c.wake)
	c.wake = make(chan struct{})
}

// flight is a message copy in flight.
type flight struct {
	due   uint64
	order uint64 // scheduling order, unique
	seq   uint64 // the message's number, shared by duplicates
	to    *MemConn
	it    item
	t     wire.Type
}

type flightHeap []*flight

func (h flightHeap) Len() int { return len(h) }
func (h flightHeap) Less(i, j int) bool {
	if h[i].due != h[j].due {
		return h[i].due < h[j].due
	}
	return h[i].order < h[j].order
}
func (h flightHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *flightHeap) Push(x any)   { *h = append(*h, x.(*flight)) }
func (h *flightHeap) Pop() any {
	old := *h
	f := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return f
}

// EventKind is what happened in an Event.
type EventKind uint8

// Event kinds.
const (
	EventSend      EventKind = iota + 1 // a message was sent
	EventDuplicate                      // the message just sent will be delivered twice
	EventDeliver                        // a copy reached its receiver's queue
	EventDrop                           // a message or copy was lost; Note says why
	EventDial                           // a connection was made
	EventClose                          // an end was closed
	EventCut                            // a connection was cut
	EventPartition                      // a partition started
	EventHeal                           // a partition ended
)

var eventNames = [...]string{"", "send", "duplicate", "deliver", "drop", "dial", "close", "cut", "partition", "heal"}

func (k EventKind) String() string {
	if int(k) < len(eventNames) && k != 0 {
		return eventNames[k]
	}
	return "event(" + strconv.Itoa(int(k)) + ")"
}

// Event is one thing that happened on a Network, for traces and for
// comparing runs.
type Event struct {
	Tick     uint64
	Kind     EventKind
	Conn     uint64 // the connection's ID; 0 for partitions
	From, To string // sender and receiver (dialler and listener)
	Seq      uint64 // the message's number, in sending order across the network
	Type     wire.Type
	Note     string // why a message was dropped: "random", "partition", "reset", "closed"
}

func (e Event) String() string {
	s := "t=" + strconv.FormatUint(e.Tick, 10) + " " + e.Kind.String()
	if e.Conn != 0 {
		s += " conn=" + strconv.FormatUint(e.Conn, 10)
	}
	s += " " + e.From + "->" + e.To
	if e.Seq != 0 {
		s += " #" + strconv.FormatUint(e.Seq, 10) + " " + e.Type.String()
	}
	if e.Note != "" {
		s += " (" + e.Note + ")"
	}
	return s
}
