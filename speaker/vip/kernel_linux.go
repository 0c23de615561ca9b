//go:build linux

package vip

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Kernel is the real Runner and Addresses: processes through os/exec and
// /proc, addresses through netlink (Handle, or the caller's network
// namespace when nil).
type Kernel struct {
	Handle *netlink.Handle
}

func (k Kernel) nl() *netlink.Handle {
	if k.Handle != nil {
		return k.Handle
	}
	return &netlink.Handle{}
}

var (
	_ Runner    = Kernel{}
	_ Addresses = Kernel{}
)

type child struct {
	pid  int
	done chan struct{}
	err  error
}

func (c *child) PID() int                        { return c.pid }
func (c *child) Done() <-chan struct{}           { return c.done }
func (c *child) Err() error                      { return c.err }
func (c *child) Signal(sig syscall.Signal) error { return signalPID(c.pid, sig, c.done) }

// SignalGroup implements Process: the child leads its own session.
func (c *child) SignalGroup(sig syscall.Signal) error { return signalPID(-c.pid, sig, c.done) }

// Start implements Runner: keepalived runs in its own session with the
// caller's stderr as its log, and gets SIGTERM (a graceful handover) if the
// caller dies. The parent-death signal belongs to the thread that forked,
// so that thread stays locked until the child is reaped.
func (Kernel) Start(argv []string) (Process, error) {
	c := &child{done: make(chan struct{})}
	started := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread ends with the child
		cmd := exec.Command(argv[0], argv[1:]...)
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Pdeathsig: syscall.SIGTERM}
		if err := cmd.Start(); err != nil {
			started <- fmt.Errorf("start %s: %w", argv[0], err)
			return
		}
		c.pid = cmd.Process.Pid
		started <- nil
		c.err = cmd.Wait()
		close(c.done)
	}()
	if err := <-started; err != nil {
		return nil, err
	}
	return c, nil
}

type foreign struct {
	pid  int
	done chan struct{}
}

func (f *foreign) PID() int                        { return f.pid }
func (f *foreign) Done() <-chan struct{}           { return f.done }
func (f *foreign) Err() error                      { return nil }
func (f *foreign) Signal(sig syscall.Signal) error { return signalPID(f.pid, sig, f.done) }

// SignalGroup implements Process: the group when the process leads one
// (a keepalived we started), else the process alone.
func (f *foreign) SignalGroup(sig syscall.Signal) error {
	if pgid, err := syscall.Getpgid(f.pid); err == nil && pgid == f.pid {
		return signalPID(-f.pid, sig, f.done)
	}
	return f.Signal(sig)
}

// Find implements Runner.
func (Kernel) Find(pidFile, configPath string) (Process, bool) {
	b, err := os.ReadFile(pidFile)
	if err != nil {
		return nil, false
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 1 || pid == os.Getpid() {
		return nil, false
	}
	if !IsKeepalived(pid, configPath) {
		return nil, false
	}
	f := &foreign{pid: pid, done: make(chan struct{})}
	go watchExit(pid, f.done)
	return f, true
}

// Forget implements Runner.
func (Kernel) Forget(pidFile, configPath string) {
	b, err := os.ReadFile(pidFile)
	if err != nil {
		return
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err == nil && pid > 1 && IsKeepalived(pid, configPath) {
		return
	}
	if err == nil && pid > 1 && zombieChild(pid) {
		var ws unix.WaitStatus
		_, _ = unix.Wait4(pid, &ws, unix.WNOHANG, nil)
	}
	_ = os.Remove(pidFile)
}

// zombieChild reports whether pid is a zombie whose parent is this
// process.
func zombieChild(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+2 >= len(b) {
		return false
	}
	f := strings.Fields(string(b[i+2:]))
	return len(f) > 1 && f[0] == "Z" && f[1] == strconv.Itoa(os.Getpid())
}

// IsKeepalived reports whether pid is a running keepalived using
// configPath.
func IsKeepalived(pid int, configPath string) bool {
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil || exited(pid) {
		return false
	}
	args := bytes.Split(bytes.TrimRight(cmdline, "\x00"), []byte{0})
	if len(args) == 0 || filepath.Base(string(args[0])) != "keepalived" {
		return false
	}
	for i, a := range args {
		s := string(a)
		if s == "--use-file="+configPath || s == "-f"+configPath ||
			((s == "-f" || s == "--use-file") && i+1 < len(args) && string(args[i+1]) == configPath) {
			return true
		}
	}
	return false
}

// exited reports whether pid is gone or a zombie.
func exited(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	// pid (comm) state ...: comm may hold spaces and parentheses.
	i := bytes.LastIndexByte(b, ')')
	return i < 0 || i+2 >= len(b) || b[i+2] == 'Z' || b[i+2] == 'X'
}

// watchExit closes done when pid exits: a pidfd becomes readable then;
// without pidfds, /proc is polled.
func watchExit(pid int, done chan struct{}) {
	defer close(done)
	if fd, err := unix.PidfdOpen(pid, 0); err == nil {
		defer unix.Close(fd)
		for {
			_, err := unix.Poll([]unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}, -1)
			if err == nil || !errors.Is(err, unix.EINTR) {
				return
			}
		}
	}
	for !exited(pid) {
		time.Sleep(50 * time.Millisecond)
	}
}

// signalPID signals pid (a process group when negative) unless done.
func signalPID(pid int, sig syscall.Signal, done <-chan struct{}) error {
	select {
	case <-done:
		return fmt.Errorf("pid %d has exited", pid)
	default:
	}
	if err := syscall.Kill(pid, sig); err != nil {
		return fmt.Errorf("signal %v to pid %d: %w", sig, pid, err)
	}
	return nil
}

// RemoveLeftovers implements Addresses.
func (k Kernel) RemoveLeftovers(listed []VIP) ([]VIP, error) {
	h := k.nl()
	want := map[VIP]bool{}
	for _, v := range listed {
		want[VIP{IP: v.IP, Interface: v.Interface}] = true
	}
	links, err := h.LinkList()
	if err != nil {
		return nil, fmt.Errorf("list links: %w", err)
	}
	var removed []VIP
	var errs []error
	for _, l := range links {
		name := l.Attrs().Name
		addrs, err := h.AddrList(l, netlink.FAMILY_ALL)
		if err != nil {
			if errors.Is(err, unix.ENODEV) {
				continue
			}
			errs = append(errs, fmt.Errorf("list addresses of %s: %w", name, err))
			continue
		}
		for _, a := range addrs {
			ip, ok := netip.AddrFromSlice(a.IP)
			if !ok || a.IPNet == nil {
				continue
			}
			ip = ip.Unmap()
			ones, bits := a.Mask.Size()
			host := ones == bits
			labelled := ip.Is4() && strings.HasSuffix(a.Label, LabelSuffix)
			if !labelled && !(host && want[VIP{IP: ip, Interface: name}]) {
				continue
			}
			if err := h.AddrDel(l, &a); err != nil && !errors.Is(err, unix.EADDRNOTAVAIL) {
				errs = append(errs, fmt.Errorf("remove %s from %s: %w", a.IPNet, name, err))
				continue
			}
			removed = append(removed, VIP{IP: ip, Interface: name, Label: a.Label})
		}
	}
	return removed, errors.Join(errs...)
}

// lockRunDir takes the run dir's supervisor lock, or fails when another
// supervisor holds it.
func lockRunDir(dir string) (unlock func(), err error) {
	f, err := os.OpenFile(filepath.Join(dir, LockFile), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("supervisor lock: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, fmt.Errorf("another keepalived supervisor runs for %s", dir)
		}
		return nil, fmt.Errorf("supervisor lock: %w", err)
	}
	return func() {
		_ = unix.Flock(int(f.Fd()), unix.LOCK_UN)
		f.Close()
	}, nil
}

// runDirLocked reports whether a supervisor holds the run dir's lock.
func runDirLocked(dir string) bool {
	f, err := os.Open(filepath.Join(dir, LockFile))
	if err != nil {
		return false
	}
	defer f.Close()
	if err := unix.Flock(int(f.Fd()), unix.LOCK_SH|unix.LOCK_NB); err != nil {
		return errors.Is(err, unix.EWOULDBLOCK)
	}
	_ = unix.Flock(int(f.Fd()), unix.LOCK_UN)
	return false
}
