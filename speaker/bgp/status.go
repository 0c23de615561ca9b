package bgp

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	networkv1alpha2 "github.com/openelb/openelb-operator/api/network/v1alpha2"
)

// Condition types on BgpConf and BgpPeer (added by this project).
const (
	// ConditionAccepted is True when the speakers use the object.
	ConditionAccepted = "Accepted"
	// ConditionPolicyApplied (BgpConf) is False when the policy ConfigMap
	// is missing or broken; the speakers then keep the policy they run.
	ConditionPolicyApplied = "PolicyApplied"
	// ConditionEstablished (BgpPeer) is True when every node that peers
	// with the neighbour has its session up; its message counts them
	// (printer column "established").
	ConditionEstablished = "Established"
)

// PeerEntry computes, purely, this node's entry in a BgpPeer's
// status.nodesPeerStatus: nil when the node does not peer with it. The
// password is never reported. Every field changes only with the session
// (timestamps, not durations; no message counters), so an unchanged
// session never causes a write.
func PeerEntry(r PeerResult, s *Session, running bool) *networkv1alpha2.NodePeerStatus {
	if r.Skipped || !r.Selected {
		return nil
	}
	e := &networkv1alpha2.NodePeerStatus{}
	ps, ts := &e.PeerState, &e.TimersState
	ps.NeighborAddress = r.Neighbor
	switch {
	case !r.Accepted():
		ps.LastError = r.Message
	case r.NodeError != "":
		ps.LastError = r.NodeError
	case !running:
		ps.LastError = "BGP is not running on this node (see the BgpConf default and its events)"
	}
	if s == nil {
		if ps.LastError == "" {
			ps.LastError = "neighbour not configured yet"
		}
		return e
	}
	ps.NeighborAddress = s.Neighbor
	ps.Description, ps.LocalAs, ps.PeerAs, ps.PeerType = s.Description, s.LocalAS, s.PeerAS, s.PeerType
	ps.SessionState, ps.AdminState, ps.Flops, ps.RouterId = s.State, s.AdminState, s.Flops, s.RouterID
	ps.AdvertisedRoutes, ps.ReceivedRoutes = int64(min(s.Advertised, math.MaxInt64)), int64(min(s.Received, math.MaxInt64))
	if ps.LastError == "" {
		ps.LastError = s.LastError
	} else if s.LastError != "" {
		ps.LastError += "; " + s.LastError
	}
	num := func(v uint64) string {
		if v == 0 {
			return ""
		}
		return strconv.FormatUint(v, 10)
	}
	ts.ConnectRetry, ts.HoldTime, ts.KeepaliveInterval = num(s.ConnectRetry), num(s.HoldTime), num(s.KeepaliveInterval)
	ts.MinimumAdvertisementInterval, ts.NegotiatedHoldTime = num(s.MinimumAdvertisementInterval), num(s.NegotiatedHoldTime)
	if s.Established() && !s.Uptime.IsZero() {
		ts.Uptime = s.Uptime.UTC().Format(time.RFC3339)
	}
	if !s.Established() && !s.Downtime.IsZero() {
		ts.Downtime = s.Downtime.UTC().Format(time.RFC3339)
	}
	return e
}

// ConfEntry is this node's entry in BgpConf.status.nodesConfStatus: the
// router ID and AS it runs (nil when BGP does not run here).
func ConfEntry(asn uint32, routerID string) *networkv1alpha2.NodeConfStatus {
	if asn == 0 {
		return nil
	}
	return &networkv1alpha2.NodeConfStatus{RouterId: routerID, As: asn}
}

func condition(t string, ok bool, reason, msg string, gen int64) metav1.Condition {
	st := metav1.ConditionTrue
	if !ok {
		st = metav1.ConditionFalse
	}
	return metav1.Condition{Type: t, Status: st, Reason: reason, Message: truncate(msg, 1024), ObservedGeneration: gen}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-3] + "..."
}

// PeerConditions computes a BgpPeer's conditions from the verdict and the
// per-node entries (including this node's).
func PeerConditions(r PeerResult, gen int64, nodes map[string]networkv1alpha2.NodePeerStatus) []metav1.Condition {
	acc := condition(ConditionAccepted, true, ReasonAccepted, "the speakers use this BgpPeer", gen)
	if !r.Accepted() {
		acc = condition(ConditionAccepted, false, r.Reason, r.Message, gen)
	}
	names := make([]string, 0, len(nodes))
	up := 0
	for n, s := range nodes {
		names = append(names, n)
		if s.PeerState.SessionState == "ESTABLISHED" {
			up++
		}
	}
	sort.Strings(names)
	msg := fmt.Sprintf("%d/%d nodes established", up, len(nodes))
	var est metav1.Condition
	switch {
	case len(nodes) == 0:
		est = condition(ConditionEstablished, false, ReasonNoSpeakers, "0/0 nodes: no speaker peers with this neighbour", gen)
	case up == len(nodes):
		est = condition(ConditionEstablished, true, ReasonEstablished, msg, gen)
	default:
		var down []string
		for _, n := range names {
			s := nodes[n]
			if s.PeerState.SessionState == "ESTABLISHED" {
				continue
			}
			d := n + ": " + strings.ToLower(s.PeerState.SessionState)
			if s.PeerState.SessionState == "" {
				d = n + ": not configured"
			}
			if s.PeerState.LastError != "" {
				d += " (" + s.PeerState.LastError + ")"
			}
			down = append(down, d)
			if len(down) == 3 {
				break
			}
		}
		est = condition(ConditionEstablished, false, ReasonNotEstablished, msg+"; "+strings.Join(down, "; "), gen)
	}
	return []metav1.Condition{acc, est}
}

// ConfConditions computes a BgpConf's conditions.
func ConfConditions(name string, c Config, gen int64) []metav1.Condition {
	r, ok := c.Confs[name]
	if !ok {
		return nil
	}
	if !r.Accepted() {
		return []metav1.Condition{condition(ConditionAccepted, false, r.Reason, r.Message, gen)}
	}
	acc := condition(ConditionAccepted, true, ReasonAccepted, "the speakers use this BgpConf", gen)
	if c.NotConfigured != "" {
		acc = condition(ConditionAccepted, false, ReasonNotConfigured, c.NotConfigured, gen)
	}
	var pol metav1.Condition
	switch {
	case c.PolicyErr != "":
		reason := ReasonPolicyInvalid
		if strings.Contains(c.PolicyErr, "not found") || strings.Contains(c.PolicyErr, "has no key") {
			reason = ReasonPolicyNotFound
		}
		pol = condition(ConditionPolicyApplied, false, reason, c.PolicyErr+"; the speakers keep the policy they run", gen)
	case c.Policy == nil:
		pol = condition(ConditionPolicyApplied, true, ReasonNoPolicy, "no spec.policy: every route is exported", gen)
	default:
		msg := fmt.Sprintf("%d policies, %d defined sets, export policies %v", len(c.Policy.Policies), len(c.Policy.DefinedSets), c.Policy.Export)
		if c.Policy.IgnoredImport != "" {
			msg += "; " + c.Policy.IgnoredImport
		}
		pol = condition(ConditionPolicyApplied, true, ReasonPolicyApplied, msg, gen)
	}
	return []metav1.Condition{acc, pol}
}

// conditionsEqual reports whether setting want on have changes nothing
// (transition times aside).
func conditionsEqual(have, want []metav1.Condition) bool {
	for _, w := range want {
		h := meta.FindStatusCondition(have, w.Type)
		if h == nil || h.Status != w.Status || h.Reason != w.Reason || h.Message != w.Message || h.ObservedGeneration != w.ObservedGeneration {
			return false
		}
	}
	return true
}
