package main

import (
	"bytes"
	"context"
	"os"
	"testing"

	"github.com/weft-stm/weft/schema"
	"github.com/weft-stm/weft/schema/gogen"
)

func load(t *testing.T, path string) *schema.Schema {
	t.Helper()
	src, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s, err := schema.Load(path, src)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestGeneratedUpToDate regenerates social.weft.go in memory, as the
// go:generate line in main.go does, and compares it with the committed file.
func TestGeneratedUpToDate(t *testing.T) {
	s := load(t, "social.weft")
	if err := schema.CheckEvolution(load(t, "testdata/v1.weft"), s); err != nil {
		t.Fatalf("social.weft cannot replace testdata/v1.weft:\n%v", err)
	}
	want, err := gogen.Generate(s, gogen.Options{Package: "main", Source: "social.weft"})
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile("social.weft.go")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Error("social.weft.go is out of date: run go generate ./examples/social")
	}
}

func TestRun(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), &out); err != nil {
		t.Fatal(err)
	}
	const want = `observer: alice's friends changed (2 keys)
alice: 2 posts, friends [bob carol]
bob: 0 posts, friends [alice]
carol: 0 posts, friends []
alice and bob are friends of each other
`
	if out.String() != want {
		t.Errorf("output:\n%s\nwant:\n%s", out.String(), want)
	}
}
