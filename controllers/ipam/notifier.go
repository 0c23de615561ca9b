package ipam

import (
	"context"
	"sync"
	"time"

	"k8s.io/client-go/util/workqueue"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"
)

// Notifier is a controller source that other code pushes requests into
// without blocking: the allocator asks for Eip status updates and Service
// retries through it while holding its lock. Requests pushed before the
// controller started are dropped (the controller's initial list covers
// them).
type Notifier struct {
	mu    sync.Mutex
	q     workqueue.TypedRateLimitingInterface[reconcile.Request]
	delay time.Duration
}

var _ source.Source = (*Notifier)(nil)

// NewNotifier returns a Notifier that adds requests after delay (0: at
// once). A request already waiting is not added twice, so the delay
// coalesces bursts.
func NewNotifier(delay time.Duration) *Notifier { return &Notifier{delay: delay} }

// Start implements source.Source.
func (n *Notifier) Start(_ context.Context, q workqueue.TypedRateLimitingInterface[reconcile.Request]) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.q = q
	return nil
}

// Add queues a request.
func (n *Notifier) Add(r reconcile.Request) {
	n.mu.Lock()
	defer n.mu.Unlock()
	switch {
	case n.q == nil:
	case n.delay > 0:
		n.q.AddAfter(r, n.delay)
	default:
		n.q.Add(r)
	}
}
