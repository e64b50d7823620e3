package proxy

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

func readLinks(t testing.TB, in string, fix func(key, value string) (string, bool), dropLong func(string) bool) string {
	t.Helper()
	out, err := io.ReadAll(newLinkReader(strings.NewReader(in), fix, dropLong))
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

func keep(string, string) (string, bool) { return "", false }
func keepLong(string) bool               { return false }

// Each string value with a slash is offered with the key of the object member it
// is ("" in an array); keys and the rest are not links.
func TestLinkReaderOffersValuesWithTheirKeys(t *testing.T) {
	in := `{"a": {"href": "/1", "n": [true, null, 1.5e3, "/2"]}, "b": "/3", "c": [{"self": "\/4"}], "h\u0072ef": "/5", "x\"y": "/6", "z": "7"}`
	var seen []string
	out := readLinks(t, in, func(key, value string) (string, bool) {
		seen = append(seen, key+"="+value)
		return "<" + value + ">", true
	}, keepLong)
	want := `{"a": {"href": "</1>", "n": [true, null, 1.5e3, "</2>"]}, "b": "</3>", "c": [{"self": "</4>"}], "h\u0072ef": "</5>", "x\"y": "</6>", "z": "7"}`
	if out != want || strings.Join(seen, " ") != `href=/1 =/2 b=/3 self=/4 href=/5 x"y=/6` {
		t.Fatalf("%s\n%v", out, seen)
	}
}

// What is not replaced goes out byte for byte, JSON or not, whole or cut, however
// it is read.
func TestLinkReaderCopiesTheRest(t *testing.T) {
	for _, in := range []string{
		``, `{}`, `[1, 2]`, `{"a": NaN, "b": -Infinity}`, `<html><a href="http://x/">x</a></html>`,
		`{"unterminated": "abc`, `{"escaped": "\"\\\/\u00e9"}`, `"top"`, `}}]]"x"{[`,
		`{"long": "` + strings.Repeat("y", maxLinkString*2) + `", "after": "z"}`,
		strings.Repeat("[", maxLinkDepth+10) + `"deep"` + strings.Repeat("]", maxLinkDepth+10),
	} {
		if out := readLinks(t, in, keep, keepLong); out != in {
			t.Errorf("%.60q came out as %.60q", in, out)
		}
		out, err := io.ReadAll(iotest.OneByteReader(newLinkReader(iotest.HalfReader(strings.NewReader(in)), keep, keepLong)))
		if err != nil || string(out) != in {
			t.Errorf("%.60q, read a byte at a time: %.60q %v", in, out, err)
		}
	}
}

// A string too long to hold is checked no more: dropped where dropLong says,
// copied elsewhere, and a key that long names nothing.
func TestLinkReaderLongStrings(t *testing.T) {
	long := strings.Repeat("u", maxLinkString+1)
	in := `{"href": "` + long + `", "other": "` + long + `", "` + long + `": "/v"}`
	var seen []string
	out := readLinks(t, in, func(key, value string) (string, bool) {
		seen = append(seen, key)
		return "", false
	}, func(key string) bool { return key == "href" })
	if out != `{"href": "", "other": "`+long+`", "`+long+`": "/v"}` || len(seen) != 1 || seen[0] != "" {
		t.Fatalf("%.80s… %q", out, seen)
	}
}

// A source that fails mid-text fails the reader, after what it gave.
func TestLinkReaderPassesErrors(t *testing.T) {
	broken := errors.New("connection reset")
	r := newLinkReader(io.MultiReader(strings.NewReader(`{"a": 1, "b": "par`), iotest.ErrReader(broken)), keep, keepLong)
	out, err := io.ReadAll(r)
	if !errors.Is(err, broken) || string(out) != `{"a": 1, "b": "par` {
		t.Fatalf("%q %v", out, err)
	}
}

// Whatever the text, a reader that replaces nothing changes nothing, and one that
// replaces every value keeps valid JSON valid.
func FuzzLinkReader(f *testing.F) {
	for _, seed := range []string{`{"links": [{"rel": "next", "href": "http://cinder:8776/v3/p/volumes?marker=x"}]}`,
		`{"a": ["\u0068ttp:\/\/x", {"b": null}], "c": {"d": "e"}}`, `[[[["x"]]]]`, `{"k" "v"}`, `"\\"`} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, in string) {
		if out := readLinks(t, in, keep, keepLong); out != in {
			t.Fatalf("%q came out as %q", in, out)
		}
		if !json.Valid([]byte(in)) {
			return
		}
		out := readLinks(t, in, func(key, value string) (string, bool) { return key + "\"</>&" + value, true }, keepLong)
		if !json.Valid([]byte(out)) {
			t.Fatalf("%q came out as %q", in, out)
		}
	})
}

func BenchmarkLinkReader(b *testing.B) {
	var page bytes.Buffer
	page.WriteString(`{"volumes": [`)
	for i := 0; i < 1000; i++ {
		page.WriteString(`{"id": "0e4d8e4a-6b1c-4c5d-9e2f-1a2b3c4d5e6f", "name": "vol", "size": 1, "status": "available", ` +
			`"links": [{"rel": "self", "href": "http://cinder:8776/v3/p/volumes/0e4d8e4a-6b1c-4c5d-9e2f-1a2b3c4d5e6f"}]}, `)
	}
	page.WriteString(`{}]}`)
	b.SetBytes(int64(page.Len()))
	for b.Loop() {
		io.Copy(io.Discard, newLinkReader(bytes.NewReader(page.Bytes()), func(_, v string) (string, bool) {
			return v, strings.HasPrefix(v, "http://cinder:8776/")
		}, keepLong))
	}
}
