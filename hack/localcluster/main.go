// Command localcluster runs a role of openelb against a cluster for `make
// run`: the cluster of $KUBECONFIG (or ~/.kube/config) when one is
// configured, otherwise a local kube-apiserver and etcd started from bin/.
// It installs the CRDs first, writes the local cluster's kubeconfig to
// .local/kubeconfig, runs the given command with KUBECONFIG set, and stops
// everything on Ctrl-C.
//
// Usage: go run ./hack/localcluster -- <command> [args...]
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"syscall"

	"k8s.io/client-go/tools/clientcmd"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/openelb/openelb-operator/internal/testenv"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "localcluster:", err)
		os.Exit(1)
	}
}

func configuredKubeconfig() string {
	if k := os.Getenv("KUBECONFIG"); k != "" {
		return k
	}
	home, _ := os.UserHomeDir()
	if home != "" {
		if _, err := os.Stat(filepath.Join(home, ".kube", "config")); err == nil {
			return filepath.Join(home, ".kube", "config")
		}
	}
	return ""
}

func run() error {
	args := os.Args[1:]
	if len(args) > 0 && args[0] == "--" {
		args = args[1:]
	}
	if len(args) == 0 {
		return errors.New("usage: localcluster -- <command> [args...]")
	}
	root, err := testenv.RepoRoot()
	if err != nil {
		return err
	}
	crds := filepath.Join(root, "config", "crd", "bases")

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	defer stop()

	kubeconfig := configuredKubeconfig()
	if kubeconfig != "" {
		fmt.Printf("Using the cluster of %s\n", kubeconfig)
		cfg, err := ctrl.GetConfig()
		if err != nil {
			return err
		}
		if _, err := envtest.InstallCRDs(cfg, envtest.CRDInstallOptions{Paths: []string{crds}, ErrorIfPathMissing: true}); err != nil {
			return fmt.Errorf("install CRDs: %w", err)
		}
	} else {
		env, err := testenv.Start(testenv.Options{})
		if err != nil {
			return err
		}
		defer func() {
			if err := env.Stop(); err != nil {
				fmt.Fprintln(os.Stderr, "stop control plane:", err)
			}
		}()
		user, err := env.ControlPlane.AddUser(envtest.User{Name: "admin", Groups: []string{"system:masters"}}, nil)
		if err != nil {
			return err
		}
		data, err := user.KubeConfig()
		if err != nil {
			return err
		}
		kubeconfig = filepath.Join(root, ".local", "kubeconfig")
		if err := os.MkdirAll(filepath.Dir(kubeconfig), 0o700); err != nil {
			return err
		}
		if err := os.WriteFile(kubeconfig, data, 0o600); err != nil {
			return err
		}
		if _, err := clientcmd.LoadFromFile(kubeconfig); err != nil {
			return err
		}
		fmt.Printf("Local control plane (kube-apiserver %s) is up with the CRDs installed.\n", env.Config.Host)
		fmt.Printf("Point kubectl at it:\n  export KUBECONFIG=%s\n  bin/kubectl apply -f config/samples/\n", kubeconfig)
	}

	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	cmd.Env = append(os.Environ(), "KUBECONFIG="+kubeconfig)
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	// The role must not outlive us, even if we are killed.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	if err := cmd.Run(); err != nil && ctx.Err() == nil {
		return fmt.Errorf("%s: %w", args[0], err)
	}
	return nil
}
