package bundlecheck

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strings"

	operatorsv1alpha1 "github.com/operator-framework/api/pkg/operators/v1alpha1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// Package is the OLM package of openelb-operator.
const Package = "openelb-operator"

// Features are the features.operators.openshift.io annotations every CSV
// must state (OpenShift's catalog filters on them).
var Features = []string{
	"disconnected", "fips-compliant", "proxy-aware", "tls-profiles",
	"token-auth-aws", "token-auth-azure", "token-auth-gcp",
}

// CheckCSV checks the CSV fields OperatorHub and the OpenShift console
// read: identity, annotations, install modes, images.
func CheckCSV(b *Bundle) []error {
	csv := b.CSV
	var errs []error
	fail := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	version := csv.Spec.Version.String()
	if version == "0.0.0" || csv.Name != Package+".v"+version {
		fail("name %s, version %s: want %s.v<version>, version not 0.0.0", csv.Name, version, Package)
	}
	if csv.Spec.DisplayName == "" || len(csv.Spec.Description) < 500 || csv.Spec.MinKubeVersion == "" || csv.Spec.Maturity == "" ||
		csv.Spec.Provider.Name == "" || len(csv.Spec.Keywords) == 0 || len(csv.Spec.Links) == 0 || len(csv.Spec.Maintainers) == 0 {
		fail("displayName, a description that is a user guide, minKubeVersion, maturity, provider, keywords, links and maintainers are required")
	}
	for _, l := range csv.Spec.Links {
		if u, err := url.Parse(l.URL); err != nil || u.Scheme != "https" {
			fail("link %q: %q is not an https URL", l.Name, l.URL)
		}
	}
	if len(csv.Spec.Icon) != 1 || csv.Spec.Icon[0].MediaType != "image/svg+xml" || csv.Spec.Icon[0].Data == "" {
		fail("icon: want exactly one SVG")
	}
	a := csv.Annotations
	want := map[string]string{
		"capabilities": "Seamless Upgrades",
		"categories":   "Networking",
		"operatorframework.io/suggested-namespace": "openelb-system",
	}
	for k, v := range want {
		if a[k] != v {
			fail("annotation %s = %q, want %q", k, a[k], v)
		}
	}
	for _, k := range []string{"containerImage", "createdAt", "description", "repository", "support"} {
		if a[k] == "" {
			fail("annotation %s is empty", k)
		}
	}
	for _, f := range Features {
		if v := a["features.operators.openshift.io/"+f]; v != "true" && v != "false" {
			fail("annotation features.operators.openshift.io/%s = %q, want \"true\" or \"false\"", f, v)
		}
	}
	var ns struct {
		Kind     string `json:"kind"`
		Metadata struct {
			Name   string            `json:"name"`
			Labels map[string]string `json:"labels"`
		} `json:"metadata"`
	}
	if err := json.Unmarshal([]byte(a["operatorframework.io/suggested-namespace-template"]), &ns); err != nil ||
		ns.Kind != "Namespace" || ns.Metadata.Name != a["operatorframework.io/suggested-namespace"] ||
		ns.Metadata.Labels["pod-security.kubernetes.io/enforce"] != "privileged" {
		fail("suggested-namespace-template %q: want the suggested Namespace, labelled for the privileged Pod Security level (the speakers use host networking): %v", a["operatorframework.io/suggested-namespace-template"], err)
	}
	if got := installModes(csv); !maps.Equal(got, map[operatorsv1alpha1.InstallModeType]bool{
		operatorsv1alpha1.InstallModeTypeOwnNamespace: false, operatorsv1alpha1.InstallModeTypeSingleNamespace: false,
		operatorsv1alpha1.InstallModeTypeMultiNamespace: false, operatorsv1alpha1.InstallModeTypeAllNamespaces: true,
	}) {
		fail("install modes %v: want all four listed, AllNamespaces only (the conversion webhook requires it)", got)
	}
	return append(errs, checkImages(b)...)
}

func installModes(csv *operatorsv1alpha1.ClusterServiceVersion) map[operatorsv1alpha1.InstallModeType]bool {
	out := map[operatorsv1alpha1.InstallModeType]bool{}
	for _, m := range csv.Spec.InstallModes {
		out[m.Type] = m.Supported
	}
	return out
}

// checkImages: containerImage is the manager's image, every image the
// operator deploys (RELATED_IMAGE_*) is a related image, and
// "disconnected" is claimed only with every image pinned by digest.
func checkImages(b *Bundle) []error {
	var errs []error
	dep, err := b.ManagerDeployment()
	if err != nil {
		return []error{err}
	}
	related := map[string]bool{}
	for _, r := range b.CSV.Spec.RelatedImages {
		related[r.Image] = true
	}
	containerImage := b.CSV.Annotations["containerImage"]
	if !related[containerImage] {
		errs = append(errs, fmt.Errorf("containerImage %s is not a related image", containerImage))
	}
	manager := false
	operand := false
	for _, c := range dep.Spec.Template.Spec.Containers {
		manager = manager || c.Image == containerImage
		if !related[c.Image] {
			errs = append(errs, fmt.Errorf("container %s image %s is not a related image", c.Name, c.Image))
		}
		for _, e := range c.Env {
			if !strings.HasPrefix(e.Name, "RELATED_IMAGE_") {
				continue
			}
			operand = operand || e.Name == "RELATED_IMAGE_OPENELB"
			if !related[e.Value] {
				errs = append(errs, fmt.Errorf("%s=%s is not a related image", e.Name, e.Value))
			}
		}
	}
	if !manager {
		errs = append(errs, fmt.Errorf("no container of %s runs containerImage %s", dep.Name, containerImage))
	}
	if !operand {
		errs = append(errs, fmt.Errorf("%s does not pass RELATED_IMAGE_OPENELB (the operator cannot start without it)", dep.Name))
	}
	if b.CSV.Annotations["features.operators.openshift.io/disconnected"] == "true" {
		for img := range related {
			if !strings.Contains(img, "@sha256:") {
				errs = append(errs, fmt.Errorf("disconnected is claimed but %s is not pinned by digest", img))
			}
		}
	}
	return errs
}

// CheckExamples: alm-examples has a complete example of every owned
// version (metadata.name, a spec, valid against the CRD schema and its CEL
// rules, no unknown field), the initialization resource is the OpenELB
// example, and every top-level spec key of an example has a descriptor.
func CheckExamples(b *Bundle) []error {
	var errs []error
	examples, err := b.Examples()
	if err != nil {
		return []error{fmt.Errorf("alm-examples: %w", err)}
	}
	covered := map[string]bool{}
	for _, ex := range examples {
		what := ex.GetAPIVersion() + " " + ex.GetKind() + " " + ex.GetName()
		owned := findOwned(b, ex.GetAPIVersion(), ex.GetKind())
		if owned == nil {
			errs = append(errs, fmt.Errorf("example %s: not an owned API", what))
			continue
		}
		covered[owned.Name+"/"+owned.Version] = true
		spec, ok := ex.Object["spec"].(map[string]any)
		if ex.GetName() == "" || !ok {
			errs = append(errs, fmt.Errorf("example %s: needs metadata.name and a non-null spec (the console's form)", what))
		}
		if _, ok := ex.Object["status"]; ok {
			errs = append(errs, fmt.Errorf("example %s has a status", what))
		}
		errs = append(errs, b.ValidateObject(ex)...)
		for k := range spec {
			if !slices.ContainsFunc(owned.SpecDescriptors, func(d operatorsv1alpha1.SpecDescriptor) bool { return d.Path == k }) {
				errs = append(errs, fmt.Errorf("example %s: spec.%s has no spec descriptor with exactly that path (scorecard olm-spec-descriptors)", what, k))
			}
		}
	}
	for _, o := range b.CSV.Spec.CustomResourceDefinitions.Owned {
		if !covered[o.Name+"/"+o.Version] {
			errs = append(errs, fmt.Errorf("owned %s %s has no example", o.Name, o.Version))
		}
	}
	init, err := decodeJSONObjects("[" + b.CSV.Annotations["operatorframework.io/initialization-resource"] + "]")
	if err != nil || len(init) != 1 || init[0].GetKind() != "OpenELB" || init[0].GetName() != "openelb" {
		errs = append(errs, fmt.Errorf("initialization-resource: want the OpenELB resource named openelb (%v)", err))
	} else {
		errs = append(errs, b.ValidateObject(init[0])...)
	}
	return errs
}

func findOwned(b *Bundle, apiVersion, kind string) *operatorsv1alpha1.CRDDescription {
	for i, o := range b.CSV.Spec.CustomResourceDefinitions.Owned {
		_, group, _ := strings.Cut(o.Name, ".")
		if o.Kind == kind && group+"/"+o.Version == apiVersion {
			return &b.CSV.Spec.CustomResourceDefinitions.Owned[i]
		}
	}
	return nil
}

// x-descriptors the OpenShift console understands
// (console: packages/operator-lifecycle-manager/src/components/descriptors/types.ts).
var (
	specXDescriptors = []string{
		"podCount", "endpointList", "label", "resourceRequirements", "namespaceSelector", "booleanSwitch",
		"password", "checkbox", "imagePullPolicy", "updateStrategy", "text", "number", "nodeAffinity",
		"podAffinity", "podAntiAffinity", "advanced", "hidden",
	}
	specXPrefixes       = []string{"selector:", "fieldGroup:", "arrayFieldGroup:", "select:", "fieldDependency:"}
	statusXDescriptors  = []string{"urn:alm:descriptor:io.kubernetes.conditions", "urn:alm:descriptor:io.kubernetes.phase", "urn:alm:descriptor:io.kubernetes.phase:reason", "urn:alm:descriptor:com.tectonic.ui:podStatuses", "urn:alm:descriptor:com.tectonic.ui:podCount", "urn:alm:descriptor:org.w3:link", "urn:alm:descriptor:text", "urn:alm:descriptor:prometheusEndpoint", "urn:alm:descriptor:com.tectonic.ui:hidden"}
	k8sResourceXPrefix  = "urn:alm:descriptor:io.kubernetes:"
	tectonicXDescriptor = "urn:alm:descriptor:com.tectonic.ui:"
)

func knownSpecX(x string) bool {
	if strings.HasPrefix(x, k8sResourceXPrefix) {
		return len(x) > len(k8sResourceXPrefix)
	}
	rest, ok := strings.CutPrefix(x, tectonicXDescriptor)
	if !ok {
		return false
	}
	if slices.Contains(specXDescriptors, rest) {
		return true
	}
	for _, p := range specXPrefixes {
		if strings.HasPrefix(rest, p) && len(rest) > len(p) {
			return true
		}
	}
	return false
}

func knownStatusX(x string) bool {
	return slices.Contains(statusXDescriptors, x) || (strings.HasPrefix(x, k8sResourceXPrefix) && len(x) > len(k8sResourceXPrefix))
}

// CheckDescriptors: every owned API has a display name, a description and
// resources; every top-level spec and status field has a descriptor; every
// descriptor path exists in the schema and uses x-descriptors the console
// knows; a fieldDependency names an existing field.
func CheckDescriptors(b *Bundle) []error {
	var errs []error
	for _, o := range b.CSV.Spec.CustomResourceDefinitions.Owned {
		what := o.Name + " " + o.Version
		if o.DisplayName == "" || o.Description == "" || len(o.Resources) == 0 {
			errs = append(errs, fmt.Errorf("%s: displayName, description and resources are required", what))
		}
		var specPaths, statusPaths []string
		for _, d := range o.SpecDescriptors {
			specPaths = append(specPaths, d.Path)
			errs = append(errs, checkDescriptor(b, o, "spec", d.Path, d.DisplayName, d.XDescriptors, knownSpecX)...)
		}
		for _, d := range o.StatusDescriptors {
			statusPaths = append(statusPaths, d.Path)
			errs = append(errs, checkDescriptor(b, o, "status", d.Path, d.DisplayName, d.XDescriptors, knownStatusX)...)
		}
		for root, paths := range map[string][]string{"spec": specPaths, "status": statusPaths} {
			fields, err := b.TopLevelFields(o.Name, o.Version, root)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			for _, f := range fields {
				if !slices.ContainsFunc(paths, func(p string) bool { return p == f || strings.HasPrefix(p, f+".") || strings.HasPrefix(p, f+"[") }) {
					errs = append(errs, fmt.Errorf("%s: %s.%s has no descriptor", what, root, f))
				}
			}
			for _, p := range duplicates(paths) {
				errs = append(errs, fmt.Errorf("%s: %s descriptor %s is listed twice", what, root, p))
			}
		}
	}
	return errs
}

func checkDescriptor(b *Bundle, o operatorsv1alpha1.CRDDescription, root, path, displayName string, xs []string, known func(string) bool) []error {
	var errs []error
	what := fmt.Sprintf("%s %s %s descriptor %s", o.Name, o.Version, root, path)
	if displayName == "" {
		errs = append(errs, fmt.Errorf("%s: no displayName", what))
	}
	if _, err := b.ResolvePath(o.Name, o.Version, root, path); err != nil {
		errs = append(errs, fmt.Errorf("%s: %w", what, err))
	}
	for _, x := range xs {
		if !known(x) {
			errs = append(errs, fmt.Errorf("%s: x-descriptor %q is not one the console knows", what, x))
			continue
		}
		if dep, ok := strings.CutPrefix(x, tectonicXDescriptor+"fieldDependency:"); ok {
			p, _, _ := strings.Cut(dep, ":")
			if _, err := b.ResolvePath(o.Name, o.Version, root, p); err != nil {
				errs = append(errs, fmt.Errorf("%s: fieldDependency: %w", what, err))
			}
		}
	}
	return errs
}

func duplicates(s []string) []string {
	seen := map[string]int{}
	var out []string
	for _, v := range s {
		if seen[v]++; seen[v] == 2 {
			out = append(out, v)
		}
	}
	return out
}

// CheckDeployment checks the operator Deployment as OLM runs it: a
// restricted security context without a fixed user (OpenShift's
// restricted-v2), requests and a memory limit, probes, leader election,
// controller-runtime's default certificate directory (where OLM mounts the
// webhook certificate), and no Secret volume nothing creates (the
// kubebuilder cert-volume trap: the pod would wait forever).
func CheckDeployment(b *Bundle) []error {
	dep, err := b.ManagerDeployment()
	if err != nil {
		return []error{err}
	}
	var errs []error
	fail := func(format string, a ...any) { errs = append(errs, fmt.Errorf(dep.Name+": "+format, a...)) }
	pod := dep.Spec.Template.Spec
	if psc := pod.SecurityContext; psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot || psc.RunAsUser != nil ||
		psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		fail("pod security context: want runAsNonRoot, no fixed runAsUser, seccomp RuntimeDefault")
	}
	secrets := map[string]bool{}
	for _, o := range b.Objects {
		if o.GetKind() == "Secret" {
			secrets[o.GetName()] = true
		}
	}
	for _, v := range pod.Volumes {
		if v.Secret != nil && !secrets[v.Secret.SecretName] && (v.Secret.Optional == nil || !*v.Secret.Optional) {
			fail("volume %s mounts Secret %s, which nothing in the bundle creates (OLM replaces only a volume named webhook-cert)", v.Name, v.Secret.SecretName)
		}
		if v.Name == "webhook-cert" || v.Name == "apiservice-cert" {
			fail("volume %s: OLM adds that volume itself", v.Name)
		}
	}
	for _, c := range pod.Containers {
		sc := c.SecurityContext
		if sc == nil || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
			sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(sc.Capabilities.Add) > 0 || sc.RunAsUser != nil ||
			(sc.Privileged != nil && *sc.Privileged) {
			fail("container %s security context: want no privilege escalation, read-only root, drop ALL, nothing added, no fixed user", c.Name)
		}
		if c.Resources.Requests.Cpu().IsZero() || c.Resources.Requests.Memory().IsZero() || c.Resources.Limits.Memory().IsZero() {
			fail("container %s: CPU and memory requests and a memory limit are required", c.Name)
		}
		if !probe(c.LivenessProbe, "/healthz", 8081) || !probe(c.ReadinessProbe, "/readyz", 8081) {
			fail("container %s: want probes :8081 /healthz and /readyz", c.Name)
		}
		if !slices.Contains(c.Args, "--leader-elect") {
			fail("container %s: --leader-elect missing (OLM may run two during an upgrade)", c.Name)
		}
		for _, arg := range c.Args {
			if strings.HasPrefix(arg, "--webhook-cert-dir") {
				fail("container %s sets %s: OLM mounts its certificate at controller-runtime's default directory", c.Name, arg)
			}
		}
		for _, e := range c.Env {
			if e.Name == "TMPDIR" {
				fail("container %s sets TMPDIR: controller-runtime's default certificate directory would move away from OLM's mount", c.Name)
			}
		}
	}
	return errs
}

func probe(p *corev1.Probe, path string, port int) bool {
	return p != nil && p.HTTPGet != nil && p.HTTPGet.Path == path && p.HTTPGet.Port == intstr.FromInt32(int32(port))
}

// CheckWebhooks: the webhook definitions name the Deployment and its
// webhook port, convert exactly the CRDs whose conversion is a webhook,
// and the admission webhooks the controller serves are not in the bundle
// (the operator creates them at runtime with a certificate of its own).
func CheckWebhooks(b *Bundle) []error {
	var errs []error
	dep, err := b.ManagerDeployment()
	if err != nil {
		return []error{err}
	}
	converted := map[string]bool{}
	for name, crd := range b.CRDs {
		if crd.Spec.Conversion != nil && crd.Spec.Conversion.Strategy == "Webhook" {
			converted[name] = true
		}
	}
	inDefs := map[string]bool{}
	for _, w := range b.CSV.Spec.WebhookDefinitions {
		if w.Type != operatorsv1alpha1.ConversionWebhook {
			errs = append(errs, fmt.Errorf("webhook %s: type %s; the controller's admission webhooks are the operator's, not OLM's", w.GenerateName, w.Type))
		}
		if w.DeploymentName != dep.Name {
			errs = append(errs, fmt.Errorf("webhook %s: deploymentName %s is not the operator Deployment %s", w.GenerateName, w.DeploymentName, dep.Name))
		}
		if w.ContainerPort != 443 || w.TargetPort == nil || !hasPort(dep.Spec.Template.Spec.Containers, w.TargetPort.IntValue()) || w.WebhookPath == nil || *w.WebhookPath != "/convert" {
			errs = append(errs, fmt.Errorf("webhook %s: want containerPort 443, a targetPort the Deployment listens on, path /convert", w.GenerateName))
		}
		for _, c := range w.ConversionCRDs {
			inDefs[c] = true
			if !converted[c] {
				errs = append(errs, fmt.Errorf("webhook %s converts %s, whose conversion is not a webhook in the bundle", w.GenerateName, c))
			}
		}
	}
	for c := range converted {
		if !inDefs[c] {
			errs = append(errs, fmt.Errorf("CRD %s converts by webhook but no webhook definition serves it", c))
		}
	}
	return errs
}

func hasPort(cs []corev1.Container, port int) bool {
	for _, c := range cs {
		for _, p := range c.Ports {
			if int(p.ContainerPort) == port {
				return true
			}
		}
	}
	return false
}

// CheckRBAC: the operator cannot touch CRDs under OLM (OLM owns them), can
// manage and use the speakers' SCC on OpenShift, and its namespaced roles
// ship as Roles bound in the install namespace (not lifted to the cluster
// by OLM as "permissions" would be in AllNamespaces mode).
func CheckRBAC(b *Bundle) []error {
	var errs []error
	strategy := b.CSV.Spec.InstallStrategy.StrategySpec
	if len(strategy.Permissions) > 0 {
		errs = append(errs, fmt.Errorf("the CSV has namespaced permissions: OLM lifts them to ClusterRoles in AllNamespaces mode; ship Roles instead"))
	}
	var rules []rbacv1.PolicyRule
	for _, p := range strategy.ClusterPermissions {
		rules = append(rules, p.Rules...)
	}
	for _, r := range rules {
		if slices.Contains(r.APIGroups, "apiextensions.k8s.io") {
			errs = append(errs, fmt.Errorf("clusterPermissions grant %v on CRDs: under OLM the operator never touches them", r.Verbs))
		}
		if len(r.ResourceNames) == 0 && slices.Contains(r.Resources, "secrets") {
			errs = append(errs, fmt.Errorf("clusterPermissions read Secrets cluster-wide"))
		}
	}
	sccUse := slices.ContainsFunc(rules, func(r rbacv1.PolicyRule) bool {
		return slices.Contains(r.APIGroups, "security.openshift.io") && slices.Contains(r.Verbs, "use") && slices.Equal(r.ResourceNames, []string{"openelb-speaker"})
	})
	if !sccUse {
		errs = append(errs, fmt.Errorf("clusterPermissions do not let the operator grant use of SCC openelb-speaker"))
	}
	roles, bindings := map[string]bool{}, 0
	for _, o := range b.Objects {
		switch o.GetKind() {
		case "Role":
			roles[o.GetName()] = true
		case "RoleBinding":
			bindings++
			rb := &rbacv1.RoleBinding{}
			if err := fromUnstructured(o.Object, rb); err != nil {
				errs = append(errs, err)
				continue
			}
			if rb.RoleRef.Kind == "Role" && !hasObject(b, "Role", rb.RoleRef.Name) {
				errs = append(errs, fmt.Errorf("RoleBinding %s binds Role %s, which is not in the bundle", rb.Name, rb.RoleRef.Name))
			}
			for _, s := range rb.Subjects {
				if s.Kind == "ServiceAccount" && s.Namespace != "" {
					errs = append(errs, fmt.Errorf("RoleBinding %s: subject %s names namespace %s; leave it empty (the install namespace)", rb.Name, s.Name, s.Namespace))
				}
			}
		}
	}
	if len(roles) == 0 || bindings == 0 {
		errs = append(errs, fmt.Errorf("no Role and RoleBinding for the operator's namespace (leader election, Secrets, operands' Roles)"))
	}
	return errs
}

func hasObject(b *Bundle, kind, name string) bool {
	for _, o := range b.Objects {
		if o.GetKind() == kind && o.GetName() == name {
			return true
		}
	}
	return false
}

// CheckLabels: bundle.Dockerfile's LABELs are annotations.yaml, and its
// COPY lines put manifests/, metadata/ and the scorecard configuration
// where the annotations say.
func CheckLabels(b *Bundle) []error {
	var errs []error
	if !maps.Equal(b.DockerLabels, b.Annotations) {
		for k, v := range b.Annotations {
			if b.DockerLabels[k] != v {
				errs = append(errs, fmt.Errorf("annotation %s=%s: bundle.Dockerfile LABEL is %q", k, v, b.DockerLabels[k]))
			}
		}
		for k := range b.DockerLabels {
			if _, ok := b.Annotations[k]; !ok {
				errs = append(errs, fmt.Errorf("bundle.Dockerfile LABEL %s is not in annotations.yaml", k))
			}
		}
	}
	a := b.Annotations
	for src, key := range map[string]string{
		"bundle/manifests":       "operators.operatorframework.io.bundle.manifests.v1",
		"bundle/metadata":        "operators.operatorframework.io.bundle.metadata.v1",
		"bundle/tests/scorecard": "operators.operatorframework.io.test.config.v1",
	} {
		if got := strings.Trim(b.DockerCopies[src], "/"); got != strings.Trim(a[key], "/") {
			errs = append(errs, fmt.Errorf("COPY %s to /%s, annotation %s says %s", src, got, key, a[key]))
		}
	}
	if a["operators.operatorframework.io.bundle.package.v1"] != Package || a["operators.operatorframework.io.bundle.mediatype.v1"] != "registry+v1" {
		errs = append(errs, fmt.Errorf("annotations: package %s, media type %s", a["operators.operatorframework.io.bundle.package.v1"], a["operators.operatorframework.io.bundle.mediatype.v1"]))
	}
	return errs
}

func fromUnstructured(u map[string]any, into any) error {
	data, err := json.Marshal(u)
	if err != nil {
		return err
	}
	return json.Unmarshal(data, into)
}
