package ipam

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	networkv1alpha2 "github.com/openelb/openelb-operator/api/network/v1alpha2"
	"github.com/openelb/openelb-operator/internal/events"
	alloc "github.com/openelb/openelb-operator/internal/ipam"
	"github.com/openelb/openelb-operator/internal/ipam/kube"
	"github.com/openelb/openelb-operator/internal/webhooks"
)

// Options configure the IPAM controllers.
type Options struct {
	// Config decides which Services are ours.
	Config kube.Config
	// Isolation is the namespace isolation switch.
	Isolation bool
	// StatusInterval is the minimum time between two status writes of one
	// Eip (coalescing); 0 means one second.
	StatusInterval time.Duration
	// ServiceWorkers is the number of parallel Service reconciles (the
	// allocation itself is serialised in the allocator); 0 means 8.
	ServiceWorkers int
}

// Core is the state the Service and Eip reconcilers share: the allocator,
// the restore gate, the pools known to the allocator, and the queues the
// allocator feeds.
type Core struct {
	Alloc *alloc.Allocator
	opts  Options

	client client.Client // cached reads
	reader client.Reader // live reads for the restore

	restoreMu sync.Mutex
	restored  atomic.Bool

	poolsMu    sync.Mutex
	poolsDirty atomic.Bool
	pools      map[string]poolSig
	invalid    map[string]error

	eipQueue       *Notifier // Eip status updates, coalesced
	svcQueue       *Notifier // Service retries
	retryScheduled atomic.Bool

	bookMu   sync.Mutex
	staleRV  map[alloc.ServiceKey]string    // resourceVersion our last write replaced
	arrivals map[alloc.ServiceKey]time.Time // first seen without address
	lastMsg  map[alloc.ServiceKey]string    // last problem reported
	notes    map[alloc.ServiceKey]error     // restore problems not yet reported
}

type poolSig struct {
	uid      types.UID
	gen      int64
	def      bool
	deleting bool
}

// NewCore returns the shared state of the IPAM controllers. reader must
// read from the API server (mgr.GetAPIReader()), not from the cache.
func NewCore(c client.Client, reader client.Reader, o Options) *Core {
	if o.StatusInterval == 0 {
		o.StatusInterval = time.Second
	}
	if o.ServiceWorkers == 0 {
		o.ServiceWorkers = 8
	}
	core := &Core{
		opts:     o,
		client:   c,
		reader:   reader,
		pools:    map[string]poolSig{},
		invalid:  map[string]error{},
		eipQueue: NewNotifier(o.StatusInterval),
		svcQueue: NewNotifier(0),
		staleRV:  map[alloc.ServiceKey]string{},
		arrivals: map[alloc.ServiceKey]time.Time{},
		lastMsg:  map[alloc.ServiceKey]string{},
		notes:    map[alloc.ServiceKey]error{},
	}
	core.Alloc = alloc.New(alloc.Options{
		Isolation: o.Isolation,
		OnPoolChange: func(pool string) {
			core.eipQueue.Add(reconcile.Request{NamespacedName: types.NamespacedName{Name: pool}})
		},
		OnRetry: core.scheduleRetry,
	})
	return core
}

// SetupWithManager registers both reconcilers. record, when not nil, is
// the webhooks' Eip range record the Eip reconciler keeps clean.
func (c *Core) SetupWithManager(mgr ctrl.Manager, record *webhooks.Record) error {
	// One AssignIP Event per Service: client-go's recorder alone drops
	// most of them when thousands of Services are assigned at once.
	rec, err := events.NewRecorder(mgr, "openelb-controller", events.Options{})
	if err != nil {
		return err
	}
	if err := (&ServiceReconciler{Client: mgr.GetClient(), Recorder: rec, Core: c}).SetupWithManager(mgr); err != nil {
		return fmt.Errorf("set up Service reconciler: %w", err)
	}
	if err := (&EipReconciler{Client: mgr.GetClient(), Core: c, Record: record}).SetupWithManager(mgr); err != nil {
		return fmt.Errorf("set up Eip reconciler: %w", err)
	}
	return nil
}

// scheduleRetry asks, at most every 100 ms, for every pending Service to be
// reconciled again. It runs under the allocator's lock, so it only arms a
// timer.
func (c *Core) scheduleRetry() {
	if !c.retryScheduled.CompareAndSwap(false, true) {
		return
	}
	time.AfterFunc(100*time.Millisecond, func() {
		c.retryScheduled.Store(false)
		for _, k := range c.Alloc.Pending() {
			c.svcQueue.Add(requestFor(k))
		}
	})
}

func requestFor(k alloc.ServiceKey) reconcile.Request {
	return reconcile.Request{NamespacedName: types.NamespacedName{Namespace: k.Namespace, Name: k.Name}}
}

func keyOf(o client.Object) alloc.ServiceKey {
	return alloc.ServiceKey{Namespace: o.GetNamespace(), Name: o.GetName()}
}

// Ready rebuilds the allocator from every Service's status the first time
// it is called (the first reconcile after this process became leader) and
// returns at once afterwards. Nothing is assigned before it returned. It
// reads the Services from the API server, not the cache, so that writes of
// a previous leader are all seen.
func (c *Core) Ready(ctx context.Context) error {
	if c.restored.Load() {
		return nil
	}
	c.restoreMu.Lock()
	defer c.restoreMu.Unlock()
	if c.restored.Load() {
		return nil
	}
	log := ctrl.LoggerFrom(ctx)
	start := time.Now()
	if err := c.SyncPools(ctx, true); err != nil {
		return err
	}
	var svcs []corev1.Service
	list := &corev1.ServiceList{}
	for {
		if err := c.reader.List(ctx, list, client.Limit(500), client.Continue(list.Continue)); err != nil {
			return fmt.Errorf("list services: %w", err)
		}
		svcs = append(svcs, list.Items...)
		if list.Continue == "" {
			break
		}
	}
	// Oldest first: on a conflicting claim the older Service keeps the
	// address. creationTimestamp has a resolution of one second; within a
	// second a Service that requested the address it shows comes first.
	requested := make(map[*corev1.Service]bool, len(svcs))
	for i := range svcs {
		requested[&svcs[i]] = requestsShown(&svcs[i])
	}
	order := make([]*corev1.Service, len(svcs))
	for i := range svcs {
		order[i] = &svcs[i]
	}
	slices.SortStableFunc(order, func(a, b *corev1.Service) int {
		if d := a.CreationTimestamp.Compare(b.CreationTimestamp.Time); d != 0 {
			return d
		}
		if requested[a] != requested[b] {
			if requested[a] {
				return -1
			}
			return 1
		}
		return strings.Compare(a.Namespace+"/"+a.Name, b.Namespace+"/"+b.Name)
	})
	n := 0
	for _, svc := range order {
		addrs := kube.IngressAddrs(svc)
		if len(addrs) == 0 || !(c.opts.Config.Ours(svc) || kube.HasMarkers(svc)) {
			continue
		}
		req, _ := kube.ServiceRequest(svc, nil) // ports, policy and key still count for sharing
		if err := c.Alloc.Restore(req, addrs, kube.PoolHints(svc)); err != nil {
			c.bookMu.Lock()
			c.notes[keyOf(svc)] = err
			c.bookMu.Unlock()
		}
		n++
	}
	c.restored.Store(true)
	log.Info("Restored allocations", "services", n, "listed", len(svcs), "duration", time.Since(start).String())
	return nil
}

// MarkPoolsDirty makes the next SyncPools re-read the Eips.
func (c *Core) MarkPoolsDirty() { c.poolsDirty.Store(true) }

// SyncPools brings the allocator's pools in line with the cached Eips: new
// and changed Eips are set, deleted ones removed. Without force it does
// nothing unless an Eip event marked the pools dirty.
func (c *Core) SyncPools(ctx context.Context, force bool) error {
	if !force && !c.poolsDirty.Swap(false) {
		return nil
	}
	c.poolsMu.Lock()
	defer c.poolsMu.Unlock()
	var list networkv1alpha2.EipList
	if err := c.client.List(ctx, &list, client.UnsafeDisableDeepCopy); err != nil {
		c.poolsDirty.Store(true)
		return fmt.Errorf("list eips: %w", err)
	}
	seen := make(map[string]bool, len(list.Items))
	for i := range list.Items {
		e := &list.Items[i]
		seen[e.Name] = true
		sig := poolSig{uid: e.UID, gen: e.Generation, def: kube.IsDefault(e), deleting: e.DeletionTimestamp != nil}
		if old, ok := c.pools[e.Name]; ok && old == sig {
			continue
		}
		c.pools[e.Name] = sig
		p, err := kube.EipPool(e)
		if err != nil {
			c.invalid[e.Name] = err
			c.Alloc.RemovePool(e.Name)
			continue
		}
		delete(c.invalid, e.Name)
		c.Alloc.SetPool(p)
	}
	for name := range c.pools {
		if !seen[name] {
			delete(c.pools, name)
			delete(c.invalid, name)
			c.Alloc.RemovePool(name)
		}
	}
	return nil
}

// PoolError returns why an Eip is not a pool (its address does not parse).
func (c *Core) PoolError(name string) error {
	c.poolsMu.Lock()
	defer c.poolsMu.Unlock()
	return c.invalid[name]
}

// stale reports whether the cached Service is the version our last write
// replaced; its update event will trigger the next reconcile.
func (c *Core) stale(k alloc.ServiceKey, rv string) bool {
	c.bookMu.Lock()
	defer c.bookMu.Unlock()
	old, ok := c.staleRV[k]
	if !ok {
		return false
	}
	if old == rv {
		return true
	}
	delete(c.staleRV, k)
	return false
}

func (c *Core) written(k alloc.ServiceKey, replacedRV string) {
	c.bookMu.Lock()
	defer c.bookMu.Unlock()
	c.staleRV[k] = replacedRV
}

// arrived records when a Service needing an address was first seen.
func (c *Core) arrived(k alloc.ServiceKey, t time.Time) {
	c.bookMu.Lock()
	defer c.bookMu.Unlock()
	if _, ok := c.arrivals[k]; !ok {
		c.arrivals[k] = t
	}
}

// assigned observes the assignment latency of a Service that got its
// first address.
func (c *Core) assigned(k alloc.ServiceKey) {
	c.bookMu.Lock()
	t, ok := c.arrivals[k]
	delete(c.arrivals, k)
	c.bookMu.Unlock()
	if ok {
		assignLatency.Observe(time.Since(t).Seconds())
	}
}

// problem records the problem to report for a Service and says whether it
// is new (so that a pending Service gets one Event, not one per retry).
func (c *Core) problem(k alloc.ServiceKey, msg string) bool {
	c.bookMu.Lock()
	defer c.bookMu.Unlock()
	if msg == "" {
		delete(c.lastMsg, k)
		return false
	}
	if c.lastMsg[k] == msg {
		return false
	}
	c.lastMsg[k] = msg
	return true
}

// takeNote returns the restore problem of a Service once.
func (c *Core) takeNote(k alloc.ServiceKey) error {
	c.bookMu.Lock()
	defer c.bookMu.Unlock()
	err := c.notes[k]
	delete(c.notes, k)
	return err
}

// forget drops every record of a Service that is gone.
func (c *Core) forget(k alloc.ServiceKey) {
	c.Alloc.Release(k)
	c.bookMu.Lock()
	defer c.bookMu.Unlock()
	delete(c.staleRV, k)
	delete(c.arrivals, k)
	delete(c.lastMsg, k)
	delete(c.notes, k)
}

// requestsShown reports whether a Service explicitly requests an address
// it shows.
func requestsShown(svc *corev1.Service) bool {
	req, err := kube.RequestedAddrs(svc)
	if err != nil {
		return false
	}
	for _, a := range kube.IngressAddrs(svc) {
		if slices.Contains(req, a) {
			return true
		}
	}
	return false
}
