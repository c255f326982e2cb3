package ui_test

import (
	"context"
	"fmt"
	"os"
	"testing"

	"go.uber.org/goleak"

	"github.com/troupe-dev/troupe/plugins"
)

func TestMain(m *testing.M) {
	code := m.Run()
	if err := plugins.WaitClosed(context.Background()); err != nil { // the plugin processes are gone
		fmt.Fprintln(os.Stderr, err)
		code = 1
	}
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			code = 1
		}
	}
	os.Exit(code)
}
