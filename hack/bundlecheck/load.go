// Package bundlecheck validates openelb-operator's OLM bundle (bundle/,
// bundle.Dockerfile) and file-based catalog (catalog/) offline, with the
// libraries operator-sdk's `bundle validate --select-optional
// suite=operatorframework` uses plus the checks operator-sdk lacks: every
// alm-example against its CRD schema (structural schema, CEL rules, unknown
// fields), every descriptor path in the schema, descriptor coverage of every
// spec and status field, the CSV fields OperatorHub and the OpenShift
// console read, the operator Deployment under OLM (restricted security
// context, OLM's webhook certificate mount), Dockerfile labels against the
// annotations, and the catalog with opm. It is its own Go module so that
// operator-registry stays out of the operator's go.mod; `make test-bundle`
// (part of `make test`) runs it. See docs/design/0010-bundle.md.
package bundlecheck

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/operator-framework/api/pkg/manifests"
	operatorsv1alpha1 "github.com/operator-framework/api/pkg/operators/v1alpha1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

// Bundle is a bundle directory, loaded.
type Bundle struct {
	// Root is the repository root, Dir the bundle directory.
	Root, Dir string
	// Manifests is operator-framework's view of the bundle.
	Manifests *manifests.Bundle
	// CSV is the ClusterServiceVersion, decoded strictly.
	CSV *operatorsv1alpha1.ClusterServiceVersion
	// CRDs by name.
	CRDs map[string]*apiextensionsv1.CustomResourceDefinition
	// Objects are the other manifests (RBAC, Services, ...).
	Objects []*unstructured.Unstructured
	// Annotations are metadata/annotations.yaml.
	Annotations map[string]string
	// Dockerfile is bundle.Dockerfile: its LABELs and COPY lines.
	DockerLabels map[string]string
	DockerCopies map[string]string
}

// Load reads the bundle of the repository at root.
func Load(root string) (*Bundle, error) {
	b := &Bundle{Root: root, Dir: filepath.Join(root, "bundle"), CRDs: map[string]*apiextensionsv1.CustomResourceDefinition{}}
	var err error
	if b.Manifests, err = manifests.GetBundleFromDir(b.Dir); err != nil {
		return nil, fmt.Errorf("load bundle: %w", err)
	}
	entries, err := os.ReadDir(filepath.Join(b.Dir, "manifests"))
	if err != nil {
		return nil, err
	}
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join(b.Dir, "manifests", e.Name()))
		if err != nil {
			return nil, err
		}
		u := &unstructured.Unstructured{}
		if err := yaml.Unmarshal(data, &u.Object); err != nil {
			return nil, fmt.Errorf("%s: %w", e.Name(), err)
		}
		switch u.GetKind() {
		case "ClusterServiceVersion":
			b.CSV = &operatorsv1alpha1.ClusterServiceVersion{}
			// Strict: a misspelt field in the CSV base is an error here,
			// not a field OLM silently ignores.
			if err := yaml.UnmarshalStrict(data, b.CSV); err != nil {
				return nil, fmt.Errorf("%s: %w", e.Name(), err)
			}
		case "CustomResourceDefinition":
			crd := &apiextensionsv1.CustomResourceDefinition{}
			if err := yaml.UnmarshalStrict(data, crd); err != nil {
				return nil, fmt.Errorf("%s: %w", e.Name(), err)
			}
			b.CRDs[crd.Name] = crd
		default:
			b.Objects = append(b.Objects, u)
		}
	}
	if b.CSV == nil {
		return nil, errors.New("no ClusterServiceVersion in bundle/manifests")
	}
	var ann struct {
		Annotations map[string]string `json:"annotations"`
	}
	data, err := os.ReadFile(filepath.Join(b.Dir, "metadata", "annotations.yaml"))
	if err != nil {
		return nil, err
	}
	if err := yaml.UnmarshalStrict(data, &ann); err != nil {
		return nil, fmt.Errorf("annotations.yaml: %w", err)
	}
	b.Annotations = ann.Annotations
	f, err := os.Open(filepath.Join(root, "bundle.Dockerfile"))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b.DockerLabels, b.DockerCopies, err = parseDockerfile(f)
	return b, err
}

// parseDockerfile returns the LABELs (one key=value per LABEL line, as the
// generator writes them) and the COPY source -> destination pairs.
func parseDockerfile(r io.Reader) (labels, copies map[string]string, err error) {
	labels, copies = map[string]string{}, map[string]string{}
	s := bufio.NewScanner(r)
	for s.Scan() {
		f := strings.Fields(s.Text())
		if len(f) == 0 || strings.HasPrefix(f[0], "#") {
			continue
		}
		switch strings.ToUpper(f[0]) {
		case "LABEL":
			for _, kv := range f[1:] {
				k, v, ok := strings.Cut(kv, "=")
				if !ok {
					return nil, nil, fmt.Errorf("LABEL %q is not key=value", kv)
				}
				labels[k] = strings.Trim(v, `"`)
			}
		case "COPY":
			if len(f) != 3 {
				return nil, nil, fmt.Errorf("COPY %q: want one source and one destination", s.Text())
			}
			copies[f[1]] = f[2]
		}
	}
	return labels, copies, s.Err()
}

// Examples decodes the CSV's alm-examples.
func (b *Bundle) Examples() ([]*unstructured.Unstructured, error) {
	return decodeJSONObjects(b.CSV.Annotations["alm-examples"])
}

func decodeJSONObjects(s string) ([]*unstructured.Unstructured, error) {
	var out []*unstructured.Unstructured
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader([]byte(s)), 4096)
	var list []map[string]any
	if err := dec.Decode(&list); err != nil {
		return nil, err
	}
	for _, o := range list {
		out = append(out, &unstructured.Unstructured{Object: o})
	}
	return out, nil
}

// ManagerDeployment returns the CSV's operator Deployment (the one the
// webhooks name, else the first).
func (b *Bundle) ManagerDeployment() (*operatorsv1alpha1.StrategyDeploymentSpec, error) {
	deps := b.CSV.Spec.InstallStrategy.StrategySpec.DeploymentSpecs
	if len(deps) == 0 {
		return nil, errors.New("the CSV installs no Deployment")
	}
	for i := range deps {
		for _, w := range b.CSV.Spec.WebhookDefinitions {
			if w.DeploymentName == deps[i].Name {
				return &deps[i], nil
			}
		}
	}
	return &deps[0], nil
}
