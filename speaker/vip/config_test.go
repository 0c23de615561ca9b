package vip

import (
	"bytes"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/openelb/openelb-operator/speaker/internal/netx/netxtest"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/ from the current rendering")

// requireKeepalived returns the keepalived binary; without one the test
// fails under CI=true and is skipped otherwise.
func requireKeepalived(t *testing.T) string {
	t.Helper()
	netxtest.Require(t, false, "keepalived")
	path, err := exec.LookPath("keepalived")
	if err != nil {
		t.Fatal(err)
	}
	return path
}

// checkConfig runs `keepalived -t` on a rendered configuration.
func checkConfig(t *testing.T, conf []byte) {
	t.Helper()
	bin := requireKeepalived(t)
	path := filepath.Join(t.TempDir(), "keepalived.conf")
	if err := os.WriteFile(path, conf, 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(bin, "-t", "-f", path).CombinedOutput(); err != nil {
		t.Fatalf("keepalived -t: %v\n%s\n--- config:\n%s", err, out, conf)
	}
}

// golden compares got with testdata/<test name>.golden.
func golden(t *testing.T, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", filepath.FromSlash(t.Name())+".golden")
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./speaker/vip -update)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("rendering differs from %s (run with -update after checking):\n%s", path, got)
	}
}

func TestRender(t *testing.T) {
	tests := []struct {
		name      string
		self      string
		world     *world
		dir       Directory
		advert    time.Duration
		multicast bool
	}{
		{name: "empty", self: "node1", world: newWorld("node1", three...), advert: time.Second},
		{name: "three_nodes_unicast", self: "node2", advert: time.Second, world: newWorld("node2", three...).
			addr("203.0.113.20", "eip").addr("203.0.113.21", "eip").addr("203.0.113.22", "eip").addr("203.0.113.23", "eip")},
		{name: "fast_multicast", self: "node1", advert: 100 * time.Millisecond, multicast: true, world: newWorld("node1", three...).
			addr("203.0.113.20", "eip").addr("203.0.113.21", "eip")},
		{name: "two_interfaces_and_ipv6", self: "node1", advert: 250 * time.Millisecond,
			dir: Directory{"node2": {"eth1": ips("198.18.2.12")}},
			world: newWorld("node1", "node1", "node2").fact("node1", "nic2", "eth1").fact("node2", "nic2", "eth1").
				addr("203.0.113.20", "eip").addr("203.0.113.64", "nic2").addr("203.0.113.65", "nic2").addr("2001:db8:ffff::20", "eip6")},
		{name: "single_member_long_name", self: "node1", advert: time.Second, world: newWorld("node1", "node1").
			fact("node1", "v", "enp0s31f6.4000").addr("203.0.113.90", "v").addr("203.0.113.91", "v")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := mustCompute(t, Input{State: tc.world.state()})
			n := int(tc.self[len(tc.self)-1] - '0')
			c, warn := Local(LocalInput{Self: tc.self, Plan: p, State: tc.world.state(), Directory: tc.dir, Links: links(n),
				AdvertInterval: tc.advert, Multicast: tc.multicast})
			if len(warn) > 0 {
				t.Fatalf("warnings: %q", warn)
			}
			got, err := Render(c)
			if err != nil {
				t.Fatal(err)
			}
			if tc.name != "empty" && !strings.Contains(string(got), "vrrp_instance") {
				t.Fatalf("no instance rendered:\n%s", got)
			}
			golden(t, got)
			checkConfig(t, got)
		})
	}
}
