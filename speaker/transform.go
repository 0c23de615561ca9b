package speaker

import (
	"maps"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	networkv1alpha2 "github.com/openelb/openelb-operator/api/network/v1alpha2"
)

// Cache transforms keep only what the speaker reads, so that a speaker's
// memory follows the number of announced addresses, not the size of the
// cluster's objects (Node images, Service specs, endpoint addresses).

// TrimMeta keeps identity, labels and the given annotation keys (all when
// keys is nil, minus kubectl's last-applied-configuration).
func trimMeta(m metav1.ObjectMeta, keys []string) metav1.ObjectMeta {
	out := metav1.ObjectMeta{
		Name: m.Name, Namespace: m.Namespace, UID: m.UID, ResourceVersion: m.ResourceVersion,
		Generation: m.Generation, DeletionTimestamp: m.DeletionTimestamp, Labels: m.Labels,
	}
	for k, v := range m.Annotations {
		if keys == nil && k == corev1.LastAppliedConfigAnnotation {
			continue
		}
		if keys != nil {
			found := false
			for _, want := range keys {
				found = found || k == want
			}
			if !found {
				continue
			}
		}
		if out.Annotations == nil {
			out.Annotations = map[string]string{}
		}
		out.Annotations[k] = v
	}
	return out
}

// TrimNode keeps labels, the layer2 interface annotation, addresses and the
// Ready and NetworkUnavailable conditions.
func TrimNode(n *corev1.Node) *corev1.Node {
	out := &corev1.Node{TypeMeta: n.TypeMeta, ObjectMeta: trimMeta(n.ObjectMeta, []string{networkv1alpha2.AnnotationLayer2Interface})}
	out.Status.Addresses = n.Status.Addresses
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady || c.Type == corev1.NodeNetworkUnavailable {
			out.Status.Conditions = append(out.Status.Conditions, corev1.NodeCondition{Type: c.Type, Status: c.Status})
		}
	}
	return out
}

// TrimService keeps metadata, the type, traffic policy, class and
// load-balancer status.
func TrimService(s *corev1.Service) *corev1.Service {
	out := &corev1.Service{TypeMeta: s.TypeMeta, ObjectMeta: trimMeta(s.ObjectMeta, nil)}
	out.Spec.Type = s.Spec.Type
	out.Spec.ExternalTrafficPolicy = s.Spec.ExternalTrafficPolicy
	out.Spec.LoadBalancerClass = s.Spec.LoadBalancerClass
	out.Status.LoadBalancer = s.Status.LoadBalancer
	return out
}

// TrimEndpointSlice keeps the Service label and each endpoint's node and
// conditions.
func TrimEndpointSlice(es *discoveryv1.EndpointSlice) *discoveryv1.EndpointSlice {
	meta := trimMeta(es.ObjectMeta, []string{})
	meta.Labels = nil
	if svc, ok := es.Labels[discoveryv1.LabelServiceName]; ok {
		meta.Labels = map[string]string{discoveryv1.LabelServiceName: svc}
	}
	out := &discoveryv1.EndpointSlice{TypeMeta: es.TypeMeta, ObjectMeta: meta, AddressType: es.AddressType}
	for _, ep := range es.Endpoints {
		out.Endpoints = append(out.Endpoints, discoveryv1.Endpoint{NodeName: ep.NodeName, Conditions: ep.Conditions})
	}
	return out
}

// TrimEip drops the status (its used map grows with the pool's usage).
func TrimEip(e *networkv1alpha2.Eip) *networkv1alpha2.Eip {
	out := &networkv1alpha2.Eip{TypeMeta: e.TypeMeta, ObjectMeta: trimMeta(e.ObjectMeta, nil), Spec: e.Spec}
	return out
}

// Transform is a cache transform applying the Trim functions; other
// objects only lose their managedFields.
func Transform(obj any) (any, error) {
	switch o := obj.(type) {
	case *corev1.Node:
		return TrimNode(o), nil
	case *corev1.Service:
		return TrimService(o), nil
	case *discoveryv1.EndpointSlice:
		return TrimEndpointSlice(o), nil
	case *networkv1alpha2.Eip:
		return TrimEip(o), nil
	case metav1.Object:
		o.SetManagedFields(nil)
	}
	return obj, nil
}

// Relevant reports whether an update of a cached (transformed) object can
// change a decision: the cache already dropped what the speaker never reads
// (a Node's heartbeat times, a Service's ports), so an update is
// irrelevant when the objects are equal apart from the resource version
// and the announcer annotation, which the speakers write themselves.
// Skipping those keeps a burst of announcer writes from recomputing
// everything once per Service; the periodic resync still observes them.
func Relevant(oldObj, newObj any) bool {
	o, ok1 := oldObj.(client.Object)
	n, ok2 := newObj.(client.Object)
	if !ok1 || !ok2 {
		return true
	}
	oc, nc := o.DeepCopyObject().(client.Object), n.DeepCopyObject().(client.Object)
	for _, c := range []client.Object{oc, nc} {
		c.SetResourceVersion("")
		c.SetManagedFields(nil)
		if a := c.GetAnnotations(); a != nil {
			if _, ok := a[networkv1alpha2.AnnotationAnnouncer]; ok {
				a = maps.Clone(a)
				delete(a, networkv1alpha2.AnnotationAnnouncer)
				c.SetAnnotations(a)
			}
		}
	}
	return !equality.Semantic.DeepEqual(oc, nc)
}
