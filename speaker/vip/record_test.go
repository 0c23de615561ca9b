package vip

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/openelb/openelb-operator/internal/render"
)

func TestRecordRoundTrip(t *testing.T) {
	w := newWorld("node1", three...).addr("203.0.113.20", "eip").addr("2001:db8:ffff::1", "eip6")
	p := mustCompute(t, Input{State: w.state()})
	pv, err := EncodePlan(p)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	e := NodeEntry{Addrs: map[string][]netip.Addr{"eth0": ips("198.51.100.11", "2001:db8::b")},
		Foreign: []Foreign{{Interface: "eth0", Family: 4, VRID: 7, Source: netip.MustParseAddr("198.51.100.200"), Seen: now}}}
	nv, err := EncodeNode(e)
	if err != nil {
		t.Fatal(err)
	}
	rec, err := DecodeRecord(map[string]string{recordPlanKey: pv, NodeKey("node1"): nv, "unrelated": "x"})
	if err != nil {
		t.Fatal(err)
	}
	if !rec.Plan.Equal(p) || !entryEqual(rec.Nodes["node1"], e) || len(rec.Nodes) != 1 {
		t.Fatalf("round trip: %+v", rec)
	}
	if d := rec.Directory(); !slices.Equal(d["node1"]["eth0"], e.Addrs["eth0"]) {
		t.Errorf("directory %v", d)
	}
	if r := rec.Reserved(now.Add(time.Minute)); !slices.Equal(r[Space{Family: 4, Interface: "eth0"}], []int{7}) {
		t.Errorf("reserved %v", r)
	}
	if r := rec.Reserved(now.Add(ForeignTTL + time.Second)); len(r) != 0 {
		t.Errorf("expired foreign router still reserved: %v", r)
	}
}

func TestDecodeRecordSurvivesGarbage(t *testing.T) {
	rec, err := DecodeRecord(map[string]string{
		recordPlanKey:     `{"groups":[{"vrid":300,"family":4,"members":[{"node":"a","interface":"eth0"}],"ips":["203.0.113.1"]},{"vrid":3,"family":4,"members":[{"node":"a","interface":"eth0"}],"ips":["203.0.113.9","203.0.113.2"]}]}`,
		NodeKey("broken"): `{`,
		NodeKey("node2"):  `{}`,
		"node.":           `{}`,
	})
	if err == nil || !strings.Contains(err.Error(), "node.broken") {
		t.Errorf("error %v, want one naming node.broken", err)
	}
	if len(rec.Plan.Groups) != 1 || rec.Plan.Groups[0].VRID != 3 || !slices.IsSortedFunc(rec.Plan.Groups[0].IPs, netip.Addr.Compare) {
		t.Errorf("sanitized plan %+v", rec.Plan)
	}
	if _, ok := rec.Nodes["node2"]; !ok {
		t.Errorf("valid entry dropped: %v", rec.Nodes)
	}
	if rec, err := DecodeRecord(map[string]string{recordPlanKey: "not json"}); err == nil || len(rec.Plan.Groups) != 0 {
		t.Errorf("undecodable plan: %+v, %v", rec.Plan, err)
	}
}

func TestWriter(t *testing.T) {
	rec := Record{Nodes: map[string]NodeEntry{"node1": {}, "node2": {}, "node3": {}}}
	alive := func(dead ...string) func(string) bool {
		return func(n string) bool { return !slices.Contains(dead, n) }
	}
	tests := []struct {
		self string
		dead []string
		rec  Record
		want string
	}{
		{"node3", nil, rec, "node1"},
		{"node1", nil, rec, "node1"},
		{"node3", []string{"node1"}, rec, "node2"},
		{"node2", []string{"node1", "node3"}, rec, "node2"},
		// A node without an entry (vip disabled there) is never the writer.
		{"node3", nil, Record{Nodes: map[string]NodeEntry{"node3": {}}}, "node3"},
		// Before publishing, a node counts itself.
		{"node0", nil, rec, "node0"},
	}
	for _, tc := range tests {
		if got := Writer(tc.self, alive(tc.dead...), tc.rec); got != tc.want {
			t.Errorf("Writer(%s, dead %v) = %s, want %s", tc.self, tc.dead, got, tc.want)
		}
	}
}

func TestMergeForeign(t *testing.T) {
	t0 := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	f := func(vrid int, seen time.Time) Foreign {
		return Foreign{Interface: "eth0", Family: 4, VRID: vrid, Source: netip.MustParseAddr("198.51.100.200"), Seen: seen}
	}
	// First sighting: stamped now (to the second).
	got := mergeForeign(nil, []Foreign{f(5, time.Time{})}, t0.Add(300*time.Millisecond))
	if len(got) != 1 || !got[0].Seen.Equal(t0) {
		t.Fatalf("first sighting %+v", got)
	}
	// Seen again soon: unchanged (no write); after TTL/2: refreshed.
	if again := mergeForeign(got, []Foreign{f(5, time.Time{})}, t0.Add(time.Minute)); !again[0].Seen.Equal(t0) {
		t.Errorf("refreshed too early: %+v", again)
	}
	if later := mergeForeign(got, []Foreign{f(5, time.Time{})}, t0.Add(ForeignTTL/2+time.Second)); later[0].Seen.Equal(t0) {
		t.Errorf("not refreshed after TTL/2: %+v", later)
	}
	// Not seen any more: kept until TTL, then dropped.
	if kept := mergeForeign(got, nil, t0.Add(ForeignTTL-time.Second)); len(kept) != 1 {
		t.Errorf("dropped before TTL: %+v", kept)
	}
	if gone := mergeForeign(got, nil, t0.Add(ForeignTTL+time.Second)); len(gone) != 0 {
		t.Errorf("kept after TTL: %+v", gone)
	}
}

// The operator grants the speakers update on the record by name.
func TestRecordNameMatchesRBAC(t *testing.T) {
	if RecordName != render.VIPRecordName {
		t.Errorf("speaker/vip RecordName %q, internal/render VIPRecordName %q", RecordName, render.VIPRecordName)
	}
}
