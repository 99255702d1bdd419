package transport

import (
	"context"
	"errors"
	"time"

	"github.com/weft-stm/weft/wire"
)

// Conn is one connection: a two-way stream of wire messages. Send is safe
// for one sender and Recv for one receiver goroutine at the same time;
// Close may be called from any goroutine, any number of times, and
// unblocks both.
//
// Send(ctx, m) encodes m as one frame and hands it to the network; nil does
// not mean the peer received it. m is not retained: the caller may reuse it
// once Send returns. Send errors:
//   - a *wire.FieldError: m is invalid under the connection's limits;
//     nothing was sent and the connection is still usable;
//   - ctx.Err() alone: ctx ended before anything was sent; still usable;
//   - anything else is final and the connection has been closed: ErrClosed
//     (possibly also wrapping the cause, such as ctx.Err() when ctx ended
//     in the middle of a frame), ErrReset, or an I/O error.
//
// SendBatch(ctx, msgs) sends msgs in order, as that many Sends would, but
// hands them to the network together (over TCP, with one write), so that a
// burst costs one system call. Every message is validated before any is
// sent: its errors are Send's, and a *wire.FieldError (for the first
// invalid message, whatever its position) means none of msgs was sent and
// the connection is still usable. An empty msgs sends nothing. msgs and
// its messages are not retained.
//
// Recv(ctx) returns the next message; the caller owns it (it aliases
// nothing of the connection's). Recv errors:
//   - ctx.Err(): nothing was consumed; the next Recv returns the message
//     that would have come;
//   - anything else is final, and every later Recv returns it again:
//     io.EOF (the peer closed), ErrClosed (this end closed), ErrReset, a
//     *wire.FieldError (a malformed frame: Send still works, so that the
//     caller can send an Error with wire.CodeProtocol as the protocol
//     requires, and then must Close), or an I/O error.
//
// Close releases the connection. Send and Recv then return ErrClosed.
//
// RemoteAddr names the peer, for logs.
type Conn interface {
	Send(ctx context.Context, m wire.Message) error
	SendBatch(ctx context.Context, msgs []wire.Message) error
	Recv(ctx context.Context) (wire.Message, error)
	Close() error
	RemoteAddr() string
}

// Listener accepts connections. Accept returns ErrClosed once the Listener
// is closed, and ctx.Err() (not final) when ctx ends first. Close unblocks
// Accept; connections already accepted stay open.
type Listener interface {
	Accept(ctx context.Context) (Conn, error)
	Close() error
	Addr() string
}

// Dialer opens a connection to addr. TCPDialer and Network.Dialer make
// them.
type Dialer func(ctx context.Context, addr string) (Conn, error)

// LimitSetter is implemented by the connections of this package. A client
// calls SetLimits with the limits from Welcome: they govern the session in
// both directions (docs/protocol.md section 5). The new limits apply to the
// frames sent by later Sends and to the frames that later Recvs start to
// read; a zero field means the default.
type LimitSetter interface {
	SetLimits(lim wire.Limits)
}

// HandshakeTimeoutSetter is implemented by the listeners whose
// connections have a handshake of their own before the first frame (a
// TCPListener with TLS): a server calls SetHandshakeTimeout with the time
// it gives a client to say Hello, so that a client that says nothing
// during that handshake is closed as soon.
type HandshakeTimeoutSetter interface {
	SetHandshakeTimeout(d time.Duration)
}

// Buffered is implemented by the connections of this package. Buffered
// reports whether the next Recv would return without waiting for the
// network: a message (or the error that ends the stream) has arrived and
// is held by the connection. A receiver that batches its replies uses it
// to write them only when it is about to wait. Call it from the receiving
// goroutine, between Recvs; false is always a safe answer.
type Buffered interface {
	Buffered() bool
}

var (
	// ErrClosed: Close was called on this end (of the connection or the
	// listener), or the connection was closed because a Send could not
	// complete.
	ErrClosed = errors.New("transport: closed")
	// ErrReset: the network broke the connection (in-memory Network.Cut).
	// Over TCP the operating system's error is returned instead.
	ErrReset = errors.New("transport: connection reset")
	// ErrRefused: nothing listens at the address dialled (in-memory).
	ErrRefused = errors.New("transport: connection refused")
	// ErrUnreachable: the address dialled is partitioned from the dialler
	// (in-memory).
	ErrUnreachable = errors.New("transport: unreachable")
)

var (
	_ LimitSetter = (*TCPConn)(nil)
	_ LimitSetter = (*MemConn)(nil)
	_ Buffered    = (*TCPConn)(nil)
	_ Buffered    = (*MemConn)(nil)
	_ Conn        = (*TCPConn)(nil)
	_ Conn        = (*MemConn)(nil)
	_ Listener    = (*TCPListener)(nil)
	_ Listener    = (*MemListener)(nil)

	_ HandshakeTimeoutSetter = (*TCPListener)(nil)
)
