//go:build load

package loadtest

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	amqp "github.com/rabbitmq/amqp091-go"

	"mixmatch/app/fakecloud"
	"mixmatch/app/oslo"
	"mixmatch/app/store"
)

// message is one notification to publish.
type message struct {
	sp       string
	exchange int // 0: the Glance exchange, 1: the Cinder one
	event    string
	payload  map[string]string
	// probe, when set, is an image id whose arrival in the table is timed.
	probe string
}

// events is the mix of synthetic notifications, in percent. Deletes, transfers and
// creates' ends act on resources the publisher created before, on the same bus.
var events = []struct {
	name   string
	weight int
}{
	{"image.create", 30},
	{"volume.create.start", 20}, // its volume.create.end follows a little later
	{"image.delete", 10},
	{"volume.delete.end", 8},
	{"volume.transfer.accept.end", 8},
	{"snapshot.create.start", 6},
	{"snapshot.delete.end", 3},
	{"late-create", 3}, // a delete overtaking its create, as queues may reorder them
	{"ignored", 12},    // events that map nothing: image.update, compute.instance.*
}

// publisher plays the clouds' notifiers: rate notifications a second, to the
// ingester's exchanges on the real RabbitMQ, with publisher confirms so that every
// message counted as published is known to be in the queue. The stand-ins' own
// create notifications (resources created through mixmatch) go first; synthetic ones
// fill the rest of each second.
type publisher struct {
	e      *env
	ledger *ledger
	probes *prober
	cloud  chan message

	conn     *amqp.Connection
	ch       *amqp.Channel
	confirms chan amqp.Confirmation
	acked    atomic.Int64
	nacked   atomic.Int64
	allIn    chan struct{} // closed once every publish is confirmed

	// Only the publishing goroutine touches what follows.
	pending    []message
	live       map[string]*bag[resource] // "<sp>/<type>", synthetic resources not deleted
	projects   []string
	probeEvery int
	nImage     int
	published  int
	// onSchedule is what was published by the end of the run: the achieved rate.
	onSchedule int
	bySP       map[string]int
	byEvent    map[string]int
	fromClouds int
	finished   time.Time
	// lags is, at each 10 ms step, how far behind its schedule publishing was.
	lags []time.Duration
}

func newPublisher(e *env, l *ledger, probes *prober, cloud chan message, rate float64) (*publisher, error) {
	conn, err := amqp.Dial(rabbitURL)
	if err != nil {
		return nil, err
	}
	ch, err := conn.Channel()
	if err == nil {
		err = ch.Confirm(false)
	}
	if err != nil {
		conn.Close()
		return nil, err
	}
	p := &publisher{e: e, ledger: l, probes: probes, cloud: cloud, conn: conn, ch: ch,
		confirms: ch.NotifyPublish(make(chan amqp.Confirmation, 8192)), allIn: make(chan struct{}),
		live: map[string]*bag[resource]{}, bySP: map[string]int{}, byEvent: map[string]int{},
		// About 20 timed creates a second: enough for percentiles, few queries.
		probeEvery: max(1, int(rate*0.3/20))}
	for i := 0; i < 16; i++ {
		p.projects = append(p.projects, store.NormalizeID(fakecloud.NewUUID()))
	}
	return p, nil
}

// cloudEvent is a stand-in's notifier: only clouds with a bus have one.
func cloudEvent(ch chan message, dropped *atomic.Int64) func(sp, kind, id, project string) {
	hasBus := map[string]bool{}
	for _, sp := range busSPs {
		hasBus[sp] = true
	}
	return func(sp, kind, id, project string) {
		if !hasBus[sp] {
			return
		}
		m := message{sp: sp, event: "image.create", payload: map[string]string{"id": id, "owner": project, "status": "queued"}}
		if kind == "volumes" {
			m = message{sp: sp, exchange: 1, event: "volume.create.end", payload: map[string]string{"volume_id": id, "tenant_id": project, "status": "available"}}
		}
		select {
		case ch <- m:
		default:
			dropped.Add(1) // only realism is lost: the row comes from the proxy anyway
		}
	}
}

// run publishes until d has passed, rate a second, in 10 ms steps. The number due
// is computed from the clock, so steps that come late catch up; whatever could not be
// published by the end shows as a missed rate.
func (p *publisher) run(start time.Time, d time.Duration, rate float64) error {
	go p.countConfirms()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	end := start.Add(d)
	for {
		now := <-tick.C
		elapsed := min(now.Sub(start), d)
		due := int(elapsed.Seconds() * rate)
		p.lags = append(p.lags, time.Duration(float64(due-p.published)/rate*float64(time.Second)))
		for p.published < due {
			if err := p.publish(p.next()); err != nil {
				return err
			}
		}
		if !now.Before(end) {
			p.finished = time.Now()
			p.onSchedule = p.published
			return nil
		}
	}
}

func (p *publisher) publish(m message) error {
	payload, _ := json.Marshal(m.payload)
	publisherID := "volume.node1"
	if m.exchange == 0 {
		publisherID = "image.localhost"
	}
	body := oslo.Envelope(oslo.Notification{MessageID: fakecloud.NewUUID(), PublisherID: publisherID, EventType: m.event,
		Priority: "INFO", Payload: payload, Timestamp: time.Now().UTC().Format("2006-01-02 15:04:05.000000")})
	err := p.ch.PublishWithContext(context.Background(), p.e.exchanges[m.sp][m.exchange], "notifications.info", false, false,
		amqp.Publishing{ContentType: "application/json", Body: body})
	if err != nil {
		return fmt.Errorf("publishing %s: %w", m.event, err)
	}
	if m.probe != "" {
		p.probes.add(m.probe, time.Now())
	}
	p.published++
	p.bySP[m.sp]++
	p.byEvent[m.event]++
	return nil
}

// flushClouds publishes the clouds' notifications of creates that ended after the
// run did, as a cloud's notifier would: the ingester must see them too.
func (p *publisher) flushClouds() error {
	for {
		select {
		case m := <-p.cloud:
			p.fromClouds++
			if err := p.publish(m); err != nil {
				return err
			}
		default:
			return nil
		}
	}
}

func (p *publisher) countConfirms() {
	for c := range p.confirms {
		if c.Ack {
			p.acked.Add(1)
		} else {
			p.nacked.Add(1)
		}
	}
}

// waitConfirms waits until the broker has confirmed every message published.
func (p *publisher) waitConfirms(timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for p.acked.Load()+p.nacked.Load() < int64(p.published) {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond) // polling a counter, bounded by the deadline
	}
	return true
}

func (p *publisher) close() { p.conn.Close() }

// next picks the next notification and writes its effect into the ledger. The
// ledger's order is the publish order, which is the order the ingester applies.
func (p *publisher) next() message {
	select {
	case m := <-p.cloud:
		p.fromClouds++
		return m
	default:
	}
	if len(p.pending) > 0 && (rand.IntN(2) == 0 || len(p.pending) > 200) {
		m := p.pending[0]
		p.pending = p.pending[1:]
		p.followUp(m)
		return m
	}
	sp := busSPs[rand.IntN(len(busSPs))]
	project := p.projects[rand.IntN(len(p.projects))]
	n := rand.IntN(100)
	event := events[0].name
	for _, e := range events {
		if n < e.weight {
			event = e.name
			break
		}
		n -= e.weight
	}
	switch event {
	case "image.delete", "volume.delete.end", "volume.transfer.accept.end", "snapshot.delete.end":
		if m, ok := p.onExisting(sp, event); ok {
			return m
		}
		event = "image.create" // nothing to act on yet
	}
	switch event {
	case "image.create":
		r := resource{Type: "images", ID: fakecloud.NewUUID(), SP: sp, Project: project}
		p.ledger.live("notification", r)
		m := message{sp: sp, event: event, payload: map[string]string{"id": r.ID, "owner": project, "status": "queued"}}
		// A timed image is never deleted, so its row must appear.
		if p.nImage++; p.nImage%p.probeEvery == 0 {
			m.probe = store.NormalizeID(r.ID)
		} else {
			p.bag(sp, "images").put(r)
		}
		return m
	case "volume.create.start":
		r := resource{Type: "volumes", ID: fakecloud.NewUUID(), SP: sp, Project: project}
		p.ledger.live("notification", r)
		p.pending = append(p.pending, message{sp: sp, exchange: 1, event: "volume.create.end",
			payload: map[string]string{"volume_id": r.ID, "tenant_id": project, "status": "available"}})
		return message{sp: sp, exchange: 1, event: event, payload: map[string]string{"volume_id": r.ID, "tenant_id": project, "status": "creating"}}
	case "snapshot.create.start":
		r := resource{Type: "snapshots", ID: fakecloud.NewUUID(), SP: sp, Project: project}
		p.ledger.live("notification", r)
		p.bag(sp, "snapshots").put(r)
		return message{sp: sp, exchange: 1, event: event, payload: map[string]string{"snapshot_id": r.ID, "tenant_id": project, "volume_id": fakecloud.NewUUID()}}
	case "late-create":
		id := fakecloud.NewUUID()
		p.ledger.gone("notification", "volumes", id, sp)
		p.pending = append(p.pending, message{sp: sp, exchange: 1, event: "volume.create.start",
			payload: map[string]string{"volume_id": id, "tenant_id": project, "status": "creating"}})
		return message{sp: sp, exchange: 1, event: "volume.delete.end", payload: map[string]string{"volume_id": id, "tenant_id": project}}
	}
	if rand.IntN(2) == 0 {
		return message{sp: sp, event: "image.update", payload: map[string]string{"id": fakecloud.NewUUID(), "owner": project}}
	}
	return message{sp: sp, exchange: 1, event: "compute.instance.create.end", payload: map[string]string{"instance_id": fakecloud.NewUUID(), "tenant_id": project}}
}

// followUp is the effect of a pending message when its turn comes.
func (p *publisher) followUp(m message) {
	if m.event == "volume.create.end" {
		// Only a volume whose create has ended may be transferred or deleted, as in Cinder.
		p.bag(m.sp, "volumes").put(resource{Type: "volumes", ID: m.payload["volume_id"], SP: m.sp, Project: m.payload["tenant_id"]})
	}
}

// onExisting builds a delete or transfer of a live synthetic resource.
func (p *publisher) onExisting(sp, event string) (message, bool) {
	typ := map[string]string{"image.delete": "images", "volume.delete.end": "volumes",
		"volume.transfer.accept.end": "volumes", "snapshot.delete.end": "snapshots"}[event]
	b := p.bag(sp, typ)
	r, ok := b.take()
	if !ok {
		return message{}, false
	}
	switch event {
	case "image.delete":
		p.ledger.gone("notification", typ, r.ID, sp)
		return message{sp: sp, event: event, payload: map[string]string{"id": r.ID, "owner": r.Project}}, true
	case "volume.transfer.accept.end":
		r.Project = p.projects[rand.IntN(len(p.projects))]
		p.ledger.move(typ, r.ID, r.Project)
		b.put(r)
		return message{sp: sp, exchange: 1, event: event, payload: map[string]string{"volume_id": r.ID, "tenant_id": r.Project}}, true
	case "snapshot.delete.end":
		p.ledger.gone("notification", typ, r.ID, sp)
		return message{sp: sp, exchange: 1, event: event, payload: map[string]string{"snapshot_id": r.ID, "tenant_id": r.Project}}, true
	}
	p.ledger.gone("notification", typ, r.ID, sp)
	return message{sp: sp, exchange: 1, event: event, payload: map[string]string{"volume_id": r.ID, "tenant_id": r.Project}}, true
}

func (p *publisher) bag(sp, typ string) *bag[resource] {
	b := p.live[sp+"/"+typ]
	if b == nil {
		b = &bag[resource]{}
		p.live[sp+"/"+typ] = b
	}
	return b
}

// prober times notifications from publish to row: it polls the table for the timed
// image ids, every 5 ms, from its own connection (a third process reading the file).
type prober struct {
	db      *sqlx.DB
	mu      sync.Mutex
	pending map[string]time.Time
	lags    []time.Duration
	errs    int
	lastErr error
}

func newProber(db *sqlx.DB) *prober { return &prober{db: db, pending: map[string]time.Time{}} }

func (p *prober) add(id string, at time.Time) {
	p.mu.Lock()
	p.pending[id] = at
	p.mu.Unlock()
}

func (p *prober) run(ctx context.Context) {
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		p.mu.Lock()
		ids := make([]string, 0, len(p.pending))
		for id := range p.pending {
			if len(ids) == 500 {
				break
			}
			ids = append(ids, id)
		}
		p.mu.Unlock()
		if len(ids) == 0 {
			continue
		}
		query, args, _ := sqlx.In(`SELECT resource_id FROM resource_mapping WHERE resource_type = 'images' AND resource_id IN (?)`, ids)
		var found []string
		err := p.db.SelectContext(ctx, &found, p.db.Rebind(query), args...)
		now := time.Now()
		p.mu.Lock()
		if err != nil && ctx.Err() == nil {
			p.errs++
			p.lastErr = err
		}
		for _, id := range found {
			if at, ok := p.pending[id]; ok {
				p.lags = append(p.lags, now.Sub(at))
				delete(p.pending, id)
			}
		}
		p.mu.Unlock()
	}
}

func (p *prober) outstanding() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.pending)
}

// wait waits until every timed row has been seen, at most timeout.
func (p *prober) wait(timeout time.Duration) {
	deadline := time.Now().Add(timeout)
	for p.outstanding() > 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond) // the prober's own polling does the work
	}
}

// bus is a run's notifications: the publisher, the probes timing rows' arrival,
// and what the stand-ins' own notifiers dropped.
type bus struct {
	pub        *publisher
	probes     *prober
	dropped    *atomic.Int64
	stopProber context.CancelFunc
}

// newBusEnv starts the env with the stand-ins' notifiers feeding a publisher of
// rate notifications a second, the ledger holding the seeds, and the probes running.
func newBusEnv(t *testing.T, rate float64) (*env, *ledger, *bus) {
	t.Helper()
	fromClouds := make(chan message, 4096)
	b := &bus{dropped: new(atomic.Int64)}
	e := newEnv(t, cloudEvent(fromClouds, b.dropped))
	l := newLedger()
	for _, r := range e.seeds {
		l.live("seed", r)
	}
	b.probes = newProber(e.db)
	pub, err := newPublisher(e, l, b.probes, fromClouds, rate)
	if err != nil {
		t.Fatalf("publisher: %v", err)
	}
	t.Cleanup(pub.close)
	b.pub = pub
	ctx, stop := context.WithCancel(context.Background())
	t.Cleanup(stop)
	b.stopProber = stop
	go b.probes.run(ctx)
	return e, l, b
}

// finish publishes what the notifiers still hold, waits for RabbitMQ's confirms
// and for the ingester to empty the queues, then for the last probes.
func (b *bus) finish(e *env) (flushErr error, confirmed bool, d drain) {
	flushErr = b.pub.flushClouds()
	confirmed = b.pub.waitConfirms(30 * time.Second)
	d = waitDrain(e, b.pub.published, 2*time.Minute)
	b.probes.wait(30 * time.Second)
	b.stopProber()
	return flushErr, confirmed, d
}
