package bgp

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	api "github.com/osrg/gobgp/v3/api"
	"github.com/osrg/gobgp/v3/pkg/config/oc"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	networkv1alpha2 "github.com/openelb/openelb-operator/api/network/v1alpha2"
)

// PolicyKey is the ConfigMap key holding the gobgp policy (OpenELB 0.6).
const PolicyKey = "gobgp.conf"

// DefaultPasswordKey is the Secret key read when authPasswordSecretRef.key
// is empty.
const DefaultPasswordKey = "password"

// DefaultConnectRetry is the connect-retry interval (seconds) of a BgpPeer
// that sets none. gobgp's own default (120 s, which OpenELB inherited) means
// that a session lost while its router restarts is retried only minutes
// later; 5 s brings it back within seconds.
const DefaultConnectRetry = 5

// Inputs are everything the BGP configuration of one speaker depends on,
// read from the API by the caller. Translate reads nothing else.
type Inputs struct {
	// Node is this node's name; NodeLabels and NodeAddresses (its
	// InternalIPs, in the Node's order) come from its Node object.
	Node          string
	NodeLabels    map[string]string
	NodeAddresses []netip.Addr
	// Confs and Peers are every BgpConf and BgpPeer.
	Confs []*networkv1alpha2.BgpConf
	Peers []*networkv1alpha2.BgpPeer
	// Secrets and ConfigMaps of the speaker namespace referenced by the
	// objects above, by name (absent: not found).
	Secrets    map[string]map[string][]byte
	ConfigMaps map[string]map[string]string
	// Namespace is the speaker namespace (for messages).
	Namespace string
	// DefaultListenPort is used when BgpConf.spec.listenPort is 0 (the
	// speaker's --bgp-listen-port).
	DefaultListenPort int32
}

// Config is the BGP configuration of one speaker: what its gobgp runs.
type Config struct {
	// Global is the global configuration; nil when BGP is not configured
	// (NotConfigured says why) or the BgpConf cannot be used on this node
	// (GlobalErr says why; the running configuration is kept then).
	Global        *api.Global
	NotConfigured string
	GlobalErr     string
	// Policy is the user's policy from the ConfigMap (nil: none). When
	// PolicyErr is set the running policy is kept.
	Policy    *Policy
	PolicyErr string
	// Peers are the neighbours of this node, by neighbour address.
	Peers map[string]Peer
	// Confs reports every BgpConf, PeerResults every BgpPeer, by name.
	Confs       map[string]Result
	PeerResults map[string]PeerResult
}

// A Peer is one neighbour of this node.
type Peer struct {
	// Name is the BgpPeer's name.
	Name string
	// Spec is gobgp's neighbour configuration (it holds the password).
	Spec *api.Peer
}

// Result is the verdict on one object, identical on every speaker.
type Result struct {
	// Reason and Message explain a rejection; empty when accepted.
	Reason, Message string
}

// Accepted reports whether the object is used.
func (r Result) Accepted() bool { return r.Reason == "" }

// PeerResult is the verdict on one BgpPeer.
type PeerResult struct {
	Result
	// Skipped is true for objects labelled openelb.kubesphere.io/cni: they
	// belong to the CNI and this speaker neither uses nor reports them.
	Skipped bool
	// Selected is true when this node peers with the neighbour.
	Selected bool
	// Neighbor is the neighbour address (when valid).
	Neighbor string
	// NodeError is a problem on this node only (another BgpPeer configures
	// the same neighbour here).
	NodeError string
}

// Reasons of rejected objects.
const (
	ReasonNotDefault       = "NotDefault"
	ReasonInvalid          = "InvalidSpec"
	ReasonSecretNotFound   = "SecretNotFound"
	ReasonPolicyNotFound   = "PolicyNotFound"
	ReasonPolicyInvalid    = "PolicyInvalid"
	ReasonDuplicate        = "DuplicateNeighbor"
	ReasonNotConfigured    = "NotConfigured"
	ReasonNoRouterID       = "NoRouterID"
	ReasonInvalidSelector  = "InvalidNodeSelector"
	ReasonAccepted         = "Accepted"
	ReasonPolicyApplied    = "Applied"
	ReasonNoPolicy         = "NoPolicy"
	ReasonManagedByCNI     = "ManagedByCNI"
	ReasonSpeakerStopped   = "SpeakerStopped"
	ReasonEstablished      = "Established"
	ReasonNotEstablished   = "NotEstablished"
	ReasonNoSpeakers       = "NoSpeakers"
	ReasonPasswordProblems = "PasswordProblem"
)

func isCNI(m metav1.Object) bool {
	_, ok := m.GetLabels()[networkv1alpha2.LabelCNI]
	return ok
}

// Translate turns the API objects into this node's BGP configuration. It is
// a pure function of its input.
func Translate(in Inputs) Config {
	out := Config{Peers: map[string]Peer{}, Confs: map[string]Result{}, PeerResults: map[string]PeerResult{}}
	var conf *networkv1alpha2.BgpConf
	for _, c := range in.Confs {
		switch {
		case isCNI(c):
			// The CNI's BgpConf (OpenELB 0.6: "duty of CNI"): not ours.
		case c.Name != networkv1alpha2.DefaultBgpConfName:
			out.Confs[c.Name] = Result{Reason: ReasonNotDefault,
				Message: fmt.Sprintf("only the BgpConf named %q is used; this one is ignored", networkv1alpha2.DefaultBgpConfName)}
		case !c.DeletionTimestamp.IsZero():
		default:
			conf = c
		}
	}
	if conf == nil {
		out.NotConfigured = fmt.Sprintf("no BgpConf named %q", networkv1alpha2.DefaultBgpConfName)
	} else {
		out.Global, out.NotConfigured, out.GlobalErr = translateGlobal(conf, in)
		r := Result{}
		if err := validateConf(conf); err != nil {
			r = Result{Reason: ReasonInvalid, Message: err.Error()}
			out.Global, out.GlobalErr = nil, err.Error()
		}
		out.Confs[conf.Name] = r
		out.Policy, out.PolicyErr = translatePolicy(conf, in)
	}
	translatePeers(in, &out)
	return out
}

// validateConf checks what the CRD schema cannot.
func validateConf(c *networkv1alpha2.BgpConf) error {
	for _, f := range c.Spec.Families {
		if _, ok := oc.IntToAfiSafiTypeMap[int(f)]; !ok {
			return fmt.Errorf("spec.families: unknown gobgp family code %d", f)
		}
	}
	for _, a := range c.Spec.ListenAddresses {
		if _, err := netip.ParseAddr(a); err != nil {
			return fmt.Errorf("spec.listenAddresses: %q is not an IP address", a)
		}
	}
	if c.Spec.RouterId != "" {
		if a, err := netip.ParseAddr(c.Spec.RouterId); err != nil || !a.Is4() {
			return fmt.Errorf("spec.routerId: %q is not an IPv4 address", c.Spec.RouterId)
		}
	}
	return nil
}

// RouterID returns the router ID a node uses when BgpConf.spec.routerId is
// empty: its first IPv4 InternalIP, else the last 32 bits of its first
// IPv6 InternalIP (IPv6-only nodes), else "".
func RouterID(addrs []netip.Addr) string {
	for _, a := range addrs {
		if a.Is4() {
			return a.String()
		}
	}
	for _, a := range addrs {
		if a.Is6() {
			b := a.As16()
			return netip.AddrFrom4([4]byte{b[12], b[13], b[14], b[15]}).String()
		}
	}
	return ""
}

func translateGlobal(c *networkv1alpha2.BgpConf, in Inputs) (g *api.Global, notConfigured, globalErr string) {
	as, routerID := c.Spec.As, c.Spec.RouterId
	if rack := in.NodeLabels[networkv1alpha2.LabelRack]; rack != "" && c.Spec.AsPerRack[rack] > 0 {
		// OpenELB 0.6: a rack AS comes with the node's own router ID.
		as, routerID = c.Spec.AsPerRack[rack], ""
	}
	if as == 0 {
		return nil, "BgpConf default has no AS (spec.as is 0)", ""
	}
	if routerID == "" {
		routerID = RouterID(in.NodeAddresses)
		if routerID == "" {
			return nil, "", fmt.Sprintf("node %s has no InternalIP to derive a router ID from; set BgpConf spec.routerId", in.Node)
		}
	}
	port := c.Spec.ListenPort
	if port == 0 {
		port = in.DefaultListenPort
	}
	if port == 0 {
		port = 179
	}
	g = &api.Global{
		Asn:              as,
		RouterId:         routerID,
		ListenPort:       port,
		ListenAddresses:  slices.Clone(c.Spec.ListenAddresses),
		Families:         slices.Clone(c.Spec.Families),
		UseMultiplePaths: c.Spec.UseMultiplePaths,
		GracefulRestart:  gracefulRestart(c.Spec.GracefulRestart),
	}
	return g, "", ""
}

func gracefulRestart(gr *networkv1alpha2.GracefulRestart) *api.GracefulRestart {
	if gr == nil {
		return nil
	}
	return &api.GracefulRestart{
		Enabled: gr.Enabled, RestartTime: gr.RestartTime, HelperOnly: gr.HelperOnly, DeferralTime: gr.DeferralTime,
		NotificationEnabled: gr.NotificationEnabled, LonglivedEnabled: gr.LonglivedEnabled,
		StaleRoutesTime: gr.StaleRoutesTime, PeerRestartTime: gr.PeerRestartTime,
		PeerRestarting: gr.PeerRestarting, LocalRestarting: gr.LocalRestarting, Mode: gr.Mode,
	}
}

func translatePolicy(c *networkv1alpha2.BgpConf, in Inputs) (*Policy, string) {
	if c.Spec.Policy == "" {
		return nil, ""
	}
	cm, ok := in.ConfigMaps[c.Spec.Policy]
	if !ok {
		return nil, fmt.Sprintf("ConfigMap %s/%s (spec.policy) not found", in.Namespace, c.Spec.Policy)
	}
	text, ok := cm[PolicyKey]
	if !ok {
		return nil, fmt.Sprintf("ConfigMap %s/%s (spec.policy) has no key %q", in.Namespace, c.Spec.Policy, PolicyKey)
	}
	p, err := ParsePolicy(text)
	if err != nil {
		return nil, fmt.Sprintf("ConfigMap %s/%s key %q: %v", in.Namespace, c.Spec.Policy, PolicyKey, err)
	}
	return p, ""
}

func translatePeers(in Inputs, out *Config) {
	peers := slices.Clone(in.Peers)
	slices.SortFunc(peers, func(a, b *networkv1alpha2.BgpPeer) int { return cmp.Compare(a.Name, b.Name) })
	owner := map[string]string{} // neighbour address → BgpPeer name on this node
	for _, p := range peers {
		if isCNI(p) {
			out.PeerResults[p.Name] = PeerResult{Skipped: true, Result: Result{Reason: ReasonManagedByCNI}}
			continue
		}
		if !p.DeletionTimestamp.IsZero() {
			continue
		}
		r := PeerResult{}
		spec, err := translatePeer(p, in)
		switch {
		case err != nil:
			r.Result = *err
		case spec != nil:
			r.Neighbor = spec.Conf.NeighborAddress
		}
		sel, selErr := selected(p, in.NodeLabels)
		if selErr != nil && r.Accepted() {
			r.Result = Result{Reason: ReasonInvalidSelector, Message: "spec.nodeSelector: " + selErr.Error()}
		}
		r.Selected = sel
		if r.Accepted() && sel {
			if other, dup := owner[r.Neighbor]; dup {
				r.NodeError = fmt.Sprintf("neighbour %s is also configured by BgpPeer %s, which this node uses", r.Neighbor, other)
			} else {
				owner[r.Neighbor] = p.Name
				out.Peers[r.Neighbor] = Peer{Name: p.Name, Spec: spec}
			}
		}
		out.PeerResults[p.Name] = r
	}
}

func selected(p *networkv1alpha2.BgpPeer, nodeLabels map[string]string) (bool, error) {
	if p.Spec.NodeSelector == nil {
		return true, nil
	}
	s, err := metav1.LabelSelectorAsSelector(p.Spec.NodeSelector)
	if err != nil {
		return false, err
	}
	return s.Matches(labels.Set(nodeLabels)), nil
}

func parseSeconds(field, s string) (uint64, *Result) {
	if s == "" {
		return 0, nil
	}
	v, err := strconv.ParseUint(strings.TrimSpace(s), 10, 32)
	if err != nil {
		return 0, &Result{Reason: ReasonInvalid, Message: fmt.Sprintf("%s: %q is not a number of seconds", field, s)}
	}
	return v, nil
}

var removePrivate = map[string]api.RemovePrivate{
	"": api.RemovePrivate_REMOVE_NONE, "NONE": api.RemovePrivate_REMOVE_NONE,
	"ALL": api.RemovePrivate_REMOVE_ALL, "REPLACE": api.RemovePrivate_REPLACE,
}

// translatePeer maps one BgpPeer to gobgp's neighbour. Every OpenELB 0.6
// field is carried over; the password comes from authPasswordSecretRef
// when set.
func translatePeer(p *networkv1alpha2.BgpPeer, in Inputs) (*api.Peer, *Result) {
	invalid := func(format string, args ...any) (*api.Peer, *Result) {
		return nil, &Result{Reason: ReasonInvalid, Message: fmt.Sprintf(format, args...)}
	}
	c := p.Spec.Conf
	if c == nil || c.NeighborAddress == "" {
		return invalid("spec.conf.neighborAddress is required")
	}
	nbr, err := netip.ParseAddr(c.NeighborAddress)
	if err != nil {
		return invalid("spec.conf.neighborAddress: %q is not an IP address", c.NeighborAddress)
	}
	if c.PeerAs == 0 {
		return invalid("spec.conf.peerAs is required")
	}
	if c.PeerGroup != "" {
		return invalid("spec.conf.peerGroup is not supported: the speaker defines no peer groups")
	}
	if c.Vrf != "" {
		return invalid("spec.conf.vrf is not supported: the speaker defines no VRFs")
	}
	if c.NeighborInterface != "" {
		return invalid("spec.conf.neighborInterface is not supported: set spec.conf.neighborAddress")
	}
	rp, ok := removePrivate[c.RemovePrivateAs]
	if !ok {
		return invalid("spec.conf.removePrivateAs: %q is not NONE, ALL or REPLACE", c.RemovePrivateAs)
	}
	out := &api.Peer{
		Conf: &api.PeerConf{
			AuthPassword: c.AuthPassword, Description: c.Description, LocalAsn: c.LocalAs,
			NeighborAddress: nbr.String(), PeerAsn: c.PeerAs, Type: api.PeerType(c.PeerType),
			RemovePrivate: rp, RouteFlapDamping: c.RouteFlapDamping, SendCommunity: c.SendCommunity,
			AllowOwnAsn: c.AllowOwnAs, ReplacePeerAsn: c.ReplacePeerAs, AdminDown: c.AdminDown,
		},
		Timers:    &api.Timers{Config: &api.TimersConfig{ConnectRetry: DefaultConnectRetry}},
		Transport: &api.Transport{},
	}
	if ref := p.Spec.AuthPasswordSecretRef; ref != nil {
		key := cmp.Or(ref.Key, DefaultPasswordKey)
		data, ok := in.Secrets[ref.Name]
		if !ok {
			return nil, &Result{Reason: ReasonSecretNotFound,
				Message: fmt.Sprintf("Secret %s/%s (spec.authPasswordSecretRef) not found", in.Namespace, ref.Name)}
		}
		pw, ok := data[key]
		if !ok || len(pw) == 0 {
			return nil, &Result{Reason: ReasonSecretNotFound,
				Message: fmt.Sprintf("Secret %s/%s (spec.authPasswordSecretRef) has no key %q", in.Namespace, ref.Name, key)}
		}
		out.Conf.AuthPassword = strings.TrimRight(string(pw), "\r\n")
	}
	if m := p.Spec.EbgpMultihop; m != nil {
		out.EbgpMultihop = &api.EbgpMultihop{Enabled: m.Enabled, MultihopTtl: m.MultihopTtl}
	}
	if t := p.Spec.Timers; t != nil && t.Config != nil {
		tc := out.Timers.Config
		var r *Result
		fields := []struct {
			name string
			val  string
			dst  *uint64
		}{
			{"spec.timers.config.connectRetry", t.Config.ConnectRetry, &tc.ConnectRetry},
			{"spec.timers.config.holdTime", t.Config.HoldTime, &tc.HoldTime},
			{"spec.timers.config.keepaliveInterval", t.Config.KeepaliveInterval, &tc.KeepaliveInterval},
			{"spec.timers.config.minimumAdvertisementInterval", t.Config.MinimumAdvertisementInterval, &tc.MinimumAdvertisementInterval},
		}
		for _, f := range fields {
			v, err := parseSeconds(f.name, f.val)
			if err != nil {
				r = err
				break
			}
			if f.val != "" {
				*f.dst = v
			}
		}
		if r != nil {
			return nil, r
		}
		if tc.ConnectRetry == 0 {
			tc.ConnectRetry = DefaultConnectRetry
		}
		if tc.HoldTime != 0 && tc.HoldTime < 3 {
			return invalid("spec.timers.config.holdTime must be 0 or at least 3 seconds (RFC 4271)")
		}
		if tc.HoldTime != 0 && tc.KeepaliveInterval >= tc.HoldTime {
			return invalid("spec.timers.config.keepaliveInterval must be shorter than holdTime")
		}
	}
	if t := p.Spec.Transport; t != nil {
		out.Transport = &api.Transport{
			MtuDiscovery: t.MtuDiscovery, PassiveMode: t.PassiveMode, RemoteAddress: t.RemoteAddress,
			RemotePort: t.RemotePort, TcpMss: t.TcpMss, LocalAddress: t.LocalAddress,
		}
		if t.LocalAddress != "" {
			la, err := netip.ParseAddr(t.LocalAddress)
			if err != nil {
				return invalid("spec.transport.localAddress: %q is not an IP address", t.LocalAddress)
			}
			if la.Is4() != nbr.Is4() {
				return invalid("spec.transport.localAddress %s and the neighbour %s are of different families", la, nbr)
			}
			out.Transport.LocalAddress = la.String()
		}
	}
	out.GracefulRestart = gracefulRestart(p.Spec.GracefulRestart)
	afiSafis, r := translateAfiSafis(p.Spec.AfiSafis, nbr)
	if r != nil {
		return nil, r
	}
	if len(p.Spec.AfiSafis) == 0 && out.GracefulRestart.GetEnabled() {
		// Graceful restart protects the families listed in the capability
		// only: the default family is listed (else GR would protect nothing).
		afiSafis[0].MpGracefulRestart = &api.MpGracefulRestart{Config: &api.MpGracefulRestartConfig{Enabled: true}}
	}
	out.AfiSafis = afiSafis
	return out, nil
}

// translateAfiSafis maps the families; none means the neighbour's own
// family, unicast (OpenELB 0.6 defaulting).
func translateAfiSafis(in []*networkv1alpha2.AfiSafi, nbr netip.Addr) ([]*api.AfiSafi, *Result) {
	if len(in) == 0 {
		afi := api.Family_AFI_IP
		if nbr.Is6() {
			afi = api.Family_AFI_IP6
		}
		return []*api.AfiSafi{{Config: &api.AfiSafiConfig{Family: &api.Family{Afi: afi, Safi: api.Family_SAFI_UNICAST}, Enabled: true}}}, nil
	}
	out := make([]*api.AfiSafi, 0, len(in))
	for i, a := range in {
		if a == nil || a.Config == nil || a.Config.Family == nil {
			return nil, &Result{Reason: ReasonInvalid, Message: fmt.Sprintf("spec.afiSafis[%d].config.family is required", i)}
		}
		afi, ok := api.Family_Afi_value[a.Config.Family.Afi]
		if !ok || afi == 0 {
			return nil, &Result{Reason: ReasonInvalid, Message: fmt.Sprintf("spec.afiSafis[%d].config.family.afi: %q is not supported", i, a.Config.Family.Afi)}
		}
		safi, ok := api.Family_Safi_value[a.Config.Family.Safi]
		if !ok || safi == 0 {
			return nil, &Result{Reason: ReasonInvalid, Message: fmt.Sprintf("spec.afiSafis[%d].config.family.safi: %q is not supported", i, a.Config.Family.Safi)}
		}
		as := &api.AfiSafi{Config: &api.AfiSafiConfig{
			Family:  &api.Family{Afi: api.Family_Afi(afi), Safi: api.Family_Safi(safi)},
			Enabled: a.Config.Enabled,
		}}
		if a.MpGracefulRestart != nil && a.MpGracefulRestart.Config != nil {
			as.MpGracefulRestart = &api.MpGracefulRestart{Config: &api.MpGracefulRestartConfig{Enabled: a.MpGracefulRestart.Config.Enabled}}
		}
		if a.AddPaths != nil && a.AddPaths.Config != nil {
			as.AddPaths = &api.AddPaths{Config: &api.AddPathsConfig{Receive: a.AddPaths.Config.Receive, SendMax: a.AddPaths.Config.SendMax}}
		}
		out = append(out, as)
	}
	return out, nil
}
