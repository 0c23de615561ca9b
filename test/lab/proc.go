//go:build linux

package lab

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Proc is a process the lab started inside one of its namespaces, in the
// foreground, as a child of the harness. Its stdout and stderr go to Log.
type Proc struct {
	// Name identifies the process in reports, e.g. "node1-speaker".
	Name string
	// NS is the namespace the process runs in.
	NS *NS
	// Log is the file holding the process's stdout and stderr.
	Log string
	// Args is the command line.
	Args []string

	disposable bool
	cmd        *exec.Cmd
	done       chan struct{}
	mu         sync.Mutex
	err        error // exit status, set when done is closed
}

// ProcSpec describes a process to start.
type ProcSpec struct {
	Name string
	NS   *NS
	Args []string
	// Env is added to a minimal environment (PATH, HOME).
	Env []string
	// Dir is the working directory; the run directory when empty.
	Dir string
	// Disposable processes (etcd, kube-apiserver) get SIGKILL at Down,
	// after every other process has ended: their state is thrown away,
	// and a graceful apiserver shutdown takes seconds.
	Disposable bool
}

// PID is the process id (the `ip netns exec` wrapper execs the command, so
// it is the command's own pid).
func (p *Proc) PID() int { return p.cmd.Process.Pid }

// Done is closed when the process has exited and been reaped.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Exited reports whether the process has exited.
func (p *Proc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// ExitErr is the result of Wait once the process has exited (nil for exit
// status 0), or nil while it runs.
func (p *Proc) ExitErr() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}

// Signal sends sig to the process (not to its group).
func (p *Proc) Signal(sig syscall.Signal) error {
	if p.Exited() {
		return fmt.Errorf("%s (pid %d) has already exited", p.Name, p.PID())
	}
	if err := syscall.Kill(p.PID(), sig); err != nil {
		return fmt.Errorf("signal %v to %s (pid %d): %w", sig, p.Name, p.PID(), err)
	}
	return nil
}

// Kill sends SIGKILL and waits until the process is reaped.
func (p *Proc) Kill() error {
	if err := p.Signal(syscall.SIGKILL); err != nil {
		return err
	}
	<-p.done
	return nil
}

// Pause sends SIGSTOP: the process keeps its sockets but stops answering
// (a hung speaker; BGP peers notice through the hold timer).
func (p *Proc) Pause() error { return p.Signal(syscall.SIGSTOP) }

// Resume sends SIGCONT.
func (p *Proc) Resume() error { return p.Signal(syscall.SIGCONT) }

// Terminate sends SIGTERM (after SIGCONT, in case it was paused), waits up
// to grace, then sends SIGKILL. It returns once the process is reaped, and
// reports whether SIGKILL was needed.
func (p *Proc) Terminate(grace time.Duration) (killed bool) {
	if p.Exited() {
		return false
	}
	_ = syscall.Kill(p.PID(), syscall.SIGCONT)
	_ = syscall.Kill(p.PID(), syscall.SIGTERM)
	select {
	case <-p.done:
		return false
	case <-time.After(grace):
	}
	_ = syscall.Kill(p.PID(), syscall.SIGKILL)
	<-p.done
	return true
}

// Wait waits for the process to exit or ctx to end.
func (p *Proc) Wait(ctx context.Context) error {
	select {
	case <-p.done:
		return p.ExitErr()
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Tail returns the last n lines of the process's log.
func (p *Proc) Tail(n int) string { return tailFile(p.Log, n) }

// LogContains reports whether the process's log contains s.
func (p *Proc) LogContains(s string) bool {
	b, err := os.ReadFile(p.Log)
	return err == nil && strings.Contains(string(b), s)
}

func startProc(s ProcSpec, logPath string) (*Proc, error) {
	if s.NS == nil {
		return nil, errors.New("start process: no namespace")
	}
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", s.Name, err)
	}
	defer f.Close()
	fmt.Fprintf(f, "=== lab: %s %s: %s\n", time.Now().Format(time.RFC3339Nano), s.NS.Name, strings.Join(s.Args, " "))
	// No context: the lab ends processes explicitly (Terminate) in order.
	cmd := s.NS.Command(context.Background(), s.Args...)
	cmd.Cancel = nil
	cmd.Stdout, cmd.Stderr = f, f
	cmd.Dir = s.Dir
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=/root"}, s.Env...)
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s (%s): %w", s.Name, strings.Join(s.Args, " "), err)
	}
	p := &Proc{Name: s.Name, NS: s.NS, Log: logPath, Args: s.Args, disposable: s.Disposable, cmd: cmd, done: make(chan struct{})}
	go func() {
		err := cmd.Wait()
		p.mu.Lock()
		p.err = err
		p.mu.Unlock()
		close(p.done)
	}()
	return p, nil
}

// tailFile returns the last n lines of a file (at most 256 KiB are read).
func tailFile(path string, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Sprintf("(cannot read %s: %v)", path, err)
	}
	defer f.Close()
	const max = 256 << 10
	if st, err := f.Stat(); err == nil && st.Size() > max {
		_, _ = f.Seek(st.Size()-max, io.SeekStart)
	}
	b, _ := io.ReadAll(f)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
