package kube

import (
	"errors"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	networkv1alpha2 "github.com/openelb/openelb-operator/api/network/v1alpha2"
	"github.com/openelb/openelb-operator/internal/ipam"
)

// FuzzServiceAnnotations feeds arbitrary values to every annotation and
// field the controller parses: parsing never panics, errors always wrap
// ipam.ErrInvalidAnnotation, and accepted requests are well formed. Seed
// corpus: testdata/fuzz/FuzzServiceAnnotations.
func FuzzServiceAnnotations(f *testing.F) {
	f.Add("eip-pool", "203.0.113.5", "203.0.113.5,2001:db8::5", "203.0.113.6", "key")
	f.Add("a,b", "", "", "", "")
	f.Add("a,,b", "::ffff:1.2.3.4", "1.2.3.4,1.2.3.5", "x", " ")
	f.Fuzz(func(t *testing.T, eip, ip, ips, lbIP, key string) {
		s := &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Name: "s", Namespace: "n", Annotations: map[string]string{
				networkv1alpha2.AnnotationEip:          eip,
				networkv1alpha2.AnnotationRequestedIP:  ip,
				networkv1alpha2.AnnotationRequestedIPs: ips,
				networkv1alpha2.AnnotationSharedIP:     key,
			}},
			Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, LoadBalancerIP: lbIP},
		}
		req, err := ServiceRequest(s, nil)
		if err != nil {
			if !errors.Is(err, ipam.ErrInvalidAnnotation) {
				t.Fatalf("error %v does not wrap ErrInvalidAnnotation", err)
			}
			return
		}
		if len(req.Eips) > 2 || len(req.Addrs) > 2 {
			t.Fatalf("request %+v", req)
		}
		for _, a := range req.Addrs {
			if !a.IsValid() || a.Zone() != "" || a.Is4In6() {
				t.Fatalf("accepted address %v", a)
			}
		}
	})
}
