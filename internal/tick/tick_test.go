package tick

import (
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type ping struct{}

// Ticks arrive until Stop; Stop twice, or on nil, is harmless; no goroutine is left.
func TestTickerSendsUntilStopped(t *testing.T) {
	sys := actor.NewActorSystem()
	defer sys.Shutdown()
	got := make(chan struct{}, 100)
	pid := sys.Root.Spawn(actor.PropsFromFunc(func(c actor.Context) {
		if _, ok := c.Message().(ping); ok {
			select {
			case got <- struct{}{}:
			default:
			}
		}
	}))
	tk := Start(sys, pid, time.Millisecond, ping{})
	for i := 0; i < 3; i++ {
		select {
		case <-got:
		case <-time.After(30 * time.Second):
			t.Fatalf("tick %d never came", i+1)
		}
	}
	tk.Stop()
	tk.Stop()
	var none *Ticker
	none.Stop()
}
