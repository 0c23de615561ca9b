//go:build e2e

// Package e2e holds the network-lab scenarios (`make test-e2e`, root).
// This file is the lab's self-test: it proves the harness with a test BGP
// speaker, independently of the product's roles.
package e2e

import (
	"bufio"
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/openelb/openelb-operator/test/lab"
)

var (
	vip4 = netip.MustParsePrefix("203.0.113.10/32")
	vip6 = netip.MustParsePrefix("2001:db8:ffff::10/128")
)

func TestMain(m *testing.M) {
	if os.Getenv(reaperChildEnv) == "1" {
		reaperChild()
		return
	}
	os.Exit(m.Run())
}

func nodeAddrs(l *lab.Lab, v6 bool) []netip.Addr {
	var out []netip.Addr
	for _, n := range l.Nodes {
		if v6 {
			out = append(out, n.IPv6)
		} else {
			out = append(out, n.IPv4)
		}
	}
	return out
}

// waitECMP waits until the router's daemon has an Established session with
// every node over IPv4 and IPv6 and its kernel FIB holds both VIPs with one
// next hop per node.
func waitECMP(ctx context.Context, t *testing.T, l *lab.Lab) {
	t.Helper()
	want4, want6 := nodeAddrs(l, false), nodeAddrs(l, true)
	wantPeers := append(append([]netip.Addr{}, want4...), want6...)
	err := lab.WaitFor(ctx, 20*time.Second, fmt.Sprintf("%s: sessions and 3-way ECMP", l.RouterKind()), func(ctx context.Context) (bool, error) {
		peers, err := l.BGPEstablished(ctx)
		if err != nil {
			return false, err
		}
		hops4, err := l.RouterNextHops(vip4)
		if err != nil {
			return false, err
		}
		hops6, err := l.RouterNextHops(vip6)
		if err != nil {
			return false, err
		}
		ok := reflect.DeepEqual(peers, wantPeers) && reflect.DeepEqual(hops4, want4) && reflect.DeepEqual(hops6, want6)
		return ok, fmt.Errorf("peers %v, FIB %v / %v", peers, hops4, hops6)
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []netip.Prefix{vip4, vip6} {
		hops, err := l.BGPNextHops(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		if want := nodeAddrs(l, p.Addr().Is6()); !reflect.DeepEqual(hops, want) {
			t.Errorf("%s: daemon next hops for %s = %v, want %v", l.RouterKind(), p, hops, want)
		}
	}
}

func startTestSpeakers(ctx context.Context, t *testing.T, l *lab.Lab) {
	t.Helper()
	for _, n := range l.Nodes {
		if n.Speaker != nil {
			n.Speaker.Terminate(2 * time.Second)
		}
		if _, err := l.StartTestSpeaker(ctx, n.Name, lab.TestSpeakerOptions{Prefixes: []netip.Prefix{vip4, vip6}}); err != nil {
			t.Fatal(err)
		}
	}
}

// spreadReachesAll sends requests to addr from the client and wants every
// node to answer some (ECMP with an L4 hash) and no request to fail.
func spreadReachesAll(ctx context.Context, t *testing.T, l *lab.Lab, addr netip.AddrPort) {
	t.Helper()
	got := l.Spread(ctx, addr, 30)
	for _, n := range l.Nodes {
		if got[n.Name] == 0 {
			t.Errorf("30 requests to %s: none reached %s: %v", addr, n.Name, got)
		}
	}
	if got[""] > 0 {
		t.Errorf("30 requests to %s: %d failed: %v", addr, got[""], got)
	}
}

func TestLab(t *testing.T) {
	start := time.Now()
	l := lab.New(t, lab.Options{})
	t.Logf("3-node lab with FRR and control plane up in %v", time.Since(start).Round(time.Millisecond))
	ctx := t.Context()
	svcAddr4 := netip.AddrPortFrom(vip4.Addr(), 8080)
	svcAddr6 := netip.AddrPortFrom(vip6.Addr(), 8080)

	t.Run("apiserver from every node namespace", func(t *testing.T) {
		bin, err := lab.BinDir()
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range l.Nodes {
			out, err := n.NS.Run(ctx, filepath.Join(bin, "kubectl"), "--kubeconfig", l.Kubeconfig, "get", "nodes",
				"-o", `jsonpath={range .items[*]}{.metadata.name} {.status.addresses[0].address} {.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}`)
			if err != nil {
				t.Fatalf("kubectl from %s: %v", n.Name, err)
			}
			want := "node1 198.51.100.11 True\nnode2 198.51.100.12 True\nnode3 198.51.100.13 True\n"
			if out != want {
				t.Errorf("kubectl get nodes from %s:\n%s\nwant:\n%s", n.Name, out, want)
			}
		}
		if out, err := l.Kubectl(ctx, "", "get", "crd", "eips.network.kubesphere.io", "-o", "name"); err != nil || !strings.Contains(out, "eips") {
			t.Errorf("Eip CRD not installed: %q %v", out, err)
		}
	})

	t.Run("arping and ndisc6 across the LAN", func(t *testing.T) {
		for _, n := range l.Nodes {
			macs, err := l.Arping(ctx, n.IPv4)
			if err != nil {
				t.Fatal(err)
			}
			if len(macs) != 1 || macs[0].String() != n.MAC.String() {
				t.Errorf("arping %s: %v, want [%s]", n.IPv4, macs, n.MAC)
			}
			mac, err := l.Ndisc(ctx, n.IPv6)
			if err != nil || mac.String() != n.MAC.String() {
				t.Errorf("ndisc6 %s: %v %v, want %s", n.IPv6, mac, err, n.MAC)
			}
			if err := l.Ping(ctx, n.IPv4); err != nil {
				t.Fatal(err)
			}
			if mac, err := l.ClientNeighbor(n.IPv4); err != nil || mac.String() != n.MAC.String() {
				t.Errorf("client neighbour entry for %s: %v %v, want %s", n.IPv4, mac, err, n.MAC)
			}
		}
	})

	if !t.Run("FRR ECMP with the test speaker", func(t *testing.T) {
		startTestSpeakers(ctx, t, l)
		waitECMP(ctx, t, l)
	}) {
		t.FailNow()
	}

	t.Run("kube-proxy stand-in, HTTP over ECMP, strict ARP", func(t *testing.T) {
		svc := &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"},
			Spec: corev1.ServiceSpec{
				Type:  corev1.ServiceTypeLoadBalancer,
				Ports: []corev1.ServicePort{{Name: "http", Port: 8080, TargetPort: intstr.FromInt32(8080)}},
			},
		}
		svc, err := l.Clientset.CoreV1().Services("default").Create(ctx, svc, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		// What the controller role will do: write the ingress addresses.
		svc.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: vip4.Addr().String()}, {IP: vip6.Addr().String()}}
		if _, err := l.Clientset.CoreV1().Services("default").UpdateStatus(ctx, svc, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		want := []netip.Addr{vip4.Addr(), vip6.Addr()}
		for _, n := range l.Nodes {
			if err := lab.WaitFor(ctx, 10*time.Second, "VIPs on lo of "+n.Name, func(context.Context) (bool, error) {
				got, err := n.LoopbackAddrs()
				return reflect.DeepEqual(got, want), err
			}); err != nil {
				t.Fatal(err)
			}
		}
		var got string
		if err := lab.WaitFor(ctx, 10*time.Second, "first HTTP answer", func(ctx context.Context) (bool, error) {
			var err error
			got, err = l.HTTPGet(ctx, svcAddr4)
			return err == nil, err
		}); err != nil {
			t.Fatal(err)
		}
		t.Logf("GET http://%s/ answered by %s", svcAddr4, got)
		spreadReachesAll(ctx, t, l, svcAddr4)
		spreadReachesAll(ctx, t, l, svcAddr6)
		// Every node holds the VIP on lo, yet none answers ARP for it
		// (arp_ignore=1, arp_announce=2): that is the speaker's job.
		if macs, err := l.Arping(ctx, vip4.Addr()); err == nil {
			t.Errorf("nodes answer ARP for a VIP on lo: %v (arp_ignore not in effect)", macs)
		}
	})

	t.Run("externalTrafficPolicy Local follows EndpointSlices", func(t *testing.T) {
		svc, err := l.Clientset.CoreV1().Services("default").Get(ctx, "web", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		svc.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyLocal
		if _, err := l.Clientset.CoreV1().Services("default").Update(ctx, svc, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		if err := l.SetEndpoints(ctx, "default", "web", lab.Endpoint{Node: "node2"}, lab.Endpoint{Node: "node3", NotReady: true}); err != nil {
			t.Fatal(err)
		}
		for _, n := range l.Nodes {
			want := 0
			if n.Name == "node2" {
				want = 2
			}
			if err := lab.WaitFor(ctx, 10*time.Second, fmt.Sprintf("%d VIPs on lo of %s", want, n.Name), func(context.Context) (bool, error) {
				got, err := n.LoopbackAddrs()
				return len(got) == want, err
			}); err != nil {
				t.Error(err)
			}
		}
		// Back to Cluster: every node again.
		svc, err = l.Clientset.CoreV1().Services("default").Get(ctx, "web", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		svc.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyCluster
		if _, err := l.Clientset.CoreV1().Services("default").Update(ctx, svc, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		for _, n := range l.Nodes {
			if err := lab.WaitFor(ctx, 10*time.Second, "2 VIPs on lo of "+n.Name, func(context.Context) (bool, error) {
				got, err := n.LoopbackAddrs()
				return len(got) == 2, err
			}); err != nil {
				t.Error(err)
			}
		}
	})

	t.Run("node condition, labels and annotations", func(t *testing.T) {
		if err := l.SetNodeReady(ctx, "node3", false); err != nil {
			t.Fatal(err)
		}
		if err := l.PatchNodeLabels(ctx, "node3", map[string]string{"openelb.kubesphere.io/rack": "r1"}); err != nil {
			t.Fatal(err)
		}
		if err := l.PatchNodeAnnotations(ctx, "node3", map[string]string{"lab/a": "1"}); err != nil {
			t.Fatal(err)
		}
		n, err := l.Clientset.CoreV1().Nodes().Get(ctx, "node3", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if n.Labels["openelb.kubesphere.io/rack"] != "r1" || n.Annotations["lab/a"] != "1" || readyStatus(n) != corev1.ConditionFalse {
			t.Errorf("node3 labels %v annotations %v ready %s", n.Labels, n.Annotations, readyStatus(n))
		}
		if err := l.SetNodeReady(ctx, "node3", true); err != nil {
			t.Fatal(err)
		}
		if err := l.PatchNodeLabels(ctx, "node3", nil, "openelb.kubesphere.io/rack"); err != nil {
			t.Fatal(err)
		}
		n, _ = l.Clientset.CoreV1().Nodes().Get(ctx, "node3", metav1.GetOptions{})
		if _, has := n.Labels["openelb.kubesphere.io/rack"]; has || readyStatus(n) != corev1.ConditionTrue {
			t.Errorf("node3 labels %v ready %s after reset", n.Labels, readyStatus(n))
		}
	})

	t.Run("FRR withdraws a killed speaker's next hop", func(t *testing.T) {
		node1 := l.Node("node1")
		d, err := lab.Measure(ctx, 10*time.Second, 5*time.Millisecond, node1.Speaker.Kill, func(context.Context) (bool, error) {
			hops, err := l.RouterNextHops(vip4)
			return len(hops) == 2 && !hops[0].IsUnspecified() && hops[0] != node1.IPv4, err
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("FRR: next hop of node1 gone %v after SIGKILL of its speaker", d.Round(time.Millisecond))
	})

	if !t.Run("BIRD ECMP with the test speaker", func(t *testing.T) {
		if err := l.StartRouter(ctx, lab.BIRD); err != nil {
			t.Fatal(err)
		}
		// Restarted speakers dial at once (a dropped gobgp session idles
		// 5 s before redialling).
		startTestSpeakers(ctx, t, l)
		waitECMP(ctx, t, l)
		spreadReachesAll(ctx, t, l, svcAddr4)
		spreadReachesAll(ctx, t, l, svcAddr6)
	}) {
		t.FailNow()
	}

	t.Run("cable pull: BIRD hold timer withdraws the next hop", func(t *testing.T) {
		node2 := l.Node("node2")
		d, err := lab.Measure(ctx, 10*time.Second, 10*time.Millisecond, func() error { return l.LinkDown("node2") },
			func(context.Context) (bool, error) {
				hops, err := l.RouterNextHops(vip4)
				return len(hops) == 2 && !contains(hops, node2.IPv4), err
			})
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("BIRD: next hop of node2 gone %v after its cable was pulled (hold time 3 s)", d.Round(time.Millisecond))
		if err := l.Ping(ctx, node2.IPv4); err == nil {
			t.Error("node2 answers ping with its cable pulled")
		}
		if err := l.LinkUp("node2"); err != nil {
			t.Fatal(err)
		}
		if err := lab.WaitFor(ctx, 10*time.Second, "node2 reachable again", func(ctx context.Context) (bool, error) {
			err := l.Ping(ctx, node2.IPv4)
			return err == nil, err
		}); err != nil {
			t.Error(err)
		}
	})

	t.Run("deleting the Service removes its addresses", func(t *testing.T) {
		if err := l.Clientset.CoreV1().Services("default").Delete(ctx, "web", metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		for _, n := range l.Nodes {
			if err := lab.WaitFor(ctx, 10*time.Second, "no VIPs on lo of "+n.Name, func(context.Context) (bool, error) {
				got, err := n.LoopbackAddrs()
				return len(got) == 0, err
			}); err != nil {
				t.Error(err)
			}
		}
	})

	t.Run("a role that is not built is reported as missing", func(t *testing.T) {
		fake := filepath.Join(t.TempDir(), "openelb")
		script := "#!/bin/sh\necho 'error: the controller role is not built yet in this build of openelb (tracked in issue 11)' >&2\nexit 1\n"
		if err := os.WriteFile(fake, []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
		t.Setenv("LAB_OPENELB", fake)
		_, err := l.StartController(ctx, lab.RoleOptions{})
		if !lab.IsRoleNotBuilt(err) {
			t.Errorf("StartController with a role that is not built: %v, want ErrRoleNotBuilt", err)
		}
	})
}

func readyStatus(n *corev1.Node) corev1.ConditionStatus {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status
		}
	}
	return ""
}

func contains(as []netip.Addr, a netip.Addr) bool {
	for _, x := range as {
		if x == a {
			return true
		}
	}
	return false
}

// TestLabCleanup proves that Down leaves nothing behind: no namespace of
// the lab, no process it started.
func TestLabCleanup(t *testing.T) {
	lab.RequireRunnable(t, lab.Options{NoControlPlane: true})
	ctx := t.Context()
	l, err := lab.Up(ctx, lab.Options{Nodes: 2, NoControlPlane: true, Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range l.Nodes {
		if _, err := l.StartTestSpeaker(ctx, n.Name, lab.TestSpeakerOptions{Prefixes: []netip.Prefix{vip4}}); err != nil {
			t.Error(err)
		}
	}
	procs := l.Procs()
	if len(procs) < 4 {
		t.Errorf("only %d processes started", len(procs))
	}
	if err := l.Down(); err != nil {
		t.Fatalf("Down: %v", err)
	}
	if left := l.Leftovers(); len(left) != 0 {
		t.Errorf("left behind: %v", left)
	}
	assertGone(t, l.Prefix, pidsOf(procs))
	if err := l.RemoveRunDir(); err != nil {
		t.Error(err)
	}
}

func pidsOf(procs []*lab.Proc) []int {
	var pids []int
	for _, p := range procs {
		pids = append(pids, p.PID())
	}
	return pids
}

// assertGone checks `ip netns list` and the pids (a pid that exists again
// must belong to another program).
func assertGone(t *testing.T, prefix string, pids []int) {
	t.Helper()
	out, err := exec.Command("ip", "netns", "list").Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(line, prefix+"-") {
			t.Errorf("namespace left: %s", line)
		}
	}
	for _, pid := range pids {
		if alive(pid, prefix) {
			t.Errorf("process %d of the lab still exists", pid)
		}
	}
}

// alive reports whether pid exists, is not a zombie, and still looks like a
// lab process (its command line or namespace names the lab).
func alive(pid int, prefix string) bool {
	if err := syscall.Kill(pid, 0); err != nil {
		return false
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	if i := strings.LastIndexByte(string(stat), ')'); i > 0 && strings.HasPrefix(string(stat[i+1:]), " Z") {
		return false
	}
	cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	return strings.Contains(string(cmdline), prefix) || strings.Contains(string(cmdline), "testspeaker") ||
		strings.Contains(string(cmdline), "/usr/lib/frr/")
}

const reaperChildEnv = "LAB_E2E_REAPER_CHILD"

// reaperChild brings up a lab with FRR (zebra runs as the frr user, so the
// parent-death signal does not reach it) and a test speaker, prints its
// prefix and pids, and blocks until it is killed.
func reaperChild() {
	ctx := context.Background()
	l, err := lab.Up(ctx, lab.Options{Nodes: 1, NoControlPlane: true})
	if err != nil {
		fmt.Println("ERROR", err)
		os.Exit(1)
	}
	if _, err := l.StartTestSpeaker(ctx, "node1", lab.TestSpeakerOptions{Prefixes: []netip.Prefix{vip4}}); err != nil {
		fmt.Println("ERROR", err)
		os.Exit(1)
	}
	fmt.Println("READY", l.Prefix, l.RunDir, strings.Trim(fmt.Sprint(pidsOf(l.Procs())), "[]"))
	select {}
}

// TestLabReaper kills a harness process with SIGKILL (no cleanup code runs)
// and checks that the reaper removes its namespaces and processes.
func TestLabReaper(t *testing.T) {
	lab.RequireRunnable(t, lab.Options{NoControlPlane: true})
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), reaperChildEnv+"=1")
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "READY") || strings.HasPrefix(sc.Text(), "ERROR") {
				lines <- sc.Text()
				return
			}
		}
		close(lines)
	}()
	var line string
	select {
	case line = <-lines:
	case <-time.After(60 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatal("child lab did not come up in 60 s")
	}
	f := strings.Fields(line)
	if len(f) < 4 || f[0] != "READY" {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		t.Fatalf("child: %q", line)
	}
	prefix, runDir := f[1], f[2]
	var pids []int
	for _, s := range f[3:] {
		var p int
		fmt.Sscan(s, &p)
		pids = append(pids, p)
	}
	_ = cmd.Process.Signal(syscall.SIGKILL)
	_ = cmd.Wait()
	err = lab.WaitFor(t.Context(), 10*time.Second, "reaper cleanup", func(context.Context) (bool, error) {
		out, err := exec.Command("ip", "netns", "list").Output()
		if err != nil {
			return false, err
		}
		if strings.Contains(string(out), prefix+"-") {
			return false, fmt.Errorf("namespaces left: %s", out)
		}
		for _, p := range pids {
			if alive(p, prefix) {
				return false, fmt.Errorf("pid %d alive", p)
			}
		}
		return true, nil
	})
	if err != nil {
		t.Error(err)
	}
	assertGone(t, prefix, pids)
	if strings.Contains(runDir, prefix) {
		_ = os.RemoveAll(runDir)
	}
}

// TestLabSetupFailure makes the control plane fail half-way through Up and
// checks that Up tears down what it had made and says why.
func TestLabSetupFailure(t *testing.T) {
	lab.RequireRunnable(t, lab.Options{NoControlPlane: true, Router: lab.NoRouter})
	bin := t.TempDir()
	for _, b := range []string{"etcd", "kube-apiserver", "kubectl"} {
		script := "#!/bin/sh\necho 'fake " + b + " fails on purpose' >&2\nexit 3\n"
		if err := os.WriteFile(filepath.Join(bin, b), []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("LAB_BIN_DIR", bin)
	prefix := "olfail" + fmt.Sprint(os.Getpid()%100)
	l, err := lab.Up(t.Context(), lab.Options{Nodes: 1, Router: lab.NoRouter, Prefix: prefix, Logf: t.Logf})
	if err == nil {
		_ = l.Down()
		t.Fatal("Up succeeded with a control plane that cannot start")
	}
	if !strings.Contains(err.Error(), "fails on purpose") {
		t.Errorf("Up error does not carry the failing process's log: %v", err)
	}
	if l == nil {
		t.Fatal("Up returned no lab with its error (the caller needs it for the logs)")
	}
	if left := l.Leftovers(); len(left) != 0 {
		t.Errorf("left behind after a failed Up: %v", left)
	}
	assertGone(t, prefix, pidsOf(l.Procs()))
	_ = l.RemoveRunDir()
}

// TestLabCLIInterrupt runs `lab up`, interrupts it like Ctrl-C and checks
// that it tears the lab down and exits 0.
func TestLabCLIInterrupt(t *testing.T) {
	lab.RequireRunnable(t, lab.Options{NoControlPlane: true})
	root, err := lab.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	cli := filepath.Join(t.TempDir(), "lab")
	build := exec.CommandContext(t.Context(), "go", "build", "-o", cli, "./test/lab/cmd/lab")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build the lab CLI: %v\n%s", err, out)
	}
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
		cmd := exec.Command(cli, "up", "-nodes", "1", "-no-control-plane")
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "LAB_ONESHOT=")
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		up := make(chan string, 1)
		go func() {
			sc := bufio.NewScanner(stdout)
			prefix := ""
			for sc.Scan() {
				if f := strings.Fields(sc.Text()); len(f) > 2 && f[0] == "==>" && f[1] == "lab" && prefix == "" {
					prefix = f[2]
				}
				if strings.Contains(sc.Text(), "stays up until Ctrl-C") {
					up <- prefix
				}
			}
			close(up)
		}()
		var prefix string
		select {
		case prefix = <-up:
		case <-time.After(60 * time.Second):
			_ = cmd.Process.Kill()
			t.Fatal("lab up did not come up in 60 s")
		}
		if prefix == "" {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			t.Fatal("lab up ended without coming up")
		}
		_ = cmd.Process.Signal(sig)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("lab up after %v: %v", sig, err)
			}
		case <-time.After(20 * time.Second):
			_ = cmd.Process.Kill()
			t.Fatalf("lab up did not exit within 20 s of %v", sig)
		}
		assertGone(t, prefix, nil)
		_ = os.RemoveAll(filepath.Join(root, "test", "lab", "run", prefix))
	}
}

// TestLabBFDRouter starts the router with bfdd and checks that FRR took the
// BFD profile and the peer-group settings.
func TestLabBFDRouter(t *testing.T) {
	l := lab.New(t, lab.Options{Nodes: 1, BFD: true, NoControlPlane: true})
	out, err := l.Vtysh(t.Context(), "show running-config")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"profile fast", "transmit-interval 100", "neighbor NODES bfd profile fast"} {
		if !strings.Contains(out, want) {
			t.Errorf("running config lacks %q:\n%s", want, out)
		}
	}
	if _, err := l.Vtysh(t.Context(), "show bfd peers"); err != nil {
		t.Error(err)
	}
}
