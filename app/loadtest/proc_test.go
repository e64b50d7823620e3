//go:build load

package loadtest

import (
	"bufio"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"mixmatch/app/bintest"
)

// buildBinaries builds the three programs as an operator installs them.
func buildBinaries(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if err := bintest.Build(dir); err != nil {
		t.Fatal(err)
	}
	return dir
}

// proc is one running binary. Its log is read as it comes (a worker writes a line per
// request, and a full pipe would stall it); warnings and errors are counted.
type proc struct {
	name string
	cmd  *exec.Cmd
	logs *logWatch
	// exited is closed when the process ends; err is then its exit error.
	exited chan struct{}
	err    error
}

// startProc starts a binary and returns once its log has said ready n times, with
// the first submatch of each of those lines.
func startProc(t *testing.T, name, bin string, args []string, ready *regexp.Regexp, n int) (*proc, []string) {
	t.Helper()
	p := &proc{name: name, cmd: exec.Command(bin, args...), logs: newLogWatch(), exited: make(chan struct{})}
	stderr, err := p.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	matches := make(chan string, n)
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		seen := 0
		for sc.Scan() {
			line := sc.Text()
			p.logs.line(line)
			if seen < n {
				if m := ready.FindStringSubmatch(line); m != nil {
					seen++
					matches <- append(m, "")[1]
				}
			}
		}
		io.Copy(io.Discard, stderr)
		p.err = p.cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() { p.cmd.Process.Kill(); <-p.exited })
	var got []string
	timeout := time.After(30 * time.Second)
	for len(got) < n {
		select {
		case m := <-matches:
			got = append(got, m)
		case <-p.exited:
			t.Fatalf("%s exited before it was ready (%v):\n%s", name, p.err, p.logs.tail())
		case <-timeout:
			t.Fatalf("%s was not ready within 30 s:\n%s", name, p.logs.tail())
		}
	}
	return p, got
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

func (p *proc) running() bool {
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// stop sends SIGTERM and waits for the exit, as systemd would.
func (p *proc) stop(wait time.Duration) error {
	if !p.running() {
		return fmt.Errorf("%s had already exited: %v", p.name, p.err)
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
		return p.err
	case <-time.After(wait):
		return fmt.Errorf("%s did not stop within %v of SIGTERM", p.name, wait)
	}
}

// logWatch counts a process's WARN and ERROR lines by message and keeps the last
// lines of the log for when it dies.
type logWatch struct {
	mu       sync.Mutex
	counts   map[string]int // "WARN could not record a mapping"
	examples map[string]string
	last     []string
	// undecided are the broadcast hits a worker did not record, by ledger key: a
	// cloud of higher precedence did not answer in time, and the worker says so.
	undecided map[string]bool
	// served are the worker's times of the calls it served (its request lines,
	// shed calls having none), in log order; more is closed at each one.
	served []servedCall
	more   chan struct{}
}

var (
	undecidedRE = regexp.MustCompile(`msg="broadcast: a cloud of higher precedence did not answer in time; the hit is not recorded" type=(\S+) id=(\S+)`)
	levelRE     = regexp.MustCompile(`\blevel=(\w+)`)
	msgRE       = regexp.MustCompile(`\bmsg=("(?:[^"\\]|\\.)*"|\S+)`)
	requestRE   = regexp.MustCompile(`\bmsg=request .*\bduration_ms=([0-9.]+)(?: upstream_ms=([0-9.]+))?`)
)

func newLogWatch() *logWatch {
	return &logWatch{counts: map[string]int{}, examples: map[string]string{}, undecided: map[string]bool{},
		more: make(chan struct{})}
}

func (w *logWatch) line(line string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.last) == 20 {
		w.last = w.last[1:]
	}
	w.last = append(w.last, line)
	if m := undecidedRE.FindStringSubmatch(line); m != nil {
		w.undecided[ledgerKey(m[1], m[2])] = true
	}
	if m := requestRE.FindStringSubmatch(line); m != nil {
		total, _ := strconv.ParseFloat(m[1], 64)
		upstream, _ := strconv.ParseFloat(m[2], 64)
		w.served = append(w.served, servedCall{total: milliseconds(total), own: milliseconds(total - upstream)})
		close(w.more)
		w.more = make(chan struct{})
	}
	lvl := levelRE.FindStringSubmatch(line)
	if lvl == nil || (lvl[1] != "WARN" && lvl[1] != "ERROR") {
		// A line without slog's level (a panic, Go's runtime) is worth seeing too.
		if lvl != nil {
			return
		}
		lvl = []string{"", "OTHER"}
	}
	msg := line
	if m := msgRE.FindStringSubmatch(line); m != nil {
		msg, _ = strconv.Unquote(m[1])
		if msg == "" {
			msg = m[1]
		}
	}
	key := lvl[1] + " " + msg
	w.counts[key]++
	if _, ok := w.examples[key]; !ok {
		w.examples[key] = line
	}
}

// servedCall is a call as the worker timed it: the whole, and its own part, the
// whole less the wait on SPs.
type servedCall struct{ total, own time.Duration }

func milliseconds(ms float64) time.Duration { return time.Duration(ms * float64(time.Millisecond)) }

// servedCount is how many served calls the worker has logged so far.
func (w *logWatch) servedCount() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.served)
}

// servedFrom is the calls logged since the first-th, once want of them have come
// or within has passed: a line leaves the worker a little after its answer.
func (w *logWatch) servedFrom(first, want int, within time.Duration) []servedCall {
	deadline := time.After(within)
	for {
		w.mu.Lock()
		got, more := slices.Clone(w.served[first:]), w.more
		w.mu.Unlock()
		if len(got) >= want {
			return got
		}
		select {
		case <-more:
		case <-deadline:
			return got
		}
	}
}

// undecidedHits are the keys of broadcast hits the worker said it did not record.
func (w *logWatch) undecidedHits() map[string]bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return maps.Clone(w.undecided)
}

func (w *logWatch) tail() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return strings.Join(w.last, "\n")
}

// summary lists the counted messages, most frequent first.
func (w *logWatch) summary() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	keys := make([]string, 0, len(w.counts))
	for k := range w.counts {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return w.counts[keys[i]] > w.counts[keys[j]] })
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i] = fmt.Sprintf("%6d× %s\n          e.g. %s", w.counts[k], k, truncate(w.examples[k], 300))
	}
	return out
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// procStatus reads fields of /proc/PID/status in kB (VmRSS, VmHWM).
func procStatus(pid int, fields ...string) (map[string]int64, error) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return nil, err
	}
	out := map[string]int64{}
	for _, line := range strings.Split(string(raw), "\n") {
		for _, f := range fields {
			if rest, ok := strings.CutPrefix(line, f+":"); ok {
				kb, _ := strconv.ParseInt(strings.Fields(rest)[0], 10, 64)
				out[f] = kb
			}
		}
	}
	return out, nil
}

// scrape reads a Prometheus text exposition into series → value.
func scrape(client *http.Client, addr string) (map[string]float64, error) {
	resp, err := client.Get("http://" + addr + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err == nil {
			out[line[:i]] = v
		}
	}
	return out, sc.Err()
}

// sum adds the series of a metric whose labels include every one of labels
// (written name="value").
func sum(series map[string]float64, metric string, labels ...string) float64 {
	total := 0.0
	for k, v := range series {
		name, rest, _ := strings.Cut(k, "{")
		if name != metric {
			continue
		}
		ok := true
		for _, l := range labels {
			ok = ok && strings.Contains(rest, l)
		}
		if ok {
			total += v
		}
	}
	return total
}
