package vip

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Disable removes what vip mode left on this node, for a speaker that runs
// with vip disabled: a keepalived still running on the run dir (stopped:
// SIGTERM, then SIGKILL), the addresses a killed keepalived left (IPv4
// addresses labelled "<iface>:oelb" on any interface, and the run dir's
// address record), and the run dir's vip files. A supervisor that still
// holds the run dir (a keepalived sidecar) is left alone: it owns its
// addresses. Runner and Addrs default to Kernel{}.
func Disable(runDir string, r Runner, a Addresses, log logr.Logger) error {
	if r == nil {
		r = Kernel{}
	}
	if a == nil {
		a = Kernel{}
	}
	if runDirLocked(runDir) {
		log.Info("A keepalived supervisor still runs on the run dir; leaving it and its addresses alone", "runDir", runDir)
		return nil
	}
	s := NewSupervisor(SupervisorConfig{RunDir: runDir, Runner: r, Addrs: a}, log)
	if _, err := os.Stat(runDir); err != nil {
		// No run dir: no keepalived of ours ran here; labelled addresses
		// may still be left by a keepalived that ran in an earlier pod.
		if removed := s.removeLeftovers(); len(removed) > 0 {
			log.Info("vip disabled: removed addresses an earlier keepalived left", "removed", removed)
		}
		return nil
	}
	unlock, err := lockRunDir(runDir)
	if err != nil {
		return err
	}
	defer unlock()
	s.stopStale()
	removed := s.removeLeftovers()
	var errs []error
	for _, f := range append([]string{ConfigFile, AddrsFile, StatusFile, LockFile}, pidFiles...) {
		if err := os.Remove(filepath.Join(runDir, f)); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	if len(removed) > 0 {
		log.Info("vip disabled: removed addresses an earlier keepalived left", "removed", removed)
	}
	return errors.Join(errs...)
}

// ForgetNode removes this node's entry from the record (a speaker that
// runs without vip must not be chosen as the writer), retrying conflicts
// for up to a minute. It implements manager.Runnable.
type ForgetNode struct {
	Node, Namespace string
	// Client reads and writes the API directly (not through a cache).
	Client client.Client
	Log    logr.Logger
}

// Start implements manager.Runnable.
func (f ForgetNode) Start(ctx context.Context) error {
	deadline := time.Now().Add(time.Minute)
	for {
		err := f.once(ctx)
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) || apierrors.IsForbidden(err) {
			f.Log.Info("Cannot remove this node's entry from the vip record", "configMap", RecordName, "error", err.Error())
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(time.Second):
		}
	}
}

// NeedLeaderElection: every speaker forgets its own entry.
func (f ForgetNode) NeedLeaderElection() bool { return false }

func (f ForgetNode) once(ctx context.Context) error {
	var cm corev1.ConfigMap
	if err := f.Client.Get(ctx, types.NamespacedName{Namespace: f.Namespace, Name: RecordName}, &cm); err != nil {
		if apierrors.IsNotFound(err) {
			return nil
		}
		return err
	}
	if _, ok := cm.Data[NodeKey(f.Node)]; !ok {
		return nil
	}
	delete(cm.Data, NodeKey(f.Node))
	return f.Client.Update(ctx, &cm)
}

// SidecarConfig configures RunSidecar.
type SidecarConfig struct {
	RunDir, Keepalived, Node string
}

// RunSidecar is `openelb speaker keepalived`: a Supervisor as the main
// process of a container that shares the run dir with the speaker. It
// returns when ctx ends (SIGTERM), after keepalived has stopped.
func RunSidecar(ctx context.Context, c SidecarConfig, log logr.Logger) error {
	s := NewSupervisor(SupervisorConfig{RunDir: c.RunDir, Keepalived: c.Keepalived, ConfigID: c.Node, Runner: Kernel{}, Addrs: Kernel{}}, log)
	log.Info("Supervising keepalived", "runDir", c.RunDir, "keepalived", c.Keepalived)
	return s.Run(ctx)
}
