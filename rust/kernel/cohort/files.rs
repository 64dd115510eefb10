// SPDX-License-Identifier: GPL-2.0

//! Open files of distributed processes: references to files, the
//! descriptor table of the current task, proxy files and the files slot.
//!
//! A file stays on the node where it was opened (its home). Other nodes
//! use it through proxy files ([`proxy_new`]) whose operations the module
//! in the files slot ([`FileOps`]) sends to the home, where the file
//! server helpers of [`File`] run them without blocking.
//!
//! C header: [`include/linux/cohort.h`](srctree/include/linux/cohort.h),
//! implementation in `kernel/cohort/proxy.c`.

use super::Slot;
use crate::{bindings, error::to_result, prelude::*, str::CStr, types::Opaque};
use core::{ffi::c_void, marker::PhantomData, ptr::NonNull};

/// A file's attributes as `fstat(2)` reports them (see `struct
/// cohort_stat`).
pub type Stat = bindings::cohort_stat;
/// An `fchmod(2)`, `fchown(2)`, `futimens(2)` or `fcntl(F_SETFL)` of a
/// proxy ([`FileOps::setattr`], [`File::setattr`]): `change` is one of
/// [`SETATTR_MODE`], [`SETATTR_OWNER`], [`SETATTR_TIMES`],
/// [`SETATTR_FLAGS`].
pub type SetAttr = bindings::cohort_setattr;
/// One time of a [`SetAttr`]; `nsec` may be `UTIME_NOW` or `UTIME_OMIT`.
pub type FileTime = bindings::cohort_filetime;
/// [`SetAttr::change`]: `fchmod`.
pub const SETATTR_MODE: u32 = bindings::cohort_setattr_change_COHORT_SETATTR_MODE;
/// [`SetAttr::change`]: `fchown`.
pub const SETATTR_OWNER: u32 = bindings::cohort_setattr_change_COHORT_SETATTR_OWNER;
/// [`SetAttr::change`]: `futimens`.
pub const SETATTR_TIMES: u32 = bindings::cohort_setattr_change_COHORT_SETATTR_TIMES;
/// [`SetAttr::change`]: `fcntl(F_SETFL)`, the flags in `flags`.
pub const SETATTR_FLAGS: u32 = bindings::cohort_setattr_change_COHORT_SETATTR_FLAGS;

/// `O_APPEND`.
pub const O_APPEND: u32 = bindings::O_APPEND;
/// `O_NONBLOCK`.
pub const O_NONBLOCK: u32 = bindings::O_NONBLOCK;
/// `O_CLOEXEC`.
pub const O_CLOEXEC: u32 = bindings::O_CLOEXEC;
/// Most bytes a proxy moves in one request.
pub const MAX_DATA: usize = bindings::COHORT_FILE_MAX_DATA as usize;
/// Most bytes a forwarded ioctl reads or writes.
pub const IOCTL_MAX_DATA: usize = bindings::COHORT_IOCTL_MAX_DATA as usize;

/// Converts a C `ssize_t`-like result into a `Result`.
fn to_len(ret: isize) -> Result<usize> {
    if ret < 0 {
        Err(Error::from_errno(ret as i32))
    } else {
        Ok(ret as usize)
    }
}

/// A counted reference to an open file (`get_file`/`fput`).
///
/// # Invariants
///
/// The pointer is a live `struct file` on which this value owns one
/// reference.
pub struct File(NonNull<bindings::file>);

// SAFETY: A file reference may be used and dropped from any thread.
unsafe impl Send for File {}
// SAFETY: The methods taking `&self` are safe to call concurrently; the
// kernel serialises what needs it (the file position lock).
unsafe impl Sync for File {}

impl Clone for File {
    fn clone(&self) -> File {
        // SAFETY: By the type invariant the file is live.
        unsafe { bindings::cohort_file_get(self.0.as_ptr()) };
        File(self.0)
    }
}

impl Drop for File {
    fn drop(&mut self) {
        // SAFETY: By the type invariant this value owns a reference.
        unsafe { bindings::cohort_file_put(self.0.as_ptr()) };
    }
}

/// What a proxy of a file mirrors.
#[derive(Clone, Copy, Debug, Default)]
pub struct Info {
    /// Status flags (`O_*`).
    pub f_flags: u32,
    /// `FMODE_*` bits.
    pub f_mode: u32,
    /// The inode's mode.
    pub i_mode: u32,
}

impl File {
    /// Takes over a reference returned by C, or the error an `ERR_PTR`
    /// encodes.
    ///
    /// # Safety
    ///
    /// `ptr` is NULL, an `ERR_PTR`, or a file on which the caller owns a
    /// reference that passes to the result.
    pub(crate) unsafe fn from_raw(ptr: *mut bindings::file) -> Result<File> {
        let ptr = crate::error::from_err_ptr(ptr)?;
        NonNull::new(ptr).map(File).ok_or(ENOENT)
    }

    /// The raw pointer, for other abstractions; valid while `self` is.
    pub fn as_raw(&self) -> *mut bindings::file {
        self.0.as_ptr()
    }

    /// An identifier of the open file description, for comparisons while
    /// a reference is held.
    pub fn key(&self) -> usize {
        self.0.as_ptr() as usize
    }

    /// The home and export id of the file behind this one if it is a
    /// proxy file.
    pub fn proxy(&self) -> Option<(u32, u64)> {
        // SAFETY: By the type invariant the file is live.
        let p = unsafe { bindings::cohort_file_proxy(self.0.as_ptr()) };
        if p.is_null() {
            return None;
        }
        // SAFETY: A proxy lives as long as its file.
        Some(unsafe { (bindings::cohort_proxy_home(p), bindings::cohort_proxy_id(p)) })
    }

    /// For a proxy file: its release will not put back its reference at
    /// the home, and it fails from now on (a failed arrival whose sender
    /// takes the reference back). Does nothing to other files.
    pub fn disown_proxy(&self) {
        // SAFETY: By the type invariant the file is live.
        unsafe { bindings::cohort_proxy_disown(self.0.as_ptr()) }
    }

    /// What a proxy of this file mirrors.
    pub fn info(&self) -> Info {
        let mut info = Info::default();
        // SAFETY: The file is live and the outputs are writable.
        unsafe {
            bindings::cohort_file_info(
                self.0.as_ptr(),
                &mut info.f_flags,
                &mut info.f_mode,
                &mut info.i_mode,
            )
        };
        info
    }

    /// Reads into `buf` at `pos` (`None`: the file position) without
    /// blocking: `EAGAIN` when it would.
    pub fn read(&self, buf: &mut [u8], pos: Option<i64>) -> Result<usize> {
        // SAFETY: The file is live and `buf` is writable for its length.
        to_len(unsafe {
            bindings::cohort_file_read(
                self.0.as_ptr(),
                buf.as_mut_ptr().cast(),
                buf.len(),
                pos.unwrap_or(-1),
            )
        })
    }

    /// Writes `buf` at `pos` (`None`: the file position, or the end with
    /// [`O_APPEND`] in `flags`) without blocking: fewer bytes, or `EAGAIN`.
    pub fn write(&self, buf: &[u8], pos: Option<i64>, flags: u32) -> Result<usize> {
        // SAFETY: The file is live and `buf` is readable for its length.
        to_len(unsafe {
            bindings::cohort_file_write(
                self.0.as_ptr(),
                buf.as_ptr().cast(),
                buf.len(),
                pos.unwrap_or(-1),
                flags,
            )
        })
    }

    /// `lseek(2)`; returns the new position.
    pub fn llseek(&self, offset: i64, whence: i32) -> Result<i64> {
        // SAFETY: The file is live.
        let ret = unsafe { bindings::cohort_file_llseek(self.0.as_ptr(), offset, whence) };
        if ret < 0 {
            Err(Error::from_errno(ret as i32))
        } else {
            Ok(ret)
        }
    }

    /// `fstat(2)`.
    pub fn getattr(&self, st: &mut Stat) -> Result {
        // SAFETY: The file is live and `st` writable.
        to_result(unsafe { bindings::cohort_file_getattr(self.0.as_ptr(), st) })
    }

    /// `fsync(2)`, or `fdatasync(2)` with `datasync`.
    pub fn fsync(&self, datasync: bool) -> Result {
        // SAFETY: The file is live.
        to_result(unsafe { bindings::cohort_file_fsync(self.0.as_ptr(), i32::from(datasync)) })
    }

    /// Reads directory entries from the file's position into `buf`
    /// (`struct cohort_dirent`, packed; the last one, without a name,
    /// holds the position after the others), moving the position past
    /// them; returns the bytes written, 0 at the end.
    ///
    /// # Errors
    ///
    /// `ENOTDIR` for a file that is no directory, `EINVAL` when `buf` has
    /// no room for one entry, or the directory's own errors.
    pub fn readdir(&self, buf: &mut [u8]) -> Result<usize> {
        // SAFETY: The file is live and `buf` is writable for its length.
        to_len(unsafe {
            bindings::cohort_file_readdir(self.0.as_ptr(), buf.as_mut_ptr().cast(), buf.len())
        })
    }

    /// `ftruncate(2)` to `len` bytes, checked as ftruncate checks it.
    pub fn truncate(&self, len: i64) -> Result {
        // SAFETY: The file is live.
        to_result(unsafe { bindings::cohort_file_truncate(self.0.as_ptr(), len) })
    }

    /// `fchmod(2)`, `fchown(2)`, `futimens(2)` or `fcntl(F_SETFL)` as `sa`
    /// says, run with `creds` and the supplementary groups `groups` (of a
    /// task on another node) in place of the current task's, and checked
    /// with them.
    ///
    /// # Errors
    ///
    /// `EINVAL` for a mode beyond `0o7777`, an unknown change, ids that do
    /// not map or more than `NGROUPS_MAX` groups; `ENOMEM`; the call's own
    /// errors (`EPERM`, `EACCES`, `EROFS`...).
    pub fn setattr(
        &self,
        sa: &SetAttr,
        creds: &crate::cohort::migration::Creds,
        groups: &[u32],
    ) -> Result {
        let n = u32::try_from(groups.len()).map_err(|_| EINVAL)?;
        // SAFETY: The file is live; `sa`, `creds` and `groups` are valid
        // for reads for the call.
        to_result(unsafe {
            bindings::cohort_file_setattr(self.0.as_ptr(), sa, creds, groups.as_ptr(), n)
        })
    }

    /// Takes, drops or tests `lock` as this file's own (an OFD or
    /// `flock(2)` lock of this open file description) or as its owner's (a
    /// POSIX lock; only tested without one), without waiting; a test
    /// stores the conflicting lock in `lock`.
    ///
    /// # Errors
    ///
    /// `EAGAIN` when a conflicting lock is held, `EBADF` when the file's
    /// access mode does not allow the lock, `EINVAL` for a bad lock.
    pub fn lock(&self, lock: &mut Lock) -> Result {
        let mut raw = lock.to_raw();
        // SAFETY: The file is live and `raw` is a valid lock for the call;
        // its owner is only compared (`LockOwner`'s invariant).
        to_result(unsafe { bindings::cohort_file_lock(self.0.as_ptr(), &mut raw) })?;
        *lock = Lock::from_raw(&raw);
        Ok(())
    }

    /// Releases every POSIX record lock `owner` holds on this file, as the
    /// owner's `close(2)` of it would.
    pub fn unlock_owner(&self, owner: LockOwner) {
        // SAFETY: The file is live; the owner is only compared.
        unsafe { bindings::cohort_file_unlock_owner(self.0.as_ptr(), owner.0) }
    }

    /// `ioctl(2)` command `cmd` with `value` (a command without a buffer)
    /// or the bytes it reads (`input`) and writes (`output`, at most
    /// [`IOCTL_MAX_DATA`] each).
    pub fn ioctl(&self, cmd: u32, value: u64, input: &[u8], output: &mut [u8]) -> Result<i64> {
        // SAFETY: The file is live; the buffers are valid for their
        // lengths.
        let r = unsafe {
            bindings::cohort_file_ioctl(
                self.0.as_ptr(),
                cmd,
                value as _,
                input.as_ptr().cast(),
                input.len(),
                output.as_mut_ptr().cast(),
                output.len(),
            )
        };
        if r < 0 {
            Err(Error::from_errno(r as i32))
        } else {
            Ok(r as i64)
        }
    }

    /// The file's poll mask now (`EPOLL*`).
    pub fn poll_mask(&self) -> u32 {
        // SAFETY: The file is live.
        unsafe { bindings::cohort_file_poll_mask(self.0.as_ptr()) }
    }
}

/// Opens `path` (relative to the current task's working directory) with
/// `O_*` `flags`, creating it with `mode`.
pub fn open(path: &CStr, flags: i32, mode: u32) -> Result<File> {
    // SAFETY: `path` is NUL-terminated; the result is a new reference.
    unsafe {
        File::from_raw(bindings::cohort_file_open(
            path.as_char_ptr(),
            flags,
            mode as _,
        ))
    }
}

/// The next open descriptor of the current task at or above `*fd`: sets
/// `*fd` to it and returns its file and close-on-exec flag.
pub fn fd_next(fd: &mut u32) -> Option<(File, bool)> {
    let mut cloexec = false;
    // SAFETY: The outputs are writable; the result is a new reference or
    // NULL.
    let ptr = unsafe { bindings::cohort_fd_next(fd, &mut cloexec) };
    NonNull::new(ptr).map(|p| (File(p), cloexec))
}

/// Installs `file` at descriptor `fd` of the current task (closing what
/// was there); the table takes a reference of its own.
pub fn install_at(fd: u32, file: &File, cloexec: bool) -> Result {
    // SAFETY: The file is live; `replace_fd` takes its own reference.
    to_result(unsafe { bindings::cohort_fd_install_at(fd, file.0.as_ptr(), cloexec) })
}

/// Installs `file` at the lowest free descriptor; returns it.
pub fn install_new(file: File, cloexec: bool) -> Result<i32> {
    // SAFETY: The file is live; on success its reference passes to the
    // table.
    let fd = unsafe { bindings::cohort_fd_install_new(file.0.as_ptr(), cloexec) };
    if fd < 0 {
        return Err(Error::from_errno(fd));
    }
    core::mem::forget(file);
    Ok(fd)
}

/// Closes every descriptor of the current task (unsharing a shared table).
pub fn close_all() -> Result {
    // SAFETY: Acts on the current task only.
    to_result(unsafe { bindings::cohort_files_close_all() })
}

/// Empties the current task's descriptor table as [`close_all`] does, for
/// a task whose descriptors moved with it to another node: the table's
/// POSIX record locks stay (a shadow's table owns them, see
/// [`LockOwner`]), and proxies are not flushed (which would release the
/// task's locks at their homes).
pub fn leave_all() -> Result {
    // SAFETY: Acts on the current task only.
    to_result(unsafe { bindings::cohort_files_leave_all() })
}

/// A new proxy file for export `id` of node `home`, mirroring `info`.
pub fn proxy_new(home: u32, id: u64, info: &Info) -> Result<File> {
    // SAFETY: The result is a new reference or an `ERR_PTR`.
    unsafe {
        File::from_raw(bindings::cohort_proxy_new(
            home,
            id,
            info.f_flags,
            info.f_mode,
            info.i_mode,
        ))
    }
}

/// The home `home` reports that export `id`'s poll mask is `mask`: wakes
/// the waiters on its proxies here.
pub fn proxy_ready(home: u32, id: u64, mask: u32) {
    // SAFETY: Plain values.
    unsafe { bindings::cohort_proxy_ready(home, id, mask) }
}

/// Node `home` went down: its proxies here fail from now on.
pub fn proxy_node_down(home: u32) {
    // SAFETY: Plain values.
    unsafe { bindings::cohort_proxy_node_down(home) }
}

/// A proxy, as the files slot's operations see it.
///
/// # Invariants
///
/// Wraps a live `struct cohort_proxy`: the hub calls the slot's
/// operations only while the proxy's file is open.
#[repr(transparent)]
pub struct Proxy(Opaque<bindings::cohort_proxy>);

impl Proxy {
    /// The node holding the file.
    pub fn home(&self) -> u32 {
        // SAFETY: By the type invariant the proxy is live.
        unsafe { bindings::cohort_proxy_home(self.0.get()) }
    }

    /// The export id at the home.
    pub fn id(&self) -> u64 {
        // SAFETY: By the type invariant the proxy is live.
        unsafe { bindings::cohort_proxy_id(self.0.get()) }
    }

    /// Records the poll mask a reply from the home carried.
    pub fn set_mask(&self, mask: u32) {
        // SAFETY: The hub writes the mask with `WRITE_ONCE` only.
        unsafe { bindings::cohort_proxy_set_mask(self.0.get(), mask) }
    }
}

/// Follows the wait queues of a file; dropping it stops (waiting for a
/// [`FileOps::fired`] in flight).
///
/// # Invariants
///
/// Owns a watch from `cohort_watch_new`, whose file outlives it.
pub struct Watch {
    ptr: NonNull<bindings::cohort_watch>,
    _file: File,
}

// SAFETY: A watch may be freed from any thread.
unsafe impl Send for Watch {}
// SAFETY: A watch has no methods taking `&self`.
unsafe impl Sync for Watch {}

impl Watch {
    /// Follows `file`; [`FileOps::fired`] gets `cookie` on each wake-up.
    pub fn new(file: &File, cookie: u64) -> Result<Watch> {
        let file = file.clone();
        // SAFETY: The file is live, and kept open by the watch.
        let ptr = unsafe { bindings::cohort_watch_new(file.0.as_ptr(), cookie) };
        Ok(Watch {
            ptr: NonNull::new(ptr).ok_or(ENOMEM)?,
            _file: file,
        })
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        // SAFETY: By the type invariant the watch is ours and its file open.
        unsafe { bindings::cohort_watch_free(self.ptr.as_ptr()) };
    }
}

/// Which lock a [`Lock`] is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LockKind {
    /// An OFD record lock, of the open file description.
    #[default]
    Ofd,
    /// A `flock(2)` lock, of the open file description: bytes 0 to
    /// `i64::MAX`, never tested.
    Flock,
    /// A POSIX record lock of [`Lock::owner`]; without an owner, only
    /// tested, as the lock of an owner that holds none.
    Posix,
}

/// The owner of POSIX record locks at a home: the descriptor table of a
/// task (a distributed process's shadow there), from
/// `cohort_task_lock_owner()`.
///
/// # Invariants
///
/// An identity only: the kernel's lock code compares and hashes it and
/// nothing reads through the pointer, so it stays sound to hold after the
/// table is gone (its locks go with it: [`File::unlock_owner`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LockOwner(*const c_void);

// SAFETY: A `LockOwner` is never dereferenced (type invariant).
unsafe impl Send for LockOwner {}
// SAFETY: A `LockOwner` is never dereferenced (type invariant).
unsafe impl Sync for LockOwner {}

impl LockOwner {
    /// The owner of the POSIX locks of `task`'s process; `None` when it
    /// has no descriptor table (it is exiting).
    pub fn of(task: &crate::task::Task) -> Option<LockOwner> {
        // SAFETY: `task` is live for the call.
        let owner = unsafe { bindings::cohort_task_lock_owner(task.0.get()) };
        (!owner.is_null()).then_some(LockOwner(owner))
    }
}

/// A lock a proxy sends to its home (`struct cohort_lock`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Lock {
    /// Test for a conflicting lock (`F_GETLK`, `F_OFD_GETLK`) instead of
    /// taking it.
    pub test: bool,
    /// Which lock.
    pub kind: LockKind,
    /// `F_RDLCK` (0), `F_WRLCK` (1) or `F_UNLCK` (2); after a test, the
    /// conflicting lock's, `F_UNLCK` for none.
    pub ltype: u8,
    /// After a test: the conflicting lock is an OFD lock (else POSIX).
    pub conflict_ofd: bool,
    /// The pid the lock is recorded with; after a test, the conflicting
    /// lock's.
    pub pid: i32,
    /// First byte.
    pub start: i64,
    /// Last byte (`i64::MAX`: to the end of the file).
    pub end: i64,
    /// At the home, for a POSIX lock: whose it is.
    pub owner: Option<LockOwner>,
}

impl Lock {
    fn to_raw(self) -> bindings::cohort_lock {
        bindings::cohort_lock {
            cmd: if self.test {
                bindings::COHORT_LOCK_TEST as u8
            } else {
                bindings::COHORT_LOCK_SET as u8
            },
            kind: match self.kind {
                LockKind::Ofd => bindings::COHORT_LOCK_OFD as u8,
                LockKind::Flock => bindings::COHORT_LOCK_FLOCK as u8,
                LockKind::Posix => bindings::COHORT_LOCK_POSIX as u8,
            },
            type_: self.ltype,
            conflict_ofd: self.conflict_ofd,
            pid: self.pid,
            start: self.start,
            end: self.end,
            owner: self.owner.map_or(core::ptr::null(), |o| o.0),
        }
    }

    fn from_raw(raw: &bindings::cohort_lock) -> Lock {
        Lock {
            test: u32::from(raw.cmd) == bindings::COHORT_LOCK_TEST,
            kind: match u32::from(raw.kind) {
                bindings::COHORT_LOCK_FLOCK => LockKind::Flock,
                bindings::COHORT_LOCK_POSIX => LockKind::Posix,
                _ => LockKind::Ofd,
            },
            ltype: raw.type_,
            conflict_ofd: raw.conflict_ofd,
            pid: raw.pid,
            start: raw.start,
            end: raw.end,
            owner: (!raw.owner.is_null()).then_some(LockOwner(raw.owner)),
        }
    }
}

/// The operations of proxy files (see `struct cohort_file_ops`).
#[vtable]
pub trait FileOps {
    /// Reads into `buf` at `pos` (`None`: the file position); `EAGAIN`
    /// when the read would block. `flags` are the proxy's status flags.
    fn read(_p: &Proxy, _buf: &mut [u8], _pos: Option<i64>, _flags: u32) -> Result<usize> {
        crate::build_error(crate::error::VTABLE_DEFAULT_ERROR)
    }

    /// Writes `buf` at `pos`, likewise.
    fn write(_p: &Proxy, _buf: &[u8], _pos: Option<i64>, _flags: u32) -> Result<usize> {
        crate::build_error(crate::error::VTABLE_DEFAULT_ERROR)
    }

    /// `lseek(2)`.
    fn llseek(_p: &Proxy, _offset: i64, _whence: i32) -> Result<i64> {
        crate::build_error(crate::error::VTABLE_DEFAULT_ERROR)
    }

    /// `fstat(2)`.
    fn getattr(_p: &Proxy, _st: &mut Stat) -> Result {
        crate::build_error(crate::error::VTABLE_DEFAULT_ERROR)
    }

    /// `fsync(2)`.
    fn fsync(_p: &Proxy, _datasync: bool) -> Result {
        crate::build_error(crate::error::VTABLE_DEFAULT_ERROR)
    }

    /// `ioctl(2)`: `cmd` with `value`, or the bytes it reads (`input`)
    /// and writes (`output`).
    fn ioctl(_p: &Proxy, _cmd: u32, _value: u64, _input: &[u8], _output: &mut [u8]) -> Result<i64> {
        crate::build_error(crate::error::VTABLE_DEFAULT_ERROR)
    }

    /// Reads directory entries from the home's position into `buf`
    /// (see [`File::readdir`]); returns the bytes, 0 at the end.
    fn readdir(_p: &Proxy, _buf: &mut [u8]) -> Result<usize> {
        crate::build_error(crate::error::VTABLE_DEFAULT_ERROR)
    }

    /// `ftruncate(2)` to `len` bytes.
    fn truncate(_p: &Proxy, _len: i64) -> Result {
        crate::build_error(crate::error::VTABLE_DEFAULT_ERROR)
    }

    /// `fchmod(2)`, `fchown(2)`, `futimens(2)` or `fcntl(F_SETFL)` as `sa`
    /// says, by the current task: the home checks it with the task's
    /// credentials.
    fn setattr(_p: &Proxy, _sa: &SetAttr) -> Result {
        crate::build_error(crate::error::VTABLE_DEFAULT_ERROR)
    }

    /// Sends `lock` to the home, which takes, drops or tests it without
    /// waiting (`EAGAIN` when it is held elsewhere); a test's answer is
    /// stored in `lock`.
    fn lock(_p: &Proxy, _lock: &mut Lock) -> Result {
        crate::build_error(crate::error::VTABLE_DEFAULT_ERROR)
    }

    /// Has the home report changes of the poll mask; returns the mask now.
    fn arm(_p: &Proxy) -> Result<u32> {
        crate::build_error(crate::error::VTABLE_DEFAULT_ERROR)
    }

    /// The proxy's file is closed for good.
    fn release(_p: &Proxy) {
        crate::build_error(crate::error::VTABLE_DEFAULT_ERROR)
    }

    /// The wait queues of the file watched as `cookie` were woken.
    fn fired(_cookie: u64) {
        crate::build_error(crate::error::VTABLE_DEFAULT_ERROR)
    }
}

/// The files slot filled with `T`'s ops.
pub struct FilesSlot<T: FileOps>(PhantomData<T>);

fn ret_len(r: Result<usize>) -> isize {
    match r {
        Ok(n) => n as isize,
        Err(e) => e.to_errno() as isize,
    }
}

fn pos_of(pos: bindings::loff_t) -> Option<i64> {
    (pos >= 0).then_some(pos)
}

impl<T: FileOps> FilesSlot<T> {
    const TABLE: bindings::cohort_file_ops = bindings::cohort_file_ops {
        read: Some(Self::read),
        write: Some(Self::write),
        llseek: Some(Self::llseek),
        getattr: Some(Self::getattr),
        fsync: Some(Self::fsync),
        ioctl: Some(Self::ioctl),
        readdir: Some(Self::readdir),
        truncate: Some(Self::truncate),
        setattr: Some(Self::setattr),
        lock: Some(Self::lock),
        arm: Some(Self::arm),
        release: Some(Self::release),
        fired: Some(Self::fired),
    };

    /// # Safety
    ///
    /// `p` is a live proxy (see [`Proxy`]).
    unsafe fn proxy<'a>(p: *mut bindings::cohort_proxy) -> &'a Proxy {
        // SAFETY: `Proxy` is a transparent wrapper; the caller guarantees
        // liveness for the call.
        unsafe { &*p.cast::<Proxy>() }
    }

    /// # Safety
    ///
    /// Called by the hub with a live proxy and a buffer writable for `len`.
    unsafe extern "C" fn read(
        p: *mut bindings::cohort_proxy,
        buf: *mut c_void,
        len: usize,
        pos: bindings::loff_t,
        flags: crate::ffi::c_uint,
    ) -> isize {
        // SAFETY: Per this function's contract.
        let (p, buf) = unsafe {
            (
                Self::proxy(p),
                core::slice::from_raw_parts_mut(buf.cast::<u8>(), len),
            )
        };
        ret_len(T::read(p, buf, pos_of(pos), flags))
    }

    /// # Safety
    ///
    /// Called by the hub with a live proxy and a buffer readable for `len`.
    unsafe extern "C" fn write(
        p: *mut bindings::cohort_proxy,
        buf: *const c_void,
        len: usize,
        pos: bindings::loff_t,
        flags: crate::ffi::c_uint,
    ) -> isize {
        // SAFETY: Per this function's contract.
        let (p, buf) = unsafe {
            (
                Self::proxy(p),
                core::slice::from_raw_parts(buf.cast::<u8>(), len),
            )
        };
        ret_len(T::write(p, buf, pos_of(pos), flags))
    }

    /// # Safety
    ///
    /// Called by the hub with a live proxy.
    unsafe extern "C" fn llseek(
        p: *mut bindings::cohort_proxy,
        offset: bindings::loff_t,
        whence: crate::ffi::c_int,
    ) -> bindings::loff_t {
        // SAFETY: Per this function's contract.
        match T::llseek(unsafe { Self::proxy(p) }, offset, whence) {
            Ok(v) => v,
            Err(e) => bindings::loff_t::from(e.to_errno()),
        }
    }

    /// # Safety
    ///
    /// Called by the hub with a live proxy and a writable `st`.
    unsafe extern "C" fn getattr(
        p: *mut bindings::cohort_proxy,
        st: *mut bindings::cohort_stat,
    ) -> crate::ffi::c_int {
        // SAFETY: Per this function's contract.
        match T::getattr(unsafe { Self::proxy(p) }, unsafe { &mut *st }) {
            Ok(()) => 0,
            Err(e) => e.to_errno(),
        }
    }

    /// # Safety
    ///
    /// Called by the hub with a live proxy.
    unsafe extern "C" fn fsync(
        p: *mut bindings::cohort_proxy,
        datasync: crate::ffi::c_int,
    ) -> crate::ffi::c_int {
        // SAFETY: Per this function's contract.
        match T::fsync(unsafe { Self::proxy(p) }, datasync != 0) {
            Ok(()) => 0,
            Err(e) => e.to_errno(),
        }
    }

    /// # Safety
    ///
    /// Called by the hub with a live proxy, `input` readable for `in_len`
    /// bytes and `output` writable for `out_len` (either may be dangling
    /// when its length is 0).
    unsafe extern "C" fn ioctl(
        p: *mut bindings::cohort_proxy,
        cmd: crate::ffi::c_uint,
        value: crate::ffi::c_ulong,
        input: *const c_void,
        in_len: usize,
        output: *mut c_void,
        out_len: usize,
    ) -> crate::ffi::c_long {
        let input: &[u8] = if in_len == 0 {
            &[]
        } else {
            // SAFETY: Per this function's contract.
            unsafe { core::slice::from_raw_parts(input.cast(), in_len) }
        };
        let output: &mut [u8] = if out_len == 0 {
            &mut []
        } else {
            // SAFETY: Per this function's contract.
            unsafe { core::slice::from_raw_parts_mut(output.cast(), out_len) }
        };
        // SAFETY: Per this function's contract.
        match T::ioctl(unsafe { Self::proxy(p) }, cmd, value as u64, input, output) {
            Ok(v) => v as crate::ffi::c_long,
            Err(e) => e.to_errno() as crate::ffi::c_long,
        }
    }

    /// # Safety
    ///
    /// Called by the hub with a live proxy and a buffer writable for `len`.
    unsafe extern "C" fn readdir(
        p: *mut bindings::cohort_proxy,
        buf: *mut c_void,
        len: usize,
    ) -> isize {
        // SAFETY: Per this function's contract.
        let buf = unsafe { core::slice::from_raw_parts_mut(buf.cast::<u8>(), len) };
        // SAFETY: Per this function's contract.
        ret_len(T::readdir(unsafe { Self::proxy(p) }, buf))
    }

    /// # Safety
    ///
    /// Called by the hub with a live proxy.
    unsafe extern "C" fn truncate(
        p: *mut bindings::cohort_proxy,
        len: bindings::loff_t,
    ) -> crate::ffi::c_int {
        // SAFETY: Per this function's contract.
        match T::truncate(unsafe { Self::proxy(p) }, len) {
            Ok(()) => 0,
            Err(e) => e.to_errno(),
        }
    }

    /// # Safety
    ///
    /// Called by the hub with a live proxy and a valid change.
    unsafe extern "C" fn setattr(
        p: *mut bindings::cohort_proxy,
        sa: *const bindings::cohort_setattr,
    ) -> crate::ffi::c_int {
        // SAFETY: Per this function's contract `sa` is valid for the call.
        let sa = unsafe { &*sa };
        // SAFETY: Per this function's contract.
        match T::setattr(unsafe { Self::proxy(p) }, sa) {
            Ok(()) => 0,
            Err(e) => e.to_errno(),
        }
    }

    /// # Safety
    ///
    /// Called by the hub with a live proxy and a valid lock.
    unsafe extern "C" fn lock(
        p: *mut bindings::cohort_proxy,
        lk: *mut bindings::cohort_lock,
    ) -> crate::ffi::c_int {
        // SAFETY: Per this function's contract `lk` is valid, and only this
        // call uses it.
        let raw = unsafe { &mut *lk };
        let mut lock = Lock::from_raw(raw);
        // SAFETY: Per this function's contract.
        match T::lock(unsafe { Self::proxy(p) }, &mut lock) {
            Ok(()) => {
                *raw = lock.to_raw();
                0
            }
            Err(e) => e.to_errno(),
        }
    }

    /// # Safety
    ///
    /// Called by the hub with a live proxy.
    unsafe extern "C" fn arm(p: *mut bindings::cohort_proxy) -> crate::ffi::c_int {
        // SAFETY: Per this function's contract.
        match T::arm(unsafe { Self::proxy(p) }) {
            Ok(mask) => (mask & 0x7fff_ffff) as crate::ffi::c_int,
            Err(e) => e.to_errno(),
        }
    }

    /// # Safety
    ///
    /// Called by the hub with a live proxy.
    unsafe extern "C" fn release(p: *mut bindings::cohort_proxy) {
        // SAFETY: Per this function's contract.
        T::release(unsafe { Self::proxy(p) })
    }

    extern "C" fn fired(cookie: u64) {
        T::fired(cookie)
    }
}

impl<T: FileOps> Slot for FilesSlot<T> {
    const SLOT: bindings::cohort_slot = bindings::cohort_slot_COHORT_SLOT_FILES;

    fn table() -> *const c_void {
        let table: &'static bindings::cohort_file_ops = &Self::TABLE;
        (table as *const bindings::cohort_file_ops).cast()
    }
}
