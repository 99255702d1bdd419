package wire_test

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/weft-stm/weft/wire"
)

// A client and a server exchanging the handshake over a byte stream.
func Example() {
	var conn bytes.Buffer // stands in for a network connection

	// Client: say hello.
	cw := wire.NewWriter(&conn, wire.Limits{})
	err := cw.WriteMessage(&wire.Hello{
		MinVersion: wire.MinProtocolVersion,
		MaxVersion: wire.ProtocolVersion,
		Replica:    42,
		Token:      "secret",
	})
	if err != nil {
		panic(err)
	}

	// Server: read it with its own limits and pick a version.
	sr := wire.NewReader(&conn, wire.Limits{})
	m, err := sr.ReadMessage()
	if err != nil {
		panic(err) // a real server sends an Error with CodeProtocol, then closes
	}
	hello := m.(*wire.Hello)
	v, ok := wire.Negotiate(hello.MinVersion, hello.MaxVersion, wire.MinProtocolVersion, wire.ProtocolVersion)
	fmt.Println("replica", hello.Replica, "speaks version", v, ok)
	// Output: replica 42 speaks version 2 true
}

// Encoding a message into a buffer, and what a decoder says of bad input.
func ExampleAppendFrame() {
	frame := wire.AppendFrame(nil, &wire.Ack{ID: wire.CommitID{Replica: 7, Seq: 3}, Version: 100})
	fmt.Printf("% x\n", frame)

	m, err := wire.NewDecoder(frame, wire.Limits{}).Decode()
	fmt.Printf("%+v %v\n", m, err)

	_, err = wire.NewDecoder(frame[:4], wire.Limits{}).Decode()
	fmt.Println(err, errors.Is(err, wire.ErrTruncated))
	// Output:
	// 04 21 07 03 64
	// &{ID:7:3 Version:100} <nil>
	// wire: frame: truncated at offset 0 true
}
