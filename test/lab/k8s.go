//go:build linux

package lab

import (
	"context"
	"encoding/json"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
)

// SetNodeReady sets a Node's Ready condition. Nothing else in the lab
// touches it (there is no kubelet and no node lifecycle controller), so it
// stays as set.
func (l *Lab) SetNodeReady(ctx context.Context, node string, ready bool) error {
	n, err := l.Clientset.CoreV1().Nodes().Get(ctx, node, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("get node %s: %w", node, err)
	}
	status, reason := corev1.ConditionTrue, "KubeletReady"
	if !ready {
		status, reason = corev1.ConditionFalse, "KubeletNotReady"
	}
	now := metav1.Now()
	found := false
	for i := range n.Status.Conditions {
		c := &n.Status.Conditions[i]
		if c.Type != corev1.NodeReady {
			continue
		}
		found = true
		if c.Status != status {
			c.LastTransitionTime = now
		}
		c.Status, c.Reason, c.LastHeartbeatTime = status, reason, now
	}
	if !found {
		n.Status.Conditions = append(n.Status.Conditions, corev1.NodeCondition{Type: corev1.NodeReady, Status: status,
			Reason: reason, LastHeartbeatTime: now, LastTransitionTime: now})
	}
	if _, err := l.Clientset.CoreV1().Nodes().UpdateStatus(ctx, n, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("node %s ready=%v: %w", node, ready, err)
	}
	return nil
}

// PatchNodeLabels sets and removes labels of a Node.
func (l *Lab) PatchNodeLabels(ctx context.Context, node string, set map[string]string, remove ...string) error {
	return l.patchNodeMeta(ctx, node, "labels", set, remove)
}

// PatchNodeAnnotations sets and removes annotations of a Node.
func (l *Lab) PatchNodeAnnotations(ctx context.Context, node string, set map[string]string, remove ...string) error {
	return l.patchNodeMeta(ctx, node, "annotations", set, remove)
}

func (l *Lab) patchNodeMeta(ctx context.Context, node, field string, set map[string]string, remove []string) error {
	m := map[string]any{}
	for k, v := range set {
		m[k] = v
	}
	for _, k := range remove {
		m[k] = nil
	}
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{field: m}})
	if err != nil {
		return err
	}
	if _, err := l.Clientset.CoreV1().Nodes().Patch(ctx, node, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		return fmt.Errorf("patch %s of node %s: %w", field, node, err)
	}
	return nil
}

// Endpoint is one endpoint of a Service on a node (there is no kubelet and
// no EndpointSlice controller: tests say where the endpoints are).
type Endpoint struct {
	Node     string
	NotReady bool
}

// ReadyOn returns a ready endpoint on each of the nodes.
func ReadyOn(nodes ...string) []Endpoint {
	eps := make([]Endpoint, len(nodes))
	for i, n := range nodes {
		eps[i] = Endpoint{Node: n}
	}
	return eps
}

// EndpointSliceManager is the managed-by label value of the lab's slices.
const EndpointSliceManager = "lab.openelb.kubesphere.io"

// SetEndpoints creates or replaces the EndpointSlices of a Service (one per
// IP family of the Service, named <service>-lab-v4/-v6) with the given
// endpoints; the endpoint address is the node's address, the ports are
// the Service's target ports. No endpoints makes empty slices.
func (l *Lab) SetEndpoints(ctx context.Context, namespace, service string, eps ...Endpoint) error {
	svc, err := l.Clientset.CoreV1().Services(namespace).Get(ctx, service, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("service %s/%s: %w", namespace, service, err)
	}
	families := svc.Spec.IPFamilies
	if len(families) == 0 {
		families = []corev1.IPFamily{corev1.IPv4Protocol}
	}
	var ports []discoveryv1.EndpointPort
	for _, p := range svc.Spec.Ports {
		port := p.Port
		if p.TargetPort.Type == intstr.Int && p.TargetPort.IntVal != 0 {
			port = p.TargetPort.IntVal
		}
		ports = append(ports, discoveryv1.EndpointPort{Name: ptr.To(p.Name), Port: ptr.To(port), Protocol: ptr.To(p.Protocol)})
	}
	for _, fam := range families {
		sl := &discoveryv1.EndpointSlice{
			ObjectMeta: metav1.ObjectMeta{
				Name:      service + "-lab-v4",
				Namespace: namespace,
				Labels: map[string]string{
					discoveryv1.LabelServiceName: service,
					discoveryv1.LabelManagedBy:   EndpointSliceManager,
				},
				OwnerReferences: []metav1.OwnerReference{{APIVersion: "v1", Kind: "Service", Name: svc.Name, UID: svc.UID}},
			},
			AddressType: discoveryv1.AddressTypeIPv4,
			Ports:       ports,
		}
		if fam == corev1.IPv6Protocol {
			sl.Name, sl.AddressType = service+"-lab-v6", discoveryv1.AddressTypeIPv6
		}
		for _, e := range eps {
			n := l.Node(e.Node)
			if n == nil {
				return fmt.Errorf("endpoint on unknown node %q", e.Node)
			}
			addr := n.IPv4.String()
			if fam == corev1.IPv6Protocol {
				addr = n.IPv6.String()
			}
			sl.Endpoints = append(sl.Endpoints, discoveryv1.Endpoint{
				Addresses:  []string{addr},
				Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(!e.NotReady), Serving: ptr.To(!e.NotReady), Terminating: ptr.To(false)},
				NodeName:   ptr.To(n.Name),
			})
		}
		api := l.Clientset.DiscoveryV1().EndpointSlices(namespace)
		cur, err := api.Get(ctx, sl.Name, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			_, err = api.Create(ctx, sl, metav1.CreateOptions{})
		case err == nil:
			sl.ResourceVersion = cur.ResourceVersion
			_, err = api.Update(ctx, sl, metav1.UpdateOptions{})
		}
		if err != nil {
			return fmt.Errorf("endpointslice %s/%s: %w", namespace, sl.Name, err)
		}
	}
	return nil
}
