package render

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/yaml"

	operatorv1alpha1 "github.com/openelb/openelb-operator/api/operator/v1alpha1"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/ from the current rendering")

func plainInputs() Inputs {
	return Inputs{
		Settings: Settings{Namespace: "openelb-system", Image: "ghcr.io/openelb/openelb-operator:v0.1.0"},
		ControllerCert: map[string][]byte{
			"tls.crt": []byte("serving-cert"), "tls.key": []byte("serving-key"),
			"ca.crt": []byte("ca-bundle"), "ca.key": []byte("ca-key"),
		},
		CABundle:   []byte("ca-bundle"),
		SpeakerKey: []byte("0123456789abcdef0123456789abcdef"),
	}
}

func olmInputs() Inputs {
	in := plainInputs()
	in.Namespace = "openshift-operators"
	in.Image = "quay.io/openelb/openelb-operator@sha256:1111111111111111111111111111111111111111111111111111111111111111"
	in.SpeakerImage = "quay.io/openelb/openelb-operator@sha256:2222222222222222222222222222222222222222222222222222222222222222"
	in.ProxyEnv = []corev1.EnvVar{
		{Name: "HTTP_PROXY", Value: "http://proxy.example:3128"}, {Name: "http_proxy", Value: "http://proxy.example:3128"},
		{Name: "NO_PROXY", Value: ".cluster.local,.svc"}, {Name: "no_proxy", Value: ".cluster.local,.svc"},
	}
	return in
}

func elb(mut func(*operatorv1alpha1.OpenELBSpec)) *operatorv1alpha1.OpenELB {
	e := &operatorv1alpha1.OpenELB{}
	e.Name = operatorv1alpha1.ResourceName
	if mut != nil {
		mut(&e.Spec)
	}
	return e
}

func on(b bool) *bool { return &b }

var goldenCases = []struct {
	name string
	elb  *operatorv1alpha1.OpenELB
	in   Inputs
}{
	{name: "defaults", elb: elb(nil), in: plainInputs()},
	{name: "layer2-only", elb: elb(func(s *operatorv1alpha1.OpenELBSpec) {
		s.Speaker.BGP.Enabled = on(false)
		s.Speaker.Layer2.Interfaces = []string{"eth0", "eth1"}
		s.Speaker.Layer2.GratuitousRefreshSeconds = 30
	}), in: plainInputs()},
	{name: "bgp-only", elb: elb(func(s *operatorv1alpha1.OpenELBSpec) {
		s.Speaker.Layer2.Enabled = on(false)
		s.Speaker.BGP.ListenPort = ptr[int32](17900)
	}), in: plainInputs()},
	{name: "vip-interface", elb: elb(func(s *operatorv1alpha1.OpenELBSpec) {
		s.Speaker.Layer2.Enabled = on(false)
		s.Speaker.BGP.Enabled = on(false)
		s.Speaker.VIP.Enabled = on(true)
		s.Speaker.VIP.Interfaces = []string{"bond0"}
		s.Speaker.VIP.AdvertIntervalMillis = 100
		s.Speaker.VIP.Multicast = true
	}), in: plainInputs()},
	{name: "no-speakers", elb: elb(func(s *operatorv1alpha1.OpenELBSpec) {
		s.Speaker.Layer2.Enabled = on(false)
		s.Speaker.BGP.Enabled = on(false)
		s.IPAM.AllocateClasslessServices = true
	}), in: plainInputs()},
	{name: "custom-placement", elb: elb(func(s *operatorv1alpha1.OpenELBSpec) {
		s.LogLevel, s.LogFormat = "debug", "console"
		s.LoadBalancerClass = "example.com/lb"
		s.IPAM.NamespaceIsolation = true
		s.Images = operatorv1alpha1.Images{Controller: "registry.example/openelb:c1", Speaker: "registry.example/openelb:s1", PullPolicy: corev1.PullAlways}
		s.ImagePullSecrets = []corev1.LocalObjectReference{{Name: "pull"}}
		s.Controller.Replicas = ptr[int32](1)
		s.Controller.NodeSelector = map[string]string{"node-role.kubernetes.io/infra": ""}
		s.Controller.Tolerations = []corev1.Toleration{{Key: "infra", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule}}
		s.Controller.PriorityClassName = "system-cluster-critical"
		s.Controller.Resources = corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("200m")}}
		s.Speaker.NodeSelector = map[string]string{"openelb.kubesphere.io/speaker": "true"}
		s.Speaker.Tolerations = []corev1.Toleration{{Operator: corev1.TolerationOpExists}}
		s.Speaker.PriorityClassName = "system-node-critical"
		s.Speaker.Resources = corev1.ResourceRequirements{Limits: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("128Mi")}}
		s.Speaker.LivenessPort = 17946
		s.Speaker.MetricsPort = 15053
	}), in: plainInputs()},
	{name: "plain", elb: elb(nil), in: plainInputs()},
	{name: "olm", elb: elb(nil), in: olmInputs()},
	{name: "openshift", elb: elb(nil), in: openshiftInputs()},
}

// openshiftInputs are OLM's on a cluster that serves
// SecurityContextConstraints.
func openshiftInputs() Inputs {
	in := olmInputs()
	in.SecurityContextConstraints = true
	return in
}

func marshalAll(t *testing.T, objs []Object) []byte {
	t.Helper()
	var buf bytes.Buffer
	for i, o := range objs {
		if i > 0 {
			buf.WriteString("---\n")
		}
		form, err := ApplyForm(o)
		if err != nil {
			t.Fatal(err)
		}
		b, err := yaml.Marshal(form)
		if err != nil {
			t.Fatalf("marshal %s: %v", KeyOf(o), err)
		}
		buf.Write(b)
	}
	return buf.Bytes()
}

// TestGolden compares the rendering of each spec with testdata/<name>.yaml.
// Run `go test ./internal/render -update` after an intended change and
// review the diff.
func TestGolden(t *testing.T) {
	for _, tc := range goldenCases {
		t.Run(tc.name, func(t *testing.T) {
			objs, err := Render(tc.elb, tc.in)
			if err != nil {
				t.Fatalf("Render: %v", err)
			}
			got := marshalAll(t, objs)
			path := filepath.Join("testdata", tc.name+".yaml")
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("rendering differs from %s (run `go test ./internal/render -update` and review the diff):\n%s", path, lineDiff(string(want), string(got)))
			}
		})
	}
}

// lineDiff shows the first differing lines.
func lineDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	for i := 0; i < len(w) || i < len(g); i++ {
		var a, b string
		if i < len(w) {
			a = w[i]
		}
		if i < len(g) {
			b = g[i]
		}
		if a != b {
			return "line " + strconv.Itoa(i+1) + ":\n- " + a + "\n+ " + b
		}
	}
	return ""
}

func find[T Object](t *testing.T, objs []Object, name string) T {
	t.Helper()
	for _, o := range objs {
		if v, ok := o.(T); ok && o.GetName() == name {
			return v
		}
	}
	var zero T
	t.Fatalf("no %T %s rendered", zero, name)
	return zero
}

func mustRender(t *testing.T, e *operatorv1alpha1.OpenELB) []Object {
	t.Helper()
	objs, err := Render(e, plainInputs())
	if err != nil {
		t.Fatalf("Render: %v", err)
	}
	return objs
}

// TestDefaultsMatchCRDDefaults: an empty spec and the spec the API server
// defaults it to render the same objects.
func TestDefaultsMatchCRDDefaults(t *testing.T) {
	defaulted := elb(func(s *operatorv1alpha1.OpenELBSpec) {
		s.LogLevel, s.LogFormat = "info", "json"
		s.LoadBalancerClass = operatorv1alpha1.DefaultLoadBalancerClass
		s.Controller.Replicas = ptr[int32](2)
		s.Speaker.Layer2.Enabled = on(true)
		s.Speaker.BGP.Enabled = on(true)
		s.Speaker.VIP.Enabled = on(false)
		s.Speaker.VIP.AdvertIntervalMillis = 1000
		s.Speaker.LivenessPort = 7946
		s.Speaker.MetricsPort = 50053
	})
	a, b := marshalAll(t, mustRender(t, elb(nil))), marshalAll(t, mustRender(t, defaulted))
	if !bytes.Equal(a, b) {
		t.Fatalf("empty and CRD-defaulted specs render differently:\n%s", lineDiff(string(a), string(b)))
	}
}

func TestSpeakerArgsEnableExactlyTheModes(t *testing.T) {
	for _, l2 := range []bool{false, true} {
		for _, bgp := range []bool{false, true} {
			for _, vip := range []bool{false, true} {
				e := elb(func(s *operatorv1alpha1.OpenELBSpec) {
					s.Speaker.Layer2.Enabled, s.Speaker.BGP.Enabled, s.Speaker.VIP.Enabled = on(l2), on(bgp), on(vip)
					s.Speaker.Layer2.Interfaces = []string{"eth9"}
					s.Speaker.BGP.ListenPort = ptr[int32](1790)
					s.Speaker.VIP.Interfaces = []string{"eth8"}
				})
				objs := mustRender(t, e)
				if !(l2 || bgp || vip) {
					for _, o := range objs {
						if o.GetLabels()[LabelComponent] == ComponentSpeaker {
							t.Errorf("no mode enabled but %s rendered", KeyOf(o))
						}
					}
					continue
				}
				args := find[*appsv1.DaemonSet](t, objs, SpeakerName).Spec.Template.Spec.Containers[0].Args
				want := map[string]bool{
					"--enable-layer2=true": l2, "--enable-layer2=false": !l2, "--layer2-interfaces=eth9": l2,
					"--enable-bgp=true": bgp, "--enable-bgp=false": !bgp, "--bgp-listen-port=1790": bgp,
					"--enable-keepalived-vip=true": vip, "--enable-keepalived-vip=false": !vip,
					"--vip-interfaces=eth8": vip, "--vip-advert-interval=1s": vip,
				}
				for arg, present := range want {
					if slices.Contains(args, arg) != present {
						t.Errorf("layer2=%v bgp=%v vip=%v: %s present=%v, want %v (args %v)", l2, bgp, vip, arg, !present, present, args)
					}
				}
				ctrlArgs := find[*appsv1.Deployment](t, objs, ControllerName).Spec.Template.Spec.Containers[0].Args
				if !slices.Contains(ctrlArgs, "--enabled-protocols="+EnabledProtocols(e)) {
					t.Errorf("controller args %v lack --enabled-protocols=%s", ctrlArgs, EnabledProtocols(e))
				}
			}
		}
	}
}

func TestLeaderElectionOnlyWithReplicas(t *testing.T) {
	for _, n := range []int32{1, 2, 3} {
		d := find[*appsv1.Deployment](t, mustRender(t, elb(func(s *operatorv1alpha1.OpenELBSpec) { s.Controller.Replicas = &n })), ControllerName)
		hasLE := slices.Contains(d.Spec.Template.Spec.Containers[0].Args, "--leader-elect")
		if hasLE != (n > 1) {
			t.Errorf("replicas %d: --leader-elect %v", n, hasLE)
		}
		if *d.Spec.Replicas != n {
			t.Errorf("replicas %d rendered as %d", n, *d.Spec.Replicas)
		}
		if recreate := d.Spec.Strategy.Type == appsv1.RecreateDeploymentStrategyType; recreate != (n == 1) {
			t.Errorf("replicas %d: strategy %s (a single replica without leader election must never overlap)", n, d.Spec.Strategy.Type)
		}
		// A PodDisruptionBudget (one replica at a time) only with several:
		// with one it would block every drain of its node.
		objs := mustRender(t, elb(func(s *operatorv1alpha1.OpenELBSpec) { s.Controller.Replicas = &n }))
		var pdb *policyv1.PodDisruptionBudget
		for _, o := range objs {
			if p, ok := o.(*policyv1.PodDisruptionBudget); ok {
				pdb = p
			}
		}
		if (pdb != nil) != (n > 1) {
			t.Errorf("replicas %d: PodDisruptionBudget %v", n, pdb != nil)
		}
		if pdb != nil {
			sel, err := metav1.LabelSelectorAsSelector(pdb.Spec.Selector)
			if err != nil || !sel.Matches(labels.Set(d.Spec.Template.Labels)) || pdb.Spec.MaxUnavailable.IntValue() != 1 {
				t.Errorf("replicas %d: PodDisruptionBudget %+v does not allow exactly one controller pod down (%v)", n, pdb.Spec, err)
			}
		}
	}
}

// TestSelectorsMatchPods: Deployment, DaemonSet, Service and anti-affinity
// selectors select the pods they belong to and nothing of upstream OpenELB.
func TestSelectorsMatchPods(t *testing.T) {
	objs := mustRender(t, elb(nil))
	d := find[*appsv1.Deployment](t, objs, ControllerName)
	ds := find[*appsv1.DaemonSet](t, objs, SpeakerName)
	upstream := labels.Set{"app": "openelb", "component": "controller"}
	check := func(what string, sel map[string]string, pod map[string]string) {
		t.Helper()
		s := labels.SelectorFromSet(sel)
		if !s.Matches(labels.Set(pod)) {
			t.Errorf("%s selector %v does not match its pods %v", what, sel, pod)
		}
		if s.Matches(upstream) {
			t.Errorf("%s selector %v matches upstream OpenELB pods", what, sel)
		}
	}
	check("Deployment", d.Spec.Selector.MatchLabels, d.Spec.Template.Labels)
	check("DaemonSet", ds.Spec.Selector.MatchLabels, ds.Spec.Template.Labels)
	aa := d.Spec.Template.Spec.Affinity.PodAntiAffinity.PreferredDuringSchedulingIgnoredDuringExecution
	if len(aa) != 1 || aa[0].PodAffinityTerm.TopologyKey != corev1.LabelHostname {
		t.Fatalf("controller anti-affinity %+v", aa)
	}
	check("controller anti-affinity", aa[0].PodAffinityTerm.LabelSelector.MatchLabels, d.Spec.Template.Labels)
	if labels.SelectorFromSet(aa[0].PodAffinityTerm.LabelSelector.MatchLabels).Matches(labels.Set(ds.Spec.Template.Labels)) {
		t.Error("controller anti-affinity also repels speaker pods")
	}
	check("webhook Service", find[*corev1.Service](t, objs, ControllerName).Spec.Selector, d.Spec.Template.Labels)
	check("controller metrics Service", find[*corev1.Service](t, objs, ControllerMetricsName).Spec.Selector, d.Spec.Template.Labels)
	check("speaker metrics Service", find[*corev1.Service](t, objs, SpeakerMetricsName).Spec.Selector, ds.Spec.Template.Labels)
}

func TestSpeakerPodSecurity(t *testing.T) {
	ds := find[*appsv1.DaemonSet](t, mustRender(t, elb(nil)), SpeakerName)
	pod := ds.Spec.Template.Spec
	if !pod.HostNetwork || pod.DNSPolicy != corev1.DNSClusterFirstWithHostNet {
		t.Errorf("hostNetwork %v dnsPolicy %s", pod.HostNetwork, pod.DNSPolicy)
	}
	sc := pod.Containers[0].SecurityContext
	if sc.Privileged == nil || *sc.Privileged || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
		t.Error("speaker must never be privileged nor escalate")
	}
	if got := sc.Capabilities.Add; !slices.Equal(got, []corev1.Capability{"NET_ADMIN", "NET_RAW", "NET_BIND_SERVICE"}) {
		t.Errorf("capabilities added %v", got)
	}
	if !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) {
		t.Errorf("capabilities dropped %v", sc.Capabilities.Drop)
	}
	c := pod.Containers[0]
	for _, p := range []*corev1.Probe{c.LivenessProbe, c.ReadinessProbe} {
		if p == nil || p.HTTPGet == nil || p.HTTPGet.Port.StrVal != "metrics" {
			t.Fatalf("probe %+v not on the metrics port", p)
		}
	}
	if c.LivenessProbe.HTTPGet.Path != "/healthz" || c.ReadinessProbe.HTTPGet.Path != "/readyz" {
		t.Errorf("probe paths %s %s", c.LivenessProbe.HTTPGet.Path, c.ReadinessProbe.HTTPGet.Path)
	}
	var key *corev1.EnvVar
	for i := range c.Env {
		if c.Env[i].Name == SpeakerKeyEnv {
			key = &c.Env[i]
		}
	}
	if key == nil || key.ValueFrom == nil || key.ValueFrom.SecretKeyRef == nil || key.ValueFrom.SecretKeyRef.Name != SpeakerKeyName {
		t.Errorf("speaker key env %+v", key)
	}
}

func TestKeyChangeRollsSpeakers(t *testing.T) {
	a := plainInputs()
	b := plainInputs()
	b.SpeakerKey = []byte("another key of thirty-two bytes!")
	oa, _ := Render(elb(nil), a)
	ob, _ := Render(elb(nil), b)
	ha := find[*appsv1.DaemonSet](t, oa, SpeakerName).Spec.Template.Annotations[SpeakerKeyHashAnnotation]
	hb := find[*appsv1.DaemonSet](t, ob, SpeakerName).Spec.Template.Annotations[SpeakerKeyHashAnnotation]
	if ha == "" || ha == hb {
		t.Fatalf("key hash annotations %q %q", ha, hb)
	}
}

func TestRenderErrors(t *testing.T) {
	cases := []struct {
		name string
		mut  func(*Inputs)
		elb  *operatorv1alpha1.OpenELB
	}{
		{name: "no image", mut: func(in *Inputs) { in.Image = "" }, elb: elb(nil)},
		{name: "no namespace", mut: func(in *Inputs) { in.Namespace = "" }, elb: elb(nil)},
		{name: "no cert", mut: func(in *Inputs) { in.ControllerCert = nil }, elb: elb(nil)},
		{name: "no CA bundle", mut: func(in *Inputs) { in.CABundle = nil }, elb: elb(nil)},
		{name: "no speaker key", mut: func(in *Inputs) { in.SpeakerKey = nil }, elb: elb(nil)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			in := plainInputs()
			tc.mut(&in)
			if _, err := Render(tc.elb, in); err == nil {
				t.Fatal("Render succeeded")
			}
		})
	}
	// Without speakers no key is needed.
	in := plainInputs()
	in.SpeakerKey = nil
	if _, err := Render(elb(func(s *operatorv1alpha1.OpenELBSpec) {
		s.Speaker.Layer2.Enabled, s.Speaker.BGP.Enabled = on(false), on(false)
	}), in); err != nil {
		t.Fatalf("Render without speakers needs no key: %v", err)
	}
}

// TestCatalogCoversEverything: every object any spec renders is in the
// catalog (so it is deleted when no longer rendered and on uninstall), and
// the catalog has no duplicates.
func TestCatalogCoversEverything(t *testing.T) {
	catalogs := map[bool]map[Key]bool{}
	for _, scc := range []bool{false, true} {
		seen := map[Key]bool{}
		for _, k := range CatalogFor(Settings{Namespace: "openelb-system", SecurityContextConstraints: scc}) {
			if seen[k] {
				t.Errorf("catalog lists %s twice", k)
			}
			seen[k] = true
		}
		catalogs[scc] = seen
	}
	if len(catalogs[true]) != len(catalogs[false])+1 {
		t.Errorf("the OpenShift catalog has %d objects, the plain one %d: want exactly the SCC more", len(catalogs[true]), len(catalogs[false]))
	}
	if got := Catalog("openelb-system"); len(got) != len(catalogs[false]) {
		t.Errorf("Catalog(ns) lists %d objects, CatalogFor without SCC %d", len(got), len(catalogs[false]))
	}
	for _, tc := range goldenCases {
		in := tc.in
		in.Namespace = "openelb-system"
		seen := catalogs[in.SecurityContextConstraints]
		objs, err := Render(tc.elb, in)
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range objs {
			if !seen[KeyOf(o)] {
				t.Errorf("%s: %s rendered but not in the catalog", tc.name, KeyOf(o))
			}
			if o.GetObjectKind().GroupVersionKind().Kind == "" {
				t.Errorf("%s: %s has no kind", tc.name, o.GetName())
			}
			if o.GetLabels()[LabelManagedBy] != ManagedBy {
				t.Errorf("%s: %s lacks the managed-by label", tc.name, KeyOf(o))
			}
		}
	}
}

func findSCC(objs []Object) *unstructured.Unstructured {
	for _, o := range objs {
		if u, ok := o.(*unstructured.Unstructured); ok && u.GroupVersionKind() == SCCGroupVersionKind {
			return u
		}
	}
	return nil
}

// TestSpeakerSCC: on OpenShift the speakers get an SCC that admits exactly
// their pod (host network and ports, the three capabilities, root, the
// volume kinds it mounts, a read-only root file system) and never a
// privileged one, and their Role may use it; elsewhere, and without
// speakers, there is no SCC and no such rule.
func TestSpeakerSCC(t *testing.T) {
	objs, err := Render(elb(nil), openshiftInputs())
	if err != nil {
		t.Fatal(err)
	}
	scc := findSCC(objs)
	if scc == nil {
		t.Fatal("no SCC rendered on OpenShift")
	}
	if scc.GetName() != SpeakerSCCName || scc.GetLabels()[LabelManagedBy] != ManagedBy {
		t.Errorf("SCC %s labels %v", scc.GetName(), scc.GetLabels())
	}
	pod := find[*appsv1.DaemonSet](t, objs, SpeakerName).Spec.Template.Spec
	c := pod.Containers[0]
	b := func(field string) bool { v, _, _ := unstructured.NestedBool(scc.Object, field); return v }
	strs := func(field string) []string { v, _, _ := unstructured.NestedStringSlice(scc.Object, field); return v }
	if b("allowPrivilegedContainer") || b("allowPrivilegeEscalation") || b("allowHostPID") || b("allowHostIPC") || b("allowHostDirVolumePlugin") {
		t.Error("the SCC allows more than the speaker needs")
	}
	if pod.HostNetwork != b("allowHostNetwork") || !b("allowHostPorts") {
		t.Error("the SCC does not admit the speaker's host network and ports")
	}
	for _, capability := range c.SecurityContext.Capabilities.Add {
		if !slices.Contains(strs("allowedCapabilities"), string(capability)) {
			t.Errorf("capability %s not allowed", capability)
		}
	}
	if len(strs("allowedCapabilities")) != len(c.SecurityContext.Capabilities.Add) {
		t.Errorf("allowed capabilities %v, the speaker adds %v", strs("allowedCapabilities"), c.SecurityContext.Capabilities.Add)
	}
	if !slices.Equal(strs("requiredDropCapabilities"), []string{"ALL"}) {
		t.Errorf("requiredDropCapabilities %v", strs("requiredDropCapabilities"))
	}
	if uid, _, _ := unstructured.NestedInt64(scc.Object, "runAsUser", "uid"); uid != *c.SecurityContext.RunAsUser {
		t.Errorf("SCC uid %d, speaker runs as %d", uid, *c.SecurityContext.RunAsUser)
	}
	if b("readOnlyRootFilesystem") && !*c.SecurityContext.ReadOnlyRootFilesystem {
		t.Error("the SCC forces a read-only root file system the speaker does not set")
	}
	for _, v := range pod.Volumes {
		if v.EmptyDir == nil {
			t.Errorf("volume %s is not an emptyDir: allow its kind in the SCC", v.Name)
		}
	}
	if !slices.Contains(strs("volumes"), "emptyDir") || slices.Contains(strs("volumes"), "hostPath") || slices.Contains(strs("volumes"), "*") {
		t.Errorf("volumes %v", strs("volumes"))
	}
	role := find[*rbacv1.Role](t, objs, SpeakerName)
	if !slices.ContainsFunc(role.Rules, func(r rbacv1.PolicyRule) bool {
		return slices.Equal(r.Verbs, []string{"use"}) && slices.Equal(r.ResourceNames, []string{SpeakerSCCName})
	}) {
		t.Errorf("speaker Role %v cannot use the SCC", role.Rules)
	}

	for name, tc := range map[string]struct {
		e  *operatorv1alpha1.OpenELB
		in Inputs
	}{
		"not OpenShift": {elb(nil), olmInputs()},
		"no speakers": {elb(func(s *operatorv1alpha1.OpenELBSpec) {
			s.Speaker.Layer2.Enabled, s.Speaker.BGP.Enabled = on(false), on(false)
		}), openshiftInputs()},
	} {
		objs, err := Render(tc.e, tc.in)
		if err != nil {
			t.Fatal(err)
		}
		if findSCC(objs) != nil {
			t.Errorf("%s: SCC rendered", name)
		}
		for _, o := range objs {
			if r, ok := o.(*rbacv1.Role); ok && slices.ContainsFunc(r.Rules, func(r rbacv1.PolicyRule) bool { return slices.Contains(r.Verbs, "use") }) {
				t.Errorf("%s: Role %s may use an SCC", name, r.Name)
			}
		}
	}
}
