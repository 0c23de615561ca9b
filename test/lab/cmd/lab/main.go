// Command lab runs the network lab (test/lab) from a shell. It needs root.
//
//	lab demo [flags]         what `make lab` runs: the whole system with sample objects and the proof
//	lab up [flags]           the lab alone (plus the roles with -roles), until Ctrl-C
//	lab run [flags] -- CMD   the lab, then CMD with KUBECONFIG and LAB_* set; exits with CMD's status
//	lab down PREFIX          delete what a crashed lab left (its namespaces and their processes)
//
// Flags: -nodes N (3), -router frr|bird|none (frr), -bfd, -no-control-plane,
// -roles (up/run: start operator, controller and speakers). A lab lives as
// long as this process: Ctrl-C, SIGTERM or the end of CMD tears it down
// (every process by pid, every namespace). LAB_ONESHOT=1 makes demo and up
// tear down at once instead of waiting for Ctrl-C. The run directory
// (test/lab/run/<prefix>: logs, configs, kubeconfigs) is removed after a
// clean run and kept after a failure or with LAB_KEEP=1.
package main

import (
	"context"
	_ "embed"
	"errors"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"os/signal"
	"regexp"
	"strings"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	operatorv1alpha1 "github.com/openelb/openelb-operator/api/operator/v1alpha1"
	"github.com/openelb/openelb-operator/test/lab"
)

var (
	//go:embed openelb.yaml
	openelbManifest string
	//go:embed network.yaml
	networkManifests string
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	defer stop()
	var err error
	code := 0
	switch os.Args[1] {
	case "demo":
		code, err = demo(ctx, os.Args[2:])
	case "up":
		err = up(ctx, os.Args[2:])
	case "run":
		code, err = run(ctx, os.Args[2:])
	case "down":
		err = down(os.Args[2:])
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "lab:", err)
		if code == 0 {
			code = 1
		}
	}
	os.Exit(code)
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: lab demo|up|run|down [flags] (see `go doc ./test/lab/cmd/lab`)")
	os.Exit(2)
}

type flags struct {
	opts  lab.Options
	roles bool
}

func parseFlags(name string, args []string) (flags, []string, error) {
	var f flags
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.IntVar(&f.opts.Nodes, "nodes", 3, "number of node namespaces")
	router := fs.String("router", "frr", "routing daemon: frr, bird or none")
	fs.BoolVar(&f.opts.BFD, "bfd", false, "run bfdd on the router (FRR)")
	fs.BoolVar(&f.opts.NoControlPlane, "no-control-plane", false, "no etcd/kube-apiserver")
	fs.BoolVar(&f.roles, "roles", false, "start operator, controller and speakers")
	if err := fs.Parse(args); err != nil {
		return f, nil, err
	}
	f.opts.Router = lab.RouterKind(*router)
	f.opts.Logf = func(format string, a ...any) {
		fmt.Fprintf(os.Stderr, "%s %s\n", time.Now().Format("15:04:05.000"), fmt.Sprintf(format, a...))
	}
	return f, fs.Args(), nil
}

// start brings a lab up; the caller must call finish.
func start(ctx context.Context, o lab.Options) (*lab.Lab, error) {
	t0 := time.Now()
	l, err := lab.Up(ctx, o)
	if err != nil {
		if l != nil {
			fmt.Fprintf(os.Stderr, "%s\nlogs kept in %s\n", l.Report(context.Background()), l.RunDir)
		}
		return nil, err
	}
	fmt.Printf("==> lab %s up in %v (run dir %s)\n", l.Prefix, time.Since(t0).Round(time.Millisecond), l.RunDir)
	return l, nil
}

// finish tears the lab down. It keeps the run directory (logs) after a
// failure or with LAB_KEEP=1 and removes it otherwise.
func finish(l *lab.Lab, failed bool) error {
	t0 := time.Now()
	err := l.Down()
	keep := failed || err != nil || os.Getenv("LAB_KEEP") == "1"
	where := "run dir removed (LAB_KEEP=1 keeps it)"
	if keep {
		where = "logs kept in " + l.RunDir
	} else if rerr := l.RemoveRunDir(); rerr != nil {
		where = "cannot remove " + l.RunDir + ": " + rerr.Error()
	}
	fmt.Printf("==> lab %s down in %v; %s\n", l.Prefix, time.Since(t0).Round(time.Millisecond), where)
	if failed {
		fmt.Fprintf(os.Stderr, "(failure: see the process logs above and in %s)\n", l.RunDir)
	}
	return err
}

func waitForSignal(ctx context.Context) {
	if os.Getenv("LAB_ONESHOT") == "1" {
		return
	}
	fmt.Println("==> the lab stays up until Ctrl-C (LAB_ONESHOT=1 ends it at once)")
	<-ctx.Done()
	fmt.Println()
}

func printAccess(l *lab.Lab, hostKubeconfig string) {
	bin, _ := lab.BinDir()
	fmt.Printf(`==> point kubectl at the lab (while it runs):
    export KUBECONFIG=%s        # from the host, through a local forwarder
    %s/kubectl get eip,svc,nodes -o wide
  or from inside the lab:
    ip netns exec %s-k8s %s/kubectl --kubeconfig %s get nodes
==> look around:
    ip netns list | grep %s
    ip netns exec %s-client arping -c 1 -I eth0 203.0.113.17
    ip netns exec %s-router ip route
`, hostKubeconfig, bin, l.Prefix, bin, l.Kubeconfig, l.Prefix, l.Prefix, l.Prefix)
	switch l.RouterKind() {
	case lab.FRR:
		fmt.Printf("    vtysh --vty_socket %s/router-frr -c 'show bgp summary'\n", l.RunDir)
	case lab.BIRD:
		fmt.Printf("    birdc -s %s/router-bird/bird.ctl show protocols\n", l.RunDir)
	}
}

// roleSet starts the roles and reports which are missing.
type roleSet struct {
	missing, failed []string
	operator        bool
	controller      bool
	speakers        bool
	// layer2 and bgp are the speaker modes that run.
	layer2, bgp bool
}

// disableMode matches the speaker's advice when one of its modes is not
// built: "… start the speaker with --enable-bgp=false".
var disableMode = regexp.MustCompile(`start the speaker with (--enable-([a-z0-9-]+)=false)`)

// startRoles starts the operator, applies the OpenELB resource, then the
// controller (with the admission webhooks when the operator renders them)
// and the speakers.
func startRoles(ctx context.Context, l *lab.Lab) roleSet {
	var rs roleSet
	note := func(role string, err error) bool {
		switch {
		case err == nil:
			fmt.Printf("==> %s running\n", role)
			return true
		case lab.IsRoleNotBuilt(err):
			fmt.Printf("==> %s: MISSING (not built yet in this build of openelb)\n", role)
			rs.missing = append(rs.missing, role)
		default:
			fmt.Printf("==> %s: FAILED: %v\n", role, err)
			rs.failed = append(rs.failed, role)
		}
		return false
	}
	fmt.Println("==> the lab runs the roles as processes: the operator only manages API objects here (the Deployment and DaemonSet it renders never run: there is no kubelet)")
	_, err := l.StartOperator(ctx, lab.RoleOptions{})
	rs.operator = note("operator role", err)
	out, err := l.Kubectl(ctx, openelbManifest, "apply", "-f", "-")
	fmt.Printf("==> kubectl apply -f openelb.yaml\n%s", indent(out))
	if err != nil {
		rs.failed = append(rs.failed, "apply OpenELB: "+err.Error())
	}
	webhooks := false
	if rs.operator {
		webhooks, err = operatorRendersWebhooks(ctx, l)
		if err != nil {
			fmt.Printf("==> cannot tell whether the operator renders webhooks: %v\n", err)
		}
	}
	if webhooks {
		fmt.Println("==> the operator rendered the admission webhooks: the controller serves them at 198.51.100.2:9444")
		_, err = l.StartControllerWithWebhooks(ctx, lab.RoleOptions{})
	} else {
		_, err = l.StartController(ctx, lab.RoleOptions{})
	}
	rs.controller = note("controller role", err)
	// A speaker whose BGP (or layer2) mode is not built refuses to start
	// with it enabled; run it with what is built and say what is missing.
	var extra []string
	rs.layer2, rs.bgp = true, true
	for range 3 {
		err = l.StartSpeakers(ctx, lab.RoleOptions{Args: extra})
		m := disableMode.FindStringSubmatch(fmt.Sprint(err))
		if err == nil || !lab.IsRoleNotBuilt(err) || m == nil {
			break
		}
		fmt.Printf("==> speaker: %s mode MISSING (not built yet); starting the speakers with %s\n", m[2], m[1])
		rs.missing = append(rs.missing, "speaker "+m[2]+" mode")
		extra = append(extra, m[1])
		switch m[2] {
		case "bgp":
			rs.bgp = false
		case "layer2":
			rs.layer2 = false
		}
	}
	rs.speakers = note(fmt.Sprintf("speaker role (%d nodes)", len(l.Nodes)), err)
	if !rs.speakers {
		rs.layer2, rs.bgp = false, false
	}
	return rs
}

// operatorRendersWebhooks waits until the operator has reconciled the
// OpenELB resource once and reports whether it created the admission
// webhook configuration.
func operatorRendersWebhooks(ctx context.Context, l *lab.Lab) (bool, error) {
	var found bool
	err := lab.WaitFor(ctx, 20*time.Second, "the operator's first reconcile of OpenELB", func(ctx context.Context) (bool, error) {
		_, err := l.Clientset.AdmissionregistrationV1().ValidatingWebhookConfigurations().Get(ctx, "openelb-admission", metav1.GetOptions{})
		if err == nil {
			found = true
			return true, nil
		}
		var elb operatorv1alpha1.OpenELB
		if err := l.Kube.Get(ctx, client.ObjectKey{Name: "openelb"}, &elb); err != nil {
			return false, err
		}
		return elb.Status.ObservedGeneration == elb.Generation, fmt.Errorf("status.observedGeneration %d, generation %d", elb.Status.ObservedGeneration, elb.Generation)
	})
	return found, err
}

func up(ctx context.Context, args []string) error {
	f, _, err := parseFlags("up", args)
	if err != nil {
		return err
	}
	l, err := start(ctx, f.opts)
	if err != nil {
		return err
	}
	failed := false
	if !f.opts.NoControlPlane {
		hostKC, err := l.ForwardAPIServer()
		if err != nil {
			return errors.Join(err, finish(l, true))
		}
		if f.roles {
			rs := startRoles(ctx, l)
			failed = len(rs.failed) > 0
		}
		printAccess(l, hostKC)
	}
	waitForSignal(ctx)
	return finish(l, failed)
}

func run(ctx context.Context, args []string) (int, error) {
	f, cmdArgs, err := parseFlags("run", args)
	if err != nil {
		return 2, err
	}
	if len(cmdArgs) == 0 {
		return 2, errors.New("run: no command (lab run [flags] -- CMD ARGS)")
	}
	l, err := start(ctx, f.opts)
	if err != nil {
		return 1, err
	}
	env := append(os.Environ(), "LAB_PREFIX="+l.Prefix, "LAB_RUN_DIR="+l.RunDir)
	if !f.opts.NoControlPlane {
		hostKC, err := l.ForwardAPIServer()
		if err != nil {
			return 1, errors.Join(err, finish(l, true))
		}
		env = append(env, "KUBECONFIG="+hostKC, "LAB_KUBECONFIG="+l.Kubeconfig)
		if f.roles {
			startRoles(ctx, l)
		}
	}
	cmd := exec.CommandContext(ctx, cmdArgs[0], cmdArgs[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr, cmd.Env = os.Stdin, os.Stdout, os.Stderr, env
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 5 * time.Second
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	runErr := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(runErr, &ee) {
		code = ee.ExitCode()
	} else if runErr != nil {
		code = 1
	}
	if err := finish(l, code != 0); err != nil {
		return 1, err
	}
	if runErr != nil && ee == nil {
		return code, runErr
	}
	return code, nil
}

func down(args []string) error {
	if len(args) != 1 || len(args[0]) < 3 {
		return errors.New("down: give the prefix of the lab (e.g. ol1a2b3c; see `ip netns list`)")
	}
	return lab.DeleteLeftovers(args[0])
}

// demo is `make lab`.
func demo(ctx context.Context, args []string) (int, error) {
	f, _, err := parseFlags("demo", args)
	if err != nil {
		return 2, err
	}
	l, err := start(ctx, f.opts)
	if err != nil {
		return 1, err
	}
	hostKC, err := l.ForwardAPIServer()
	if err != nil {
		return 1, errors.Join(err, finish(l, true))
	}
	rs := startRoles(ctx, l)
	failures := append([]string(nil), rs.failed...)
	if ctx.Err() == nil {
		failures = append(failures, proof(ctx, l, rs)...)
	}
	printAccess(l, hostKC)
	fmt.Println("==> summary")
	if len(rs.missing) > 0 {
		fmt.Printf("    missing roles (not built yet): %s — the lab itself (control plane, router, nodes, client) is up\n", strings.Join(rs.missing, ", "))
	}
	if len(failures) > 0 {
		fmt.Printf("    FAILED: %s\n", strings.Join(failures, "; "))
	} else {
		fmt.Println("    every check that the built roles allow passed")
	}
	waitForSignal(ctx)
	if err := finish(l, len(failures) > 0); err != nil {
		return 1, err
	}
	if len(failures) > 0 {
		return 1, nil
	}
	return 0, nil
}

// proof applies the demo objects and shows the result; it returns the
// checks that failed although the roles they need are running.
func proof(ctx context.Context, l *lab.Lab, rs roleSet) []string {
	var failed []string
	out, err := l.Kubectl(ctx, networkManifests, "apply", "-f", "-")
	fmt.Printf("==> kubectl apply -f network.yaml (Eips eip-layer2 203.0.113.16/28 and eip-bgp 203.0.113.0/28, BgpConf, BgpPeer to the router, Services web-layer2 and web-bgp)\n%s", indent(out))
	if err != nil {
		return append(failed, "apply demo objects: "+err.Error())
	}
	for _, svc := range []string{"web-layer2", "web-bgp"} {
		if err := l.SetEndpoints(ctx, "default", svc, lab.ReadyOn("node1", "node2", "node3")...); err != nil {
			failed = append(failed, err.Error())
		}
	}
	ips := map[string]netip.Addr{}
	if rs.controller {
		err := lab.WaitFor(ctx, 60*time.Second, "addresses for web-layer2 and web-bgp", func(ctx context.Context) (bool, error) {
			for _, name := range []string{"web-layer2", "web-bgp"} {
				svc, err := l.Clientset.CoreV1().Services("default").Get(ctx, name, metav1.GetOptions{})
				if err != nil {
					return false, err
				}
				if ip, ok := ingressIPv4(svc); ok {
					ips[name] = ip
				}
			}
			return len(ips) == 2, fmt.Errorf("allocated so far: %v", ips)
		})
		if err != nil {
			failed = append(failed, err.Error())
		}
	}
	out, _ = l.Kubectl(ctx, "", "get", "eip,svc", "-o", "wide")
	fmt.Printf("==> kubectl get eip,svc -o wide\n%s", indent(out))
	if !rs.controller {
		fmt.Println("==> no controller: Services stay <pending>; skipping the ARP, route and curl proof")
		return failed
	}
	if ip, ok := ips["web-layer2"]; ok {
		if !rs.layer2 {
			fmt.Printf("==> no layer2 speakers: nobody answers ARP for %s yet\n", ip)
		} else {
			mac, err := l.ResolveMAC(ctx, ip, 30*time.Second)
			out, _ := l.Client.Run(ctx, "arping", "-c", "1", "-w", "1", "-I", "eth0", ip.String())
			fmt.Printf("==> the client's ARP answer for %s (web-layer2): %s\n%s", ip, owner(l, mac), indent(out))
			if err != nil {
				failed = append(failed, "layer2: "+err.Error())
			}
		}
		failed = append(failed, curl(ctx, l, ip, rs.layer2)...)
	}
	if ip, ok := ips["web-bgp"]; ok {
		if !rs.bgp {
			fmt.Printf("==> no BGP speakers: the router has no route for %s yet\n", ip)
		} else {
			prefix := netip.PrefixFrom(ip, 32)
			err := lab.WaitFor(ctx, 30*time.Second, fmt.Sprintf("%d next hops for %s on the router", len(l.Nodes), prefix), func(context.Context) (bool, error) {
				hops, err := l.RouterNextHops(prefix)
				return len(hops) == len(l.Nodes), err
			})
			out, _ := l.Router.Run(ctx, "ip", "route", "show", ip.String())
			fmt.Printf("==> the router's ECMP route for %s (web-bgp): ip -n %s-router route show %s\n%s", ip, l.Prefix, ip, indent(out))
			if err != nil {
				failed = append(failed, "bgp: "+err.Error())
			}
		}
		failed = append(failed, curl(ctx, l, ip, rs.bgp)...)
	}
	return failed
}

func curl(ctx context.Context, l *lab.Lab, ip netip.Addr, speakers bool) []string {
	addr := netip.AddrPortFrom(ip, 80)
	if !speakers {
		fmt.Printf("==> nobody announces %s: skipping curl http://%s/\n", ip, addr)
		return nil
	}
	var node string
	err := lab.WaitFor(ctx, 10*time.Second, "an HTTP answer from "+addr.String(), func(ctx context.Context) (bool, error) {
		var err error
		node, err = l.HTTPGet(ctx, addr)
		return err == nil, err
	})
	if err != nil {
		fmt.Printf("==> curl http://%s/ from the client: no answer (%v)\n", addr, err)
		return []string{"curl " + addr.String() + ": " + err.Error()}
	}
	fmt.Printf("==> curl http://%s/ from the client: %q\n", addr, node)
	return nil
}

func ingressIPv4(svc *corev1.Service) (netip.Addr, bool) {
	for _, in := range svc.Status.LoadBalancer.Ingress {
		if a, err := netip.ParseAddr(in.IP); err == nil && a.Is4() {
			return a, true
		}
	}
	return netip.Addr{}, false
}

func owner(l *lab.Lab, mac []byte) string {
	for _, n := range l.Nodes {
		if string(n.MAC) == string(mac) {
			return fmt.Sprintf("%s (%s)", n.MAC, n.Name)
		}
	}
	if mac == nil {
		return "no answer"
	}
	return fmt.Sprintf("%x (not a node)", mac)
}

func indent(s string) string {
	s = strings.TrimRight(s, "\n")
	if s == "" {
		return ""
	}
	return "    " + strings.ReplaceAll(s, "\n", "\n    ") + "\n"
}
