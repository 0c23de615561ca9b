//go:build e2e

package e2e

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	networkv1alpha2 "github.com/openelb/openelb-operator/api/network/v1alpha2"
	"github.com/openelb/openelb-operator/internal/election"
	"github.com/openelb/openelb-operator/test/lab"
)

// The layer2 benchmarks behind `make bench-layer2` (figures in
// docs/performance.md, section Layer2). They are benchmarks, not tests:
// they report distributions and never assert timings.

// BenchmarkLayer2Failover measures, for each kind of failure of the node
// announcing the seed Service's address, the time from the event to the
// client's neighbour entry holding the successor's MAC. Run it with
// -benchtime=20x for 20 runs per kind; the node is restored between runs
// and the address moves back to it before the next one.
func BenchmarkLayer2Failover(b *testing.B) {
	l := lab.New(b, lab.Options{})
	ctx := b.Context()
	if _, err := l.StartController(ctx, lab.RoleOptions{}); err != nil {
		b.Fatal(err)
	}
	if err := l.StartSpeakers(ctx, speakerArgs); err != nil {
		b.Fatal(err)
	}
	eip, svc := seedManifests(b)
	for _, m := range []string{eip, svc} {
		if out, err := l.Kubectl(ctx, m, "apply", "-f", "-"); err != nil {
			b.Fatalf("kubectl apply: %v: %s", err, out)
		}
	}
	ip := waitIngress(ctx, b, l, "layer2-svc")
	nodes := nodeNames(l)
	rank := election.Rank(ip.String(), nodes)
	from, to := rank[0], rank[1]
	var term *lab.Proc
	kinds := []struct {
		name    string
		event   func() error
		restore func() error
	}{
		{"sigkill", func() error { return l.Node(from).Speaker.Kill() },
			func() error { _, err := l.StartSpeaker(ctx, from, speakerArgs); return err }},
		{"sigterm", func() error { term = l.Node(from).Speaker; return term.Signal(syscall.SIGTERM) },
			func() error {
				wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
				defer cancel()
				if err := term.Wait(wctx); err != nil {
					return err
				}
				_, err := l.StartSpeaker(ctx, from, speakerArgs)
				return err
			}},
		{"linkdown", func() error { return l.LinkDown(from) }, func() error { return l.LinkUp(from) }},
	}
	for _, k := range kinds {
		b.Run(k.name, func(b *testing.B) {
			var ds []time.Duration
			for range b.N {
				ensureNeighbor(ctx, b, l, ip, macOf(l, from))
				d, err := lab.Measure(ctx, 10*time.Second, 2*time.Millisecond, k.event, func(context.Context) (bool, error) {
					m, err := l.ClientNeighbor(ip)
					return bytes.Equal(m, macOf(l, to)), err
				})
				if err != nil {
					b.Fatalf("%s: %v", k.name, err)
				}
				ds = append(ds, d)
				if err := k.restore(); err != nil {
					b.Fatal(err)
				}
				waitNeighbor(ctx, b, l, ip, macOf(l, from))
			}
			p50, p90, p99, mx := percentiles(ds)
			b.ReportMetric(float64(p50.Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(p90.Microseconds())/1000, "p90-ms")
			b.ReportMetric(float64(p99.Microseconds())/1000, "p99-ms")
			b.ReportMetric(float64(mx.Microseconds())/1000, "max-ms")
			b.ReportMetric(0, "ns/op")
			b.Logf("%s %s -> %s, %d runs (ms): %s", k.name, from, to, len(ds), msList(ds))
		})
	}
}

func msList(ds []time.Duration) string {
	var parts []string
	for _, d := range ds {
		parts = append(parts, strconv.FormatFloat(float64(d.Microseconds())/1000, 'f', 1, 64))
	}
	return strings.Join(parts, " ")
}

// BenchmarkLayer2Speaker1000 measures the speakers with 1,000 announced
// addresses (200 IPv4, 800 IPv6) on three nodes: time until every address
// is announced, RSS and CPU of each speaker and API requests per minute at
// steady state (60 s), then the same for one speaker holding all 1,000
// after the other two are killed. Run with -benchtime=1x.
func BenchmarkLayer2Speaker1000(b *testing.B) {
	l := lab.New(b, lab.Options{})
	ctx := b.Context()
	for _, e := range []networkv1alpha2.Eip{
		{ObjectMeta: metav1.ObjectMeta{Name: "bench-v4"}, Spec: networkv1alpha2.EipSpec{Address: "203.0.113.32-203.0.113.231", Protocol: "layer2", Interface: "eth0"}},
		{ObjectMeta: metav1.ObjectMeta{Name: "bench-v6"}, Spec: networkv1alpha2.EipSpec{Address: "2001:db8::1000-2001:db8::131f", Protocol: "layer2", Interface: "eth0"}},
	} {
		if err := l.Kube.Create(ctx, &e); err != nil {
			b.Fatal(err)
		}
	}
	// The addresses are set directly in the Services' status (no
	// controller): this measures the speakers alone.
	start := time.Now()
	var all []netip.Addr
	for i := range 1000 {
		var ip netip.Addr
		if i < 200 {
			ip = netip.AddrFrom4([4]byte{203, 0, 113, byte(32 + i)})
		} else {
			ip = netip.MustParseAddr(fmt.Sprintf("2001:db8::%x", 0x1000+i-200))
		}
		all = append(all, ip)
		s := lbService(fmt.Sprintf("bench-%04d", i), "")
		delete(s.Annotations, networkv1alpha2.AnnotationEip)
		if ip.Is6() {
			single := corev1.IPFamilyPolicySingleStack
			s.Spec.IPFamilyPolicy, s.Spec.IPFamilies = &single, []corev1.IPFamily{corev1.IPv6Protocol}
		}
		if err := l.Kube.Create(ctx, s); err != nil {
			b.Fatal(err)
		}
		s.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: ip.String()}}
		if err := l.Kube.Status().Update(ctx, s); err != nil {
			b.Fatal(err)
		}
	}
	b.Logf("1,000 Services with addresses created in %v", time.Since(start).Round(time.Millisecond))

	start = time.Now()
	opts := speakerArgs
	if v := os.Getenv("LAYER2_SPEAKER_GODEBUG"); v != "" { // e.g. gctrace=1, to study memory
		opts.Env = append(opts.Env, "GODEBUG="+v)
	}
	if err := l.StartSpeakers(ctx, opts); err != nil {
		b.Fatal(err)
	}
	waitAnnounced(ctx, b, l, nodeNames(l), 1000)
	b.Logf("3 speakers started and announcing all 1,000 addresses after %v", time.Since(start).Round(time.Millisecond))
	waitRecorded(ctx, b, l, 1000)
	b.Logf("announcers of the 1,000 Services recorded after %v", time.Since(start).Round(time.Millisecond))
	for _, ip := range []netip.Addr{all[0], all[199], all[200], all[999]} {
		if _, err := l.ResolveMAC(ctx, ip, 10*time.Second); err != nil {
			b.Fatal(err)
		}
	}
	steady(ctx, b, l, nodeNames(l), "3 speakers, 1,000 addresses")

	start = time.Now()
	for _, n := range []string{"node2", "node3"} {
		if err := l.Node(n).Speaker.Kill(); err != nil {
			b.Fatal(err)
		}
	}
	waitAnnounced(ctx, b, l, []string{"node1"}, 1000)
	b.Logf("node2 and node3 killed: node1 announces all 1,000 after %v", time.Since(start).Round(time.Millisecond))
	waitRecordedOn(ctx, b, l, 1000, "node1")
	b.Logf("new announcer recorded on the 1,000 Services after %v", time.Since(start).Round(time.Millisecond))
	for _, ip := range []netip.Addr{all[0], all[199], all[200], all[999]} {
		if _, err := l.ResolveMAC(ctx, ip, 10*time.Second); err != nil {
			b.Fatal(err)
		}
	}
	steady(ctx, b, l, []string{"node1"}, "1 speaker announcing 1,000 addresses")
	b.ReportMetric(0, "ns/op")
}

// speakerMetrics fetches a speaker's /metrics from inside its namespace.
func speakerMetrics(ctx context.Context, l *lab.Lab, node string) (map[string]float64, error) {
	hc := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DialContext: l.Node(node).NS.DialContext, DisableKeepAlives: true}}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("http://127.0.0.1:%d/metrics", lab.SpeakerMetricsPort), nil)
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			continue
		}
		name := line[:i]
		if strings.HasPrefix(name, "rest_client_requests_total{") {
			out[name] += v // keep the breakdown by code and method
		}
		if j := strings.IndexByte(name, '{'); j >= 0 {
			name = name[:j]
		}
		out[name] += v
	}
	return out, sc.Err()
}

// waitAnnounced waits until the nodes together announce n addresses.
func waitAnnounced(ctx context.Context, tb testing.TB, l *lab.Lab, nodes []string, n int) {
	tb.Helper()
	err := lab.WaitFor(ctx, 120*time.Second, fmt.Sprintf("%d addresses announced by %v", n, nodes), func(ctx context.Context) (bool, error) {
		total := 0
		for _, node := range nodes {
			m, err := speakerMetrics(ctx, l, node)
			if err != nil {
				return false, err
			}
			total += int(m["openelb_speaker_announcing"])
		}
		return total == n, fmt.Errorf("%d announced", total)
	})
	if err != nil {
		tb.Fatal(err)
	}
}

// waitRecorded waits until n Services carry an announcer annotation.
func waitRecorded(ctx context.Context, tb testing.TB, l *lab.Lab, n int) {
	waitRecordedOn(ctx, tb, l, n, "")
}

// waitRecordedOn waits until n Services carry the announcer annotation
// node (any node when empty).
func waitRecordedOn(ctx context.Context, tb testing.TB, l *lab.Lab, n int, node string) {
	tb.Helper()
	err := lab.WaitFor(ctx, 5*time.Minute, fmt.Sprintf("%d Services recorded", n), func(ctx context.Context) (bool, error) {
		var svcs corev1.ServiceList
		if err := l.Kube.List(ctx, &svcs); err != nil {
			return false, err
		}
		got := 0
		for _, s := range svcs.Items {
			if a := s.Annotations[networkv1alpha2.AnnotationAnnouncer]; a != "" && (node == "" || a == node) {
				got++
			}
		}
		return got >= n, fmt.Errorf("%d recorded", got)
	})
	if err != nil {
		tb.Fatal(err)
	}
}

type procSample struct {
	rssKiB, hwmKiB, anonKiB, fileKiB int64
	cpu                              time.Duration
}

func sampleProc(pid int) (procSample, error) {
	var s procSample
	st, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return s, err
	}
	for _, line := range strings.Split(string(st), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		switch f[0] {
		case "VmRSS:":
			s.rssKiB, _ = strconv.ParseInt(f[1], 10, 64)
		case "VmHWM:":
			s.hwmKiB, _ = strconv.ParseInt(f[1], 10, 64)
		case "RssAnon:":
			s.anonKiB, _ = strconv.ParseInt(f[1], 10, 64)
		case "RssFile:":
			s.fileKiB, _ = strconv.ParseInt(f[1], 10, 64)
		}
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return s, err
	}
	f := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+2:]))
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	s.cpu = time.Duration(utime+stime) * time.Second / 100 // USER_HZ
	return s, nil
}

// steady samples the speakers over 60 s of steady state: RSS, peak RSS,
// CPU, and API requests (client-go's rest_client_requests_total).
func steady(ctx context.Context, b *testing.B, l *lab.Lab, nodes []string, what string) {
	b.Helper()
	window := 60 * time.Second
	if w, err := time.ParseDuration(os.Getenv("LAYER2_BENCH_WINDOW")); err == nil {
		window = w
	}
	time.Sleep(5 * time.Second) // let start-up work and bursts end
	before := map[string]procSample{}
	reqs := map[string]float64{}
	for _, n := range nodes {
		s, err := sampleProc(l.Node(n).Speaker.PID())
		if err != nil {
			b.Fatal(err)
		}
		before[n] = s
		m, err := speakerMetrics(ctx, l, n)
		if err != nil {
			b.Fatal(err)
		}
		reqs[n] = m["rest_client_requests_total"]
		for k, v := range m {
			if strings.HasPrefix(k, "rest_client_requests_total{") || k == "openelb_speaker_recomputes_total" {
				reqs[n+k] = v
			}
		}
	}
	select {
	case <-ctx.Done():
		b.Fatal(ctx.Err())
	case <-time.After(window):
	}
	for _, n := range nodes {
		s, err := sampleProc(l.Node(n).Speaker.PID())
		if err != nil {
			b.Fatal(err)
		}
		m, err := speakerMetrics(ctx, l, n)
		if err != nil {
			b.Fatal(err)
		}
		cpu := s.cpu - before[n].cpu
		b.Logf("%s: %s RSS %.1f MiB (anon %.1f, file %.1f; peak %.1f MiB), CPU %.2f%% of one core (%v in %v), API requests %.0f/min, announcing %.0f",
			what, n, float64(s.rssKiB)/1024, float64(s.anonKiB)/1024, float64(s.fileKiB)/1024, float64(s.hwmKiB)/1024, 100*cpu.Seconds()/window.Seconds(), cpu, window,
			(m["rest_client_requests_total"]-reqs[n])*time.Minute.Seconds()/window.Seconds(), m["openelb_speaker_announcing"])
		for k, v := range m {
			if d := v - reqs[n+k]; (strings.HasPrefix(k, "rest_client_requests_total{") || k == "openelb_speaker_recomputes_total") && d > 0 {
				b.Logf("  %s: %s +%.0f", n, k, d)
			}
		}
	}
}
