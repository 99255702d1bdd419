package schema

import (
	"fmt"
	"sort"
	"strings"
)

// Pos is a position in a schema file. Line and Col count from 1; Col counts
// bytes, as the Go toolchain does. The zero Pos is "unknown".
type Pos struct {
	File string
	Line int
	Col  int
}

// IsValid reports whether p is a known position.
func (p Pos) IsValid() bool { return p.Line > 0 }

// String formats p as file:line:col, the form editors jump to.
func (p Pos) String() string {
	file := p.File
	if file == "" {
		file = "-"
	}
	if !p.IsValid() {
		return file
	}
	return fmt.Sprintf("%s:%d:%d", file, p.Line, p.Col)
}

// Error is one problem found in a schema, at a position.
type Error struct {
	Pos Pos
	Msg string
}

func (e *Error) Error() string { return e.Pos.String() + ": " + e.Msg }

// ErrorList is every problem found in a schema, sorted by position. Parse,
// Check and CheckEvolution return their errors as an ErrorList.
type ErrorList []*Error

// maxErrors bounds an ErrorList: past it, more errors add noise, not help.
const maxErrors = 20

func (l ErrorList) Error() string {
	var b strings.Builder
	for i, e := range l {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(e.Error())
	}
	return b.String()
}

// Unwrap lets errors.As find each *Error of the list.
func (l ErrorList) Unwrap() []error {
	errs := make([]error, len(l))
	for i, e := range l {
		errs[i] = e
	}
	return errs
}

// maxKept bounds the errors an errorSink keeps before sorting; past it, it
// only counts them, so that garbage input costs little.
const maxKept = 10 * maxErrors

// errorSink collects the problems of one pass.
type errorSink struct {
	list    ErrorList
	dropped int
}

func (s *errorSink) errorf(pos Pos, format string, args ...any) {
	if len(s.list) >= maxKept {
		s.dropped++
		return
	}
	s.list = append(s.list, &Error{Pos: pos, Msg: fmt.Sprintf(format, args...)})
}

// err returns the collected errors sorted by position (nil if none), cut to
// maxErrors.
func (s *errorSink) err() error {
	if len(s.list) == 0 {
		return nil
	}
	l := s.list
	sort.SliceStable(l, func(i, j int) bool {
		a, b := l[i].Pos, l[j].Pos
		if a.File != b.File {
			return a.File < b.File
		}
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		return a.Col < b.Col
	})
	if len(l) > maxErrors {
		more := len(l) - maxErrors + s.dropped
		l = append(l[:maxErrors:maxErrors], &Error{Pos: l[maxErrors].Pos, Msg: fmt.Sprintf("too many errors (%d more)", more)})
	}
	return l
}
