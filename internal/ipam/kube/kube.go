// Package kube translates between Kubernetes objects (core/v1 Services,
// v1alpha2 Eips) and the pure allocator's types, and computes the single
// patch that brings a Service to its desired state. It imports API types
// only, never a client.
package kube

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation"

	networkv1alpha2 "github.com/openelb/openelb-operator/api/network/v1alpha2"
	"github.com/openelb/openelb-operator/internal/ipam"
)

// Config holds the OpenELB-level settings that decide which Services are
// ours.
type Config struct {
	// LoadBalancerClass is always ours; other classes never are.
	LoadBalancerClass string
	// AllocateClassless makes every class-less LoadBalancer Service ours,
	// even without the lb.kubesphere.io/v1alpha1 annotation.
	AllocateClassless bool
}

// Ours reports whether OpenELB allocates for the Service: type
// LoadBalancer, and either our loadBalancerClass, or no class and the
// OpenELB annotation (or AllocateClassless).
func (c Config) Ours(svc *corev1.Service) bool {
	if svc.Spec.Type != corev1.ServiceTypeLoadBalancer {
		return false
	}
	if cls := svc.Spec.LoadBalancerClass; cls != nil {
		return *cls == c.LoadBalancerClass
	}
	return svc.Annotations[networkv1alpha2.AnnotationOpenELB] == networkv1alpha2.ValueOpenELB || c.AllocateClassless
}

// HasMarkers reports whether the Service carries what an allocation by
// OpenELB leaves: our finalizer, the allocated-from annotation or the Eip
// label (OpenELB 0.6 wrote the label).
func HasMarkers(svc *corev1.Service) bool {
	_, ann := svc.Annotations[networkv1alpha2.AnnotationAllocatedFrom]
	_, lbl := svc.Labels[networkv1alpha2.LabelEip]
	return ann || lbl || slices.Contains(svc.Finalizers, networkv1alpha2.FinalizerService)
}

func annotation(svc *corev1.Service, key string) (string, bool) {
	v, ok := svc.Annotations[key]
	v = strings.TrimSpace(v)
	return v, ok && v != ""
}

// ServiceRequest parses what a Service asks for. Errors name the field or
// annotation and wrap ipam.ErrInvalidAnnotation.
func ServiceRequest(svc *corev1.Service, nsLabels map[string]string) (ipam.Service, error) {
	s := ipam.Service{
		Key:             ipam.ServiceKey{Namespace: svc.Namespace, Name: svc.Name},
		NamespaceLabels: nsLabels,
		Families:        families(svc),
		Local:           svc.Spec.ExternalTrafficPolicy == corev1.ServiceExternalTrafficPolicyLocal,
	}
	for _, p := range svc.Spec.Ports {
		proto := string(p.Protocol)
		if proto == "" {
			proto = string(corev1.ProtocolTCP)
		}
		s.Ports = append(s.Ports, ipam.Port{Protocol: proto, Port: p.Port})
	}
	if v, ok := annotation(svc, networkv1alpha2.AnnotationEip); ok {
		names, err := ipam.ParseNameList(v)
		if err != nil {
			return s, fmt.Errorf("annotation %s: %w", networkv1alpha2.AnnotationEip, err)
		}
		s.Eips = names
	}
	addrs, err := RequestedAddrs(svc)
	if err != nil {
		return s, err
	}
	s.Addrs = addrs
	if v, ok := annotation(svc, networkv1alpha2.AnnotationSharedIP); ok {
		if len(v) > 253 {
			return s, fmt.Errorf("annotation %s: %w: key longer than 253 characters", networkv1alpha2.AnnotationSharedIP, ipam.ErrInvalidAnnotation)
		}
		s.SharingKey = v
	}
	return s, nil
}

// RequestedAddrs returns the addresses a Service requests: the plural
// annotation eip.openelb.kubesphere.io/ips (one per family), else the
// OpenELB annotation eip.openelb.kubesphere.io/v1alpha1, else
// spec.loadBalancerIP.
func RequestedAddrs(svc *corev1.Service) ([]netip.Addr, error) {
	if v, ok := annotation(svc, networkv1alpha2.AnnotationRequestedIPs); ok {
		addrs, err := ipam.ParseAddrList(v)
		if err != nil {
			return nil, fmt.Errorf("annotation %s: %w", networkv1alpha2.AnnotationRequestedIPs, err)
		}
		return addrs, nil
	}
	if v, ok := annotation(svc, networkv1alpha2.AnnotationRequestedIP); ok {
		a, err := ipam.ParseAddr(v)
		if err != nil {
			return nil, fmt.Errorf("annotation %s: %w", networkv1alpha2.AnnotationRequestedIP, err)
		}
		return []netip.Addr{a}, nil
	}
	if v := strings.TrimSpace(svc.Spec.LoadBalancerIP); v != "" {
		a, err := ipam.ParseAddr(v)
		if err != nil {
			return nil, fmt.Errorf("spec.loadBalancerIP: %w", err)
		}
		return []netip.Addr{a}, nil
	}
	return nil, nil
}

func toFamily(f corev1.IPFamily) ipam.Family {
	if f == corev1.IPv6Protocol {
		return ipam.IPv6
	}
	return ipam.IPv4
}

func other(f ipam.Family) ipam.Family {
	if f == ipam.IPv4 {
		return ipam.IPv6
	}
	return ipam.IPv4
}

// families maps ipFamilyPolicy and ipFamilies to the families wanted:
// RequireDualStack both, PreferDualStack the primary and the other one if a
// pool can serve it, SingleStack (or no policy) the first of ipFamilies.
func families(svc *corev1.Service) []ipam.FamilyRequest {
	var primary ipam.Family
	if len(svc.Spec.IPFamilies) > 0 {
		primary = toFamily(svc.Spec.IPFamilies[0])
	}
	policy := corev1.IPFamilyPolicySingleStack
	if svc.Spec.IPFamilyPolicy != nil {
		policy = *svc.Spec.IPFamilyPolicy
	}
	switch policy {
	case corev1.IPFamilyPolicyRequireDualStack, corev1.IPFamilyPolicyPreferDualStack:
		if primary == 0 {
			primary = ipam.IPv4
		}
		return []ipam.FamilyRequest{
			{Family: primary},
			{Family: other(primary), Optional: policy == corev1.IPFamilyPolicyPreferDualStack},
		}
	}
	if primary == 0 {
		return nil
	}
	return []ipam.FamilyRequest{{Family: primary}}
}

// IsDefault reports whether an Eip carries the default-Eip annotation with
// value "true" (case-insensitive, in the webhook and in allocation alike;
// OpenELB 0.6 disagreed between the two).
func IsDefault(e *networkv1alpha2.Eip) bool {
	return strings.EqualFold(strings.TrimSpace(e.Annotations[networkv1alpha2.AnnotationDefaultEip]), "true")
}

// EipPool translates an Eip into the allocator's Pool.
func EipPool(e *networkv1alpha2.Eip) (ipam.Pool, error) {
	r, err := ipam.ParseRange(e.Spec.Address)
	if err != nil {
		return ipam.Pool{}, err
	}
	return ipam.Pool{
		Name:              e.Name,
		Range:             r,
		Created:           e.CreationTimestamp.Time,
		Disabled:          e.Spec.Disable,
		Deleting:          e.DeletionTimestamp != nil,
		Default:           IsDefault(e),
		Priority:          e.Spec.Priority,
		Namespaces:        e.Spec.Namespaces,
		NamespaceSelector: e.Spec.NamespaceSelector,
	}, nil
}

// IngressAddrs returns the valid IP addresses of status.loadBalancer.ingress.
func IngressAddrs(svc *corev1.Service) []netip.Addr {
	var out []netip.Addr
	for _, in := range svc.Status.LoadBalancer.Ingress {
		if a, err := netip.ParseAddr(in.IP); err == nil && a.Zone() == "" {
			out = append(out, a.Unmap())
		}
	}
	return out
}

// PoolHints returns the pools a Service records: the allocated-from
// annotation (in ingress order), then the Eip label.
func PoolHints(svc *corev1.Service) []string {
	var out []string
	for _, p := range strings.Split(svc.Annotations[networkv1alpha2.AnnotationAllocatedFrom], ",") {
		if p = strings.TrimSpace(p); p != "" && !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	if l := svc.Labels[networkv1alpha2.LabelEip]; l != "" && !slices.Contains(out, l) {
		out = append(out, l)
	}
	return out
}

// Desired is the state the controller wants on a Service.
type Desired struct {
	// Addrs are the ingress addresses (with their pools), in order.
	Addrs []ipam.Assigned
	// Finalizer keeps the Service until its addresses are released.
	Finalizer bool
}

// DesiredIngress is the status.loadBalancer.ingress for the addresses,
// ipMode VIP included (the apiserver defaults it; omitting it would make
// every comparison differ).
func DesiredIngress(addrs []ipam.Assigned) []corev1.LoadBalancerIngress {
	if len(addrs) == 0 {
		return nil
	}
	vip := corev1.LoadBalancerIPModeVIP
	out := make([]corev1.LoadBalancerIngress, len(addrs))
	for i, a := range addrs {
		m := vip
		out[i] = corev1.LoadBalancerIngress{IP: a.Addr.String(), IPMode: &m}
	}
	return out
}

func ingressEqual(cur, want []corev1.LoadBalancerIngress) bool {
	if len(cur) != len(want) {
		return false
	}
	for i := range cur {
		c, w := cur[i], want[i]
		if c.IP != w.IP || c.Hostname != "" || len(c.Ports) != 0 {
			return false
		}
		// An apiserver without ipMode drops it: nil counts as VIP.
		if c.IPMode != nil && (w.IPMode == nil || *c.IPMode != *w.IPMode) {
			return false
		}
	}
	return true
}

// Patch returns the strategic merge patch for the Service's status
// subresource that sets the ingress, the allocated-from annotation, the Eip
// label and the finalizer together (the status strategy of Services only
// resets spec, so one write does it all), or nil when the Service already
// matches.
func Patch(svc *corev1.Service, d Desired) []byte {
	meta := map[string]any{}
	pools := make([]string, 0, len(d.Addrs))
	for _, a := range d.Addrs {
		if !slices.Contains(pools, a.Pool) {
			pools = append(pools, a.Pool)
		}
	}
	var from, label any
	if len(pools) > 0 {
		from = strings.Join(pools, ",")
		// The label is OpenELB's marker; an Eip name longer than a label
		// value may be (63) is recorded by the annotation alone.
		if len(validation.IsValidLabelValue(pools[0])) == 0 {
			label = pools[0]
		}
	}
	if ann := setOrDelete(svc.Annotations, networkv1alpha2.AnnotationAllocatedFrom, from); ann != nil {
		meta["annotations"] = ann
	}
	if lbl := setOrDelete(svc.Labels, networkv1alpha2.LabelEip, label); lbl != nil {
		meta["labels"] = lbl
	}
	has := slices.Contains(svc.Finalizers, networkv1alpha2.FinalizerService)
	switch {
	case d.Finalizer && !has:
		meta["finalizers"] = []string{networkv1alpha2.FinalizerService}
	case !d.Finalizer && has:
		meta["$deleteFromPrimitiveList/finalizers"] = []string{networkv1alpha2.FinalizerService}
	}
	body := map[string]any{}
	if len(meta) > 0 {
		body["metadata"] = meta
	}
	want := DesiredIngress(d.Addrs)
	if !ingressEqual(svc.Status.LoadBalancer.Ingress, want) {
		var ingress any = want
		if want == nil {
			ingress = nil
		}
		body["status"] = map[string]any{"loadBalancer": map[string]any{"ingress": ingress}}
	}
	if len(body) == 0 {
		return nil
	}
	data, err := json.Marshal(body)
	if err != nil { // maps of strings and API structs always marshal
		panic(fmt.Sprintf("marshal service patch: %v", err))
	}
	return data
}

// setOrDelete returns the patch of one map key: {key: value}, {key: null}
// to delete it, or nil when nothing changes.
func setOrDelete(m map[string]string, key string, value any) map[string]any {
	cur, ok := m[key]
	switch v := value.(type) {
	case string:
		if ok && cur == v {
			return nil
		}
		return map[string]any{key: v}
	default:
		if !ok {
			return nil
		}
		return map[string]any{key: nil}
	}
}
