package supervisor

import (
	"sync"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/extensions"
)

// registry is what this package keeps per actor system: the shared state of
// every running supervisor, for Ref, and the cell of every running child
// incarnation, for Exit and Incarnation. It is an extension of the actor
// system (actor.ActorSystem.Extensions), so two actor systems in one
// process can use the same names without seeing each other's supervisors,
// and the state goes away with its actor system, also when that system is
// shut down without stopping its supervisors first.
type registry struct {
	supervisors sync.Map // PID id → *shared (names are unique within a system)
	cells       sync.Map // *actor.PID (pointer: one incarnation) → *cell
}

var registryID = extensions.NextExtensionID()

// ExtensionID implements extensions.Extension.
func (*registry) ExtensionID() extensions.ExtensionID { return registryID }

// registryMu serialises the lookup and registration of registries:
// protoactor's Extensions is a plain slice without locking.
var registryMu sync.Mutex

// registryOf returns system's registry, creating it on first use.
func registryOf(system *actor.ActorSystem) *registry {
	registryMu.Lock()
	defer registryMu.Unlock()
	if r, ok := system.Extensions.Get(registryID).(*registry); ok {
		return r
	}
	r := &registry{}
	system.Extensions.Register(r)
	return r
}
