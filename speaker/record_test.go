package speaker

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	networkv1alpha2 "github.com/openelb/openelb-operator/api/network/v1alpha2"
)

type winnerReporter struct{}

func (winnerReporter) Announcers(a Announcement) []string {
	if w := a.Winner(); w != "" {
		return []string{w}
	}
	return nil
}

func TestRecords(t *testing.T) {
	svcs := []*corev1.Service{
		service("default", "one", []string{"203.0.113.20"}),
		service("default", "dual", []string{"203.0.113.21", "2001:db8::21"}),
		service("default", "local", []string{"203.0.113.22"}, local),
		func() *corev1.Service {
			s := service("default", "released", nil)
			s.Annotations = map[string]string{networkv1alpha2.AnnotationAnnouncer: "node2"}
			return s
		}(),
	}
	in := Inputs{Nodes: three, Eips: []*networkv1alpha2.Eip{l2Pool, l2Pool6}, Services: svcs,
		SelfFacts: okFacts("eip-pool", "eip-pool6"), Alive: allAlive("eip-pool", "eip-pool6")}
	all := map[types.NamespacedName]Record{}
	for _, self := range []string{"node1", "node2", "node3"} {
		in.Self = self
		d := Compute(in)
		for k, r := range Records(self, in, d, map[string]Reporter{"layer2": winnerReporter{}}) {
			if _, dup := all[k]; dup {
				t.Fatalf("%s is recorded by two nodes", k)
			}
			all[k] = r
		}
	}
	d := Compute(in)
	winner := map[string]string{}
	for _, a := range d.ByProtocol["layer2"] {
		winner[a.IP.String()] = a.Winner()
	}
	want := map[string]Record{
		"one":      {Value: winner["203.0.113.20"]},
		"dual":     {Value: "203.0.113.21=" + winner["203.0.113.21"] + ";2001:db8::21=" + winner["2001:db8::21"]},
		"local":    {Value: NoAnnouncer, Unannounced: []string{"203.0.113.22: no eligible node (node1, node2, node3: no ready endpoint (externalTrafficPolicy Local))"}},
		"released": {Value: ""},
	}
	if len(all) != len(want) {
		t.Fatalf("records %+v", all)
	}
	for name, w := range want {
		got := all[types.NamespacedName{Namespace: "default", Name: name}]
		if got.Value != w.Value || len(got.Unannounced) != len(w.Unannounced) || (len(w.Unannounced) > 0 && got.Unannounced[0] != w.Unannounced[0]) {
			t.Errorf("%s: got %+v, want %+v", name, got, w)
		}
	}
	// Without a reporter for the protocol nothing is recorded.
	if r := Records("node1", in, d, nil); len(r) != 1 { // only the stale annotation (node1 is the smallest alive name)
		t.Errorf("records without reporters: %+v", r)
	}
}
