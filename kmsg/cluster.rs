// SPDX-License-Identifier: GPL-2.0

//! Connections to the other nodes: forming the mesh, sending, receiving,
//! and noticing when a peer dies.
//!
//! For each pair of nodes the higher id dials the lower, so the mesh forms
//! whatever the boot order: the dialer retries until the peer listens, and
//! the listener hands an accepted connection to the peer's link thread
//! after reading the dialer's `Hello`. A new connection from a peer replaces
//! the old one (the peer restarted). A peer silent for the heartbeat timeout
//! is marked down: its connection is shut, and every request waiting on it
//! fails.
//!
//! Receiving runs in the socket's `data_ready` callback (softirq): frames
//! are parsed as bytes arrive, a reply wakes its requester directly, and
//! everything that needs process context is queued: pings and stream syncs
//! to the peer's link thread, messages for handlers to its dispatcher, and
//! the buffer of a message too large to allocate atomically to the link
//! thread, after which parsing resumes. Nothing on the receive path waits,
//! so a handler waiting for a reply cannot block that reply.
//!
//! Threads: one listener, one heartbeat thread, and per peer a link thread
//! (connects, answers pings, allocates large buffers, tears down) and a
//! dispatcher (runs handlers, which may sleep, in arrival order).
//!
//! Authentication (`cohort_proto::auth`): before a connection carries
//! anything, the listener answers the dialer's `Hello` with a challenge
//! and, with a cluster key, each end proves it holds the key; both derive
//! one session key per direction. Every later frame carries a tag after its
//! payload, which the receive path computes as the bytes arrive and checks
//! before the frame is checksummed, reassembled or delivered: a header is
//! decoded only to find where its frame ends. A wrong tag (a forged,
//! altered, replayed or reordered frame) resets the connection.

use crate::proto::auth::{
    self, AuthMode, Challenge, Proof, Role, Sequence, SessionKeys, Transcript, KEY_FILE_MAX,
    TAG_LEN,
};
use crate::proto::liveness::{Silence, Ticks, Verdict};
use crate::proto::node::NodeId;
use crate::proto::wire::{
    self, Envelope, ErrorReply, Fragmenter, Header, Heartbeat, Hello, Payload, Ping, Pong,
    Reassembler, Refusal, StreamSync, HEADER_LEN, NONCE_LEN,
};
use crate::requests::Requests;
use crate::shm::{Pipe, PipeConn, Shm, POLL_MS};
use core::ops::Range;
use core::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use kernel::alloc::KVVec;
use kernel::cohort::mac::{self, Hmac, Secret, Tagger, MAC_LEN};
use kernel::cohort::net::{IpAddr, ReceiveHandler, Receiving, SockReader, TcpSocket};
use kernel::cohort::sync_bh::SpinLockBh;
use kernel::cohort::{self, errno, msg, thread};
use kernel::prelude::*;
use kernel::sync::{Arc, CondVar, Mutex};
use kernel::time::msecs_to_jiffies;
use kernel::{c_str, new_condvar, new_mutex, new_spinlock_bh};

/// How often each connection carries at least a heartbeat.
pub(crate) const HEARTBEAT_INTERVAL_MS: u32 = 250;
/// How late the heartbeat thread's sleep may end before the excess counts
/// as time this node did not run (and not as silence of its peers).
const STALL_MS: u32 = 500;
/// How much longer than the heartbeat timeout kmsg's own requests (ping,
/// stream sync, the debugfs round trips) wait for their reply: a request
/// to a peer that dies then fails with `EHOSTDOWN` when the peer is
/// declared down, not with `ETIMEDOUT` before.
const REQUEST_MARGIN_MS: u32 = 3000;
/// Bytes for the key file's path, its terminating NUL included: a longer
/// `cohort.key_file` is refused (`ENAMETOOLONG`), never cut short.
const KEY_PATH_MAX: usize = 128;
/// How long a dial may take before it is retried.
const CONNECT_TIMEOUT_MS: u32 = 1000;
/// Pause between dial attempts.
const REDIAL_MS: u32 = 500;
/// How long a new connection has, in all, to introduce itself. The
/// listener serves one connection at a time, so this bounds how long a
/// connection that never introduces itself (or trickles its bytes) keeps
/// the others waiting.
const HELLO_TIMEOUT_MS: u32 = 1000;
/// How long a dialer waits for the listener's challenge, and a listener
/// for the dialer's proof once it sent its challenge.
const CHALLENGE_TIMEOUT_MS: u32 = 3000;
/// Warnings about bad frames and connections a rogue sender can provoke:
/// at most this many per [`WARN_WINDOW_MS`], then one line saying how many
/// were left out.
const WARN_BURST: u32 = 10;
const WARN_WINDOW_MS: u64 = 5000;
/// Largest message whose buffer is allocated in softirq context.
const ATOMIC_MESSAGE_MAX: usize = 16 * 1024;

/// The kernel's `hmac(sha256)` as the handshake computes it.
impl auth::Mac for Hmac {
    type Error = Error;

    fn mac(&self, parts: &[&[u8]]) -> Result<[u8; MAC_LEN]> {
        self.digest(parts)
    }
}

/// The kernel crypto library's ChaCha20 and Poly1305 as frame tags use
/// them.
impl auth::FrameMac for Tagger {
    fn begin(&mut self, seq: u64) {
        Tagger::begin(self, seq)
    }

    fn update(&mut self, data: &[u8]) {
        Tagger::update(self, data)
    }

    fn finish(&mut self) -> [u8; TAG_LEN] {
        Tagger::finish(self)
    }
}

/// Link states, as shown in debugfs.
const DOWN: u8 = 0;
const UP: u8 = 1;

/// Per-peer counters, shown in debugfs.
#[derive(Default)]
pub(crate) struct Counters {
    pub(crate) tx_msgs: AtomicU64,
    pub(crate) rx_msgs: AtomicU64,
    pub(crate) tx_bytes: AtomicU64,
    pub(crate) rx_bytes: AtomicU64,
    /// Malformed frames that forced a connection reset.
    pub(crate) errors: AtomicU64,
    /// Frames dropped with the stream still aligned.
    pub(crate) drops: AtomicU64,
    /// Connections torn down, for any reason.
    pub(crate) resets: AtomicU64,
    /// Times the peer came up.
    pub(crate) ups: AtomicU64,
    /// Last ping round trip.
    pub(crate) rtt_ns: AtomicU64,
    /// Bytes of stream data received.
    pub(crate) stream_bytes: AtomicU64,
    /// Bytes of stream data sent.
    pub(crate) stream_sent: AtomicU64,
    /// Frames whose tag was wrong (each one also counts in `errors`).
    pub(crate) bad_tags: AtomicU64,
    /// Handshakes this node dialed that failed: the listener's proof was
    /// wrong, or its challenge malformed or late.
    pub(crate) auth_failures: AtomicU64,
    /// Monotonic time of the last frame received and sent.
    last_rx_ns: AtomicU64,
    last_tx_ns: AtomicU64,
}

fn bump(counter: &AtomicU64, by: u64) {
    counter.fetch_add(by, Ordering::Relaxed);
}

/// Per-message-type counters, shown in debugfs.
#[derive(Default)]
pub(crate) struct TypeCounters {
    pub(crate) tx_msgs: AtomicU64,
    pub(crate) rx_msgs: AtomicU64,
    pub(crate) tx_bytes: AtomicU64,
    pub(crate) rx_bytes: AtomicU64,
}

/// Counters of the listener, shown in debugfs `listener`: what became of
/// the connections other hosts opened to this node.
#[derive(Default)]
pub(crate) struct ListenerCounters {
    /// Connections accepted.
    pub(crate) accepted: AtomicU64,
    /// Connections handed to their peer's link after a valid `Hello`.
    pub(crate) introduced: AtomicU64,
    /// Connections that sent no valid `Hello` in time: closed, timed out,
    /// or bytes that are not a well-formed `Hello` to this node.
    pub(crate) malformed: AtomicU64,
    /// Valid `Hello`s refused: a node that does not dial this one, another
    /// cluster size, or a peer whose live connection is healthy (a
    /// connection replaces a peer's only once the old one is found dead).
    pub(crate) refused: AtomicU64,
    /// `Hello`s refused because one end authenticates and the other does
    /// not (also counted in `refused`).
    pub(crate) auth_mismatch: AtomicU64,
    /// Admitted connections whose proof of the cluster key was wrong,
    /// malformed or late.
    pub(crate) auth_failed: AtomicU64,
}

impl ListenerCounters {
    /// Counts a `Hello` refused with `refusal`, on either transport.
    fn count_refusal(&self, refusal: Refusal) {
        let counter = match refusal {
            Refusal::Malformed(_) => &self.malformed,
            _ => &self.refused,
        };
        bump(counter, 1);
        if refusal == Refusal::AuthMismatch {
            bump(&self.auth_mismatch, 1);
        }
    }
}

/// Lets through at most [`WARN_BURST`] log lines per [`WARN_WINDOW_MS`].
#[derive(Default)]
pub(crate) struct Ratelimit {
    window_start_ns: AtomicU64,
    in_window: AtomicU64,
}

impl Ratelimit {
    /// Whether a line may be logged now; from any context. The first line
    /// of a new window reports how many the last one suppressed.
    pub(crate) fn allow(&self) -> bool {
        let now = cohort::now_ns();
        let start = self.window_start_ns.load(Ordering::Relaxed);
        if now.saturating_sub(start) >= WARN_WINDOW_MS * 1_000_000
            && self
                .window_start_ns
                .compare_exchange(start, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            let seen = self.in_window.swap(0, Ordering::Relaxed);
            if seen > u64::from(WARN_BURST) {
                pr_warn!(
                    "{} similar warnings suppressed\n",
                    seen - u64::from(WARN_BURST)
                );
            }
        }
        self.in_window.fetch_add(1, Ordering::Relaxed) < u64::from(WARN_BURST)
    }
}

/// A received message waiting for a handler.
struct Incoming {
    envelope: Envelope,
    data: KVVec<u8>,
}

/// Work the receive path leaves to the link thread.
enum Job {
    /// Answer a ping.
    Pong { envelope: Envelope, nonce: u64 },
    /// Answer a stream sync with the bytes received.
    StreamSync { envelope: Envelope },
    /// Refuse a request with an errno.
    Refuse { envelope: Envelope, errno: Error },
}

/// What the link thread has to do for its connection.
struct Work {
    jobs: KVec<Job>,
    /// The receive path waits for a buffer only a thread can allocate.
    need_buffer: bool,
    /// The connection must be torn down, and why.
    broken: Option<&'static str>,
}

/// The session keys of an authenticated connection, keyed into taggers.
struct Keys {
    /// Tags the frames this node sends.
    tx: Tagger,
    /// Checks the tags of the frames it receives.
    rx: Tagger,
}

impl Keys {
    /// Keys the taggers of one end (`role`) of the connection whose
    /// handshake is `transcript`; the derived keys are wiped.
    fn derive(key: &Hmac, transcript: &Transcript, role: Role) -> Result<Self> {
        let derived = SessionKeys::for_role(key, transcript, role)?;
        let (tx, rx) = (Secret(derived.tx), Secret(derived.rx));
        Ok(Self {
            tx: Tagger::new(&tx.0)?,
            rx: Tagger::new(&rx.0)?,
        })
    }
}

/// What a connection runs over.
enum Wire {
    Tcp(TcpSocket),
    Shm(PipeConn),
}

/// A connection that completed its handshake: its wire, and its keys
/// when the cluster authenticates.
struct Introduced {
    wire: Wire,
    keys: Option<Keys>,
}

/// A live connection's wire, as senders see it.
enum ConnWire {
    Tcp(Arc<TcpSocket>),
    Shm(PipeConn),
}

impl ConnWire {
    /// Sends `parts` back to back; blocks at most the heartbeat timeout
    /// on a peer that does not take them.
    fn send_all(&self, parts: &[&[u8]]) -> Result {
        match self {
            ConnWire::Tcp(socket) => socket.send_all(parts),
            ConnWire::Shm(conn) => conn.send_all(parts),
        }
    }

    /// Makes sends and receives in progress fail.
    fn shutdown(&self) {
        match self {
            ConnWire::Tcp(socket) => socket.shutdown(),
            ConnWire::Shm(conn) => conn.pipe.shutdown(),
        }
    }

    pub(crate) fn name(&self) -> &'static str {
        match self {
            ConnWire::Tcp(_) => "tcp",
            ConnWire::Shm(_) => "shm",
        }
    }
}

/// Where the handshake's frames go: a new TCP connection or a pipe.
trait Channel {
    /// Sends `parts` back to back.
    fn send_parts(&self, parts: &[&[u8]]) -> Result;
    /// Fills `buf` before `deadline_ns`: `EAGAIN` when it passes, another
    /// error when the connection ends.
    fn recv_before(&self, buf: &mut [u8], deadline_ns: u64) -> Result;
}

impl Channel for TcpSocket {
    fn send_parts(&self, parts: &[&[u8]]) -> Result {
        self.send_all(parts)
    }

    /// A byte at a time, so that no receive outlives the deadline however
    /// the bytes trickle in.
    fn recv_before(&self, buf: &mut [u8], deadline_ns: u64) -> Result {
        for byte in buf.chunks_mut(1) {
            let left_ms = deadline_ns.saturating_sub(cohort::now_ns()) / 1_000_000;
            if left_ms == 0 {
                return Err(EAGAIN);
            }
            self.set_recv_timeout(u32::try_from(left_ms).unwrap_or(HELLO_TIMEOUT_MS));
            self.recv_exact(byte)?;
        }
        Ok(())
    }
}

impl Channel for PipeConn {
    fn send_parts(&self, parts: &[&[u8]]) -> Result {
        self.send_all(parts)
    }

    fn recv_before(&self, buf: &mut [u8], deadline_ns: u64) -> Result {
        self.pipe.recv_before(buf, deadline_ns)
    }
}

/// The receive path's bytes: a socket's queue, or a pipe's ring.
pub(crate) trait ByteReader {
    /// Copies queued bytes into `out`; 0 when none are queued.
    fn read(&mut self, out: &mut [u8]) -> usize;
    /// Whether the connection ended: no more bytes will come.
    fn closed(&self) -> bool;
}

impl ByteReader for SockReader {
    fn read(&mut self, out: &mut [u8]) -> usize {
        SockReader::read(self, out)
    }

    fn closed(&self) -> bool {
        SockReader::closed(self)
    }
}

/// Reads a pipe's ring for the receive path.
struct RingReader<'a> {
    pipe: &'a Pipe,
    /// Bytes read through it.
    got: usize,
    closed: bool,
}

impl ByteReader for RingReader<'_> {
    fn read(&mut self, out: &mut [u8]) -> usize {
        match self.pipe.read_some(out) {
            Ok(n) => {
                self.got += n;
                n
            }
            Err(_) => {
                self.closed = true;
                0
            }
        }
    }

    fn closed(&self) -> bool {
        self.closed
    }
}

/// What tags the frames a connection sends.
struct TxTags {
    /// Numbers the frames sent (their tags' keys derive from it).
    seq: Sequence,
    /// Tags the frames sent; `None` without authentication.
    tagger: Option<Tagger>,
}

/// The live connection of a peer, as senders see it.
#[pin_data]
struct Conn {
    wire: ConnWire,
    /// Held for the whole of a message so its frames stay consecutive.
    #[pin]
    send: Mutex<TxTags>,
}

/// The connection of a peer, as the link thread and the senders see it.
struct Link {
    /// The live connection, shared with senders.
    conn: Option<Arc<Conn>>,
    /// A connection the listener introduced for this peer, not yet taken up.
    handoff: Option<Introduced>,
}

/// Another node.
#[pin_data]
pub(crate) struct Peer {
    pub(crate) id: u32,
    pub(crate) addr: IpAddr,
    state: AtomicU8,
    pub(crate) counters: Counters,
    #[pin]
    link: Mutex<Link>,
    #[pin]
    link_changed: CondVar,
    #[pin]
    work: SpinLockBh<Work>,
    #[pin]
    work_ready: CondVar,
    #[pin]
    inbox: SpinLockBh<KVec<Incoming>>,
    #[pin]
    inbox_ready: CondVar,
}

impl Peer {
    fn new(id: u32, addr: IpAddr) -> impl PinInit<Self> {
        pin_init!(Self {
            id,
            addr,
            state: AtomicU8::new(DOWN),
            counters: Counters::default(),
            link <- new_mutex!(Link { conn: None, handoff: None }),
            link_changed <- new_condvar!(),
            work <- new_spinlock_bh!(Work { jobs: KVec::new(), need_buffer: false, broken: None }),
            work_ready <- new_condvar!(),
            inbox <- new_spinlock_bh!(KVec::new()),
            inbox_ready <- new_condvar!(),
        })
    }

    /// Whether the peer is connected.
    pub(crate) fn is_up(&self) -> bool {
        self.state.load(Ordering::Acquire) == UP
    }

    fn conn(&self) -> Option<Arc<Conn>> {
        self.link.lock().conn.clone()
    }

    /// Shuts the live connection; its link thread then cleans up.
    fn shut(&self, reason: &'static str) {
        if let Some(conn) = self.conn() {
            conn.wire.shutdown();
            self.break_link(reason);
        }
    }

    /// Tells the link thread to tear the connection down.
    fn break_link(&self, reason: &'static str) {
        let mut work = self.work.lock();
        work.broken.get_or_insert(reason);
        drop(work);
        self.work_ready.notify_all();
    }

    /// Queues work for the link thread; from any context.
    fn queue_job(&self, job: Job) {
        let mut work = self.work.lock();
        if work.jobs.push(job, GFP_ATOMIC).is_err() {
            drop(work);
            bump(&self.counters.drops, 1);
            return;
        }
        drop(work);
        self.work_ready.notify_one();
    }

    fn node(&self) -> NodeId {
        NodeId(self.id as u8)
    }
}

/// This node and its view of the others.
#[pin_data]
pub(crate) struct Cluster {
    pub(crate) me: u32,
    pub(crate) nr_nodes: u32,
    pub(crate) port: u16,
    /// Silence, in ms this node ran, after which a peer is declared down
    /// (`cohort.heartbeat_timeout_ms` at load). It also bounds how long a
    /// send may block on a peer that stopped reading: a peer that is alive
    /// but slow to read (one vCPU, two full streams at once) must not lose
    /// its connection sooner than a dead one (it did, at 500 ms, on the
    /// debug kernel).
    pub(crate) heartbeat_timeout_ms: u32,
    /// How long kmsg's own requests wait for their reply: the heartbeat
    /// timeout and [`REQUEST_MARGIN_MS`] (5000 ms by default).
    pub(crate) request_timeout_ms: u32,
    incarnation: u64,
    /// Indexed by node id; this node's own entry is never connected.
    pub(crate) peers: KVec<Arc<Peer>>,
    /// Indexed by message type, below `msg::NR_TYPES`.
    pub(crate) types: KVec<TypeCounters>,
    #[pin]
    pub(crate) requests: Requests,
    next_request: AtomicU64,
    /// Set when the module unloads: nothing new starts.
    stopping: AtomicBool,
    listener: TcpSocket,
    /// Whether connections are authenticated, from `cohort.auth` at load.
    pub(crate) auth: AuthMode,
    /// The cluster key, keyed into a MAC; `None` without authentication.
    key: Option<Hmac>,
    /// The region shared with nodes that are partitions of this host;
    /// `None` without one (`cohort.shm=0`, or no device).
    pub(crate) shm: Option<Arc<Shm>>,
    /// Per node, the pipe to it through `shm`; `None` for this node and
    /// without a region.
    pub(crate) pipes: KVec<Option<Arc<Pipe>>>,
    pub(crate) listener_counters: ListenerCounters,
    /// Bounds the warnings that other hosts' bytes can provoke.
    pub(crate) warnings: Ratelimit,
}

impl Cluster {
    /// Reads the identity from the hub and listens for peers.
    pub(crate) fn new() -> Result<Arc<Self>> {
        let me = cohort::node_id();
        let nr_nodes = cohort::nr_nodes();
        let port = cohort::port();
        let mut peers = KVec::with_capacity(nr_nodes as usize, GFP_KERNEL)?;
        for id in 0..nr_nodes {
            let addr = cohort::peer_addr(id).inspect_err(|_| {
                pr_err!("no address for node {id}: set cohort.peers=<address of node 0>,... (kernel command line or /etc/cohort/cohort.conf)\n");
            })?;
            peers.push(Arc::pin_init(Peer::new(id, addr), GFP_KERNEL)?, GFP_KERNEL)?;
        }
        let mut types = KVec::with_capacity(usize::from(msg::NR_TYPES), GFP_KERNEL)?;
        for _ in 0..msg::NR_TYPES {
            types.push(TypeCounters::default(), GFP_KERNEL)?;
        }
        let key = Self::cluster_key()?;
        let shm = match Shm::join(me, nr_nodes)? {
            Some(shm) => Some(Arc::new(shm, GFP_KERNEL)?),
            None => None,
        };
        let mut pipes = KVec::with_capacity(nr_nodes as usize, GFP_KERNEL)?;
        for id in 0..nr_nodes {
            let pipe = match &shm {
                Some(shm) if id != me => Some(Pipe::new(shm.clone(), id)?),
                _ => None,
            };
            pipes.push(pipe, GFP_KERNEL)?;
        }
        let auth = if key.is_some() {
            AuthMode::ChaChaPoly
        } else {
            AuthMode::None
        };
        let heartbeat_timeout_ms = cohort::heartbeat_timeout_ms();
        let family = cohort::peer_addr(me)?.family();
        let listener = TcpSocket::listen(family, port, 16).inspect_err(|e| {
            pr_err!("cannot listen on port {port}: error {}\n", e.to_errno());
        })?;
        Arc::pin_init(
            pin_init!(Self {
                me,
                nr_nodes,
                port,
                heartbeat_timeout_ms,
                request_timeout_ms: heartbeat_timeout_ms.saturating_add(REQUEST_MARGIN_MS),
                incarnation: cohort::now_ns(),
                peers,
                types,
                requests <- Requests::new(),
                next_request: AtomicU64::new(1),
                stopping: AtomicBool::new(false),
                listener,
                auth,
                key,
                shm,
                pipes,
                listener_counters: ListenerCounters::default(),
                warnings: Ratelimit::default(),
            }),
            GFP_KERNEL,
        )
    }

    /// The cluster key as a MAC, read from the key file when `cohort.auth`
    /// is on; `None` (with a warning) when it is off.
    ///
    /// # Errors
    ///
    /// `ENOKEY` when the file cannot be read, `EKEYREJECTED` when it holds
    /// no valid key, `ENOENT` when the kernel lacks `hmac(sha256)`.
    fn cluster_key() -> Result<Option<Hmac>> {
        if !mac::auth_enabled() {
            pr_warn!(
                "authentication disabled (cohort.auth=0): any host that reaches this node's port can join the cluster\n"
            );
            return Ok(None);
        }
        let mut text = Secret::<KEY_FILE_MAX>::zeroed();
        let mut path = [0u8; KEY_PATH_MAX];
        let read = mac::read_key_file(&mut text, &mut path);
        let end = path.iter().position(|&b| b == 0).unwrap_or(path.len());
        let name = core::str::from_utf8(path.get(..end).unwrap_or(&[])).unwrap_or("?");
        let len = read.map_err(|e| {
            pr_err!(
                "cannot read the cluster key from '{name}': error {} (boot with cohort.key_file=, at most {} bytes, or cohort.auth=0 to run without authentication)\n",
                e.to_errno(),
                KEY_PATH_MAX - 1
            );
            errno::ENOKEY()
        })?;
        let key = auth::parse_key(text.0.get(..len).unwrap_or(&[])).map_err(|e| {
            pr_err!("cannot use the cluster key in '{name}': {}\n", e.as_str());
            errno::EKEYREJECTED()
        })?;
        let key = Secret(key);
        let hmac = Hmac::new(&key.0).inspect_err(|e| {
            pr_err!("cannot key hmac(sha256): error {}\n", e.to_errno());
        })?;
        Ok(Some(hmac))
    }

    /// The peer `node`, if it is another node of the cluster.
    pub(crate) fn peer(&self, node: u32) -> Result<&Arc<Peer>> {
        if node == self.me {
            return Err(EINVAL);
        }
        self.peers.get(node as usize).ok_or(EINVAL)
    }

    pub(crate) fn stopping(&self) -> bool {
        self.stopping.load(Ordering::Acquire)
    }

    /// The wire of `peer`'s live connection: `tcp`, `shm`, or `-` when it
    /// is down.
    pub(crate) fn transport(&self, peer: &Peer) -> &'static str {
        peer.conn().map_or("-", |conn| conn.wire.name())
    }

    /// The pipe to `node`, if both share the region now: the way to reach
    /// it.
    fn usable_pipe(&self, node: u32) -> Option<&Arc<Pipe>> {
        self.pipes
            .get(node as usize)
            .and_then(Option::as_ref)
            .filter(|pipe| pipe.usable())
    }

    /// Starts the listener, heartbeat, link and dispatcher threads.
    pub(crate) fn start(self: &Arc<Self>, threads: &mut KVec<thread::Thread>) -> Result {
        let cluster = self.clone();
        threads.push(
            thread::Thread::spawn(c_str!("kmsg-listen"), move || cluster.listen_loop())?,
            GFP_KERNEL,
        )?;
        let cluster = self.clone();
        let mut silences = KVec::with_capacity(self.peers.len(), GFP_KERNEL)?;
        for _ in self.peers.iter() {
            silences.push(Silence::heard(0), GFP_KERNEL)?;
        }
        threads.push(
            thread::Thread::spawn(c_str!("kmsg-heartbeat"), move || {
                cluster.heartbeat_loop(silences)
            })?,
            GFP_KERNEL,
        )?;
        for peer in self.peers.iter().filter(|p| p.id != self.me) {
            let (cluster, link_peer) = (self.clone(), peer.clone());
            threads.push(
                thread::Thread::spawn(c_str!("kmsg-link"), move || cluster.link_loop(link_peer))?,
                GFP_KERNEL,
            )?;
            let (cluster, inbox_peer) = (self.clone(), peer.clone());
            threads.push(
                thread::Thread::spawn(c_str!("kmsg-dispatch"), move || {
                    cluster.dispatch_loop(&inbox_peer)
                })?,
                GFP_KERNEL,
            )?;
        }
        Ok(())
    }

    /// Makes every thread's wait end: called before stopping them.
    pub(crate) fn stop(&self) {
        self.stopping.store(true, Ordering::Release);
        self.requests.fail(None, errno::ESHUTDOWN());
        self.listener.shutdown();
        if let Some(shm) = &self.shm {
            shm.leave();
        }
        for peer in self.peers.iter() {
            peer.shut("unloading");
            peer.link_changed.notify_all();
            peer.work_ready.notify_all();
            peer.inbox_ready.notify_all();
        }
    }

    // ---- sending ----

    fn new_request_id(&self) -> u64 {
        self.next_request.fetch_add(1, Ordering::Relaxed)
    }

    /// Sends one whole message to `peer`: its frames back to back.
    fn send_message(&self, peer: &Peer, envelope: Envelope, data: &[u8]) -> Result {
        let conn = peer.conn().ok_or_else(errno::EHOSTDOWN)?;
        let socket = &conn.wire;
        let mut frames = Fragmenter::new(envelope, data).map_err(|_| errno::EMSGSIZE())?;
        let mut header = [0u8; HEADER_LEN];
        let mut tx = conn.send.lock();
        while let Some(payload) = frames.next_frame(&mut header) {
            let sent = match Self::tag(&mut tx, &header, payload) {
                Ok(None) => socket.send_all(&[&header, payload]),
                Ok(Some(tag)) => socket.send_all(&[&header, payload, &tag]),
                Err(e) => Err(e),
            };
            if let Err(e) = sent {
                // A partial frame leaves the stream unusable. A connection
                // the other end reset fails here too, and nothing else
                // tells the link thread (a reset does not call
                // `data_ready`): without this the link stayed up until the
                // heartbeat timeout.
                socket.shutdown();
                peer.break_link("send failed");
                return Err(e);
            }
        }
        let bytes = (data.len() + HEADER_LEN) as u64;
        bump(&peer.counters.tx_msgs, 1);
        bump(&peer.counters.tx_bytes, bytes);
        if let Some(counters) = self.types.get(usize::from(envelope.msg_type)) {
            bump(&counters.tx_msgs, 1);
            bump(&counters.tx_bytes, bytes);
        }
        peer.counters
            .last_tx_ns
            .store(cohort::now_ns(), Ordering::Relaxed);
        Ok(())
    }

    /// The tag of the next frame sent, which it numbers; `None` without
    /// authentication.
    fn tag(
        tx: &mut TxTags,
        header: &[u8; HEADER_LEN],
        payload: &[u8],
    ) -> Result<Option<[u8; TAG_LEN]>> {
        let Some(tagger) = tx.tagger.as_mut() else {
            return Ok(None);
        };
        let n = tx.seq.advance().map_err(|_| errno::EOVERFLOW())?;
        Ok(Some(auth::frame_tag(tagger, n, header, payload)))
    }

    fn envelope(&self, peer: &Peer, ty: u16, request_id: u64) -> Envelope {
        Envelope::new(ty, NodeId(self.me as u8), peer.node(), request_id)
    }

    /// Sends a message that expects no reply.
    pub(crate) fn send(&self, node: u32, ty: u16, data: &[u8]) -> Result {
        let peer = self.peer(node)?;
        if self.stopping() {
            return Err(errno::ESHUTDOWN());
        }
        self.send_message(peer, self.envelope(peer, ty, 0), data)?;
        if ty == wire::MSG_STREAM_DATA {
            bump(&peer.counters.stream_sent, data.len() as u64);
        }
        Ok(())
    }

    /// Sends a request and waits for its reply; a signal ends the wait
    /// unless `nointr`.
    pub(crate) fn request(
        &self,
        node: u32,
        ty: u16,
        data: &[u8],
        timeout_ms: u32,
        nointr: bool,
    ) -> Result<KVVec<u8>> {
        let peer = self.peer(node)?;
        if self.stopping() {
            return Err(errno::ESHUTDOWN());
        }
        if !peer.is_up() {
            return Err(errno::EHOSTDOWN());
        }
        let id = self.new_request_id();
        self.requests.park(id, node, timeout_ms)?;
        if let Err(e) = self.send_message(peer, self.envelope(peer, ty, id), data) {
            self.requests.fail(Some(node), e);
        }
        self.requests.wait(id, !nointr)
    }

    /// Answers request `envelope` (as received) with `error` or `data`.
    pub(crate) fn reply(&self, envelope: &Envelope, error: i32, data: &[u8]) -> Result {
        let peer = self.peer(u32::from(envelope.src.0))?;
        if error < 0 {
            let mut buf = [0u8; ErrorReply::LEN];
            ErrorReply { errno: -error }
                .encode(&mut buf)
                .map_err(|_| EINVAL)?;
            self.send_message(peer, envelope.reply(true), &buf)
        } else {
            self.send_message(peer, envelope.reply(false), data)
        }
    }

    /// Writes one malformed frame to `node`'s connection, for tests.
    ///
    /// `bad-checksum`, `bad-magic`, `bad-length` and `bad-node` damage a
    /// heartbeat's header (tagged after the damage, so that on an
    /// authenticated connection they reach the parser behind the tag);
    /// `bad-tag` sends a heartbeat with a wrong tag, `replay` one twice
    /// with the same sequence number, `reorder` two in the wrong order
    /// (`EOPNOTSUPP` without authentication).
    pub(crate) fn inject(&self, node: u32, kind: &[u8]) -> Result {
        let peer = self.peer(node)?;
        let conn = peer.conn().ok_or_else(errno::EHOSTDOWN)?;
        let mut payload = [0u8; Heartbeat::LEN];
        Heartbeat {
            incarnation: self.incarnation,
            sent_ns: cohort::now_ns(),
        }
        .encode(&mut payload)
        .map_err(|_| EINVAL)?;
        let mut frames = Fragmenter::new(self.envelope(peer, wire::MSG_HEARTBEAT, 0), &payload)
            .map_err(|_| EINVAL)?;
        let mut header = [0u8; HEADER_LEN];
        frames.next_frame(&mut header).ok_or(EINVAL)?;
        let tag_kind = matches!(kind, b"bad-tag" | b"replay" | b"reorder");
        match kind {
            b"bad-checksum" => header[32] ^= 0xff,
            b"bad-magic" => header[0] ^= 0xff,
            b"bad-length" => header[12..16].copy_from_slice(&u32::MAX.to_le_bytes()),
            b"bad-node" => header[10..12].copy_from_slice(&200u16.to_le_bytes()),
            _ if tag_kind => {}
            _ => return Err(EINVAL),
        }
        let mut tx = conn.send.lock();
        let Some(mut tag) = Self::tag(&mut tx, &header, &payload)? else {
            if tag_kind {
                return Err(errno::EOPNOTSUPP());
            }
            return conn.wire.send_all(&[&header, &payload]);
        };
        match kind {
            b"bad-tag" => {
                tag[0] ^= 1;
                conn.wire.send_all(&[&header, &payload, &tag])
            }
            b"replay" => {
                conn.wire.send_all(&[&header, &payload, &tag])?;
                conn.wire.send_all(&[&header, &payload, &tag])
            }
            b"reorder" => {
                let second = Self::tag(&mut tx, &header, &payload)?.ok_or(EINVAL)?;
                conn.wire.send_all(&[&header, &payload, &second])?;
                conn.wire.send_all(&[&header, &payload, &tag])
            }
            _ => conn.wire.send_all(&[&header, &payload, &tag]),
        }
    }

    // ---- the mesh ----

    fn listen_loop(&self) {
        while !thread::should_stop() && !self.stopping() {
            match self.listener.accept() {
                Ok(socket) => self.introduce(socket),
                Err(_) => thread::sleep_ms(100),
            }
        }
    }

    /// Sends one untagged handshake frame: `payload` as a message of type
    /// `ty` from this node to `to`.
    fn send_handshake(&self, socket: &impl Channel, to: u32, ty: u16, payload: &[u8]) -> Result {
        let envelope = auth::handshake_envelope(ty, NodeId(self.me as u8), NodeId(to as u8));
        let mut frames = Fragmenter::new(envelope, payload).map_err(|_| EINVAL)?;
        let mut header = [0u8; HEADER_LEN];
        let frame = frames.next_frame(&mut header).ok_or(EINVAL)?;
        socket.send_parts(&[&header, frame])
    }

    /// Receives one untagged handshake frame of type `ty` from `from`
    /// before `deadline_ns` into `payload` (its exact length), checksum
    /// verified.
    fn recv_handshake(
        &self,
        socket: &impl Channel,
        from: u32,
        ty: u16,
        payload: &mut [u8],
        deadline_ns: u64,
    ) -> core::result::Result<(), &'static str> {
        let why = |e: Error| {
            if e == EAGAIN {
                "no answer in time"
            } else {
                "it closed the connection instead of answering (another cluster key?)"
            }
        };
        let mut header = [0u8; HEADER_LEN];
        socket.recv_before(&mut header, deadline_ns).map_err(why)?;
        let header = auth::handshake_header(
            &header,
            ty,
            NodeId(from as u8),
            NodeId(self.me as u8),
            payload.len(),
        )
        .map_err(|e| e.as_str())?;
        socket.recv_before(payload, deadline_ns).map_err(why)?;
        wire::verify(&header, payload).map_err(|e| e.as_str())
    }

    /// Reads a new connection's `Hello` (within `HELLO_TIMEOUT_MS` in all),
    /// challenges the dialer and, with a cluster key, checks its proof
    /// (within `CHALLENGE_TIMEOUT_MS`); then hands the connection to its
    /// peer.
    fn introduce(&self, socket: TcpSocket) {
        let counters = &self.listener_counters;
        bump(&counters.accepted, 1);
        let me = NodeId(self.me as u8);
        let deadline = cohort::now_ns() + u64::from(HELLO_TIMEOUT_MS) * 1_000_000;
        let mut header = [0u8; HEADER_LEN];
        let mut payload = [0u8; Hello::LEN];
        let hello = socket
            .recv_before(&mut header, deadline)
            .map_err(|_| Refusal::Malformed(wire::WireError::Truncated))
            .and_then(|()| wire::hello_header(&header, me))
            .and_then(|h| {
                socket
                    .recv_before(&mut payload, deadline)
                    .map_err(|_| Refusal::Malformed(wire::WireError::Truncated))?;
                wire::admit_hello(&h, &payload, me, self.nr_nodes as u16, self.auth)
            });
        let hello = match hello {
            Ok(hello) => hello,
            Err(refusal) => {
                counters.count_refusal(refusal);
                if self.warnings.allow() {
                    pr_warn!("refused a connection: {}\n", refusal.as_str());
                }
                return;
            }
        };
        let node = u32::from(hello.node.0);
        let Some(peer) = self.peers.get(node as usize) else {
            return;
        };
        // A peer's live connection is replaced only once it is known to be
        // dead (closed, reset, silent past the heartbeat timeout): a peer
        // that restarts finds it so within the heartbeat timeout, and
        // anyone else who knows a node id cannot cut a live peer off. The
        // check comes before the challenge, so that a refused dialer never
        // counts itself up.
        if peer.is_up() && peer.work.lock().broken.is_none() {
            bump(&counters.refused, 1);
            if self.warnings.allow() {
                pr_warn!("refused a second connection from node {node}: its first is alive\n");
            }
            return;
        }
        let keys = match self.challenge(&socket, node, &payload) {
            Ok(keys) => keys,
            Err(reason) => {
                bump(&counters.auth_failed, 1);
                if self.warnings.allow() {
                    pr_warn!(
                        "a connection claiming to be node {node} failed authentication: {reason}\n"
                    );
                }
                return;
            }
        };
        socket.set_recv_timeout(0);
        bump(&counters.introduced, 1);
        // The peer reconnected: its old connection is dead.
        peer.shut("replaced by a new connection");
        peer.link.lock().handoff = Some(Introduced {
            wire: Wire::Tcp(socket),
            keys,
        });
        peer.link_changed.notify_all();
    }

    /// The listener's half of the handshake with dialer `node`, whose
    /// `Hello` payload was `hello`: sends the challenge and, with a cluster
    /// key, checks the dialer's proof and derives the session keys.
    fn challenge(
        &self,
        socket: &impl Channel,
        node: u32,
        hello: &[u8; Hello::LEN],
    ) -> core::result::Result<Option<Keys>, &'static str> {
        let mut challenge = Challenge {
            nonce: [0; NONCE_LEN],
            proof: [0; MAC_LEN],
        };
        let transcript = self.key.as_ref().map(|key| {
            mac::random_bytes(&mut challenge.nonce);
            let t = Transcript::new(NodeId(self.me as u8), hello, &challenge.nonce);
            (key, t)
        });
        if let Some((key, t)) = &transcript {
            challenge.proof = t.listener_proof(*key).map_err(|_| "cannot compute a MAC")?;
        }
        let mut out = [0u8; Challenge::LEN];
        challenge.encode(&mut out).map_err(|e| e.as_str())?;
        self.send_handshake(socket, node, wire::MSG_AUTH_CHALLENGE, &out)
            .map_err(|_| "cannot send the challenge")?;
        let Some((key, t)) = transcript else {
            return Ok(None);
        };
        let deadline = cohort::now_ns() + u64::from(CHALLENGE_TIMEOUT_MS) * 1_000_000;
        let mut proof = [0u8; Proof::LEN];
        self.recv_handshake(socket, node, wire::MSG_AUTH_PROOF, &mut proof, deadline)?;
        let proof = Proof::decode(&proof).map_err(|e| e.as_str())?;
        let expected = t.dialer_proof(key).map_err(|_| "cannot compute a MAC")?;
        if !auth::same(&proof.0, &expected) {
            return Err("its proof is wrong (another cluster key?)");
        }
        Keys::derive(key, &t, Role::Listener)
            .map(Some)
            .map_err(|_| "cannot key the session")
    }

    /// The lower id waits for the higher to dial.
    fn await_handoff(&self, peer: &Peer) -> Option<Introduced> {
        let mut link = peer.link.lock();
        loop {
            if let Some(introduced) = link.handoff.take() {
                return Some(introduced);
            }
            if thread::should_stop() || self.stopping() || self.usable_pipe(peer.id).is_some() {
                return None;
            }
            let _ = peer
                .link_changed
                .wait_interruptible_timeout(&mut link, msecs_to_jiffies(REDIAL_MS));
        }
    }

    /// The higher id dials the lower and introduces itself, until a
    /// handshake succeeds.
    fn dial(&self, peer: &Peer) -> Option<Introduced> {
        while !thread::should_stop() && !self.stopping() {
            if self.usable_pipe(peer.id).is_some() {
                return None;
            }
            if let Ok(socket) = TcpSocket::connect(peer.addr, self.port, CONNECT_TIMEOUT_MS) {
                match self.handshake(&socket, peer) {
                    Ok(keys) => {
                        socket.set_recv_timeout(0);
                        return Some(Introduced {
                            wire: Wire::Tcp(socket),
                            keys,
                        });
                    }
                    Err(reason) => {
                        bump(&peer.counters.auth_failures, 1);
                        if self.warnings.allow() {
                            pr_warn!("node {}: handshake failed: {reason}\n", peer.id);
                        }
                    }
                }
            }
            thread::sleep_ms(REDIAL_MS);
        }
        None
    }

    /// The dialer's half of the handshake: `Hello`, then the listener's
    /// challenge (whose proof it checks) and this node's proof.
    fn handshake(
        &self,
        socket: &impl Channel,
        peer: &Peer,
    ) -> core::result::Result<Option<Keys>, &'static str> {
        let mut hello = Hello {
            node: NodeId(self.me as u8),
            nr_nodes: self.nr_nodes as u16,
            incarnation: self.incarnation,
            auth: self.auth,
            nonce: [0; NONCE_LEN],
        };
        if self.key.is_some() {
            mac::random_bytes(&mut hello.nonce);
        }
        let mut payload = [0u8; Hello::LEN];
        hello.encode(&mut payload).map_err(|e| e.as_str())?;
        self.send_handshake(socket, peer.id, wire::MSG_HELLO, &payload)
            .map_err(|_| "cannot send its Hello")?;
        // The listener closes a connection it refuses (another cluster
        // size, authentication on one end only, a live connection from
        // this node): then no challenge comes.
        let deadline = cohort::now_ns() + u64::from(CHALLENGE_TIMEOUT_MS) * 1_000_000;
        let mut challenge = [0u8; Challenge::LEN];
        self.recv_handshake(
            socket,
            peer.id,
            wire::MSG_AUTH_CHALLENGE,
            &mut challenge,
            deadline,
        )
        .map_err(|reason| match reason {
            "no answer in time" => "no challenge in time",
            _ => "it refused this node (its log says why)",
        })?;
        let challenge = Challenge::decode(&challenge).map_err(|e| e.as_str())?;
        let Some(key) = &self.key else {
            return Ok(None);
        };
        let t = Transcript::new(peer.node(), &payload, &challenge.nonce);
        let expected = t.listener_proof(key).map_err(|_| "cannot compute a MAC")?;
        if !auth::same(&challenge.proof, &expected) {
            return Err("its proof is wrong (another cluster key?)");
        }
        let proof = t.dialer_proof(key).map_err(|_| "cannot compute a MAC")?;
        self.send_handshake(socket, peer.id, wire::MSG_AUTH_PROOF, &proof)
            .map_err(|_| "cannot send its proof")?;
        Keys::derive(key, &t, Role::Dialer)
            .map(Some)
            .map_err(|_| "cannot key the session")
    }

    /// Connects to `peer` through `pipe`: opens it (sessions), then the
    /// same handshake as over TCP, the higher id as the dialer. `None`
    /// after a failed attempt (and a pause), to be tried again.
    fn connect_shm(&self, peer: &Peer, pipe: &Arc<Pipe>) -> Option<Introduced> {
        let deadline = cohort::now_ns() + u64::from(CHALLENGE_TIMEOUT_MS) * 1_000_000;
        let stop = || thread::should_stop() || self.stopping();
        let conn = pipe.open(deadline, stop).map(|epoch| PipeConn {
            send_timeout_ms: self.heartbeat_timeout_ms,
            pipe: pipe.clone(),
            epoch,
        });
        let keys = match &conn {
            // A peer that is down starts no session; as a dial that finds
            // nobody listening, that is not worth a line.
            Err(e) if *e == errno::ETIMEDOUT() || *e == errno::ESHUTDOWN() => Err(""),
            Err(_) => Err("its rings are not open"),
            Ok(conn) if self.me > peer.id => self.handshake(conn, peer).map_err(|reason| {
                bump(&peer.counters.auth_failures, 1);
                if self.warnings.allow() {
                    pr_warn!("node {}: handshake failed: {reason}\n", peer.id);
                }
                ""
            }),
            Ok(conn) => self.introduce_shm(conn, peer),
        };
        match (keys, conn) {
            (Ok(keys), Ok(conn)) => Some(Introduced {
                wire: Wire::Shm(conn),
                keys,
            }),
            (keys, _) => {
                let reason = keys.err().unwrap_or("");
                pipe.shutdown();
                if !reason.is_empty() && !stop() && self.warnings.allow() {
                    pr_warn!("node {}: shared memory: {reason}\n", peer.id);
                }
                thread::sleep_ms(REDIAL_MS);
                None
            }
        }
    }

    /// The listener's half of the handshake over a pipe: the dialer's
    /// `Hello`, then the challenge; counted and logged as the listener
    /// counts and logs TCP connections. The error is empty when it was
    /// logged already.
    fn introduce_shm(
        &self,
        conn: &PipeConn,
        peer: &Peer,
    ) -> core::result::Result<Option<Keys>, &'static str> {
        let pipe = &conn.pipe;
        let counters = &self.listener_counters;
        bump(&counters.accepted, 1);
        let me = NodeId(self.me as u8);
        let deadline = cohort::now_ns() + u64::from(CHALLENGE_TIMEOUT_MS) * 1_000_000;
        let mut header = [0u8; HEADER_LEN];
        let mut payload = [0u8; Hello::LEN];
        let truncated = |_| Refusal::Malformed(wire::WireError::Truncated);
        let hello = pipe
            .recv_before(&mut header, deadline)
            .map_err(truncated)
            .and_then(|()| wire::hello_header(&header, me))
            .and_then(|h| {
                pipe.recv_before(&mut payload, deadline)
                    .map_err(truncated)?;
                wire::admit_hello(&h, &payload, me, self.nr_nodes as u16, self.auth)
            })
            .and_then(|hello| {
                if u32::from(hello.node.0) == peer.id {
                    Ok(hello)
                } else {
                    Err(Refusal::Malformed(wire::WireError::BadPayload))
                }
            });
        if let Err(refusal) = hello {
            counters.count_refusal(refusal);
            if self.warnings.allow() {
                pr_warn!(
                    "refused node {} on shared memory: {}\n",
                    peer.id,
                    refusal.as_str()
                );
            }
            return Err("");
        }
        match self.challenge(conn, peer.id, &payload) {
            Ok(keys) => {
                bump(&counters.introduced, 1);
                Ok(keys)
            }
            Err(reason) => {
                bump(&counters.auth_failed, 1);
                if self.warnings.allow() {
                    pr_warn!(
                        "a connection claiming to be node {} failed authentication: {reason}\n",
                        peer.id
                    );
                }
                Err("")
            }
        }
    }

    /// Receives `peer`'s frames from `pipe` into `state` until the thread
    /// is stopped: the shared-memory counterpart of a socket's
    /// `data_ready` callback. It may sleep, so it allocates large buffers
    /// itself instead of asking the link thread.
    fn shm_receive_loop(pipe: &Pipe, mut state: KBox<RxState>) {
        // When this receiver last read bytes: it polls for a while after.
        let mut last_ns = 0;
        while !thread::should_stop() {
            let seen = pipe.bell().count();
            if pipe.is_broken() || matches!(state.phase, Phase::Broken) {
                thread::sleep_ms(POLL_MS);
                continue;
            }
            if pipe.reset_by_peer() {
                state.fail("the node reset the connection");
                continue;
            }
            let mut reader = RingReader {
                pipe,
                got: 0,
                closed: false,
            };
            state.pump(&mut reader);
            let (waiting, spare) = state.wanted();
            if waiting.is_some() || spare.is_some() {
                let alloc = |len: usize| KVVec::from_elem(0u8, len, GFP_KERNEL).ok();
                let waiting = waiting.map(|len| (len, alloc(len)));
                let spare = spare.and_then(alloc);
                state.install(waiting, spare, &mut reader);
            }
            if reader.closed {
                state.fail("the node closed the connection");
            } else if reader.got == 0 {
                if !pipe.poll_readable(last_ns) {
                    pipe.wait_readable(seen);
                }
            } else {
                last_ns = cohort::now_ns();
                // Under a stream there are always bytes: without this, on a
                // kernel without preemption nothing else would run on this
                // CPU (this node's heartbeats went unsent for seconds).
                thread::cond_resched();
            }
        }
    }

    /// Keeps `peer` connected for as long as the module is loaded.
    fn link_loop(self: &Arc<Self>, peer: Arc<Peer>) {
        while !thread::should_stop() && !self.stopping() {
            // A peer that shares memory is reached through it, unless a
            // TCP connection from it is already waiting (the listener
            // admitted it: its node could not use the region, or is an
            // impostor holding the key while the real node is down).
            let handoff = peer.link.lock().handoff.take();
            let introduced = match (handoff, self.usable_pipe(peer.id)) {
                (Some(introduced), _) => Some(introduced),
                (None, Some(pipe)) => self.connect_shm(&peer, &pipe.clone()),
                (None, None) if self.me > peer.id => self.dial(&peer),
                (None, None) => self.await_handoff(&peer),
            };
            let Some(Introduced { wire, keys }) = introduced else {
                continue;
            };
            let conn_wire = match wire {
                Wire::Tcp(socket) => {
                    socket.set_send_timeout(self.heartbeat_timeout_ms);
                    let Ok(socket) = Arc::new(socket, GFP_KERNEL) else {
                        continue;
                    };
                    ConnWire::Tcp(socket)
                }
                Wire::Shm(conn) => ConnWire::Shm(conn),
            };
            let (tx_tagger, rx_tagger) = match keys {
                Some(Keys { tx, rx }) => (Some(tx), Some(rx)),
                None => (None, None),
            };
            let (socket, pipe) = match &conn_wire {
                ConnWire::Tcp(socket) => (Some(socket.clone()), None),
                ConnWire::Shm(conn) => (None, Some(conn.pipe.clone())),
            };
            let transport = conn_wire.name();
            let conn = Arc::pin_init(
                pin_init!(Conn {
                    wire: conn_wire,
                    send <- new_mutex!(TxTags {
                        seq: Sequence::new(),
                        tagger: tx_tagger,
                    }),
                }),
                GFP_KERNEL,
            );
            let Ok(conn) = conn else { continue };
            let state = RxState::new(self.clone(), peer.clone(), rx_tagger, pipe.is_some());
            let Ok(state) = KBox::new(state, GFP_KERNEL) else {
                continue;
            };
            {
                let mut work = peer.work.lock();
                cohort::vec::clear(&mut work.jobs);
                work.need_buffer = false;
                work.broken = None;
            }
            let now = cohort::now_ns();
            peer.counters.last_rx_ns.store(now, Ordering::Relaxed);
            peer.counters.last_tx_ns.store(now, Ordering::Relaxed);
            peer.link.lock().conn = Some(conn);
            peer.state.store(UP, Ordering::Release);
            bump(&peer.counters.ups, 1);
            pr_info!(
                "node {} up ({transport}, {})\n",
                peer.id,
                self.auth.as_str()
            );
            msg::notify_membership(peer.id, true);

            let reason = match (socket, pipe) {
                (Some(socket), _) => {
                    let rx = Receiving::<Rx>::start(socket.clone(), state);
                    let reason = self.serve(&peer, Some(&rx));
                    peer.state.store(DOWN, Ordering::Release);
                    socket.shutdown();
                    drop(rx);
                    reason
                }
                (None, Some(pipe)) => {
                    let rx_pipe = pipe.clone();
                    let receiver = thread::Thread::spawn(c_str!("kmsg-shm-rx"), move || {
                        Self::shm_receive_loop(&rx_pipe, state)
                    });
                    let reason = match receiver {
                        Ok(_) => self.serve(&peer, None),
                        Err(_) => "cannot start a receiver",
                    };
                    peer.state.store(DOWN, Ordering::Release);
                    pipe.shutdown();
                    // Dropping the receiver stops it.
                    drop(receiver);
                    reason
                }
                (None, None) => "no wire",
            };
            peer.link.lock().conn = None;
            bump(&peer.counters.resets, 1);
            self.requests.fail(Some(peer.id), errno::EHOSTDOWN());
            msg::notify_membership(peer.id, false);
            if !self.stopping() {
                pr_info!("node {} down: {}\n", peer.id, reason);
            }
        }
    }

    /// Does the link thread's share of a live connection until it breaks;
    /// returns why it broke.
    fn serve(&self, peer: &Peer, rx: Option<&Receiving<Rx>>) -> &'static str {
        loop {
            let mut work = peer.work.lock();
            while work.jobs.is_empty() && !work.need_buffer && work.broken.is_none() {
                if thread::should_stop() || self.stopping() {
                    return "unloading";
                }
                // Untimed: the receive path, `Peer::break_link` and `stop`
                // all notify.
                let _ = peer.work_ready.wait_interruptible(&mut work);
            }
            if let Some(reason) = work.broken {
                return reason;
            }
            let jobs = core::mem::replace(&mut work.jobs, KVec::new());
            let need_buffer = core::mem::replace(&mut work.need_buffer, false);
            drop(work);
            // Over shared memory the receiver allocates its own buffers.
            if let Some(rx) = rx.filter(|_| need_buffer) {
                let (waiting, spare) = rx.with_locked(|state, _| state.wanted());
                let alloc = |len: usize| KVVec::from_elem(0u8, len, GFP_KERNEL).ok();
                let waiting = waiting.map(|len| (len, alloc(len)));
                let spare = spare.and_then(alloc);
                rx.with_locked(|state, reader| state.install(waiting, spare, reader));
            }
            for job in jobs {
                self.run_job(peer, job);
            }
        }
    }

    fn run_job(&self, peer: &Peer, job: Job) {
        match job {
            Job::Pong { envelope, nonce } => {
                let mut pong = [0u8; Pong::LEN];
                if (Pong { nonce }).encode(&mut pong).is_ok() {
                    let _ = self.send_message(peer, envelope.reply(false), &pong);
                }
            }
            Job::StreamSync { envelope } => {
                let mut sync = [0u8; StreamSync::LEN];
                let bytes = peer.counters.stream_bytes.load(Ordering::Relaxed);
                if (StreamSync { bytes }).encode(&mut sync).is_ok() {
                    let _ = self.send_message(peer, envelope.reply(false), &sync);
                }
            }
            Job::Refuse { envelope, errno } => {
                let _ = self.reply(&envelope, errno.to_errno(), &[]);
            }
        }
    }

    /// Sends the heartbeats, expires requests and declares silent peers
    /// down; `silences` has one entry per peer, in `peers` order.
    ///
    /// A peer's silence is counted in time this node ran
    /// ([`proto::liveness`]): a node whose host stopped running it for a
    /// while must not declare its peers down on waking up.
    fn heartbeat_loop(&self, mut silences: KVec<Silence>) {
        const MS: u64 = 1_000_000;
        let timeout_ns = u64::from(self.heartbeat_timeout_ms) * MS;
        let mut ticks = Ticks::new(
            u64::from(HEARTBEAT_INTERVAL_MS) * MS,
            u64::from(STALL_MS) * MS,
            cohort::now_ns(),
        );
        while !thread::should_stop() && !self.stopping() {
            let slept_from = cohort::now_ns();
            thread::sleep_ms(HEARTBEAT_INTERVAL_MS);
            let now = cohort::now_ns();
            let tick = ticks.tick_slept(slept_from, now);
            if tick.stalled_ns > 0 {
                pr_info!(
                    "this node did not run for {} ms (its host was busy): that time counts neither as silence of its peers nor against requests\n",
                    tick.stalled_ns / MS
                );
            }
            self.requests.stalled(tick.stalled_ns);
            self.requests.expire(now);
            for (peer, silence) in self.peers.iter().zip(silences.iter_mut()) {
                if !peer.is_up() {
                    continue;
                }
                let last_rx = peer.counters.last_rx_ns.load(Ordering::Relaxed);
                match silence.tick(tick, last_rx, timeout_ns) {
                    Verdict::Alive => {}
                    verdict => {
                        // Said once; the link thread may take a tick or two.
                        if let Verdict::Silent { silent_ms } = verdict {
                            pr_warn!(
                                "node {}: nothing received for {silent_ms} ms, marking it down\n",
                                peer.id
                            );
                        }
                        peer.shut("silent");
                        continue;
                    }
                }
                let idle_ms = now.saturating_sub(peer.counters.last_tx_ns.load(Ordering::Relaxed))
                    / 1_000_000;
                if idle_ms >= u64::from(HEARTBEAT_INTERVAL_MS) {
                    let mut payload = [0u8; Heartbeat::LEN];
                    let beat = Heartbeat {
                        incarnation: self.incarnation,
                        sent_ns: now,
                    };
                    if beat.encode(&mut payload).is_ok() {
                        let _ = self.send_message(
                            peer,
                            self.envelope(peer, wire::MSG_HEARTBEAT, 0),
                            &payload,
                        );
                    }
                }
            }
        }
    }

    // ---- receiving ----

    /// Acts on a whole message, in any context: it must not sleep.
    fn received(&self, peer: &Peer, envelope: Envelope, data: KVVec<u8>) {
        if envelope.flags.is_reply() {
            let outcome = if envelope.flags.is_error() {
                match ErrorReply::decode(&data) {
                    Ok(reply) => Err(Error::from_errno(-reply.errno)),
                    Err(_) => Err(errno::EPROTO()),
                }
            } else {
                Ok(data)
            };
            if !self.requests.settle(envelope.request_id, peer.id, outcome) {
                bump(&peer.counters.drops, 1);
            }
            return;
        }
        match envelope.msg_type {
            wire::MSG_HEARTBEAT | wire::MSG_HELLO => {}
            wire::MSG_PING => match Ping::decode(&data) {
                Ok(ping) => peer.queue_job(Job::Pong {
                    envelope,
                    nonce: ping.nonce,
                }),
                Err(_) => bump(&peer.counters.drops, 1),
            },
            wire::MSG_STREAM_DATA => bump(&peer.counters.stream_bytes, data.len() as u64),
            wire::MSG_STREAM_SYNC => match StreamSync::decode(&data) {
                Ok(_) => peer.queue_job(Job::StreamSync { envelope }),
                Err(_) => peer.queue_job(Job::Refuse {
                    envelope,
                    errno: errno::EPROTO(),
                }),
            },
            ty if ty >= msg::FIRST_TYPE => {
                let mut inbox = peer.inbox.lock();
                if inbox.push(Incoming { envelope, data }, GFP_ATOMIC).is_err() {
                    drop(inbox);
                    bump(&peer.counters.drops, 1);
                    if envelope.request_id != 0 {
                        peer.queue_job(Job::Refuse {
                            envelope,
                            errno: ENOMEM,
                        });
                    }
                    return;
                }
                drop(inbox);
                peer.inbox_ready.notify_one();
            }
            _ => {
                bump(&peer.counters.drops, 1);
                if envelope.request_id != 0 {
                    peer.queue_job(Job::Refuse {
                        envelope,
                        errno: errno::EPROTONOSUPPORT(),
                    });
                }
            }
        }
    }

    /// Hands `peer`'s messages to their handlers, in arrival order.
    fn dispatch_loop(&self, peer: &Peer) {
        loop {
            let mut inbox = peer.inbox.lock();
            let incoming = loop {
                if thread::should_stop() || self.stopping() {
                    return;
                }
                if let Some(incoming) = cohort::vec::pop_front(&mut *inbox) {
                    break incoming;
                }
                let _ = peer.inbox_ready.wait_interruptible(&mut inbox);
            };
            drop(inbox);
            let e = incoming.envelope;
            if let Err(err) =
                msg::deliver(u32::from(e.src.0), e.msg_type, e.request_id, &incoming.data)
            {
                if e.request_id != 0 {
                    let _ = self.reply(&e, err.to_errno(), &[]);
                }
            }
        }
    }

    /// Measures a round trip to `node`.
    pub(crate) fn ping(&self, node: u32, nonce: u64) -> Result<u64> {
        let mut payload = [0u8; Ping::LEN];
        Ping { nonce }.encode(&mut payload).map_err(|_| EINVAL)?;
        let start = cohort::now_ns();
        let reply = self.request(
            node,
            wire::MSG_PING,
            &payload,
            self.request_timeout_ms,
            false,
        )?;
        let rtt = cohort::now_ns().saturating_sub(start);
        match Pong::decode(&reply) {
            Ok(pong) if pong.nonce == nonce => {
                if let Ok(peer) = self.peer(node) {
                    peer.counters.rtt_ns.store(rtt, Ordering::Relaxed);
                }
                Ok(rtt)
            }
            _ => Err(errno::EPROTO()),
        }
    }

    /// Asks `node` how many stream bytes it received from this node,
    /// telling it how many were sent.
    pub(crate) fn stream_sync(&self, node: u32) -> Result<u64> {
        let sent = self
            .peer(node)?
            .counters
            .stream_sent
            .load(Ordering::Relaxed);
        let mut payload = [0u8; StreamSync::LEN];
        StreamSync { bytes: sent }
            .encode(&mut payload)
            .map_err(|_| EINVAL)?;
        let reply = self.request(
            node,
            wire::MSG_STREAM_SYNC,
            &payload,
            self.request_timeout_ms,
            false,
        )?;
        StreamSync::decode(&reply)
            .map(|s| s.bytes)
            .map_err(|_| errno::EPROTO())
    }
}

/// Where the receive path is within the byte stream.
enum Phase {
    /// Reading a frame header (`RxState::filled` bytes of it so far).
    Header,
    /// A message too large for an atomic allocation starts with this frame:
    /// waiting for the link thread to allocate its buffer.
    NeedBuffer { header: Header, range: Range<usize> },
    /// Reading a frame's payload into `range` of the message buffer.
    Payload { header: Header, range: Range<usize> },
    /// Skipping the payload of a dropped frame.
    Skip { left: usize },
    /// Reading the tag of a frame (`RxState::filled` bytes of it so far)
    /// on an authenticated connection; then the frame, if it was not
    /// dropped, is verified and reassembled.
    Tag {
        frame: Option<(Header, Range<usize>)>,
    },
    /// The stream can no longer be trusted; the link thread tears it down.
    Broken,
}

/// Bytes read from the socket ahead of the parser, so that a small
/// message (header and payload) costs one `tcp_read_sock` call.
struct Stage {
    buf: [u8; 256],
    pos: usize,
    len: usize,
}

impl Stage {
    /// Fills `out` from the staged bytes, else reads: through the stage
    /// for small reads, directly for large ones. Returns the bytes given.
    fn read(&mut self, rx: &mut impl ByteReader, out: &mut [u8]) -> usize {
        if self.pos == self.len && out.len() < self.buf.len() {
            self.pos = 0;
            self.len = rx.read(&mut self.buf);
        }
        let staged = self.buf.get(self.pos..self.len).unwrap_or(&[]);
        if staged.is_empty() {
            return rx.read(out);
        }
        let n = staged.len().min(out.len());
        if let (Some(dst), Some(src)) = (out.get_mut(..n), staged.get(..n)) {
            dst.copy_from_slice(src);
        }
        self.pos += n;
        n
    }
}

/// The receive state of one connection, driven from `data_ready` (TCP) or
/// from the connection's receiver thread (shared memory).
pub(crate) struct RxState {
    cluster: Arc<Cluster>,
    peer: Arc<Peer>,
    header: [u8; HEADER_LEN],
    stage: Stage,
    /// Bytes of the current header or frame payload read so far.
    filled: usize,
    phase: Phase,
    reassembler: Reassembler,
    message: KVVec<u8>,
    /// A buffer the link thread allocated ahead, so that the next large
    /// message does not wait for it.
    spare: KVVec<u8>,
    /// Size of the last large message: the spare the link thread keeps.
    spare_wanted: usize,
    /// Checks the tags of the frames received; `None` without
    /// authentication.
    mac: Option<Tagger>,
    /// Numbers the frames received, as the sender numbered them.
    seq: Sequence,
    /// The tag of the frame in progress, as received.
    tag: [u8; TAG_LEN],
    /// The receiver thread allocates the buffers itself (shared memory):
    /// the link thread is not woken for them.
    own_buffers: bool,
}

impl RxState {
    fn new(cluster: Arc<Cluster>, peer: Arc<Peer>, mac: Option<Tagger>, own_buffers: bool) -> Self {
        Self {
            cluster,
            peer,
            header: [0; HEADER_LEN],
            stage: Stage {
                buf: [0; 256],
                pos: 0,
                len: 0,
            },
            filled: 0,
            phase: Phase::Header,
            reassembler: Reassembler::new(),
            message: KVVec::new(),
            spare: KVVec::new(),
            spare_wanted: 0,
            mac,
            seq: Sequence::new(),
            tag: [0; TAG_LEN],
            own_buffers,
        }
    }

    /// Asks the link thread for a buffer (and a spare) it can allocate;
    /// nothing when the receiver allocates its own, after `pump`.
    fn want_buffer(&self) {
        if self.own_buffers {
            return;
        }
        let mut work = self.peer.work.lock();
        work.need_buffer = true;
        drop(work);
        self.peer.work_ready.notify_one();
    }

    /// Makes the spare the message buffer if it holds `total` bytes, and
    /// asks the link thread for a new spare; returns whether it did. Every
    /// byte of it is overwritten by the message's frames.
    fn take_spare(&mut self, total: usize) -> bool {
        if self.spare.len() < total {
            return false;
        }
        self.message = core::mem::replace(&mut self.spare, KVVec::new());
        cohort::vec::truncate(&mut self.message, total);
        self.want_buffer();
        true
    }

    /// The buffers the link thread should allocate: the one a large
    /// message waits for, and a spare for the next.
    pub(crate) fn wanted(&self) -> (Option<usize>, Option<usize>) {
        let waiting = match &self.phase {
            Phase::NeedBuffer { header, .. } => Some(header.total_len()),
            _ => None,
        };
        let spare = (self.spare.len() < self.spare_wanted).then_some(self.spare_wanted);
        (waiting, spare)
    }

    /// Takes the buffers the link thread allocated (outside the socket lock:
    /// holding it for an allocation would let the backlog overflow), then
    /// goes on parsing.
    ///
    /// `waiting` is the size [`RxState::wanted`] reported and what its
    /// allocation gave. The phase may have moved on between the two lock
    /// sections: a message that started waiting meanwhile takes the spare
    /// if it fits, or asks again; only a failed allocation of its own size
    /// drops it.
    pub(crate) fn install(
        &mut self,
        waiting: Option<(usize, Option<KVVec<u8>>)>,
        spare: Option<KVVec<u8>>,
        rx: &mut impl ByteReader,
    ) {
        if let Some(spare) = spare.filter(|s| s.len() > self.spare.len()) {
            self.spare = spare;
        }
        if matches!(self.phase, Phase::NeedBuffer { .. }) {
            if let Phase::NeedBuffer { header, range } =
                core::mem::replace(&mut self.phase, Phase::Header)
            {
                let total = header.total_len();
                let (asked, given) = match waiting {
                    Some((size, buffer)) => (Some(size), buffer),
                    None => (None, None),
                };
                if let Some(buffer) = given.filter(|b| b.len() == total) {
                    self.message = buffer;
                    self.phase = Phase::Payload { header, range };
                } else if self.take_spare(total) {
                    self.phase = Phase::Payload { header, range };
                } else if asked == Some(total) {
                    // Its own allocation failed: no memory for it.
                    self.drop_frame(header.frame_len());
                } else {
                    self.phase = Phase::NeedBuffer { header, range };
                    self.want_buffer();
                }
            }
        }
        self.pump(rx);
    }

    fn fail(&mut self, reason: &'static str) {
        self.phase = Phase::Broken;
        self.peer.break_link(reason);
    }

    /// Drops the frame in progress and skips its payload.
    fn drop_frame(&mut self, frame_len: usize) {
        bump(&self.peer.counters.drops, 1);
        self.reassembler.reset();
        self.phase = Phase::Skip { left: frame_len };
    }

    /// Parses whatever is queued, without sleeping: buffers of messages up
    /// to `ATOMIC_MESSAGE_MAX` are allocated atomically, larger ones come
    /// from the spare or wait for the link thread ([`RxState::install`]).
    pub(crate) fn pump(&mut self, rx: &mut impl ByteReader) {
        loop {
            match core::mem::replace(&mut self.phase, Phase::Header) {
                Phase::Broken => {
                    self.phase = Phase::Broken;
                    return;
                }
                Phase::Header => {
                    let Some(rest) = self.header.get_mut(self.filled..) else {
                        return self.fail("receive state corrupt");
                    };
                    let n = self.stage.read(rx, rest);
                    if n == 0 {
                        if rx.closed() {
                            self.fail("connection closed");
                        }
                        return;
                    }
                    self.filled += n;
                    if self.filled < HEADER_LEN {
                        continue;
                    }
                    self.filled = 0;
                    self.header_done();
                }
                Phase::NeedBuffer { header, range } => {
                    self.phase = Phase::NeedBuffer { header, range };
                    return;
                }
                Phase::Payload { header, range } => {
                    let Some(slot) = self.message.get_mut(range.start + self.filled..range.end)
                    else {
                        return self.fail("receive state corrupt");
                    };
                    if !slot.is_empty() {
                        let n = self.stage.read(rx, slot);
                        if let (Some(mac), Some(got)) = (self.mac.as_mut(), slot.get(..n)) {
                            mac.update(got);
                        }
                        if n == 0 {
                            if rx.closed() {
                                self.fail("connection closed");
                            } else {
                                self.phase = Phase::Payload { header, range };
                            }
                            return;
                        }
                        self.filled += n;
                        if self.filled < range.len() {
                            self.phase = Phase::Payload { header, range };
                            continue;
                        }
                    }
                    self.filled = 0;
                    self.payload_done(Some((header, range)));
                }
                Phase::Skip { left } => {
                    let mut scratch = [0u8; 256];
                    let want = left.min(scratch.len());
                    let n = self.stage.read(rx, &mut scratch[..want]);
                    if n == 0 && left > 0 {
                        if rx.closed() {
                            self.fail("connection closed");
                        } else {
                            self.phase = Phase::Skip { left };
                        }
                        return;
                    }
                    if let (Some(mac), Some(got)) = (self.mac.as_mut(), scratch.get(..n)) {
                        mac.update(got);
                    }
                    if left > n {
                        self.phase = Phase::Skip { left: left - n };
                    } else {
                        self.payload_done(None);
                    }
                }
                Phase::Tag { frame } => {
                    let Some(rest) = self.tag.get_mut(self.filled..) else {
                        return self.fail("receive state corrupt");
                    };
                    let n = self.stage.read(rx, rest);
                    if n == 0 {
                        if rx.closed() {
                            self.fail("connection closed");
                        } else {
                            self.phase = Phase::Tag { frame };
                        }
                        return;
                    }
                    self.filled += n;
                    if self.filled < TAG_LEN {
                        self.phase = Phase::Tag { frame };
                        continue;
                    }
                    self.filled = 0;
                    self.tag_done(frame);
                }
            }
        }
    }

    /// A frame's payload arrived or was skipped: on an authenticated
    /// connection its tag comes next, else `frame` (if not dropped) is
    /// verified now.
    fn payload_done(&mut self, frame: Option<(Header, Range<usize>)>) {
        if self.mac.is_some() {
            self.phase = Phase::Tag { frame };
        } else if let Some((header, range)) = frame {
            self.frame_done(&header, range);
        }
    }

    /// A frame's tag arrived: compare it with the one computed over the
    /// sequence number, header and payload; only a frame whose tag matches
    /// goes on to be verified and reassembled.
    fn tag_done(&mut self, frame: Option<(Header, Range<usize>)>) {
        let Some(mac) = self.mac.as_mut() else {
            return self.fail("receive state corrupt");
        };
        if !auth::same(&mac.finish(), &self.tag) {
            bump(&self.peer.counters.errors, 1);
            bump(&self.peer.counters.bad_tags, 1);
            if self.cluster.warnings.allow() {
                pr_warn!(
                    "node {}: a frame's tag is wrong (forged, altered, replayed or reordered), resetting the connection\n",
                    self.peer.id
                );
            }
            return self.fail("bad tag");
        }
        if let Some((header, range)) = frame {
            self.frame_done(&header, range);
        }
    }

    /// Starts the tag of a frame whose header just arrived: its key comes
    /// from the frame's sequence number, and it covers the header and the
    /// payload.
    fn begin_tag(&mut self) -> Result {
        let Some(mac) = self.mac.as_mut() else {
            return Ok(());
        };
        let seq = self.seq.advance().map_err(|_| errno::EOVERFLOW())?;
        mac.begin(seq);
        mac.update(&self.header);
        Ok(())
    }

    /// A whole header arrived: check it and say where its payload goes.
    fn header_done(&mut self) {
        if self.begin_tag().is_err() {
            return self.fail("frame numbers exhausted");
        }
        let peer = &self.peer;
        peer.counters
            .last_rx_ns
            .store(cohort::now_ns(), Ordering::Relaxed);
        let route = (peer.node(), NodeId(self.cluster.me as u8));
        let header = match Header::decode(&self.header)
            .and_then(|h| h.check_route(route.0, route.1).map(|()| h))
        {
            Ok(header) => header,
            Err(e) => {
                bump(&peer.counters.errors, 1);
                if self.cluster.warnings.allow() {
                    pr_warn!(
                        "node {}: malformed frame ({}), resetting the connection\n",
                        peer.id,
                        e.as_str()
                    );
                }
                return self.fail("malformed frame");
            }
        };
        let placement = match self.reassembler.accept(&header) {
            Ok(placement) => placement,
            Err(_) => return self.drop_frame(header.frame_len()),
        };
        if placement.abandoned() {
            bump(&peer.counters.drops, 1);
        }
        let range = placement.range();
        if !placement.is_start() {
            self.phase = Phase::Payload { header, range };
            return;
        }
        let total = placement.total_len();
        if total > ATOMIC_MESSAGE_MAX {
            self.spare_wanted = self.spare_wanted.max(total);
            if self.take_spare(total) {
                self.phase = Phase::Payload { header, range };
            } else {
                self.phase = Phase::NeedBuffer { header, range };
                self.want_buffer();
            }
            return;
        }
        match KVVec::from_elem(0u8, total, GFP_ATOMIC) {
            Ok(buffer) => {
                self.message = buffer;
                self.phase = Phase::Payload { header, range };
            }
            Err(_) => self.drop_frame(header.frame_len()),
        }
    }

    /// A frame's payload arrived: verify it; hand over a whole message.
    fn frame_done(&mut self, header: &Header, range: Range<usize>) {
        let Some(payload) = self.message.get(range) else {
            return self.fail("receive state corrupt");
        };
        match self.reassembler.complete(header, payload) {
            Ok(false) => {}
            Ok(true) => {
                let bytes = (header.total_len() + HEADER_LEN) as u64;
                let counters = &self.peer.counters;
                bump(&counters.rx_msgs, 1);
                bump(&counters.rx_bytes, bytes);
                if let Some(types) = self.cluster.types.get(usize::from(header.msg_type())) {
                    bump(&types.rx_msgs, 1);
                    bump(&types.rx_bytes, bytes);
                }
                let data = core::mem::replace(&mut self.message, KVVec::new());
                self.cluster.received(&self.peer, *header.envelope(), data);
            }
            Err(_) => {
                bump(&self.peer.counters.drops, 1);
                if self.cluster.warnings.allow() {
                    pr_warn!(
                        "node {}: dropped a frame with a bad checksum\n",
                        self.peer.id
                    );
                }
            }
        }
    }
}

/// The connection's `data_ready` handler.
pub(crate) struct Rx;

impl ReceiveHandler for Rx {
    type State = RxState;

    fn data_ready(state: &mut RxState, rx: &mut SockReader) {
        state.pump(rx);
    }
}
