package actors

import (
	"testing"
	"time"
)

// A mailbox scheduled while every goroutine is busy runs at once on a new one: work never
// queues behind an actor that is blocked in user code.
func TestDispatcherNeverQueuesBehindBusyWork(t *testing.T) {
	d := newDispatcher(300)
	defer d.close()
	release := make(chan struct{})
	d.Schedule(func() { <-release }) // busy until released
	ran := make(chan struct{})
	d.Schedule(func() { close(ran) })
	select {
	case <-ran:
	case <-time.After(30 * time.Second):
		t.Fatal("the second mailbox waited behind the blocked one")
	}
	close(release)
}

// A goroutine that finished a mailbox takes the next one: sequential work runs on one goroutine.
func TestDispatcherReusesIdleGoroutines(t *testing.T) {
	d := newDispatcher(300)
	defer d.close()
	for i := 0; i < 10; i++ {
		done := make(chan struct{})
		d.Schedule(func() { close(done) })
		<-done
		deadline := time.Now().Add(30 * time.Second)
		for d.idle.Load() != 1 { // wait until the goroutine is back waiting for work
			if time.Now().After(deadline) {
				t.Fatal("the goroutine never went back to waiting for work")
			}
			time.Sleep(time.Millisecond)
		}
	}
	if n := d.started.Load(); n != 1 {
		t.Fatalf("10 mailboxes run one after another started %d goroutines, want 1", n)
	}
}

// close ends the waiting goroutines (goleak in TestMain checks none is left).
func TestDispatcherCloseEndsIdleGoroutines(t *testing.T) {
	d := newDispatcher(300)
	done := make(chan struct{})
	d.Schedule(func() { close(done) })
	<-done
	d.close()
	deadline := time.Now().Add(30 * time.Second)
	for d.idle.Load() != 0 {
		if time.Now().After(deadline) {
			t.Fatal("an idle goroutine outlived close")
		}
		time.Sleep(time.Millisecond)
	}
}
