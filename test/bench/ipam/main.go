// Command ipam is the IPAM benchmark behind `make bench-ipam`: it starts a
// real kube-apiserver and etcd (envtest, from bin/), runs the controller
// role as a separate process (bin/openelb controller --kubeconfig ...),
// creates N LoadBalancer Services (allocateLoadBalancerNodePorts: false, 10
// namespaces, one /16 Eip) and reports the time until all have addresses,
// p50/p99 create→address latency, API writes per Service (from the
// apiserver's own request counters, minus the benchmark's writes; Events
// excluded) and the controller's peak RSS and CPU time.
//
// Scenarios: "burst" (the controller runs, N Services are created at
// once) and "catch-up" (N Services exist, then the controller starts; the
// clock starts with the process).
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	networkv1alpha2 "github.com/openelb/openelb-operator/api/network/v1alpha2"
	"github.com/openelb/openelb-operator/internal/testenv"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "bench-ipam:", err)
		os.Exit(1)
	}
}

type options struct {
	openelb    string
	sizes      []int
	scenarios  []string
	namespaces int
	creators   int
	timeout    time.Duration
	profile    string
	extra      []string
	rate       float64
}

func run() error {
	var o options
	var sizes, scenarios string
	flag.StringVar(&o.openelb, "openelb", "bin/openelb", "the openelb binary")
	flag.StringVar(&sizes, "n", "1000,10000", "numbers of Services")
	flag.StringVar(&scenarios, "scenarios", "burst,catch-up", "burst (all created at once), catch-up (all exist, then the controller starts) and/or steady (created at -rate per second)")
	flag.Float64Var(&o.rate, "rate", 50, "creates per second in the steady scenario (anchors.md §2.1: 50/s)")
	flag.IntVar(&o.namespaces, "namespaces", 10, "namespaces the Services are spread over")
	flag.IntVar(&o.creators, "creators", 32, "parallel create requests")
	flag.DurationVar(&o.timeout, "timeout", 10*time.Minute, "per scenario")
	flag.Func("controller-arg", "an extra flag for the controller, e.g. -controller-arg=--kube-api-qps=1000 (repeatable)", func(v string) error {
		o.extra = append(o.extra, v)
		return nil
	})
	flag.StringVar(&o.profile, "apiserver-profile", "", "write a 10 s CPU profile of kube-apiserver during each catch-up to <prefix>-catch-up-<n>.pprof")
	flag.Parse()
	for _, s := range strings.Split(sizes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n <= 0 {
			return fmt.Errorf("-n: %q", s)
		}
		o.sizes = append(o.sizes, n)
	}
	o.scenarios = strings.Split(scenarios, ",")
	if _, err := os.Stat(o.openelb); err != nil {
		return fmt.Errorf("%s: %w (run make build)", o.openelb, err)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	env, err := testenv.Start(testenv.Options{})
	if err != nil {
		return err
	}
	defer func() { _ = env.Stop() }()
	b, err := newBench(ctx, env, o)
	if err != nil {
		return err
	}
	defer b.cleanup()
	fmt.Printf("control plane: kube-apiserver + etcd from %s; controller: %s\n", env.BinaryAssetsDirectory, o.openelb)
	var results []result
	for _, n := range o.sizes {
		for _, sc := range o.scenarios {
			r, err := b.scenario(ctx, strings.TrimSpace(sc), n)
			if err != nil {
				return fmt.Errorf("%s %d: %w", sc, n, err)
			}
			fmt.Println(r.line())
			results = append(results, r)
		}
	}
	fmt.Println()
	fmt.Println("| scenario | Services | all assigned | p50 / p99 create→address | writes/Service (Events excluded) | of which services/status, eips, eips/status | Event writes | controller CPU | apiserver + etcd CPU | controller peak RSS | load average at start |")
	fmt.Println("|---|---|---|---|---|---|---|---|---|---|---|")
	for _, r := range results {
		fmt.Println(r.row())
	}
	return nil
}

type bench struct {
	env        *testenv.Env
	o          options
	c          client.Client
	cs         *kubernetes.Clientset
	kubeconfig string
	dir        string
	nss        []string
}

func newBench(ctx context.Context, env *testenv.Env, o options) (*bench, error) {
	cfg := rest.CopyConfig(env.Config)
	cfg.QPS, cfg.Burst = 2000, 4000
	c, err := client.New(cfg, client.Options{Scheme: env.Scheme})
	if err != nil {
		return nil, err
	}
	// Protobuf, as the controller's client: the benchmark's own watch must
	// not cost the apiserver more than necessary.
	pcfg := rest.CopyConfig(cfg)
	pcfg.ContentType = "application/vnd.kubernetes.protobuf"
	pcfg.AcceptContentTypes = "application/vnd.kubernetes.protobuf,application/json"
	cs, err := kubernetes.NewForConfig(pcfg)
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "bench-ipam-")
	if err != nil {
		return nil, err
	}
	b := &bench{env: env, o: o, c: c, cs: cs, dir: dir}
	user, err := env.ControlPlane.AddUser(envtest.User{Name: "openelb-controller", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		return nil, err
	}
	kc, err := user.KubeConfig()
	if err != nil {
		return nil, err
	}
	b.kubeconfig = filepath.Join(dir, "kubeconfig")
	if err := os.WriteFile(b.kubeconfig, kc, 0o600); err != nil {
		return nil, err
	}
	// envtest's service CIDR is a /24; 10,000 Services need a ClusterIP each.
	if err := c.Create(ctx, &networkingv1.ServiceCIDR{ObjectMeta: metav1.ObjectMeta{Name: "bench"},
		Spec: networkingv1.ServiceCIDRSpec{CIDRs: []string{"10.96.0.0/14"}}}); err != nil {
		return nil, err
	}
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "openelb-system"}}); err != nil {
		return nil, err
	}
	for i := 0; i < o.namespaces; i++ {
		ns := fmt.Sprintf("bench-%d", i)
		if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
			return nil, err
		}
		b.nss = append(b.nss, ns)
	}
	eip := &networkv1alpha2.Eip{ObjectMeta: metav1.ObjectMeta{Name: "bench",
		Annotations: map[string]string{networkv1alpha2.AnnotationDefaultEip: "true"}},
		Spec: networkv1alpha2.EipSpec{Address: "198.18.0.0/16"}}
	if err := c.Create(ctx, eip); err != nil {
		return nil, err
	}
	// The apiserver's allocator picks the new ServiceCIDR up from its
	// informer (its Ready condition is set by kube-controller-manager,
	// which envtest does not run).
	time.Sleep(2 * time.Second)
	return b, nil
}

func (b *bench) cleanup() { _ = os.RemoveAll(b.dir) }

// controller is the controller role as a child process.
type controller struct {
	cmd     *exec.Cmd
	started time.Time
	log     string
	metrics string
}

func (b *bench) startController(ctx context.Context, port int) (*controller, error) {
	log := filepath.Join(b.dir, fmt.Sprintf("controller-%d.log", time.Now().UnixNano()))
	f, err := os.Create(log)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	metrics := fmt.Sprintf("127.0.0.1:%d", port)
	args := append([]string{"controller", "--kubeconfig", b.kubeconfig, "--webhook-port=0",
		"--metrics-bind-address", metrics, "--health-probe-bind-address=0", "--log-level=" + logLevel, "--namespace=openelb-system"}, b.o.extra...)
	cmd := exec.Command(b.o.openelb, args...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	c := &controller{cmd: cmd, log: log, metrics: metrics}
	c.started = time.Now()
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	return c, nil
}

// stop ends the controller by its pid and waits for it.
func (c *controller) stop() {
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = c.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = c.cmd.Process.Kill()
		<-done
	}
}

// usage returns the peak RSS (VmHWM) and CPU time of the process.
func (c *controller) usage() (rssMiB float64, cpu time.Duration, err error) {
	pid := c.cmd.Process.Pid
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	for _, line := range strings.Split(string(status), "\n") {
		if strings.HasPrefix(line, "VmHWM:") {
			f := strings.Fields(line)
			kb, _ := strconv.ParseFloat(f[1], 64)
			rssMiB = kb / 1024
		}
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, err
	}
	s := string(stat)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	utime, _ := strconv.ParseInt(fields[11], 10, 64)
	stime, _ := strconv.ParseInt(fields[12], 10, 64)
	cpu = time.Duration(utime+stime) * time.Second / 100 // USER_HZ
	return rssMiB, cpu, nil
}

type result struct {
	planeCPU          time.Duration // kube-apiserver + etcd during the scenario
	load              string        // load average when the scenario started
	scenario          string
	n                 int
	total             time.Duration
	p50, p99          time.Duration
	writes            float64
	svcStatus, eips   float64
	eipStatus         float64
	events            float64
	cpu               time.Duration
	rssMiB            float64
	controllerMetrics float64
}

func (r result) line() string {
	return fmt.Sprintf("%s n=%d: all assigned in %s, p50 %s p99 %s, %.3f writes/Service (services/status %.0f, eips %.0f, eips/status %.0f; controller's own count %.0f), Event writes %.0f, controller CPU %s, apiserver+etcd CPU %s, peak RSS %.0f MiB, load average %s",
		r.scenario, r.n, r.total.Round(10*time.Millisecond), r.p50.Round(time.Millisecond), r.p99.Round(time.Millisecond),
		r.writes, r.svcStatus, r.eips, r.eipStatus, r.controllerMetrics, r.events, r.cpu.Round(10*time.Millisecond), r.planeCPU.Round(100*time.Millisecond), r.rssMiB, r.load)
}

func (r result) row() string {
	lat := "–"
	if r.scenario != "catch-up" {
		lat = fmt.Sprintf("%.2f / %.2f s", r.p50.Seconds(), r.p99.Seconds())
	}
	return fmt.Sprintf("| %s | %d | %.1f s | %s | %.3f | %.0f, %.0f, %.0f | %.0f | %.1f s | %.0f s | %.0f MiB | %s |",
		r.scenario, r.n, r.total.Seconds(), lat, r.writes, r.svcStatus, r.eips, r.eipStatus, r.events, r.cpu.Seconds(), r.planeCPU.Seconds(), r.rssMiB, r.load)
}

// tracker records when each Service was created and when it first showed an
// address, from a watch over all namespaces.
type tracker struct {
	mu       sync.Mutex
	created  map[string]time.Time
	assigned map[string]time.Time
	all      chan struct{}
	want     int
	closed   bool
}

func (b *bench) track(ctx context.Context, want int) (*tracker, error) {
	t := &tracker{created: map[string]time.Time{}, assigned: map[string]time.Time{}, all: make(chan struct{}), want: want}
	// An informer, not a bare watch: the apiserver closes a watch whose
	// reader falls behind, and the informer re-lists.
	inf := cache.NewSharedIndexInformer(cache.NewListWatchFromClient(b.cs.CoreV1().RESTClient(), "services", "", fields.Everything()),
		&corev1.Service{}, 0, cache.Indexers{})
	seen := func(obj any) {
		s, ok := obj.(*corev1.Service)
		if !ok || len(s.Status.LoadBalancer.Ingress) == 0 || !strings.HasPrefix(s.Namespace, "bench-") {
			return
		}
		now := time.Now()
		t.mu.Lock()
		defer t.mu.Unlock()
		k := s.Namespace + "/" + s.Name
		if _, ok := t.assigned[k]; !ok {
			t.assigned[k] = now
			if len(t.assigned) == t.want && !t.closed {
				t.closed = true
				close(t.all)
			}
		}
	}
	if _, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    seen,
		UpdateFunc: func(_, obj any) { seen(obj) },
	}); err != nil {
		return nil, err
	}
	go inf.Run(ctx.Done())
	if !cache.WaitForCacheSync(ctx.Done(), inf.HasSynced) {
		return nil, errors.New("service informer not synced")
	}
	return t, nil
}

// createAll creates n Services with the parallel creators; rate > 0 paces
// the creates at that many per second.
func (b *bench) createAll(ctx context.Context, n int, t *tracker, rate float64) error {
	no := false
	work := make(chan int)
	errs := make(chan error, b.o.creators)
	var wg sync.WaitGroup
	for range b.o.creators {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				ns := b.nss[i%len(b.nss)]
				s := &corev1.Service{
					ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: fmt.Sprintf("svc-%d", i),
						Annotations: map[string]string{networkv1alpha2.AnnotationOpenELB: networkv1alpha2.ValueOpenELB}},
					Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, AllocateLoadBalancerNodePorts: &no,
						Selector: map[string]string{"app": fmt.Sprint(i)},
						Ports:    []corev1.ServicePort{{Name: "http", Port: 80, Protocol: corev1.ProtocolTCP}}},
				}
				start := time.Now()
				if err := b.c.Create(ctx, s); err != nil {
					select {
					case errs <- err:
					default:
					}
					continue
				}
				if t != nil {
					t.mu.Lock()
					t.created[ns+"/"+s.Name] = start
					t.mu.Unlock()
				}
			}
		}()
	}
	var tick *time.Ticker
	if rate > 0 {
		tick = time.NewTicker(time.Duration(float64(time.Second) / rate))
		defer tick.Stop()
	}
	for i := range n {
		if tick != nil {
			<-tick.C
		}
		work <- i
	}
	close(work)
	wg.Wait()
	select {
	case err := <-errs:
		return err
	default:
		return nil
	}
}

func (b *bench) deleteAll(ctx context.Context, ctl *controller) error {
	for _, ns := range b.nss {
		if err := b.c.DeleteAllOf(ctx, &corev1.Service{}, client.InNamespace(ns)); err != nil {
			return err
		}
	}
	deadline := time.Now().Add(5 * time.Minute)
	for {
		var list corev1.ServiceList
		if err := b.c.List(ctx, &list, client.Limit(1)); err != nil {
			return err
		}
		left := 0
		for _, s := range list.Items {
			if strings.HasPrefix(s.Namespace, "bench-") {
				left++
			}
		}
		if left == 0 && list.Continue == "" {
			return nil
		}
		if time.Now().After(deadline) {
			return errors.New("services not deleted")
		}
		time.Sleep(200 * time.Millisecond)
	}
}

var port = 18900

// logLevel of the controller (BENCH_LOG_LEVEL, default error).
var logLevel = func() string {
	if l := os.Getenv("BENCH_LOG_LEVEL"); l != "" {
		return l
	}
	return "error"
}()

func (b *bench) scenario(parent context.Context, sc string, n int) (result, error) {
	ctx, cancel := context.WithTimeout(parent, b.o.timeout)
	defer cancel()
	port++
	r := result{scenario: sc, n: n, load: loadAverage()}
	plane0 := childrenCPU()
	t, err := b.track(ctx, n)
	if err != nil {
		return r, err
	}
	before, err := b.apiWrites(ctx)
	if err != nil {
		return r, err
	}
	var ctl *controller
	var start time.Time
	switch sc {
	case "burst", "steady":
		if ctl, err = b.startController(ctx, port); err != nil {
			return r, err
		}
		if err := waitMetrics(ctx, ctl.metrics); err != nil {
			ctl.stop()
			return r, err
		}
		time.Sleep(time.Second) // caches synced, restore done
		start = time.Now()
		rate := 0.0
		if sc == "steady" {
			rate = b.o.rate
		}
		if err := b.createAll(ctx, n, t, rate); err != nil {
			ctl.stop()
			return r, err
		}
	case "catch-up":
		if err := b.createAll(ctx, n, nil, 0); err != nil {
			return r, err
		}
		plane0 = childrenCPU() // the controller's cost only, not the creates
		if ctl, err = b.startController(ctx, port); err != nil {
			return r, err
		}
		start = ctl.started
		if b.o.profile != "" {
			go b.profileAPIServer(ctx, fmt.Sprintf("%s-%s-%d.pprof", b.o.profile, sc, n))
		}
	default:
		return r, fmt.Errorf("unknown scenario %q", sc)
	}
	defer ctl.stop()
	select {
	case <-t.all:
	case <-ctx.Done():
		t.mu.Lock()
		got := len(t.assigned)
		t.mu.Unlock()
		tail, _ := os.ReadFile(ctl.log)
		if len(tail) > 4000 {
			tail = tail[len(tail)-4000:]
		}
		return r, fmt.Errorf("%d of %d Services assigned when the time ran out; controller log ends with:\n%s", got, n, tail)
	}
	t.mu.Lock()
	var last time.Time
	var lat []time.Duration
	for k, at := range t.assigned {
		if at.After(last) {
			last = at
		}
		if c, ok := t.created[k]; ok {
			lat = append(lat, at.Sub(c))
		}
	}
	t.mu.Unlock()
	r.total = last.Sub(start)
	if len(lat) > 0 {
		slices.Sort(lat)
		r.p50, r.p99 = lat[len(lat)/2], lat[len(lat)*99/100]
	}
	// Let the coalesced Eip status writes and the Events land before
	// counting: poll until the counts hold still for 3 s (at most 60 s).
	var after map[string]float64
	for i, still := 0, 0; i < 60 && still < 3; i++ {
		time.Sleep(time.Second)
		now, err := b.apiWrites(ctx)
		if err != nil {
			return r, err
		}
		if after != nil && now["events"] == after["events"] && now["eips/status"] == after["eips/status"] {
			still++
		} else {
			still = 0
		}
		after = now
	}
	r.svcStatus = after["services/status"] - before["services/status"]
	r.eips = after["eips"] - before["eips"]
	r.eipStatus = after["eips/status"] - before["eips/status"]
	r.events = after["events"] - before["events"]
	other := after["other"] - before["other"]
	ownCreates := float64(n)
	// All writes on services, eips, configmaps and leases, minus the
	// benchmark's own Service creates; Events are not counted.
	r.writes = (after["services"] - before["services"] - ownCreates + r.svcStatus + r.eips + r.eipStatus + other) / float64(n)
	r.controllerMetrics, _ = scrape(ctx, ctl.metrics, "openelb_ipam_api_writes_total")
	r.planeCPU = childrenCPU() - plane0
	r.rssMiB, r.cpu, err = ctl.usage()
	if err != nil {
		return r, err
	}
	if err := b.deleteAll(parent, ctl); err != nil {
		return r, err
	}
	return r, nil
}

var reqLine = regexp.MustCompile(`^apiserver_request_total\{(.*)\} ([0-9.e+]+)$`)
var label = regexp.MustCompile(`(\w+)="([^"]*)"`)

// apiWrites sums the apiserver's successful and failed write requests by
// resource: services (creates, updates), services/status, eips,
// eips/status and other (configmaps, leases). Events are left out.
func (b *bench) apiWrites(ctx context.Context) (map[string]float64, error) {
	raw, err := b.cs.RESTClient().Get().AbsPath("/metrics").DoRaw(ctx)
	if err != nil {
		return nil, fmt.Errorf("apiserver metrics: %w", err)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(strings.NewReader(string(raw)))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		m := reqLine.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		l := map[string]string{}
		for _, kv := range label.FindAllStringSubmatch(m[1], -1) {
			l[kv[1]] = kv[2]
		}
		switch l["verb"] {
		case "POST", "PUT", "PATCH", "DELETE", "APPLY":
		default:
			continue
		}
		v, _ := strconv.ParseFloat(m[2], 64)
		key := l["resource"]
		if l["subresource"] != "" {
			key += "/" + l["subresource"]
		}
		switch key {
		case "services", "services/status", "eips", "eips/status":
			out[key] += v
		case "configmaps", "leases":
			out["other"] += v
		case "events":
			out["events"] += v // AssignIP Events: reported, never counted as writes
		}
	}
	return out, sc.Err()
}

func waitMetrics(ctx context.Context, addr string) error {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if _, err := scrape(ctx, addr, "openelb_ipam_api_writes_total"); err == nil {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("controller metrics on %s not up", addr)
}

// scrape sums a metric family from the controller's /metrics.
func scrape(ctx context.Context, addr, name string) (float64, error) {
	req, err := httpGet(ctx, "http://"+addr+"/metrics")
	if err != nil {
		return 0, err
	}
	sum := 0.0
	for _, line := range strings.Split(req, "\n") {
		if strings.HasPrefix(line, name) {
			f := strings.Fields(line)
			v, _ := strconv.ParseFloat(f[len(f)-1], 64)
			sum += v
		}
	}
	return sum, nil
}

// childrenCPU sums the CPU time of this process's child processes that are
// not the controller: envtest's kube-apiserver and etcd.
func childrenCPU() time.Duration {
	self := os.Getpid()
	entries, _ := os.ReadDir("/proc")
	var total time.Duration
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue
		}
		s := string(stat)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		name := s[strings.IndexByte(s, '(')+1 : i]
		f := strings.Fields(s[i+2:])
		ppid, _ := strconv.Atoi(f[1])
		if ppid != self || (name != "kube-apiserver" && name != "etcd") {
			continue
		}
		utime, _ := strconv.ParseInt(f[11], 10, 64)
		stime, _ := strconv.ParseInt(f[12], 10, 64)
		total += time.Duration(utime+stime) * time.Second / 100
	}
	return total
}

func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	return f[0]
}

func (b *bench) profileAPIServer(ctx context.Context, file string) {
	raw, err := b.cs.RESTClient().Get().AbsPath("/debug/pprof/profile").Param("seconds", "10").DoRaw(ctx)
	if err != nil {
		fmt.Fprintln(os.Stderr, "apiserver profile:", err)
		return
	}
	if err := os.WriteFile(file, raw, 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "apiserver profile:", err)
	}
}
