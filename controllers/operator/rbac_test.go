package operator

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"

	"github.com/openelb/openelb-operator/internal/render"
)

// operatorRBAC reads the operator's generated ClusterRole and Role from
// config/rbac/role.yaml.
func operatorRBAC(t *testing.T) (cluster, namespaced []rbacv1.PolicyRule) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "..", "config", "rbac", "role.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
	for {
		var obj struct {
			Kind  string              `json:"kind"`
			Rules []rbacv1.PolicyRule `json:"rules"`
		}
		if err := dec.Decode(&obj); err != nil {
			break
		}
		switch obj.Kind {
		case "ClusterRole":
			cluster = obj.Rules
		case "Role":
			namespaced = obj.Rules
		}
	}
	if cluster == nil || namespaced == nil {
		t.Fatal("config/rbac/role.yaml lacks the ClusterRole or the Role (run make manifests)")
	}
	return cluster, namespaced
}

// covers reports whether rules grant verb on group/resource (no
// resourceNames restriction).
func covers(rules []rbacv1.PolicyRule, group, resource, verb string) bool {
	return coversNames(rules, group, resource, verb, nil)
}

// coversNames reports whether rules grant verb on group/resource for every
// one of names (nil: for any name).
func coversNames(rules []rbacv1.PolicyRule, group, resource, verb string, names []string) bool {
	for _, r := range rules {
		if len(r.ResourceNames) > 0 && (len(names) == 0 || !containsAll(r.ResourceNames, names)) {
			continue
		}
		if (slices.Contains(r.APIGroups, group) || slices.Contains(r.APIGroups, "*")) &&
			(slices.Contains(r.Resources, resource) || slices.Contains(r.Resources, "*")) &&
			(slices.Contains(r.Verbs, verb) || slices.Contains(r.Verbs, "*")) {
			return true
		}
	}
	return false
}

func containsAll(set, items []string) bool {
	for _, i := range items {
		if !slices.Contains(set, i) {
			return false
		}
	}
	return true
}

// TestOperatorHoldsWhatItGrants: Kubernetes refuses to let the operator
// create a (Cluster)Role granting a permission it does not hold itself, so
// every rule rendered for the operands must be covered by the operator's
// markers (cluster-wide rules by its ClusterRole; namespaced ones by its
// ClusterRole or its Role in the install namespace).
func TestOperatorHoldsWhatItGrants(t *testing.T) {
	cluster, namespaced := operatorRBAC(t)
	check := func(what string, rules []rbacv1.PolicyRule, held ...[]rbacv1.PolicyRule) {
		for _, r := range rules {
			for _, g := range r.APIGroups {
				for _, res := range r.Resources {
					for _, v := range r.Verbs {
						ok := false
						for _, h := range held {
							ok = ok || coversNames(h, g, res, v, r.ResourceNames)
						}
						if !ok {
							t.Errorf("%s grants %s %q/%s which the operator does not hold: add a +kubebuilder:rbac marker", what, v, g, res)
						}
					}
				}
			}
		}
	}
	check("controller ClusterRole", render.ControllerClusterRules(), cluster)
	check("speaker ClusterRole", render.SpeakerClusterRules(), cluster)
	check("controller Role", render.ControllerNamespaceRules(), cluster, namespaced)
	check("speaker Role", render.SpeakerNamespaceRules(), cluster, namespaced)
	check("speaker Role on OpenShift", []rbacv1.PolicyRule{render.SpeakerSCCRule()}, cluster, namespaced)
}

// TestOperatorManagesOnlyItsSCC: on OpenShift the operator creates the
// speakers' SecurityContextConstraints and may change only that one (an
// operator that can edit any SCC can grant anyone a privileged one).
func TestOperatorManagesOnlyItsSCC(t *testing.T) {
	cluster, _ := operatorRBAC(t)
	const group, res = "security.openshift.io", "securitycontextconstraints"
	for _, v := range []string{"create", "list", "watch"} {
		if !covers(cluster, group, res, v) {
			t.Errorf("the operator cannot %s SecurityContextConstraints", v)
		}
	}
	for _, v := range []string{"get", "update", "patch", "delete", "use"} {
		if !coversNames(cluster, group, res, v, []string{render.SpeakerSCCName}) {
			t.Errorf("the operator cannot %s SCC %s", v, render.SpeakerSCCName)
		}
		if covers(cluster, group, res, v) {
			t.Errorf("the operator may %s every SCC", v)
		}
	}
}

// TestOperatorReadsSecretsOnlyInItsNamespace: least privilege for the
// operator itself.
func TestOperatorReadsSecretsOnlyInItsNamespace(t *testing.T) {
	cluster, namespaced := operatorRBAC(t)
	if covers(cluster, "", "secrets", "get") || covers(cluster, "", "secrets", "list") {
		t.Error("the operator's ClusterRole reads Secrets cluster-wide")
	}
	if !covers(namespaced, "", "secrets", "create") {
		t.Error("the operator cannot create Secrets in its namespace")
	}
	for _, rules := range [][]rbacv1.PolicyRule{render.ControllerClusterRules(), render.SpeakerClusterRules()} {
		if covers(rules, "", "secrets", "get") || covers(rules, "", "secrets", "list") {
			t.Error("an operand reads Secrets cluster-wide")
		}
	}
}
