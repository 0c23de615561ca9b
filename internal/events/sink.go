// Package events records Kubernetes Events without losing them when many
// happen at once.
//
// client-go's recorder hands every Event to one goroutine that writes them
// one request at a time; when more than 1,000 wait, further Events are
// dropped without a trace. The IPAM controller emits one AssignIP Event per
// Service: catching up with 10,000 Services at about 450 assignments per
// second, client-go's path wrote 2,300 of them (measured, docs/performance.md).
// Sink keeps client-go's recorder and correlator (aggregation, spam filter)
// but writes through a pool of workers with a bounded queue, keeps the order
// of the writes of one Event (create before patch), and counts what it
// writes, fails and drops (openelb_events_total).
package events

import (
	"context"
	"errors"
	"hash/fnv"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/record"
)

// Options tune a Sink. Zero values take the defaults.
type Options struct {
	// Workers write Events in parallel (default 4).
	Workers int
	// Queue is how many Events may wait per worker (default 4096); beyond
	// that an Event is dropped and counted.
	Queue int
	// Attempts for a write that failed in transport (default 3); a write the
	// apiserver refused is not retried.
	Attempts int
	// Backoff before the second attempt, doubled for each further one
	// (default 500 ms).
	Backoff time.Duration
	// Flush bounds how long Run keeps writing queued Events after its
	// context ends (default 5 s).
	Flush time.Duration
}

func (o Options) withDefaults() Options {
	if o.Workers <= 0 {
		o.Workers = 4
	}
	if o.Queue <= 0 {
		o.Queue = 4096
	}
	if o.Attempts <= 0 {
		o.Attempts = 3
	}
	if o.Backoff <= 0 {
		o.Backoff = 500 * time.Millisecond
	}
	if o.Flush <= 0 {
		o.Flush = 5 * time.Second
	}
	return o
}

type opKind uint8

const (
	opCreate opKind = iota
	opUpdate
	opPatch
)

type op struct {
	kind  opKind
	event *corev1.Event
	patch []byte
}

// Sink is a record.EventSink that queues writes and returns at once; Run
// performs them. Writes of one Event (same namespace and name) go to the
// same worker, in order.
type Sink struct {
	out    record.EventSink
	opts   Options
	mu     sync.RWMutex
	closed bool
	queues []chan op
	wg     sync.WaitGroup
	calls  atomic.Int64 // Create, Update and Patch calls so far
}

var _ record.EventSink = (*Sink)(nil)

// NewSink returns a Sink writing to out (for example
// &typedcorev1.EventSinkImpl{...}).
func NewSink(out record.EventSink, o Options) *Sink {
	o = o.withDefaults()
	s := &Sink{out: out, opts: o, queues: make([]chan op, o.Workers)}
	for i := range s.queues {
		s.queues[i] = make(chan op, o.Queue)
	}
	return s
}

// Create queues the creation of e.
func (s *Sink) Create(e *corev1.Event) (*corev1.Event, error) {
	return s.enqueue(op{kind: opCreate, event: e})
}

// Update queues an update of e.
func (s *Sink) Update(e *corev1.Event) (*corev1.Event, error) {
	return s.enqueue(op{kind: opUpdate, event: e})
}

// Patch queues a patch of e (an aggregated Event's new count).
func (s *Sink) Patch(e *corev1.Event, data []byte) (*corev1.Event, error) {
	return s.enqueue(op{kind: opPatch, event: e, patch: data})
}

// enqueue never blocks: the caller is client-go's single recording
// goroutine. The Event is returned as if written, so that the correlator
// remembers its name for later aggregation.
func (s *Sink) enqueue(o op) (*corev1.Event, error) {
	s.calls.Add(1)
	e := o.event.DeepCopy()
	o.event = e
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		eventsTotal.WithLabelValues(resultDropped).Inc()
		return e, nil
	}
	select {
	case s.queues[worker(e, len(s.queues))] <- o:
	default:
		eventsTotal.WithLabelValues(resultDropped).Inc()
	}
	return e, nil
}

func worker(e *corev1.Event, n int) int {
	h := fnv.New32a()
	_, _ = h.Write([]byte(e.Namespace))
	_, _ = h.Write([]byte{0})
	_, _ = h.Write([]byte(e.Name))
	return int(h.Sum32() % uint32(n))
}

// Quiesce waits until no Event has been handed to the sink for quiet, at
// most for limit: client-go's broadcaster returns from Shutdown before its
// recording goroutine has handed over the Events it still holds.
func (s *Sink) Quiesce(quiet, limit time.Duration) {
	deadline := time.Now().Add(limit)
	last := s.calls.Load()
	for time.Now().Before(deadline) {
		time.Sleep(quiet)
		now := s.calls.Load()
		if now == last {
			return
		}
		last = now
	}
}

// Run writes queued Events until ctx ends, then for at most Options.Flush
// more; whatever is still queued then is dropped and counted. It returns
// nil: a sink's failures are counted, not fatal.
func (s *Sink) Run(ctx context.Context) error {
	stop := make(chan struct{})
	for _, q := range s.queues {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.work(q, stop)
		}()
	}
	<-ctx.Done()
	s.mu.Lock()
	s.closed = true
	for _, q := range s.queues {
		close(q)
	}
	s.mu.Unlock()
	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(done)
	}()
	timer := time.NewTimer(s.opts.Flush)
	defer timer.Stop()
	select {
	case <-done:
	case <-timer.C:
		close(stop)
		// A worker blocked in a write is left to the process's exit; the
		// others drop what is left.
	}
	return nil
}

// work performs one queue's writes in order; after stop it drops them.
func (s *Sink) work(q <-chan op, stop <-chan struct{}) {
	for o := range q {
		select {
		case <-stop:
			eventsTotal.WithLabelValues(resultDropped).Inc()
			continue
		default:
		}
		if err := s.write(o, stop); err != nil {
			eventsTotal.WithLabelValues(resultFailed).Inc()
			continue
		}
		eventsTotal.WithLabelValues(resultWritten).Inc()
	}
}

// write performs one operation as client-go's recorder would: a patch of an
// Event that no longer exists becomes a create; transport errors are
// retried with backoff, refusals are not.
func (s *Sink) write(o op, stop <-chan struct{}) error {
	delay := s.opts.Backoff
	var err error
	for attempt := 1; ; attempt++ {
		err = s.once(o)
		if err == nil || !retriable(err) || attempt >= s.opts.Attempts {
			return err
		}
		select {
		case <-stop:
			return err
		case <-time.After(delay):
		}
		delay *= 2
	}
}

func (s *Sink) once(o op) error {
	var err error
	switch o.kind {
	case opUpdate:
		_, err = s.out.Update(o.event)
	case opPatch:
		_, err = s.out.Patch(o.event, o.patch)
		if !apierrors.IsNotFound(err) {
			return err
		}
		fallthrough
	default:
		// A copy: the queued Event is also the one enqueue returned to
		// client-go's correlator, which keeps reading it.
		e := o.event.DeepCopy()
		e.ResourceVersion = ""
		_, err = s.out.Create(e)
	}
	if apierrors.IsAlreadyExists(err) {
		return nil
	}
	return err
}

// retriable reports whether a failed write may succeed later: transport
// errors and an apiserver that is overloaded or failing (429, 5xx, timeouts)
// may; any other answer (invalid Event, namespace terminating, forbidden)
// or a request that cannot be built may not.
func retriable(err error) bool {
	var status apierrors.APIStatus
	if errors.As(err, &status) {
		return apierrors.IsTooManyRequests(err) || apierrors.IsServerTimeout(err) || apierrors.IsTimeout(err) ||
			apierrors.IsServiceUnavailable(err) || apierrors.IsInternalError(err) || apierrors.IsUnexpectedServerError(err)
	}
	var build *rest.RequestConstructionError
	return !errors.As(err, &build)
}
