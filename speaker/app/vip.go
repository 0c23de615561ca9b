package app

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"time"

	"github.com/go-logr/logr"
	"github.com/spf13/cobra"
	"sigs.k8s.io/controller-runtime/pkg/manager"

	"github.com/openelb/openelb-operator/internal/app"
	"github.com/openelb/openelb-operator/internal/logging"
	"github.com/openelb/openelb-operator/speaker"
	"github.com/openelb/openelb-operator/speaker/vip"
)

// VRRPv3 advertisement intervals are centiseconds in 12 bits.
const (
	minVIPAdvert = 10 * time.Millisecond
	maxVIPAdvert = 40950 * time.Millisecond
)

// newVIP builds the vip back-end (speaker/vip) and registers its watch of
// the vip record.
func newVIP(d Deps) (speaker.Backend, error) {
	if d.VIPAdvertInterval < minVIPAdvert || d.VIPAdvertInterval > maxVIPAdvert {
		return nil, fmt.Errorf("--vip-advert-interval %s is outside %s..%s", d.VIPAdvertInterval, minVIPAdvert, maxVIPAdvert)
	}
	path, err := exec.LookPath(d.KeepalivedPath)
	if err != nil {
		return nil, fmt.Errorf("--keepalived-path %q: %w", d.KeepalivedPath, err)
	}
	cfg := vip.Config{
		Node: d.NodeName, Namespace: d.Namespace, RunDir: d.RunDir, Keepalived: path,
		AdvertInterval: d.VIPAdvertInterval, Multicast: d.VIPMulticast, Sidecar: d.KeepalivedSidecar,
		Netx: d.Netx, Events: d.Manager.GetEventRecorderFor("openelb-speaker"), ListenAdverts: true,
	}
	if d.Liveness != nil {
		cfg.Synced = d.Liveness.Synced
	}
	b := vip.NewBackend(cfg, d.Log.WithName("vip"))
	if err := b.SetupWithManager(context.Background(), d.Manager); err != nil {
		return nil, err
	}
	return b, nil
}

// disableVIP runs when vip is disabled: whatever vip left on this node
// (keepalived, its addresses) is removed before anything starts, and the
// node's entry leaves the vip record once the manager runs.
func disableVIP(o Options, mgr manager.Manager, log logr.Logger) error {
	if err := vip.Disable(o.RunDir, nil, nil, log.WithName("vip")); err != nil {
		log.Error(err, "Cannot clean up after vip mode", "runDir", o.RunDir)
	}
	return mgr.Add(vip.ForgetNode{Node: o.NodeName, Namespace: o.Namespace, Client: mgr.GetClient(), Log: log.WithName("vip")})
}

// newKeepalivedCommand returns `openelb speaker keepalived`: the keepalived
// supervisor of a sidecar container that shares --run-dir with a speaker
// started with --keepalived-sidecar.
func newKeepalivedCommand() *cobra.Command {
	var (
		lo      logging.Options
		runDir  string
		path    string
		node    string
		cmdName = "keepalived"
	)
	cmd := &cobra.Command{
		Use:          cmdName,
		Short:        "Supervise keepalived for a speaker started with --keepalived-sidecar (sidecar container)",
		Args:         cobra.NoArgs,
		SilenceUsage: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := app.SetupLogging(lo, "speaker-keepalived")
			if err != nil {
				return err
			}
			bin, err := exec.LookPath(path)
			if err != nil {
				return fmt.Errorf("--keepalived-path %q: %w", path, err)
			}
			return vip.RunSidecar(cmd.Context(), vip.SidecarConfig{RunDir: runDir, Keepalived: bin, Node: node}, log)
		},
	}
	fs := cmd.Flags()
	lo.AddFlags(fs)
	fs.StringVar(&runDir, "run-dir", "/run/openelb", "the speaker's --run-dir (shared volume)")
	fs.StringVar(&path, "keepalived-path", "keepalived", "keepalived binary")
	fs.StringVar(&node, "node-name", os.Getenv("NODE_NAME"), "this node's name, keepalived's config id (env NODE_NAME)")
	return cmd
}
