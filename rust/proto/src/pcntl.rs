// SPDX-License-Identifier: GPL-2.0
//! pcntl(2) commands: decoding and validating what user space passes.
//!
//! The system call is `pcntl(cmd, a0, a1, a2)` with unsigned long
//! arguments; this turns it into a typed [`Command`] or an [`Errno`], so the
//! module only ever acts on well-formed requests. The numbers match
//! `include/uapi/linux/cohort.h`.

/// `PCNTL_WHERE`: the node a process runs on.
pub const PCNTL_WHERE: u32 = 1;

/// `PCNTL_MIGRATE`: move a process to another node.
pub const PCNTL_MIGRATE: u32 = 2;

/// `PCNTL_NODES`: the nodes that are up, as a bitmap.
pub const PCNTL_NODES: u32 = 3;

/// Size of the `PCNTL_NODES` bitmap (a `__u64`).
pub const NODES_BITMAP_LEN: usize = 8;

/// Largest pid the kernel hands out (`PID_MAX_LIMIT` on 64-bit).
pub const PID_MAX_LIMIT: i64 = 4 * 1024 * 1024;

/// A process named by a pcntl command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// The calling process (pid argument 0).
    Caller,
    /// The process with this pid in the caller's pid namespace.
    Pid(i32),
}

/// A decoded pcntl command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Command {
    /// Report the node `target` runs on.
    Where(Target),
    /// Move `target` to node `node` (a node id below `MAX_NODES`; whether
    /// it exists and is up is the module's to check).
    Migrate {
        /// The process.
        target: Target,
        /// The destination node.
        node: u32,
    },
    /// Store the bitmap of nodes that are up at user address `bitmap`.
    Nodes {
        /// User address of the `__u64` bitmap.
        bitmap: usize,
    },
}

/// Why a command was refused, as the errno user space sees.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Errno {
    /// `EINVAL`: unknown command or malformed argument.
    Inval,
}

/// Decodes a pid argument: 0 is the caller, 1..=[`PID_MAX_LIMIT`] a pid.
pub fn decode_target(arg: usize) -> Result<Target, Errno> {
    // The argument is a C `pid_t` passed as unsigned long: reinterpret it
    // as signed so that -1 is refused rather than read as a huge pid.
    let value = arg as i64;
    match value {
        0 => Ok(Target::Caller),
        1..=PID_MAX_LIMIT => i32::try_from(value)
            .map(Target::Pid)
            .map_err(|_| Errno::Inval),
        _ => Err(Errno::Inval),
    }
}

/// Decodes `pcntl(cmd, args[0], args[1], args[2])`.
pub fn decode(cmd: u32, args: [usize; 3]) -> Result<Command, Errno> {
    match cmd {
        PCNTL_WHERE => Ok(Command::Where(decode_target(args[0])?)),
        PCNTL_MIGRATE if args[1] < super::node::MAX_NODES && args[2] == 0 => Ok(Command::Migrate {
            target: decode_target(args[0])?,
            node: args[1] as u32,
        }),
        PCNTL_MIGRATE => Err(Errno::Inval),
        PCNTL_NODES if args[1] >= NODES_BITMAP_LEN => Ok(Command::Nodes { bitmap: args[0] }),
        PCNTL_NODES => Err(Errno::Inval),
        _ => Err(Errno::Inval),
    }
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
            decode(PCNTL_WHERE, [PID_MAX_LIMIT as usize, 0, 0]),
            Ok(Command::Where(Target::Pid(PID_MAX_LIMIT as i32)))
        );
    }

    #[test]
    fn bad_pids_are_refused() {
        for arg in [
            usize::MAX, // -1
            (-42i64) as usize,
            PID_MAX_LIMIT as usize + 1,
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
    fn migrate_takes_a_target_and_a_node() {
        assert_eq!(
            decode(PCNTL_MIGRATE, [0, 1, 0]),
            Ok(Command::Migrate {
                target: Target::Caller,
                node: 1
            })
        );
        assert_eq!(
            decode(PCNTL_MIGRATE, [42, 63, 0]),
            Ok(Command::Migrate {
                target: Target::Pid(42),
                node: 63
            })
        );
        for args in [
            [0, 64, 0],
            [0, usize::MAX, 0],
            [usize::MAX, 1, 0],
            [0, 1, 1],
        ] {
            assert_eq!(decode(PCNTL_MIGRATE, args), Err(Errno::Inval));
        }
    }

    #[test]
    fn unknown_commands_are_refused() {
        for cmd in [0, 4, 99, u32::MAX] {
            assert_eq!(decode(cmd, [0, 0, 0]), Err(Errno::Inval));
        }
    }
}
