//go:build linux

package lab

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// InCI reports whether CI=true: labs then fail instead of skipping when
// they cannot run (not root, tools missing).
func InCI() bool { return os.Getenv("CI") == "true" }

// RequireRunnable fails the test under CI=true, and skips it otherwise,
// when a lab with these options cannot run here (not root, tools
// missing). New calls it.
func RequireRunnable(t testing.TB, o Options) {
	t.Helper()
	err := Preflight(o)
	if err == nil {
		return
	}
	if InCI() {
		t.Fatalf("lab cannot run (CI=true, so this is a failure, not a skip): %v", err)
		return
	}
	t.Skipf("lab cannot run here: %v (CI=true turns this into a failure)", err)
}

// New starts a lab for a test and registers its teardown with t.Cleanup:
// on failure it logs the report (process log tails, router and client
// state) and keeps the run directory; on success it removes the run
// directory (LAB_KEEP=1 keeps it). Teardown failures and leftovers fail
// the test.
func New(t testing.TB, o Options) *Lab {
	t.Helper()
	if o.Logf == nil {
		o.Logf = t.Logf
	}
	RequireRunnable(t, o)
	l, err := Up(context.Background(), o)
	if err != nil {
		if l != nil {
			t.Logf("lab report:\n%s", l.Report(context.Background()))
			t.Logf("lab: logs kept in %s", l.RunDir)
		}
		t.Fatalf("lab up: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			t.Logf("lab report:\n%s", l.Report(ctx))
			cancel()
		}
		if err := l.Down(); err != nil {
			t.Errorf("lab down: %v", err)
		}
		if t.Failed() || os.Getenv("LAB_KEEP") == "1" {
			t.Logf("lab: logs kept in %s", l.RunDir)
			return
		}
		if err := l.RemoveRunDir(); err != nil {
			t.Errorf("remove run dir: %v", err)
		}
	})
	return l
}

// Report describes the lab for a failure report: every process with its
// state and log tail, the router daemon's logs and BGP view, and the
// client's and router's addresses, routes and neighbours.
func (l *Lab) Report(ctx context.Context) string {
	var b strings.Builder
	fmt.Fprintf(&b, "lab %s, run dir %s\n", l.Prefix, l.RunDir)
	for _, p := range l.Procs() {
		state := "running"
		if p.Exited() {
			state = fmt.Sprintf("exited (%v)", p.ExitErr())
		}
		fmt.Fprintf(&b, "--- %s (pid %d, %s), log %s:\n%s\n", p.Name, p.PID(), state, p.Log, p.Tail(25))
	}
	for _, f := range []string{"router-frr/zebra.log", "router-frr/bgpd.log", "router-frr/bfdd.log", "router-bird/bird.log"} {
		path := filepath.Join(l.RunDir, f)
		if _, err := os.Stat(path); err == nil {
			fmt.Fprintf(&b, "--- %s:\n%s\n", f, tailFile(path, 25))
		}
	}
	if l.down {
		return b.String()
	}
	switch l.RouterKind() {
	case FRR:
		out, err := l.Vtysh(ctx, "show bgp summary", "show ip route", "show ipv6 route")
		fmt.Fprintf(&b, "--- router (FRR):\n%s%v\n", out, errOrEmpty(err))
	case BIRD:
		out, err := l.Birdc(ctx, "show", "protocols")
		fmt.Fprintf(&b, "--- router (BIRD):\n%s%v\n", out, errOrEmpty(err))
	}
	for _, n := range []*NS{l.Router, l.Client} {
		if n != nil {
			fmt.Fprintf(&b, "--- %s:\n%s", n.Short, describeNS(ctx, n))
		}
	}
	return b.String()
}

func errOrEmpty(err error) any {
	if err == nil {
		return ""
	}
	return err
}

// IsRoleNotBuilt reports whether err says a role is missing from this
// build of openelb.
func IsRoleNotBuilt(err error) bool { return errors.Is(err, ErrRoleNotBuilt) }
