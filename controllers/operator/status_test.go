package operator

import (
	"errors"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	operatorv1alpha1 "github.com/openelb/openelb-operator/api/operator/v1alpha1"
	"github.com/openelb/openelb-operator/internal/render"
)

func deployment(gen, observed int64, replicas, ready, updated int32) *appsv1.Deployment {
	d := &appsv1.Deployment{}
	d.Generation = gen
	d.Spec.Replicas = &replicas
	d.Status = appsv1.DeploymentStatus{ObservedGeneration: observed, Replicas: replicas, ReadyReplicas: ready, UpdatedReplicas: updated}
	return d
}

func daemonSet(gen, observed int64, desired, ready, updated int32) *appsv1.DaemonSet {
	ds := &appsv1.DaemonSet{}
	ds.Generation = gen
	ds.Status = appsv1.DaemonSetStatus{ObservedGeneration: observed, DesiredNumberScheduled: desired, NumberReady: ready, UpdatedNumberScheduled: updated}
	return ds
}

func pod(name, component, node string, mut func(*corev1.Pod)) corev1.Pod {
	p := corev1.Pod{}
	p.Name, p.Namespace = name, "openelb-system"
	p.Labels = map[string]string{render.LabelComponent: component}
	p.Spec.NodeName = node
	if mut != nil {
		mut(&p)
	}
	return p
}

func waiting(reason, msg string) func(*corev1.Pod) {
	return func(p *corev1.Pod) {
		p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "speaker", State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: reason, Message: msg}}}}
	}
}

type condWant struct {
	status metav1.ConditionStatus
	reason string
	msg    string // substring
}

func TestComputeStatus(t *testing.T) {
	healthy := func() *observation {
		return &observation{
			SpeakersRendered: true,
			Deployment:       deployment(1, 1, 2, 2, 2),
			DaemonSet:        daemonSet(1, 1, 3, 3, 3),
			EligibleNodes:    3,
		}
	}
	cases := []struct {
		name      string
		obs       func() *observation
		available condWant
		progress  condWant
		degraded  condWant
		ctrl, spk operatorv1alpha1.ComponentStatus
	}{
		{
			name:      "all ready",
			obs:       healthy,
			available: condWant{metav1.ConditionTrue, ReasonAsExpected, "speakers 3/3 ready"},
			progress:  condWant{metav1.ConditionFalse, ReasonAsExpected, ""},
			degraded:  condWant{metav1.ConditionFalse, ReasonAsExpected, ""},
			ctrl:      operatorv1alpha1.ComponentStatus{Desired: 2, Ready: 2, Updated: 2},
			spk:       operatorv1alpha1.ComponentStatus{Desired: 3, Ready: 3, Updated: 3},
		},
		{
			name: "just created: nothing ready, DaemonSet not yet seen by its controller",
			obs: func() *observation {
				o := healthy()
				o.Deployment = deployment(1, 0, 2, 0, 0)
				o.DaemonSet = daemonSet(1, 0, 0, 0, 0)
				return o
			},
			available: condWant{metav1.ConditionFalse, ReasonControllerNotReady, "0 of 2"},
			progress:  condWant{metav1.ConditionTrue, ReasonRollingOut, "speakers 0/3 ready"},
			degraded:  condWant{metav1.ConditionFalse, ReasonAsExpected, ""},
			ctrl:      operatorv1alpha1.ComponentStatus{Desired: 2},
			spk:       operatorv1alpha1.ComponentStatus{Desired: 3},
		},
		{
			name: "speaker rollout in progress",
			obs: func() *observation {
				o := healthy()
				o.DaemonSet = daemonSet(2, 2, 3, 2, 1)
				return o
			},
			available: condWant{metav1.ConditionTrue, ReasonAsExpected, ""},
			progress:  condWant{metav1.ConditionTrue, ReasonRollingOut, "speakers 2/3 ready, 1 updated"},
			degraded:  condWant{metav1.ConditionFalse, ReasonAsExpected, ""},
			ctrl:      operatorv1alpha1.ComponentStatus{Desired: 2, Ready: 2, Updated: 2},
			spk:       operatorv1alpha1.ComponentStatus{Desired: 3, Ready: 2, Updated: 1},
		},
		{
			name: "image pull failure names the pod and reason",
			obs: func() *observation {
				o := healthy()
				o.DaemonSet = daemonSet(1, 1, 3, 2, 3)
				o.Pods = []corev1.Pod{
					pod("openelb-speaker-b", render.ComponentSpeaker, "n2", waiting("ImagePullBackOff", `Back-off pulling image "x"`)),
					pod("openelb-speaker-a", render.ComponentSpeaker, "n1", nil),
					pod("openelb-speaker-c", render.ComponentSpeaker, "n3", waiting("ContainerCreating", "")),
				}
				return o
			},
			available: condWant{metav1.ConditionTrue, ReasonAsExpected, ""},
			progress:  condWant{metav1.ConditionTrue, ReasonRollingOut, ""},
			degraded:  condWant{metav1.ConditionTrue, "ImagePullBackOff", `speaker pod openelb-system/openelb-speaker-b on node n2: ImagePullBackOff: container speaker: Back-off pulling image "x" (1 of 3 speaker pods failing)`},
			ctrl:      operatorv1alpha1.ComponentStatus{Desired: 2, Ready: 2, Updated: 2},
			spk:       operatorv1alpha1.ComponentStatus{Desired: 3, Ready: 2, Updated: 3},
		},
		{
			name: "unschedulable controller pod",
			obs: func() *observation {
				o := healthy()
				o.Deployment = deployment(1, 1, 2, 1, 2)
				o.Pods = []corev1.Pod{pod("openelb-controller-x", render.ComponentController, "", func(p *corev1.Pod) {
					p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionFalse, Reason: "Unschedulable", Message: "0/3 nodes are available"}}
				})}
				return o
			},
			available: condWant{metav1.ConditionTrue, ReasonAsExpected, ""},
			progress:  condWant{metav1.ConditionTrue, ReasonRollingOut, ""},
			degraded:  condWant{metav1.ConditionTrue, "Unschedulable", "controller pod openelb-system/openelb-controller-x: Unschedulable: 0/3 nodes are available"},
			ctrl:      operatorv1alpha1.ComponentStatus{Desired: 2, Ready: 1, Updated: 2},
			spk:       operatorv1alpha1.ComponentStatus{Desired: 3, Ready: 3, Updated: 3},
		},
		{
			name: "no node matches the speaker selector",
			obs: func() *observation {
				o := healthy()
				o.EligibleNodes = 0
				o.DaemonSet = daemonSet(1, 1, 0, 0, 0)
				return o
			},
			available: condWant{metav1.ConditionFalse, ReasonSpeakersNotReady, "0 of 0"},
			progress:  condWant{metav1.ConditionFalse, ReasonAsExpected, ""},
			degraded:  condWant{metav1.ConditionTrue, ReasonNoSpeakerNode, "spec.speaker.nodeSelector"},
			ctrl:      operatorv1alpha1.ComponentStatus{Desired: 2, Ready: 2, Updated: 2},
		},
		{
			name: "no speakers rendered: available with the controller alone",
			obs: func() *observation {
				o := healthy()
				o.SpeakersRendered, o.DaemonSet, o.EligibleNodes = false, nil, 0
				return o
			},
			available: condWant{metav1.ConditionTrue, ReasonAsExpected, "no speakers"},
			progress:  condWant{metav1.ConditionFalse, ReasonAsExpected, ""},
			degraded:  condWant{metav1.ConditionFalse, ReasonAsExpected, ""},
			ctrl:      operatorv1alpha1.ComponentStatus{Desired: 2, Ready: 2, Updated: 2},
		},
		{
			name: "upstream install blocks everything",
			obs: func() *observation {
				return &observation{SpeakersRendered: true, Upstream: []string{"Deployment openelb-system/openelb-controller"}}
			},
			available: condWant{metav1.ConditionFalse, ReasonUpstreamFound, "migrateFromUpstream"},
			progress:  condWant{metav1.ConditionFalse, ReasonUpstreamFound, ""},
			degraded:  condWant{metav1.ConditionTrue, ReasonUpstreamFound, "Deployment openelb-system/openelb-controller"},
		},
		{
			name: "apply error",
			obs: func() *observation {
				o := healthy()
				o.ApplyErr = errors.New("apply DaemonSet openelb-system/openelb-speaker: forbidden")
				return o
			},
			available: condWant{metav1.ConditionTrue, ReasonAsExpected, ""},
			progress:  condWant{metav1.ConditionFalse, ReasonApplyFailed, ""},
			degraded:  condWant{metav1.ConditionTrue, ReasonApplyFailed, "forbidden"},
			ctrl:      operatorv1alpha1.ComponentStatus{Desired: 2, Ready: 2, Updated: 2},
			spk:       operatorv1alpha1.ComponentStatus{Desired: 3, Ready: 3, Updated: 3},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := &operatorv1alpha1.OpenELB{}
			e.Generation = 7
			st := computeStatus(e, tc.obs(), "v-test")
			if st.ObservedGeneration != 7 || st.Version != "v-test" {
				t.Errorf("observedGeneration %d version %q", st.ObservedGeneration, st.Version)
			}
			for typ, want := range map[string]condWant{
				operatorv1alpha1.ConditionAvailable:   tc.available,
				operatorv1alpha1.ConditionProgressing: tc.progress,
				operatorv1alpha1.ConditionDegraded:    tc.degraded,
			} {
				c := meta.FindStatusCondition(st.Conditions, typ)
				if c == nil {
					t.Fatalf("no %s condition", typ)
				}
				if c.Status != want.status || c.Reason != want.reason || !strings.Contains(c.Message, want.msg) || c.ObservedGeneration != 7 {
					t.Errorf("%s = %s/%s %q (gen %d), want %s/%s containing %q", typ, c.Status, c.Reason, c.Message, c.ObservedGeneration, want.status, want.reason, want.msg)
				}
			}
			if st.Controller != tc.ctrl || st.Speaker != tc.spk {
				t.Errorf("counts controller %+v speaker %+v, want %+v %+v", st.Controller, st.Speaker, tc.ctrl, tc.spk)
			}
		})
	}
}

func TestComputeStatusIsStable(t *testing.T) {
	e := &operatorv1alpha1.OpenELB{}
	e.Generation = 1
	o := &observation{SpeakersRendered: true, Deployment: deployment(1, 1, 2, 2, 2), DaemonSet: daemonSet(1, 1, 1, 1, 1), EligibleNodes: 1}
	e.Status = computeStatus(e, o, "v")
	again := computeStatus(e, o, "v")
	for i := range again.Conditions {
		if again.Conditions[i] != e.Status.Conditions[i] {
			t.Fatalf("a second identical reconcile changes condition %s: %+v -> %+v", again.Conditions[i].Type, e.Status.Conditions[i], again.Conditions[i])
		}
	}
}

func TestLeftoversCondition(t *testing.T) {
	e := &operatorv1alpha1.OpenELB{}
	o := &observation{RemovedLegacy: []string{"DaemonSet openelb-system/openelb-keepalive-vip"}}
	c := meta.FindStatusCondition(computeStatus(e, o, "v").Conditions, operatorv1alpha1.ConditionLeftoversRemoved)
	if c == nil || c.Status != metav1.ConditionTrue || c.Reason != ReasonKeepalivedRemoved || !strings.Contains(c.Message, "openelb-keepalive-vip") {
		t.Fatalf("LeftoversRemoved = %+v", c)
	}
}

func TestEligibleNodes(t *testing.T) {
	node := func(name string, labels map[string]string, taints ...corev1.Taint) corev1.Node {
		n := corev1.Node{}
		n.Name, n.Labels, n.Spec.Taints = name, labels, taints
		return n
	}
	linux := map[string]string{corev1.LabelOSStable: "linux"}
	cp := corev1.Taint{Key: "node-role.kubernetes.io/control-plane", Effect: corev1.TaintEffectNoSchedule}
	gpu := corev1.Taint{Key: "gpu", Value: "true", Effect: corev1.TaintEffectNoSchedule}
	notReady := corev1.Taint{Key: corev1.TaintNodeNotReady, Effect: corev1.TaintEffectNoExecute}
	soft := corev1.Taint{Key: "soft", Effect: corev1.TaintEffectPreferNoSchedule}
	nodes := []corev1.Node{
		node("worker", linux),
		node("control-plane", linux, cp),
		node("gpu", linux, gpu),
		node("not-ready", linux, notReady),
		node("soft", linux, soft),
		node("windows", map[string]string{corev1.LabelOSStable: "windows"}),
	}
	cases := []struct {
		name        string
		selector    map[string]string
		tolerations []corev1.Toleration
		want        int
	}{
		{"defaults", linux, render.DefaultSpeakerTolerations, 4},
		{"no tolerations", linux, nil, 3},
		{"tolerate all", linux, []corev1.Toleration{{Operator: corev1.TolerationOpExists}}, 5},
		{"selector matches nothing", map[string]string{"openelb": "speaker"}, nil, 0},
	}
	for _, tc := range cases {
		if got := eligibleNodes(nodes, tc.selector, tc.tolerations); got != tc.want {
			t.Errorf("%s: %d eligible nodes, want %d", tc.name, got, tc.want)
		}
	}
}
