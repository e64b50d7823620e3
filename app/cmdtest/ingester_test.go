package cmdtest

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"mixmatch/app/oslo"
	"mixmatch/app/store"
)

// startIngester runs the binary and returns it with a channel of its log lines.
func startIngester(t *testing.T, conf string) (*exec.Cmd, <-chan string) {
	t.Helper()
	cmd := exec.Command(filepath.Join(binDir, "mixmatch-ingester"), "--config-file", conf)
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	lines := make(chan string, 1024)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	return cmd, lines
}

// The ingester killed with SIGKILL in the middle of the work: after a restart every
// published create is in the table, and SIGTERM then stops it cleanly.
func TestIngesterKilledMidBatchLosesNothing(t *testing.T) {
	suffix := make([]byte, 4)
	rand.Read(suffix)
	id := hex.EncodeToString(suffix)
	queue, exchange := "mixmatch.test.kill."+id, "test-kill-"+id
	dir := t.TempDir()
	db := filepath.Join(dir, "mm.db")
	conf := filepath.Join(dir, "mixmatch.conf")
	os.WriteFile(conf, []byte(fmt.Sprintf("[DEFAULT]\nservice_providers = default\ndebug = true\n[database]\nconnection = sqlite:///%s\n"+
		"[sp_default]\nimage_endpoint = http://127.0.0.1:9292\nvolume_endpoint = http://127.0.0.1:8776\n"+
		"messagebus = rabbit://guest:guest@127.0.0.1:5672/\nnotification_queue = %s\nnotification_exchanges = %s\n",
		db, queue, exchange)), 0o600)
	if out, code := run(t, "mixmatch-manage", "--config-file", conf, "db_sync"); code != 0 {
		t.Fatalf("db_sync: %s", out)
	}

	conn, err := amqp.Dial("amqp://guest:guest@127.0.0.1:5672/")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ch, _ := conn.Channel()
	defer ch.QueueDelete(queue, false, false, false)
	defer ch.ExchangeDelete(exchange, false, false)
	// The topology the ingester declares, so that nothing published before it starts is lost.
	if err := ch.ExchangeDeclare(exchange, "topic", false, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := ch.QueueDeclare(queue, true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	if err := ch.QueueBind(queue, "notifications.info", exchange, false, nil); err != nil {
		t.Fatal(err)
	}
	const n = 5000
	for i := 0; i < n; i++ {
		body := oslo.Envelope(oslo.Notification{MessageID: fmt.Sprint(i), EventType: "volume.create.start",
			Payload: []byte(fmt.Sprintf(`{"volume_id": "vol-%05d", "tenant_id": "p"}`, i))})
		if err := ch.PublishWithContext(context.Background(), exchange, "notifications.info", false, false,
			amqp.Publishing{ContentType: "application/json", Body: body}); err != nil {
			t.Fatal(err)
		}
	}

	s, err := store.Open(context.Background(), "sqlite:///"+db, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	count := func() int {
		rows, err := s.List(context.Background(), store.Filter{})
		if err != nil {
			t.Fatal(err)
		}
		return len(rows)
	}

	first, lines := startIngester(t, conf)
	for line := range lines {
		if strings.Contains(line, "notifications recorded") {
			break
		}
	}
	first.Process.Signal(syscall.SIGKILL)
	first.Wait()
	t.Logf("%d of %d recorded before the kill", count(), n)

	second, lines := startIngester(t, conf)
	deadline := time.After(60 * time.Second)
	for done := false; !done; {
		select {
		case line, ok := <-lines:
			if !ok {
				t.Fatal("the restarted ingester exited")
			}
			done = strings.Contains(line, "notifications recorded") && count() == n
		case <-deadline:
			t.Fatalf("%d of %d recorded after the restart", count(), n)
		}
	}
	second.Process.Signal(syscall.SIGTERM)
	var rest strings.Builder
	for line := range lines {
		rest.WriteString(line + "\n")
	}
	if err := second.Wait(); err != nil || !strings.Contains(rest.String(), "mixmatch-ingester stopped") {
		t.Fatalf("SIGTERM: %v\n%s", err, rest.String())
	}
	if got := count(); got != n {
		t.Fatalf("%d of %d recorded", got, n)
	}
}
