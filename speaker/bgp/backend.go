package bgp

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/manager"

	networkv1alpha2 "github.com/openelb/openelb-operator/api/network/v1alpha2"
	"github.com/openelb/openelb-operator/speaker"
)

// BackendConfig configures the BGP backend.
type BackendConfig struct {
	// Node is this node's name; Namespace the speaker's (Secrets and the
	// policy ConfigMap are read there).
	Node, Namespace string
	// DefaultListenPort applies when BgpConf.spec.listenPort is 0
	// (--bgp-listen-port; 179 when 0).
	DefaultListenPort int32
	// GRPCAddress enables gobgp's API on 127.0.0.1:<port> (--bgp-grpc-address).
	GRPCAddress string
	// StatusInterval is the minimum time between two status passes
	// (default 1 s): each pass writes only objects whose status differs.
	StatusInterval time.Duration
	// Resync re-reads the configuration and re-checks the status this
	// often as a safety net (default 5 min).
	Resync time.Duration
}

// Backend is the speaker.Backend of the bgp protocol: it advertises the
// addresses the core hands it through an Engine, configures the Engine
// from the BgpConf, BgpPeer, Node, Secret and ConfigMap objects it
// watches, and reports per-node session state in their status.
type Backend struct {
	cfg    BackendConfig
	log    logr.Logger
	engine *Engine

	reader client.Reader
	writer client.Client
	events record.EventRecorder
	synced func(context.Context) bool

	configPoke, statusPoke chan struct{}
	advDirty               atomic.Bool
	shut                   atomic.Bool

	mu         sync.Mutex
	config     Config
	configured bool
	lastEvent  map[string]string
	restarts   int

	statusMu    sync.Mutex // one status pass at a time, none after Shutdown
	advertised  map[string]uint64
	metricPeers map[[2]string]bool
}

var (
	_ speaker.Backend  = (*Backend)(nil)
	_ speaker.Reporter = (*Backend)(nil)
	_ speaker.Runner   = (*Backend)(nil)
)

// NewBackend returns the BGP backend; SetupWithManager wires its watches.
func NewBackend(cfg BackendConfig, log logr.Logger) (*Backend, error) {
	if cfg.StatusInterval <= 0 {
		cfg.StatusInterval = time.Second
	}
	if cfg.Resync <= 0 {
		cfg.Resync = 5 * time.Minute
	}
	b := &Backend{cfg: cfg, log: log, configPoke: make(chan struct{}, 1), statusPoke: make(chan struct{}, 1),
		lastEvent: map[string]string{}, advertised: map[string]uint64{}, metricPeers: map[[2]string]bool{}}
	e, err := NewEngine(EngineOptions{GRPCAddress: cfg.GRPCAddress, OnChange: func() { b.advDirty.Store(true); b.pokeStatus() }}, log)
	if err != nil {
		return nil, err
	}
	b.engine = e
	return b, nil
}

// Engine returns the backend's engine (tests, benchmarks).
func (b *Backend) Engine() *Engine { return b.engine }

func poke(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

func (b *Backend) pokeConfig() { poke(b.configPoke) }
func (b *Backend) pokeStatus() { poke(b.statusPoke) }

// SetupWithManager registers the watches (BgpConf, BgpPeer, this Node,
// Secrets and ConfigMaps of the speaker namespace) with mgr's cache.
func (b *Backend) SetupWithManager(ctx context.Context, mgr manager.Manager) error {
	c := mgr.GetCache()
	b.Setup(c, mgr.GetClient(), mgr.GetEventRecorderFor("openelb-speaker"), c.WaitForCacheSync)
	specChanged := func(o, n client.Object) bool {
		return o.GetGeneration() != n.GetGeneration() || !equality.Semantic.DeepEqual(o.GetLabels(), n.GetLabels()) ||
			!o.GetDeletionTimestamp().Equal(n.GetDeletionTimestamp())
	}
	both := func() { b.pokeConfig(); b.pokeStatus() }
	object := func(o, n client.Object) {
		if specChanged(o, n) {
			b.pokeConfig()
		}
		b.pokeStatus() // other speakers' entries change the conditions
	}
	handlers := map[client.Object]toolscache.ResourceEventHandler{
		&networkv1alpha2.BgpConf{}: b.withLegacyRelease(handler(both, object)),
		&networkv1alpha2.BgpPeer{}: b.withLegacyRelease(handler(both, object)),
		// This Node's labels select peers and the rack AS, its addresses
		// the router ID; other Nodes matter to status pruning only.
		&corev1.Node{}: handler(both, func(_, n client.Object) {
			if n.GetName() == b.cfg.Node {
				b.pokeConfig()
			}
		}),
		&corev1.Secret{}:    handler(b.pokeConfig, func(_, _ client.Object) { b.pokeConfig() }),
		&corev1.ConfigMap{}: handler(b.pokeConfig, func(_, _ client.Object) { b.pokeConfig() }),
	}
	for obj, h := range handlers {
		inf, err := c.GetInformer(ctx, obj)
		if err != nil {
			return fmt.Errorf("informer for %T: %w", obj, err)
		}
		if _, err := inf.AddEventHandler(h); err != nil {
			return fmt.Errorf("watch %T: %w", obj, err)
		}
	}
	return nil
}

// Setup gives the backend its reader (a synced cache in production),
// writer and event recorder, without registering watches (tests call
// Poke instead).
func (b *Backend) Setup(r client.Reader, w client.Client, ev record.EventRecorder, synced func(context.Context) bool) {
	b.reader, b.writer, b.events, b.synced = r, w, ev, synced
	if b.synced == nil {
		b.synced = func(context.Context) bool { return true }
	}
}

// legacyReleaseTimeout bounds one release of OpenELB 0.6's finalizer.
const legacyReleaseTimeout = 10 * time.Second

// Poke asks for a configuration and a status pass.
func (b *Backend) Poke() { b.pokeConfig(); b.pokeStatus() }

func handler(addDel func(), update func(o, n client.Object)) toolscache.ResourceEventHandlerFuncs {
	return toolscache.ResourceEventHandlerFuncs{
		AddFunc: func(any) { addDel() },
		UpdateFunc: func(o, n any) {
			oo, ok1 := o.(client.Object)
			no, ok2 := n.(client.Object)
			if ok1 && ok2 {
				update(oo, no)
			}
		},
		DeleteFunc: func(any) { addDel() },
	}
}

// Protocol implements speaker.Backend.
func (b *Backend) Protocol() string { return networkv1alpha2.ProtocolBGP }

// Announcers implements speaker.Reporter: every eligible node advertises.
func (b *Backend) Announcers(a speaker.Announcement) []string { return a.Nodes }

// Apply implements speaker.Backend: it advertises this node's routes.
func (b *Backend) Apply(ctx context.Context, s speaker.State) error {
	if b.shut.Load() {
		return nil
	}
	v := b.engine.Version()
	err := b.engine.SetRoutes(ctx, Routes(s, b.routeAttrs(ctx, s)))
	if b.engine.Version() != v {
		announcedRoutes.Set(float64(b.engine.AdvertisedCount()))
		b.advDirty.Store(true)
		b.pokeStatus()
	}
	return err
}

// routeAttrs reads the communities and local-pref annotations of the
// announced addresses' Eips and Services from the cache (without copies).
func (b *Backend) routeAttrs(ctx context.Context, s speaker.State) map[netip.Addr]Attrs {
	if b.reader == nil || len(s.Announcements) == 0 {
		return nil
	}
	var eips networkv1alpha2.EipList
	var svcs corev1.ServiceList
	if err := b.reader.List(ctx, &eips, client.UnsafeDisableDeepCopy); err != nil {
		b.log.V(1).Info("Cannot read Eip annotations", "error", err.Error())
		return nil
	}
	if err := b.reader.List(ctx, &svcs, client.UnsafeDisableDeepCopy); err != nil {
		b.log.V(1).Info("Cannot read Service annotations", "error", err.Error())
		return nil
	}
	ea := make(map[string]map[string]string, len(eips.Items))
	for i := range eips.Items {
		ea[eips.Items[i].Name] = eips.Items[i].Annotations
	}
	sa := map[types.NamespacedName]map[string]string{}
	for i := range svcs.Items {
		a := svcs.Items[i].Annotations
		if a[networkv1alpha2.AnnotationBGPCommunities] != "" || a[networkv1alpha2.AnnotationBGPLocalPref] != "" {
			sa[types.NamespacedName{Namespace: svcs.Items[i].Namespace, Name: svcs.Items[i].Name}] = a
		}
	}
	var mine []speaker.Announcement
	for _, a := range s.Announcements {
		if a.Eligible(s.Self) {
			mine = append(mine, a)
		}
	}
	attrs, problems := RouteAttrs(mine, ea, sa)
	for _, p := range problems {
		var obj client.Object = &networkv1alpha2.Eip{ObjectMeta: metav1.ObjectMeta{Name: p.Eip}}
		if p.Service.Name != "" {
			obj = &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: p.Service.Namespace, Name: p.Service.Name}}
		}
		b.objectEvent(obj, "InvalidBGPAttribute", p.Message)
	}
	return attrs
}

// objectEvent records a Warning Event on obj once per message from this
// node.
func (b *Backend) objectEvent(obj client.Object, reason, msg string) {
	key := fmt.Sprintf("%T/%s/%s", obj, obj.GetNamespace(), obj.GetName())
	b.mu.Lock()
	same := b.lastEvent[key] == msg
	b.lastEvent[key] = msg
	b.mu.Unlock()
	if same || b.events == nil {
		return
	}
	b.events.Eventf(obj, corev1.EventTypeWarning, reason, "node %s: %s; the annotation is ignored", b.cfg.Node, msg)
}

// Shutdown implements speaker.Backend. Without graceful restart it closes
// every session with a CEASE (routers withdraw at once); with graceful
// restart configured on a neighbour that session is left for the process
// exit (see Engine.Stop). Then it removes this node from the status.
func (b *Backend) Shutdown(ctx context.Context) error {
	if b.shut.Swap(true) {
		return nil
	}
	graceful := b.engine.GracefulRestartConfigured()
	b.engine.Stop(ctx, graceful)
	b.log.Info("BGP stopped", "gracefulRestart", graceful)
	running.Set(0)
	announcedRoutes.Set(0)
	if b.reader == nil {
		return nil
	}
	cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	b.statusMu.Lock()
	defer b.statusMu.Unlock()
	return b.removeOwnStatus(cctx)
}

// Run implements speaker.Runner: the configuration loop (every watched
// change, with back-off on errors) and the status loop.
func (b *Backend) Run(ctx context.Context) {
	if b.reader == nil {
		<-ctx.Done()
		return
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); b.statusLoop(ctx) }()
	defer wg.Wait()
	if !b.synced(ctx) {
		return
	}
	resync := time.NewTicker(b.cfg.Resync)
	defer resync.Stop()
	retry := time.NewTimer(time.Hour)
	defer retry.Stop()
	backoff := time.Duration(0)
	b.pokeConfig()
	for {
		select {
		case <-ctx.Done():
			return
		case <-b.configPoke:
		case <-retry.C:
		case <-resync.C:
		}
		if b.shut.Load() {
			return
		}
		if err := b.configure(ctx); err != nil {
			configErrors.Inc()
			backoff = min(max(2*backoff, 500*time.Millisecond), time.Minute)
			b.log.Error(err, "Cannot apply the BGP configuration; retrying", "in", backoff.String())
			retry.Reset(backoff)
			continue
		}
		backoff = 0
	}
}

// configure reads the objects, translates them and applies the result.
func (b *Backend) configure(ctx context.Context) error {
	in, err := b.inputs(ctx)
	if err != nil {
		return err
	}
	c := Translate(in)
	err = b.engine.Configure(ctx, c)
	// Routes known before BGP ran are installed by Configure.
	announcedRoutes.Set(float64(b.engine.AdvertisedCount()))
	g := b.engine.Running()
	if g != nil {
		running.Set(1)
	} else {
		running.Set(0)
	}
	b.mu.Lock()
	b.config, b.configured = c, true
	if n := b.engine.Restarts(); n > b.restarts {
		restarts.Add(float64(n - b.restarts))
		b.restarts = n
	}
	b.mu.Unlock()
	// Problems of this node only: an Event on the BgpConf (once per message).
	nodeProblem := c.GlobalErr
	if err != nil {
		nodeProblem = err.Error()
	}
	b.nodeEvent(ctx, "conf", nodeProblem)
	b.advDirty.Store(true)
	b.pokeStatus()
	return err
}

// nodeEvent records a Warning Event on the BgpConf default from this
// node when msg differs from the last one recorded under key.
func (b *Backend) nodeEvent(ctx context.Context, key, msg string) {
	b.mu.Lock()
	same := b.lastEvent[key] == msg
	b.lastEvent[key] = msg
	b.mu.Unlock()
	if same || msg == "" || b.events == nil {
		return
	}
	var conf networkv1alpha2.BgpConf
	if err := b.reader.Get(ctx, client.ObjectKey{Name: networkv1alpha2.DefaultBgpConfName}, &conf); err != nil {
		return
	}
	b.events.Eventf(&conf, corev1.EventTypeWarning, "BGPNodeProblem", "node %s: %s", b.cfg.Node, msg)
}

// inputs reads everything Translate needs from the cache.
func (b *Backend) inputs(ctx context.Context) (Inputs, error) {
	in := Inputs{Node: b.cfg.Node, Namespace: b.cfg.Namespace, DefaultListenPort: b.cfg.DefaultListenPort,
		Secrets: map[string]map[string][]byte{}, ConfigMaps: map[string]map[string]string{}}
	var confs networkv1alpha2.BgpConfList
	if err := b.reader.List(ctx, &confs); err != nil {
		return in, fmt.Errorf("list BgpConfs: %w", err)
	}
	var peers networkv1alpha2.BgpPeerList
	if err := b.reader.List(ctx, &peers); err != nil {
		return in, fmt.Errorf("list BgpPeers: %w", err)
	}
	var node corev1.Node
	switch err := b.reader.Get(ctx, client.ObjectKey{Name: b.cfg.Node}, &node); {
	case apierrors.IsNotFound(err):
	case err != nil:
		return in, fmt.Errorf("get node %s: %w", b.cfg.Node, err)
	}
	in.NodeLabels = node.Labels
	for _, a := range node.Status.Addresses {
		if a.Type != corev1.NodeInternalIP {
			continue
		}
		if ip, err := netip.ParseAddr(a.Address); err == nil {
			in.NodeAddresses = append(in.NodeAddresses, ip.Unmap())
		}
	}
	for i := range confs.Items {
		c := &confs.Items[i]
		in.Confs = append(in.Confs, c)
		if c.Name == networkv1alpha2.DefaultBgpConfName && c.Spec.Policy != "" {
			var cm corev1.ConfigMap
			switch err := b.reader.Get(ctx, client.ObjectKey{Namespace: b.cfg.Namespace, Name: c.Spec.Policy}, &cm); {
			case apierrors.IsNotFound(err):
			case err != nil:
				return in, fmt.Errorf("get ConfigMap %s/%s: %w", b.cfg.Namespace, c.Spec.Policy, err)
			default:
				in.ConfigMaps[cm.Name] = cm.Data
			}
		}
	}
	for i := range peers.Items {
		p := &peers.Items[i]
		in.Peers = append(in.Peers, p)
		if ref := p.Spec.AuthPasswordSecretRef; ref != nil && ref.Name != "" {
			if _, done := in.Secrets[ref.Name]; done {
				continue
			}
			var s corev1.Secret
			switch err := b.reader.Get(ctx, client.ObjectKey{Namespace: b.cfg.Namespace, Name: ref.Name}, &s); {
			case apierrors.IsNotFound(err):
			case err != nil:
				return in, fmt.Errorf("get Secret %s/%s: %w", b.cfg.Namespace, ref.Name, err)
			default:
				in.Secrets[s.Name] = s.Data
			}
		}
	}
	return in, nil
}

func (b *Backend) statusLoop(ctx context.Context) {
	tick := time.NewTicker(b.cfg.StatusInterval)
	defer tick.Stop()
	resync := time.NewTicker(b.cfg.Resync)
	defer resync.Stop()
	pending := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-b.statusPoke:
			pending = true
			continue
		case <-resync.C:
			pending = true
			continue
		case <-tick.C:
		}
		if !pending || b.shut.Load() {
			continue
		}
		pending = false
		if err := b.writeStatus(ctx); err != nil {
			b.log.V(1).Info("Status not written; retrying", "reason", err.Error())
			pending = true
		}
	}
}

// writeStatus writes what differs in the status of every BgpConf and
// BgpPeer: this node's entries (merge patch of its own key, so the
// speakers never conflict) and the conditions (optimistic lock: every
// speaker computes the same ones, the first writes them).
func (b *Backend) writeStatus(ctx context.Context) error {
	b.statusMu.Lock()
	defer b.statusMu.Unlock()
	b.mu.Lock()
	c, ok := b.config, b.configured
	b.mu.Unlock()
	if !ok || b.shut.Load() {
		return nil
	}
	sessions, err := b.sessions(ctx)
	if err != nil {
		return err
	}
	exists, err := b.nodeNames(ctx)
	if err != nil {
		return err
	}
	g := b.engine.Running()
	var peers networkv1alpha2.BgpPeerList
	if err := b.reader.List(ctx, &peers); err != nil {
		return fmt.Errorf("list BgpPeers: %w", err)
	}
	var confs networkv1alpha2.BgpConfList
	if err := b.reader.List(ctx, &confs); err != nil {
		return fmt.Errorf("list BgpConfs: %w", err)
	}
	var errs []error
	for i := range peers.Items {
		p := &peers.Items[i]
		if r, ok := c.PeerResults[p.Name]; ok && !r.Skipped && p.DeletionTimestamp.IsZero() {
			errs = append(errs, b.writePeerStatus(ctx, p, PeerEntry(r, sessions[p.Name], g != nil), r, exists))
		}
	}
	for i := range confs.Items {
		cf := &confs.Items[i]
		if isCNI(cf) || !cf.DeletionTimestamp.IsZero() {
			continue
		}
		var own *networkv1alpha2.NodeConfStatus
		if cf.Name == networkv1alpha2.DefaultBgpConfName && g != nil {
			own = ConfEntry(g.Asn, g.RouterId)
		}
		errs = append(errs, b.writeConfStatus(ctx, cf, own, ConfConditions(cf.Name, c, cf.Generation), exists))
	}
	return errors.Join(errs...)
}

// sessions returns gobgp's sessions by BgpPeer name and updates the
// metrics. Advertised counts are recomputed only when routes or sessions
// changed since the last pass (advDirty); otherwise the last ones are used.
func (b *Backend) sessions(ctx context.Context) (map[string]*Session, error) {
	adv := b.advDirty.Swap(false)
	list, err := b.engine.Sessions(ctx, adv)
	if err != nil {
		b.advDirty.Store(true)
		return nil, err
	}
	out := make(map[string]*Session, len(list))
	for i := range list {
		s := &list[i]
		if adv {
			b.advertised[s.Neighbor] = s.Advertised
		} else {
			s.Advertised = b.advertised[s.Neighbor]
		}
		out[s.Name] = s
	}
	b.updateMetrics(list)
	return out, nil
}

// nodeNames returns the names of the Nodes in the cache.
func (b *Backend) nodeNames(ctx context.Context) (map[string]bool, error) {
	var nodes corev1.NodeList
	if err := b.reader.List(ctx, &nodes, client.UnsafeDisableDeepCopy); err != nil {
		return nil, fmt.Errorf("list nodes: %w", err)
	}
	out := make(map[string]bool, len(nodes.Items))
	for _, n := range nodes.Items {
		out[n.Name] = true
	}
	return out, nil
}

func (b *Backend) updateMetrics(sessions []Session) {
	seen := map[[2]string]bool{}
	for _, s := range sessions {
		k := [2]string{s.Name, s.Neighbor}
		seen[k] = true
		up := 0.0
		if s.Established() {
			up = 1
		}
		sessionUp.WithLabelValues(k[0], k[1]).Set(up)
		sessionState.WithLabelValues(k[0], k[1]).Set(stateNumber[s.State])
		advertisedRoutes.WithLabelValues(k[0], k[1]).Set(float64(s.Advertised))
		receivedRoutes.WithLabelValues(k[0], k[1]).Set(float64(s.Received))
	}
	for k := range b.metricPeers {
		if !seen[k] {
			for _, v := range []*prometheus.GaugeVec{sessionUp, sessionState, advertisedRoutes, receivedRoutes} {
				v.DeleteLabelValues(k[0], k[1])
			}
		}
	}
	b.metricPeers = seen
}

func (b *Backend) writePeerStatus(ctx context.Context, p *networkv1alpha2.BgpPeer, own *networkv1alpha2.NodePeerStatus,
	r PeerResult, exists map[string]bool) error {
	orig := p.DeepCopy()
	cur, has := p.Status.NodesPeerStatus[b.cfg.Node]
	changed := false
	switch {
	case own == nil && has:
		delete(p.Status.NodesPeerStatus, b.cfg.Node)
		changed = true
	case own != nil && (!has || !equality.Semantic.DeepEqual(cur, *own)):
		if p.Status.NodesPeerStatus == nil {
			p.Status.NodesPeerStatus = map[string]networkv1alpha2.NodePeerStatus{}
		}
		p.Status.NodesPeerStatus[b.cfg.Node] = *own
		changed = true
	}
	for n := range p.Status.NodesPeerStatus {
		if len(exists) > 0 && !exists[n] {
			delete(p.Status.NodesPeerStatus, n) // the Node is gone: so is its speaker
			changed = true
		}
	}
	if changed {
		if err := b.writer.Status().Patch(ctx, p, client.MergeFrom(orig)); err != nil {
			if apierrors.IsNotFound(err) {
				return nil
			}
			return fmt.Errorf("patch status of BgpPeer %s: %w", p.Name, err)
		}
		statusWrites.WithLabelValues("BgpPeer").Inc()
	}
	want := PeerConditions(r, p.Generation, p.Status.NodesPeerStatus)
	return b.writeConditions(ctx, p, &p.Status.Conditions, want)
}

func (b *Backend) writeConfStatus(ctx context.Context, cf *networkv1alpha2.BgpConf, own *networkv1alpha2.NodeConfStatus,
	want []metav1.Condition, exists map[string]bool) error {
	orig := cf.DeepCopy()
	cur, has := cf.Status.NodesConfStatus[b.cfg.Node]
	changed := false
	switch {
	case own == nil && has:
		delete(cf.Status.NodesConfStatus, b.cfg.Node)
		changed = true
	case own != nil && (!has || cur != *own):
		if cf.Status.NodesConfStatus == nil {
			cf.Status.NodesConfStatus = map[string]networkv1alpha2.NodeConfStatus{}
		}
		cf.Status.NodesConfStatus[b.cfg.Node] = *own
		changed = true
	}
	for n := range cf.Status.NodesConfStatus {
		if len(exists) > 0 && !exists[n] {
			delete(cf.Status.NodesConfStatus, n)
			changed = true
		}
	}
	if changed {
		if err := b.writer.Status().Patch(ctx, cf, client.MergeFrom(orig)); err != nil {
			if apierrors.IsNotFound(err) {
				return nil
			}
			return fmt.Errorf("patch status of BgpConf %s: %w", cf.Name, err)
		}
		statusWrites.WithLabelValues("BgpConf").Inc()
	}
	return b.writeConditions(ctx, cf, &cf.Status.Conditions, want)
}

// writeConditions sets want on obj's conditions when they differ, with an
// optimistic lock (a conflict means another speaker wrote first; the next
// pass re-evaluates), and records an Event when Accepted turns False.
func (b *Backend) writeConditions(ctx context.Context, obj client.Object, conds *[]metav1.Condition, want []metav1.Condition) error {
	if len(want) == 0 || conditionsEqual(*conds, want) {
		return nil
	}
	orig := obj.DeepCopyObject().(client.Object)
	wasAccepted := meta.FindStatusCondition(*conds, ConditionAccepted)
	for _, w := range want {
		meta.SetStatusCondition(conds, w)
	}
	err := b.writer.Status().Patch(ctx, obj, client.MergeFromWithOptions(orig, client.MergeFromWithOptimisticLock{}))
	switch {
	case apierrors.IsConflict(err) || apierrors.IsNotFound(err):
		b.pokeStatus()
		return nil
	case err != nil:
		return fmt.Errorf("patch conditions of %s %s: %w", obj.GetObjectKind().GroupVersionKind().Kind, obj.GetName(), err)
	}
	statusWrites.WithLabelValues("conditions").Inc()
	acc := meta.FindStatusCondition(want, ConditionAccepted)
	if b.events != nil && acc != nil && acc.Status != "True" &&
		(wasAccepted == nil || wasAccepted.Status == "True" || wasAccepted.Message != acc.Message) {
		b.events.Event(obj, corev1.EventTypeWarning, acc.Reason, acc.Message)
	}
	if pol := meta.FindStatusCondition(want, ConditionPolicyApplied); b.events != nil && pol != nil && pol.Status != "True" {
		b.events.Event(obj, corev1.EventTypeWarning, pol.Reason, pol.Message)
	}
	return nil
}

// removeOwnStatus deletes this node's entries (the speaker stops).
func (b *Backend) removeOwnStatus(ctx context.Context) error {
	var errs []error
	var peers networkv1alpha2.BgpPeerList
	if err := b.reader.List(ctx, &peers); err != nil {
		return err
	}
	for i := range peers.Items {
		p := &peers.Items[i]
		if _, ok := p.Status.NodesPeerStatus[b.cfg.Node]; !ok {
			continue
		}
		orig := p.DeepCopy()
		delete(p.Status.NodesPeerStatus, b.cfg.Node)
		if err := b.writer.Status().Patch(ctx, p, client.MergeFrom(orig)); err != nil && !apierrors.IsNotFound(err) {
			errs = append(errs, err)
		}
	}
	var confs networkv1alpha2.BgpConfList
	if err := b.reader.List(ctx, &confs); err != nil {
		return err
	}
	for i := range confs.Items {
		cf := &confs.Items[i]
		if _, ok := cf.Status.NodesConfStatus[b.cfg.Node]; !ok {
			continue
		}
		orig := cf.DeepCopy()
		delete(cf.Status.NodesConfStatus, b.cfg.Node)
		if err := b.writer.Status().Patch(ctx, cf, client.MergeFrom(orig)); err != nil && !apierrors.IsNotFound(err) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
