// Package testenv starts a real kube-apiserver and etcd (built into bin/ by
// `make test`, or taken from KUBEBUILDER_ASSETS) with this project's CRDs
// installed, for envtest suites.
package testenv

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/openelb/openelb-operator/internal/scheme"
)

// Env is a running control plane.
type Env struct {
	*envtest.Environment
	Config *rest.Config
	Client client.Client
	Scheme *runtime.Scheme
}

// RepoRoot finds the repository root (the directory holding go.mod) from
// the working directory.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			if _, err := os.Stat(filepath.Join(dir, "PROJECT")); err == nil {
				return dir, nil
			}
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("repository root (go.mod + PROJECT) not found above the working directory")
		}
		dir = parent
	}
}

// Assets returns the directory holding kube-apiserver and etcd: the
// KUBEBUILDER_ASSETS environment variable when set, else <repo>/bin. It
// fails with instructions when the binaries are missing: envtest suites
// never skip.
func Assets() (string, error) {
	dir := os.Getenv("KUBEBUILDER_ASSETS")
	if dir == "" {
		root, err := RepoRoot()
		if err != nil {
			return "", err
		}
		dir = filepath.Join(root, "bin")
	}
	for _, b := range []string{"kube-apiserver", "etcd"} {
		if _, err := os.Stat(filepath.Join(dir, b)); err != nil {
			return "", fmt.Errorf("%s not found in %s: run `make test` (it builds the control plane into bin/) or set KUBEBUILDER_ASSETS", b, dir)
		}
	}
	return dir, nil
}

// Options adjust the environment.
type Options struct {
	// Webhooks makes envtest generate serving certificates and point the
	// CRDs' conversion webhooks at the local webhook server; the caller
	// starts a manager whose webhook server uses WebhookInstallOptions.
	Webhooks bool
	// ExtraCRDDirs are installed with config/crd/bases.
	ExtraCRDDirs []string
}

// Start starts kube-apiserver and etcd and installs the CRDs from
// config/crd/bases. Callers must Stop the returned environment.
func Start(o Options) (*Env, error) {
	assets, err := Assets()
	if err != nil {
		return nil, err
	}
	root, err := RepoRoot()
	if err != nil {
		return nil, err
	}
	s := scheme.New()
	// envtest points the conversion of every CRD whose kinds are convertible
	// in CRDInstallOptions.Scheme at its local webhook server. Without a
	// webhook server, hand it a scheme without our kinds so that the CRDs
	// keep strategy None.
	crdScheme := s
	if !o.Webhooks {
		crdScheme = runtime.NewScheme()
		if err := clientgoscheme.AddToScheme(crdScheme); err != nil {
			return nil, err
		}
	}
	env := &envtest.Environment{
		BinaryAssetsDirectory: assets,
		CRDInstallOptions: envtest.CRDInstallOptions{
			Paths:              append([]string{filepath.Join(root, "config", "crd", "bases")}, o.ExtraCRDDirs...),
			ErrorIfPathMissing: true,
			Scheme:             crdScheme,
		},
		ErrorIfCRDPathMissing: true,
		Scheme:                s,
	}
	cfg, err := env.Start()
	if err != nil {
		return nil, fmt.Errorf("start envtest control plane from %s: %w", assets, err)
	}
	c, err := client.New(cfg, client.Options{Scheme: s})
	if err != nil {
		_ = env.Stop()
		return nil, fmt.Errorf("client for envtest: %w", err)
	}
	return &Env{Environment: env, Config: cfg, Client: c, Scheme: s}, nil
}
