package bgp

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	networkv1alpha2 "github.com/openelb/openelb-operator/api/network/v1alpha2"
)

func TestPeerEntry(t *testing.T) {
	up := time.Date(2026, 1, 2, 3, 4, 5, 600, time.UTC)
	est := &Session{Name: "tor", Neighbor: "198.51.100.1", State: "ESTABLISHED", AdminState: "UP", LocalAS: 64512, PeerAS: 64500,
		PeerType: 1, RouterID: "198.51.100.1", Uptime: up, Downtime: up.Add(-time.Hour), HoldTime: 3, KeepaliveInterval: 1,
		ConnectRetry: 5, NegotiatedHoldTime: 3, Advertised: 7, Received: 2, Password: true}
	down := &Session{Name: "tor", Neighbor: "198.51.100.1", State: "ACTIVE", Downtime: up, LastError: "cannot connect: i/o timeout"}
	sel := PeerResult{Selected: true, Neighbor: "198.51.100.1"}
	tests := []struct {
		name    string
		r       PeerResult
		s       *Session
		running bool
		check   func(*testing.T, *networkv1alpha2.NodePeerStatus)
	}{
		{"not selected: no entry", PeerResult{Neighbor: "198.51.100.1"}, est, true, func(t *testing.T, e *networkv1alpha2.NodePeerStatus) {
			if e != nil {
				t.Errorf("entry %+v, want none", e)
			}
		}},
		{"established", sel, est, true, func(t *testing.T, e *networkv1alpha2.NodePeerStatus) {
			ps, ts := e.PeerState, e.TimersState
			if ps.SessionState != "ESTABLISHED" || ps.AdvertisedRoutes != 7 || ps.ReceivedRoutes != 2 || ps.LocalAs != 64512 ||
				ps.PeerAs != 64500 || ps.LastError != "" || ps.AuthPassword != "" {
				t.Errorf("peer state %+v", ps)
			}
			if ts.Uptime != "2026-01-02T03:04:05Z" || ts.Downtime != "" || ts.HoldTime != "3" || ts.NegotiatedHoldTime != "3" || ts.ConnectRetry != "5" {
				t.Errorf("timers state %+v", ts)
			}
		}},
		{"down: downtime and the reason", sel, down, true, func(t *testing.T, e *networkv1alpha2.NodePeerStatus) {
			if e.PeerState.SessionState != "ACTIVE" || e.TimersState.Uptime != "" || e.TimersState.Downtime == "" ||
				e.PeerState.LastError != "cannot connect: i/o timeout" {
				t.Errorf("entry %+v", e)
			}
		}},
		{"rejected spec: the reason, no session", PeerResult{Selected: true, Result: Result{Reason: ReasonSecretNotFound, Message: "Secret x not found"}}, nil, true,
			func(t *testing.T, e *networkv1alpha2.NodePeerStatus) {
				if e.PeerState.LastError != "Secret x not found" || e.PeerState.SessionState != "" {
					t.Errorf("entry %+v", e)
				}
			}},
		{"rejected spec while the old session runs: both", PeerResult{Selected: true, Result: Result{Reason: ReasonSecretNotFound, Message: "Secret x not found"}}, est, true,
			func(t *testing.T, e *networkv1alpha2.NodePeerStatus) {
				if e.PeerState.SessionState != "ESTABLISHED" || !strings.Contains(e.PeerState.LastError, "Secret x not found") {
					t.Errorf("entry %+v", e)
				}
			}},
		{"BGP not running here", sel, nil, false, func(t *testing.T, e *networkv1alpha2.NodePeerStatus) {
			if !strings.Contains(e.PeerState.LastError, "not running") {
				t.Errorf("entry %+v", e)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := PeerEntry(tc.r, tc.s, tc.running)
			tc.check(t, e)
			if e != nil {
				b, _ := json.Marshal(e)
				if strings.Contains(string(b), "authPassword") {
					t.Errorf("the entry carries authPassword: %s", b)
				}
			}
			if a, b := PeerEntry(tc.r, tc.s, tc.running), PeerEntry(tc.r, tc.s, tc.running); (a == nil) != (b == nil) || (a != nil && *a != *b) {
				t.Error("the same session gives different entries: status would be rewritten")
			}
		})
	}
}

func TestPeerConditions(t *testing.T) {
	entry := func(state, lastErr string) networkv1alpha2.NodePeerStatus {
		return networkv1alpha2.NodePeerStatus{PeerState: networkv1alpha2.PeerState{SessionState: state, LastError: lastErr}}
	}
	tests := []struct {
		name            string
		r               PeerResult
		nodes           map[string]networkv1alpha2.NodePeerStatus
		accepted, estab metav1.ConditionStatus
		msg             string
	}{
		{"all up", PeerResult{}, map[string]networkv1alpha2.NodePeerStatus{"a": entry("ESTABLISHED", ""), "b": entry("ESTABLISHED", "")},
			metav1.ConditionTrue, metav1.ConditionTrue, "2/2 nodes established"},
		{"one down with its reason", PeerResult{}, map[string]networkv1alpha2.NodePeerStatus{"a": entry("ESTABLISHED", ""), "b": entry("ACTIVE", "timeout")},
			metav1.ConditionTrue, metav1.ConditionFalse, "1/2 nodes established; b: active (timeout)"},
		{"no node peers", PeerResult{}, nil, metav1.ConditionTrue, metav1.ConditionFalse, "0/0 nodes"},
		{"rejected", PeerResult{Result: Result{Reason: ReasonInvalid, Message: "bad"}}, nil, metav1.ConditionFalse, metav1.ConditionFalse, "0/0"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cs := PeerConditions(tc.r, 4, tc.nodes)
			if cs[0].Type != ConditionAccepted || cs[0].Status != tc.accepted || cs[0].ObservedGeneration != 4 {
				t.Errorf("Accepted = %+v", cs[0])
			}
			if cs[1].Type != ConditionEstablished || cs[1].Status != tc.estab || !strings.HasPrefix(cs[1].Message, tc.msg) {
				t.Errorf("Established = %+v, want %s %q", cs[1], tc.estab, tc.msg)
			}
		})
	}
}

func TestConfConditions(t *testing.T) {
	ok := Config{Confs: map[string]Result{"default": {}, "other": {Reason: ReasonNotDefault, Message: "only default"}}}
	cs := ConfConditions("other", ok, 1)
	if len(cs) != 1 || cs[0].Status != metav1.ConditionFalse || cs[0].Reason != ReasonNotDefault {
		t.Errorf("non-default BgpConf: %+v", cs)
	}
	cs = ConfConditions("default", ok, 1)
	if cs[0].Status != metav1.ConditionTrue || cs[1].Type != ConditionPolicyApplied || cs[1].Reason != ReasonNoPolicy {
		t.Errorf("default without policy: %+v", cs)
	}
	bad := ok
	bad.PolicyErr = "ConfigMap openelb-system/p (spec.policy) not found"
	cs = ConfConditions("default", bad, 1)
	if cs[1].Status != metav1.ConditionFalse || cs[1].Reason != ReasonPolicyNotFound || !strings.Contains(cs[1].Message, "keep the policy") {
		t.Errorf("missing policy: %+v", cs[1])
	}
	bad.PolicyErr = "ConfigMap openelb-system/p key \"gobgp.conf\": parse TOML: x"
	if cs = ConfConditions("default", bad, 1); cs[1].Reason != ReasonPolicyInvalid {
		t.Errorf("broken policy: %+v", cs[1])
	}
	nc := ok
	nc.NotConfigured = "BgpConf default has no AS"
	if cs = ConfConditions("default", nc, 1); cs[0].Status != metav1.ConditionFalse || cs[0].Reason != ReasonNotConfigured {
		t.Errorf("AS 0: %+v", cs[0])
	}
	if ConfConditions("unknown", ok, 1) != nil {
		t.Error("conditions for a BgpConf Translate did not see")
	}
}

func TestConditionsEqual(t *testing.T) {
	a := []metav1.Condition{condition("A", true, "R", "m", 1)}
	b := []metav1.Condition{condition("A", true, "R", "m", 1)}
	b[0].LastTransitionTime = metav1.Now()
	if !conditionsEqual(a, b) {
		t.Error("transition time alone makes conditions differ")
	}
	if conditionsEqual(a, []metav1.Condition{condition("A", true, "R", "m2", 1)}) {
		t.Error("a new message compares equal")
	}
}
