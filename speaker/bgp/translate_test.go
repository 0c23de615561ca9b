package bgp

import (
	"net/netip"
	"strings"
	"testing"

	api "github.com/osrg/gobgp/v3/api"
	"google.golang.org/protobuf/proto"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	networkv1alpha2 "github.com/openelb/openelb-operator/api/network/v1alpha2"
)

func bgpConf(name string, mods ...func(*networkv1alpha2.BgpConf)) *networkv1alpha2.BgpConf {
	c := &networkv1alpha2.BgpConf{ObjectMeta: metav1.ObjectMeta{Name: name}}
	c.Spec.As = 64512
	for _, m := range mods {
		m(c)
	}
	return c
}

func bgpPeer(name, nbr string, mods ...func(*networkv1alpha2.BgpPeer)) *networkv1alpha2.BgpPeer {
	p := &networkv1alpha2.BgpPeer{ObjectMeta: metav1.ObjectMeta{Name: name}}
	p.Spec.Conf = &networkv1alpha2.PeerConf{NeighborAddress: nbr, PeerAs: 64500}
	for _, m := range mods {
		m(p)
	}
	return p
}

func baseInputs() Inputs {
	return Inputs{
		Node: "node1", NodeLabels: map[string]string{"rack": "r1"},
		NodeAddresses: []netip.Addr{netip.MustParseAddr("2001:db8::11"), netip.MustParseAddr("198.51.100.11")},
		Namespace:     "openelb-system", Secrets: map[string]map[string][]byte{}, ConfigMaps: map[string]map[string]string{},
	}
}

func TestTranslateGlobal(t *testing.T) {
	tests := []struct {
		name          string
		mod           func(*Inputs)
		wantAS        uint32
		wantRouterID  string
		wantPort      int32
		notConfigured string
		globalErr     string
	}{
		{name: "no BgpConf: BGP not configured", mod: func(in *Inputs) { in.Confs = nil }, notConfigured: `no BgpConf named "default"`},
		{name: "AS 0: not configured", mod: func(in *Inputs) { in.Confs[0].Spec.As = 0 }, notConfigured: "no AS"},
		{name: "router ID: the node's first IPv4 InternalIP, port 179 when nothing is set",
			wantAS: 64512, wantRouterID: "198.51.100.11", wantPort: 179},
		{name: "the speaker's --bgp-listen-port applies when listenPort is 0",
			mod: func(in *Inputs) { in.DefaultListenPort = 17900 }, wantAS: 64512, wantRouterID: "198.51.100.11", wantPort: 17900},
		{name: "a set listenPort wins over the speaker default",
			mod: func(in *Inputs) { in.DefaultListenPort = 17900; in.Confs[0].Spec.ListenPort = 1790 }, wantAS: 64512, wantRouterID: "198.51.100.11", wantPort: 1790},
		{name: "listenPort -1 disables listening",
			mod: func(in *Inputs) { in.Confs[0].Spec.ListenPort = -1 }, wantAS: 64512, wantRouterID: "198.51.100.11", wantPort: -1},
		{name: "a fixed routerId is used by every node",
			mod: func(in *Inputs) { in.Confs[0].Spec.RouterId = "10.0.0.1" }, wantAS: 64512, wantRouterID: "10.0.0.1", wantPort: 179},
		{name: "asPerRack: the rack's AS with the node's own router ID (OpenELB 0.6)",
			mod: func(in *Inputs) {
				in.NodeLabels = map[string]string{networkv1alpha2.LabelRack: "r1"}
				in.Confs[0].Spec.RouterId = "10.0.0.1"
				in.Confs[0].Spec.AsPerRack = map[string]uint32{"r1": 65001, "r2": 65002}
			}, wantAS: 65001, wantRouterID: "198.51.100.11", wantPort: 179},
		{name: "asPerRack without this node's rack: spec.as",
			mod: func(in *Inputs) {
				in.NodeLabels = map[string]string{networkv1alpha2.LabelRack: "r9"}
				in.Confs[0].Spec.AsPerRack = map[string]uint32{"r1": 65001}
			}, wantAS: 64512, wantRouterID: "198.51.100.11", wantPort: 179},
		{name: "IPv6-only node: router ID from the last 32 bits of its address",
			mod:    func(in *Inputs) { in.NodeAddresses = []netip.Addr{netip.MustParseAddr("2001:db8::c633:640b")} },
			wantAS: 64512, wantRouterID: "198.51.100.11", wantPort: 179},
		{name: "no address and no routerId: an error, the running configuration is kept",
			mod: func(in *Inputs) { in.NodeAddresses = nil }, globalErr: "no InternalIP"},
		{name: "the CNI's BgpConf is not ours",
			mod: func(in *Inputs) { in.Confs[0].Labels = map[string]string{networkv1alpha2.LabelCNI: "calico"} }, notConfigured: "no BgpConf"},
		{name: "unknown family code is rejected",
			mod: func(in *Inputs) { in.Confs[0].Spec.Families = []uint32{0, 99} }, globalErr: "unknown gobgp family code 99"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := baseInputs()
			in.Confs = []*networkv1alpha2.BgpConf{bgpConf("default")}
			if tc.mod != nil {
				tc.mod(&in)
			}
			c := Translate(in)
			if tc.notConfigured != "" || tc.globalErr != "" {
				if c.Global != nil {
					t.Fatalf("Global = %v, want nil", c.Global)
				}
				if !strings.Contains(c.NotConfigured, tc.notConfigured) || (tc.notConfigured == "" && c.NotConfigured != "") {
					t.Errorf("NotConfigured = %q, want %q", c.NotConfigured, tc.notConfigured)
				}
				if !strings.Contains(c.GlobalErr, tc.globalErr) || (tc.globalErr == "" && c.GlobalErr != "") {
					t.Errorf("GlobalErr = %q, want %q", c.GlobalErr, tc.globalErr)
				}
				return
			}
			if c.Global == nil {
				t.Fatalf("Global nil: %q %q", c.NotConfigured, c.GlobalErr)
			}
			if c.Global.Asn != tc.wantAS || c.Global.RouterId != tc.wantRouterID || c.Global.ListenPort != tc.wantPort {
				t.Errorf("Global = AS %d, router ID %s, port %d; want %d %s %d", c.Global.Asn, c.Global.RouterId,
					c.Global.ListenPort, tc.wantAS, tc.wantRouterID, tc.wantPort)
			}
		})
	}
}

func TestTranslateConfFields(t *testing.T) {
	in := baseInputs()
	in.Confs = []*networkv1alpha2.BgpConf{bgpConf("default", func(c *networkv1alpha2.BgpConf) {
		c.Spec.ListenAddresses = []string{"198.51.100.11"}
		c.Spec.Families = []uint32{0, 1}
		c.Spec.UseMultiplePaths = true
		c.Spec.GracefulRestart = &networkv1alpha2.GracefulRestart{Enabled: true, RestartTime: 120, NotificationEnabled: true}
	}), bgpConf("other")}
	c := Translate(in)
	want := &api.Global{Asn: 64512, RouterId: "198.51.100.11", ListenPort: 179, ListenAddresses: []string{"198.51.100.11"},
		Families: []uint32{0, 1}, UseMultiplePaths: true, GracefulRestart: &api.GracefulRestart{Enabled: true, RestartTime: 120, NotificationEnabled: true}}
	if !proto.Equal(c.Global, want) {
		t.Errorf("Global =\n%v\nwant\n%v", c.Global, want)
	}
	if r := c.Confs["other"]; r.Accepted() || r.Reason != ReasonNotDefault {
		t.Errorf("BgpConf other: %+v, want rejected as not default", r)
	}
	if r := c.Confs["default"]; !r.Accepted() {
		t.Errorf("BgpConf default rejected: %+v", r)
	}
}

func TestTranslatePolicyConfigMap(t *testing.T) {
	const good = `
[[policy-definitions]]
  name = "p"
  [[policy-definitions.statements]]
    name = "s"
    [policy-definitions.statements.actions.bgp-actions]
      set-local-pref = 200
[global.apply-policy.config]
  export-policy-list = ["p"]
`
	tests := []struct {
		name    string
		policy  string
		cms     map[string]map[string]string
		wantErr string
		want    bool
	}{
		{name: "no policy"},
		{name: "missing ConfigMap", policy: "pol", wantErr: "ConfigMap openelb-system/pol (spec.policy) not found"},
		{name: "missing key", policy: "pol", cms: map[string]map[string]string{"pol": {"other": good}}, wantErr: `has no key "gobgp.conf"`},
		{name: "broken TOML", policy: "pol", cms: map[string]map[string]string{"pol": {PolicyKey: "[[policy-definitions"}}, wantErr: "parse TOML"},
		{name: "valid", policy: "pol", cms: map[string]map[string]string{"pol": {PolicyKey: good}}, want: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := baseInputs()
			in.Confs = []*networkv1alpha2.BgpConf{bgpConf("default", func(c *networkv1alpha2.BgpConf) { c.Spec.Policy = tc.policy })}
			if tc.cms != nil {
				in.ConfigMaps = tc.cms
			}
			c := Translate(in)
			if !strings.Contains(c.PolicyErr, tc.wantErr) || (tc.wantErr == "" && c.PolicyErr != "") {
				t.Errorf("PolicyErr = %q, want %q", c.PolicyErr, tc.wantErr)
			}
			if (c.Policy != nil) != tc.want {
				t.Errorf("Policy = %v, want set=%v", c.Policy, tc.want)
			}
			if c.Global == nil {
				t.Error("a policy problem must not stop BGP")
			}
		})
	}
}

func TestTranslatePeerFields(t *testing.T) {
	in := baseInputs()
	in.Confs = []*networkv1alpha2.BgpConf{bgpConf("default")}
	in.Peers = []*networkv1alpha2.BgpPeer{bgpPeer("full", "198.51.100.1", func(p *networkv1alpha2.BgpPeer) {
		p.Spec.Conf = &networkv1alpha2.PeerConf{AuthPassword: "plain", Description: "tor", LocalAs: 65010, NeighborAddress: "198.51.100.1",
			PeerAs: 64500, RemovePrivateAs: "ALL", RouteFlapDamping: true, SendCommunity: 1, AllowOwnAs: 2, ReplacePeerAs: true, AdminDown: true}
		p.Spec.EbgpMultihop = &networkv1alpha2.EbgpMultihop{Enabled: true, MultihopTtl: 3}
		p.Spec.Timers = &networkv1alpha2.Timers{Config: &networkv1alpha2.TimersConfig{ConnectRetry: "7", HoldTime: "9", KeepaliveInterval: "3", MinimumAdvertisementInterval: "1"}}
		p.Spec.Transport = &networkv1alpha2.Transport{MtuDiscovery: true, PassiveMode: true, RemoteAddress: "198.51.100.1", RemotePort: 1179, TcpMss: 1400, LocalAddress: "198.51.100.11"}
		p.Spec.GracefulRestart = &networkv1alpha2.GracefulRestart{Enabled: true, RestartTime: 90}
		p.Spec.AfiSafis = []*networkv1alpha2.AfiSafi{{
			Config:            &networkv1alpha2.AfiSafiConfig{Family: &networkv1alpha2.Family{Afi: "AFI_IP", Safi: "SAFI_UNICAST"}, Enabled: true},
			MpGracefulRestart: &networkv1alpha2.MpGracefulRestart{Config: &networkv1alpha2.MpGracefulRestartConfig{Enabled: true}},
			AddPaths:          &networkv1alpha2.AddPaths{Config: &networkv1alpha2.AddPathsConfig{Receive: true, SendMax: 8}},
		}}
	})}
	c := Translate(in)
	got := c.Peers["198.51.100.1"]
	want := &api.Peer{
		Conf: &api.PeerConf{AuthPassword: "plain", Description: "tor", LocalAsn: 65010, NeighborAddress: "198.51.100.1", PeerAsn: 64500,
			RemovePrivate: api.RemovePrivate_REMOVE_ALL, RouteFlapDamping: true, SendCommunity: 1, AllowOwnAsn: 2, ReplacePeerAsn: true, AdminDown: true},
		EbgpMultihop: &api.EbgpMultihop{Enabled: true, MultihopTtl: 3},
		Timers:       &api.Timers{Config: &api.TimersConfig{ConnectRetry: 7, HoldTime: 9, KeepaliveInterval: 3, MinimumAdvertisementInterval: 1}},
		Transport: &api.Transport{MtuDiscovery: true, PassiveMode: true, RemoteAddress: "198.51.100.1", RemotePort: 1179, TcpMss: 1400,
			LocalAddress: "198.51.100.11"},
		GracefulRestart: &api.GracefulRestart{Enabled: true, RestartTime: 90},
		AfiSafis: []*api.AfiSafi{{
			Config:            &api.AfiSafiConfig{Family: familyV4, Enabled: true},
			MpGracefulRestart: &api.MpGracefulRestart{Config: &api.MpGracefulRestartConfig{Enabled: true}},
			AddPaths:          &api.AddPaths{Config: &api.AddPathsConfig{Receive: true, SendMax: 8}},
		}},
	}
	if got.Name != "full" || !proto.Equal(got.Spec, want) {
		t.Errorf("peer %q =\n%v\nwant\n%v", got.Name, got.Spec, want)
	}
}

func TestTranslatePeers(t *testing.T) {
	secret := map[string]map[string][]byte{"pw": {"password": []byte("from-secret\n"), "other": []byte("second")}}
	tests := []struct {
		name       string
		peers      []*networkv1alpha2.BgpPeer
		labels     map[string]string
		want       map[string]string // neighbour → BgpPeer name
		results    map[string]PeerResult
		check      func(*testing.T, Config)
		reasonOf   map[string]string
		nodeErrors map[string]string
	}{
		{
			name:  "empty afiSafis: the neighbour's family, unicast; default connect retry",
			peers: []*networkv1alpha2.BgpPeer{bgpPeer("v4", "198.51.100.1"), bgpPeer("v6", "2001:db8::1")},
			want:  map[string]string{"198.51.100.1": "v4", "2001:db8::1": "v6"},
			check: func(t *testing.T, c Config) {
				if f := c.Peers["2001:db8::1"].Spec.AfiSafis[0].Config.Family; !proto.Equal(f, familyV6) {
					t.Errorf("IPv6 neighbour family %v", f)
				}
				if f := c.Peers["198.51.100.1"].Spec.AfiSafis[0].Config.Family; !proto.Equal(f, familyV4) {
					t.Errorf("IPv4 neighbour family %v", f)
				}
				if r := c.Peers["198.51.100.1"].Spec.Timers.Config.ConnectRetry; r != DefaultConnectRetry {
					t.Errorf("connect retry %d, want %d", r, DefaultConnectRetry)
				}
			},
		},
		{
			name: "graceful restart without afiSafis: the default family is protected",
			peers: []*networkv1alpha2.BgpPeer{bgpPeer("gr", "198.51.100.1", func(p *networkv1alpha2.BgpPeer) {
				p.Spec.GracefulRestart = &networkv1alpha2.GracefulRestart{Enabled: true, RestartTime: 60}
			})},
			want: map[string]string{"198.51.100.1": "gr"},
			check: func(t *testing.T, c Config) {
				if !c.Peers["198.51.100.1"].Spec.AfiSafis[0].GetMpGracefulRestart().GetConfig().GetEnabled() {
					t.Errorf("afiSafis %v: graceful restart of the family not enabled", c.Peers["198.51.100.1"].Spec.AfiSafis)
				}
			},
		},
		{
			name: "password from the Secret overrides the plain field (trailing newline trimmed)",
			peers: []*networkv1alpha2.BgpPeer{bgpPeer("a", "198.51.100.1", func(p *networkv1alpha2.BgpPeer) {
				p.Spec.Conf.AuthPassword = "plain"
				p.Spec.AuthPasswordSecretRef = &networkv1alpha2.SecretKeyRef{Name: "pw"}
			}), bgpPeer("b", "198.51.100.2", func(p *networkv1alpha2.BgpPeer) {
				p.Spec.AuthPasswordSecretRef = &networkv1alpha2.SecretKeyRef{Name: "pw", Key: "other"}
			})},
			want: map[string]string{"198.51.100.1": "a", "198.51.100.2": "b"},
			check: func(t *testing.T, c Config) {
				if pw := c.Peers["198.51.100.1"].Spec.Conf.AuthPassword; pw != "from-secret" {
					t.Errorf("password %q", pw)
				}
				if pw := c.Peers["198.51.100.2"].Spec.Conf.AuthPassword; pw != "second" {
					t.Errorf("password of key other %q", pw)
				}
			},
		},
		{
			name: "missing Secret or key: rejected with the reason",
			peers: []*networkv1alpha2.BgpPeer{bgpPeer("a", "198.51.100.1", func(p *networkv1alpha2.BgpPeer) {
				p.Spec.AuthPasswordSecretRef = &networkv1alpha2.SecretKeyRef{Name: "missing"}
			}), bgpPeer("b", "198.51.100.2", func(p *networkv1alpha2.BgpPeer) {
				p.Spec.AuthPasswordSecretRef = &networkv1alpha2.SecretKeyRef{Name: "pw", Key: "nope"}
			})},
			want:     map[string]string{},
			reasonOf: map[string]string{"a": ReasonSecretNotFound, "b": ReasonSecretNotFound},
		},
		{
			name: "nodeSelector: only matching nodes peer",
			peers: []*networkv1alpha2.BgpPeer{bgpPeer("rack1", "198.51.100.1", func(p *networkv1alpha2.BgpPeer) {
				p.Spec.NodeSelector = &metav1.LabelSelector{MatchLabels: map[string]string{"rack": "r1"}}
			}), bgpPeer("rack2", "198.51.100.2", func(p *networkv1alpha2.BgpPeer) {
				p.Spec.NodeSelector = &metav1.LabelSelector{MatchLabels: map[string]string{"rack": "r2"}}
			})},
			want: map[string]string{"198.51.100.1": "rack1"},
			check: func(t *testing.T, c Config) {
				if r := c.PeerResults["rack2"]; r.Selected || !r.Accepted() {
					t.Errorf("rack2: %+v, want accepted and not selected", r)
				}
			},
		},
		{
			name: "an invalid nodeSelector is reported",
			peers: []*networkv1alpha2.BgpPeer{bgpPeer("bad", "198.51.100.1", func(p *networkv1alpha2.BgpPeer) {
				p.Spec.NodeSelector = &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "a", Operator: "Bogus"}}}
			})},
			want:     map[string]string{},
			reasonOf: map[string]string{"bad": ReasonInvalidSelector},
		},
		{
			name:  "CNI-labelled BgpPeers are the CNI's (skipped, not reported)",
			peers: []*networkv1alpha2.BgpPeer{bgpPeer("calico", "198.51.100.1", func(p *networkv1alpha2.BgpPeer) { p.Labels = map[string]string{networkv1alpha2.LabelCNI: "calico"} })},
			want:  map[string]string{},
			check: func(t *testing.T, c Config) {
				if r := c.PeerResults["calico"]; !r.Skipped {
					t.Errorf("calico: %+v, want skipped", r)
				}
			},
		},
		{
			name:       "two BgpPeers for one neighbour on this node: the first by name wins, the other says why",
			peers:      []*networkv1alpha2.BgpPeer{bgpPeer("b", "198.51.100.1"), bgpPeer("a", "198.51.100.1")},
			want:       map[string]string{"198.51.100.1": "a"},
			nodeErrors: map[string]string{"b": "also configured by BgpPeer a"},
		},
		{
			name: "invalid specs are rejected with a message",
			peers: []*networkv1alpha2.BgpPeer{
				bgpPeer("noaddr", ""),
				bgpPeer("noas", "198.51.100.1", func(p *networkv1alpha2.BgpPeer) { p.Spec.Conf.PeerAs = 0 }),
				bgpPeer("hold", "198.51.100.2", func(p *networkv1alpha2.BgpPeer) {
					p.Spec.Timers = &networkv1alpha2.Timers{Config: &networkv1alpha2.TimersConfig{HoldTime: "2"}}
				}),
				bgpPeer("keepalive", "198.51.100.3", func(p *networkv1alpha2.BgpPeer) {
					p.Spec.Timers = &networkv1alpha2.Timers{Config: &networkv1alpha2.TimersConfig{HoldTime: "3", KeepaliveInterval: "3"}}
				}),
				bgpPeer("group", "198.51.100.4", func(p *networkv1alpha2.BgpPeer) { p.Spec.Conf.PeerGroup = "g" }),
				bgpPeer("local", "198.51.100.5", func(p *networkv1alpha2.BgpPeer) {
					p.Spec.Transport = &networkv1alpha2.Transport{LocalAddress: "2001:db8::11"}
				}),
				bgpPeer("family", "198.51.100.6", func(p *networkv1alpha2.BgpPeer) {
					p.Spec.AfiSafis = []*networkv1alpha2.AfiSafi{{Config: &networkv1alpha2.AfiSafiConfig{Family: &networkv1alpha2.Family{Afi: "AFI_IP"}}}}
				}),
				bgpPeer("rp", "198.51.100.7", func(p *networkv1alpha2.BgpPeer) { p.Spec.Conf.RemovePrivateAs = "SOME" }),
			},
			want: map[string]string{},
			reasonOf: map[string]string{"noaddr": ReasonInvalid, "noas": ReasonInvalid, "hold": ReasonInvalid, "keepalive": ReasonInvalid,
				"group": ReasonInvalid, "local": ReasonInvalid, "family": ReasonInvalid, "rp": ReasonInvalid},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := baseInputs()
			in.Confs = []*networkv1alpha2.BgpConf{bgpConf("default")}
			in.Secrets = secret
			in.Peers = tc.peers
			c := Translate(in)
			got := map[string]string{}
			for a, p := range c.Peers {
				got[a] = p.Name
			}
			if len(got) != len(tc.want) {
				t.Errorf("peers %v, want %v", got, tc.want)
			}
			for a, n := range tc.want {
				if got[a] != n {
					t.Errorf("peers %v, want %v", got, tc.want)
				}
			}
			for n, reason := range tc.reasonOf {
				r := c.PeerResults[n]
				if r.Reason != reason || r.Message == "" {
					t.Errorf("BgpPeer %s: %+v, want reason %s with a message", n, r, reason)
				}
			}
			for n, msg := range tc.nodeErrors {
				if r := c.PeerResults[n]; !strings.Contains(r.NodeError, msg) || !r.Accepted() {
					t.Errorf("BgpPeer %s: %+v, want node error %q", n, r, msg)
				}
			}
			if tc.check != nil {
				tc.check(t, c)
			}
		})
	}
}

func TestRouterID(t *testing.T) {
	for _, tc := range []struct {
		addrs []string
		want  string
	}{
		{nil, ""},
		{[]string{"2001:db8::1", "10.0.0.5", "10.0.0.6"}, "10.0.0.5"},
		{[]string{"2001:db8::a00:1"}, "10.0.0.1"},
	} {
		var as []netip.Addr
		for _, a := range tc.addrs {
			as = append(as, netip.MustParseAddr(a))
		}
		if got := RouterID(as); got != tc.want {
			t.Errorf("RouterID(%v) = %q, want %q", tc.addrs, got, tc.want)
		}
	}
}
