package operator

import (
	"fmt"
	"regexp"
	"sort"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	operatorv1alpha1 "github.com/openelb/openelb-operator/api/operator/v1alpha1"
	"github.com/openelb/openelb-operator/internal/render"
)

// Condition reasons of the OpenELB resource.
const (
	ReasonAsExpected            = "AsExpected"
	ReasonIncorrectName         = "IncorrectResourceName"
	ReasonUpstreamFound         = "UpstreamOpenELBFound"
	ReasonMigrating             = "MigratingFromUpstream"
	ReasonApplyFailed           = "ApplyFailed"
	ReasonNoSpeakerNode         = "NoNodeMatchesSpeakerSelector"
	ReasonPodNotReady           = "PodNotReady"
	ReasonRollingOut            = "RollingOut"
	ReasonControllerNotReady    = "ControllerNotReady"
	ReasonSpeakersNotReady      = "SpeakersNotReady"
	ReasonUpstreamRemoved       = "UpstreamRemoved"
	ReasonKeepalivedRemoved     = "OpenELB05KeepalivedRemoved"
	ReasonDeleting              = "Deleting"
	ReasonUpgradeBlockedRollout = "RolloutInProgress"
	ReasonUpgradeBlockedMigrate = "MigrationInProgress"
)

// observation is what one reconcile saw and did; status is a pure function
// of it.
type observation struct {
	// Upstream lists upstream OpenELB workloads found ("Deployment ns/name").
	Upstream []string
	// Migrate is spec.migrateFromUpstream.
	Migrate bool
	// Rechecked is true when this pass looked for earlier installs.
	Rechecked bool
	// Removed lists what this pass deleted of an upstream install, and
	// RemovedLegacy of OpenELB 0.5's vip mode.
	Removed       []string
	RemovedLegacy []string
	// ApplyErr is the error of rendering or applying, if any.
	ApplyErr error
	// SpeakersRendered is false when no speaker mode is enabled.
	SpeakersRendered bool
	// ControllerReplicas is the rendered replica count (used until the
	// Deployment shows up in the cache).
	ControllerReplicas int32
	Deployment         *appsv1.Deployment
	DaemonSet          *appsv1.DaemonSet
	// EligibleNodes is the number of nodes the speaker pods can run on.
	EligibleNodes int
	// Pods are the operand pods (both components).
	Pods []corev1.Pod
}

// blocked reports whether an upstream install keeps the operator from
// applying anything.
func (o *observation) blocked() bool { return len(o.Upstream) > 0 && !o.Migrate }

// componentCounts returns the controller's and the speakers' pod counts
// and whether each has rolled out the current spec.
func componentCounts(o *observation) (ctrl, spk operatorv1alpha1.ComponentStatus, ctrlDone, spkDone bool) {
	ctrl.Desired = o.ControllerReplicas
	if d := o.Deployment; d != nil {
		ctrl.Desired = 1
		if d.Spec.Replicas != nil {
			ctrl.Desired = *d.Spec.Replicas
		}
		ctrl.Ready, ctrl.Updated = d.Status.ReadyReplicas, d.Status.UpdatedReplicas
		ctrlDone = d.Status.ObservedGeneration >= d.Generation && ctrl.Updated == ctrl.Desired &&
			ctrl.Ready == ctrl.Desired && d.Status.Replicas == ctrl.Desired
	}
	spkDone = !o.SpeakersRendered
	if o.SpeakersRendered {
		// Until the DaemonSet controller has looked at it, count the nodes
		// ourselves.
		spk.Desired = int32(o.EligibleNodes)
	}
	if ds := o.DaemonSet; o.SpeakersRendered && ds != nil {
		if ds.Status.ObservedGeneration > 0 {
			spk.Desired = ds.Status.DesiredNumberScheduled
		}
		spk.Ready, spk.Updated = ds.Status.NumberReady, ds.Status.UpdatedNumberScheduled
		spkDone = ds.Status.ObservedGeneration >= ds.Generation && spk.Updated == spk.Desired && spk.Ready == spk.Desired
	}
	return ctrl, spk, ctrlDone, spkDone
}

// computeStatus returns the status the resource should have after a
// reconcile that saw o. Conditions keep their transition times when their
// status does not change.
func computeStatus(elb *operatorv1alpha1.OpenELB, o *observation, version string) operatorv1alpha1.OpenELBStatus {
	st := *elb.Status.DeepCopy()
	st.ObservedGeneration = elb.Generation
	st.Version = version
	gen := elb.Generation
	set := func(t string, s metav1.ConditionStatus, reason, msg string) {
		meta.SetStatusCondition(&st.Conditions, metav1.Condition{Type: t, Status: s, Reason: reason, Message: msg, ObservedGeneration: gen})
	}

	ctrl, spk, ctrlDone, spkDone := componentCounts(o)
	st.Controller, st.Speaker = ctrl, spk

	if o.blocked() {
		msg := upstreamMessage(o.Upstream)
		set(operatorv1alpha1.ConditionAvailable, metav1.ConditionFalse, ReasonUpstreamFound, msg)
		set(operatorv1alpha1.ConditionProgressing, metav1.ConditionFalse, ReasonUpstreamFound, "waiting for spec.migrateFromUpstream or the removal of the upstream install")
		set(operatorv1alpha1.ConditionDegraded, metav1.ConditionTrue, ReasonUpstreamFound, msg)
		return st
	}

	switch {
	case len(o.Removed) > 0:
		set(operatorv1alpha1.ConditionLeftoversRemoved, metav1.ConditionTrue, ReasonUpstreamRemoved,
			"removed the upstream OpenELB install (spec.migrateFromUpstream): "+strings.Join(o.Removed, ", ")+"; Eips, BgpConfs, BgpPeers and Service addresses were kept")
	case len(o.RemovedLegacy) > 0:
		set(operatorv1alpha1.ConditionLeftoversRemoved, metav1.ConditionTrue, ReasonKeepalivedRemoved,
			"removed the leftovers of OpenELB 0.5's vip mode: "+strings.Join(o.RemovedLegacy, ", "))
	}

	// Available: addresses can be assigned and announced somewhere.
	switch {
	case ctrl.Ready < 1:
		set(operatorv1alpha1.ConditionAvailable, metav1.ConditionFalse, ReasonControllerNotReady,
			fmt.Sprintf("no controller pod is ready (%d of %d)", ctrl.Ready, ctrl.Desired))
	case o.SpeakersRendered && spk.Ready < 1:
		set(operatorv1alpha1.ConditionAvailable, metav1.ConditionFalse, ReasonSpeakersNotReady,
			fmt.Sprintf("no speaker pod is ready (%d of %d)", spk.Ready, spk.Desired))
	default:
		set(operatorv1alpha1.ConditionAvailable, metav1.ConditionTrue, ReasonAsExpected, countsMessage(o, ctrl, spk))
	}

	switch {
	case len(o.Upstream) > 0:
		set(operatorv1alpha1.ConditionProgressing, metav1.ConditionTrue, ReasonMigrating,
			"removing the upstream OpenELB install: "+strings.Join(o.Upstream, ", "))
	case o.ApplyErr == nil && (!ctrlDone || !spkDone):
		set(operatorv1alpha1.ConditionProgressing, metav1.ConditionTrue, ReasonRollingOut, countsMessage(o, ctrl, spk))
	case o.ApplyErr == nil:
		set(operatorv1alpha1.ConditionProgressing, metav1.ConditionFalse, ReasonAsExpected, "every pod runs the current spec")
	default:
		set(operatorv1alpha1.ConditionProgressing, metav1.ConditionFalse, ReasonApplyFailed, "the current spec could not be applied")
	}

	reason, msg := degradedCause(o)
	if reason == "" {
		set(operatorv1alpha1.ConditionDegraded, metav1.ConditionFalse, ReasonAsExpected, "no problem found")
	} else {
		set(operatorv1alpha1.ConditionDegraded, metav1.ConditionTrue, reason, msg)
	}
	return st
}

func upstreamMessage(found []string) string {
	return "an upstream OpenELB install was found (" + strings.Join(found, ", ") + "); it would fight this one for " +
		"Services and webhooks, so nothing is installed. Set spec.migrateFromUpstream: true to let the operator remove " +
		"it (Eips, BgpConfs, BgpPeers and Service addresses are kept and adopted unchanged), or uninstall it yourself"
}

func countsMessage(o *observation, ctrl, spk operatorv1alpha1.ComponentStatus) string {
	msg := fmt.Sprintf("controller %d/%d ready, %d updated", ctrl.Ready, ctrl.Desired, ctrl.Updated)
	if o.SpeakersRendered {
		msg += fmt.Sprintf("; speakers %d/%d ready, %d updated", spk.Ready, spk.Desired, spk.Updated)
	} else {
		msg += "; no speakers (no speaker mode enabled)"
	}
	return msg
}

// degradedCause returns the most important problem: apply errors, no node
// for the speakers, then failing pods with the pod's own reason.
func degradedCause(o *observation) (reason, msg string) {
	var causes []string
	if o.ApplyErr != nil {
		reason = ReasonApplyFailed
		causes = append(causes, "apply: "+o.ApplyErr.Error())
	}
	if o.SpeakersRendered && o.EligibleNodes == 0 {
		if reason == "" {
			reason = ReasonNoSpeakerNode
		}
		causes = append(causes, "no node matches the speaker nodeSelector and tolerations (spec.speaker.nodeSelector, spec.speaker.tolerations), so no address can be announced")
	}
	if r, m := podCause(o.Pods); r != "" {
		if reason == "" {
			reason = r
		}
		causes = append(causes, m)
	}
	return reason, strings.Join(causes, "; ")
}

// failingWaitReasons are container waiting reasons that do not go away by
// waiting.
var failingWaitReasons = map[string]bool{
	"ImagePullBackOff": true, "ErrImagePull": true, "ErrImageNeverPull": true, "InvalidImageName": true,
	"CrashLoopBackOff": true, "CreateContainerConfigError": true, "CreateContainerError": true,
	"RunContainerError": true, "PreCreateHookError": true, "PostStartHookError": true,
}

var reasonRE = regexp.MustCompile(`^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$`)

// podProblem returns why a pod is failing, or "" when it is fine or merely
// starting.
func podProblem(p *corev1.Pod) (reason, detail string) {
	if p.DeletionTimestamp != nil {
		return "", ""
	}
	if p.Status.Phase == corev1.PodFailed {
		return orReason(p.Status.Reason, "PodFailed"), p.Status.Message
	}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse && c.Reason == corev1.PodReasonUnschedulable {
			return c.Reason, c.Message
		}
	}
	statuses := append(append([]corev1.ContainerStatus{}, p.Status.InitContainerStatuses...), p.Status.ContainerStatuses...)
	for _, cs := range statuses {
		if w := cs.State.Waiting; w != nil && failingWaitReasons[w.Reason] {
			return w.Reason, fmt.Sprintf("container %s: %s", cs.Name, w.Message)
		}
	}
	return "", ""
}

func orReason(r, def string) string {
	if reasonRE.MatchString(r) {
		return r
	}
	return def
}

// podCause summarises failing pods: the reason of the first (by name) and
// how many pods of each component fail.
func podCause(pods []corev1.Pod) (reason, msg string) {
	sorted := append([]corev1.Pod(nil), pods...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Name < sorted[j].Name })
	failing := map[string]int{}
	total := map[string]int{}
	for i := range sorted {
		p := &sorted[i]
		comp := p.Labels[render.LabelComponent]
		total[comp]++
		r, detail := podProblem(p)
		if r == "" {
			continue
		}
		failing[comp]++
		if reason == "" {
			reason = orReason(r, ReasonPodNotReady)
			msg = fmt.Sprintf("%s pod %s/%s", comp, p.Namespace, p.Name)
			if p.Spec.NodeName != "" {
				msg += " on node " + p.Spec.NodeName
			}
			msg += ": " + r
			if detail != "" {
				msg += ": " + detail
			}
		}
	}
	if reason == "" {
		return "", ""
	}
	var counts []string
	for _, comp := range []string{render.ComponentController, render.ComponentSpeaker} {
		if failing[comp] > 0 {
			counts = append(counts, fmt.Sprintf("%d of %d %s pods failing", failing[comp], total[comp], comp))
		}
	}
	return reason, msg + " (" + strings.Join(counts, ", ") + ")"
}

// daemonSetTolerations are added by the DaemonSet controller to every
// DaemonSet pod, so taints they match never keep a speaker off a node.
var daemonSetTolerations = []corev1.Toleration{
	{Key: corev1.TaintNodeNotReady, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute},
	{Key: corev1.TaintNodeUnreachable, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute},
	{Key: corev1.TaintNodeDiskPressure, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule},
	{Key: corev1.TaintNodeMemoryPressure, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule},
	{Key: corev1.TaintNodePIDPressure, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule},
	{Key: corev1.TaintNodeUnschedulable, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule},
	{Key: corev1.TaintNodeNetworkUnavailable, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule},
}

// eligibleNodes counts the nodes a DaemonSet pod with this node selector
// and these tolerations runs on.
func eligibleNodes(nodes []corev1.Node, selector map[string]string, tolerations []corev1.Toleration) int {
	all := append(append([]corev1.Toleration{}, tolerations...), daemonSetTolerations...)
	n := 0
	for i := range nodes {
		if nodeFits(&nodes[i], selector, all) {
			n++
		}
	}
	return n
}

func nodeFits(node *corev1.Node, selector map[string]string, tolerations []corev1.Toleration) bool {
	for k, v := range selector {
		if got, ok := node.Labels[k]; !ok || got != v {
			return false
		}
	}
	for i := range node.Spec.Taints {
		taint := &node.Spec.Taints[i]
		if taint.Effect == corev1.TaintEffectPreferNoSchedule {
			continue
		}
		tolerated := false
		for j := range tolerations {
			if tolerations[j].ToleratesTaint(taint) {
				tolerated = true
				break
			}
		}
		if !tolerated {
			return false
		}
	}
	return true
}
