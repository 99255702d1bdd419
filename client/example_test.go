package client_test

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"

	"github.com/weft-stm/weft/client"
	"github.com/weft-stm/weft/server"
	"github.com/weft-stm/weft/stm"
	"github.com/weft-stm/weft/transport"
	"github.com/weft-stm/weft/wire"
)

// A client commits a transfer on a share whose accounts exist on the
// server.
func Example() {
	ctx := context.Background()
	srv := server.New(server.Config{DefaultAccess: server.AccessWrite, Logger: slog.New(slog.DiscardHandler)})
	n := transport.NewNetwork(1)
	l, _ := n.Listen("server")
	go srv.Serve(ctx, l)
	defer srv.Shutdown(ctx)

	// Two accounts, created by some other replica's commit.
	conn, _ := n.Dial(ctx, "seed", "server")
	conn.Send(ctx, &wire.Hello{MinVersion: wire.ProtocolVersion, MaxVersion: wire.ProtocolVersion, Replica: 1})
	conn.Recv(ctx)
	conn.Send(ctx, &wire.OpenShare{Share: 1, Name: "bank"})
	conn.Recv(ctx) // opened
	conn.Recv(ctx) // an empty snapshot
	conn.Send(ctx, &wire.Commit{ID: wire.CommitID{Replica: 1, Seq: 1}, Share: 1,
		Writes: append(createAccount(1, 100), createAccount(2, 0)...)})
	conn.Recv(ctx) // ack
	conn.Close()

	c, err := client.Dial(ctx, n.Dialer("app"), "server", client.Options{Rand: rand.NewPCG(1, 2)})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()
	bank, err := c.Open(ctx, "bank", account)
	if err != nil {
		fmt.Println(err)
		return
	}
	accts := bank.Records()
	from, to := accts[0], accts[1]
	err = bank.Atomically(ctx, func(tx *stm.Tx) error {
		balanceF.Of(from).Set(tx, balanceF.Of(from).Get(tx)-30)
		balanceF.Of(to).Set(tx, balanceF.Of(to).Get(tx)+30)
		return nil
	})
	fmt.Println("transfer:", err, "version", bank.Version())
	bank.View(ctx, func(tx *stm.Tx) error {
		fmt.Println(balanceF.Of(from).Get(tx), balanceF.Of(to).Get(tx))
		return nil
	})
	// Version 1 of the share is the server's epoch change, 2 the
	// accounts, 3 the transfer.

	// Output:
	// transfer: <nil> version 3
	// 70 30
}
