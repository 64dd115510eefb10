// SPDX-License-Identifier: GPL-2.0
//! pcntl(2) commands: decoding and validating what user space passes, and
//! the records some commands store in user memory.
//!
//! The system call is `pcntl(cmd, a0, a1, a2)` with unsigned long
//! arguments; this turns it into a typed [`Command`] or an [`Errno`], so the
//! module only ever acts on well-formed requests. The numbers and the
//! record layouts match `include/uapi/linux/cohort.h` (x86-64, so
//! little-endian). The management commands are OSF/1 AD's process
//! management (`../shared/seeds/003_190bd3aa168ab959.txt`, `pcntl()`).

use super::node::{NodeId, NodeSet, MAX_NODES};

/// `PCNTL_WHERE`: the node a process runs on.
pub const PCNTL_WHERE: u32 = 1;
/// `PCNTL_MIGRATE`: move a process (and its migration group) to a node.
pub const PCNTL_MIGRATE: u32 = 2;
/// `PCNTL_NODES`: the nodes that are up, as a bitmap.
pub const PCNTL_NODES: u32 = 3;
/// `PCNTL_FORBID`: the process may never be migrated.
pub const PCNTL_FORBID: u32 = 4;
/// `PCNTL_ALLOW`: the process may be migrated by others.
pub const PCNTL_ALLOW: u32 = 5;
/// `PCNTL_GROUP_JOIN`: put a process in a migration group.
pub const PCNTL_GROUP_JOIN: u32 = 6;
/// `PCNTL_GROUP_LEAVE`: take a process out of its migration group.
pub const PCNTL_GROUP_LEAVE: u32 = 7;
/// `PCNTL_STAT`: a process's migration statistics ([`Stat`]).
pub const PCNTL_STAT: u32 = 8;
/// `PCNTL_NODE_INFO`: a node's load and admission state ([`NodeInfo`]).
pub const PCNTL_NODE_INFO: u32 = 9;
/// `PCNTL_PULL`: move a process to the caller's node.
pub const PCNTL_PULL: u32 = 10;
/// `PCNTL_PS`: the user processes running on a node ([`Proc`] records).
pub const PCNTL_PS: u32 = 11;
/// `PCNTL_DEFAULT`: forget `PCNTL_FORBID` and `PCNTL_ALLOW`.
pub const PCNTL_DEFAULT: u32 = 12;

/// `PCNTL_GROUP_FORK`: children forked from now on join the group too.
pub const PCNTL_GROUP_FORK: u32 = 0x1;

/// `PCNTL_F_FORBIDDEN`: `PCNTL_FORBID` was said last.
pub const F_FORBIDDEN: u32 = 0x1;
/// `PCNTL_F_ALLOWED`: `PCNTL_ALLOW` was said last.
pub const F_ALLOWED: u32 = 0x2;
/// `PCNTL_F_GROUP_FORK`: children join the process's group.
pub const F_GROUP_FORK: u32 = 0x4;
/// `PCNTL_F_AWAY`: runs away from its origin.
pub const F_AWAY: u32 = 0x8;
/// `PCNTL_F_MIGRATED`: migrated at least once.
pub const F_MIGRATED: u32 = 0x10;
/// `PCNTL_F_SELF_ONLY`: forbidden for this process only (its children
/// start in the default state).
pub const F_SELF_ONLY: u32 = 0x20;
/// The flags a process keeps in its kernel state (the others are facts).
pub const SETTINGS: u32 = F_FORBIDDEN | F_ALLOWED | F_GROUP_FORK | F_SELF_ONLY;

/// `PCNTL_FORBID`'s `a1`: this process only.
pub const PCNTL_FORBID_SELF: usize = 0x1;

/// What `PCNTL_FORBID`, `PCNTL_ALLOW` and `PCNTL_DEFAULT` say of a process.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Permit {
    /// Never migrated; its children inherit it.
    Forbid,
    /// Never migrated; its children start in the default state.
    ForbidSelf,
    /// May be migrated by others under the opt-in policy too.
    Allow,
    /// Neither: the node's policy decides.
    Default,
}

impl Permit {
    /// The setting bits it sets; it clears the others of
    /// `F_FORBIDDEN | F_ALLOWED | F_SELF_ONLY`.
    pub fn bits(self) -> u32 {
        match self {
            Permit::Forbid => F_FORBIDDEN,
            Permit::ForbidSelf => F_FORBIDDEN | F_SELF_ONLY,
            Permit::Allow => F_ALLOWED,
            Permit::Default => 0,
        }
    }
}

/// The bits a [`Permit`] replaces.
pub const PERMIT_BITS: u32 = F_FORBIDDEN | F_ALLOWED | F_SELF_ONLY;

/// `PCNTL_NODE_ACCEPTS` and the reasons a node refuses.
pub const NODE_ACCEPTS: u32 = 0x1;
/// `/sys/kernel/cohort/accept` is 0 (or the uid is not in `accept_uids`).
pub const NODE_REFUSE_ADMIN: u32 = 0x2;
/// More tasks are runnable than `max_load`.
pub const NODE_REFUSE_LOAD: u32 = 0x4;
/// Less memory is available than `min_free_kb`.
pub const NODE_REFUSE_MEM: u32 = 0x8;
/// Every refusal reason.
pub const NODE_REFUSED: u32 = NODE_REFUSE_ADMIN | NODE_REFUSE_LOAD | NODE_REFUSE_MEM;

/// Size of the `PCNTL_NODES` bitmap (a `__u64`).
pub const NODES_BITMAP_LEN: usize = 8;

/// Largest pid the kernel hands out plus one (`PID_MAX_LIMIT` on 64-bit):
/// local pids are below it, cluster-wide pids at or above it.
pub const PID_MAX_LIMIT: i64 = 1 << GPID_SHIFT;

/// Bits of a cluster-wide pid that hold the pid; the node + 1 is above.
const GPID_SHIFT: u32 = 22;

/// Largest migration group id.
pub const GROUP_MAX: u32 = i32::MAX as u32;

/// A process named by a pcntl command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// The calling process (pid argument 0).
    Caller,
    /// The process with this pid in the caller's pid namespace, on the
    /// caller's node.
    Pid(i32),
    /// A cluster-wide pid (`PCNTL_GPID(node, pid)`): the process whose pid
    /// at its origin `node` is `pid`.
    Global(Gpid),
}

/// A cluster-wide pid: a process's origin node and its pid there.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Gpid {
    /// The node the process was created on.
    pub node: NodeId,
    /// Its pid there, `1..PID_MAX_LIMIT`.
    pub pid: u32,
}

impl Gpid {
    /// The `PCNTL_GPID(node, pid)` value user space sees.
    pub fn to_raw(self) -> i32 {
        (((u32::from(self.node.0) + 1) << GPID_SHIFT) | self.pid) as i32
    }

    /// Decodes a value at or above [`PID_MAX_LIMIT`].
    pub fn from_raw(value: i64) -> Option<Gpid> {
        if value < PID_MAX_LIMIT {
            return None;
        }
        let node = (value >> GPID_SHIFT) - 1;
        let pid = (value & (PID_MAX_LIMIT - 1)) as u32;
        if node >= MAX_NODES as i64 || pid == 0 {
            return None;
        }
        Some(Gpid {
            node: NodeId(node as u8),
            pid,
        })
    }
}

/// A decoded pcntl command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Command {
    /// Report the node `target` runs on.
    Where(Target),
    /// Move `target`, and its migration group, to node `node` (below
    /// `MAX_NODES`; whether it exists and is up is the module's to check).
    Migrate {
        /// The process.
        target: Target,
        /// The destination node.
        node: u32,
        /// User address of an `int` for the pid of a group member that
        /// refused, or 0.
        refused: usize,
    },
    /// Store the bitmap of nodes that are up at user address `bitmap`.
    Nodes {
        /// User address of the `__u64` bitmap.
        bitmap: usize,
    },
    /// Forbid or allow migrating `target`, or forget either.
    Permit(Target, Permit),
    /// Put `target` in migration group `group` (`1..=GROUP_MAX`).
    GroupJoin {
        /// The process.
        target: Target,
        /// The group.
        group: u32,
        /// Its children join too (`PCNTL_GROUP_FORK`).
        fork: bool,
    },
    /// Take `target` out of its group.
    GroupLeave(Target),
    /// Store `target`'s [`Stat`] at user address `buf`, `size` bytes of
    /// room (at least [`Stat::SIZE_VER0`]).
    Stat {
        /// The process.
        target: Target,
        /// User address.
        buf: usize,
        /// Room there, in bytes.
        size: usize,
    },
    /// Store node `node`'s [`NodeInfo`] at `buf` (`size` bytes of room, at
    /// least [`NodeInfo::SIZE_VER0`]).
    NodeInfo {
        /// The node, below `MAX_NODES`.
        node: u32,
        /// User address.
        buf: usize,
        /// Room there, in bytes.
        size: usize,
    },
    /// Move `target`, and its migration group, to the caller's node.
    Pull {
        /// The process.
        target: Target,
        /// User address of an `int` for the pid of a group member that
        /// refused, or 0 (as [`Command::Migrate`]'s).
        refused: usize,
    },
    /// Store the [`Proc`] records of node `node`'s user processes at `buf`
    /// (`size` bytes of room); returns how many there are.
    Ps {
        /// The node, below `MAX_NODES`.
        node: u32,
        /// User address.
        buf: usize,
        /// Room there, in bytes.
        size: usize,
    },
}

/// Why a command was refused, as the errno user space sees.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Errno {
    /// `EINVAL`: unknown command or malformed argument.
    Inval,
}

/// Decodes a pid argument: 0 is the caller, `1..PID_MAX_LIMIT` a local
/// pid, a valid `PCNTL_GPID()` a cluster-wide one.
pub fn decode_target(arg: usize) -> Result<Target, Errno> {
    // The argument is a C `pid_t` passed as unsigned long: reinterpret it
    // as signed so that -1 is refused rather than read as a huge pid.
    let value = arg as i64;
    match value {
        0 => Ok(Target::Caller),
        1..PID_MAX_LIMIT => Ok(Target::Pid(value as i32)),
        _ if value <= i32::MAX as i64 => Gpid::from_raw(value)
            .map(Target::Global)
            .ok_or(Errno::Inval),
        _ => Err(Errno::Inval),
    }
}

fn decode_node(arg: usize) -> Result<u32, Errno> {
    if arg < MAX_NODES {
        Ok(arg as u32)
    } else {
        Err(Errno::Inval)
    }
}

/// Decodes `pcntl(cmd, args[0], args[1], args[2])`.
pub fn decode(cmd: u32, args: [usize; 3]) -> Result<Command, Errno> {
    match cmd {
        PCNTL_WHERE => Ok(Command::Where(decode_target(args[0])?)),
        PCNTL_MIGRATE => Ok(Command::Migrate {
            target: decode_target(args[0])?,
            node: decode_node(args[1])?,
            refused: args[2],
        }),
        PCNTL_NODES if args[1] >= NODES_BITMAP_LEN => Ok(Command::Nodes { bitmap: args[0] }),
        PCNTL_FORBID if args[1] & !PCNTL_FORBID_SELF == 0 => Ok(Command::Permit(
            decode_target(args[0])?,
            if args[1] != 0 {
                Permit::ForbidSelf
            } else {
                Permit::Forbid
            },
        )),
        PCNTL_ALLOW => Ok(Command::Permit(decode_target(args[0])?, Permit::Allow)),
        PCNTL_DEFAULT => Ok(Command::Permit(decode_target(args[0])?, Permit::Default)),
        PCNTL_GROUP_JOIN
            if (1..=GROUP_MAX as usize).contains(&args[1])
                && args[2] & !(PCNTL_GROUP_FORK as usize) == 0 =>
        {
            Ok(Command::GroupJoin {
                target: decode_target(args[0])?,
                group: args[1] as u32,
                fork: args[2] != 0,
            })
        }
        PCNTL_GROUP_LEAVE => Ok(Command::GroupLeave(decode_target(args[0])?)),
        PCNTL_STAT if args[2] >= Stat::SIZE_VER0 => Ok(Command::Stat {
            target: decode_target(args[0])?,
            buf: args[1],
            size: args[2],
        }),
        PCNTL_NODE_INFO if args[2] >= NodeInfo::SIZE_VER0 => Ok(Command::NodeInfo {
            node: decode_node(args[0])?,
            buf: args[1],
            size: args[2],
        }),
        PCNTL_PULL => Ok(Command::Pull {
            target: decode_target(args[0])?,
            refused: args[2],
        }),
        PCNTL_PS => Ok(Command::Ps {
            node: decode_node(args[0])?,
            buf: args[1],
            size: args[2],
        }),
        _ => Err(Errno::Inval),
    }
}

/// Copies `N` bytes into `out` at `*at` and advances it.
fn put<const N: usize>(out: &mut [u8], at: &mut usize, bytes: [u8; N]) {
    out[*at..*at + N].copy_from_slice(&bytes);
    *at += N;
}

fn get_u32(b: &[u8], at: &mut usize) -> u32 {
    let mut v = [0u8; 4];
    v.copy_from_slice(&b[*at..*at + 4]);
    *at += 4;
    u32::from_le_bytes(v)
}

fn get_u64(b: &[u8], at: &mut usize) -> u64 {
    let mut v = [0u8; 8];
    v.copy_from_slice(&b[*at..*at + 8]);
    *at += 8;
    u64::from_le_bytes(v)
}

/// What a process's nodes count of its migrations (`struct pcntl_stat`
/// without its header fields). The node a process runs on carries the
/// counts of the nodes it left, so they add up as it moves.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Times it moved.
    pub migrations: u64,
    /// Pages brought to it from other nodes.
    pub pages_fetched: u64,
    /// Pages its nodes sent to other nodes.
    pub pages_served: u64,
    /// System calls run for it at its origin.
    pub calls_forwarded: u64,
    /// Bytes of migration messages, pages and forwarded calls.
    pub bytes_moved: u64,
}

impl Counts {
    /// Encoded size on the wire (5 `u64`).
    pub const LEN: usize = 40;

    /// Adds `other`'s counts (saturating).
    pub fn add(&mut self, other: &Counts) {
        self.migrations = self.migrations.saturating_add(other.migrations);
        self.pages_fetched = self.pages_fetched.saturating_add(other.pages_fetched);
        self.pages_served = self.pages_served.saturating_add(other.pages_served);
        self.calls_forwarded = self.calls_forwarded.saturating_add(other.calls_forwarded);
        self.bytes_moved = self.bytes_moved.saturating_add(other.bytes_moved);
    }
}

/// `struct pcntl_stat`: one process's migration statistics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stat {
    /// `PCNTL_F_*`.
    pub flags: u32,
    /// Cluster-wide pid (`PCNTL_GPID`).
    pub gpid: i32,
    /// Migration group, 0 for none.
    pub group: u32,
    /// Node it was created on.
    pub origin: u32,
    /// Node it runs on.
    pub node: u32,
    /// Nanoseconds since it was created.
    pub age_ns: u64,
    /// Nanoseconds since it arrived where it runs (`age_ns` if it never
    /// moved).
    pub resident_ns: u64,
    /// Nodes it ran on.
    pub visited: NodeSet,
    /// The counts.
    pub counts: Counts,
}

impl Stat {
    /// `sizeof(struct pcntl_stat)` of this version.
    pub const SIZE: usize = 88;
    /// `PCNTL_STAT_SIZE_VER0`: the smallest size user space may pass.
    pub const SIZE_VER0: usize = 88;

    /// The record as user space sees it.
    pub fn to_bytes(&self) -> [u8; Stat::SIZE] {
        let mut out = [0u8; Stat::SIZE];
        let at = &mut 0;
        put(&mut out, at, (Stat::SIZE as u32).to_le_bytes());
        put(&mut out, at, self.flags.to_le_bytes());
        put(&mut out, at, self.gpid.to_le_bytes());
        put(&mut out, at, self.group.to_le_bytes());
        put(&mut out, at, self.origin.to_le_bytes());
        put(&mut out, at, self.node.to_le_bytes());
        put(&mut out, at, self.age_ns.to_le_bytes());
        put(&mut out, at, self.resident_ns.to_le_bytes());
        put(&mut out, at, self.counts.migrations.to_le_bytes());
        put(&mut out, at, self.visited.0.to_le_bytes());
        put(&mut out, at, self.counts.pages_fetched.to_le_bytes());
        put(&mut out, at, self.counts.pages_served.to_le_bytes());
        put(&mut out, at, self.counts.calls_forwarded.to_le_bytes());
        put(&mut out, at, self.counts.bytes_moved.to_le_bytes());
        out
    }

    /// Reads what [`Stat::to_bytes`] wrote (the same layout crosses the
    /// wire); `None` for a wrong size field.
    pub fn from_bytes(b: &[u8; Stat::SIZE]) -> Option<Stat> {
        let at = &mut 0;
        if get_u32(b, at) as usize != Stat::SIZE {
            return None;
        }
        let flags = get_u32(b, at);
        let gpid = get_u32(b, at) as i32;
        let group = get_u32(b, at);
        let origin = get_u32(b, at);
        let node = get_u32(b, at);
        let age_ns = get_u64(b, at);
        let resident_ns = get_u64(b, at);
        let migrations = get_u64(b, at);
        let visited = NodeSet(get_u64(b, at));
        let counts = Counts {
            migrations,
            pages_fetched: get_u64(b, at),
            pages_served: get_u64(b, at),
            calls_forwarded: get_u64(b, at),
            bytes_moved: get_u64(b, at),
        };
        Some(Stat {
            flags,
            gpid,
            group,
            origin,
            node,
            age_ns,
            resident_ns,
            visited,
            counts,
        })
    }
}

/// `struct pcntl_node_info`: a node's load and admission state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NodeInfo {
    /// `PCNTL_NODE_*`.
    pub flags: u32,
    /// The node.
    pub node: u32,
    /// Online CPUs.
    pub nr_cpus: u32,
    /// Runnable tasks now.
    pub nr_running: u32,
    /// Refuses above this many runnable tasks; 0 for no limit.
    pub max_load: u32,
    /// User processes running there.
    pub nr_procs: u32,
    /// Of those, the ones that migrated.
    pub nr_distributed: u32,
    /// 1-minute load average, times 1000.
    pub load1_milli: u64,
    /// Available memory, KiB.
    pub free_kb: u64,
    /// Total memory, KiB.
    pub total_kb: u64,
    /// Refuses below this much available memory, KiB; 0 for no limit.
    pub min_free_kb: u64,
}

impl NodeInfo {
    /// `sizeof(struct pcntl_node_info)` of this version.
    pub const SIZE: usize = 64;
    /// `PCNTL_NODE_INFO_SIZE_VER0`.
    pub const SIZE_VER0: usize = 64;

    /// The record as user space sees it (and as it crosses the wire).
    pub fn to_bytes(&self) -> [u8; NodeInfo::SIZE] {
        let mut out = [0u8; NodeInfo::SIZE];
        let at = &mut 0;
        for v in [
            NodeInfo::SIZE as u32,
            self.flags,
            self.node,
            self.nr_cpus,
            self.nr_running,
            self.max_load,
            self.nr_procs,
            self.nr_distributed,
        ] {
            put(&mut out, at, v.to_le_bytes());
        }
        for v in [
            self.load1_milli,
            self.free_kb,
            self.total_kb,
            self.min_free_kb,
        ] {
            put(&mut out, at, v.to_le_bytes());
        }
        out
    }

    /// Reads what [`NodeInfo::to_bytes`] wrote; `None` for a wrong size
    /// field or a node id out of range.
    pub fn from_bytes(b: &[u8; NodeInfo::SIZE]) -> Option<NodeInfo> {
        let at = &mut 0;
        if get_u32(b, at) as usize != NodeInfo::SIZE {
            return None;
        }
        let info = NodeInfo {
            flags: get_u32(b, at),
            node: get_u32(b, at),
            nr_cpus: get_u32(b, at),
            nr_running: get_u32(b, at),
            max_load: get_u32(b, at),
            nr_procs: get_u32(b, at),
            nr_distributed: get_u32(b, at),
            load1_milli: get_u64(b, at),
            free_kb: get_u64(b, at),
            total_kb: get_u64(b, at),
            min_free_kb: get_u64(b, at),
        };
        (info.node < MAX_NODES as u32).then_some(info)
    }
}

/// `struct pcntl_proc`: one user process running on a node.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Proc {
    /// Cluster-wide pid.
    pub gpid: i32,
    /// Pid on the node it runs on.
    pub pid: i32,
    /// Node it was created on.
    pub origin: u32,
    /// Node it runs on.
    pub node: u32,
    /// Real uid.
    pub uid: u32,
    /// Migration group, 0 for none.
    pub group: u32,
    /// `PCNTL_F_*`.
    pub flags: u32,
    /// Its threads on that node.
    pub threads: u32,
    /// Times it moved.
    pub migrations: u64,
    /// User + system time on that node, nanoseconds.
    pub cpu_ns: u64,
    /// Nanoseconds since it arrived there (or was created).
    pub resident_ns: u64,
    /// Command name, NUL-padded.
    pub comm: [u8; 16],
}

impl Proc {
    /// `sizeof(struct pcntl_proc)`.
    pub const SIZE: usize = 72;

    /// The record as user space sees it (and as it crosses the wire).
    pub fn to_bytes(&self) -> [u8; Proc::SIZE] {
        let mut out = [0u8; Proc::SIZE];
        let at = &mut 0;
        for v in [
            self.gpid as u32,
            self.pid as u32,
            self.origin,
            self.node,
            self.uid,
            self.group,
            self.flags,
            self.threads,
        ] {
            put(&mut out, at, v.to_le_bytes());
        }
        for v in [self.migrations, self.cpu_ns, self.resident_ns] {
            put(&mut out, at, v.to_le_bytes());
        }
        put(&mut out, at, self.comm);
        out
    }

    /// Reads what [`Proc::to_bytes`] wrote.
    pub fn from_bytes(b: &[u8; Proc::SIZE]) -> Proc {
        let at = &mut 0;
        let mut p = Proc {
            gpid: get_u32(b, at) as i32,
            pid: get_u32(b, at) as i32,
            origin: get_u32(b, at),
            node: get_u32(b, at),
            uid: get_u32(b, at),
            group: get_u32(b, at),
            flags: get_u32(b, at),
            threads: get_u32(b, at),
            migrations: get_u64(b, at),
            cpu_ns: get_u64(b, at),
            resident_ns: get_u64(b, at),
            comm: [0; 16],
        };
        p.comm.copy_from_slice(&b[*at..*at + 16]);
        p
    }
}

/// Whether a process with settings `flags` may be moved by a request, by
/// the rules of `PCNTL_FORBID`, `PCNTL_ALLOW` and the node's
/// `migration_policy`: never when forbidden; under `opt_in`, by others
/// only when allowed; else yes.
pub fn may_move(flags: u32, own: bool, opt_in: bool) -> bool {
    if flags & F_FORBIDDEN != 0 {
        return false;
    }
    own || !opt_in || flags & F_ALLOWED != 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn where_takes_caller_or_pid() {
        assert_eq!(
            decode(PCNTL_WHERE, [0, 0, 0]),
            Ok(Command::Where(Target::Caller))
        );
        assert_eq!(
            decode(PCNTL_WHERE, [42, 7, 9]),
            Ok(Command::Where(Target::Pid(42)))
        );
        assert_eq!(
            decode(PCNTL_WHERE, [PID_MAX_LIMIT as usize - 1, 0, 0]),
            Ok(Command::Where(Target::Pid(PID_MAX_LIMIT as i32 - 1)))
        );
    }

    #[test]
    fn bad_pids_are_refused() {
        for arg in [
            usize::MAX, // -1
            (-42i64) as usize,
            PID_MAX_LIMIT as usize, // PCNTL_GPID(0, 0)
            (65 << 22) | 1,         // node 64
            i32::MAX as usize + 1,
            usize::MAX / 2,
        ] {
            assert_eq!(decode(PCNTL_WHERE, [arg, 0, 0]), Err(Errno::Inval));
        }
    }

    #[test]
    fn nodes_needs_room_for_the_bitmap() {
        assert_eq!(
            decode(PCNTL_NODES, [0x1000, 8, 0]),
            Ok(Command::Nodes { bitmap: 0x1000 })
        );
        assert_eq!(
            decode(PCNTL_NODES, [0x1000, 64, 0]),
            Ok(Command::Nodes { bitmap: 0x1000 })
        );
        for len in [0, 1, 4, 7] {
            assert_eq!(decode(PCNTL_NODES, [0x1000, len, 0]), Err(Errno::Inval));
        }
    }

    #[test]
    fn migrate_takes_a_target_a_node_and_a_refusal_pointer() {
        assert_eq!(
            decode(PCNTL_MIGRATE, [0, 1, 0]),
            Ok(Command::Migrate {
                target: Target::Caller,
                node: 1,
                refused: 0
            })
        );
        assert_eq!(
            decode(PCNTL_MIGRATE, [42, 63, 0x1000]),
            Ok(Command::Migrate {
                target: Target::Pid(42),
                node: 63,
                refused: 0x1000
            })
        );
        for args in [[0, 64, 0], [0, usize::MAX, 0], [usize::MAX, 1, 0]] {
            assert_eq!(decode(PCNTL_MIGRATE, args), Err(Errno::Inval));
        }
    }

    #[test]
    fn cluster_wide_pids_round_trip() {
        for (node, pid) in [(0u8, 1u32), (3, 77), (63, (1 << 22) - 1)] {
            let g = Gpid {
                node: NodeId(node),
                pid,
            };
            let raw = g.to_raw();
            assert!(raw > 0);
            assert_eq!(Gpid::from_raw(raw as i64), Some(g));
            assert_eq!(
                decode(PCNTL_WHERE, [raw as usize, 0, 0]),
                Ok(Command::Where(Target::Global(g)))
            );
        }
        // The C macro: PCNTL_GPID(3, 77) == ((3 + 1) << 22) | 77.
        assert_eq!(
            Gpid {
                node: NodeId(3),
                pid: 77
            }
            .to_raw(),
            (4 << 22) | 77
        );
        assert_eq!(Gpid::from_raw(42), None);
    }

    #[test]
    fn management_commands_check_their_arguments() {
        assert_eq!(
            decode(PCNTL_FORBID, [0, 0, 0]),
            Ok(Command::Permit(Target::Caller, Permit::Forbid))
        );
        assert_eq!(
            decode(PCNTL_FORBID, [0, PCNTL_FORBID_SELF, 0]),
            Ok(Command::Permit(Target::Caller, Permit::ForbidSelf))
        );
        assert_eq!(decode(PCNTL_FORBID, [0, 2, 0]), Err(Errno::Inval));
        assert_eq!(
            decode(PCNTL_ALLOW, [7, 0, 0]),
            Ok(Command::Permit(Target::Pid(7), Permit::Allow))
        );
        assert_eq!(
            decode(PCNTL_DEFAULT, [7, 0, 0]),
            Ok(Command::Permit(Target::Pid(7), Permit::Default))
        );
        assert_eq!(
            decode(PCNTL_GROUP_JOIN, [7, 5, 1]),
            Ok(Command::GroupJoin {
                target: Target::Pid(7),
                group: 5,
                fork: true
            })
        );
        for args in [[7, 0, 0], [7, 1 << 31, 0], [7, 5, 2], [usize::MAX, 5, 0]] {
            assert_eq!(decode(PCNTL_GROUP_JOIN, args), Err(Errno::Inval));
        }
        assert_eq!(
            decode(PCNTL_GROUP_LEAVE, [0, 0, 0]),
            Ok(Command::GroupLeave(Target::Caller))
        );
        assert_eq!(
            decode(PCNTL_STAT, [0, 0x1000, 88]),
            Ok(Command::Stat {
                target: Target::Caller,
                buf: 0x1000,
                size: 88
            })
        );
        assert_eq!(decode(PCNTL_STAT, [0, 0x1000, 87]), Err(Errno::Inval));
        assert_eq!(decode(PCNTL_NODE_INFO, [1, 0x1000, 63]), Err(Errno::Inval));
        assert_eq!(decode(PCNTL_NODE_INFO, [64, 0x1000, 64]), Err(Errno::Inval));
        assert_eq!(
            decode(PCNTL_PS, [1, 0, 0]),
            Ok(Command::Ps {
                node: 1,
                buf: 0,
                size: 0
            })
        );
        assert_eq!(decode(PCNTL_PS, [64, 0, 0]), Err(Errno::Inval));
        assert_eq!(
            decode(PCNTL_PULL, [9, 0, 0]),
            Ok(Command::Pull {
                target: Target::Pid(9),
                refused: 0
            })
        );
        assert_eq!(
            decode(PCNTL_PULL, [9, 7, 0x1000]),
            Ok(Command::Pull {
                target: Target::Pid(9),
                refused: 0x1000
            })
        );
    }

    #[test]
    fn records_round_trip_with_the_c_layout() {
        let st = Stat {
            flags: F_MIGRATED | F_AWAY,
            gpid: 5 << 22,
            group: 9,
            origin: 0,
            node: 1,
            age_ns: 10,
            resident_ns: 4,
            visited: NodeSet(3),
            counts: Counts {
                migrations: 1,
                pages_fetched: 2,
                pages_served: 3,
                calls_forwarded: 4,
                bytes_moved: 5,
            },
        };
        let b = st.to_bytes();
        assert_eq!(&b[0..4], &88u32.to_le_bytes());
        // migrations at offset 40, visited at 48, bytes_moved at 80.
        assert_eq!(&b[40..48], &1u64.to_le_bytes());
        assert_eq!(&b[48..56], &3u64.to_le_bytes());
        assert_eq!(&b[80..88], &5u64.to_le_bytes());
        assert_eq!(Stat::from_bytes(&b), Some(st));
        let info = NodeInfo {
            flags: NODE_ACCEPTS,
            node: 2,
            load1_milli: 1500,
            min_free_kb: 7,
            ..NodeInfo::default()
        };
        let b = info.to_bytes();
        assert_eq!(&b[32..40], &1500u64.to_le_bytes());
        assert_eq!(&b[56..64], &7u64.to_le_bytes());
        assert_eq!(NodeInfo::from_bytes(&b), Some(info));
        let p = Proc {
            gpid: 1 << 22 | 5,
            pid: 5,
            comm: *b"spin\0\0\0\0\0\0\0\0\0\0\0\0",
            cpu_ns: 99,
            ..Proc::default()
        };
        let b = p.to_bytes();
        assert_eq!(&b[40..48], &99u64.to_le_bytes());
        assert_eq!(&b[56..60], b"spin");
        assert_eq!(Proc::from_bytes(&b), p);
    }

    #[test]
    fn forbid_and_policy_decide_who_may_move_a_process() {
        // Forbidden: never, not even its own request.
        assert!(!may_move(F_FORBIDDEN, true, false));
        assert!(!may_move(F_FORBIDDEN, false, false));
        // Default policy: anyone (permission is checked apart).
        assert!(may_move(0, false, false));
        // Opt-in: others only if it allowed it; itself always.
        assert!(!may_move(0, false, true));
        assert!(may_move(0, true, true));
        assert!(may_move(F_ALLOWED, false, true));
    }

    #[test]
    fn unknown_commands_are_refused() {
        for cmd in [0, 13, 99, u32::MAX] {
            assert_eq!(decode(cmd, [0, 0, 0]), Err(Errno::Inval));
        }
    }
}
