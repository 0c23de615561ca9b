// Package certs generates and rotates a private CA and the serving
// certificate it signs, for the webhooks the operator runs or renders. It is
// pure: time and randomness are inputs, nothing touches the API server or the
// file system.
//
// A Material holds the current CA (certificate and key), the trust bundle
// clients use (the current CA first, then earlier CAs that have not expired,
// so a CA rotation never breaks a client that still sees the old serving
// certificate) and the serving key pair. Ensure returns the material to use
// from the material found, renewing what is missing, invalid, for other
// names or close to expiry.
package certs

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"slices"
	"time"
)

// Secret keys of a certificate Secret. TLSCert, TLSKey and CACert follow the
// kubernetes.io/tls convention; CAKey keeps the CA's key so the serving
// certificate can be renewed without changing the trust bundle.
const (
	TLSCert = "tls.crt"
	TLSKey  = "tls.key"
	CACert  = "ca.crt"
	CAKey   = "ca.key"
)

// Default lifetimes: a CA lives ten years and is replaced when a fifth of
// its life is left; a serving certificate lives one year and is replaced
// when a third is left (about four months before expiry).
const (
	DefaultCAValidity      = 10 * 365 * 24 * time.Hour
	DefaultServingValidity = 365 * 24 * time.Hour
)

// Request describes the certificate a webhook needs.
type Request struct {
	// CommonName of the CA, e.g. "openelb-controller-ca".
	CAName string
	// DNSNames of the serving certificate; the first is its common name.
	DNSNames []string
	// CAValidity and ServingValidity default to DefaultCAValidity and
	// DefaultServingValidity.
	CAValidity      time.Duration
	ServingValidity time.Duration
}

// ServiceDNSNames returns the names a Service is reached by from the API
// server: name.namespace.svc first (the name the API server uses).
func ServiceDNSNames(name, namespace string) []string {
	return []string{
		name + "." + namespace + ".svc",
		name + "." + namespace + ".svc.cluster.local",
		name + "." + namespace,
		name,
	}
}

func (r Request) caValidity() time.Duration {
	if r.CAValidity > 0 {
		return r.CAValidity
	}
	return DefaultCAValidity
}

func (r Request) servingValidity() time.Duration {
	if r.ServingValidity > 0 {
		return r.ServingValidity
	}
	return DefaultServingValidity
}

// Material is a CA, its trust bundle and a serving key pair, PEM-encoded.
type Material struct {
	CACert  []byte // the current CA certificate
	CAKey   []byte
	Bundle  []byte // the current CA first, then earlier unexpired CAs
	TLSCert []byte
	TLSKey  []byte
}

// FromSecretData reads material from the data of a certificate Secret. The
// current CA is the first certificate of ca.crt.
func FromSecretData(data map[string][]byte) Material {
	m := Material{CAKey: data[CAKey], Bundle: data[CACert], TLSCert: data[TLSCert], TLSKey: data[TLSKey]}
	if block, _ := pem.Decode(m.Bundle); block != nil {
		m.CACert = pem.EncodeToMemory(block)
	}
	return m
}

// SecretData returns the data of a certificate Secret holding the material.
func (m Material) SecretData() map[string][]byte {
	return map[string][]byte{TLSCert: m.TLSCert, TLSKey: m.TLSKey, CACert: m.Bundle, CAKey: m.CAKey}
}

// Change says what Ensure renewed.
type Change string

// Changes reported by Ensure.
const (
	Unchanged    Change = ""
	NewCA        Change = "NewCA"        // no usable CA: new CA and serving certificate
	RotatedCA    Change = "RotatedCA"    // CA close to expiry: new CA, the old one stays trusted
	NewServing   Change = "NewServing"   // serving certificate missing, invalid or for other names
	RenewServing Change = "RenewServing" // serving certificate close to expiry
	PrunedBundle Change = "PrunedBundle" // an expired CA left the trust bundle
)

// Ensure returns the material to use given the material found: unchanged
// when it is valid for the request at now, else renewed. rnd is the source
// of randomness (crypto/rand.Reader outside tests).
func Ensure(cur Material, req Request, now time.Time, rnd io.Reader) (Material, Change, error) {
	if len(req.DNSNames) == 0 {
		return cur, Unchanged, errors.New("ensure certificate: no DNS names requested")
	}
	ca, caKey, err := parseKeyPair(cur.CACert, cur.CAKey)
	if err != nil || !ca.IsCA || now.After(ca.NotAfter) || now.Before(ca.NotBefore) {
		return fresh(req, now, rnd, nil, NewCA)
	}
	if remaining(ca, now) < req.caValidity()/5 {
		return fresh(req, now, rnd, cur.Bundle, RotatedCA)
	}
	next := cur
	change := Unchanged
	if pruned := pruneBundle(cur.CACert, cur.Bundle, now); !bytes.Equal(pruned, cur.Bundle) {
		next.Bundle = pruned
		change = PrunedBundle
	}
	serving, _, err := parseKeyPair(cur.TLSCert, cur.TLSKey)
	switch {
	case err != nil || serving.CheckSignatureFrom(ca) != nil || !slices.Equal(serving.DNSNames, req.DNSNames) ||
		now.Before(serving.NotBefore) || now.After(serving.NotAfter):
		change = NewServing
	case remaining(serving, now) < req.servingValidity()/3:
		change = RenewServing
	default:
		return next, change, nil
	}
	next.TLSCert, next.TLSKey, err = issueServing(ca, caKey, req, now, rnd)
	if err != nil {
		return cur, Unchanged, err
	}
	return next, change, nil
}

// NextCheck returns when the material must be looked at again: the earliest
// of the serving certificate's and the CA's renewal times and the expiry of
// an old CA in the bundle. Material that does not parse is due at once.
func NextCheck(m Material, req Request, now time.Time) time.Time {
	ca, err := parseCert(m.CACert)
	if err != nil {
		return now
	}
	serving, err := parseCert(m.TLSCert)
	if err != nil {
		return now
	}
	next := ca.NotAfter.Add(-req.caValidity() / 5)
	if t := serving.NotAfter.Add(-req.servingValidity() / 3); t.Before(next) {
		next = t
	}
	for _, c := range bundleCerts(m.Bundle) {
		if c.NotAfter.Before(next) {
			next = c.NotAfter.Add(time.Second)
		}
	}
	return next
}

func remaining(c *x509.Certificate, now time.Time) time.Duration { return c.NotAfter.Sub(now) }

// fresh makes a new CA and serving certificate; the bundle keeps the
// unexpired CAs of oldBundle after the new CA.
func fresh(req Request, now time.Time, rnd io.Reader, oldBundle []byte, change Change) (Material, Change, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rnd)
	if err != nil {
		return Material{}, Unchanged, fmt.Errorf("generate CA key: %w", err)
	}
	serial, err := serialNumber(rnd)
	if err != nil {
		return Material{}, Unchanged, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: req.CAName},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(req.caValidity()),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rnd, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return Material{}, Unchanged, fmt.Errorf("create CA certificate: %w", err)
	}
	ca, err := x509.ParseCertificate(der)
	if err != nil {
		return Material{}, Unchanged, fmt.Errorf("parse CA certificate: %w", err)
	}
	keyPEM, err := encodeKey(key)
	if err != nil {
		return Material{}, Unchanged, err
	}
	m := Material{CACert: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), CAKey: keyPEM}
	m.Bundle = append(slices.Clone(m.CACert), pruneBundle(nil, oldBundle, now)...)
	m.TLSCert, m.TLSKey, err = issueServing(ca, key, req, now, rnd)
	if err != nil {
		return Material{}, Unchanged, err
	}
	return m, change, nil
}

func issueServing(ca *x509.Certificate, caKey *ecdsa.PrivateKey, req Request, now time.Time, rnd io.Reader) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rnd)
	if err != nil {
		return nil, nil, fmt.Errorf("generate serving key: %w", err)
	}
	serial, err := serialNumber(rnd)
	if err != nil {
		return nil, nil, err
	}
	notAfter := now.Add(req.servingValidity())
	if notAfter.After(ca.NotAfter) {
		notAfter = ca.NotAfter
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: req.DNSNames[0]},
		DNSNames:     slices.Clone(req.DNSNames),
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rnd, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return nil, nil, fmt.Errorf("create serving certificate: %w", err)
	}
	keyPEM, err = encodeKey(key)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), keyPEM, nil
}

func serialNumber(rnd io.Reader) (*big.Int, error) {
	buf := make([]byte, 16)
	if _, err := io.ReadFull(rnd, buf); err != nil {
		return nil, fmt.Errorf("serial number: %w", err)
	}
	buf[0] &= 0x7f // positive
	return new(big.Int).SetBytes(buf), nil
}

func encodeKey(key *ecdsa.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("encode key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}), nil
}

func parseCert(certPEM []byte) (*x509.Certificate, error) {
	block, _ := pem.Decode(certPEM)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, errors.New("no PEM certificate")
	}
	return x509.ParseCertificate(block.Bytes)
}

// parseKeyPair parses a certificate and its ECDSA key and checks that they
// belong together.
func parseKeyPair(certPEM, keyPEM []byte) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	cert, err := parseCert(certPEM)
	if err != nil {
		return nil, nil, err
	}
	block, _ := pem.Decode(keyPEM)
	if block == nil {
		return nil, nil, errors.New("no PEM key")
	}
	key, err := x509.ParseECPrivateKey(block.Bytes)
	if err != nil {
		return nil, nil, err
	}
	pub, ok := cert.PublicKey.(*ecdsa.PublicKey)
	if !ok || !pub.Equal(&key.PublicKey) {
		return nil, nil, errors.New("key does not match certificate")
	}
	return cert, key, nil
}

func bundleCerts(bundle []byte) []*x509.Certificate {
	var out []*x509.Certificate
	for rest := bundle; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			return out
		}
		if c, err := x509.ParseCertificate(block.Bytes); err == nil {
			out = append(out, c)
		}
	}
}

// pruneBundle returns the bundle with current first and without expired or
// unparsable certificates (current may be nil: then only the pruning).
func pruneBundle(current, bundle []byte, now time.Time) []byte {
	out := slices.Clone(current)
	for _, c := range bundleCerts(bundle) {
		block := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
		if now.After(c.NotAfter) || bytes.Equal(block, current) {
			continue
		}
		out = append(out, block...)
	}
	return out
}
