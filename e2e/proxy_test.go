package e2e

import (
	"math/rand/v2"
	"net"
	"sync"
	"testing"
	"time"
)

// proxy forwards TCP connections to a server, and injects faults into
// them.
//
// Hold pauses the server to client direction of every connection: what the
// server sends is buffered (the connection stays up, and the client's own
// messages still go through) until Release passes it on, in order. A
// client behind a held proxy commits on a replica that has not seen what
// the server applied.
//
// The faults of TestSoak: SetLatency delays every chunk forwarded, either
// way, by a random time (order kept); Reset closes a connection abruptly
// on both sides (TCP RST); Cut black-holes a connection (nothing is
// forwarded either way, what was in flight is lost, neither end is told)
// for a while, then closes it.
type proxy struct {
	ln     net.Listener
	target string
	wg     sync.WaitGroup

	mu     sync.Mutex
	cond   *sync.Cond // broadcast on every change under mu
	held   bool
	closed bool
	live   []*pconn // open connections, in the order they were accepted
	minLat time.Duration
	maxLat time.Duration
	rng    *rand.Rand // draws latencies; under mu
}

// pconn is one proxied connection: c to the client, s to the server.
type pconn struct {
	c, s     net.Conn
	up, down pipe
	cut      bool          // black-holed; under the proxy's mu
	dead     bool          // closed; under the proxy's mu
	gone     chan struct{} // closed when dead
}

// pipe is one direction of a connection: chunks read, not yet written.
type pipe struct {
	q    []chunk
	last time.Time // the due time of the last chunk queued
	eof  bool      // the source ended
}

type chunk struct {
	b   []byte
	due time.Time
}

func startProxy(t *testing.T, target string) *proxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln, target: target, rng: rand.New(rand.NewPCG(1, 2))}
	p.cond = sync.NewCond(&p.mu)
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(p.Close)
	return p
}

func (p *proxy) Addr() string { return p.ln.Addr().String() }

func (p *proxy) Hold()    { p.set(func() { p.held = true }) }
func (p *proxy) Release() { p.set(func() { p.held = false }) }

// SetLatency delays each chunk forwarded from now on by a time drawn
// uniformly from [lo, hi], drawn from seed's sequence; chunks of one
// direction of a connection still go in order. hi <= 0 turns it off.
func (p *proxy) SetLatency(lo, hi time.Duration, seed uint64) {
	p.set(func() {
		p.minLat, p.maxLat = lo, max(lo, hi)
		p.rng = rand.New(rand.NewPCG(seed, 3))
	})
}

// Live returns how many connections are open.
func (p *proxy) Live() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.live)
}

// Reset closes the pick-th open connection (modulo their number) with a
// TCP reset on both sides. It reports whether there was one.
func (p *proxy) Reset(pick int) bool {
	pc := p.pick(pick, func(*pconn) {})
	if pc != nil {
		p.kill(pc, true)
	}
	return pc != nil
}

// Cut black-holes the pick-th open connection (modulo their number) for
// d: nothing goes through either way and what is in flight is dropped;
// then it closes it. It reports whether there was one.
func (p *proxy) Cut(pick int, d time.Duration) bool {
	pc := p.pick(pick, func(pc *pconn) {
		pc.cut = true
		pc.up.q, pc.down.q = nil, nil
	})
	if pc != nil {
		time.AfterFunc(d, func() { p.kill(pc, false) })
	}
	return pc != nil
}

// pick applies f to the pick-th open connection not cut already (modulo
// their number), under mu, and returns it (nil if there is none).
func (p *proxy) pick(pick int, f func(*pconn)) *pconn {
	p.mu.Lock()
	defer p.mu.Unlock()
	var ok []*pconn
	for _, pc := range p.live {
		if !pc.cut {
			ok = append(ok, pc)
		}
	}
	if len(ok) == 0 {
		return nil
	}
	pc := ok[pick%len(ok)]
	f(pc)
	p.cond.Broadcast()
	return pc
}

// Close stops accepting, closes every connection (dropping what is held)
// and waits for the forwarding goroutines.
func (p *proxy) Close() {
	p.ln.Close()
	p.mu.Lock()
	p.closed = true
	live := append([]*pconn(nil), p.live...)
	p.cond.Broadcast()
	p.mu.Unlock()
	for _, pc := range live {
		p.kill(pc, false)
	}
	p.wg.Wait()
}

func (p *proxy) set(f func()) {
	p.mu.Lock()
	defer p.mu.Unlock()
	f()
	p.cond.Broadcast()
}

// kill closes both sides of pc (with a reset if rst) and forgets it.
func (p *proxy) kill(pc *pconn, rst bool) {
	p.mu.Lock()
	if pc.dead {
		p.mu.Unlock()
		return
	}
	pc.dead = true
	for i, x := range p.live {
		if x == pc {
			p.live = append(p.live[:i], p.live[i+1:]...)
			break
		}
	}
	close(pc.gone)
	p.cond.Broadcast()
	p.mu.Unlock()
	for _, c := range []net.Conn{pc.c, pc.s} {
		if tc, ok := c.(*net.TCPConn); ok && rst {
			_ = tc.SetLinger(0) // Close sends RST
		}
		c.Close()
	}
}

func (p *proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return // closed
		}
		p.wg.Add(1)
		go p.open(c)
	}
}

// open dials the server for the client connection c and forwards between
// them; a client whose server cannot be reached is disconnected.
func (p *proxy) open(c net.Conn) {
	defer p.wg.Done()
	s, err := net.DialTimeout("tcp", p.target, 2*time.Second)
	if err != nil {
		c.Close()
		return
	}
	pc := &pconn{c: c, s: s, gone: make(chan struct{})}
	p.mu.Lock()
	if p.closed { // Close missed these two
		p.mu.Unlock()
		c.Close()
		s.Close()
		return
	}
	p.live = append(p.live, pc)
	p.wg.Add(4)
	p.mu.Unlock()
	go p.read(pc, c, &pc.up)
	go p.write(pc, s, &pc.up, false)
	go p.read(pc, s, &pc.down)
	go p.write(pc, c, &pc.down, true)
}

// read queues what src sends into pp, each chunk due after a latency,
// until src fails. A cut connection drops it.
func (p *proxy) read(pc *pconn, src net.Conn, pp *pipe) {
	defer p.wg.Done()
	b := make([]byte, 32<<10)
	for {
		n, err := src.Read(b)
		p.mu.Lock()
		if n > 0 && !pc.cut {
			due := time.Now()
			if p.maxLat > 0 {
				due = due.Add(p.minLat + time.Duration(p.rng.Int64N(int64(p.maxLat-p.minLat)+1)))
			}
			if due.Before(pp.last) {
				due = pp.last // in order
			}
			pp.last = due
			pp.q = append(pp.q, chunk{append([]byte(nil), b[:n]...), due})
		}
		if err != nil {
			pp.eof = true
		}
		p.cond.Broadcast()
		p.mu.Unlock()
		if err != nil {
			return
		}
	}
}

// write writes pp's chunks to dst once due, in order, unless pc is cut or
// (holdable, the server to client direction) the proxy is held. Once the
// source ended and everything is passed on, or a write fails, it closes
// the connection.
func (p *proxy) write(pc *pconn, dst net.Conn, pp *pipe, holdable bool) {
	defer p.wg.Done()
	defer p.kill(pc, false)
	for {
		p.mu.Lock()
		for !p.closed && !pc.dead && (pc.cut || holdable && p.held || len(pp.q) == 0 && !pp.eof) {
			p.cond.Wait()
		}
		if p.closed || pc.dead || len(pp.q) == 0 { // closed, or the source ended and all is passed on
			p.mu.Unlock()
			return
		}
		ch := pp.q[0]
		wait := time.Until(ch.due)
		if wait <= 0 {
			pp.q[0] = chunk{}
			pp.q = pp.q[1:]
		}
		p.mu.Unlock()
		if wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-t.C:
			case <-pc.gone:
				t.Stop()
				return
			}
			continue // held or cut meanwhile?
		}
		if _, err := dst.Write(ch.b); err != nil {
			return
		}
	}
}
