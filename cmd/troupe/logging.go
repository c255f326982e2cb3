package main

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/spf13/cobra"
)

// logOptions are the root command's logging flags (--log-format, --log-level).
type logOptions struct {
	format   string // text or json
	level    string // debug, info, warn or error
	levelSet bool   // --log-level was given
}

// flags declares them on the root command, for every subcommand.
func (o *logOptions) flags(root *cobra.Command) {
	f := root.PersistentFlags()
	f.StringVar(&o.format, "log-format", "text", "log line format: text (key=value) or json (one object a line)")
	f.StringVar(&o.level, "log-level", "warn", "least severe log level shown: debug, info, warn or error (info with run -v unless given)")
}

// check validates the flags of cmd; a bad value is a usage error.
func (o *logOptions) check(cmd *cobra.Command) error {
	o.levelSet = cmd.Flags().Changed("log-level")
	switch o.format {
	case "text", "json":
	default:
		return &usageError{fmt.Errorf("--log-format: want text or json, got %q", o.format)}
	}
	if _, err := parseLevel(o.level); err != nil {
		return &usageError{err}
	}
	return nil
}

func parseLevel(s string) (slog.Level, error) {
	switch strings.ToLower(s) {
	case "debug":
		return slog.LevelDebug, nil
	case "info":
		return slog.LevelInfo, nil
	case "warn", "warning":
		return slog.LevelWarn, nil
	case "error":
		return slog.LevelError, nil
	}
	return 0, fmt.Errorf("--log-level: want debug, info, warn or error, got %q", s)
}

// logger returns the logger of one run: every line carries the run's id (attribute run); the
// runtime and the plugin host add stage, worker and pid where they apply. verbose (run -v)
// lowers the default level to info; an explicit --log-level wins.
func (o *logOptions) logger(w io.Writer, runID string, verbose bool) *slog.Logger {
	level, _ := parseLevel(o.level) // checked by check
	if !o.levelSet && verbose {
		level = slog.LevelInfo
	}
	opts := &slog.HandlerOptions{Level: level}
	var h slog.Handler
	if o.format == "json" {
		h = slog.NewJSONHandler(w, opts)
	} else {
		h = slog.NewTextHandler(w, opts)
	}
	return slog.New(h).With("run", runID)
}

// newRunID returns a run's id: 12 random hex digits, enough to tell runs apart in merged logs.
func newRunID() string {
	var b [6]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand)
	return hex.EncodeToString(b[:])
}
