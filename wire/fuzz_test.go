package wire

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"reflect"
	"testing"
)

// The fuzz targets. Their seed corpora are in testdata/fuzz/<name>, made
// from the test vectors by TestWriteFuzzSeeds; `go test` runs them. For a
// longer run, one target at a time:
//
//	go test ./wire -run '^$' -fuzz '^FuzzDecodeMessage$' -fuzztime 5m

// checkMessage checks what must hold for every message a decoder returns:
// it is canonical (re-encodes to body), valid, decodes again to an equal
// message, and survives its JSON form.
func checkMessage(t *testing.T, m Message, body []byte, lim Limits) {
	t.Helper()
	enc := AppendMessage(nil, m)
	if !bytes.Equal(enc, body) {
		t.Fatalf("%v re-encodes to\n%x\nnot\n%x", m.Type(), enc, body)
	}
	if err := Validate(m, lim); err != nil {
		t.Fatalf("decoded %v fails Validate: %v", m.Type(), err)
	}
	m2, err := DecodeMessage(enc, lim)
	if err != nil {
		t.Fatalf("re-encoded %v does not decode: %v", m.Type(), err)
	}
	if !reflect.DeepEqual(m, m2) {
		t.Fatalf("round trip changed the message:\n%#v\n%#v", m, m2)
	}
	js, err := json.Marshal(m)
	if err != nil {
		t.Fatalf("json: %v", err)
	}
	m3 := New(m.Type())
	if err := strictUnmarshal(js, m3); err != nil {
		t.Fatalf("json %s: %v", js, err)
	}
	if !reflect.DeepEqual(m, m3) {
		t.Fatalf("json round trip changed the message:\n%s\n%#v\n%#v", js, m, m3)
	}
}

func checkDecodeError(t *testing.T, err error) {
	t.Helper()
	var fe *FieldError
	if !errors.As(err, &fe) || ErrorKind(err) == "" {
		t.Fatalf("error %v (%T) is not a *FieldError with a known kind", err, err)
	}
}

// smallLimits gives every limit the value n (0: the defaults), so that
// short inputs reach the limit checks.
func smallLimits(n uint16) Limits {
	var l Limits
	for _, f := range l.fields() {
		*f = int(n)
	}
	return l
}

// FuzzDecodeMessage decodes one frame body under limits all set to small
// (0: the defaults).
func FuzzDecodeMessage(f *testing.F) {
	f.Add([]byte{byte(TypePing), 1}, uint16(0))
	f.Add(AppendMessage(nil, &Commit{Reads: []Read{{Kind: ReadKey, Key: String("k")}}}), uint16(2))
	f.Fuzz(func(t *testing.T, body []byte, small uint16) {
		lim := smallLimits(small)
		m, err := DecodeMessage(body, lim)
		if err != nil {
			checkDecodeError(t, err)
			return
		}
		checkMessage(t, m, body, lim)
	})
}

// FuzzReader reads a stream of frames and checks that Decoder, reading the
// same bytes as one slice, gives the same messages and the same error kind.
func FuzzReader(f *testing.F) {
	f.Add(AppendFrame(AppendFrame(nil, &Ping{Nonce: 1}), &Pong{Nonce: 1}))
	f.Add([]byte{0x80})
	f.Fuzz(func(t *testing.T, data []byte) {
		lim := Limits{MaxFrameSize: 4096}
		r := NewReader(bytes.NewReader(data), lim)
		d := NewDecoder(data, lim)
		for {
			body, rerr := r.ReadFrame()
			var rm Message
			if rerr == nil {
				body = bytes.Clone(body)
				rm, rerr = DecodeMessage(body, lim)
			}
			dm, derr := d.Decode()
			if (rerr == nil) != (derr == nil) || ErrorKind(rerr) != ErrorKind(derr) {
				t.Fatalf("Reader: %v, %v; Decoder: %v, %v", rm, rerr, dm, derr)
			}
			if rerr == io.EOF {
				if derr != io.EOF {
					t.Fatalf("Reader at EOF, Decoder: %v", derr)
				}
				return
			}
			if rerr != nil {
				checkDecodeError(t, rerr)
				checkDecodeError(t, derr)
				return
			}
			if !reflect.DeepEqual(rm, dm) {
				t.Fatalf("Reader: %#v\nDecoder: %#v", rm, dm)
			}
			checkMessage(t, rm, body, lim)
		}
	})
}

// FuzzDecodeValue decodes one value.
func FuzzDecodeValue(f *testing.F) {
	f.Add([]byte{byte(KindString), 1, 'a'})
	f.Fuzz(func(t *testing.T, b []byte) {
		lim := Limits{MaxStringLen: 64}
		v, n, err := DecodeValue(b, lim)
		if err != nil {
			checkDecodeError(t, err)
			return
		}
		if enc := AppendValue(nil, v); !bytes.Equal(enc, b[:n]) {
			t.Fatalf("%v re-encodes to %x, not %x", v, enc, b[:n])
		}
		if got := ValueSize(v); got != n {
			t.Fatalf("ValueSize(%v) = %d, its encoding takes %d", v, got, n)
		}
		js, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		var v2 Value
		if err := json.Unmarshal(js, &v2); err != nil || v2 != v {
			t.Fatalf("json %s gives %v, %v; want %v", js, v2, err, v)
		}
	})
}

// FuzzEncode builds a message from the input, sometimes breaking a rule,
// and checks that Validate accepts it exactly when the decoder accepts its
// encoding, with the same error, and that accepted messages round-trip.
func FuzzEncode(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte("commit with some reads and writes, please"))
	f.Fuzz(func(t *testing.T, data []byte) {
		g := bytesGen(data)
		lim := g.limits()
		m := g.message()
		checkEncode(t, m, lim)
	})
}

func checkEncode(t *testing.T, m Message, lim Limits) {
	t.Helper()
	verr := Validate(m, lim)
	body := AppendMessage(nil, m)
	got, derr := DecodeMessage(body, lim)
	if (verr == nil) != (derr == nil) {
		t.Fatalf("%#v\nValidate: %v\ndecode: %v", m, verr, derr)
	}
	if verr != nil {
		ve, de := verr.(*FieldError), derr.(*FieldError)
		if ve.Field != de.Field || ve.Err != de.Err {
			t.Fatalf("%#v\nValidate: %v\ndecode: %v", m, verr, derr)
		}
		return
	}
	if !reflect.DeepEqual(got, m) {
		t.Fatalf("round trip changed the message:\n%#v\n%#v", m, got)
	}
	checkMessage(t, got, body, lim)
}
