// SPDX-License-Identifier: GPL-2.0

//! System calls of a migrated task that its origin serves.
//!
//! Its descriptors are proxy files in its own table (see `files`), so calls
//! on them run here; `open` and `openat` relative to the working directory
//! are forwarded to the shadow at the origin, which opens the file there and
//! exports it, and the file is installed here as a proxy.
//!
//! Its pid, process group and session, and the children it had at its
//! origin, live in the origin's pid space: `getpid`, `gettid` and
//! `getppid` answer with the ids it has there; `getpgrp`, `getpgid` and
//! `getsid` are answered by the origin; `wait4` waits for the children at
//! the origin (through the shadow, their parent) and for those forked here;
//! `kill` and `tgkill` of a process that is not a child here reach it in
//! the origin's pid space. A call that names the task itself by the pid it
//! knows (its origin pid: `kill(getpid())`, `raise`, `getpriority`,
//! `sched_*`, `prlimit64`...) acts on the task here. Everything else runs
//! where the task is.

use crate::dist::{current_running, Dist, Registry, Role};
use crate::proto::files::FileDesc;
use crate::proto::pathcall::{self, Arg, PathCall};
use crate::proto::task_msg::{
    self, FwdCall, SyscallIntr, SyscallMsg, SyscallReply, FWD_MAX_DATA, WAIT_REPLY_LEN,
};
use crate::proto::wire::Payload;
use crate::STATE;
use kernel::cohort::{self, migration, msg, vec as kvec};
use kernel::prelude::*;
use kernel::uaccess::UserSlice;

const SYS_OPEN: i64 = 2;
const SYS_GETPID: i64 = 39;
const SYS_CREAT: i64 = 85;
const SYS_WAIT4: i64 = 61;
const SYS_KILL: i64 = 62;
const SYS_SETPGID: i64 = 109;
const SYS_GETPPID: i64 = 110;
const SYS_GETPGRP: i64 = 111;
const SYS_GETPGID: i64 = 121;
const SYS_GETSID: i64 = 124;
const SYS_RT_SIGQUEUEINFO: i64 = 129;
const SYS_GETPRIORITY: i64 = 140;
const SYS_SETPRIORITY: i64 = 141;
const SYS_SCHED_SETPARAM: i64 = 142;
const SYS_SCHED_GETPARAM: i64 = 143;
const SYS_SCHED_SETSCHEDULER: i64 = 144;
const SYS_SCHED_GETSCHEDULER: i64 = 145;
const SYS_SCHED_RR_GET_INTERVAL: i64 = 148;
const SYS_GETTID: i64 = 186;
const SYS_TKILL: i64 = 200;
const SYS_SCHED_SETAFFINITY: i64 = 203;
const SYS_SCHED_GETAFFINITY: i64 = 204;
const SYS_TGKILL: i64 = 234;
const SYS_IOPRIO_SET: i64 = 251;
const SYS_IOPRIO_GET: i64 = 252;
const SYS_OPENAT: i64 = 257;
const SYS_GET_ROBUST_LIST: i64 = 274;
const SYS_RT_TGSIGQUEUEINFO: i64 = 297;
const SYS_PRLIMIT64: i64 = 302;
const SYS_SCHED_SETATTR: i64 = 314;
const SYS_SCHED_GETATTR: i64 = 315;
const SYS_PIDFD_OPEN: i64 = 434;
const AT_FDCWD: i32 = -100;
const WNOHANG: u64 = 1;
const O_WRONLY: u64 = 0o1;
const O_CREAT: u64 = 0o100;
const O_TRUNC: u64 = 0o1000;
const PRIO_PROCESS: u64 = 0;
const IOPRIO_WHO_PROCESS: u64 = 1;
/// Longest path `open` forwards, with its NUL.
const PATH_MAX: usize = 4096;
/// The `-ERESTART*` values: `ERESTARTSYS` (512) to `ERESTART_RESTARTBLOCK`
/// (516).
const ERESTART_MIN: i64 = -516;
const ERESTART_MAX: i64 = -512;
/// `-ERESTART_RESTARTBLOCK`: the call resumes through a restart block,
/// which stays at the origin.
const ERESTART_RESTARTBLOCK: i64 = -516;
/// How long a forwarded call may take at the origin (it may block).
const SYSCALL_TIMEOUT_MS: u32 = u32::MAX / 2;
/// How long an interrupted call may take to end at the origin at least (or
/// the heartbeat time-out and a margin, `crate::peer_timeout_ms`).
const INTR_TIMEOUT_MS: u32 = 10_000;
/// Longest pause between two looks at the children of a task that has
/// some here and some at its origin.
const WAIT_POLL_MAX_MS: u32 = 50;

/// Serves system call `nr` of the current task if it is forwarded; a call
/// run here may have its pid arguments translated in `args`.
pub(crate) fn syscall(nr: i64, args: &mut [u64; 6]) -> Option<i64> {
    let reg = STATE.get()?;
    let Some(dist) = current_running(&reg) else {
        return child_syscall(&reg, nr);
    };
    if dist.at_origin() {
        return None;
    }
    let fd = args[0] as i32;
    // This node's ids of the task, for calls that name it.
    let local = || {
        let task = kernel::current!();
        let (pid, tgid) = migration::task_ids(&task);
        (pid as u64, tgid as u64)
    };
    // The task names itself by its pid at its origin, or by the pid it has
    // here (read from `/proc/self`, which is this node's).
    let own = |v: u64| {
        let v = v as i32;
        v > 0 && (v as u32 == dist.tgid || i64::from(v) == local().1 as i64)
    };
    let result = match nr {
        SYS_GETPID => Ok(i64::from(dist.tgid)),
        SYS_GETTID => Ok(i64::from(dist.id.pid)),
        SYS_GETPPID => Ok(i64::from(dist.parent_pid)),
        SYS_OPEN => open(&dist, args[0], args[1], args[2]).transpose()?,
        SYS_OPENAT => {
            if fd != AT_FDCWD {
                return None;
            }
            open(&dist, args[1], args[2], args[3]).transpose()?
        }
        SYS_GETPGRP => ids(&dist, FwdCall::Getpgid, 0),
        SYS_GETPGID | SYS_GETSID => {
            let pid = args[0] as i32;
            let call = if nr == SYS_GETSID {
                FwdCall::Getsid
            } else {
                FwdCall::Getpgid
            };
            if own(args[0]) || pid == 0 {
                ids(&dist, call, 0)
            } else if pid < 0 || migration::has_child(pid) {
                return None;
            } else {
                ids(&dist, call, pid)
            }
        }
        SYS_WAIT4 => return wait4(&dist, args).map(result_value),
        SYS_KILL => {
            let pid = args[0] as i32;
            if own(args[0]) {
                args[0] = local().1;
                return None;
            }
            if pid == -1 || (pid > 0 && migration::has_child(pid)) {
                return None;
            }
            signal(&dist, FwdCall::Kill, 0, pid, args[1])
        }
        SYS_TGKILL => {
            if own(args[0]) && own(args[1]) {
                (args[1], args[0]) = local();
                return None;
            }
            let tgid = args[0] as i32;
            if tgid <= 0 || migration::has_child(tgid) {
                return None;
            }
            signal(&dist, FwdCall::Tgkill, tgid, args[1] as i32, args[2])
        }
        SYS_TKILL | SYS_PIDFD_OPEN | SYS_RT_SIGQUEUEINFO => {
            if own(args[0]) {
                args[0] = local().1;
            }
            return None;
        }
        SYS_RT_TGSIGQUEUEINFO => {
            if own(args[0]) && own(args[1]) {
                (args[1], args[0]) = local();
            }
            return None;
        }
        SYS_SCHED_SETPARAM
        | SYS_SCHED_GETPARAM
        | SYS_SCHED_SETSCHEDULER
        | SYS_SCHED_GETSCHEDULER
        | SYS_SCHED_RR_GET_INTERVAL
        | SYS_SCHED_SETAFFINITY
        | SYS_SCHED_GETAFFINITY
        | SYS_SCHED_SETATTR
        | SYS_SCHED_GETATTR
        | SYS_PRLIMIT64
        | SYS_GET_ROBUST_LIST => {
            // 0 names the caller.
            if own(args[0]) {
                args[0] = 0;
            }
            return None;
        }
        SYS_SETPGID => {
            for arg in args.iter_mut().take(2) {
                if own(*arg) {
                    *arg = 0;
                }
            }
            return None;
        }
        SYS_GETPRIORITY | SYS_SETPRIORITY | SYS_IOPRIO_SET | SYS_IOPRIO_GET => {
            let process = if nr == SYS_GETPRIORITY || nr == SYS_SETPRIORITY {
                PRIO_PROCESS
            } else {
                IOPRIO_WHO_PROCESS
            };
            if args[0] == process && own(args[1]) {
                args[1] = 0;
            }
            return None;
        }
        SYS_CREAT => open(&dist, args[0], O_CREAT | O_WRONLY | O_TRUNC, args[1]).transpose()?,
        _ => {
            let shape = pathcall::shape(nr as u32)?;
            return path_call(&dist, nr as u32, &shape, args).map(result_value);
        }
    };
    Some(result_value(result))
}

/// A child forked here by a migrated task (marked by `Tasks::created`):
/// its parent is the pid the parent itself knows, its pid at its origin.
fn child_syscall(reg: &Registry, nr: i64) -> Option<i64> {
    if nr != SYS_GETPPID {
        return None;
    }
    let parent = reg.find_by_local_tgid(migration::parent_tgid())?;
    let running = parent.inner.lock().role == Role::Running;
    (running && !parent.at_origin()).then_some(i64::from(parent.tgid))
}

fn result_value(result: Result<i64>) -> i64 {
    match result {
        Ok(value) => value,
        Err(e) => i64::from(e.to_errno()),
    }
}

/// `getpgid(pid)` or `getsid(pid)` at the origin.
fn ids(dist: &Dist, call_kind: FwdCall, pid: i32) -> Result<i64> {
    call(dist, call_kind, 0, pid as u64, 0, &[], &mut []).map(|(r, _)| r)
}

/// `kill` or `tgkill` in the origin's pid space.
fn signal(dist: &Dist, call_kind: FwdCall, fd: i32, pid: i32, sig: u64) -> Result<i64> {
    if sig > task_msg::SIG_MAX {
        return Err(EINVAL);
    }
    call(dist, call_kind, fd, pid as u32 as u64, sig, &[], &mut []).map(|(r, _)| r)
}

/// `wait4(pid, status, options, rusage)`: `None` to run it here (a child
/// of this node named by its pid).
fn wait4(dist: &Dist, args: &[u64; 6]) -> Option<Result<i64>> {
    let pid = args[0] as i32;
    let (status, options, ru) = (args[1], args[2], args[3]);
    if pid > 0 && migration::has_child(pid) {
        return None;
    }
    if !migration::has_child(if pid > 0 { pid } else { 0 }) {
        // Every child it may mean is at its origin: the shadow waits.
        return Some(wait_origin(dist, pid, options, status, ru));
    }
    // Children here and maybe at the origin: look at both, without
    // blocking, until one answers.
    let mut pause = 1;
    Some(loop {
        let there = match wait_origin(dist, pid, options | WNOHANG, status, ru) {
            Ok(0) => true,
            Ok(r) => break Ok(r),
            Err(e) if e == ECHILD => false,
            Err(e) => break Err(e),
        };
        match migration::wait4_local(
            pid,
            status as usize,
            (options | WNOHANG) as i32,
            ru as usize,
        ) {
            Ok(0) => {}
            Ok(r) => break Ok(r),
            Err(e) if e == ECHILD && !there => break Err(ECHILD),
            Err(e) if e == ECHILD => {}
            Err(e) => break Err(e),
        }
        if options & WNOHANG != 0 {
            break Ok(0);
        }
        if migration::msleep_interruptible(pause) {
            // A signal or a migration is pending here: restart or end
            // the call as the kernel's own `wait4` (`do_wait`) would.
            break Err(ERESTARTSYS);
        }
        pause = (pause * 2).min(WAIT_POLL_MAX_MS);
    })
}

/// `wait4` by the shadow at the origin; copies the status and rusage out.
fn wait_origin(dist: &Dist, pid: i32, options: u64, status: u64, ru: u64) -> Result<i64> {
    if options > u64::from(u32::MAX) {
        return Err(EINVAL);
    }
    let mut out = [0u8; WAIT_REPLY_LEN];
    let (r, got) = call(
        dist,
        FwdCall::Wait4,
        0,
        pid as u32 as u64,
        options,
        &[],
        &mut out,
    )?;
    if r <= 0 {
        return Ok(r);
    }
    if got != WAIT_REPLY_LEN {
        return Err(cohort::errno::EPROTO());
    }
    if status != 0 {
        UserSlice::new(status as usize, 4)
            .writer()
            .write_slice(&out[..4])?;
    }
    if ru != 0 {
        UserSlice::new(ru as usize, WAIT_REPLY_LEN - 4)
            .writer()
            .write_slice(&out[4..])?;
    }
    Ok(r)
}

/// Sends one call to the origin; returns its result and copies its data
/// into `out` (returning how much).
fn call(
    dist: &Dist,
    call: FwdCall,
    fd: i32,
    a: u64,
    b: u64,
    data: &[u8],
    out: &mut [u8],
) -> Result<(i64, usize)> {
    let request = SyscallMsg {
        task: dist.id,
        call,
        fd,
        a,
        b,
        data,
    };
    let mut buf = KVVec::from_elem(0u8, request.encoded_len(), GFP_KERNEL)?;
    request.encode(&mut buf).map_err(|_| EINVAL)?;
    let mut reply = KVVec::from_elem(
        0u8,
        task_msg::SYSCALL_REPLY_HEAD_LEN + FWD_MAX_DATA,
        GFP_KERNEL,
    )?;
    let origin = u32::from(dist.id.origin.0);
    let n = match msg::request(
        origin,
        task_msg::MSG_SYSCALL,
        &buf,
        &mut reply,
        SYSCALL_TIMEOUT_MS,
    ) {
        Err(e) if e == EINTR => interrupt(dist, &mut reply)?,
        other => other?,
    };
    dist.counts.forwarded(buf.len() + n);
    let answer = SyscallReply::decode(reply.get(..n).ok_or(EINVAL)?).map_err(|_| EINVAL)?;
    if (ERESTART_MIN..=ERESTART_MAX).contains(&answer.result) {
        return Err(restart_error(answer.result));
    }
    if answer.result < 0 {
        return Err(Error::from_errno(answer.result as i32));
    }
    let len = answer.data.len().min(out.len());
    out[..len].copy_from_slice(&answer.data[..len]);
    Ok((answer.result, len))
}

/// What a call the origin ended with `result`, one of the `-ERESTART*`
/// values (the call was interrupted before it took effect), returns here.
///
/// `result` itself, for the kernel's signal code on the way back to user
/// space: it restarts the call, or ends it with `EINTR` for a handler,
/// exactly as for a call of its own, and a restarted call runs wherever
/// the task is by then. The origin ends a call so when the task asked it
/// to (a signal or a migration pending here), or when a signal for the
/// task interrupted the shadow, which has it queued here before it
/// answers (`migrate::serve`). With no signal pending here (one that the
/// task blocks, or none) the task is still made to go through the signal
/// code (`TIF_NOTIFY_SIGNAL`), which restarts the call: an `-ERESTART*`
/// value must never reach user space. `-ERESTART_RESTARTBLOCK` gives
/// `EINTR`: its restart block is the origin's.
fn restart_error(result: i64) -> Error {
    if result == ERESTART_RESTARTBLOCK {
        return EINTR;
    }
    let task = kernel::current!();
    if !task.signal_pending() {
        migration::interrupt(&task);
    }
    // `result` is in -516..=-512.
    Error::from_errno(result as i32)
}

/// A signal ended the wait for a call's reply. The call is not abandoned:
/// the origin interrupts it (or does not start it) and the answer to the
/// interruption is the call's own, so the shadow is free for the next call
/// (the signal handler's) and a result the call had is not lost.
fn interrupt(dist: &Dist, reply: &mut [u8]) -> Result<usize> {
    let mut intr = [0u8; SyscallIntr::LEN];
    SyscallIntr { task: dist.id }
        .encode(&mut intr)
        .map_err(|_| EINVAL)?;
    msg::request_nointr(
        u32::from(dist.id.origin.0),
        task_msg::MSG_SYSCALL_INTR,
        &intr,
        reply,
        crate::peer_timeout_ms(INTR_TIMEOUT_MS),
    )
    .map_err(|_| EINTR)
}

/// Reads the NUL-terminated path at `ptr` (without its NUL).
fn read_path(ptr: u64) -> Result<KVec<u8>> {
    let mut path = KVec::from_elem(0u8, PATH_MAX, GFP_KERNEL)?;
    let mut len = 0;
    // Read page by page up to the NUL: a page past the path may be unmapped.
    loop {
        if len >= PATH_MAX {
            return Err(cohort::errno::ENAMETOOLONG());
        }
        let at = ptr.checked_add(len as u64).ok_or(EFAULT)?;
        let chunk = (4096 - (at as usize & 4095)).min(PATH_MAX - len);
        UserSlice::new(at as usize, chunk)
            .reader()
            .read_slice(&mut path[len..len + chunk])?;
        if let Some(nul) = path[len..len + chunk].iter().position(|c| *c == 0) {
            len += nul;
            break;
        }
        len += chunk;
    }
    kvec::truncate(&mut path, len);
    Ok(path)
}

/// Whether `path` names the calling process itself in `/proc`, which
/// describes it where it runs, not its shadow at the origin.
fn is_proc_self(path: &[u8]) -> bool {
    [&b"/proc/self"[..], b"/proc/thread-self"].iter().any(|p| {
        path.strip_prefix(*p)
            .is_some_and(|rest| rest.is_empty() || rest[0] == b'/')
    })
}

/// `open(2)` at the origin; `Ok(None)` to run it here.
fn open(dist: &Dist, path_ptr: u64, flags: u64, mode: u64) -> Result<Option<i64>> {
    let path = read_path(path_ptr)?;
    if path.is_empty() {
        return Err(ENOENT);
    }
    if is_proc_self(&path) {
        return Ok(None);
    }
    let mut raw = [0u8; FileDesc::LEN];
    let (_, got) = call(
        dist,
        FwdCall::Open,
        AT_FDCWD,
        flags & 0xffff_ffff,
        mode & 0o7777,
        &path,
        &mut raw,
    )?;
    let desc = FileDesc::decode(raw.get(..got).ok_or_else(cohort::errno::EPROTO)?)
        .map_err(|_| cohort::errno::EPROTO())?;
    crate::files::install_opened(&desc).map(Some)
}

/// A path call (see `proto::pathcall`) run at the origin, relative to the
/// working directory there; `None` to run it here: a path relative to a
/// directory descriptor, an empty path (`AT_EMPTY_PATH`: the call is on
/// the descriptor, which is a proxy file or a file of this node), or no
/// path at all (`utimensat(fd, NULL, ...)`, which is `futimens`: the call
/// is on the descriptor too; any other call fails here with `EFAULT` as
/// it would anywhere).
fn path_call(dist: &Dist, nr: u32, shape: &[Arg; 6], args: &[u64; 6]) -> Option<Result<i64>> {
    let mut values = *args;
    let mut paths: [KVec<u8>; 6] = Default::default();
    let mut ins: [KVec<u8>; 6] = Default::default();
    let mut dirfd = AT_FDCWD as i64;
    for (i, arg) in shape.iter().enumerate() {
        match arg {
            Arg::Dirfd => {
                dirfd = args[i] as i32 as i64;
                values[i] = pathcall::AT_FDCWD as u64;
            }
            Arg::Path => {
                if args[i] == 0 {
                    return None;
                }
                let path = match read_path(args[i]) {
                    Ok(p) => p,
                    Err(e) => return Some(Err(e)),
                };
                if path.is_empty()
                    || is_proc_self(&path)
                    || (path[0] != b'/' && dirfd != i64::from(AT_FDCWD))
                {
                    return None;
                }
                // A later path has its own directory argument, or none.
                dirfd = AT_FDCWD as i64;
                paths[i] = path;
                values[i] = 0;
            }
            Arg::InOpt(n) if args[i] != 0 => {
                let mut input = match KVec::from_elem(0u8, usize::from(*n), GFP_KERNEL) {
                    Ok(v) => v,
                    Err(e) => return Some(Err(e.into())),
                };
                if let Err(e) = UserSlice::new(args[i] as usize, input.len())
                    .reader()
                    .read_slice(&mut input)
                {
                    return Some(Err(e));
                }
                ins[i] = input;
                values[i] = 1;
            }
            // Registers past a call's arguments hold anything.
            Arg::InOpt(_) | Arg::Out(_) | Arg::OutLen(_) | Arg::None => values[i] = 0,
            Arg::Value => {}
        }
    }
    // A link target or a working directory fits in PATH_MAX: a larger
    // buffer is used only up to that.
    for arg in shape.iter() {
        if let Arg::OutLen(j) = arg {
            let j = usize::from(*j);
            values[j] = values[j].min(pathcall::OUT_MAX as u64);
        }
    }
    Some((|| {
        let mut inputs: [&[u8]; 6] = [&[]; 6];
        for (i, input) in inputs.iter_mut().enumerate() {
            *input = if paths[i].is_empty() {
                &ins[i]
            } else {
                &paths[i]
            };
        }
        let request = PathCall { nr, values, inputs };
        request.validate().map_err(|_| EINVAL)?;
        let mut buf = KVVec::from_elem(0u8, request.encoded_len(), GFP_KERNEL)?;
        request.encode(&mut buf).map_err(|_| EINVAL)?;
        let mut out = KVVec::from_elem(0u8, pathcall::outs_len(shape, &values), GFP_KERNEL)?;
        let (result, got) = call(dist, FwdCall::Path, 0, 0, 0, &buf, &mut out)?;
        if got != out.len() {
            return Err(cohort::errno::EPROTO());
        }
        let mut at = 0;
        for i in 0..6 {
            if let Some(len) = pathcall::out_len(shape, &values, i) {
                UserSlice::new(args[i] as usize, len)
                    .writer()
                    .write_slice(&out[at..at + len])?;
                at += len;
            }
        }
        Ok(result)
    })())
}
