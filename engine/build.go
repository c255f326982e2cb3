package engine

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/troupe-dev/troupe"
	"github.com/troupe-dev/troupe/actors"
	"github.com/troupe-dev/troupe/spec"
)

// build makes the job's pipeline, and its in-memory output when it has one.
func (e *Engine) build(js JobSpec) (*troupe.Pipeline, *actors.MemorySink, error) {
	if (js.Pipeline == nil) == (js.Spec == nil) {
		return nil, nil, errors.New("engine: a job needs exactly one of a Pipeline and a Spec")
	}
	limit := js.OutputLimit
	if limit <= 0 {
		limit = e.opts.OutputLimit
	}
	if js.Pipeline != nil {
		p := js.Pipeline
		if js.Input != nil {
			if p.Source != nil {
				_ = p.Source.Close()
			}
			p.Source = js.Input
		}
		if p.Source == nil {
			return nil, nil, errors.New("engine: the job has no input: set Pipeline.Source or JobSpec.Input")
		}
		var out *actors.MemorySink
		if p.Sink == nil {
			out = actors.NewMemorySink(limit)
			p.Sink = out
		}
		if p.Logger == nil {
			p.Logger = e.log
		}
		return p, out, nil
	}
	return e.buildSpec(js, limit)
}

func (e *Engine) buildSpec(js JobSpec, limit int64) (*troupe.Pipeline, *actors.MemorySink, error) {
	data, noSink := completeSpec(js.Spec, js.Input != nil)
	file := js.SpecFile
	if file == "" {
		file = "<spec>"
	}
	s, err := spec.Parse(data, file)
	if err != nil {
		if js.Input != nil {
			_ = js.Input.Close()
		}
		return nil, nil, err
	}
	memory := noSink || (s.Sink.Lines != nil && s.Sink.Lines.Path == "-")
	p, err := s.Pipeline(spec.BuildOptions{
		Stdin:        strings.NewReader(""), // a server has no standard input to give a job
		Stdout:       io.Discard,            // replaced by the in-memory output below
		Logger:       e.log,
		DrainTimeout: e.opts.DrainTimeout,
	})
	if err != nil {
		if js.Input != nil {
			_ = js.Input.Close()
		}
		return nil, nil, err
	}
	if js.Input != nil {
		_ = p.Source.Close()
		p.Source = js.Input
	}
	var out *actors.MemorySink
	if memory {
		_ = p.Sink.Close()
		out = actors.NewMemorySink(limit)
		p.Sink = out
	}
	// Plugin stages that a warm stage serves run on its processes.
	for i := range s.Stages {
		st := &s.Stages[i]
		ws := e.warm[st.Name]
		if st.Plugin == nil || ws == nil || !slices.Equal(st.Plugin.Cmd, ws.cmd) {
			continue
		}
		if c := p.Stages[i].Cleanup; c != nil {
			_ = c() // the spec's own spares, not needed
		}
		p.Stages[i].Backend = ws.factory
		p.Stages[i].Cleanup = nil
	}
	return p, out, nil
}

// completeSpec adds what a job's spec may leave out: the sink (the output is then collected in
// memory; noSink says so) and, when the job brings its input, the source. What is added goes at
// the end of the text, so that the positions of what the spec says stay where it said them. A
// spec that is neither a block mapping in YAML nor a JSON object is left alone (the parser says
// what is wrong with it).
func completeSpec(data []byte, hasInput bool) ([]byte, bool) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil || len(doc.Content) != 1 || doc.Content[0].Kind != yaml.MappingNode {
		return data, false
	}
	m := doc.Content[0]
	has := map[string]bool{}
	for i := 0; i+1 < len(m.Content); i += 2 {
		has[m.Content[i].Value] = true
	}
	var add []string
	noSink := !has["sink"]
	if noSink {
		add = append(add, "sink", `{"discard": {}}`)
	}
	if hasInput && !has["source"] {
		// Replaced by the job's input.
		add = append(add, "source", `{"range": {"count": 0}}`)
	}
	if len(add) == 0 {
		return data, noSink
	}
	trimmed := bytes.TrimRight(data, " \t\r\n")
	if m.Style&yaml.FlowStyle != 0 {
		// A JSON object (or a YAML flow mapping): the keys go before its closing brace.
		if len(trimmed) == 0 || trimmed[len(trimmed)-1] != '}' {
			return data, false
		}
		var b bytes.Buffer
		b.Write(trimmed[:len(trimmed)-1])
		for i := 0; i < len(add); i += 2 {
			if len(m.Content) > 0 || i > 0 {
				b.WriteString(", ")
			}
			k, _ := json.Marshal(add[i])
			fmt.Fprintf(&b, "%s: %s", k, add[i+1])
		}
		b.WriteString("}\n")
		return b.Bytes(), noSink
	}
	var b bytes.Buffer
	b.Write(trimmed)
	b.WriteString("\n")
	for i := 0; i < len(add); i += 2 {
		fmt.Fprintf(&b, "%s: %s\n", add[i], add[i+1])
	}
	return b.Bytes(), noSink
}
