// Package operatorcert keeps the serving certificate of the operator's own
// webhook server (the CRD conversion webhook /convert) on installs without
// OLM: it stores the CA and serving pair in a Secret shared by every
// operator replica, writes the pair into the webhook server's certificate
// directory (controller-runtime reloads it on change), and points the
// conversion of the network.kubesphere.io CRDs at the operator's Service
// with the CA bundle. Under OLM none of this runs: OLM mounts its own
// certificate and injects the CRDs' CA bundle.
package operatorcert

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/openelb/openelb-operator/internal/certs"
	"github.com/openelb/openelb-operator/internal/conversion"
)

// Defaults of the contract (docs/design/0003).
const (
	DefaultSecretName  = "openelb-operator-webhook-cert"
	DefaultServiceName = "openelb-operator-webhook"
	FieldOwner         = "openelb-operator"
)

// ConvertedCRDs are the CRDs whose conversion the operator serves.
var ConvertedCRDs = []string{
	"eips.network.kubesphere.io",
	"bgpconfs.network.kubesphere.io",
	"bgppeers.network.kubesphere.io",
}

// Keeper keeps the certificate, its files and the CRDs' conversion
// configuration current. It runs on every replica (the webhook server runs
// on every replica too), not only on the leader.
type Keeper struct {
	// Client must read uncached: the Secret is shared between replicas
	// and the CRDs are not in the manager's cache.
	Client      client.Client
	Namespace   string
	SecretName  string
	ServiceName string
	CertDir     string
	CRDs        []string
	// Interval bounds the time between two checks (default 1 hour).
	Interval time.Duration
	// Request defaults to a CA and serving certificate for the Service.
	Request *certs.Request
	Rand    io.Reader
	Now     func() time.Time
}

func (k *Keeper) request() certs.Request {
	if k.Request != nil {
		return *k.Request
	}
	return certs.Request{CAName: "openelb-operator-ca", DNSNames: certs.ServiceDNSNames(k.serviceName(), k.Namespace)}
}

func (k *Keeper) serviceName() string {
	if k.ServiceName != "" {
		return k.ServiceName
	}
	return DefaultServiceName
}

func (k *Keeper) secretName() string {
	if k.SecretName != "" {
		return k.SecretName
	}
	return DefaultSecretName
}

func (k *Keeper) now() time.Time {
	if k.Now != nil {
		return k.Now()
	}
	return time.Now()
}

// Sync makes the Secret, the files and the CRDs current and returns when
// to look again.
func (k *Keeper) Sync(ctx context.Context) (time.Time, error) {
	m, err := k.syncSecret(ctx)
	if err != nil {
		return time.Time{}, err
	}
	if err := k.writeFiles(m); err != nil {
		return time.Time{}, err
	}
	crds := k.CRDs
	if crds == nil {
		crds = ConvertedCRDs
	}
	for _, name := range crds {
		if err := k.patchCRD(ctx, name, m.Bundle); err != nil {
			return time.Time{}, err
		}
	}
	return certs.NextCheck(m, k.request(), k.now()), nil
}

// syncSecret reads the Secret, renews the material when due and writes it
// back; a concurrent writer (another replica) wins and its material is
// used.
func (k *Keeper) syncSecret(ctx context.Context) (certs.Material, error) {
	rnd := k.Rand
	if rnd == nil {
		rnd = rand.Reader
	}
	key := types.NamespacedName{Namespace: k.Namespace, Name: k.secretName()}
	for attempt := 0; attempt < 5; attempt++ {
		s := &corev1.Secret{}
		err := k.Client.Get(ctx, key, s)
		if err != nil && !apierrors.IsNotFound(err) {
			return certs.Material{}, fmt.Errorf("read %s: %w", key, err)
		}
		exists := err == nil
		m, change, err := certs.Ensure(certs.FromSecretData(s.Data), k.request(), k.now(), rnd)
		if err != nil {
			return certs.Material{}, fmt.Errorf("operator webhook certificate: %w", err)
		}
		if change == certs.Unchanged {
			return m, nil
		}
		s.Data = m.SecretData()
		s.Type = corev1.SecretTypeTLS
		if exists {
			err = k.Client.Update(ctx, s, client.FieldOwner(FieldOwner))
		} else {
			s.ObjectMeta = metav1.ObjectMeta{Namespace: key.Namespace, Name: key.Name, Labels: map[string]string{
				"app.kubernetes.io/name": "openelb-operator", "app.kubernetes.io/component": "operator",
			}}
			err = k.Client.Create(ctx, s, client.FieldOwner(FieldOwner))
		}
		if apierrors.IsConflict(err) || apierrors.IsAlreadyExists(err) {
			continue // another replica wrote it: use theirs
		}
		if err != nil {
			return certs.Material{}, fmt.Errorf("write %s: %w", key, err)
		}
		logf.FromContext(ctx).Info("Renewed the operator webhook certificate", "change", string(change))
		return m, nil
	}
	return certs.Material{}, fmt.Errorf("write %s: conflicts on every attempt", key)
}

// writeFiles writes tls.crt and tls.key into the cert dir when they
// differ, each atomically (rename), the key first so that a reader that
// sees the new certificate finds its key.
func (k *Keeper) writeFiles(m certs.Material) error {
	if err := os.MkdirAll(k.CertDir, 0o700); err != nil {
		return fmt.Errorf("create %s: %w", k.CertDir, err)
	}
	for _, f := range []struct {
		name string
		data []byte
	}{{certs.TLSKey, m.TLSKey}, {certs.TLSCert, m.TLSCert}} {
		path := filepath.Join(k.CertDir, f.name)
		if cur, err := os.ReadFile(path); err == nil && bytes.Equal(cur, f.data) {
			continue
		}
		tmp, err := os.CreateTemp(k.CertDir, "."+f.name+"-*")
		if err != nil {
			return fmt.Errorf("write %s: %w", path, err)
		}
		_, werr := tmp.Write(f.data)
		cerr := tmp.Close()
		if werr != nil || cerr != nil {
			_ = os.Remove(tmp.Name())
			return fmt.Errorf("write %s: %w", path, errors.Join(werr, cerr))
		}
		if err := os.Rename(tmp.Name(), path); err != nil {
			_ = os.Remove(tmp.Name())
			return fmt.Errorf("write %s: %w", path, err)
		}
	}
	return nil
}

// Conversion returns the conversion the CRDs must have: webhook strategy,
// the operator's Service, the CA bundle.
func (k *Keeper) Conversion(bundle []byte) *apiextensionsv1.CustomResourceConversion {
	path := conversion.Path
	port := int32(443)
	return &apiextensionsv1.CustomResourceConversion{
		Strategy: apiextensionsv1.WebhookConverter,
		Webhook: &apiextensionsv1.WebhookConversion{
			ClientConfig: &apiextensionsv1.WebhookClientConfig{
				Service:  &apiextensionsv1.ServiceReference{Namespace: k.Namespace, Name: k.serviceName(), Path: &path, Port: &port},
				CABundle: bundle,
			},
			ConversionReviewVersions: []string{"v1"},
		},
	}
}

// patchCRD points one CRD's conversion at the operator when it does not
// already.
func (k *Keeper) patchCRD(ctx context.Context, name string, bundle []byte) error {
	crd := &apiextensionsv1.CustomResourceDefinition{}
	if err := k.Client.Get(ctx, types.NamespacedName{Name: name}, crd); err != nil {
		return fmt.Errorf("read CRD %s: %w", name, err)
	}
	want := k.Conversion(bundle)
	if equality.Semantic.DeepEqual(crd.Spec.Conversion, want) {
		return nil
	}
	orig := crd.DeepCopy()
	crd.Spec.Conversion = want
	if err := k.Client.Patch(ctx, crd, client.MergeFrom(orig), client.FieldOwner(FieldOwner)); err != nil {
		return fmt.Errorf("set the conversion webhook of CRD %s: %w", name, err)
	}
	logf.FromContext(ctx).Info("Pointed the CRD's conversion at the operator", "crd", name)
	return nil
}

// Start re-syncs until ctx ends: at the certificate's next check time, at
// most Interval apart, sooner after an error.
func (k *Keeper) Start(ctx context.Context) error {
	interval := k.Interval
	if interval <= 0 {
		interval = time.Hour
	}
	log := logf.FromContext(ctx).WithName("operator-webhook-cert")
	for {
		wait := interval
		next, err := k.Sync(ctx)
		if err != nil {
			log.Error(err, "Cannot keep the operator webhook certificate")
			wait = 10 * time.Second
		} else if d := next.Sub(k.now()); d < wait {
			wait = max(d, time.Second)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
	}
}

// NeedLeaderElection is false: every replica serves webhooks and needs the
// files.
func (k *Keeper) NeedLeaderElection() bool { return false }
