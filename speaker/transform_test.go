package speaker

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	networkv1alpha2 "github.com/openelb/openelb-operator/api/network/v1alpha2"
)

// TestTransformsKeepDecision: the trimmed objects give the same decision as
// the full ones, and the bulky fields are gone.
func TestTransformsKeepDecision(t *testing.T) {
	n := node("node1", "198.51.100.11", annotate(networkv1alpha2.AnnotationLayer2Interface, "eth0"), annotate("big", "x"))
	n.ManagedFields = []metav1.ManagedFieldsEntry{{Manager: "kubelet"}}
	n.Status.Images = []corev1.ContainerImage{{Names: []string{"a"}, SizeBytes: 1}}
	n.Status.Conditions = append(n.Status.Conditions, corev1.NodeCondition{Type: corev1.NodeMemoryPressure, Status: corev1.ConditionFalse, Message: "long"})
	s := service("default", "s", []string{"203.0.113.20"}, local)
	s.Annotations = map[string]string{corev1.LastAppliedConfigAnnotation: "{...}", networkv1alpha2.AnnotationAnnouncer: "node1"}
	s.Spec.Ports = []corev1.ServicePort{{Port: 80}}
	es := slice("default", "s", "s-1", [2]string{"node1", "ready"})
	es.Labels["other"] = "x"
	e := l2Pool.DeepCopy()
	e.Status.Used = map[string]string{"203.0.113.20": "default/s"}

	tn, _ := Transform(n)
	ts, _ := Transform(s)
	tes, _ := Transform(es)
	te, _ := Transform(e)
	full := Compute(Inputs{Self: "node1", Nodes: []*corev1.Node{n}, Services: []*corev1.Service{s}, EndpointSlices: []*discoveryv1.EndpointSlice{es},
		Eips: []*networkv1alpha2.Eip{e}, SelfFacts: okFacts("eip-pool"), Alive: map[string]Facts{}})
	trim := Compute(Inputs{Self: "node1", Nodes: []*corev1.Node{tn.(*corev1.Node)}, Services: []*corev1.Service{ts.(*corev1.Service)},
		EndpointSlices: []*discoveryv1.EndpointSlice{tes.(*discoveryv1.EndpointSlice)}, Eips: []*networkv1alpha2.Eip{te.(*networkv1alpha2.Eip)},
		SelfFacts: okFacts("eip-pool"), Alive: map[string]Facts{}})
	if len(full.ByProtocol["layer2"]) != 1 || len(trim.ByProtocol["layer2"]) != 1 ||
		full.ByProtocol["layer2"][0].Winner() != "node1" || trim.ByProtocol["layer2"][0].Winner() != "node1" {
		t.Fatalf("decisions differ: %+v vs %+v", full.ByProtocol, trim.ByProtocol)
	}
	gotN := tn.(*corev1.Node)
	if gotN.ManagedFields != nil || gotN.Status.Images != nil || len(gotN.Status.Conditions) != 1 || gotN.Annotations["big"] != "" ||
		gotN.Annotations[networkv1alpha2.AnnotationLayer2Interface] != "eth0" {
		t.Errorf("node not trimmed as expected: %+v", gotN)
	}
	gotS := ts.(*corev1.Service)
	if gotS.Spec.Ports != nil || gotS.Annotations[corev1.LastAppliedConfigAnnotation] != "" || gotS.Annotations[networkv1alpha2.AnnotationAnnouncer] != "node1" {
		t.Errorf("service not trimmed as expected: %+v", gotS)
	}
	if tes.(*discoveryv1.EndpointSlice).Endpoints[0].Addresses != nil || tes.(*discoveryv1.EndpointSlice).Labels["other"] != "" {
		t.Errorf("endpointslice not trimmed")
	}
	if te.(*networkv1alpha2.Eip).Status.Used != nil {
		t.Errorf("eip status kept")
	}
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "x"}}}}
	if got, _ := Transform(cm); got.(*corev1.ConfigMap).ManagedFields != nil {
		t.Errorf("managedFields kept on other objects")
	}
}

func TestRelevant(t *testing.T) {
	base := TrimService(service("default", "s", []string{"203.0.113.20"}))
	base.ResourceVersion = "1"
	mod := func(f func(s *corev1.Service)) *corev1.Service {
		c := base.DeepCopy()
		c.ResourceVersion = "2"
		f(c)
		return c
	}
	tests := []struct {
		name string
		new  *corev1.Service
		want bool
	}{
		{"resource version only", mod(func(*corev1.Service) {}), false},
		{"announcer annotation written by a speaker", mod(func(s *corev1.Service) {
			s.Annotations = map[string]string{networkv1alpha2.AnnotationAnnouncer: "node1"}
		}), false},
		{"another annotation", mod(func(s *corev1.Service) { s.Annotations = map[string]string{"x": "y"} }), true},
		{"address changed", mod(func(s *corev1.Service) { s.Status.LoadBalancer.Ingress[0].IP = "203.0.113.21" }), true},
		{"traffic policy changed", mod(local), true},
	}
	for _, tt := range tests {
		if got := Relevant(base, tt.new); got != tt.want {
			t.Errorf("%s: Relevant = %v, want %v", tt.name, got, tt.want)
		}
	}
	n := TrimNode(node("node1", "198.51.100.11"))
	n2 := node("node1", "198.51.100.11")
	n2.Status.Conditions[0].LastHeartbeatTime = metav1.Now()
	if Relevant(n, TrimNode(n2)) {
		t.Error("a Node heartbeat is relevant")
	}
	if !Relevant(n, TrimNode(node("node1", "198.51.100.11", notReady))) {
		t.Error("a Node going NotReady is not relevant")
	}
}
