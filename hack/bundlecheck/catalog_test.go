package bundlecheck

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
)

// opm returns bin/opm (or $OPM): built by `make opm` (hack/build-opm.sh),
// which `make test-bundle` runs first. Missing, the test fails: it never
// skips.
func opm(t *testing.T) string {
	t.Helper()
	path := os.Getenv("OPM")
	if path == "" {
		path = filepath.Join(repoRoot(t), "bin", "opm")
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("opm not found at %s: run `make test-bundle` (it builds opm v1.60.0 into bin/) or set OPM", path)
	}
	return path
}

func run(t *testing.T, dir, name string, args ...string) []byte {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, stderr.String())
	}
	return out
}

func decodeDocs(t *testing.T, data []byte) []*unstructured.Unstructured {
	t.Helper()
	var out []*unstructured.Unstructured
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
	for {
		o := map[string]any{}
		if err := dec.Decode(&o); err != nil {
			if err.Error() == "EOF" {
				return out
			}
			t.Fatal(err)
		}
		if len(o) > 0 {
			out = append(out, &unstructured.Unstructured{Object: o})
		}
	}
}

// TestCatalog: the committed file-based catalog passes `opm validate`,
// holds the bundle exactly as `opm render` renders bundle/ today (so it is
// not stale), and its package's default channel leads to that bundle.
func TestCatalog(t *testing.T) {
	root := repoRoot(t)
	opm := opm(t)
	run(t, root, opm, "validate", "catalog")

	b := load(t)
	data, err := os.ReadFile(filepath.Join(root, "catalog", Package, "index.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var pkg, channel, bundle *unstructured.Unstructured
	for _, o := range decodeDocs(t, data) {
		switch o.Object["schema"] {
		case "olm.package":
			pkg = o
		case "olm.channel":
			channel = o
		case "olm.bundle":
			bundle = o
		}
	}
	if pkg == nil || channel == nil || bundle == nil {
		t.Fatalf("catalog: want an olm.package, an olm.channel and an olm.bundle")
	}
	def, _, _ := unstructured.NestedString(pkg.Object, "defaultChannel")
	name, _, _ := unstructured.NestedString(channel.Object, "name")
	if def != b.Annotations["operators.operatorframework.io.bundle.channel.default.v1"] || name != def {
		t.Errorf("default channel %q, channel %q, bundle annotation %q", def, name, b.Annotations["operators.operatorframework.io.bundle.channel.default.v1"])
	}
	entries, _, _ := unstructured.NestedSlice(channel.Object, "entries")
	if !strings.Contains(fmt.Sprint(entries), "name:"+b.CSV.Name) {
		t.Errorf("channel entries %v lack %s", entries, b.CSV.Name)
	}

	rendered := decodeDocs(t, run(t, root, opm, "render", "./bundle", "-o", "yaml"))
	if len(rendered) != 1 {
		t.Fatalf("opm render ./bundle gave %d objects", len(rendered))
	}
	image, _, _ := unstructured.NestedString(bundle.Object, "image")
	if image == "" || !strings.Contains(image, "bundle:v"+b.CSV.Spec.Version.String()) {
		t.Errorf("catalog bundle image %q: want the bundle image of version %s", image, b.CSV.Spec.Version)
	}
	rendered[0].Object["image"] = image
	if got, want := rendered[0].Object, bundle.Object; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("catalog/ is stale: its olm.bundle differs from `opm render ./bundle` (run `make catalog`)")
	}
}

// TestOpmValidateCatchesDefects: opm validate rejects a channel that
// names a bundle the catalog lacks.
func TestOpmValidateCatchesDefects(t *testing.T) {
	root := repoRoot(t)
	opm := opm(t)
	data, err := os.ReadFile(filepath.Join(root, "catalog", Package, "index.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	broken := strings.Replace(string(data), "- name: "+Package+".v", "- name: "+Package+".v9", 1)
	if broken == string(data) {
		t.Fatal("no channel entry to break")
	}
	dir := filepath.Join(t.TempDir(), "catalog", Package)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "index.yaml"), []byte(broken), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(opm, "validate", filepath.Dir(dir)).CombinedOutput(); err == nil {
		t.Fatalf("opm validate accepted a channel entry without a bundle:\n%s", out)
	}
}
