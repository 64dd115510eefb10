// SPDX-License-Identifier: GPL-2.0

//! Forwarded files (`rust/proto/src/files.rs`): the exports this node
//! serves as a home, the operations of proxy files here, and what a
//! migration carries of a task's descriptor table.

use crate::dist::me;
use crate::proto::files::{
    AttrChange, FileDesc, FileOp, FilePut, FileReady, FileReply, FileReq, FileStat, FileTime,
    Holds, LockConflict, LockData, LockKind, LockSpec, LockType, SetAttr, SetAttrMsg,
    FILE_MAX_DATA, FILE_REPLY_HEAD_LEN, IOCTL_MAX_DATA, LOCK_TO_END, MSG_FILE_HOLD, MSG_FILE_PUT,
    MSG_FILE_READY, MSG_FILE_REQ, POS_CURRENT, SETFL_FLAGS,
};
use crate::proto::node::NodeId;
use crate::proto::wire::Payload;
use core::sync::atomic::{AtomicU64, Ordering};
use kernel::cohort::migration::Global;
use kernel::cohort::msg::{self, Message, MsgHandler};
use kernel::cohort::{
    self,
    files::{self, File, FileOps, Info, Lock, LockKind as Kind, LockOwner, Proxy, Stat, Watch},
    migration, vec as kvec,
};
use kernel::prelude::*;
use kernel::sync::{new_mutex, Arc, Mutex};

fn eproto() -> Error {
    cohort::errno::EPROTO()
}

fn eoverflow() -> Error {
    cohort::errno::EOVERFLOW()
}

/// How long a file operation may take at the home at least; the home never
/// blocks for a proxy, so this bounds a lost peer, not a slow file (see
/// [`file_timeout_ms`]).
const FILE_TIMEOUT_MS: u32 = 10_000;

/// How long a file operation may take at the home, in milliseconds:
/// [`FILE_TIMEOUT_MS`], or the heartbeat time-out and a margin when that
/// is longer (`crate::peer_timeout_ms`).
fn file_timeout_ms() -> u32 {
    crate::peer_timeout_ms(FILE_TIMEOUT_MS)
}

/// One file this node serves to others.
struct Export {
    id: u64,
    file: File,
    holds: Holds,
    /// Follows the file's wait queues once a node armed it.
    watch: Option<Watch>,
    /// Shadows' tables that may own POSIX locks on the file: of processes
    /// that left with a descriptor of it or locked it through a proxy.
    lockers: KVec<LockOwner>,
}

impl Drop for Export {
    /// No node holds the file any more, so no process that left with it
    /// has a descriptor of it: as its last close would, this releases its
    /// POSIX locks, which the file's release would otherwise leak.
    fn drop(&mut self) {
        for owner in self.lockers.iter() {
            self.file.unlock_owner(*owner);
        }
    }
}

impl Export {
    /// Records that `owner` may hold POSIX locks on the file.
    fn add_locker(&mut self, owner: LockOwner) -> Result {
        if !self.lockers.contains(&owner) {
            self.lockers.push(owner, GFP_KERNEL)?;
        }
        Ok(())
    }

    /// `owner` is no longer one to release locks of when the export goes.
    fn remove_locker(&mut self, owner: LockOwner) {
        if let Some(i) = self.lockers.iter().position(|o| *o == owner) {
            kvec::swap_remove(&mut self.lockers, i);
        }
    }
}

/// The files this node is the home of, by export id.
#[pin_data]
pub(crate) struct Exports {
    /// The exports; never held across a message or a `Watch` drop.
    #[pin]
    list: Mutex<KVec<KBox<Export>>>,
    next_id: AtomicU64,
}

/// This node's exports, for the handlers and the files slot.
pub(crate) static EXPORTS: Global<Exports> = Global::new();

impl Exports {
    /// No exports.
    pub(crate) fn new() -> impl PinInit<Exports> {
        pin_init!(Exports {
            list <- new_mutex!(KVec::new()),
            next_id: AtomicU64::new(1),
        })
    }

    /// Exports `file` (again) and grants `to` one hold on it; returns its
    /// id. `locker`: the table of a task that leaves with the file, which
    /// may own POSIX locks on it.
    fn export(&self, file: &File, to: NodeId, locker: Option<LockOwner>) -> Result<u64> {
        let mut list = self.list.lock();
        if let Some(e) = list.iter_mut().find(|e| e.file.key() == file.key()) {
            if let Some(owner) = locker {
                e.add_locker(owner)?;
            }
            e.holds.grant(to, 1).map_err(|_| eoverflow())?;
            return Ok(e.id);
        }
        let mut holds = Holds::new();
        holds.grant(to, 1).map_err(|_| EINVAL)?;
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let mut e = KBox::new(
            Export {
                id,
                file: file.clone(),
                holds,
                watch: None,
                lockers: KVec::new(),
            },
            GFP_KERNEL,
        )?;
        if let Some(owner) = locker {
            e.add_locker(owner)?;
        }
        list.push(e, GFP_KERNEL)?;
        Ok(id)
    }

    /// `owner` no longer needs the export to release its POSIX locks on
    /// export `id`'s file (its table holds the file again).
    fn forget_locker(&self, id: u64, owner: LockOwner) {
        if let Some(e) = self.list.lock().iter_mut().find(|e| e.id == id) {
            e.remove_locker(owner);
        }
    }

    /// Releases `owner`'s POSIX locks on every file served here and
    /// forgets it (under the list's lock: releasing a lock wakes the
    /// file's lock waiters, not its watch).
    fn unlock_owner(&self, owner: LockOwner) {
        for e in self.list.lock().iter_mut() {
            e.file.unlock_owner(owner);
            e.remove_locker(owner);
        }
    }

    /// `owner` takes a POSIX lock on export `id`'s file: it is released
    /// when the export goes, if not before.
    fn add_locker(&self, id: u64, owner: LockOwner) -> Result {
        let mut list = self.list.lock();
        let e = list.iter_mut().find(|e| e.id == id).ok_or(EBADF)?;
        e.add_locker(owner)
    }

    /// The file of export `id` if `node` holds it (any node when `None`).
    fn file(&self, id: u64, node: Option<NodeId>) -> Option<File> {
        let list = self.list.lock();
        let e = list.iter().find(|e| e.id == id)?;
        match node {
            Some(n) if e.holds.of(n) == 0 => None,
            _ => Some(e.file.clone()),
        }
    }

    /// Applies `f` to export `id`'s holds; drops the export when it ends
    /// unheld. The export (its file and watch) is released after the lock.
    fn with_holds(&self, id: u64, f: impl FnOnce(&mut Holds) -> Result<bool>) -> Result {
        let gone = {
            let mut list = self.list.lock();
            let i = list.iter().position(|e| e.id == id).ok_or(ENOENT)?;
            if f(&mut list[i].holds)? {
                kvec::swap_remove(&mut list, i)
            } else {
                None
            }
        };
        drop(gone);
        Ok(())
    }

    /// `node` went down: its holds are gone.
    fn node_down(&self, node: NodeId) {
        let mut gone = KVec::new();
        {
            let mut list = self.list.lock();
            let mut i = 0;
            while i < list.len() {
                if list[i].holds.node_down(node) {
                    if let Some(e) = kvec::swap_remove(&mut list, i) {
                        // On failure the export is dropped here, under the
                        // lock; its watch never fires into this lock.
                        let _ = gone.push(e, GFP_KERNEL);
                    }
                } else {
                    i += 1;
                }
            }
        }
        drop(gone);
    }

    /// `node` arms export `id`: it hears of every wake-up of the file.
    /// Returns the poll mask now.
    fn arm(&self, id: u64, node: NodeId) -> Result<u32> {
        let file = {
            let mut list = self.list.lock();
            let e = list.iter_mut().find(|e| e.id == id).ok_or(ENOENT)?;
            if !e.holds.arm(node) {
                return Err(EBADF);
            }
            if e.watch.is_none() {
                e.watch = Some(Watch::new(&e.file, id)?);
            }
            e.file.clone()
        };
        Ok(file.poll_mask())
    }

    /// The watch of export `id` fired: tell the nodes that armed it.
    fn fired(&self, id: u64) {
        let (file, armed) = {
            let list = self.list.lock();
            let Some(e) = list.iter().find(|e| e.id == id) else {
                return;
            };
            (e.file.clone(), e.holds.armed())
        };
        let mut buf = [0u8; FileReady::LEN];
        let ready = FileReady {
            id,
            mask: file.poll_mask(),
        };
        if ready.encode(&mut buf).is_err() {
            return;
        }
        for node in 0..64u32 {
            if armed & (1u64 << node) != 0 {
                let _ = msg::send(node, MSG_FILE_READY, &buf);
            }
        }
    }
}

/// The current task, a shadow, ends here: the POSIX locks its process took
/// through proxies of the files served here, and those it held when it
/// left, are its table's (see [`serve`]) and go with it, as an exit's
/// close of the files would release them.
pub(crate) fn shadow_ended() {
    let (Some(exports), Some(owner)) = (EXPORTS.get(), LockOwner::of(kernel::current!())) else {
        return;
    };
    exports.unlock_owner(owner);
}

/// A node went down: proxies of its files fail, its holds here end.
pub(crate) fn node_down(node: NodeId) {
    files::proxy_node_down(u32::from(node.0));
    if let Some(exports) = EXPORTS.get() {
        exports.node_down(node);
    }
}

/// Describes the current task's descriptor table for a migration to
/// `dest`: files held here are exported with one hold granted to `dest`
/// per file (see `proto::files`); proxies name their home. On failure the
/// grants taken are put back.
pub(crate) fn describe(dest: NodeId) -> Result<KVec<FileDesc>> {
    let exports = EXPORTS.get().ok_or(ENODEV)?;
    // The table stays with the shadow, and the POSIX locks it owns with it.
    let locker = LockOwner::of(kernel::current!());
    let mut descs = KVec::new();
    // Files exported here by this call, by key, so one grant per file.
    let mut granted: KVec<(usize, u64)> = KVec::new();
    let result = (|| -> Result {
        let mut fd = 0u32;
        while let Some((file, cloexec)) = files::fd_next(&mut fd) {
            let info = file.info();
            let (home, id) = match file.proxy() {
                Some((home, id)) => (NodeId(home as u8), id),
                None => {
                    let id = match granted.iter().find(|(k, _)| *k == file.key()) {
                        Some((_, id)) => *id,
                        None => {
                            let id = exports.export(&file, dest, locker)?;
                            granted.push((file.key(), id), GFP_KERNEL)?;
                            id
                        }
                    };
                    (me(), id)
                }
            };
            descs.push(
                FileDesc {
                    fd,
                    cloexec,
                    home,
                    id,
                    f_flags: info.f_flags,
                    f_mode: info.f_mode,
                    i_mode: info.i_mode,
                },
                GFP_KERNEL,
            )?;
            fd = fd.checked_add(1).ok_or(EMFILE)?;
        }
        Ok(())
    })();
    if let Err(e) = result {
        ungrant(&descs, dest);
        return Err(e);
    }
    Ok(descs)
}

/// Takes back the grants [`describe`] made for `dest` (the migration
/// message never reached it).
pub(crate) fn ungrant(descs: &[FileDesc], dest: NodeId) {
    let Some(exports) = EXPORTS.get() else {
        return;
    };
    let mut done: KVec<u64> = KVec::new();
    for d in descs.iter().filter(|d| d.home == me()) {
        if done.contains(&d.id) {
            continue;
        }
        let _ = done.push(d.id, GFP_KERNEL);
        let _ = exports.with_holds(d.id, |h| h.put(dest, 1).map_err(|_| EINVAL));
    }
}

/// Puts back one hold on `(home, id)`, owned by this node.
fn put_hold(home: NodeId, id: u64) {
    if home == me() {
        if let Some(exports) = EXPORTS.get() {
            let _ = exports.with_holds(id, |h| h.put(me(), 1).map_err(|_| EINVAL));
        }
        return;
    }
    let mut buf = [0u8; FilePut::LEN];
    if (FilePut { id, count: 1 }).encode(&mut buf).is_ok() {
        let _ = msg::send(u32::from(home.0), MSG_FILE_PUT, &buf);
    }
}

/// The file a descriptor of an arriving task names: the very file when it
/// is held here, else a new proxy. A file received from `from` that it
/// holds itself comes with a hold granted to this node (which `from`
/// takes back if the arrival fails); one homed on a third node needs a
/// hold of this node's own first.
fn open_desc(d: &FileDesc, from: NodeId) -> Result<File> {
    if d.home == me() {
        let exports = EXPORTS.get().ok_or(ENODEV)?;
        let file = exports.file(d.id, None).ok_or(EBADF)?;
        // Back in its own table, the file's POSIX locks are the task's
        // again, released by its own close, not by the export's end.
        if let Some(owner) = LockOwner::of(kernel::current!()) {
            exports.forget_locker(d.id, owner);
        }
        return Ok(file);
    }
    let own = d.home != from;
    if own {
        let mut buf = [0u8; FilePut::LEN];
        FilePut { id: d.id, count: 1 }
            .encode(&mut buf)
            .map_err(|_| EINVAL)?;
        msg::request_nointr(
            u32::from(d.home.0),
            MSG_FILE_HOLD,
            &buf,
            &mut [],
            file_timeout_ms(),
        )?;
    }
    let info = Info {
        f_flags: d.f_flags,
        f_mode: d.f_mode,
        i_mode: d.i_mode,
    };
    files::proxy_new(u32::from(d.home.0), d.id, &info).inspect_err(|_| {
        if own {
            put_hold(d.home, d.id)
        }
    })
}

/// Installs the descriptors of a task arriving from `from` in the current
/// task's table, which is emptied first. On failure the table is left
/// empty, this node's own holds are put back and the holds `from` granted
/// are left for it to take back (proxies made from them are disowned).
pub(crate) fn install(descs: impl Iterator<Item = FileDesc>, from: NodeId) -> Result {
    files::close_all()?;
    let mut opened: KVec<(NodeId, u64, File)> = KVec::new();
    let result = (|| -> Result {
        for d in descs {
            let file = match opened.iter().find(|(h, id, _)| *h == d.home && *id == d.id) {
                Some((_, _, f)) => f.clone(),
                None => {
                    let f = open_desc(&d, from)?;
                    opened.push((d.home, d.id, f.clone()), GFP_KERNEL)?;
                    f
                }
            };
            files::install_at(d.fd, &file, d.cloexec)?;
        }
        Ok(())
    })();
    if result.is_err() {
        for (home, _, file) in opened.iter() {
            if *home == from {
                file.disown_proxy();
            }
        }
        drop(opened);
        // The process goes on where it was, with its descriptors and its
        // POSIX locks: emptied, not closed (a close would release them).
        let _ = files::leave_all();
    }
    result
}

/// Serves `open(2)` for a migrated task at its origin, in its shadow: the
/// file is opened here and exported with one hold for `to`.
pub(crate) fn open_for(
    path: &kernel::str::CStr,
    flags: i32,
    mode: u32,
    to: NodeId,
) -> Result<FileDesc> {
    let exports = EXPORTS.get().ok_or(ENODEV)?;
    let file = files::open(path, flags, mode)?;
    let id = exports.export(&file, to, None)?;
    let info = file.info();
    Ok(FileDesc {
        fd: 0,
        cloexec: flags as u32 & files::O_CLOEXEC != 0,
        home: me(),
        id,
        f_flags: info.f_flags,
        f_mode: info.f_mode,
        i_mode: info.i_mode,
    })
}

/// Installs the file an `open(2)` forwarded to the origin returned;
/// returns its descriptor.
pub(crate) fn install_opened(d: &FileDesc) -> Result<i64> {
    let info = Info {
        f_flags: d.f_flags,
        f_mode: d.f_mode,
        i_mode: d.i_mode,
    };
    let file = files::proxy_new(u32::from(d.home.0), d.id, &info)
        .inspect_err(|_| put_hold(d.home, d.id))?;
    // On failure the proxy is dropped, which puts its hold back.
    Ok(i64::from(files::install_new(file, d.cloexec)?))
}

/// How a request for a proxy failed.
enum Failed {
    /// The home answered with this error.
    Home(Error),
    /// No valid answer came (the transport's or this node's error).
    NoAnswer(Error),
}

/// Sends one request for a proxy; copies the reply's data into `out` and
/// returns the result and the bytes copied.
fn request(
    p: &Proxy,
    op: FileOp,
    flags: u32,
    a: u64,
    b: u64,
    data: &[u8],
    out: &mut [u8],
) -> Result<(i64, usize)> {
    request_answered(p, op, flags, a, b, data, out).map_err(|f| match f {
        Failed::Home(e) | Failed::NoAnswer(e) => e,
    })
}

/// As [`request`], but tells the home's error from a request that got no
/// valid answer.
fn request_answered(
    p: &Proxy,
    op: FileOp,
    flags: u32,
    a: u64,
    b: u64,
    data: &[u8],
    out: &mut [u8],
) -> core::result::Result<(i64, usize), Failed> {
    let req = FileReq {
        id: p.id(),
        op,
        flags,
        a,
        b,
        data,
    };
    let sent = (|| -> Result<(KVVec<u8>, usize)> {
        let mut buf = KVVec::from_elem(0u8, req.encoded_len(), GFP_KERNEL)?;
        req.encode(&mut buf).map_err(|_| EINVAL)?;
        let mut reply = KVVec::from_elem(0u8, FILE_REPLY_HEAD_LEN + out.len(), GFP_KERNEL)?;
        let n = msg::request_nointr(p.home(), MSG_FILE_REQ, &buf, &mut reply, file_timeout_ms())?;
        Ok((reply, n))
    })();
    let (reply, n) = sent.map_err(Failed::NoAnswer)?;
    let answer = reply
        .get(..n)
        .and_then(|r| FileReply::decode(r).ok())
        .ok_or(Failed::NoAnswer(eproto()))?;
    p.set_mask(answer.mask);
    if answer.result < 0 {
        return Err(Failed::Home(Error::from_errno(answer.result as i32)));
    }
    let len = answer.data.len().min(out.len());
    out[..len].copy_from_slice(&answer.data[..len]);
    Ok((answer.result, len))
}

fn pos_arg(pos: Option<i64>) -> u64 {
    pos.map_or(POS_CURRENT, |p| p as u64)
}

/// The files slot: operations of proxy files here, wake-ups of exports.
pub(crate) struct Proxies;

#[vtable]
impl FileOps for Proxies {
    fn read(p: &Proxy, buf: &mut [u8], pos: Option<i64>, flags: u32) -> Result<usize> {
        let len = buf.len().min(FILE_MAX_DATA);
        let (_, got) = request(
            p,
            FileOp::Read,
            flags,
            len as u64,
            pos_arg(pos),
            &[],
            &mut buf[..len],
        )?;
        Ok(got)
    }

    fn write(p: &Proxy, buf: &[u8], pos: Option<i64>, flags: u32) -> Result<usize> {
        let len = buf.len().min(FILE_MAX_DATA);
        let (n, _) = request(
            p,
            FileOp::Write,
            flags,
            0,
            pos_arg(pos),
            &buf[..len],
            &mut [],
        )?;
        Ok(n as usize)
    }

    fn llseek(p: &Proxy, offset: i64, whence: i32) -> Result<i64> {
        if !(0..=4).contains(&whence) {
            return Err(EINVAL);
        }
        Ok(request(
            p,
            FileOp::Seek,
            0,
            offset as u64,
            whence as u64,
            &[],
            &mut [],
        )?
        .0)
    }

    fn getattr(p: &Proxy, st: &mut Stat) -> Result {
        let mut raw = [0u8; FileStat::LEN];
        let (_, got) = request(p, FileOp::Stat, 0, 0, 0, &[], &mut raw)?;
        if got != raw.len() {
            return Err(eproto());
        }
        let s = FileStat::decode(&raw).map_err(|_| eproto())?;
        *st = Stat {
            dev: s.dev,
            ino: s.ino,
            mode: s.mode,
            nlink: s.nlink,
            uid: s.uid,
            gid: s.gid,
            rdev: s.rdev,
            size: s.size,
            blksize: s.blksize,
            blocks: s.blocks,
            atime: s.atime,
            atime_nsec: s.atime_nsec,
            mtime: s.mtime,
            mtime_nsec: s.mtime_nsec,
            ctime: s.ctime,
            ctime_nsec: s.ctime_nsec,
            btime: s.btime,
            btime_nsec: s.btime_nsec,
            result_mask: s.result_mask,
        };
        Ok(())
    }

    fn fsync(p: &Proxy, datasync: bool) -> Result {
        request(p, FileOp::Fsync, 0, u64::from(datasync), 0, &[], &mut []).map(|_| ())
    }

    fn ioctl(p: &Proxy, cmd: u32, value: u64, input: &[u8], output: &mut [u8]) -> Result<i64> {
        let out_len = output.len().min(IOCTL_MAX_DATA);
        let (r, got) = request(
            p,
            FileOp::Ioctl,
            out_len as u32,
            u64::from(cmd),
            value,
            input,
            &mut output[..out_len],
        )?;
        if got != out_len {
            return Err(eproto());
        }
        Ok(r)
    }

    fn readdir(p: &Proxy, buf: &mut [u8]) -> Result<usize> {
        let len = buf.len().min(FILE_MAX_DATA);
        let (n, got) = request(p, FileOp::Readdir, 0, len as u64, 0, &[], &mut buf[..len])?;
        if n as usize != got {
            return Err(eproto());
        }
        Ok(got)
    }

    fn truncate(p: &Proxy, len: i64) -> Result {
        if len < 0 {
            return Err(EINVAL);
        }
        request(p, FileOp::Truncate, 0, len as u64, 0, &[], &mut []).map(|_| ())
    }

    fn setattr(p: &Proxy, sa: &files::SetAttr) -> Result {
        let time = |t: &files::FileTime| FileTime {
            sec: t.sec,
            nsec: t.nsec,
        };
        let change = match sa.change {
            files::SETATTR_MODE => AttrChange::Mode(sa.mode),
            files::SETATTR_OWNER => AttrChange::Owner {
                uid: sa.uid,
                gid: sa.gid,
            },
            files::SETATTR_TIMES if sa.now => AttrChange::Times(None),
            files::SETATTR_TIMES => {
                AttrChange::Times(Some([time(&sa.times[0]), time(&sa.times[1])]))
            }
            files::SETATTR_FLAGS => AttrChange::Flags(sa.flags & SETFL_FLAGS),
            _ => return Err(EINVAL),
        };
        let mut groups = KVVec::new();
        migration::groups_save(&mut groups)?;
        let attr = SetAttr {
            change,
            creds: crate::migrate::creds_to_proto(&migration::creds_save()),
            groups: &groups,
        };
        let mut data = KVVec::from_elem(0u8, attr.encoded_len(), GFP_KERNEL)?;
        attr.encode(&mut data).map_err(|_| EINVAL)?;
        request(p, FileOp::SetAttr, 0, 0, 0, &data, &mut []).map(|_| ())
    }

    fn lock(p: &Proxy, lock: &mut Lock) -> Result {
        let spec = LockSpec {
            test: lock.test,
            kind: match lock.kind {
                Kind::Ofd => LockKind::Ofd,
                Kind::Flock => LockKind::Flock,
                Kind::Posix => LockKind::Posix,
            },
            ltype: LockType::from_raw(lock.ltype).ok_or(EINVAL)?,
        };
        if lock.start < 0 || lock.end < lock.start {
            return Err(EINVAL);
        }
        // Recorded with the pid the process has cluster-wide; a POSIX lock
        // names the process, whose shadow at the home owns it there.
        let dist = crate::STATE
            .get()
            .and_then(|reg| crate::dist::current_running(&reg));
        let owner = match (spec.kind, &dist) {
            (LockKind::Posix, Some(d)) => Some(d.id),
            // Not a distributed process: it holds no POSIX lock at the
            // home, so it may test (as such an owner) and drop (nothing).
            (LockKind::Posix, None) if spec.test => None,
            (LockKind::Posix, None) if spec.ltype == LockType::Unlock => return Ok(()),
            (LockKind::Posix, None) => return Err(cohort::errno::ENOLCK()),
            _ => None,
        };
        let data = LockData {
            pid: dist.as_ref().map_or(lock.pid, |d| d.id.pid as i32),
            owner,
        };
        let mut buf = [0u8; LockData::POSIX_LEN];
        let len = data.encode(&mut buf).map_err(|_| EINVAL)?;
        let mut raw = [0u8; LockConflict::LEN];
        // What the home answered, or ENOLCK ("a remote locking protocol
        // failed") when no answer came: a transport's EAGAIN must not read
        // as a lock held elsewhere.
        let (_, got) = request_answered(
            p,
            FileOp::Lock,
            spec.flags(),
            lock.start as u64,
            lock.end as u64,
            &buf[..len],
            if spec.test { &mut raw[..] } else { &mut [] },
        )
        .map_err(|f| match f {
            Failed::Home(e) => e,
            Failed::NoAnswer(_) => cohort::errno::ENOLCK(),
        })?;
        if !spec.test {
            return Ok(());
        }
        if got != raw.len() {
            return Err(eproto());
        }
        let c = LockConflict::decode(&raw).map_err(|_| eproto())?;
        if c.kind == 0 {
            lock.ltype = LockType::Unlock.as_raw();
        } else {
            lock.ltype = c.ltype;
            lock.conflict_ofd = c.kind == 2;
            lock.pid = c.pid;
            lock.start = c.start as i64;
            lock.end = c.end as i64;
        }
        Ok(())
    }

    fn arm(p: &Proxy) -> Result<u32> {
        Ok(request(p, FileOp::Poll, 0, 0, 0, &[], &mut [])?.0 as u32)
    }

    fn release(p: &Proxy) {
        put_hold(NodeId(p.home() as u8), p.id());
    }

    fn fired(cookie: u64) {
        if let Some(exports) = EXPORTS.get() {
            exports.fired(cookie);
        }
    }
}

/// Runs one request on `file`; returns the result (or error) and data.
fn serve(
    exports: &Exports,
    file: &File,
    req: &FileReq<'_>,
    src: NodeId,
    data: &mut KVVec<u8>,
) -> Result<i64> {
    let pos = (req.b != POS_CURRENT).then_some(req.b as i64);
    match req.op {
        FileOp::Read => {
            if pos.is_some_and(|p| p < 0) {
                return Err(EINVAL);
            }
            data.extend_with(req.a as usize, 0, GFP_KERNEL)?;
            let n = file.read(data, pos)?;
            kvec::truncate(data, n);
            Ok(n as i64)
        }
        FileOp::Write => {
            if pos.is_some_and(|p| p < 0) {
                return Err(EINVAL);
            }
            Ok(file.write(req.data, pos, req.flags)? as i64)
        }
        FileOp::Seek => file.llseek(req.a as i64, req.b as i32),
        FileOp::Stat => {
            let mut st = Stat::default();
            file.getattr(&mut st)?;
            let s = FileStat {
                dev: st.dev,
                ino: st.ino,
                mode: st.mode,
                nlink: st.nlink,
                uid: st.uid,
                gid: st.gid,
                rdev: st.rdev,
                size: st.size,
                blksize: st.blksize,
                blocks: st.blocks,
                atime: st.atime,
                atime_nsec: st.atime_nsec,
                mtime: st.mtime,
                mtime_nsec: st.mtime_nsec,
                ctime: st.ctime,
                ctime_nsec: st.ctime_nsec,
                btime: st.btime,
                btime_nsec: st.btime_nsec,
                result_mask: st.result_mask,
            };
            data.extend_with(FileStat::LEN, 0, GFP_KERNEL)?;
            s.encode(data).map_err(|_| EINVAL)?;
            Ok(0)
        }
        FileOp::Fsync => file.fsync(req.a == 1).map(|_| 0),
        FileOp::Readdir => {
            data.extend_with(req.a as usize, 0, GFP_KERNEL)?;
            let n = file.readdir(data)?;
            kvec::truncate(data, n);
            Ok(n as i64)
        }
        FileOp::Truncate => file.truncate(req.a as i64).map(|_| 0),
        FileOp::SetAttr => {
            let attr = SetAttrMsg::decode(req.data).map_err(|_| EINVAL)?;
            let mut sa = files::SetAttr::default();
            match attr.change {
                AttrChange::Mode(mode) => {
                    sa.change = files::SETATTR_MODE;
                    sa.mode = mode;
                }
                AttrChange::Owner { uid, gid } => {
                    sa.change = files::SETATTR_OWNER;
                    sa.uid = uid;
                    sa.gid = gid;
                }
                AttrChange::Times(times) => {
                    sa.change = files::SETATTR_TIMES;
                    sa.now = times.is_none();
                    for (to, from) in sa.times.iter_mut().zip(times.iter().flatten()) {
                        to.sec = from.sec;
                        to.nsec = from.nsec;
                    }
                }
                AttrChange::Flags(flags) => {
                    sa.change = files::SETATTR_FLAGS;
                    sa.flags = flags;
                }
            }
            let mut groups = KVVec::with_capacity(attr.nr_groups(), GFP_KERNEL)?;
            for g in attr.groups() {
                groups.push(g, GFP_KERNEL)?;
            }
            let creds = crate::migrate::creds_from_proto(&attr.creds);
            file.setattr(&sa, &creds, &groups).map(|_| 0)
        }
        FileOp::Lock => {
            let spec = LockSpec::from_flags(req.flags).ok_or(EINVAL)?;
            let asked = LockData::decode(spec, req.data).map_err(|_| EINVAL)?;
            // A POSIX lock is the process's shadow's here: its table owns
            // the locks the process held when it left (`leave_all`).
            let owner = match asked.owner {
                Some(id) => Some(
                    crate::STATE
                        .get()
                        .and_then(|reg| reg.find(id))
                        .and_then(|d| LockOwner::of(&d.task))
                        .ok_or_else(cohort::errno::ENOLCK)?,
                ),
                None => None,
            };
            if let (Some(owner), false) = (owner, spec.test) {
                // Recorded first: a lock the export cannot release when it
                // goes is refused rather than leaked.
                exports.add_locker(req.id, owner)?;
            }
            let mut lock = Lock {
                test: spec.test,
                kind: match spec.kind {
                    LockKind::Ofd => Kind::Ofd,
                    LockKind::Flock => Kind::Flock,
                    LockKind::Posix => Kind::Posix,
                },
                ltype: spec.ltype.as_raw(),
                conflict_ofd: false,
                pid: asked.pid,
                start: req.a as i64,
                end: req.b as i64,
                owner,
            };
            file.lock(&mut lock)?;
            if spec.test {
                let c = if lock.ltype == LockType::Unlock.as_raw() {
                    LockConflict::NONE
                } else {
                    LockConflict {
                        kind: if lock.conflict_ofd { 2 } else { 1 },
                        ltype: lock.ltype,
                        start: lock.start as u64,
                        end: (lock.end as u64).min(LOCK_TO_END),
                        pid: lock.pid,
                    }
                };
                data.extend_with(LockConflict::LEN, 0, GFP_KERNEL)?;
                c.encode(data).map_err(|_| EINVAL)?;
            }
            Ok(0)
        }
        FileOp::Poll => exports.arm(req.id, src).map(i64::from),
        FileOp::Ioctl => {
            let mut out = [0u8; IOCTL_MAX_DATA];
            let out = &mut out[..req.flags as usize];
            let r = file.ioctl(req.a as u32, req.b, req.data, out)?;
            data.extend_from_slice(out, GFP_KERNEL)?;
            Ok(r)
        }
    }
}

/// `MSG_FILE_REQ`: an operation of a proxy on a file held here. Never
/// blocks (see `proto::files`).
pub(crate) struct ReqHandler;

impl MsgHandler for ReqHandler {
    const TYPE: u16 = MSG_FILE_REQ;

    fn handle(msg: &Message) {
        let reply = msg.reply_to();
        let Ok(req) = FileReq::decode(msg.data()) else {
            let _ = reply.reply_error(eproto());
            return;
        };
        let (Some(exports), Ok(src)) = (EXPORTS.get(), u8::try_from(msg.src())) else {
            let _ = reply.reply_error(ENODEV);
            return;
        };
        let src = NodeId(src);
        let Some(file) = exports.file(req.id, Some(src)) else {
            let _ = reply.reply_error(EBADF);
            return;
        };
        let mut data = KVVec::new();
        let result = match serve(&exports, &file, &req, src, &mut data) {
            Ok(v) => v,
            Err(e) => {
                kvec::clear(&mut data);
                i64::from(e.to_errno())
            }
        };
        let answer = FileReply {
            result,
            mask: file.poll_mask(),
            data: &data,
        };
        let Ok(mut buf) = KVVec::from_elem(0u8, answer.encoded_len(), GFP_KERNEL) else {
            let _ = reply.reply_error(ENOMEM);
            return;
        };
        match answer.encode(&mut buf) {
            Ok(_) => {
                let _ = reply.reply(&buf);
            }
            Err(_) => {
                let _ = reply.reply_error(eproto());
            }
        }
    }
}

/// `MSG_FILE_PUT`: a node drops holds on a file held here.
pub(crate) struct PutHandler;

impl MsgHandler for PutHandler {
    const TYPE: u16 = MSG_FILE_PUT;

    fn handle(msg: &Message) {
        let (Some(exports), Ok(put), Ok(src)) = (
            EXPORTS.get(),
            FilePut::decode(msg.data()),
            u8::try_from(msg.src()),
        ) else {
            return;
        };
        if exports
            .with_holds(put.id, |h| {
                h.put(NodeId(src), put.count).map_err(|_| EINVAL)
            })
            .is_err()
        {
            pr_info!(
                "node {} put back {} holds on file {} it does not have\n",
                src,
                put.count,
                put.id
            );
        }
    }
}

/// `MSG_FILE_HOLD`: a node that received a file held here takes holds.
pub(crate) struct HoldHandler;

impl MsgHandler for HoldHandler {
    const TYPE: u16 = MSG_FILE_HOLD;

    fn handle(msg: &Message) {
        let reply = msg.reply_to();
        let (Some(exports), Ok(hold), Ok(src)) = (
            EXPORTS.get(),
            FilePut::decode(msg.data()),
            u8::try_from(msg.src()),
        ) else {
            let _ = reply.reply_error(EINVAL);
            return;
        };
        let result = exports.with_holds(hold.id, |h| {
            h.grant(NodeId(src), hold.count).map_err(|_| eoverflow())?;
            Ok(false)
        });
        let _ = match result {
            Ok(()) => reply.reply(&[]),
            Err(e) => reply.reply_error(e),
        };
    }
}

/// `MSG_FILE_READY`: a home reports a file's new poll mask.
pub(crate) struct ReadyHandler;

impl MsgHandler for ReadyHandler {
    const TYPE: u16 = MSG_FILE_READY;

    fn handle(msg: &Message) {
        if let Ok(ready) = FileReady::decode(msg.data()) {
            files::proxy_ready(msg.src(), ready.id, ready.mask);
        }
    }
}

/// Keeps the exports installed while the module is loaded.
pub(crate) fn install_exports() -> Result<kernel::cohort::migration::GlobalGuard<Exports>> {
    EXPORTS.install(Arc::pin_init(Exports::new(), GFP_KERNEL)?)
}
