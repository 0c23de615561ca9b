package speaker_test

import (
	"context"
	"encoding/json"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	networkv1alpha2 "github.com/openelb/openelb-operator/api/network/v1alpha2"
	"github.com/openelb/openelb-operator/internal/election"
	"github.com/openelb/openelb-operator/internal/testenv"
	"github.com/openelb/openelb-operator/speaker"
	"github.com/openelb/openelb-operator/speaker/internal/netx"
	"github.com/openelb/openelb-operator/speaker/internal/netx/netxtest"
)

type fakeLiveness struct {
	mu      sync.Mutex
	alive   map[string][]byte
	peers   map[string]netip.AddrPort
	facts   []byte
	changes chan struct{}
	left    bool
}

func (f *fakeLiveness) SetPeers(p map[string]netip.AddrPort) { f.mu.Lock(); f.peers = p; f.mu.Unlock() }
func (f *fakeLiveness) SetFacts(b []byte)                    { f.mu.Lock(); f.facts = b; f.mu.Unlock() }
func (f *fakeLiveness) Alive() map[string][]byte {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[string][]byte{}
	for k, v := range f.alive {
		out[k] = v
	}
	return out
}
func (f *fakeLiveness) Synced() bool                  { return true }
func (f *fakeLiveness) Changes() <-chan struct{}      { return f.changes }
func (f *fakeLiveness) Run(ctx context.Context) error { <-ctx.Done(); return nil }
func (f *fakeLiveness) Leave(time.Duration) error {
	f.mu.Lock()
	f.left = true
	f.mu.Unlock()
	return nil
}
func (f *fakeLiveness) set(alive map[string][]byte) {
	f.mu.Lock()
	f.alive = alive
	f.mu.Unlock()
	f.changes <- struct{}{}
}
func (f *fakeLiveness) hasLeft() bool { f.mu.Lock(); defer f.mu.Unlock(); return f.left }
func (f *fakeLiveness) peer(n string) netip.AddrPort {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.peers[n]
}
func (f *fakeLiveness) ownFacts() []byte { f.mu.Lock(); defer f.mu.Unlock(); return f.facts }

type fakeBackend struct {
	mu       sync.Mutex
	last     speaker.State
	applied  int
	shutdown bool
}

func (b *fakeBackend) Protocol() string { return "layer2" }
func (b *fakeBackend) Apply(_ context.Context, s speaker.State) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.last, b.applied = s, b.applied+1
	return nil
}
func (b *fakeBackend) Shutdown(context.Context) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.shutdown = true
	return nil
}
func (b *fakeBackend) Announcers(a speaker.Announcement) []string {
	if w := a.Winner(); w != "" {
		return []string{w}
	}
	return nil
}
func (b *fakeBackend) winner(ip string) (string, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, a := range b.last.Announcements {
		if a.IP.String() == ip {
			return a.Winner(), true
		}
	}
	return "", false
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestSpeakerCore runs the core against a real kube-apiserver: API changes
// reach the backend at once, and the announcer is recorded on the Service
// (annotation and Event) by the announcing node only.
func TestSpeakerCore(t *testing.T) {
	env, err := testenv.Start(testenv.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = env.Stop() }()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c := env.Client

	const vip = "203.0.113.20"
	nodes := []string{"node1", "node2", "node3"}
	self := election.Rank(vip, nodes)[0]
	for i, n := range nodes {
		node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: n}}
		if err := c.Create(ctx, node); err != nil {
			t.Fatal(err)
		}
		node.Status = corev1.NodeStatus{
			Addresses:  []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: netip.AddrFrom4([4]byte{198, 51, 100, byte(11 + i)}).String()}},
			Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}},
		}
		if err := c.Status().Update(ctx, node); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Create(ctx, &networkv1alpha2.Eip{ObjectMeta: metav1.ObjectMeta{Name: "eip-pool"},
		Spec: networkv1alpha2.EipSpec{Address: "203.0.113.16-203.0.113.31", Protocol: "layer2", Interface: "eth0"}}); err != nil {
		t.Fatal(err)
	}
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "layer2-svc"},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, Ports: []corev1.ServicePort{{Port: 80}}}}
	if err := c.Create(ctx, svc); err != nil {
		t.Fatal(err)
	}
	svc.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: vip}}
	if err := c.Status().Update(ctx, svc); err != nil {
		t.Fatal(err)
	}

	mgr, err := ctrl.NewManager(env.Config, ctrl.Options{Scheme: env.Scheme, Metrics: metricsserver.Options{BindAddress: "0"},
		Cache: cache.Options{DefaultTransform: speaker.Transform}})
	if err != nil {
		t.Fatal(err)
	}
	okFacts, _ := json.Marshal(speaker.Facts{"eip-pool": {Interface: "eth0", OK: true}})
	live := &fakeLiveness{changes: make(chan struct{}, 1), alive: map[string][]byte{}}
	for _, n := range nodes {
		if n != self {
			live.alive[n] = okFacts
		}
	}
	nx := netxtest.New(netx.Snapshot{
		Links:  []netx.Link{netxtest.Link(1, "lo", "", "127.0.0.1/8"), netxtest.Link(2, "eth0", "02:00:00:00:01:11", "198.51.100.11/24")},
		Routes: []netx.Route{netxtest.Route("0.0.0.0/0", 2), netxtest.Route("198.51.100.0/24", 2)},
	})
	be := &fakeBackend{}
	log := testr.New(t)
	rec := speaker.NewRecorder(self, mgr.GetCache(), mgr.GetClient(), mgr.GetEventRecorderFor("openelb-speaker"),
		map[string]speaker.Reporter{"layer2": be}, log)
	sp := speaker.New(speaker.Config{Node: self, Backends: []speaker.Backend{be}, Liveness: live, LivenessPort: 7946,
		Netx: nx, Recorder: rec}, log)
	if err := sp.SetupWithManager(ctx, mgr); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	mctx, stop := context.WithCancel(ctx)
	go func() { done <- mgr.Start(mctx) }()

	waitFor(t, "the address at the backend, elected "+self, func() bool { w, ok := be.winner(vip); return ok && w == self })
	if p := live.peer(nodes[0]); self != nodes[0] && p != netip.MustParseAddrPort("198.51.100.11:7946") {
		t.Errorf("peer address of node1 = %v", p)
	}
	var f speaker.Facts
	if err := json.Unmarshal(live.ownFacts(), &f); err != nil || !f["eip-pool"].OK || f["eip-pool"].Interface != "eth0" {
		t.Errorf("own facts sent to peers: %s (%v)", live.ownFacts(), err)
	}
	key := client.ObjectKeyFromObject(svc)
	waitFor(t, "the announcer annotation", func() bool {
		var s corev1.Service
		return c.Get(ctx, key, &s) == nil && s.Annotations[networkv1alpha2.AnnotationAnnouncer] == self
	})
	waitFor(t, "the AnnouncerChanged Event", func() bool {
		var evs corev1.EventList
		if err := c.List(ctx, &evs, client.InNamespace("default")); err != nil {
			return false
		}
		for _, e := range evs.Items {
			if e.InvolvedObject.Name == "layer2-svc" && e.Reason == speaker.ReasonAnnouncerChanged && e.Message == "Announced by "+self {
				return true
			}
		}
		return false
	})

	// Another speaker (with a different view for a moment) writes its own
	// value: the recording node restores the right one without waiting for
	// a new decision.
	var cur corev1.Service
	if err := c.Get(ctx, key, &cur); err != nil {
		t.Fatal(err)
	}
	cur.Annotations[networkv1alpha2.AnnotationAnnouncer] = "someone-else"
	if err := c.Update(ctx, &cur); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the announcer annotation restored", func() bool {
		var s corev1.Service
		return c.Get(ctx, key, &s) == nil && s.Annotations[networkv1alpha2.AnnotationAnnouncer] == self
	})

	// Self NotReady: the address moves to the next node at once.
	var n corev1.Node
	if err := c.Get(ctx, client.ObjectKey{Name: self}, &n); err != nil {
		t.Fatal(err)
	}
	n.Status.Conditions[0].Status = corev1.ConditionFalse
	if err := c.Status().Update(ctx, &n); err != nil {
		t.Fatal(err)
	}
	next := election.Rank(vip, nodes)[1]
	waitFor(t, "the address elected to "+next, func() bool { w, _ := be.winner(vip); return w == next })

	// A peer's speaker dies: the decision follows the liveness change.
	alive := map[string][]byte{}
	for _, x := range nodes {
		if x != self && x != next {
			alive[x] = okFacts
		}
	}
	live.set(alive)
	third := election.Rank(vip, nodes)[2]
	waitFor(t, "the address elected to "+third, func() bool { w, _ := be.winner(vip); return w == third })

	// The interface goes away: self's facts are no longer OK.
	n.Status.Conditions[0].Status = corev1.ConditionTrue
	if err := c.Status().Update(ctx, &n); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the address back at "+self, func() bool { w, _ := be.winner(vip); return w == self })
	nx.Set(netx.Snapshot{Links: []netx.Link{netxtest.Link(1, "lo", "", "127.0.0.1/8")}})
	waitFor(t, "self no longer eligible", func() bool { w, _ := be.winner(vip); return w == third })

	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if !be.shutdown || !live.hasLeft() {
		t.Fatalf("stop did not hand over: shutdown %v, left %v", be.shutdown, live.hasLeft())
	}
}
