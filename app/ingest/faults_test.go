package ingest

import (
	"context"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"mixmatch/app/config"
	"mixmatch/app/dbtest"
	"mixmatch/app/leaktest"
	"mixmatch/app/store"
)

// eventually polls cond until it holds or the bound passes.
func eventually(t *testing.T, what string, bound time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(bound)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not after %s", what, bound)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// SQLite locked by another writer for longer than its busy_timeout: the batch is
// requeued, not acked, and every notification is recorded once the lock is gone.
func TestLockedDatabaseLosesNothing(t *testing.T) {
	b := newBus(t)
	leaktest.Check(t)
	unlock := dbtest.LockSQLite(t, b.dsn)
	const n = 200
	for i := range n {
		b.publish(t, i%2, notification("image.create", fmt.Sprintf(`{"id": "locked-%d", "owner": "p"}`, i)))
	}
	c := b.consumer(t)
	stop := run(c)
	defer stop()
	eventually(t, "a failed write", 30*time.Second, func() bool { return c.Stats.Failures.Load() > 0 })
	if len(b.seen) != 0 {
		t.Fatal("a batch was acked while the database was locked")
	}
	unlock()
	b.await(t, n)
	rows, _ := b.store.List(context.Background(), store.Filter{})
	if len(rows) != n {
		t.Fatalf("%d mappings of %d", len(rows), n)
	}
}

// forwarder relays TCP connections to RabbitMQ once started, standing in for a
// broker that comes up after the ingester.
type forwarder struct {
	l     net.Listener
	wg    sync.WaitGroup
	mu    sync.Mutex
	conns []net.Conn
}

func (f *forwarder) start(t *testing.T, addr, to string) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	f.l = l
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		for {
			in, err := l.Accept()
			if err != nil {
				return
			}
			out, err := net.Dial("tcp", to)
			if err != nil {
				in.Close()
				continue
			}
			f.mu.Lock()
			f.conns = append(f.conns, in, out)
			f.mu.Unlock()
			f.wg.Add(2)
			go func() { defer f.wg.Done(); io.Copy(out, in); out.Close() }()
			go func() { defer f.wg.Done(); io.Copy(in, out); in.Close() }()
		}
	}()
}

func (f *forwarder) stop() {
	if f.l == nil {
		return
	}
	f.l.Close()
	f.mu.Lock()
	for _, c := range f.conns {
		c.Close()
	}
	f.mu.Unlock()
	f.wg.Wait()
}

// RabbitMQ down when the ingester starts: it keeps retrying, and takes what was
// published once the broker is there.
func TestBrokerDownAtStart(t *testing.T) {
	b := newBus(t)
	leaktest.Check(t)
	free, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := free.Addr().String()
	free.Close()
	mb, err := config.ParseMessagebus("rabbit://guest:guest@" + addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	real := b.sp.Messagebus.Hosts[0]
	b.sp.Messagebus = mb
	const n = 50
	for i := range n {
		b.publish(t, 0, notification("volume.create.start", fmt.Sprintf(`{"volume_id": "down-%d", "tenant_id": "p"}`, i)))
	}
	c := b.consumer(t)
	stop := run(c)
	var f forwarder
	defer f.stop()
	defer stop()
	eventually(t, "two failed connection attempts", 10*time.Second, func() bool { return c.Stats.Reconnects.Load() >= 2 })
	f.start(t, addr, fmt.Sprintf("%s:%d", real.Host, real.Port))
	b.await(t, n)
	rows, _ := b.store.List(context.Background(), store.Filter{})
	if len(rows) != n {
		t.Fatalf("%d mappings of %d", len(rows), n)
	}
}
