package vip

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/manager"

	networkv1alpha2 "github.com/openelb/openelb-operator/api/network/v1alpha2"
	"github.com/openelb/openelb-operator/speaker"
	"github.com/openelb/openelb-operator/speaker/internal/metrics"
	"github.com/openelb/openelb-operator/speaker/internal/netx"
)

// Event reasons.
const (
	ReasonMaster           = "VRRPMaster"
	ReasonKeepalivedExited = "KeepalivedExited"
	ReasonKeepalivedDown   = "KeepalivedNotRunning"
	ReasonConfigInvalid    = "KeepalivedConfigInvalid"
	ReasonUnplanned        = "VRRPNoRouterID"
	ReasonNotConfigured    = "VRRPNotConfigured"
	ReasonForeign          = "VRRPForeignRouter"
)

// Config configures the Backend.
type Config struct {
	// Node is this node's name; Namespace holds the record.
	Node, Namespace string
	// RunDir holds keepalived's configuration, pid files and the
	// supervisor status (--run-dir).
	RunDir string
	// Keepalived is the keepalived binary (--keepalived-path).
	Keepalived string
	// AdvertInterval is VRRP's advertisement interval.
	AdvertInterval time.Duration
	// Multicast sends advertisements by multicast instead of unicast.
	Multicast bool
	// Sidecar: keepalived runs under `openelb speaker keepalived` in
	// another container sharing RunDir; the backend only writes the
	// configuration and reads the status.
	Sidecar bool
	// Synced reports whether every live speaker evaluates eligibility from
	// the same facts; the writer records plans only then. Nil: always.
	Synced func() bool
	Netx   netx.Netx
	// Runner and Addrs default to Kernel{}.
	Runner Runner
	Addrs  Addresses
	Events record.EventRecorder
	// Check validates a rendered configuration; nil runs `keepalived -t`.
	Check func(ctx context.Context, conf []byte) error
	// Poll is how often the supervisor status and the addresses held are
	// read besides change notifications (500 ms).
	Poll time.Duration
	// ListenAdverts runs the VRRP listener that detects other VRRP routers
	// on this node's vip interfaces (their VRIDs are then reserved).
	ListenAdverts bool
	Now           func() time.Time
}

// Backend is the speaker.Backend of the vip protocol.
type Backend struct {
	cfg    Config
	log    logr.Logger
	reader client.Reader
	writer client.Client
	sup    *Supervisor
	watch  *Watch
	poke   chan struct{}

	mu      sync.Mutex
	state   *speaker.State
	plan    Plan
	ifaces  []string
	shut    bool
	stopSup context.CancelFunc
	supDone chan struct{}

	// Owned by the Run goroutine.
	installed     []byte
	installedVIPs []VIP
	written       *corev1.ConfigMap // our last write until the cache shows it
	writtenFrom   string            // the resourceVersion that write replaced
	held          map[netip.Addr]heldAddr
	status        Status
	statusSeen    bool
	supAlive      bool
	warned        string
	unplanned     map[netip.Addr]string
	retry         *time.Timer
	backoff       time.Duration
	reported      map[Foreign]bool
}

type heldAddr struct {
	eip, iface, vrid string
	family           int
}

var (
	_ speaker.Backend  = (*Backend)(nil)
	_ speaker.Reporter = (*Backend)(nil)
	_ speaker.Runner   = (*Backend)(nil)
)

// NewBackend returns the vip backend; SetupWithManager wires its watch.
func NewBackend(cfg Config, log logr.Logger) *Backend {
	if cfg.Runner == nil {
		cfg.Runner = Kernel{}
	}
	if cfg.Addrs == nil {
		cfg.Addrs = Kernel{}
	}
	if cfg.Synced == nil {
		cfg.Synced = func() bool { return true }
	}
	if cfg.Poll <= 0 {
		cfg.Poll = 500 * time.Millisecond
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Check == nil {
		cfg.Check = func(ctx context.Context, conf []byte) error {
			return CheckConfig(ctx, cfg.Keepalived, cfg.RunDir, conf)
		}
	}
	b := &Backend{cfg: cfg, log: log, poke: make(chan struct{}, 1), held: map[netip.Addr]heldAddr{}, reported: map[Foreign]bool{}}
	b.watch = NewWatch(func(f Foreign) {
		b.log.Info("Foreign VRRP router seen", "interface", f.Interface, "family", f.Family, "vrid", f.VRID, "source", f.Source.String())
		b.Poke()
	})
	if !cfg.Sidecar {
		b.sup = NewSupervisor(SupervisorConfig{RunDir: cfg.RunDir, Keepalived: cfg.Keepalived, ConfigID: cfg.Node,
			Runner: cfg.Runner, Addrs: cfg.Addrs}, log.WithName("keepalived"))
	}
	return b
}

// SetupWithManager reads and writes the record through mgr and watches it.
func (b *Backend) SetupWithManager(ctx context.Context, mgr manager.Manager) error {
	b.reader, b.writer = mgr.GetCache(), mgr.GetClient()
	inf, err := mgr.GetCache().GetInformer(ctx, &corev1.ConfigMap{})
	if err != nil {
		return fmt.Errorf("informer for ConfigMaps: %w", err)
	}
	ours := func(o any) bool {
		cm, ok := o.(*corev1.ConfigMap)
		if !ok {
			if d, ok := o.(toolscache.DeletedFinalStateUnknown); ok {
				cm, _ = d.Obj.(*corev1.ConfigMap)
			}
		}
		return cm != nil && cm.Name == RecordName && cm.Namespace == b.cfg.Namespace
	}
	_, err = inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc:    func(o any) { b.pokeIf(ours(o)) },
		UpdateFunc: func(_, n any) { b.pokeIf(ours(n)) },
		DeleteFunc: func(o any) { b.pokeIf(ours(o)) },
	})
	return err
}

func (b *Backend) pokeIf(ok bool) {
	if ok {
		b.Poke()
	}
}

// Poke asks the loop for a pass.
func (b *Backend) Poke() {
	select {
	case b.poke <- struct{}{}:
	default:
	}
}

// Protocol implements speaker.Backend.
func (b *Backend) Protocol() string { return networkv1alpha2.ProtocolVIP }

// Apply implements speaker.Backend: it hands the state to the loop, which
// records the plan, writes keepalived's configuration and reports.
func (b *Backend) Apply(_ context.Context, s speaker.State) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.shut {
		return nil
	}
	b.state = &s
	b.Poke()
	return nil
}

// Announcers implements speaker.Reporter: the member VRRP elects when every
// alive member's keepalived runs, i.e. the first member in priority order
// that is alive and eligible. The node that actually becomes master
// reports it with a VRRPMaster Event and the openelb_speaker_vip_master
// metric.
func (b *Backend) Announcers(a speaker.Announcement) []string {
	b.mu.Lock()
	plan := b.plan
	b.mu.Unlock()
	if i := plan.GroupOf(a.IP); i >= 0 {
		for _, m := range plan.Groups[i].Members {
			if a.Eligible(m.Node) {
				return []string{m.Node}
			}
		}
	}
	if w := a.Winner(); w != "" {
		return []string{w}
	}
	return nil
}

// Shutdown implements speaker.Backend. Without a sidecar, keepalived stops
// with the speaker: SIGTERM makes it send priority-0 advertisements, so
// the backups take over at once. With a sidecar, keepalived and its
// addresses stay as they are: a restarting speaker moves nothing.
func (b *Backend) Shutdown(ctx context.Context) error {
	b.mu.Lock()
	b.shut = true
	stop, done := b.stopSup, b.supDone
	b.mu.Unlock()
	if stop == nil {
		return nil
	}
	stop()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("keepalived still stopping: %w", ctx.Err())
	}
}

// Run implements speaker.Runner: the loop that records plans, writes the
// configuration, runs the supervisor (without a sidecar) and reports.
func (b *Backend) Run(ctx context.Context) {
	if b.sup != nil {
		supCtx, stop := context.WithCancel(context.WithoutCancel(ctx))
		done := make(chan struct{})
		b.mu.Lock()
		b.stopSup, b.supDone = stop, done
		b.mu.Unlock()
		go b.runSupervisor(supCtx, done)
	}
	if vips, err := ReadAddrs(b.cfg.RunDir); err == nil {
		b.installedVIPs = vips
	}
	go func() {
		if err := b.cfg.Netx.Watch(ctx, b.Poke); err != nil {
			b.log.Error(err, "Cannot watch addresses; relying on polling")
		}
	}()
	if b.cfg.ListenAdverts {
		go func() {
			if err := Listen(ctx, b.watch, b.vipInterfaces, b.log.WithName("listener")); err != nil {
				b.log.Error(err, "No detection of other VRRP routers")
			}
		}()
	}
	tick := time.NewTicker(b.cfg.Poll)
	defer tick.Stop()
	b.retry = time.NewTimer(time.Hour)
	defer b.retry.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-b.poke:
		case <-b.retry.C:
		case <-tick.C:
		}
		if err := b.sync(ctx); err != nil {
			b.backoff = min(max(2*b.backoff, 100*time.Millisecond), 10*time.Second)
			if raced(err) {
				// Another speaker wrote the record first: read it again.
				b.log.V(1).Info("The vip record changed meanwhile; retrying", "error", err.Error())
				b.retry.Reset(20 * time.Millisecond)
				continue
			}
			b.log.Error(err, "vip pass failed; retrying", "in", b.backoff.String())
			b.retry.Reset(b.backoff)
			continue
		}
		b.backoff = 0
	}
}

// raced reports whether every error in err is a lost optimistic write.
func raced(err error) bool {
	var errs []error
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	} else {
		errs = []error{err}
	}
	for _, e := range errs {
		if !apierrors.IsConflict(e) && !apierrors.IsAlreadyExists(e) {
			return false
		}
	}
	return true
}

// runSupervisor runs the in-process supervisor until its context ends,
// retrying when it cannot start (another supervisor holds the run dir).
func (b *Backend) runSupervisor(ctx context.Context, done chan struct{}) {
	defer close(done)
	for {
		err := b.sup.Run(ctx)
		if ctx.Err() != nil {
			return
		}
		b.log.Error(err, "keepalived supervisor ended; restarting it in 5s")
		select {
		case <-ctx.Done():
			return
		case <-time.After(5 * time.Second):
		}
	}
}

// sync is one pass of the loop.
func (b *Backend) sync(ctx context.Context) error {
	b.mu.Lock()
	st, shut := b.state, b.shut
	b.mu.Unlock()
	defer b.observeStatus(ctx)
	if st == nil || shut {
		return nil
	}
	snap, err := b.cfg.Netx.Snapshot()
	if err != nil {
		return fmt.Errorf("read interfaces: %w", err)
	}
	cm, rec, err := b.readRecord(ctx)
	if err != nil {
		return err
	}
	b.know(*st, snap, rec)
	var errs []error
	// 1. Publish this node's addresses (and foreign routers seen).
	entry := b.ownEntry(*st, snap, rec.Nodes[b.cfg.Node])
	if old, ok := rec.Nodes[b.cfg.Node]; !ok || !entryEqual(old, entry) {
		v, err := EncodeNode(entry)
		if err == nil {
			cm, err = b.update(ctx, cm, func(d map[string]string) { d[NodeKey(b.cfg.Node)] = v })
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("publish this node's vip entry: %w", err))
		} else {
			rec.Nodes[b.cfg.Node] = entry
		}
	}
	// 2. The writer records the plan.
	alive := func(n string) bool { return st.Nodes[n].Alive }
	if Writer(b.cfg.Node, alive, rec) == b.cfg.Node && b.cfg.Synced() {
		plan, un := Compute(Input{Prev: rec.Plan, State: *st, Reserved: rec.Reserved(b.cfg.Now())})
		var gone []string
		for n := range rec.Nodes {
			if _, ok := st.Nodes[n]; !ok {
				gone = append(gone, n)
			}
		}
		if !plan.Equal(rec.Plan) || len(gone) > 0 {
			v, err := EncodePlan(plan)
			if err == nil {
				cm, err = b.update(ctx, cm, func(d map[string]string) {
					d[recordPlanKey] = v
					for _, n := range gone {
						delete(d, NodeKey(n))
					}
				})
			}
			if err != nil {
				errs = append(errs, fmt.Errorf("record the vip plan: %w", err))
			} else {
				planWrites.Inc()
				b.log.V(1).Info("Recorded the vip plan", "groups", len(plan.Groups))
				rec.Plan = plan
			}
		}
		b.reportUnplanned(ctx, *st, un)
	}
	b.mu.Lock()
	b.plan = rec.Plan
	b.mu.Unlock()
	b.reportForeign(ctx, rec.Plan)
	// 3. This node's keepalived configuration.
	cfg, warnings := Local(LocalInput{Self: b.cfg.Node, Plan: rec.Plan, State: *st, Directory: rec.Directory(),
		Links: snap.Links, AdvertInterval: b.cfg.AdvertInterval, Multicast: b.cfg.Multicast})
	b.reportWarnings(ctx, warnings)
	if err := b.install(ctx, cfg); err != nil {
		errs = append(errs, err)
	}
	// 4. Which addresses this node holds as master.
	b.observeMasters(ctx, *st, cfg, snap)
	return errors.Join(errs...)
}

// readRecord returns the record ConfigMap (nil when it does not exist) as
// the cache has it, or as this node last wrote it while the cache lags.
func (b *Backend) readRecord(ctx context.Context) (*corev1.ConfigMap, Record, error) {
	var cm corev1.ConfigMap
	cur := &cm
	err := b.reader.Get(ctx, types.NamespacedName{Namespace: b.cfg.Namespace, Name: RecordName}, &cm)
	switch {
	case apierrors.IsNotFound(err):
		cur = nil
	case err != nil:
		return nil, Record{}, fmt.Errorf("read ConfigMap %s: %w", RecordName, err)
	}
	if b.written != nil {
		if cur == nil || cur.ResourceVersion == b.writtenFrom {
			cur = b.written.DeepCopy()
		} else {
			b.written = nil
		}
	}
	var data map[string]string
	if cur != nil {
		data = cur.Data
	}
	rec, err := DecodeRecord(data)
	if err != nil {
		b.log.Error(err, "Ignoring undecodable parts of the vip record", "configMap", RecordName)
	}
	return cur, rec, nil
}

// update writes the record with mutate applied, carrying the
// resourceVersion read (a concurrent write makes it fail; the next pass
// retries from the new version).
func (b *Backend) update(ctx context.Context, cm *corev1.ConfigMap, mutate func(map[string]string)) (*corev1.ConfigMap, error) {
	if cm == nil {
		cm = &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: RecordName, Namespace: b.cfg.Namespace,
			Labels: map[string]string{"app.kubernetes.io/name": "openelb", "app.kubernetes.io/component": "speaker"}}}
		cm.Data = map[string]string{}
		mutate(cm.Data)
		if err := b.writer.Create(ctx, cm); err != nil {
			return nil, err
		}
		b.written, b.writtenFrom = cm.DeepCopy(), ""
		return cm, nil
	}
	from := cm.ResourceVersion
	cm = cm.DeepCopy()
	if cm.Data == nil {
		cm.Data = map[string]string{}
	}
	mutate(cm.Data)
	if err := b.writer.Update(ctx, cm); err != nil {
		if apierrors.IsConflict(err) {
			b.written = nil
		}
		return nil, err
	}
	b.written, b.writtenFrom = cm.DeepCopy(), from
	return cm, nil
}

// ownEntry is what this node publishes: its own address on every
// interface it uses for vip Eips, and the foreign routers it saw.
func (b *Backend) ownEntry(st speaker.State, snap netx.Snapshot, old NodeEntry) NodeEntry {
	service := map[netip.Addr]bool{}
	for _, a := range st.Announcements {
		service[a.IP] = true
	}
	e := NodeEntry{Addrs: map[string][]netip.Addr{}}
	for _, f := range st.Nodes[b.cfg.Node].Facts {
		if !f.OK || f.Interface == "" {
			continue
		}
		if l, ok := snap.LinkByName(f.Interface); ok {
			if as := NodeAddrs(l, service); len(as) > 0 {
				e.Addrs[f.Interface] = as
			}
		}
	}
	if len(e.Addrs) == 0 {
		e.Addrs = nil
	}
	e.Foreign = mergeForeign(old.Foreign, b.watch.Foreign(), b.cfg.Now())
	return e
}

// know tells the advert watch what is ours (every node address known, the
// service addresses) and remembers the vip interfaces to listen on.
func (b *Backend) know(st speaker.State, snap netx.Snapshot, rec Record) {
	nodes := map[netip.Addr]bool{}
	for _, n := range st.Nodes {
		for _, a := range n.Addresses {
			nodes[a] = true
		}
	}
	for _, byIface := range rec.Directory() {
		for _, as := range byIface {
			for _, a := range as {
				nodes[a] = true
			}
		}
	}
	for _, l := range snap.Links {
		for _, p := range l.Prefixes {
			nodes[p.Addr()] = true
		}
	}
	service := map[netip.Addr]bool{}
	for _, a := range st.Announcements {
		service[a.IP] = true
	}
	for _, g := range rec.Plan.Groups {
		for _, ip := range g.IPs {
			service[ip] = true
		}
	}
	b.watch.Known(nodes, service)
	var ifaces []string
	for _, f := range st.Nodes[b.cfg.Node].Facts {
		if f.OK && f.Interface != "" && !slices.Contains(ifaces, f.Interface) {
			ifaces = append(ifaces, f.Interface)
		}
	}
	b.mu.Lock()
	b.ifaces = ifaces
	b.mu.Unlock()
}

func (b *Backend) vipInterfaces() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.ifaces)
}

// reportForeign records an Event on the Node for each foreign VRRP router
// this node sees for the first time: a warning when it uses a VRID of the
// plan (the writer moves that group), for information otherwise.
func (b *Backend) reportForeign(ctx context.Context, plan Plan) {
	current := b.watch.Foreign()
	for f := range b.reported {
		if !slices.Contains(current, f) {
			delete(b.reported, f) // expired: report it again if it returns
		}
	}
	for _, f := range current {
		if b.reported[f] {
			continue
		}
		b.reported[f] = true
		clash := false
		for _, g := range plan.Groups {
			if g.VRID == f.VRID && slices.Contains(g.Spaces(), Space{Family: f.Family, Interface: f.Interface}) {
				clash = true
			}
		}
		if clash {
			b.nodeEvent(ctx, corev1.EventTypeWarning, ReasonForeign,
				"VRRP router %s, not an openelb speaker, uses VRID %d on %s (IPv%d), as openelb does: the VRID is reserved and openelb's group moves to another",
				f.Source, f.VRID, f.Interface, f.Family)
		} else {
			b.nodeEvent(ctx, corev1.EventTypeNormal, ReasonForeign,
				"VRRP router %s, not an openelb speaker, uses VRID %d on %s (IPv%d): openelb will not use that VRID there", f.Source, f.VRID, f.Interface, f.Family)
		}
	}
}

// mergeForeign keeps the first sighting time of routers still seen,
// refreshing it every ForeignTTL/2, and drops expired ones, so that the
// entry changes (and is written) rarely.
func mergeForeign(old, seen []Foreign, now time.Time) []Foreign {
	key := func(f Foreign) string { return fmt.Sprintf("%s/%d/%d/%s", f.Interface, f.Family, f.VRID, f.Source) }
	prev := map[string]Foreign{}
	for _, f := range old {
		prev[key(f)] = f
	}
	var out []Foreign
	done := map[string]bool{}
	for _, f := range seen {
		k := key(f)
		if done[k] {
			continue
		}
		done[k] = true
		if p, ok := prev[k]; ok && now.Sub(p.Seen) < ForeignTTL/2 {
			f.Seen = p.Seen
		} else {
			f.Seen = now.UTC().Truncate(time.Second)
		}
		out = append(out, f)
	}
	for k, f := range prev {
		if !done[k] && now.Sub(f.Seen) <= ForeignTTL {
			out = append(out, f)
		}
	}
	slices.SortFunc(out, func(a, b Foreign) int { return strings.Compare(key(a), key(b)) })
	return out
}

func entryEqual(a, b NodeEntry) bool {
	return maps.EqualFunc(a.Addrs, b.Addrs, slices.Equal[[]netip.Addr]) && slices.EqualFunc(a.Foreign, b.Foreign, func(x, y Foreign) bool {
		return x.Interface == y.Interface && x.Family == y.Family && x.VRID == y.VRID && x.Source == y.Source && x.Seen.Equal(y.Seen)
	})
}

// install renders, checks and installs cfg when it changed.
func (b *Backend) install(ctx context.Context, cfg KeepalivedConfig) error {
	conf, err := Render(cfg)
	if err != nil {
		return err
	}
	instances.Set(float64(len(cfg.Instances)))
	if bytes.Equal(conf, b.installed) {
		return nil
	}
	if err := b.cfg.Check(ctx, conf); err != nil {
		configErrors.Inc()
		b.nodeEvent(ctx, corev1.EventTypeWarning, ReasonConfigInvalid, "keepalived rejects the rendered configuration (kept the previous one): %v", err)
		return fmt.Errorf("check keepalived configuration: %w", err)
	}
	vips := cfg.VIPs()
	if err := Install(b.cfg.RunDir, conf, vips, b.installedVIPs); err != nil {
		return fmt.Errorf("install keepalived configuration: %w", err)
	}
	b.installed, b.installedVIPs = conf, vips
	b.log.V(1).Info("Installed keepalived configuration", "instances", len(cfg.Instances), "addresses", len(vips))
	if b.sup != nil {
		b.sup.Reload()
	}
	return nil
}

// observeMasters reports the addresses this node gained or lost as VRRP
// master: keepalived configures them on the interface.
func (b *Backend) observeMasters(ctx context.Context, st speaker.State, cfg KeepalivedConfig, snap netx.Snapshot) {
	want := map[netip.Addr]heldAddr{}
	perInstance := map[string]bool{}
	for _, in := range cfg.Instances {
		l, ok := snap.LinkByName(in.Interface)
		if !ok {
			continue
		}
		on := map[netip.Addr]bool{}
		for _, p := range l.Prefixes {
			on[p.Addr()] = true
		}
		for _, v := range append([]VIP{in.Anchor}, in.Excluded...) {
			if on[v.IP] {
				want[v.IP] = heldAddr{iface: in.Interface, vrid: strconv.Itoa(in.VRID), family: in.Family}
				perInstance[in.Interface+"/"+strconv.Itoa(in.Family)+"/"+strconv.Itoa(in.VRID)] = true
			}
		}
	}
	anns := map[netip.Addr]speaker.Announcement{}
	for _, a := range st.Announcements {
		anns[a.IP] = a
	}
	for ip, h := range b.held {
		if _, ok := want[ip]; !ok {
			delete(b.held, ip)
			metrics.Announcing.DeleteLabelValues(ip.String(), h.eip, networkv1alpha2.ProtocolVIP, h.iface)
			metrics.ElectionLosses.WithLabelValues(networkv1alpha2.ProtocolVIP).Inc()
		}
	}
	var gained []netip.Addr
	for ip, h := range want {
		if _, ok := b.held[ip]; ok {
			continue
		}
		h.eip = anns[ip].Eip
		b.held[ip] = h
		metrics.Announcing.WithLabelValues(ip.String(), h.eip, networkv1alpha2.ProtocolVIP, h.iface).Set(1)
		metrics.ElectionWins.WithLabelValues(networkv1alpha2.ProtocolVIP).Inc()
		gained = append(gained, ip)
	}
	master.Reset()
	for k := range perInstance {
		p := strings.SplitN(k, "/", 3)
		master.WithLabelValues(p[0], p[1], p[2]).Set(1)
	}
	slices.SortFunc(gained, netip.Addr.Compare)
	for _, ip := range gained {
		h := b.held[ip]
		b.log.Info("VRRP master", "ip", ip.String(), "interface", h.iface, "vrid", h.vrid)
		for _, svc := range anns[ip].Services {
			b.serviceEvent(ctx, svc, corev1.EventTypeNormal, ReasonMaster, "%s is the VRRP master of %s (VRID %s on %s)", b.cfg.Node, ip, h.vrid, h.iface)
		}
	}
}

// observeStatus reports the supervisor's status: keepalived exits and a
// supervisor that does not run.
func (b *Backend) observeStatus(ctx context.Context) {
	st, running, err := ReadStatus(b.cfg.RunDir)
	if err != nil {
		b.log.V(1).Info("Cannot read the keepalived supervisor status", "error", err.Error())
		return
	}
	up := running && st.State == StateRunning
	keepalivedUp.Set(map[bool]float64{true: 1}[up])
	if b.statusSeen && st.Exits > b.status.Exits && st.Starts >= b.status.Starts {
		n := st.Exits - b.status.Exits
		keepalivedExits.Add(float64(n))
		b.nodeEvent(ctx, corev1.EventTypeWarning, ReasonKeepalivedExited, "keepalived ended (%s); restarted with back-off%s",
			st.LastExit, removedText(st.Removed))
	}
	if b.statusSeen && st.Reloads > b.status.Reloads && st.Starts == b.status.Starts {
		keepalivedReloads.Add(float64(st.Reloads - b.status.Reloads))
	}
	b.mu.Lock()
	shut := b.shut
	b.mu.Unlock()
	if b.statusSeen && b.supAlive && !running && !shut && b.cfg.Sidecar {
		b.nodeEvent(ctx, corev1.EventTypeWarning, ReasonKeepalivedDown, "the keepalived sidecar stopped running (run dir %s)", b.cfg.RunDir)
	}
	if !b.statusSeen && !running && b.cfg.Sidecar {
		b.log.Info("Waiting for the keepalived sidecar (`openelb speaker keepalived`) to run on the run dir", "runDir", b.cfg.RunDir)
	}
	b.status, b.statusSeen, b.supAlive = st, true, running
}

func removedText(r []string) string {
	if len(r) == 0 {
		return ""
	}
	return "; removed the addresses it left: " + strings.Join(r, ", ")
}

// reportWarnings logs (and records as an Event on the Node) the reasons a
// group is not configured here, when they change.
func (b *Backend) reportWarnings(ctx context.Context, w []string) {
	s := strings.Join(w, "; ")
	if s == b.warned {
		return
	}
	b.warned = s
	if s == "" {
		return
	}
	b.log.Info("Some VRRP groups are not configured on this node", "reasons", w)
	b.nodeEvent(ctx, corev1.EventTypeWarning, ReasonNotConfigured, "VRRP groups not configured on this node: %s", s)
}

// reportUnplanned records an Event on each Service whose address the
// writer could not place, when that changes.
func (b *Backend) reportUnplanned(ctx context.Context, st speaker.State, un map[netip.Addr]string) {
	unplanned.Set(float64(len(un)))
	if maps.Equal(un, b.unplanned) {
		return
	}
	for _, a := range st.Announcements {
		why, ok := un[a.IP]
		if !ok || b.unplanned[a.IP] == why {
			continue
		}
		for _, svc := range a.Services {
			b.serviceEvent(ctx, svc, corev1.EventTypeWarning, ReasonUnplanned, "%s is not announced: %s", a.IP, why)
		}
	}
	b.unplanned = un
}

func (b *Backend) serviceEvent(ctx context.Context, key types.NamespacedName, typ, reason, msg string, args ...any) {
	if b.cfg.Events == nil || b.reader == nil {
		return
	}
	var svc corev1.Service
	if err := b.reader.Get(ctx, key, &svc); err != nil {
		return
	}
	b.cfg.Events.Eventf(&svc, typ, reason, msg, args...)
}

func (b *Backend) nodeEvent(ctx context.Context, typ, reason, msg string, args ...any) {
	b.log.Info(fmt.Sprintf(msg, args...), "reason", reason)
	if b.cfg.Events == nil || b.reader == nil {
		return
	}
	var n corev1.Node
	if err := b.reader.Get(ctx, types.NamespacedName{Name: b.cfg.Node}, &n); err != nil {
		return
	}
	b.cfg.Events.Eventf(&n, typ, reason, msg, args...)
}

// CheckConfig runs `keepalived -t` on conf.
func CheckConfig(ctx context.Context, keepalived, dir string, conf []byte) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, ".check-*.conf")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(conf); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(cctx, keepalived, "-t", "-f", f.Name()).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s -t: %w: %s", filepath.Base(keepalived), err, strings.TrimSpace(string(out)))
	}
	return nil
}
