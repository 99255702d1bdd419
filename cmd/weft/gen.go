package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/weft-stm/weft/schema"
	"github.com/weft-stm/weft/schema/gogen"
)

const genUsage = `usage: weft gen [-o file.go] [-package name] [-check-against old.weft] schema.weft

Gen checks a schema and generates Go types for its classes. With
-check-against, it first checks that the schema can replace the previous one
(ids kept, never reused, types only widened). Errors name file:line:col.

In a Go package, run it with go generate:

	//go:generate go run github.com/weft-stm/weft/cmd/weft gen -o social.weft.go social.weft

Flags:
`

// runGen is "weft gen": schema file in, Go file out.
func runGen(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("gen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("o", "", "output `file`; \"-\" for standard output (default: the schema file name with .go appended, social.weft.go)")
	pkg := fs.String("package", "", "Go package `name` of the generated file (default: the schema's package)")
	prev := fs.String("check-against", "", "previous version of the schema `file`: check that this one can replace it")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), genUsage)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return errors.New("want exactly one schema file")
	}
	path := fs.Arg(0)

	s, err := loadSchema(path)
	if err != nil {
		return err
	}
	if *prev != "" {
		old, err := loadSchema(*prev)
		if err != nil {
			return fmt.Errorf("previous schema: %w", err)
		}
		if err := schema.CheckEvolution(old, s); err != nil {
			return err
		}
	}
	code, err := gogen.Generate(s, gogen.Options{Package: *pkg, Source: filepath.Base(path)})
	if err != nil {
		return err
	}

	switch *out {
	case "-":
		_, err = stdout.Write(code)
		return err
	case "":
		*out = path + ".go"
	}
	if old, err := os.ReadFile(*out); err == nil && bytes.Equal(old, code) {
		return nil // up to date: leave the file and its time alone
	}
	return os.WriteFile(*out, code, 0o644)
}

// loadSchema reads, parses and checks a schema file.
func loadSchema(path string) (*schema.Schema, error) {
	if !strings.HasSuffix(path, ".weft") {
		return nil, fmt.Errorf("%s: a schema file name ends in .weft", path)
	}
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return schema.Load(path, src)
}
