package operator_test

import (
	"testing"

	"github.com/openelb/openelb-operator/controllers/operator"
)

// TestNoSCCOutsideOpenShift: a cluster without OpenShift's
// SecurityContextConstraints API gets no SCC (test/operator/openshift
// covers the other case).
func TestNoSCCOutsideOpenShift(t *testing.T) {
	served, err := operator.SecurityContextConstraintsServed(k8s.RESTMapper())
	if err != nil || served {
		t.Fatalf("SecurityContextConstraints detected on plain Kubernetes: %v %v", served, err)
	}
}
