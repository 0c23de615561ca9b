package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// EipSpec is the v1alpha1 form of an address pool (OpenELB 0.3/0.4).
//
// +kubebuilder:validation:XValidation:rule="!has(self.protocol) || self.protocol == 'bgp' || (has(self.interface) && self.interface.size() > 0)",message="if protocol is layer2 or vip, interface should not be empty: set spec.interface (accepted in v1alpha1 by openelb-operator) or use network.kubesphere.io/v1alpha2"
type EipSpec struct {
	// Address is an IPv4 address, CIDR or range.
	// +kubebuilder:validation:Pattern=`^([0-9]{1,3}\.){3}[0-9]{1,3}((\/([0-9]|[1-2][0-9]|3[0-2]))|(\-([0-9]{1,3}\.){3}[0-9]{1,3}))?$`
	Address string `json:"address"`
	// Protocol is bgp (default), layer2 or vip.
	// +optional
	// +kubebuilder:validation:Enum=bgp;layer2;vip
	Protocol string `json:"protocol,omitempty"`
	// Interface for layer2 and vip (added by this project; v1alpha1 had no
	// such field, which made layer2 Eips impossible to create in OpenELB).
	// +optional
	// +kubebuilder:validation:MaxLength=64
	Interface string `json:"interface,omitempty"`
	// +optional
	Disable bool `json:"disable,omitempty"`
	// +optional
	UsingKnownIPs bool `json:"usingKnownIPs,omitempty"`
}

// EipStatus is the v1alpha1 status of an Eip.
type EipStatus struct {
	// +optional
	Occupied bool `json:"occupied,omitempty"`
	// +optional
	Usage int `json:"usage,omitempty"`
	// +optional
	PoolSize int `json:"poolSize,omitempty"`
}

// Eip is the v1alpha1 form of an address pool.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Cluster,categories=networking
// +kubebuilder:printcolumn:name="cidr",type=string,JSONPath=`.spec.address`
// +kubebuilder:printcolumn:name="usage",type=integer,JSONPath=`.status.usage`
// +kubebuilder:printcolumn:name="total",type=integer,JSONPath=`.status.poolSize`
// +kubebuilder:printcolumn:name="protocol",type=string,JSONPath=`.spec.protocol`,priority=1
// +kubebuilder:printcolumn:name="age",type=date,JSONPath=`.metadata.creationTimestamp`,priority=1
type Eip struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

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

// BgpConfSpec is the v1alpha1 global BGP configuration.
type BgpConfSpec struct {
	// As is the local AS number.
	As uint32 `json:"as"`
	// RouterId is the router ID (v1alpha2: routerId).
	// +kubebuilder:validation:Pattern=`^([0-9]{1,3}\.){3}[0-9]{1,3}$`
	RouterId string `json:"routerID"`
	// Port is the listen port (v1alpha2: listenPort).
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	Port int32 `json:"port"`
}

// BgpConfStatus is empty in v1alpha1.
type BgpConfStatus struct{}

// BgpConf is the v1alpha1 global BGP configuration.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Cluster,categories=networking
// +kubebuilder:printcolumn:name="as",type=integer,JSONPath=`.spec.as`
// +kubebuilder:printcolumn:name="router-id",type=string,JSONPath=`.spec.routerID`
// +kubebuilder:printcolumn:name="port",type=integer,JSONPath=`.spec.port`
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

// NeighborConfig is the v1alpha1 neighbour.
type NeighborConfig struct {
	// PeerAs is the neighbour's AS number.
	PeerAs uint32 `json:"peerAs"`
	// NeighborAddress is the neighbour's IPv4 address.
	// +kubebuilder:validation:Pattern=`^([0-9]{1,3}\.){3}[0-9]{1,3}$`
	NeighborAddress string `json:"neighborAddress"`
}

// AddPaths is the v1alpha1 ADD-PATH setting.
type AddPaths struct {
	// +optional
	SendMax uint8 `json:"sendMax,omitempty"`
}

// Transport is the v1alpha1 transport.
type Transport struct {
	// +optional
	PassiveMode bool `json:"passiveMode,omitempty"`
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	RemotePort uint16 `json:"remotePort,omitempty"`
}

// BgpPeerSpec is the v1alpha1 BGP neighbour.
type BgpPeerSpec struct {
	// +optional
	Config NeighborConfig `json:"config,omitempty"`
	// +optional
	AddPaths AddPaths `json:"addPaths,omitempty"`
	// +optional
	Transport Transport `json:"transport,omitempty"`
	// UsingPortForward had a meaning in OpenELB 0.3 only; it is kept and
	// ignored.
	// +optional
	UsingPortForward bool `json:"usingPortForward,omitempty"`
}

// BgpPeerStatus is empty in v1alpha1.
type BgpPeerStatus struct{}

// BgpPeer is the v1alpha1 BGP neighbour.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Cluster,categories=networking
// +kubebuilder:printcolumn:name="neighbor",type=string,JSONPath=`.spec.config.neighborAddress`
// +kubebuilder:printcolumn:name="peer-as",type=integer,JSONPath=`.spec.config.peerAs`
// +kubebuilder:printcolumn:name="age",type=date,JSONPath=`.metadata.creationTimestamp`
type BgpPeer struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +optional
	Spec BgpPeerSpec `json:"spec,omitempty"`
	// +optional
	Status BgpPeerStatus `json:"status,omitempty"`
}

// BgpPeerList contains a list of BgpPeer.
//
// +kubebuilder:object:root=true
type BgpPeerList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []BgpPeer `json:"items"`
}

func init() {
	SchemeBuilder.Register(&Eip{}, &EipList{}, &BgpConf{}, &BgpConfList{}, &BgpPeer{}, &BgpPeerList{})
}
