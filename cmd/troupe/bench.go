package main

import (
	"github.com/spf13/cobra"

	"github.com/troupe-dev/troupe/internal/bench"
)

// benchCmd runs the performance harness: every figure next to its baseline, in one run.
// Its flags are the harness's own (see `troupe bench --help`); the harness also re-executes
// this binary as its child processes, which is why its arguments pass through untouched.
func (e *env) benchCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "bench [--json] [--quick] [--only REGEX] [--photos DIR]",
		Short: "Measure troupe against its baselines (channels, raw socketpair, go-plugin RPC, Python Pool)",
		Long: `Runs every performance figure in one process run, side by side with its baseline
(plain Go channels, a raw unix socketpair to a child process, one go-plugin gRPC call per
record, Python's multiprocessing Pool and Pillow when available, plain goroutines with the
same image codec), and prints a table of figure, troupe, baseline, ratio and target. The image
job runs on generated images and on the real photographs under --photos DIR (default
/usr/share/wallpapers: Debian's plasma-workspace-wallpapers).`,
		DisableFlagParsing: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			if code := bench.Main(args, e.stdout, e.stderr); code != 0 {
				return &exitError{code: code}
			}
			return nil
		},
	}
}
