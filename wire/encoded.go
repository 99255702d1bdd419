package wire

import (
	"encoding/binary"
	"fmt"
)

// Encoded is a message validated and encoded once, to be sent many times:
// a server's Update goes to every session with the share open. A Writer
// whose limits are those it was encoded under copies its frame instead of
// validating and encoding the message again; any other encoder treats it
// as the message itself, whose encoding it is (the codec stays the
// message's). It is a Message of its message's type; nothing decodes to
// one. Create it with Encode; its bytes are never modified, so it may be
// shared between goroutines.
type Encoded struct {
	m     Message
	lim   Limits // the limits checked, after WithDefaults
	frame []byte // length prefix and body, or its start: see tail
	// tail, if not nil, is the rest of the frame, shared with the
	// Encoded it was made from (WithShare).
	tail []byte
}

// Encode validates m against lim (after WithDefaults) as a Writer would,
// and returns it encoded, or the *FieldError WriteMessage would return. m
// must not be modified afterwards.
func Encode(m Message, lim Limits) (*Encoded, error) {
	if e, ok := m.(*Encoded); ok {
		m = e.m
	}
	c := getChecking(lim)
	defer c.put()
	frame, err := appendChecked(nil, m, &c.v)
	if err != nil {
		return nil, err
	}
	return &Encoded{m: m, lim: c.lim, frame: frame}, nil
}

// Message returns the message e encodes.
func (e *Encoded) Message() Message { return e.m }

// Frame returns e's frame: length prefix, type byte and payload. The
// caller must not modify it.
func (e *Encoded) Frame() []byte {
	if e.tail == nil {
		return e.frame
	}
	return e.appendFrame(nil)
}

// appendFrame appends e's frame to b.
func (e *Encoded) appendFrame(b []byte) []byte {
	return append(append(b, e.frame...), e.tail...)
}

// WithShare returns e, an encoded Update, as the same Update under share
// handle h. Its encoding shares e's bytes past the handle, so that a
// server sending one Update under many handles holds its writes once. It
// returns the *FieldError Encode would if the frame grows past the
// limits' MaxFrameSize (a longer handle), and an error for another type.
// Like e, its bytes are never modified.
func (e *Encoded) WithShare(h ShareHandle) (*Encoded, error) {
	u, ok := e.m.(*Update)
	if !ok {
		return nil, fmt.Errorf("wire: WithShare of a %v", e.m.Type())
	}
	cp := *u // the writes are shared: never modified (see Encode)
	cp.Share = h
	// The frame is prefix, type byte, handle, rest: the rest is kept.
	frame := e.Frame()
	n, p := binary.Uvarint(frame)
	if p <= 0 || int(n) != len(frame)-p {
		return Encode(&cp, e.lim) // not expected: e was encoded by Encode
	}
	old := uvarintLen(uint64(u.Share))
	rest := frame[p+1+old:]
	body := 1 + uvarintLen(uint64(h)) + len(rest)
	if body > e.lim.MaxFrameSize {
		return nil, &FieldError{Field: TypeUpdate.String(), Offset: -1, Err: ErrFrameTooLarge, Size: body, Limit: e.lim.MaxFrameSize}
	}
	head := binary.AppendUvarint(make([]byte, 0, maxHeaderLen+1+maxHeaderLen), uint64(body))
	head = append(head, byte(TypeUpdate))
	head = binary.AppendUvarint(head, uint64(h))
	return &Encoded{m: &cp, lim: e.lim, frame: head, tail: rest}, nil
}

// Len returns the length of e's frame.
func (e *Encoded) Len() int { return len(e.frame) + len(e.tail) }

// Type returns the type of the message e encodes.
func (e *Encoded) Type() Type { return e.m.Type() }

func (e *Encoded) appendPayload(b []byte) []byte { return e.m.appendPayload(b) }
func (e *Encoded) validate(v *validator)         { e.m.validate(v) }

// decodePayload is never called: New never returns an Encoded.
func (e *Encoded) decodePayload(d *decoder) { e.m.decodePayload(d) }
