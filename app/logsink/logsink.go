// Package logsink writes a process's log lines from one goroutine, each write
// carrying every line that came in while the one before it was in the kernel.
//
// A worker logs a line per call; written where it is made, that line cost a write(2)
// on the call's path, a sixth of the worker's CPU under load on a virtual machine
// where system calls are dear. Idle, a line still goes out at once, alone; busy,
// tens share a write. Nothing is dropped: when the lines waiting reach the bound,
// a logger waits for the writer instead of growing the buffer.
package logsink

import (
	"io"
	"sync"
)

// DefaultBound is how many bytes of lines may wait for the writer.
const DefaultBound = 256 << 10

// Writer is an io.Writer that hands what it is given to a goroutine of its own. Each
// Write is kept whole and in order, so a logger that writes one line per call keeps
// its lines intact.
type Writer struct {
	out   io.Writer
	bound int

	mu      sync.Mutex
	drained *sync.Cond // signalled when the writer took the waiting lines
	waiting []byte
	spare   []byte
	closed  bool
	// err is the first error out returned, for Close: a failed write loses its
	// lines, but the next is tried, as a logger writing itself would.
	err error

	wake chan struct{}
	done chan struct{}
}

// New starts the goroutine writing to out; bound (DefaultBound when 0 or less) is
// how many bytes may wait.
func New(out io.Writer, bound int) *Writer {
	if bound <= 0 {
		bound = DefaultBound
	}
	w := &Writer{out: out, bound: bound, wake: make(chan struct{}, 1), done: make(chan struct{})}
	w.drained = sync.NewCond(&w.mu)
	go w.run()
	return w
}

// Write queues p. It waits only while bound bytes are already waiting.
func (w *Writer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	// A line larger than the bound waits for an empty buffer and goes alone.
	for len(w.waiting) > 0 && len(w.waiting)+len(p) > w.bound && !w.closed {
		w.drained.Wait()
	}
	if w.closed {
		return 0, io.ErrClosedPipe
	}
	w.waiting = append(w.waiting, p...)
	select {
	case w.wake <- struct{}{}:
	default:
	}
	return len(p), nil
}

func (w *Writer) run() {
	defer close(w.done)
	for range w.wake {
		w.mu.Lock()
		batch := w.waiting
		w.waiting = w.spare[:0]
		closed := w.closed
		w.mu.Unlock()
		var err error
		if len(batch) > 0 {
			_, err = w.out.Write(batch)
		}
		w.mu.Lock()
		if err != nil && w.err == nil {
			w.err = err
		}
		// The larger of the two buffers stays, so a burst does not reallocate twice.
		if cap(batch) <= 4*w.bound {
			w.spare = batch[:0]
		} else {
			w.spare = nil
		}
		w.drained.Broadcast()
		more := len(w.waiting) > 0
		w.mu.Unlock()
		if closed && !more {
			return
		}
		if more {
			select {
			case w.wake <- struct{}{}:
			default:
			}
		}
	}
}

// Close writes what is waiting and stops the goroutine; later Writes fail. It
// returns the first error writing met.
func (w *Writer) Close() error {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		<-w.done
		return w.err
	}
	w.closed = true
	w.drained.Broadcast()
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}
