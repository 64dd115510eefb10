// SPDX-License-Identifier: GPL-2.0

//! System calls of a migrated task that its origin serves. Its descriptors
//! are proxy files in its own table (see `files`), so calls on them run
//! here; `open` and `openat` relative to the working directory are
//! forwarded to the shadow at the origin, which opens the file there and
//! exports it, and the file is installed here as a proxy. `getpid`,
//! `gettid` and `getppid` answer with the identity the task has at its
//! origin. Everything else runs where the task is.

use crate::dist::{current_running, Dist};
use crate::proto::files::FileDesc;
use crate::proto::task_msg::{self, FwdCall, SyscallIntr, SyscallMsg, SyscallReply, FWD_MAX_DATA};
use crate::proto::wire::Payload;
use crate::STATE;
use kernel::cohort::{self, msg};
use kernel::prelude::*;
use kernel::uaccess::UserSlice;

const SYS_OPEN: i64 = 2;
const SYS_GETPID: i64 = 39;
const SYS_GETPPID: i64 = 110;
const SYS_GETTID: i64 = 186;
const SYS_OPENAT: i64 = 257;
const AT_FDCWD: i32 = -100;
/// Longest path `open` forwards, with its NUL.
const PATH_MAX: usize = 4096;
/// Highest `-ERESTART*` value.
const ERESTART_MIN: i64 = -516;
const ERESTART_MAX: i64 = -512;
/// How long a forwarded call may take at the origin (it may block).
const SYSCALL_TIMEOUT_MS: u32 = u32::MAX / 2;
/// How long an interrupted call may take to end at the origin.
const INTR_TIMEOUT_MS: u32 = 10_000;

/// Serves system call `nr` of the current task if it is forwarded.
pub(crate) fn syscall(nr: i64, args: &[u64; 6]) -> Option<i64> {
    let reg = STATE.get()?;
    let dist = current_running(&reg)?;
    if dist.at_origin() {
        return None;
    }
    let fd = args[0] as i32;
    let result = match nr {
        SYS_GETPID => Ok(i64::from(dist.tgid)),
        SYS_GETTID => Ok(i64::from(dist.id.pid)),
        SYS_GETPPID => Ok(i64::from(dist.parent_pid)),
        SYS_OPEN => open(&dist, args[0], args[1], args[2]),
        SYS_OPENAT => {
            if fd != AT_FDCWD {
                return None;
            }
            open(&dist, args[1], args[2], args[3])
        }
        _ => return None,
    };
    Some(match result {
        Ok(value) => value,
        Err(e) => i64::from(e.to_errno()),
    })
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
    let answer = SyscallReply::decode(reply.get(..n).ok_or(EINVAL)?).map_err(|_| EINVAL)?;
    if (ERESTART_MIN..=ERESTART_MAX).contains(&answer.result) {
        // The origin was interrupted by a signal that is forwarded on its
        // own: this side cannot restart the call.
        return Err(EINTR);
    }
    if answer.result < 0 {
        return Err(Error::from_errno(answer.result as i32));
    }
    let len = answer.data.len().min(out.len());
    out[..len].copy_from_slice(&answer.data[..len]);
    Ok((answer.result, len))
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
        INTR_TIMEOUT_MS,
    )
    .map_err(|_| EINTR)
}

fn open(dist: &Dist, path_ptr: u64, flags: u64, mode: u64) -> Result<i64> {
    let mut path = KVec::from_elem(0u8, PATH_MAX, GFP_KERNEL)?;
    let mut len = 0;
    // Read page by page up to the NUL: a page past the path may be unmapped.
    loop {
        if len >= PATH_MAX {
            return Err(cohort::errno::ENAMETOOLONG());
        }
        let at = path_ptr.checked_add(len as u64).ok_or(EFAULT)?;
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
    if len == 0 {
        return Err(ENOENT);
    }
    let mut raw = [0u8; FileDesc::LEN];
    let (_, got) = call(
        dist,
        FwdCall::Open,
        AT_FDCWD,
        flags & 0xffff_ffff,
        mode & 0o7777,
        &path[..len],
        &mut raw,
    )?;
    let desc = FileDesc::decode(raw.get(..got).ok_or_else(cohort::errno::EPROTO)?)
        .map_err(|_| cohort::errno::EPROTO())?;
    crate::files::install_opened(&desc)
}
