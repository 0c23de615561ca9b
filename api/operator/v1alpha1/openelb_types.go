package v1alpha1

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ResourceName is the only accepted name of the OpenELB resource.
const ResourceName = "openelb"

// DefaultLoadBalancerClass is the loadBalancerClass that is always ours.
const DefaultLoadBalancerClass = "openelb.kubesphere.io/lb"

// OpenELBSpec describes the whole installation. An empty spec is a working
// install: controller with two replicas, speakers on every node with layer2
// and bgp enabled, vip disabled.
type OpenELBSpec struct {
	// LogLevel of every component: debug, info, warn, error, or a
	// verbosity number 0-9 (higher is more verbose).
	// +optional
	// +kubebuilder:default=info
	// +kubebuilder:validation:Pattern=`^(debug|info|warn|error|[0-9])$`
	LogLevel string `json:"logLevel,omitempty"`

	// LogFormat of every component.
	// +optional
	// +kubebuilder:default=json
	// +kubebuilder:validation:Enum=json;console
	LogFormat string `json:"logFormat,omitempty"`

	// Images overrides the images of the operands; by default they run the
	// operator's own image (one image, three roles).
	// +optional
	Images Images `json:"images,omitempty"`

	// ImagePullSecrets for the operand pods.
	// +optional
	ImagePullSecrets []corev1.LocalObjectReference `json:"imagePullSecrets,omitempty"`

	// LoadBalancerClass is the spec.loadBalancerClass that is always handled
	// by OpenELB; Services with another class never are.
	// +optional
	// +kubebuilder:default="openelb.kubesphere.io/lb"
	// +kubebuilder:validation:MaxLength=253
	LoadBalancerClass string `json:"loadBalancerClass,omitempty"`

	// IPAM settings of the controller.
	// +optional
	// +kubebuilder:default={}
	IPAM IPAMSpec `json:"ipam,omitempty"`

	// Controller is the IPAM controller Deployment.
	// +optional
	// +kubebuilder:default={}
	Controller ControllerSpec `json:"controller,omitempty"`

	// Speaker is the per-node speaker DaemonSet.
	// +optional
	// +kubebuilder:default={}
	Speaker SpeakerSpec `json:"speaker,omitempty"`

	// MigrateFromUpstream removes an existing upstream OpenELB installation
	// (openelb-manager, openelb-controller, openelb-speaker workloads not
	// owned by this operator); Eips, BgpConfs, BgpPeers and Service
	// addresses are adopted unchanged.
	// +optional
	MigrateFromUpstream bool `json:"migrateFromUpstream,omitempty"`
}

// Images overrides operand images.
type Images struct {
	// Controller image; the operator's image when empty.
	// +optional
	Controller string `json:"controller,omitempty"`
	// Speaker image; the operator's image when empty.
	// +optional
	Speaker string `json:"speaker,omitempty"`
	// Keepalived is reserved and has no effect: keepalived runs in the
	// speaker pods' keepalived sidecar, from the speaker image (which
	// carries it).
	// The operator reports a Warning Event when it is set.
	// +optional
	Keepalived string `json:"keepalived,omitempty"`
	// PullPolicy of every operand image.
	// +optional
	// +kubebuilder:validation:Enum=Always;IfNotPresent;Never
	PullPolicy corev1.PullPolicy `json:"pullPolicy,omitempty"`
}

// IPAMSpec configures address allocation.
type IPAMSpec struct {
	// NamespaceIsolation forbids a Service to take an address from an Eip
	// bound to other namespaces, even by naming it or requesting one of its
	// addresses. Off by default (OpenELB behaviour: a requested address only
	// has to lie inside an Eip).
	// +optional
	NamespaceIsolation bool `json:"namespaceIsolation,omitempty"`

	// AllocateClasslessServices makes every LoadBalancer Service without a
	// loadBalancerClass ours, even without the lb.kubesphere.io/v1alpha1
	// annotation (MetalLB-style). Off by default.
	// +optional
	AllocateClasslessServices bool `json:"allocateClasslessServices,omitempty"`
}

// PodPlacement is where and how the pods of a component run.
type PodPlacement struct {
	// NodeSelector for the pods.
	// +optional
	NodeSelector map[string]string `json:"nodeSelector,omitempty"`
	// Tolerations for the pods.
	// +optional
	Tolerations []corev1.Toleration `json:"tolerations,omitempty"`
	// Resources of the main container.
	// +optional
	Resources corev1.ResourceRequirements `json:"resources,omitempty"`
	// PriorityClassName of the pods.
	// +optional
	PriorityClassName string `json:"priorityClassName,omitempty"`
}

// ControllerSpec configures the IPAM controller Deployment.
type ControllerSpec struct {
	PodPlacement `json:",inline"`

	// Replicas of the controller; leader election is used when more than
	// one.
	// +optional
	// +kubebuilder:default=2
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=9
	Replicas *int32 `json:"replicas,omitempty"`
}

// SpeakerSpec configures the speaker DaemonSet.
type SpeakerSpec struct {
	PodPlacement `json:",inline"`

	// Layer2 mode: ARP/NDP announcements.
	// +optional
	// +kubebuilder:default={}
	Layer2 Layer2Spec `json:"layer2,omitempty"`

	// BGP mode: an embedded BGP speaker per node.
	// +optional
	// +kubebuilder:default={}
	BGP BGPSpec `json:"bgp,omitempty"`

	// VIP mode: keepalived VRRP per node.
	// +optional
	// +kubebuilder:default={}
	VIP VIPSpec `json:"vip,omitempty"`

	// LivenessPort is the port (UDP, and TCP if the mechanism needs it) speakers use to watch each
	// other's liveness.
	// +optional
	// +kubebuilder:default=7946
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	LivenessPort int32 `json:"livenessPort,omitempty"`

	// MetricsPort is the speakers' metrics and health port on the host.
	// +optional
	// +kubebuilder:default=50053
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	MetricsPort int32 `json:"metricsPort,omitempty"`
}

// Layer2Spec configures layer2 announcements.
type Layer2Spec struct {
	// Enabled starts the layer2 speaker.
	// +optional
	// +kubebuilder:default=true
	Enabled *bool `json:"enabled,omitempty"`

	// Interfaces, when set, restricts layer2 announcements to these
	// interface names; an Eip naming another interface is not announced
	// and is reported.
	// +optional
	Interfaces []string `json:"interfaces,omitempty"`

	// GratuitousRefreshSeconds re-sends gratuitous ARP / unsolicited NA for
	// every announced address at this period (0 disables the refresh).
	// +optional
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=3600
	GratuitousRefreshSeconds int32 `json:"gratuitousRefreshSeconds,omitempty"`
}

// BGPSpec configures BGP announcements.
type BGPSpec struct {
	// Enabled starts the BGP speaker.
	// +optional
	// +kubebuilder:default=true
	Enabled *bool `json:"enabled,omitempty"`

	// ListenPort is the cluster-wide default for BgpConf.spec.listenPort
	// when that is unset. Unset here too: 179, as in OpenELB.
	// Use e.g. 17900 next to a CNI that runs BGP on 179.
	// +optional
	// +kubebuilder:validation:Minimum=-1
	// +kubebuilder:validation:Maximum=65535
	ListenPort *int32 `json:"listenPort,omitempty"`
}

// VIPSpec configures keepalived VRRP.
type VIPSpec struct {
	// Enabled starts keepalived under every speaker.
	// +optional
	// +kubebuilder:default=false
	Enabled *bool `json:"enabled,omitempty"`

	// Interfaces, when set, restricts vip addresses to these interface
	// names.
	// +optional
	Interfaces []string `json:"interfaces,omitempty"`

	// AdvertIntervalMillis is the VRRP advertisement interval; failover
	// takes about three intervals.
	// +optional
	// +kubebuilder:default=1000
	// +kubebuilder:validation:Minimum=10
	// +kubebuilder:validation:Maximum=40950
	AdvertIntervalMillis int32 `json:"advertIntervalMillis,omitempty"`

	// Multicast sends VRRP advertisements by multicast instead of unicast
	// to the other nodes.
	// +optional
	Multicast bool `json:"multicast,omitempty"`
}

// ComponentStatus counts the pods of a component.
type ComponentStatus struct {
	// Desired number of pods.
	// +optional
	Desired int32 `json:"desired"`
	// Ready number of pods.
	// +optional
	Ready int32 `json:"ready"`
	// Updated number of pods running the current spec.
	// +optional
	Updated int32 `json:"updated"`
}

// Condition types of the OpenELB resource.
const (
	ConditionAvailable   = "Available"
	ConditionProgressing = "Progressing"
	ConditionDegraded    = "Degraded"
	ConditionUpgradeable = "Upgradeable"
	// ConditionLeftoversRemoved records that the operator removed objects
	// of an earlier OpenELB install (OpenELB 0.5's keepalived DaemonSet and
	// ConfigMap, or an upstream install on spec.migrateFromUpstream); the
	// message lists them.
	ConditionLeftoversRemoved = "LeftoversRemoved"
)

// Finalizer is the finalizer the operator puts on the OpenELB resource: it
// removes every object the operator created, cluster-scoped ones included,
// before the resource goes. Eips, BgpConfs and BgpPeers are never touched.
const Finalizer = "operator.openelb.kubesphere.io/cleanup"

// OpenELBStatus is the observed state of the installation.
type OpenELBStatus struct {
	// ObservedGeneration is the generation the status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// Conditions: Available, Progressing, Degraded, and LeftoversRemoved
	// once the operator removed objects of an earlier install.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
	// Controller pods.
	// +optional
	Controller ComponentStatus `json:"controller,omitempty"`
	// Speaker pods.
	// +optional
	Speaker ComponentStatus `json:"speaker,omitempty"`
	// Version of the operator that last reconciled the resource.
	// +optional
	Version string `json:"version,omitempty"`
}

// OpenELB is the installation of the OpenELB load balancer. There is one per
// cluster and it must be named "openelb".
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Cluster,shortName=oelb
// +kubebuilder:validation:XValidation:rule="self.metadata.name == 'openelb'",message="there is one OpenELB resource per cluster and it must be named 'openelb'"
// +kubebuilder:printcolumn:name="Available",type=string,JSONPath=`.status.conditions[?(@.type=="Available")].status`
// +kubebuilder:printcolumn:name="Degraded",type=string,JSONPath=`.status.conditions[?(@.type=="Degraded")].status`
// +kubebuilder:printcolumn:name="Controller",type=integer,JSONPath=`.status.controller.ready`
// +kubebuilder:printcolumn:name="Speakers",type=integer,JSONPath=`.status.speaker.ready`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Degraded")].reason`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type OpenELB struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +optional
	// +kubebuilder:default={}
	Spec OpenELBSpec `json:"spec,omitempty"`
	// +optional
	Status OpenELBStatus `json:"status,omitempty"`
}

// OpenELBList contains a list of OpenELB.
//
// +kubebuilder:object:root=true
type OpenELBList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []OpenELB `json:"items"`
}

// IsEnabled reports whether an optional switch is on, with its default.
func IsEnabled(b *bool, def bool) bool {
	if b == nil {
		return def
	}
	return *b
}

func init() {
	SchemeBuilder.Register(&OpenELB{}, &OpenELBList{})
}
