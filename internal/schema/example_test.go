package schema_test

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/troupe-dev/troupe/internal/schema"
)

// Stage is how troupe's spec declares a stage: each key once, with its type, default, bounds
// and doc; rules over several keys in Check; rules that need the outside world (is the builtin
// registered?) after decoding, at the position Positions recorded.
type Stage struct {
	Name    string         `yaml:"name" required:"true" doc:"The stage's name, unique in the pipeline."`
	Builtin string         `yaml:"builtin" oneof:"kind" doc:"An in-process stage registered by name."`
	Plugin  *Plugin        `yaml:"plugin" oneof:"kind" doc:"An out-of-process stage."`
	Workers int            `yaml:"workers" min:"1" doc:"Workers for the stage; the number of CPUs when absent."`
	Credits int            `yaml:"credits" default:"64" min:"1" doc:"Records in flight per worker."`
	Timeout time.Duration  `yaml:"timeout" min:"0s" doc:"Deadline per record; none when absent."`
	Options map[string]any `yaml:"options" doc:"Handed to the stage as they are."`
	Limits  *Limits        `yaml:"limits" doc:"Resource limits of a plugin's processes."`
	At      schema.Positions
}

type Plugin struct {
	Cmd []string          `yaml:"cmd" required:"true" doc:"The program and its arguments."`
	Env map[string]string `yaml:"env" doc:"Environment variables for the program."`
}

type Limits struct {
	RSS     Size          `yaml:"rss" min:"1" doc:"Resident set size past which a process is killed."`
	Startup time.Duration `yaml:"startup" default:"10s" min:"1ms" doc:"Deadline for a process to start."`
}

// Check holds the rules over several keys; each problem names its key.
func (s *Stage) Check() error {
	var errs []error
	if s.Limits != nil && s.Plugin == nil {
		errs = append(errs, schema.Errorf("limits", "only plugin stages have resource limits"))
	}
	if s.Plugin != nil && s.Plugin.Cmd != nil && s.Plugin.Cmd[0] == "" {
		errs = append(errs, schema.Errorf("plugin.cmd[0]", "the program must not be empty"))
	}
	return errors.Join(errs...)
}

// Size is bytes, written as a number or with a unit: 512MiB.
type Size uint64

func (s *Size) UnmarshalScalar(v schema.Scalar) error {
	num, mult := v.Value, uint64(1)
	if n, ok := strings.CutSuffix(num, "MiB"); ok {
		num, mult = n, 1<<20
	}
	n, err := strconv.ParseUint(num, 10, 64)
	if err != nil || v.Tag != "!!int" && v.Tag != "!!str" {
		return fmt.Errorf("bad size %s (want a size like 512MiB)", v)
	}
	*s = Size(n * mult)
	return nil
}

func (Size) SchemaType() string { return "bytes" }

func Example() {
	const file = "pipeline.yaml"
	src := []byte(`stages:
  - name: conv
    plugin: {cmd: [""]}
    workers: 0
    limits: {rss: lots}
  - name: up
    builtin: uppr
    timeout: 5
    limits: {rss: 1MiB}
    credts: 3
`)
	root, errs := schema.Parse(src)
	var doc struct {
		Stages []Stage `yaml:"stages" doc:"What happens to records."`
	}
	if errs == nil {
		errs = schema.Decode(root, &doc)
	}
	// Rules that need the outside world come after decoding, at the recorded positions.
	for _, st := range doc.Stages {
		if st.Builtin != "" && !slices.Contains([]string{"upper", "lower"}, st.Builtin) {
			errs = append(errs, st.At.Errorf("builtin", "unknown builtin %q", st.Builtin))
		}
	}
	fmt.Println(errs.Sort().Format(file))
	// Output:
	// pipeline.yaml:3:20: stages[0].plugin.cmd[0]: the program must not be empty
	// pipeline.yaml:4:14: stages[0].workers: must be at least 1, got 0
	// pipeline.yaml:5:19: stages[0].limits.rss: bad size string "lots" (want a size like 512MiB)
	// pipeline.yaml:7:14: stages[1].builtin: unknown builtin "uppr"
	// pipeline.yaml:8:14: stages[1].timeout: want a duration like 30s or 1m30s, got integer 5
	// pipeline.yaml:9:13: stages[1].limits: only plugin stages have resource limits
	// pipeline.yaml:10:5: stages[1]: unknown key "credts" (did you mean "credits"?)
}

func ExampleMarkdown() {
	fmt.Print(schema.Markdown(schema.Reference(reflect.TypeFor[Stage]())))
	// Output:
	// | Key | Type | Default | Description |
	// |---|---|---|---|
	// | `name` | string | required | The stage's name, unique in the pipeline. |
	// | `builtin` | string |  | An in-process stage registered by name. Exactly one of builtin, plugin. |
	// | `plugin` | mapping |  | An out-of-process stage. Exactly one of builtin, plugin. |
	// | `plugin.cmd` | list of string | required | The program and its arguments. |
	// | `plugin.env` | mapping of string to string |  | Environment variables for the program. |
	// | `workers` | integer, at least 1 |  | Workers for the stage; the number of CPUs when absent. |
	// | `credits` | integer, at least 1 | `64` | Records in flight per worker. |
	// | `timeout` | duration, at least 0s |  | Deadline per record; none when absent. |
	// | `options` | mapping (free-form) |  | Handed to the stage as they are. |
	// | `limits` | mapping |  | Resource limits of a plugin's processes. |
	// | `limits.rss` | bytes, at least 1 |  | Resident set size past which a process is killed. |
	// | `limits.startup` | duration, at least 1ms | `10s` | Deadline for a process to start. |
}
