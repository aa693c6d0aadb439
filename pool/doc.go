// Package pool is callrec's membership: every mediaadapter and recorder (and
// later lb and consolidation) process joins one pool and gossips its
// metadata (role, service address, capacity, load, draining) with
// hashicorp/memberlist, the only importer of that library.
//
// In the pipeline (DESIGN.md §3):
//
//	lb ──Pick(RoleMediaAdapter)──► mediaadapter ──Pick(RoleRecorder)──► recorder
//	operators: callrec pool status (Members), callrec pool drain NODE (Drain)
//
// A member opens the pool with Join and leaves with Leave. Its Config.Meta
// function reports its current metadata; the pool announces it when it
// changes (every RefreshInterval, or at once after Update). Pick chooses the
// live, non-draining member of a role with the most free capacity, counting
// the caller's own recent picks so that pickers with a stale view still
// spread their work (see Pick). Subscribe streams membership changes for
// caches. Drain asks one member, over an encrypted reliable message, to call
// its OnDrain and stop taking work.
//
// Security: set Config.SecretKey in production. It encrypts and
// authenticates gossip and Drain (AES-GCM, memberlist's keyring); without it
// anyone who reaches the gossip port can join, announce fake members, and
// drain real ones.
//
// Known memberlist pitfalls this package handles:
//   - node metadata over 512 bytes makes memberlist panic: Meta.Validate
//     refuses it first, sized for the widest counters (ErrInvalidMeta);
//   - the event delegate runs under memberlist's node lock, and Members()
//     returns pointers memberlist keeps writing: the pool keeps its own copy
//     of the member table, filled by the delegate without calling back;
//   - UpdateNode with no timeout can wait forever: announcements are bounded;
//   - a failed Join is not retried and partitions do not heal: the pool
//     retries with backoff, then re-joins seed addresses that are not live
//     members every RejoinInterval;
//   - the Node that memberlist passes to NotifyLeave always says alive
//     (nodeState's own State field shadows Node.State), so a delegate cannot
//     tell a leave from a crash: Leave announces Leaving and Draining in the
//     metadata first, and events say EventLeave or EventDead from that;
//   - gossip is epidemic and lossy: in 7-member test pools about one update
//     in 200 missed some member until the next push/pull (30 s on a LAN):
//     each change is announced twice, a refresh interval apart;
//   - a member restarted under the same name from a new address is refused
//     as a conflict until its old self is reaped: DeadNodeReclaimTime is set
//     (10 s), and default names carry a random suffix;
//   - memberlist resolves dotted seed names over TCP DNS from resolv.conf:
//     the pool resolves seeds itself with Go's resolver, so it can skip its
//     own address and addresses that are already live members;
//   - DefaultLocalConfig is unreliable with several members: Fast adds the
//     corrections measured in DESIGN.md §7.
package pool
