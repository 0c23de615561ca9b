package app

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/openelb/openelb-operator/internal/app"
)

func validOptions() Options {
	return Options{NodeName: "node1", EnableLayer2: true, LivenessPort: 7946}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		mod  func(*Options)
		want string // substring of the error; empty: valid
	}{
		{name: "valid", mod: func(*Options) {}},
		{name: "node name required", mod: func(o *Options) { o.NodeName = "" }, want: "--node-name"},
		{name: "no mode", mod: func(o *Options) { o.EnableLayer2 = false }, want: "no mode enabled"},
		{name: "refresh below a second", mod: func(o *Options) { o.GratuitousRefresh = 100 * time.Millisecond }, want: "below 1s"},
		{name: "negative refresh", mod: func(o *Options) { o.GratuitousRefresh = -time.Second }, want: "negative"},
		{name: "port 0", mod: func(o *Options) { o.LivenessPort = 0 }, want: "--liveness-port"},
		{name: "lo in the allow-list", mod: func(o *Options) { o.Layer2Interfaces = []string{"eth0", "lo"} }, want: "lo"},
	}
	for _, tt := range tests {
		o := validOptions()
		tt.mod(&o)
		err := o.Validate()
		if (tt.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tt.want)) {
			t.Errorf("%s: error %v, want %q", tt.name, err, tt.want)
		}
	}
}

func TestLoadKey(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "key")
	if err := os.WriteFile(good, []byte("0123456789abcdef0123456789abcdef\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	short := filepath.Join(dir, "short")
	if err := os.WriteFile(short, []byte("abc"), 0o600); err != nil {
		t.Fatal(err)
	}
	o := validOptions()
	t.Setenv(KeyEnv, "")
	if _, err := o.LoadKey(); err == nil || !strings.Contains(err.Error(), "openelb-speaker-key") {
		t.Fatalf("no key: %v", err)
	}
	t.Setenv(KeyEnv, "  an environment key of some length  ")
	if k, err := o.LoadKey(); err != nil || string(k) != "an environment key of some length" {
		t.Fatalf("env key: %q %v", k, err)
	}
	o.LivenessKeyFile = good // the file wins over the environment
	if k, err := o.LoadKey(); err != nil || string(k) != "0123456789abcdef0123456789abcdef" {
		t.Fatalf("file key: %q %v", k, err)
	}
	o.LivenessKeyFile = short
	if _, err := o.LoadKey(); err == nil || !strings.Contains(err.Error(), "at least 16") {
		t.Fatalf("short key: %v", err)
	}
	o.LivenessKeyFile = filepath.Join(dir, "missing")
	if _, err := o.LoadKey(); err == nil {
		t.Fatal("missing key file accepted")
	}
}

// TestNotBuilt: a mode without a back-end in this build fails with a
// message naming the flag that turns it off.
func TestNotBuilt(t *testing.T) {
	err := factory{protocol: "vip", flag: "--enable-keepalived-vip", issue: "issue 8"}.notBuilt()
	if !errors.Is(err, app.ErrNotBuilt) || !strings.Contains(err.Error(), "--enable-keepalived-vip=false") {
		t.Fatalf("not-built error: %v", err)
	}
	for _, f := range factories(Options{EnableLayer2: true}) {
		if f.protocol == "layer2" && f.build == nil {
			t.Fatal("layer2 has no back-end in this build")
		}
	}
}
