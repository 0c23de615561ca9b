package kube

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	networkv1alpha2 "github.com/openelb/openelb-operator/api/network/v1alpha2"
	"github.com/openelb/openelb-operator/internal/ipam"
)

const class = "openelb.kubesphere.io/lb"

func svc(mods ...func(*corev1.Service)) *corev1.Service {
	s := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "testsvc", Namespace: "default", Annotations: map[string]string{}},
		Spec: corev1.ServiceSpec{
			Type:  corev1.ServiceTypeLoadBalancer,
			Ports: []corev1.ServicePort{{Port: 80}},
		},
	}
	for _, m := range mods {
		m(s)
	}
	return s
}

func ann(k, v string) func(*corev1.Service) { return func(s *corev1.Service) { s.Annotations[k] = v } }
func openelb(s *corev1.Service) {
	s.Annotations[networkv1alpha2.AnnotationOpenELB] = networkv1alpha2.ValueOpenELB
}
func withClass(c string) func(*corev1.Service) {
	return func(s *corev1.Service) { s.Spec.LoadBalancerClass = &c }
}

// TestOurs ports the Service-selection cases of OpenELB's
// TestManager_ConstructAllocateV6 and adds loadBalancerClass.
func TestOurs(t *testing.T) {
	tests := []struct {
		name      string
		svc       *corev1.Service
		classless bool
		want      bool
	}{
		{"clusterIP service", svc(openelb, func(s *corev1.Service) { s.Spec.Type = corev1.ServiceTypeClusterIP }), false, false},
		{"loadbalancer service but no specify openelb annotions completely", svc(), false, false},
		{"loadbalancer service - default eip", svc(openelb), false, true},
		{"wrong annotation value", svc(ann(networkv1alpha2.AnnotationOpenELB, "metallb")), false, false},
		{"our loadBalancerClass", svc(withClass(class)), false, true},
		{"our loadBalancerClass wins over a missing annotation", svc(withClass(class)), false, true},
		{"another loadBalancerClass is never ours", svc(withClass("metallb.io/metallb"), openelb), true, false},
		{"class-less with allocateClassless", svc(), true, true},
		{"NodePort is never ours", svc(openelb, func(s *corev1.Service) { s.Spec.Type = corev1.ServiceTypeNodePort }), true, false},
	}
	for _, tt := range tests {
		c := Config{LoadBalancerClass: class, AllocateClassless: tt.classless}
		if got := c.Ours(tt.svc); got != tt.want {
			t.Errorf("%s: Ours = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestServiceRequest(t *testing.T) {
	dual := corev1.IPFamilyPolicyRequireDualStack
	prefer := corev1.IPFamilyPolicyPreferDualStack
	single := corev1.IPFamilyPolicySingleStack
	addrs := func(ss ...string) []netip.Addr {
		var out []netip.Addr
		for _, s := range ss {
			out = append(out, netip.MustParseAddr(s))
		}
		return out
	}
	tests := []struct {
		name     string
		svc      *corev1.Service
		eips     []string
		addrs    []netip.Addr
		families []ipam.FamilyRequest
		key      string
		local    bool
		wantErr  string
	}{
		{name: "loadbalancer service with openelb annotions completely", svc: svc(openelb, ann(networkv1alpha2.AnnotationEip, "eip")), eips: []string{"eip"}},
		{name: "specify service spec.loadbalanceIP", svc: svc(openelb, func(s *corev1.Service) { s.Spec.LoadBalancerIP = "2001:0db8::1" }), addrs: addrs("2001:db8::1")},
		{name: "specify service annotation.loadbalanceIP 1", svc: svc(openelb, ann(networkv1alpha2.AnnotationRequestedIP, "2001:0db8::1")), addrs: addrs("2001:db8::1")},
		{name: "specify service annotation.loadbalanceIP 2: the annotation wins over spec.loadBalancerIP", svc: svc(openelb, ann(networkv1alpha2.AnnotationRequestedIP, "203.0.113.50"), func(s *corev1.Service) { s.Spec.LoadBalancerIP = "203.0.113.60" }), addrs: addrs("203.0.113.50")},
		{name: "dual-stack annotation wins over both", svc: svc(ann(networkv1alpha2.AnnotationRequestedIPs, "203.0.113.5,2001:db8::5"), ann(networkv1alpha2.AnnotationRequestedIP, "203.0.113.50")), addrs: addrs("203.0.113.5", "2001:db8::5")},
		{name: "two Eips", svc: svc(ann(networkv1alpha2.AnnotationEip, "v4, v6")), eips: []string{"v4", "v6"}},
		{name: "empty annotations are ignored", svc: svc(ann(networkv1alpha2.AnnotationEip, " "), ann(networkv1alpha2.AnnotationRequestedIP, "")), eips: nil},
		{name: "sharing key and Local", svc: svc(ann(networkv1alpha2.AnnotationSharedIP, "web"), func(s *corev1.Service) { s.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyLocal }), key: "web", local: true},
		{name: "RequireDualStack", svc: svc(func(s *corev1.Service) {
			s.Spec.IPFamilyPolicy = &dual
			s.Spec.IPFamilies = []corev1.IPFamily{corev1.IPv6Protocol, corev1.IPv4Protocol}
		}), families: []ipam.FamilyRequest{{Family: ipam.IPv6}, {Family: ipam.IPv4}}},
		{name: "PreferDualStack in a single-stack cluster", svc: svc(func(s *corev1.Service) {
			s.Spec.IPFamilyPolicy = &prefer
			s.Spec.IPFamilies = []corev1.IPFamily{corev1.IPv4Protocol}
		}), families: []ipam.FamilyRequest{{Family: ipam.IPv4}, {Family: ipam.IPv6, Optional: true}}},
		{name: "SingleStack IPv6", svc: svc(func(s *corev1.Service) {
			s.Spec.IPFamilyPolicy = &single
			s.Spec.IPFamilies = []corev1.IPFamily{corev1.IPv6Protocol}
		}), families: []ipam.FamilyRequest{{Family: ipam.IPv6}}},
		{name: "bad requested IP", svc: svc(ann(networkv1alpha2.AnnotationRequestedIP, "203.0.113.300")), wantErr: "annotation eip.openelb.kubesphere.io/v1alpha1: invalid annotation"},
		{name: "bad loadBalancerIP", svc: svc(func(s *corev1.Service) { s.Spec.LoadBalancerIP = "x" }), wantErr: "spec.loadBalancerIP: invalid annotation"},
		{name: "bad dual-stack list", svc: svc(ann(networkv1alpha2.AnnotationRequestedIPs, "203.0.113.5,203.0.113.6")), wantErr: "two IPv4 addresses"},
		{name: "bad Eip list", svc: svc(ann(networkv1alpha2.AnnotationEip, "a,b,c")), wantErr: "at most two Eip names"},
		{name: "long key", svc: svc(ann(networkv1alpha2.AnnotationSharedIP, strings.Repeat("k", 254))), wantErr: "longer than 253"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ServiceRequest(tt.svc, nil)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !errors.Is(err, ipam.ErrInvalidAnnotation) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got.Eips, tt.eips) || !reflect.DeepEqual(got.Addrs, tt.addrs) || got.SharingKey != tt.key || got.Local != tt.local {
				t.Errorf("got eips %v addrs %v key %q local %v", got.Eips, got.Addrs, got.SharingKey, got.Local)
			}
			if !reflect.DeepEqual(got.Families, tt.families) {
				t.Errorf("families %v, want %v", got.Families, tt.families)
			}
			if got.Key != (ipam.ServiceKey{Namespace: "default", Name: "testsvc"}) || len(got.Ports) != 1 || got.Ports[0] != (ipam.Port{Protocol: "TCP", Port: 80}) {
				t.Errorf("key %v ports %v", got.Key, got.Ports)
			}
		})
	}
}

func TestEipPool(t *testing.T) {
	now := metav1.NewTime(time.Unix(100, 0))
	e := &networkv1alpha2.Eip{
		ObjectMeta: metav1.ObjectMeta{Name: "eip-pool", CreationTimestamp: now, DeletionTimestamp: &now,
			Annotations: map[string]string{networkv1alpha2.AnnotationDefaultEip: "True"}},
		Spec: networkv1alpha2.EipSpec{Address: "192.168.1.240-192.168.1.250", Disable: true, Priority: 3, Namespaces: []string{"a"}, NamespaceSelector: map[string]string{"k": "v"}},
	}
	p, err := EipPool(e)
	if err != nil {
		t.Fatal(err)
	}
	if p.Name != "eip-pool" || p.Range.String() != "192.168.1.240-192.168.1.250" || !p.Default || !p.Disabled || !p.Deleting || p.Priority != 3 || !p.Created.Equal(now.Time) || p.Namespaces[0] != "a" || p.NamespaceSelector["k"] != "v" {
		t.Errorf("EipPool = %+v", p)
	}
	e.Spec.Address = "nope"
	if _, err := EipPool(e); !errors.Is(err, ipam.ErrInvalidAddress) {
		t.Errorf("bad address: %v", err)
	}
}

func TestHintsAndIngress(t *testing.T) {
	s := svc(ann(networkv1alpha2.AnnotationAllocatedFrom, "v4,v6"), func(s *corev1.Service) {
		s.Labels = map[string]string{networkv1alpha2.LabelEip: "legacy"}
		s.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: "203.0.113.5"}, {Hostname: "x"}, {IP: "2001:db8::5"}, {IP: "bad"}}
	})
	if got := PoolHints(s); !reflect.DeepEqual(got, []string{"v4", "v6", "legacy"}) {
		t.Errorf("PoolHints = %v", got)
	}
	if got := IngressAddrs(s); fmt.Sprint(got) != "[203.0.113.5 2001:db8::5]" {
		t.Errorf("IngressAddrs = %v", got)
	}
	if !HasMarkers(s) || HasMarkers(svc()) {
		t.Error("HasMarkers")
	}
}

func TestPatch(t *testing.T) {
	vip := corev1.LoadBalancerIPModeVIP
	proxy := corev1.LoadBalancerIPModeProxy
	a := []ipam.Assigned{{Addr: netip.MustParseAddr("203.0.113.5"), Pool: "v4"}, {Addr: netip.MustParseAddr("2001:db8::5"), Pool: "v6"}}
	assigned := func(s *corev1.Service) {
		s.Annotations[networkv1alpha2.AnnotationAllocatedFrom] = "v4,v6"
		s.Labels = map[string]string{networkv1alpha2.LabelEip: "v4"}
		s.Finalizers = []string{"other", networkv1alpha2.FinalizerService}
		s.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: "203.0.113.5", IPMode: &vip}, {IP: "2001:db8::5", IPMode: &vip}}
	}
	tests := []struct {
		name string
		svc  *corev1.Service
		d    Desired
		want string
	}{
		{name: "first assignment: one patch with everything", svc: svc(), d: Desired{Addrs: a, Finalizer: true},
			want: `{"metadata":{"annotations":{"openelb.kubesphere.io/allocated-from":"v4,v6"},"finalizers":["finalizer.lb.kubesphere.io/v1alpha1"],"labels":{"eip.openelb.kubesphere.io/v1alpha2":"v4"}},"status":{"loadBalancer":{"ingress":[{"ip":"203.0.113.5","ipMode":"VIP"},{"ip":"2001:db8::5","ipMode":"VIP"}]}}}`},
		{name: "already assigned: no write", svc: svc(assigned), d: Desired{Addrs: a, Finalizer: true}, want: ``},
		{name: "an apiserver without ipMode: no write", svc: svc(assigned, func(s *corev1.Service) {
			s.Status.LoadBalancer.Ingress[0].IPMode = nil
			s.Status.LoadBalancer.Ingress[1].IPMode = nil
		}), d: Desired{Addrs: a, Finalizer: true}, want: ``},
		{name: "ipMode Proxy is corrected", svc: svc(assigned, func(s *corev1.Service) { s.Status.LoadBalancer.Ingress[0].IPMode = &proxy }), d: Desired{Addrs: a, Finalizer: true},
			want: `{"status":{"loadBalancer":{"ingress":[{"ip":"203.0.113.5","ipMode":"VIP"},{"ip":"2001:db8::5","ipMode":"VIP"}]}}}`},
		{name: "release keeps only our finalizer out", svc: svc(assigned), d: Desired{},
			want: `{"metadata":{"$deleteFromPrimitiveList/finalizers":["finalizer.lb.kubesphere.io/v1alpha1"],"annotations":{"openelb.kubesphere.io/allocated-from":null},"labels":{"eip.openelb.kubesphere.io/v1alpha2":null}},"status":{"loadBalancer":{"ingress":null}}}`},
		{name: "pending: finalizer without address", svc: svc(), d: Desired{Finalizer: true},
			want: `{"metadata":{"finalizers":["finalizer.lb.kubesphere.io/v1alpha1"]}}`},
		{name: "nothing to release", svc: svc(), d: Desired{}, want: ``},
		{name: "an Eip name longer than a label value: annotation only", svc: svc(),
			d:    Desired{Addrs: []ipam.Assigned{{Addr: netip.MustParseAddr("203.0.113.5"), Pool: strings.Repeat("e", 64)}}},
			want: `{"metadata":{"annotations":{"openelb.kubesphere.io/allocated-from":"` + strings.Repeat("e", 64) + `"}},"status":{"loadBalancer":{"ingress":[{"ip":"203.0.113.5","ipMode":"VIP"}]}}}`},
	}
	for _, tt := range tests {
		got := string(Patch(tt.svc, tt.d))
		if got != tt.want {
			t.Errorf("%s:\n got %s\nwant %s", tt.name, got, tt.want)
		}
		if got != "" && !json.Valid([]byte(got)) {
			t.Errorf("%s: invalid JSON", tt.name)
		}
	}
}
