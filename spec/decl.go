package spec

import (
	"errors"
	"net"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/troupe-dev/troupe"
	"github.com/troupe-dev/troupe/internal/schema"
	"github.com/troupe-dev/troupe/internal/units"
	"github.com/troupe-dev/troupe/plugins"
	"github.com/troupe-dev/troupe/stages"
	"github.com/troupe-dev/troupe/supervisor"
)

// This file declares every key of a spec once: its type, default, bounds and doc in the tags
// of package internal/schema, and the rules over several keys in Check methods. Decoding,
// defaults, `troupe validate`'s errors and docs/spec.md all come from here.

// Document is what a spec file says: every key, decoded, its defaults filled in.
type Document struct {
	Name        string           `yaml:"name" nonempty:"true" doc:"The pipeline's name; the spec file's name without its extension when absent."`
	Source      SourceSpec       `yaml:"source" required:"true" doc:"Where records come from: exactly one of files, lines, range."`
	Stages      []StageSpec      `yaml:"stages" doc:"What happens to each record, in order; none sends the source straight to the sink."`
	Supervision SupervisionSpec  `yaml:"supervision" doc:"The root supervisor's restart policy: how often the pipeline's actors may restart before the run gives up."`
	Order       string           `yaml:"order" default:"any" enum:"any|input" doc:"any delivers records to the sink as they complete; input in source order (the outputs of one record in the order they were made)."`
	Sink        SinkSpec         `yaml:"sink" required:"true" doc:"Where records go: exactly one of files, lines, discard."`
	DeadLetter  *DeadLetterSpec  `yaml:"dead_letter" doc:"Where records that failed every attempt are stored, as JSON lines; they are only counted when absent."`
	Cluster     *ClusterSpec     `yaml:"cluster" doc:"The troupe node processes that run the workers of stages with placement: cluster."`
	Journal     *JournalSpec     `yaml:"journal" doc:"A journal of the source records finished, so that a run killed midway resumes where it stopped: a run with the same journal skips what it names (troupe run --journal overrides it)."`
	At          schema.Positions `yaml:"-"`
}

// Check reports stage names given twice.
func (d *Document) Check() error {
	var errs []error
	first := map[string]int{} // name → line of its first definition
	for i := range d.Stages {
		st := &d.Stages[i]
		if st.Name == "" {
			continue
		}
		if line, dup := first[st.Name]; dup {
			errs = append(errs, schema.Errorf(pathIndex("stages", i)+".name",
				"duplicate stage name %q (first defined at line %d)", st.Name, line))
			continue
		}
		first[st.Name] = st.At.Value("name").Line
	}
	errs = append(errs, d.checkCluster()...)
	if d.Journal != nil && d.Source.Lines != nil && d.Source.Lines.Path == "-" {
		errs = append(errs, schema.Errorf("journal", "standard input cannot be resumed (it cannot be read again): a journal needs a source that can (a file, a folder, a range)"))
	}
	if d.Journal != nil {
		for _, st := range d.Stages {
			if b, ok := stages.Lookup(st.Builtin); ok && b.Reduce != nil {
				errs = append(errs, schema.Errorf("journal", "stage %s is a reduce stage (builtin %s), whose aggregates a journal cannot keep: run it without a journal", st.Name, st.Builtin))
			}
		}
	}
	return errors.Join(errs...)
}

// SourceSpec is the spec's source: exactly one of Files, Lines and Range is set.
type SourceSpec struct {
	Files *FilesSourceSpec `yaml:"files" oneof:"kind" doc:"One record per file under a directory: the key is the file's path relative to dir, the payload its content."`
	Lines *LinesSpec       `yaml:"lines" oneof:"kind" doc:"One record per line of a file, without the line break; the key is the line number."`
	Range *RangeSpec       `yaml:"range" oneof:"kind" doc:"Synthetic records, for tests and benchmarks."`
	At    schema.Positions `yaml:"-"`
}

// FilesSourceSpec reads one record per file under Dir whose name matches Glob.
type FilesSourceSpec struct {
	Dir       string           `yaml:"dir" required:"true" nonempty:"true" doc:"The directory to read, relative to the spec's."`
	Glob      string           `yaml:"glob" default:"'*'" nonempty:"true" doc:"Which file names to read (path/filepath.Match syntax)."`
	Recursive bool             `yaml:"recursive" default:"false" doc:"Read the subdirectories too."`
	At        schema.Positions `yaml:"-"`
}

// Check checks the glob's syntax.
func (f *FilesSourceSpec) Check() error {
	if _, err := filepath.Match(f.Glob, ""); err != nil {
		return schema.Errorf("glob", "bad pattern %q: %v", f.Glob, err)
	}
	return nil
}

// LinesSpec reads or writes one record per line of the file at Path; "-" is standard input or
// output.
type LinesSpec struct {
	Path string           `yaml:"path" required:"true" nonempty:"true" doc:"The file, relative to the spec's directory; - is standard input (source) or output (sink)."`
	At   schema.Positions `yaml:"-"`
}

// RangeSpec produces Count synthetic records of Size bytes each, for tests and benchmarks.
type RangeSpec struct {
	Count int64      `yaml:"count" required:"true" min:"0" doc:"How many records."`
	Size  units.Size `yaml:"size" default:"0" max:"1GiB" doc:"Each record's payload size."`
}

// SinkSpec is the spec's sink: exactly one of Files, Lines and Discard is set.
type SinkSpec struct {
	Files   *FilesSinkSpec   `yaml:"files" oneof:"kind" doc:"Each record to its own file under a directory, named by its key."`
	Lines   *LinesSpec       `yaml:"lines" oneof:"kind" doc:"Each record's payload as a line of a file."`
	Discard *DiscardSpec     `yaml:"discard" oneof:"kind" doc:"Nothing is written (records are counted): write discard: {}."`
	At      schema.Positions `yaml:"-"`
}

// DiscardSpec is the discard sink: it has no keys.
type DiscardSpec struct{}

// FilesSinkSpec writes each record to its own file under Dir, its key's extension replaced by
// Ext ("" keeps it).
type FilesSinkSpec struct {
	Dir string           `yaml:"dir" required:"true" nonempty:"true" doc:"The directory to write, relative to the spec's; created if missing."`
	Ext string           `yaml:"ext" doc:"The extension that replaces the key's (.jpg); the key's is kept when absent."`
	At  schema.Positions `yaml:"-"`
}

// Check rejects an extension that would name another directory.
func (f *FilesSinkSpec) Check() error {
	if strings.ContainsAny(f.Ext, `/\`) {
		return schema.Errorf("ext", "must not contain a path separator, got %q", f.Ext)
	}
	return nil
}

// DeadLetterSpec stores dead letters as JSON lines in the file at Path.
type DeadLetterSpec struct {
	Path string           `yaml:"path" required:"true" nonempty:"true" doc:"The file, relative to the spec's directory; created if missing."`
	At   schema.Positions `yaml:"-"`
}

// Check rejects standard output: it is the lines sink's.
func (d *DeadLetterSpec) Check() error {
	if d.Path == "-" {
		return schema.Errorf("path", `"-" (standard input or output) is not allowed here`)
	}
	return nil
}

// JournalSpec keeps a journal of the finished source records in the file at Path.
type JournalSpec struct {
	Path string           `yaml:"path" required:"true" nonempty:"true" doc:"The journal file, relative to the spec's directory; created if missing. It belongs to one source: a journal written for another folder, file or count is refused."`
	At   schema.Positions `yaml:"-"`
}

// Check rejects standard output.
func (j *JournalSpec) Check() error {
	if j.Path == "-" {
		return schema.Errorf("path", `"-" (standard input or output) is not allowed here`)
	}
	return nil
}

// StageSpec is one stage of a spec: exactly one of Builtin and Plugin is set.
type StageSpec struct {
	Name        string           `yaml:"name" required:"true" nonempty:"true" doc:"The stage's name, unique in the pipeline: letters, digits, _, - and ."`
	Builtin     string           `yaml:"builtin" oneof:"kind" nonempty:"true" doc:"An in-process stage registered by name (see the builtins below)."`
	Plugin      *PluginSpec      `yaml:"plugin" oneof:"kind" doc:"An external program speaking troupe's stage protocol, one process per worker."`
	Workers     int              `yaml:"workers" min:"1" max:"2147483647" doc:"Worker actors (and plugin processes); the number of CPUs when absent, and 1 for a reduce builtin."`
	Credits     int              `yaml:"credits" min:"1" max:"2147483647" doc:"Records in flight per worker at most; credit_bytes bounds their bytes too, so large records travel a few at a time. When absent, 1024 for an in-process stage and 8192 for a plugin or cluster stage (a round trip to another process needs a deeper pipeline to hide it): an override, the defaults suit small and large records alike."`
	CreditBytes units.Size       `yaml:"credit_bytes" default:"1MiB" min:"1" max:"1GiB" doc:"Bytes (keys and payloads) in flight per worker at most; a worker holding nothing still takes one record larger than this."`
	Attempts    int              `yaml:"attempts" default:"3" min:"1" max:"2147483647" doc:"Attempts per record before it goes to dead letters."`
	Timeout     time.Duration    `yaml:"timeout" min:"0s" doc:"Deadline per record and attempt; none when absent or 0."`
	Options     map[string]any   `yaml:"options" doc:"The stage's options: checked against the builtin's declared options, or handed to the plugin as they are."`
	Limits      *plugins.Limits  `yaml:"limits" doc:"Resource limits of a plugin stage's processes, enforced by a watchdog."`
	Spares      int              `yaml:"spares" min:"0" max:"2147483647" doc:"Warm plugin processes kept started, so that a worker that dies is replaced at once."`
	Restart     RestartSpec      `yaml:"restart" doc:"How the stage's workers restart after a crash."`
	Placement   string           `yaml:"placement" default:"local" enum:"local|cluster" doc:"Where the stage's workers run: local (in this process and its plugin processes) or cluster (workers workers on each node of cluster.nodes)."`
	At          schema.Positions `yaml:"-"`

	// builtinOptions are the builtin's options, decoded by Parse.
	builtinOptions any
}

var stageNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]*$`)

// Check holds the rules over several of the stage's keys.
func (s *StageSpec) Check() error {
	var errs []error
	if s.Name != "" && !stageNameRE.MatchString(s.Name) {
		errs = append(errs, schema.Errorf("name", "invalid stage name %q (use letters, digits, '_', '-' and '.')", s.Name))
	}
	if s.Builtin != "" {
		if s.At.Has("limits") {
			errs = append(errs, schema.Errorf("limits", "only plugin stages have resource limits (stage %s is builtin %s)", s.Name, s.Builtin))
		}
		if s.At.Has("spares") {
			errs = append(errs, schema.Errorf("spares", "only plugin stages keep warm spare processes (stage %s is builtin %s)", s.Name, s.Builtin))
		}
	}
	return errors.Join(errs...)
}

// PluginSpec runs a stage in external processes: the plugin package's own Config, whose tags
// declare the keys of `plugin:`. Parse resolves a relative program path containing a slash
// against the spec's directory; the stage's limits, spares and credits complete it (see
// StageSpec.PluginConfig).
type PluginSpec struct {
	plugins.Config `yaml:",inline"`
	At             schema.Positions `yaml:"-"`
}

// Check runs the plugin package's validation of its configuration (without touching the file
// system; Spec.Check looks for the program), and rejects environment variable names a process
// cannot have.
func (p *PluginSpec) Check() error {
	var errs []error
	for name := range p.Env {
		if name == "" || strings.ContainsAny(name, "=\x00") {
			errs = append(errs, schema.Errorf("env", "bad variable name %q", name))
		}
	}
	if len(p.Cmd) > 0 {
		if err := p.Config.Validate(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// PluginConfig is the configuration of a plugin stage's processes: the plugin section, with the
// stage's limits, spares and credits. It is the one place where they meet.
func (s *StageSpec) PluginConfig() plugins.Config {
	cfg := s.Plugin.Config
	if s.Limits != nil {
		cfg.Limits = *s.Limits
	}
	cfg.Spares, cfg.Credits = s.Spares, s.Credits
	return cfg
}

// RestartSpec is a stage's restart policy; its defaults are actors.DefaultRestart.
type RestartSpec struct {
	Intensity int              `yaml:"intensity" default:"50" doc:"Restarts of the stage's workers allowed within period before the stage gives up (and its supervisor restarts it)."`
	Period    time.Duration    `yaml:"period" default:"10s" doc:"The sliding window of intensity."`
	Backoff   RestartBackoff   `yaml:"backoff" doc:"Delays between repeated restarts within period: min, 2×min, 4×min… up to max, with jitter."`
	At        schema.Positions `yaml:"-"`
}

// RestartBackoff is a stage's restart backoff.
type RestartBackoff struct {
	Min time.Duration `yaml:"min" default:"10ms" doc:"The first delay; 0 restarts at once every time."`
	Max time.Duration `yaml:"max" default:"1s" doc:"The longest delay."`
}

// Restart returns the runtime's restart policy.
func (r RestartSpec) Restart() troupe.Restart {
	return troupe.Restart{Intensity: r.Intensity, Period: r.Period,
		Backoff: supervisor.Backoff{Min: r.Backoff.Min, Max: r.Backoff.Max}}
}

// Check runs the supervisor package's rules on the policy.
func (r *RestartSpec) Check() error {
	rs := r.Restart()
	return supervisorErrors(supervisor.Flags{Strategy: supervisor.OneForOne, Intensity: rs.Intensity,
		Period: rs.Period, Backoff: rs.Backoff}.Validate())
}

// SupervisionSpec is the root supervisor's flags; its defaults are a Pipeline's.
type SupervisionSpec struct {
	Strategy  string             `yaml:"strategy" default:"one_for_one" enum:"one_for_one|one_for_all|rest_for_one" doc:"Which children restart when one crashes: itself, all, or itself and those started after it."`
	Intensity int                `yaml:"intensity" default:"10" doc:"Restarts allowed within period before the run gives up."`
	Period    time.Duration      `yaml:"period" default:"1m" doc:"The sliding window of intensity."`
	Backoff   SupervisionBackoff `yaml:"backoff" doc:"Delays between repeated restarts within period; none when absent."`
	At        schema.Positions   `yaml:"-"`
}

// SupervisionBackoff is the root supervisor's restart backoff.
type SupervisionBackoff struct {
	Min time.Duration `yaml:"min" default:"0s" doc:"The first delay; 0 restarts at once every time."`
	Max time.Duration `yaml:"max" default:"0s" doc:"The longest delay."`
}

// Flags returns the supervisor flags; an unknown strategy (which Check reports) is one_for_one.
func (s SupervisionSpec) Flags() supervisor.Flags {
	st, _ := supervisor.ParseStrategy(s.Strategy)
	return supervisor.Flags{Strategy: st, Intensity: s.Intensity, Period: s.Period,
		Backoff: supervisor.Backoff{Min: s.Backoff.Min, Max: s.Backoff.Max}}
}

// Check runs the supervisor package's rules on the flags.
func (s *SupervisionSpec) Check() error {
	// The strategy's enum tag has checked it (Decode drops what Check says about a key that
	// failed); ParseStrategy is the supervisor's own word on it.
	_, err := supervisor.ParseStrategy(s.Strategy)
	return supervisorErrors(errors.Join(err, s.Flags().Validate()))
}

// supervisorErrors turns the supervisor package's field errors into schema field errors, whose
// paths (intensity, backoff.min) are the spec's keys, relative to the checked struct.
func supervisorErrors(err error) error {
	if err == nil {
		return nil
	}
	var fes supervisor.FieldErrors
	if !errors.As(err, &fes) {
		var fe *supervisor.FieldError
		if !errors.As(err, &fe) {
			return err
		}
		fes = supervisor.FieldErrors{fe}
	}
	out := make([]error, len(fes))
	for i, fe := range fes {
		out[i] = schema.Errorf(fe.Field, "%s", fe.Msg)
	}
	return errors.Join(out...)
}

// ---- cluster (issue 14) ----

// ClusterSpec lists the nodes (`troupe node` processes) that run the workers of the stages
// whose placement is cluster.
type ClusterSpec struct {
	Nodes     []string         `yaml:"nodes" required:"true" nonempty:"true" doc:"The nodes' addresses (host:port), as each node advertises it; a stage with placement: cluster runs its workers workers on each reachable node."`
	TokenEnv  string           `yaml:"token_env" default:"TROUPE_CLUSTER_TOKEN" nonempty:"true" doc:"The environment variable holding the cluster's token, which the nodes require of their peers."`
	Heartbeat time.Duration    `yaml:"heartbeat" default:"5s" min:"10ms" doc:"How long a node may stay silent (a crash, SIGSTOP, a partition) before its workers are counted lost and their records redelivered to the others; also the wait for a node to answer a spawn request."`
	Fallback  string           `yaml:"fallback" default:"abort" enum:"abort|local" doc:"What a cluster stage does when no node is reachable: abort the run, or run its workers locally."`
	Listen    string           `yaml:"listen" default:"127.0.0.1:0" nonempty:"true" doc:"The address (host:port) of this process's own remote, which the nodes answer to; port 0 picks a free one."`
	Advertise string           `yaml:"advertise" doc:"The address the nodes reach this process by, when not listen's (a node on another machine)."`
	TLS       *ClusterTLSSpec  `yaml:"tls" doc:"Mutual TLS with the nodes (their troupe node --tls-cert, --tls-key, --tls-ca); plain TCP when absent."`
	At        schema.Positions `yaml:"-"`
}

// ClusterTLSSpec names the PEM files of mutual TLS with the nodes.
type ClusterTLSSpec struct {
	Cert string           `yaml:"cert" required:"true" nonempty:"true" doc:"This process's certificate, relative to the spec's directory."`
	Key  string           `yaml:"key" required:"true" nonempty:"true" doc:"Its private key."`
	CA   string           `yaml:"ca" required:"true" nonempty:"true" doc:"The CA certificate that signed the nodes' certificates (and this one)."`
	At   schema.Positions `yaml:"-"`
}

// Check checks the addresses.
func (c *ClusterSpec) Check() error {
	var errs []error
	for i, a := range c.Nodes {
		if _, port, err := net.SplitHostPort(a); err != nil || port == "" || port == "0" {
			errs = append(errs, schema.Errorf(pathIndex("nodes", i), "want host:port with a port, got %q", a))
		}
	}
	for _, k := range []struct{ key, v string }{{"listen", c.Listen}, {"advertise", c.Advertise}} {
		if k.v == "" {
			continue
		}
		if _, _, err := net.SplitHostPort(k.v); err != nil {
			errs = append(errs, schema.Errorf(k.key, "want host:port, got %q", k.v))
		}
	}
	return errors.Join(errs...)
}

// checkCluster reports stages placed on a cluster the spec does not declare, and reduce stages
// placed on one (a reduce stage keeps its aggregates in one worker, here).
func (d *Document) checkCluster() []error {
	var errs []error
	for i := range d.Stages {
		st := &d.Stages[i]
		if st.Placement != "cluster" {
			continue
		}
		if d.Cluster == nil {
			errs = append(errs, schema.Errorf(pathIndex("stages", i)+".placement", "stage %s is placed on the cluster, but the spec has no cluster section", st.Name))
		}
		if st.Builtin != "" {
			if b, ok := stages.Lookup(st.Builtin); ok && b.Reduce != nil {
				errs = append(errs, schema.Errorf(pathIndex("stages", i)+".placement", "stage %s is a reduce stage (builtin %s): it runs locally only", st.Name, st.Builtin))
			}
		}
	}
	return errs
}
