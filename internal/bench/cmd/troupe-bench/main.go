// Command troupe-bench runs troupe's performance harness (package internal/bench) on its own,
// as `troupe bench` does: troupe-bench [--json] [--quick] [--only REGEX].
package main

import (
	"os"

	"github.com/troupe-dev/troupe/internal/bench"
)

func main() {
	os.Exit(bench.Main(os.Args[1:], os.Stdout, os.Stderr))
}
