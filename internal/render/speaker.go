package render

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	operatorv1alpha1 "github.com/openelb/openelb-operator/api/operator/v1alpha1"
)

// Speaker defaults (0003 and the OpenELB CRD defaults).
const (
	DefaultLivenessPort        int32 = 7946
	DefaultSpeakerMetricsPort  int32 = 50053
	DefaultVIPAdvertIntervalMs int32 = 1000
)

// DefaultSpeakerTolerations let speakers run on control-plane nodes too
// when the resource sets no tolerations: every node can announce.
var DefaultSpeakerTolerations = []corev1.Toleration{
	{Key: "node-role.kubernetes.io/control-plane", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule},
	{Key: "node-role.kubernetes.io/master", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule},
}

// SpeakerMetricsPort returns the speakers' metrics and health port.
func SpeakerMetricsPort(elb *operatorv1alpha1.OpenELB) int32 {
	if p := elb.Spec.Speaker.MetricsPort; p > 0 {
		return p
	}
	return DefaultSpeakerMetricsPort
}

// SpeakerLivenessPort returns the speaker-to-speaker liveness port.
func SpeakerLivenessPort(elb *operatorv1alpha1.OpenELB) int32 {
	if p := elb.Spec.Speaker.LivenessPort; p > 0 {
		return p
	}
	return DefaultLivenessPort
}

// SpeakerNodeSelector returns the node selector of the speaker pods.
func SpeakerNodeSelector(elb *operatorv1alpha1.OpenELB) map[string]string {
	return mapOrDefault(elb.Spec.Speaker.NodeSelector, defaultNodeSelector)
}

// SpeakerTolerations returns the tolerations of the speaker pods.
func SpeakerTolerations(elb *operatorv1alpha1.OpenELB) []corev1.Toleration {
	return orDefault(elb.Spec.Speaker.Tolerations, DefaultSpeakerTolerations)
}

// SpeakerArgs returns the speaker's arguments: every mode switched on or
// off explicitly, and the settings of the enabled modes only.
func SpeakerArgs(elb *operatorv1alpha1.OpenELB) []string {
	s := elb.Spec.Speaker
	l2, bgp, vip := Modes(elb)
	args := append([]string{"speaker"}, logArgs(elb)...)
	args = append(args, "--enable-layer2="+strconv.FormatBool(l2))
	if l2 {
		if len(s.Layer2.Interfaces) > 0 {
			args = append(args, "--layer2-interfaces="+strings.Join(s.Layer2.Interfaces, ","))
		}
		if s.Layer2.GratuitousRefreshSeconds > 0 {
			args = append(args, "--gratuitous-refresh="+(time.Duration(s.Layer2.GratuitousRefreshSeconds)*time.Second).String())
		}
	}
	args = append(args, "--enable-bgp="+strconv.FormatBool(bgp))
	if bgp && s.BGP.ListenPort != nil {
		args = append(args, "--bgp-listen-port="+strconv.Itoa(int(*s.BGP.ListenPort)))
	}
	args = append(args, "--enable-keepalived-vip="+strconv.FormatBool(vip))
	if vip {
		if len(s.VIP.Interfaces) > 0 {
			args = append(args, "--vip-interfaces="+strings.Join(s.VIP.Interfaces, ","))
		}
		ms := s.VIP.AdvertIntervalMillis
		if ms <= 0 {
			ms = DefaultVIPAdvertIntervalMs
		}
		args = append(args, "--vip-advert-interval="+(time.Duration(ms)*time.Millisecond).String())
		if s.VIP.Multicast {
			args = append(args, "--vip-multicast")
		}
		// keepalived runs in the pod's keepalived container (0009).
		args = append(args, "--keepalived-sidecar")
	}
	return append(args,
		"--liveness-port="+strconv.Itoa(int(SpeakerLivenessPort(elb))),
		"--metrics-bind-address=:"+strconv.Itoa(int(SpeakerMetricsPort(elb))),
		"--run-dir="+SpeakerRunDir,
	)
}

// KeyHash is the pod template annotation value that rolls the speakers when
// their key changes (the key reaches them as an environment variable, read
// once at start).
func KeyHash(key []byte) string {
	sum := sha256.Sum256(key)
	return hex.EncodeToString(sum[:8])
}

// defaultSpeakerResources: no CPU limit (a throttled speaker answers ARP
// late, MetalLB #729).
func defaultSpeakerResources() corev1.ResourceRequirements {
	return corev1.ResourceRequirements{
		Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("50m"), corev1.ResourceMemory: resource.MustParse("64Mi")},
		Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("512Mi")},
	}
}

func speakerObjects(elb *operatorv1alpha1.OpenELB, in Inputs) []Object {
	ns := in.Namespace
	metricsPort := SpeakerMetricsPort(elb)
	objs := []Object{
		&corev1.ServiceAccount{TypeMeta: typeMeta("v1", "ServiceAccount"), ObjectMeta: objectMeta(SpeakerName, ns, ComponentSpeaker)},
		speakerClusterRole(),
		clusterRoleBinding(SpeakerName, ns, ComponentSpeaker),
	}
	if in.SecurityContextConstraints {
		objs = append(objs, speakerSCC(speakerDaemonSet(elb, in)))
	}
	return append(objs,
		speakerRole(ns, in.SecurityContextConstraints),
		roleBinding(SpeakerName, ns, ComponentSpeaker),
		&corev1.Secret{
			TypeMeta:   typeMeta("v1", "Secret"),
			ObjectMeta: objectMeta(SpeakerKeyName, ns, ComponentSpeaker),
			Type:       corev1.SecretTypeOpaque,
			Data:       map[string][]byte{SpeakerKeyKey: in.SpeakerKey},
		},
		&corev1.Service{
			TypeMeta:   typeMeta("v1", "Service"),
			ObjectMeta: objectMeta(SpeakerMetricsName, ns, ComponentSpeaker),
			Spec: corev1.ServiceSpec{
				ClusterIP: corev1.ClusterIPNone,
				Selector:  SelectorLabels(ComponentSpeaker),
				Ports: []corev1.ServicePort{{
					Name: "metrics", Port: metricsPort, Protocol: corev1.ProtocolTCP,
					TargetPort: intstr.FromString("metrics"),
				}},
			},
		},
		speakerDaemonSet(elb, in),
	)
}

func speakerDaemonSet(elb *operatorv1alpha1.OpenELB, in Inputs) *appsv1.DaemonSet {
	spec := elb.Spec.Speaker
	metricsPort := SpeakerMetricsPort(elb)
	probe := func(path string, period int32) *corev1.Probe {
		return &corev1.Probe{
			ProbeHandler:     corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: path, Port: intstr.FromString("metrics")}},
			PeriodSeconds:    period,
			FailureThreshold: 3,
		}
	}
	keyEnv := []corev1.EnvVar{
		{Name: "NODE_NAME", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "spec.nodeName"}}},
		{Name: SpeakerKeyEnv, ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
			LocalObjectReference: corev1.LocalObjectReference{Name: SpeakerKeyName}, Key: SpeakerKeyKey,
		}}},
	}
	emptyDir := func(name string) corev1.Volume {
		return corev1.Volume{Name: name, VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}
	}
	return &appsv1.DaemonSet{
		TypeMeta:   typeMeta("apps/v1", "DaemonSet"),
		ObjectMeta: objectMeta(SpeakerName, in.Namespace, ComponentSpeaker),
		Spec: appsv1.DaemonSetSpec{
			Selector: &metav1.LabelSelector{MatchLabels: SelectorLabels(ComponentSpeaker)},
			// One node at a time: a speaker hands its addresses over on
			// SIGTERM before the next one restarts.
			UpdateStrategy: appsv1.DaemonSetUpdateStrategy{
				Type:          appsv1.RollingUpdateDaemonSetStrategyType,
				RollingUpdate: &appsv1.RollingUpdateDaemonSet{MaxUnavailable: ptr(intstr.FromInt32(1))},
			},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{
					Labels: commonLabels(ComponentSpeaker),
					Annotations: map[string]string{
						"kubectl.kubernetes.io/default-container": "speaker",
						SpeakerKeyHashAnnotation:                  KeyHash(in.SpeakerKey),
					},
				},
				Spec: corev1.PodSpec{
					ServiceAccountName:            SpeakerName,
					HostNetwork:                   true,
					DNSPolicy:                     corev1.DNSClusterFirstWithHostNet,
					NodeSelector:                  SpeakerNodeSelector(elb),
					Tolerations:                   SpeakerTolerations(elb),
					PriorityClassName:             spec.PriorityClassName,
					ImagePullSecrets:              elb.Spec.ImagePullSecrets,
					TerminationGracePeriodSeconds: ptr[int64](10),
					SecurityContext: &corev1.PodSecurityContext{
						SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
					},
					Containers: append([]corev1.Container{{
						Name:            "speaker",
						Image:           speakerImage(elb, in.Settings),
						ImagePullPolicy: elb.Spec.Images.PullPolicy,
						Args:            SpeakerArgs(elb),
						Env:             env(in, keyEnv...),
						Ports: []corev1.ContainerPort{
							{Name: "metrics", ContainerPort: metricsPort, Protocol: corev1.ProtocolTCP},
							{Name: "liveness", ContainerPort: SpeakerLivenessPort(elb), Protocol: corev1.ProtocolUDP},
						},
						LivenessProbe:  probe("/healthz", 10),
						ReadinessProbe: probe("/readyz", 5),
						Resources:      resourcesOr(spec.Resources, defaultSpeakerResources()),
						SecurityContext: &corev1.SecurityContext{
							RunAsUser:                ptr[int64](0),
							RunAsNonRoot:             ptr(false),
							Privileged:               ptr(false),
							AllowPrivilegeEscalation: ptr(false),
							ReadOnlyRootFilesystem:   ptr(true),
							Capabilities: &corev1.Capabilities{
								Add:  []corev1.Capability{"NET_ADMIN", "NET_RAW", "NET_BIND_SERVICE"},
								Drop: []corev1.Capability{"ALL"},
							},
						},
						VolumeMounts: []corev1.VolumeMount{
							{Name: "run", MountPath: SpeakerRunDir},
							{Name: "tmp", MountPath: "/tmp"},
						},
					}}, keepalivedSidecar(elb, in)...),
					Volumes: []corev1.Volume{emptyDir("run"), emptyDir("tmp")},
				},
			},
		},
	}
}

// KeepalivedContainerName is the speaker pods' keepalived sidecar in vip
// mode: `openelb speaker keepalived` supervises keepalived on the shared
// run dir, so that a speaker container restart leaves keepalived and the
// VRRP masters where they are (docs/design/0009-vip.md).
const KeepalivedContainerName = "keepalived"

// keepalivedSidecar returns the keepalived container when vip is enabled:
// NET_ADMIN for the addresses and NET_RAW for VRRP, nothing else.
func keepalivedSidecar(elb *operatorv1alpha1.OpenELB, in Inputs) []corev1.Container {
	if _, _, vip := Modes(elb); !vip {
		return nil
	}
	return []corev1.Container{{
		Name:            KeepalivedContainerName,
		Image:           speakerImage(elb, in.Settings),
		ImagePullPolicy: elb.Spec.Images.PullPolicy,
		Args:            append(append([]string{"speaker", "keepalived"}, logArgs(elb)...), "--run-dir="+SpeakerRunDir),
		Env: []corev1.EnvVar{{Name: "NODE_NAME", ValueFrom: &corev1.EnvVarSource{
			FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "spec.nodeName"}}}},
		Resources: corev1.ResourceRequirements{
			Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("10m"), corev1.ResourceMemory: resource.MustParse("16Mi")},
			Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("128Mi")},
		},
		SecurityContext: &corev1.SecurityContext{
			RunAsUser:                ptr[int64](0),
			RunAsNonRoot:             ptr(false),
			Privileged:               ptr(false),
			AllowPrivilegeEscalation: ptr(false),
			ReadOnlyRootFilesystem:   ptr(true),
			Capabilities: &corev1.Capabilities{
				Add:  []corev1.Capability{"NET_ADMIN", "NET_RAW"},
				Drop: []corev1.Capability{"ALL"},
			},
		},
		VolumeMounts: []corev1.VolumeMount{
			{Name: "run", MountPath: SpeakerRunDir},
			{Name: "tmp", MountPath: "/tmp"},
		},
	}}
}
