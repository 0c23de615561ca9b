package events

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/tools/record"
)

// fakeOut records writes; delay makes every write slow, fail decides an
// error per call.
type fakeOut struct {
	mu      sync.Mutex
	delay   time.Duration
	fail    func(kind string, e *corev1.Event, call int) error
	calls   int
	writes  []string // "create ns/name", "patch ns/name"
	created map[string]bool
	block   chan struct{} // when set, every write waits for it
}

func (f *fakeOut) do(kind string, e *corev1.Event) (*corev1.Event, error) {
	if f.block != nil {
		<-f.block
	}
	time.Sleep(f.delay)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	key := e.Namespace + "/" + e.Name
	if f.fail != nil {
		if err := f.fail(kind, e, f.calls); err != nil {
			return nil, err
		}
	}
	if kind == "patch" && !f.created[key] {
		return nil, apierrors.NewNotFound(schema.GroupResource{Resource: "events"}, e.Name)
	}
	if f.created == nil {
		f.created = map[string]bool{}
	}
	f.created[key] = true
	f.writes = append(f.writes, kind+" "+key)
	return e, nil
}

func (f *fakeOut) Create(e *corev1.Event) (*corev1.Event, error) { return f.do("create", e) }
func (f *fakeOut) Update(e *corev1.Event) (*corev1.Event, error) { return f.do("update", e) }
func (f *fakeOut) Patch(e *corev1.Event, _ []byte) (*corev1.Event, error) {
	return f.do("patch", e)
}

func (f *fakeOut) snapshot() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.writes...)
}

func ev(ns, name string) *corev1.Event {
	return &corev1.Event{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
}

func counts() (written, failed, dropped float64) {
	return testutil.ToFloat64(eventsTotal.WithLabelValues(resultWritten)),
		testutil.ToFloat64(eventsTotal.WithLabelValues(resultFailed)),
		testutil.ToFloat64(eventsTotal.WithLabelValues(resultDropped))
}

// run starts s and returns a stop function that ends Run and waits for it.
func run(t *testing.T, s *Sink) func() {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	return func() {
		cancel()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Fatal("Run did not return")
		}
	}
}

// TestBurstThroughRecorder is the case that motivated the sink: 3,000
// Events on distinct objects through client-go's recorder at up to 2,000 per
// second (a controller catching up), with a 2 ms write: all arrive. Written
// one at a time, as client-go does, they would take 6 s while at most 1,000
// may wait. (Faster than the pace here, client-go's correlator itself
// becomes the limit: it is not what this sink changes.)
func TestBurstThroughRecorder(t *testing.T) {
	out := &fakeOut{delay: 2 * time.Millisecond}
	s := NewSink(out, Options{Workers: 4})
	stop := run(t, s)
	b := record.NewBroadcaster()
	b.StartRecordingToSink(s)
	rec := b.NewRecorder(runtime.NewScheme(), corev1.EventSource{Component: "test"})
	const n = 3000
	for i := range n {
		svc := &corev1.Service{TypeMeta: metav1.TypeMeta{Kind: "Service", APIVersion: "v1"},
			ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: fmt.Sprintf("s%d", i), UID: "u"}}
		rec.Eventf(svc, corev1.EventTypeNormal, "AssignIP", "Assigned 203.0.113.%d", i%256)
		if i%10 == 9 {
			time.Sleep(5 * time.Millisecond)
		}
	}
	deadline := time.Now().Add(20 * time.Second)
	for len(out.snapshot()) < n && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	b.Shutdown()
	stop()
	if got := len(out.snapshot()); got != n {
		t.Fatalf("%d of %d Events written", got, n)
	}
}

// TestOrderPerEvent: the create and the later patches of one Event are
// written in order by one worker; a patch of an Event that is gone
// becomes a create.
func TestOrderPerEvent(t *testing.T) {
	out := &fakeOut{}
	s := NewSink(out, Options{Workers: 8})
	for i := range 50 {
		name := fmt.Sprintf("e%d", i)
		_, _ = s.Create(ev("ns", name))
		_, _ = s.Patch(ev("ns", name), []byte(`{"count":2}`))
		_, _ = s.Patch(ev("ns", name), []byte(`{"count":3}`))
	}
	_, _ = s.Patch(ev("ns", "gone"), []byte(`{"count":2}`))
	run(t, s)()
	pos := map[string][]int{}
	for i, w := range out.snapshot() {
		pos[w] = append(pos[w], i)
	}
	for i := range 50 {
		c, p := pos["create ns/e"+fmt.Sprint(i)], pos["patch ns/e"+fmt.Sprint(i)]
		if len(c) != 1 || len(p) != 2 || p[0] < c[0] {
			t.Fatalf("e%d: creates at %v, patches at %v", i, c, p)
		}
	}
	if len(pos["create ns/gone"]) != 1 {
		t.Fatalf("a patch of a missing Event was not turned into a create: %v", out.snapshot())
	}
}

// TestRetries: transport errors and 429 are retried (bounded), refusals
// are not.
func TestRetries(t *testing.T) {
	tests := []struct {
		name      string
		err       error
		attempts  int // failures before success; -1 always fails
		wantCalls int
		wantOK    bool
	}{
		{name: "transport error once", err: errors.New("connection refused"), attempts: 1, wantCalls: 2, wantOK: true},
		{name: "429 twice", err: apierrors.NewTooManyRequests("slow down", 1), attempts: 2, wantCalls: 3, wantOK: true},
		{name: "transport error always", err: errors.New("connection refused"), attempts: -1, wantCalls: 3},
		{name: "invalid is not retried", err: apierrors.NewBadRequest("invalid"), attempts: -1, wantCalls: 1},
		{name: "forbidden is not retried", err: apierrors.NewForbidden(schema.GroupResource{Resource: "events"}, "x", errors.New("no")), attempts: -1, wantCalls: 1},
		{name: "already exists is success", err: apierrors.NewAlreadyExists(schema.GroupResource{Resource: "events"}, "x"), attempts: -1, wantCalls: 1, wantOK: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := &fakeOut{fail: func(_ string, _ *corev1.Event, call int) error {
				if tt.attempts < 0 || call <= tt.attempts {
					return tt.err
				}
				return nil
			}}
			s := NewSink(out, Options{Workers: 1, Backoff: time.Millisecond})
			w0, f0, _ := counts()
			_, _ = s.Create(ev("ns", "e"))
			run(t, s)()
			w1, f1, _ := counts()
			if out.calls != tt.wantCalls {
				t.Errorf("calls = %d, want %d", out.calls, tt.wantCalls)
			}
			if ok := w1-w0 == 1 && f1 == f0; ok != tt.wantOK {
				t.Errorf("written +%v failed +%v, want success %v", w1-w0, f1-f0, tt.wantOK)
			}
		})
	}
}

// TestFullQueueDrops: the recorder is never blocked; what does not fit is
// dropped and counted.
func TestFullQueueDrops(t *testing.T) {
	out := &fakeOut{block: make(chan struct{})}
	s := NewSink(out, Options{Workers: 1, Queue: 10})
	stop := run(t, s)
	_, _, d0 := counts()
	start := time.Now()
	for i := range 100 {
		_, _ = s.Create(ev("ns", fmt.Sprint(i)))
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("enqueueing 100 Events took %s: the recorder was blocked", took)
	}
	close(out.block)
	stop()
	_, _, d1 := counts()
	written := len(out.snapshot())
	// The worker holds one in hand and ten wait in the queue.
	if written < 10 || written > 11 || float64(written)+d1-d0 != 100 {
		t.Fatalf("written %d, dropped %v of 100", written, d1-d0)
	}
}

// TestFlushOnStop: Events queued when the context ends are still written;
// Events after that are dropped; a hung write does not hold Run beyond
// Options.Flush.
func TestFlushOnStop(t *testing.T) {
	out := &fakeOut{delay: time.Millisecond}
	s := NewSink(out, Options{Workers: 2})
	for i := range 200 {
		_, _ = s.Create(ev("ns", fmt.Sprint(i)))
	}
	run(t, s)()
	if got := len(out.snapshot()); got != 200 {
		t.Fatalf("%d of 200 queued Events written on stop", got)
	}
	_, _, d0 := counts()
	_, _ = s.Create(ev("ns", "late"))
	if _, _, d1 := counts(); d1-d0 != 1 {
		t.Fatalf("an Event after stop was not counted as dropped")
	}

	hung := &fakeOut{block: make(chan struct{})}
	defer close(hung.block)
	s = NewSink(hung, Options{Workers: 1, Flush: 100 * time.Millisecond})
	_, _ = s.Create(ev("ns", "hung"))
	start := time.Now()
	run(t, s)()
	if took := time.Since(start); took > 10*time.Second {
		t.Fatalf("Run waited %s for a hung write", took)
	}
}

// TestQuiesce: Quiesce returns once the sink has been idle for the quiet
// period, and waits while Events keep arriving.
func TestQuiesce(t *testing.T) {
	s := NewSink(&fakeOut{}, Options{Workers: 1, Queue: 1000})
	stop := make(chan struct{})
	fed := make(chan int, 1)
	go func() {
		n := 0
		for i := range 20 {
			_, _ = s.Create(ev("ns", fmt.Sprint(i)))
			n++
			time.Sleep(10 * time.Millisecond)
		}
		fed <- n
		close(stop)
	}()
	time.Sleep(5 * time.Millisecond)
	s.Quiesce(50*time.Millisecond, 10*time.Second)
	select {
	case <-stop:
	default:
		t.Fatal("Quiesce returned while Events were still arriving every 10 ms")
	}
	if n := <-fed; n != 20 {
		t.Fatalf("fed %d", n)
	}
	start := time.Now()
	s.Quiesce(20*time.Millisecond, 10*time.Second)
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("Quiesce on an idle sink took %s", took)
	}
}
