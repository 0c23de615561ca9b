package bgp

import (
	"errors"
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"strings"

	api "github.com/osrg/gobgp/v3/api"
	"github.com/osrg/gobgp/v3/pkg/config/oc"
	"github.com/spf13/viper"
	"google.golang.org/protobuf/proto"
)

// Policy is a gobgp routing policy read from the BgpConf's ConfigMap: the
// defined sets and policies, and the policies applied to what the speaker
// exports. Import policies do not exist for the speaker: it rejects every
// route its neighbours send (it is not a router), so an import section is
// ignored and reported in IgnoredImport.
type Policy struct {
	DefinedSets []*api.DefinedSet
	Policies    []*api.Policy
	// Export names the policies applied to exported routes, in order;
	// ExportDefault is what happens to a route none of them decides.
	Export        []string
	ExportDefault api.RouteAction
	// IgnoredImport says what import configuration was ignored ("" none).
	IgnoredImport string
}

// Equal reports whether p and q configure the same policy.
func (p *Policy) Equal(q *Policy) bool {
	if p == nil || q == nil {
		return p == q
	}
	if !slices.Equal(p.Export, q.Export) || p.ExportDefault != q.ExportDefault ||
		len(p.DefinedSets) != len(q.DefinedSets) || len(p.Policies) != len(q.Policies) {
		return false
	}
	for i := range p.DefinedSets {
		if !proto.Equal(p.DefinedSets[i], q.DefinedSets[i]) {
			return false
		}
	}
	for i := range p.Policies {
		if !proto.Equal(p.Policies[i], q.Policies[i]) {
			return false
		}
	}
	return true
}

// ReservedPolicyPrefix starts the names of the speaker's own policies.
const ReservedPolicyPrefix = "openelb-"

// policyFile is what the ConfigMap may hold: OpenELB 0.6 read the same
// three sections (a whole gobgpd configuration with neighbours is rejected).
type policyFile struct {
	Global            oc.Global             `mapstructure:"global"`
	DefinedSets       oc.DefinedSets        `mapstructure:"defined-sets"`
	PolicyDefinitions []oc.PolicyDefinition `mapstructure:"policy-definitions"`
}

// ParsePolicy parses gobgp's TOML policy configuration (the format of
// gobgpd.conf: [[defined-sets.*]], [[policy-definitions]] and
// [global.apply-policy.config]). Every construct gobgp's API cannot carry
// is an error rather than silently dropped.
func ParsePolicy(text string) (*Policy, error) {
	v := viper.New()
	v.SetConfigType("toml")
	if err := v.ReadConfig(strings.NewReader(text)); err != nil {
		return nil, fmt.Errorf("parse TOML: %w", err)
	}
	var f policyFile
	if err := v.UnmarshalExact(&f); err != nil {
		return nil, fmt.Errorf("only global.apply-policy, defined-sets and policy-definitions are allowed: %w", err)
	}
	sets, err := oc.NewAPIDefinedSetsFromConfigStruct(&f.DefinedSets)
	if err != nil {
		return nil, fmt.Errorf("defined-sets: %w", err)
	}
	for _, s := range f.DefinedSets.PrefixSets {
		for _, p := range s.PrefixList {
			if _, err := netip.ParsePrefix(p.IpPrefix); err != nil {
				return nil, fmt.Errorf("defined-sets prefix-set %q: %q is not a prefix", s.PrefixSetName, p.IpPrefix)
			}
		}
	}
	p := &Policy{DefinedSets: sets, ExportDefault: api.RouteAction_ACCEPT}
	names := map[string]bool{}
	for _, d := range f.PolicyDefinitions {
		ap, err := policyToAPI(d)
		if err != nil {
			return nil, fmt.Errorf("policy-definitions %q: %w", d.Name, err)
		}
		if strings.HasPrefix(d.Name, ReservedPolicyPrefix) {
			return nil, fmt.Errorf("policy-definitions: names starting with %q are reserved", ReservedPolicyPrefix)
		}
		if names[d.Name] {
			return nil, fmt.Errorf("policy-definitions: %q is defined twice", d.Name)
		}
		names[d.Name] = true
		p.Policies = append(p.Policies, ap)
	}
	ac := f.Global.ApplyPolicy.Config
	for _, n := range ac.ExportPolicyList {
		if !names[n] {
			return nil, fmt.Errorf("global.apply-policy.config.export-policy-list: policy %q is not defined", n)
		}
	}
	p.Export = slices.Clone(ac.ExportPolicyList)
	switch ac.DefaultExportPolicy {
	case "", oc.DEFAULT_POLICY_TYPE_ACCEPT_ROUTE:
	case oc.DEFAULT_POLICY_TYPE_REJECT_ROUTE:
		p.ExportDefault = api.RouteAction_REJECT
	default:
		return nil, fmt.Errorf("global.apply-policy.config.default-export-policy: %q is not accept-route or reject-route", ac.DefaultExportPolicy)
	}
	if len(ac.ImportPolicyList) > 0 || ac.DefaultImportPolicy == oc.DEFAULT_POLICY_TYPE_ACCEPT_ROUTE {
		p.IgnoredImport = "import policies are ignored: the speaker rejects every route it receives"
	}
	return p, nil
}

func policyToAPI(d oc.PolicyDefinition) (*api.Policy, error) {
	if d.Name == "" {
		return nil, errors.New("a policy needs a name")
	}
	out := &api.Policy{Name: d.Name}
	for i, s := range d.Statements {
		if s.Name == "" {
			return nil, fmt.Errorf("statement %d has no name", i)
		}
		st, err := statementToAPI(s)
		if err != nil {
			return nil, fmt.Errorf("statement %q: %w", s.Name, err)
		}
		out.Statements = append(out.Statements, st)
	}
	return out, nil
}

var matchAnyAllInvert = map[oc.MatchSetOptionsType]api.MatchSet_Type{
	"": api.MatchSet_ANY, oc.MATCH_SET_OPTIONS_TYPE_ANY: api.MatchSet_ANY,
	oc.MATCH_SET_OPTIONS_TYPE_ALL: api.MatchSet_ALL, oc.MATCH_SET_OPTIONS_TYPE_INVERT: api.MatchSet_INVERT,
}

var matchAnyInvert = map[oc.MatchSetOptionsRestrictedType]api.MatchSet_Type{
	"": api.MatchSet_ANY, oc.MATCH_SET_OPTIONS_RESTRICTED_TYPE_ANY: api.MatchSet_ANY,
	oc.MATCH_SET_OPTIONS_RESTRICTED_TYPE_INVERT: api.MatchSet_INVERT,
}

func matchSet(kind, name string, opt api.MatchSet_Type, ok bool) (*api.MatchSet, error) {
	if name == "" {
		return nil, nil
	}
	if !ok {
		return nil, fmt.Errorf("%s: unknown match-set-options", kind)
	}
	return &api.MatchSet{Name: name, Type: opt}, nil
}

// comparison maps gobgp's attribute comparison names onto the API's
// EQ/GE/LE (the same numbering for AS-path length and community count).
func comparison(c oc.AttributeComparison) (int32, error) {
	switch c {
	case oc.ATTRIBUTE_COMPARISON_EQ, oc.ATTRIBUTE_COMPARISON_ATTRIBUTE_EQ:
		return 0, nil
	case oc.ATTRIBUTE_COMPARISON_GE, oc.ATTRIBUTE_COMPARISON_ATTRIBUTE_GE:
		return 1, nil
	case oc.ATTRIBUTE_COMPARISON_LE, oc.ATTRIBUTE_COMPARISON_ATTRIBUTE_LE:
		return 2, nil
	}
	return 0, fmt.Errorf("unknown operator %q (eq, ge, le)", c)
}

func origin(o oc.BgpOriginAttrType) (api.RouteOriginType, error) {
	switch o {
	case "":
		return api.RouteOriginType_ORIGIN_NONE, nil
	case oc.BGP_ORIGIN_ATTR_TYPE_IGP:
		return api.RouteOriginType_ORIGIN_IGP, nil
	case oc.BGP_ORIGIN_ATTR_TYPE_EGP:
		return api.RouteOriginType_ORIGIN_EGP, nil
	case oc.BGP_ORIGIN_ATTR_TYPE_INCOMPLETE:
		return api.RouteOriginType_ORIGIN_INCOMPLETE, nil
	}
	return 0, fmt.Errorf("unknown origin %q (igp, egp, incomplete)", o)
}

func statementToAPI(s oc.Statement) (*api.Statement, error) {
	c, bc := s.Conditions, s.Conditions.BgpConditions
	switch {
	case c.CallPolicy != "":
		return nil, errors.New("conditions.call-policy is not supported")
	case c.MatchTagSet.TagSet != "" || c.IgpConditions != (oc.IgpConditions{}) || c.InstallProtocolEq != "":
		return nil, errors.New("IGP conditions (tag sets, install-protocol-eq) are not supported")
	case bc.MedEq != 0 || bc.LocalPrefEq != 0:
		return nil, errors.New("bgp-conditions med-eq and local-pref-eq are not supported")
	case s.Actions.IgpActions.SetTag != "":
		return nil, errors.New("igp-actions are not supported")
	}
	cs := &api.Conditions{}
	var err error
	o, ok := matchAnyInvert[c.MatchPrefixSet.MatchSetOptions]
	if cs.PrefixSet, err = matchSet("match-prefix-set", c.MatchPrefixSet.PrefixSet, o, ok); err != nil {
		return nil, err
	}
	o, ok = matchAnyInvert[c.MatchNeighborSet.MatchSetOptions]
	if cs.NeighborSet, err = matchSet("match-neighbor-set", c.MatchNeighborSet.NeighborSet, o, ok); err != nil {
		return nil, err
	}
	o, ok = matchAnyAllInvert[bc.MatchAsPathSet.MatchSetOptions]
	if cs.AsPathSet, err = matchSet("match-as-path-set", bc.MatchAsPathSet.AsPathSet, o, ok); err != nil {
		return nil, err
	}
	o, ok = matchAnyAllInvert[bc.MatchCommunitySet.MatchSetOptions]
	if cs.CommunitySet, err = matchSet("match-community-set", bc.MatchCommunitySet.CommunitySet, o, ok); err != nil {
		return nil, err
	}
	o, ok = matchAnyAllInvert[bc.MatchExtCommunitySet.MatchSetOptions]
	if cs.ExtCommunitySet, err = matchSet("match-ext-community-set", bc.MatchExtCommunitySet.ExtCommunitySet, o, ok); err != nil {
		return nil, err
	}
	o, ok = matchAnyAllInvert[bc.MatchLargeCommunitySet.MatchSetOptions]
	if cs.LargeCommunitySet, err = matchSet("match-large-community-set", bc.MatchLargeCommunitySet.LargeCommunitySet, o, ok); err != nil {
		return nil, err
	}
	if bc.AsPathLength.Operator != "" {
		t, err := comparison(bc.AsPathLength.Operator)
		if err != nil {
			return nil, fmt.Errorf("as-path-length: %w", err)
		}
		cs.AsPathLength = &api.AsPathLength{Type: api.AsPathLength_Type(t), Length: bc.AsPathLength.Value}
	}
	if bc.CommunityCount.Operator != "" {
		t, err := comparison(bc.CommunityCount.Operator)
		if err != nil {
			return nil, fmt.Errorf("community-count: %w", err)
		}
		cs.CommunityCount = &api.CommunityCount{Type: api.CommunityCount_Type(t), Count: bc.CommunityCount.Value}
	}
	if cs.Origin, err = origin(bc.OriginEq); err != nil {
		return nil, fmt.Errorf("origin-eq: %w", err)
	}
	if bc.RouteType != "" {
		rt, ok := oc.RouteTypeToIntMap[bc.RouteType]
		if !ok {
			return nil, fmt.Errorf("route-type: unknown %q", bc.RouteType)
		}
		cs.RouteType = api.Conditions_RouteType(rt)
	}
	if bc.RpkiValidationResult != "" {
		r, ok := oc.RpkiValidationResultTypeToIntMap[bc.RpkiValidationResult]
		if !ok {
			return nil, fmt.Errorf("rpki-validation-result: unknown %q", bc.RpkiValidationResult)
		}
		cs.RpkiResult = int32(r)
	}
	for _, nh := range bc.NextHopInList {
		if _, err := netip.ParsePrefix(nh); err != nil {
			if _, err := netip.ParseAddr(nh); err != nil {
				return nil, fmt.Errorf("next-hop-in-list: %q is not an address or prefix", nh)
			}
		}
	}
	cs.NextHopInList = slices.Clone(bc.NextHopInList)
	for _, f := range bc.AfiSafiInList {
		i := f.ToInt()
		if i < 0 {
			return nil, fmt.Errorf("afi-safi-in-list: unknown family %q", f)
		}
		fam, err := familyOf(f)
		if err != nil {
			return nil, err
		}
		cs.AfiSafiIn = append(cs.AfiSafiIn, fam)
	}
	as, err := actionsToAPI(s.Actions)
	if err != nil {
		return nil, err
	}
	return &api.Statement{Name: s.Name, Conditions: cs, Actions: as}, nil
}

func familyOf(f oc.AfiSafiType) (*api.Family, error) {
	switch f {
	case oc.AFI_SAFI_TYPE_IPV4_UNICAST:
		return &api.Family{Afi: api.Family_AFI_IP, Safi: api.Family_SAFI_UNICAST}, nil
	case oc.AFI_SAFI_TYPE_IPV6_UNICAST:
		return &api.Family{Afi: api.Family_AFI_IP6, Safi: api.Family_SAFI_UNICAST}, nil
	}
	return nil, fmt.Errorf("afi-safi-in-list: family %q is not announced by the speaker (ipv4-unicast, ipv6-unicast)", f)
}

var medRE = regexp.MustCompile(`^([+-]?)(\d+)$`)

func communityAction(kind, opts string, list []string) (*api.CommunityAction, error) {
	if len(list) == 0 {
		return nil, nil
	}
	t, ok := oc.BgpSetCommunityOptionTypeToIntMap[oc.BgpSetCommunityOptionType(strings.ToLower(cmpOr(opts, "add")))]
	if !ok {
		return nil, fmt.Errorf("%s: unknown options %q (add, remove, replace)", kind, opts)
	}
	return &api.CommunityAction{Type: api.CommunityAction_Type(t), Communities: slices.Clone(list)}, nil
}

func cmpOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func actionsToAPI(a oc.Actions) (*api.Actions, error) {
	out := &api.Actions{}
	switch a.RouteDisposition {
	case "", oc.ROUTE_DISPOSITION_NONE:
	case oc.ROUTE_DISPOSITION_ACCEPT_ROUTE:
		out.RouteAction = api.RouteAction_ACCEPT
	case oc.ROUTE_DISPOSITION_REJECT_ROUTE:
		out.RouteAction = api.RouteAction_REJECT
	default:
		return nil, fmt.Errorf("route-disposition: unknown %q", a.RouteDisposition)
	}
	b := a.BgpActions
	var err error
	if out.Community, err = communityAction("set-community", b.SetCommunity.Options, b.SetCommunity.SetCommunityMethod.CommunitiesList); err != nil {
		return nil, err
	}
	if out.ExtCommunity, err = communityAction("set-ext-community", b.SetExtCommunity.Options, b.SetExtCommunity.SetExtCommunityMethod.CommunitiesList); err != nil {
		return nil, err
	}
	if out.LargeCommunity, err = communityAction("set-large-community", string(b.SetLargeCommunity.Options), b.SetLargeCommunity.SetLargeCommunityMethod.CommunitiesList); err != nil {
		return nil, err
	}
	if med := strings.TrimSpace(string(b.SetMed)); med != "" {
		m := medRE.FindStringSubmatch(med)
		if m == nil {
			return nil, fmt.Errorf("set-med: %q is not N, +N or -N", med)
		}
		v, err := strconv.ParseInt(m[1]+m[2], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("set-med: %w", err)
		}
		t := api.MedAction_REPLACE
		if m[1] != "" {
			t = api.MedAction_MOD
		}
		out.Med = &api.MedAction{Type: t, Value: v}
	}
	if pp := b.SetAsPathPrepend; pp.As != "" {
		out.AsPrepend = &api.AsPrependAction{Repeat: uint32(pp.RepeatN)}
		if pp.As == "last-as" {
			out.AsPrepend.UseLeftMost = true
		} else {
			asn, err := strconv.ParseUint(pp.As, 10, 32)
			if err != nil {
				return nil, fmt.Errorf("set-as-path-prepend: %q is not an AS number or last-as", pp.As)
			}
			out.AsPrepend.Asn = uint32(asn)
		}
	}
	switch nh := string(b.SetNextHop); nh {
	case "":
	case "self":
		out.Nexthop = &api.NexthopAction{Self: true}
	case "peer-address":
		out.Nexthop = &api.NexthopAction{PeerAddress: true}
	case "unchanged":
		out.Nexthop = &api.NexthopAction{Unchanged: true}
	default:
		if _, err := netip.ParseAddr(nh); err != nil {
			return nil, fmt.Errorf("set-next-hop: %q is not self, peer-address, unchanged or an address", nh)
		}
		out.Nexthop = &api.NexthopAction{Address: nh}
	}
	if b.SetLocalPref != 0 {
		out.LocalPref = &api.LocalPrefAction{Value: b.SetLocalPref}
	}
	if b.SetRouteOrigin != "" {
		o, err := origin(b.SetRouteOrigin)
		if err != nil {
			return nil, fmt.Errorf("set-route-origin: %w", err)
		}
		out.OriginAction = &api.OriginAction{Origin: o}
	}
	return out, nil
}
