package ingest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	amqp "github.com/rabbitmq/amqp091-go"

	"mixmatch/app/config"
	"mixmatch/app/dbtest"
	"mixmatch/app/metrics"
	"mixmatch/app/oslo"
	"mixmatch/app/store"
)

func rabbitURL() string {
	if u := os.Getenv("MIXMATCH_TEST_RABBITMQ"); u != "" {
		return u
	}
	return "rabbit://guest:guest@127.0.0.1:5672/"
}

type bus struct {
	sp    *config.SP
	store *store.Store
	conn  *amqp.Connection
	ch    *amqp.Channel
	seen  chan int
	// dsn is the store's connection URL.
	dsn string
}

// newBus makes a queue and two exchanges of its own on the real RabbitMQ, and a
// fresh SQLite store.
func newBus(t testing.TB) *bus {
	t.Helper()
	suffix := make([]byte, 4)
	rand.Read(suffix)
	id := hex.EncodeToString(suffix)
	mb, err := config.ParseMessagebus(rabbitURL())
	if err != nil {
		t.Fatal(err)
	}
	sp := &config.SP{Name: "remote1", SPName: "remote1", Messagebus: mb, NotificationQueue: "mixmatch.test." + id,
		NotificationExchanges: []string{"test-glance-" + id, "test-openstack-" + id}}
	dsn := dbtest.SQLite(t)
	s, err := store.Open(context.Background(), dsn, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if _, err := s.Migrate(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	conn, err := amqp.Dial(mb.AMQPURL(mb.Hosts[0]))
	if err != nil {
		t.Fatalf("RabbitMQ at %s: %v", rabbitURL(), err)
	}
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	b := &bus{sp: sp, store: s, conn: conn, ch: ch, seen: make(chan int, 10000), dsn: dsn}
	c := b.consumer(t)
	if err := c.topology(conn); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		conn.Close()
		// A fresh connection: a test may have had the broker close the first one.
		c, err := amqp.Dial(mb.AMQPURL(mb.Hosts[0]))
		if err != nil {
			return
		}
		defer c.Close()
		if ch, err := c.Channel(); err == nil {
			ch.QueueDelete(sp.NotificationQueue, false, false, false)
			for _, ex := range sp.NotificationExchanges {
				ch.ExchangeDelete(ex, false, false)
			}
		}
	})
	return b
}

func (b *bus) consumer(t testing.TB) *Consumer {
	return &Consumer{SP: b.sp, Store: b.store, Logger: slog.New(slog.DiscardHandler), Prefetch: 64,
		OnBatch: func(batch []amqp.Delivery) { b.seen <- len(batch) }}
}

func (b *bus) publish(t testing.TB, exchange int, body []byte) {
	b.publishWith(t, exchange, body, nil)
}

func (b *bus) publishWith(t testing.TB, exchange int, body []byte, headers amqp.Table) {
	t.Helper()
	err := b.ch.PublishWithContext(context.Background(), b.sp.NotificationExchanges[exchange], "notifications.info", false, false,
		amqp.Publishing{ContentType: "application/json", Body: body, Headers: headers})
	if err != nil {
		t.Fatal(err)
	}
}

func notification(event string, payload string) []byte {
	return oslo.Envelope(oslo.Notification{MessageID: fmt.Sprintf("m-%d", time.Now().UnixNano()), PublisherID: "volume.node1",
		EventType: event, Priority: "INFO", Payload: []byte(payload), Timestamp: "2026-01-02 03:04:05.123456"})
}

// awaitRows waits, batch by batch, until the table holds n rows. After a lost
// connection an ack the client sent may never have reached the broker, so the
// same messages come again and acks alone overcount.
func (b *bus) awaitRows(t *testing.T, n int) []store.Mapping {
	t.Helper()
	timeout := time.After(60 * time.Second)
	for {
		rows, err := b.store.List(context.Background(), store.Filter{})
		if err != nil {
			t.Fatal(err)
		}
		if len(rows) >= n {
			return rows
		}
		select {
		case <-b.seen:
		case <-timeout:
			t.Fatalf("%d of %d mappings", len(rows), n)
		}
	}
}

// await waits until consumers have acked n messages in all.
func (b *bus) await(t *testing.T, n int) {
	t.Helper()
	timeout := time.After(60 * time.Second)
	for got := 0; got < n; {
		select {
		case k := <-b.seen:
			got += k
		case <-timeout:
			t.Fatalf("%d of %d messages acked", got, n)
		}
	}
}

func run(c *Consumer) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { c.Run(ctx); close(done) }()
	return func() { cancel(); <-done }
}

func (b *bus) mapping(t *testing.T, typ, id string) (store.Mapping, bool) {
	m, err := b.store.Find(context.Background(), typ, id)
	if errors.Is(err, store.ErrNotFound) {
		return m, false
	}
	if err != nil {
		t.Fatal(err)
	}
	return m, true
}

// seed writes rows as the operator would.
func (b *bus) seed(t *testing.T, rows ...store.Mapping) {
	t.Helper()
	for _, m := range rows {
		if err := b.store.Upsert(context.Background(), m); err != nil {
			t.Fatal(err)
		}
	}
}

// consume publishes msgs to one exchange and runs a consumer, with metrics, until
// it has acked them all; it stops with the test.
func (b *bus) consume(t *testing.T, exchange int, msgs ...[]byte) *Consumer {
	t.Helper()
	for _, m := range msgs {
		b.publish(t, exchange, m)
	}
	c := b.consumer(t)
	c.Metrics = metrics.New()
	t.Cleanup(run(c))
	b.await(t, len(msgs))
	return c
}

func TestNotificationsBecomeMappings(t *testing.T) {
	b := newBus(t)
	msgs := [][]byte{
		notification("volume.create.start", `{"volume_id": "0e4d8e4a-6b1c-4c5d-9e2f-1a2b3c4d5e6f", "tenant_id": "p1", "status": "creating"}`),
		notification("volume.create.end", `{"volume_id": "0e4d8e4a-6b1c-4c5d-9e2f-1a2b3c4d5e6f", "tenant_id": "p1"}`), // duplicate effect
		notification("volume.transfer.accept.end", `{"volume_id": "0e4d8e4a-6b1c-4c5d-9e2f-1a2b3c4d5e6f", "tenant_id": "p2"}`),
		notification("snapshot.create.start", `{"snapshot_id": "s1", "tenant_id": "p1", "volume_id": "v"}`),
		// The bare 1.0 format of the "messaging" driver, as Glance sends it there.
		[]byte(`{"message_id": "m-img", "publisher_id": "image.localhost", "event_type": "image.create", "priority": "INFO", "payload": {"id": "img1", "owner": "p3"}}`),
		notification("compute.instance.create.end", `{"instance_id": "x"}`),
		[]byte(`not json at all`),
		notification("volume.create.start", `{"tenant_id": "p1"}`), // no id: dropped, not looped
		// A delete overtaking its create.
		notification("volume.delete.end", `{"volume_id": "v9", "tenant_id": "p1"}`),
		notification("volume.create.start", `{"volume_id": "v9", "tenant_id": "p1"}`),
	}
	for i, m := range msgs {
		b.publish(t, i%2, m)
	}
	c := b.consumer(t)
	c.Metrics = metrics.New()
	stop := run(c)
	defer stop()
	b.await(t, len(msgs))
	for _, tc := range []struct {
		event, outcome string
		want           float64
	}{{"volume.create.start", "applied", 2}, {"image.create", "applied", 1}, {"other", "ignored", 1},
		{"other", "undecodable", 1}, {"volume.create.start", "undecodable", 1}} {
		if got := testutil.ToFloat64(c.Metrics.Messages.WithLabelValues(tc.event, tc.outcome)); got != tc.want {
			t.Errorf("messages{%s,%s} = %v, want %v", tc.event, tc.outcome, got, tc.want)
		}
	}
	if got := testutil.ToFloat64(c.Metrics.Learned.WithLabelValues("notification")); got != 7 {
		t.Errorf("learned from notifications: %v", got)
	}

	if m, ok := b.mapping(t, "volumes", "0e4d8e4a6b1c4c5d9e2f1a2b3c4d5e6f"); !ok || m.ProjectID != "p2" || m.ResourceSP != "remote1" {
		t.Errorf("volume: %+v %v", m, ok)
	}
	if m, ok := b.mapping(t, "snapshots", "s1"); !ok || m.ProjectID != "p1" {
		t.Errorf("snapshot: %+v %v", m, ok)
	}
	if m, ok := b.mapping(t, "images", "img1"); !ok || m.ProjectID != "p3" {
		t.Errorf("image: %+v %v", m, ok)
	}
	if _, ok := b.mapping(t, "volumes", "v9"); ok {
		t.Error("a delete overtaken by its create left a row")
	}
	rows, _ := b.store.List(context.Background(), store.Filter{})
	if len(rows) != 3 {
		t.Errorf("%d rows: %+v", len(rows), rows)
	}
	// The queue is empty: undecodable messages were acked, not requeued forever.
	q, err := b.ch.QueueDeclarePassive(b.sp.NotificationQueue, true, false, false, false, nil)
	if err != nil || q.Messages != 0 {
		t.Errorf("queue left with %d messages (%v)", q.Messages, err)
	}
}

// A bus speaks for its own cloud: remote1's notifications about rows of the
// default cloud change nothing, and are logged and counted. A message too large
// to be a notification is dropped, and the stream goes on.
func TestABusSpeaksForItsOwnCloudOnly(t *testing.T) {
	b := newBus(t)
	b.seed(t, store.Mapping{ResourceType: "images", ResourceID: "victim", ResourceSP: "default", ProjectID: "p1"},
		store.Mapping{ResourceType: "volumes", ResourceID: "vol", ResourceSP: "default", ProjectID: "p1"})
	c := b.consume(t, 0,
		notification("image.create", `{"id": "victim", "owner": "evil"}`),
		notification("image.delete", `{"id": "victim", "owner": "evil"}`),
		notification("volume.transfer.accept.end", `{"volume_id": "vol", "tenant_id": "evil"}`),
		notification("volume.delete.end", `{"volume_id": "vol", "tenant_id": "evil"}`),
		append(notification("image.create", `{"id": "big", "owner": "p1", "pad": "`), append(make([]byte, MaxMessageSize), '"', '}', '}')...),
		notification("image.create", `{"id": "own", "owner": "p2"}`))
	if m, ok := b.mapping(t, "images", "victim"); !ok || m.ResourceSP != "default" || m.ProjectID != "p1" {
		t.Errorf("image victim: %+v %v", m, ok)
	}
	if m, ok := b.mapping(t, "volumes", "vol"); !ok || m.ResourceSP != "default" || m.ProjectID != "p1" {
		t.Errorf("volume vol: %+v %v", m, ok)
	}
	if m, ok := b.mapping(t, "images", "own"); !ok || m.ResourceSP != "remote1" {
		t.Errorf("remote1's own image: %+v %v", m, ok)
	}
	if _, ok := b.mapping(t, "images", "big"); ok {
		t.Error("an oversized message was applied")
	}
	if got := testutil.ToFloat64(c.Metrics.Conflicts.WithLabelValues("notification")); got != 2 {
		t.Errorf("conflicts counted: %v, want 2 (the create and the transfer)", got)
	}
	if got := testutil.ToFloat64(c.Metrics.Messages.WithLabelValues("other", "oversized")); got != 1 {
		t.Errorf("oversized messages counted: %v", got)
	}
	q, err := b.ch.QueueDeclarePassive(b.sp.NotificationQueue, true, false, false, false, nil)
	if err != nil || q.Messages != 0 {
		t.Errorf("queue left with %d messages (%v)", q.Messages, err)
	}
}

// The broker drops the connection mid-stream: the consumer reconnects and nothing is
// lost.
func TestBrokerConnectionClosedMidStream(t *testing.T) {
	b := newBus(t)
	const n = 3000
	for i := 0; i < n; i++ {
		b.publish(t, i%2, notification("image.create", fmt.Sprintf(`{"id": "img-%d", "owner": "p"}`, i)))
	}
	c := b.consumer(t)
	c.Prefetch = 16
	stop := run(c)
	defer stop()
	<-b.seen // consuming has begun
	out, err := exec.Command("rabbitmqctl", "close_all_connections", "mixmatch test").CombinedOutput()
	if err != nil {
		t.Fatalf("rabbitmqctl close_all_connections: %v %s", err, out)
	}
	rows := b.awaitRows(t, n)
	if c.Stats.Reconnects.Load() == 0 {
		t.Fatal("the connection was never lost: the test proves nothing")
	}
	if len(rows) != n {
		t.Fatalf("%d mappings of %d", len(rows), n)
	}
}

// SIGTERM: the consumer stops taking messages, applies and acks what it holds; a new
// one takes the rest.
func TestStopLosesNothing(t *testing.T) {
	b := newBus(t)
	const n = 500
	for i := 0; i < n; i++ {
		b.publish(t, 0, notification("volume.create.start", fmt.Sprintf(`{"volume_id": "v-%d", "tenant_id": "p"}`, i)))
	}
	first := b.consumer(t)
	first.Prefetch = 8
	stop := run(first)
	got := <-b.seen
	stop()
	for len(b.seen) > 0 {
		got += <-b.seen
	}
	stop2 := run(b.consumer(t))
	defer stop2()
	b.await(t, n-got)
	rows, _ := b.store.List(context.Background(), store.Filter{})
	if len(rows) != n {
		t.Fatalf("%d mappings of %d", len(rows), n)
	}
}

// The real client: oslo.messaging's Notifier, as Cinder and Glance use it, with both
// the messaging (1.0) and messagingv2 (2.0) drivers.
func TestOsloMessagingNotifier(t *testing.T) {
	b := newBus(t)
	script := `
import sys
from oslo_config import cfg
import oslo_messaging
url, exchange, driver, volume = sys.argv[1:]
conf = cfg.ConfigOpts()
conf([])
oslo_messaging.set_transport_defaults(control_exchange=exchange)
transport = oslo_messaging.get_notification_transport(conf, url=url)
notifier = oslo_messaging.Notifier(transport, publisher_id="volume.node4", driver=driver, topics=["notifications"])
notifier.info({}, "volume.create.start", {"volume_id": volume, "tenant_id": "8a1e", "status": "creating"})
transport.cleanup()
`
	for i, driver := range []string{"messaging", "messagingv2"} {
		volume := fmt.Sprintf("0e4d8e4a-6b1c-4c5d-9e2f-00000000000%d", i)
		out, err := exec.Command("/usr/bin/python3", "-c", script, rabbitURL(), b.sp.NotificationExchanges[1], driver, volume).CombinedOutput()
		if err != nil {
			t.Fatalf("oslo.messaging Notifier (%s): %v\n%s", driver, err, out)
		}
	}
	// The publisher also declares the shared notifications.info queue, as it does in
	// a cloud; it is not mixmatch's.
	defer b.ch.QueueDelete("notifications.info", false, false, false)
	stop := run(b.consumer(t))
	defer stop()
	b.await(t, 2)
	for i := 0; i < 2; i++ {
		id := fmt.Sprintf("0e4d8e4a6b1c4c5d9e2f00000000000%d", i)
		if m, ok := b.mapping(t, "volumes", id); !ok || m.ProjectID != "8a1e" {
			t.Errorf("volume %s from oslo.messaging: %+v %v", id, m, ok)
		}
	}
}

// Several hosts in the transport URL: an unreachable first one fails over.
func TestFailover(t *testing.T) {
	b := newBus(t)
	mb, err := config.ParseMessagebus("rabbit://guest:guest@127.0.0.1:1,127.0.0.1:5672/")
	if err != nil {
		t.Fatal(err)
	}
	b.sp.Messagebus = mb
	b.publish(t, 0, notification("image.create", `{"id": "img-f", "owner": "p"}`))
	c := b.consumer(t)
	stop := run(c)
	defer stop()
	b.await(t, 1)
	if _, ok := b.mapping(t, "images", "img-f"); !ok || c.Stats.Reconnects.Load() == 0 {
		t.Fatalf("mapped %v after %d reconnects", ok, c.Stats.Reconnects.Load())
	}
}

// Backups and attachments are learned from Cinder's own events, each for the
// cloud whose bus carries them.
func TestBackupsAndAttachmentsFromTheBus(t *testing.T) {
	b := newBus(t)
	// Another cloud's backup, and another cloud's attachment a payload lists.
	b.seed(t, store.Mapping{ResourceType: "backups", ResourceID: "b-default", ResourceSP: "default", ProjectID: "p1"},
		store.Mapping{ResourceType: "attachments", ResourceID: "a1b2c3d4-0000-4000-8000-000000000002", ResourceSP: "default", ProjectID: "p1"})
	c := b.consume(t, 1,
		notification("backup.create.start", backupPayload),
		notification("backup.delete.end", `{"backup_id": "b-default", "tenant_id": "p1"}`),
		notification("volume.attach.end", attachPayload))
	for _, want := range []store.Mapping{
		{ResourceType: "backups", ResourceID: "9c4d5e6f7a8b4c9d8e1f2a3b4c5d6e7f", ResourceSP: "remote1", ProjectID: "p1"},
		{ResourceType: "attachments", ResourceID: "a1b2c3d4000040008000000000000001", ResourceSP: "remote1", ProjectID: "p1"},
		// remote1's bus neither deletes nor claims the default cloud's rows.
		{ResourceType: "backups", ResourceID: "bdefault", ResourceSP: "default", ProjectID: "p1"},
		{ResourceType: "attachments", ResourceID: "a1b2c3d4000040008000000000000002", ResourceSP: "default", ProjectID: "p1"},
	} {
		m, ok := b.mapping(t, want.ResourceType, want.ResourceID)
		if !ok || m.ResourceSP != want.ResourceSP || m.ProjectID != want.ProjectID {
			t.Errorf("%s %s: %+v %v, want at %s", want.ResourceType, want.ResourceID, m, ok, want.ResourceSP)
		}
	}
	if got := testutil.ToFloat64(c.Metrics.Messages.WithLabelValues("volume.attach.end", "applied")); got != 1 {
		t.Errorf("volume.attach.end applied: %v", got)
	}
}
