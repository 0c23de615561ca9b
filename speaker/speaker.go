package speaker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/types"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/manager"

	networkv1alpha2 "github.com/openelb/openelb-operator/api/network/v1alpha2"
	"github.com/openelb/openelb-operator/speaker/internal/metrics"
	"github.com/openelb/openelb-operator/speaker/internal/netx"
)

// Liveness is what the core needs from speaker/liveness.
type Liveness interface {
	SetPeers(peers map[string]netip.AddrPort)
	SetFacts(facts []byte)
	Alive() map[string][]byte
	Synced() bool
	Changes() <-chan struct{}
	Run(ctx context.Context) error
	Leave(timeout time.Duration) error
}

// A Runner is a Backend with a background loop (started before the first
// Apply, stopped after Shutdown).
type Runner interface {
	Run(ctx context.Context)
}

// Config configures the speaker core.
type Config struct {
	// Node is this node's name.
	Node string
	// Backends announce, one per enabled protocol.
	Backends []Backend
	// Liveness is nil when no enabled protocol needs it (bgp only).
	Liveness Liveness
	// LivenessPort is the peers' UDP port.
	LivenessPort uint16
	// Netx reads the node's links and routes.
	Netx netx.Netx
	// Facts restrict interfaces per protocol.
	Facts FactsOptions
	// Recorder records announcers on Services (nil: none).
	Recorder *Recorder
	// Resync recomputes periodically as a safety net (default 30 s).
	Resync time.Duration
	// LeaveTimeout bounds the wait for peers' acknowledgements on SIGTERM.
	LeaveTimeout time.Duration
}

// Speaker is the per-node decision loop: it watches Services, Eips, Nodes
// and EndpointSlices through the manager's cache, listens to liveness and
// netlink changes, computes the desired state (Compute) on every change,
// coalescing bursts, and pushes it to the backends.
type Speaker struct {
	cfg    Config
	log    logr.Logger
	reader client.Reader
	poke   chan struct{}

	snapMu    sync.Mutex
	snap      netx.Snapshot
	snapDirty atomic.Bool

	synced  atomic.Bool // caches synced
	applied atomic.Bool // every backend applied once
	alive   atomic.Int64
}

// New returns the core; SetupWithManager wires it.
func New(cfg Config, log logr.Logger) *Speaker {
	if cfg.Resync <= 0 {
		cfg.Resync = 30 * time.Second
	}
	if cfg.LeaveTimeout <= 0 {
		cfg.LeaveTimeout = time.Second
	}
	s := &Speaker{cfg: cfg, log: log, poke: make(chan struct{}, 1)}
	s.snapDirty.Store(true)
	return s
}

// SetupWithManager registers the watches and the loop with mgr.
func (s *Speaker) SetupWithManager(ctx context.Context, mgr manager.Manager) error {
	s.reader = mgr.GetCache()
	h := toolscache.ResourceEventHandlerFuncs{
		AddFunc: func(any) { s.Poke() },
		UpdateFunc: func(o, n any) {
			if Relevant(o, n) {
				s.Poke()
				return
			}
			// Only the announcer annotation changed (another speaker wrote
			// it): no new decision, but the recorder checks that the value
			// is still the one this node would write.
			if svc, ok := n.(*corev1.Service); ok && s.cfg.Recorder != nil {
				s.cfg.Recorder.Recheck(types.NamespacedName{Namespace: svc.Namespace, Name: svc.Name})
			}
		},
		DeleteFunc: func(any) { s.Poke() },
	}
	for _, obj := range []client.Object{&corev1.Service{}, &corev1.Node{}, &discoveryv1.EndpointSlice{}, &networkv1alpha2.Eip{}} {
		inf, err := mgr.GetCache().GetInformer(ctx, obj)
		if err != nil {
			return fmt.Errorf("informer for %T: %w", obj, err)
		}
		if _, err := inf.AddEventHandler(h); err != nil {
			return fmt.Errorf("watch %T: %w", obj, err)
		}
	}
	if s.cfg.Recorder != nil {
		if err := mgr.Add(s.cfg.Recorder); err != nil {
			return err
		}
	}
	return mgr.Add(s)
}

// NeedLeaderElection implements manager.LeaderElectionRunnable: every
// speaker runs.
func (s *Speaker) NeedLeaderElection() bool { return false }

// Poke asks for a recomputation (coalesced).
func (s *Speaker) Poke() {
	select {
	case s.poke <- struct{}{}:
	default:
	}
}

// Healthz answers /healthz: the loop runs.
func (s *Speaker) Healthz(*http.Request) error { return nil }

// Readyz answers /readyz: caches synced and every backend applied once.
func (s *Speaker) Readyz(*http.Request) error {
	switch {
	case !s.synced.Load():
		return errors.New("caches not synced")
	case !s.applied.Load():
		return errors.New("backends not applied yet")
	}
	return nil
}

// Start implements manager.Runnable. On cancellation it hands over: the
// backends stop announcing, then the liveness layer tells the peers, which
// take over at once.
func (s *Speaker) Start(ctx context.Context) error {
	bg, stopBG := context.WithCancel(context.WithoutCancel(ctx))
	var wg sync.WaitGroup
	defer func() { stopBG(); wg.Wait() }()
	go func() {
		if err := s.cfg.Netx.Watch(bg, func() { s.snapDirty.Store(true); s.Poke() }); err != nil {
			s.log.Error(err, "Cannot watch network changes; relying on the periodic resync")
		}
	}()
	if s.cfg.Liveness != nil {
		wg.Add(2)
		go func() { defer wg.Done(); _ = s.cfg.Liveness.Run(bg) }()
		go func() {
			defer wg.Done()
			for {
				select {
				case <-bg.Done():
					return
				case <-s.cfg.Liveness.Changes():
					s.Poke()
				}
			}
		}()
	}
	for _, b := range s.cfg.Backends {
		if r, ok := b.(Runner); ok {
			wg.Add(1)
			go func() { defer wg.Done(); r.Run(bg) }()
		}
	}
	if c, ok := s.reader.(cache.Cache); ok && !c.WaitForCacheSync(ctx) {
		return s.shutdown()
	}
	s.synced.Store(true)
	s.log.Info("Speaker started", "node", s.cfg.Node, "backends", len(s.cfg.Backends), "liveness", s.cfg.Liveness != nil)
	resync := time.NewTicker(s.cfg.Resync)
	defer resync.Stop()
	retry := time.NewTimer(time.Hour)
	defer retry.Stop()
	backoff := time.Duration(0)
	s.Poke()
	for {
		select {
		case <-ctx.Done():
			return s.shutdown()
		case <-resync.C:
			s.snapDirty.Store(true)
		case <-retry.C:
		case <-s.poke:
		}
		if err := s.reconcile(ctx); err != nil {
			backoff = min(max(2*backoff, 200*time.Millisecond), 30*time.Second)
			s.log.Error(err, "Cannot apply the desired announcements; retrying", "in", backoff.String())
			retry.Reset(backoff)
			continue
		}
		backoff = 0
	}
}

func (s *Speaker) shutdown() error {
	s.log.Info("Speaker stopping: handing over")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	// Back-ends stop concurrently: a slow one (BGP closing sessions,
	// keepalived exiting) must not delay the layer2 handover. The other
	// speakers learn that this one leaves as soon as the layer2 back-end
	// (if any) stopped answering, so that two nodes never answer at once.
	errs := make([]error, len(s.cfg.Backends))
	var wg sync.WaitGroup
	l2done := make(chan struct{})
	l2 := false
	for i, b := range s.cfg.Backends {
		isL2 := b.Protocol() == networkv1alpha2.ProtocolLayer2
		l2 = l2 || isL2
		wg.Add(1)
		go func() {
			defer wg.Done()
			if isL2 {
				defer close(l2done)
			}
			if err := b.Shutdown(ctx); err != nil {
				errs[i] = fmt.Errorf("shutdown %s: %w", b.Protocol(), err)
			}
		}()
	}
	if !l2 {
		close(l2done)
	}
	<-l2done
	if s.cfg.Liveness != nil {
		if err := s.cfg.Liveness.Leave(s.cfg.LeaveTimeout); err != nil {
			s.log.Info("Leave not acknowledged by every peer", "reason", err.Error())
		}
	}
	wg.Wait()
	return errors.Join(errs...)
}

// reconcile reads the inputs, computes the decision and applies it.
func (s *Speaker) reconcile(ctx context.Context) error {
	metrics.Recomputes.Inc()
	in, err := s.inputs(ctx)
	if err != nil {
		return err
	}
	d := Compute(in)
	var errs []error
	for _, b := range s.cfg.Backends {
		if err := b.Apply(ctx, d.State(s.cfg.Node, b.Protocol())); err != nil {
			metrics.ApplyErrors.WithLabelValues(b.Protocol()).Inc()
			errs = append(errs, fmt.Errorf("apply %s: %w", b.Protocol(), err))
		}
	}
	if s.cfg.Recorder != nil {
		s.cfg.Recorder.Observe(in, d)
	}
	if len(errs) == 0 {
		s.applied.Store(true)
	}
	return errors.Join(errs...)
}

// inputs gathers the Inputs from the cache, the kernel and liveness.
func (s *Speaker) inputs(ctx context.Context) (Inputs, error) {
	var (
		svcs  corev1.ServiceList
		nodes corev1.NodeList
		eps   discoveryv1.EndpointSliceList
		eips  networkv1alpha2.EipList
	)
	for _, l := range []client.ObjectList{&svcs, &nodes, &eps, &eips} {
		if err := s.reader.List(ctx, l, client.UnsafeDisableDeepCopy); err != nil {
			return Inputs{}, fmt.Errorf("list %T: %w", l, err)
		}
	}
	in := Inputs{Self: s.cfg.Node}
	for i := range svcs.Items {
		in.Services = append(in.Services, &svcs.Items[i])
	}
	var self *corev1.Node
	for i := range nodes.Items {
		in.Nodes = append(in.Nodes, &nodes.Items[i])
		if nodes.Items[i].Name == s.cfg.Node {
			self = &nodes.Items[i]
		}
	}
	for i := range eps.Items {
		in.EndpointSlices = append(in.EndpointSlices, &eps.Items[i])
	}
	for i := range eips.Items {
		in.Eips = append(in.Eips, &eips.Items[i])
	}
	snap, err := s.snapshot()
	if err != nil {
		return Inputs{}, err
	}
	in.SelfFacts = LocalFacts(self, in.Eips, snap, s.cfg.Facts)
	if s.cfg.Liveness != nil {
		s.cfg.Liveness.SetPeers(s.peers(in.Nodes))
		b, err := json.Marshal(in.SelfFacts)
		if err != nil {
			return Inputs{}, fmt.Errorf("encode facts: %w", err)
		}
		s.cfg.Liveness.SetFacts(b)
		in.Alive = map[string]Facts{}
		for n, raw := range s.cfg.Liveness.Alive() {
			var f Facts
			if len(raw) > 0 {
				if err := json.Unmarshal(raw, &f); err != nil {
					s.log.V(4).Info("Ignoring undecodable facts", "peer", n, "error", err.Error())
				}
			}
			in.Alive[n] = f
		}
	}
	return in, nil
}

func (s *Speaker) snapshot() (netx.Snapshot, error) {
	s.snapMu.Lock()
	defer s.snapMu.Unlock()
	if s.snapDirty.Swap(false) {
		snap, err := s.cfg.Netx.Snapshot()
		if err != nil {
			s.snapDirty.Store(true)
			return netx.Snapshot{}, fmt.Errorf("read network state: %w", err)
		}
		s.snap = snap
	}
	return s.snap, nil
}

// peers maps the other nodes to their first InternalIP and the liveness
// port.
func (s *Speaker) peers(nodes []*corev1.Node) map[string]netip.AddrPort {
	out := make(map[string]netip.AddrPort, len(nodes))
	for _, n := range nodes {
		if n.Name == s.cfg.Node {
			continue
		}
		for _, a := range n.Status.Addresses {
			if a.Type != corev1.NodeInternalIP {
				continue
			}
			if ip, err := netip.ParseAddr(a.Address); err == nil {
				out[n.Name] = netip.AddrPortFrom(ip.Unmap(), s.cfg.LivenessPort)
				break
			}
		}
	}
	return out
}
