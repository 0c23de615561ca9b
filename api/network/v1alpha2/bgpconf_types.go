package v1alpha2

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// BgpConfSpec is the global BGP configuration of every speaker. Only the
// BgpConf named "default" is honoured. Fields and JSON names are those of
// OpenELB 0.6 (a mirror of gobgp's api.Global).
//
// +kubebuilder:validation:XValidation:rule="!has(self.routerId) || self.routerId.size() == 0 || (isIP(self.routerId) && ip(self.routerId).family() == 4)",message="routerId must be an IPv4 address"
type BgpConfSpec struct {
	// As is the local AS number. 0 means BGP is not configured.
	// +optional
	As uint32 `json:"as,omitempty"`
	// AsPerRack maps a rack (Node label openelb.kubesphere.io/rack) to the
	// AS used by the speakers of that rack; such speakers use their node
	// address as router ID.
	// +optional
	AsPerRack map[string]uint32 `json:"asPerRack,omitempty"`
	// RouterId is the BGP router ID. Empty: each speaker uses its node's
	// first IPv4 InternalIP. Set: every speaker uses this same ID.
	// +optional
	RouterId string `json:"routerId,omitempty"`
	// ListenPort is the port the speakers accept BGP sessions on. 0 means
	// the cluster default (spec.speaker.bgp.listenPort of the OpenELB
	// resource, else 179, as in OpenELB); -1 disables listening.
	// +optional
	// +kubebuilder:validation:Minimum=-1
	// +kubebuilder:validation:Maximum=65535
	ListenPort int32 `json:"listenPort,omitempty"`
	// ListenAddresses are the addresses the speakers listen on.
	// +optional
	ListenAddresses []string `json:"listenAddresses,omitempty"`
	// Families are gobgp route family codes.
	// +optional
	Families []uint32 `json:"families,omitempty"`
	// UseMultiplePaths enables multipath in the speakers' RIB.
	// +optional
	UseMultiplePaths bool `json:"useMultiplePaths,omitempty"`
	// GracefulRestart configures BGP graceful restart.
	// +optional
	GracefulRestart *GracefulRestart `json:"gracefulRestart,omitempty"`
	// Policy names a ConfigMap in the OpenELB namespace whose key
	// "gobgp.conf" holds gobgp policy definitions (TOML) applied to the
	// global RIB.
	// +optional
	Policy string `json:"policy,omitempty"`
}

// GracefulRestart mirrors gobgp's GracefulRestart configuration.
type GracefulRestart struct {
	// +optional
	Enabled bool `json:"enabled,omitempty"`
	// +optional
	RestartTime uint32 `json:"restartTime,omitempty"`
	// +optional
	HelperOnly bool `json:"helperOnly,omitempty"`
	// +optional
	DeferralTime uint32 `json:"deferralTime,omitempty"`
	// +optional
	NotificationEnabled bool `json:"notificationEnabled,omitempty"`
	// +optional
	LonglivedEnabled bool `json:"longlivedEnabled,omitempty"`
	// +optional
	StaleRoutesTime uint32 `json:"staleRoutesTime,omitempty"`
	// +optional
	PeerRestartTime uint32 `json:"peerRestartTime,omitempty"`
	// +optional
	PeerRestarting bool `json:"peerRestarting,omitempty"`
	// +optional
	LocalRestarting bool `json:"localRestarting,omitempty"`
	// +optional
	Mode string `json:"mode,omitempty"`
}

// NodeConfStatus is the BGP identity one speaker uses.
type NodeConfStatus struct {
	// +optional
	RouterId string `json:"routerId,omitempty"`
	// +optional
	As uint32 `json:"as,omitempty"`
}

// BgpConfStatus reports, per node, the BGP identity in use.
type BgpConfStatus struct {
	// NodesConfStatus maps a node name to its router ID and AS.
	// +optional
	NodesConfStatus map[string]NodeConfStatus `json:"nodesConfStatus,omitempty"`

	// Conditions (added by this project), e.g. PolicyValid.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// BgpConf is the global BGP configuration of the speakers.
//
// +kubebuilder:object:root=true
// +kubebuilder:storageversion
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Cluster,categories=networking
// +kubebuilder:printcolumn:name="as",type=integer,JSONPath=`.spec.as`
// +kubebuilder:printcolumn:name="router-id",type=string,JSONPath=`.spec.routerId`
// +kubebuilder:printcolumn:name="listen-port",type=integer,JSONPath=`.spec.listenPort`
// +kubebuilder:printcolumn:name="age",type=date,JSONPath=`.metadata.creationTimestamp`
type BgpConf struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +optional
	Spec BgpConfSpec `json:"spec,omitempty"`
	// +optional
	Status BgpConfStatus `json:"status,omitempty"`
}

// BgpConfList contains a list of BgpConf.
//
// +kubebuilder:object:root=true
type BgpConfList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []BgpConf `json:"items"`
}

func init() {
	SchemeBuilder.Register(&BgpConf{}, &BgpConfList{})
}
