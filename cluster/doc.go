// Package cluster runs a stage's workers on other processes and machines: `troupe node`
// processes, reached over protoactor-go's remote (gRPC). It plugs into the runtime as a
// troupe.BackendFactory, so the distributor treats a remote worker like a plugin process:
// credits, least-loaded dispatch, in-order custody, redelivery, dead letters and supervision
// apply unchanged, and package actors knows nothing of nodes.
//
// # Pieces
//
//   - Node (StartNode; the `troupe node` command) is an actor system with remote whose actor
//     NodeActor takes Spawn requests. For each, it starts a worker actor that runs the stage
//     through a troupe.Backend of its own: an in-process builtin (package stages, wrapped by
//     FuncBackend), or a plugin process (package plugins; the node checks the program's
//     sha256 before starting it, and refuses a mismatch).
//   - Client (NewClient) is the coordinator's side: Factory makes the stage's BackendFactory.
//     Each worker incarnation asks a node for a worker and gets a Backend whose Submit sends
//     the tasks to it as one clusterpb.Batch message; the node's worker answers with
//     clusterpb.Results and clusterpb.Grant messages, which the client's actor hands to the
//     runtime's troupe.Outcomes. The messages are protobuf (clusterpb/cluster.proto): records
//     travel in batches, packed column by column (every key in one bytes field, every payload
//     in another, with their lengths), never one message per record; each side checks that
//     what it receives adds up, and a malformed message fails the worker as a BackendFault.
//
// A worker's Backend names its node (Node() string), so the run's observation (the admin
// server's tree: node_addr) shows which node each worker runs on.
//
// # Losing a node
//
// The client's actor watches the remote worker (protoactor's remote watch: an endpoint that
// terminates delivers Terminated) and pings it every heartbeat/4; a worker silent for the
// heartbeat (a SIGSTOPped node, a partition) or terminated is reported with Outcomes.Fail as a
// troupe.BackendFault: the node is to blame, not a record, so every record it held is
// redelivered to the other workers uncharged, and the collector's deduplication keeps the sink
// exactly-once. The node is then counted lost for a heartbeat: worker restarts (the runtime's
// restart path calls the factory again) go to the next reachable node. Worker i prefers node i
// modulo the number of nodes. A worker placed elsewhere, or run locally by the fallback, looks
// every ten heartbeats whether its preferred node (for the fallback: any node) accepts
// connections again, and then fails itself (uncharged), so that its restart places it there: a
// node that comes back gets workers again. With no node reachable, a start falls back to
// Work.Fallback (the spec's `fallback: local`) or fails; five failed starts in a row abort the
// run, with "every node of the cluster is unreachable" and each node's reason.
//
// On the node's side, a worker stops when its client says so, when its client's endpoint
// terminates, or when it has heard nothing from its client for the heartbeat; stopping closes
// its backend (plugin processes included).
//
// # Trust
//
// Every remote connection, both ways, carries the cluster's token in its gRPC metadata: the
// remote's gRPC server refuses (and the node logs) a peer without it, before any message is
// read, and a Spawn carries it too. With TLS set on both sides (`troupe node --tls-cert
// --tls-key --tls-ca`, the spec's cluster.tls), every connection is mutual TLS as well: each
// side presents its certificate and requires the other's, signed by the cluster's CA. Without
// it the transport is plain TCP: keep the nodes on a trusted network.
//
// One process starts as few remotes as it can (clients with the same listen address and token
// share one): protoactor's Remote.Start sets grpc's global logger, which races with the servers
// of the remotes already running.
package cluster
