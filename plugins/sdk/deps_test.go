package sdk_test

import (
	"os/exec"
	"strings"
	"testing"
)

// pluginPackages are what a Go plugin links: the SDK, the root package's Record and Func
// types, and the smallest plugin there is.
var pluginPackages = []string{
	"github.com/troupe-dev/troupe/plugins/sdk",
	"github.com/troupe-dev/troupe",
	"github.com/troupe-dev/troupe/examples/plugins/upper",
}

// heavy are import path prefixes a plugin must not link: the actor runtime and its metrics
// (their init is a fifth to a third of a plugin's start, see issue 9), and troupe's own packages
// that bring them or YAML in.
var heavy = []string{
	"github.com/asynkron/protoactor-go",
	"github.com/prometheus/",
	"go.opentelemetry.io/",
	"gopkg.in/yaml",
	"github.com/troupe-dev/troupe/supervisor",
	"github.com/troupe-dev/troupe/actors",
	"github.com/troupe-dev/troupe/spec",
	"github.com/troupe-dev/troupe/plugins",
}

// allowed are the packages under a heavy prefix that are light: the plugin side of package
// plugins, and supervisor's pure policy types (standard library only).
var allowed = []string{
	"github.com/troupe-dev/troupe/plugins/sdk",
	"github.com/troupe-dev/troupe/plugins/internal/",
	"github.com/troupe-dev/troupe/supervisor/policy",
}

func isHeavy(path string) bool {
	for _, a := range allowed {
		if path == a || strings.HasPrefix(path, a) && strings.HasSuffix(a, "/") {
			return false
		}
	}
	for _, h := range heavy {
		if path == h || strings.HasPrefix(path, h) && (strings.HasSuffix(h, "/") || strings.HasPrefix(path[len(h):], "/")) {
			return true
		}
	}
	return false
}

// TestPluginDependenciesAreLight fails when a plugin built with the SDK links the actor runtime
// (or another heavy package) again, and names the import chain that brings it in.
func TestPluginDependenciesAreLight(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("this test lists a plugin's dependencies with the go command: %v", err)
	}
	args := append([]string{"list", "-deps", "-f", "{{.ImportPath}}{{range .Imports}} {{.}}{{end}}"}, pluginPackages...)
	out, err := exec.Command(goTool, args...).Output()
	if err != nil {
		msg := ""
		if ee, ok := err.(*exec.ExitError); ok {
			msg = string(ee.Stderr)
		}
		t.Fatalf("go list -deps: %v\n%s", err, msg)
	}
	imports := map[string][]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		imports[f[0]] = f[1:]
	}
	for _, p := range pluginPackages {
		if _, ok := imports[p]; !ok {
			t.Fatalf("go list -deps did not list %s:\n%s", p, out)
		}
	}
	// Breadth-first from the plugin's packages, so each heavy package found is reported with
	// the shortest chain of imports that reaches it.
	from := map[string]string{}
	queue := append([]string(nil), pluginPackages...)
	for _, p := range queue {
		from[p] = ""
	}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		if isHeavy(p) {
			chain := []string{p}
			for q := from[p]; q != ""; q = from[q] {
				chain = append([]string{q}, chain...)
			}
			t.Errorf("a plugin links %s:\n\t%s", p, strings.Join(chain, "\n\t-> "))
			continue // its own imports are reported through it
		}
		for _, q := range imports[p] {
			if _, seen := from[q]; !seen {
				from[q] = p
				queue = append(queue, q)
			}
		}
	}
}

func TestIsHeavy(t *testing.T) {
	for path, want := range map[string]bool{
		"github.com/asynkron/protoactor-go/actor":                   true,
		"github.com/prometheus/client_golang/prometheus":            true,
		"go.opentelemetry.io/otel":                                  true,
		"github.com/troupe-dev/troupe/supervisor":                   true,
		"github.com/troupe-dev/troupe/supervisor/policy":            false,
		"github.com/troupe-dev/troupe/plugins":                      true,
		"github.com/troupe-dev/troupe/plugins/sdk":                  false,
		"github.com/troupe-dev/troupe/plugins/internal/pluginproto": false,
		"github.com/troupe-dev/troupe/actors":                       true,
		"github.com/troupe-dev/troupe/actorsx":                      false,
		"github.com/troupe-dev/troupe":                              false,
		"google.golang.org/grpc":                                    false,
	} {
		if got := isHeavy(path); got != want {
			t.Errorf("isHeavy(%q) = %v, want %v", path, got, want)
		}
	}
}
