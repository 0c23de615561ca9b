package v1alpha2

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// EipSpec is the desired state of an Eip: an address pool for LoadBalancer
// Services. Fields, JSON names and meanings are those of OpenELB 0.6; fields
// added by this project are optional and say so.
//
// +kubebuilder:validation:XValidation:rule="!has(self.protocol) || self.protocol == 'bgp' || (has(self.interface) && self.interface.size() > 0)",message="if protocol is layer2 or vip, interface should not be empty"
type EipSpec struct {
	// Address is the pool: a single IP ("203.0.113.10"), a CIDR
	// ("203.0.113.0/28", every address counted, as in OpenELB) or an
	// inclusive range of one family ("203.0.113.10-203.0.113.20").
	// It may be changed while every address in use stays inside it.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=128
	// +kubebuilder:validation:XValidation:rule="isIP(self) || isCIDR(self) || (self.split('-').size() == 2 && isIP(self.split('-')[0]) && isIP(self.split('-')[1]) && ip(self.split('-')[0]).family() == ip(self.split('-')[1]).family())",message="invalid eip address format: use an IP (203.0.113.10), a CIDR (203.0.113.0/28) or a range of one family (203.0.113.10-203.0.113.20)"
	Address string `json:"address"`

	// Protocol announces the pool's addresses: bgp (default), layer2
	// (ARP/NDP) or vip (keepalived VRRP).
	// +optional
	// +kubebuilder:validation:Enum=bgp;layer2;vip
	Protocol string `json:"protocol,omitempty"`

	// Interface is the node interface for layer2 and vip: a name ("eth0")
	// or "can_reach:<IP>" (the interface of the node's route to that IP).
	// Required for layer2 and vip. The Node annotation
	// layer2.openelb.kubesphere.io/v1alpha1 overrides it per node.
	// +optional
	// +kubebuilder:validation:MaxLength=64
	// +kubebuilder:validation:XValidation:rule="self.size() == 0 || (self.startsWith('can_reach:') ? isIP(self.substring(10)) : self.matches('^[^\\\\s/:]{1,15}$'))",message="interface must be an interface name of at most 15 characters or can_reach:<IP>"
	Interface string `json:"interface,omitempty"`

	// Disable stops new allocations from this pool; addresses already in
	// use stay allocated and announced.
	// +optional
	Disable bool `json:"disable,omitempty"`

	// UsingKnownIPs is kept for OpenELB compatibility and has no effect.
	// +optional
	UsingKnownIPs bool `json:"usingKnownIPs,omitempty"`

	// Priority orders the Eips bound to a namespace: lower first.
	// +optional
	Priority int `json:"priority,omitempty"`

	// Namespaces whose Services allocate from this Eip automatically.
	// +optional
	Namespaces []string `json:"namespaces,omitempty"`

	// NamespaceSelector binds namespaces by labels (matchLabels semantics).
	// +optional
	NamespaceSelector map[string]string `json:"namespaceSelector,omitempty"`

	// NodeSelector restricts the nodes that may announce this pool's
	// addresses (added by this project; empty means every eligible node).
	// +optional
	NodeSelector *metav1.LabelSelector `json:"nodeSelector,omitempty"`
}

// EipStatus is written by the controller only; it is derived from the
// Services that hold addresses of the pool.
type EipStatus struct {
	// Occupied is true when every address of the pool is in use.
	// +optional
	Occupied bool `json:"occupied,omitempty"`
	// Usage is the number of distinct addresses in use.
	// +optional
	Usage int `json:"usage,omitempty"`
	// PoolSize is the number of addresses of the pool, network and
	// broadcast addresses included; it saturates for huge IPv6 pools.
	// +optional
	PoolSize int `json:"poolSize,omitempty"`
	// Used maps an address to the Services holding it ("ns/name", shared
	// addresses "ns/a;ns/b"). It may be bounded for very large pools; see
	// the UsedTruncated condition.
	// +optional
	Used map[string]string `json:"used,omitempty"`
	// FirstIP is the first address of the pool.
	// +optional
	FirstIP string `json:"firstIP,omitempty"`
	// LastIP is the last address of the pool.
	// +optional
	LastIP string `json:"lastIP,omitempty"`
	// Ready is true when the pool is valid and can be used.
	// +optional
	Ready bool `json:"ready,omitempty"`
	// V4 is true for an IPv4 pool.
	// +optional
	V4 bool `json:"v4,omitempty"`

	// ObservedGeneration is the generation the status was computed from
	// (added by this project).
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// Conditions (added by this project): Ready, Conflict, Exhausted, ...
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// Eip is a pool of addresses for LoadBalancer Services.
//
// +kubebuilder:object:root=true
// +kubebuilder:storageversion
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Cluster,categories=networking
// +kubebuilder:printcolumn:name="cidr",type=string,JSONPath=`.spec.address`
// +kubebuilder:printcolumn:name="usage",type=integer,JSONPath=`.status.usage`
// +kubebuilder:printcolumn:name="total",type=integer,JSONPath=`.status.poolSize`
// +kubebuilder:printcolumn:name="protocol",type=string,JSONPath=`.spec.protocol`,priority=1
// +kubebuilder:printcolumn:name="interface",type=string,JSONPath=`.spec.interface`,priority=1
// +kubebuilder:printcolumn:name="disabled",type=boolean,JSONPath=`.spec.disable`,priority=1
// +kubebuilder:printcolumn:name="ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`,priority=1
// +kubebuilder:printcolumn:name="age",type=date,JSONPath=`.metadata.creationTimestamp`,priority=1
type Eip struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +required
	Spec   EipSpec   `json:"spec"`
	Status EipStatus `json:"status,omitempty"`
}

// EipList contains a list of Eip.
//
// +kubebuilder:object:root=true
type EipList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Eip `json:"items"`
}

func init() {
	SchemeBuilder.Register(&Eip{}, &EipList{})
}
