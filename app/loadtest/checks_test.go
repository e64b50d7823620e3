//go:build load

package loadtest

import (
	"fmt"
	"net/http"
	"sort"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"mixmatch/app/fakecloud"
	"mixmatch/app/store"
)

// drain is how the ingester's queues emptied after the publisher stopped.
type drain struct {
	ok       bool
	took     time.Duration
	depth    map[string]int // ready messages per SP's queue at the last poll
	handled  float64        // applied + ignored + undecodable, from the ingester's metrics
	lastErr  error
	requeued float64
}

// waitDrain polls the broker (passive declares) and the ingester's metrics until
// every queue is empty and the ingester has handled every message published, at
// most timeout. An empty queue alone is not enough: a batch may still be unacked.
func waitDrain(e *env, published int, timeout time.Duration) drain {
	start := time.Now()
	d := drain{depth: map[string]int{}}
	conn, err := amqp.Dial(rabbitURL)
	if err != nil {
		d.lastErr = err
		return d
	}
	defer conn.Close()
	client := &http.Client{Timeout: 5 * time.Second}
	for {
		empty := true
		for _, sp := range busSPs {
			// A failed passive declare closes its channel: one channel per poll.
			ch, err := conn.Channel()
			if err != nil {
				d.lastErr = err
				return d
			}
			q, err := ch.QueueDeclarePassive(e.queues[sp], true, false, false, false, nil)
			ch.Close()
			if err != nil {
				d.lastErr = err
				return d
			}
			d.depth[sp] = q.Messages
			empty = empty && q.Messages == 0
		}
		if m, err := scrape(client, e.ingesterMetrics); err == nil {
			d.handled = sum(m, "mixmatch_ingester_messages_total", `outcome="applied"`) +
				sum(m, "mixmatch_ingester_messages_total", `outcome="ignored"`) +
				sum(m, "mixmatch_ingester_messages_total", `outcome="undecodable"`)
			d.requeued = sum(m, "mixmatch_ingester_messages_total", `outcome="requeued"`)
		} else {
			d.lastErr = err
		}
		d.took = time.Since(start)
		if empty && d.handled >= float64(published) {
			d.ok = true
			return d
		}
		if d.took > timeout {
			return d
		}
		time.Sleep(100 * time.Millisecond) // polling the broker, bounded by timeout
	}
}

// mappingCheck is the table against the ledger.
type mappingCheck struct {
	rows                              int
	checked                           map[string]int // by source
	live, deleted                     int
	lost, wrong, resurrected, unknown int
	// unseen are right rows of creates and broadcast hits whose answer the client
	// never got.
	unseen   int
	examples []string
}

func (c mappingCheck) failures() int { return c.lost + c.wrong + c.resurrected + c.unknown }

// checkMappings reads the whole table and compares it with what must be there:
// every live resource has exactly its row (type, id, SP, project), every deleted one
// none, and no row names a resource the run does not know.
func checkMappings(e *env, want map[string]expectation) (mappingCheck, error) {
	type row struct {
		Type    string `db:"resource_type"`
		ID      string `db:"resource_id"`
		SP      string `db:"resource_sp"`
		Project string `db:"project_id"`
	}
	var rows []row
	if err := e.db.Select(&rows, `SELECT resource_type, resource_id, resource_sp, project_id FROM resource_mapping`); err != nil {
		return mappingCheck{}, err
	}
	c := mappingCheck{rows: len(rows), checked: map[string]int{}}
	got := make(map[string]row, len(rows))
	for _, r := range rows {
		got[r.Type+"/"+r.ID] = r
	}
	note := func(format string, args ...any) {
		if len(c.examples) < 10 {
			c.examples = append(c.examples, fmt.Sprintf(format, args...))
		}
	}
	keys := make([]string, 0, len(want))
	for k := range want {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		w := want[k]
		c.checked[w.source]++
		r, present := got[k]
		delete(got, k)
		switch {
		case w.gone && present:
			c.resurrected++
			note("%s (%s) was deleted but has a row: %s in %s", k, w.source, r.SP, r.Project)
		case w.gone:
			c.deleted++
		case !present:
			c.lost++
			note("%s (%s, %s in %s) has no row", k, w.source, w.sp, w.project)
		case r.SP != w.sp || r.Project != w.project:
			c.wrong++
			note("%s (%s) is %s in %s, want %s in %s", k, w.source, r.SP, r.Project, w.sp, w.project)
		default:
			c.live++
		}
	}
	for k, r := range got {
		// A create or a broadcast hit whose answer the client never got (it gave up
		// first) is not in the ledger, yet the row is right if the cloud it names
		// holds that resource, in the project users create in there.
		if cl, ok := e.clouds[r.SP]; ok && r.Project == store.NormalizeID(e.projectAt(r.SP)) &&
			(cl.virtual != "" && isVirtualID(r.ID, cl.virtual) || cl.Has(r.Type, fakecloud.Dashed(r.ID))) {
			c.unseen++
			continue
		}
		c.unknown++
		note("%s: a row no one made (%s in %s)", k, r.SP, r.Project)
	}
	return c, nil
}
