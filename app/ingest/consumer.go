package ingest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync/atomic"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"mixmatch/app/config"
	"mixmatch/app/metrics"
	"mixmatch/app/oslo"
	"mixmatch/app/store"
)

// Stats count what a consumer did.
type Stats struct {
	Applied, Ignored, Undecodable, Batches, Reconnects, Failures atomic.Int64
}

// MaxMessageSize bounds the notifications the ingester reads; larger messages are
// acked and logged. oslo.messaging's image and volume notifications are a few KiB.
const MaxMessageSize = 1 << 20

// Consumer learns mappings from one cloud's notification bus.
type Consumer struct {
	SP     *config.SP
	Store  *store.Store
	Logger *slog.Logger
	// Prefetch bounds the unacknowledged messages held; a batch is at most this many.
	Prefetch int
	// BatchWait is how long a batch waits for more messages once it has one.
	BatchWait time.Duration
	// OnBatch, when set, hears of every batch committed and acked (tests and the
	// benchmark synchronise and measure on it).
	OnBatch func(batch []amqp.Delivery)
	Stats   Stats
	// Metrics, when set, count messages by event type and outcome, and reconnects.
	Metrics *metrics.Set
}

// Run consumes until ctx ends, reconnecting with exponential backoff and jitter,
// trying the bus's hosts in turn.
func (c *Consumer) Run(ctx context.Context) {
	if c.Prefetch == 0 {
		c.Prefetch = 256
	}
	if c.BatchWait == 0 {
		c.BatchWait = 20 * time.Millisecond
	}
	backoff := 100 * time.Millisecond
	for host := 0; ctx.Err() == nil; host = (host + 1) % len(c.SP.Messagebus.Hosts) {
		h := c.SP.Messagebus.Hosts[host]
		addr := fmt.Sprintf("%s:%d", h.Host, h.Port)
		err := c.session(ctx, c.SP.Messagebus.AMQPURL(h))
		if ctx.Err() != nil {
			return
		}
		c.Stats.Reconnects.Add(1)
		if c.Metrics != nil {
			c.Metrics.Reconnects.WithLabelValues(c.SP.Name).Inc()
		}
		c.Logger.Warn("notification bus unavailable; reconnecting", "sp", c.SP.Name, "host", addr, "error", err, "in", backoff)
		t := time.NewTimer(backoff/2 + time.Duration(rand.Int64N(int64(backoff)/2+1)))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		backoff = min(backoff*2, 30*time.Second)
	}
}

// session is one connection: topology, then batches until the connection or ctx ends.
func (c *Consumer) session(ctx context.Context, url string) error {
	conn, err := amqp.DialConfig(url, amqp.Config{Heartbeat: 10 * time.Second,
		Properties: amqp.Table{"connection_name": "mixmatch-ingester " + c.SP.Name}})
	if err != nil {
		return err
	}
	defer conn.Close()
	if err := c.topology(conn); err != nil {
		return err
	}
	ch, err := conn.Channel()
	if err != nil {
		return err
	}
	if err := ch.Qos(c.Prefetch, 0, false); err != nil {
		return err
	}
	const tag = "mixmatch-ingester"
	deliveries, err := ch.Consume(c.SP.NotificationQueue, tag, false, false, false, false, nil)
	if err != nil {
		return err
	}
	c.Logger.Info("consuming notifications", "sp", c.SP.Name, "queue", c.SP.NotificationQueue, "bus", c.SP.Messagebus.String())
	closed := conn.NotifyClose(make(chan *amqp.Error, 1))
	stopping := false
	for {
		var first amqp.Delivery
		var ok bool
		select {
		case <-ctx.Done():
			if !stopping {
				// SIGTERM: no new deliveries; what is held is still applied and acked.
				stopping = true
				ch.Cancel(tag, false)
			}
			first, ok = <-deliveries
		case first, ok = <-deliveries:
		case err := <-closed:
			return err
		}
		if !ok {
			if stopping {
				return nil
			}
			return errors.New("the delivery channel closed")
		}
		batch := c.collect(first, deliveries)
		if err := c.apply(ctx, batch); err != nil {
			return err
		}
	}
}

// collect gathers more deliveries for a batch, up to Prefetch or BatchWait.
func (c *Consumer) collect(first amqp.Delivery, deliveries <-chan amqp.Delivery) []amqp.Delivery {
	batch := []amqp.Delivery{first}
	timer := time.NewTimer(c.BatchWait)
	defer timer.Stop()
	for len(batch) < c.Prefetch {
		select {
		case d, ok := <-deliveries:
			if !ok {
				return batch
			}
			batch = append(batch, d)
		case <-timer.C:
			return batch
		}
	}
	return batch
}

// apply commits a batch, then acks it. A message that is no notification is acked
// and logged once: redelivering it would never help. A database failure nacks the
// batch for redelivery and backs off.
func (c *Consumer) apply(ctx context.Context, batch []amqp.Delivery) error {
	var ops []store.Op
	var events []string
	outcome := func(event, result string) {
		if c.Metrics != nil {
			c.Metrics.Messages.WithLabelValues(eventLabel(event), result).Inc()
		}
	}
	for _, d := range batch {
		if len(d.Body) > MaxMessageSize {
			// No notification mixmatch reads is this large; held, it would cost
			// memory on every redelivery.
			c.Stats.Undecodable.Add(1)
			outcome("", "oversized")
			c.Logger.Warn("dropping an oversized message", "sp", c.SP.Name, "bytes", len(d.Body),
				"limit", MaxMessageSize, "amqp_message_id", d.MessageId)
			continue
		}
		n, err := oslo.Decode(d.Body)
		var changes []store.Op
		ok := false
		if err == nil {
			changes, ok, err = opsFor(n, c.SP.Name)
		}
		switch {
		case err != nil:
			c.Stats.Undecodable.Add(1)
			outcome(n.EventType, "undecodable")
			c.Logger.Warn("dropping an undecodable notification", "sp", c.SP.Name, "message_id", n.MessageID,
				"amqp_message_id", d.MessageId, "event_type", n.EventType, "error", err)
		case !ok:
			c.Stats.Ignored.Add(1)
			outcome(n.EventType, "ignored")
			c.Logger.Debug("ignoring a notification", "sp", c.SP.Name, "event_type", n.EventType, "message_id", n.MessageID)
		default:
			ops = append(ops, changes...)
			events = append(events, n.EventType)
		}
	}
	last := batch[len(batch)-1]
	var refused []store.Op
	if len(ops) > 0 {
		// The commit must not be cut short by SIGTERM: what is held gets written.
		dbctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		var err error
		refused, err = c.Store.Apply(dbctx, ops)
		cancel()
		if err != nil {
			c.Stats.Failures.Add(1)
			for _, e := range events {
				outcome(e, "requeued")
			}
			c.Logger.Error("could not record notifications; they will be redelivered", "sp", c.SP.Name, "count", len(batch), "error", err)
			if nackErr := last.Nack(true, true); nackErr != nil {
				return nackErr
			}
			t := time.NewTimer(time.Second)
			select {
			case <-ctx.Done():
			case <-t.C:
			}
			t.Stop()
			return nil
		}
	}
	if err := last.Ack(true); err != nil {
		return err
	}
	for _, op := range refused {
		// A bus speaks for its own cloud only; a claim on another cloud's row is
		// forged, or an id copied between clouds.
		c.Logger.Warn("notification refused: the mapping names another service provider", "sp", c.SP.Name,
			"type", op.Mapping.ResourceType, "id", op.Mapping.ResourceID)
		if c.Metrics != nil {
			c.Metrics.Conflicts.WithLabelValues("notification").Inc()
		}
	}
	c.Stats.Applied.Add(int64(len(ops)))
	for _, e := range events {
		outcome(e, "applied")
	}
	if c.Metrics != nil && len(ops) > 0 {
		c.Metrics.Learned.WithLabelValues("notification").Add(float64(len(ops)))
	}
	c.Stats.Batches.Add(1)
	c.Logger.Debug("notifications recorded", "sp", c.SP.Name, "messages", len(batch), "changes", len(ops))
	if c.OnBatch != nil {
		c.OnBatch(batch)
	}
	return nil
}

// topology declares the queue and binds it to each exchange. An exchange is used as
// it exists; one that does not exist yet is declared as oslo.messaging declares it
// (topic, not durable), so that the first publisher does not fail on a mismatch.
func (c *Consumer) topology(conn *amqp.Connection) error {
	ch, err := conn.Channel()
	if err != nil {
		return err
	}
	defer ch.Close()
	if _, err := ch.QueueDeclare(c.SP.NotificationQueue, true, false, false, false, nil); err != nil {
		return fmt.Errorf("declaring queue %s: %w", c.SP.NotificationQueue, err)
	}
	for _, ex := range c.SP.NotificationExchanges {
		probe, err := conn.Channel()
		if err != nil {
			return err
		}
		if err := probe.ExchangeDeclarePassive(ex, "topic", false, false, false, false, nil); err != nil {
			// A failed passive declare closes its channel; declare on another.
			decl, err := conn.Channel()
			if err != nil {
				return err
			}
			err = decl.ExchangeDeclare(ex, "topic", false, false, false, false, nil)
			decl.Close()
			if err != nil {
				return fmt.Errorf("declaring exchange %s: %w", ex, err)
			}
		} else {
			probe.Close()
		}
		if err := ch.QueueBind(c.SP.NotificationQueue, "notifications.info", ex, false, nil); err != nil {
			return fmt.Errorf("binding %s to %s: %w", c.SP.NotificationQueue, ex, err)
		}
	}
	return nil
}
