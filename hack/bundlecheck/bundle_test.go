package bundlecheck

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	operatorsv1alpha1 "github.com/operator-framework/api/pkg/operators/v1alpha1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// repoRoot is the repository this module lives in (hack/bundlecheck).
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "PROJECT")); err != nil {
		t.Fatalf("repository root not found from %s: %v", root, err)
	}
	return root
}

func load(t *testing.T) *Bundle {
	t.Helper()
	b, err := Load(repoRoot(t))
	if err != nil {
		t.Fatalf("load bundle/ (run `make bundle`): %v", err)
	}
	return b
}

func reportErrors(t *testing.T, what string, errs []error) {
	t.Helper()
	for _, err := range errs {
		t.Errorf("%s: %v", what, err)
	}
}

// TestOperatorFrameworkValidators: operator-sdk's operatorframework suite
// (format, content, default validators, OperatorHub, capabilities,
// categories, deprecated APIs, good practices) gives 0 errors and no
// warning but the allowed ones.
func TestOperatorFrameworkValidators(t *testing.T) {
	b := load(t)
	findings := RunValidators(b)
	allowed := 0
	used := map[AllowedWarning]bool{}
	for _, f := range findings {
		if a, ok := Allowed(f); ok {
			allowed++
			used[a] = true
			t.Logf("allowed (%s): %s", a.Reason, f)
			continue
		}
		t.Errorf("%s", f)
	}
	for _, a := range AllowedWarnings {
		if !used[a] {
			t.Errorf("allowed warning %q of %s no longer occurs: remove it from AllowedWarnings", a.Contains, a.Validator)
		}
	}
	t.Logf("%d findings: %d errors, %d allowed warnings", len(findings), len(findings)-allowed, allowed)
}

func TestCSV(t *testing.T)         { reportErrors(t, "CSV", CheckCSV(load(t))) }
func TestExamples(t *testing.T)    { reportErrors(t, "alm-examples", CheckExamples(load(t))) }
func TestDescriptors(t *testing.T) { reportErrors(t, "descriptors", CheckDescriptors(load(t))) }
func TestDeployment(t *testing.T)  { reportErrors(t, "operator Deployment", CheckDeployment(load(t))) }
func TestWebhooks(t *testing.T)    { reportErrors(t, "webhookdefinitions", CheckWebhooks(load(t))) }
func TestRBAC(t *testing.T)        { reportErrors(t, "RBAC", CheckRBAC(load(t))) }
func TestLabels(t *testing.T)      { reportErrors(t, "labels", CheckLabels(load(t))) }

// TestChecksCatchDefects: each check fails on the defect it exists for
// (a check that cannot fail proves nothing).
func TestChecksCatchDefects(t *testing.T) {
	cases := []struct {
		name   string
		check  func(*Bundle) []error
		break_ func(*testing.T, *Bundle)
		want   string
	}{
		{"descriptor path typo", CheckDescriptors, func(t *testing.T, b *Bundle) {
			owned(t, b, "Eip", "v1alpha2").SpecDescriptors[0].Path = "adress"
		}, `no field "adress"`},
		{"spec field without descriptor", CheckDescriptors, func(t *testing.T, b *Bundle) {
			o := owned(t, b, "Eip", "v1alpha2")
			o.SpecDescriptors = slices.DeleteFunc(o.SpecDescriptors, func(d operatorsv1alpha1.SpecDescriptor) bool { return d.Path == "priority" })
		}, "spec.priority has no descriptor"},
		{"status field without descriptor", CheckDescriptors, func(t *testing.T, b *Bundle) {
			o := owned(t, b, "Eip", "v1alpha2")
			o.StatusDescriptors = slices.DeleteFunc(o.StatusDescriptors, func(d operatorsv1alpha1.StatusDescriptor) bool { return d.Path == "poolSize" })
		}, "status.poolSize has no descriptor"},
		{"unknown x-descriptor", CheckDescriptors, func(t *testing.T, b *Bundle) {
			o := owned(t, b, "OpenELB", "v1alpha1")
			o.SpecDescriptors[0].XDescriptors = []string{"urn:alm:descriptor:com.tectonic.ui:booleanswitch"}
		}, "not one the console knows"},
		{"no resources", CheckDescriptors, func(t *testing.T, b *Bundle) { owned(t, b, "BgpPeer", "v1alpha2").Resources = nil }, "resources are required"},
		{"example against the schema", CheckExamples, func(t *testing.T, b *Bundle) {
			setAnnotation(b, "alm-examples", strings.Replace(b.CSV.Annotations["alm-examples"], `"protocol": "layer2"`, `"protocol": "arp"`, 1))
		}, "Unsupported value"},
		{"example against a CEL rule", CheckExamples, func(t *testing.T, b *Bundle) {
			setAnnotation(b, "alm-examples", strings.Replace(b.CSV.Annotations["alm-examples"], `"address": "203.0.113.16/28"`, `"address": "203.0.113.300"`, 1))
		}, "invalid eip address format"},
		{"example with an unknown field", CheckExamples, func(t *testing.T, b *Bundle) {
			setAnnotation(b, "alm-examples", strings.Replace(b.CSV.Annotations["alm-examples"], `"protocol": "bgp"`, `"protocol": "bgp", "protocl": "bgp"`, 1))
		}, "unknown field spec.protocl"},
		{"initialization resource of another kind", CheckExamples, func(t *testing.T, b *Bundle) {
			setAnnotation(b, "operatorframework.io/initialization-resource", `{"apiVersion":"network.kubesphere.io/v1alpha2","kind":"Eip","metadata":{"name":"x"},"spec":{"address":"203.0.113.1"}}`)
		}, "initialization-resource"},
		{"feature annotation not a boolean string", CheckCSV, func(t *testing.T, b *Bundle) {
			setAnnotation(b, "features.operators.openshift.io/proxy-aware", "yes")
		}, "proxy-aware"},
		{"disconnected without digests", CheckCSV, func(t *testing.T, b *Bundle) {
			setAnnotation(b, "features.operators.openshift.io/disconnected", "true")
		}, "not pinned by digest"},
		{"own-namespace install mode", CheckCSV, func(t *testing.T, b *Bundle) {
			b.CSV.Spec.InstallModes[0].Supported = true
		}, "install modes"},
		{"operand image not related", CheckCSV, func(t *testing.T, b *Bundle) {
			b.CSV.Spec.RelatedImages = b.CSV.Spec.RelatedImages[:0]
		}, "not a related image"},
		{"cert-volume trap", CheckDeployment, func(t *testing.T, b *Bundle) {
			pod := &b.CSV.Spec.InstallStrategy.StrategySpec.DeploymentSpecs[0].Spec.Template.Spec
			pod.Volumes = append(pod.Volumes, corev1.Volume{Name: "webhook-certs", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "webhook-server-cert"}}})
		}, "which nothing in the bundle creates"},
		{"fixed user", CheckDeployment, func(t *testing.T, b *Bundle) {
			uid := int64(1000)
			b.CSV.Spec.InstallStrategy.StrategySpec.DeploymentSpecs[0].Spec.Template.Spec.SecurityContext.RunAsUser = &uid
		}, "no fixed runAsUser"},
		{"webhook on another Deployment", CheckWebhooks, func(t *testing.T, b *Bundle) {
			b.CSV.Spec.WebhookDefinitions[0].DeploymentName = "openelb-operator-controller-manager"
		}, "is not the operator Deployment"},
		{"webhook target port not served", CheckWebhooks, func(t *testing.T, b *Bundle) {
			p := intstr.FromInt32(8443)
			b.CSV.Spec.WebhookDefinitions[0].TargetPort = &p
		}, "targetPort"},
		{"CRD converted by nobody", CheckWebhooks, func(t *testing.T, b *Bundle) {
			b.CSV.Spec.WebhookDefinitions[0].ConversionCRDs = b.CSV.Spec.WebhookDefinitions[0].ConversionCRDs[1:]
		}, "no webhook definition serves it"},
		{"namespaced permissions", CheckRBAC, func(t *testing.T, b *Bundle) {
			s := &b.CSV.Spec.InstallStrategy.StrategySpec
			s.Permissions = append(s.Permissions, s.ClusterPermissions[0])
		}, "lifts them to ClusterRoles"},
		{"Dockerfile label differs", CheckLabels, func(t *testing.T, b *Bundle) {
			b.DockerLabels["operators.operatorframework.io.bundle.channels.v1"] = "alpha"
		}, "bundle.Dockerfile LABEL"},
		{"Dockerfile label missing", CheckLabels, func(t *testing.T, b *Bundle) {
			delete(b.DockerLabels, "operators.operatorframework.io.bundle.package.v1")
		}, "bundle.Dockerfile LABEL"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := load(t)
			if errs := tc.check(b); len(errs) > 0 {
				t.Fatalf("the intact bundle already fails: %v", errs)
			}
			tc.break_(t, b)
			errs := tc.check(b)
			if !slices.ContainsFunc(errs, func(err error) bool { return strings.Contains(err.Error(), tc.want) }) {
				t.Fatalf("defect not caught: want an error containing %q, got %v", tc.want, errs)
			}
		})
	}
}

// TestValidatorsCatchDefects: the operator-framework validators run for
// real (the scaffold's empty icon and an unknown category are errors for
// them).
func TestValidatorsCatchDefects(t *testing.T) {
	b := load(t)
	b.Manifests.CSV.Spec.Icon = []operatorsv1alpha1.Icon{{MediaType: "image/svg+xml"}}
	b.Manifests.CSV.Annotations["categories"] = "Load Balancing"
	var validators []string
	for _, f := range RunValidators(b) {
		if !f.Warning {
			validators = append(validators, f.Validator)
		}
	}
	for _, want := range []string{"OperatorHubV2Validator", "StandardCategoriesValidator"} {
		if !slices.Contains(validators, want) {
			t.Errorf("%s found no error (errors from %v)", want, validators)
		}
	}
}

func owned(t *testing.T, b *Bundle, kind, version string) *operatorsv1alpha1.CRDDescription {
	t.Helper()
	for i, o := range b.CSV.Spec.CustomResourceDefinitions.Owned {
		if o.Kind == kind && o.Version == version {
			return &b.CSV.Spec.CustomResourceDefinitions.Owned[i]
		}
	}
	t.Fatalf("no owned %s %s", kind, version)
	return nil
}

func setAnnotation(b *Bundle, k, v string) { b.CSV.Annotations[k] = v }
