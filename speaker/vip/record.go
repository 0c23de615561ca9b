package vip

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"
)

// RecordName is the ConfigMap, in the speaker namespace, that holds the
// recorded plan (key "plan", written by the writer) and what each vip
// speaker publishes about itself (key "node.<name>", written by that
// speaker). Every write carries the resourceVersion it read (optimistic
// concurrency).
const RecordName = "openelb-vip-groups" // render.VIPRecordName: the operator deletes it on uninstall

const (
	recordPlanKey    = "plan"
	recordNodePrefix = "node."
)

// ForeignTTL is how long a foreign VRRP router's VRID stays reserved after
// it was last seen.
const ForeignTTL = 10 * time.Minute

// A NodeEntry is what one vip speaker publishes.
type NodeEntry struct {
	// Addrs maps an interface to the node's own addresses on it (one per
	// family): the other members' unicast peers.
	Addrs map[string][]netip.Addr `json:"addrs,omitempty"`
	// Foreign lists VRRP routers of other systems seen on the node's
	// interfaces; their VRIDs are reserved.
	Foreign []Foreign `json:"foreign,omitempty"`
}

// A Foreign is a VRRP router that is not one of our speakers.
type Foreign struct {
	Interface string     `json:"interface"`
	Family    int        `json:"family"`
	VRID      int        `json:"vrid"`
	Source    netip.Addr `json:"source"`
	// Seen is when it was first seen in the current sighting, refreshed at
	// most every ForeignTTL/2.
	Seen time.Time `json:"seen"`
}

// A Record is the decoded ConfigMap.
type Record struct {
	Plan  Plan
	Nodes map[string]NodeEntry
}

// DecodeRecord decodes a ConfigMap's data; undecodable parts are left out
// and reported.
func DecodeRecord(data map[string]string) (Record, error) {
	r := Record{Nodes: map[string]NodeEntry{}}
	var errs []error
	if s := data[recordPlanKey]; s != "" {
		if err := json.Unmarshal([]byte(s), &r.Plan); err != nil {
			errs = append(errs, fmt.Errorf("decode the recorded plan: %w", err))
			r.Plan = Plan{}
		}
	}
	for k, v := range data {
		node, ok := strings.CutPrefix(k, recordNodePrefix)
		if !ok {
			continue
		}
		var e NodeEntry
		if err := json.Unmarshal([]byte(v), &e); err != nil {
			errs = append(errs, fmt.Errorf("decode %s: %w", k, err))
			continue
		}
		r.Nodes[node] = e
	}
	r.Plan = sanitize(r.Plan)
	return r, errors.Join(errs...)
}

// sanitize drops groups that cannot be valid (a hand-edited record).
func sanitize(p Plan) Plan {
	var out Plan
	for _, g := range p.Groups {
		if g.VRID < 1 || g.VRID > MaxVRID || (g.Family != 4 && g.Family != 6) || len(g.Members) == 0 || len(g.IPs) == 0 {
			continue
		}
		g.IPs = slices.Clone(g.IPs)
		slices.SortFunc(g.IPs, netip.Addr.Compare)
		out.Groups = append(out.Groups, g)
	}
	return out
}

// EncodePlan is the "plan" value of the record.
func EncodePlan(p Plan) (string, error) {
	b, err := json.Marshal(p)
	return string(b), err
}

// NodeKey is the record key of a node's entry.
func NodeKey(node string) string { return recordNodePrefix + node }

// EncodeNode is a node entry's value.
func EncodeNode(e NodeEntry) (string, error) {
	b, err := json.Marshal(e)
	return string(b), err
}

// Directory returns the published addresses.
func (r Record) Directory() Directory {
	d := Directory{}
	for n, e := range r.Nodes {
		if len(e.Addrs) > 0 {
			d[n] = e.Addrs
		}
	}
	return d
}

// Reserved returns the VRIDs foreign routers use, per space, that were
// seen within ForeignTTL of now.
func (r Record) Reserved(now time.Time) map[Space][]int {
	out := map[Space][]int{}
	for _, e := range r.Nodes {
		for _, f := range e.Foreign {
			if now.Sub(f.Seen) > ForeignTTL {
				continue
			}
			s := Space{Family: f.Family, Interface: f.Interface}
			if !slices.Contains(out[s], f.VRID) {
				out[s] = append(out[s], f.VRID)
			}
		}
	}
	for s := range out {
		slices.Sort(out[s])
	}
	return out
}

// Writer returns the node that computes and records the plan: the alive
// node with the smallest name among those that publish an entry (vip
// speakers) and self. Every speaker reaches the same answer from the same
// liveness view.
func Writer(self string, alive func(string) bool, r Record) string {
	w := self
	for n := range r.Nodes {
		if n < w && alive(n) {
			w = n
		}
	}
	return w
}
