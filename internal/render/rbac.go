package render

import (
	rbacv1 "k8s.io/api/rbac/v1"
)

const networkGroup = "network.kubesphere.io"

func rule(groups, resources, verbs []string) rbacv1.PolicyRule {
	return rbacv1.PolicyRule{APIGroups: groups, Resources: resources, Verbs: verbs}
}

var (
	core   = []string{""}
	netGrp = []string{networkGroup}
	read   = []string{"get", "list", "watch"}
	write  = []string{"update", "patch"}
	events = rule(core, []string{"events"}, []string{"create", "patch"})
)

// ControllerClusterRules are the controller's cluster-wide permissions
// (0003). The operator holds each of them (config/rbac), since RBAC
// forbids granting what one does not hold.
func ControllerClusterRules() []rbacv1.PolicyRule {
	return []rbacv1.PolicyRule{
		rule(core, []string{"services"}, []string{"get", "list", "watch", "update", "patch"}),
		rule(core, []string{"services/status"}, write),
		rule(netGrp, []string{"eips"}, []string{"get", "list", "watch", "update", "patch"}),
		rule(netGrp, []string{"eips/status"}, write),
		rule(netGrp, []string{"eips/finalizers"}, []string{"update"}),
		rule(core, []string{"namespaces"}, read),
		events,
	}
}

// ControllerNamespaceRules are the controller's permissions in the install
// namespace: its leader election Lease and the ConfigMaps IPAM may keep.
func ControllerNamespaceRules() []rbacv1.PolicyRule {
	return []rbacv1.PolicyRule{
		rule([]string{"coordination.k8s.io"}, []string{"leases"}, []string{"get", "list", "watch", "create", "update", "patch", "delete"}),
		rule(core, []string{"configmaps"}, []string{"get", "list", "watch", "create", "update", "patch"}),
	}
}

// SpeakerClusterRules are the speakers' cluster-wide permissions (0003).
func SpeakerClusterRules() []rbacv1.PolicyRule {
	return []rbacv1.PolicyRule{
		rule(core, []string{"services"}, []string{"get", "list", "watch", "patch"}),
		rule([]string{"discovery.k8s.io"}, []string{"endpointslices"}, read),
		rule(core, []string{"nodes"}, read),
		rule(netGrp, []string{"eips"}, read),
		rule(netGrp, []string{"bgpconfs", "bgppeers"}, []string{"get", "list", "watch", "update", "patch"}),
		rule(netGrp, []string{"bgpconfs/status", "bgppeers/status"}, write),
		events,
	}
}

// VIPRecordName is the ConfigMap in which the vip speakers record their
// VRRP plan (speaker/vip RecordName).
const VIPRecordName = "openelb-vip-groups"

// SpeakerNamespaceRules are the speakers' permissions in the install
// namespace: Secrets (BGP passwords) and ConfigMaps (BGP policy) there only;
// no operand reads Secrets elsewhere. The vip record is created by the
// speakers and updated by name (also with vip off: a speaker removes its
// entry when vip is turned off).
func SpeakerNamespaceRules() []rbacv1.PolicyRule {
	vipRecord := rule(core, []string{"configmaps"}, write)
	vipRecord.ResourceNames = []string{VIPRecordName}
	return []rbacv1.PolicyRule{
		rule(core, []string{"secrets"}, read),
		rule(core, []string{"configmaps"}, read),
		rule(core, []string{"configmaps"}, []string{"create"}),
		vipRecord,
	}
}

func controllerClusterRole() *rbacv1.ClusterRole {
	return &rbacv1.ClusterRole{
		TypeMeta:   typeMeta("rbac.authorization.k8s.io/v1", "ClusterRole"),
		ObjectMeta: objectMeta(ControllerName, "", ComponentController),
		Rules:      ControllerClusterRules(),
	}
}

func speakerClusterRole() *rbacv1.ClusterRole {
	return &rbacv1.ClusterRole{
		TypeMeta:   typeMeta("rbac.authorization.k8s.io/v1", "ClusterRole"),
		ObjectMeta: objectMeta(SpeakerName, "", ComponentSpeaker),
		Rules:      SpeakerClusterRules(),
	}
}

func controllerRole(ns string) *rbacv1.Role {
	return &rbacv1.Role{
		TypeMeta:   typeMeta("rbac.authorization.k8s.io/v1", "Role"),
		ObjectMeta: objectMeta(ControllerName, ns, ComponentController),
		Rules:      ControllerNamespaceRules(),
	}
}

// speakerRole holds the speakers' namespaced rules and, on OpenShift, the
// right to use their SecurityContextConstraints (SCC admission checks "use"
// in the pod's namespace).
func speakerRole(ns string, scc bool) *rbacv1.Role {
	rules := SpeakerNamespaceRules()
	if scc {
		rules = append(rules, SpeakerSCCRule())
	}
	return &rbacv1.Role{
		TypeMeta:   typeMeta("rbac.authorization.k8s.io/v1", "Role"),
		ObjectMeta: objectMeta(SpeakerName, ns, ComponentSpeaker),
		Rules:      rules,
	}
}

// clusterRoleBinding binds ClusterRole name to ServiceAccount ns/name.
func clusterRoleBinding(name, ns, component string) *rbacv1.ClusterRoleBinding {
	return &rbacv1.ClusterRoleBinding{
		TypeMeta:   typeMeta("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"),
		ObjectMeta: objectMeta(name, "", component),
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: name},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: name, Namespace: ns}},
	}
}

// roleBinding binds Role ns/name to ServiceAccount ns/name.
func roleBinding(name, ns, component string) *rbacv1.RoleBinding {
	return &rbacv1.RoleBinding{
		TypeMeta:   typeMeta("rbac.authorization.k8s.io/v1", "RoleBinding"),
		ObjectMeta: objectMeta(name, ns, component),
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: name},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: name, Namespace: ns}},
	}
}
