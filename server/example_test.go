package server_test

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/weft-stm/weft/server"
	"github.com/weft-stm/weft/transport"
	"github.com/weft-stm/weft/wire"
)

// A server on an in-memory network, and a raw client that commits.
func Example() {
	srv := server.New(server.Config{
		Tokens:        map[string]string{"t0ken": "alice"},
		DefaultAccess: server.AccessWrite,
		Logger:        slog.New(slog.DiscardHandler),
	})
	n := transport.NewNetwork(1)
	l, _ := n.Listen("server")
	ctx := context.Background()
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, l) }()

	c, _ := n.Dial(ctx, "client", "server")
	defer c.Close()
	c.Send(ctx, &wire.Hello{MinVersion: wire.ProtocolVersion, MaxVersion: wire.ProtocolVersion, Replica: 7, Token: "t0ken"})
	w, _ := c.Recv(ctx)
	fmt.Println("version", w.(*wire.Welcome).Version)

	c.Send(ctx, &wire.OpenShare{Share: 1, Name: "board"})
	op, _ := c.Recv(ctx)
	// The new share is at version 1: the server's epoch change.
	fmt.Println(op.(*wire.Opened).Transfer, op.(*wire.Opened).Access, op.(*wire.Opened).Version)
	c.Recv(ctx) // the snapshot: one empty chunk

	note := wire.ObjectID{Replica: 7, Seq: 1}
	c.Send(ctx, &wire.Commit{ID: wire.CommitID{Replica: 7, Seq: 1}, Share: 1, Writes: []wire.Op{
		{Kind: wire.OpCreate, Object: note, ObjectKind: wire.ObjectVar},
		{Kind: wire.OpVarSet, Object: note, Value: wire.String("hello")},
	}})
	ack, _ := c.Recv(ctx)
	fmt.Println("acknowledged at version", ack.(*wire.Ack).Version)

	srv.Shutdown(ctx)
	e, _ := c.Recv(ctx)
	fmt.Println(e.(*wire.Error).Code, <-done)
	// Output:
	// version 2
	// snapshot write 1
	// acknowledged at version 2
	// shutdown server: closed
}
