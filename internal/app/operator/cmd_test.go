package operator

import (
	"testing"
)

func TestCertPlan(t *testing.T) {
	cases := []struct {
		name    string
		olm     bool
		flag    string
		wantDir string
		wantOwn bool
	}{
		{"plain install, default dir", false, DefaultCertDir, DefaultCertDir, true},
		{"plain install, custom dir", false, "/certs", "/certs", true},
		{"OLM: its mount at the default dir, nothing of our own", true, DefaultCertDir, DefaultCertDir, false},
		{"OLM ignores a custom dir: OLM mounts only the default one", true, "/certs", DefaultCertDir, false},
	}
	for _, tc := range cases {
		dir, own := CertPlan(tc.olm, tc.flag)
		if dir != tc.wantDir || own != tc.wantOwn {
			t.Errorf("%s: CertPlan = %s, %v; want %s, %v", tc.name, dir, own, tc.wantDir, tc.wantOwn)
		}
	}
}

func TestUnderOLM(t *testing.T) {
	t.Setenv(OLMConditionEnv, "")
	if UnderOLM() {
		t.Error("UnderOLM without OPERATOR_CONDITION_NAME")
	}
	t.Setenv(OLMConditionEnv, "openelb-operator.v0.1.0")
	if !UnderOLM() {
		t.Error("not UnderOLM with OPERATOR_CONDITION_NAME set")
	}
}

func TestFlags(t *testing.T) {
	t.Setenv("RELATED_IMAGE_OPENELB", "example.test/openelb@sha256:abc")
	t.Setenv("OPERATOR_NAMESPACE", "openshift-operators")
	fs := NewCommand().Flags()
	for flag, want := range map[string]string{
		"operand-image":    "example.test/openelb@sha256:abc",
		"namespace":        "openshift-operators",
		"webhook-port":     "9443",
		"webhook-cert-dir": DefaultCertDir,
	} {
		if got := fs.Lookup(flag).DefValue; got != want {
			t.Errorf("--%s defaults to %q, want %q", flag, got, want)
		}
	}
}
