package api_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	networkv1alpha1 "github.com/openelb/openelb-operator/api/network/v1alpha1"
	networkv1alpha2 "github.com/openelb/openelb-operator/api/network/v1alpha2"
	operatorv1alpha1 "github.com/openelb/openelb-operator/api/operator/v1alpha1"
)

func kubectl(t *testing.T, args ...string) string {
	t.Helper()
	k := env.ControlPlane.KubeCtl()
	stdout, stderr, err := k.Run(args...)
	out, _ := readAll(stdout)
	errOut, _ := readAll(stderr)
	if err != nil {
		t.Fatalf("kubectl %s: %v\n%s%s", strings.Join(args, " "), err, out, errOut)
	}
	return out
}

func readAll(r interface{ Read([]byte) (int, error) }) (string, error) {
	if r == nil {
		return "", nil
	}
	var sb strings.Builder
	buf := make([]byte, 4096)
	for {
		n, err := r.Read(buf)
		sb.Write(buf[:n])
		if err != nil {
			return sb.String(), nil
		}
	}
}

func TestCRDsInstalled(t *testing.T) {
	ctx := context.Background()
	want := map[string]struct {
		versions []string
		storage  string
		webhook  bool
	}{
		"eips.network.kubesphere.io":              {[]string{"v1alpha1", "v1alpha2"}, "v1alpha2", true},
		"bgpconfs.network.kubesphere.io":          {[]string{"v1alpha1", "v1alpha2"}, "v1alpha2", true},
		"bgppeers.network.kubesphere.io":          {[]string{"v1alpha1", "v1alpha2"}, "v1alpha2", true},
		"openelbs.operator.openelb.kubesphere.io": {[]string{"v1alpha1"}, "v1alpha1", false},
	}
	for name, w := range want {
		var crd apiextensionsv1.CustomResourceDefinition
		if err := env.Client.Get(ctx, client.ObjectKey{Name: name}, &crd); err != nil {
			t.Fatalf("get CRD %s: %v", name, err)
		}
		if crd.Spec.Scope != apiextensionsv1.ClusterScoped {
			t.Errorf("%s: scope %s, want Cluster", name, crd.Spec.Scope)
		}
		var served []string
		for _, v := range crd.Spec.Versions {
			if v.Served {
				served = append(served, v.Name)
			}
			if v.Storage && v.Name != w.storage {
				t.Errorf("%s: storage version %s, want %s", name, v.Name, w.storage)
			}
		}
		if strings.Join(served, ",") != strings.Join(w.versions, ",") {
			t.Errorf("%s: served %v, want %v", name, served, w.versions)
		}
		gotWebhook := crd.Spec.Conversion != nil && crd.Spec.Conversion.Strategy == apiextensionsv1.WebhookConverter
		if gotWebhook != w.webhook {
			t.Errorf("%s: conversion webhook %v, want %v", name, gotWebhook, w.webhook)
		}
		established := false
		for _, c := range crd.Status.Conditions {
			if c.Type == apiextensionsv1.Established && c.Status == apiextensionsv1.ConditionTrue {
				established = true
			}
		}
		if !established {
			t.Errorf("%s: not Established", name)
		}
		if strings.HasPrefix(name, "eips.") && (len(crd.Spec.Names.Categories) != 1 || crd.Spec.Names.Categories[0] != "networking") {
			t.Errorf("eips: categories %v, want [networking]", crd.Spec.Names.Categories)
		}
	}
}

// The printed table must start with OpenELB's columns: NAME CIDR USAGE TOTAL.
func TestEipPrinterColumns(t *testing.T) {
	applyFile(t, "compat-bgp.yaml")
	for _, res := range []string{"eips.v1alpha2.network.kubesphere.io", "eips.v1alpha1.network.kubesphere.io"} {
		out := kubectl(t, "get", res)
		header := strings.Fields(strings.SplitN(out, "\n", 2)[0])
		if strings.Join(header, " ") != "NAME CIDR USAGE TOTAL" {
			t.Errorf("kubectl get %s header = %q, want NAME CIDR USAGE TOTAL", res, header)
		}
	}
	wide := strings.Fields(strings.SplitN(kubectl(t, "get", "eip", "-o", "wide"), "\n", 2)[0])
	if len(wide) < 5 || strings.Join(wide[:4], " ") != "NAME CIDR USAGE TOTAL" {
		t.Errorf("kubectl get eip -o wide header = %q, want NAME CIDR USAGE TOTAL first and more columns", wide)
	}
	for _, res := range []string{"bgpconf", "bgppeer"} {
		header := strings.Fields(strings.SplitN(kubectl(t, "get", res), "\n", 2)[0])
		if len(header) < 3 {
			t.Errorf("kubectl get %s header = %q, want useful columns", res, header)
		}
	}
}

func applyFile(t *testing.T, name string) {
	t.Helper()
	kubectl(t, "apply", "-f", filepath.Join("testdata", name))
}

// The seed install guides' manifests are applied as they are written.
func TestSeedManifestsAccepted(t *testing.T) {
	ctx := context.Background()
	applyFile(t, "seed-001-layer2-eip.yaml")
	applyFile(t, "seed-002-layer2-eip.yaml")
	kubectl(t, "apply", "-n", "default", "-f", filepath.Join("testdata", "seed-001-layer2-svc.yaml"))

	var eip networkv1alpha2.Eip
	if err := env.Client.Get(ctx, client.ObjectKey{Name: "eip-pool"}, &eip); err != nil {
		t.Fatal(err)
	}
	if eip.Spec.Address != "192.168.1.240-192.168.1.250" || eip.Spec.Protocol != "layer2" || eip.Spec.Interface != "ens33" || eip.Spec.Disable {
		t.Errorf("eip-pool spec = %+v", eip.Spec)
	}
	if eip.Annotations[networkv1alpha2.AnnotationDefaultEip] != "true" {
		t.Errorf("eip-pool annotations = %v", eip.Annotations)
	}
	if err := env.Client.Get(ctx, client.ObjectKey{Name: "layer2-eip"}, &eip); err != nil {
		t.Fatal(err)
	}
	if eip.Spec.Address != "10.0.0.122-10.0.0.123" || eip.Spec.Interface != "ens160" {
		t.Errorf("layer2-eip spec = %+v", eip.Spec)
	}
	// status is the controller's: a user-supplied status block is ignored.
	if eip.Status.PoolSize != 0 || eip.Status.FirstIP != "" {
		t.Errorf("layer2-eip status was taken from the manifest: %+v", eip.Status)
	}
}

func TestCompatManifestsAccepted(t *testing.T) {
	ctx := context.Background()
	applyFile(t, "compat-bgp.yaml")
	applyFile(t, "compat-v1alpha1.yaml")

	var conf networkv1alpha2.BgpConf
	if err := env.Client.Get(ctx, client.ObjectKey{Name: "default"}, &conf); err != nil {
		t.Fatal(err)
	}
	if conf.Spec.As != 50001 || conf.Spec.ListenPort != 17900 || conf.Spec.RouterId != "172.22.0.10" || conf.Spec.AsPerRack["leaf2"] != 4200000001 {
		t.Errorf("BgpConf default spec = %+v", conf.Spec)
	}
	var peer networkv1alpha2.BgpPeer
	if err := env.Client.Get(ctx, client.ObjectKey{Name: "bgp-peer-full"}, &peer); err != nil {
		t.Fatal(err)
	}
	if peer.Spec.Conf.PeerAs != 4200000000 || peer.Spec.Timers.Config.HoldTime != "9" || peer.Spec.AfiSafis[0].AddPaths.Config.SendMax != 10 ||
		peer.Spec.NodeSelector.MatchLabels[networkv1alpha2.LabelRack] != "leaf1" || peer.Spec.Conf.AuthPassword != "s3cret" {
		t.Errorf("BgpPeer bgp-peer-full spec = %+v", peer.Spec)
	}
	var v6 networkv1alpha2.Eip
	if err := env.Client.Get(ctx, client.ObjectKey{Name: "eip-sample-v6"}, &v6); err != nil {
		t.Fatal(err)
	}
}

func TestEipRoundTripBetweenVersions(t *testing.T) {
	ctx := context.Background()
	c := env.Client

	// A v1alpha1 Eip reads back as v1alpha2.
	v1 := &networkv1alpha1.Eip{
		ObjectMeta: metav1.ObjectMeta{Name: "rt-v1"},
		Spec:       networkv1alpha1.EipSpec{Address: "198.18.10.0/28", Protocol: "layer2", Interface: "eth0", Disable: true},
	}
	if err := c.Create(ctx, v1); err != nil {
		t.Fatalf("create v1alpha1 Eip: %v", err)
	}
	var v2 networkv1alpha2.Eip
	if err := c.Get(ctx, client.ObjectKey{Name: "rt-v1"}, &v2); err != nil {
		t.Fatal(err)
	}
	if v2.Spec.Address != "198.18.10.0/28" || v2.Spec.Protocol != "layer2" || v2.Spec.Interface != "eth0" || !v2.Spec.Disable {
		t.Errorf("v1alpha1 Eip read as v1alpha2: %+v", v2.Spec)
	}

	// A v1alpha2 Eip with fields v1alpha1 lacks survives a v1alpha1 update.
	v2 = networkv1alpha2.Eip{
		ObjectMeta: metav1.ObjectMeta{Name: "rt-v2", Annotations: map[string]string{"team": "a"}},
		Spec: networkv1alpha2.EipSpec{Address: "198.18.11.0/28", Priority: 3, Namespaces: []string{"ns1"},
			NamespaceSelector: map[string]string{"tenant": "blue"}},
	}
	if err := c.Create(ctx, &v2); err != nil {
		t.Fatal(err)
	}
	var asV1 networkv1alpha1.Eip
	if err := c.Get(ctx, client.ObjectKey{Name: "rt-v2"}, &asV1); err != nil {
		t.Fatalf("read v1alpha2 Eip as v1alpha1: %v", err)
	}
	if asV1.Spec.Address != "198.18.11.0/28" {
		t.Errorf("as v1alpha1: %+v", asV1.Spec)
	}
	asV1.Spec.Disable = true
	if err := c.Update(ctx, &asV1); err != nil {
		t.Fatalf("update through v1alpha1: %v", err)
	}
	var back networkv1alpha2.Eip
	if err := c.Get(ctx, client.ObjectKey{Name: "rt-v2"}, &back); err != nil {
		t.Fatal(err)
	}
	if !back.Spec.Disable || back.Spec.Priority != 3 || len(back.Spec.Namespaces) != 1 || back.Spec.NamespaceSelector["tenant"] != "blue" {
		t.Errorf("after v1alpha1 update: %+v", back.Spec)
	}
	if _, ok := back.Annotations[networkv1alpha1.ConversionDataAnnotation]; ok || back.Annotations["team"] != "a" {
		t.Errorf("stored annotations = %v: conversion data must not be stored, user annotations kept", back.Annotations)
	}
}

func TestBgpRoundTripBetweenVersions(t *testing.T) {
	ctx := context.Background()
	c := env.Client
	applyFile(t, "compat-v1alpha1.yaml")
	applyFile(t, "compat-bgp.yaml")

	var conf networkv1alpha2.BgpConf
	if err := c.Get(ctx, client.ObjectKey{Name: "default-v1"}, &conf); err != nil {
		t.Fatal(err)
	}
	if conf.Spec.As != 65000 || conf.Spec.RouterId != "172.23.0.1" || conf.Spec.ListenPort != 17900 {
		t.Errorf("v1alpha1 BgpConf as v1alpha2: %+v", conf.Spec)
	}

	var peer networkv1alpha2.BgpPeer
	if err := c.Get(ctx, client.ObjectKey{Name: "peer-v1"}, &peer); err != nil {
		t.Fatal(err)
	}
	if peer.Spec.Conf == nil || peer.Spec.Conf.PeerAs != 65001 || peer.Spec.Conf.NeighborAddress != "172.23.0.254" ||
		peer.Spec.Transport == nil || !peer.Spec.Transport.PassiveMode || peer.Spec.Transport.RemotePort != 179 ||
		len(peer.Spec.AfiSafis) != 1 || peer.Spec.AfiSafis[0].AddPaths.Config.SendMax != 8 ||
		peer.Spec.AfiSafis[0].Config.Family.Afi != "AFI_IP" || !peer.Spec.AfiSafis[0].Config.Enabled {
		t.Errorf("v1alpha1 BgpPeer as v1alpha2: %+v", peer.Spec)
	}

	// The full v1alpha2 peer read and written back through v1alpha1 keeps
	// every field.
	var full networkv1alpha2.BgpPeer
	if err := c.Get(ctx, client.ObjectKey{Name: "bgp-peer-full"}, &full); err != nil {
		t.Fatal(err)
	}
	var asV1 networkv1alpha1.BgpPeer
	if err := c.Get(ctx, client.ObjectKey{Name: "bgp-peer-full"}, &asV1); err != nil {
		t.Fatal(err)
	}
	if asV1.Spec.Config.PeerAs != 4200000000 || asV1.Spec.AddPaths.SendMax != 10 {
		t.Errorf("full peer as v1alpha1: %+v", asV1.Spec)
	}
	asV1.Labels = map[string]string{"touched": "v1alpha1"}
	if err := c.Update(ctx, &asV1); err != nil {
		t.Fatalf("update through v1alpha1: %v", err)
	}
	var back networkv1alpha2.BgpPeer
	if err := c.Get(ctx, client.ObjectKey{Name: "bgp-peer-full"}, &back); err != nil {
		t.Fatal(err)
	}
	a, _ := yaml.Marshal(full.Spec)
	b, _ := yaml.Marshal(back.Spec)
	if string(a) != string(b) {
		t.Errorf("spec changed by a v1alpha1 round trip:\nbefore:\n%s\nafter:\n%s", a, b)
	}
}

// Invalid objects are rejected by the API server with messages that say
// what is wrong.
func TestInvalidObjectsRejected(t *testing.T) {
	tests := []struct {
		name    string
		yaml    string
		message string
	}{
		{"eip unknown protocol", `
apiVersion: network.kubesphere.io/v1alpha2
kind: Eip
metadata: {name: bad-protocol}
spec: {address: 203.0.113.1, protocol: ospf}`, `Unsupported value: "ospf": supported values: "bgp", "layer2", "vip"`},
		{"eip layer2 without interface", `
apiVersion: network.kubesphere.io/v1alpha2
kind: Eip
metadata: {name: bad-l2}
spec: {address: 203.0.113.0/28, protocol: layer2}`, "if protocol is layer2 or vip, interface should not be empty"},
		{"eip vip with empty interface", `
apiVersion: network.kubesphere.io/v1alpha2
kind: Eip
metadata: {name: bad-vip}
spec: {address: 203.0.113.0/28, protocol: vip, interface: ""}`, "if protocol is layer2 or vip, interface should not be empty"},
		{"eip garbage address", `
apiVersion: network.kubesphere.io/v1alpha2
kind: Eip
metadata: {name: bad-addr}
spec: {address: not-an-ip}`, "invalid eip address format"},
		{"eip three-part range", `
apiVersion: network.kubesphere.io/v1alpha2
kind: Eip
metadata: {name: bad-range}
spec: {address: 203.0.113.1-203.0.113.2-203.0.113.3}`, "invalid eip address format"},
		{"eip mixed-family range", `
apiVersion: network.kubesphere.io/v1alpha2
kind: Eip
metadata: {name: bad-family}
spec: {address: 203.0.113.1-2001:db8::1}`, "range of one family"},
		{"eip without address", `
apiVersion: network.kubesphere.io/v1alpha2
kind: Eip
metadata: {name: no-addr}
spec: {protocol: bgp}`, `spec.address: Required value`},
		{"eip bad can_reach", `
apiVersion: network.kubesphere.io/v1alpha2
kind: Eip
metadata: {name: bad-reach}
spec: {address: 203.0.113.1, protocol: layer2, interface: "can_reach:router"}`, "interface must be an interface name of at most 15 characters or can_reach:<IP>"},
		{"v1alpha1 eip layer2 without interface", `
apiVersion: network.kubesphere.io/v1alpha1
kind: Eip
metadata: {name: bad-v1-l2}
spec: {address: 203.0.113.0/28, protocol: layer2}`, "set spec.interface (accepted in v1alpha1 by openelb-operator)"},
		{"v1alpha1 eip IPv6", `
apiVersion: network.kubesphere.io/v1alpha1
kind: Eip
metadata: {name: bad-v1-v6}
spec: {address: "2001:db8::/64"}`, "spec.address: Invalid value"},
		{"bgpconf IPv6 routerId", `
apiVersion: network.kubesphere.io/v1alpha2
kind: BgpConf
metadata: {name: bad-rid}
spec: {as: 65000, routerId: "2001:db8::1"}`, "routerId must be an IPv4 address"},
		{"bgpconf port out of range", `
apiVersion: network.kubesphere.io/v1alpha2
kind: BgpConf
metadata: {name: bad-port}
spec: {as: 65000, listenPort: 70000}`, "spec.listenPort: Invalid value: 70000: spec.listenPort in body should be less than or equal to 65535"},
		{"bgppeer hold time 2", `
apiVersion: network.kubesphere.io/v1alpha2
kind: BgpPeer
metadata: {name: bad-hold}
spec: {conf: {peerAs: 65001, neighborAddress: 198.51.100.1}, timers: {config: {holdTime: "2"}}}`, "holdTime must be 0 or at least 3 seconds"},
		{"bgppeer keepalive not below hold", `
apiVersion: network.kubesphere.io/v1alpha2
kind: BgpPeer
metadata: {name: bad-keepalive}
spec: {conf: {peerAs: 65001, neighborAddress: 198.51.100.1}, timers: {config: {holdTime: "9", keepaliveInterval: "9"}}}`, "keepaliveInterval must be shorter than holdTime"},
		{"bgppeer timer not a number", `
apiVersion: network.kubesphere.io/v1alpha2
kind: BgpPeer
metadata: {name: bad-timer}
spec: {conf: {peerAs: 65001, neighborAddress: 198.51.100.1}, timers: {config: {holdTime: "9s"}}}`, "spec.timers.config.holdTime in body should match"},
		{"bgppeer hostname neighbour", `
apiVersion: network.kubesphere.io/v1alpha2
kind: BgpPeer
metadata: {name: bad-neighbor}
spec: {conf: {peerAs: 65001, neighborAddress: tor1.example}}`, "conf.neighborAddress must be an IP address"},
		{"bgppeer unknown removePrivateAs", `
apiVersion: network.kubesphere.io/v1alpha2
kind: BgpPeer
metadata: {name: bad-rpa}
spec: {conf: {peerAs: 65001, neighborAddress: 198.51.100.1, removePrivateAs: SOME}}`, `Unsupported value: "SOME"`},
		{"second OpenELB with another name", `
apiVersion: operator.openelb.kubesphere.io/v1alpha1
kind: OpenELB
metadata: {name: my-openelb}
spec: {}`, "there is one OpenELB resource per cluster and it must be named 'openelb'"},
		{"OpenELB unknown log format", `
apiVersion: operator.openelb.kubesphere.io/v1alpha1
kind: OpenELB
metadata: {name: openelb}
spec: {logFormat: xml}`, `Unsupported value: "xml": supported values: "json", "console"`},
		{"OpenELB zero controller replicas", `
apiVersion: operator.openelb.kubesphere.io/v1alpha1
kind: OpenELB
metadata: {name: openelb}
spec: {controller: {replicas: 0}}`, "spec.controller.replicas in body should be greater than or equal to 1"},
		{"OpenELB bad log level", `
apiVersion: operator.openelb.kubesphere.io/v1alpha1
kind: OpenELB
metadata: {name: openelb}
spec: {logLevel: verbose}`, "spec.logLevel in body should match"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := &unstructured.Unstructured{}
			if err := yaml.Unmarshal([]byte(tt.yaml), &u.Object); err != nil {
				t.Fatal(err)
			}
			err := env.Client.Create(context.Background(), u)
			if err == nil {
				_ = env.Client.Delete(context.Background(), u)
				t.Fatalf("created, want rejection with %q", tt.message)
			}
			if !apierrors.IsInvalid(err) {
				t.Fatalf("error %v is not Invalid", err)
			}
			if !strings.Contains(err.Error(), tt.message) {
				t.Errorf("error = %q\nwant it to contain %q", err, tt.message)
			}
		})
	}
}

// `spec: {}` is a working install: every default comes from the schema.
func TestOpenELBDefaults(t *testing.T) {
	ctx := context.Background()
	u := &unstructured.Unstructured{}
	if err := yaml.Unmarshal([]byte("apiVersion: operator.openelb.kubesphere.io/v1alpha1\nkind: OpenELB\nmetadata: {name: openelb}\nspec: {}\n"), &u.Object); err != nil {
		t.Fatal(err)
	}
	if err := env.Client.Create(ctx, u); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = env.Client.Delete(ctx, u) })
	var elb operatorv1alpha1.OpenELB
	if err := env.Client.Get(ctx, client.ObjectKey{Name: "openelb"}, &elb); err != nil {
		t.Fatal(err)
	}
	s := elb.Spec
	if s.LogLevel != "info" || s.LogFormat != "json" || s.LoadBalancerClass != operatorv1alpha1.DefaultLoadBalancerClass {
		t.Errorf("top-level defaults: %+v", s)
	}
	if s.Controller.Replicas == nil || *s.Controller.Replicas != 2 {
		t.Errorf("controller.replicas = %v, want 2", s.Controller.Replicas)
	}
	if !operatorv1alpha1.IsEnabled(s.Speaker.Layer2.Enabled, false) || !operatorv1alpha1.IsEnabled(s.Speaker.BGP.Enabled, false) ||
		operatorv1alpha1.IsEnabled(s.Speaker.VIP.Enabled, true) {
		t.Errorf("speaker modes: layer2=%v bgp=%v vip=%v, want true/true/false", s.Speaker.Layer2.Enabled, s.Speaker.BGP.Enabled, s.Speaker.VIP.Enabled)
	}
	if s.Speaker.VIP.AdvertIntervalMillis != 1000 || s.Speaker.LivenessPort != 7946 || s.Speaker.MetricsPort != 50053 {
		t.Errorf("speaker defaults: %+v", s.Speaker)
	}
	if s.Speaker.BGP.ListenPort != nil {
		t.Errorf("bgp.listenPort defaulted to %d; unset must keep OpenELB's meaning (179)", *s.Speaker.BGP.ListenPort)
	}
}
