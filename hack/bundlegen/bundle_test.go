package main

import (
	"bytes"
	"slices"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

const testBase = `
apiVersion: operators.coreos.com/v1alpha1
kind: ClusterServiceVersion
metadata:
  name: x.v0.0.0
  annotations:
    capabilities: Seamless Upgrades
spec:
  displayName: X
  customresourcedefinitions:
    owned:
    - {name: tops.op.example.io, version: v1, kind: Top}
    - {name: pools.net.example.io, version: v2, kind: Pool}
    - {name: pools.net.example.io, version: v1, kind: Pool}
`

const testObjects = `
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: pools.net.example.io}
spec:
  group: net.example.io
  names: {kind: Pool, plural: pools}
  conversion:
    strategy: Webhook
    webhook:
      conversionReviewVersions: [v1]
      clientConfig: {service: {name: op-webhook, namespace: ns, path: /convert, port: 443}}
  versions:
  - {name: v1, served: true, storage: false}
  - {name: v2, served: true, storage: true}
---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: tops.op.example.io}
spec:
  group: op.example.io
  names: {kind: Top, plural: tops}
  versions:
  - {name: v1, served: true, storage: true}
---
apiVersion: v1
kind: Namespace
metadata: {name: ns}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: op, namespace: ns}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: op}
rules:
- {apiGroups: [""], resources: [services], verbs: [get]}
- {apiGroups: [apiextensions.k8s.io], resources: [customresourcedefinitions], verbs: [get, patch], resourceNames: [pools.net.example.io]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: op}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: op}
subjects: [{kind: ServiceAccount, name: op, namespace: ns}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: metrics-reader}
rules:
- {nonResourceURLs: [/metrics], verbs: [get]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: op, namespace: ns}
rules:
- {apiGroups: [""], resources: [secrets], verbs: [get]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: op, namespace: ns}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: op}
subjects: [{kind: ServiceAccount, name: op, namespace: ns}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: op, namespace: ns, labels: {app: op}}
spec:
  selector: {matchLabels: {app: op}}
  template:
    metadata:
      labels: {app: op}
      annotations: {kubectl.kubernetes.io/default-container: manager}
    spec:
      serviceAccountName: op
      containers:
      - name: sidecar
        image: example.io/sidecar:1
      - name: manager
        image: example.io/op:latest
        ports: [{name: webhook, containerPort: 9443}]
        env:
        - {name: RELATED_IMAGE_OPENELB, value: example.io/op:latest}
        - {name: RELATED_IMAGE_EXTRA_TOOL, value: example.io/tool@sha256:aaaa}
---
apiVersion: net.example.io/v2
kind: Pool
metadata: {name: b-pool}
spec: {address: 203.0.113.0/28}
---
apiVersion: net.example.io/v2
kind: Pool
metadata: {name: a-pool, namespace: ns}
spec: {address: 203.0.113.16/28}
status: {usage: 1}
---
apiVersion: net.example.io/v1
kind: Pool
metadata: {name: old}
spec: {address: 203.0.113.32/28}
---
apiVersion: op.example.io/v1
kind: Top
metadata: {name: top}
spec: {}
`

func testInputs(t *testing.T) Inputs {
	t.Helper()
	objs, err := decodeAll(strings.NewReader(testObjects))
	if err != nil {
		t.Fatal(err)
	}
	return Inputs{
		Options: Options{
			Package: "x", Version: "1.2.3", Image: "example.io/op:v1.2.3", CreatedAt: "2026-01-02T03:04:05Z",
			Channels: []string{"stable"}, DefaultChannel: "stable", ScorecardImage: "example.io/scorecard:v1",
		},
		Base:    []byte(testBase),
		Icon:    []byte("<svg/>"),
		Objects: objs,
	}
}

func generate(t *testing.T, in Inputs) (*Bundle, map[string]any) {
	t.Helper()
	b, err := Generate(in)
	if err != nil {
		t.Fatalf("Generate: %v", err)
	}
	csv := map[string]any{}
	if err := yaml.Unmarshal(b.Manifests["x.clusterserviceversion.yaml"], &csv); err != nil {
		t.Fatal(err)
	}
	return b, csv
}

func at(v any, path ...any) any {
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, _ := v.(map[string]any)
			v = m[k]
		case int:
			l, _ := v.([]any)
			if k >= len(l) {
				return nil
			}
			v = l[k]
		}
	}
	return v
}

// TestDeterministic: the same inputs in any order give the same bytes.
func TestDeterministic(t *testing.T) {
	in := testInputs(t)
	a, _ := generate(t, in)
	slices.Reverse(in.Objects)
	b, _ := generate(t, in)
	if len(a.Manifests) != len(b.Manifests) {
		t.Fatalf("%d files, then %d", len(a.Manifests), len(b.Manifests))
	}
	for name, data := range a.Manifests {
		if !bytes.Equal(data, b.Manifests[name]) {
			t.Errorf("%s differs between runs", name)
		}
	}
	if !bytes.Equal(a.Annotations, b.Annotations) || !bytes.Equal(a.Dockerfile, b.Dockerfile) || !bytes.Equal(a.Scorecard, b.Scorecard) {
		t.Error("metadata differs between runs")
	}
}

func TestFiles(t *testing.T) {
	b, _ := generate(t, testInputs(t))
	var names []string
	for n := range b.Manifests {
		names = append(names, n)
	}
	slices.Sort(names)
	want := []string{
		"metrics-reader_rbac.authorization.k8s.io_v1_clusterrole.yaml", // unbound: shipped as is
		"net.example.io_pools.yaml",
		"op.example.io_tops.yaml",
		"op_rbac.authorization.k8s.io_v1_role.yaml",
		"op_rbac.authorization.k8s.io_v1_rolebinding.yaml",
		"x.clusterserviceversion.yaml",
	}
	if !slices.Equal(names, want) {
		t.Errorf("files %v, want %v (no Namespace, no Deployment's ServiceAccount, no bound ClusterRole)", names, want)
	}
	rb := string(b.Manifests["op_rbac.authorization.k8s.io_v1_rolebinding.yaml"])
	if strings.Contains(rb, "namespace") {
		t.Errorf("RoleBinding keeps a namespace (OLM installs it into the install namespace; its subject is the binding's namespace):\n%s", rb)
	}
	if strings.Contains(string(b.Manifests["op_rbac.authorization.k8s.io_v1_role.yaml"]), "namespace") {
		t.Error("Role keeps a namespace")
	}
}

func TestCSV(t *testing.T) {
	_, csv := generate(t, testInputs(t))
	checks := []struct {
		what string
		got  any
		want any
	}{
		{"name", at(csv, "metadata", "name"), "x.v1.2.3"},
		{"version", at(csv, "spec", "version"), "1.2.3"},
		{"createdAt", at(csv, "metadata", "annotations", "createdAt"), "2026-01-02T03:04:05Z"},
		{"containerImage", at(csv, "metadata", "annotations", "containerImage"), "example.io/op:v1.2.3"},
		{"base annotation kept", at(csv, "metadata", "annotations", "capabilities"), "Seamless Upgrades"},
		{"disconnected (tags)", at(csv, "metadata", "annotations", featureDisconnected), "false"},
		{"icon", at(csv, "spec", "icon", 0, "mediatype"), "image/svg+xml"},
		{"icon data", at(csv, "spec", "icon", 0, "base64data"), "PHN2Zy8+"},
		{"manager image", at(csv, "spec", "install", "spec", "deployments", 0, "spec", "template", "spec", "containers", 1, "image"), "example.io/op:v1.2.3"},
		{"sidecar image untouched", at(csv, "spec", "install", "spec", "deployments", 0, "spec", "template", "spec", "containers", 0, "image"), "example.io/sidecar:1"},
		{"operand image", at(csv, "spec", "install", "spec", "deployments", 0, "spec", "template", "spec", "containers", 1, "env", 0, "value"), "example.io/op:v1.2.3"},
		{"deployment label", at(csv, "spec", "install", "spec", "deployments", 0, "label", "app"), "op"},
		{"cluster permissions SA", at(csv, "spec", "install", "spec", "clusterPermissions", 0, "serviceAccountName"), "op"},
		{"cluster permissions rule", at(csv, "spec", "install", "spec", "clusterPermissions", 0, "rules", 0, "resources", 0), "services"},
		{"CRD rule dropped (OLM owns CRDs)", at(csv, "spec", "install", "spec", "clusterPermissions", 0, "rules", 1), nil},
		{"no namespaced permissions", at(csv, "spec", "install", "spec", "permissions"), nil},
		{"related image: extra", at(csv, "spec", "relatedImages", 0, "name"), "extra-tool"},
		{"related image: operand", at(csv, "spec", "relatedImages", 1, "name"), "openelb"},
		{"related image: operator", at(csv, "spec", "relatedImages", 2, "image"), "example.io/op:v1.2.3"},
		{"webhook type", at(csv, "spec", "webhookdefinitions", 0, "type"), "ConversionWebhook"},
		{"webhook deployment", at(csv, "spec", "webhookdefinitions", 0, "deploymentName"), "op"},
		{"webhook CRD", at(csv, "spec", "webhookdefinitions", 0, "conversionCRDs", 0), "pools.net.example.io"},
		{"webhook target port", at(csv, "spec", "webhookdefinitions", 0, "targetPort"), float64(9443)},
		{"webhook container port", at(csv, "spec", "webhookdefinitions", 0, "containerPort"), float64(443)},
		{"webhook path", at(csv, "spec", "webhookdefinitions", 0, "webhookPath"), "/convert"},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s: %v, want %v", c.what, c.got, c.want)
		}
	}
	if at(csv, "spec", "replaces") != nil || at(csv, "metadata", "annotations", "olm.skipRange") != nil {
		t.Error("replaces or skipRange set without being asked")
	}
}

// TestExamples: alm-examples in the owned APIs' order, then by name,
// without namespace or status; the initialization resource is the first
// owned kind's example.
func TestExamples(t *testing.T) {
	_, csv := generate(t, testInputs(t))
	var examples []map[string]any
	if err := yaml.Unmarshal([]byte(at(csv, "metadata", "annotations", "alm-examples").(string)), &examples); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range examples {
		got = append(got, at(e, "apiVersion").(string)+" "+at(e, "metadata", "name").(string))
		if at(e, "metadata", "namespace") != nil || e["status"] != nil {
			t.Errorf("example %v keeps namespace or status", e)
		}
	}
	want := []string{"op.example.io/v1 top", "net.example.io/v2 a-pool", "net.example.io/v2 b-pool", "net.example.io/v1 old"}
	if !slices.Equal(got, want) {
		t.Errorf("examples %v, want %v", got, want)
	}
	if init := at(csv, "metadata", "annotations", "operatorframework.io/initialization-resource").(string); !strings.Contains(init, `"kind": "Top"`) {
		t.Errorf("initialization resource %s", init)
	}
}

func TestDisconnectedOnlyWithDigests(t *testing.T) {
	in := testInputs(t)
	in.Image = "example.io/op@sha256:1111"
	_, csv := generate(t, in)
	if got := at(csv, "metadata", "annotations", featureDisconnected); got != "true" {
		t.Errorf("every image by digest: disconnected %v", got)
	}
	in.OperandImage = "example.io/operand:v1"
	_, csv = generate(t, in)
	if got := at(csv, "metadata", "annotations", featureDisconnected); got != "false" {
		t.Errorf("operand by tag: disconnected %v", got)
	}
}

func TestUpgradeFields(t *testing.T) {
	in := testInputs(t)
	in.Replaces, in.SkipRange = "x.v1.2.2", ">=1.0.0 <1.2.2"
	_, csv := generate(t, in)
	if at(csv, "spec", "replaces") != "x.v1.2.2" || at(csv, "metadata", "annotations", "olm.skipRange") != ">=1.0.0 <1.2.2" {
		t.Errorf("replaces %v skipRange %v", at(csv, "spec", "replaces"), at(csv, "metadata", "annotations", "olm.skipRange"))
	}
}

// TestLabels: annotations.yaml and the Dockerfile carry the same labels.
func TestLabels(t *testing.T) {
	in := testInputs(t)
	in.Channels, in.DefaultChannel, in.OpenShiftVersions = []string{"stable", "fast"}, "fast", "v4.18"
	b, _ := generate(t, in)
	var ann struct {
		Annotations map[string]string `json:"annotations"`
	}
	if err := yaml.Unmarshal(b.Annotations, &ann); err != nil {
		t.Fatal(err)
	}
	if ann.Annotations["operators.operatorframework.io.bundle.channels.v1"] != "stable,fast" || ann.Annotations["com.redhat.openshift.versions"] != "v4.18" {
		t.Errorf("annotations %v", ann.Annotations)
	}
	for k, v := range ann.Annotations {
		if !bytes.Contains(b.Dockerfile, []byte("LABEL "+k+"="+v+"\n")) {
			t.Errorf("Dockerfile lacks LABEL %s=%s", k, v)
		}
	}
	if n := bytes.Count(b.Dockerfile, []byte("LABEL ")); n != len(ann.Annotations) {
		t.Errorf("%d LABELs for %d annotations", n, len(ann.Annotations))
	}
}

func TestErrors(t *testing.T) {
	cases := []struct {
		name string
		mut  func(*Inputs)
		want string
	}{
		{"base sets a generated field", func(in *Inputs) {
			in.Base = []byte(strings.Replace(testBase, "  displayName: X", "  displayName: X\n  relatedImages: []", 1))
		}, "spec.relatedImages"},
		{"base sets createdAt", func(in *Inputs) {
			in.Base = []byte(strings.Replace(testBase, "    capabilities:", "    createdAt: now\n    capabilities:", 1))
		}, "createdAt"},
		{"owned version not served", func(in *Inputs) {
			in.Base = []byte(strings.Replace(testBase, "version: v2, kind: Pool", "version: v3, kind: Pool", 1))
		}, "not served"},
		{"served version not owned", func(in *Inputs) {
			in.Base = []byte(strings.Replace(testBase, "    - {name: pools.net.example.io, version: v1, kind: Pool}\n", "", 1))
		}, "served but not in the CSV"},
		{"unsupported kind", func(in *Inputs) {
			in.Objects = append(in.Objects, object{"apiVersion": "cert-manager.io/v1", "kind": "Certificate", "metadata": map[string]any{"name": "c"}})
		}, "cannot be part of a registry+v1 bundle"},
		{"no operand image", func(in *Inputs) {
			for _, o := range in.Objects {
				if o["kind"] == "Deployment" {
					c := at(o, "spec", "template", "spec", "containers", 1).(map[string]any)
					c["env"] = []any{}
				}
			}
		}, "RELATED_IMAGE_OPENELB"},
		{"default channel elsewhere", func(in *Inputs) { in.DefaultChannel = "fast" }, "default channel"},
		{"createdAt not a time", func(in *Inputs) { in.CreatedAt = "today" }, "createdAt"},
		{"version with v", func(in *Inputs) { in.Version = "v1.2.3" }, "leading v"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			in := testInputs(t)
			tc.mut(&in)
			_, err := Generate(in)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}
