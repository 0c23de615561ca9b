// Package bench measures the operator role as a separate process against a
// real kube-apiserver and etcd (bin/): the time from an OpenELB spec change
// to the updated speaker DaemonSet, the time from a deleted DaemonSet to its
// recreation, and the operator's peak RSS. Run with `make bench-operator`;
// the figures are recorded in docs/performance.md (## Operator).
package bench

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	operatorv1alpha1 "github.com/openelb/openelb-operator/api/operator/v1alpha1"
	"github.com/openelb/openelb-operator/internal/render"
	"github.com/openelb/openelb-operator/internal/testenv"
)

const (
	ns      = "openelb-bench"
	runs    = 50
	timeout = 30 * time.Second
)

// BenchmarkOperator runs 50 spec changes and 50 DaemonSet deletions and
// reports p50/p99/max latencies (ms) and the operator's peak RSS (MiB).
func BenchmarkOperator(b *testing.B) {
	ctx := context.Background()
	env, err := testenv.Start(testenv.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = env.Stop() }()
	c, err := client.NewWithWatch(env.Config, client.Options{Scheme: env.Scheme})
	if err != nil {
		b.Fatal(err)
	}
	if err := setup(ctx, c); err != nil {
		b.Fatal(err)
	}
	kubeconfig := writeKubeconfig(b, env)
	op, stop := startOperator(b, kubeconfig)
	defer stop() // before the control plane stops

	e := &operatorv1alpha1.OpenELB{ObjectMeta: metav1.ObjectMeta{Name: operatorv1alpha1.ResourceName}}
	if err := c.Create(ctx, e); err != nil {
		b.Fatal(err)
	}
	w, err := c.Watch(ctx, &appsv1.DaemonSetList{}, client.InNamespace(ns))
	if err != nil {
		b.Fatal(err)
	}
	defer w.Stop()
	if _, err := waitDS(w, func(ds *appsv1.DaemonSet) bool { return true }); err != nil {
		b.Fatal("first DaemonSet:", err)
	}

	b.ResetTimer()
	var change, recreate []time.Duration
	for i := 0; i < b.N; i++ {
		change, recreate = nil, nil
		for r := 0; r < runs; r++ {
			// Spec change: a new gratuitous-refresh period for layer2.
			secs := int32(10 + r%2*10 + i)
			want := "--gratuitous-refresh=" + (time.Duration(secs) * time.Second).String()
			cur := &operatorv1alpha1.OpenELB{}
			if err := c.Get(ctx, types.NamespacedName{Name: operatorv1alpha1.ResourceName}, cur); err != nil {
				b.Fatal(err)
			}
			orig := cur.DeepCopy()
			cur.Spec.Speaker.Layer2.GratuitousRefreshSeconds = secs
			start := time.Now()
			if err := c.Patch(ctx, cur, client.MergeFrom(orig)); err != nil {
				b.Fatal(err)
			}
			if _, err := waitDS(w, func(ds *appsv1.DaemonSet) bool {
				return slices.Contains(ds.Spec.Template.Spec.Containers[0].Args, want)
			}); err != nil {
				b.Fatalf("spec change %d: %v", r, err)
			}
			change = append(change, time.Since(start))

			// Deleted DaemonSet: recreated (a new UID).
			ds := &appsv1.DaemonSet{}
			if err := c.Get(ctx, types.NamespacedName{Namespace: ns, Name: render.SpeakerName}, ds); err != nil {
				b.Fatal(err)
			}
			old := ds.UID
			start = time.Now()
			if err := c.Delete(ctx, ds); err != nil {
				b.Fatal(err)
			}
			if _, err := waitDS(w, func(ds *appsv1.DaemonSet) bool { return ds.UID != old && ds.DeletionTimestamp == nil }); err != nil {
				b.Fatalf("recreate %d: %v", r, err)
			}
			recreate = append(recreate, time.Since(start))
		}
	}
	b.StopTimer()
	hwm, rss := memory(b, op.Process.Pid)
	report(b, "change", change)
	report(b, "recreate", recreate)
	b.ReportMetric(float64(hwm)/1024, "peak-RSS-MiB")
	fmt.Printf("operator: spec change -> DaemonSet updated: %s\n", summary(change))
	fmt.Printf("operator: DaemonSet deleted -> recreated:   %s\n", summary(recreate))
	fmt.Printf("operator: peak RSS %.1f MiB (VmHWM), RSS at end %.1f MiB\n", float64(hwm)/1024, float64(rss)/1024)
}

// waitDS returns the first DaemonSet event that satisfies ok.
func waitDS(w watch.Interface, ok func(*appsv1.DaemonSet) bool) (*appsv1.DaemonSet, error) {
	deadline := time.After(timeout)
	for {
		select {
		case ev, open := <-w.ResultChan():
			if !open {
				return nil, fmt.Errorf("watch closed")
			}
			ds, isDS := ev.Object.(*appsv1.DaemonSet)
			if !isDS || ev.Type == watch.Deleted || ds.Name != render.SpeakerName {
				continue
			}
			if ok(ds) {
				return ds, nil
			}
		case <-deadline:
			return nil, fmt.Errorf("no matching DaemonSet within %s", timeout)
		}
	}
}

func setup(ctx context.Context, c client.Client) error {
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		return err
	}
	for i := 0; i < 3; i++ {
		n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("node-%d", i), Labels: map[string]string{corev1.LabelOSStable: "linux"}}}
		if err := c.Create(ctx, n); err != nil {
			return err
		}
		n.Spec.Taints = nil
		if err := c.Update(ctx, n); err != nil {
			return err
		}
	}
	return nil
}

func writeKubeconfig(b *testing.B, env *testenv.Env) string {
	b.Helper()
	user, err := env.ControlPlane.AddUser(envtest.User{Name: "bench-admin", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		b.Fatal(err)
	}
	data, err := user.KubeConfig()
	if err != nil {
		b.Fatal(err)
	}
	path := filepath.Join(b.TempDir(), "kubeconfig")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		b.Fatal(err)
	}
	return path
}

// startOperator runs `openelb operator` from OPENELB_BIN (make
// bench-operator builds bin/openelb), or builds it; it is stopped by PID.
func startOperator(b *testing.B, kubeconfig string) (*exec.Cmd, func()) {
	b.Helper()
	bin := os.Getenv("OPENELB_BIN")
	if bin == "" {
		bin = filepath.Join(b.TempDir(), "openelb")
		root, err := testenv.RepoRoot()
		if err != nil {
			b.Fatal(err)
		}
		build := exec.Command("go", "build", "-o", bin, "./cmd/openelb")
		build.Dir = root
		if out, err := build.CombinedOutput(); err != nil {
			b.Fatalf("build openelb: %v\n%s", err, out)
		}
	}
	l, err := netListenPort()
	if err != nil {
		b.Fatal(err)
	}
	cmd := exec.Command(bin, "operator", "--kubeconfig", kubeconfig, "--namespace", ns,
		"--operand-image", "example.test/openelb:bench", "--log-level", "error",
		"--metrics-bind-address", "0", "--health-probe-bind-address", "0",
		"--webhook-port", strconv.Itoa(l), "--webhook-cert-dir", filepath.Join(b.TempDir(), "certs"))
	cmd.Env = append(os.Environ(), "OPERATOR_CONDITION_NAME=")
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	return cmd, func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	}
}

// memory returns VmHWM (peak RSS) and VmRSS in KiB of a process.
func memory(b *testing.B, pid int) (hwm, rss int64) {
	b.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		fields := strings.Fields(s.Text())
		if len(fields) < 2 {
			continue
		}
		v, _ := strconv.ParseInt(fields[1], 10, 64)
		switch fields[0] {
		case "VmHWM:":
			hwm = v
		case "VmRSS:":
			rss = v
		}
	}
	return hwm, rss
}

func percentile(d []time.Duration, p float64) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	i := int(p*float64(len(s))+0.5) - 1
	return s[max(0, min(i, len(s)-1))]
}

func report(b *testing.B, name string, d []time.Duration) {
	ms := func(x time.Duration) float64 { return float64(x.Microseconds()) / 1000 }
	b.ReportMetric(ms(percentile(d, 0.5)), name+"-p50-ms")
	b.ReportMetric(ms(percentile(d, 0.99)), name+"-p99-ms")
	b.ReportMetric(ms(slices.Max(d)), name+"-max-ms")
}

func summary(d []time.Duration) string {
	return fmt.Sprintf("%d runs, p50 %s, p99 %s, max %s", len(d),
		percentile(d, 0.5).Round(100*time.Microsecond), percentile(d, 0.99).Round(100*time.Microsecond), slices.Max(d).Round(100*time.Microsecond))
}

func netListenPort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
