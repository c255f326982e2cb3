package schema

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Parse parses data as a single YAML document and returns its root node, or nil for an empty
// document (Decode reads nil as an empty mapping). A syntax error, or a second document, is an
// error at its position.
func Parse(data []byte) (root *yaml.Node, errs Errors) {
	defer func() {
		// The YAML parser is not supposed to panic on any input; if it does, the document is
		// at fault, not the caller.
		if r := recover(); r != nil {
			root, errs = nil, Errors{{Line: 1, Col: 1, Msg: fmt.Sprintf("cannot parse YAML: %v", r)}}
		}
	}()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil
		}
		return nil, Errors{syntaxError(data, err)}
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		return nil, Errors{{Line: extra.Line, Col: extra.Column, Msg: "want a single YAML document; found another one here"}}
	} else if !errors.Is(err, io.EOF) {
		return nil, Errors{syntaxError(data, err)}
	}
	if len(doc.Content) == 0 || isNull(doc.Content[0]) && doc.Content[0].Value == "" {
		return nil, nil // nothing, or only "---"
	}
	return &doc, nil
}

var yamlLineRE = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// syntaxError positions an error of the YAML parser. Its messages carry a line but no column;
// the position given is the first non-blank character of that line.
func syntaxError(data []byte, err error) FieldError {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	line := 1
	if m := yamlLineRE.FindStringSubmatch(err.Error()); m != nil {
		if n, convErr := strconv.Atoi(m[1]); convErr == nil && n >= 1 {
			line = n
		}
		msg = m[2]
	}
	col := 1
	if lines := bytes.Split(data, []byte("\n")); line <= len(lines) {
		text := lines[line-1]
		col = len(text) - len(bytes.TrimLeft(text, " \t")) + 1
	}
	return FieldError{Line: line, Col: col, Msg: "invalid YAML: " + msg}
}
