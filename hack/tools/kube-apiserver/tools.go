//go:build tools

// Package tools pins kube-apiserver and kubectl so that they can be built from
// the Go module proxy; k8s.io/kubernetes maps its staging modules to local
// paths, so every one of them is replaced by its published v0.34.4 release.
package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
