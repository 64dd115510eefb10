// SPDX-License-Identifier: GPL-2.0
//! Forwarded files: the open files of a distributed process, served by the
//! node that holds them (their *home*) to proxy files on other nodes.
//!
//! This is Kerrighed's file access forwarding, at the level of the open
//! file description. When a task leaves a node, every file in its
//! descriptor table is *exported* by that node: the node keeps a reference
//! to the file under an export id, and the task's table there is emptied.
//! The destination installs, at the same descriptor numbers and with the
//! same close-on-exec flags, a *proxy file* per exported file (one per
//! file, however many descriptors share it), whose operations are
//! requests to the home ([`MSG_FILE_REQ`]): read, write, seek, stat, poll,
//! fsync. A file whose home is the destination itself is not proxied: the
//! task gets the very file back. So `dup`, `fcntl`, `close_range`,
//! close-on-exec, inheritance by children and `exec` are the destination
//! kernel's own, and files opened after the move are ordinary local files.
//!
//! The file position and the status flags that the kernel keeps per open
//! file description live at the home, in the exported file, shared with
//! every other holder of the description (a child left at the origin, a
//! proxy on a third node). The proxy's own status flags (`O_APPEND`,
//! `O_NONBLOCK`, as `F_GETFL`/`F_SETFL` see them) start as the home's and
//! travel with each request.
//!
//! A home never blocks for a proxy: a read or write that would wait
//! answers `EAGAIN` with the file's poll mask, and the proxy waits on its
//! own node, interruptibly, for a [`MSG_FILE_READY`] that the home sends
//! when the file's wait queues fire after the proxy armed them
//! ([`FileOp::Poll`]). Signals, `SA_RESTART` and time-outs are therefore
//! the waiting node's own.
//!
//! # References
//!
//! A home keeps an export while any node holds it. [`Holds`] counts, per
//! node, the proxy files that node has on an export, plus references
//! granted to a node by a migration on its way there:
//!
//! - the node a task leaves grants its destination one hold per file it
//!   exports itself ([`Holds::grant`]);
//! - a destination that receives a file homed on a third node asks that
//!   home for a hold ([`MSG_FILE_HOLD`]) before answering the migration,
//!   while the node the task left still holds its own, so the export
//!   cannot go away in between;
//! - a proxy file that is released sends [`MSG_FILE_PUT`];
//! - a node that goes down loses its holds ([`Holds::node_down`]).
//!
//! The destination owns every hold of a migration it decoded: if the
//! arrival fails, it puts them back itself. The sender takes its grants
//! back only when the message was never delivered.

use super::migration::TaskId;
use super::node::{NodeId, MAX_NODES};
use super::task_msg::{groups_in, Creds, MAX_GROUPS};
use super::wire::{Payload, Reader, WireError, Writer, MAX_ERRNO};

/// Request [`FileReq`]: an operation on an exported file, to its home; the
/// reply is a [`FileReply`].
pub const MSG_FILE_REQ: u16 = 0x130;
/// One-way [`FilePut`], to a file's home: the sender dropped holds.
pub const MSG_FILE_PUT: u16 = 0x131;
/// One-way [`FileReady`], from a file's home to a node that armed it: the
/// file's poll mask changed.
pub const MSG_FILE_READY: u16 = 0x132;
/// Request [`FilePut`] (`count` holds wanted), to a file's home: the sender
/// received the file from another node and takes holds of its own. The
/// reply is empty, or `ENOENT` when the export is gone.
pub const MSG_FILE_HOLD: u16 = 0x133;

/// Most bytes one [`FileReq`] reads or writes.
pub const FILE_MAX_DATA: usize = 1 << 20;
/// Most files a task's table may carry in one migration.
pub const MAX_FILES: usize = 65536;
/// `pos` of a read or write that uses (and moves) the file position.
pub const POS_CURRENT: u64 = u64::MAX;

/// `Ok` if `ok`, else [`WireError::BadPayload`].
fn check(ok: bool) -> Result<(), WireError> {
    if ok {
        Ok(())
    } else {
        Err(WireError::BadPayload)
    }
}

fn write_node(w: &mut Writer<'_>, node: NodeId) -> Result<(), WireError> {
    check(node.is_valid())?;
    w.u16(u16::from(node.0))
}

fn read_node(r: &mut Reader<'_>) -> Result<NodeId, WireError> {
    match u8::try_from(r.u16()?) {
        Ok(id) if usize::from(id) < MAX_NODES => Ok(NodeId(id)),
        _ => Err(WireError::BadPayload),
    }
}

/// One descriptor of a migrating task, or a file opened for it at its
/// origin. Layout `fd u32, cloexec u8, home u16, id u64, f_flags u32,
/// f_mode u32, i_mode u32` (27 bytes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileDesc {
    /// The descriptor number in the task's table.
    pub fd: u32,
    /// `FD_CLOEXEC` is set on the descriptor.
    pub cloexec: bool,
    /// The node holding the file.
    pub home: NodeId,
    /// The export id there, not 0.
    pub id: u64,
    /// The open file's status flags (`O_*`) at the home.
    pub f_flags: u32,
    /// The open file's `FMODE_*` bits that a proxy mirrors (read, write,
    /// seek, pread, pwrite).
    pub f_mode: u32,
    /// The file's type and permission bits (`S_IF*`, `st_mode`).
    pub i_mode: u32,
}

impl Payload for FileDesc {
    const LEN: usize = 27;

    fn write(&self, w: &mut Writer<'_>) -> Result<(), WireError> {
        check(self.id != 0)?;
        w.u32(self.fd)?;
        w.u8(u8::from(self.cloexec))?;
        write_node(w, self.home)?;
        w.u64(self.id)?;
        w.u32(self.f_flags)?;
        w.u32(self.f_mode)?;
        w.u32(self.i_mode)
    }

    fn read(r: &mut Reader<'_>) -> Result<Self, WireError> {
        let fd = r.u32()?;
        let cloexec = match r.u8()? {
            0 => false,
            1 => true,
            _ => return Err(WireError::BadPayload),
        };
        let home = read_node(r)?;
        let id = r.u64()?;
        check(id != 0)?;
        Ok(FileDesc {
            fd,
            cloexec,
            home,
            id,
            f_flags: r.u32()?,
            f_mode: r.u32()?,
            i_mode: r.u32()?,
        })
    }
}

/// Bytes [`encode_files`] writes for `n` files.
pub const fn files_len(n: usize) -> usize {
    4 + n * FileDesc::LEN
}

/// Encodes a descriptor table: `nr u32`, then the [`FileDesc`]s in
/// strictly increasing descriptor order, at most [`MAX_FILES`]. Returns the
/// bytes written.
pub fn encode_files(w: &mut Writer<'_>, files: &[FileDesc]) -> Result<(), WireError> {
    check(files.len() <= MAX_FILES)?;
    check(files.windows(2).all(|p| p[0].fd < p[1].fd))?;
    w.u32(u32::try_from(files.len()).map_err(|_| WireError::BadPayload)?)?;
    for f in files {
        f.write(w)?;
    }
    Ok(())
}

/// Reads what [`encode_files`] wrote, with the same checks; returns the raw
/// bytes of the entries and their number, for [`FileIter`].
pub fn decode_files<'a>(r: &mut Reader<'a>) -> Result<(&'a [u8], usize), WireError> {
    let n = usize::try_from(r.u32()?).map_err(|_| WireError::BadPayload)?;
    check(n <= MAX_FILES)?;
    let mut walk = r.clone();
    let mut prev: Option<u32> = None;
    for _ in 0..n {
        let f = FileDesc::read(&mut walk)?;
        check(prev.is_none_or(|p| p < f.fd))?;
        prev = Some(f.fd);
    }
    let raw = r.bytes(n * FileDesc::LEN)?;
    Ok((raw, n))
}

/// Iterator over the [`FileDesc`]s [`decode_files`] validated.
#[derive(Clone, Debug)]
pub struct FileIter<'a> {
    r: Reader<'a>,
    left: usize,
}

impl<'a> FileIter<'a> {
    /// Iterates over `n` entries in `raw`, as [`decode_files`] returned.
    pub fn new(raw: &'a [u8], n: usize) -> FileIter<'a> {
        FileIter {
            r: Reader::new(raw),
            left: n,
        }
    }
}

impl Iterator for FileIter<'_> {
    type Item = FileDesc;

    fn next(&mut self) -> Option<FileDesc> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        FileDesc::read(&mut self.r).ok()
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }
}

/// What a [`FileReq`] asks of the home.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileOp {
    /// Read `a` bytes (at most [`FILE_MAX_DATA`]) at offset `b`, or at the
    /// file position if `b` is [`POS_CURRENT`]; never blocks (`EAGAIN`).
    Read,
    /// Write `data` at offset `b`, or at the file position if `b` is
    /// [`POS_CURRENT`] (at the end with `O_APPEND` in `flags`); never
    /// blocks (`EAGAIN`, or fewer bytes).
    Write,
    /// `lseek(a as i64, whence b)`.
    Seek,
    /// The file's attributes: the reply's data is a [`FileStat`].
    Stat,
    /// `fsync` (`a` = 1 for `fdatasync`).
    Fsync,
    /// Arm: send [`MSG_FILE_READY`] to the sender when the file's wait
    /// queues fire; the reply's mask is the current one.
    Poll,
    /// `ioctl(fd, a, b)`: `a` is the command (a `u32`); `data` what it
    /// reads, or `b` its argument's value when it takes no buffer; `flags`
    /// the size of what it writes (at most [`IOCTL_MAX_DATA`]), which the
    /// reply's data carry.
    Ioctl,
    /// Read directory entries from the file position, at most `a` bytes
    /// of them (at most [`FILE_MAX_DATA`]): the reply's data are the
    /// hub's `struct cohort_dirent` records, which only the hub reads.
    Readdir,
    /// `ftruncate` to `a` bytes (at most `i64::MAX`).
    Truncate,
    /// Take, drop or test a lock: an OFD record lock of the file's open
    /// file description or a POSIX record lock of a distributed process,
    /// on bytes `a` to `b` (inclusive; `b` = [`LOCK_TO_END`] runs to the
    /// end of the file whatever its size), or a `flock(2)` lock of the
    /// description (`a` = 0, `b` = [`LOCK_TO_END`]). `flags` are a
    /// [`LockSpec`] ([`LockSpec::flags`]); `data` a [`LockData`]. Never
    /// blocks: `EAGAIN` when another holds a conflicting lock; `ENOLCK`
    /// for a POSIX lock of a process that has no shadow at the home. A
    /// test's reply data are a [`LockConflict`].
    Lock,
    /// Change the file's mode, owner, times or status flags as `fchmod`,
    /// `fchown`, `futimens` or `fcntl(F_SETFL)` would, checked at the home
    /// with the caller's credentials: `data` is a [`SetAttr`]; `a`, `b`
    /// and `flags` are 0.
    SetAttr,
}

/// `UTIME_NOW`: a [`FileTime`] that means the current time.
pub const UTIME_NOW: u32 = (1 << 30) - 1;
/// `UTIME_OMIT`: a [`FileTime`] that leaves the time as it is.
pub const UTIME_OMIT: u32 = (1 << 30) - 2;

/// One time of a `futimens`, as `struct timespec` gives it: `nsec` below
/// 10^9, or [`UTIME_NOW`] or [`UTIME_OMIT`] (then `sec` is 0).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FileTime {
    /// Seconds since the epoch.
    pub sec: i64,
    /// Nanoseconds, or `UTIME_NOW` or `UTIME_OMIT`.
    pub nsec: u32,
}

impl FileTime {
    fn valid(&self) -> bool {
        self.nsec < 1_000_000_000
            || ((self.nsec == UTIME_NOW || self.nsec == UTIME_OMIT) && self.sec == 0)
    }
}

/// What a [`FileOp::SetAttr`] changes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttrChange {
    /// `fchmod`: the permission bits, at most `0o7777`.
    Mode(u32),
    /// `fchown`: owner and group in the initial user namespace;
    /// `u32::MAX` (-1) leaves one as it is.
    Owner {
        /// The new owner.
        uid: u32,
        /// The new group.
        gid: u32,
    },
    /// `futimens`: `None` for `times == NULL` (both now, which the owner
    /// or anyone who may write the file may ask), else the access and
    /// the modification time.
    Times(Option<[FileTime; 2]>),
    /// `fcntl(F_SETFL)`: the open file description's status flags, only
    /// [`SETFL_FLAGS`] (the others stay the proxy's or are not status
    /// flags).
    Flags(u32),
}

/// The status flags a [`AttrChange::Flags`] sets at the home: `O_APPEND`,
/// `O_NONBLOCK`, `O_DIRECT` and `O_NOATIME` (Linux's generic values, which
/// x86 uses). `O_ASYNC` is not among them: a home's file would signal its
/// own owner.
pub const SETFL_FLAGS: u32 = 0o2000 | 0o4000 | 0o40000 | 0o1000000;

/// The data of a [`FileOp::SetAttr`]: the change and who asks for it,
/// as the proxy's node encodes it ([`SetAttrMsg`] is what the home
/// decodes). Layout: `kind u8` (1 mode, 2 owner, 3 times now, 4 times,
/// 5 status flags), `a u32` (the mode, the uid or the flags), `b u32` (the
/// gid), `atime_sec i64`, `atime_nsec u32`, `mtime_sec i64`, `mtime_nsec
/// u32`, then the caller's credentials ([`Creds`], 80 bytes), `ngroups
/// u32` and its supplementary groups (`u32` each, at most [`MAX_GROUPS`]).
/// Fields a change does not use are 0.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SetAttr<'a> {
    /// The change.
    pub change: AttrChange,
    /// The caller's credentials (the home checks with them).
    pub creds: Creds,
    /// The caller's supplementary groups, at most [`MAX_GROUPS`].
    pub groups: &'a [u32],
}

/// Bytes of a [`SetAttr`] before the credentials.
const SETATTR_HEAD_LEN: usize = 1 + 4 + 4 + 8 + 4 + 8 + 4;

/// Bytes of a [`SetAttr`] with `nr_groups` groups (saturating).
const fn setattr_len(nr_groups: usize) -> usize {
    (SETATTR_HEAD_LEN + Creds::LEN + 4).saturating_add(nr_groups.saturating_mul(4))
}

// Any valid [`SetAttr`] fits in a [`FileReq`].
const _: () = assert!(setattr_len(MAX_GROUPS) <= FILE_MAX_DATA);

/// Checks a change's fields.
fn change_valid(change: &AttrChange) -> bool {
    match change {
        AttrChange::Mode(mode) => *mode <= 0o7777,
        AttrChange::Owner { .. } => true,
        AttrChange::Times(None) => true,
        AttrChange::Times(Some([a, m])) => a.valid() && m.valid(),
        AttrChange::Flags(flags) => flags & !SETFL_FLAGS == 0,
    }
}

impl SetAttr<'_> {
    /// Bytes [`SetAttr::encode`] writes (saturating).
    pub fn encoded_len(&self) -> usize {
        setattr_len(self.groups.len())
    }

    /// Checks the fields: the credentials, the change and the number of
    /// groups.
    pub fn validate(&self) -> Result<(), WireError> {
        self.creds.validate()?;
        check(self.groups.len() <= MAX_GROUPS && change_valid(&self.change))
    }

    /// Encodes into the start of `out`; returns the bytes written.
    pub fn encode(&self, out: &mut [u8]) -> Result<usize, WireError> {
        self.validate()?;
        let (kind, a, b, times) = match self.change {
            AttrChange::Mode(mode) => (1, mode, 0, [FileTime::default(); 2]),
            AttrChange::Owner { uid, gid } => (2, uid, gid, [FileTime::default(); 2]),
            AttrChange::Times(None) => (3, 0, 0, [FileTime::default(); 2]),
            AttrChange::Times(Some(t)) => (4, 0, 0, t),
            AttrChange::Flags(flags) => (5, flags, 0, [FileTime::default(); 2]),
        };
        let mut w = Writer::new(out);
        w.u8(kind)?;
        w.u32(a)?;
        w.u32(b)?;
        for t in times {
            w.u64(t.sec as u64)?;
            w.u32(t.nsec)?;
        }
        self.creds.write(&mut w)?;
        w.u32(u32::try_from(self.groups.len()).map_err(|_| WireError::BadPayload)?)?;
        for g in self.groups {
            w.u32(*g)?;
        }
        Ok(w.written())
    }
}

/// A decoded [`SetAttr`]: its groups stay encoded in the message, read
/// with [`SetAttrMsg::groups`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SetAttrMsg<'a> {
    /// The change.
    pub change: AttrChange,
    /// The caller's credentials.
    pub creds: Creds,
    /// The groups, `u32` little-endian each, at most [`MAX_GROUPS`].
    groups_raw: &'a [u8],
}

impl<'a> SetAttrMsg<'a> {
    /// Decodes and validates exactly a whole [`SetAttr`]; the groups stay
    /// in `bytes`.
    pub fn decode(bytes: &'a [u8]) -> Result<SetAttrMsg<'a>, WireError> {
        let mut r = Reader::new(bytes);
        let kind = r.u8()?;
        let (a, b) = (r.u32()?, r.u32()?);
        let mut times = [FileTime::default(); 2];
        for t in &mut times {
            t.sec = r.u64()? as i64;
            t.nsec = r.u32()?;
        }
        let creds = Creds::read(&mut r)?;
        creds.validate()?;
        let n = usize::try_from(r.u32()?).map_err(|_| WireError::BadPayload)?;
        check(n <= MAX_GROUPS)?;
        let groups_raw = r.bytes(n * 4)?;
        r.finish()?;
        let unused = times == [FileTime::default(); 2];
        let change = match kind {
            1 if b == 0 && unused => AttrChange::Mode(a),
            2 if unused => AttrChange::Owner { uid: a, gid: b },
            3 if a == 0 && b == 0 && unused => AttrChange::Times(None),
            4 if a == 0 && b == 0 => AttrChange::Times(Some(times)),
            5 if b == 0 && unused => AttrChange::Flags(a),
            _ => return Err(WireError::BadPayload),
        };
        check(change_valid(&change))?;
        Ok(SetAttrMsg {
            change,
            creds,
            groups_raw,
        })
    }

    /// The caller's supplementary groups.
    pub fn groups(&self) -> impl ExactSizeIterator<Item = u32> + 'a {
        groups_in(self.groups_raw)
    }

    /// Number of supplementary groups.
    pub const fn nr_groups(&self) -> usize {
        self.groups_raw.len() / 4
    }
}

/// The last byte of a lock that runs to the end of the file (`OFFSET_MAX`).
pub const LOCK_TO_END: u64 = i64::MAX as u64;

/// The locks a proxy forwards (see [`FileOp::Lock`]). POSIX record locks
/// belong to a process, not to an open file description: the request
/// names the distributed process ([`LockData::owner`]), and the home takes
/// the lock as that process's shadow there, so that the locks it held
/// before it moved, and those it takes through any proxy of the file,
/// are the one owner's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LockKind {
    /// An open file description lock (`F_OFD_SETLK` and friends).
    Ofd,
    /// A `flock(2)` lock; never tested.
    Flock,
    /// A POSIX record lock (`F_SETLK`, `F_GETLK`) of a distributed
    /// process.
    Posix,
}

/// The data of a [`FileOp::Lock`]: the pid the lock is recorded with
/// (`i32`), then for a POSIX lock the process that owns it (`origin u8`,
/// `pid u32`: its [`TaskId`]). 4 or 9 bytes; a POSIX test may name no
/// owner (a process that is not distributed: it holds none at the home).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LockData {
    /// The pid the home records the lock with (what `F_GETLK` reports).
    pub pid: i32,
    /// The owner of a POSIX lock; `None` for the others and for a test
    /// as an owner that holds none.
    pub owner: Option<TaskId>,
}

impl LockData {
    /// Bytes of an OFD or `flock` lock's data.
    pub const LEN: usize = 4;
    /// Bytes of a POSIX lock's data.
    pub const POSIX_LEN: usize = 4 + 1 + 4;

    /// Bytes [`LockData::encode`] writes.
    pub fn encoded_len(&self) -> usize {
        if self.owner.is_some() {
            Self::POSIX_LEN
        } else {
            Self::LEN
        }
    }

    /// Encodes into the start of `out`; returns the bytes written.
    pub fn encode(&self, out: &mut [u8]) -> Result<usize, WireError> {
        let mut w = Writer::new(out);
        w.u32(self.pid as u32)?;
        if let Some(owner) = self.owner {
            check(usize::from(owner.origin.0) < MAX_NODES)?;
            w.u8(owner.origin.0)?;
            w.u32(owner.pid)?;
        }
        Ok(w.written())
    }

    /// Decodes exactly the data of a lock `spec` asks for: with an owner
    /// for a POSIX lock (optional for a test), without for the others.
    pub fn decode(spec: LockSpec, bytes: &[u8]) -> Result<LockData, WireError> {
        let mut r = Reader::new(bytes);
        let pid = r.u32()? as i32;
        let owner = if spec.kind == LockKind::Posix && (!spec.test || r.remaining() != 0) {
            let origin = r.u8()?;
            check(usize::from(origin) < MAX_NODES)?;
            Some(TaskId {
                origin: NodeId(origin),
                pid: r.u32()?,
            })
        } else {
            None
        };
        r.finish()?;
        Ok(LockData { pid, owner })
    }
}

/// A lock's type, with Linux's numbers (`F_RDLCK` 0, `F_WRLCK` 1,
/// `F_UNLCK` 2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LockType {
    /// Shared.
    Read,
    /// Exclusive.
    Write,
    /// Released.
    Unlock,
}

impl LockType {
    /// Linux's number.
    pub fn as_raw(self) -> u8 {
        match self {
            LockType::Read => 0,
            LockType::Write => 1,
            LockType::Unlock => 2,
        }
    }

    /// The type of Linux's number `v`.
    pub fn from_raw(v: u8) -> Option<LockType> {
        Some(match v {
            0 => LockType::Read,
            1 => LockType::Write,
            2 => LockType::Unlock,
            _ => return None,
        })
    }
}

/// What a [`FileOp::Lock`] does. Packed into the request's `flags`: bit 0
/// `test`, bits 4 and 5 the kind (0 OFD, 1 flock, 2 POSIX), bits 8 and 9
/// the type; no other bit. A flock is never tested.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LockSpec {
    /// Test for a conflicting lock (`F_OFD_GETLK`) instead of taking it.
    pub test: bool,
    /// Which kind of lock.
    pub kind: LockKind,
    /// Its type.
    pub ltype: LockType,
}

impl LockSpec {
    /// The request's `flags`.
    pub fn flags(self) -> u32 {
        u32::from(self.test)
            | match self.kind {
                LockKind::Ofd => 0,
                LockKind::Flock => 1 << 4,
                LockKind::Posix => 2 << 4,
            }
            | u32::from(self.ltype.as_raw()) << 8
    }

    /// The spec packed in `flags`, if they are one.
    pub fn from_flags(flags: u32) -> Option<LockSpec> {
        if flags & !0x331 != 0 {
            return None;
        }
        let kind = match (flags >> 4) & 3 {
            0 => LockKind::Ofd,
            1 => LockKind::Flock,
            2 => LockKind::Posix,
            _ => return None,
        };
        let spec = LockSpec {
            test: flags & 1 != 0,
            kind,
            ltype: LockType::from_raw((flags >> 8) as u8)?,
        };
        match kind {
            LockKind::Ofd => Some(spec),
            LockKind::Flock => (!spec.test).then_some(spec),
            LockKind::Posix => Some(spec),
        }
    }
}

/// Reply data of a [`FileOp::Lock`] test: the lock that conflicts, if
/// any. Layout (22 bytes): `kind u8` (0: none, 1: a POSIX record lock, 2:
/// an OFD lock), `ltype u8`, `start u64`, `end u64`, `pid i32`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LockConflict {
    /// 0: no lock conflicts (the rest is 0); 1: a POSIX lock; 2: an OFD
    /// lock.
    pub kind: u8,
    /// Its type ([`LockType::as_raw`]); never `Unlock` when `kind` is not 0.
    pub ltype: u8,
    /// Its first byte.
    pub start: u64,
    /// Its last byte ([`LOCK_TO_END`]: to the end of the file).
    pub end: u64,
    /// The pid it is recorded with (at the home).
    pub pid: i32,
}

impl LockConflict {
    /// Encoded size.
    pub const LEN: usize = 1 + 1 + 8 + 8 + 4;

    /// Checks the fields.
    pub fn validate(&self) -> Result<(), WireError> {
        check(match self.kind {
            0 => *self == LockConflict::NONE,
            1 | 2 => {
                matches!(
                    LockType::from_raw(self.ltype),
                    Some(LockType::Read | LockType::Write)
                ) && self.start <= self.end
                    && self.end <= LOCK_TO_END
            }
            _ => false,
        })
    }

    /// No conflicting lock.
    pub const NONE: LockConflict = LockConflict {
        kind: 0,
        ltype: 0,
        start: 0,
        end: 0,
        pid: 0,
    };

    /// Encodes into the start of `out`.
    pub fn encode(&self, out: &mut [u8]) -> Result<usize, WireError> {
        self.validate()?;
        let mut w = Writer::new(out);
        w.u8(self.kind)?;
        w.u8(self.ltype)?;
        w.u64(self.start)?;
        w.u64(self.end)?;
        w.u32(self.pid as u32)?;
        Ok(w.written())
    }

    /// Decodes and validates exactly [`LockConflict::LEN`] bytes.
    pub fn decode(bytes: &[u8]) -> Result<LockConflict, WireError> {
        let mut r = Reader::new(bytes);
        let c = LockConflict {
            kind: r.u8()?,
            ltype: r.u8()?,
            start: r.u64()?,
            end: r.u64()?,
            pid: r.u32()? as i32,
        };
        r.finish()?;
        c.validate()?;
        Ok(c)
    }
}

/// Most bytes a forwarded ioctl reads or writes.
pub const IOCTL_MAX_DATA: usize = 256;

impl FileOp {
    fn as_u8(self) -> u8 {
        match self {
            FileOp::Read => 1,
            FileOp::Write => 2,
            FileOp::Seek => 3,
            FileOp::Stat => 4,
            FileOp::Fsync => 5,
            FileOp::Poll => 6,
            FileOp::Ioctl => 7,
            FileOp::Readdir => 8,
            FileOp::Truncate => 9,
            FileOp::Lock => 10,
            FileOp::SetAttr => 11,
        }
    }

    fn from_u8(v: u8) -> Option<FileOp> {
        Some(match v {
            1 => FileOp::Read,
            2 => FileOp::Write,
            3 => FileOp::Seek,
            4 => FileOp::Stat,
            5 => FileOp::Fsync,
            6 => FileOp::Poll,
            7 => FileOp::Ioctl,
            8 => FileOp::Readdir,
            9 => FileOp::Truncate,
            10 => FileOp::Lock,
            11 => FileOp::SetAttr,
            _ => return None,
        })
    }
}

/// Fixed part of a [`FileReq`].
pub const FILE_REQ_HEAD_LEN: usize = 8 + 1 + 4 + 8 + 8 + 4;

/// [`MSG_FILE_REQ`]: layout `id u64, op u8, flags u32, a u64, b u64,
/// data_len u32, data`. `flags` are the proxy's status flags (`O_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileReq<'a> {
    /// The export id at the home.
    pub id: u64,
    /// The operation.
    pub op: FileOp,
    /// The proxy's status flags.
    pub flags: u32,
    /// First argument (see [`FileOp`]).
    pub a: u64,
    /// Second argument (see [`FileOp`]).
    pub b: u64,
    /// Bytes to write; empty for other operations.
    pub data: &'a [u8],
}

impl<'a> FileReq<'a> {
    /// Checks the fields against the rules of [`FileOp`].
    pub fn validate(&self) -> Result<(), WireError> {
        let no_data = self.data.is_empty();
        let ok = self.id != 0
            && self.data.len() <= FILE_MAX_DATA
            && match self.op {
                FileOp::Read => no_data && self.a <= FILE_MAX_DATA as u64,
                FileOp::Write => self.a == 0,
                FileOp::Seek => no_data && self.b <= 4,
                FileOp::Stat => no_data && self.a == 0 && self.b == 0,
                FileOp::Fsync => no_data && self.a <= 1 && self.b == 0,
                FileOp::Poll => no_data && self.a <= u64::from(u32::MAX) && self.b == 0,
                FileOp::Ioctl => {
                    self.a <= u64::from(u32::MAX)
                        && self.data.len() <= IOCTL_MAX_DATA
                        && self.flags as usize <= IOCTL_MAX_DATA
                        && (no_data || self.b == 0)
                }
                FileOp::Readdir => no_data && self.a <= FILE_MAX_DATA as u64 && self.b == 0,
                FileOp::Truncate => no_data && self.a <= i64::MAX as u64 && self.b == 0,
                FileOp::Lock => match LockSpec::from_flags(self.flags) {
                    Some(spec) => {
                        LockData::decode(spec, self.data).is_ok()
                            && match spec.kind {
                                LockKind::Ofd | LockKind::Posix => {
                                    self.a <= self.b && self.b <= LOCK_TO_END
                                }
                                LockKind::Flock => self.a == 0 && self.b == LOCK_TO_END,
                            }
                    }
                    None => false,
                },
                FileOp::SetAttr => {
                    self.a == 0
                        && self.b == 0
                        && self.flags == 0
                        && SetAttrMsg::decode(self.data).is_ok()
                }
            };
        check(ok)
    }

    /// Bytes [`FileReq::encode`] writes.
    pub fn encoded_len(&self) -> usize {
        FILE_REQ_HEAD_LEN.saturating_add(self.data.len())
    }

    /// Encodes into the start of `out`; returns the bytes written.
    pub fn encode(&self, out: &mut [u8]) -> Result<usize, WireError> {
        self.validate()?;
        if out.len() < self.encoded_len() {
            return Err(WireError::ShortBuffer);
        }
        let mut w = Writer::new(out);
        w.u64(self.id)?;
        w.u8(self.op.as_u8())?;
        w.u32(self.flags)?;
        w.u64(self.a)?;
        w.u64(self.b)?;
        w.u32(u32::try_from(self.data.len()).map_err(|_| WireError::BadPayload)?)?;
        w.bytes(self.data)?;
        Ok(w.written())
    }

    /// Decodes and validates a whole request; `data` borrows from `bytes`.
    pub fn decode(bytes: &'a [u8]) -> Result<FileReq<'a>, WireError> {
        let mut r = Reader::new(bytes);
        let id = r.u64()?;
        let op = FileOp::from_u8(r.u8()?).ok_or(WireError::BadPayload)?;
        let flags = r.u32()?;
        let a = r.u64()?;
        let b = r.u64()?;
        let len = usize::try_from(r.u32()?).map_err(|_| WireError::BadPayload)?;
        check(len <= FILE_MAX_DATA)?;
        let data = r.bytes(len)?;
        r.finish()?;
        let req = FileReq {
            id,
            op,
            flags,
            a,
            b,
            data,
        };
        req.validate()?;
        Ok(req)
    }
}

/// Fixed part of a [`FileReply`].
pub const FILE_REPLY_HEAD_LEN: usize = 8 + 4 + 4;

/// Reply to [`MSG_FILE_REQ`]: layout `result i64, mask u32, data_len u32,
/// data`. `result` is what the call returned (bytes, a position, 0) or a
/// negative errno; `mask` the file's poll mask after the call; `data` the
/// bytes read, or a [`FileStat`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileReply<'a> {
    /// The result or a negative errno.
    pub result: i64,
    /// The file's poll mask (`EPOLL*`) after the call.
    pub mask: u32,
    /// Bytes read or the attributes.
    pub data: &'a [u8],
}

impl<'a> FileReply<'a> {
    /// Checks the fields: an error carries no data.
    pub fn validate(&self) -> Result<(), WireError> {
        check(
            self.data.len() <= FILE_MAX_DATA
                && self.result >= -i64::from(MAX_ERRNO)
                && (self.result >= 0 || self.data.is_empty()),
        )
    }

    /// Bytes [`FileReply::encode`] writes.
    pub fn encoded_len(&self) -> usize {
        FILE_REPLY_HEAD_LEN.saturating_add(self.data.len())
    }

    /// Encodes into the start of `out`; returns the bytes written.
    pub fn encode(&self, out: &mut [u8]) -> Result<usize, WireError> {
        self.validate()?;
        if out.len() < self.encoded_len() {
            return Err(WireError::ShortBuffer);
        }
        let mut w = Writer::new(out);
        w.u64(self.result as u64)?;
        w.u32(self.mask)?;
        w.u32(u32::try_from(self.data.len()).map_err(|_| WireError::BadPayload)?)?;
        w.bytes(self.data)?;
        Ok(w.written())
    }

    /// Decodes and validates a whole reply; `data` borrows from `bytes`.
    pub fn decode(bytes: &'a [u8]) -> Result<FileReply<'a>, WireError> {
        let mut r = Reader::new(bytes);
        let result = r.u64()? as i64;
        let mask = r.u32()?;
        let len = usize::try_from(r.u32()?).map_err(|_| WireError::BadPayload)?;
        check(len <= FILE_MAX_DATA)?;
        let data = r.bytes(len)?;
        r.finish()?;
        let reply = FileReply { result, mask, data };
        reply.validate()?;
        Ok(reply)
    }
}

/// [`MSG_FILE_PUT`] and [`MSG_FILE_HOLD`]: `count` holds on export `id`.
/// Layout `id u64, count u32` (12 bytes); `id` and `count` are not 0.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FilePut {
    /// The export id at the home.
    pub id: u64,
    /// How many holds.
    pub count: u32,
}

impl Payload for FilePut {
    const LEN: usize = 12;

    fn write(&self, w: &mut Writer<'_>) -> Result<(), WireError> {
        check(self.id != 0 && self.count != 0)?;
        w.u64(self.id)?;
        w.u32(self.count)
    }

    fn read(r: &mut Reader<'_>) -> Result<Self, WireError> {
        let put = FilePut {
            id: r.u64()?,
            count: r.u32()?,
        };
        check(put.id != 0 && put.count != 0)?;
        Ok(put)
    }
}

/// [`MSG_FILE_READY`]: export `id`'s poll mask is now `mask`. Layout `id
/// u64, mask u32` (12 bytes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileReady {
    /// The export id at the home.
    pub id: u64,
    /// The file's poll mask (`EPOLL*`).
    pub mask: u32,
}

impl Payload for FileReady {
    const LEN: usize = 12;

    fn write(&self, w: &mut Writer<'_>) -> Result<(), WireError> {
        check(self.id != 0)?;
        w.u64(self.id)?;
        w.u32(self.mask)
    }

    fn read(r: &mut Reader<'_>) -> Result<Self, WireError> {
        let ready = FileReady {
            id: r.u64()?,
            mask: r.u32()?,
        };
        check(ready.id != 0)?;
        Ok(ready)
    }
}

/// A file's attributes, as `fstat` reports them: the data of a
/// [`FileOp::Stat`] reply. Layout: 19 `u64` in field order (152 bytes);
/// times are seconds and nanoseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FileStat {
    /// Device of the file system (encoded as `new_encode_dev`).
    pub dev: u64,
    /// Inode number.
    pub ino: u64,
    /// `st_mode`.
    pub mode: u64,
    /// Link count.
    pub nlink: u64,
    /// Owner, in the home's initial user namespace.
    pub uid: u64,
    /// Group, likewise.
    pub gid: u64,
    /// Device of a special file.
    pub rdev: u64,
    /// Size in bytes.
    pub size: u64,
    /// Preferred I/O size.
    pub blksize: u64,
    /// 512-byte blocks allocated.
    pub blocks: u64,
    /// Access time, seconds.
    pub atime: u64,
    /// Access time, nanoseconds.
    pub atime_nsec: u64,
    /// Modification time, seconds.
    pub mtime: u64,
    /// Modification time, nanoseconds.
    pub mtime_nsec: u64,
    /// Change time, seconds.
    pub ctime: u64,
    /// Change time, nanoseconds.
    pub ctime_nsec: u64,
    /// Birth time, seconds (0 if unknown).
    pub btime: u64,
    /// Birth time, nanoseconds.
    pub btime_nsec: u64,
    /// `STATX_*` mask of the fields the home filled.
    pub result_mask: u64,
}

impl FileStat {
    fn fields(&self) -> [u64; 19] {
        [
            self.dev,
            self.ino,
            self.mode,
            self.nlink,
            self.uid,
            self.gid,
            self.rdev,
            self.size,
            self.blksize,
            self.blocks,
            self.atime,
            self.atime_nsec,
            self.mtime,
            self.mtime_nsec,
            self.ctime,
            self.ctime_nsec,
            self.btime,
            self.btime_nsec,
            self.result_mask,
        ]
    }
}

impl Payload for FileStat {
    const LEN: usize = 19 * 8;

    fn write(&self, w: &mut Writer<'_>) -> Result<(), WireError> {
        for v in self.fields() {
            w.u64(v)?;
        }
        Ok(())
    }

    fn read(r: &mut Reader<'_>) -> Result<Self, WireError> {
        let mut v = [0u64; 19];
        for x in v.iter_mut() {
            *x = r.u64()?;
        }
        Ok(FileStat {
            dev: v[0],
            ino: v[1],
            mode: v[2],
            nlink: v[3],
            uid: v[4],
            gid: v[5],
            rdev: v[6],
            size: v[7],
            blksize: v[8],
            blocks: v[9],
            atime: v[10],
            atime_nsec: v[11],
            mtime: v[12],
            mtime_nsec: v[13],
            ctime: v[14],
            ctime_nsec: v[15],
            btime: v[16],
            btime_nsec: v[17],
            result_mask: v[18],
        })
    }
}

/// Why a [`Holds`] operation was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HoldError {
    /// A node id at or above [`MAX_NODES`].
    BadNode,
    /// More holds put back than the node has: the put is ignored.
    Unheld,
    /// A count would overflow.
    Overflow,
}

/// The holds of one export: how many proxy files (or granted references)
/// each node has on it. The home keeps the export while any hold remains.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Holds {
    count: [u32; MAX_NODES],
    armed: u64,
}

impl Default for Holds {
    fn default() -> Self {
        Holds::new()
    }
}

impl Holds {
    /// No holds.
    pub const fn new() -> Holds {
        Holds {
            count: [0; MAX_NODES],
            armed: 0,
        }
    }

    /// `n` more holds for `node` (a migration's grant, or a
    /// [`MSG_FILE_HOLD`] from it).
    pub fn grant(&mut self, node: NodeId, n: u32) -> Result<(), HoldError> {
        let c = self.count.get_mut(node.index()).ok_or(HoldError::BadNode)?;
        *c = c.checked_add(n).ok_or(HoldError::Overflow)?;
        Ok(())
    }

    /// `node` puts back `n` holds ([`MSG_FILE_PUT`]). Returns whether the
    /// export is now unheld everywhere (the home then drops it). A node
    /// putting back more than it has changes nothing.
    pub fn put(&mut self, node: NodeId, n: u32) -> Result<bool, HoldError> {
        let c = self.count.get_mut(node.index()).ok_or(HoldError::BadNode)?;
        if *c < n {
            return Err(HoldError::Unheld);
        }
        *c -= n;
        if *c == 0 {
            self.armed &= !(1u64 << node.index());
        }
        Ok(self.is_unheld())
    }

    /// `node` went down: its holds are gone. Returns whether the export is
    /// now unheld everywhere.
    pub fn node_down(&mut self, node: NodeId) -> bool {
        if let Some(c) = self.count.get_mut(node.index()) {
            *c = 0;
            self.armed &= !(1u64 << node.index());
        }
        self.is_unheld()
    }

    /// The holds of `node`.
    pub fn of(&self, node: NodeId) -> u32 {
        self.count.get(node.index()).copied().unwrap_or(0)
    }

    /// No node holds the export.
    pub fn is_unheld(&self) -> bool {
        self.count.iter().all(|c| *c == 0)
    }

    /// `node` armed the export ([`FileOp::Poll`]): it is told of every
    /// change of the poll mask while it holds the export. Refused (false)
    /// for a node without holds.
    pub fn arm(&mut self, node: NodeId) -> bool {
        if self.of(node) == 0 {
            return false;
        }
        self.armed |= 1u64 << node.index();
        true
    }

    /// The nodes to send [`MSG_FILE_READY`] to, as a bit set.
    pub fn armed(&self) -> u64 {
        self.armed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec;
    use std::vec::Vec;

    fn desc(fd: u32, id: u64) -> FileDesc {
        FileDesc {
            fd,
            cloexec: fd.is_multiple_of(2),
            home: NodeId(1),
            id,
            f_flags: 0o2001,
            f_mode: 3,
            i_mode: 0o100644,
        }
    }

    #[test]
    fn files_round_trip_and_order() {
        let files = [desc(0, 7), desc(1, 7), desc(5, 9)];
        let mut buf = vec![0u8; files_len(files.len())];
        let mut w = Writer::new(&mut buf);
        encode_files(&mut w, &files).unwrap();
        assert_eq!(w.written(), files_len(3));
        let mut r = Reader::new(&buf);
        let (raw, n) = decode_files(&mut r).unwrap();
        r.finish().unwrap();
        let got: Vec<FileDesc> = FileIter::new(raw, n).collect();
        assert_eq!(got, files);

        let unsorted = [desc(3, 1), desc(3, 2)];
        let mut w = Writer::new(&mut buf);
        assert_eq!(encode_files(&mut w, &unsorted), Err(WireError::BadPayload));
        // A decoder given the same bytes refuses them too.
        let mut bad = vec![0u8; files_len(2)];
        bad[..4].copy_from_slice(&2u32.to_le_bytes());
        let mut w = Writer::new(&mut bad[4..]);
        unsorted[0].write(&mut w).unwrap();
        unsorted[1].write(&mut w).unwrap();
        assert!(decode_files(&mut Reader::new(&bad)).is_err());
    }

    #[test]
    fn desc_refuses_zero_id_and_bad_bool() {
        let mut buf = [0u8; FileDesc::LEN];
        assert!(desc(1, 0).encode(&mut buf).is_err());
        desc(1, 3).encode(&mut buf).unwrap();
        buf[4] = 2;
        assert!(FileDesc::decode(&buf).is_err());
    }

    #[test]
    fn req_rules() {
        let data = [1u8; 10];
        let req = FileReq {
            id: 4,
            op: FileOp::Write,
            flags: 0o2000,
            a: 0,
            b: POS_CURRENT,
            data: &data,
        };
        let mut buf = vec![0u8; req.encoded_len()];
        req.encode(&mut buf).unwrap();
        assert_eq!(FileReq::decode(&buf).unwrap(), req);
        let read = FileReq {
            op: FileOp::Read,
            a: FILE_MAX_DATA as u64 + 1,
            data: &[],
            ..req
        };
        assert!(read.encode(&mut buf).is_err());
        let seek = FileReq {
            op: FileOp::Seek,
            b: 5,
            data: &[],
            ..req
        };
        assert!(seek.validate().is_err());
        // Readdir: a bounded size, no data, no second argument.
        let readdir = FileReq {
            op: FileOp::Readdir,
            a: 32 * 1024,
            b: 0,
            data: &[],
            ..req
        };
        let n = readdir.encode(&mut buf).unwrap();
        assert_eq!(FileReq::decode(&buf[..n]).unwrap(), readdir);
        for bad in [
            FileReq {
                a: FILE_MAX_DATA as u64 + 1,
                ..readdir
            },
            FileReq { b: 1, ..readdir },
            FileReq {
                data: &data,
                ..readdir
            },
        ] {
            assert!(bad.validate().is_err(), "{bad:?}");
        }
        // Truncate: a length that is an off_t.
        let truncate = FileReq {
            op: FileOp::Truncate,
            a: 3,
            b: 0,
            data: &[],
            ..req
        };
        let n = truncate.encode(&mut buf).unwrap();
        assert_eq!(FileReq::decode(&buf[..n]).unwrap(), truncate);
        assert!(FileReq {
            a: i64::MAX as u64 + 1,
            ..truncate
        }
        .validate()
        .is_err());
        assert!(FileReq { b: 1, ..truncate }.validate().is_err());
        // Truncated and over-long inputs are refused.
        let n = req.encode(&mut buf).unwrap();
        assert!(FileReq::decode(&buf[..n - 1]).is_err());
        let mut long = buf.clone();
        long.push(0);
        assert!(FileReq::decode(&long).is_err());
    }

    #[test]
    fn reply_rules() {
        let data = [9u8; 3];
        let ok = FileReply {
            result: 3,
            mask: 1,
            data: &data,
        };
        let mut buf = vec![0u8; ok.encoded_len()];
        ok.encode(&mut buf).unwrap();
        assert_eq!(FileReply::decode(&buf).unwrap(), ok);
        let err_with_data = FileReply { result: -11, ..ok };
        assert!(err_with_data.validate().is_err());
        let huge_errno = FileReply {
            result: -5000,
            mask: 0,
            data: &[],
        };
        assert!(huge_errno.validate().is_err());
    }

    #[test]
    fn stat_round_trip() {
        let st = FileStat {
            dev: 1,
            ino: 2,
            mode: 0o100600,
            size: 1 << 40,
            result_mask: 0x7ff,
            ..FileStat::default()
        };
        let mut buf = [0u8; FileStat::LEN];
        st.encode(&mut buf).unwrap();
        assert_eq!(FileStat::decode(&buf).unwrap(), st);
    }

    #[test]
    fn holds_count_per_node() {
        let mut h = Holds::new();
        assert!(h.is_unheld());
        h.grant(NodeId(1), 2).unwrap();
        h.grant(NodeId(2), 1).unwrap();
        assert!(h.arm(NodeId(2)));
        assert!(!h.arm(NodeId(3)));
        assert_eq!(h.armed(), 1 << 2);
        assert_eq!(h.put(NodeId(1), 3), Err(HoldError::Unheld));
        assert_eq!(h.put(NodeId(1), 1), Ok(false));
        assert_eq!(h.put(NodeId(2), 1), Ok(false));
        assert_eq!(h.armed(), 0);
        assert_eq!(h.put(NodeId(1), 1), Ok(true));
        assert_eq!(h.grant(NodeId(64), 1), Err(HoldError::BadNode));
    }

    #[test]
    fn holds_node_down() {
        let mut h = Holds::new();
        h.grant(NodeId(0), 1).unwrap();
        h.grant(NodeId(3), 5).unwrap();
        assert!(h.arm(NodeId(3)));
        assert!(!h.node_down(NodeId(3)));
        assert_eq!(h.armed(), 0);
        assert!(h.node_down(NodeId(0)));
        // A put from a node whose holds died with it is refused.
        assert_eq!(h.put(NodeId(3), 1), Err(HoldError::Unheld));
        h.grant(NodeId(1), u32::MAX).unwrap();
        assert_eq!(h.grant(NodeId(1), 1), Err(HoldError::Overflow));
    }

    #[test]
    fn lock_specs_round_trip_and_bad_ones_are_refused() {
        for test in [false, true] {
            for kind in [LockKind::Ofd, LockKind::Flock, LockKind::Posix] {
                for ltype in [LockType::Read, LockType::Write, LockType::Unlock] {
                    let spec = LockSpec { test, kind, ltype };
                    let back = LockSpec::from_flags(spec.flags());
                    match kind {
                        LockKind::Flock if test => assert_eq!(back, None, "{spec:?}"),
                        _ => assert_eq!(back, Some(spec)),
                    }
                }
            }
        }
        // Unknown bits and types.
        assert_eq!(LockSpec::from_flags(1 << 2), None);
        assert_eq!(LockSpec::from_flags(3 << 8), None);
        assert_eq!(LockSpec::from_flags(1 << 12), None);
        assert_eq!(LockSpec::from_flags(3 << 4 | 1), None);
    }

    #[test]
    fn lock_requests_are_checked() {
        let pid = 42i32.to_le_bytes();
        let ofd = FileReq {
            id: 7,
            op: FileOp::Lock,
            flags: LockSpec {
                test: false,
                kind: LockKind::Ofd,
                ltype: LockType::Write,
            }
            .flags(),
            a: 10,
            b: 19,
            data: &pid,
        };
        let mut buf = [0u8; 64];
        let n = ofd.encode(&mut buf).unwrap();
        assert_eq!(FileReq::decode(&buf[..n]).unwrap(), ofd);
        // To the end of the file; a one-byte lock.
        assert!(FileReq {
            b: LOCK_TO_END,
            ..ofd
        }
        .validate()
        .is_ok());
        assert!(FileReq { a: 19, ..ofd }.validate().is_ok());
        // Ranges that are not: reversed, past OFFSET_MAX.
        assert!(FileReq { a: 20, ..ofd }.validate().is_err());
        assert!(FileReq {
            b: LOCK_TO_END + 1,
            ..ofd
        }
        .validate()
        .is_err());
        // The pid is exactly 4 bytes.
        assert!(FileReq { data: &[], ..ofd }.validate().is_err());
        assert!(FileReq {
            data: &[0; 5],
            ..ofd
        }
        .validate()
        .is_err());
        // flock: always the whole file.
        let flock = FileReq {
            flags: LockSpec {
                test: false,
                kind: LockKind::Flock,
                ltype: LockType::Read,
            }
            .flags(),
            a: 0,
            b: LOCK_TO_END,
            ..ofd
        };
        assert!(flock.validate().is_ok());
        assert!(FileReq { b: 100, ..flock }.validate().is_err());
        assert!(FileReq { a: 1, ..flock }.validate().is_err());
        assert!(FileReq {
            flags: 1 << 5,
            ..flock
        }
        .validate()
        .is_err());
        // POSIX: the data name the owner too.
        let owned = LockData {
            pid: 42,
            owner: Some(TaskId {
                origin: NodeId(3),
                pid: 1234,
            }),
        };
        let mut data = [0u8; LockData::POSIX_LEN];
        assert_eq!(owned.encode(&mut data), Ok(LockData::POSIX_LEN));
        let set = LockSpec {
            test: false,
            kind: LockKind::Posix,
            ltype: LockType::Write,
        };
        assert_eq!(LockData::decode(set, &data), Ok(owned));
        let posix = FileReq {
            flags: set.flags(),
            data: &data,
            ..ofd
        };
        assert!(posix.validate().is_ok());
        // A test may name no owner; taking or dropping one must.
        let test = LockSpec { test: true, ..set };
        assert!(FileReq {
            flags: test.flags(),
            data: &pid,
            ..posix
        }
        .validate()
        .is_ok());
        assert!(FileReq {
            flags: test.flags(),
            ..posix
        }
        .validate()
        .is_ok());
        // Without an owner, or with one for another kind, refused.
        assert!(FileReq {
            data: &pid,
            ..posix
        }
        .validate()
        .is_err());
        assert!(FileReq { data: &data, ..ofd }.validate().is_err());
        assert!(FileReq {
            data: &data[..8],
            ..posix
        }
        .validate()
        .is_err());
        // An owner from no node of a cluster.
        let mut far = data;
        far[4] = MAX_NODES as u8;
        assert!(FileReq {
            data: &far,
            ..posix
        }
        .validate()
        .is_err());
        assert_eq!(
            LockData::decode(LockSpec::from_flags(ofd.flags).unwrap(), &pid),
            Ok(LockData {
                pid: 42,
                owner: None
            })
        );
    }

    #[test]
    fn lock_conflicts_round_trip_and_are_checked() {
        let c = LockConflict {
            kind: 1,
            ltype: LockType::Write.as_raw(),
            start: 5,
            end: LOCK_TO_END,
            pid: 300,
        };
        let mut buf = [0u8; LockConflict::LEN];
        assert_eq!(c.encode(&mut buf).unwrap(), LockConflict::LEN);
        assert_eq!(LockConflict::decode(&buf).unwrap(), c);
        let mut none = [0u8; LockConflict::LEN];
        LockConflict::NONE.encode(&mut none).unwrap();
        assert_eq!(LockConflict::decode(&none).unwrap(), LockConflict::NONE);
        for bad in [
            LockConflict { kind: 3, ..c },
            LockConflict { ltype: 2, ..c },
            LockConflict {
                start: 6,
                end: 5,
                ..c
            },
            LockConflict {
                pid: 1,
                ..LockConflict::NONE
            },
        ] {
            assert!(bad.validate().is_err(), "{bad:?}");
        }
        assert!(LockConflict::decode(&buf[..LockConflict::LEN - 1]).is_err());
    }

    fn creds() -> Creds {
        Creds {
            uid: 1000,
            gid: 1000,
            suid: 1000,
            sgid: 1000,
            euid: 1000,
            egid: 1000,
            fsuid: 1000,
            fsgid: 1000,
            umask: 0o022,
            ..Creds::default()
        }
    }

    #[test]
    fn setattr_round_trips_and_checks_its_fields() {
        let groups = [4u32, 27, 100];
        let t = FileTime {
            sec: -5,
            nsec: 999_999_999,
        };
        let omit = FileTime {
            sec: 0,
            nsec: UTIME_OMIT,
        };
        for change in [
            AttrChange::Mode(0o4755),
            AttrChange::Owner {
                uid: u32::MAX,
                gid: 27,
            },
            AttrChange::Times(None),
            AttrChange::Times(Some([t, omit])),
            AttrChange::Flags(SETFL_FLAGS),
            AttrChange::Flags(0),
        ] {
            let s = SetAttr {
                change,
                creds: creds(),
                groups: &groups,
            };
            let mut buf = vec![0u8; s.encoded_len()];
            assert_eq!(s.encode(&mut buf), Ok(s.encoded_len()));
            let back = SetAttrMsg::decode(&buf).unwrap();
            assert_eq!((back.change, back.creds), (s.change, s.creds));
            assert_eq!(back.groups().collect::<Vec<_>>(), [4, 27, 100]);
            let req = FileReq {
                id: 7,
                op: FileOp::SetAttr,
                flags: 0,
                a: 0,
                b: 0,
                data: &buf,
            };
            let mut out = vec![0u8; req.encoded_len()];
            req.encode(&mut out).unwrap();
            assert_eq!(FileReq::decode(&out).unwrap(), req);
            // A request that carries anything else is refused.
            assert!(FileReq { a: 1, ..req }.validate().is_err());
            assert!(FileReq { flags: 2, ..req }.validate().is_err());
            assert!(FileReq {
                data: &buf[..buf.len() - 1],
                ..req
            }
            .validate()
            .is_err());
        }
        let bad = |change| SetAttr {
            change,
            creds: creds(),
            groups: &[],
        };
        assert!(bad(AttrChange::Mode(0o10000)).validate().is_err());
        // O_ASYNC, or a flag that is no status flag, is not the home's.
        assert!(bad(AttrChange::Flags(0o20000)).validate().is_err());
        assert!(bad(AttrChange::Flags(0o2)).validate().is_err());
        let late = FileTime {
            sec: 0,
            nsec: 1_000_000_000,
        };
        assert!(bad(AttrChange::Times(Some([late, t]))).validate().is_err());
        let now_with_sec = FileTime {
            sec: 1,
            nsec: UTIME_NOW,
        };
        assert!(bad(AttrChange::Times(Some([t, now_with_sec])))
            .validate()
            .is_err());
        // At most MAX_GROUPS groups, both ways.
        let many = vec![7u32; MAX_GROUPS + 1];
        let s = SetAttr {
            groups: &many[..MAX_GROUPS],
            ..bad(AttrChange::Times(None))
        };
        let mut buf = vec![0u8; s.encoded_len()];
        s.encode(&mut buf).unwrap();
        assert_eq!(SetAttrMsg::decode(&buf).unwrap().nr_groups(), MAX_GROUPS);
        let over = SetAttr { groups: &many, ..s };
        assert!(over.validate().is_err());
        let n = SETATTR_HEAD_LEN + Creds::LEN;
        buf[n..n + 4].copy_from_slice(&(MAX_GROUPS as u32 + 1).to_le_bytes());
        buf.extend_from_slice(&7u32.to_le_bytes());
        assert!(SetAttrMsg::decode(&buf).is_err());
        // A group count the bytes do not match does not decode.
        buf.truncate(buf.len() - 4);
        buf[n..n + 4].copy_from_slice(&(MAX_GROUPS as u32 - 1).to_le_bytes());
        assert!(SetAttrMsg::decode(&buf).is_err());
        // A mode change that carries times, or an unknown kind, does not
        // decode.
        let s = bad(AttrChange::Mode(0o644));
        let mut buf = vec![0u8; s.encoded_len()];
        s.encode(&mut buf).unwrap();
        let mut with_time = buf.clone();
        with_time[9] = 1;
        assert!(SetAttrMsg::decode(&with_time).is_err());
        buf[0] = 5;
        assert!(SetAttrMsg::decode(&buf).is_err());
    }
}
