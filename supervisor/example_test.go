package supervisor_test

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync/atomic"
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

// A child's OnStart hook hands out the PID of each incarnation; children
// declared later (here the sender) can use the PIDs of those declared
// before them.
func ExampleChildSpec_onStart() {
	system := actor.NewActorSystemWithConfig(actor.Configure(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger {
		return slog.New(slog.NewTextHandler(io.Discard, nil))
	})))
	defer system.Shutdown()

	var sink atomic.Pointer[actor.PID]
	got := make(chan string)
	started := make(chan int, 2)
	sup, err := supervisor.Start(system, supervisor.Spec{
		Name:  "root",
		Flags: supervisor.Flags{Strategy: supervisor.OneForOne, Intensity: 3, Period: 10 * time.Second},
		Children: []supervisor.ChildSpec{
			{
				Name: "sink",
				Start: func() (*actor.Props, error) {
					return actor.PropsFromFunc(func(ctx actor.Context) {
						switch m := ctx.Message().(type) {
						case string:
							n, _ := supervisor.Incarnation(ctx)
							got <- fmt.Sprintf("incarnation %d got %q", n, m)
						case crash:
							supervisor.Exit(ctx, errors.New("boom"))
						}
					}), nil
				},
				OnStart: func(pid *actor.PID, n int) {
					fmt.Printf("%s: incarnation %d\n", pid.Id, n)
					sink.Store(pid)
					started <- n
				},
			},
			{
				Name: "sender",
				Start: func() (*actor.Props, error) {
					to := sink.Load() // the sink has started: it was declared first
					return actor.PropsFromFunc(func(ctx actor.Context) {
						if m, ok := ctx.Message().(string); ok {
							ctx.Send(to, m)
						}
					}), nil
				},
			},
		},
	})
	if err != nil {
		panic(err)
	}
	sender := system.NewLocalPID("root/sender")
	system.Root.Send(sender, "hello")
	fmt.Println(<-got)

	<-started
	system.Root.Send(sink.Load(), crash{})
	<-started // the restart
	// The sender's PID from the first incarnation reaches the new one.
	system.Root.Send(sender, "again")
	fmt.Println(<-got)
	_ = sup.Stop()
	// Output:
	// root/sink: incarnation 0
	// incarnation 0 got "hello"
	// root/sink: incarnation 1
	// incarnation 1 got "again"
}

// Validation reports every broken rule as a *FieldError naming its field.
func ExampleFlags_Validate() {
	f := supervisor.Flags{Strategy: supervisor.OneForOne, Intensity: -1, Period: 0}
	err := f.Validate()
	fmt.Println(err)
	var fes supervisor.FieldErrors
	if errors.As(err, &fes) {
		for _, fe := range fes {
			fmt.Printf("%s -> %s\n", fe.Field, fe.Msg)
		}
	}
	// Output:
	// supervisor: intensity: must not be negative, got -1; period: must be positive, got 0s
	// intensity -> must not be negative, got -1
	// period -> must be positive, got 0s
}
