package transport_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"

	"github.com/weft-stm/weft/transport"
	"github.com/weft-stm/weft/wire"
)

// A simulated network: messages are delayed by logical ticks, which only
// Advance moves, and a partition loses what is sent across it (and what is
// in flight across it when it falls due).
func ExampleNetwork() {
	n := transport.NewNetwork(1)
	n.SetFaults(transport.Faults{MinDelay: 2, MaxDelay: 2})
	n.SetRecording(true)
	ctx := context.Background()

	l, _ := n.Listen("server")
	c, _ := n.Dial(ctx, "client", "server")
	s, _ := l.Accept(ctx)

	c.Send(ctx, &wire.Ping{Nonce: 1})
	n.Partition("client", "server")
	c.Send(ctx, &wire.Ping{Nonce: 2}) // lost
	n.Heal("client", "server")        // before ping 1 falls due
	n.Advance(2)
	m, _ := s.Recv(ctx)
	fmt.Println("received", m.(*wire.Ping).Nonce)
	for _, e := range n.Events() {
		fmt.Println(e)
	}
	// Output:
	// received 1
	// t=0 dial conn=1 client->server
	// t=0 send conn=1 client->server #1 ping
	// t=0 partition client->server
	// t=0 send conn=1 client->server #2 ping
	// t=0 drop conn=1 client->server #2 ping (partition)
	// t=0 heal client->server
	// t=2 deliver conn=1 client->server #1 ping
}

// A TLS 1.3 connection on loopback with a development certificate.
func ExampleDialTCP() {
	cert, err := transport.DevCertificate("127.0.0.1")
	if err != nil {
		panic(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(cert.Leaf)

	ln, err := transport.ListenTCP("127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}}, wire.Limits{})
	if err != nil {
		panic(err)
	}
	defer ln.Close()
	ctx := context.Background()
	go func() { // the server: answer one Ping
		s, err := ln.Accept(ctx)
		if err != nil {
			return
		}
		defer s.Close()
		if m, err := s.Recv(ctx); err == nil {
			s.Send(ctx, &wire.Pong{Nonce: m.(*wire.Ping).Nonce})
		}
	}()

	c, err := transport.DialTCP(ctx, ln.Addr(), &tls.Config{RootCAs: roots}, wire.Limits{})
	if err != nil {
		panic(err)
	}
	defer c.Close()
	c.Send(ctx, &wire.Ping{Nonce: 9})
	m, err := c.Recv(ctx)
	fmt.Printf("%T %+v %v\n", m, m, err)
	// Output: *wire.Pong &{Nonce:9} <nil>
}
