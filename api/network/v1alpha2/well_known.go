package v1alpha2

// Well-known annotations, labels and finalizers. The keys are those of
// OpenELB 0.6 (pkg/constant) so that existing Services, Eips and Nodes keep
// their meaning; keys added by this project say so.
const (
	// AnnotationOpenELB on a Service with value "openelb" opts a class-less
	// LoadBalancer Service in (OpenELB 0.6 behaviour).
	AnnotationOpenELB = "lb.kubesphere.io/v1alpha1"
	// ValueOpenELB is the value of AnnotationOpenELB.
	ValueOpenELB = "openelb"

	// AnnotationEip on a Service names the Eip (or, comma separated, one Eip
	// per family) to allocate from. As a Service label it records the Eip an
	// address was allocated from.
	AnnotationEip = "eip.openelb.kubesphere.io/v1alpha2"
	// LabelEip is the Service label recording the source Eip (same key).
	LabelEip = AnnotationEip

	// AnnotationRequestedIP on a Service requests one address; it takes
	// precedence over spec.loadBalancerIP.
	AnnotationRequestedIP = "eip.openelb.kubesphere.io/v1alpha1"
	// AnnotationRequestedIPs on a Service requests one address per family,
	// comma separated (added by this project for dual-stack).
	AnnotationRequestedIPs = "eip.openelb.kubesphere.io/ips"

	// AnnotationDefaultEip with value "true" on an Eip makes it the cluster
	// default pool; at most one Eip may carry it.
	AnnotationDefaultEip = "eip.openelb.kubesphere.io/is-default-eip"

	// AnnotationProtocol on a Service is accepted for compatibility; the
	// protocol comes from the Eip.
	AnnotationProtocol = "protocol.openelb.kubesphere.io/v1alpha1"

	// AnnotationLayer2Interface on a Node overrides the layer2 interface on
	// that node (name, or an IP of the node whose interface is used).
	AnnotationLayer2Interface = "layer2.openelb.kubesphere.io/v1alpha1"

	// AnnotationSharedIP on a Service is the sharing key (added by this
	// project): Services carrying the same key may share an address across
	// namespaces when their ports do not clash.
	AnnotationSharedIP = "openelb.kubesphere.io/allow-shared-ip"

	// AnnotationAllocatedFrom on a Service records the Eip(s) its addresses
	// were allocated from (added by this project; with status.loadBalancer it
	// is the source of truth for IPAM).
	AnnotationAllocatedFrom = "openelb.kubesphere.io/allocated-from"

	// AnnotationAnnouncer on a Service records which node announces each of
	// its addresses (added by this project).
	AnnotationAnnouncer = "openelb.kubesphere.io/announcer"

	// LabelRack on a Node selects the AS from BgpConf.spec.asPerRack.
	LabelRack = "openelb.kubesphere.io/rack"

	// LabelCNI on an Eip, BgpConf or BgpPeer marks an object handled by a
	// BGP-speaking CNI; speakers skip such BgpConf and BgpPeer objects.
	LabelCNI = "openelb.kubesphere.io/cni"

	// FinalizerEip protects an Eip while addresses from it are in use.
	FinalizerEip = "finalizer.ipam.kubesphere.io/v1alpha1"
	// FinalizerService keeps a Service until its address is released.
	FinalizerService = "finalizer.lb.kubesphere.io/v1alpha1"

	// AnnotationBGPCommunities on a bgp Eip or on a Service adds BGP
	// standard communities to the routes of its addresses: a comma list of
	// "AS:value" or no-export, no-advertise, no-export-subconfed (added by
	// this project; a Service's annotation wins over its Eip's).
	AnnotationBGPCommunities = "bgp.openelb.kubesphere.io/communities"
	// AnnotationBGPLocalPref on a bgp Eip or on a Service sets LOCAL_PREF
	// on the routes of its addresses (iBGP neighbours only; added by this
	// project; a Service's annotation wins over its Eip's).
	AnnotationBGPLocalPref = "bgp.openelb.kubesphere.io/local-pref"

	// DefaultBgpConfName is the only BgpConf name that is honoured.
	DefaultBgpConfName = "default"

	// ProtocolBGP, ProtocolLayer2 and ProtocolVIP are the Eip protocols.
	ProtocolBGP    = "bgp"
	ProtocolLayer2 = "layer2"
	ProtocolVIP    = "vip"
)
