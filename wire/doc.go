// Package wire defines Weft's wire protocol: the messages that replicas and
// servers exchange, their binary encoding, and the framing that carries them
// over a byte stream. It is the single source of truth for every transport
// and SDK; docs/protocol.md specifies the same bytes in prose, and
// testdata/vectors.json holds the test vectors every codec must pass.
//
// The package is a leaf: it imports only the standard library, does no I/O
// beyond the io.Reader and io.Writer it is handed, and starts no goroutines.
//
// # Messages
//
// Each message type is a struct (Hello, Commit, Update, ...) and a *T
// implements Message. The protocol version is ProtocolVersion; a client
// announces the range it speaks in Hello and the server picks one (see
// Negotiate) in Welcome.
//
// # Encoding
//
// Encoders append to a byte slice and never fail: AppendFrame,
// AppendMessage, AppendValue. They encode what they are given; Validate
// reports whether the peer will accept it. Writer does both and writes one
// frame per call.
//
// Decoders take the bytes and a Limits: Reader (a stream), Decoder (a byte
// slice of whole frames), DecodeMessage (one frame body) and DecodeValue.
// Their contract, for any input at all:
//
//  1. They never panic.
//  2. They check every length and count against its limit and against the
//     bytes left before allocating for it, so memory grows with the bytes
//     actually received, never with what a count claims: at most 64 times
//     the frame body (a 3-byte op becomes a Go struct of under 200 bytes),
//     and a Reader buffers a frame's body as it arrives.
//  3. They accept exactly one encoding of each message: varints in their
//     shortest form, bools as 0 or 1, known enum values, valid UTF-8, no
//     trailing bytes. So encoding a decoded message gives back the same
//     bytes.
//  4. On malformed input they return a *FieldError that names the field
//     (such as "commit.reads[3].key") and the offset, and wraps one of the
//     sentinel errors (ErrTruncated, ErrLimit, ...). The caller then sends
//     an Error frame with CodeProtocol and closes the connection.
//  5. Decoded messages own their memory: they do not alias the input. A
//     receiver done with an Update may give it back (ReleaseUpdate): a
//     later decoded Update then reuses it and the array of its Writes.
//
// # Caveats
//
// Readers, Writers and Decoders are not safe for concurrent use. The codec
// checks form, not meaning: whether a share handle is open, an object exists
// or an op fits its object's kind is for the layers above.
package wire
