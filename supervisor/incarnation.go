package supervisor

import (
	"sync"

	"github.com/asynkron/protoactor-go/actor"
)

// history numbers the incarnations of the children of one supervisor, by
// child name, and keeps the histories of its child supervisors by name, so
// that the numbering goes on when a child supervisor is restarted (its new
// incarnation gets the same history from its parent's). A root supervisor
// starts with a new history.
type history struct {
	mu  sync.Mutex
	n   map[string]int
	sub map[string]*history
}

func newHistory() *history { return &history{n: map[string]int{}, sub: map[string]*history{}} }

// next returns the number of the next incarnation of the child name and
// counts it.
func (h *history) next(name string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := h.n[name]
	h.n[name] = n + 1
	return n
}

// child returns the history of the child supervisor name.
func (h *history) child(name string) *history {
	h.mu.Lock()
	defer h.mu.Unlock()
	sub, ok := h.sub[name]
	if !ok {
		sub = newHistory()
		h.sub[name] = sub
	}
	return sub
}

// Incarnation returns the number of the calling child's incarnation (see
// ChildSpec.OnStart): 0 for the first start of a child of that name under
// its supervisor, then 1, 2, ... It can be called from the actor's
// Receive, its *actor.Started handler included, e.g. to find out that an
// earlier incarnation existed and may have left work unfinished. ok is
// false for an actor that this package does not supervise.
func Incarnation(ctx actor.Context) (n int, ok bool) {
	v, ok := registryOf(ctx.ActorSystem()).cells.Load(ctx.Self())
	if !ok {
		return 0, false
	}
	return v.(*cell).incarnation, true
}
