package spec

import (
	"testing"

	"go.uber.org/goleak"
)

// Specs are built and pipelines run here (the examples): nothing may be left running.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
