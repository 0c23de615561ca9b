package render

import (
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	operatorv1alpha1 "github.com/openelb/openelb-operator/api/operator/v1alpha1"
	"github.com/openelb/openelb-operator/internal/certs"
)

// DefaultControllerReplicas is used when spec.controller.replicas is unset.
const DefaultControllerReplicas int32 = 2

// ControllerReplicas returns the controller's replica count.
func ControllerReplicas(elb *operatorv1alpha1.OpenELB) int32 {
	if r := elb.Spec.Controller.Replicas; r != nil && *r > 0 {
		return *r
	}
	return DefaultControllerReplicas
}

// EnabledProtocols returns the --enabled-protocols value: the speaker modes
// the resource enables, in a fixed order.
func EnabledProtocols(elb *operatorv1alpha1.OpenELB) string {
	l2, bgp, vip := Modes(elb)
	var p []string
	if bgp {
		p = append(p, "bgp")
	}
	if l2 {
		p = append(p, "layer2")
	}
	if vip {
		p = append(p, "vip")
	}
	return strings.Join(p, ",")
}

func controllerObjects(elb *operatorv1alpha1.OpenELB, in Inputs) []Object {
	ns := in.Namespace
	return append([]Object{
		&corev1.ServiceAccount{TypeMeta: typeMeta("v1", "ServiceAccount"), ObjectMeta: objectMeta(ControllerName, ns, ComponentController)},
		controllerClusterRole(),
		clusterRoleBinding(ControllerName, ns, ComponentController),
		controllerRole(ns),
		roleBinding(ControllerName, ns, ComponentController),
		&corev1.Secret{
			TypeMeta:   typeMeta("v1", "Secret"),
			ObjectMeta: objectMeta(ControllerCertName, ns, ComponentController),
			Type:       corev1.SecretTypeTLS,
			Data:       in.ControllerCert,
		},
		&corev1.Service{
			TypeMeta:   typeMeta("v1", "Service"),
			ObjectMeta: objectMeta(ControllerName, ns, ComponentController),
			Spec: corev1.ServiceSpec{
				Selector: SelectorLabels(ComponentController),
				Ports: []corev1.ServicePort{{
					Name: "webhook", Port: WebhookServicePort, Protocol: corev1.ProtocolTCP,
					TargetPort: intstr.FromString("webhook"),
				}},
			},
		},
		&corev1.Service{
			TypeMeta:   typeMeta("v1", "Service"),
			ObjectMeta: objectMeta(ControllerMetricsName, ns, ComponentController),
			Spec: corev1.ServiceSpec{
				Selector: SelectorLabels(ComponentController),
				Ports: []corev1.ServicePort{{
					Name: "metrics", Port: ControllerMetricsPort, Protocol: corev1.ProtocolTCP,
					TargetPort: intstr.FromString("metrics"),
				}},
			},
		},
		webhookConfiguration(ns, in.CABundle),
		controllerDeployment(elb, in),
	}, controllerPDB(elb, ns)...)
}

// controllerPDB keeps all but one controller replica through voluntary
// disruptions (node drains) when there are several: IPAM and the
// admission webhooks stay served during a drain. With one replica there is
// none: it would block every drain of that node.
func controllerPDB(elb *operatorv1alpha1.OpenELB, ns string) []Object {
	if ControllerReplicas(elb) < 2 {
		return nil
	}
	one := intstr.FromInt32(1)
	return []Object{&policyv1.PodDisruptionBudget{
		TypeMeta:   typeMeta("policy/v1", "PodDisruptionBudget"),
		ObjectMeta: objectMeta(ControllerName, ns, ComponentController),
		Spec: policyv1.PodDisruptionBudgetSpec{
			MaxUnavailable: &one,
			Selector:       &metav1.LabelSelector{MatchLabels: SelectorLabels(ComponentController)},
		},
	}}
}

func controllerArgs(elb *operatorv1alpha1.OpenELB) []string {
	args := append([]string{"controller"}, logArgs(elb)...)
	if ControllerReplicas(elb) > 1 {
		args = append(args, "--leader-elect")
	}
	args = append(args,
		"--webhook-port=9443",
		"--webhook-cert-dir="+ControllerCertDir,
		"--metrics-bind-address=:50052",
		"--health-probe-bind-address=:8081",
	)
	class := elb.Spec.LoadBalancerClass
	if class == "" {
		class = operatorv1alpha1.DefaultLoadBalancerClass
	}
	args = append(args, "--load-balancer-class="+class)
	if elb.Spec.IPAM.NamespaceIsolation {
		args = append(args, "--namespace-isolation")
	}
	if elb.Spec.IPAM.AllocateClasslessServices {
		args = append(args, "--allocate-classless")
	}
	return append(args, "--enabled-protocols="+EnabledProtocols(elb))
}

// defaultControllerResources: no CPU limit (throttling delays IPAM, see
// MetalLB #729); memory bounded generously (10k Services ≈ 220 MiB for
// MetalLB's controller).
func defaultControllerResources() corev1.ResourceRequirements {
	return corev1.ResourceRequirements{
		Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("50m"), corev1.ResourceMemory: resource.MustParse("64Mi")},
		Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("1Gi")},
	}
}

func resourcesOr(r corev1.ResourceRequirements, def corev1.ResourceRequirements) corev1.ResourceRequirements {
	if len(r.Requests) > 0 || len(r.Limits) > 0 || len(r.Claims) > 0 {
		return r
	}
	return def
}

var defaultNodeSelector = map[string]string{corev1.LabelOSStable: "linux"}

func controllerDeployment(elb *operatorv1alpha1.OpenELB, in Inputs) *appsv1.Deployment {
	spec := elb.Spec.Controller
	replicas := ControllerReplicas(elb)
	// One replica runs without leader election, so a rolling update must
	// never run two: Recreate. More replicas elect a leader and roll.
	strategy := appsv1.DeploymentStrategy{Type: appsv1.RecreateDeploymentStrategyType}
	if replicas > 1 {
		strategy = appsv1.DeploymentStrategy{
			Type: appsv1.RollingUpdateDeploymentStrategyType,
			RollingUpdate: &appsv1.RollingUpdateDeployment{
				MaxUnavailable: ptr(intstr.FromInt32(1)),
				MaxSurge:       ptr(intstr.FromInt32(1)),
			},
		}
	}
	podLabels := commonLabels(ComponentController)
	return &appsv1.Deployment{
		TypeMeta:   typeMeta("apps/v1", "Deployment"),
		ObjectMeta: objectMeta(ControllerName, in.Namespace, ComponentController),
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr(replicas),
			Selector: &metav1.LabelSelector{MatchLabels: SelectorLabels(ComponentController)},
			Strategy: strategy,
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{
					Labels:      podLabels,
					Annotations: map[string]string{"kubectl.kubernetes.io/default-container": "controller"},
				},
				Spec: corev1.PodSpec{
					ServiceAccountName: ControllerName,
					SecurityContext: &corev1.PodSecurityContext{
						RunAsNonRoot:   ptr(true),
						SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
					},
					NodeSelector:      mapOrDefault(spec.NodeSelector, defaultNodeSelector),
					Tolerations:       spec.Tolerations,
					PriorityClassName: spec.PriorityClassName,
					ImagePullSecrets:  elb.Spec.ImagePullSecrets,
					Affinity: &corev1.Affinity{PodAntiAffinity: &corev1.PodAntiAffinity{
						PreferredDuringSchedulingIgnoredDuringExecution: []corev1.WeightedPodAffinityTerm{{
							Weight: 100,
							PodAffinityTerm: corev1.PodAffinityTerm{
								LabelSelector: &metav1.LabelSelector{MatchLabels: SelectorLabels(ComponentController)},
								TopologyKey:   corev1.LabelHostname,
							},
						}},
					}},
					TerminationGracePeriodSeconds: ptr[int64](10),
					Containers: []corev1.Container{{
						Name:            "controller",
						Image:           controllerImage(elb, in.Settings),
						ImagePullPolicy: elb.Spec.Images.PullPolicy,
						Args:            controllerArgs(elb),
						Env:             env(in),
						Ports: []corev1.ContainerPort{
							{Name: "webhook", ContainerPort: ControllerWebhookPort, Protocol: corev1.ProtocolTCP},
							{Name: "metrics", ContainerPort: ControllerMetricsPort, Protocol: corev1.ProtocolTCP},
							{Name: "probes", ContainerPort: ControllerProbePort, Protocol: corev1.ProtocolTCP},
						},
						LivenessProbe: &corev1.Probe{
							ProbeHandler:     corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/healthz", Port: intstr.FromString("probes")}},
							PeriodSeconds:    10,
							FailureThreshold: 3,
						},
						ReadinessProbe: &corev1.Probe{
							ProbeHandler:  corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/readyz", Port: intstr.FromString("probes")}},
							PeriodSeconds: 5,
						},
						Resources: resourcesOr(spec.Resources, defaultControllerResources()),
						SecurityContext: &corev1.SecurityContext{
							AllowPrivilegeEscalation: ptr(false),
							ReadOnlyRootFilesystem:   ptr(true),
							Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
						},
						VolumeMounts: []corev1.VolumeMount{{Name: "cert", MountPath: ControllerCertDir, ReadOnly: true}},
					}},
					// Only the serving pair: the CA key in the same Secret
					// stays out of the pod.
					Volumes: []corev1.Volume{{
						Name: "cert",
						VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{
							SecretName: ControllerCertName,
							Items: []corev1.KeyToPath{
								{Key: certs.TLSCert, Path: certs.TLSCert},
								{Key: certs.TLSKey, Path: certs.TLSKey},
							},
						}},
					}},
				},
			},
		},
	}
}
