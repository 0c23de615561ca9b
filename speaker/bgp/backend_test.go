package bgp

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/record"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	networkv1alpha2 "github.com/openelb/openelb-operator/api/network/v1alpha2"
	"github.com/openelb/openelb-operator/internal/scheme"
	"github.com/openelb/openelb-operator/speaker"
)

func node(name, addr string, labels map[string]string) *corev1.Node {
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}
	n.Status.Addresses = []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: addr}}
	return n
}

// TestBackendStatus drives the Backend's configuration and status passes
// against a fake API and a gobgp router on loopback: the entries and
// conditions are written once, never again while nothing changes, the
// password never shows, entries of deleted Nodes go, and Shutdown removes
// this node's entries.
func TestBackendStatus(t *testing.T) {
	ctx := context.Background()
	r := newTestRouter(t, routerAS, "10.0.0.1")
	r.addNeighbor("127.0.0.2", speakerAS, "s3cret")
	conf := bgpConf("default", func(c *networkv1alpha2.BgpConf) { c.Spec.ListenPort = -1 }) // dial only: nothing listens in the test's namespace
	peer := bgpPeer("tor", "127.0.0.1", func(p *networkv1alpha2.BgpPeer) {
		p.Spec.Transport = &networkv1alpha2.Transport{LocalAddress: "127.0.0.2", RemotePort: uint32(r.port)}
		p.Spec.Timers = &networkv1alpha2.Timers{Config: &networkv1alpha2.TimersConfig{ConnectRetry: "1", HoldTime: "9", KeepaliveInterval: "3"}}
		p.Spec.AuthPasswordSecretRef = &networkv1alpha2.SecretKeyRef{Name: "pw"}
		p.Status.NodesPeerStatus = map[string]networkv1alpha2.NodePeerStatus{"gone": {PeerState: networkv1alpha2.PeerState{SessionState: "ESTABLISHED"}}}
	})
	other := bgpPeer("elsewhere", "127.0.0.9", func(p *networkv1alpha2.BgpPeer) {
		p.Spec.NodeSelector = &metav1.LabelSelector{MatchLabels: map[string]string{"rack": "r2"}}
	})
	cni := bgpPeer("calico", "127.0.0.8", func(p *networkv1alpha2.BgpPeer) { p.Labels = map[string]string{networkv1alpha2.LabelCNI: "calico"} })
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "openelb-system", Name: "pw"}, Data: map[string][]byte{"password": []byte("s3cret")}}
	writes := 0
	c := fake.NewClientBuilder().WithScheme(scheme.New()).
		WithObjects(conf, peer, other, cni, secret, node("node1", "198.51.100.11", map[string]string{"rack": "r1"}), node("node2", "198.51.100.12", nil)).
		WithStatusSubresource(&networkv1alpha2.BgpConf{}, &networkv1alpha2.BgpPeer{}).
		WithInterceptorFuncs(interceptor.Funcs{SubResourcePatch: func(ctx context.Context, c client.Client, sub string, o client.Object, p client.Patch, opts ...client.SubResourcePatchOption) error {
			writes++
			return c.SubResource(sub).Patch(ctx, o, p, opts...)
		}}).Build()
	events := record.NewFakeRecorder(100)
	b, err := NewBackend(BackendConfig{Node: "node1", Namespace: "openelb-system"}, testr.New(t))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = b.Shutdown(ctx) }()
	b.Setup(c, c, events, nil)
	if err := b.Apply(ctx, speaker.State{Self: "node1",
		Nodes:         map[string]speaker.NodeInfo{"node1": {Name: "node1", Addresses: []netip.Addr{netip.MustParseAddr("198.51.100.11")}}},
		Announcements: []speaker.Announcement{{IP: netip.MustParseAddr("203.0.113.10"), Nodes: []string{"node2", "node1"}}}}); err != nil {
		t.Fatal(err)
	}
	if err := b.configure(ctx); err != nil {
		t.Fatal(err)
	}
	wantRIB(t, r, familyV4, map[string][]string{"203.0.113.10/32": {"198.51.100.11"}})

	var p networkv1alpha2.BgpPeer
	eventually(t, 15*time.Second, "node1's entry established with one route advertised", func() (bool, string) {
		b.advDirty.Store(true)
		if err := b.writeStatus(ctx); err != nil {
			return false, err.Error()
		}
		if err := c.Get(ctx, client.ObjectKey{Name: "tor"}, &p); err != nil {
			return false, err.Error()
		}
		e := p.Status.NodesPeerStatus["node1"]
		return e.PeerState.SessionState == "ESTABLISHED" && e.PeerState.AdvertisedRoutes == 1, fmt.Sprintf("%+v", p.Status)
	})
	e := p.Status.NodesPeerStatus["node1"]
	if e.PeerState.LocalAs != speakerAS || e.PeerState.PeerAs != routerAS || e.TimersState.HoldTime != "9" || e.TimersState.Uptime == "" {
		t.Errorf("node1 entry %+v", e)
	}
	if _, ok := p.Status.NodesPeerStatus["gone"]; ok {
		t.Error("the entry of a Node that does not exist was kept")
	}
	raw, _ := json.Marshal(p.Status)
	if strings.Contains(string(raw), "s3cret") {
		t.Errorf("the password shows in the status: %s", raw)
	}
	if c := meta.FindStatusCondition(p.Status.Conditions, ConditionEstablished); c == nil || c.Message != "1/1 nodes established" {
		t.Errorf("Established condition: %+v", p.Status.Conditions)
	}
	var o networkv1alpha2.BgpPeer
	if err := c.Get(ctx, client.ObjectKey{Name: "elsewhere"}, &o); err != nil {
		t.Fatal(err)
	}
	if len(o.Status.NodesPeerStatus) != 0 {
		t.Errorf("a BgpPeer that does not select node1 got an entry: %+v", o.Status)
	}
	if cc := meta.FindStatusCondition(o.Status.Conditions, ConditionEstablished); cc == nil || cc.Reason != ReasonNoSpeakers {
		t.Errorf("elsewhere conditions %+v", o.Status.Conditions)
	}
	if err := c.Get(ctx, client.ObjectKey{Name: "calico"}, &o); err != nil {
		t.Fatal(err)
	}
	if len(o.Status.Conditions) != 0 || len(o.Status.NodesPeerStatus) != 0 {
		t.Errorf("the CNI's BgpPeer got a status: %+v", o.Status)
	}
	var cf networkv1alpha2.BgpConf
	if err := c.Get(ctx, client.ObjectKey{Name: "default"}, &cf); err != nil {
		t.Fatal(err)
	}
	if got := cf.Status.NodesConfStatus["node1"]; got.As != speakerAS || got.RouterId != "198.51.100.11" {
		t.Errorf("BgpConf nodesConfStatus %+v", cf.Status)
	}

	// Nothing changes: passes write nothing.
	before := writes
	for range 3 {
		b.advDirty.Store(true)
		if err := b.writeStatus(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if writes != before {
		t.Errorf("%d status writes while nothing changed", writes-before)
	}

	// A broken policy: condition and one Event; BGP keeps running.
	if err := c.Get(ctx, client.ObjectKey{Name: "default"}, &cf); err != nil {
		t.Fatal(err)
	}
	cf.Spec.Policy = "missing"
	if err := c.Update(ctx, &cf); err != nil {
		t.Fatal(err)
	}
	if err := b.configure(ctx); err != nil {
		t.Fatal(err)
	}
	if err := b.writeStatus(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.Get(ctx, client.ObjectKey{Name: "default"}, &cf); err != nil {
		t.Fatal(err)
	}
	if pc := meta.FindStatusCondition(cf.Status.Conditions, ConditionPolicyApplied); pc == nil || pc.Status != metav1.ConditionFalse || pc.Reason != ReasonPolicyNotFound {
		t.Errorf("PolicyApplied: %+v", cf.Status.Conditions)
	}
	select {
	case ev := <-events.Events:
		if !strings.Contains(ev, ReasonPolicyNotFound) {
			t.Errorf("event %q", ev)
		}
	default:
		t.Error("no Event for the missing policy ConfigMap")
	}
	if b.engine.Running() == nil {
		t.Error("a missing policy stopped BGP")
	}

	// Shutdown: CEASE, routes gone, own entries removed.
	if err := b.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	wantRIB(t, r, familyV4, map[string][]string{})
	if err := c.Get(ctx, client.ObjectKey{Name: "tor"}, &p); err != nil {
		t.Fatal(err)
	}
	if _, ok := p.Status.NodesPeerStatus["node1"]; ok {
		t.Error("node1's entry survived Shutdown")
	}
}
