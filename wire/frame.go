package wire

import (
	"bufio"
	"encoding/binary"
	"errors"
	"io"
	"sync"
)

// maxHeaderLen is the longest frame length prefix a Reader reads: frame sizes
// are at most math.MaxInt32, whose varint takes 5 bytes.
const maxHeaderLen = 5

// readChunk is how much of a large frame a Reader reads before growing its
// buffer again, so that a peer that announces a large frame and stalls costs
// memory only for what it sent.
const readChunk = 64 << 10

// headerStep takes byte i of a frame length prefix, c, with n the value of
// the bytes before it, and returns the new value and whether c was the last
// byte. It fails as soon as the value is over max (or could only be, once a
// fifth byte says more follow) and when the prefix is not in shortest form,
// so every reader reports the same error for the same bytes.
func headerStep(n uint64, i int, c byte, max int) (uint64, bool, error) {
	n |= uint64(c&0x7f) << (7 * i)
	switch {
	case n > uint64(max):
		return 0, false, ErrFrameTooLarge
	case c == 0 && i > 0:
		return 0, false, ErrBadVarint
	case c < 0x80:
		return n, true, nil
	case i+1 == maxHeaderLen:
		return 0, false, ErrFrameTooLarge
	}
	return n, false, nil
}

// Reader reads frames from a byte stream. It is not safe for concurrent use.
type Reader struct {
	r   io.Reader
	br  io.ByteReader
	lim Limits
	buf []byte
	off int // bytes read, for error offsets within the stream
}

// NewReader returns a Reader of r with limits lim (after WithDefaults). If r
// is not an io.ByteReader it is wrapped in a bufio.Reader, which may read
// ahead of the last frame returned.
func NewReader(r io.Reader, lim Limits) *Reader {
	br, ok := r.(io.ByteReader)
	if !ok {
		b := bufio.NewReader(r)
		r, br = b, b
	}
	return &Reader{r: r, br: br, lim: lim.WithDefaults()}
}

// SetLimits replaces the limits the Reader applies, as a client does with
// the limits in Welcome.
func (r *Reader) SetLimits(lim Limits) { r.lim = lim.WithDefaults() }

// ReadFrame reads the next frame and returns its body (type byte and
// payload), which is valid until the next call. It checks the length against
// MaxFrameSize before reading or allocating for the body. At the end of the
// stream between frames it returns io.EOF; a stream that ends inside a frame
// gives a *FieldError wrapping ErrTruncated; other read errors are returned
// as they are.
func (r *Reader) ReadFrame() ([]byte, error) {
	var n uint64
	for i := 0; ; i++ {
		c, err := r.br.ReadByte()
		if err != nil {
			if errors.Is(err, io.EOF) {
				if i == 0 {
					return nil, io.EOF
				}
				return nil, &FieldError{Field: "frame.length", Offset: 0, Err: ErrTruncated}
			}
			return nil, err
		}
		var done bool
		if n, done, err = headerStep(n, i, c, r.lim.MaxFrameSize); err != nil {
			return nil, &FieldError{Field: "frame.length", Offset: 0, Err: err}
		}
		if done {
			r.off = i + 1
			break
		}
	}
	size := int(n)
	if size <= cap(r.buf) {
		r.buf = r.buf[:size]
		if _, err := io.ReadFull(r.r, r.buf); err != nil {
			return nil, r.bodyErr(err)
		}
		return r.buf, nil
	}
	// Grow as the bytes arrive.
	r.buf = r.buf[:0]
	for len(r.buf) < size {
		k := min(size-len(r.buf), readChunk)
		if cap(r.buf)-len(r.buf) < k {
			nb := make([]byte, len(r.buf), min(size, 2*cap(r.buf)+k))
			copy(nb, r.buf)
			r.buf = nb
		}
		got, err := io.ReadFull(r.r, r.buf[len(r.buf):len(r.buf)+k])
		r.buf = r.buf[:len(r.buf)+got]
		if err != nil {
			return nil, r.bodyErr(err)
		}
	}
	return r.buf, nil
}

func (r *Reader) bodyErr(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return &FieldError{Field: "frame", Offset: 0, Err: ErrTruncated}
	}
	return err
}

// ReadMessage reads and decodes the next frame. Errors are those of
// ReadFrame and DecodeMessage, with offsets from the start of the frame. The
// message does not alias the Reader's buffer.
func (r *Reader) ReadMessage() (Message, error) {
	body, err := r.ReadFrame()
	if err != nil {
		return nil, err
	}
	return decodeBody(body, r.off, &r.lim)
}

// Writer writes frames to a byte stream, one Write call per frame. It is
// not safe for concurrent use.
type Writer struct {
	w   io.Writer
	lim Limits
	v   validator // reused, so that validating does not allocate
	buf []byte
}

// NewWriter returns a Writer to w that refuses messages the peer would reject
// under limits lim (after WithDefaults). A client sets the server's limits
// from Welcome with SetLimits.
func NewWriter(w io.Writer, lim Limits) *Writer {
	return &Writer{w: w, lim: lim.WithDefaults()}
}

// SetLimits replaces the limits the Writer checks.
func (w *Writer) SetLimits(lim Limits) { w.lim = lim.WithDefaults() }

// WriteMessage validates m against the Writer's limits, encodes it and
// writes its frame. A message that fails validation or whose body is over
// MaxFrameSize is not written, and the error is a *FieldError; write errors
// are returned as they are.
func (w *Writer) WriteMessage(m Message) error {
	if e, ok := m.(*Encoded); ok {
		if e.lim == w.lim {
			frame := e.frame
			if e.tail != nil { // one Write per frame
				w.buf = e.appendFrame(w.buf[:0])
				frame = w.buf
			}
			_, err := w.w.Write(frame)
			if cap(w.buf) > 4*readChunk {
				w.buf = nil
			}
			return err
		}
		m = e.m
	}
	w.v = validator{lim: &w.lim}
	if err := w.v.message(m); err != nil {
		return err
	}
	// Leave room for the longest prefix, then put the prefix right before
	// the body.
	w.buf = append(w.buf[:0], make([]byte, maxHeaderLen)...)
	w.buf = AppendMessage(w.buf, m)
	n := len(w.buf) - maxHeaderLen
	if n > w.lim.MaxFrameSize {
		return &FieldError{Field: m.Type().String(), Offset: -1, Err: ErrFrameTooLarge, Size: n, Limit: w.lim.MaxFrameSize}
	}
	start := maxHeaderLen - uvarintLen(uint64(n))
	binary.PutUvarint(w.buf[start:], uint64(n))
	_, err := w.w.Write(w.buf[start:])
	if cap(w.buf) > 4*readChunk && len(w.buf) < readChunk {
		w.buf = nil // don't keep one huge frame's buffer forever
	}
	return err
}

// AppendFrame validates m as WriteMessage does and appends its frame to b
// instead of writing it, so that a batch of frames is encoded straight
// into one buffer. On error it returns b unchanged and the *FieldError
// WriteMessage would return. An Encoded checked under the Writer's limits
// is appended as it is.
func (w *Writer) AppendFrame(b []byte, m Message) ([]byte, error) {
	if e, ok := m.(*Encoded); ok && e.lim == w.lim {
		return e.appendFrame(b), nil
	}
	w.v = validator{lim: &w.lim}
	return appendChecked(b, m, &w.v)
}

// appendChecked validates m with v and appends its frame to b, or returns
// b unchanged and the error.
func appendChecked(b []byte, m Message, v *validator) ([]byte, error) {
	if e, ok := m.(*Encoded); ok {
		m = e.m
	}
	if err := v.message(m); err != nil {
		return b, err
	}
	// Leave room for the longest prefix, then slide the body left to the
	// end of the actual one.
	start := len(b)
	b = append(b, make([]byte, maxHeaderLen)...)
	b = AppendMessage(b, m)
	n := len(b) - start - maxHeaderLen
	if n > v.lim.MaxFrameSize {
		return b[:start], &FieldError{Field: m.Type().String(), Offset: -1, Err: ErrFrameTooLarge, Size: n, Limit: v.lim.MaxFrameSize}
	}
	h := uvarintLen(uint64(n))
	if h < maxHeaderLen {
		copy(b[start+h:], b[start+maxHeaderLen:])
		b = b[:len(b)-(maxHeaderLen-h)]
	}
	binary.PutUvarint(b[start:], uint64(n))
	return b, nil
}

// Check reports whether a Writer with limits lim would write m: nil, or
// the *FieldError WriteMessage would return. A sender that queues messages
// for another goroutine to write checks them first, so that an invalid one
// is refused to its caller instead of failing the connection later.
func Check(m Message, lim Limits) error {
	c := getChecking(lim)
	defer c.put()
	if err := c.v.message(m); err != nil {
		return err
	}
	c.buf = AppendMessage(c.buf[:0], m)
	if len(c.buf) > c.lim.MaxFrameSize {
		return &FieldError{Field: m.Type().String(), Offset: -1, Err: ErrFrameTooLarge, Size: len(c.buf), Limit: c.lim.MaxFrameSize}
	}
	return nil
}

// checking is what Check and Encode validate with: a validator escapes to
// the heap (messages validate themselves through an interface), so it is
// pooled rather than allocated for every message checked.
type checking struct {
	lim Limits
	v   validator
	buf []byte // Check's encoding buffer: it only measures the frame
}

var checkings = sync.Pool{New: func() any { return new(checking) }}

func getChecking(lim Limits) *checking {
	c := checkings.Get().(*checking)
	c.lim = lim.WithDefaults()
	c.v = validator{lim: &c.lim}
	return c
}

func (c *checking) put() {
	c.v = validator{}
	if cap(c.buf) > 1<<16 { // don't keep one huge message's buffer
		c.buf = nil
	}
	checkings.Put(c)
}
