// Package policy holds the plain data of OTP supervision that code outside the actor
// runtime needs to name: a supervisor's flags ([Flags]: restart [Strategy], intensity and
// period, [AutoShutdown], restart [Backoff]), the rules they must satisfy ([Flags.Validate],
// reported as [FieldErrors]), how a child is supervised ([RestartType], [ChildType]), what it
// is doing ([ChildState]) and the events a supervisor reports ([Event]).
//
// It exists so that a program can describe supervision, or receive its events, without
// linking the actor runtime: the root package troupe uses it for Pipeline.Supervision,
// Stage.Restart and Pipeline.Events, so a plugin built with plugins/sdk links neither
// protoactor-go nor its metrics (prometheus, OpenTelemetry). It imports only the standard
// library, and must keep it so (a test in plugins/sdk checks a plugin's dependencies).
//
// Package supervisor, which runs supervisors on protoactor actors, declares these types as
// aliases (supervisor.Flags is policy.Flags, supervisor.OneForOne is policy.OneForOne, ...),
// and documents what they mean there; callers that use the actor runtime anyway may keep
// naming them through package supervisor.
package policy
