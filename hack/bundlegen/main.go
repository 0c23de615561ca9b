// Command bundlegen builds the OLM bundle of openelb-operator (registry+v1:
// bundle/manifests, bundle/metadata, bundle/tests/scorecard and
// bundle.Dockerfile) from config/, in place of `operator-sdk generate
// bundle`, which cannot be installed here. Inputs: the hand-written CSV base
// (config/manifests/bases), the icon, and `kubectl kustomize
// config/manifests` on stdin. The output is deterministic: `make bundle`
// twice gives no diff. See docs/design/0010-bundle.md.
package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
)

func main() {
	var (
		in                      Inputs
		base, icon, out, docker string
		manifests, channels     string
	)
	flag.StringVar(&in.Package, "package", "openelb-operator", "OLM package name")
	flag.StringVar(&in.Version, "version", "", "bundle version (semver, no leading v)")
	flag.StringVar(&in.Replaces, "replaces", "", "CSV this version replaces (empty for the first release)")
	flag.StringVar(&in.SkipRange, "skip-range", "", "olm.skipRange annotation, e.g. '>=0.1.0 <0.2.0'")
	flag.StringVar(&in.Image, "image", "", "operator image (the manager container; containerImage)")
	flag.StringVar(&in.OperandImage, "operand-image", "", "controller and speaker image (RELATED_IMAGE_OPENELB); --image when empty")
	flag.StringVar(&in.CreatedAt, "created-at", "", "createdAt annotation, RFC 3339 (fixed, for clean diffs)")
	flag.StringVar(&channels, "channels", "stable", "comma-separated channels")
	flag.StringVar(&in.DefaultChannel, "default-channel", "stable", "default channel")
	flag.StringVar(&in.OpenShiftVersions, "openshift-versions", "", "com.redhat.openshift.versions label (empty: none)")
	flag.StringVar(&in.ScorecardImage, "scorecard-image", "quay.io/operator-framework/scorecard-test:v1.42.0", "scorecard test image")
	flag.StringVar(&base, "base", "config/manifests/bases/openelb-operator.clusterserviceversion.yaml", "CSV base")
	flag.StringVar(&icon, "icon", "config/manifests/icon.svg", "SVG icon")
	flag.StringVar(&manifests, "manifests", "-", "kustomize output of config/manifests (- for stdin)")
	flag.StringVar(&out, "out", "bundle", "bundle directory")
	flag.StringVar(&docker, "dockerfile", "bundle.Dockerfile", "bundle Dockerfile")
	flag.Parse()
	in.Channels = strings.Split(channels, ",")
	if err := run(in, base, icon, manifests, out, docker); err != nil {
		fmt.Fprintln(os.Stderr, "bundlegen:", err)
		os.Exit(1)
	}
}

func run(in Inputs, base, icon, manifests, out, docker string) error {
	var err error
	if in.Base, err = os.ReadFile(base); err != nil {
		return err
	}
	if in.Icon, err = os.ReadFile(icon); err != nil {
		return err
	}
	var r io.Reader = os.Stdin
	if manifests != "-" {
		data, err := os.ReadFile(manifests)
		if err != nil {
			return err
		}
		r = bytes.NewReader(data)
	}
	if in.Objects, err = decodeAll(r); err != nil {
		return fmt.Errorf("read %s: %w", manifests, err)
	}
	b, err := Generate(in)
	if err != nil {
		return err
	}
	return write(b, out, docker)
}

// decodeAll reads a stream of YAML documents.
func decodeAll(r io.Reader) ([]object, error) {
	dec := utilyaml.NewYAMLOrJSONDecoder(r, 4096)
	var objs []object
	for {
		o := object{}
		if err := dec.Decode(&o); err != nil {
			if errors.Is(err, io.EOF) {
				return objs, nil
			}
			return nil, err
		}
		if len(o) > 0 {
			objs = append(objs, o)
		}
	}
}

// write replaces the bundle's generated directories (a file no longer
// generated must not linger) and writes every file.
func write(b *Bundle, out, docker string) error {
	for _, d := range []string{"manifests", "metadata", "tests"} {
		if err := os.RemoveAll(filepath.Join(out, d)); err != nil {
			return err
		}
	}
	files := map[string][]byte{
		filepath.Join(out, "metadata", "annotations.yaml"):      b.Annotations,
		filepath.Join(out, "tests", "scorecard", "config.yaml"): b.Scorecard,
		docker: b.Dockerfile,
	}
	for name, data := range b.Manifests {
		files[filepath.Join(out, "manifests", name)] = data
	}
	for path, data := range files {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(path, data, 0o644); err != nil {
			return err
		}
	}
	return nil
}
