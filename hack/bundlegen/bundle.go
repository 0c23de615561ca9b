package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"sigs.k8s.io/yaml"
)

// object is one Kubernetes object as decoded from YAML.
type object = map[string]any

// Options are what the Makefile passes: versions, images and names.
type Options struct {
	// Package is the OLM package name; the CSV is <Package>.v<Version>.
	Package string
	// Version is the bundle's semantic version (no leading v).
	Version string
	// Replaces names the CSV this one upgrades (empty for the first).
	Replaces string
	// SkipRange, when set, becomes the olm.skipRange annotation.
	SkipRange string
	// Image is the operator's image (the manager container, containerImage).
	Image string
	// OperandImage is the controller and speaker image
	// (RELATED_IMAGE_OPENELB); Image when empty (one image, three roles).
	OperandImage string
	// CreatedAt is the fixed createdAt annotation (RFC 3339).
	CreatedAt string
	// Channels and DefaultChannel of the bundle.
	Channels       []string
	DefaultChannel string
	// OpenShiftVersions is com.redhat.openshift.versions (empty: none).
	OpenShiftVersions string
	// ScorecardImage runs the scorecard tests.
	ScorecardImage string
}

// Inputs are the options plus the files the bundle is made of.
type Inputs struct {
	Options
	// Base is the hand-written CSV base.
	Base []byte
	// Icon is the SVG shown by OperatorHub and the console.
	Icon []byte
	// Objects are `kubectl kustomize config/manifests`: CRDs, RBAC, the
	// operator Deployment and the samples.
	Objects []object
}

// Bundle is the generated bundle: file name to content for manifests/,
// plus metadata/annotations.yaml, the scorecard configuration and the
// bundle Dockerfile.
type Bundle struct {
	Manifests   map[string][]byte
	Annotations []byte
	Scorecard   []byte
	Dockerfile  []byte
}

// Well-known names.
const (
	annotationRelatedImagePrefix = "RELATED_IMAGE_"
	operandImageEnv              = "RELATED_IMAGE_OPENELB"
	webhookPortName              = "webhook"
	defaultContainerAnnotation   = "kubectl.kubernetes.io/default-container"
	featureDisconnected          = "features.operators.openshift.io/disconnected"
)

// generatedAnnotations and generatedSpec are filled by the generator and
// must not be in the base (one source of truth for each).
var (
	generatedAnnotations = []string{
		"alm-examples", "containerImage", "createdAt", featureDisconnected,
		"operatorframework.io/initialization-resource", "olm.skipRange",
	}
	generatedSpec = []string{"icon", "install", "relatedImages", "webhookdefinitions", "replaces"}
)

// Generate builds the bundle. It is deterministic: the same inputs give
// the same bytes.
func Generate(in Inputs) (*Bundle, error) {
	if err := in.check(); err != nil {
		return nil, err
	}
	csv, owned, err := parseBase(in.Base)
	if err != nil {
		return nil, err
	}
	parts, err := sortObjects(in.Objects, owned)
	if err != nil {
		return nil, err
	}
	if err := checkOwnedCRDs(owned, parts.crds); err != nil {
		return nil, err
	}
	for _, e := range parts.examples {
		if !isOwned(owned, str(e, "apiVersion"), str(e, "kind")) {
			return nil, fmt.Errorf("sample %s %s %s: that version is not owned", str(e, "apiVersion"), str(e, "kind"), str(e, "metadata", "name"))
		}
	}
	deployments, related, err := installDeployments(parts.deployments, in.Options)
	if err != nil {
		return nil, err
	}
	clusterPerms, files, err := installRBAC(parts, deployments)
	if err != nil {
		return nil, err
	}
	webhooks, err := conversionWebhooks(parts.crds, parts.deployments)
	if err != nil {
		return nil, err
	}
	examples := sortExamples(parts.examples, owned)
	if len(examples) == 0 {
		return nil, fmt.Errorf("no samples of an owned kind: alm-examples would be empty")
	}

	annotations := nestedMap(csv, "metadata", "annotations")
	almExamples, err := json.MarshalIndent(examples, "", "  ")
	if err != nil {
		return nil, err
	}
	initResource, err := json.MarshalIndent(examples[0], "", "  ")
	if err != nil {
		return nil, err
	}
	annotations["alm-examples"] = string(almExamples)
	annotations["operatorframework.io/initialization-resource"] = string(initResource)
	annotations["containerImage"] = in.Image
	annotations["createdAt"] = in.CreatedAt
	annotations[featureDisconnected] = disconnected(related)
	if in.SkipRange != "" {
		annotations["olm.skipRange"] = in.SkipRange
	}
	md := nestedMap(csv, "metadata")
	md["name"] = in.Package + ".v" + in.Version
	spec := nestedMap(csv, "spec")
	spec["version"] = in.Version
	if in.Replaces != "" {
		spec["replaces"] = in.Replaces
	}
	spec["icon"] = []any{map[string]any{"base64data": base64.StdEncoding.EncodeToString(in.Icon), "mediatype": "image/svg+xml"}}
	spec["install"] = map[string]any{
		"strategy": "deployment",
		"spec": map[string]any{
			"deployments":        deployments,
			"clusterPermissions": clusterPerms,
		},
	}
	spec["relatedImages"] = related
	if len(webhooks) > 0 {
		spec["webhookdefinitions"] = webhooks
	}

	b := &Bundle{Manifests: map[string][]byte{}}
	if b.Manifests[in.Package+".clusterserviceversion.yaml"], err = marshal(csv); err != nil {
		return nil, err
	}
	for _, crd := range parts.crds {
		name := str(crd, "spec", "group") + "_" + str(crd, "spec", "names", "plural") + ".yaml"
		if b.Manifests[name], err = marshal(crd); err != nil {
			return nil, err
		}
	}
	for _, o := range files {
		if b.Manifests[fileName(o)], err = marshal(o); err != nil {
			return nil, err
		}
	}
	labels := in.bundleLabels()
	if b.Annotations, err = annotationsFile(labels); err != nil {
		return nil, err
	}
	b.Dockerfile = dockerfile(labels)
	b.Scorecard = scorecard(in.ScorecardImage)
	return b, nil
}

func (in Inputs) check() error {
	switch {
	case in.Package == "" || in.Version == "" || in.Image == "":
		return fmt.Errorf("package, version and image are required")
	case strings.HasPrefix(in.Version, "v"):
		return fmt.Errorf("version %q: write it without the leading v", in.Version)
	case len(in.Icon) == 0:
		return fmt.Errorf("no icon")
	case len(in.Channels) == 0 || !slices.Contains(in.Channels, in.DefaultChannel):
		return fmt.Errorf("default channel %q is not one of the channels %v", in.DefaultChannel, in.Channels)
	}
	if _, err := time.Parse(time.RFC3339, in.CreatedAt); err != nil {
		return fmt.Errorf("createdAt %q: %w", in.CreatedAt, err)
	}
	return nil
}

func (in Inputs) operandImage() string {
	if in.OperandImage != "" {
		return in.OperandImage
	}
	return in.Image
}

// ownedAPI is one entry of spec.customresourcedefinitions.owned.
type ownedAPI struct {
	Name, Version, Kind string
}

func (o ownedAPI) group() string {
	_, g, _ := strings.Cut(o.Name, ".")
	return g
}

// parseBase decodes the CSV base and returns it as a map, with the owned
// APIs in the base's order. (hack/bundlecheck decodes the result strictly
// into operator-framework's types: a misspelt field fails there.)
func parseBase(data []byte) (object, []ownedAPI, error) {
	csv := object{}
	if err := yaml.Unmarshal(data, &csv); err != nil {
		return nil, nil, fmt.Errorf("CSV base: %w", err)
	}
	if str(csv, "kind") != "ClusterServiceVersion" {
		return nil, nil, fmt.Errorf("CSV base: kind %q", str(csv, "kind"))
	}
	annotations := nestedMap(csv, "metadata", "annotations")
	for _, k := range generatedAnnotations {
		if _, ok := annotations[k]; ok {
			return nil, nil, fmt.Errorf("CSV base sets annotation %s, which the generator writes", k)
		}
	}
	spec := nestedMap(csv, "spec")
	for _, k := range generatedSpec {
		if _, ok := spec[k]; ok {
			return nil, nil, fmt.Errorf("CSV base sets spec.%s, which the generator writes", k)
		}
	}
	var owned []ownedAPI
	list, _ := nestedMap(spec, "customresourcedefinitions")["owned"].([]any)
	for _, d := range list {
		dm, _ := d.(map[string]any)
		owned = append(owned, ownedAPI{Name: str(dm, "name"), Version: str(dm, "version"), Kind: str(dm, "kind")})
	}
	if len(owned) == 0 {
		return nil, nil, fmt.Errorf("CSV base owns no CRD")
	}
	return csv, owned, nil
}

// parts are the kustomize objects sorted by what becomes of them.
type parts struct {
	crds, deployments, serviceAccounts   []object
	clusterRoles, clusterRoleBindings    []object
	roles, roleBindings, extra, examples []object
}

// supported lists the kinds a registry+v1 bundle may carry besides the CSV
// and CRDs (operator-registry pkg/lib/bundle/supported_resources.go),
// without the RBAC kinds and ServiceAccounts, which are handled apart.
var supported = []string{
	"Secret", "ConfigMap", "Service", "PrometheusRule", "ServiceMonitor", "PodMonitor",
	"PodDisruptionBudget", "PriorityClass", "VerticalPodAutoscaler", "ConsoleYAMLSample",
	"ConsoleQuickStart", "ConsoleCLIDownload", "ConsoleLink", "ConsolePlugin", "NetworkPolicy",
}

func sortObjects(objs []object, owned []ownedAPI) (*parts, error) {
	p := &parts{}
	for _, o := range objs {
		kind, apiVersion := str(o, "kind"), str(o, "apiVersion")
		switch {
		case isOwnedKind(owned, apiVersion, kind):
			p.examples = append(p.examples, o)
		case kind == "CustomResourceDefinition":
			p.crds = append(p.crds, o)
		case kind == "Deployment":
			p.deployments = append(p.deployments, o)
		case kind == "ServiceAccount":
			p.serviceAccounts = append(p.serviceAccounts, o)
		case kind == "ClusterRole":
			p.clusterRoles = append(p.clusterRoles, o)
		case kind == "ClusterRoleBinding":
			p.clusterRoleBindings = append(p.clusterRoleBindings, o)
		case kind == "Role":
			p.roles = append(p.roles, o)
		case kind == "RoleBinding":
			p.roleBindings = append(p.roleBindings, o)
		case kind == "Namespace":
			// OLM installs into the namespace the user picks.
		case slices.Contains(supported, kind):
			p.extra = append(p.extra, o)
		default:
			return nil, fmt.Errorf("%s %s cannot be part of a registry+v1 bundle", kind, str(o, "metadata", "name"))
		}
	}
	if len(p.deployments) == 0 {
		return nil, fmt.Errorf("no Deployment: the CSV needs the operator's")
	}
	return p, nil
}

// isOwnedKind reports whether apiVersion's group and kind are owned (in
// any version: a sample of an unowned version is an error later).
func isOwnedKind(owned []ownedAPI, apiVersion, kind string) bool {
	group, _, _ := strings.Cut(apiVersion, "/")
	for _, o := range owned {
		if o.Kind == kind && o.group() == group {
			return true
		}
	}
	return false
}

func isOwned(owned []ownedAPI, apiVersion, kind string) bool {
	for _, o := range owned {
		if o.Kind == kind && o.group()+"/"+o.Version == apiVersion {
			return true
		}
	}
	return false
}

// checkOwnedCRDs: every owned entry names a CRD of the bundle that serves
// that version with that kind, and every served version of every CRD is
// owned (the console offers forms per owned version).
func checkOwnedCRDs(owned []ownedAPI, crds []object) error {
	served := map[ownedAPI]bool{}
	for _, crd := range crds {
		versions, _ := crd["spec"].(map[string]any)["versions"].([]any)
		for _, v := range versions {
			vm, _ := v.(map[string]any)
			if vm["served"] == true {
				served[ownedAPI{Name: str(crd, "metadata", "name"), Version: str(vm, "name"), Kind: str(crd, "spec", "names", "kind")}] = true
			}
		}
	}
	for _, o := range owned {
		if !served[o] {
			return fmt.Errorf("owned %s %s %s is not served by a CRD of the bundle", o.Name, o.Version, o.Kind)
		}
	}
	for s := range served {
		if !slices.Contains(owned, s) {
			return fmt.Errorf("%s %s is served but not in the CSV's owned CRDs", s.Name, s.Version)
		}
	}
	return nil
}

// installDeployments turns the Deployments into the CSV's install
// deployments with the release images: the manager container runs Image,
// RELATED_IMAGE_OPENELB is the operand image. It returns the
// relatedImages: the operator's image and every RELATED_IMAGE_* value.
func installDeployments(deps []object, o Options) ([]any, []any, error) {
	images := map[string]string{o.Package: o.Image}
	var out []any
	for _, d := range deps {
		name := str(d, "metadata", "name")
		spec := deepCopy(nestedMap(d, "spec"))
		tmpl := nestedMap(spec, "template")
		containers, _ := nestedMap(tmpl, "spec")["containers"].([]any)
		if len(containers) == 0 {
			return nil, nil, fmt.Errorf("Deployment %s has no containers", name)
		}
		manager := str(tmpl, "metadata", "annotations", defaultContainerAnnotation)
		operand := false
		for i, c := range containers {
			cm, _ := c.(map[string]any)
			if (manager == "" && i == 0) || str(cm, "name") == manager {
				cm["image"] = o.Image
			}
			env, _ := cm["env"].([]any)
			for _, e := range env {
				em, _ := e.(map[string]any)
				n := str(em, "name")
				if !strings.HasPrefix(n, annotationRelatedImagePrefix) {
					continue
				}
				if n == operandImageEnv {
					em["value"] = Inputs{Options: o}.operandImage()
					operand = true
				}
				if str(em, "value") == "" {
					return nil, nil, fmt.Errorf("Deployment %s: %s has no value", name, n)
				}
				images[relatedName(n)] = str(em, "value")
			}
		}
		if !operand {
			return nil, nil, fmt.Errorf("Deployment %s does not set %s: the operator needs it", name, operandImageEnv)
		}
		entry := map[string]any{"name": name, "spec": spec}
		if l, ok := nestedMap(d, "metadata")["labels"]; ok {
			entry["label"] = l
		}
		out = append(out, entry)
	}
	var related []any
	for _, n := range slices.Sorted(maps.Keys(images)) {
		related = append(related, map[string]any{"name": n, "image": images[n]})
	}
	return out, related, nil
}

// relatedName turns RELATED_IMAGE_OPENELB into openelb.
func relatedName(env string) string {
	return strings.ReplaceAll(strings.ToLower(strings.TrimPrefix(env, annotationRelatedImagePrefix)), "_", "-")
}

// disconnected is "true" only when every related image is pinned by
// digest: mirroring for a disconnected cluster needs digests.
func disconnected(related []any) string {
	for _, r := range related {
		if !strings.Contains(str(r.(map[string]any), "image"), "@sha256:") {
			return "false"
		}
	}
	return "true"
}

// olmManagedRule reports the rules OLM makes unnecessary: the operator
// patches its CRDs' conversion (caBundle) only outside OLM; under OLM, OLM
// owns the CRDs and injects the CA bundle. Dropping the rule keeps the
// bundle's permissions least-privilege (and avoids the good-practices
// warning about operators that manage CRDs).
func olmManagedRule(rule map[string]any) (bool, error) {
	groups, resources := strSlice(rule["apiGroups"]), strSlice(rule["resources"])
	crd := slices.Contains(groups, "apiextensions.k8s.io") && slices.Contains(resources, "customresourcedefinitions")
	if crd && (len(groups) > 1 || len(resources) > 1) {
		return false, fmt.Errorf("a rule mixes customresourcedefinitions with other resources: split it")
	}
	return crd, nil
}

// installRBAC puts the rules of every ClusterRole bound to a Deployment's
// ServiceAccount into clusterPermissions. Roles and RoleBindings stay
// files of the bundle: OLM creates them in the install namespace as they
// are, whereas the CSV's namespaced "permissions" are lifted to
// ClusterRoles in AllNamespaces mode (OLM's ensureSingletonRBAC), which
// would let the operator read Secrets cluster-wide. The Deployments'
// ServiceAccounts are not shipped (OLM creates them; shipping one is an
// error).
func installRBAC(p *parts, deployments []any) ([]any, []object, error) {
	sas := map[string]bool{}
	for _, d := range deployments {
		sas[str(d.(map[string]any), "spec", "template", "spec", "serviceAccountName")] = true
	}
	clusterRoles := map[string]object{}
	for _, cr := range p.clusterRoles {
		clusterRoles[str(cr, "metadata", "name")] = cr
	}
	rulesBySA := map[string][]any{}
	bound := map[string]bool{}
	for _, b := range p.clusterRoleBindings {
		name := str(b, "metadata", "name")
		role := clusterRoles[str(b, "roleRef", "name")]
		if role == nil {
			return nil, nil, fmt.Errorf("ClusterRoleBinding %s binds a ClusterRole not in the bundle", name)
		}
		subjects, _ := b["subjects"].([]any)
		for _, s := range subjects {
			sm, _ := s.(map[string]any)
			if str(sm, "kind") != "ServiceAccount" || !sas[str(sm, "name")] {
				return nil, nil, fmt.Errorf("ClusterRoleBinding %s binds %s %s, not a Deployment's ServiceAccount", name, str(sm, "kind"), str(sm, "name"))
			}
			rules, _ := role["rules"].([]any)
			for _, r := range rules {
				drop, err := olmManagedRule(r.(map[string]any))
				if err != nil {
					return nil, nil, fmt.Errorf("ClusterRole %s: %w", str(role, "metadata", "name"), err)
				}
				if !drop {
					rulesBySA[str(sm, "name")] = append(rulesBySA[str(sm, "name")], r)
				}
			}
		}
		bound[str(role, "metadata", "name")] = true
	}
	var perms []any
	for _, sa := range slices.Sorted(maps.Keys(rulesBySA)) {
		perms = append(perms, map[string]any{"serviceAccountName": sa, "rules": rulesBySA[sa]})
	}
	for sa := range sas {
		if _, ok := rulesBySA[sa]; !ok {
			return nil, nil, fmt.Errorf("ServiceAccount %s has no cluster permissions: OLM would not create it", sa)
		}
	}

	var files []object
	for _, cr := range p.clusterRoles {
		if !bound[str(cr, "metadata", "name")] {
			files = append(files, cr)
		}
	}
	for _, sa := range p.serviceAccounts {
		if !sas[str(sa, "metadata", "name")] {
			files = append(files, namespaceless(sa))
		}
	}
	for _, r := range p.roles {
		files = append(files, namespaceless(r))
	}
	for _, rb := range p.roleBindings {
		rb = namespaceless(rb)
		subjects, _ := rb["subjects"].([]any)
		for _, s := range subjects {
			// A ServiceAccount subject without a namespace is the
			// RoleBinding's own namespace: the install namespace.
			if sm, _ := s.(map[string]any); str(sm, "kind") == "ServiceAccount" {
				delete(sm, "namespace")
			}
		}
		files = append(files, rb)
	}
	for _, o := range p.extra {
		files = append(files, namespaceless(o))
	}
	return perms, files, nil
}

// conversionWebhooks returns one ConversionWebhook definition per webhook
// path of the CRDs converted by a webhook, served by the Deployment with a
// container port named "webhook". OLM creates the Service
// (<deployment>-service, 443 to the target port) and the certificate, and
// points the CRDs' conversion at it.
func conversionWebhooks(crds, deps []object) ([]any, error) {
	byPath := map[string][]object{}
	for _, crd := range crds {
		if str(crd, "spec", "conversion", "strategy") != "Webhook" {
			continue
		}
		path := str(crd, "spec", "conversion", "webhook", "clientConfig", "service", "path")
		byPath[path] = append(byPath[path], crd)
	}
	if len(byPath) == 0 {
		return nil, nil
	}
	dep, target, err := webhookDeployment(deps)
	if err != nil {
		return nil, err
	}
	var out []any
	for _, path := range slices.Sorted(maps.Keys(byPath)) {
		group := byPath[path]
		var names []string
		for _, crd := range group {
			names = append(names, str(crd, "metadata", "name"))
		}
		slices.Sort(names)
		svc := nestedMap(group[0], "spec", "conversion", "webhook", "clientConfig", "service")
		port := svc["port"]
		if port == nil {
			port = float64(443)
		}
		out = append(out, map[string]any{
			"type":                    "ConversionWebhook",
			"generateName":            "conversion." + str(group[0], "spec", "group"),
			"deploymentName":          dep,
			"containerPort":           port,
			"targetPort":              target,
			"webhookPath":             path,
			"conversionCRDs":          toAny(names),
			"admissionReviewVersions": nestedMap(group[0], "spec", "conversion", "webhook")["conversionReviewVersions"],
			"sideEffects":             "None",
		})
	}
	return out, nil
}

func webhookDeployment(deps []object) (string, any, error) {
	for _, d := range deps {
		containers, _ := nestedMap(d, "spec", "template", "spec")["containers"].([]any)
		for _, c := range containers {
			ports, _ := c.(map[string]any)["ports"].([]any)
			for _, p := range ports {
				if pm := p.(map[string]any); str(pm, "name") == webhookPortName {
					return str(d, "metadata", "name"), pm["containerPort"], nil
				}
			}
		}
	}
	return "", nil, fmt.Errorf("CRDs convert by webhook but no Deployment has a container port named %q", webhookPortName)
}

// sortExamples orders the samples by the owned APIs' order in the base
// (the first is the operator's own resource: the initialization resource),
// then by name; they lose namespace and status.
func sortExamples(examples []object, owned []ownedAPI) []any {
	index := func(o object) int {
		for i, api := range owned {
			if api.Kind == str(o, "kind") && api.group()+"/"+api.Version == str(o, "apiVersion") {
				return i
			}
		}
		return len(owned)
	}
	sorted := slices.Clone(examples)
	slices.SortStableFunc(sorted, func(a, b object) int {
		if d := index(a) - index(b); d != 0 {
			return d
		}
		return strings.Compare(str(a, "metadata", "name"), str(b, "metadata", "name"))
	})
	out := make([]any, 0, len(sorted))
	for _, e := range sorted {
		e = namespaceless(e)
		delete(e, "status")
		out = append(out, e)
	}
	return out
}

// bundleLabels are metadata/annotations.yaml and the Dockerfile's LABELs.
func (in Inputs) bundleLabels() map[string]string {
	l := map[string]string{
		"operators.operatorframework.io.bundle.mediatype.v1":       "registry+v1",
		"operators.operatorframework.io.bundle.manifests.v1":       "manifests/",
		"operators.operatorframework.io.bundle.metadata.v1":        "metadata/",
		"operators.operatorframework.io.bundle.package.v1":         in.Package,
		"operators.operatorframework.io.bundle.channels.v1":        strings.Join(in.Channels, ","),
		"operators.operatorframework.io.bundle.channel.default.v1": in.DefaultChannel,
		"operators.operatorframework.io.metrics.builder":           "openelb-operator-bundlegen",
		"operators.operatorframework.io.metrics.mediatype.v1":      "metrics+v1",
		"operators.operatorframework.io.metrics.project_layout":    "go.kubebuilder.io/v4",
		"operators.operatorframework.io.test.mediatype.v1":         "scorecard+v1",
		"operators.operatorframework.io.test.config.v1":            "tests/scorecard/",
	}
	if in.OpenShiftVersions != "" {
		l["com.redhat.openshift.versions"] = in.OpenShiftVersions
	}
	return l
}

const generatedHeader = "# Generated by `make bundle` (hack/bundlegen) from config/; do not edit.\n"

func annotationsFile(labels map[string]string) ([]byte, error) {
	data, err := yaml.Marshal(map[string]any{"annotations": labels})
	if err != nil {
		return nil, err
	}
	return append([]byte(generatedHeader), data...), nil
}

func dockerfile(labels map[string]string) []byte {
	var b bytes.Buffer
	b.WriteString(generatedHeader)
	b.WriteString("# The bundle image: docker build -f bundle.Dockerfile -t $BUNDLE_IMG .\nFROM scratch\n\n")
	for _, k := range slices.Sorted(maps.Keys(labels)) {
		fmt.Fprintf(&b, "LABEL %s=%s\n", k, labels[k])
	}
	b.WriteString("\nCOPY bundle/manifests /manifests/\nCOPY bundle/metadata /metadata/\nCOPY bundle/tests/scorecard /tests/scorecard/\n")
	return b.Bytes()
}

// scorecard is the configuration operator-sdk's scorecard runs (in a
// cluster; hack/bundlecheck checks the same rules offline).
func scorecard(image string) []byte {
	var tests []any
	for _, t := range []struct{ suite, name string }{
		{"basic", "basic-check-spec"},
		{"olm", "olm-bundle-validation"},
		{"olm", "olm-crds-have-validation"},
		{"olm", "olm-crds-have-resources"},
		{"olm", "olm-spec-descriptors"},
		{"olm", "olm-status-descriptors"},
	} {
		tests = append(tests, map[string]any{
			"entrypoint": []any{"scorecard-test", t.name},
			"image":      image,
			"labels":     map[string]any{"suite": t.suite, "test": t.name + "-test"},
		})
	}
	data, err := yaml.Marshal(map[string]any{
		"apiVersion": "scorecard.operatorframework.io/v1alpha3",
		"kind":       "Configuration",
		"metadata":   map[string]any{"name": "config"},
		"stages":     []any{map[string]any{"parallel": true, "tests": tests}},
		"storage":    map[string]any{"spec": map[string]any{"mountPath": map[string]any{}}},
	})
	if err != nil {
		panic(err) // plain maps of strings always marshal
	}
	return append([]byte(generatedHeader), data...)
}

// fileName names an extra object as operator-sdk does:
// <name>_<group>_<version>_<kind>.yaml (no group for the core group).
func fileName(o object) string {
	gv := strings.ReplaceAll(str(o, "apiVersion"), "/", "_")
	return str(o, "metadata", "name") + "_" + gv + "_" + strings.ToLower(str(o, "kind")) + ".yaml"
}

func marshal(o object) ([]byte, error) {
	data, err := yaml.Marshal(o)
	if err != nil {
		return nil, fmt.Errorf("marshal %s %s: %w", str(o, "kind"), str(o, "metadata", "name"), err)
	}
	return data, nil
}

// namespaceless returns a copy of o without metadata.namespace: OLM puts
// namespaced objects into the install namespace, and operator-registry
// rejects a namespace in bundle objects.
func namespaceless(o object) object {
	c := deepCopy(o)
	delete(nestedMap(c, "metadata"), "namespace")
	return c
}

func deepCopy(o map[string]any) map[string]any {
	data, err := json.Marshal(o)
	if err != nil {
		panic(err) // decoded from YAML: always JSON-compatible
	}
	c := map[string]any{}
	if err := json.Unmarshal(data, &c); err != nil {
		panic(err)
	}
	return c
}

// nestedMap returns the map at path, creating empty maps on the way.
func nestedMap(o map[string]any, path ...string) map[string]any {
	cur := o
	for _, p := range path {
		next, ok := cur[p].(map[string]any)
		if !ok {
			next = map[string]any{}
			cur[p] = next
		}
		cur = next
	}
	return cur
}

// str returns the string at path, or "".
func str(o map[string]any, path ...string) string {
	var cur any = o
	for _, p := range path {
		m, ok := cur.(map[string]any)
		if !ok {
			return ""
		}
		cur = m[p]
	}
	s, _ := cur.(string)
	return s
}

func strSlice(v any) []string {
	l, _ := v.([]any)
	out := make([]string, 0, len(l))
	for _, e := range l {
		if s, ok := e.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

func toAny(s []string) []any {
	out := make([]any, len(s))
	for i, v := range s {
		out[i] = v
	}
	return out
}
