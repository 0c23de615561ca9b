package events

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/kubernetes"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/record"
	"sigs.k8s.io/controller-runtime/pkg/manager"
)

// NewRecorder returns an Event recorder for component that writes through
// a Sink, and adds to mgr the runnable that writes (on every replica, not
// only the leader) and flushes on shutdown, after the reconcilers stopped.
func NewRecorder(mgr manager.Manager, component string, o Options) (record.EventRecorder, error) {
	cfg := rest.CopyConfig(mgr.GetConfig())
	cfg.ContentType = "application/vnd.kubernetes.protobuf"
	cfg.AcceptContentTypes = "application/vnd.kubernetes.protobuf,application/json"
	cs, err := kubernetes.NewForConfigAndClient(cfg, mgr.GetHTTPClient())
	if err != nil {
		return nil, fmt.Errorf("events client: %w", err)
	}
	sink := NewSink(&typedcorev1.EventSinkImpl{Interface: cs.CoreV1().Events("")}, o)
	b := record.NewBroadcaster()
	b.StartRecordingToSink(sink)
	if err := mgr.Add(&runnable{sink: sink, broadcaster: b}); err != nil {
		b.Shutdown()
		return nil, fmt.Errorf("add event sink: %w", err)
	}
	return b.NewRecorder(mgr.GetScheme(), corev1.EventSource{Component: component}), nil
}

type runnable struct {
	sink        *Sink
	broadcaster record.EventBroadcaster
}

// Start runs the sink; when ctx ends it stops the broadcaster (handing the
// Events it still holds to the sink) and lets the sink flush.
func (r *runnable) Start(ctx context.Context) error {
	sinkCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan error, 1)
	go func() { done <- r.sink.Run(sinkCtx) }()
	<-ctx.Done()
	r.broadcaster.Shutdown()
	r.sink.Quiesce(50*time.Millisecond, time.Second)
	cancel()
	return <-done
}

// NeedLeaderElection is false: a replica that loses leadership still
// writes the Events its reconcilers emitted.
func (r *runnable) NeedLeaderElection() bool { return false }
