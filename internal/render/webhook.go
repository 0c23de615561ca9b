package render

import (
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
)

// Webhook names and paths served by the controller (0003).
const (
	EipWebhookName     = "validate.eip.network.kubesphere.io"
	EipWebhookPath     = "/validate-network-kubesphere-io-v1alpha2-eip"
	ServiceWebhookName = "validate.service.openelb.kubesphere.io"
	ServiceWebhookPath = "/validate-v1-service"
)

func webhookConfiguration(ns string, caBundle []byte) *admissionregistrationv1.ValidatingWebhookConfiguration {
	client := func(path string) admissionregistrationv1.WebhookClientConfig {
		return admissionregistrationv1.WebhookClientConfig{
			Service: &admissionregistrationv1.ServiceReference{
				Namespace: ns, Name: ControllerName, Path: ptr(path), Port: ptr[int32](WebhookServicePort),
			},
			CABundle: caBundle,
		}
	}
	none := admissionregistrationv1.SideEffectClassNone
	// The Eip webhook records admitted ranges in a ConfigMap (race-free
	// overlap checks, 0003) and skips that write on dry-run.
	noneOnDryRun := admissionregistrationv1.SideEffectClassNoneOnDryRun
	return &admissionregistrationv1.ValidatingWebhookConfiguration{
		TypeMeta:   typeMeta("admissionregistration.k8s.io/v1", "ValidatingWebhookConfiguration"),
		ObjectMeta: objectMeta(WebhookConfigName, "", ComponentController),
		Webhooks: []admissionregistrationv1.ValidatingWebhook{
			{
				Name:                    EipWebhookName,
				ClientConfig:            client(EipWebhookPath),
				AdmissionReviewVersions: []string{"v1"},
				Rules: []admissionregistrationv1.RuleWithOperations{{
					Operations: []admissionregistrationv1.OperationType{
						admissionregistrationv1.Create, admissionregistrationv1.Update, admissionregistrationv1.Delete,
					},
					Rule: admissionregistrationv1.Rule{
						APIGroups: []string{networkGroup}, APIVersions: []string{"v1alpha2"}, Resources: []string{"eips"},
						Scope: ptr(admissionregistrationv1.ClusterScope),
					},
				}},
				MatchPolicy:    ptr(admissionregistrationv1.Equivalent),
				FailurePolicy:  ptr(admissionregistrationv1.Fail),
				SideEffects:    &noneOnDryRun,
				TimeoutSeconds: ptr[int32](10),
			},
			{
				Name:                    ServiceWebhookName,
				ClientConfig:            client(ServiceWebhookPath),
				AdmissionReviewVersions: []string{"v1"},
				Rules: []admissionregistrationv1.RuleWithOperations{{
					Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create, admissionregistrationv1.Update},
					Rule: admissionregistrationv1.Rule{
						APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"services"},
						Scope: ptr(admissionregistrationv1.NamespacedScope),
					},
				}},
				MatchConditions: []admissionregistrationv1.MatchCondition{{
					Name: "load-balancer-only", Expression: "object.spec.type == 'LoadBalancer'",
				}},
				MatchPolicy:    ptr(admissionregistrationv1.Equivalent),
				FailurePolicy:  ptr(admissionregistrationv1.Ignore),
				SideEffects:    &none,
				TimeoutSeconds: ptr[int32](5),
			},
		},
	}
}
