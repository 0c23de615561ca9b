package v1alpha2

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// BgpPeerSpec is a BGP neighbour of the speakers. Fields and JSON names are
// those of OpenELB 0.6 (a mirror of gobgp's api.Peer); fields added by this
// project are optional and say so.
//
// +kubebuilder:validation:XValidation:rule="!has(self.timers) || !has(self.timers.config) || !has(self.timers.config.holdTime) || int(self.timers.config.holdTime) == 0 || int(self.timers.config.holdTime) >= 3",message="timers.config.holdTime must be 0 or at least 3 seconds (RFC 4271)"
// +kubebuilder:validation:XValidation:rule="!has(self.timers) || !has(self.timers.config) || !has(self.timers.config.holdTime) || !has(self.timers.config.keepaliveInterval) || int(self.timers.config.holdTime) == 0 || int(self.timers.config.keepaliveInterval) < int(self.timers.config.holdTime)",message="timers.config.keepaliveInterval must be shorter than holdTime"
type BgpPeerSpec struct {
	// Conf is the neighbour: address, AS numbers, password, ...
	// +optional
	Conf *PeerConf `json:"conf,omitempty"`
	// EbgpMultihop allows eBGP sessions over several hops.
	// +optional
	EbgpMultihop *EbgpMultihop `json:"ebgpMultihop,omitempty"`
	// Timers of the session (seconds, as strings: gobgp's proto-JSON form).
	// +optional
	Timers *Timers `json:"timers,omitempty"`
	// Transport of the session.
	// +optional
	Transport *Transport `json:"transport,omitempty"`
	// GracefulRestart of the session.
	// +optional
	GracefulRestart *GracefulRestart `json:"gracefulRestart,omitempty"`
	// AfiSafis are the address families of the session. Empty: the family
	// of conf.neighborAddress, unicast.
	// +optional
	AfiSafis []*AfiSafi `json:"afiSafis,omitempty"`

	// NodeSelector selects the nodes whose speakers peer with this
	// neighbour; empty means every speaker. Re-evaluated when Node labels
	// change.
	// +optional
	NodeSelector *metav1.LabelSelector `json:"nodeSelector,omitempty"`

	// AuthPasswordSecretRef takes the TCP-MD5 password from a Secret in the
	// OpenELB namespace instead of conf.authPassword (added by this
	// project; preferred over the plain-text field, which it overrides).
	// +optional
	AuthPasswordSecretRef *SecretKeyRef `json:"authPasswordSecretRef,omitempty"`
}

// SecretKeyRef names a key of a Secret in the OpenELB namespace.
type SecretKeyRef struct {
	// Name of the Secret.
	// +kubebuilder:validation:MinLength=1
	Name string `json:"name"`
	// Key in the Secret; "password" when empty.
	// +optional
	Key string `json:"key,omitempty"`
}

// PeerConf mirrors gobgp's PeerConf.
//
// +kubebuilder:validation:XValidation:rule="!has(self.neighborAddress) || self.neighborAddress.size() == 0 || isIP(self.neighborAddress)",message="conf.neighborAddress must be an IP address"
type PeerConf struct {
	// AuthPassword is the TCP-MD5 password in plain text (OpenELB 0.6);
	// prefer spec.authPasswordSecretRef.
	// +optional
	AuthPassword string `json:"authPassword,omitempty"`
	// +optional
	Description string `json:"description,omitempty"`
	// LocalAs overrides the BgpConf AS for this session.
	// +optional
	LocalAs uint32 `json:"localAs,omitempty"`
	// NeighborAddress is the neighbour's IP address.
	// +optional
	NeighborAddress string `json:"neighborAddress,omitempty"`
	// PeerAs is the neighbour's AS number.
	// +optional
	PeerAs uint32 `json:"peerAs,omitempty"`
	// +optional
	PeerGroup string `json:"peerGroup,omitempty"`
	// +optional
	PeerType uint32 `json:"peerType,omitempty"`
	// +optional
	// +kubebuilder:validation:Enum=NONE;ALL;REPLACE
	RemovePrivateAs string `json:"removePrivateAs,omitempty"`
	// +optional
	RouteFlapDamping bool `json:"routeFlapDamping,omitempty"`
	// +optional
	SendCommunity uint32 `json:"sendCommunity,omitempty"`
	// +optional
	NeighborInterface string `json:"neighborInterface,omitempty"`
	// +optional
	Vrf string `json:"vrf,omitempty"`
	// +optional
	AllowOwnAs uint32 `json:"allowOwnAs,omitempty"`
	// +optional
	ReplacePeerAs bool `json:"replacePeerAs,omitempty"`
	// +optional
	AdminDown bool `json:"adminDown,omitempty"`
}

// EbgpMultihop mirrors gobgp's EbgpMultihop.
type EbgpMultihop struct {
	// +optional
	Enabled bool `json:"enabled,omitempty"`
	// +optional
	MultihopTtl uint32 `json:"multihopTtl,omitempty"`
}

// Timers mirrors gobgp's Timers.
type Timers struct {
	// +optional
	Config *TimersConfig `json:"config,omitempty"`
}

// TimersConfig holds session timers in seconds, written as strings (gobgp's
// proto-JSON form of uint64), e.g. holdTime: "9".
type TimersConfig struct {
	// +optional
	// +kubebuilder:validation:Pattern=`^[0-9]{1,9}$`
	ConnectRetry string `json:"connectRetry,omitempty"`
	// +optional
	// +kubebuilder:validation:Pattern=`^[0-9]{1,9}$`
	HoldTime string `json:"holdTime,omitempty"`
	// +optional
	// +kubebuilder:validation:Pattern=`^[0-9]{1,9}$`
	KeepaliveInterval string `json:"keepaliveInterval,omitempty"`
	// +optional
	// +kubebuilder:validation:Pattern=`^[0-9]{1,9}$`
	MinimumAdvertisementInterval string `json:"minimumAdvertisementInterval,omitempty"`
}

// Transport mirrors gobgp's Transport.
type Transport struct {
	// +optional
	MtuDiscovery bool `json:"mtuDiscovery,omitempty"`
	// PassiveMode waits for the neighbour to connect.
	// +optional
	PassiveMode bool `json:"passiveMode,omitempty"`
	// +optional
	RemoteAddress string `json:"remoteAddress,omitempty"`
	// +optional
	// +kubebuilder:validation:Maximum=65535
	RemotePort uint32 `json:"remotePort,omitempty"`
	// +optional
	TcpMss uint32 `json:"tcpMss,omitempty"`
	// LocalAddress is the source address of the session (added by this
	// project; a node address when empty).
	// +optional
	LocalAddress string `json:"localAddress,omitempty"`
}

// MpGracefulRestartConfig mirrors gobgp's MpGracefulRestartConfig.
type MpGracefulRestartConfig struct {
	// +optional
	Enabled bool `json:"enabled,omitempty"`
}

// MpGracefulRestart mirrors gobgp's MpGracefulRestart.
type MpGracefulRestart struct {
	// +optional
	Config *MpGracefulRestartConfig `json:"config,omitempty"`
}

// Family is an AFI/SAFI pair in gobgp's enum names.
type Family struct {
	// +optional
	// +kubebuilder:validation:Enum=AFI_UNKNOWN;AFI_IP;AFI_IP6;AFI_L2VPN;AFI_LS;AFI_OPAQUE
	Afi string `json:"afi,omitempty"`
	// +optional
	// +kubebuilder:validation:Enum=SAFI_UNKNOWN;SAFI_UNICAST;SAFI_MULTICAST;SAFI_MPLS_LABEL;SAFI_ENCAPSULATION;SAFI_VPLS;SAFI_EVPN;SAFI_LS;SAFI_SR_POLICY;SAFI_MUP;SAFI_MPLS_VPN;SAFI_MPLS_VPN_MULTICAST;SAFI_ROUTE_TARGET_CONSTRAINTS;SAFI_FLOW_SPEC_UNICAST;SAFI_FLOW_SPEC_VPN;SAFI_KEY_VALUE
	Safi string `json:"safi,omitempty"`
}

// AfiSafiConfig mirrors gobgp's AfiSafiConfig.
type AfiSafiConfig struct {
	// +optional
	Family *Family `json:"family,omitempty"`
	// +optional
	Enabled bool `json:"enabled,omitempty"`
}

// AddPathsConfig mirrors gobgp's AddPathsConfig.
type AddPathsConfig struct {
	// +optional
	Receive bool `json:"receive,omitempty"`
	// +optional
	SendMax uint32 `json:"sendMax,omitempty"`
}

// AddPaths mirrors gobgp's AddPaths.
type AddPaths struct {
	// +optional
	Config *AddPathsConfig `json:"config,omitempty"`
}

// AfiSafi mirrors gobgp's AfiSafi.
type AfiSafi struct {
	// +optional
	MpGracefulRestart *MpGracefulRestart `json:"mpGracefulRestart,omitempty"`
	// +optional
	Config *AfiSafiConfig `json:"config,omitempty"`
	// +optional
	AddPaths *AddPaths `json:"addPaths,omitempty"`
}

// Message counts BGP messages (gobgp proto-JSON: numbers as strings).
type Message struct {
	// +optional
	Notification string `json:"notification,omitempty"`
	// +optional
	Update string `json:"update,omitempty"`
	// +optional
	Open string `json:"open,omitempty"`
	// +optional
	Keepalive string `json:"keepalive,omitempty"`
	// +optional
	Refresh string `json:"refresh,omitempty"`
	// +optional
	Discarded string `json:"discarded,omitempty"`
	// +optional
	Total string `json:"total,omitempty"`
	// +optional
	WithdrawUpdate string `json:"withdrawUpdate,omitempty"`
	// +optional
	WithdrawPrefix string `json:"withdrawPrefix,omitempty"`
}

// Messages counts received and sent messages.
type Messages struct {
	// +optional
	Received *Message `json:"received,omitempty"`
	// +optional
	Sent *Message `json:"sent,omitempty"`
}

// Queues mirrors gobgp's Queues.
type Queues struct {
	// +optional
	Input uint32 `json:"input,omitempty"`
	// +optional
	Output uint32 `json:"output,omitempty"`
}

// PeerState is a session's state as one speaker sees it.
type PeerState struct {
	// AuthPassword is never reported by this project (always empty); the
	// field is kept for schema compatibility.
	// +optional
	AuthPassword string `json:"authPassword,omitempty"`
	// +optional
	Description string `json:"description,omitempty"`
	// +optional
	LocalAs uint32 `json:"localAs,omitempty"`
	// +optional
	Messages *Messages `json:"messages,omitempty"`
	// +optional
	NeighborAddress string `json:"neighborAddress,omitempty"`
	// +optional
	PeerAs uint32 `json:"peerAs,omitempty"`
	// +optional
	PeerGroup string `json:"peerGroup,omitempty"`
	// +optional
	PeerType uint32 `json:"peerType,omitempty"`
	// +optional
	Queues *Queues `json:"queues,omitempty"`
	// +optional
	RemovePrivateAs uint32 `json:"removePrivateAs,omitempty"`
	// +optional
	RouteFlapDamping bool `json:"routeFlapDamping,omitempty"`
	// +optional
	SendCommunity uint32 `json:"sendCommunity,omitempty"`
	// SessionState is IDLE, CONNECT, ACTIVE, OPENSENT, OPENCONFIRM or
	// ESTABLISHED.
	// +optional
	SessionState string `json:"sessionState,omitempty"`
	// +optional
	AdminState string `json:"adminState,omitempty"`
	// +optional
	OutQ uint32 `json:"outQ,omitempty"`
	// +optional
	Flops uint32 `json:"flops,omitempty"`
	// +optional
	RouterId string `json:"routerId,omitempty"`
	// LastError explains why the session is not established, when known
	// (added by this project).
	// +optional
	LastError string `json:"lastError,omitempty"`
	// AdvertisedRoutes is the number of routes sent to the neighbour
	// (added by this project).
	// +optional
	AdvertisedRoutes int64 `json:"advertisedRoutes,omitempty"`
	// ReceivedRoutes is the number of routes received (added by this
	// project).
	// +optional
	ReceivedRoutes int64 `json:"receivedRoutes,omitempty"`
}

// TimersState is a session's timers as one speaker sees them.
type TimersState struct {
	// +optional
	ConnectRetry string `json:"connectRetry,omitempty"`
	// +optional
	HoldTime string `json:"holdTime,omitempty"`
	// +optional
	KeepaliveInterval string `json:"keepaliveInterval,omitempty"`
	// +optional
	MinimumAdvertisementInterval string `json:"minimumAdvertisementInterval,omitempty"`
	// +optional
	NegotiatedHoldTime string `json:"negotiatedHoldTime,omitempty"`
	// +optional
	Uptime string `json:"uptime,omitempty"`
	// +optional
	Downtime string `json:"downtime,omitempty"`
}

// NodePeerStatus is one speaker's view of the session.
type NodePeerStatus struct {
	// +optional
	PeerState PeerState `json:"peerState,omitempty"`
	// +optional
	TimersState TimersState `json:"timersState,omitempty"`
}

// BgpPeerStatus reports the session state per node.
type BgpPeerStatus struct {
	// NodesPeerStatus maps a node name to its session state.
	// +optional
	NodesPeerStatus map[string]NodePeerStatus `json:"nodesPeerStatus,omitempty"`

	// Conditions (added by this project).
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// BgpPeer is a BGP neighbour of the speakers.
//
// +kubebuilder:object:root=true
// +kubebuilder:storageversion
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Cluster,categories=networking
// +kubebuilder:printcolumn:name="neighbor",type=string,JSONPath=`.spec.conf.neighborAddress`
// +kubebuilder:printcolumn:name="peer-as",type=integer,JSONPath=`.spec.conf.peerAs`
// +kubebuilder:printcolumn:name="local-as",type=integer,JSONPath=`.spec.conf.localAs`,priority=1
// +kubebuilder:printcolumn:name="passive",type=boolean,JSONPath=`.spec.transport.passiveMode`,priority=1
// +kubebuilder:printcolumn:name="established",type=string,JSONPath=`.status.conditions[?(@.type=="Established")].message`
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
	SchemeBuilder.Register(&BgpPeer{}, &BgpPeerList{})
}
