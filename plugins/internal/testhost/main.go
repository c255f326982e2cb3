// Command testhost starts plugin processes and waits to be killed, for the test that checks
// that plugins die with their host. Usage: testhost N PLUGIN [ARG...]. It prints "pid P" for
// each plugin once all are running, then "ready".
package main

import (
	"context"
	"fmt"
	"os"
	"strconv"

	"github.com/troupe-dev/troupe"
	"github.com/troupe-dev/troupe/plugins/internal/host"
)

type outcomes struct{}

func (outcomes) Results([]troupe.Result) {}
func (outcomes) Grant(int)               {}
func (outcomes) Fail(err error)          { fmt.Fprintln(os.Stderr, "fail:", err) }

func main() {
	n, err := strconv.Atoi(os.Args[1])
	if err != nil {
		panic(err)
	}
	for i := 0; i < n; i++ {
		b, err := host.Start(context.Background(), host.Options{Cmd: os.Args[2:]}, host.Worker{Stage: "s", Index: i}, outcomes{})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		fmt.Printf("pid %d\n", b.Pid())
	}
	fmt.Println("ready")
	select {}
}
