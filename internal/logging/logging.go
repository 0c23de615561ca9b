// Package logging configures logr over zap (go-logr/zapr) for every role and
// routes controller-runtime's and klog's output through it.
package logging

import (
	"fmt"
	"os"
	"strconv"

	"github.com/go-logr/logr"
	"github.com/go-logr/zapr"
	"github.com/spf13/pflag"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
)

// Options are the logging flags every role takes.
type Options struct {
	// Level is debug, info, warn, error or a verbosity 0-9.
	Level string
	// Format is json or console.
	Format string
}

// AddFlags registers --log-level and --log-format.
func (o *Options) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.Level, "log-level", "info", "log level: debug, info, warn, error, or a verbosity 0-9 (higher is more verbose)")
	fs.StringVar(&o.Format, "log-format", "json", "log format: json or console")
}

// ZapLevel translates a level name or verbosity into a zap level. logr's
// V(n) is zap level -n, so verbosity n enables V(0)..V(n); debug is V(4),
// which shows the internals logged at V(4) by convention.
func ZapLevel(level string) (zapcore.Level, error) {
	switch level {
	case "error":
		return zapcore.ErrorLevel, nil
	case "warn":
		return zapcore.WarnLevel, nil
	case "info", "":
		return zapcore.InfoLevel, nil
	case "debug":
		return zapcore.Level(-4), nil
	}
	n, err := strconv.Atoi(level)
	if err != nil || n < 0 || n > 9 {
		return 0, fmt.Errorf("invalid --log-level %q: use debug, info, warn, error or 0-9", level)
	}
	return zapcore.Level(-n), nil
}

// New builds a logger from the options.
func New(o Options) (logr.Logger, error) {
	lvl, err := ZapLevel(o.Level)
	if err != nil {
		return logr.Discard(), err
	}
	var enc zapcore.Encoder
	switch o.Format {
	case "json", "":
		cfg := zap.NewProductionEncoderConfig()
		cfg.EncodeTime = zapcore.ISO8601TimeEncoder
		enc = zapcore.NewJSONEncoder(cfg)
	case "console":
		cfg := zap.NewDevelopmentEncoderConfig()
		cfg.EncodeTime = zapcore.ISO8601TimeEncoder
		enc = zapcore.NewConsoleEncoder(cfg)
	default:
		return logr.Discard(), fmt.Errorf("invalid --log-format %q: use json or console", o.Format)
	}
	core := zapcore.NewCore(enc, zapcore.Lock(os.Stderr), zap.NewAtomicLevelAt(lvl))
	z := zap.New(core, zap.AddCaller(), zap.AddStacktrace(zapcore.PanicLevel))
	return zapr.NewLoggerWithOptions(z, zapr.LogInfoLevel("v")), nil
}

// Setup builds the logger and installs it for controller-runtime and klog.
func Setup(o Options) (logr.Logger, error) {
	log, err := New(o)
	if err != nil {
		return log, err
	}
	ctrl.SetLogger(log)
	klog.SetLogger(log)
	return log, nil
}
