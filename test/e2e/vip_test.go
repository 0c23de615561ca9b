//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/openelb/openelb-operator/internal/election"
	"github.com/openelb/openelb-operator/speaker/vip"
	"github.com/openelb/openelb-operator/test/lab"
)

// TestVIP runs the vip lab scenarios of issue 8 on one 3-node lab with the
// controller, a vip speaker per node and a keepalived sidecar beside each
// (`openelb speaker keepalived` on the speaker's run dir, as in a pod). The
// scenarios run in order and build on each other.
func TestVIP(t *testing.T) {
	v := newVIPLab(t, time.Second, true)
	s := &vipScenario{v: v}
	steps := []struct {
		name string
		run  func(*testing.T)
	}{
		{"a_one_master", s.oneMaster},
		{"b_keepalived_killed", s.keepalivedKilled},
		{"c_link_down", s.linkDown},
		{"d_two_interfaces", s.twoInterfaces},
		{"d_foreign_router", s.foreignRouter},
		{"f_speaker_restart", s.speakerRestart},
		{"e_disable", s.disable},
	}
	for _, st := range steps {
		if !t.Run(st.name, func(t *testing.T) { s.v.t = t; st.run(t) }) {
			t.FailNow()
		}
	}
}

type vipScenario struct {
	v      *vipLab
	ip     netip.Addr // vip-svc's address
	group  vip.Group  // its group
	master string
	// every Service's address and expected master
	svcs map[string]netip.Addr
}

func (s *vipScenario) nodes() []string {
	var out []string
	for _, n := range s.v.l.Nodes {
		out = append(out, n.Name)
	}
	return out
}

// a: a vip Eip and a Service: the address is on exactly one node (the
// plan's preferred master, which internal/election ranks first), the
// client reaches it, the announcer annotation and an Event say so, and
// every node runs the group with the same VRID and its own priority.
func (s *vipScenario) oneMaster(t *testing.T) {
	v := s.v
	if err := v.l.Kube.Create(t.Context(), vipEip("eip-vip", vipPool, "eth0")); err != nil {
		t.Fatal(err)
	}
	s.ip = v.createVIPService(lbService("vip-svc", "eip-vip"))
	s.svcs = map[string]netip.Addr{"vip-svc": s.ip}
	s.group = v.waitPlanned(s.ip)[s.ip]
	s.master = s.group.Members[0].Node
	if want := election.Rank(s.ip.String(), s.nodes())[0]; s.master != want {
		t.Fatalf("planned master %s, election ranks %s first", s.master, want)
	}
	if len(s.group.Members) != 3 {
		t.Fatalf("group %+v: want all three nodes", s.group)
	}
	v.waitHolder(s.ip, s.master, 20*time.Second)
	if iface := v.holds(s.master, s.ip); iface != "eth0" {
		t.Fatalf("%s holds %s on %q, want eth0", s.master, s.ip, iface)
	}
	v.waitReaches(s.ip, s.master)
	v.waitAnnotation("vip-svc", s.master)
	v.waitEvent("vip-svc", vip.ReasonMaster, s.master+" is the VRRP master of "+s.ip.String())
	name := vip.InstanceName("eth0", 4, s.group.VRID)
	for i, m := range s.group.Members {
		in, ok := v.instances(m.Node)[name]
		if !ok || in.vrid != s.group.VRID || in.priority != vip.Priority(i, len(s.group.Members)) {
			t.Errorf("%s runs %+v (found %v), want VRID %d priority %d", m.Node, in, ok, s.group.VRID, vip.Priority(i, len(s.group.Members)))
		}
	}
	// Stable: still on the master alone a few advertisements later.
	time.Sleep(3 * v.advert)
	if got := v.holders(s.ip); !slices.Equal(got, []string{s.master}) {
		t.Fatalf("after settling %s is held by %v", s.ip, got)
	}
	t.Logf("a: %s (VRID %d) on %s alone, members %v; client reached %s", s.ip, s.group.VRID, s.master, memberNodes(s.group), s.master)
}

func memberNodes(g vip.Group) []string {
	var out []string
	for _, m := range g.Members {
		out = append(out, m.Node)
	}
	return out
}

// b: the master's keepalived is killed (SIGKILL to parent and VRRP child):
// a backup takes over, measured at the default 1 s
// advertisement interval and at 100 ms. The supervisor removes what the
// dead keepalived left, restarts it, and the master (highest priority)
// takes the address back.
func (s *vipScenario) keepalivedKilled(t *testing.T) {
	v := s.v
	s.killOnce(t)
	// 100 ms: the speakers restart with the new interval; the sidecars keep
	// keepalived running and reload it.
	v.advert = 100 * time.Millisecond
	for _, n := range s.nodes() {
		v.l.Node(n).Speaker.Terminate(5 * time.Second)
		v.startSpeaker(n, true)
	}
	err := lab.WaitFor(t.Context(), 20*time.Second, "advert_int 0.1 on every node", func(context.Context) (bool, error) {
		for _, n := range s.nodes() {
			b, err := os.ReadFile(filepath.Join(v.runDir(n), vip.ConfigFile))
			if err != nil || !strings.Contains(string(b), "advert_int 0.1\n") {
				return false, fmt.Errorf("%s: %v", n, err)
			}
		}
		return true, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	v.waitLoaded()
	v.waitHolder(s.ip, s.master, 10*time.Second)
	s.killOnce(t)
}

func (s *vipScenario) killOnce(t *testing.T) {
	v := s.v
	exits := v.status(s.master).Exits
	v.settle(s.ip, s.master)
	v.waitReaches(s.ip, s.master)
	to, d := v.measureTakeover(s.ip, s.master, 15*time.Second, func() error { return v.killKeepalived(s.master) })
	t.Logf("b: keepalived of %s killed at advert %v: %s held by %s after %v", s.master, v.advert, s.ip, to, d.Round(time.Millisecond))
	v.waitHolder(s.ip, s.master, 30*time.Second)
	v.waitReaches(s.ip, s.master)
	if st := v.status(s.master); st.Exits != exits+1 || st.State != vip.StateRunning {
		t.Errorf("%s supervisor status %+v: want one more exit and keepalived running again", s.master, st)
	}
	v.waitEvent(s.master, vip.ReasonKeepalivedExited, "keepalived ended")
}

// c: the master's cable is pulled: a backup takes over, measured, and the
// next member in priority order holds the address;
// with the cable back the master takes the address back.
func (s *vipScenario) linkDown(t *testing.T) {
	v := s.v
	v.settle(s.ip, s.master)
	to, d := v.measureTakeover(s.ip, s.master, 10*time.Second, func() error { return v.l.LinkDown(s.master) })
	t.Logf("c: link of %s down at advert %v: %s held by %s after %v", s.master, v.advert, s.ip, to, d.Round(time.Millisecond))
	// Whichever backup's timer ran out first, the next member in priority
	// order ends up with the address.
	next := s.group.Members[1].Node
	v.waitHolder(s.ip, next, 10*time.Second)
	// The master removes the address from its downed interface.
	err := lab.Poll(t.Context(), 10*time.Second, 10*time.Millisecond, s.master+" drops the address", func(context.Context) (bool, error) {
		return v.holds(s.master, s.ip) == "", nil
	})
	if err != nil {
		t.Fatal(err)
	}
	v.waitReaches(s.ip, next)
	if err := v.l.LinkUp(s.master); err != nil {
		t.Fatal(err)
	}
	v.waitHolder(s.ip, s.master, 30*time.Second)
	v.waitReaches(s.ip, s.master)
	if g := v.waitPlanned(s.ip)[s.ip]; g.VRID != s.group.VRID || !slices.Equal(memberNodes(g), memberNodes(s.group)) {
		t.Errorf("the plan changed over a link failure: %+v -> %+v", s.group, g)
	}
}

// d: two vip Eips on two interfaces (eth0, and eth1 on a second segment
// named by can_reach:) and more Services: separate instances per
// interface, VRIDs unique per segment and the same on every node, each
// address on exactly one node and on the right interface.
func (s *vipScenario) twoInterfaces(t *testing.T) {
	v := s.v
	v.addVIPSegment()
	if err := v.l.Kube.Create(t.Context(), vipEip("eip-vip2", vipPool2, vip2Iface)); err != nil {
		t.Fatal(err)
	}
	for i := range 4 {
		name := fmt.Sprintf("vip-svc-%d", i)
		s.svcs[name] = v.createVIPService(lbService(name, "eip-vip"))
	}
	for i := range 2 {
		name := fmt.Sprintf("vip2-svc-%d", i)
		s.svcs[name] = v.createVIPService(lbService(name, "eip-vip2"))
	}
	var all []netip.Addr
	for _, ip := range s.svcs {
		all = append(all, ip)
	}
	groups := v.waitPlanned(all...)
	for name, ip := range s.svcs {
		g := groups[ip]
		iface := "eth0"
		if strings.HasPrefix(name, "vip2-") {
			iface = "eth1"
		}
		for _, m := range g.Members {
			if m.Interface != iface {
				t.Errorf("%s (%s): member %s on %s, want %s", name, ip, m.Node, m.Interface, iface)
			}
		}
		v.waitHolder(ip, g.Members[0].Node, 20*time.Second)
		if got := v.holds(g.Members[0].Node, ip); got != iface {
			t.Errorf("%s held on %q, want %s", ip, got, iface)
		}
		v.waitReaches(ip, g.Members[0].Node)
	}
	// VRIDs: unique per interface space in the plan, and every member runs
	// each of its groups under the same VRID with its own priority.
	plan := v.plan()
	seen := map[string]bool{}
	for _, g := range plan.Groups {
		for _, sp := range g.Spaces() {
			k := fmt.Sprintf("%s/%d", sp, g.VRID)
			if seen[k] {
				t.Errorf("VRID %d used twice on %s: %s", g.VRID, sp, recordJSON(plan))
			}
			seen[k] = true
		}
		for i, m := range g.Members {
			in, ok := v.instances(m.Node)[vip.InstanceName(m.Interface, g.Family, g.VRID)]
			if !ok || in.vrid != g.VRID || in.iface != m.Interface || in.priority != vip.Priority(i, len(g.Members)) {
				t.Errorf("%s runs %+v (found %v) for group %+v", m.Node, in, ok, g)
			}
		}
	}
	ifaces := map[string]bool{}
	for _, in := range v.instances(s.nodes()[0]) {
		ifaces[in.iface] = true
	}
	if !ifaces["eth0"] || !ifaces["eth1"] {
		t.Errorf("node1 runs instances on %v, want eth0 and eth1", ifaces)
	}
	t.Logf("d: %d groups: %s", len(plan.Groups), recordJSON(plan))
}

// d (collisions): another VRRP router appears on the LAN with the VRID of
// vip-svc's group: the speakers see its advertisements, record it, the
// writer moves the group to a free VRID, a Warning Event names the
// router, and the address ends on its master again.
func (s *vipScenario) foreignRouter(t *testing.T) {
	v := s.v
	g := v.waitPlanned(s.ip)[s.ip]
	dir := filepath.Join(v.l.RunDir, "foreign-vrrp")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	conf := fmt.Sprintf(`global_defs {
  router_id foreign
  vrrp_version 3
}
vrrp_instance foreign {
  state BACKUP
  interface eth0
  virtual_router_id %d
  priority 100
  advert_int 1
  virtual_ipaddress {
    203.0.113.250/32 dev eth0
  }
}
`, g.VRID)
	if err := os.WriteFile(filepath.Join(dir, "keepalived.conf"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	p, err := v.l.Start(lab.ProcSpec{Name: "client-foreign-keepalived", NS: v.l.Client, Args: []string{"keepalived", "-n", "-P", "-l", "-D", "-G",
		"-f", filepath.Join(dir, "keepalived.conf"), "-p", filepath.Join(dir, "k.pid"), "-r", filepath.Join(dir, "v.pid"),
		"-c", filepath.Join(dir, "c.pid"), "-b", filepath.Join(dir, "b.pid"), "-i", "foreign"}})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Terminate(5 * time.Second)
	var moved vip.Group
	err = lab.WaitFor(t.Context(), 30*time.Second, fmt.Sprintf("vip-svc's group off VRID %d", g.VRID), func(context.Context) (bool, error) {
		moved = v.waitPlanned(s.ip)[s.ip]
		return moved.VRID != g.VRID, fmt.Errorf("still VRID %d", moved.VRID)
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range v.l.Nodes {
		if _, ok := v.instances(n.Name)[vip.InstanceName("eth0", 4, g.VRID)]; ok {
			err := lab.WaitFor(t.Context(), 10*time.Second, n.Name+" drops VRID "+fmt.Sprint(g.VRID), func(context.Context) (bool, error) {
				_, ok := v.instances(n.Name)[vip.InstanceName("eth0", 4, g.VRID)]
				return !ok, nil
			})
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	v.waitEvent(s.master, vip.ReasonForeign, fmt.Sprintf("uses VRID %d on eth0", g.VRID))
	v.waitHolder(s.ip, moved.Members[0].Node, 20*time.Second)
	v.waitReaches(s.ip, moved.Members[0].Node)
	for _, other := range v.plan().Groups {
		if other.VRID == g.VRID && slices.Contains(other.Spaces(), vip.Space{Family: 4, Interface: "eth0"}) {
			t.Errorf("VRID %d still used on eth0 by %+v", g.VRID, other)
		}
	}
	s.group = moved
	t.Logf("d: a foreign VRRP router with VRID %d on the LAN moved vip-svc's group to VRID %d", g.VRID, moved.VRID)
}

// f: restarting speakers (one at a time, masters included) moves no
// address: keepalived runs on in the sidecar.
func (s *vipScenario) speakerRestart(t *testing.T) {
	v := s.v
	holders := map[netip.Addr]string{}
	// The scenario before may have reloaded keepalived (new VRIDs): wait
	// until every address has settled on one holder.
	settle := time.Now()
	for _, ip := range s.svcs {
		var h []string
		err := lab.WaitFor(t.Context(), 10*time.Second, ip.String()+" held by one node", func(context.Context) (bool, error) {
			h = v.holders(ip)
			return len(h) == 1, fmt.Errorf("held by %v", h)
		})
		if err != nil {
			t.Fatalf("before the restarts: %v", err)
		}
		holders[ip] = h[0]
	}
	t.Logf("f: every address on one holder %v after the previous scenario", time.Since(settle).Round(time.Millisecond))
	pids := map[string]int{}
	for _, n := range s.nodes() {
		pids[n] = v.status(n).PID
	}
	stop := make(chan struct{})
	moved := make(chan string, 1)
	go func() {
		defer close(moved)
		for {
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
			for ip, want := range holders {
				if got := v.holders(ip); !slices.Equal(got, []string{want}) {
					moved <- fmt.Sprintf("%s held by %v (was %s)", ip, got, want)
					return
				}
			}
		}
	}()
	order := append([]string{s.master}, slices.DeleteFunc(s.nodes(), func(n string) bool { return n == s.master })...)
	for _, n := range order {
		old := v.l.Node(n).Speaker
		if old.Terminate(5 * time.Second) {
			t.Errorf("%s speaker ignored SIGTERM", n)
		}
		v.startSpeaker(n, true)
		// Wait for the new speaker to pass its readiness and a few
		// advertisements more.
		v.waitReady(n)
		time.Sleep(5 * v.advert)
	}
	close(stop)
	if m, ok := <-moved; ok {
		t.Fatalf("a speaker restart moved an address: %s", m)
	}
	for n, pid := range pids {
		if got := v.status(n).PID; got != pid {
			t.Errorf("%s: keepalived pid %d -> %d: the speaker restart restarted keepalived", n, pid, got)
		}
	}
	t.Logf("f: %d speakers restarted; %d addresses stayed on their masters, keepalived pids %v unchanged", len(order), len(holders), pids)
}

// e: vip disabled. As when the operator drops vip from the pods: the
// sidecars stop (one of them killed hard together with its keepalived, so
// that its addresses stay behind) and the speakers come back with vip
// disabled. Afterwards no node runs keepalived or holds a vip address, and
// the record has no node entries left.
func (s *vipScenario) disable(t *testing.T) {
	v := s.v
	hard := s.master
	st := v.status(hard)
	// Freeze keepalived so that nothing hands over, kill its supervisor and
	// then keepalived itself.
	if err := syscall.Kill(-st.PID, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	if err := v.sidecars[hard].Kill(); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(-st.PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if v.holds(hard, s.ip) == "" {
		t.Fatalf("the hard kill left nothing behind on %s: the clean-up below would prove nothing", hard)
	}
	for _, n := range s.nodes() {
		if p := v.sidecars[n]; n != hard && p.Terminate(10*time.Second) {
			t.Errorf("%s sidecar needed SIGKILL", n)
		}
		v.l.Node(n).Speaker.Terminate(5 * time.Second)
	}
	if left := v.leftovers(vipPool, vipPool2); len(left) == 0 || !strings.Contains(strings.Join(left, ";"), hard) {
		t.Fatalf("expected the killed keepalived's addresses on %s, found %v", hard, left)
	}
	v.startSpeakers(false)
	err := lab.WaitFor(t.Context(), 20*time.Second, "no keepalived and no vip address on any node", func(context.Context) (bool, error) {
		left := v.leftovers(vipPool, vipPool2)
		return len(left) == 0, fmt.Errorf("left: %v", left)
	})
	if err != nil {
		t.Fatal(err)
	}
	err = lab.WaitFor(t.Context(), 20*time.Second, "no node entries in the vip record", func(ctx context.Context) (bool, error) {
		var cm corev1.ConfigMap
		if err := v.l.Kube.Get(ctx, client.ObjectKey{Namespace: lab.Namespace, Name: vip.RecordName}, &cm); err != nil {
			return false, err
		}
		var keys []string
		for k := range cm.Data {
			if strings.HasPrefix(k, "node.") {
				keys = append(keys, k)
			}
		}
		return len(keys) == 0, fmt.Errorf("entries %v", keys)
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("e: vip disabled: no keepalived process and no vip address on any of %v", s.nodes())
}
