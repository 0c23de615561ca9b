package vip

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"
)

// fakeProc is a keepalived stand-in: it records signals, exits on SIGTERM
// (unless stubborn) and SIGKILL, and can be made to crash.
type fakeProc struct {
	pid      int
	stubborn bool
	mu       sync.Mutex
	signals  []syscall.Signal
	done     chan struct{}
	err      error
}

func (p *fakeProc) PID() int              { return p.pid }
func (p *fakeProc) Done() <-chan struct{} { return p.done }
func (p *fakeProc) Err() error            { return p.err }
func (p *fakeProc) Signal(sig syscall.Signal) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	select {
	case <-p.done:
		return errors.New("exited")
	default:
	}
	p.signals = append(p.signals, sig)
	if sig == syscall.SIGKILL || (sig == syscall.SIGTERM && !p.stubborn) {
		p.err = fmt.Errorf("signal: %v", sig)
		close(p.done)
	}
	return nil
}

func (p *fakeProc) SignalGroup(sig syscall.Signal) error { return p.Signal(sig) }

func (p *fakeProc) crash() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.err = errors.New("exit status 1")
	close(p.done)
}

func (p *fakeProc) got() []syscall.Signal {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.signals)
}

type fakeRunner struct {
	mu       sync.Mutex
	procs    []*fakeProc
	argv     [][]string
	startAt  []time.Time
	stale    *fakeProc
	stubborn bool
}

func (r *fakeRunner) Start(argv []string) (Process, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	p := &fakeProc{pid: 1000 + len(r.procs), done: make(chan struct{}), stubborn: r.stubborn}
	r.procs = append(r.procs, p)
	r.argv = append(r.argv, argv)
	r.startAt = append(r.startAt, time.Now())
	return p, nil
}

func (r *fakeRunner) Find(string, string) (Process, bool) {
	if r.stale != nil {
		return r.stale, true
	}
	return nil, false
}

func (r *fakeRunner) Forget(string, string) {}

func (r *fakeRunner) last() *fakeProc {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.procs) == 0 {
		return nil
	}
	return r.procs[len(r.procs)-1]
}

func (r *fakeRunner) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.procs)
}

type fakeAddrs struct {
	mu     sync.Mutex
	calls  int
	listed [][]VIP
}

func (a *fakeAddrs) RemoveLeftovers(listed []VIP) ([]VIP, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.calls++
	a.listed = append(a.listed, listed)
	return listed, nil
}

func (a *fakeAddrs) n() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.calls
}

// eventually polls cond every 5 ms for up to 5 s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

type supHarness struct {
	t      *testing.T
	dir    string
	runner *fakeRunner
	addrs  *fakeAddrs
	sup    *Supervisor
	cancel context.CancelFunc
	done   chan error
}

func startSupervisor(t *testing.T, runner *fakeRunner, mod func(*SupervisorConfig)) *supHarness {
	t.Helper()
	h := &supHarness{t: t, dir: t.TempDir(), runner: runner, addrs: &fakeAddrs{}, done: make(chan error, 1)}
	cfg := SupervisorConfig{RunDir: h.dir, Keepalived: "/usr/sbin/keepalived", ConfigID: "node1", Runner: runner, Addrs: h.addrs,
		MinBackoff: 20 * time.Millisecond, MaxBackoff: 80 * time.Millisecond, StopGrace: 200 * time.Millisecond, Poll: 10 * time.Millisecond}
	if mod != nil {
		mod(&cfg)
	}
	h.sup = NewSupervisor(cfg, testr.New(t))
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	go func() { h.done <- h.sup.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-h.done })
	return h
}

func (h *supHarness) install(conf string, vips ...VIP) {
	h.t.Helper()
	if err := Install(h.dir, []byte(conf), vips, nil); err != nil {
		h.t.Fatal(err)
	}
	h.sup.Reload()
}

func (h *supHarness) status() Status {
	st, _, err := ReadStatus(h.dir)
	if err != nil {
		h.t.Fatal(err)
	}
	return st
}

func TestSupervisorStartsOnceConfigured(t *testing.T) {
	r := &fakeRunner{}
	h := startSupervisor(t, r, nil)
	eventually(t, "waiting status", func() bool { return h.status().State == StateWaiting })
	if r.count() != 0 {
		t.Fatalf("keepalived started without a configuration")
	}
	h.install("global_defs {}\n")
	eventually(t, "keepalived started", func() bool { return h.status().State == StateRunning })
	want := Argv("/usr/sbin/keepalived", h.dir, "node1")
	if !slices.Equal(r.argv[0], want) {
		t.Errorf("argv %q, want %q", r.argv[0], want)
	}
	if st, running, _ := ReadStatus(h.dir); !running || st.PID != r.last().pid || st.Config != Hash([]byte("global_defs {}\n")) {
		t.Errorf("status %+v running %v", st, running)
	}
	if h.addrs.n() == 0 {
		t.Errorf("leftovers were not removed before the first start")
	}
}

func TestSupervisorReloadsOnChangeOnly(t *testing.T) {
	r := &fakeRunner{}
	h := startSupervisor(t, r, nil)
	h.install("a\n")
	eventually(t, "running", func() bool { return r.last() != nil })
	p := r.last()
	h.install("a\n") // unchanged
	time.Sleep(400 * time.Millisecond)
	if got := p.got(); len(got) != 0 {
		t.Fatalf("signals %v for an unchanged configuration", got)
	}
	h.install("b\n")
	eventually(t, "SIGHUP", func() bool { return slices.Equal(p.got(), []syscall.Signal{syscall.SIGHUP}) })
	eventually(t, "reload counted", func() bool { st := h.status(); return st.Reloads == 1 && st.Config == Hash([]byte("b\n")) })
	if r.count() != 1 {
		t.Errorf("%d keepalived processes, want 1 (reload, not restart)", r.count())
	}
}

func TestSupervisorRestartsWithBackoff(t *testing.T) {
	r := &fakeRunner{}
	h := startSupervisor(t, r, nil)
	h.install("a\n", VIP{IP: ips("203.0.113.20")[0], Interface: "eth0", Label: "eth0:oelb"})
	eventually(t, "first start", func() bool { return r.count() == 1 })
	calls := h.addrs.n()
	for i := 1; i <= 3; i++ {
		p := r.last()
		exitAt := time.Now()
		p.crash()
		eventually(t, "restart", func() bool { return r.count() == i+1 })
		r.mu.Lock()
		waited := r.startAt[i].Sub(exitAt)
		r.mu.Unlock()
		want := min(20*time.Millisecond<<(i-1), 80*time.Millisecond)
		if waited < want {
			t.Errorf("restart %d after %v, want at least the back-off %v", i, waited, want)
		}
	}
	st := h.status()
	if st.Exits != 3 || st.Starts != 4 || st.LastExit != "exit status 1" {
		t.Errorf("status %+v", st)
	}
	if h.addrs.n() != calls+3 {
		t.Errorf("leftovers removed %d times after 3 exits", h.addrs.n()-calls)
	}
	h.addrs.mu.Lock()
	last := h.addrs.listed[len(h.addrs.listed)-1]
	h.addrs.mu.Unlock()
	if len(last) != 1 || last[0].Interface != "eth0" {
		t.Errorf("leftover removal got %v, want the recorded address", last)
	}
}

func TestSupervisorStopsKeepalivedWhenDone(t *testing.T) {
	for _, stubborn := range []bool{false, true} {
		t.Run(fmt.Sprintf("stubborn=%v", stubborn), func(t *testing.T) {
			r := &fakeRunner{stubborn: stubborn}
			h := startSupervisor(t, r, nil)
			h.install("a\n")
			eventually(t, "running", func() bool { return r.last() != nil })
			h.cancel()
			if err := <-h.done; err != nil {
				t.Fatal(err)
			}
			h.done <- nil // for the cleanup
			want := []syscall.Signal{syscall.SIGTERM}
			if stubborn {
				want = append(want, syscall.SIGKILL)
			}
			if got := r.last().got(); !slices.Equal(got, want) {
				t.Errorf("signals %v, want %v", got, want)
			}
			if st, running, _ := ReadStatus(h.dir); st.State != StateStopped || running {
				t.Errorf("after Run: status %+v, lock held %v", st, running)
			}
		})
	}
}

func TestSupervisorStopsStaleKeepalived(t *testing.T) {
	stale := &fakeProc{pid: 42, done: make(chan struct{})}
	r := &fakeRunner{stale: stale}
	h := startSupervisor(t, r, nil)
	h.install("a\n")
	eventually(t, "running", func() bool { return r.count() == 1 })
	if got := stale.got(); !slices.Equal(got, []syscall.Signal{syscall.SIGTERM}) {
		t.Errorf("stale keepalived got %v", got)
	}
}

func TestSupervisorOnePerRunDir(t *testing.T) {
	h := startSupervisor(t, &fakeRunner{}, nil)
	eventually(t, "lock", func() bool { _, running, _ := ReadStatus(h.dir); return running })
	other := NewSupervisor(SupervisorConfig{RunDir: h.dir, Runner: &fakeRunner{}, Addrs: &fakeAddrs{}}, testr.New(t))
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := other.Run(ctx); err == nil {
		t.Fatal("a second supervisor ran on the same run dir")
	}
}

func TestInstallRecordsOldAndNewAddresses(t *testing.T) {
	dir := t.TempDir()
	a := VIP{IP: ips("203.0.113.20")[0], Interface: "eth0", Label: "eth0:oelb"}
	b := VIP{IP: ips("2001:db8:ffff::1")[0], Interface: "eth0"}
	if err := Install(dir, []byte("x"), []VIP{b}, []VIP{a, b}); err != nil {
		t.Fatal(err)
	}
	got, err := ReadAddrs(dir)
	if err != nil || len(got) != 2 {
		t.Fatalf("ReadAddrs = %v, %v", got, err)
	}
	if conf, _ := os.ReadFile(filepath.Join(dir, ConfigFile)); string(conf) != "x" {
		t.Errorf("config %q", conf)
	}
}
