// SPDX-License-Identifier: GPL-2.0

//! System calls of a migrated task that its origin serves: the file
//! descriptors stay there, with the shadow. `read`, `write`, `pread64`,
//! `pwrite64`, `close`, `lseek`, `fstat` (and `newfstatat` on an empty
//! path), `open` and `openat` (relative to the origin's working directory)
//! are forwarded; `getpid`, `gettid` and `getppid` answer with the
//! identity the task has at its origin. Everything else runs where the task
//! is; calls on descriptors it does not forward fail there with `EBADF`.

use crate::dist::{current_running, Dist};
use crate::proto::task_msg::{self, FwdCall, SyscallIntr, SyscallMsg, SyscallReply, FWD_MAX_DATA};
use crate::proto::wire::Payload;
use crate::STATE;
use kernel::cohort::{self, migration, msg, vec as kvec};
use kernel::prelude::*;
use kernel::uaccess::UserSlice;

const SYS_READ: i64 = 0;
const SYS_WRITE: i64 = 1;
const SYS_OPEN: i64 = 2;
const SYS_CLOSE: i64 = 3;
const SYS_FSTAT: i64 = 5;
const SYS_LSEEK: i64 = 8;
const SYS_PREAD64: i64 = 17;
const SYS_PWRITE64: i64 = 18;
const SYS_GETPID: i64 = 39;
const SYS_GETPPID: i64 = 110;
const SYS_GETTID: i64 = 186;
const SYS_OPENAT: i64 = 257;
const SYS_NEWFSTATAT: i64 = 262;
const AT_FDCWD: i32 = -100;
const AT_EMPTY_PATH: u64 = 0x1000;
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
        SYS_READ => read(&dist, fd, args[1], args[2], None),
        SYS_PREAD64 => read(&dist, fd, args[1], args[2], Some(args[3])),
        SYS_WRITE => write(&dist, fd, args[1], args[2], None),
        SYS_PWRITE64 => write(&dist, fd, args[1], args[2], Some(args[3])),
        SYS_CLOSE => call(&dist, FwdCall::Close, fd, 0, 0, &[], &mut []).map(|(r, _)| r),
        SYS_LSEEK => {
            call(&dist, FwdCall::Lseek, fd, args[1], args[2], &[], &mut []).map(|(r, _)| r)
        }
        SYS_FSTAT => fstat(&dist, fd, args[1]),
        SYS_NEWFSTATAT => {
            if args[3] & AT_EMPTY_PATH == 0 || !empty_path(args[1]) {
                return None;
            }
            fstat(&dist, fd, args[2])
        }
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

fn empty_path(ptr: u64) -> bool {
    let mut byte = [0u8; 1];
    UserSlice::new(ptr as usize, 1)
        .reader()
        .read_slice(&mut byte)
        .is_ok_and(|_| byte[0] == 0)
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

fn read(dist: &Dist, fd: i32, ptr: u64, len: u64, pos: Option<u64>) -> Result<i64> {
    if pos.is_some_and(|p| p > i64::MAX as u64) {
        return Err(EINVAL);
    }
    let len = (len as usize).min(FWD_MAX_DATA);
    let mut out = KVVec::from_elem(0u8, len, GFP_KERNEL)?;
    let (call_kind, b) = match pos {
        Some(p) => (FwdCall::Pread, p),
        None => (FwdCall::Read, 0),
    };
    let (result, got) = call(dist, call_kind, fd, len as u64, b, &[], &mut out)?;
    UserSlice::new(ptr as usize, got)
        .writer()
        .write_slice(&out[..got])?;
    Ok(result)
}

fn write(dist: &Dist, fd: i32, ptr: u64, len: u64, pos: Option<u64>) -> Result<i64> {
    if pos.is_some_and(|p| p > i64::MAX as u64) {
        return Err(EINVAL);
    }
    let mut total: u64 = 0;
    let mut data = KVVec::new();
    while total < len {
        let chunk = ((len - total) as usize).min(FWD_MAX_DATA);
        kvec::clear(&mut data);
        data.extend_with(chunk, 0, GFP_KERNEL)?;
        let copied = UserSlice::new((ptr + total) as usize, chunk)
            .reader()
            .read_slice(&mut data);
        if let Err(e) = copied {
            return if total > 0 { Ok(total as i64) } else { Err(e) };
        }
        let (call_kind, b) = match pos {
            Some(p) => (FwdCall::Pwrite, p + total),
            None => (FwdCall::Write, 0),
        };
        let written = match call(dist, call_kind, fd, 0, b, &data, &mut []) {
            Ok((n, _)) => n as u64,
            Err(e) if total == 0 => return Err(e),
            Err(_) => break,
        };
        total += written;
        if written < chunk as u64 {
            break;
        }
    }
    Ok(total as i64)
}

fn fstat(dist: &Dist, fd: i32, ptr: u64) -> Result<i64> {
    let mut st = [0u8; migration::STAT_SIZE];
    let (result, got) = call(dist, FwdCall::Fstat, fd, 0, 0, &[], &mut st)?;
    if got != st.len() {
        return Err(EIO);
    }
    UserSlice::new(ptr as usize, st.len())
        .writer()
        .write_slice(&st)?;
    Ok(result)
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
    let (fd, _) = call(
        dist,
        FwdCall::Open,
        AT_FDCWD,
        flags & 0xffff_ffff,
        mode & 0o7777,
        &path[..len],
        &mut [],
    )?;
    Ok(fd)
}
