// SPDX-License-Identifier: GPL-2.0

//! The shared-memory transport: kmsg's byte streams over the rings of an
//! `ivshmem-doorbell` region (`proto::shm_ring`) instead of TCP.
//!
//! A node booted with `cohort.shm=1` and the device attaches to it when
//! kmsg loads and joins the region (its slot says joined, with a new
//! incarnation). A peer that is joined too is reached through the pair of
//! rings between the two ([`Pipe`]); any other peer through TCP, so one
//! cluster may mix both. On a pipe, each side starts a *session* of its
//! own whenever it (re)connects, and treats a new session of the other as
//! the connection being reset: that is how one connection is closed and
//! opened again without the others noticing. After that, the connection is
//! a byte stream like a TCP one: the same handshake, the same frames.
//!
//! Waiting: a side with nothing to read, or no room to write, sets its
//! waiting flag (`prepare_wait`) and sleeps until a peer rings this node's
//! doorbell (an MSI-X interrupt, [`Bell`]); the interrupt wakes every
//! waiter of the node, which look again. Each sleep is also bounded by
//! [`POLL_MS`], which bounds the cost of a wake-up lost between a waiter's
//! last look and its sleep.
//!
//! Polling under load: with `cohort.shm_poll_us` set, a receiver that
//! read something that recently looks at its ring again, without the flag
//! and without sleeping, until that much time passed since its last bytes
//! ([`Pipe::poll_readable`]). A request/reply exchange then never goes
//! through the doorbell (the sender sees no waiting flag, so it does not
//! ring either); an idle connection costs one such window per message.
//! Off by default: a polling receiver holds a CPU, which slows its peer
//! when the host runs more vCPUs than it has cores (as the test clusters
//! do under TCG).

use crate::proto::node::NodeId;
use crate::proto::shm_ring::{
    Consumer, Doorbell, Gen, Layout, Producer, Resync, RingError, RingMemory, Wait,
};
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use kernel::cohort::shm::{self, Attachment, Region};
use kernel::cohort::{self, errno, thread};
use kernel::prelude::*;
use kernel::sync::{Arc, CondVar, Mutex};
use kernel::time::msecs_to_jiffies;
use kernel::{new_condvar, new_mutex};

/// Longest sleep between two looks at a ring, in ms.
pub(crate) const POLL_MS: u32 = 10;

/// The region as the ring protocol sees it.
#[derive(Clone, Copy)]
pub(crate) struct Mem(Region);

impl RingMemory for Mem {
    fn load_acquire_u64(&self, off: usize) -> u64 {
        self.0.load_acquire(off)
    }

    fn store_release_u64(&self, off: usize, val: u64) {
        self.0.store_release(off, val)
    }

    fn read(&self, off: usize, buf: &mut [u8]) {
        self.0.read(off, buf)
    }

    fn write(&self, off: usize, bytes: &[u8]) {
        self.0.write(off, bytes)
    }

    fn fence(&self) {
        self.0.fence()
    }
}

/// This node's doorbell: the device's interrupt wakes every waiter.
#[pin_data]
pub(crate) struct Bell {
    /// Times the doorbell rang.
    rung: AtomicU64,
    #[pin]
    lock: Mutex<()>,
    #[pin]
    rang: CondVar,
}

impl Bell {
    fn new() -> impl PinInit<Self> {
        pin_init!(Self {
            rung: AtomicU64::new(0),
            lock <- new_mutex!(()),
            rang <- new_condvar!(),
        })
    }

    /// The doorbell's count, to pass to [`Bell::wait`] after a last look.
    pub(crate) fn count(&self) -> u64 {
        self.rung.load(Ordering::Acquire)
    }

    /// Sleeps until the doorbell rings after `seen` was read, or
    /// [`POLL_MS`] pass.
    pub(crate) fn wait(&self, seen: u64) {
        let mut guard = self.lock.lock();
        if self.count() == seen {
            let _ = self
                .rang
                .wait_interruptible_timeout(&mut guard, msecs_to_jiffies(POLL_MS));
        }
    }

    /// Wakes every waiter (the interrupt, or a local state change).
    pub(crate) fn wake(&self) {
        self.rung.fetch_add(1, Ordering::AcqRel);
        self.rang.notify_all();
    }
}

impl shm::Doorbell for Bell {
    fn doorbell(&self) {
        self.wake();
    }
}

/// The region this node joined.
pub(crate) struct Shm {
    pub(crate) mem: Mem,
    pub(crate) layout: Layout,
    pub(crate) me: NodeId,
    /// This node's incarnation in the region.
    pub(crate) incarnation: u16,
    pub(crate) bell: Arc<Bell>,
    _attachment: Attachment<Bell>,
}

impl Shm {
    /// Attaches to the device and joins the region as node `me` of
    /// `nr_nodes`. `Ok(None)` when this node shares no memory (booted
    /// without `cohort.shm=1`, or without the device).
    pub(crate) fn join(me: u32, nr_nodes: u32) -> Result<Option<Self>> {
        let bell = Arc::pin_init(Bell::new(), GFP_KERNEL)?;
        let (attachment, region) = match Attachment::new(bell.clone()) {
            Ok(pair) => pair,
            Err(e) if e == EPERM || e == ENODEV => return Ok(None),
            Err(e) => return Err(e),
        };
        let mem = Mem(region);
        let layout = Layout::attach(&mem, nr_nodes as usize, region.size()).map_err(|e| {
            pr_err!(
                "shared memory: {} KiB region unusable for {nr_nodes} nodes: {:?}\n",
                region.size() >> 10,
                e
            );
            EINVAL
        })?;
        let me = NodeId(me as u8);
        let incarnation = layout
            .join(&mem, me, region.position())
            .map_err(|_| EINVAL)?;
        pr_info!(
            "shared memory: {} KiB, rings of {} KiB, peer id {}, incarnation {}\n",
            region.size() >> 10,
            layout.ring_size() >> 10,
            region.position(),
            incarnation
        );
        let shm = Self {
            mem,
            layout,
            me,
            incarnation,
            bell,
            _attachment: attachment,
        };
        shm.ring_joined();
        Ok(Some(shm))
    }

    /// Rings every joined peer (they look at their rings with this node).
    fn ring_joined(&self) {
        for node in self.layout.joined(&self.mem).iter() {
            if node != self.me {
                self.ring(Doorbell { node });
            }
        }
    }

    /// Rings `bell.node`'s doorbell, if it is joined.
    pub(crate) fn ring(&self, bell: Doorbell) {
        if let Some(value) = self.layout.doorbell_value(&self.mem, bell, 0) {
            self.mem.0.ring(value);
        }
    }

    /// Whether `node` shares the region with this node now.
    pub(crate) fn joined(&self, node: u32) -> bool {
        self.layout
            .slot(&self.mem, NodeId(node as u8))
            .is_ok_and(|s| s.joined)
    }

    /// Leaves the region (kmsg unloads): the peers' ends see it closed.
    pub(crate) fn leave(&self) {
        let _ = self.layout.leave(&self.mem, self.me);
        self.ring_joined();
        self.bell.wake();
    }
}

/// The ends of this node's rings with one peer.
struct Ends {
    tx: Producer,
    rx: Consumer,
    /// The peer's session this node's connection belongs to (0: none).
    accepted: u32,
    /// Counts this node's opens: a sender of an older connection, still
    /// in `send_all` when a new one opened, must not write into it.
    epoch: u64,
}

/// The pair of rings between this node and one peer, and the connection
/// over them.
#[pin_data]
pub(crate) struct Pipe {
    shm: Arc<Shm>,
    pub(crate) peer: u32,
    /// Set when the connection is torn down: sends and receives fail.
    broken: AtomicBool,
    /// Both ends. The sender holds it for a write, the receiver for a
    /// read; neither sleeps holding it.
    #[pin]
    ends: Mutex<Ends>,
}

/// One connection over a pipe: the pipe, the epoch its sends carry, and
/// how long a send may wait for room.
#[derive(Clone)]
pub(crate) struct PipeConn {
    pub(crate) pipe: Arc<Pipe>,
    pub(crate) epoch: u64,
    pub(crate) send_timeout_ms: u32,
}

impl PipeConn {
    /// [`Pipe::send_all`] for this connection.
    pub(crate) fn send_all(&self, parts: &[&[u8]]) -> Result {
        self.pipe.send_all(parts, self.send_timeout_ms, self.epoch)
    }
}

/// The error a ring's failure means for the connection.
fn closed_by(e: RingError) -> Error {
    match e {
        RingError::Corrupt => errno::EPROTO(),
        _ => errno::ECONNRESET(),
    }
}

impl Pipe {
    pub(crate) fn new(shm: Arc<Shm>, peer: u32) -> Result<Arc<Self>> {
        let me = shm.me;
        let to = NodeId(peer as u8);
        let tx = Producer::closed(shm.layout.ring(me, to).map_err(|_| EINVAL)?);
        let rx = Consumer::closed(shm.layout.ring(to, me).map_err(|_| EINVAL)?);
        Arc::pin_init(
            pin_init!(Self {
                shm,
                peer,
                broken: AtomicBool::new(true),
                ends <- new_mutex!(Ends { tx, rx, accepted: 0, epoch: 0 }),
            }),
            GFP_KERNEL,
        )
    }

    pub(crate) fn bell(&self) -> &Bell {
        &self.shm.bell
    }

    fn ring(&self, bell: Option<Doorbell>) {
        if let Some(bell) = bell {
            self.shm.ring(bell);
        }
    }

    /// Whether the peer is joined, i.e. this pipe is the way to reach it.
    pub(crate) fn usable(&self) -> bool {
        self.shm.joined(self.shm.me.0.into()) && self.shm.joined(self.peer)
    }

    /// Brings both ends to the generation the slots give; a changed one
    /// forgets the peer's session.
    fn resync(&self, ends: &mut Ends) -> Result<Gen> {
        let layout = &self.shm.layout;
        let mem = &self.shm.mem;
        let tx = layout
            .resync_producer(mem, &mut ends.tx)
            .map_err(|_| EINVAL)?;
        let rx = layout
            .resync_consumer(mem, &mut ends.rx)
            .map_err(|_| EINVAL)?;
        for r in [tx, rx] {
            if let Resync::Reset { doorbell, .. } = r {
                ends.accepted = 0;
                self.ring(doorbell);
            }
        }
        Ok(ends.tx.gen())
    }

    /// Opens a connection: resyncs the ends, starts a session of this
    /// node's and waits (until `deadline_ns`) for a session of the peer's
    /// newer than the last one accepted, whose start it skips to. Returns
    /// the connection's epoch, which its sends carry.
    ///
    /// # Errors
    ///
    /// `EHOSTDOWN` when the peer is not joined, `ETIMEDOUT` when it starts
    /// no session in time, `ESHUTDOWN` when `stop` says so.
    pub(crate) fn open(&self, deadline_ns: u64, stop: impl Fn() -> bool) -> Result<u64> {
        let epoch = {
            let mut ends = self.ends.lock();
            ends.epoch += 1;
            if self.resync(&mut ends)?.is_closed() {
                return Err(errno::EHOSTDOWN());
            }
            ends.tx.start_session(&self.shm.mem).map_err(closed_by)?;
            ends.epoch
        };
        self.shm.ring(Doorbell {
            node: NodeId(self.peer as u8),
        });
        loop {
            let seen = self.bell().count();
            {
                let mut ends = self.ends.lock();
                let mem = self.shm.mem;
                match ends.rx.session(&mem) {
                    Ok((number, start)) if number > ends.accepted => {
                        if ends.rx.skip_to(&mem, start).map_err(closed_by)? {
                            ends.accepted = number;
                            let bell = ends.rx.release(&mem);
                            drop(ends);
                            self.ring(bell);
                            self.broken.store(false, Ordering::Release);
                            return Ok(epoch);
                        }
                    }
                    Ok(_) | Err(RingError::Disconnected { .. }) => {}
                    Err(e) => return Err(closed_by(e)),
                }
                // The slots may have moved on meanwhile (the peer restarted).
                let gen = ends.tx.gen();
                if self.resync(&mut ends)? != gen {
                    return Err(errno::ECONNRESET());
                }
            }
            if stop() {
                return Err(errno::ESHUTDOWN());
            }
            if cohort::now_ns() >= deadline_ns {
                return Err(errno::ETIMEDOUT());
            }
            self.bell().wait(seen);
        }
    }

    /// Tears the connection down: sends and receives in progress fail.
    pub(crate) fn shutdown(&self) {
        self.broken.store(true, Ordering::Release);
        self.bell().wake();
    }

    pub(crate) fn is_broken(&self) -> bool {
        self.broken.load(Ordering::Acquire)
    }

    /// Whether the peer started a session after the one this connection
    /// belongs to (it reset the connection), or the ring fails.
    pub(crate) fn reset_by_peer(&self) -> bool {
        let ends = self.ends.lock();
        match ends.rx.session(&self.shm.mem) {
            Ok((number, _)) => number != ends.accepted,
            Err(_) => true,
        }
    }

    /// Writes all of `parts`, in order, for the connection of `epoch`,
    /// waiting for room; fails with `EAGAIN` when no room came for
    /// `timeout_ms`, `EPIPE` once that connection is torn down,
    /// `ECONNRESET` when the ring closed.
    pub(crate) fn send_all(&self, parts: &[&[u8]], timeout_ms: u32, epoch: u64) -> Result {
        // A sender whose ring always has room never sleeps here, as it
        // would in a socket: each frame gives the CPU away if another task
        // needs it (with one vCPU, a stream otherwise starved even RCU).
        thread::cond_resched();
        let mem = self.shm.mem;
        let mut last_progress = cohort::now_ns();
        for part in parts {
            let mut rest: &[u8] = part;
            while !rest.is_empty() {
                if self.is_broken() {
                    return Err(EPIPE);
                }
                let seen = self.bell().count();
                let mut ends = self.ends.lock();
                if ends.epoch != epoch {
                    return Err(EPIPE);
                }
                let n = ends.tx.write(&mem, rest).map_err(closed_by)?;
                if n > 0 {
                    rest = rest.get(n..).unwrap_or(&[]);
                    last_progress = cohort::now_ns();
                    if !rest.is_empty() {
                        // Full: let the consumer see what fits, and let
                        // other tasks run (a sender that always finds
                        // room would otherwise keep this CPU).
                        let bell = ends.tx.publish(&mem);
                        drop(ends);
                        self.ring(bell);
                        thread::cond_resched();
                    }
                    continue;
                }
                let wait = ends.tx.prepare_wait(&mem, rest.len()).map_err(closed_by)?;
                drop(ends);
                if wait == Wait::Sleep {
                    let waited_ms = cohort::now_ns().saturating_sub(last_progress) / 1_000_000;
                    if waited_ms >= u64::from(timeout_ms) {
                        self.ends.lock().tx.finish_wait(&mem);
                        return Err(EAGAIN);
                    }
                    self.bell().wait(seen);
                    self.ends.lock().tx.finish_wait(&mem);
                }
            }
        }
        let mut ends = self.ends.lock();
        if ends.epoch != epoch {
            return Err(EPIPE);
        }
        let bell = ends.tx.publish(&mem);
        drop(ends);
        self.ring(bell);
        Ok(())
    }

    /// Reads what is available into `buf` (at most its length) and gives
    /// the room back; `Ok(0)` when nothing is.
    pub(crate) fn read_some(&self, buf: &mut [u8]) -> Result<usize> {
        if self.is_broken() {
            return Err(EPIPE);
        }
        let mem = self.shm.mem;
        let mut ends = self.ends.lock();
        let n = ends.rx.read(&mem, buf).map_err(closed_by)?;
        // The session word is loaded after `head`: had the peer started a
        // new session before publishing the bytes just read, this sees it
        // (and the bytes, which may be the new session's, are dropped).
        let (session, _) = ends.rx.session(&mem).map_err(closed_by)?;
        if session != ends.accepted {
            return Err(errno::ECONNRESET());
        }
        let bell = ends.rx.release(&mem);
        drop(ends);
        self.ring(bell);
        Ok(n)
    }

    /// Polls the ring until bytes come or `cohort.shm_poll_us` have passed
    /// since `last_ns` (when the receiver last read some); returns whether
    /// bytes came. Gives the CPU away on every look (the kernel does not
    /// preempt).
    pub(crate) fn poll_readable(&self, last_ns: u64) -> bool {
        let window = shm::poll_ns();
        if window == 0 || cohort::now_ns().saturating_sub(last_ns) >= window {
            return false;
        }
        let mem = self.shm.mem;
        // A copy of the consumer end, looked at without the lock: the
        // receiver is the only reader, so its position stays right, and
        // a copy made stale by a reopen only says "look" once too often.
        // The lock stays free for this node's sender.
        let probe = self.ends.lock().rx;
        while cohort::now_ns().saturating_sub(last_ns) < window {
            if self.is_broken() || thread::should_stop() {
                return false;
            }
            if probe.available(&mem).unwrap_or(1) > 0 {
                return true;
            }
            thread::cond_resched();
            core::hint::spin_loop();
        }
        false
    }

    /// Sleeps until bytes may have come (the doorbell rang after `seen`,
    /// or [`POLL_MS`] passed), unless some already have.
    pub(crate) fn wait_readable(&self, seen: u64) {
        let mem = self.shm.mem;
        let wait = self.ends.lock().rx.prepare_wait(&mem);
        if let Ok(Wait::Sleep) = wait {
            self.bell().wait(seen);
            self.ends.lock().rx.finish_wait(&mem);
        }
    }

    /// Fills `buf` before `deadline_ns` (the handshake).
    pub(crate) fn recv_before(&self, buf: &mut [u8], deadline_ns: u64) -> Result {
        let mut got = 0;
        while got < buf.len() {
            let seen = self.bell().count();
            let n = self.read_some(buf.get_mut(got..).unwrap_or(&mut []))?;
            got += n;
            if n == 0 {
                if cohort::now_ns() >= deadline_ns {
                    return Err(EAGAIN);
                }
                self.wait_readable(seen);
            }
        }
        Ok(())
    }

    /// For debugfs: the generation of this node's ring to the peer, the
    /// last session this node started on it, and the peer's session the
    /// connection belongs to.
    pub(crate) fn show(&self) -> (u32, u32, u32) {
        let ends = self.ends.lock();
        (ends.tx.gen().0, ends.tx.session(), ends.accepted)
    }
}
