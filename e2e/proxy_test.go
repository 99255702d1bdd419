package e2e

import (
	"io"
	"net"
	"sync"
	"testing"
)

// proxy forwards TCP connections to a server. Hold pauses the server to
// client direction of every connection: what the server sends is buffered
// (the connection stays up, and the client's own messages still go
// through) until Release passes it on, in order. A client behind a held
// proxy commits on a replica that has not seen what the server applied.
type proxy struct {
	ln     net.Listener
	target string
	wg     sync.WaitGroup

	mu     sync.Mutex
	cond   *sync.Cond // broadcast on every change under mu
	held   bool
	closed bool
	conns  []net.Conn
}

func startProxy(t *testing.T, target string) *proxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln, target: target}
	p.cond = sync.NewCond(&p.mu)
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(p.Close)
	return p
}

func (p *proxy) Addr() string { return p.ln.Addr().String() }

func (p *proxy) Hold()    { p.set(func() { p.held = true }) }
func (p *proxy) Release() { p.set(func() { p.held = false }) }

// Close stops accepting, closes every connection (dropping what is held)
// and waits for the forwarding goroutines.
func (p *proxy) Close() {
	p.ln.Close()
	p.set(func() {
		p.closed = true
		for _, c := range p.conns {
			c.Close()
		}
	})
	p.wg.Wait()
}

func (p *proxy) set(f func()) {
	p.mu.Lock()
	defer p.mu.Unlock()
	f()
	p.cond.Broadcast()
}

func (p *proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return // closed
		}
		s, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, c, s)
		if p.closed { // Close missed these two
			c.Close()
			s.Close()
		}
		p.mu.Unlock()
		p.wg.Add(3)
		go func() { // client to server: never held
			defer p.wg.Done()
			io.Copy(s, c)
			c.Close()
			s.Close()
		}()
		p.down(c, s)
	}
}

// down forwards server s to client c: one goroutine reads s into a buffer
// whether held or not, another writes the buffer to c when not held.
func (p *proxy) down(c, s net.Conn) {
	var buf []byte
	eof := false
	go func() {
		defer p.wg.Done()
		b := make([]byte, 32<<10)
		for {
			n, err := s.Read(b)
			p.set(func() { buf, eof = append(buf, b[:n]...), err != nil })
			if err != nil {
				return
			}
		}
	}()
	go func() {
		defer p.wg.Done()
		defer c.Close()
		for {
			p.mu.Lock()
			for !p.closed && (p.held || len(buf) == 0 && !eof) {
				p.cond.Wait()
			}
			out := buf
			buf = nil
			stop := p.closed || len(out) == 0 // closed, or s ended and all is passed on
			p.mu.Unlock()
			if stop {
				return
			}
			if _, err := c.Write(out); err != nil {
				s.Close()
				return
			}
		}
	}()
}
