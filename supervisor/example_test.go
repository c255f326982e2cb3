package supervisor_test

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/troupe-dev/troupe/supervisor"
)

type crash struct{}

func Example() {
	system := actor.NewActorSystemWithConfig(actor.Configure(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger {
		return slog.New(slog.NewTextHandler(io.Discard, nil))
	})))
	defer system.Shutdown()

	events := make(chan supervisor.Event, 100)
	unsubscribe := supervisor.Subscribe(system, func(e supervisor.Event) { events <- e })

	// A worker that exits abnormally when told to crash.
	work := func() (*actor.Props, error) {
		return actor.PropsFromFunc(func(ctx actor.Context) {
			if _, ok := ctx.Message().(crash); ok {
				supervisor.Exit(ctx, errors.New("boom"))
			}
		}), nil
	}
	sup, err := supervisor.Start(system, supervisor.Spec{
		Name:  "root",
		Flags: supervisor.Flags{Strategy: supervisor.OneForOne, Intensity: 3, Period: 10 * time.Second},
		Children: []supervisor.ChildSpec{
			{Name: "worker-1", Start: work, Restart: supervisor.Permanent},
		},
	})
	if err != nil {
		panic(err)
	}

	system.Root.Send(system.NewLocalPID("root/worker-1"), crash{})
	for e := range events {
		fmt.Println(e)
		if e.Kind == supervisor.Restarted {
			break
		}
	}

	_ = sup.Stop()
	fmt.Println("err:", sup.Err())
	unsubscribe()
	close(events)
	for e := range events {
		fmt.Println(e)
	}
	// Output:
	// root/worker-1 started
	// root/worker-1 exited (boom)
	// root/worker-1 restarted
	// err: <nil>
	// root/worker-1 stopped (shutdown)
	// root stopped
}
