package wire

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"os"
	"reflect"
	"strings"
	"testing"
)

// fill completes vectors whose hex is empty, so that a new vector can be
// written as a description alone; it never changes bytes already there:
//
//	go test ./wire -run TestVectors -fill
var fill = flag.Bool("fill", false, "fill in empty hex in testdata/vectors.json")

const vectorsPath = "testdata/vectors.json"

type vectorFile struct {
	ProtocolVersion uint32          `json:"protocol_version"`
	Comment         []string        `json:"comment"`
	Values          []valueVector   `json:"values"`
	Valid           []validVector   `json:"valid"`
	Invalid         []invalidVector `json:"invalid"`
}

type valueVector struct {
	Name  string          `json:"name"`
	Value json.RawMessage `json:"value"`
	Hex   string          `json:"hex"`
}

type validVector struct {
	Name    string          `json:"name"`
	Type    Type            `json:"type"`
	Message json.RawMessage `json:"message"`
	Frame   string          `json:"frame"`
}

type invalidVector struct {
	Name   string  `json:"name"`
	Limits *Limits `json:"limits,omitempty"`
	Frame  string  `json:"frame"`
	Error  string  `json:"error"`
	Field  string  `json:"field,omitempty"`
}

func loadVectors(t testing.TB) *vectorFile {
	t.Helper()
	data, err := os.ReadFile(vectorsPath)
	if err != nil {
		t.Fatal(err)
	}
	var vf vectorFile
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&vf); err != nil {
		t.Fatalf("%s: %v", vectorsPath, err)
	}
	return &vf
}

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.Join(strings.Fields(s), ""))
	if err != nil {
		t.Fatalf("bad hex %q: %v", s, err)
	}
	return b
}

// strictUnmarshal decodes JSON into v, refusing unknown fields, so that a
// typo in a vector's description is an error, not a zero.
func strictUnmarshal(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}

func (v *validVector) message(t testing.TB) Message {
	t.Helper()
	m := New(v.Type)
	if m == nil {
		t.Fatalf("%s: unknown type %v", v.Name, v.Type)
	}
	if err := strictUnmarshal(v.Message, m); err != nil {
		t.Fatalf("%s: message: %v", v.Name, err)
	}
	return m
}

func TestVectors(t *testing.T) {
	vf := loadVectors(t)
	if vf.ProtocolVersion != ProtocolVersion {
		t.Errorf("vectors are for protocol version %d, package speaks %d", vf.ProtocolVersion, ProtocolVersion)
	}
	changed := false

	t.Run("values", func(t *testing.T) {
		for i := range vf.Values {
			vec := &vf.Values[i]
			var want Value
			if err := strictUnmarshal(vec.Value, &want); err != nil {
				t.Fatalf("%s: %v", vec.Name, err)
			}
			enc := AppendValue(nil, want)
			if vec.Hex == "" && *fill {
				vec.Hex = hex.EncodeToString(enc)
				changed = true
			}
			b := unhex(t, vec.Hex)
			if !bytes.Equal(enc, b) {
				t.Errorf("%s: encoded %x, want %x", vec.Name, enc, b)
			}
			got, n, err := DecodeValue(b, Limits{})
			if err != nil || n != len(b) || got != want {
				t.Errorf("%s: decoded %v (%d bytes, err %v), want %v (%d bytes)", vec.Name, got, n, err, want, len(b))
			}
		}
	})

	t.Run("valid", func(t *testing.T) {
		seen := map[Type]bool{}
		var stream []byte
		var all []Message
		for i := range vf.Valid {
			vec := &vf.Valid[i]
			want := vec.message(t)
			seen[want.Type()] = true
			if err := Validate(want, Limits{}); err != nil {
				t.Errorf("%s: Validate: %v", vec.Name, err)
			}
			enc := AppendFrame(nil, want)
			if vec.Frame == "" && *fill {
				vec.Frame = hex.EncodeToString(enc)
				changed = true
			}
			frame := unhex(t, vec.Frame)
			if !bytes.Equal(enc, frame) {
				t.Errorf("%s: encoded\n%x\nwant\n%x", vec.Name, enc, frame)
			}
			d := NewDecoder(frame, Limits{})
			got, err := d.Decode()
			if err != nil {
				t.Errorf("%s: decode: %v", vec.Name, err)
				continue
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("%s: decoded\n%#v\nwant\n%#v", vec.Name, got, want)
			}
			if _, err := d.Decode(); err != io.EOF {
				t.Errorf("%s: after the frame: %v, want io.EOF", vec.Name, err)
			}
			stream = append(stream, frame...)
			all = append(all, want)
		}
		for _, typ := range Types() {
			if !seen[typ] {
				t.Errorf("no valid vector for %v", typ)
			}
		}
		// All the frames back to back, through a Reader.
		r := NewReader(bytes.NewReader(stream), Limits{})
		for i, want := range all {
			got, err := r.ReadMessage()
			if err != nil || !reflect.DeepEqual(got, want) {
				t.Fatalf("stream frame %d: %v, %v", i, got, err)
			}
		}
		if _, err := r.ReadMessage(); err != io.EOF {
			t.Errorf("end of stream: %v, want io.EOF", err)
		}
	})

	t.Run("invalid", func(t *testing.T) {
		if len(vf.Invalid) == 0 {
			t.Fatal("no invalid vectors")
		}
		for _, vec := range vf.Invalid {
			var lim Limits
			if vec.Limits != nil {
				lim = *vec.Limits
			}
			b := unhex(t, vec.Frame)
			var err error
			for d := NewDecoder(b, lim); err == nil; {
				_, err = d.Decode()
			}
			if err == io.EOF {
				t.Errorf("%s: decoded without error, want %s", vec.Name, vec.Error)
				continue
			}
			if kind := ErrorKind(err); kind != vec.Error {
				t.Errorf("%s: error %v (%s), want kind %s", vec.Name, err, kind, vec.Error)
			}
			var fe *FieldError
			if !errors.As(err, &fe) {
				t.Errorf("%s: error %T, want *FieldError", vec.Name, err)
			} else if vec.Field != "" && fe.Field != vec.Field {
				t.Errorf("%s: error in field %q, want %q", vec.Name, fe.Field, vec.Field)
			}
			// The stream reader must agree.
			r := NewReader(bytes.NewReader(b), lim)
			var rerr error
			for rerr == nil {
				_, rerr = r.ReadMessage()
			}
			if kind := ErrorKind(rerr); kind != vec.Error {
				t.Errorf("%s: Reader: error %v (%s), want kind %s", vec.Name, rerr, kind, vec.Error)
			}
		}
	})

	if changed {
		out, err := json.MarshalIndent(vf, "", "  ")
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(vectorsPath, append(out, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Log("filled in", vectorsPath)
	}
}
