package wire

// ProtocolVersion is the newest version of the wire protocol this package
// speaks. It is a capability version: any change to the bytes on the wire,
// or to what a peer may send, bumps it, and a peer announces the range it
// speaks in Hello. Never reuse a number.
//
// History:
//
//	1 (2026-11-21): first version: framing, handshake, shares (open with
//	  snapshot or delta, close), commit/ack/abort with conflicting reads,
//	  update broadcast, ping/pong, error.
//	2 (2026-11-22): epochs: OpenShare and Opened carry the last epoch
//	  change of the copy (Epoch); ShareClosed code diverged refuses a
//	  copy that is not in the server's history. Version 1 is no longer
//	  spoken: a version 1 client would be served a delta onto a copy of
//	  another history.
const ProtocolVersion uint32 = 2

// MinProtocolVersion is the oldest protocol version this package speaks.
const MinProtocolVersion uint32 = 2

// Negotiate returns the version a server speaking [serverMin, serverMax]
// chooses for a client speaking [clientMin, clientMax]: the highest version
// both speak. ok is false when the ranges do not overlap or a range is empty.
func Negotiate(clientMin, clientMax, serverMin, serverMax uint32) (v uint32, ok bool) {
	if clientMin > clientMax || serverMin > serverMax {
		return 0, false
	}
	v = min(clientMax, serverMax)
	if v < clientMin || v < serverMin {
		return 0, false
	}
	return v, true
}
