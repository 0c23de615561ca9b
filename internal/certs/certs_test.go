package certs

import (
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"testing"
	"time"
)

var (
	t0  = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	req = Request{CAName: "test-ca", DNSNames: ServiceDNSNames("openelb-controller", "openelb-system"),
		CAValidity: 1000 * time.Hour, ServingValidity: 300 * time.Hour}
)

func mustEnsure(t *testing.T, m Material, r Request, now time.Time) (Material, Change) {
	t.Helper()
	out, ch, err := Ensure(m, r, now, rand.Reader)
	if err != nil {
		t.Fatalf("Ensure: %v", err)
	}
	return out, ch
}

// verify checks that a client trusting the bundle accepts the serving
// certificate for the first DNS name at now.
func verify(t *testing.T, m Material, now time.Time) {
	t.Helper()
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(m.Bundle) {
		t.Fatal("bundle holds no certificate")
	}
	pair, err := tls.X509KeyPair(m.TLSCert, m.TLSKey)
	if err != nil {
		t.Fatalf("serving key pair: %v", err)
	}
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, DNSName: req.DNSNames[0], CurrentTime: now}); err != nil {
		t.Fatalf("serving certificate not trusted by the bundle: %v", err)
	}
}

func TestEnsureLifecycle(t *testing.T) {
	m, ch := mustEnsure(t, Material{}, req, t0)
	if ch != NewCA {
		t.Fatalf("empty material: change %q, want NewCA", ch)
	}
	verify(t, m, t0)

	// Round trip through Secret data keeps everything.
	again, ch := mustEnsure(t, FromSecretData(m.SecretData()), req, t0.Add(time.Hour))
	if ch != Unchanged || string(again.TLSCert) != string(m.TLSCert) || string(again.Bundle) != string(m.Bundle) {
		t.Fatalf("valid material changed: %q", ch)
	}

	// Serving certificate close to expiry: renewed with the same CA.
	renewed, ch := mustEnsure(t, m, req, t0.Add(250*time.Hour))
	if ch != RenewServing {
		t.Fatalf("serving at 250h of 300h: change %q, want RenewServing", ch)
	}
	if string(renewed.CACert) != string(m.CACert) || string(renewed.Bundle) != string(m.Bundle) {
		t.Fatal("serving renewal changed the CA or the bundle")
	}
	verify(t, renewed, t0.Add(250*time.Hour))

	// CA close to expiry: new CA, the old one stays in the bundle so the
	// old serving certificate is still trusted during the switch.
	at := t0.Add(850 * time.Hour)
	old, _ := mustEnsure(t, m, req, t0.Add(600*time.Hour)) // serving renewed at 600h, valid to 900h
	rotated, ch := mustEnsure(t, old, req, at)
	if ch != RotatedCA {
		t.Fatalf("CA at 850h of 1000h: change %q, want RotatedCA", ch)
	}
	if string(rotated.CACert) == string(old.CACert) {
		t.Fatal("CA not replaced")
	}
	verify(t, rotated, at)
	verify(t, Material{Bundle: rotated.Bundle, TLSCert: old.TLSCert, TLSKey: old.TLSKey}, at)

	// Once the old CA has expired it leaves the bundle.
	late := t0.Add(1001 * time.Hour)
	pruned, ch := mustEnsure(t, rotated, req, late)
	if ch != PrunedBundle {
		t.Fatalf("after old CA expiry: change %q, want PrunedBundle", ch)
	}
	if n := len(bundleCerts(pruned.Bundle)); n != 1 {
		t.Fatalf("bundle holds %d certificates after pruning, want 1", n)
	}
	verify(t, pruned, late)
}

func TestEnsureRepairs(t *testing.T) {
	good, _ := mustEnsure(t, Material{}, req, t0)
	other, _ := mustEnsure(t, Material{}, req, t0)
	cases := []struct {
		name string
		in   Material
		req  Request
		want Change
	}{
		{name: "garbage CA", in: Material{CACert: []byte("x"), CAKey: []byte("y"), Bundle: []byte("x")}, req: req, want: NewCA},
		{name: "CA key of another CA", in: Material{CACert: good.CACert, CAKey: other.CAKey, Bundle: good.Bundle, TLSCert: good.TLSCert, TLSKey: good.TLSKey}, req: req, want: NewCA},
		{name: "serving signed by another CA", in: Material{CACert: good.CACert, CAKey: good.CAKey, Bundle: good.Bundle, TLSCert: other.TLSCert, TLSKey: other.TLSKey}, req: req, want: NewServing},
		{name: "serving key mismatch", in: Material{CACert: good.CACert, CAKey: good.CAKey, Bundle: good.Bundle, TLSCert: good.TLSCert, TLSKey: other.TLSKey}, req: req, want: NewServing},
		{name: "other DNS names", in: good, req: Request{CAName: "test-ca", DNSNames: ServiceDNSNames("x", "y"), CAValidity: req.CAValidity, ServingValidity: req.ServingValidity}, want: NewServing},
		{name: "valid", in: good, req: req, want: Unchanged},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out, ch := mustEnsure(t, tc.in, tc.req, t0.Add(time.Hour))
			if ch != tc.want {
				t.Fatalf("change %q, want %q", ch, tc.want)
			}
			if ch == NewServing && string(out.CACert) != string(tc.in.CACert) {
				t.Fatal("a new serving certificate must keep the CA")
			}
			pool := x509.NewCertPool()
			pool.AppendCertsFromPEM(out.Bundle)
			leaf, err := parseCert(out.TLSCert)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, DNSName: tc.req.DNSNames[0], CurrentTime: t0.Add(time.Hour)}); err != nil {
				t.Fatalf("result not trusted: %v", err)
			}
		})
	}
}

func TestEnsureNeedsNames(t *testing.T) {
	if _, _, err := Ensure(Material{}, Request{CAName: "x"}, t0, rand.Reader); err == nil {
		t.Fatal("Ensure without DNS names must fail")
	}
}

func TestNextCheck(t *testing.T) {
	m, _ := mustEnsure(t, Material{}, req, t0)
	// Serving valid to 300h, renewed at a third left: 200h; CA renewal at
	// 800h.
	if got, want := NextCheck(m, req, t0), t0.Add(200*time.Hour); !got.Equal(want) {
		t.Fatalf("NextCheck = %s, want %s", got, want)
	}
	if got := NextCheck(Material{}, req, t0); !got.Equal(t0) {
		t.Fatalf("NextCheck of nothing = %s, want now", got)
	}
	// Ensure at NextCheck renews, just before it does not.
	next := NextCheck(m, req, t0)
	if _, ch := mustEnsure(t, m, req, next.Add(-time.Minute)); ch != Unchanged {
		t.Fatalf("before NextCheck: %q", ch)
	}
	if _, ch := mustEnsure(t, m, req, next.Add(time.Minute)); ch != RenewServing {
		t.Fatalf("after NextCheck: %q", ch)
	}
}
