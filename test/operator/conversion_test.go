package operator_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/uuid"
	ctrl "sigs.k8s.io/controller-runtime"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/controller-runtime/pkg/webhook"

	"github.com/openelb/openelb-operator/internal/certs"
	"github.com/openelb/openelb-operator/internal/certs/operatorcert"
	"github.com/openelb/openelb-operator/internal/conversion"
)

// TestConversionWebhookCertificate: without OLM the operator makes its own
// certificate, points the three network CRDs at its Service with the CA
// bundle, serves /convert with that certificate, and renews it.
func TestConversionWebhookCertificate(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dir := t.TempDir()
	keeper := &operatorcert.Keeper{Client: k8s, Namespace: ns, CertDir: dir}
	if _, err := keeper.Sync(ctx); err != nil {
		t.Fatalf("Sync: %v", err)
	}
	secret := &corev1.Secret{}
	if err := k8s.Get(ctx, types.NamespacedName{Namespace: ns, Name: "openelb-operator-webhook-cert"}, secret); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = k8s.Delete(context.Background(), secret) })
	for _, f := range []string{certs.TLSCert, certs.TLSKey} {
		data, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil || !bytes.Equal(data, secret.Data[f]) {
			t.Fatalf("%s in the cert dir differs from the Secret (%v)", f, err)
		}
	}
	var bundle []byte
	for _, name := range operatorcert.ConvertedCRDs {
		crd := &apiextensionsv1.CustomResourceDefinition{}
		if err := k8s.Get(ctx, types.NamespacedName{Name: name}, crd); err != nil {
			t.Fatal(err)
		}
		conv := crd.Spec.Conversion
		if conv.Strategy != apiextensionsv1.WebhookConverter || conv.Webhook == nil || conv.Webhook.ClientConfig.Service == nil {
			t.Fatalf("CRD %s conversion %+v", name, conv)
		}
		svc := conv.Webhook.ClientConfig.Service
		if svc.Namespace != ns || svc.Name != "openelb-operator-webhook" || *svc.Path != "/convert" || *svc.Port != 443 {
			t.Errorf("CRD %s conversion service %+v", name, svc)
		}
		if !bytes.Equal(conv.Webhook.ClientConfig.CABundle, secret.Data[certs.CACert]) {
			t.Errorf("CRD %s caBundle is not the Secret's ca.crt", name)
		}
		bundle = conv.Webhook.ClientConfig.CABundle
	}

	// Serve /convert with the files, as the operator role does.
	port := freePort(t)
	mgr, err := ctrl.NewManager(env.Config, ctrl.Options{
		Scheme:        env.Scheme,
		Metrics:       metricsserver.Options{BindAddress: "0"},
		WebhookServer: webhook.NewServer(webhook.Options{Host: "127.0.0.1", Port: port, CertDir: dir}),
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := conversion.Setup(mgr); err != nil {
		t.Fatal(err)
	}
	go func() { _ = mgr.Start(ctx) }()

	// The API server's view: trust the CRD's caBundle, verify the
	// Service's DNS name.
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(bundle)
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{
		RootCAs: pool, ServerName: "openelb-operator-webhook." + ns + ".svc", MinVersion: tls.VersionTLS12,
	}}}
	var converted map[string]any
	eventually(t, wait, "conversion over TLS", func() string {
		out, err := convertBgpConf(client, port)
		if err != nil {
			return err.Error()
		}
		converted = out
		return ""
	})
	spec, _ := converted["spec"].(map[string]any)
	if spec["routerId"] != "198.51.100.1" || spec["listenPort"] != float64(17900) {
		t.Errorf("converted BgpConf spec %v", spec)
	}

	// A second sync changes nothing.
	rv := secret.ResourceVersion
	if _, err := keeper.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if err := k8s.Get(ctx, types.NamespacedName{Namespace: ns, Name: secret.Name}, secret); err != nil || secret.ResourceVersion != rv {
		t.Fatalf("an idle sync rewrote the Secret (%v)", err)
	}

	// Ten months later the serving certificate is renewed with the same
	// CA; the server picks the new files up without a restart.
	later := &operatorcert.Keeper{Client: k8s, Namespace: ns, CertDir: dir, Now: func() time.Time { return time.Now().Add(300 * 24 * time.Hour) }}
	if _, err := later.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if err := k8s.Get(ctx, types.NamespacedName{Namespace: ns, Name: secret.Name}, secret); err != nil || secret.ResourceVersion == rv {
		t.Fatalf("the serving certificate was not renewed (%v)", err)
	}
	newLeaf, err := x509.ParseCertificate(pemBytes(t, secret.Data[certs.TLSCert]))
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "renewed certificate served", func() string {
		conn, err := tls.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port), &tls.Config{InsecureSkipVerify: true}) //nolint:gosec // compares the served certificate itself
		if err != nil {
			return err.Error()
		}
		defer conn.Close()
		if served := conn.ConnectionState().PeerCertificates[0]; served.SerialNumber.Cmp(newLeaf.SerialNumber) != 0 {
			return "still the old certificate"
		}
		return ""
	})
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// convertBgpConf asks the webhook to convert a v1alpha1 BgpConf to
// v1alpha2, as the API server would.
func convertBgpConf(c *http.Client, port int) (map[string]any, error) {
	review := map[string]any{
		"apiVersion": "apiextensions.k8s.io/v1",
		"kind":       "ConversionReview",
		"request": map[string]any{
			"uid":               string(uuid.NewUUID()),
			"desiredAPIVersion": "network.kubesphere.io/v1alpha2",
			"objects": []any{map[string]any{
				"apiVersion": "network.kubesphere.io/v1alpha1",
				"kind":       "BgpConf",
				"metadata":   map[string]any{"name": "default"},
				"spec":       map[string]any{"as": 64512, "routerID": "198.51.100.1", "port": 17900},
			}},
		},
	}
	body, _ := json.Marshal(review)
	resp, err := c.Post(fmt.Sprintf("https://127.0.0.1:%d/convert", port), "application/json", bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var out apiextensionsv1.ConversionReview
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return nil, err
	}
	if out.Response == nil || out.Response.Result.Status != "Success" || len(out.Response.ConvertedObjects) != 1 {
		return nil, fmt.Errorf("conversion failed: %+v", out.Response)
	}
	var obj map[string]any
	if err := json.Unmarshal(out.Response.ConvertedObjects[0].Raw, &obj); err != nil {
		return nil, err
	}
	if !strings.HasSuffix(fmt.Sprint(obj["apiVersion"]), "v1alpha2") {
		return nil, fmt.Errorf("converted to %v", obj["apiVersion"])
	}
	return obj, nil
}
