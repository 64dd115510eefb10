// SPDX-License-Identifier: GPL-2.0
//! popcorn's task messages: migration, exit, signals, system calls
//! forwarded to the origin and the pages of a migrated task's address
//! space.
//!
//! These are kmsg payloads, little-endian, encoded through the
//! bounds-checked [`Writer`] and [`Reader`]. Every encoder checks what it
//! writes with the very rules its decoder applies, so a message that
//! encodes also decodes, and decoding is canonical: bytes that decode
//! re-encode to themselves. No input makes this code panic or allocate; a
//! malformed payload is [`WireError::BadPayload`], an output buffer too small
//! [`WireError::ShortBuffer`].
//!
//! A [`TaskId`] travels as `origin u16, pid u32` (6 bytes): the origin is
//! below [`MAX_NODES`] and the pid is not 0. A node id travels as a `u16`
//! below [`MAX_NODES`].
//!
//! | type                  | request payload          | reply payload                  |
//! |-----------------------|--------------------------|--------------------------------|
//! | [`MSG_MIGRATE`]       | [`encode_migrate`]       | [`MigrateReply`]               |
//! | [`MSG_MIGRATE_ABORT`] | [`MigrateAbort`]         | none (one-way)                 |
//! | [`MSG_MOVED`]         | [`Moved`]                | none (one-way)                 |
//! | [`MSG_EXIT`]          | [`Exit`]                 | none (one-way)                 |
//! | [`MSG_SIGNAL`]        | [`Signal`]               | none (one-way)                 |
//! | [`MSG_SYSCALL`]       | [`SyscallMsg`]           | [`SyscallReply`]               |
//! | [`MSG_MIGRATE_REQ`]   | [`MigrateReq`]           | [`MigrateReply`]               |
//! | [`MSG_SYSCALL_INTR`]  | [`SyscallIntr`]          | [`SyscallReply`]               |
//!
//! Any request may instead be answered by an error reply
//! ([`super::wire::ErrorReply`]).

use super::files::{decode_files, encode_files, files_len, FileDesc, FileIter, MAX_FILES};
use super::migration::TaskId;
use super::node::{NodeId, NodeSet, MAX_NODES};
use super::pcntl::{Counts, GROUP_MAX, SETTINGS};
use super::wire::{Payload, Reader, WireError, Writer, MAX_ERRNO, MAX_MESSAGE};

/// Request: a task's whole state, sent by the node it runs on to the node
/// it moves to ([`encode_migrate`], [`decode_migrate`]). The destination
/// creates (or wakes the shadow of) the task and answers with a
/// [`MigrateReply`] carrying the task's pid there.
pub const MSG_MIGRATE: u16 = 0x120;
/// One-way [`MigrateAbort`], from the node a task left to its destination:
/// the sender gave up on a migration the destination may have accepted (the
/// reply came too late, or the task was killed meanwhile), so the
/// destination discards whatever it created for the task.
pub const MSG_MIGRATE_ABORT: u16 = 0x121;
/// One-way [`Moved`], to the task's origin: the task now runs on another
/// node (so signals and requests for it go there).
pub const MSG_MOVED: u16 = 0x122;
/// One-way [`Exit`], to the task's origin and to the nodes holding its
/// shadows: the task exited with a wait status; shadows exit too and the
/// origin reports the status to the parent.
pub const MSG_EXIT: u16 = 0x123;
/// One-way [`Signal`], to the node the task runs on: deliver a signal to it
/// (a signal sent at the origin follows the task).
pub const MSG_SIGNAL: u16 = 0x124;
/// Request: a system call a migrated task makes, forwarded to its origin,
/// whose shadow runs it there with the task's working directory, children
/// and pid space ([`SyscallMsg`]); the reply is a [`SyscallReply`].
pub const MSG_SYSCALL: u16 = 0x125;
/// Request to the node a task runs on: migrate it to another node
/// ([`MigrateReq`], e.g. a pcntl(2) migrate issued on another node). The
/// reply is empty once the task runs on the destination, or, when the task
/// no longer runs on the receiver, a [`MigrateReq`] whose `dest` is the node
/// it moved to, for the asker to ask there.
pub const MSG_MIGRATE_REQ: u16 = 0x12A;
/// Request to the task's origin from the node it runs on, where a signal
/// interrupted the task's wait for the reply to a [`MSG_SYSCALL`]
/// ([`SyscallIntr`]): interrupt that call. The reply is the call's own
/// reply, a [`SyscallReply`], sent when the call ends (interrupted or not),
/// or again if it had already been sent (see `fwd`).
pub const MSG_SYSCALL_INTR: u16 = 0x12C;

/// Size of a page.
pub const PAGE_SIZE: usize = 4096;
/// `log2(PAGE_SIZE)`: an address's page number is `addr >> PAGE_SHIFT`.
pub const PAGE_SHIFT: u32 = 12;
/// End of the user address space these messages accept (x86-64 with
/// 4-level page tables): addresses and range ends are at most this.
pub const USER_END: u64 = 1 << 47;
/// Largest number of VMAs in a [`MSG_MIGRATE`] (Linux's default
/// `vm.max_map_count` is 65530); the message as a whole is also bounded by
/// [`MIGRATE_MAX_LEN`].
pub const MAX_VMAS: usize = 65536;
/// Largest number of supplementary groups in a [`MSG_MIGRATE`]
/// (`NGROUPS_MAX`).
pub const MAX_GROUPS: usize = 65536;

/// Supplementary groups encoded in a message (`u32` little-endian each), as
/// they read in place.
pub(crate) fn groups_in(raw: &[u8]) -> impl ExactSizeIterator<Item = u32> + '_ {
    raw.chunks_exact(4).map(|c| {
        let mut b = [0u8; 4];
        b.copy_from_slice(c);
        u32::from_le_bytes(b)
    })
}
/// Largest number of queued signals in a [`MSG_MIGRATE`].
pub const MAX_SIGQUEUE: usize = 65536;
/// Largest path of the executable in a [`MSG_MIGRATE`], in bytes.
pub const MAX_EXE_PATH: usize = 4095;
/// Size of a queued signal's siginfo (the kernel's `struct kernel_siginfo`
/// on x86-64).
pub const SIGINFO_LEN: usize = 48;
/// Number of resource limits (`RLIMIT_CPU` to `RLIMIT_RTTIME`).
pub const NR_RLIMITS: usize = 16;
/// Largest path of a file-backed VMA, in bytes.
pub const MAX_VMA_PATH: usize = 255;
/// Largest architecture state in a [`MSG_MIGRATE`], in bytes.
pub const MAX_ARCH_STATE: usize = 16384;
/// Largest `data` of a [`SyscallMsg`] or [`SyscallReply`].
pub const FWD_MAX_DATA: usize = 65536;
/// Largest path of a forwarded open, in bytes (`PATH_MAX` without the NUL).
pub const FWD_MAX_PATH: usize = 4095;
/// The `fd` of a forwarded open relative to the current directory.
pub const AT_FDCWD: i32 = -100;
/// Number of signals, `1..=NSIG`.
pub const NSIG: usize = 64;
/// `SIGKILL`, which can be neither blocked nor caught.
pub const SIGKILL: u32 = 9;
/// `SIGSTOP`, which can be neither blocked nor caught.
pub const SIGSTOP: u32 = 19;

/// Encoded size of a [`TaskId`].
const TASK_LEN: usize = 6;
/// Encoded size of a node id.
const NODE_LEN: usize = 2;

/// `Ok` if `ok`, else [`WireError::BadPayload`].
fn check(ok: bool) -> Result<(), WireError> {
    if ok {
        Ok(())
    } else {
        Err(WireError::BadPayload)
    }
}

/// Returns whether `task` can travel: origin below [`MAX_NODES`], pid not 0.
fn task_ok(task: &TaskId) -> bool {
    task.origin.is_valid() && task.pid != 0
}

/// Returns whether `addr` is page-aligned.
const fn page_aligned(addr: u64) -> bool {
    addr & (PAGE_SIZE as u64 - 1) == 0
}

/// Writes a node id as a `u16`, refusing ids not below [`MAX_NODES`].
pub(super) fn write_node(w: &mut Writer<'_>, node: NodeId) -> Result<(), WireError> {
    check(node.is_valid())?;
    w.u16(u16::from(node.0))
}

/// Reads a node id, refusing ids not below [`MAX_NODES`].
pub(super) fn read_node(r: &mut Reader<'_>) -> Result<NodeId, WireError> {
    match u8::try_from(r.u16()?) {
        Ok(id) if usize::from(id) < MAX_NODES => Ok(NodeId(id)),
        _ => Err(WireError::BadPayload),
    }
}

/// Writes a task id (`origin u16, pid u32`), refusing an invalid one.
pub(super) fn write_task(w: &mut Writer<'_>, task: &TaskId) -> Result<(), WireError> {
    check(task_ok(task))?;
    write_node(w, task.origin)?;
    w.u32(task.pid)
}

/// Reads and validates a task id.
pub(super) fn read_task(r: &mut Reader<'_>) -> Result<TaskId, WireError> {
    let origin = read_node(r)?;
    let pid = r.u32()?;
    let task = TaskId { origin, pid };
    check(task_ok(&task))?;
    Ok(task)
}

/// Appends a little-endian `i64`.
fn write_i64(w: &mut Writer<'_>, v: i64) -> Result<(), WireError> {
    w.bytes(&v.to_le_bytes())
}

/// Reads a little-endian `i64`.
fn read_i64(r: &mut Reader<'_>) -> Result<i64, WireError> {
    Ok(i64::from_le_bytes(r.array()?))
}

/// Converts a length to the `u32` of the wire.
fn len_u32(len: usize) -> Result<u32, WireError> {
    u32::try_from(len).map_err(|_| WireError::BadPayload)
}

/// Widens a wire length (saturating on targets where `usize` is narrower).
fn len_usize(len: u32) -> usize {
    usize::try_from(len).unwrap_or(usize::MAX)
}

/// [`MSG_MOVED`]: `task` now runs on `node`. Layout `task (6), node u16`
/// (8 bytes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Moved {
    /// The task.
    pub task: TaskId,
    /// The node it runs on now.
    pub node: NodeId,
}

impl Payload for Moved {
    const LEN: usize = TASK_LEN + NODE_LEN;

    fn write(&self, w: &mut Writer<'_>) -> Result<(), WireError> {
        write_task(w, &self.task)?;
        write_node(w, self.node)
    }

    fn read(r: &mut Reader<'_>) -> Result<Self, WireError> {
        Ok(Moved {
            task: read_task(r)?,
            node: read_node(r)?,
        })
    }
}

/// [`MSG_MIGRATE_ABORT`]: forget the migration of `task`. Layout `task (6)`
/// (6 bytes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MigrateAbort {
    /// The task whose migration was abandoned.
    pub task: TaskId,
}

impl Payload for MigrateAbort {
    const LEN: usize = TASK_LEN;

    fn write(&self, w: &mut Writer<'_>) -> Result<(), WireError> {
        write_task(w, &self.task)
    }

    fn read(r: &mut Reader<'_>) -> Result<Self, WireError> {
        Ok(MigrateAbort {
            task: read_task(r)?,
        })
    }
}

/// [`MSG_SYSCALL_INTR`]: interrupt the forwarded call `task` waits for.
/// Layout `task (6)` (6 bytes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SyscallIntr {
    /// The task.
    pub task: TaskId,
}

impl Payload for SyscallIntr {
    const LEN: usize = TASK_LEN;

    fn write(&self, w: &mut Writer<'_>) -> Result<(), WireError> {
        write_task(w, &self.task)
    }

    fn read(r: &mut Reader<'_>) -> Result<Self, WireError> {
        Ok(SyscallIntr {
            task: read_task(r)?,
        })
    }
}

/// [`MSG_EXIT`]: `task` exited with wait status `code`. Layout
/// `task (6), code i64` (14 bytes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Exit {
    /// The task.
    pub task: TaskId,
    /// Its wait status (as `wait4` reports it), in the `i32` range.
    pub code: i64,
}

impl Exit {
    /// Checks the fields: the task is valid and `code` fits an `i32`.
    pub fn validate(&self) -> Result<(), WireError> {
        check(task_ok(&self.task) && i32::try_from(self.code).is_ok())
    }
}

impl Payload for Exit {
    const LEN: usize = TASK_LEN + 8;

    fn write(&self, w: &mut Writer<'_>) -> Result<(), WireError> {
        self.validate()?;
        write_task(w, &self.task)?;
        write_i64(w, self.code)
    }

    fn read(r: &mut Reader<'_>) -> Result<Self, WireError> {
        let exit = Exit {
            task: read_task(r)?,
            code: read_i64(r)?,
        };
        exit.validate()?;
        Ok(exit)
    }
}

/// [`MSG_SIGNAL`]: deliver `signo` to `task`. Layout `task (6), signo u32`
/// (10 bytes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Signal {
    /// The task.
    pub task: TaskId,
    /// The signal, `1..=NSIG`.
    pub signo: u32,
}

impl Signal {
    /// Checks the fields: the task is valid and `signo` is `1..=NSIG`.
    pub fn validate(&self) -> Result<(), WireError> {
        check(task_ok(&self.task) && (1..=NSIG as u32).contains(&self.signo))
    }
}

impl Payload for Signal {
    const LEN: usize = TASK_LEN + 4;

    fn write(&self, w: &mut Writer<'_>) -> Result<(), WireError> {
        self.validate()?;
        write_task(w, &self.task)?;
        w.u32(self.signo)
    }

    fn read(r: &mut Reader<'_>) -> Result<Self, WireError> {
        let signal = Signal {
            task: read_task(r)?,
            signo: r.u32()?,
        };
        signal.validate()?;
        Ok(signal)
    }
}

/// [`MSG_MIGRATE_REQ`]: migrate `task` to `dest`. Layout `task (6),
/// dest u16` (8 bytes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MigrateReq {
    /// The task.
    pub task: TaskId,
    /// Where it should go.
    pub dest: NodeId,
}

impl Payload for MigrateReq {
    const LEN: usize = TASK_LEN + NODE_LEN;

    fn write(&self, w: &mut Writer<'_>) -> Result<(), WireError> {
        write_task(w, &self.task)?;
        write_node(w, self.dest)
    }

    fn read(r: &mut Reader<'_>) -> Result<Self, WireError> {
        Ok(MigrateReq {
            task: read_task(r)?,
            dest: read_node(r)?,
        })
    }
}

/// The reply to [`MSG_MIGRATE`] and [`MSG_MIGRATE_REQ`]: the pid the task
/// has on its destination. Layout `pid u32` (4 bytes), not 0.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MigrateReply {
    /// The task's pid on the destination node, not 0.
    pub pid: u32,
}

impl Payload for MigrateReply {
    const LEN: usize = 4;

    fn write(&self, w: &mut Writer<'_>) -> Result<(), WireError> {
        check(self.pid != 0)?;
        w.u32(self.pid)
    }

    fn read(r: &mut Reader<'_>) -> Result<Self, WireError> {
        let pid = r.u32()?;
        check(pid != 0)?;
        Ok(MigrateReply { pid })
    }
}

/// The system call a [`SyscallMsg`] forwards to the task's origin (a `u8`
/// on the wire; values 1 to 7 were the file calls that proxy files
/// replaced, see [`super::files`], and are refused).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum FwdCall {
    /// `openat(fd, data, a, b)`: `data` is the path (1 to [`FWD_MAX_PATH`]
    /// bytes, no NUL), `a` the flags (a `u32`), `b` the mode (at most
    /// `0o7777`), `fd` a directory or [`AT_FDCWD`]. The reply's result is
    /// the new fd at the origin.
    Open = 8,
    /// `wait4(a as i32, status, b, rusage)` for the children the task has
    /// at its origin: `a` is the pid argument's bits (a `u32`), `b` the
    /// options (`WNOHANG`, `WUNTRACED`, `WCONTINUED`, `__WALL`...), `fd` 0,
    /// no data. The reply's result is the pid reaped (0 with `WNOHANG`);
    /// for a positive one its data are the status (`i32`) and the `struct
    /// rusage` ([`WAIT_REPLY_LEN`] bytes).
    Wait4 = 9,
    /// `kill(a as i32, b)` in the origin's pid space: `a` the pid's bits
    /// (a `u32`; not -1), `b` the signal (0 to 64), `fd` 0, no data.
    Kill = 10,
    /// `tgkill(fd, a, b)` in the origin's pid space: `fd` the thread
    /// group (positive), `a` the thread (positive), `b` the signal (0 to
    /// 64), no data.
    Tgkill = 11,
    /// `getpgid(a)` at the origin (`a` 0: the task itself), `fd` and `b`
    /// 0, no data.
    Getpgid = 12,
    /// `getsid(a)` at the origin, likewise.
    Getsid = 13,
    /// A path call (`stat`, `unlink`, `rename`, `chdir`, `getcwd`...)
    /// relative to the working directory at the origin: `data` is a
    /// [`super::pathcall::PathCall`], `fd`, `a` and `b` are 0. The reply's
    /// data are the call's outputs in argument order, each at its full
    /// size, when the result is not negative.
    Path = 14,
}

/// Size of `struct rusage` on x86-64.
pub const RUSAGE_LEN: usize = 144;
/// Data of a [`FwdCall::Wait4`] reply that reaped a child: status and
/// rusage.
pub const WAIT_REPLY_LEN: usize = 4 + RUSAGE_LEN;
/// Highest signal number.
pub const SIG_MAX: u64 = 64;

impl FwdCall {
    /// The call of wire value `v`.
    pub const fn from_u8(v: u8) -> Option<FwdCall> {
        Some(match v {
            8 => FwdCall::Open,
            9 => FwdCall::Wait4,
            10 => FwdCall::Kill,
            11 => FwdCall::Tgkill,
            12 => FwdCall::Getpgid,
            13 => FwdCall::Getsid,
            14 => FwdCall::Path,
            _ => return None,
        })
    }

    /// The wire value.
    pub const fn as_u8(self) -> u8 {
        self as u8
    }
}

/// Encoded size of a [`SyscallMsg`] without its data: `task (6), call u8,
/// fd i32, a u64, b u64, data_len u32`.
pub const SYSCALL_HEAD_LEN: usize = TASK_LEN + 1 + 4 + 8 + 8 + 4;

/// [`MSG_SYSCALL`]: a system call of `task` to run at its origin. Layout
/// `task (6), call u8, fd i32, a u64, b u64, data_len u32, data`
/// ([`SYSCALL_HEAD_LEN`] + `data_len` bytes). What `fd`, `a`, `b` and
/// `data` mean depends on the call ([`FwdCall`]); arguments a call does not
/// use are 0 (data empty). `fd` is at least 0, except for
/// [`FwdCall::Open`] where it may be [`AT_FDCWD`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SyscallMsg<'a> {
    /// The calling task.
    pub task: TaskId,
    /// The syscall.
    pub call: FwdCall,
    /// The file descriptor (at the origin).
    pub fd: i32,
    /// First argument (see [`FwdCall`]).
    pub a: u64,
    /// Second argument (see [`FwdCall`]).
    pub b: u64,
    /// Bytes to write or the path to open; at most [`FWD_MAX_DATA`].
    pub data: &'a [u8],
}

impl<'a> SyscallMsg<'a> {
    /// Checks the fields against the rules of [`FwdCall`].
    pub fn validate(&self) -> Result<(), WireError> {
        check(task_ok(&self.task) && self.data.len() <= FWD_MAX_DATA)?;
        let fd_ok = self.fd >= 0 || (self.call == FwdCall::Open && self.fd == AT_FDCWD);
        let no_data = self.data.is_empty();
        let ok = fd_ok
            && match self.call {
                FwdCall::Open => {
                    !no_data
                        && self.data.len() <= FWD_MAX_PATH
                        && !self.data.contains(&0)
                        && self.a <= u64::from(u32::MAX)
                        && self.b <= 0o7777
                }
                FwdCall::Wait4 => {
                    self.fd == 0
                        && no_data
                        && self.a <= u64::from(u32::MAX)
                        && self.b <= u64::from(u32::MAX)
                }
                FwdCall::Kill => {
                    self.fd == 0
                        && no_data
                        && self.a <= u64::from(u32::MAX)
                        && self.a != u64::from(u32::MAX)
                        && self.b <= SIG_MAX
                }
                FwdCall::Tgkill => {
                    self.fd > 0
                        && no_data
                        && (1..=i32::MAX as u64).contains(&self.a)
                        && self.b <= SIG_MAX
                }
                FwdCall::Getpgid | FwdCall::Getsid => {
                    self.fd == 0 && no_data && self.a <= i32::MAX as u64 && self.b == 0
                }
                FwdCall::Path => {
                    self.fd == 0
                        && self.a == 0
                        && self.b == 0
                        && super::pathcall::PathCall::decode(self.data).is_ok()
                }
            };
        check(ok)
    }

    /// Bytes [`SyscallMsg::encode`] writes.
    pub fn encoded_len(&self) -> usize {
        SYSCALL_HEAD_LEN.saturating_add(self.data.len())
    }

    /// Encodes the message into the start of `out`; returns the bytes
    /// written ([`SyscallMsg::encoded_len`]).
    pub fn encode(&self, out: &mut [u8]) -> Result<usize, WireError> {
        self.validate()?;
        if out.len() < self.encoded_len() {
            return Err(WireError::ShortBuffer);
        }
        let mut w = Writer::new(out);
        write_task(&mut w, &self.task)?;
        w.u8(self.call.as_u8())?;
        w.i32(self.fd)?;
        w.u64(self.a)?;
        w.u64(self.b)?;
        w.u32(len_u32(self.data.len())?)?;
        w.bytes(self.data)?;
        Ok(w.written())
    }

    /// Decodes and validates a whole message; `data` borrows from `bytes`.
    pub fn decode(bytes: &'a [u8]) -> Result<SyscallMsg<'a>, WireError> {
        let mut r = Reader::new(bytes);
        let task = read_task(&mut r)?;
        let call = FwdCall::from_u8(r.u8()?).ok_or(WireError::BadPayload)?;
        let fd = r.i32()?;
        let a = r.u64()?;
        let b = r.u64()?;
        let len = len_usize(r.u32()?);
        check(len <= FWD_MAX_DATA)?;
        let data = r.bytes(len)?;
        r.finish()?;
        let msg = SyscallMsg {
            task,
            call,
            fd,
            a,
            b,
            data,
        };
        msg.validate()?;
        Ok(msg)
    }
}

/// Encoded size of a [`SyscallReply`] without its data: `result i64,
/// data_len u32`.
pub const SYSCALL_REPLY_HEAD_LEN: usize = 8 + 4;

/// The reply to [`MSG_SYSCALL`]: the syscall's result and, for
/// [`FwdCall::Open`] and [`FwdCall::Wait4`], the data it produced (the
/// file's [`super::files::FileDesc`]; the child's status and rusage). Layout `result i64, data_len u32, data`
/// ([`SYSCALL_REPLY_HEAD_LEN`] + `data_len` bytes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SyscallReply<'a> {
    /// The syscall's return value: at least 0, or `-errno` with errno
    /// `1..=MAX_ERRNO`.
    pub result: i64,
    /// The call's data: at most [`FWD_MAX_DATA`], empty
    /// when `result` is negative.
    pub data: &'a [u8],
}

impl<'a> SyscallReply<'a> {
    /// Checks the fields: `result` is at least `-MAX_ERRNO`, `data` is at
    /// most [`FWD_MAX_DATA`] and empty on failure.
    pub fn validate(&self) -> Result<(), WireError> {
        check(
            self.result >= -i64::from(MAX_ERRNO)
                && self.data.len() <= FWD_MAX_DATA
                && (self.result >= 0 || self.data.is_empty()),
        )
    }

    /// Bytes [`SyscallReply::encode`] writes.
    pub fn encoded_len(&self) -> usize {
        SYSCALL_REPLY_HEAD_LEN.saturating_add(self.data.len())
    }

    /// Encodes the reply into the start of `out`; returns the bytes written
    /// ([`SyscallReply::encoded_len`]).
    pub fn encode(&self, out: &mut [u8]) -> Result<usize, WireError> {
        self.validate()?;
        if out.len() < self.encoded_len() {
            return Err(WireError::ShortBuffer);
        }
        let mut w = Writer::new(out);
        write_i64(&mut w, self.result)?;
        w.u32(len_u32(self.data.len())?)?;
        w.bytes(self.data)?;
        Ok(w.written())
    }

    /// Decodes and validates a whole reply; `data` borrows from `bytes`.
    pub fn decode(bytes: &'a [u8]) -> Result<SyscallReply<'a>, WireError> {
        let mut r = Reader::new(bytes);
        let result = read_i64(&mut r)?;
        let len = len_usize(r.u32()?);
        check(len <= FWD_MAX_DATA)?;
        let data = r.bytes(len)?;
        r.finish()?;
        let reply = SyscallReply { result, data };
        reply.validate()?;
        Ok(reply)
    }
}

/// One signal's disposition (the kernel's `struct k_sigaction` on x86-64).
/// Layout `handler u64, flags u64, restorer u64, mask u64` (32 bytes).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SigAction {
    /// `sa_handler` (0 `SIG_DFL`, 1 `SIG_IGN`, else a user address).
    pub handler: u64,
    /// `sa_flags`.
    pub flags: u64,
    /// `sa_restorer`.
    pub restorer: u64,
    /// `sa_mask`: bit `n - 1` for signal `n`.
    pub mask: u64,
}

impl SigAction {
    /// Encoded size.
    pub const LEN: usize = 32;
    /// The default disposition (all zero).
    pub const DEFAULT: SigAction = SigAction {
        handler: 0,
        flags: 0,
        restorer: 0,
        mask: 0,
    };

    fn write(&self, w: &mut Writer<'_>) -> Result<(), WireError> {
        w.u64(self.handler)?;
        w.u64(self.flags)?;
        w.u64(self.restorer)?;
        w.u64(self.mask)
    }

    fn read(r: &mut Reader<'_>) -> Result<SigAction, WireError> {
        Ok(SigAction {
            handler: r.u64()?,
            flags: r.u64()?,
            restorer: r.u64()?,
            mask: r.u64()?,
        })
    }
}

/// A task's signal state. Layout `blocked u64, pending u64`, then the
/// [`NSIG`] [`SigAction`]s of signals 1 to 64 (2064 bytes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Signals {
    /// Blocked signals: bit `n - 1` for signal `n`; never [`SIGKILL`] or
    /// [`SIGSTOP`].
    pub blocked: u64,
    /// Signals pending for the task (bit `n - 1` for signal `n`).
    pub pending: u64,
    /// Dispositions; entry `n - 1` is signal `n`'s. (They are the thread
    /// group's; a single-threaded task carries them with it.)
    pub actions: [SigAction; NSIG],
}

impl Signals {
    /// Encoded size.
    pub const LEN: usize = 16 + NSIG * SigAction::LEN;
    /// Nothing blocked or pending, every disposition the default.
    pub const EMPTY: Signals = Signals {
        blocked: 0,
        pending: 0,
        actions: [SigAction::DEFAULT; NSIG],
    };
    /// The bits of [`SIGKILL`] and [`SIGSTOP`], which cannot be blocked.
    pub const UNBLOCKABLE: u64 = (1 << (SIGKILL - 1)) | (1 << (SIGSTOP - 1));

    /// Checks the fields: neither [`SIGKILL`] nor [`SIGSTOP`] is blocked.
    pub fn validate(&self) -> Result<(), WireError> {
        check(self.blocked & Self::UNBLOCKABLE == 0)
    }
}

impl Default for Signals {
    fn default() -> Self {
        Signals::EMPTY
    }
}

/// A task's scheduling parameters. Layout `policy i32, rt_priority i32,
/// nice i32` (12 bytes).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Sched {
    /// `SCHED_*` policy, `0..=6`.
    pub policy: i32,
    /// Real-time priority, `0..=99`.
    pub rt_priority: i32,
    /// Nice value, `-20..=19`.
    pub nice: i32,
}

impl Sched {
    /// Encoded size.
    pub const LEN: usize = 12;

    /// Checks the ranges of the three fields.
    pub fn validate(&self) -> Result<(), WireError> {
        check(
            (0..=6).contains(&self.policy)
                && (0..=99).contains(&self.rt_priority)
                && (-20..=19).contains(&self.nice),
        )
    }

    fn write(&self, w: &mut Writer<'_>) -> Result<(), WireError> {
        w.i32(self.policy)?;
        w.i32(self.rt_priority)?;
        w.i32(self.nice)
    }

    fn read(r: &mut Reader<'_>) -> Result<Sched, WireError> {
        Ok(Sched {
            policy: r.i32()?,
            rt_priority: r.i32()?,
            nice: r.i32()?,
        })
    }
}

/// A task's credentials. Layout: the eight ids as `u32` (uid, gid, suid,
/// sgid, euid, egid, fsuid, fsgid), the five capability sets as `u64`
/// (inheritable, permitted, effective, bounding, ambient), `securebits u32`,
/// `umask u32` (80 bytes).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Creds {
    /// Real user id.
    pub uid: u32,
    /// Real group id.
    pub gid: u32,
    /// Saved user id.
    pub suid: u32,
    /// Saved group id.
    pub sgid: u32,
    /// Effective user id.
    pub euid: u32,
    /// Effective group id.
    pub egid: u32,
    /// File-system user id.
    pub fsuid: u32,
    /// File-system group id.
    pub fsgid: u32,
    /// Inheritable capabilities.
    pub cap_inheritable: u64,
    /// Permitted capabilities.
    pub cap_permitted: u64,
    /// Effective capabilities.
    pub cap_effective: u64,
    /// Capability bounding set.
    pub cap_bset: u64,
    /// Ambient capabilities.
    pub cap_ambient: u64,
    /// `SECURE_*` bits.
    pub securebits: u32,
    /// File creation mask, at most `0o777`.
    pub umask: u32,
}

impl Creds {
    /// Encoded size.
    pub const LEN: usize = 8 * 4 + 5 * 8 + 4 + 4;

    /// Checks the fields: `umask` is at most `0o777`.
    pub fn validate(&self) -> Result<(), WireError> {
        check(self.umask <= 0o777)
    }

    pub(crate) fn write(&self, w: &mut Writer<'_>) -> Result<(), WireError> {
        for id in [
            self.uid, self.gid, self.suid, self.sgid, self.euid, self.egid, self.fsuid, self.fsgid,
        ] {
            w.u32(id)?;
        }
        for caps in [
            self.cap_inheritable,
            self.cap_permitted,
            self.cap_effective,
            self.cap_bset,
            self.cap_ambient,
        ] {
            w.u64(caps)?;
        }
        w.u32(self.securebits)?;
        w.u32(self.umask)
    }

    pub(crate) fn read(r: &mut Reader<'_>) -> Result<Creds, WireError> {
        Ok(Creds {
            uid: r.u32()?,
            gid: r.u32()?,
            suid: r.u32()?,
            sgid: r.u32()?,
            euid: r.u32()?,
            egid: r.u32()?,
            fsuid: r.u32()?,
            fsgid: r.u32()?,
            cap_inheritable: r.u64()?,
            cap_permitted: r.u64()?,
            cap_effective: r.u64()?,
            cap_bset: r.u64()?,
            cap_ambient: r.u64()?,
            securebits: r.u32()?,
            umask: r.u32()?,
        })
    }
}

/// The layout fields of a task's `mm_struct`. Layout: the eleven fields as
/// `u64`, in declaration order (88 bytes).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MmLayout {
    /// Start of the text segment.
    pub start_code: u64,
    /// End of the text segment, at least `start_code`.
    pub end_code: u64,
    /// Start of the data segment.
    pub start_data: u64,
    /// End of the data segment, at least `start_data`.
    pub end_data: u64,
    /// Start of the heap.
    pub start_brk: u64,
    /// Current break, at least `start_brk`.
    pub brk: u64,
    /// Start of the main stack.
    pub start_stack: u64,
    /// Start of the arguments.
    pub arg_start: u64,
    /// End of the arguments, at least `arg_start`.
    pub arg_end: u64,
    /// Start of the environment.
    pub env_start: u64,
    /// End of the environment, at least `env_start`.
    pub env_end: u64,
}

impl MmLayout {
    /// Encoded size.
    pub const LEN: usize = 11 * 8;

    /// The fields in wire order.
    const fn fields(&self) -> [u64; 11] {
        [
            self.start_code,
            self.end_code,
            self.start_data,
            self.end_data,
            self.start_brk,
            self.brk,
            self.start_stack,
            self.arg_start,
            self.arg_end,
            self.env_start,
            self.env_end,
        ]
    }

    /// Checks the fields: every address is at most [`USER_END`] and every
    /// start is at most its end (the checks of `prctl(PR_SET_MM_MAP)`).
    pub fn validate(&self) -> Result<(), WireError> {
        check(
            self.fields().iter().all(|&a| a <= USER_END)
                && self.start_code <= self.end_code
                && self.start_data <= self.end_data
                && self.start_brk <= self.brk
                && self.arg_start <= self.arg_end
                && self.env_start <= self.env_end,
        )
    }

    fn write(&self, w: &mut Writer<'_>) -> Result<(), WireError> {
        for field in self.fields() {
            w.u64(field)?;
        }
        Ok(())
    }

    fn read(r: &mut Reader<'_>) -> Result<MmLayout, WireError> {
        Ok(MmLayout {
            start_code: r.u64()?,
            end_code: r.u64()?,
            start_data: r.u64()?,
            end_data: r.u64()?,
            start_brk: r.u64()?,
            brk: r.u64()?,
            start_stack: r.u64()?,
            arg_start: r.u64()?,
            arg_end: r.u64()?,
            env_start: r.u64()?,
            env_end: r.u64()?,
        })
    }
}

/// One interval timer (`ITIMER_REAL`, `ITIMER_VIRTUAL` or `ITIMER_PROF`):
/// time to the next expiry and reload value, in nanoseconds (of real time
/// or of the process's CPU time). Layout `value u64, interval u64`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Itimer {
    /// Time left to the next expiry, 0 when disarmed.
    pub value_ns: u64,
    /// Reload value, 0 for a one-shot timer; 0 when disarmed.
    pub interval_ns: u64,
}

/// One resource limit. Layout `cur u64, max u64`; `u64::MAX` is
/// `RLIM_INFINITY`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Rlimit {
    /// Soft limit, at most `max`.
    pub cur: u64,
    /// Hard limit.
    pub max: u64,
}

/// `sigaltstack(2)` flags a task keeps: `SS_DISABLE` and `SS_AUTODISARM`.
pub const SS_FLAGS: u32 = 2 | (1 << 31);
/// [`ProcState::flags`]: the process is a child subreaper.
pub const PROC_SUBREAPER: u32 = 0x1;
/// [`ProcState::flags`]: `no_new_privs` is set.
pub const PROC_NO_NEW_PRIVS: u32 = 0x2;
/// [`ProcState::flags`]: transparent huge pages are disabled.
pub const PROC_THP_DISABLE: u32 = 0x4;
/// Every bit of [`ProcState::flags`].
pub const PROC_FLAGS: u32 = PROC_SUBREAPER | PROC_NO_NEW_PRIVS | PROC_THP_DISABLE;

/// A process's state besides its signal dispositions, credentials,
/// scheduling and address space. Layout: `sas_sp u64, sas_size u64,
/// sas_flags u32, personality u32`, three [`Itimer`]s (real, virtual,
/// prof), [`NR_RLIMITS`] [`Rlimit`]s, `timer_slack_ns u64, pdeath_signal
/// u32, flags u32, dumpable u32, robust_list u64, clear_child_tid u64,
/// rseq u64, rseq_len u32, rseq_sig u32, monotonic_ns i64, boottime_ns i64,
/// restart u32, restart_arg u32, restart_addr u64, restart_ns i64`
/// ([`ProcState::LEN`] bytes).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ProcState {
    /// Alternate signal stack base.
    pub sas_sp: u64,
    /// Its size; `sas_sp + sas_size` is at most [`USER_END`].
    pub sas_size: u64,
    /// Its flags, within [`SS_FLAGS`].
    pub sas_flags: u32,
    /// `personality(2)`.
    pub personality: u32,
    /// `ITIMER_REAL` (`alarm(2)`), `ITIMER_VIRTUAL`, `ITIMER_PROF`.
    pub itimers: [Itimer; 3],
    /// Resource limits by `RLIMIT_*` number.
    pub rlimits: [Rlimit; NR_RLIMITS],
    /// `PR_SET_TIMERSLACK`, in nanoseconds.
    pub timer_slack_ns: u64,
    /// `PR_SET_PDEATHSIG`: 0 or a signal `1..=NSIG`.
    pub pdeath_signal: u32,
    /// `PROC_*` bits ([`PROC_FLAGS`]).
    pub flags: u32,
    /// `PR_SET_DUMPABLE`: 0, 1 or 2.
    pub dumpable: u32,
    /// `set_robust_list(2)` head, below [`USER_END`].
    pub robust_list: u64,
    /// `set_tid_address(2)`, below [`USER_END`].
    pub clear_child_tid: u64,
    /// `rseq(2)` area, below [`USER_END`]; 0 when none (then `rseq_len`
    /// and `rseq_sig` are 0).
    pub rseq: u64,
    /// Length of the rseq area.
    pub rseq_len: u32,
    /// rseq signature.
    pub rseq_sig: u32,
    /// `CLOCK_MONOTONIC` as the process saw it when it left, not negative.
    pub monotonic_ns: i64,
    /// `CLOCK_BOOTTIME` likewise, not negative.
    pub boottime_ns: i64,
    /// The call that the migration interrupted and that the task goes on
    /// with through `restart_syscall(2)`: [`RESTART_SLEEP`],
    /// [`RESTART_POLL`], or [`RESTART_NONE`] (then the three fields below
    /// are 0).
    pub restart: u32,
    /// A sleep's clock, one of [`RESTART_CLOCKS`]; a poll's number of
    /// descriptors, at most `i32::MAX`.
    pub restart_arg: u32,
    /// Where a sleep reports its time left when a handler interrupts it
    /// (the call's `rmtp`, 0 for none); a poll's array of `struct pollfd`.
    /// Below [`USER_END`].
    pub restart_addr: u64,
    /// The time the call has left, in nanoseconds: not negative for a
    /// sleep, -1 for a poll without a time-out (the nodes' clocks differ,
    /// so the call keeps the length it has left).
    pub restart_ns: i64,
}

/// [`ProcState::restart`]: no call to go on with.
pub const RESTART_NONE: u32 = 0;
/// [`ProcState::restart`]: a relative sleep of `nanosleep(2)` or
/// `clock_nanosleep(2)`.
pub const RESTART_SLEEP: u32 = 1;
/// [`ProcState::restart`]: a `poll(2)`.
pub const RESTART_POLL: u32 = 2;

/// The clocks of a sleep that travels ([`ProcState::restart_arg`]):
/// `CLOCK_REALTIME` (0), `CLOCK_MONOTONIC` (1), `CLOCK_BOOTTIME` (7) and
/// `CLOCK_TAI` (11).
pub const RESTART_CLOCKS: [u32; 4] = [0, 1, 7, 11];

impl ProcState {
    /// Encoded size (420 bytes).
    pub const LEN: usize =
        8 + 8 + 4 + 4 + 3 * 16 + NR_RLIMITS * 16 + 8 + 4 * 3 + 8 * 3 + 8 + 16 + 24;
    /// Everything zero.
    pub const EMPTY: ProcState = ProcState {
        sas_sp: 0,
        sas_size: 0,
        sas_flags: 0,
        personality: 0,
        itimers: [Itimer {
            value_ns: 0,
            interval_ns: 0,
        }; 3],
        rlimits: [Rlimit { cur: 0, max: 0 }; NR_RLIMITS],
        timer_slack_ns: 0,
        pdeath_signal: 0,
        flags: 0,
        dumpable: 0,
        robust_list: 0,
        clear_child_tid: 0,
        rseq: 0,
        rseq_len: 0,
        rseq_sig: 0,
        monotonic_ns: 0,
        boottime_ns: 0,
        restart: 0,
        restart_arg: 0,
        restart_addr: 0,
        restart_ns: 0,
    };

    /// Checks the fields: the rules on each field's documentation, a
    /// disarmed timer without interval, every soft limit at most its hard
    /// limit.
    pub fn validate(&self) -> Result<(), WireError> {
        check(
            self.sas_flags & !SS_FLAGS == 0
                && self
                    .sas_sp
                    .checked_add(self.sas_size)
                    .is_some_and(|end| end <= USER_END)
                && self
                    .itimers
                    .iter()
                    .all(|t| t.value_ns != 0 || t.interval_ns == 0)
                && self.rlimits.iter().all(|l| l.cur <= l.max)
                && self.pdeath_signal <= NSIG as u32
                && self.flags & !PROC_FLAGS == 0
                && self.dumpable <= 2
                && self.robust_list < USER_END
                && self.clear_child_tid < USER_END
                && self.rseq < USER_END
                && (self.rseq != 0 || (self.rseq_len == 0 && self.rseq_sig == 0))
                && self.monotonic_ns >= 0
                && self.boottime_ns >= 0
                && match self.restart {
                    RESTART_NONE => {
                        self.restart_arg == 0 && self.restart_addr == 0 && self.restart_ns == 0
                    }
                    RESTART_SLEEP => {
                        RESTART_CLOCKS.contains(&self.restart_arg)
                            && self.restart_addr < USER_END
                            && self.restart_ns >= 0
                    }
                    RESTART_POLL => {
                        self.restart_arg <= i32::MAX as u32
                            && self.restart_addr < USER_END
                            && self.restart_ns >= -1
                    }
                    _ => false,
                },
        )
    }

    fn write(&self, w: &mut Writer<'_>) -> Result<(), WireError> {
        w.u64(self.sas_sp)?;
        w.u64(self.sas_size)?;
        w.u32(self.sas_flags)?;
        w.u32(self.personality)?;
        for t in &self.itimers {
            w.u64(t.value_ns)?;
            w.u64(t.interval_ns)?;
        }
        for l in &self.rlimits {
            w.u64(l.cur)?;
            w.u64(l.max)?;
        }
        w.u64(self.timer_slack_ns)?;
        w.u32(self.pdeath_signal)?;
        w.u32(self.flags)?;
        w.u32(self.dumpable)?;
        w.u64(self.robust_list)?;
        w.u64(self.clear_child_tid)?;
        w.u64(self.rseq)?;
        w.u32(self.rseq_len)?;
        w.u32(self.rseq_sig)?;
        write_i64(w, self.monotonic_ns)?;
        write_i64(w, self.boottime_ns)?;
        w.u32(self.restart)?;
        w.u32(self.restart_arg)?;
        w.u64(self.restart_addr)?;
        write_i64(w, self.restart_ns)
    }

    fn read_into(&mut self, r: &mut Reader<'_>) -> Result<(), WireError> {
        self.sas_sp = r.u64()?;
        self.sas_size = r.u64()?;
        self.sas_flags = r.u32()?;
        self.personality = r.u32()?;
        for t in self.itimers.iter_mut() {
            t.value_ns = r.u64()?;
            t.interval_ns = r.u64()?;
        }
        for l in self.rlimits.iter_mut() {
            l.cur = r.u64()?;
            l.max = r.u64()?;
        }
        self.timer_slack_ns = r.u64()?;
        self.pdeath_signal = r.u32()?;
        self.flags = r.u32()?;
        self.dumpable = r.u32()?;
        self.robust_list = r.u64()?;
        self.clear_child_tid = r.u64()?;
        self.rseq = r.u64()?;
        self.rseq_len = r.u32()?;
        self.rseq_sig = r.u32()?;
        self.monotonic_ns = read_i64(r)?;
        self.boottime_ns = read_i64(r)?;
        self.restart = r.u32()?;
        self.restart_arg = r.u32()?;
        self.restart_addr = r.u64()?;
        self.restart_ns = read_i64(r)?;
        Ok(())
    }
}

/// The fixed part of a [`MSG_MIGRATE`] ([`MigrateHead::LEN`] bytes):
/// `task (6), tgid u32, parent_pid u32, from u16, visited u64, comm [16]`,
/// then [`Signals`], [`Sched`], [`Creds`], [`MmLayout`] and [`ProcState`].
///
/// It is about 2.7 KiB, mostly signal dispositions: the kernel keeps it off
/// the stack (in a `KBox`) and decodes into it with
/// [`decode_migrate_into`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MigrateHead {
    /// The task.
    pub task: TaskId,
    /// Its thread group id at the origin, not 0.
    pub tgid: u32,
    /// Its parent's pid at the origin, 0 if none.
    pub parent_pid: u32,
    /// The node sending the task (where it ran until now).
    pub from: NodeId,
    /// Nodes the task ran on: at least its origin and `from` (the receiver
    /// adds itself).
    pub visited: NodeSet,
    /// The task's name, NUL-padded; the last byte is NUL.
    pub comm: [u8; 16],
    /// Signal mask, pending signals and dispositions.
    pub signals: Signals,
    /// Scheduling parameters.
    pub sched: Sched,
    /// Credentials.
    pub creds: Creds,
    /// Address-space layout.
    pub layout: MmLayout,
    /// The rest of the process's state.
    pub proc: ProcState,
    /// Its migration settings and statistics.
    pub manage: Manage,
    /// The container its private memory is linked to (see
    /// [`super::container::home_of`]): the receiver links the address
    /// space it builds to it, and its pages come from there. Not 0.
    pub container: u32,
}

/// A process's migration settings (`PCNTL_FORBID`, `PCNTL_ALLOW`, its
/// group) and statistics (`PCNTL_STAT`), as they travel with it. Layout
/// `flags u32, group u32, age_ns u64, counts (40)` (56 bytes).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Manage {
    /// Bits of [`super::pcntl::SETTINGS`].
    pub flags: u32,
    /// Migration group, 0 to [`super::pcntl::GROUP_MAX`].
    pub group: u32,
    /// Nanoseconds since it was created, when it left.
    pub age_ns: u64,
    /// What its nodes counted so far; `migrations` includes this one.
    pub counts: Counts,
}

impl Manage {
    /// Encoded size (56 bytes).
    pub const LEN: usize = 4 + 4 + 8 + Counts::LEN;
    /// Nothing set, nothing counted.
    pub const EMPTY: Manage = Manage {
        flags: 0,
        group: 0,
        age_ns: 0,
        counts: Counts {
            migrations: 0,
            pages_fetched: 0,
            pages_served: 0,
            calls_forwarded: 0,
            bytes_moved: 0,
        },
    };

    /// Checks the flags and the group.
    pub fn validate(&self) -> Result<(), WireError> {
        check(self.flags & !SETTINGS == 0 && self.group <= GROUP_MAX)
    }

    fn write(&self, w: &mut Writer<'_>) -> Result<(), WireError> {
        self.validate()?;
        w.u32(self.flags)?;
        w.u32(self.group)?;
        w.u64(self.age_ns)?;
        let c = &self.counts;
        for v in [
            c.migrations,
            c.pages_fetched,
            c.pages_served,
            c.calls_forwarded,
            c.bytes_moved,
        ] {
            w.u64(v)?;
        }
        Ok(())
    }

    fn read(r: &mut Reader<'_>) -> Result<Manage, WireError> {
        let m = Manage {
            flags: r.u32()?,
            group: r.u32()?,
            age_ns: r.u64()?,
            counts: Counts {
                migrations: r.u64()?,
                pages_fetched: r.u64()?,
                pages_served: r.u64()?,
                calls_forwarded: r.u64()?,
                bytes_moved: r.u64()?,
            },
        };
        m.validate()?;
        Ok(m)
    }
}

impl MigrateHead {
    /// Encoded size (2764 bytes).
    pub const LEN: usize = Manage::LEN
        + 4
        + TASK_LEN
        + 4
        + 4
        + NODE_LEN
        + 8
        + 16
        + Signals::LEN
        + Sched::LEN
        + Creds::LEN
        + MmLayout::LEN
        + ProcState::LEN;

    /// An all-zero head, to be filled in (its task, pid 0, does not
    /// validate).
    pub const EMPTY: MigrateHead = MigrateHead {
        task: TaskId {
            origin: NodeId(0),
            pid: 0,
        },
        tgid: 0,
        parent_pid: 0,
        from: NodeId(0),
        visited: NodeSet::EMPTY,
        comm: [0; 16],
        signals: Signals::EMPTY,
        sched: Sched {
            policy: 0,
            rt_priority: 0,
            nice: 0,
        },
        creds: Creds {
            uid: 0,
            gid: 0,
            suid: 0,
            sgid: 0,
            euid: 0,
            egid: 0,
            fsuid: 0,
            fsgid: 0,
            cap_inheritable: 0,
            cap_permitted: 0,
            cap_effective: 0,
            cap_bset: 0,
            cap_ambient: 0,
            securebits: 0,
            umask: 0,
        },
        layout: MmLayout {
            start_code: 0,
            end_code: 0,
            start_data: 0,
            end_data: 0,
            start_brk: 0,
            brk: 0,
            start_stack: 0,
            arg_start: 0,
            arg_end: 0,
            env_start: 0,
            env_end: 0,
        },
        proc: ProcState::EMPTY,
        manage: Manage::EMPTY,
        container: 0,
    };

    /// Checks every field: a valid task, `tgid` not 0, `from` below
    /// [`MAX_NODES`], `visited` holding the origin and `from`, `comm` ending
    /// in NUL, a container, and the rules of [`Signals`], [`Sched`],
    /// [`Creds`] and [`MmLayout`] and [`ProcState`].
    pub fn validate(&self) -> Result<(), WireError> {
        check(
            task_ok(&self.task)
                && self.tgid != 0
                && self.from.is_valid()
                && self.visited.contains(self.task.origin)
                && self.visited.contains(self.from)
                && self.comm.last() == Some(&0)
                && self.container != 0,
        )?;
        self.signals.validate()?;
        self.sched.validate()?;
        self.creds.validate()?;
        self.layout.validate()?;
        self.proc.validate()?;
        self.manage.validate()
    }

    fn write(&self, w: &mut Writer<'_>) -> Result<(), WireError> {
        write_task(w, &self.task)?;
        w.u32(self.tgid)?;
        w.u32(self.parent_pid)?;
        write_node(w, self.from)?;
        w.u64(self.visited.0)?;
        w.bytes(&self.comm)?;
        w.u64(self.signals.blocked)?;
        w.u64(self.signals.pending)?;
        for action in &self.signals.actions {
            action.write(w)?;
        }
        self.sched.write(w)?;
        self.creds.write(w)?;
        self.layout.write(w)?;
        self.proc.write(w)?;
        self.manage.write(w)?;
        w.u32(self.container)
    }

    /// Reads the fields into `self` in place (no validation; on error
    /// `self` is partly overwritten).
    fn read_into(&mut self, r: &mut Reader<'_>) -> Result<(), WireError> {
        self.task = read_task(r)?;
        self.tgid = r.u32()?;
        self.parent_pid = r.u32()?;
        self.from = read_node(r)?;
        self.visited = NodeSet(r.u64()?);
        self.comm = r.array()?;
        self.signals.blocked = r.u64()?;
        self.signals.pending = r.u64()?;
        for action in self.signals.actions.iter_mut() {
            *action = SigAction::read(r)?;
        }
        self.sched = Sched::read(r)?;
        self.creds = Creds::read(r)?;
        self.layout = MmLayout::read(r)?;
        self.proc.read_into(r)?;
        self.manage = Manage::read(r)?;
        self.container = r.u32()?;
        Ok(())
    }
}

impl Default for MigrateHead {
    fn default() -> Self {
        MigrateHead::EMPTY
    }
}

/// What backs a VMA (a `u8` on the wire).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum VmaKind {
    /// Anonymous memory (heap, stack, private anonymous mappings).
    Anon = 0,
    /// A file mapping; the VMA carries the file's path.
    File = 1,
    /// The vDSO.
    Vdso = 2,
    /// The vDSO's data pages.
    Vvar = 3,
    /// A private mapping of a file that no path names (deleted, or a path
    /// longer than [`MAX_VMA_PATH`]): anonymous memory on the receiver,
    /// filled from the node the task left; a range the receiver maps from
    /// a file at the same offset keeps its pages.
    FileAnon = 4,
    /// A `MAP_SHARED` mapping of an anonymous shared region, whose pages
    /// are container [`VmaDesc::container`]'s: the receiver maps its own
    /// region linked to that container (Gobelins' shared memory).
    Shared = 5,
}

impl VmaKind {
    /// The kind of wire value `v`.
    pub const fn from_u8(v: u8) -> Option<VmaKind> {
        Some(match v {
            0 => VmaKind::Anon,
            1 => VmaKind::File,
            2 => VmaKind::Vdso,
            3 => VmaKind::Vvar,
            4 => VmaKind::FileAnon,
            5 => VmaKind::Shared,
            _ => return None,
        })
    }

    /// The wire value.
    pub const fn as_u8(self) -> u8 {
        self as u8
    }
}

/// Encoded size of a [`VmaDesc`] without its path: `start u64, end u64,
/// flags u64, pgoff u64, kind u8, path_len u16`.
pub const VMA_FIXED_LEN: usize = 4 * 8 + 1 + 2;

/// Encoded size of the fields only a [`VmaKind::Shared`] VMA carries:
/// `container u32, size u64`.
pub const VMA_SHARED_LEN: usize = 4 + 8;

/// One VMA of a migrating task. Layout `start u64, end u64, flags u64,
/// pgoff u64, kind u8, path_len u16, path` ([`VMA_FIXED_LEN`] +
/// `path_len` bytes), then for [`VmaKind::Shared`] `container u32, size
/// u64` ([`VMA_SHARED_LEN`] bytes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VmaDesc<'a> {
    /// First address, page-aligned.
    pub start: u64,
    /// End (excluded), page-aligned, above `start`, at most [`USER_END`].
    pub end: u64,
    /// `vm_flags` (`VM_READ`, `VM_WRITE`, ...).
    pub flags: u64,
    /// `vm_pgoff`: offset in the file, in pages.
    pub pgoff: u64,
    /// What backs the VMA.
    pub kind: VmaKind,
    /// For [`VmaKind::File`] the file's path (1 to [`MAX_VMA_PATH`] bytes),
    /// otherwise empty.
    pub path: &'a [u8],
    /// For [`VmaKind::Shared`] the region's container (not 0), otherwise 0.
    pub container: u32,
    /// For [`VmaKind::Shared`] the region's size in bytes, page-aligned and
    /// covering the pages the VMA maps; otherwise 0.
    pub size: u64,
}

impl<'a> VmaDesc<'a> {
    /// Checks one VMA on its own: a non-empty page-aligned range ending at
    /// most at [`USER_END`], and a path exactly when it maps a file.
    pub fn validate(&self) -> Result<(), WireError> {
        let path_ok = match self.kind {
            VmaKind::File => !self.path.is_empty() && self.path.len() <= MAX_VMA_PATH,
            VmaKind::Anon | VmaKind::Vdso | VmaKind::Vvar | VmaKind::FileAnon | VmaKind::Shared => {
                self.path.is_empty()
            }
        };
        let shared_ok = match self.kind {
            VmaKind::Shared => {
                let pages = self.end.saturating_sub(self.start) / PAGE_SIZE as u64;
                self.container != 0
                    && page_aligned(self.size)
                    && self.pgoff.saturating_add(pages) <= self.size / PAGE_SIZE as u64
            }
            _ => self.container == 0 && self.size == 0,
        };
        check(
            page_aligned(self.start)
                && page_aligned(self.end)
                && self.start < self.end
                && self.end <= USER_END
                && path_ok
                && shared_ok,
        )
    }

    /// Bytes this VMA takes in a [`MSG_MIGRATE`].
    pub fn encoded_len(&self) -> usize {
        let shared = if self.kind == VmaKind::Shared {
            VMA_SHARED_LEN
        } else {
            0
        };
        VMA_FIXED_LEN
            .saturating_add(self.path.len())
            .saturating_add(shared)
    }

    fn write(&self, w: &mut Writer<'_>) -> Result<(), WireError> {
        w.u64(self.start)?;
        w.u64(self.end)?;
        w.u64(self.flags)?;
        w.u64(self.pgoff)?;
        w.u8(self.kind.as_u8())?;
        w.u16(u16::try_from(self.path.len()).map_err(|_| WireError::BadPayload)?)?;
        w.bytes(self.path)?;
        if self.kind == VmaKind::Shared {
            w.u32(self.container)?;
            w.u64(self.size)?;
        }
        Ok(())
    }

    fn read(r: &mut Reader<'a>) -> Result<VmaDesc<'a>, WireError> {
        let start = r.u64()?;
        let end = r.u64()?;
        let flags = r.u64()?;
        let pgoff = r.u64()?;
        let kind = VmaKind::from_u8(r.u8()?).ok_or(WireError::BadPayload)?;
        let path_len = usize::from(r.u16()?);
        let path = r.bytes(path_len)?;
        let (container, size) = if kind == VmaKind::Shared {
            (r.u32()?, r.u64()?)
        } else {
            (0, 0)
        };
        Ok(VmaDesc {
            start,
            end,
            flags,
            pgoff,
            kind,
            path,
            container,
            size,
        })
    }
}

/// Largest [`MSG_MIGRATE`]: one kmsg message. The head, the largest
/// architecture state and [`MAX_VMAS`] anonymous VMAs always fit; so many
/// VMAs each naming a different long path, with thousands of groups and
/// queued signals besides, may not, and are refused.
pub const MIGRATE_MAX_LEN: usize = MAX_MESSAGE;

/// Encoded size of a [`QueuedSignal`]: `signo u32, shared u8, info`.
pub const QUEUED_SIGNAL_LEN: usize = 4 + 1 + SIGINFO_LEN;

/// Encoded size of an empty [`MigrateExtra`]: `exe_len u16, nr_groups u32,
/// nr_sigq u32, nr_files u32`.
pub const EXTRA_FIXED_LEN: usize = 2 + 4 + 4 + 4;

// The head, the largest arch state and the most anonymous VMAs fit.
const _: () = assert!(
    MigrateHead::LEN + 4 + MAX_VMAS * VMA_FIXED_LEN + 4 + MAX_ARCH_STATE + EXTRA_FIXED_LEN
        <= MIGRATE_MAX_LEN
);

/// A signal queued for a task, with its siginfo. Layout `signo u32,
/// shared u8, info [SIGINFO_LEN]` ([`QUEUED_SIGNAL_LEN`] bytes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QueuedSignal {
    /// The signal, `1..=NSIG`.
    pub signo: u32,
    /// Queued for the whole process (`kill(2)`) rather than the thread
    /// (`tgkill(2)`); a `u8`, 0 or 1, on the wire.
    pub shared: bool,
    /// The kernel's siginfo, opaque here except that its first field
    /// (`si_signo`, little-endian) is `signo`.
    pub info: [u8; SIGINFO_LEN],
}

impl QueuedSignal {
    /// Checks the fields: `signo` is `1..=NSIG` and the siginfo names it.
    pub fn validate(&self) -> Result<(), WireError> {
        check((1..=NSIG as u32).contains(&self.signo) && self.info[..4] == self.signo.to_le_bytes())
    }

    fn write(&self, w: &mut Writer<'_>) -> Result<(), WireError> {
        self.validate()?;
        w.u32(self.signo)?;
        w.u8(u8::from(self.shared))?;
        w.bytes(&self.info)
    }

    fn read(r: &mut Reader<'_>) -> Result<QueuedSignal, WireError> {
        let signo = r.u32()?;
        let shared = match r.u8()? {
            0 => false,
            1 => true,
            _ => return Err(WireError::BadPayload),
        };
        let sig = QueuedSignal {
            signo,
            shared,
            info: r.array()?,
        };
        sig.validate()?;
        Ok(sig)
    }
}

/// The variable-length state of a [`MSG_MIGRATE`] after the architecture
/// state: `exe_len u16, exe, nr_groups u32, groups (u32 each), nr_sigq u32,
/// queued signals`, then the descriptor table (`nr_files u32` and the
/// [`FileDesc`]s, see [`super::files::encode_files`]) ([`EXTRA_FIXED_LEN`]
/// bytes when empty).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MigrateExtra<'a> {
    /// Path of the executable (`/proc/self/exe`), at most [`MAX_EXE_PATH`]
    /// bytes without NUL; empty when it has none a path names.
    pub exe: &'a [u8],
    /// Supplementary groups, at most [`MAX_GROUPS`].
    pub groups: &'a [u32],
    /// Queued signals in queue order, the thread's then the process's; at
    /// most [`MAX_SIGQUEUE`].
    pub sigq: &'a [QueuedSignal],
    /// The descriptor table, in strictly increasing descriptor order; at
    /// most [`MAX_FILES`].
    pub files: &'a [FileDesc],
}

impl MigrateExtra<'_> {
    /// No executable, groups or queued signals.
    pub const EMPTY: MigrateExtra<'static> = MigrateExtra {
        exe: &[],
        groups: &[],
        sigq: &[],
        files: &[],
    };

    /// Checks the sizes, the executable's path (no NUL) and every queued
    /// signal.
    pub fn validate(&self) -> Result<(), WireError> {
        check(
            self.exe.len() <= MAX_EXE_PATH
                && !self.exe.contains(&0)
                && self.groups.len() <= MAX_GROUPS
                && self.sigq.len() <= MAX_SIGQUEUE
                && self.files.len() <= MAX_FILES
                && self.files.windows(2).all(|p| p[0].fd < p[1].fd),
        )?;
        self.sigq.iter().try_for_each(QueuedSignal::validate)
    }

    /// Bytes it takes in a [`MSG_MIGRATE`] (saturating).
    pub fn encoded_len(&self) -> usize {
        EXTRA_FIXED_LEN
            .saturating_add(self.exe.len())
            .saturating_add(self.groups.len().saturating_mul(4))
            .saturating_add(self.sigq.len().saturating_mul(QUEUED_SIGNAL_LEN))
            .saturating_add(files_len(self.files.len().min(MAX_FILES + 1)) - 4)
    }

    fn write(&self, w: &mut Writer<'_>) -> Result<(), WireError> {
        self.validate()?;
        w.u16(u16::try_from(self.exe.len()).map_err(|_| WireError::BadPayload)?)?;
        w.bytes(self.exe)?;
        w.u32(len_u32(self.groups.len())?)?;
        for g in self.groups {
            w.u32(*g)?;
        }
        w.u32(len_u32(self.sigq.len())?)?;
        for q in self.sigq {
            q.write(w)?;
        }
        encode_files(w, self.files)
    }
}

/// Checks a run of VMAs: at most [`MAX_VMAS`], each valid, in increasing
/// order without overlap.
fn validate_vmas(vmas: &[VmaDesc<'_>]) -> Result<(), WireError> {
    check(vmas.len() <= MAX_VMAS)?;
    let mut prev_end = 0;
    for vma in vmas {
        vma.validate()?;
        check(vma.start >= prev_end)?;
        prev_end = vma.end;
    }
    Ok(())
}

/// Bytes a [`MSG_MIGRATE`] with these VMAs and `arch_len` bytes of
/// architecture state takes (saturating; an encodable message is at most
/// [`MIGRATE_MAX_LEN`]).
pub fn migrate_len(vmas: &[VmaDesc<'_>], arch_len: usize) -> usize {
    migrate_len_with(vmas, arch_len, &MigrateExtra::EMPTY)
}

/// Bytes a [`MSG_MIGRATE`] with these VMAs, `arch_len` bytes of
/// architecture state and `extra` takes (saturating); more than
/// [`MIGRATE_MAX_LEN`] does not encode.
pub fn migrate_len_with(vmas: &[VmaDesc<'_>], arch_len: usize, extra: &MigrateExtra<'_>) -> usize {
    vmas.iter().fold(
        (MigrateHead::LEN + 4 + 4)
            .saturating_add(arch_len)
            .saturating_add(extra.encoded_len()),
        |len, vma| len.saturating_add(vma.encoded_len()),
    )
}

/// Encodes a [`MSG_MIGRATE`] without [`MigrateExtra`] (an empty one)
/// into the start of `out`; see [`encode_migrate_with`].
pub fn encode_migrate(
    out: &mut [u8],
    head: &MigrateHead,
    vmas: &[VmaDesc<'_>],
    arch: &[u8],
) -> Result<usize, WireError> {
    encode_migrate_with(out, head, vmas, arch, &MigrateExtra::EMPTY)
}

/// Encodes a [`MSG_MIGRATE`] into the start of `out`: `head`, `nr_vmas
/// u32`, the VMAs, `arch_len u32`, `arch` and `extra`. Returns the bytes
/// written ([`migrate_len_with`]).
///
/// Checks everything first, as [`decode_migrate`] does: the head
/// ([`MigrateHead::validate`]), at most [`MAX_VMAS`] VMAs, each valid
/// ([`VmaDesc::validate`]) and starting at or above the previous one's end,
/// `arch` of 1 to [`MAX_ARCH_STATE`] bytes, `extra` valid
/// ([`MigrateExtra::validate`]) and the whole at most [`MIGRATE_MAX_LEN`];
/// [`WireError::BadPayload`] otherwise, [`WireError::ShortBuffer`] if
/// `out` is too small.
pub fn encode_migrate_with(
    out: &mut [u8],
    head: &MigrateHead,
    vmas: &[VmaDesc<'_>],
    arch: &[u8],
    extra: &MigrateExtra<'_>,
) -> Result<usize, WireError> {
    head.validate()?;
    validate_vmas(vmas)?;
    check(!arch.is_empty() && arch.len() <= MAX_ARCH_STATE)?;
    extra.validate()?;
    let len = migrate_len_with(vmas, arch.len(), extra);
    check(len <= MIGRATE_MAX_LEN)?;
    if out.len() < len {
        return Err(WireError::ShortBuffer);
    }
    let mut w = Writer::new(out);
    head.write(&mut w)?;
    w.u32(len_u32(vmas.len())?)?;
    for vma in vmas {
        vma.write(&mut w)?;
    }
    w.u32(len_u32(arch.len())?)?;
    w.bytes(arch)?;
    extra.write(&mut w)?;
    Ok(w.written())
}

/// The variable part of a decoded [`MSG_MIGRATE`]: the VMAs and the
/// architecture state, borrowed from the message and already validated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MigrateBody<'a> {
    vmas_raw: &'a [u8],
    nr_vmas: usize,
    arch: &'a [u8],
    exe: &'a [u8],
    groups_raw: &'a [u8],
    sigq_raw: &'a [u8],
    files_raw: &'a [u8],
    nr_files: usize,
}

impl<'a> MigrateBody<'a> {
    /// The VMAs, in increasing address order.
    pub fn vmas(&self) -> VmaIter<'a> {
        VmaIter {
            r: Reader::new(self.vmas_raw),
            left: self.nr_vmas,
        }
    }

    /// Number of VMAs, at most [`MAX_VMAS`].
    pub const fn nr_vmas(&self) -> usize {
        self.nr_vmas
    }

    /// The architecture state (registers, FPU, TLS), 1 to
    /// [`MAX_ARCH_STATE`] bytes, opaque here.
    pub const fn arch(&self) -> &'a [u8] {
        self.arch
    }

    /// The executable's path, empty when none travelled.
    pub const fn exe(&self) -> &'a [u8] {
        self.exe
    }

    /// The supplementary groups.
    pub fn groups(&self) -> impl ExactSizeIterator<Item = u32> + 'a {
        groups_in(self.groups_raw)
    }

    /// Number of supplementary groups.
    pub const fn nr_groups(&self) -> usize {
        self.groups_raw.len() / 4
    }

    /// The queued signals, in queue order.
    pub fn sigq(&self) -> impl ExactSizeIterator<Item = QueuedSignal> + 'a {
        self.sigq_raw.chunks_exact(QUEUED_SIGNAL_LEN).map(|c| {
            let mut r = Reader::new(c);
            // Validated when the message was decoded.
            QueuedSignal::read(&mut r).unwrap_or(QueuedSignal {
                signo: 0,
                shared: false,
                info: [0; SIGINFO_LEN],
            })
        })
    }

    /// Number of queued signals.
    pub const fn nr_sigq(&self) -> usize {
        self.sigq_raw.len() / QUEUED_SIGNAL_LEN
    }

    /// The task's descriptors, in increasing descriptor order.
    pub fn files(&self) -> FileIter<'a> {
        FileIter::new(self.files_raw, self.nr_files)
    }

    /// Number of descriptors, at most [`MAX_FILES`].
    pub const fn nr_files(&self) -> usize {
        self.nr_files
    }
}

/// A decoded and validated [`MSG_MIGRATE`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MigrateMsg<'a> {
    /// The fixed part.
    pub head: MigrateHead,
    /// The VMAs and architecture state.
    pub body: MigrateBody<'a>,
}

impl<'a> MigrateMsg<'a> {
    /// The VMAs, in increasing address order.
    pub fn vmas(&self) -> VmaIter<'a> {
        self.body.vmas()
    }

    /// Number of VMAs, at most [`MAX_VMAS`].
    pub const fn nr_vmas(&self) -> usize {
        self.body.nr_vmas()
    }

    /// The architecture state.
    pub const fn arch(&self) -> &'a [u8] {
        self.body.arch()
    }
}

/// Decodes and validates a whole [`MSG_MIGRATE`], every VMA included, with
/// the rules of [`encode_migrate`]. The head is returned by value (about
/// 2.7 KiB); [`decode_migrate_into`] fills one in place instead.
pub fn decode_migrate(bytes: &[u8]) -> Result<MigrateMsg<'_>, WireError> {
    let mut head = MigrateHead::EMPTY;
    let body = decode_migrate_into(bytes, &mut head)?;
    Ok(MigrateMsg { head, body })
}

/// Like [`decode_migrate`], writing the head into `head` (which the caller
/// may keep off the stack) and returning the rest. On error `head` holds
/// garbage: partly the message's fields, partly its old contents.
pub fn decode_migrate_into<'a>(
    bytes: &'a [u8],
    head: &mut MigrateHead,
) -> Result<MigrateBody<'a>, WireError> {
    let mut r = Reader::new(bytes);
    head.read_into(&mut r)?;
    head.validate()?;
    let nr_vmas = len_usize(r.u32()?);
    check(nr_vmas <= MAX_VMAS)?;
    // Walk the VMAs once to validate them and find where they end.
    let mut vmas_start = r.clone();
    let before = r.remaining();
    let mut prev_end = 0;
    for _ in 0..nr_vmas {
        let vma = VmaDesc::read(&mut r)?;
        vma.validate()?;
        check(vma.start >= prev_end)?;
        prev_end = vma.end;
    }
    let vmas_len = before.saturating_sub(r.remaining());
    let vmas_raw = vmas_start.bytes(vmas_len)?;
    let arch_len = len_usize(r.u32()?);
    check(arch_len != 0 && arch_len <= MAX_ARCH_STATE)?;
    let arch = r.bytes(arch_len)?;
    let exe_len = usize::from(r.u16()?);
    check(exe_len <= MAX_EXE_PATH)?;
    let exe = r.bytes(exe_len)?;
    check(!exe.contains(&0))?;
    let nr_groups = len_usize(r.u32()?);
    check(nr_groups <= MAX_GROUPS)?;
    let groups_raw = r.bytes(nr_groups * 4)?;
    let nr_sigq = len_usize(r.u32()?);
    check(nr_sigq <= MAX_SIGQUEUE)?;
    let mut sigq_start = r.clone();
    for _ in 0..nr_sigq {
        QueuedSignal::read(&mut r)?;
    }
    let sigq_raw = sigq_start.bytes(nr_sigq * QUEUED_SIGNAL_LEN)?;
    let (files_raw, nr_files) = decode_files(&mut r)?;
    r.finish()?;
    check(bytes.len() <= MIGRATE_MAX_LEN)?;
    Ok(MigrateBody {
        vmas_raw,
        nr_vmas,
        arch,
        exe,
        groups_raw,
        sigq_raw,
        files_raw,
        nr_files,
    })
}

/// Iterator over the VMAs of a decoded [`MSG_MIGRATE`]. They were validated
/// when the message was decoded, so it yields them all; it stops early
/// only on bytes that do not decode, which a [`MigrateBody`] never holds.
#[derive(Clone, Debug)]
pub struct VmaIter<'a> {
    r: Reader<'a>,
    left: usize,
}

impl<'a> Iterator for VmaIter<'a> {
    type Item = VmaDesc<'a>;

    fn next(&mut self) -> Option<VmaDesc<'a>> {
        if self.left == 0 {
            return None;
        }
        match VmaDesc::read(&mut self.r) {
            Ok(vma) => {
                self.left = self.left.saturating_sub(1);
                Some(vma)
            }
            Err(_) => {
                self.left = 0;
                None
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec;
    use std::vec::Vec;

    const T: TaskId = TaskId {
        origin: NodeId(2),
        pid: 1234,
    };

    /// Round trip of a fixed payload, and refusal of every other length.
    fn round_trip<P: Payload + PartialEq + core::fmt::Debug>(p: P) {
        let mut buf = [0u8; 64];
        assert_eq!(p.encode(&mut buf), Ok(P::LEN));
        assert_eq!(P::decode(&buf[..P::LEN]).as_ref(), Ok(&p));
        for len in 0..P::LEN + 3 {
            if len != P::LEN {
                assert_eq!(P::decode(&buf[..len]), Err(WireError::BadPayload));
            }
        }
        assert_eq!(
            p.encode(&mut buf[..P::LEN - 1]),
            Err(WireError::ShortBuffer)
        );
    }

    /// `p` neither encodes nor, written raw, decodes.
    fn refused<P: Payload + core::fmt::Debug>(p: P, raw: &[u8]) {
        let mut buf = [0u8; 64];
        assert_eq!(p.encode(&mut buf), Err(WireError::BadPayload), "{p:?}");
        assert_eq!(P::decode(raw).err(), Some(WireError::BadPayload), "{p:?}");
    }

    fn task_bytes(origin: u16, pid: u32) -> Vec<u8> {
        let mut v = origin.to_le_bytes().to_vec();
        v.extend_from_slice(&pid.to_le_bytes());
        v
    }

    #[test]
    fn fixed_payloads_round_trip() {
        round_trip(Moved {
            task: T,
            node: NodeId(63),
        });
        round_trip(MigrateAbort { task: T });
        round_trip(Exit {
            task: T,
            code: i64::from(i32::MIN),
        });
        round_trip(Exit {
            task: T,
            code: i64::from(i32::MAX),
        });
        round_trip(Signal { task: T, signo: 1 });
        round_trip(Signal { task: T, signo: 64 });
        round_trip(MigrateReq {
            task: T,
            dest: NodeId(0),
        });
        round_trip(MigrateReply { pid: u32::MAX });
        let mut buf = [0u8; Moved::LEN];
        Moved {
            task: T,
            node: NodeId(5),
        }
        .encode(&mut buf)
        .unwrap();
        assert_eq!(buf, [2, 0, 0xd2, 0x04, 0, 0, 5, 0]);
        assert_eq!(Moved::LEN, 8);
        assert_eq!(MigrateAbort::LEN, 6);
        assert_eq!(Exit::LEN, 14);
        assert_eq!(Signal::LEN, 10);
        assert_eq!(MigrateReq::LEN, 8);
    }

    #[test]
    fn fixed_payloads_refused() {
        // Task ids: origin not below MAX_NODES, pid 0.
        for (origin, pid) in [(64u16, 1u32), (0x100, 1), (u16::MAX, 1), (0, 0)] {
            let raw = task_bytes(origin, pid);
            let task = TaskId {
                origin: NodeId(u8::try_from(origin).unwrap_or(255)),
                pid,
            };
            refused(MigrateAbort { task }, &raw);
            let mut m = raw.clone();
            m.extend_from_slice(&[1, 0]);
            refused(
                Moved {
                    task,
                    node: NodeId(1),
                },
                &m,
            );
        }
        let t = task_bytes(2, 1234);
        // Node ids.
        for node in [64u16, 255, 256, u16::MAX] {
            let mut raw = t.clone();
            raw.extend_from_slice(&node.to_le_bytes());
            let n = NodeId(u8::try_from(node).unwrap_or(255));
            refused(Moved { task: T, node: n }, &raw);
            refused(MigrateReq { task: T, dest: n }, &raw);
        }
        // Exit codes outside i32.
        for code in [i64::from(i32::MAX) + 1, i64::from(i32::MIN) - 1, i64::MAX] {
            let mut raw = t.clone();
            raw.extend_from_slice(&code.to_le_bytes());
            refused(Exit { task: T, code }, &raw);
        }
        // Signals outside 1..=64.
        for signo in [0u32, 65, u32::MAX] {
            let mut raw = t.clone();
            raw.extend_from_slice(&signo.to_le_bytes());
            refused(Signal { task: T, signo }, &raw);
        }
        // Pid 0 in a migrate reply.
        refused(MigrateReply { pid: 0 }, &[0; 4]);
    }

    fn sys(call: FwdCall, fd: i32, a: u64, b: u64, data: &[u8]) -> SyscallMsg<'_> {
        SyscallMsg {
            task: T,
            call,
            fd,
            a,
            b,
            data,
        }
    }

    /// Encodes `m` bypassing validation, as a peer might.
    fn raw_syscall(m: &SyscallMsg<'_>, origin: u16, call: u8) -> Vec<u8> {
        let mut v = task_bytes(origin, m.task.pid);
        v.push(call);
        v.extend_from_slice(&m.fd.to_le_bytes());
        v.extend_from_slice(&m.a.to_le_bytes());
        v.extend_from_slice(&m.b.to_le_bytes());
        v.extend_from_slice(&(m.data.len() as u32).to_le_bytes());
        v.extend_from_slice(m.data);
        v
    }

    #[test]
    fn process_calls() {
        let base = SyscallMsg {
            task: TaskId {
                origin: NodeId(0),
                pid: 7,
            },
            call: FwdCall::Kill,
            fd: 0,
            a: 5,
            b: 15,
            data: &[],
        };
        assert!(base.validate().is_ok());
        // kill(-1) is never forwarded; signal 65 is refused, 0 probes.
        let all = SyscallMsg {
            a: u64::from(u32::MAX),
            ..base
        };
        assert!(all.validate().is_err());
        assert!(SyscallMsg { b: 0, ..base }.validate().is_ok());
        assert!(SyscallMsg { b: 65, ..base }.validate().is_err());
        let tg = SyscallMsg {
            call: FwdCall::Tgkill,
            fd: 9,
            ..base
        };
        assert!(tg.validate().is_ok());
        assert!(SyscallMsg { fd: 0, ..tg }.validate().is_err());
        let wait = SyscallMsg {
            call: FwdCall::Wait4,
            a: (-1i32) as u32 as u64,
            b: 1,
            ..base
        };
        assert!(wait.validate().is_ok());
        assert!(SyscallMsg { fd: 3, ..wait }.validate().is_err());
        let sid = SyscallMsg {
            call: FwdCall::Getsid,
            a: 0,
            b: 0,
            ..base
        };
        assert!(sid.validate().is_ok());
        assert!(SyscallMsg { b: 1, ..sid }.validate().is_err());
        for v in 9..=14u8 {
            assert_eq!(FwdCall::from_u8(v).map(FwdCall::as_u8), Some(v));
        }
        assert_eq!(FwdCall::from_u8(15), None);
    }

    #[test]
    fn syscalls() {
        let path = vec![b'a'; FWD_MAX_PATH];
        let good = [
            sys(FwdCall::Open, AT_FDCWD, 0o2101, 0o644, b"/etc/passwd"),
            sys(FwdCall::Open, 5, u64::from(u32::MAX), 0o7777, &path),
            sys(FwdCall::Open, 5, 0, 0, b"x"),
            sys(FwdCall::Wait4, 0, u64::from(u32::MAX), 1, &[]),
            sys(FwdCall::Kill, 0, 12, 0, &[]),
            sys(FwdCall::Tgkill, 12, 12, 64, &[]),
            sys(FwdCall::Getpgid, 0, 0, 0, &[]),
            sys(FwdCall::Getsid, 0, i32::MAX as u64, 0, &[]),
        ];
        let mut buf = vec![0u8; SYSCALL_HEAD_LEN + FWD_MAX_DATA + 8];
        for m in &good {
            let n = m.encode(&mut buf).unwrap();
            assert_eq!(n, m.encoded_len());
            assert_eq!(SyscallMsg::decode(&buf[..n]).as_ref(), Ok(m));
            assert_eq!(raw_syscall(m, 2, m.call.as_u8()), &buf[..n]);
            // Truncated and extended.
            for len in [0, 1, SYSCALL_HEAD_LEN - 1, n - 1, n + 1] {
                assert_eq!(
                    SyscallMsg::decode(&buf[..len]),
                    Err(WireError::BadPayload),
                    "{m:?} {len}"
                );
            }
            assert_eq!(m.encode(&mut buf[..n - 1]), Err(WireError::ShortBuffer));
        }
        let long_path = vec![b'a'; FWD_MAX_PATH + 1];
        let bad = [
            // Negative fd outside open.
            sys(FwdCall::Open, -1, 0, 0, b"x"),
            sys(FwdCall::Tgkill, -1, 1, 1, &[]),
            // Data where none goes.
            sys(FwdCall::Wait4, 0, 0, 0, b"x"),
            sys(FwdCall::Kill, 0, 1, 1, b"x"),
            sys(FwdCall::Getpgid, 0, 0, 0, b"x"),
            // Open: empty, long, NUL in path, flags or mode out of range.
            sys(FwdCall::Open, 0, 0, 0, &[]),
            sys(FwdCall::Open, 0, 0, 0, &long_path),
            sys(FwdCall::Open, 0, 0, 0, b"a\0b"),
            sys(FwdCall::Open, 0, u64::from(u32::MAX) + 1, 0, b"x"),
            sys(FwdCall::Open, 0, 0, 0o10000, b"x"),
            // Invalid task.
            SyscallMsg {
                task: TaskId {
                    origin: NodeId(0),
                    pid: 0,
                },
                ..sys(FwdCall::Getpgid, 0, 0, 0, &[])
            },
        ];
        for m in &bad {
            assert_eq!(m.encode(&mut buf), Err(WireError::BadPayload), "{m:?}");
            let raw = raw_syscall(m, 2, m.call.as_u8());
            assert_eq!(
                SyscallMsg::decode(&raw),
                Err(WireError::BadPayload),
                "{m:?}"
            );
        }
        // Unknown calls (the retired file calls too) and bad origins.
        let ok = sys(FwdCall::Getpgid, 0, 0, 0, &[]);
        for call in [0u8, 1, 2, 5, 7, 15, 255] {
            let raw = raw_syscall(&ok, 2, call);
            assert_eq!(SyscallMsg::decode(&raw), Err(WireError::BadPayload));
        }
        assert_eq!(
            SyscallMsg::decode(&raw_syscall(&ok, 64, 12)),
            Err(WireError::BadPayload)
        );
        // A data length past the end, or huge.
        let mut raw = raw_syscall(&sys(FwdCall::Open, 0, 0, 0, b"abc"), 2, 8);
        raw.pop();
        assert_eq!(SyscallMsg::decode(&raw), Err(WireError::BadPayload));
        let mut raw = raw_syscall(&ok, 2, 12);
        raw[SYSCALL_HEAD_LEN - 4..].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(SyscallMsg::decode(&raw), Err(WireError::BadPayload));
        for v in 8..=14u8 {
            assert_eq!(FwdCall::from_u8(v).map(FwdCall::as_u8), Some(v));
        }
    }

    #[test]
    fn syscall_replies() {
        let big = vec![1u8; FWD_MAX_DATA];
        let good = [
            SyscallReply {
                result: 0,
                data: &[],
            },
            SyscallReply {
                result: FWD_MAX_DATA as i64,
                data: &big,
            },
            SyscallReply {
                result: i64::MAX,
                data: &[],
            },
            SyscallReply {
                result: -i64::from(MAX_ERRNO),
                data: &[],
            },
        ];
        let mut buf = vec![0u8; SYSCALL_REPLY_HEAD_LEN + FWD_MAX_DATA + 1];
        for m in &good {
            let n = m.encode(&mut buf).unwrap();
            assert_eq!(n, m.encoded_len());
            assert_eq!(SyscallReply::decode(&buf[..n]).as_ref(), Ok(m));
            for len in [0, SYSCALL_REPLY_HEAD_LEN - 1, n - 1, n + 1] {
                assert_eq!(
                    SyscallReply::decode(&buf[..len]),
                    Err(WireError::BadPayload)
                );
            }
            assert_eq!(m.encode(&mut buf[..n - 1]), Err(WireError::ShortBuffer));
        }
        let too_big = vec![1u8; FWD_MAX_DATA + 1];
        let bad = [
            SyscallReply {
                result: -i64::from(MAX_ERRNO) - 1,
                data: &[],
            },
            SyscallReply {
                result: i64::MIN,
                data: &[],
            },
            SyscallReply {
                result: -1,
                data: b"x",
            },
            SyscallReply {
                result: 1,
                data: &too_big,
            },
        ];
        for m in &bad {
            assert_eq!(m.encode(&mut buf), Err(WireError::BadPayload));
            let mut raw = m.result.to_le_bytes().to_vec();
            raw.extend_from_slice(&(m.data.len() as u32).to_le_bytes());
            raw.extend_from_slice(m.data);
            assert_eq!(SyscallReply::decode(&raw), Err(WireError::BadPayload));
        }
    }

    fn head() -> MigrateHead {
        let mut h = MigrateHead::EMPTY;
        h.task = T;
        h.tgid = 1234;
        h.parent_pid = 1;
        h.from = NodeId(3);
        h.visited = NodeSet(0b1100);
        h.comm = *b"sleeper\0\0\0\0\0\0\0\0\0";
        h.container = 0x0100_0007;
        h.signals.blocked = 1 << 1;
        h.signals.pending = 1 << 9;
        for (i, a) in h.signals.actions.iter_mut().enumerate() {
            let i = i as u64;
            *a = SigAction {
                handler: 0x40_0000 + i,
                flags: i << 8,
                restorer: 0x40_1000 + i,
                mask: i * 3,
            };
        }
        h.sched = Sched {
            policy: 1,
            rt_priority: 99,
            nice: -20,
        };
        h.creds = Creds {
            uid: 1,
            gid: 2,
            suid: 3,
            sgid: 4,
            euid: 5,
            egid: 6,
            fsuid: 7,
            fsgid: 8,
            cap_inheritable: 9,
            cap_permitted: 10,
            cap_effective: 11,
            cap_bset: 12,
            cap_ambient: 13,
            securebits: 14,
            umask: 0o777,
        };
        h.layout = MmLayout {
            start_code: 0x40_0000,
            end_code: 0x40_1000,
            start_data: 0x60_0000,
            end_data: 0x60_1000,
            start_brk: 0x80_0000,
            brk: 0x80_2000,
            start_stack: USER_END - 0x1000,
            arg_start: USER_END - 0x800,
            arg_end: USER_END - 0x700,
            env_start: USER_END - 0x700,
            env_end: USER_END,
        };
        h.proc = proc_state();
        h
    }

    fn proc_state() -> ProcState {
        let mut p = ProcState {
            sas_sp: 0x7000_0000,
            sas_size: 0x1_0000,
            sas_flags: 1 << 31,
            personality: 0x0040_0000,
            timer_slack_ns: 50_000,
            pdeath_signal: 10,
            flags: PROC_FLAGS,
            dumpable: 1,
            robust_list: 0x7fff_1000,
            clear_child_tid: 0x7fff_2000,
            rseq: 0x7fff_3000,
            rseq_len: 32,
            rseq_sig: 0x5305_3053,
            monotonic_ns: 12_345_678_901,
            boottime_ns: 12_345_678_999,
            restart: RESTART_SLEEP,
            restart_arg: 7,
            restart_addr: 0x7fff_4000,
            restart_ns: 1_250_000_000,
            ..ProcState::EMPTY
        };
        p.itimers[0] = Itimer {
            value_ns: 1_500_000_000,
            interval_ns: 250_000_000,
        };
        p.itimers[2] = Itimer {
            value_ns: 7,
            interval_ns: 0,
        };
        for (i, l) in p.rlimits.iter_mut().enumerate() {
            *l = Rlimit {
                cur: i as u64 * 10,
                max: if i % 2 == 0 { u64::MAX } else { i as u64 * 10 },
            };
        }
        p
    }

    fn queued(signo: u32, shared: bool, fill: u8) -> QueuedSignal {
        let mut info = [fill; SIGINFO_LEN];
        info[..4].copy_from_slice(&signo.to_le_bytes());
        QueuedSignal {
            signo,
            shared,
            info,
        }
    }

    fn vma(start: u64, end: u64, kind: VmaKind, path: &[u8]) -> VmaDesc<'_> {
        let shared = kind == VmaKind::Shared;
        VmaDesc {
            start,
            end,
            flags: 0x73,
            pgoff: if shared { 2 } else { start >> 12 },
            kind,
            path,
            container: if shared { 0x0100_0007 } else { 0 },
            size: if shared { end - start + 0x2000 } else { 0 },
        }
    }

    fn vmas() -> Vec<VmaDesc<'static>> {
        vec![
            vma(0x40_0000, 0x40_1000, VmaKind::File, b"/bin/sleeper"),
            vma(0x40_1000, 0x40_3000, VmaKind::Anon, b""),
            vma(0x7fff_0000_0000, 0x7fff_0000_2000, VmaKind::Vvar, b""),
            vma(0x7fff_0000_2000, 0x7fff_0000_4000, VmaKind::Vdso, b""),
            vma(USER_END - 0x1000, USER_END, VmaKind::Anon, b""),
        ]
    }

    fn encode(h: &MigrateHead, v: &[VmaDesc<'_>], arch: &[u8]) -> Result<Vec<u8>, WireError> {
        let mut buf = vec![0u8; migrate_len(v, arch.len())];
        let n = encode_migrate(&mut buf, h, v, arch)?;
        assert_eq!(n, buf.len());
        Ok(buf)
    }

    /// The head, VMAs and arch encoded without any validation.
    fn encode_raw(h: &MigrateHead, v: &[VmaDesc<'_>], arch: &[u8]) -> Vec<u8> {
        let mut buf = vec![0u8; migrate_len(v, arch.len())];
        let mut w = Writer::new(&mut buf);
        w.u16(u16::from(h.task.origin.0)).unwrap();
        w.u32(h.task.pid).unwrap();
        w.u32(h.tgid).unwrap();
        w.u32(h.parent_pid).unwrap();
        w.u16(u16::from(h.from.0)).unwrap();
        w.u64(h.visited.0).unwrap();
        w.bytes(&h.comm).unwrap();
        w.u64(h.signals.blocked).unwrap();
        w.u64(h.signals.pending).unwrap();
        for a in &h.signals.actions {
            a.write(&mut w).unwrap();
        }
        h.sched.write(&mut w).unwrap();
        h.creds.write(&mut w).unwrap();
        h.layout.write(&mut w).unwrap();
        h.proc.write(&mut w).unwrap();
        h.manage.write(&mut w).unwrap();
        w.u32(h.container).unwrap();
        w.u32(v.len() as u32).unwrap();
        for d in v {
            d.write(&mut w).unwrap();
        }
        w.u32(arch.len() as u32).unwrap();
        w.bytes(arch).unwrap();
        // An empty extra: no exe, groups or queued signals.
        w.bytes(&[0; EXTRA_FIXED_LEN]).unwrap();
        assert_eq!(w.written(), buf.len());
        buf
    }

    fn check_decoded(bytes: &[u8], h: &MigrateHead, v: &[VmaDesc<'_>], arch: &[u8]) {
        let msg = decode_migrate(bytes).unwrap();
        assert_eq!(&msg.head, h);
        assert_eq!(msg.nr_vmas(), v.len());
        assert_eq!(msg.vmas().size_hint(), (v.len(), Some(v.len())));
        assert!(msg.vmas().eq(v.iter().copied()));
        assert_eq!(msg.arch(), arch);
        let mut h2 = MigrateHead::EMPTY;
        let body = decode_migrate_into(bytes, &mut h2).unwrap();
        assert_eq!(&h2, h);
        assert_eq!(body, msg.body);
    }

    #[test]
    fn migrate_round_trip() {
        assert_eq!(ProcState::LEN, 420);
        assert_eq!(MigrateHead::LEN, 2764);
        let h = head();
        let v = vmas();
        let arch = [0xabu8; 600];
        let bytes = encode(&h, &v, &arch).unwrap();
        assert_eq!(bytes, encode_raw(&h, &v, &arch));
        assert_eq!(
            bytes.len(),
            MigrateHead::LEN + 4 + 5 * 35 + 12 + 4 + 600 + EXTRA_FIXED_LEN
        );
        check_decoded(&bytes, &h, &v, &arch);
        // No VMAs, smallest and largest arch state.
        let bytes = encode(&h, &[], &[1]).unwrap();
        check_decoded(&bytes, &h, &[], &[1]);
        let big = vec![9u8; MAX_ARCH_STATE];
        check_decoded(&encode(&h, &v, &big).unwrap(), &h, &v, &big);
        // The most VMAs, anonymous, and the largest arch state fit.
        let many: Vec<_> = (0..MAX_VMAS as u64)
            .map(|i| vma(i << 13, (i << 13) + 4096, VmaKind::Anon, b""))
            .collect();
        let bytes = encode(&h, &many, &big).unwrap();
        check_decoded(&bytes, &h, &many, &big);
        // As many each with the longest path do not: one message at most.
        let path = [b'p'; MAX_VMA_PATH];
        let long: Vec<_> = (0..MAX_VMAS as u64)
            .map(|i| vma(i << 13, (i << 13) + 4096, VmaKind::File, &path))
            .collect();
        assert!(migrate_len(&long, 1) > MIGRATE_MAX_LEN);
        let mut buf = vec![0u8; migrate_len(&long, 1)];
        assert_eq!(
            encode_migrate(&mut buf, &h, &long, &[1]),
            Err(WireError::BadPayload)
        );
        assert_eq!(
            decode_migrate(&encode_raw(&h, &long, &[1])).err(),
            Some(WireError::BadPayload)
        );
        // Short buffer.
        let mut small = vec![0u8; migrate_len(&v, 1) - 1];
        assert_eq!(
            encode_migrate(&mut small, &h, &v, &[1]),
            Err(WireError::ShortBuffer)
        );
        assert_eq!(
            migrate_len(&v, usize::MAX),
            usize::MAX,
            "migrate_len saturates"
        );
        assert_eq!(MigrateHead::default(), MigrateHead::EMPTY);
    }

    #[test]
    fn migrate_truncated_and_extended() {
        let h = head();
        let v = vmas();
        let bytes = encode(&h, &v, &[5; 40]).unwrap();
        for len in 0..bytes.len() {
            assert_eq!(
                decode_migrate(&bytes[..len]).err(),
                Some(WireError::BadPayload),
                "{len}"
            );
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert_eq!(decode_migrate(&longer).err(), Some(WireError::BadPayload));
    }

    /// `h`, `v`, `arch` are refused by the encoder and, encoded raw, by
    /// the decoder.
    fn migrate_refused(h: &MigrateHead, v: &[VmaDesc<'_>], arch: &[u8], what: &str) {
        assert_eq!(
            encode(h, v, arch).err(),
            Some(WireError::BadPayload),
            "{what}"
        );
        let raw = encode_raw(h, v, arch);
        assert_eq!(
            decode_migrate(&raw).err(),
            Some(WireError::BadPayload),
            "{what}"
        );
    }

    /// A change that breaks one rule of [`MigrateHead::validate`].
    type HeadMutation = fn(&mut MigrateHead);

    #[test]
    fn migrate_head_rules() {
        let v = vmas();
        let arch = [1u8];
        let cases: [(&str, HeadMutation); 50] = [
            ("sas flags", |h| h.proc.sas_flags = 1),
            ("sas end", |h| h.proc.sas_size = USER_END),
            ("sas wrap", |h| h.proc.sas_size = u64::MAX),
            ("itimer interval alone", |h| {
                h.proc.itimers[1] = Itimer {
                    value_ns: 0,
                    interval_ns: 1,
                }
            }),
            ("rlimit cur above max", |h| {
                h.proc.rlimits[7] = Rlimit { cur: 2, max: 1 }
            }),
            ("pdeath signal", |h| h.proc.pdeath_signal = 65),
            ("proc flags", |h| h.proc.flags = 8),
            ("dumpable", |h| h.proc.dumpable = 3),
            ("robust list", |h| h.proc.robust_list = USER_END),
            ("clear child tid", |h| h.proc.clear_child_tid = u64::MAX),
            ("rseq", |h| h.proc.rseq = USER_END),
            ("rseq len alone", |h| h.proc.rseq = 0),
            ("rseq sig alone", |h| {
                h.proc.rseq = 0;
                h.proc.rseq_len = 0;
            }),
            ("monotonic", |h| h.proc.monotonic_ns = -1),
            ("boottime", |h| h.proc.boottime_ns = i64::MIN),
            ("restart kind", |h| h.proc.restart = 3),
            ("restart clock", |h| h.proc.restart_arg = 2),
            ("restart rmtp", |h| h.proc.restart_addr = USER_END),
            ("restart time", |h| h.proc.restart_ns = -1),
            ("restart fields alone", |h| h.proc.restart = RESTART_NONE),
            ("poll nfds", |h| {
                h.proc.restart = RESTART_POLL;
                h.proc.restart_arg = 1 << 31;
            }),
            ("poll ufds", |h| {
                h.proc.restart = RESTART_POLL;
                h.proc.restart_addr = USER_END;
            }),
            ("poll time", |h| {
                h.proc.restart = RESTART_POLL;
                h.proc.restart_ns = -2;
            }),
            ("origin", |h| h.task.origin = NodeId(64)),
            ("pid", |h| h.task.pid = 0),
            ("tgid", |h| h.tgid = 0),
            ("from", |h| h.from = NodeId(64)),
            ("from not visited", |h| h.visited = NodeSet(0b0100)),
            ("origin not visited", |h| h.visited = NodeSet(0b1000)),
            ("comm", |h| h.comm[15] = b'x'),
            ("blocked kill", |h| h.signals.blocked |= 1 << 8),
            ("blocked stop", |h| h.signals.blocked |= 1 << 18),
            ("policy low", |h| h.sched.policy = -1),
            ("policy high", |h| h.sched.policy = 7),
            ("rt low", |h| h.sched.rt_priority = -1),
            ("rt high", |h| h.sched.rt_priority = 100),
            ("nice low", |h| h.sched.nice = -21),
            ("nice high", |h| h.sched.nice = 20),
            ("umask", |h| h.creds.umask = 0o1000),
            ("code", |h| h.layout.end_code = h.layout.start_code - 1),
            ("data", |h| h.layout.end_data = h.layout.start_data - 1),
            ("brk", |h| h.layout.brk = h.layout.start_brk - 1),
            ("arg", |h| h.layout.arg_end = h.layout.arg_start - 1),
            ("env", |h| h.layout.env_end = h.layout.env_start - 1),
            ("stack", |h| h.layout.start_stack = USER_END + 1),
            ("env end", |h| h.layout.env_end = USER_END + 1),
            ("code start", |h| {
                h.layout.start_code = USER_END + 1;
                h.layout.end_code = USER_END + 2;
            }),
            ("data start", |h| {
                h.layout.start_data = u64::MAX - 1;
                h.layout.end_data = u64::MAX;
            }),
            ("brk end", |h| h.layout.brk = u64::MAX),
            ("arg both", |h| {
                h.layout.arg_start = USER_END + 1;
                h.layout.arg_end = USER_END + 1;
            }),
        ];
        for (what, mutate) in cases {
            let mut h = head();
            mutate(&mut h);
            assert_eq!(h.validate(), Err(WireError::BadPayload), "{what}");
            migrate_refused(&h, &v, &arch, what);
        }
        // Allowed edges: blocked everything else, parent 0, origin == from.
        let mut h = head();
        h.signals.blocked = !Signals::UNBLOCKABLE;
        h.parent_pid = 0;
        h.from = h.task.origin;
        h.visited = NodeSet::single(h.from);
        h.sched = Sched {
            policy: 6,
            rt_priority: 0,
            nice: 19,
        };
        check_decoded(&encode(&h, &v, &arch).unwrap(), &h, &v, &arch);
        // A poll without a time-out, and one with none left, on no
        // descriptors at address 0.
        for ns in [-1, 0] {
            let mut h = head();
            h.proc.restart = RESTART_POLL;
            h.proc.restart_arg = 0;
            h.proc.restart_addr = 0;
            h.proc.restart_ns = ns;
            check_decoded(&encode(&h, &v, &arch).unwrap(), &h, &v, &arch);
        }
        // A from node past MAX_NODES on the wire (u16 >= 64).
        let mut raw = encode(&head(), &v, &arch).unwrap();
        raw[14..16].copy_from_slice(&0x0103u16.to_le_bytes());
        assert_eq!(decode_migrate(&raw).err(), Some(WireError::BadPayload));
    }

    #[test]
    fn migrate_vma_rules() {
        let h = head();
        let arch = [1u8];
        let long = [b'p'; MAX_VMA_PATH + 1];
        let single: [(&str, VmaDesc<'_>); 12] = [
            ("start unaligned", vma(0x1001, 0x3000, VmaKind::Anon, b"")),
            ("end unaligned", vma(0x1000, 0x3001, VmaKind::Anon, b"")),
            ("empty", vma(0x1000, 0x1000, VmaKind::Anon, b"")),
            ("reversed", vma(0x2000, 0x1000, VmaKind::Anon, b"")),
            (
                "past end",
                vma(0x1000, USER_END + 0x1000, VmaKind::Anon, b""),
            ),
            (
                "past end 2",
                vma(USER_END, USER_END + 0x1000, VmaKind::Anon, b""),
            ),
            ("file no path", vma(0x1000, 0x2000, VmaKind::File, b"")),
            ("file long path", vma(0x1000, 0x2000, VmaKind::File, &long)),
            ("anon path", vma(0x1000, 0x2000, VmaKind::Anon, b"x")),
            ("vdso path", vma(0x1000, 0x2000, VmaKind::Vdso, b"x")),
            ("vvar path", vma(0x1000, 0x2000, VmaKind::Vvar, b"x")),
            (
                "wrapping",
                vma(u64::MAX - 0xfff, 0x1000, VmaKind::Anon, b""),
            ),
        ];
        for (what, d) in single {
            assert_eq!(d.validate(), Err(WireError::BadPayload), "{what}");
            migrate_refused(&h, &[d], &arch, what);
            // Also after valid VMAs.
            let mut v = vec![vma(0, 0x1000, VmaKind::Anon, b"")];
            v.push(d);
            if d.start >= 0x1000 {
                migrate_refused(&h, &v, &arch, what);
            }
        }
        // Order: overlapping, out of order, duplicate; touching is fine.
        let a = vma(0x2000, 0x4000, VmaKind::Anon, b"");
        for (what, b) in [
            ("overlap", vma(0x3000, 0x5000, VmaKind::Anon, b"")),
            ("before", vma(0x1000, 0x2000, VmaKind::Anon, b"")),
            ("same", a),
            ("inside", vma(0x2000, 0x3000, VmaKind::Anon, b"")),
        ] {
            migrate_refused(&h, &[a, b], &arch, what);
        }
        let b = vma(0x4000, 0x5000, VmaKind::File, b"/f");
        check_decoded(&encode(&h, &[a, b], &arch).unwrap(), &h, &[a, b], &arch);
        // Too many VMAs.
        let many: Vec<_> = (0..MAX_VMAS as u64 + 1)
            .map(|i| vma(i << 12, (i + 1) << 12, VmaKind::Anon, b""))
            .collect();
        migrate_refused(&h, &many, &arch, "too many");
        // Unknown kind, and a count larger than the VMAs present.
        let mut raw = encode(&h, &[a], &arch).unwrap();
        raw[MigrateHead::LEN + 4 + 32] = 6;
        assert_eq!(decode_migrate(&raw).err(), Some(WireError::BadPayload));
        let mut raw = encode(&h, &[a], &arch).unwrap();
        raw[MigrateHead::LEN..MigrateHead::LEN + 4].copy_from_slice(&2u32.to_le_bytes());
        assert_eq!(decode_migrate(&raw).err(), Some(WireError::BadPayload));
        raw[MigrateHead::LEN..MigrateHead::LEN + 4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(decode_migrate(&raw).err(), Some(WireError::BadPayload));
        for v in 0..=5u8 {
            assert_eq!(VmaKind::from_u8(v).map(VmaKind::as_u8), Some(v));
        }
        assert_eq!(VmaKind::from_u8(6), None);
        // A file without a name carries no path.
        let c = vma(0x5000, 0x6000, VmaKind::FileAnon, b"");
        check_decoded(
            &encode(&h, &[a, b, c], &arch).unwrap(),
            &h,
            &[a, b, c],
            &arch,
        );
        migrate_refused(
            &h,
            &[vma(0x5000, 0x6000, VmaKind::FileAnon, b"/f")],
            &arch,
            "file-anon with a path",
        );
    }

    #[test]
    fn migrate_shared_vma_round_trip() {
        let h = head();
        let arch = [7u8; 16];
        let a = vma(0x1000, 0x3000, VmaKind::Anon, b"");
        let s = vma(0x10000, 0x14000, VmaKind::Shared, b"");
        assert_eq!(s.encoded_len(), VMA_FIXED_LEN + VMA_SHARED_LEN);
        check_decoded(&encode(&h, &[a, s], &arch).unwrap(), &h, &[a, s], &arch);
        // A shared VMA names its container, and its region covers it.
        migrate_refused(
            &h,
            &[VmaDesc { container: 0, ..s }],
            &arch,
            "shared without a container",
        );
        migrate_refused(
            &h,
            &[VmaDesc { size: 0x4000, ..s }],
            &arch,
            "shared past its region's end",
        );
        migrate_refused(
            &h,
            &[VmaDesc { size: 0x6001, ..s }],
            &arch,
            "shared with an unaligned size",
        );
        // Only a shared VMA carries a container (on the wire too).
        let anon = VmaDesc { container: 3, ..a };
        assert_eq!(anon.validate(), Err(WireError::BadPayload));
        assert_eq!(
            encode(&h, &[anon], &arch).err(),
            Some(WireError::BadPayload)
        );
        // A region exactly as large as the pages mapped is fine.
        let exact = VmaDesc { size: 0x6000, ..s };
        check_decoded(&encode(&h, &[exact], &arch).unwrap(), &h, &[exact], &arch);
    }

    #[test]
    fn migrate_files_round_trip() {
        use super::super::files::FileDesc;
        let h = head();
        let v = vmas();
        let files = [
            FileDesc {
                fd: 0,
                cloexec: false,
                home: NodeId(0),
                id: 1,
                f_flags: 2,
                f_mode: 3,
                i_mode: 0o20620,
            },
            FileDesc {
                fd: 9,
                cloexec: true,
                home: NodeId(2),
                id: 77,
                f_flags: 0o2001,
                f_mode: 2,
                i_mode: 0o100644,
            },
        ];
        let extra = MigrateExtra {
            files: &files,
            ..MigrateExtra::EMPTY
        };
        let mut buf = vec![0u8; migrate_len_with(&v, 5, &extra)];
        let n = encode_migrate_with(&mut buf, &h, &v, &[1; 5], &extra).unwrap();
        assert_eq!(n, buf.len());
        let msg = decode_migrate(&buf).unwrap();
        assert_eq!(msg.body.nr_files(), 2);
        assert!(msg.body.files().eq(files.iter().copied()));
        // Out of order descriptors are refused on both sides.
        let swapped = [files[1], files[0]];
        let bad = MigrateExtra {
            files: &swapped,
            ..MigrateExtra::EMPTY
        };
        assert!(encode_migrate_with(&mut buf, &h, &v, &[1; 5], &bad).is_err());
        // A count past the end is refused.
        let at = n - 2 * FileDesc::LEN - 4;
        buf[at..at + 4].copy_from_slice(&3u32.to_le_bytes());
        assert_eq!(decode_migrate(&buf).err(), Some(WireError::BadPayload));
    }

    #[test]
    fn migrate_arch_rules() {
        let h = head();
        let v = vmas();
        migrate_refused(&h, &v, &[], "empty arch");
        let big = vec![0u8; MAX_ARCH_STATE + 1];
        migrate_refused(&h, &v, &big, "big arch");
        // An arch length past the end.
        let mut raw = encode(&h, &v, &[1, 2, 3]).unwrap();
        let at = raw.len() - EXTRA_FIXED_LEN - 3 - 4;
        raw[at..at + 4].copy_from_slice(&4u32.to_le_bytes());
        assert_eq!(decode_migrate(&raw).err(), Some(WireError::BadPayload));
        raw[at..at + 4].copy_from_slice(&2u32.to_le_bytes());
        assert_eq!(decode_migrate(&raw).err(), Some(WireError::BadPayload));
    }

    fn encode_extra(h: &MigrateHead, v: &[VmaDesc<'_>], x: &MigrateExtra<'_>) -> Vec<u8> {
        let mut buf = vec![0u8; migrate_len_with(v, 8, x)];
        assert_eq!(
            encode_migrate_with(&mut buf, h, v, &[7; 8], x),
            Ok(buf.len())
        );
        buf
    }

    #[test]
    fn migrate_extra_round_trip() {
        let h = head();
        let v = vmas();
        let sigq = [
            queued(10, false, 1),
            queued(34, true, 2),
            queued(34, true, 3),
            queued(64, false, 0xff),
        ];
        let groups = [0, 1, 100, u32::MAX - 1];
        let x = MigrateExtra {
            exe: b"/usr/bin/sleeper",
            groups: &groups,
            sigq: &sigq,
            files: &[],
        };
        let bytes = encode_extra(&h, &v, &x);
        assert_eq!(
            bytes.len(),
            migrate_len(&v, 8) + 16 + 4 * 4 + 4 * QUEUED_SIGNAL_LEN
        );
        let msg = decode_migrate(&bytes).unwrap();
        assert_eq!(msg.head, h);
        assert_eq!(msg.body.exe(), x.exe);
        assert_eq!(msg.body.nr_groups(), 4);
        assert!(msg.body.groups().eq(groups.iter().copied()));
        assert_eq!(msg.body.nr_sigq(), 4);
        assert!(msg.body.sigq().eq(sigq.iter().copied()));
        // Every truncation is refused.
        for len in bytes.len() - 100..bytes.len() {
            assert_eq!(
                decode_migrate(&bytes[..len]).err(),
                Some(WireError::BadPayload)
            );
        }
        // The most groups and queued signals fit.
        let groups = vec![5u32; MAX_GROUPS];
        let sigq = vec![queued(40, false, 9); MAX_SIGQUEUE];
        let exe = [b'e'; MAX_EXE_PATH];
        let x = MigrateExtra {
            exe: &exe,
            groups: &groups,
            sigq: &sigq,
            files: &[],
        };
        let msg_bytes = encode_extra(&h, &v, &x);
        let msg = decode_migrate(&msg_bytes).unwrap();
        assert_eq!(msg.body.nr_groups(), MAX_GROUPS);
        assert_eq!(msg.body.nr_sigq(), MAX_SIGQUEUE);
    }

    #[test]
    fn migrate_extra_rules() {
        let h = head();
        let v = vmas();
        let groups = vec![1u32; MAX_GROUPS + 1];
        let sigq = vec![queued(40, false, 9); MAX_SIGQUEUE + 1];
        let exe = [b'e'; MAX_EXE_PATH + 1];
        let bad_info = {
            let mut q = queued(12, false, 0);
            q.info[0] = 13;
            q
        };
        let cases: [(&str, MigrateExtra<'_>); 7] = [
            (
                "too many groups",
                MigrateExtra {
                    groups: &groups,
                    ..MigrateExtra::EMPTY
                },
            ),
            (
                "too many signals",
                MigrateExtra {
                    sigq: &sigq,
                    ..MigrateExtra::EMPTY
                },
            ),
            (
                "exe too long",
                MigrateExtra {
                    exe: &exe,
                    ..MigrateExtra::EMPTY
                },
            ),
            (
                "exe with NUL",
                MigrateExtra {
                    exe: b"/bin/a\0b",
                    ..MigrateExtra::EMPTY
                },
            ),
            (
                "signal 0",
                MigrateExtra {
                    sigq: &[queued(0, false, 0)],
                    ..MigrateExtra::EMPTY
                },
            ),
            (
                "signal 65",
                MigrateExtra {
                    sigq: &[queued(65, false, 0)],
                    ..MigrateExtra::EMPTY
                },
            ),
            (
                "siginfo names another",
                MigrateExtra {
                    sigq: &[bad_info],
                    ..MigrateExtra::EMPTY
                },
            ),
        ];
        for (what, x) in cases {
            assert_eq!(x.validate(), Err(WireError::BadPayload), "{what}");
            let mut buf = vec![0u8; migrate_len_with(&v, 8, &x)];
            assert_eq!(
                encode_migrate_with(&mut buf, &h, &v, &[7; 8], &x),
                Err(WireError::BadPayload),
                "{what}"
            );
        }
        // Raw bytes: a shared flag other than 0 or 1, counts past the end.
        let x = MigrateExtra {
            exe: b"",
            groups: &[],
            sigq: &[queued(33, true, 0)],
            files: &[],
        };
        let good = encode_extra(&h, &v, &x);
        // The descriptor table's count (0) ends the message.
        let end = good.len() - 4;
        let flag_at = end - QUEUED_SIGNAL_LEN + 4;
        let mut raw = good.clone();
        raw[flag_at] = 2;
        assert_eq!(decode_migrate(&raw).err(), Some(WireError::BadPayload));
        let mut raw = good.clone();
        let n_at = end - QUEUED_SIGNAL_LEN - 4;
        raw[n_at..n_at + 4].copy_from_slice(&2u32.to_le_bytes());
        assert_eq!(decode_migrate(&raw).err(), Some(WireError::BadPayload));
        let mut raw = good.clone();
        raw[n_at - 4..n_at].copy_from_slice(&1u32.to_le_bytes());
        assert_eq!(decode_migrate(&raw).err(), Some(WireError::BadPayload));
        let mut raw = good;
        raw.push(0);
        assert_eq!(decode_migrate(&raw).err(), Some(WireError::BadPayload));
    }
}
