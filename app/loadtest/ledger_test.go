//go:build load

package loadtest

import (
	"math/rand/v2"
	"sync"

	"mixmatch/app/store"
)

// resource is one image or volume the run knows the place of.
type resource struct {
	Type    string // images, volumes or snapshots, as in resource_type
	ID      string // as the cloud wrote it, dashes included
	SP      string
	Project string // at the SP, normalised
}

// expectation is the row resource_mapping must end with for one resource.
type expectation struct {
	sp, project string
	gone        bool   // deleted: no row at all
	source      string // seed, create, broadcast or notification
}

// ledger is what the table must say at the end, written as the run goes: by the
// generator when mixmatch answered, by the publisher in publish order (one channel,
// one queue, one consumer: the ingester applies them in that order).
type ledger struct {
	mu sync.Mutex
	m  map[string]*expectation
}

func newLedger() *ledger { return &ledger{m: map[string]*expectation{}} }

func ledgerKey(typ, id string) string { return typ + "/" + store.NormalizeID(id) }

func (l *ledger) live(source string, r resource) {
	l.mu.Lock()
	defer l.mu.Unlock()
	k := ledgerKey(r.Type, r.ID)
	if e, ok := l.m[k]; ok && e.gone {
		return // a create after its delete changes nothing: the ingester keeps tombstones
	}
	l.m[k] = &expectation{sp: r.SP, project: store.NormalizeID(r.Project), source: source}
}

func (l *ledger) gone(source, typ, id, sp string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.m[ledgerKey(typ, id)] = &expectation{sp: sp, gone: true, source: source}
}

func (l *ledger) move(typ, id, project string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if e, ok := l.m[ledgerKey(typ, id)]; ok && !e.gone {
		e.project = store.NormalizeID(project)
	}
}

func (l *ledger) snapshot() map[string]expectation {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make(map[string]expectation, len(l.m))
	for k, e := range l.m {
		out[k] = *e
	}
	return out
}

// pool holds the resources a mapped GET may ask for; it only grows.
type pool struct {
	mu    sync.Mutex
	items []resource
}

func (p *pool) add(r ...resource) {
	p.mu.Lock()
	p.items = append(p.items, r...)
	p.mu.Unlock()
}

func (p *pool) pick() resource {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.items[rand.IntN(len(p.items))]
}

// bag is a set to draw random members from and remove them, in O(1).
type bag[T any] struct{ items []T }

func (b *bag[T]) put(v T) { b.items = append(b.items, v) }

func (b *bag[T]) take() (T, bool) {
	var zero T
	if len(b.items) == 0 {
		return zero, false
	}
	i := rand.IntN(len(b.items))
	v := b.items[i]
	b.items[i] = b.items[len(b.items)-1]
	b.items = b.items[:len(b.items)-1]
	return v, true
}
