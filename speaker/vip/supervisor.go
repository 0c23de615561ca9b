package vip

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/go-logr/logr"
)

// Files in the run dir (--run-dir), shared by the speaker and the
// supervisor (the same process, or two containers with an emptyDir).
const (
	// ConfigFile is keepalived's configuration, written by the speaker.
	ConfigFile = "keepalived.conf"
	// AddrsFile lists the addresses of ConfigFile (JSON), so that what a
	// killed keepalived left behind is known even without labels (IPv6).
	AddrsFile = "keepalived.addrs.json"
	// StatusFile is the supervisor's Status (JSON), read by the speaker.
	StatusFile = "keepalived.status.json"
	// LockFile is held (flock) by the running supervisor.
	LockFile = "supervisor.lock"
	// PIDFile and VRRPPIDFile are keepalived's own pid files (parent and
	// VRRP child).
	PIDFile     = "keepalived.pid"
	VRRPPIDFile = "vrrp.pid"
)

// pidFiles are every pid file keepalived writes in the run dir.
var pidFiles = []string{PIDFile, VRRPPIDFile, "checkers.pid", "bfd.pid"}

// Supervisor states.
const (
	StateWaiting    = "waiting"    // no configuration yet
	StateRunning    = "running"    // keepalived runs
	StateRestarting = "restarting" // keepalived exited; restarting after back-off
	StateStopped    = "stopped"    // the supervisor ended and stopped keepalived
)

// Status is what the supervisor reports about keepalived.
type Status struct {
	State string `json:"state"`
	PID   int    `json:"pid,omitempty"`
	// Since is when State was entered.
	Since time.Time `json:"since"`
	// Starts and Exits count keepalived processes started and ended
	// unexpectedly; Reloads counts SIGHUPs.
	Starts  int `json:"starts"`
	Exits   int `json:"exits"`
	Reloads int `json:"reloads"`
	// LastExit describes the last unexpected exit.
	LastExit   string    `json:"lastExit,omitempty"`
	LastExitAt time.Time `json:"lastExitAt,omitzero"`
	// Config is the hash of the configuration keepalived runs.
	Config string `json:"config,omitempty"`
	// Retry is when keepalived is restarted (StateRestarting).
	Retry time.Time `json:"retry,omitzero"`
	// Removed lists addresses a dead keepalived had left and the
	// supervisor removed.
	Removed []string `json:"removed,omitempty"`
}

// A Process is a running program.
type Process interface {
	PID() int
	Signal(sig syscall.Signal) error
	// SignalGroup sends sig to the process and its children (keepalived's
	// process group): the VRRP child, which runs with real-time priority,
	// hands over at once instead of waiting for its parent to pass the
	// signal on.
	SignalGroup(sig syscall.Signal) error
	// Done is closed once the process has exited.
	Done() <-chan struct{}
	// Err describes how it ended, once Done is closed (nil: status 0).
	Err() error
}

// A Runner starts and finds keepalived processes (the process seam).
type Runner interface {
	// Start runs argv in its own session; it receives SIGTERM if the
	// caller dies.
	Start(argv []string) (Process, error)
	// Find returns the keepalived named by pidFile if it still runs with
	// configPath (one a dead supervisor left behind).
	Find(pidFile, configPath string) (Process, bool)
	// Forget removes pidFile unless it names a running keepalived with
	// configPath, reaping the process if it is a zombie child of ours:
	// keepalived refuses to start while a pid file names a live process,
	// and the VRRP child of a killed keepalived lingers as a zombie of
	// whoever inherits it (the container's PID 1: the speaker or the
	// supervisor).
	Forget(pidFile, configPath string)
}

// Addresses removes what a dead keepalived left on the interfaces.
type Addresses interface {
	// RemoveLeftovers deletes every IPv4 address whose label ends in
	// LabelSuffix and every address of listed that is configured on its
	// interface, and returns what it removed.
	RemoveLeftovers(listed []VIP) ([]VIP, error)
}

// SupervisorConfig configures a Supervisor.
type SupervisorConfig struct {
	RunDir string
	// Keepalived is the keepalived binary.
	Keepalived string
	// ConfigID is keepalived's --config-id (the node name).
	ConfigID string
	Runner   Runner
	Addrs    Addresses
	// MinBackoff and MaxBackoff bound the restart delay (500 ms, 30 s); it
	// doubles on each exit and resets once keepalived ran for StableAfter
	// (60 s).
	MinBackoff, MaxBackoff, StableAfter time.Duration
	// StopGrace bounds the wait for keepalived after SIGTERM (5 s; a
	// master needs about 2 s).
	StopGrace time.Duration
	// Poll is how often the configuration file is checked for changes
	// when nobody calls Reload (100 ms).
	Poll time.Duration
	// OnStatus, when set, sees every status written.
	OnStatus func(Status)
}

// A Supervisor runs keepalived from the run dir's configuration: it starts
// it once the configuration exists, reloads it (SIGHUP) when the file
// changes, restarts it with back-off when it exits, removes what a dead
// keepalived left on the interfaces before each start, and stops it
// (SIGTERM: priority-0 advertisements hand the addresses over at once) when
// Run ends. It holds LockFile while it runs, so that one run dir has one
// supervisor.
type Supervisor struct {
	cfg    SupervisorConfig
	log    logr.Logger
	reload chan struct{}

	mu     sync.Mutex
	status Status
}

// NewSupervisor returns a Supervisor; Run starts it.
func NewSupervisor(cfg SupervisorConfig, log logr.Logger) *Supervisor {
	if cfg.MinBackoff <= 0 {
		cfg.MinBackoff = 500 * time.Millisecond
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = 30 * time.Second
	}
	if cfg.StableAfter <= 0 {
		cfg.StableAfter = time.Minute
	}
	if cfg.StopGrace <= 0 {
		cfg.StopGrace = 5 * time.Second
	}
	if cfg.Poll <= 0 {
		cfg.Poll = 100 * time.Millisecond
	}
	return &Supervisor{cfg: cfg, log: log, reload: make(chan struct{}, 1)}
}

// Reload asks for a check of the configuration file now.
func (s *Supervisor) Reload() {
	select {
	case s.reload <- struct{}{}:
	default:
	}
}

// Status returns the current status.
func (s *Supervisor) Status() Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.status
}

func (s *Supervisor) path(name string) string { return filepath.Join(s.cfg.RunDir, name) }

// Argv returns keepalived's command line for a run dir: foreground, VRRP
// only, logging to stderr, every pid file in the run dir.
func Argv(keepalived, runDir, configID string) []string {
	p := func(n string) string { return filepath.Join(runDir, n) }
	return []string{keepalived, "--dont-fork", "--vrrp", "--log-console", "--log-detail", "--no-syslog",
		"--use-file=" + p(ConfigFile), "--pid=" + p(PIDFile), "--vrrp_pid=" + p(VRRPPIDFile),
		"--checkers_pid=" + p(pidFiles[2]), "--bfd_pid=" + p(pidFiles[3]), "--config-id=" + configID}
}

// Run supervises keepalived until ctx ends, then stops it. It fails at
// once when another supervisor holds the run dir.
func (s *Supervisor) Run(ctx context.Context) error {
	if err := os.MkdirAll(s.cfg.RunDir, 0o755); err != nil {
		return fmt.Errorf("run dir: %w", err)
	}
	unlock, err := lockRunDir(s.cfg.RunDir)
	if err != nil {
		return err
	}
	defer unlock()
	s.stopStale()
	s.removeLeftovers()

	backoff := s.cfg.MinBackoff
	var (
		proc    Process
		started time.Time
		loaded  string // hash of the configuration keepalived runs
		retry   <-chan time.Time
	)
	poll := time.NewTicker(s.cfg.Poll)
	defer poll.Stop()
	s.setStatus(func(st *Status) { st.State = StateWaiting })
	for {
		hash, hasConf := s.configHash()
		switch {
		case proc == nil && retry == nil && hasConf:
			s.stopStale()
			p, err := s.cfg.Runner.Start(Argv(s.cfg.Keepalived, s.cfg.RunDir, s.cfg.ConfigID))
			if err != nil {
				s.log.Error(err, "Cannot start keepalived; retrying", "in", backoff.String())
				retry, backoff = s.restartIn(backoff, err.Error())
				break
			}
			proc, started, loaded = p, time.Now(), hash
			s.log.Info("Started keepalived", "pid", p.PID())
			s.setStatus(func(st *Status) {
				st.State, st.PID, st.Config, st.Retry = StateRunning, p.PID(), hash, time.Time{}
				st.Starts++
			})
		case proc != nil && hasConf && hash != loaded && time.Since(started) > 300*time.Millisecond:
			// keepalived installs its SIGHUP handler at start; a signal in
			// its first moments would end it.
			if err := proc.Signal(syscall.SIGHUP); err != nil {
				s.log.Error(err, "Cannot reload keepalived", "pid", proc.PID())
				break
			}
			loaded = hash
			s.log.V(1).Info("Reloaded keepalived", "pid", proc.PID())
			s.setStatus(func(st *Status) { st.Config = hash; st.Reloads++ })
		}
		var done <-chan struct{}
		if proc != nil {
			done = proc.Done()
		}
		select {
		case <-ctx.Done():
			if proc != nil {
				s.stop(proc)
			}
			s.removeLeftovers()
			s.setStatus(func(st *Status) { st.State, st.PID, st.Retry = StateStopped, 0, time.Time{} })
			return nil
		case <-done:
			why := "exited"
			if err := proc.Err(); err != nil {
				why = err.Error()
			}
			ran := time.Since(started)
			proc = nil
			if ran >= s.cfg.StableAfter {
				backoff = s.cfg.MinBackoff
			}
			s.log.Error(errors.New(why), "keepalived ended unexpectedly; restarting", "ran", ran.Round(time.Millisecond).String(), "in", backoff.String())
			removed := s.removeLeftovers()
			s.setStatus(func(st *Status) {
				st.Exits++
				st.LastExit, st.LastExitAt, st.Removed = why, time.Now(), removed
			})
			retry, backoff = s.restartIn(backoff, "")
		case <-retry:
			retry = nil
		case <-s.reload:
		case <-poll.C:
		}
	}
}

// restartIn schedules a restart after d and returns the next back-off.
func (s *Supervisor) restartIn(d time.Duration, _ string) (<-chan time.Time, time.Duration) {
	at := time.Now().Add(d)
	s.setStatus(func(st *Status) { st.State, st.PID, st.Retry = StateRestarting, 0, at })
	return time.After(d), min(2*d, s.cfg.MaxBackoff)
}

// stop sends SIGTERM and waits StopGrace, then SIGKILL.
func (s *Supervisor) stop(p Process) {
	s.log.Info("Stopping keepalived", "pid", p.PID())
	_ = p.SignalGroup(syscall.SIGTERM)
	select {
	case <-p.Done():
		return
	case <-time.After(s.cfg.StopGrace):
	}
	s.log.Info("keepalived ignored SIGTERM; killing it", "pid", p.PID(), "after", s.cfg.StopGrace.String())
	_ = p.SignalGroup(syscall.SIGKILL)
	select {
	case <-p.Done():
	case <-time.After(s.cfg.StopGrace):
	}
}

// stopStale ends a keepalived that a dead supervisor left running on this
// run dir (it runs an older configuration and nobody reloads it), or the
// VRRP child of a killed keepalived that is still handing over, and clears
// the pid files so that the next keepalived starts.
func (s *Supervisor) stopStale() {
	for _, f := range []string{PIDFile, VRRPPIDFile} {
		if p, ok := s.cfg.Runner.Find(s.path(f), s.path(ConfigFile)); ok {
			s.log.Info("Stopping a keepalived process that no supervisor watches", "pid", p.PID(), "pidFile", f)
			s.stop(p)
		}
	}
	for _, f := range pidFiles {
		s.cfg.Runner.Forget(s.path(f), s.path(ConfigFile))
	}
}

func (s *Supervisor) removeLeftovers() []string {
	listed, err := ReadAddrs(s.cfg.RunDir)
	if err != nil {
		s.log.Error(err, "Cannot read the address record; removing labelled addresses only")
	}
	removed, err := s.cfg.Addrs.RemoveLeftovers(listed)
	if err != nil {
		s.log.Error(err, "Cannot remove leftover addresses")
	}
	var out []string
	for _, v := range removed {
		out = append(out, v.Prefix().String()+" on "+v.Interface)
	}
	if len(out) > 0 {
		s.log.Info("Removed addresses a stopped keepalived left behind", "addresses", out)
	}
	return out
}

func (s *Supervisor) configHash() (string, bool) {
	b, err := os.ReadFile(s.path(ConfigFile))
	if err != nil {
		return "", false
	}
	return Hash(b), true
}

// Hash identifies a configuration.
func Hash(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:8])
}

func (s *Supervisor) setStatus(f func(*Status)) {
	s.mu.Lock()
	f(&s.status)
	s.status.Since = time.Now()
	st := s.status
	s.mu.Unlock()
	if err := writeJSON(s.path(StatusFile), st); err != nil {
		s.log.Error(err, "Cannot write the supervisor status")
	}
	if s.cfg.OnStatus != nil {
		s.cfg.OnStatus(st)
	}
}

// ReadStatus reads the supervisor status of a run dir; running reports
// whether a supervisor holds the run dir now.
func ReadStatus(runDir string) (st Status, running bool, err error) {
	running = runDirLocked(runDir)
	b, err := os.ReadFile(filepath.Join(runDir, StatusFile))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return Status{}, running, nil
		}
		return Status{}, running, err
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return Status{}, running, fmt.Errorf("decode %s: %w", StatusFile, err)
	}
	return st, running, nil
}

// ReadAddrs returns the addresses of the installed configuration.
func ReadAddrs(runDir string) ([]VIP, error) {
	b, err := os.ReadFile(filepath.Join(runDir, AddrsFile))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
		return nil, err
	}
	var out []VIP
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, fmt.Errorf("decode %s: %w", AddrsFile, err)
	}
	return out, nil
}

// Install writes a configuration and its address record into the run dir,
// each atomically; the address record first, so that it always covers what
// keepalived may have configured (the union of the old and the new
// addresses until the next install).
func Install(runDir string, conf []byte, vips []VIP, previous []VIP) error {
	if err := os.MkdirAll(runDir, 0o755); err != nil {
		return err
	}
	all := append(append([]VIP{}, vips...), previous...)
	if err := writeJSON(filepath.Join(runDir, AddrsFile), dedupVIPs(all)); err != nil {
		return err
	}
	return writeFile(filepath.Join(runDir, ConfigFile), conf)
}

func dedupVIPs(in []VIP) []VIP {
	seen := map[VIP]bool{}
	out := make([]VIP, 0, len(in))
	for _, v := range in {
		if !seen[v] {
			seen[v] = true
			out = append(out, v)
		}
	}
	return out
}

func writeJSON(path string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return writeFile(path, b)
}

// writeFile replaces path atomically (write, fsync, rename).
func writeFile(path string, b []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
