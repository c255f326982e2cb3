package schema

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// The schema the tests decode into: a small pipeline spec in the shape of troupe's.

type testSpec struct {
	Name        string            `yaml:"name" doc:"The pipeline's name."`
	Source      testSource        `yaml:"source" required:"true" doc:"Where records come from."`
	Stages      []testStage       `yaml:"stages" doc:"What happens to records, in order."`
	Order       string            `yaml:"order" default:"any" enum:"any|input" doc:"The order records reach the sink in."`
	Supervision testSupervision   `yaml:"supervision" doc:"The root supervisor."`
	DeadLetter  *testDeadLetter   `yaml:"dead_letter" doc:"Where dead letters go."`
	Labels      map[string]string `yaml:"labels" doc:"Free labels."`
	Positions
}

// Check is a rule over a list: it uses the positions recorded for the struct to say where the
// first one was.
func (s *testSpec) Check() error {
	var errs []error
	first := map[string]int{}
	for i, st := range s.Stages {
		if j, dup := first[st.Name]; dup {
			errs = append(errs, Errorf(joinIndex("stages", i)+".name", "duplicate stage name %q (first at line %d)",
				st.Name, s.Positions.Value(joinIndex("stages", j)+".name").Line))
			continue
		}
		first[st.Name] = i
	}
	return errors.Join(errs...)
}

type testSource struct {
	Files *testFiles `yaml:"files" oneof:"kind" doc:"One record per file."`
	Lines *testLines `yaml:"lines" oneof:"kind" doc:"One record per line."`
	Range *testRange `yaml:"range" oneof:"kind" doc:"Synthetic records."`
}

type testFiles struct {
	Dir       string `yaml:"dir" required:"true" doc:"The directory."`
	Glob      string `yaml:"glob" default:"'*'" doc:"Which names."`
	Recursive bool   `yaml:"recursive" doc:"Whether to descend."`
}

type testLines struct {
	Path string `yaml:"path" required:"true" doc:"The file; - is standard input."`
}

type testRange struct {
	Count int64    `yaml:"count" required:"true" min:"0" doc:"How many records."`
	Size  testSize `yaml:"size" default:"1KiB" max:"1GiB" doc:"Bytes per record."`
}

type testSupervision struct {
	Strategy  string        `yaml:"strategy" default:"one_for_one" enum:"one_for_one|one_for_all|rest_for_one" doc:"What a crash restarts."`
	Intensity int           `yaml:"intensity" default:"10" min:"0" doc:"Restarts allowed within period."`
	Period    time.Duration `yaml:"period" default:"1m" min:"1ns" doc:"The window of intensity."`
	Backoff   testBackoff   `yaml:"backoff" doc:"Delay between restarts."`
}

type testBackoff struct {
	Min time.Duration `yaml:"min" default:"10ms" min:"0s" doc:"The first delay."`
	Max time.Duration `yaml:"max" default:"1s" min:"0s" doc:"The longest delay."`
}

// Check is a consistency rule over two fields.
func (b *testBackoff) Check() error {
	if b.Max < b.Min {
		return Errorf("max", "must not be below min (%s), got %s", b.Min, b.Max)
	}
	return nil
}

type testDeadLetter struct {
	Path string `yaml:"path" required:"true" doc:"The JSON lines file."`
}

type testStage struct {
	Name     string         `yaml:"name" required:"true" nonempty:"true" doc:"The stage's name."`
	Builtin  string         `yaml:"builtin" oneof:"kind" doc:"An in-process stage."`
	Plugin   *testPlugin    `yaml:"plugin" oneof:"kind" doc:"An out-of-process stage."`
	Workers  int            `yaml:"workers" default:"1" min:"1" doc:"Workers for the stage."`
	Timeout  time.Duration  `yaml:"timeout" min:"0s" doc:"Deadline per record."`
	Ratio    float64        `yaml:"ratio" doc:"A number."`
	Small    uint8          `yaml:"small" doc:"A small number."`
	Options  map[string]any `yaml:"options" doc:"Handed to the stage as-is."`
	Limits   *testLimits    `yaml:"limits" doc:"Resource limits of plugin stages."`
	testTags `yaml:",inline"`
	At       Positions
}

type testTags struct {
	Tags []string `yaml:"tags" doc:"Labels, inline from another struct."`
}

// Check is a rule over the stage as a whole, and an error from "another package".
func (s *testStage) Check() error {
	var errs []error
	if s.Limits != nil && s.Plugin == nil {
		errs = append(errs, Errorf("limits", "only plugin stages have resource limits (stage %s is builtin %s)", s.Name, s.Builtin))
	}
	if s.Name == "explode" {
		errs = append(errs, errors.New("stage explode: refused by its owner"))
	}
	return errors.Join(errs...)
}

type testPlugin struct {
	Cmd []string          `yaml:"cmd" required:"true" nonempty:"true" doc:"Program and arguments."`
	Env map[string]string `yaml:"env" doc:"Environment."`
}

type testLimits struct {
	RSS testSize    `yaml:"rss" min:"1" doc:"Resident set size."`
	CPU testPercent `yaml:"cpu" doc:"CPU share."`
}

// testSize is a custom scalar over a number: bytes written as 512MiB.
type testSize uint64

func (s *testSize) UnmarshalScalar(v Scalar) error {
	if v.Tag == "!!int" {
		n, err := strconv.ParseUint(v.Value, 10, 64)
		if err != nil {
			return fmt.Errorf("bad size %s: want a size like 512MiB", v.Value)
		}
		*s = testSize(n)
		return nil
	}
	if v.Tag != "!!str" {
		return fmt.Errorf("want a size like 512MiB, got %s", v)
	}
	for _, u := range []struct {
		suffix string
		mult   uint64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}} {
		if num, ok := strings.CutSuffix(v.Value, u.suffix); ok {
			n, err := strconv.ParseUint(num, 10, 64)
			if err == nil {
				*s = testSize(n * u.mult)
				return nil
			}
		}
	}
	return fmt.Errorf("bad size %q: want a size like 512MiB", v.Value)
}

func (testSize) SchemaType() string { return "bytes" }

// testPercent is a custom scalar with a syntax of its own, without a SchemaType.
type testPercent float64

func (p *testPercent) UnmarshalScalar(v Scalar) error {
	num, ok := strings.CutSuffix(v.Value, "%")
	f, err := strconv.ParseFloat(num, 64)
	if v.Tag != "!!str" || !ok || err != nil {
		return fmt.Errorf("want a percentage like 150%%, got %s", v)
	}
	*p = testPercent(f)
	return nil
}
