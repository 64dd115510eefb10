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

use crate::proto::node::NodeId;
use crate::proto::wire::{
    self, Envelope, ErrorReply, Fragmenter, Header, Heartbeat, Hello, Payload, Ping, Pong,
    Reassembler, Refusal, StreamSync, HEADER_LEN,
};
use crate::requests::Requests;
use core::ops::Range;
use core::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use kernel::alloc::KVVec;
use kernel::cohort::net::{ReceiveHandler, Receiving, SockReader, TcpSocket};
use kernel::cohort::sync_bh::SpinLockBh;
use kernel::cohort::{self, errno, msg, thread};
use kernel::prelude::*;
use kernel::sync::{Arc, CondVar, Mutex};
use kernel::time::msecs_to_jiffies;
use kernel::{c_str, new_condvar, new_mutex, new_spinlock_bh};

/// How often each connection carries at least a heartbeat.
pub(crate) const HEARTBEAT_INTERVAL_MS: u32 = 250;
/// Silence after which a peer is declared down.
pub(crate) const HEARTBEAT_TIMEOUT_MS: u32 = 2000;
/// Default time a request waits for its reply.
pub(crate) const REQUEST_TIMEOUT_MS: u32 = 5000;
/// How long a send may block on a peer that stopped reading.
const SEND_TIMEOUT_MS: u32 = 500;
/// How long a dial may take before it is retried.
const CONNECT_TIMEOUT_MS: u32 = 1000;
/// Pause between dial attempts.
const REDIAL_MS: u32 = 500;
/// How long a new connection has, in all, to introduce itself. The
/// listener serves one connection at a time, so this bounds how long a
/// connection that never introduces itself (or trickles its bytes) keeps
/// the others waiting.
const HELLO_TIMEOUT_MS: u32 = 1000;
/// Warnings about bad frames and connections a rogue sender can provoke:
/// at most this many per [`WARN_WINDOW_MS`], then one line saying how many
/// were left out.
const WARN_BURST: u32 = 10;
const WARN_WINDOW_MS: u64 = 5000;
/// Largest message whose buffer is allocated in softirq context.
const ATOMIC_MESSAGE_MAX: usize = 16 * 1024;

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

/// The connection of a peer, as the link thread and the senders see it.
struct Link {
    /// The live connection, shared with senders.
    socket: Option<Arc<TcpSocket>>,
    /// A connection the listener accepted for this peer, not yet taken up.
    handoff: Option<TcpSocket>,
}

/// Another node.
#[pin_data]
pub(crate) struct Peer {
    pub(crate) id: u32,
    pub(crate) addr: u32,
    state: AtomicU8,
    pub(crate) counters: Counters,
    #[pin]
    link: Mutex<Link>,
    #[pin]
    link_changed: CondVar,
    /// Held for the whole of a message so its frames stay consecutive.
    #[pin]
    send_lock: Mutex<()>,
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
    fn new(id: u32, addr: u32) -> impl PinInit<Self> {
        pin_init!(Self {
            id,
            addr,
            state: AtomicU8::new(DOWN),
            counters: Counters::default(),
            link <- new_mutex!(Link { socket: None, handoff: None }),
            link_changed <- new_condvar!(),
            send_lock <- new_mutex!(()),
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

    fn socket(&self) -> Option<Arc<TcpSocket>> {
        self.link.lock().socket.clone()
    }

    /// Shuts the live connection; its link thread then cleans up.
    fn shut(&self, reason: &'static str) {
        if let Some(socket) = self.socket() {
            socket.shutdown();
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
                pr_err!("no address for node {id}: boot with cohort.peers=<ip of node 0>,...\n");
            })?;
            peers.push(Arc::pin_init(Peer::new(id, addr), GFP_KERNEL)?, GFP_KERNEL)?;
        }
        let mut types = KVec::with_capacity(usize::from(msg::NR_TYPES), GFP_KERNEL)?;
        for _ in 0..msg::NR_TYPES {
            types.push(TypeCounters::default(), GFP_KERNEL)?;
        }
        let listener = TcpSocket::listen(port, 16).inspect_err(|e| {
            pr_err!("cannot listen on port {port}: error {}\n", e.to_errno());
        })?;
        Arc::pin_init(
            pin_init!(Self {
                me,
                nr_nodes,
                port,
                incarnation: cohort::now_ns(),
                peers,
                types,
                requests <- Requests::new(),
                next_request: AtomicU64::new(1),
                stopping: AtomicBool::new(false),
                listener,
                listener_counters: ListenerCounters::default(),
                warnings: Ratelimit::default(),
            }),
            GFP_KERNEL,
        )
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

    /// Starts the listener, heartbeat, link and dispatcher threads.
    pub(crate) fn start(self: &Arc<Self>, threads: &mut KVec<thread::Thread>) -> Result {
        let cluster = self.clone();
        threads.push(
            thread::Thread::spawn(c_str!("kmsg-listen"), move || cluster.listen_loop())?,
            GFP_KERNEL,
        )?;
        let cluster = self.clone();
        threads.push(
            thread::Thread::spawn(c_str!("kmsg-heartbeat"), move || cluster.heartbeat_loop())?,
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
        let socket = peer.socket().ok_or_else(errno::EHOSTDOWN)?;
        let mut frames = Fragmenter::new(envelope, data).map_err(|_| errno::EMSGSIZE())?;
        let mut header = [0u8; HEADER_LEN];
        let _whole_message = peer.send_lock.lock();
        while let Some(payload) = frames.next_frame(&mut header) {
            if let Err(e) = socket.send_all(&[&header, payload]) {
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
    pub(crate) fn inject(&self, node: u32, kind: &[u8]) -> Result {
        let peer = self.peer(node)?;
        let socket = peer.socket().ok_or_else(errno::EHOSTDOWN)?;
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
        match kind {
            b"bad-checksum" => header[32] ^= 0xff,
            b"bad-magic" => header[0] ^= 0xff,
            b"bad-length" => header[12..16].copy_from_slice(&u32::MAX.to_le_bytes()),
            b"bad-node" => header[10..12].copy_from_slice(&200u16.to_le_bytes()),
            _ => return Err(EINVAL),
        }
        let _whole_message = peer.send_lock.lock();
        socket.send_all(&[&header, &payload])
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

    /// Fills `buf` from `socket` before `deadline_ns`, a byte at a time so
    /// that no receive outlives the deadline however the bytes trickle in.
    fn recv_before(socket: &TcpSocket, buf: &mut [u8], deadline_ns: u64) -> Result {
        for byte in buf.chunks_mut(1) {
            let left_ms = deadline_ns.saturating_sub(cohort::now_ns()) / 1_000_000;
            if left_ms == 0 {
                return Err(EAGAIN);
            }
            socket.set_recv_timeout(u32::try_from(left_ms).unwrap_or(HELLO_TIMEOUT_MS));
            socket.recv_exact(byte)?;
        }
        Ok(())
    }

    /// Reads a new connection's `Hello` (within `HELLO_TIMEOUT_MS` in all)
    /// and hands the connection to its peer.
    fn introduce(&self, socket: TcpSocket) {
        let counters = &self.listener_counters;
        bump(&counters.accepted, 1);
        let me = NodeId(self.me as u8);
        let deadline = cohort::now_ns() + u64::from(HELLO_TIMEOUT_MS) * 1_000_000;
        let mut header = [0u8; HEADER_LEN];
        let mut payload = [0u8; Hello::LEN];
        let hello = Self::recv_before(&socket, &mut header, deadline)
            .map_err(|_| Refusal::Malformed(wire::WireError::Truncated))
            .and_then(|()| wire::hello_header(&header, me))
            .and_then(|h| {
                Self::recv_before(&socket, &mut payload, deadline)
                    .map_err(|_| Refusal::Malformed(wire::WireError::Truncated))?;
                wire::admit_hello(&h, &payload, me, self.nr_nodes as u16)
            });
        let hello = match hello {
            Ok(hello) => hello,
            Err(refusal) => {
                let counter = match refusal {
                    Refusal::Malformed(_) => &counters.malformed,
                    _ => &counters.refused,
                };
                bump(counter, 1);
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
        // anyone else who knows a node id cannot cut a live peer off.
        if peer.is_up() && peer.work.lock().broken.is_none() {
            bump(&counters.refused, 1);
            if self.warnings.allow() {
                pr_warn!("refused a second connection from node {node}: its first is alive\n");
            }
            return;
        }
        socket.set_recv_timeout(0);
        bump(&counters.introduced, 1);
        // The peer reconnected: its old connection is dead.
        peer.shut("replaced by a new connection");
        peer.link.lock().handoff = Some(socket);
        peer.link_changed.notify_all();
    }

    /// The lower id waits for the higher to dial.
    fn await_handoff(&self, peer: &Peer) -> Option<TcpSocket> {
        let mut link = peer.link.lock();
        loop {
            if let Some(socket) = link.handoff.take() {
                return Some(socket);
            }
            if thread::should_stop() || self.stopping() {
                return None;
            }
            let _ = peer
                .link_changed
                .wait_interruptible_timeout(&mut link, msecs_to_jiffies(REDIAL_MS));
        }
    }

    /// The higher id dials the lower and introduces itself.
    fn dial(&self, peer: &Peer) -> Option<TcpSocket> {
        while !thread::should_stop() && !self.stopping() {
            if let Ok(socket) = TcpSocket::connect(peer.addr, self.port, CONNECT_TIMEOUT_MS) {
                let mut payload = [0u8; Hello::LEN];
                let hello = Hello {
                    node: NodeId(self.me as u8),
                    nr_nodes: self.nr_nodes as u16,
                    incarnation: self.incarnation,
                };
                let mut frames = hello.encode(&mut payload).ok().and_then(|_| {
                    Fragmenter::new(self.envelope(peer, wire::MSG_HELLO, 0), &payload).ok()
                });
                let mut header = [0u8; HEADER_LEN];
                if let Some(frame) = frames.as_mut().and_then(|f| f.next_frame(&mut header)) {
                    if socket.send_all(&[&header, frame]).is_ok() {
                        return Some(socket);
                    }
                }
            }
            thread::sleep_ms(REDIAL_MS);
        }
        None
    }

    /// Keeps `peer` connected for as long as the module is loaded.
    fn link_loop(self: &Arc<Self>, peer: Arc<Peer>) {
        while !thread::should_stop() && !self.stopping() {
            let socket = if self.me > peer.id {
                self.dial(&peer)
            } else {
                self.await_handoff(&peer)
            };
            let Some(socket) = socket else { continue };
            socket.set_send_timeout(SEND_TIMEOUT_MS);
            let Ok(socket) = Arc::new(socket, GFP_KERNEL) else {
                continue;
            };
            let Ok(state) = KBox::new(RxState::new(self.clone(), peer.clone()), GFP_KERNEL) else {
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
            peer.link.lock().socket = Some(socket.clone());
            peer.state.store(UP, Ordering::Release);
            bump(&peer.counters.ups, 1);
            pr_info!("node {} up\n", peer.id);
            msg::notify_membership(peer.id, true);

            let rx = Receiving::<Rx>::start(socket.clone(), state);
            let reason = self.serve(&peer, &rx);

            peer.state.store(DOWN, Ordering::Release);
            socket.shutdown();
            drop(rx);
            peer.link.lock().socket = None;
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
    fn serve(&self, peer: &Peer, rx: &Receiving<Rx>) -> &'static str {
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
            if need_buffer {
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

    fn heartbeat_loop(&self) {
        while !thread::should_stop() && !self.stopping() {
            thread::sleep_ms(HEARTBEAT_INTERVAL_MS);
            let now = cohort::now_ns();
            self.requests.expire(now);
            for peer in self.peers.iter().filter(|p| p.is_up()) {
                let silent_ms = now
                    .saturating_sub(peer.counters.last_rx_ns.load(Ordering::Relaxed))
                    / 1_000_000;
                if silent_ms >= u64::from(HEARTBEAT_TIMEOUT_MS) {
                    pr_warn!(
                        "node {}: nothing received for {silent_ms} ms, marking it down\n",
                        peer.id
                    );
                    peer.shut("silent");
                    continue;
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
        let reply = self.request(node, wire::MSG_PING, &payload, REQUEST_TIMEOUT_MS, false)?;
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
            REQUEST_TIMEOUT_MS,
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
    fn read(&mut self, rx: &mut SockReader, out: &mut [u8]) -> usize {
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

/// The receive state of one connection, driven from `data_ready`.
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
}

impl RxState {
    fn new(cluster: Arc<Cluster>, peer: Arc<Peer>) -> Self {
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
        }
    }

    /// Asks the link thread for a buffer (and a spare) it can allocate.
    fn want_buffer(&self) {
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
        rx: &mut SockReader,
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
    pub(crate) fn pump(&mut self, rx: &mut SockReader) {
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
                    self.frame_done(&header, range);
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
                    if left > n {
                        self.phase = Phase::Skip { left: left - n };
                    }
                }
            }
        }
    }

    /// A whole header arrived: check it and say where its payload goes.
    fn header_done(&mut self) {
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
