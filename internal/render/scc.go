package render

import (
	"slices"

	appsv1 "k8s.io/api/apps/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// SpeakerSCCName names the SecurityContextConstraints the operator creates
// for the speakers on OpenShift (0003).
const SpeakerSCCName = "openelb-speaker"

// SCCGroupVersionKind is OpenShift's SecurityContextConstraints kind. The
// operator renders one only when the cluster serves it
// (Settings.SecurityContextConstraints).
var SCCGroupVersionKind = schema.GroupVersionKind{Group: "security.openshift.io", Version: "v1", Kind: "SecurityContextConstraints"}

// SpeakerSCCRule lets the speaker ServiceAccount use the speakers'
// SecurityContextConstraints (OpenShift admits a pod under an SCC its
// ServiceAccount may "use"; RBAC rather than the SCC's users field, so the
// SCC names no namespace).
func SpeakerSCCRule() rbacv1.PolicyRule {
	return rbacv1.PolicyRule{
		APIGroups:     []string{SCCGroupVersionKind.Group},
		Resources:     []string{"securitycontextconstraints"},
		ResourceNames: []string{SpeakerSCCName},
		Verbs:         []string{"use"},
	}
}

// speakerSCC is what the speaker pod needs and nothing more: host network
// and host ports (the metrics and liveness ports on the node), NET_ADMIN,
// NET_RAW and NET_BIND_SERVICE with everything else dropped, root (the
// pod sets runAsUser 0), never privileged, no privilege escalation, a
// read-only root file system, RuntimeDefault seccomp and only the volume
// kinds the pod uses. Priority 0 (as the built-in SCCs without a
// priority): among the SCCs a user may use, a pod that fits a more
// restrictive one is never admitted under this one. The allowed
// capabilities are those the pod's containers add.
func speakerSCC(ds *appsv1.DaemonSet) *unstructured.Unstructured {
	var caps []any
	for _, c := range ds.Spec.Template.Spec.Containers {
		if c.SecurityContext == nil || c.SecurityContext.Capabilities == nil {
			continue
		}
		for _, a := range c.SecurityContext.Capabilities.Add {
			if !slices.Contains(caps, any(string(a))) {
				caps = append(caps, string(a))
			}
		}
	}
	u := &unstructured.Unstructured{Object: map[string]any{
		"allowHostDirVolumePlugin": false,
		"allowHostIPC":             false,
		"allowHostNetwork":         true,
		"allowHostPID":             false,
		"allowHostPorts":           true,
		"allowPrivilegeEscalation": false,
		"allowPrivilegedContainer": false,
		"allowedCapabilities":      caps,
		"defaultAddCapabilities":   []any{},
		"requiredDropCapabilities": []any{"ALL"},
		"fsGroup":                  map[string]any{"type": "RunAsAny"},
		"priority":                 int64(0),
		"readOnlyRootFilesystem":   true,
		"runAsUser":                map[string]any{"type": "MustRunAs", "uid": int64(0)},
		"seLinuxContext":           map[string]any{"type": "MustRunAs"},
		"seccompProfiles":          []any{"runtime/default"},
		"supplementalGroups":       map[string]any{"type": "RunAsAny"},
		"users":                    []any{},
		"groups":                   []any{},
		"volumes":                  []any{"configMap", "downwardAPI", "emptyDir", "projected", "secret"},
	}}
	u.SetGroupVersionKind(SCCGroupVersionKind)
	u.SetName(SpeakerSCCName)
	u.SetLabels(commonLabels(ComponentSpeaker))
	return u
}
