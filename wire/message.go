package wire

import "strconv"

// Type is a message type: the first byte of a frame body.
type Type uint8

// Message types. The high nibble groups them: 0x0_ session, 0x1_ shares,
// 0x2_ commits and updates. 0x00 is never a type.
const (
	TypeHello         Type = 0x01 // client -> server
	TypeWelcome       Type = 0x02 // server -> client
	TypeError         Type = 0x03 // either way; the sender then closes
	TypePing          Type = 0x04 // either way
	TypePong          Type = 0x05 // either way
	TypeOpenShare     Type = 0x10 // client -> server
	TypeOpened        Type = 0x11 // server -> client
	TypeSnapshotChunk Type = 0x12 // server -> client
	TypeDelta         Type = 0x13 // server -> client
	TypeCloseShare    Type = 0x14 // client -> server
	TypeShareClosed   Type = 0x15 // server -> client
	TypeCommit        Type = 0x20 // client -> server
	TypeAck           Type = 0x21 // server -> client
	TypeAbort         Type = 0x22 // server -> client
	TypeUpdate        Type = 0x23 // server -> client
)

var typeNames = map[Type]string{
	TypeHello: "hello", TypeWelcome: "welcome", TypeError: "error",
	TypePing: "ping", TypePong: "pong", TypeOpenShare: "open_share",
	TypeOpened: "opened", TypeSnapshotChunk: "snapshot_chunk",
	TypeDelta: "delta", TypeCloseShare: "close_share",
	TypeShareClosed: "share_closed", TypeCommit: "commit", TypeAck: "ack",
	TypeAbort: "abort", TypeUpdate: "update",
}

// Types returns every message type, in increasing order.
func Types() []Type {
	return []Type{
		TypeHello, TypeWelcome, TypeError, TypePing, TypePong,
		TypeOpenShare, TypeOpened, TypeSnapshotChunk, TypeDelta,
		TypeCloseShare, TypeShareClosed,
		TypeCommit, TypeAck, TypeAbort, TypeUpdate,
	}
}

// String returns the type's name in the specification ("hello",
// "open_share", ...).
func (t Type) String() string {
	if n, ok := typeNames[t]; ok {
		return n
	}
	return "type(0x" + strconv.FormatUint(uint64(t), 16) + ")"
}

// MarshalText encodes t as its name.
func (t Type) MarshalText() ([]byte, error) {
	if _, ok := typeNames[t]; !ok {
		return nil, &FieldError{Field: "type", Offset: -1, Err: ErrUnknownType}
	}
	return []byte(t.String()), nil
}

// UnmarshalText parses the name of a type.
func (t *Type) UnmarshalText(b []byte) error {
	for k, n := range typeNames {
		if n == string(b) {
			*t = k
			return nil
		}
	}
	return &FieldError{Field: "type", Offset: -1, Err: ErrUnknownType}
}

// New returns a new zero message of type t, or nil if t is unknown.
func New(t Type) Message {
	switch t {
	case TypeHello:
		return new(Hello)
	case TypeWelcome:
		return new(Welcome)
	case TypeError:
		return new(Error)
	case TypePing:
		return new(Ping)
	case TypePong:
		return new(Pong)
	case TypeOpenShare:
		return new(OpenShare)
	case TypeOpened:
		return new(Opened)
	case TypeSnapshotChunk:
		return new(SnapshotChunk)
	case TypeDelta:
		return new(Delta)
	case TypeCloseShare:
		return new(CloseShare)
	case TypeShareClosed:
		return new(ShareClosed)
	case TypeCommit:
		return new(Commit)
	case TypeAck:
		return new(Ack)
	case TypeAbort:
		return new(Abort)
	case TypeUpdate:
		return new(Update)
	}
	return nil
}

// Message is one of the message types of this package, always a pointer
// (*Hello, *Commit, ...). The set is closed.
type Message interface {
	// Type returns the message's type byte.
	Type() Type

	appendPayload(b []byte) []byte
	decodePayload(d *decoder)
	validate(v *validator)
}

// Hello is the first message of a session, from the client. Its encoding is
// the same in every protocol version, so that any server can read it.
type Hello struct {
	MinVersion uint32 `json:"min_version"` // oldest protocol version the client speaks
	MaxVersion uint32 `json:"max_version"` // newest protocol version the client speaks
	Replica    uint64 `json:"replica,string"`
	Token      string `json:"token"` // authentication token; may be empty
	Agent      string `json:"agent"` // the client's software and version, for logs; may be empty
}

// Welcome is the server's answer to an acceptable Hello.
type Welcome struct {
	// Version is the protocol version chosen for the session (see
	// Negotiate). It is the first field in every protocol version.
	Version uint32 `json:"version"`
	// Session identifies the session in logs and tools.
	Session uint64 `json:"session,string"`
	// HeartbeatMillis is how often, in milliseconds, the server wants to hear
	// from the client: a client that has sent nothing for that long sends a
	// Ping. The server may close a session silent for three times as long.
	// 0: no heartbeat.
	HeartbeatMillis uint32 `json:"heartbeat_millis"`
	// Limits are the limits the server enforces on what the client sends; 0
	// in a field means the default.
	Limits Limits `json:"limits"`
}

// Error reports a fatal error; its sender closes the connection right after.
// It is also a Go error, so a client can return it as the reason its
// connection ended.
type Error struct {
	Code    Code   `json:"code"`
	Message string `json:"message"`
}

func (e *Error) Error() string {
	if e.Message == "" {
		return "weft: peer error: " + e.Code.String()
	}
	return "weft: peer error: " + e.Code.String() + ": " + e.Message
}

// Ping asks the peer for a Pong with the same nonce.
type Ping struct {
	Nonce uint64 `json:"nonce,string"`
}

// Pong answers a Ping.
type Pong struct {
	Nonce uint64 `json:"nonce,string"`
}

// OpenShare asks to open a share under a handle the client chooses.
type OpenShare struct {
	Share ShareHandle `json:"share"`
	Name  string      `json:"name"`
	// Have is the version of the share the client already holds (from a
	// cache); 0 if none.
	Have uint64 `json:"have,string"`
	// Epoch is the last epoch change in the history of the copy the
	// client holds (zero if it holds none, or its copy has none): the
	// server checks that Have is in its own history of the share
	// (protocol.md §9, epochs).
	Epoch Epoch `json:"epoch"`
}

// Opened says a share is open. The transfer it announces follows it, then
// Updates for versions after Version.
type Opened struct {
	Share    ShareHandle `json:"share"`
	Version  uint64      `json:"version,string"` // the version the client holds after the transfer
	Access   Access      `json:"access"`
	Transfer Transfer    `json:"transfer"`
	// Epoch is the last epoch change at or before Version: a client that
	// takes a snapshot records it as its copy's.
	Epoch Epoch `json:"epoch"`
}

// SnapshotChunk carries part of a share's objects at Opened.Version.
type SnapshotChunk struct {
	Share   ShareHandle `json:"share"`
	More    bool        `json:"more"` // more chunks of this snapshot follow
	Objects []Object    `json:"objects,omitempty"`
}

// Delta carries the changes from the client's version (OpenShare.Have) up to
// Opened.Version, in version order.
type Delta struct {
	Share   ShareHandle `json:"share"`
	More    bool        `json:"more"` // more deltas of this transfer follow
	Changes []Change    `json:"changes,omitempty"`
}

// CloseShare asks to close a share. The server answers with ShareClosed.
type CloseShare struct {
	Share ShareHandle `json:"share"`
}

// ShareClosed says a share is closed: asked for (CodeClosed), refused on
// open, or closed by the server. Its handle is free again.
type ShareClosed struct {
	Share   ShareHandle `json:"share"`
	Code    Code        `json:"code"`
	Message string      `json:"message"`
}

// Commit asks the server to commit a transaction on a share.
type Commit struct {
	ID    CommitID    `json:"id"`
	Share ShareHandle `json:"share"`
	// Snapshot is the share version the transaction started from.
	Snapshot uint64 `json:"snapshot,string"`
	// Deps are the pending (not yet acknowledged) commits whose writes the
	// transaction read. If one of them aborts, so does this one.
	Deps   []CommitID `json:"deps,omitempty"`
	Reads  []Read     `json:"reads,omitempty"`
	Writes []Op       `json:"writes,omitempty"`
}

// Ack says a commit succeeded, with the share version it created.
type Ack struct {
	ID      CommitID `json:"id"`
	Version uint64   `json:"version,string"`
}

// Abort says a commit failed and changed nothing.
type Abort struct {
	ID      CommitID `json:"id"`
	Code    Code     `json:"code"`
	Message string   `json:"message"`
	// Conflicts are the reads that were invalidated (CodeConflict), each as
	// the commit sent it but with Version set to the version of the commit
	// that overwrote it (0 if unknown).
	Conflicts []Read `json:"conflicts,omitempty"`
}

// Update broadcasts a commit made by another session.
type Update struct {
	Share   ShareHandle `json:"share"`
	Version uint64      `json:"version,string"` // the share version it created
	Origin  CommitID    `json:"origin"`
	Writes  []Op        `json:"writes,omitempty"`
}

func (*Hello) Type() Type         { return TypeHello }
func (*Welcome) Type() Type       { return TypeWelcome }
func (*Error) Type() Type         { return TypeError }
func (*Ping) Type() Type          { return TypePing }
func (*Pong) Type() Type          { return TypePong }
func (*OpenShare) Type() Type     { return TypeOpenShare }
func (*Opened) Type() Type        { return TypeOpened }
func (*SnapshotChunk) Type() Type { return TypeSnapshotChunk }
func (*Delta) Type() Type         { return TypeDelta }
func (*CloseShare) Type() Type    { return TypeCloseShare }
func (*ShareClosed) Type() Type   { return TypeShareClosed }
func (*Commit) Type() Type        { return TypeCommit }
func (*Ack) Type() Type           { return TypeAck }
func (*Abort) Type() Type         { return TypeAbort }
func (*Update) Type() Type        { return TypeUpdate }
