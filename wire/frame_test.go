package wire

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
	"testing"
	"testing/iotest"
)

func TestWriterReader(t *testing.T) {
	msgs := []Message{
		&Hello{MinVersion: 1, MaxVersion: 1, Replica: 9, Token: "t"},
		&Ping{Nonce: 3},
		&Update{Share: 1, Version: 2, Writes: []Op{{Kind: OpSetAdd, Key: String(strings.Repeat("big", 40000))}}},
		&Pong{Nonce: 3},
	}
	var buf bytes.Buffer
	cw := &countingWriter{w: &buf}
	w := NewWriter(cw, Limits{})
	for _, m := range msgs {
		if err := w.WriteMessage(m); err != nil {
			t.Fatal(err)
		}
	}
	if cw.calls != len(msgs) {
		t.Errorf("%d Write calls for %d messages", cw.calls, len(msgs))
	}
	// Read back one byte at a time, which also exercises the chunked growth
	// of the buffer for the large frame.
	r := NewReader(iotest.OneByteReader(&buf), Limits{})
	for i, want := range msgs {
		got, err := r.ReadMessage()
		if err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("message %d: got %#v", i, got)
		}
	}
	if _, err := r.ReadMessage(); err != io.EOF {
		t.Errorf("at the end: %v, want io.EOF", err)
	}
}

type countingWriter struct {
	w     io.Writer
	calls int
}

func (c *countingWriter) Write(p []byte) (int, error) {
	c.calls++
	return c.w.Write(p)
}

func TestWriterRefuses(t *testing.T) {
	var buf bytes.Buffer
	w := NewWriter(&buf, Limits{MaxFrameSize: 16, MaxNameLen: 4})
	tests := []struct {
		m     Message
		field string
		err   error
	}{
		{&OpenShare{Name: "too long"}, "open_share.name", ErrLimit},
		{&Error{Message: "0123456789abcdef"}, "error", ErrFrameTooLarge},
		{&Error{Message: "\xff"}, "error.message", ErrBadUTF8},
	}
	for _, tt := range tests {
		err := w.WriteMessage(tt.m)
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Field != tt.field || fe.Err != tt.err {
			t.Errorf("WriteMessage(%#v) = %v, want %s: %v", tt.m, err, tt.field, tt.err)
		}
	}
	if buf.Len() != 0 {
		t.Errorf("refused messages wrote %d bytes", buf.Len())
	}
	// Exactly at the limit is fine: type byte, code, length, 13 bytes.
	if err := w.WriteMessage(&Error{Message: "0123456789abc"}); err != nil {
		t.Errorf("frame of exactly MaxFrameSize: %v", err)
	}
	w.SetLimits(Limits{})
	if err := w.WriteMessage(&Error{Message: "0123456789abcdef"}); err != nil {
		t.Errorf("after SetLimits: %v", err)
	}
}

func TestReaderErrors(t *testing.T) {
	boom := errors.New("boom")
	tests := []struct {
		name string
		r    io.Reader
		err  error
	}{
		{"empty", strings.NewReader(""), io.EOF},
		{"cut in the length", strings.NewReader("\x80"), ErrTruncated},
		{"cut in the body", strings.NewReader("\x03\x04\x01"), ErrTruncated},
		{"cut in a large body", io.MultiReader(bytes.NewReader(appendUvarint(nil, 200000)), strings.NewReader("\x04")), ErrTruncated},
		{"too large", bytes.NewReader(appendUvarint(nil, 1<<20+1)), ErrFrameTooLarge},
		{"read error in the length", iotest.ErrReader(boom), boom},
		{"read error in the body", io.MultiReader(strings.NewReader("\x05\x04"), iotest.ErrReader(boom)), boom},
		{"bad message", strings.NewReader("\x01\x00"), ErrUnknownType},
	}
	for _, tt := range tests {
		_, err := NewReader(tt.r, Limits{}).ReadMessage()
		if !errors.Is(err, tt.err) {
			t.Errorf("%s: %v, want %v", tt.name, err, tt.err)
		}
	}
}

// TestReaderDoesNotPreallocate checks that a frame that announces a large
// size costs memory only as its bytes arrive.
func TestReaderDoesNotPreallocate(t *testing.T) {
	in := io.MultiReader(bytes.NewReader(appendUvarint(nil, 1<<20)), strings.NewReader("\x04"))
	r := NewReader(in, Limits{})
	if _, err := r.ReadFrame(); !errors.Is(err, ErrTruncated) {
		t.Fatalf("got %v", err)
	}
	if cap(r.buf) > readChunk {
		t.Errorf("buffer of %d bytes for 1 byte received", cap(r.buf))
	}
}

func TestReaderOffsets(t *testing.T) {
	// Body offsets from a Reader count from the start of the frame.
	in := append(appendUvarint(nil, 200), byte(TypeError), 1)
	in = appendUvarint(in, 197)
	in = append(in, bytes.Repeat([]byte{'a'}, 196)...)
	in = append(in, 0xff)
	_, err := NewReader(bytes.NewReader(in), Limits{}).ReadMessage()
	var fe *FieldError
	if !errors.As(err, &fe) || fe.Offset != 4 || fe.Field != "error.message" {
		t.Errorf("got %v, want error.message at offset 4", err)
	}
}

// An over-limit error from Check says the size found and the limit, so
// that a sender can tell what to shrink.
func TestLimitErrorsSaySizes(t *testing.T) {
	lim := DefaultLimits()
	big := &Commit{ID: CommitID{Replica: 1, Seq: 1}, Share: 1, Writes: []Op{
		{Kind: OpVarSet, Object: ObjectID{Replica: 1, Seq: 1}, Value: Bytes(make([]byte, lim.MaxStringLen+1))}}}
	err := Check(big, lim)
	want := fmt.Sprintf("commit.writes[0].value: over limit (%d, limit %d)", lim.MaxStringLen+1, lim.MaxStringLen)
	if !errors.Is(err, ErrLimit) || !strings.Contains(err.Error(), want) {
		t.Fatalf("Check: %v, want an error with %q", err, want)
	}
	var ops []Op
	for range 5 {
		ops = append(ops, Op{Kind: OpVarSet, Object: ObjectID{Replica: 1, Seq: 1}, Value: Bytes(make([]byte, lim.MaxStringLen))})
	}
	err = Check(&Commit{ID: CommitID{Replica: 1, Seq: 1}, Share: 1, Writes: ops}, lim)
	var fe *FieldError
	if !errors.As(err, &fe) || !errors.Is(err, ErrFrameTooLarge) || fe.Limit != lim.MaxFrameSize || fe.Size <= fe.Limit {
		t.Fatalf("Check of a frame too large: %v (%+v)", err, fe)
	}
}
