package proxy

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
)

const (
	// maxLinkString bounds one string held to check it: a URL is far shorter, and a
	// longer string streams on as it comes (or is dropped, see linkReader.dropLong).
	maxLinkString = 64 << 10
	// maxLinkDepth bounds the nesting remembered: no client decodes deeper JSON
	// (Python's recursion limit is 1000, Go's encoding/json stops at 10000), so what
	// lies deeper only needs copying.
	maxLinkDepth = 10000
	// linkChunk is the most output held before it is handed on.
	linkChunk = 32 << 10
	// maxKeys bounds linkReader.keys.
	maxKeys = 256
)

// linkReader copies a JSON text and replaces string values that may hold a URL as
// fix says, given the key each is under ("" in an array or at the top). Only
// strings are read; the rest (numbers, literals, even what is no JSON at all) is
// copied byte for byte, so a body it cannot make sense of passes on as it came,
// never cut. Memory is bounded whatever the size of the text, which streams through.
type linkReader struct {
	src *bufio.Reader
	fix func(key, value string) (string, bool)
	// dropLong says whether a string value under key too long to check goes out as
	// "" rather than as it came.
	dropLong func(key string) bool
	out      bytes.Buffer
	err      error
	// changed: some string was replaced.
	changed bool

	nest    []byte // '{' or '[' of each open container, up to maxLinkDepth
	deeper  int    // containers open past maxLinkDepth
	wantKey bool   // the next string in an object is a key
	key     string
	// keys holds the keys seen, so that each is allocated once: lists repeat them.
	keys  map[string]string
	lit   []byte // the string literal being read, its opening quote included
	inStr bool
	esc   bool
	long  longMode
}

type longMode int

const (
	notLong longMode = iota
	copyingLong
	droppingLong
)

func newLinkReader(src io.Reader, fix func(key, value string) (string, bool), dropLong func(key string) bool) *linkReader {
	return &linkReader{src: bufio.NewReaderSize(src, linkChunk), fix: fix, dropLong: dropLong, keys: map[string]string{}}
}

func (l *linkReader) Read(p []byte) (int, error) {
	for l.out.Len() == 0 && l.err == nil {
		l.fill()
	}
	if l.out.Len() > 0 {
		return l.out.Read(p)
	}
	return 0, l.err
}

// fill steps through what the source has at hand, and waits for more only while
// there is nothing to hand on: a slow answer streams as it comes.
func (l *linkReader) fill() {
	for l.out.Len() < linkChunk {
		if l.src.Buffered() == 0 && l.out.Len() > 0 {
			return
		}
		chunk, err := l.src.Peek(max(l.src.Buffered(), 1))
		if len(chunk) == 0 {
			if l.inStr && l.long == notLong {
				l.out.Write(l.lit) // unterminated: as it came
			}
			l.err = err
			return
		}
		l.scan(chunk)
		l.src.Discard(len(chunk))
	}
}

// scan steps through b, a run at a time between the bytes that matter.
func (l *linkReader) scan(b []byte) {
	for len(b) > 0 {
		if l.inStr && !l.esc {
			i := indexIn(b, &inString)
			if i < 0 {
				l.stringRun(b)
				return
			}
			l.stringRun(b[:i])
			b = b[i:]
		} else if !l.inStr {
			i := indexIn(b, &outside)
			if i < 0 {
				l.out.Write(b)
				return
			}
			l.out.Write(b[:i])
			b = b[i:]
		}
		l.step(b[0])
		b = b[1:]
	}
}

// The bytes that matter inside a string literal and outside one.
var inString, outside = byteSet(`"\`), byteSet(`"{}[]:,`)

func byteSet(chars string) (set [256]bool) {
	for i := range len(chars) {
		set[chars[i]] = true
	}
	return set
}

func indexIn(b []byte, set *[256]bool) int {
	for i, c := range b {
		if set[c] {
			return i
		}
	}
	return -1
}

func (l *linkReader) step(b byte) {
	if l.inStr {
		l.stringByte(b)
		return
	}
	switch b {
	case '"':
		l.inStr, l.esc, l.long = true, false, notLong
		l.lit = append(l.lit[:0], b)
		return
	case '{', '[':
		if l.deeper > 0 || len(l.nest) == maxLinkDepth {
			l.deeper++
		} else {
			l.nest = append(l.nest, b)
		}
		l.wantKey = b == '{' && l.deeper == 0
	case '}', ']':
		if l.deeper > 0 {
			l.deeper--
		} else if len(l.nest) > 0 {
			l.nest = l.nest[:len(l.nest)-1]
		}
		l.wantKey = false
	case ':':
		l.wantKey = false
	case ',':
		l.wantKey = l.inObject()
	}
	l.out.WriteByte(b)
}

func (l *linkReader) inObject() bool {
	return l.deeper == 0 && len(l.nest) > 0 && l.nest[len(l.nest)-1] == '{'
}

func (l *linkReader) isKey() bool { return l.wantKey && l.inObject() }

// valueKey is the key of the value being read.
func (l *linkReader) valueKey() string {
	if l.inObject() {
		return l.key
	}
	return ""
}

// stringByte takes a quote or a backslash inside a string literal, or the byte
// after a backslash.
func (l *linkReader) stringByte(b byte) {
	end := !l.esc && b == '"'
	l.esc = !l.esc && b == '\\'
	if !end {
		l.stringRun([]byte{b})
		return
	}
	l.inStr = false
	if l.long == notLong {
		l.lit = append(l.lit, b)
		l.endString()
	} else if l.long == copyingLong {
		l.out.WriteByte(b)
	}
	l.long = notLong
}

// stringRun takes bytes inside a string literal.
func (l *linkReader) stringRun(b []byte) {
	switch l.long {
	case copyingLong:
		l.out.Write(b)
		return
	case droppingLong:
		return
	}
	l.lit = append(l.lit, b...)
	if len(l.lit) <= maxLinkString {
		return
	}
	switch {
	case l.isKey():
		l.key = "" // a key that long names no link
		l.out.Write(l.lit)
		l.long = copyingLong
	case l.dropLong(l.valueKey()):
		l.out.WriteString(`""`)
		l.long, l.changed = droppingLong, true
	default:
		l.out.Write(l.lit)
		l.long = copyingLong
	}
	l.lit = l.lit[:0]
}

// endString handles a whole string literal.
func (l *linkReader) endString() {
	raw := l.lit[1 : len(l.lit)-1]
	escaped := bytes.IndexByte(raw, '\\') >= 0
	if l.isKey() {
		l.out.Write(l.lit)
		if key, ok := l.keys[string(raw)]; ok && !escaped {
			l.key = key
			return
		}
		l.key, _ = unquote(l.lit)
		if !escaped && len(l.keys) < maxKeys {
			l.keys[l.key] = l.key
		}
		return
	}
	// A URL that leads to a host has two slashes, as they are or escaped.
	if !escaped && bytes.IndexByte(raw, '/') < 0 {
		l.out.Write(l.lit)
		return
	}
	s, ok := unquote(l.lit)
	if ok {
		if v, replace := l.fix(l.valueKey(), s); replace {
			l.out.Write(quote(v))
			l.changed = true
			return
		}
	}
	l.out.Write(l.lit)
}

// unquote decodes a string literal; most have no escapes and need no decoder.
func unquote(lit []byte) (string, bool) {
	if bytes.IndexByte(lit, '\\') < 0 {
		return string(lit[1 : len(lit)-1]), true
	}
	var s string
	return s, json.Unmarshal(lit, &s) == nil
}

// quote writes a string as the services' JSON does, & < > as they are.
func quote(s string) []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.Encode(s)
	return bytes.TrimSuffix(b.Bytes(), []byte("\n"))
}
