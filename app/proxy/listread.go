package proxy

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"mixmatch/app/aggregate"
)

// What mixmatch reads of one SP's list page is bounded by what the merged page
// needs: at most the items asked for, and a byte budget per item. A hostile SP's
// 32 MiB page of tiny items, decoded whole, cost gigabytes across a few calls.
const (
	// itemBytes is the budget per item asked for: a Glance image with many
	// properties is a few KiB, a Cinder volume less.
	itemBytes = 32 << 10
	// pageOverhead covers what surrounds the items (links, schema).
	pageOverhead = 64 << 10
)

// pageBytes is the most read of a page of limit items.
func pageBytes(limit int) int64 { return pageOverhead + int64(limit)*itemBytes }

// errPageTooLarge is a page past its byte budget.
var errPageTooLarge = errors.New("a list page larger than its items allow")

// readList decodes the array under key of a JSON object as a stream, keeping at
// most max items; what follows them is not read.
func readList(r io.Reader, key string, max int) ([]aggregate.Item, error) {
	d := json.NewDecoder(r)
	d.UseNumber()
	if err := expect(d, json.Delim('{')); err != nil {
		return nil, err
	}
	for d.More() {
		tok, err := d.Token()
		if err != nil {
			return nil, err
		}
		if tok != key {
			if err := skip(d); err != nil {
				return nil, err
			}
			continue
		}
		if err := expect(d, json.Delim('[')); err != nil {
			return nil, err
		}
		items := []aggregate.Item{}
		for d.More() && len(items) < max {
			var it aggregate.Item
			if err := d.Decode(&it); err != nil {
				return nil, err
			}
			items = append(items, it)
		}
		return items, nil
	}
	return nil, fmt.Errorf("the page has no %q list", key)
}

func expect(d *json.Decoder, want json.Delim) error {
	tok, err := d.Token()
	if err != nil {
		return err
	}
	if tok != want {
		return fmt.Errorf("a list page: %v where %v was expected", tok, want)
	}
	return nil
}

// skip reads past one value without keeping it.
func skip(d *json.Decoder) error {
	depth := 0
	for {
		tok, err := d.Token()
		if err != nil {
			return err
		}
		switch tok {
		case json.Delim('{'), json.Delim('['):
			depth++
		case json.Delim('}'), json.Delim(']'):
			depth--
		}
		if depth == 0 {
			return nil
		}
	}
}
