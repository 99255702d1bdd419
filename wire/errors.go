package wire

import (
	"errors"
	"strconv"
)

// Sentinel errors. Every error the decoders and Validate return is a
// *FieldError wrapping exactly one of these; test with errors.Is. Each has a
// short kind name (in parentheses) used by the test vectors and the
// specification (docs/protocol.md).
var (
	// ErrTruncated (truncated): the input ended inside a field, or a count
	// claims more elements than there are bytes left.
	ErrTruncated = errors.New("truncated")
	// ErrFrameTooLarge (frame_too_large): a frame length is over
	// Limits.MaxFrameSize.
	ErrFrameTooLarge = errors.New("frame too large")
	// ErrLimit (limit): a length or count is over its limit in Limits.
	ErrLimit = errors.New("over limit")
	// ErrUnknownType (unknown_type): the message type byte is not one this
	// protocol version defines.
	ErrUnknownType = errors.New("unknown message type")
	// ErrBadVarint (bad_varint): a varint is longer than 10 bytes, overflows
	// 64 bits, is not in its shortest form, or is too large for its field.
	ErrBadVarint = errors.New("bad varint")
	// ErrBadUTF8 (bad_utf8): a string is not valid UTF-8.
	ErrBadUTF8 = errors.New("invalid utf-8")
	// ErrInvalid (invalid): a byte that is not one of its field's defined
	// values (an enum, a bool), or fields that contradict each other.
	ErrInvalid = errors.New("invalid value")
	// ErrTrailing (trailing): bytes are left in a frame after its message.
	ErrTrailing = errors.New("trailing bytes")
)

// kindNames maps each sentinel to its kind name in the specification.
var kindNames = map[error]string{
	ErrTruncated:     "truncated",
	ErrFrameTooLarge: "frame_too_large",
	ErrLimit:         "limit",
	ErrUnknownType:   "unknown_type",
	ErrBadVarint:     "bad_varint",
	ErrBadUTF8:       "bad_utf8",
	ErrInvalid:       "invalid",
	ErrTrailing:      "trailing",
}

// ErrorKind returns the specification's kind name of err ("truncated",
// "limit", ...), or "" when err wraps none of the sentinels.
func ErrorKind(err error) string {
	for sentinel, name := range kindNames {
		if errors.Is(err, sentinel) {
			return name
		}
	}
	return ""
}

// FieldError reports malformed input or an invalid message: which field, at
// which byte offset of the input, and why.
type FieldError struct {
	// Field is the path of the field, as named in the specification, such as
	// "commit.reads[3].key" or "frame.length".
	Field string
	// Offset is the offset in the input where the bad field starts: from the
	// start of the frame (length prefix included) for Reader, of the whole
	// input for Decoder, of the slice given to DecodeMessage or DecodeValue;
	// -1 from Validate and Writer.
	Offset int
	// Err is one of the sentinel errors.
	Err error
	// Size and Limit, for ErrLimit and ErrFrameTooLarge from Validate and
	// Writer (else 0): the length, count or frame size found, and the
	// limit it is over.
	Size, Limit int
}

func (e *FieldError) Error() string {
	s := "wire: " + e.Field + ": " + e.Err.Error()
	if e.Limit > 0 {
		s += " (" + strconv.Itoa(e.Size) + ", limit " + strconv.Itoa(e.Limit) + ")"
	}
	if e.Offset >= 0 {
		s += " at offset " + strconv.Itoa(e.Offset)
	}
	return s
}

func (e *FieldError) Unwrap() error { return e.Err }

// prefix prepends name (a field, or a field and an index) to the field path
// of err, if err is a *FieldError. It runs only on the error path.
func prefix(err error, name string, index int) error {
	fe, ok := err.(*FieldError)
	if !ok {
		return err
	}
	p := name
	if index >= 0 {
		p += "[" + strconv.Itoa(index) + "]"
	}
	if fe.Field != "" {
		p += "." + fe.Field
	}
	fe.Field = p
	return err
}

// Code is a status code carried by Error, ShareClosed and Abort. The set is
// open: a receiver must accept codes it does not know and treat them like
// CodeInternal.
type Code uint32

// Codes. The comment says which messages use each.
const (
	CodeNone       Code = 0  // no code; not sent
	CodeProtocol   Code = 1  // Error: malformed frame or message
	CodeVersion    Code = 2  // Error: no common protocol version
	CodeAuth       Code = 3  // Error: authentication failed
	CodeForbidden  Code = 4  // ShareClosed, Abort: no permission for the share or the write
	CodeNotFound   Code = 5  // ShareClosed: no such share
	CodeLimit      Code = 6  // Error, ShareClosed, Abort: a session limit was exceeded
	CodeUnexpected Code = 7  // Error: a message not valid in this state
	CodeShutdown   Code = 8  // Error, ShareClosed: the server is going away
	CodeInternal   Code = 9  // Error, ShareClosed, Abort: a failure on the peer
	CodeConflict   Code = 10 // Abort: a read was invalidated by a later commit
	CodeDependency Code = 11 // Abort: a commit it depended on was aborted
	CodeInvalid    Code = 12 // Abort: writes that cannot apply (unknown object, wrong kind)
	CodeClosed     Code = 13 // ShareClosed: closed as asked; Abort: the share is not open
	CodeReplaced   Code = 14 // Error: a newer session of the same replica took over
	CodeDiverged   Code = 15 // ShareClosed: the client's copy is not in the server's history of the share
)

var codeNames = []string{
	"none", "protocol", "version", "auth", "forbidden", "not_found", "limit",
	"unexpected", "shutdown", "internal", "conflict", "dependency", "invalid",
	"closed", "replaced", "diverged",
}

func (c Code) String() string {
	if int(c) < len(codeNames) {
		return codeNames[c]
	}
	return strconv.FormatUint(uint64(c), 10)
}

// MarshalText encodes c as its name, or as a decimal number if it has none.
func (c Code) MarshalText() ([]byte, error) { return []byte(c.String()), nil }

// UnmarshalText accepts a code name or a decimal number.
func (c *Code) UnmarshalText(b []byte) error {
	if i, ok := lookupName(codeNames, string(b)); ok {
		*c = Code(i)
		return nil
	}
	n, err := strconv.ParseUint(string(b), 10, 32)
	if err != nil {
		return errors.New("wire: unknown code " + strconv.Quote(string(b)))
	}
	*c = Code(n)
	return nil
}

func lookupName(names []string, s string) (int, bool) {
	for i, n := range names {
		if n == s {
			return i, true
		}
	}
	return 0, false
}
