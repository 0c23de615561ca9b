//go:build linux

package lab

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// NS is one network namespace of the lab. Its methods run commands, open
// sockets and read kernel state inside it without changing the namespace of
// the calling goroutine.
type NS struct {
	// Name is the namespace name under /run/netns, e.g. "ol1a2b3c-node1".
	Name string
	// Short is the role of the namespace in the lab: "lan", "router",
	// "client", "k8s" or a node name.
	Short string

	handle netns.NsHandle
	nl     *netlink.Handle
}

func addNS(name, short string) (*NS, error) {
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("ip netns add %s: %w: %s", name, err, bytes.TrimSpace(out))
	}
	n := &NS{Name: name, Short: short}
	if err := n.open(); err != nil {
		return n, err
	}
	return n, nil
}

func (n *NS) open() error {
	h, err := netns.GetFromName(n.Name)
	if err != nil {
		return fmt.Errorf("open namespace %s: %w", n.Name, err)
	}
	n.handle = h
	nl, err := netlink.NewHandleAt(h)
	if err != nil {
		return fmt.Errorf("netlink handle in %s: %w", n.Name, err)
	}
	n.nl = nl
	return nil
}

// close releases the handles; it does not delete the namespace.
func (n *NS) close() {
	if n.nl != nil {
		n.nl.Close()
		n.nl = nil
	}
	if n.handle.IsOpen() {
		_ = n.handle.Close()
	}
}

// Netlink returns a netlink handle bound to the namespace (links,
// addresses, routes, neighbours).
func (n *NS) Netlink() *netlink.Handle { return n.nl }

// Do runs f on a locked OS thread switched into the namespace. f must not
// start goroutines that expect to stay in the namespace, and must return
// quickly; sockets created by f stay in the namespace after Do returns.
func (n *NS) Do(f func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("current namespace: %w", err)
			return
		}
		defer orig.Close()
		if err := netns.Set(n.handle); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("enter namespace %s: %w", n.Name, err)
			return
		}
		ferr := f()
		if err := netns.Set(orig); err != nil {
			// Leave the thread locked: the runtime then terminates it
			// when this goroutine exits, instead of reusing a thread that
			// lives in the wrong namespace.
			errc <- errors.Join(ferr, fmt.Errorf("leave namespace %s: %w", n.Name, err))
			return
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}

// DialContext opens a connection from inside the namespace. It has the
// signature of net.Dialer.DialContext, so it plugs into http.Transport and
// rest.Config.Dial. Each call picks a fresh ephemeral local port.
func (n *NS) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	var c net.Conn
	err := n.Do(func() error {
		var err error
		c, err = (&net.Dialer{}).DialContext(ctx, network, address)
		return err
	})
	return c, err
}

// Listen opens a listening socket inside the namespace.
func (n *NS) Listen(network, address string) (net.Listener, error) {
	var l net.Listener
	err := n.Do(func() error {
		var err error
		l, err = net.Listen(network, address)
		return err
	})
	return l, err
}

// Sysctl sets net sysctls inside the namespace, e.g.
// "net.ipv4.ip_forward" → "1".
func (n *NS) Sysctl(kv map[string]string) error {
	return n.Do(func() error {
		for k, v := range kv {
			p := filepath.Join("/proc/sys", strings.ReplaceAll(k, ".", "/"))
			if err := os.WriteFile(p, []byte(v), 0o644); err != nil {
				return fmt.Errorf("sysctl %s=%s in %s: %w", k, v, n.Name, err)
			}
		}
		return nil
	})
}

// ReadSysctl reads a sysctl inside the namespace.
func (n *NS) ReadSysctl(key string) (string, error) {
	var v string
	err := n.Do(func() error {
		b, err := os.ReadFile(filepath.Join("/proc/sys", strings.ReplaceAll(key, ".", "/")))
		v = strings.TrimSpace(string(b))
		return err
	})
	return v, err
}

// Command returns an exec.Cmd running argv inside the namespace through
// `ip netns exec` (which execs argv, so the process id is argv's). The
// command gets its own process group and SIGKILL when the harness thread
// that started it dies.
func (n *NS) Command(ctx context.Context, argv ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", n.Name}, argv...)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.WaitDelay = 2 * time.Second
	return cmd
}

// Run runs argv inside the namespace and returns its combined output. The
// error carries the output.
func (n *NS) Run(ctx context.Context, argv ...string) (string, error) {
	out, err := n.Command(ctx, argv...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s in %s: %w: %s", strings.Join(argv, " "), n.Short, err, bytes.TrimSpace(out))
	}
	return string(out), nil
}

// PIDs lists the processes whose network namespace is this one.
func (n *NS) PIDs() ([]int, error) {
	return nsPIDs(n.Name)
}

func nsPIDs(name string) ([]int, error) {
	out, err := exec.Command("ip", "netns", "pids", name).Output()
	if err != nil {
		return nil, fmt.Errorf("ip netns pids %s: %w", name, err)
	}
	var pids []int
	for _, f := range strings.Fields(string(out)) {
		var p int
		if _, err := fmt.Sscan(f, &p); err == nil && p != os.Getpid() {
			pids = append(pids, p)
		}
	}
	return pids, nil
}

// listNamespaces returns the names under /run/netns starting with prefix.
func listNamespaces(prefix string) ([]string, error) {
	ents, err := os.ReadDir("/run/netns")
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var names []string
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), prefix) {
			names = append(names, e.Name())
		}
	}
	return names, nil
}

// deleteNS kills every process left in the namespace (by pid) and deletes
// it.
func deleteNS(name string) error {
	if pids, err := nsPIDs(name); err == nil {
		for _, p := range pids {
			_ = unix.Kill(p, unix.SIGKILL)
		}
	}
	if out, err := exec.Command("ip", "netns", "del", name).CombinedOutput(); err != nil {
		return fmt.Errorf("ip netns del %s: %w: %s", name, err, bytes.TrimSpace(out))
	}
	return nil
}
