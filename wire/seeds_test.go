package wire

import (
	"encoding/binary"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// writeSeeds regenerates the fuzz seed corpora in testdata/fuzz from the test
// vectors:
//
//	go test ./wire -run TestWriteFuzzSeeds -write-seeds
var writeSeeds = flag.Bool("write-seeds", false, "rewrite testdata/fuzz seed corpora from the vectors")

// seedFile is a corpus file in the format `go test` reads.
func seedFile(args ...any) []byte {
	var b strings.Builder
	b.WriteString("go test fuzz v1\n")
	for _, a := range args {
		switch a := a.(type) {
		case []byte:
			fmt.Fprintf(&b, "[]byte(%q)\n", a)
		case uint16:
			fmt.Fprintf(&b, "uint16(%d)\n", a)
		default:
			panic(fmt.Sprintf("seedFile: %T", a))
		}
	}
	return []byte(b.String())
}

var nonWord = regexp.MustCompile(`[^a-z0-9]+`)

func seedName(prefix, name string) string {
	return prefix + "-" + strings.Trim(nonWord.ReplaceAllString(strings.ToLower(name), "-"), "-")
}

func TestWriteFuzzSeeds(t *testing.T) {
	if !*writeSeeds {
		t.Skip("run with -write-seeds to regenerate testdata/fuzz")
	}
	vf := loadVectors(t)
	files := map[string][]byte{}
	add := func(target, name string, data []byte) {
		files[filepath.Join("testdata", "fuzz", target, name)] = data
	}
	for _, v := range vf.Values {
		add("FuzzDecodeValue", seedName("value", v.Name), seedFile(unhex(t, v.Hex)))
	}
	var stream []byte
	for _, v := range vf.Valid {
		frame := unhex(t, v.Frame)
		stream = append(stream, frame...)
		_, k := binary.Uvarint(frame)
		body := frame[k:]
		add("FuzzReader", seedName("valid", v.Name), seedFile(frame))
		add("FuzzDecodeMessage", seedName("valid", v.Name), seedFile(body, uint16(0)))
		switch v.Type {
		case TypeSnapshotChunk, TypeDelta, TypeCommit, TypeAbort, TypeUpdate:
			add("FuzzDecodeMessage", seedName("valid-small-limits", v.Name), seedFile(body, uint16(2)))
		}
	}
	add("FuzzReader", "valid-all-frames", seedFile(stream))
	for _, v := range vf.Invalid {
		add("FuzzReader", seedName("invalid", v.Name), seedFile(unhex(t, v.Frame)))
	}
	for i := range 16 {
		data := make([]byte, 64)
		g := randGen(uint64(i), true)
		for j := range data {
			data[j] = byte(g.next())
		}
		add("FuzzEncode", fmt.Sprintf("random-%02d", i), seedFile(data))
	}
	for _, target := range []string{"FuzzDecodeValue", "FuzzReader", "FuzzDecodeMessage", "FuzzEncode"} {
		dir := filepath.Join("testdata", "fuzz", target)
		if err := os.RemoveAll(dir); err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for path, data := range files {
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("wrote %d seed files", len(files))
}
