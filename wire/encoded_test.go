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

// WithShare gives the encoding of the same Update under another handle,
// whatever the lengths of the two handles, sharing the writes' bytes; past
// the frame size it fails as Encode would.
func TestEncodedWithShare(t *testing.T) {
	for _, from := range []ShareHandle{0, 1, 300, 1 << 20, 1<<32 - 1} {
		u := &Update{Share: from, Version: 42, Origin: CommitID{Replica: 7, Seq: 9},
			Writes: []Op{{Kind: OpVarSet, Object: ObjectID{Replica: 7, Seq: 1}, Value: String("héllo")}}}
		e, err := Encode(u, Limits{})
		if err != nil {
			t.Fatal(err)
		}
		for _, to := range []ShareHandle{0, 5, 300, 1 << 20, 1<<32 - 1} {
			f, err := e.WithShare(to)
			if err != nil {
				t.Fatal(err)
			}
			cp := *u
			cp.Share = to
			want := AppendFrame(nil, &cp)
			if got := f.Frame(); !bytes.Equal(got, want) {
				t.Fatalf("%d -> %d: frame %x, want %x", from, to, got, want)
			}
			if m := f.Message().(*Update); m.Share != to || u.Share != from {
				t.Fatalf("%d -> %d: message handle %d, the original's %d", from, to, m.Share, u.Share)
			}
			w := NewWriter(&bytes.Buffer{}, Limits{})
			if got, err := w.AppendFrame([]byte{0xee}, f); err != nil || !bytes.Equal(got[1:], want) {
				t.Fatalf("%d -> %d: AppendFrame %x, %v", from, to, got, err)
			}
			var buf bytes.Buffer
			if err := NewWriter(&buf, Limits{}).WriteMessage(f); err != nil || !bytes.Equal(buf.Bytes(), want) {
				t.Fatalf("%d -> %d: WriteMessage %x, %v", from, to, buf.Bytes(), err)
			}
		}
	}
	// An Update exactly at the frame size cannot take a longer handle.
	u := &Update{Share: 1, Writes: []Op{{Kind: OpVarSet, Value: Bytes(make([]byte, 100))}}}
	lim := Limits{MaxFrameSize: len(AppendMessage(nil, u))}
	e, err := Encode(u, lim)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.WithShare(2); err != nil {
		t.Fatalf("same length: %v", err)
	}
	var fe *FieldError
	if _, err := e.WithShare(300); !errors.As(err, &fe) || !errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("a longer handle past the frame size: %v", err)
	}
	if _, err := (&Encoded{m: &Ping{}}).WithShare(1); err == nil {
		t.Fatal("WithShare of a ping")
	}
}
