package schema

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

type tokenKind int

const (
	tokEOF tokenKind = iota
	tokIdent
	tokInt
	tokString
	tokPunct // one of ; : = , { } < > [ ]
)

type token struct {
	kind tokenKind
	pos  Pos
	text string // the source text; unquoted for strings
	doc  string // comment block ending on the line above, if this token starts a line
}

func (t token) String() string {
	switch t.kind {
	case tokEOF:
		return "end of file"
	case tokString:
		return strconv.Quote(t.text)
	case tokInt:
		return t.text
	case tokIdent:
		return fmt.Sprintf("%q", t.text)
	default:
		return "'" + t.text + "'"
	}
}

// scanner splits a schema file into tokens. It keeps "//" comments that sit
// alone on their lines, so that a comment block right above a declaration
// becomes its doc.
type scanner struct {
	file string
	src  []byte
	off  int
	line int
	col  int
	errs *errorSink

	lastTokLine  int      // line of the last token returned
	comment      []string // current comment block
	commentStart int      // line of the first line of comment
	commentEnd   int      // line of the last line of comment
}

func newScanner(file string, src []byte, errs *errorSink) *scanner {
	return &scanner{file: file, src: src, line: 1, col: 1, errs: errs}
}

func (s *scanner) pos() Pos { return Pos{File: s.file, Line: s.line, Col: s.col} }

func (s *scanner) advance() {
	if s.src[s.off] == '\n' {
		s.line++
		s.col = 1
	} else {
		s.col++
	}
	s.off++
}

func (s *scanner) peekByte() byte {
	if s.off < len(s.src) {
		return s.src[s.off]
	}
	return 0
}

// next returns the next token. Invalid characters are reported and skipped.
func (s *scanner) next() token {
	for {
		s.skipSpaceAndComments()
		if s.off >= len(s.src) {
			return token{kind: tokEOF, pos: s.pos()}
		}
		tok, ok := s.scanToken()
		if !ok {
			continue
		}
		if s.comment != nil && s.commentEnd == tok.pos.Line-1 && s.commentStart > s.lastTokLine {
			tok.doc = strings.Join(s.comment, "\n")
		}
		s.comment = nil
		s.lastTokLine = tok.pos.Line
		return tok
	}
}

func (s *scanner) skipSpaceAndComments() {
	for s.off < len(s.src) {
		c := s.src[s.off]
		switch {
		case c == ' ' || c == '\t' || c == '\r' || c == '\n':
			s.advance()
		case c == '/' && s.off+1 < len(s.src) && s.src[s.off+1] == '/':
			line := s.line
			start := s.off + 2
			for s.off < len(s.src) && s.src[s.off] != '\n' {
				s.advance()
			}
			if line == s.lastTokLine {
				continue // a trailing comment is not a doc comment
			}
			text := strings.TrimRight(string(s.src[start:s.off]), " \t\r")
			text = strings.TrimPrefix(text, " ")
			if bad := badText(text); bad != "" {
				// Doc comments are copied into generated code.
				s.errs.errorf(Pos{File: s.file, Line: line, Col: 1}, "comment %s", bad)
				text = strings.ToValidUTF8(strings.ReplaceAll(text, "\x00", ""), "")
			}
			if s.comment != nil && s.commentEnd == line-1 {
				s.comment = append(s.comment, text)
			} else {
				s.comment = []string{text}
				s.commentStart = line
			}
			s.commentEnd = line
		default:
			return
		}
	}
}

// badText says what makes text unfit for a schema (it ends up in
// generated code and on the wire): invalid UTF-8 or a NUL; "" if nothing.
func badText(text string) string {
	switch {
	case !utf8.ValidString(text):
		return "is not valid UTF-8"
	case strings.IndexByte(text, 0) >= 0:
		return "holds a NUL character"
	}
	return ""
}

func isLetter(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_' }
func isDigit(c byte) bool  { return c >= '0' && c <= '9' }

func (s *scanner) scanToken() (token, bool) {
	pos := s.pos()
	start := s.off
	c := s.src[s.off]
	switch {
	case isLetter(c):
		for s.off < len(s.src) && (isLetter(s.src[s.off]) || isDigit(s.src[s.off])) {
			s.advance()
		}
		return token{kind: tokIdent, pos: pos, text: string(s.src[start:s.off])}, true
	case isDigit(c):
		for s.off < len(s.src) && (isLetter(s.src[s.off]) || isDigit(s.src[s.off])) {
			s.advance()
		}
		return token{kind: tokInt, pos: pos, text: string(s.src[start:s.off])}, true
	case c == '"':
		return s.scanString(pos)
	case strings.IndexByte(";:=,{}<>[]", c) >= 0:
		s.advance()
		return token{kind: tokPunct, pos: pos, text: string(c)}, true
	}
	s.advance()
	for s.off < len(s.src) && s.src[s.off]&0xC0 == 0x80 { // rest of a UTF-8 sequence
		s.advance()
	}
	s.errs.errorf(pos, "unexpected character %q", string(s.src[start:s.off]))
	return token{}, false
}

func (s *scanner) scanString(pos Pos) (token, bool) {
	start := s.off
	s.advance() // opening quote
	for {
		c := s.peekByte()
		switch {
		case s.off >= len(s.src) || c == '\n':
			s.errs.errorf(pos, "string literal not terminated")
			return token{}, false
		case c == '\\':
			s.advance()
			if s.off < len(s.src) && s.src[s.off] != '\n' {
				s.advance()
			}
		case c == '"':
			s.advance()
			v, err := strconv.Unquote(string(s.src[start:s.off]))
			if err != nil {
				s.errs.errorf(pos, "invalid string literal %s", s.src[start:s.off])
				return token{}, false
			}
			if bad := badText(v); bad != "" {
				s.errs.errorf(pos, "string literal %s", bad)
				return token{}, false
			}
			return token{kind: tokString, pos: pos, text: v}, true
		default:
			s.advance()
		}
	}
}
