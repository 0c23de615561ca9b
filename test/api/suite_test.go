// Package api_test proves the CRDs against a real kube-apiserver and etcd:
// OpenELB's published manifests are accepted unchanged, v1alpha1 and
// v1alpha2 convert both ways through the conversion webhook, and invalid
// objects are rejected with messages a user understands.
package api_test

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	ctrl "sigs.k8s.io/controller-runtime"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/controller-runtime/pkg/webhook"

	"github.com/openelb/openelb-operator/internal/conversion"
	"github.com/openelb/openelb-operator/internal/testenv"
)

var env *testenv.Env

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	var err error
	env, err = testenv.Start(testenv.Options{Webhooks: true})
	if err != nil {
		fmt.Fprintln(os.Stderr, "FAIL: envtest:", err)
		return 1
	}
	defer func() { _ = env.Stop() }()
	fmt.Printf("envtest: kube-apiserver from %s at %s\n", env.BinaryAssetsDirectory, env.Config.Host)

	wh := env.WebhookInstallOptions
	mgr, err := ctrl.NewManager(env.Config, ctrl.Options{
		Scheme:  env.Scheme,
		Metrics: metricsserver.Options{BindAddress: "0"},
		WebhookServer: webhook.NewServer(webhook.Options{
			Host: wh.LocalServingHost, Port: wh.LocalServingPort, CertDir: wh.LocalServingCertDir,
		}),
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "FAIL: manager:", err)
		return 1
	}
	if err := conversion.Setup(mgr); err != nil {
		fmt.Fprintln(os.Stderr, "FAIL: conversion webhook:", err)
		return 1
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		if err := mgr.Start(ctx); err != nil {
			fmt.Fprintln(os.Stderr, "manager stopped:", err)
		}
	}()
	if err := waitWebhook(ctx, mgr, 30*time.Second); err != nil {
		fmt.Fprintln(os.Stderr, "FAIL: webhook server:", err)
		return 1
	}
	return m.Run()
}

func waitWebhook(ctx context.Context, mgr ctrl.Manager, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	check := mgr.GetWebhookServer().StartedChecker()
	for {
		if err := check(nil); err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("webhook server not started within %s", timeout)
		case <-time.After(50 * time.Millisecond):
		}
	}
}
