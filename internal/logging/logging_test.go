package logging

import (
	"testing"

	"go.uber.org/zap/zapcore"
)

func TestZapLevel(t *testing.T) {
	tests := []struct {
		in      string
		want    zapcore.Level
		wantErr bool
	}{
		{in: "info", want: zapcore.InfoLevel},
		{in: "", want: zapcore.InfoLevel},
		{in: "debug", want: zapcore.Level(-4)},
		{in: "warn", want: zapcore.WarnLevel},
		{in: "error", want: zapcore.ErrorLevel},
		{in: "0", want: zapcore.InfoLevel},
		{in: "7", want: zapcore.Level(-7)},
		{in: "10", wantErr: true},
		{in: "-1", wantErr: true},
		{in: "verbose", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ZapLevel(tt.in)
			if (err != nil) != tt.wantErr {
				t.Fatalf("ZapLevel(%q) error = %v, wantErr %v", tt.in, err, tt.wantErr)
			}
			if err == nil && got != tt.want {
				t.Errorf("ZapLevel(%q) = %v, want %v", tt.in, got, tt.want)
			}
		})
	}
}

func TestNewRejectsUnknownFormat(t *testing.T) {
	if _, err := New(Options{Level: "info", Format: "xml"}); err == nil {
		t.Fatal("New accepted --log-format=xml")
	}
	for _, f := range []string{"json", "console"} {
		log, err := New(Options{Level: "debug", Format: f})
		if err != nil {
			t.Fatalf("New(%s): %v", f, err)
		}
		if !log.V(4).Enabled() || log.V(5).Enabled() {
			t.Errorf("debug level with %s: V(4) enabled=%v V(5) enabled=%v, want true/false", f, log.V(4).Enabled(), log.V(5).Enabled())
		}
	}
}
