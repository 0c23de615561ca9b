package bgp

import (
	"strings"
	"testing"

	api "github.com/osrg/gobgp/v3/api"
	"google.golang.org/protobuf/proto"
)

// openELBExample is the shape of OpenELB 0.6's documented policy ConfigMap.
const openELBExample = `
[[defined-sets.prefix-sets]]
  prefix-set-name = "svc"
  [[defined-sets.prefix-sets.prefix-list]]
    ip-prefix = "203.0.113.0/24"
    masklength-range = "32..32"
[[defined-sets.neighbor-sets]]
  neighbor-set-name = "tors"
  neighbor-info-list = ["198.51.100.1"]
[[defined-sets.bgp-defined-sets.community-sets]]
  community-set-name = "c"
  community-list = ["65000:100"]
[[policy-definitions]]
  name = "tag-services"
  [[policy-definitions.statements]]
    name = "s1"
    [policy-definitions.statements.conditions.match-prefix-set]
      prefix-set = "svc"
      match-set-options = "any"
    [policy-definitions.statements.conditions.match-neighbor-set]
      neighbor-set = "tors"
      match-set-options = "invert"
    [policy-definitions.statements.conditions.bgp-conditions.as-path-length]
      operator = "le"
      value = 3
    [policy-definitions.statements.actions]
      route-disposition = "accept-route"
    [policy-definitions.statements.actions.bgp-actions]
      set-med = "+10"
      set-local-pref = 200
      set-next-hop = "self"
      set-route-origin = "egp"
    [policy-definitions.statements.actions.bgp-actions.set-community]
      options = "add"
      [policy-definitions.statements.actions.bgp-actions.set-community.set-community-method]
        communities-list = ["65000:100"]
    [policy-definitions.statements.actions.bgp-actions.set-as-path-prepend]
      as = "last-as"
      repeat-n = 2
[global.apply-policy.config]
  export-policy-list = ["tag-services"]
  default-export-policy = "reject-route"
  import-policy-list = ["tag-services"]
  default-import-policy = "accept-route"
`

func TestParsePolicy(t *testing.T) {
	p, err := ParsePolicy(openELBExample)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.DefinedSets) != 3 {
		t.Errorf("defined sets: %v", p.DefinedSets)
	}
	want := &api.Policy{Name: "tag-services", Statements: []*api.Statement{{
		Name: "s1",
		Conditions: &api.Conditions{
			PrefixSet:    &api.MatchSet{Name: "svc", Type: api.MatchSet_ANY},
			NeighborSet:  &api.MatchSet{Name: "tors", Type: api.MatchSet_INVERT},
			AsPathLength: &api.AsPathLength{Type: api.AsPathLength_LE, Length: 3},
		},
		Actions: &api.Actions{
			RouteAction:  api.RouteAction_ACCEPT,
			Community:    &api.CommunityAction{Type: api.CommunityAction_ADD, Communities: []string{"65000:100"}},
			Med:          &api.MedAction{Type: api.MedAction_MOD, Value: 10},
			AsPrepend:    &api.AsPrependAction{Repeat: 2, UseLeftMost: true},
			Nexthop:      &api.NexthopAction{Self: true},
			LocalPref:    &api.LocalPrefAction{Value: 200},
			OriginAction: &api.OriginAction{Origin: api.RouteOriginType_ORIGIN_EGP},
		},
	}}}
	if len(p.Policies) != 1 || !proto.Equal(p.Policies[0], want) {
		t.Errorf("policy =\n%v\nwant\n%v", p.Policies, want)
	}
	if len(p.Export) != 1 || p.Export[0] != "tag-services" || p.ExportDefault != api.RouteAction_REJECT {
		t.Errorf("export %v default %v", p.Export, p.ExportDefault)
	}
	if !strings.Contains(p.IgnoredImport, "import policies are ignored") {
		t.Errorf("IgnoredImport = %q", p.IgnoredImport)
	}
	q, _ := ParsePolicy(openELBExample)
	if !p.Equal(q) {
		t.Error("two parses of one text differ")
	}
	r, _ := ParsePolicy(strings.Replace(openELBExample, "set-local-pref = 200", "set-local-pref = 300", 1))
	if p.Equal(r) {
		t.Error("a changed local-pref compares equal")
	}
}

func TestParsePolicyErrors(t *testing.T) {
	tests := []struct {
		name, text, want string
	}{
		{"not TOML", "[[policy-definitions", "parse TOML"},
		{"a whole gobgpd config with neighbours", "[[neighbors]]\n[neighbors.config]\nneighbor-address = \"10.0.0.1\"\n", "only global.apply-policy"},
		{"export list names an unknown policy", "[global.apply-policy.config]\nexport-policy-list = [\"nope\"]\n", `policy "nope" is not defined`},
		{"unknown disposition", "[[policy-definitions]]\nname = \"p\"\n[[policy-definitions.statements]]\nname = \"s\"\n[policy-definitions.statements.actions]\nroute-disposition = \"maybe\"\n", "route-disposition"},
		{"reserved name", "[[policy-definitions]]\nname = \"openelb-x\"\n", "reserved"},
		{"bad med", "[[policy-definitions]]\nname = \"p\"\n[[policy-definitions.statements]]\nname = \"s\"\n[policy-definitions.statements.actions.bgp-actions]\nset-med = \"x10\"\n", "set-med"},
		{"bad prefix", "[[defined-sets.prefix-sets]]\nprefix-set-name = \"x\"\n[[defined-sets.prefix-sets.prefix-list]]\nip-prefix = \"300.0.0.0/8\"\n", "defined-sets"},
		{"unsupported med-eq", "[[policy-definitions]]\nname = \"p\"\n[[policy-definitions.statements]]\nname = \"s\"\n[policy-definitions.statements.conditions.bgp-conditions]\nmed-eq = 5\n", "not supported"},
		{"statement without name", "[[policy-definitions]]\nname = \"p\"\n[[policy-definitions.statements]]\n", "no name"},
		{"duplicate policy", "[[policy-definitions]]\nname = \"p\"\n[[policy-definitions]]\nname = \"p\"\n", "defined twice"},
		{"bad default export", "[global.apply-policy.config]\ndefault-export-policy = \"drop\"\n", "default-export-policy"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParsePolicy(tc.text)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("ParsePolicy error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestPolicyEqualNil(t *testing.T) {
	var a, b *Policy
	if !a.Equal(b) {
		t.Error("nil policies differ")
	}
	if a.Equal(&Policy{}) || (&Policy{}).Equal(a) {
		t.Error("nil equals an empty policy")
	}
}
