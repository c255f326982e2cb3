package main

import (
	"testing"

	"go.uber.org/goleak"
)

// The command line runs pipelines and plugins in-process: nothing may be left running.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
