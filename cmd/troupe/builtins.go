package main

import (
	"github.com/spf13/cobra"

	"github.com/troupe-dev/troupe/spec"
	"github.com/troupe-dev/troupe/stages"
	"github.com/troupe-dev/troupe/stages/imgconv"
)

// The command's own builtins, on top of the generic ones of package stages.
func init() {
	// imgconv converts images to JPEG (see package stages/imgconv for its options).
	stages.Register("imgconv", imgconv.Builtin())
}

// builtinsCmd lists the builtins a spec can name, with their options.
func (e *env) builtinsCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "builtins",
		Short: "List the builtin stages and their options",
		Long: `List the builtin stages a spec can name (builtin: NAME), each with what it does and
its options: key, type, default and meaning.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return stages.Describe(e.stdout)
		},
	}
}

// builtinNotes are the lines a run's summary adds for the builtins its spec uses: the image
// codec of the imgconv builtin, which decides that job's speed.
func builtinNotes(s *spec.Spec) []string {
	for _, st := range s.Stages {
		if st.Builtin == "imgconv" {
			return []string{"imgconv codec: " + imgconv.Codec()}
		}
	}
	return nil
}
