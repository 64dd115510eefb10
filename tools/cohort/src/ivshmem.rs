//! `cohort ivshmem-server`: QEMU's ivshmem server, for the nodes'
//! `ivshmem-doorbell` devices (Debian ships no `ivshmem-server`).
//!
//! The protocol (QEMU's docs/specs/ivshmem-spec.rst): the server listens
//! on a UNIX socket; it only ever sends, every message one little-endian
//! `i64`, maybe with one file descriptor (SCM_RIGHTS). To each client that
//! connects it sends the protocol version (0), the client's id
//! (0..=65535), -1 with the shared memory's descriptor; then, for every
//! other client, that client's id once per interrupt vector, each with the
//! eventfd that interrupts it on that vector; then its own id once per
//! vector with the eventfds it is interrupted through. Every other client
//! then gets the new one's id with its eventfds, and, when a client's
//! socket closes, its id without a descriptor (it left).
//!
//! The shared memory is a sealed memfd (it can neither shrink nor grow,
//! so no client can make another's mapping fault). With `--nodes N` the
//! server formats it as `cohort_proto::shm_ring` lays out a region for N
//! nodes, so the nodes find it ready.
//!
//! One thread, `poll(2)` on the listener and the clients, a non-blocking
//! accept, at most `--max-clients` clients (one more is refused: its
//! socket is closed). What a client's socket cannot take at once waits in
//! a bounded queue of that client, sent as room comes (a QEMU reads only
//! its first messages while it starts, the rest from its main loop). A
//! client that sends anything (clients never do), or lets its queue
//! overflow, is dropped and the others told it left.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::fs::{self, File};
use std::io::{self, ErrorKind, IoSlice, Read};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::os::unix::fs::{FileExt, FileTypeExt, MetadataExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

use cohort_proto::shm_ring::{Layout, RingMemory};
use nix::fcntl::{fcntl, FcntlArg, SealFlag};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::eventfd::{EfdFlags, EventFd};
use nix::sys::memfd::{memfd_create, MFdFlags};
use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags, UnixAddr};

use crate::sys;
use crate::Fail;

/// The only protocol version (QEMU 2.5 and later).
pub const PROTOCOL_VERSION: i64 = 0;
/// The message that carries the shared memory.
const SHM_MESSAGE: i64 = -1;
/// Ids are 16-bit: the Doorbell register has 16 bits for them.
const ID_SPACE: u32 = 1 << 16;
/// Default shared memory size: 8 MiB.
pub const DEFAULT_SIZE: usize = 8 << 20;

/// What `cohort ivshmem-server` serves.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// The UNIX socket to listen on.
    pub socket: PathBuf,
    /// Bytes of shared memory (a power of two: it becomes a PCI BAR).
    pub size: usize,
    /// Interrupt vectors per client (the devices' `vectors=`).
    pub vectors: u16,
    /// Clients served at once.
    pub max_clients: usize,
    /// Format the memory for this many Cohort nodes.
    pub nodes: Option<usize>,
}

/// `8M`, `64KiB`, `1G`, `4096`: a size in bytes, with binary suffixes.
pub fn parse_size(s: &str) -> Result<usize, String> {
    let t = s.trim();
    let digits = t.bytes().take_while(u8::is_ascii_digit).count();
    let (num, unit) = t.split_at(digits);
    let n: usize = num
        .parse()
        .map_err(|_| format!("{s:?} is not a size (a number, then K, M or G)"))?;
    let shift = match unit.trim().to_ascii_uppercase().as_str() {
        "" | "B" => 0,
        "K" | "KB" | "KIB" => 10,
        "M" | "MB" | "MIB" => 20,
        "G" | "GB" | "GIB" => 30,
        _ => return Err(format!("{s:?}: unknown unit (K, M or G)")),
    };
    n.checked_mul(1 << shift)
        .ok_or_else(|| format!("{s:?} is too large"))
}

/// A size that QEMU can map as a BAR: a power of two, 4 KiB to 64 GiB.
pub fn check_size(size: usize) -> Result<(), String> {
    if !size.is_power_of_two() || !(4096..=(64 << 30)).contains(&size) {
        return Err(format!(
            "shared memory size {size} must be a power of two between 4 KiB and 64 GiB (it becomes a PCI BAR)"
        ));
    }
    Ok(())
}

/// The memfd, as `shm_ring` sees a region (to format it): through
/// pread/pwrite, remembering the first error.
struct FileMem<'a> {
    file: &'a File,
    error: RefCell<Option<io::Error>>,
}

impl FileMem<'_> {
    fn fail(&self, e: io::Error) {
        self.error.borrow_mut().get_or_insert(e);
    }
}

impl RingMemory for FileMem<'_> {
    fn load_acquire_u64(&self, off: usize) -> u64 {
        let mut b = [0u8; 8];
        if let Err(e) = self.file.read_exact_at(&mut b, off as u64) {
            self.fail(e);
        }
        u64::from_le_bytes(b)
    }
    fn store_release_u64(&self, off: usize, val: u64) {
        if let Err(e) = self.file.write_all_at(&val.to_le_bytes(), off as u64) {
            self.fail(e);
        }
    }
    fn read(&self, off: usize, buf: &mut [u8]) {
        if let Err(e) = self.file.read_exact_at(buf, off as u64) {
            self.fail(e);
        }
    }
    fn write(&self, off: usize, bytes: &[u8]) {
        if let Err(e) = self.file.write_all_at(bytes, off as u64) {
            self.fail(e);
        }
    }
    fn fence(&self) {}
}

/// Formats `file` (`size` bytes, zeroed) for `nodes` nodes and reads the
/// header back; returns the layout.
fn format(file: &File, size: usize, nodes: usize) -> Result<Layout, String> {
    let layout = Layout::new(nodes, size)
        .map_err(|e| format!("{size} bytes cannot hold rings for {nodes} nodes ({e:?})"))?;
    let mem = FileMem {
        file,
        error: RefCell::new(None),
    };
    layout.format(&mem);
    let back = Layout::read(&mem, size);
    if let Some(e) = mem.error.take() {
        return Err(format!("cannot write the shared memory: {e}"));
    }
    back.map_err(|e| format!("the formatted region does not read back ({e:?})"))
}

/// A descriptor a queued message carries, named rather than held, so that
/// a queue costs no descriptors; resolved when the message is sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Carried {
    None,
    /// The shared memory.
    Shm,
    /// Vector `vector` of client `owner` (skipped if it left meanwhile:
    /// its departure notice follows).
    Eventfd {
        owner: u16,
        vector: u16,
    },
}

/// One connected client.
struct Client {
    id: u16,
    stream: UnixStream,
    /// Its interrupt vectors: peers write to them to interrupt it.
    eventfds: Vec<EventFd>,
    /// Messages not sent yet (its socket was full), oldest first.
    out: VecDeque<(i64, Carried)>,
}

/// The server: its socket, the shared memory and the clients.
pub struct Server {
    listener: UnixListener,
    socket: PathBuf,
    /// (device, inode) of the socket file this server made.
    inode: Option<(u64, u64)>,
    shm: File,
    vectors: u16,
    max_clients: usize,
    clients: Vec<Client>,
    /// Where the search for a free id starts: ids are not reused at once,
    /// so a late doorbell for a client that left does not hit a new one.
    next_id: u32,
    layout: Option<Layout>,
}

/// Sends one message, `val` and maybe a descriptor, without blocking
/// (`WouldBlock` when the socket is full); a short send is an error.
fn send(stream: &UnixStream, val: i64, fd: Option<BorrowedFd>) -> io::Result<()> {
    let bytes = val.to_le_bytes();
    let iov = [IoSlice::new(&bytes)];
    let raw;
    let cmsgs: &[ControlMessage] = match fd {
        Some(fd) => {
            raw = [fd.as_raw_fd()];
            &[ControlMessage::ScmRights(&raw)]
        }
        None => &[],
    };
    let n = sendmsg::<UnixAddr>(
        stream.as_raw_fd(),
        &iov,
        cmsgs,
        MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_NOSIGNAL,
        None,
    )
    .map_err(io::Error::from)?;
    if n != bytes.len() {
        return Err(io::Error::new(
            ErrorKind::WriteZero,
            format!("sent {n} of 8 bytes"),
        ));
    }
    Ok(())
}

impl Server {
    /// Creates the shared memory and listens on `cfg.socket` (a stale
    /// socket left by a dead server is replaced; a live one is an error).
    pub fn bind(cfg: &ServerConfig) -> Result<Server, String> {
        check_size(cfg.size)?;
        if cfg.vectors == 0 || cfg.max_clients == 0 {
            return Err("vectors and max clients must be at least 1".into());
        }
        let fd = memfd_create(
            c"cohort-ivshmem",
            MFdFlags::MFD_CLOEXEC | MFdFlags::MFD_ALLOW_SEALING,
        )
        .map_err(|e| format!("memfd_create: {e}"))?;
        let shm = File::from(fd);
        shm.set_len(cfg.size as u64)
            .map_err(|e| format!("cannot size the shared memory to {}: {e}", cfg.size))?;
        let layout = match cfg.nodes {
            Some(n) => Some(format(&shm, cfg.size, n)?),
            None => None,
        };
        fcntl(
            &shm,
            FcntlArg::F_ADD_SEALS(
                SealFlag::F_SEAL_SHRINK | SealFlag::F_SEAL_GROW | SealFlag::F_SEAL_SEAL,
            ),
        )
        .map_err(|e| format!("cannot seal the shared memory: {e}"))?;
        remove_stale_socket(&cfg.socket)?;
        let listener = UnixListener::bind(&cfg.socket)
            .map_err(|e| format!("cannot listen on {}: {e}", cfg.socket.display()))?;
        if let Err(e) = listener.set_nonblocking(true) {
            let _ = fs::remove_file(&cfg.socket);
            return Err(format!("{}: {e}", cfg.socket.display()));
        }
        // Remembered so that drop removes this very socket, not one another
        // server made at the same path since.
        let inode = fs::symlink_metadata(&cfg.socket)
            .map(|m| (m.dev(), m.ino()))
            .ok();
        Ok(Server {
            listener,
            socket: cfg.socket.clone(),
            inode,
            shm,
            vectors: cfg.vectors,
            max_clients: cfg.max_clients,
            clients: vec![],
            next_id: 0,
            layout,
        })
    }

    /// What `bind` formatted, if anything.
    pub fn layout(&self) -> Option<Layout> {
        self.layout
    }

    /// The ids of the connected clients, in order of arrival.
    pub fn client_ids(&self) -> Vec<u16> {
        self.clients.iter().map(|c| c.id).collect()
    }

    /// Waits up to `timeout` for something to happen, then serves it:
    /// clients that left or misbehaved, sockets with room for queued
    /// messages, new connections.
    pub fn step(&mut self, timeout: Duration) -> Result<(), String> {
        let (listener_ready, readable, writable) = {
            let mut fds = Vec::with_capacity(1 + self.clients.len());
            fds.push(PollFd::new(self.listener.as_fd(), PollFlags::POLLIN));
            for c in &self.clients {
                let mut flags = PollFlags::POLLIN;
                if !c.out.is_empty() {
                    flags |= PollFlags::POLLOUT;
                }
                fds.push(PollFd::new(c.stream.as_fd(), flags));
            }
            let t = PollTimeout::try_from(timeout).unwrap_or(PollTimeout::MAX);
            match poll(&mut fds, t) {
                Ok(_) => {}
                Err(nix::errno::Errno::EINTR) => return Ok(()),
                Err(e) => return Err(format!("poll: {e}")),
            }
            let has = |fd: &PollFd, f: PollFlags| fd.revents().is_some_and(|r| r.intersects(f));
            let ids = |f: PollFlags| -> Vec<u16> {
                fds[1..]
                    .iter()
                    .zip(&self.clients)
                    .filter(|(fd, _)| has(fd, f))
                    .map(|(_, c)| c.id)
                    .collect()
            };
            let hangup = PollFlags::POLLIN | PollFlags::POLLHUP | PollFlags::POLLERR;
            (
                has(&fds[0], PollFlags::POLLIN),
                ids(hangup),
                ids(PollFlags::POLLOUT),
            )
        };
        let mut gone = vec![];
        for id in readable {
            if let Some(why) = self.check_client(id) {
                gone.push((id, why));
            }
        }
        for id in writable {
            if let Err(why) = self.flush(id) {
                gone.push((id, why));
            }
        }
        self.remove(gone);
        if listener_ready {
            self.accept_all();
        }
        Ok(())
    }

    /// A client whose socket polled readable: `Some(why)` if it must go.
    fn check_client(&mut self, id: u16) -> Option<String> {
        let c = self.clients.iter_mut().find(|c| c.id == id)?;
        let mut buf = [0u8; 64];
        match (&c.stream).read(&mut buf) {
            // A client killed with our messages unread resets its end.
            Ok(0) => Some("left".into()),
            Err(e) if e.kind() == ErrorKind::ConnectionReset => Some("left".into()),
            Ok(n) => Some(format!(
                "dropped: it sent {n} byte(s), and clients never send"
            )),
            Err(e) if e.kind() == ErrorKind::WouldBlock || e.kind() == ErrorKind::Interrupted => {
                None
            }
            Err(e) => Some(format!("dropped: {e}")),
        }
    }

    /// Accepts what is waiting (a bounded number per step).
    fn accept_all(&mut self) {
        for _ in 0..=self.max_clients.min(64) {
            match self.listener.accept() {
                Ok((stream, _)) => self.admit(stream),
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => {
                    eprintln!("[ivshmem] accept: {e}");
                    return;
                }
            }
        }
    }

    /// The next id no client has, from `next_id` on.
    fn free_id(&mut self) -> u16 {
        for k in 0..ID_SPACE {
            let id = ((self.next_id + k) % ID_SPACE) as u16;
            if !self.clients.iter().any(|c| c.id == id) {
                self.next_id = (id as u32 + 1) % ID_SPACE;
                return id;
            }
        }
        unreachable!("at most max_clients (< 65536) ids are in use")
    }

    /// Most messages a client may have waiting: its setup and a few rounds
    /// of every other client coming and going. A client that lets more
    /// pile up does not read its socket, and is dropped.
    fn queue_limit(&self) -> usize {
        8 * (self.max_clients + 1) * (self.vectors as usize + 1)
    }

    /// Queues a message for client `id`: `Err(why)` if it cannot take it.
    fn queue(&mut self, id: u16, val: i64, fd: Carried) -> Result<(), String> {
        let limit = self.queue_limit();
        let Some(c) = self.clients.iter_mut().find(|c| c.id == id) else {
            return Ok(());
        };
        if c.out.len() >= limit {
            return Err(format!(
                "dropped: it does not read its messages ({limit} waiting)"
            ));
        }
        c.out.push_back((val, fd));
        Ok(())
    }

    /// Sends what client `id` has queued, until its socket is full.
    fn flush(&mut self, id: u16) -> Result<(), String> {
        let Some(i) = self.clients.iter().position(|c| c.id == id) else {
            return Ok(());
        };
        while let Some(&(val, carried)) = self.clients[i].out.front() {
            let fd = match carried {
                Carried::None => None,
                Carried::Shm => Some(self.shm.as_fd()),
                Carried::Eventfd { owner, vector } => {
                    match self.clients.iter().find(|c| c.id == owner) {
                        Some(o) => Some(o.eventfds[vector as usize].as_fd()),
                        None => {
                            self.clients[i].out.pop_front();
                            continue;
                        }
                    }
                }
            };
            match send(&self.clients[i].stream, val, fd) {
                Ok(()) => {}
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(()),
                Err(e) => return Err(format!("dropped: {e}")),
            }
            self.clients[i].out.pop_front();
        }
        Ok(())
    }

    /// Sets up a new connection, or refuses it.
    fn admit(&mut self, stream: UnixStream) {
        if self.clients.len() >= self.max_clients {
            println!(
                "[ivshmem] connection refused: {} clients already (--max-clients)",
                self.clients.len()
            );
            return;
        }
        if let Err(e) = stream.set_nonblocking(true) {
            println!("[ivshmem] connection dropped: {e}");
            return;
        }
        let eventfds: Result<Vec<EventFd>, _> = (0..self.vectors)
            .map(|_| EventFd::from_flags(EfdFlags::EFD_CLOEXEC))
            .collect();
        let eventfds = match eventfds {
            Ok(v) => v,
            Err(e) => {
                println!("[ivshmem] connection dropped: eventfd: {e}");
                return;
            }
        };
        let id = self.free_id();
        let mut out = VecDeque::new();
        out.push_back((PROTOCOL_VERSION, Carried::None));
        out.push_back((id as i64, Carried::None));
        out.push_back((SHM_MESSAGE, Carried::Shm));
        for owner in self.clients.iter().map(|c| c.id).chain([id]) {
            for vector in 0..self.vectors {
                out.push_back((owner as i64, Carried::Eventfd { owner, vector }));
            }
        }
        let peers = self.client_ids();
        self.clients.push(Client {
            id,
            stream,
            eventfds,
            out,
        });
        let mut gone = vec![];
        for peer in peers {
            for vector in 0..self.vectors {
                let fd = Carried::Eventfd { owner: id, vector };
                if let Err(why) = self.queue(peer, id as i64, fd) {
                    gone.push((peer, why));
                    break;
                }
            }
        }
        for c in self.client_ids() {
            if let Err(why) = self.flush(c) {
                gone.push((c, why));
            }
        }
        println!(
            "[ivshmem] client {id} connected ({} client(s): {:?})",
            self.clients.len(),
            self.client_ids()
        );
        self.remove(gone);
    }

    /// Removes clients and tells the others; a client that cannot be told
    /// is removed in turn.
    fn remove(&mut self, mut gone: Vec<(u16, String)>) {
        while let Some((id, why)) = gone.pop() {
            let Some(pos) = self.clients.iter().position(|c| c.id == id) else {
                continue;
            };
            self.clients.remove(pos);
            println!(
                "[ivshmem] client {id} {why} ({} client(s) left)",
                self.clients.len()
            );
            for peer in self.client_ids() {
                if let Err(why) = self
                    .queue(peer, id as i64, Carried::None)
                    .and_then(|_| self.flush(peer))
                {
                    if !gone.iter().any(|(g, _)| *g == peer) {
                        gone.push((peer, why));
                    }
                }
            }
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let now = fs::symlink_metadata(&self.socket)
            .map(|m| (m.dev(), m.ino()))
            .ok();
        if now.is_some() && now == self.inode {
            let _ = fs::remove_file(&self.socket);
        }
    }
}

/// A socket file at `path` with no server behind it is removed; one that
/// answers, or anything that is not a socket, is an error.
fn remove_stale_socket(path: &Path) -> Result<(), String> {
    let Ok(meta) = fs::symlink_metadata(path) else {
        return Ok(());
    };
    if !meta.file_type().is_socket() {
        return Err(format!("{} exists and is not a socket", path.display()));
    }
    match UnixStream::connect(path) {
        Ok(_) => Err(format!(
            "{} is in use: another ivshmem server listens there",
            path.display()
        )),
        Err(_) => fs::remove_file(path)
            .map_err(|e| format!("cannot remove the stale {}: {e}", path.display())),
    }
}

/// `cohort ivshmem-server`: serve until SIGTERM or SIGINT. The pid file,
/// if any, is written once the socket listens, and removed at exit.
pub fn run(cfg: &ServerConfig, pidfile: Option<&Path>) -> Result<(), Fail> {
    let mut server = Server::bind(cfg).map_err(|e| Fail::new(1, e))?;
    sys::catch_interrupts();
    if let Some(p) = pidfile {
        let tmp = p.with_extension("pid.tmp");
        fs::write(&tmp, format!("{}\n", std::process::id()))
            .and_then(|_| fs::rename(&tmp, p))
            .map_err(|e| Fail::new(1, format!("cannot write {}: {e}", p.display())))?;
    }
    let layout = match server.layout() {
        Some(l) => format!(
            ", formatted for {} nodes, rings of {} bytes",
            l.nr_nodes(),
            l.ring_size()
        ),
        None => String::new(),
    };
    println!(
        "[ivshmem] pid {} listening on {}: {} bytes of shared memory{layout}, {} vector(s), at most {} clients",
        std::process::id(),
        cfg.socket.display(),
        cfg.size,
        cfg.vectors,
        cfg.max_clients
    );
    let result = loop {
        if sys::interrupted() {
            println!("[ivshmem] stopping");
            break Ok(());
        }
        if let Err(e) = server.step(Duration::from_millis(250)) {
            break Err(Fail::new(1, e));
        }
    };
    drop(server);
    if let Some(p) = pidfile {
        if crate::state::State::read_pid(p) == Some(std::process::id()) {
            let _ = fs::remove_file(p);
        }
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::sys::socket::{recvmsg, ControlMessageOwned};
    use std::io::{IoSliceMut, Write};
    use std::os::fd::{FromRawFd, OwnedFd};
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    use std::thread::{self, JoinHandle};

    #[test]
    fn sizes() {
        assert_eq!(parse_size("8M"), Ok(8 << 20));
        assert_eq!(parse_size("64KiB"), Ok(64 << 10));
        assert_eq!(parse_size("1g"), Ok(1 << 30));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert!(parse_size("M").is_err());
        assert!(parse_size("8T").is_err());
        assert!(parse_size("99999999999999999999G").is_err());
        assert!(check_size(8 << 20).is_ok());
        assert!(check_size(3 << 20).is_err());
        assert!(check_size(2048).is_err());
    }

    /// A server on a socket in a fresh directory, stepped by a thread
    /// until stopped.
    struct Running {
        dir: PathBuf,
        socket: PathBuf,
        stop: Arc<AtomicBool>,
        thread: Option<JoinHandle<Server>>,
    }

    impl Running {
        fn start(
            name: &str,
            size: usize,
            vectors: u16,
            max: usize,
            nodes: Option<usize>,
        ) -> Running {
            let dir =
                std::env::temp_dir().join(format!("cohort-ivshmem-{}-{name}", std::process::id()));
            let _ = fs::remove_dir_all(&dir);
            fs::create_dir_all(&dir).unwrap();
            let socket = dir.join("s");
            let cfg = ServerConfig {
                socket: socket.clone(),
                size,
                vectors,
                max_clients: max,
                nodes,
            };
            let mut server = Server::bind(&cfg).unwrap();
            let stop = Arc::new(AtomicBool::new(false));
            let s = stop.clone();
            let thread = thread::spawn(move || {
                while !s.load(Ordering::Relaxed) {
                    server.step(Duration::from_millis(10)).unwrap();
                }
                server
            });
            Running {
                dir,
                socket,
                stop,
                thread: Some(thread),
            }
        }

        fn stop(&mut self) -> Server {
            self.stop.store(true, Ordering::Relaxed);
            self.thread.take().unwrap().join().unwrap()
        }
    }

    impl Drop for Running {
        fn drop(&mut self) {
            if self.thread.is_some() {
                drop(self.stop());
            }
            let _ = fs::remove_dir_all(&self.dir);
        }
    }

    /// A fake client: what QEMU's ivshmem-doorbell receives.
    struct Fake {
        stream: UnixStream,
        id: i64,
        shm: File,
        /// Its own eventfds (it is interrupted through them).
        own: Vec<File>,
        /// Each peer's eventfds (to interrupt it), by id.
        peers: BTreeMap<i64, Vec<File>>,
    }

    use std::collections::BTreeMap;

    /// One message: `None` at end of stream.
    fn recv(stream: &UnixStream) -> Option<(i64, Option<File>)> {
        let mut b = [0u8; 8];
        let mut iov = [IoSliceMut::new(&mut b)];
        let mut space = nix::cmsg_space!([std::os::fd::RawFd; 1]);
        let msg = recvmsg::<UnixAddr>(
            stream.as_raw_fd(),
            &mut iov,
            Some(&mut space),
            MsgFlags::MSG_CMSG_CLOEXEC,
        )
        .expect("recvmsg (timed out?)");
        if msg.bytes == 0 {
            return None;
        }
        assert_eq!(msg.bytes, 8, "messages are 8 bytes");
        let mut fd = None;
        for c in msg.cmsgs().unwrap() {
            if let ControlMessageOwned::ScmRights(fds) = c {
                assert_eq!(fds.len(), 1);
                // SAFETY: the kernel just installed this descriptor in our
                // table for this message; nothing else owns it.
                fd = Some(File::from(unsafe { OwnedFd::from_raw_fd(fds[0]) }));
            }
        }
        Some((i64::from_le_bytes(b), fd))
    }

    impl Fake {
        /// Connects and reads the setup messages, as QEMU does.
        fn connect(socket: &Path, vectors: usize, peers_before: &[i64]) -> Fake {
            let stream = UnixStream::connect(socket).unwrap();
            stream
                .set_read_timeout(Some(Duration::from_secs(5)))
                .unwrap();
            assert!(matches!(recv(&stream), Some((PROTOCOL_VERSION, None))));
            let (id, fd) = recv(&stream).unwrap();
            assert!(fd.is_none() && (0..65536).contains(&id));
            let (m, shm) = recv(&stream).unwrap();
            assert_eq!(m, SHM_MESSAGE);
            let mut f = Fake {
                stream,
                id,
                shm: shm.expect("the shared memory comes with -1"),
                own: vec![],
                peers: BTreeMap::new(),
            };
            for &p in peers_before {
                f.expect_peer(p, vectors);
            }
            for _ in 0..vectors {
                let (m, fd) = recv(&f.stream).unwrap();
                assert_eq!(m, id, "own interrupt setup");
                f.own.push(fd.expect("an eventfd"));
            }
            f
        }

        /// The next messages announce `peer` with `vectors` eventfds.
        fn expect_peer(&mut self, peer: i64, vectors: usize) {
            let fds = (0..vectors)
                .map(|_| {
                    let (m, fd) = recv(&self.stream).unwrap();
                    assert_eq!(m, peer);
                    fd.expect("a connect notice has an eventfd")
                })
                .collect();
            self.peers.insert(peer, fds);
        }

        /// The next message says `peer` left.
        fn expect_gone(&mut self, peer: i64) {
            assert!(matches!(recv(&self.stream), Some((m, None)) if m == peer));
            self.peers.remove(&peer);
        }

        /// Rings `peer` on `vector`.
        fn ring(&self, peer: i64, vector: usize) {
            (&self.peers[&peer][vector])
                .write_all(&1u64.to_ne_bytes())
                .unwrap();
        }

        /// The count on own vector `vector`, 0 if nothing is pending.
        fn pending(&self, vector: usize) -> u64 {
            let fd = self.own[vector].as_fd();
            let mut p = [PollFd::new(fd, PollFlags::POLLIN)];
            if poll(&mut p, PollTimeout::from(200u16)).unwrap() == 0 {
                return 0;
            }
            let mut b = [0u8; 8];
            (&self.own[vector]).read_exact(&mut b).unwrap();
            u64::from_ne_bytes(b)
        }
    }

    #[test]
    fn clients_get_ids_memory_and_each_others_doorbells() {
        let r = Running::start("peers", 1 << 20, 2, 8, Some(3));
        let mut a = Fake::connect(&r.socket, 2, &[]);
        assert_eq!(a.id, 0);
        assert_eq!(a.shm.metadata().unwrap().len(), 1 << 20);
        let mut b = Fake::connect(&r.socket, 2, &[0]);
        assert_eq!(b.id, 1);
        a.expect_peer(1, 2);
        let c = Fake::connect(&r.socket, 2, &[0, 1]);
        assert_eq!(c.id, 2);
        a.expect_peer(2, 2);
        b.expect_peer(2, 2);
        // Every client maps the same memory, formatted for 3 nodes.
        a.shm.write_all_at(b"hello", 1 << 19).unwrap();
        let mut buf = [0u8; 5];
        c.shm.read_exact_at(&mut buf, 1 << 19).unwrap();
        assert_eq!(&buf, b"hello");
        let mem = FileMem {
            file: &b.shm,
            error: RefCell::new(None),
        };
        assert_eq!(Layout::read(&mem, 1 << 20).unwrap().nr_nodes(), 3);
        // The memory is sealed: no client can shrink it under the others.
        assert!(c.shm.set_len(4096).is_err());
        // A doorbell reaches exactly the peer and vector it names.
        a.ring(1, 1);
        assert_eq!(b.pending(1), 1);
        assert_eq!(b.pending(0), 0);
        assert_eq!(c.pending(1), 0);
        c.ring(0, 0);
        c.ring(0, 0);
        b.ring(0, 0);
        assert_eq!(a.pending(0), 3);
        assert_eq!(a.pending(0), 0);
        // B leaves: A and C are told, and a newcomer gets a fresh id.
        drop(b);
        a.expect_gone(1);
        let mut c = c;
        c.expect_gone(1);
        let d = Fake::connect(&r.socket, 2, &[0, 2]);
        assert_eq!(d.id, 3);
        a.expect_peer(3, 2);
        c.expect_peer(3, 2);
        d.ring(2, 0);
        assert_eq!(c.pending(0), 1);
    }

    /// A client that reads nothing while 40 peers with 8 vectors each come
    /// (more descriptors than its socket buffer holds) still gets every
    /// message once it reads.
    #[test]
    fn a_client_that_reads_late_gets_everything() {
        let r = Running::start("late", 4096, 8, 48, None);
        let late = UnixStream::connect(&r.socket).unwrap();
        late.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut others = vec![];
        for k in 1..=40 {
            let before: Vec<i64> = (0..k).collect();
            let f = Fake::connect(&r.socket, 8, &before);
            assert_eq!(f.id, k);
            others.push(f);
        }
        let mut a = Fake {
            stream: late,
            id: 0,
            shm: tempfile_stand_in(),
            own: vec![],
            peers: BTreeMap::new(),
        };
        assert!(matches!(recv(&a.stream), Some((PROTOCOL_VERSION, None))));
        assert!(matches!(recv(&a.stream), Some((0, None))));
        assert!(matches!(recv(&a.stream), Some((SHM_MESSAGE, Some(_)))));
        for _ in 0..8 {
            assert!(matches!(recv(&a.stream), Some((0, Some(_)))));
        }
        for k in 1..=40 {
            a.expect_peer(k, 8);
        }
        others[39].ring(0, 7);
        assert_eq!(others.len(), 40);
        drop(others);
        // They leave in whatever order the server sees them go.
        let mut left: Vec<i64> = (0..40)
            .map(|_| match recv(&a.stream) {
                Some((id, None)) => id,
                other => panic!("not a departure: {other:?}"),
            })
            .collect();
        left.sort_unstable();
        assert_eq!(left, (1..=40).collect::<Vec<i64>>());
    }

    /// Any file, to fill a `Fake` whose memory is not looked at.
    fn tempfile_stand_in() -> File {
        File::open("/dev/null").unwrap()
    }

    #[test]
    fn too_many_clients_and_misbehaving_ones_are_dropped() {
        let mut r = Running::start("bounds", 4096, 1, 2, None);
        let mut a = Fake::connect(&r.socket, 1, &[]);
        let mut b = Fake::connect(&r.socket, 1, &[0]);
        a.expect_peer(1, 1);
        // A third is refused: its socket closes before any message.
        let third = UnixStream::connect(&r.socket).unwrap();
        third
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        assert!(recv(&third).is_none());
        // B talks (QEMU never does): dropped, A told.
        (&b.stream).write_all(b"hi").unwrap();
        a.expect_gone(1);
        assert!(recv(&b.stream).is_none(), "its socket is closed");
        b.peers.clear();
        // Room again.
        let c = Fake::connect(&r.socket, 1, &[0]);
        assert_eq!(c.id, 2);
        a.expect_peer(2, 1);
        let server = r.stop();
        assert_eq!(server.client_ids(), vec![0, 2]);
        assert_eq!(server.layout(), None);
        drop(server);
        assert!(!r.socket.exists(), "the socket goes with the server");
    }

    #[test]
    fn a_live_socket_is_not_taken_over_and_a_stale_one_is() {
        let r = Running::start("stale", 4096, 1, 4, None);
        let cfg = ServerConfig {
            socket: r.socket.clone(),
            size: 4096,
            vectors: 1,
            max_clients: 4,
            nodes: None,
        };
        let e = Server::bind(&cfg).err().unwrap();
        assert!(e.contains("in use"), "{e}");
        // A socket file nobody listens on is replaced.
        let stale = r.dir.join("stale");
        drop(UnixListener::bind(&stale).unwrap());
        assert!(stale.exists());
        let s = Server::bind(&ServerConfig {
            socket: stale.clone(),
            ..cfg.clone()
        })
        .unwrap();
        drop(s);
        assert!(!stale.exists());
        // A regular file is not a socket to replace.
        fs::write(&stale, "x").unwrap();
        let e = Server::bind(&ServerConfig {
            socket: stale,
            ..cfg.clone()
        })
        .err()
        .unwrap();
        assert!(e.contains("not a socket"), "{e}");
        // Nor is a size QEMU cannot map, or too small a region for the nodes.
        let e = Server::bind(&ServerConfig {
            socket: r.dir.join("x"),
            size: 3 << 20,
            ..cfg.clone()
        })
        .err()
        .unwrap();
        assert!(e.contains("power of two"), "{e}");
        let e = Server::bind(&ServerConfig {
            socket: r.dir.join("y"),
            size: 4096,
            nodes: Some(8),
            ..cfg
        })
        .err()
        .unwrap();
        assert!(e.contains("cannot hold"), "{e}");
    }
}
