// SPDX-License-Identifier: GPL-2.0
//! The shared-memory rings under load and across restarts.
//!
//! `two_threads_through_a_small_ring`: a producer thread and a consumer
//! thread move 64 MiB (`SHM_STRESS_MIB` changes it) through a 4 KiB ring
//! in random chunk sizes, on a region of atomics with the Rust memory
//! model's orderings (acquire loads, release stores, `SeqCst` fences,
//! relaxed data), sleeping on the wake-up protocol with real blocking
//! doorbells; every byte is checked. A lost wake-up would leave a thread
//! asleep: each wait gives up after 20 s and fails the test.
//!
//! The rest restart nodes in the middle of frames, seeded (`SHM_SEED`):
//! a partial frame is always dropped, never delivered, and the new
//! connection starts clean.

use std::cell::RefCell;
use std::sync::atomic::{fence, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::Duration;

use cohort_proto::node::NodeId;
use cohort_proto::shm_ring::{
    Consumer, Doorbell, Gen, Layout, Producer, Resync, RingError, RingMemory, Wait,
};

/// splitmix64.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn seed() -> u64 {
    let seed = std::env::var("SHM_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed_5a1e_0000_0001);
    println!("SHM_SEED={seed}");
    seed
}

/// A region of atomic words, shared by threads.
struct AtomicMem(Vec<AtomicU64>);

impl AtomicMem {
    fn new(size: usize) -> AtomicMem {
        AtomicMem((0..size / 8).map(|_| AtomicU64::new(0)).collect())
    }
}

impl RingMemory for AtomicMem {
    fn load_acquire_u64(&self, off: usize) -> u64 {
        self.0[off / 8].load(Ordering::Acquire)
    }
    fn store_release_u64(&self, off: usize, val: u64) {
        self.0[off / 8].store(val, Ordering::Release)
    }
    fn read(&self, off: usize, buf: &mut [u8]) {
        let mut i = 0;
        while i < buf.len() {
            let at = off + i;
            let word = self.0[at / 8].load(Ordering::Relaxed).to_le_bytes();
            let start = at % 8;
            let n = (8 - start).min(buf.len() - i);
            buf[i..i + n].copy_from_slice(&word[start..start + n]);
            i += n;
        }
    }
    fn write(&self, off: usize, bytes: &[u8]) {
        // Only the producer writes a ring's data, so a partial word can be
        // read, merged and stored back.
        let mut i = 0;
        while i < bytes.len() {
            let at = off + i;
            let w = &self.0[at / 8];
            let start = at % 8;
            let n = (8 - start).min(bytes.len() - i);
            let mut word = w.load(Ordering::Relaxed).to_le_bytes();
            word[start..start + n].copy_from_slice(&bytes[i..i + n]);
            w.store(u64::from_le_bytes(word), Ordering::Relaxed);
            i += n;
        }
    }
    fn fence(&self) {
        fence(Ordering::SeqCst);
    }
}

/// A doorbell: rung sets a pending bit and wakes the sleeper, as an
/// interrupt left pending does.
struct Bell {
    rung: Mutex<bool>,
    cv: Condvar,
    rings: AtomicUsize,
    sleeps: AtomicUsize,
}

impl Bell {
    fn new() -> Bell {
        Bell {
            rung: Mutex::new(false),
            cv: Condvar::new(),
            rings: AtomicUsize::new(0),
            sleeps: AtomicUsize::new(0),
        }
    }

    fn ring(&self) {
        self.rings.fetch_add(1, Ordering::Relaxed);
        *self.rung.lock().unwrap() = true;
        self.cv.notify_one();
    }

    /// Sleeps until rung (consuming the ring); fails after 20 s.
    fn sleep(&self, who: &str) {
        self.sleeps.fetch_add(1, Ordering::Relaxed);
        let rung = self.rung.lock().unwrap();
        let (mut rung, timeout) = self
            .cv
            .wait_timeout_while(rung, Duration::from_secs(20), |r| !*r)
            .unwrap();
        assert!(
            !timeout.timed_out(),
            "{who}: lost wake-up (asleep 20 s, never rung)"
        );
        *rung = false;
    }
}

/// Byte `i` of the test stream.
fn stream_byte(i: u64) -> u8 {
    let mut z = (i / 8).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 31)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    (z >> ((i % 8) * 8)) as u8
}

#[test]
fn two_threads_through_a_small_ring() {
    const RING: usize = 4096;
    let mib: u64 = std::env::var("SHM_STRESS_MIB")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(64);
    let total = mib << 20;
    let seed = seed();
    let size = Layout::region_size_for(2, RING).unwrap();
    let mem = AtomicMem::new(size);
    let l = Layout::with_ring_size(2, size, RING).unwrap();
    l.format(&mem);
    l.join(&mem, NodeId(0), 0).unwrap();
    l.join(&mem, NodeId(1), 1).unwrap();
    let mut p = l.open_producer(&mem, NodeId(0), NodeId(1)).unwrap();
    let mut c = l.open_consumer(&mem, NodeId(0), NodeId(1)).unwrap();
    // bells[n]: node n's doorbell.
    let bells = [Bell::new(), Bell::new()];
    let ring = |bell: Option<Doorbell>| {
        if let Some(b) = bell {
            bells[b.node.index()].ring();
        }
    };
    let start = std::time::Instant::now();
    std::thread::scope(|s| {
        s.spawn(|| {
            let mut rng = Rng(seed);
            let mut chunk = vec![0u8; 3 * RING];
            let mut sent = 0u64;
            while sent < total {
                let len = (1 + rng.below(3 * RING)).min((total - sent) as usize);
                for (k, b) in chunk[..len].iter_mut().enumerate() {
                    *b = stream_byte(sent + k as u64);
                }
                let mut done = 0;
                while done < len {
                    let n = p.write(&mem, &chunk[done..len]).unwrap();
                    done += n;
                    // Publish now and then mid-chunk, always when full.
                    if n == 0 || rng.below(4) == 0 {
                        ring(p.publish(&mem));
                    }
                    if n == 0 {
                        match p.prepare_wait(&mem, 1 + rng.below(RING)).unwrap() {
                            Wait::Sleep => {
                                bells[0].sleep("producer");
                                p.finish_wait(&mem);
                            }
                            Wait::Ready => {}
                        }
                    }
                }
                ring(p.publish(&mem));
                sent += len as u64;
            }
        });
        s.spawn(|| {
            let mut rng = Rng(seed ^ 0xc0ffee);
            let mut buf = vec![0u8; 2 * RING];
            let mut got = 0u64;
            while got < total {
                let want = 1 + rng.below(2 * RING);
                let n = c.read(&mem, &mut buf[..want]).unwrap();
                for (k, &b) in buf[..n].iter().enumerate() {
                    let at = got + k as u64;
                    assert_eq!(b, stream_byte(at), "byte {at}");
                }
                got += n as u64;
                // Release now or later, but always before waiting.
                if n == 0 || rng.below(3) == 0 {
                    ring(c.release(&mem));
                }
                if n == 0 {
                    match c.prepare_wait(&mem).unwrap() {
                        Wait::Sleep => {
                            bells[1].sleep("consumer");
                            c.finish_wait(&mem);
                        }
                        Wait::Ready => {}
                    }
                }
            }
            ring(c.release(&mem));
            assert_eq!(c.available(&mem), Ok(0));
        });
    });
    let secs = start.elapsed().as_secs_f64();
    println!(
        "{mib} MiB through a {RING}-byte ring in {secs:.2} s; producer slept {} times, consumer {}; \
         doorbells rung: producer's {}, consumer's {}",
        bells[0].sleeps.load(Ordering::Relaxed),
        bells[1].sleeps.load(Ordering::Relaxed),
        bells[0].rings.load(Ordering::Relaxed),
        bells[1].rings.load(Ordering::Relaxed),
    );
    assert_eq!(p.free(&mem), Ok(RING));
}

/// A region in a `Vec`, for single-threaded tests.
struct Mem(RefCell<Vec<u8>>);

impl RingMemory for Mem {
    fn load_acquire_u64(&self, off: usize) -> u64 {
        u64::from_le_bytes(self.0.borrow()[off..off + 8].try_into().unwrap())
    }
    fn store_release_u64(&self, off: usize, val: u64) {
        self.0.borrow_mut()[off..off + 8].copy_from_slice(&val.to_le_bytes());
    }
    fn read(&self, off: usize, buf: &mut [u8]) {
        buf.copy_from_slice(&self.0.borrow()[off..off + buf.len()]);
    }
    fn write(&self, off: usize, bytes: &[u8]) {
        self.0.borrow_mut()[off..off + bytes.len()].copy_from_slice(bytes);
    }
    fn fence(&self) {}
}

/// A test frame: `len: u16`, `incarnation: u16`, `seq: u32`, then `len`
/// bytes derived from all three.
fn frame(incarnation: u16, seq: u32, len: u16) -> Vec<u8> {
    let mut f = vec![];
    f.extend_from_slice(&len.to_le_bytes());
    f.extend_from_slice(&incarnation.to_le_bytes());
    f.extend_from_slice(&seq.to_le_bytes());
    f.extend((0..len).map(|i| frame_byte(incarnation, seq, i)));
    f
}

fn frame_byte(incarnation: u16, seq: u32, i: u16) -> u8 {
    stream_byte(((incarnation as u64) << 48) ^ ((seq as u64) << 16) ^ i as u64)
}

/// The receiving side of kmsg, reduced: a frame parser with a partial
/// frame, dropped when the connection resets.
#[derive(Default)]
struct Receiver {
    partial: Vec<u8>,
    /// (incarnation, seq) of every frame delivered.
    delivered: Vec<(u16, u32)>,
}

impl Receiver {
    /// Reads what the ring has; returns the frames completed.
    fn pump(&mut self, mem: &Mem, c: &mut Consumer) -> Result<usize, RingError> {
        let mut buf = [0u8; 97];
        let mut frames = 0;
        loop {
            let n = c.read(mem, &mut buf)?;
            c.release(mem);
            if n == 0 {
                return Ok(frames);
            }
            self.partial.extend_from_slice(&buf[..n]);
            while self.partial.len() >= 8 {
                let len = u16::from_le_bytes([self.partial[0], self.partial[1]]);
                if self.partial.len() < 8 + len as usize {
                    break;
                }
                let inc = u16::from_le_bytes([self.partial[2], self.partial[3]]);
                let seq = u32::from_le_bytes(self.partial[4..8].try_into().unwrap());
                for i in 0..len {
                    assert_eq!(
                        self.partial[8 + i as usize],
                        frame_byte(inc, seq, i),
                        "frame {inc}/{seq} damaged at {i}"
                    );
                }
                self.delivered.push((inc, seq));
                self.partial.drain(..8 + len as usize);
                frames += 1;
            }
        }
    }

    fn reset(&mut self) {
        self.partial.clear();
    }
}

/// Node 0 dies in the middle of a frame, with node 1 holding part of it;
/// node 0 re-joins: node 1 drops the partial frame, and the new connection
/// delivers only the new incarnation's frames, from the ring's start.
#[test]
fn producer_dies_mid_frame_and_rejoins() {
    let size = 1 << 16;
    let mem = Mem(RefCell::new(vec![0; size]));
    let l = Layout::attach(&mem, 2, size).unwrap();
    let (a, b) = (NodeId(0), NodeId(1));
    assert_eq!(l.join(&mem, a, 10), Ok(1));
    assert_eq!(l.join(&mem, b, 11), Ok(1));
    let mut p = l.open_producer(&mem, a, b).unwrap();
    let mut c = l.open_consumer(&mem, a, b).unwrap();
    let mut rx = Receiver::default();
    assert_eq!(p.send(&mem, &frame(1, 0, 300)).unwrap().0, 308);
    // Half of the second frame, published; node 1 reads some of it.
    let second = frame(1, 1, 500);
    assert_eq!(p.send(&mem, &second[..200]).unwrap().0, 200);
    assert_eq!(rx.pump(&mem, &mut c), Ok(1));
    assert_eq!(rx.partial.len(), 200);
    // Node 0 dies here: its producer end is gone (`p` is not used again),
    // its bytes stay.

    assert_eq!(rx.pump(&mem, &mut c), Ok(0), "nothing new while it is dead");
    // Node 0 boots again (ivshmem id 12) and re-joins.
    assert_eq!(l.join(&mem, a, 12), Ok(2));
    let mut p = l.open_producer(&mem, a, b).unwrap();
    assert_eq!(p.gen(), Gen::of(2, 1));
    // Its producer waits for node 1 to follow: node 1's end is still at
    // the old generation.
    assert_eq!(
        p.free(&mem),
        Err(RingError::Disconnected {
            peer: Gen::of(1, 1)
        })
    );
    // Node 1, rung by the join, finds its ring disconnected and resyncs.
    assert_eq!(
        rx.pump(&mem, &mut c),
        Err(RingError::Disconnected {
            peer: Gen::of(2, 1)
        })
    );
    assert_eq!(
        l.resync_consumer(&mem, &mut c),
        Ok(Resync::Reset {
            gen: Gen::of(2, 1),
            doorbell: Some(Doorbell { node: a })
        })
    );
    rx.reset();
    assert_eq!(
        l.doorbell_value(&mem, Doorbell { node: a }, 0),
        Some(12 << 16)
    );
    for seq in 0..20 {
        let f = frame(2, seq, 100 + seq as u16 * 50);
        let mut done = 0;
        while done < f.len() {
            done += p.send(&mem, &f[done..]).unwrap().0;
            rx.pump(&mem, &mut c).unwrap();
        }
    }
    rx.pump(&mem, &mut c).unwrap();
    let new: Vec<(u16, u32)> = (0..20).map(|s| (2, s)).collect();
    assert_eq!(rx.delivered[0], (1, 0));
    assert_eq!(rx.delivered[1..], new[..]);
    assert!(rx.partial.is_empty());
}

/// A producer end of a dead incarnation that still acts (a stalled QEMU
/// thought dead) can neither write into the new connection nor hide the
/// new producer's bytes.
#[test]
fn stale_writes_are_ignored() {
    let size = 1 << 16;
    let mem = Mem(RefCell::new(vec![0; size]));
    let l = Layout::attach(&mem, 2, size).unwrap();
    let (a, b) = (NodeId(0), NodeId(1));
    l.join(&mem, a, 0).unwrap();
    l.join(&mem, b, 1).unwrap();
    let mut zombie = l.open_producer(&mem, a, b).unwrap();
    let mut c = l.open_consumer(&mem, a, b).unwrap();
    assert_eq!(zombie.write(&mem, b"old bytes"), Ok(9));
    // Node 0 re-joins while its old incarnation has unpublished bytes.
    l.join(&mem, a, 2).unwrap();
    let mut p = l.open_producer(&mem, a, b).unwrap();
    assert!(matches!(
        l.resync_consumer(&mem, &mut c),
        Ok(Resync::Reset { .. })
    ));
    assert_eq!(p.send(&mem, b"new"), Ok((3, None)));
    // The zombie publishes: the consumer is at another generation, so
    // `head` is left alone; and it can write nothing more.
    assert_eq!(zombie.publish(&mem), None);
    assert_eq!(
        zombie.write(&mem, b"more"),
        Err(RingError::Disconnected { peer: p.gen() })
    );
    let mut buf = [0u8; 16];
    assert_eq!(c.read(&mem, &mut buf), Ok(3));
    assert_eq!(&buf[..3], b"new");
    // Even a raw `head` store of the old generation is not believed.
    let old = zombie.gen();
    let head_off = p.ring().base();
    mem.store_release_u64(head_off, ((old.0 as u64) << 32) | 9);
    assert_eq!(
        c.available(&mem),
        Err(RingError::Disconnected { peer: old })
    );
    assert_eq!(l.resync_consumer(&mem, &mut c), Ok(Resync::Unchanged));
    assert_eq!(p.send(&mem, b"!"), Ok((1, None)));
    assert_eq!(c.read(&mem, &mut buf), Ok(1));
    assert_eq!(buf[0], b'!');
}

/// Random restarts of either node at random points of random frames, in
/// both directions at once: every frame delivered is whole and from the
/// current incarnations, and each connection delivers its frames in
/// order from the first, losing none once they are fully published.
#[test]
fn random_restarts_mid_frame() {
    let mut rng = Rng(seed());
    let size = Layout::region_size_for(2, 1024).unwrap();
    let mem = Mem(RefCell::new(vec![0; size]));
    let l = Layout::with_ring_size(2, size, 1024).unwrap();
    l.format(&mem);
    let nodes = [NodeId(0), NodeId(1)];
    let mut inc = [0u16; 2];
    for n in 0..2 {
        inc[n] = l.join(&mem, nodes[n], n as u16).unwrap();
    }
    // Direction d: node d sends to node 1 − d.
    let mut tx: Vec<Producer> = (0..2)
        .map(|d| l.open_producer(&mem, nodes[d], nodes[1 - d]).unwrap())
        .collect();
    let mut rxc: Vec<Consumer> = (0..2)
        .map(|d| l.open_consumer(&mem, nodes[d], nodes[1 - d]).unwrap())
        .collect();
    let mut rx: Vec<Receiver> = (0..2).map(|_| Receiver::default()).collect();
    // Per direction: next sequence number, the frame being sent and how
    // much of it is in the ring.
    let mut seq = [0u32; 2];
    let mut sending: [Option<(Vec<u8>, usize)>; 2] = [None, None];
    let mut restarts = 0;
    let mut delivered = 0;
    for _ in 0..20_000 {
        let d = rng.below(2);
        match rng.below(100) {
            // Node n restarts: its ends are lost, it re-joins.
            0 => {
                let n = rng.below(2);
                inc[n] = l.join(&mem, nodes[n], 100 + restarts).unwrap();
                restarts += 1;
                tx[n] = l.open_producer(&mem, nodes[n], nodes[1 - n]).unwrap();
                rxc[1 - n] = l.open_consumer(&mem, nodes[1 - n], nodes[n]).unwrap();
                rx[1 - n].reset();
                sending[n] = None;
                seq[n] = 0;
                // Its peer is rung and resyncs both its ends.
                let peer = 1 - n;
                if let Ok(Resync::Reset { .. }) = l.resync_producer(&mem, &mut tx[peer]) {
                    sending[peer] = None;
                    seq[peer] = 0;
                }
                if let Ok(Resync::Reset { .. }) = l.resync_consumer(&mem, &mut rxc[n]) {
                    rx[n].reset();
                }
            }
            // Node 1 − d reads.
            1..=40 => {
                let before = rx[d].delivered.len();
                match rx[d].pump(&mem, &mut rxc[d]) {
                    Ok(k) => delivered += k,
                    Err(e) => panic!("direction {d}: {e:?}"),
                }
                for &(i, s) in &rx[d].delivered[before..] {
                    assert_eq!(i, inc[d], "frame {s} of a dead incarnation delivered");
                }
            }
            // Node d sends (part of) a frame.
            _ => {
                let (f, done) = sending[d].get_or_insert_with(|| {
                    let f = frame(inc[d], seq[d], rng.below(1500) as u16);
                    seq[d] += 1;
                    (f, 0)
                });
                let want = (1 + rng.below(f.len())).min(f.len() - *done);
                let n = tx[d].write(&mem, &f[*done..*done + want]).unwrap();
                *done += n;
                if *done == f.len() {
                    sending[d] = None;
                }
                tx[d].publish(&mem);
            }
        }
        // Every frame delivered so far on each direction: from the current
        // sender incarnation, in order from 0 since the last reset.
        for r in &rx {
            for w in r.delivered.windows(2) {
                let ((i0, s0), (i1, s1)) = (w[0], w[1]);
                assert!(
                    (i0 == i1 && s1 == s0 + 1) || s1 == 0,
                    "{:?} then {:?}",
                    w[0],
                    w[1]
                );
            }
            if let Some(&(i, 0)) = r.delivered.first() {
                assert!(i >= 1);
            }
        }
    }
    println!("{restarts} restarts, {delivered} frames delivered");
    assert!(restarts > 50 && delivered > 1000, "{restarts} {delivered}");
}
