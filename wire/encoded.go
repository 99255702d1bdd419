package wire

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
	frame []byte // length prefix and body
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
func (e *Encoded) Frame() []byte { return e.frame }

// Type returns the type of the message e encodes.
func (e *Encoded) Type() Type { return e.m.Type() }

func (e *Encoded) appendPayload(b []byte) []byte { return e.m.appendPayload(b) }
func (e *Encoded) validate(v *validator)         { e.m.validate(v) }

// decodePayload is never called: New never returns an Encoded.
func (e *Encoded) decodePayload(d *decoder) { e.m.decodePayload(d) }
