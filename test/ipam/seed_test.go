package ipam_test

import (
	"os"
	"path/filepath"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	networkv1alpha2 "github.com/openelb/openelb-operator/api/network/v1alpha2"
	"github.com/openelb/openelb-operator/internal/testenv"
)

func readSeed(t *testing.T, file string, into any) {
	t.Helper()
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(root, "test", "api", "testdata", file))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.UnmarshalStrict(data, into); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
}

// TestSeed001 applies the seed manifests unchanged (the eip-pool default
// Eip and the layer2-svc Service of ../shared/seeds/001): the Service gets
// the first address of the range and the Eip's status says so, as with
// OpenELB.
func TestSeed001(t *testing.T) {
	startController(t, instanceOpts{})
	var eip networkv1alpha2.Eip
	readSeed(t, "seed-001-layer2-eip.yaml", &eip)
	if err := env.Client.Create(ctx, &eip); err != nil {
		t.Fatalf("create seed Eip: %v", err)
	}
	t.Cleanup(func() { deleteEip(t, eip.Name) })
	var svc corev1.Service
	readSeed(t, "seed-001-layer2-svc.yaml", &svc)
	svc.Namespace = namespace(t, "seed", nil)
	if err := env.Client.Create(ctx, &svc); err != nil {
		t.Fatalf("create seed Service: %v", err)
	}
	t.Cleanup(func() { deleteSvc(t, svc.Namespace, svc.Name) })

	got := waitIPs(t, svc.Namespace, svc.Name, "192.168.1.240")
	if got.Annotations[networkv1alpha2.AnnotationAllocatedFrom] != "eip-pool" || got.Labels[networkv1alpha2.LabelEip] != "eip-pool" {
		t.Errorf("annotations %v labels %v", got.Annotations, got.Labels)
	}
	if len(got.Finalizers) != 1 || got.Finalizers[0] != networkv1alpha2.FinalizerService {
		t.Errorf("finalizers %v", got.Finalizers)
	}
	if m := got.Status.LoadBalancer.Ingress[0].IPMode; m == nil || *m != corev1.LoadBalancerIPModeVIP {
		t.Errorf("ipMode %v", m)
	}
	waitEip(t, "eip-pool", "to count the Service", func(e *networkv1alpha2.Eip) (bool, string) {
		s := e.Status
		ok := s.Usage == 1 && s.PoolSize == 11 && s.FirstIP == "192.168.1.240" && s.LastIP == "192.168.1.250" && s.V4 && s.Ready && !s.Occupied &&
			s.Used["192.168.1.240"] == svc.Namespace+"/layer2-svc"
		return ok, yamlString(s)
	})
	e := getEip(t, "eip-pool")
	if len(e.Finalizers) != 1 || e.Finalizers[0] != networkv1alpha2.FinalizerEip {
		t.Errorf("eip finalizers %v", e.Finalizers)
	}
}

func yamlString(v any) string {
	b, _ := yaml.Marshal(v)
	return string(b)
}
