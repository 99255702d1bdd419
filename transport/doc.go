// Package transport carries wire messages between peers: framing and
// connections. It knows frames, never transactions: it imports wire and
// nothing else of weft, and the session rules (handshake, what may be sent
// when) belong to the server and client above it.
//
// Two implementations share one contract (Conn, Listener, Dialer):
//
//   - TCP (ListenTCP, DialTCP), optionally with TLS 1.3 only, and mutual
//     TLS when the server's tls.Config asks for client certificates.
//     Frames are read and written with wire.Reader and wire.Writer.
//     DevCertificate makes a self-signed certificate for development.
//   - In memory (NewNetwork): named endpoints, with faults a test or a
//     deterministic simulation controls: loss, duplication, delay and
//     reordering counted in logical ticks, partitions and cut connections.
//     See Network for exactly what each fault does.
//
// # The caller's duties
//
//  1. One goroutine at a time calls Send or SendBatch and one calls Recv
//     (they may be different ones); Close may be called from anywhere and
//     unblocks both.
//  2. Treat every error as final except: from Recv, a context error
//     (nothing was consumed); from Send and SendBatch, a context error
//     alone (nothing was sent) and a *wire.FieldError (a message was
//     invalid under the limits; nothing was sent, not even the valid
//     messages of a batch). See Conn for the full list.
//  3. When Recv returns a *wire.FieldError (a malformed frame), send an
//     Error with wire.CodeProtocol if you wish (Send still works), then
//     Close: the stream can no longer be read.
//  4. After the handshake, call SetLimits (LimitSetter) on the client's
//     connection with the limits from Welcome; a server creates its
//     listener with the limits it announces.
//  5. Always Close a connection, even after a final error: Close releases
//     its goroutine (TCP) and its socket.
//
// # Batches and buffering
//
// SendBatch sends several messages at once: over TCP they are encoded into
// one buffer and written with one system call, where Send makes one per
// message. A writer that queues messages (as the server does for each
// session) should send all it has queued with one SendBatch. Over TCP,
// reads are buffered: one read brings in every frame that has arrived, and
// Recv decodes a frame already buffered without waiting for any other
// goroutine. Only bytes are read ahead, never frames: a frame is checked
// and decoded under the limits in force when the Recv that returns it
// starts (see TCPConn).
//
// # Ownership
//
// Send and SendBatch do not keep the messages: the caller may reuse them
// as soon as they return. Recv's message belongs to the caller: it aliases no buffer of
// the connection (unless an in-memory Network is told SetEncoding(false)),
// and an Update aliases nothing at all, so that its receiver may give it
// back to the decoder (wire.ReleaseUpdate).
//
// # Caveats
//
// A nil error from Send means the frame was handed to the network, not that
// the peer read it: the protocol's acknowledgements say that. A TLS server
// runs its handshake when Accept returns, in the background, so a refused
// client certificate shows as the server's first Recv error and, under TLS
// 1.3, as the client's first Recv error rather than DialTCP's.
package transport
