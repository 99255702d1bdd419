package wire

import (
	"bytes"
	"errors"
	"testing"
)

// An Encoded is written as its message would be, under the limits it was
// checked under and under others.
func TestEncodedWrites(t *testing.T) {
	u := &Update{Share: 3, Version: 42, Origin: CommitID{Replica: 7, Seq: 9},
		Writes: []Op{{Kind: OpVarSet, Object: ObjectID{Replica: 7, Seq: 1}, Value: Int(5)}}}
	want := AppendFrame(nil, u)
	e, err := Encode(u, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(e.Frame(), want) || e.Type() != TypeUpdate || e.Message() != u {
		t.Fatalf("frame %x, want %x", e.Frame(), want)
	}
	for _, lim := range []Limits{{}, {MaxWrites: 10}} {
		var buf bytes.Buffer
		w := NewWriter(&buf, lim)
		if err := w.WriteMessage(e); err != nil {
			t.Fatal(err)
		}
		got, err := w.AppendFrame([]byte{0xee}, e)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(buf.Bytes(), want) || !bytes.Equal(got[1:], want) {
			t.Fatalf("limits %+v: wrote %x and %x, want %x", lim, buf.Bytes(), got[1:], want)
		}
		m, err := NewReader(&buf, lim).ReadMessage()
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := m.(*Update); !ok {
			t.Fatalf("decoded %T", m)
		}
	}
	// Under stricter limits than it was checked under, it is checked again.
	w := NewWriter(&bytes.Buffer{}, Limits{MaxWrites: 0, MaxFrameSize: 8})
	var fe *FieldError
	if err := w.WriteMessage(e); !errors.As(err, &fe) || !errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("WriteMessage under a small frame size: %v", err)
	}
	if b, err := w.AppendFrame([]byte{1}, e); !errors.As(err, &fe) || !bytes.Equal(b, []byte{1}) {
		t.Fatalf("AppendFrame under a small frame size: %x, %v", b, err)
	}
}

// Encode refuses what a Writer would.
func TestEncodeInvalid(t *testing.T) {
	u := &Update{Writes: make([]Op, 3)}
	for i := range u.Writes {
		u.Writes[i] = Op{Kind: OpVarSet, Value: Int(1)}
	}
	_, err := Encode(u, Limits{MaxWrites: 2})
	var buf bytes.Buffer
	werr := NewWriter(&buf, Limits{MaxWrites: 2}).WriteMessage(u)
	if err == nil || werr == nil || err.Error() != werr.Error() {
		t.Fatalf("Encode: %v; WriteMessage: %v", err, werr)
	}
}

// Writer.AppendFrame appends what WriteMessage writes, prefix lengths of
// one and more bytes included.
func TestWriterAppendFrame(t *testing.T) {
	for _, n := range []int{0, 100, 200, 20000} {
		m := &Error{Code: CodeInternal, Message: string(bytes.Repeat([]byte{'x'}, n))}
		var buf bytes.Buffer
		w := NewWriter(&buf, Limits{})
		if err := w.WriteMessage(m); err != nil {
			t.Fatal(err)
		}
		got, err := w.AppendFrame([]byte("ab"), m)
		if err != nil {
			t.Fatal(err)
		}
		if string(got[:2]) != "ab" || !bytes.Equal(got[2:], buf.Bytes()) {
			t.Fatalf("n=%d: appended %d bytes, wrote %d", n, len(got)-2, buf.Len())
		}
	}
}
