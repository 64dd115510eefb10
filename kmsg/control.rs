// SPDX-License-Identifier: GPL-2.0

//! /sys/kernel/debug/kmsg: counters, and the commands tests and benchmarks
//! drive kmsg with from user space.
//!
//! - `params`: this node's settings.
//! - `peers`: per node, state, address and counters.
//! - `types`: per message type that carried traffic, counters.
//! - `listener`: what became of the connections other hosts opened.
//! - `shm`: the shared-memory region, and per node its pipe and the
//!   transport of its connection.
//! - `ping`: write `NODE COUNT` to make COUNT ping round trips; read the
//!   result (or the error and how long the last reply had been awaited).
//! - `hreq`: as `ping`, but each round trip is a request through the hub's
//!   message API (the path popcorn's requests take) to the bench-ping
//!   handler on the peer, instead of kmsg's link-thread ping.
//! - `echo`: write `NODE SIZE COUNT` to send COUNT echo requests of SIZE
//!   bytes through the hub's message API and check every reply.
//! - `stream`: write `NODE BYTES` to stream BYTES one way and check the peer
//!   received them all.
//! - `inject`: write `NODE KIND` to send one malformed frame (`bad-checksum`,
//!   `bad-magic`, `bad-length`, `bad-node`) or, on an authenticated
//!   connection, one whose tag is wrong (`bad-tag`), a frame twice
//!   (`replay`) or two frames in the wrong order (`reorder`).

use crate::cluster::{Cluster, HEARTBEAT_INTERVAL_MS};
use crate::proto::wire::{self, BenchPing, Payload, MAX_MESSAGE};
use core::fmt::Write;
use core::sync::atomic::Ordering;
use kernel::alloc::KVVec;
use kernel::cohort::{
    self,
    debugfs::{DebugFile, Dir, Output},
    errno, msg,
};
use kernel::prelude::*;
use kernel::sync::{Arc, Mutex};
use kernel::{c_str, new_mutex};

/// Bytes per message of a stream.
const STREAM_CHUNK: usize = 1 << 20;

#[derive(Clone, Copy)]
enum PingResult {
    Done {
        node: u32,
        count: u64,
        total_ns: u64,
        min_ns: u64,
        max_ns: u64,
    },
    Failed {
        node: u32,
        count: u64,
        error: i32,
        stalled_ns: u64,
    },
}

#[derive(Clone, Copy)]
struct EchoResult {
    node: u32,
    size: usize,
    count: u64,
    total_ns: u64,
}

#[derive(Clone, Copy)]
struct StreamResult {
    node: u32,
    bytes: u64,
    total_ns: u64,
}

#[derive(Default)]
struct Results {
    ping: Option<PingResult>,
    hreq: Option<PingResult>,
    echo: Option<EchoResult>,
    stream: Option<StreamResult>,
}

/// What the debugfs files act on.
#[pin_data]
pub(crate) struct Control {
    cluster: Arc<Cluster>,
    #[pin]
    results: Mutex<Results>,
}

impl Control {
    /// Creates /sys/kernel/debug/kmsg and its files.
    pub(crate) fn create(cluster: Arc<Cluster>) -> Result<Dir<Control>> {
        let control = Arc::pin_init(
            pin_init!(Control {
                cluster,
                results <- new_mutex!(Results::default()),
            }),
            GFP_KERNEL,
        )?;
        let dir = Dir::new(c_str!("kmsg"), control)?;
        dir.file::<Params>(c_str!("params"), 0o444)?;
        dir.file::<Peers>(c_str!("peers"), 0o444)?;
        dir.file::<Types>(c_str!("types"), 0o444)?;
        dir.file::<Listener>(c_str!("listener"), 0o444)?;
        dir.file::<ShmFile>(c_str!("shm"), 0o444)?;
        dir.file::<PingFile>(c_str!("ping"), 0o600)?;
        dir.file::<HreqFile>(c_str!("hreq"), 0o600)?;
        dir.file::<EchoFile>(c_str!("echo"), 0o600)?;
        dir.file::<StreamFile>(c_str!("stream"), 0o600)?;
        dir.file::<InjectFile>(c_str!("inject"), 0o200)?;
        Ok(dir)
    }
}

/// Parses `N` whitespace-separated decimal numbers.
fn numbers<const N: usize>(input: &[u8]) -> Result<[u64; N]> {
    let text = core::str::from_utf8(input).map_err(|_| EINVAL)?;
    let mut out = [0u64; N];
    let mut words = text.split_ascii_whitespace();
    for slot in out.iter_mut() {
        *slot = words.next().ok_or(EINVAL)?.parse().map_err(|_| EINVAL)?;
    }
    if words.next().is_some() {
        return Err(EINVAL);
    }
    Ok(out)
}

fn node_arg(value: u64) -> Result<u32> {
    u32::try_from(value).map_err(|_| EINVAL)
}

struct Params;

impl DebugFile for Params {
    type Data = Control;

    fn show(c: &Control, out: &mut Output) -> core::fmt::Result {
        let cl = &c.cluster;
        writeln!(
            out,
            "node={} nr_nodes={} port={} heartbeat_interval_ms={} heartbeat_timeout_ms={} request_timeout_ms={} auth={}",
            cl.me,
            cl.nr_nodes,
            cl.port,
            HEARTBEAT_INTERVAL_MS,
            cl.heartbeat_timeout_ms,
            cl.request_timeout_ms,
            cl.auth.as_str()
        )
    }
}

struct Peers;

impl DebugFile for Peers {
    type Data = Control;

    fn show(c: &Control, out: &mut Output) -> core::fmt::Result {
        writeln!(
            out,
            "# node state ip tx_msgs rx_msgs tx_bytes rx_bytes errors drops resets ups rtt_ns bad_tags auth_failures"
        )?;
        for peer in c.cluster.peers.iter() {
            let state = if peer.id == c.cluster.me {
                "self"
            } else if peer.is_up() {
                "up"
            } else {
                "down"
            };
            let n = &peer.counters;
            let get = |v: &core::sync::atomic::AtomicU64| v.load(Ordering::Relaxed);
            writeln!(
                out,
                "{} {state} {} tx_msgs={} rx_msgs={} tx_bytes={} rx_bytes={} errors={} drops={} resets={} ups={} rtt_ns={} bad_tags={} auth_failures={}",
                peer.id,
                peer.addr,
                get(&n.tx_msgs),
                get(&n.rx_msgs),
                get(&n.tx_bytes),
                get(&n.rx_bytes),
                get(&n.errors),
                get(&n.drops),
                get(&n.resets),
                get(&n.ups),
                get(&n.rtt_ns),
                get(&n.bad_tags),
                get(&n.auth_failures),
            )?;
        }
        Ok(())
    }
}

struct Listener;

impl DebugFile for Listener {
    type Data = Control;

    fn show(c: &Control, out: &mut Output) -> core::fmt::Result {
        let n = &c.cluster.listener_counters;
        let get = |v: &core::sync::atomic::AtomicU64| v.load(Ordering::Relaxed);
        writeln!(
            out,
            "accepted={} introduced={} malformed={} refused={} auth_mismatch={} auth_failed={}",
            get(&n.accepted),
            get(&n.introduced),
            get(&n.malformed),
            get(&n.refused),
            get(&n.auth_mismatch),
            get(&n.auth_failed),
        )
    }
}

struct ShmFile;

impl DebugFile for ShmFile {
    type Data = Control;

    fn show(c: &Control, out: &mut Output) -> core::fmt::Result {
        let cl = &c.cluster;
        let Some(shm) = &cl.shm else {
            return writeln!(out, "none");
        };
        writeln!(
            out,
            "region_kib={} ring_kib={} incarnation={}",
            shm.layout.region_size() >> 10,
            shm.layout.ring_size() >> 10,
            shm.incarnation
        )?;
        writeln!(out, "# node joined transport gen session accepted")?;
        for peer in cl.peers.iter().filter(|p| p.id != cl.me) {
            let (gen, session, accepted) = cl
                .pipes
                .get(peer.id as usize)
                .and_then(Option::as_ref)
                .map_or((0, 0, 0), |pipe| pipe.show());
            writeln!(
                out,
                "{} joined={} transport={} gen={gen:#x} session={session} accepted={accepted}",
                peer.id,
                u8::from(shm.joined(peer.id)),
                cl.transport(peer),
            )?;
        }
        Ok(())
    }
}

struct Types;

/// kmsg's own message types, by name.
fn type_name(ty: u16) -> &'static str {
    match ty {
        wire::MSG_HELLO => "hello",
        wire::MSG_HEARTBEAT => "heartbeat",
        wire::MSG_PING => "ping",
        wire::MSG_PONG => "pong",
        wire::MSG_ECHO => "echo",
        wire::MSG_STREAM_DATA => "stream-data",
        wire::MSG_STREAM_SYNC => "stream-sync",
        wire::MSG_AUTH_CHALLENGE => "auth-challenge",
        wire::MSG_AUTH_PROOF => "auth-proof",
        msg::ECHO => "kmsg-echo",
        wire::MSG_BENCH_PING => "bench-ping",
        _ => "-",
    }
}

impl DebugFile for Types {
    type Data = Control;

    fn show(c: &Control, out: &mut Output) -> core::fmt::Result {
        writeln!(out, "# type name tx_msgs rx_msgs tx_bytes rx_bytes")?;
        let get = |v: &core::sync::atomic::AtomicU64| v.load(Ordering::Relaxed);
        for (ty, n) in c.cluster.types.iter().enumerate() {
            let (tx, rx) = (get(&n.tx_msgs), get(&n.rx_msgs));
            if tx == 0 && rx == 0 {
                continue;
            }
            let ty = ty as u16;
            writeln!(
                out,
                "{ty:#06x} {} tx_msgs={tx} rx_msgs={rx} tx_bytes={} rx_bytes={}",
                type_name(ty),
                get(&n.tx_bytes),
                get(&n.rx_bytes)
            )?;
        }
        Ok(())
    }
}

/// Shows a round-trip result the way `ping` and `hreq` read.
fn show_round_trips(result: Option<PingResult>, out: &mut Output) -> core::fmt::Result {
    match result {
        None => Ok(()),
        Some(PingResult::Done { node, count, total_ns, min_ns, max_ns }) => writeln!(
            out,
            "node={node} count={count} total_ns={total_ns} min_ns={min_ns} avg_ns={} max_ns={max_ns}",
            total_ns / count.max(1)
        ),
        Some(PingResult::Failed { node, count, error, stalled_ns }) => writeln!(
            out,
            "node={node} count={count} error={error} stalled_ns={stalled_ns}"
        ),
    }
}

/// Parses `NODE COUNT` and makes COUNT round trips to NODE with
/// `round_trip(node, i)`, which returns each one's time; the result, or
/// the failure, is what the file then reads.
fn round_trips(
    c: &Control,
    input: &[u8],
    round_trip: impl Fn(u32, u64) -> Result<u64>,
) -> core::result::Result<PingResult, (Option<PingResult>, Error)> {
    let parsed = numbers::<2>(input).and_then(|[node, count]| Ok((node_arg(node)?, count)));
    let (node, count) = parsed.map_err(|e| (None, e))?;
    if count == 0 || count > 100_000_000 {
        return Err((None, EINVAL));
    }
    c.cluster.peer(node).map_err(|e| (None, e))?;
    let (mut total, mut min, mut max) = (0u64, u64::MAX, 0u64);
    let mut last_reply = cohort::now_ns();
    for i in 0..count {
        let rtt = if c.cluster.stopping() {
            Err(errno::ESHUTDOWN())
        } else {
            round_trip(node, i)
        };
        match rtt {
            Ok(rtt) => {
                total += rtt;
                min = min.min(rtt);
                max = max.max(rtt);
                last_reply = cohort::now_ns();
            }
            Err(e) => {
                let stalled_ns = cohort::now_ns().saturating_sub(last_reply);
                let failed = PingResult::Failed {
                    node,
                    count: i,
                    error: e.to_errno(),
                    stalled_ns,
                };
                return Err((Some(failed), e));
            }
        }
    }
    Ok(PingResult::Done {
        node,
        count,
        total_ns: total,
        min_ns: min,
        max_ns: max,
    })
}

/// Stores what [`round_trips`] gave in `slot` and returns its status; a
/// command refused before any round trip leaves the last result.
fn record(
    slot: &mut Option<PingResult>,
    outcome: core::result::Result<PingResult, (Option<PingResult>, Error)>,
) -> Result {
    match outcome {
        Ok(done) => {
            *slot = Some(done);
            Ok(())
        }
        Err((failed, e)) => {
            if failed.is_some() {
                *slot = failed;
            }
            Err(e)
        }
    }
}

struct PingFile;

impl DebugFile for PingFile {
    type Data = Control;

    fn show(c: &Control, out: &mut Output) -> core::fmt::Result {
        show_round_trips(c.results.lock().ping, out)
    }

    fn store(c: &Control, input: &[u8]) -> Result {
        let outcome = round_trips(c, input, |node, i| c.cluster.ping(node, i));
        record(&mut c.results.lock().ping, outcome)
    }
}

/// One bench ping through the hub's message API, waiting `timeout_ms` at
/// most; returns its round trip.
fn hub_round_trip(node: u32, nonce: u64, timeout_ms: u32) -> Result<u64> {
    let mut payload = [0u8; BenchPing::LEN];
    BenchPing { nonce }
        .encode(&mut payload)
        .map_err(|_| EINVAL)?;
    let mut reply = [0u8; BenchPing::LEN];
    let start = cohort::now_ns();
    let len = msg::request(node, wire::MSG_BENCH_PING, &payload, &mut reply, timeout_ms)?;
    let rtt = cohort::now_ns().saturating_sub(start);
    match reply.get(..len).map(BenchPing::decode) {
        Some(Ok(pong)) if pong.nonce == nonce => Ok(rtt),
        _ => Err(errno::EPROTO()),
    }
}

struct HreqFile;

impl DebugFile for HreqFile {
    type Data = Control;

    fn show(c: &Control, out: &mut Output) -> core::fmt::Result {
        show_round_trips(c.results.lock().hreq, out)
    }

    fn store(c: &Control, input: &[u8]) -> Result {
        let timeout_ms = c.cluster.request_timeout_ms;
        let outcome = round_trips(c, input, |node, nonce| {
            hub_round_trip(node, nonce, timeout_ms)
        });
        record(&mut c.results.lock().hreq, outcome)
    }
}

struct EchoFile;

impl DebugFile for EchoFile {
    type Data = Control;

    fn show(c: &Control, out: &mut Output) -> core::fmt::Result {
        match c.results.lock().echo {
            None => Ok(()),
            Some(r) => writeln!(
                out,
                "node={} size={} count={} total_ns={}",
                r.node, r.size, r.count, r.total_ns
            ),
        }
    }

    fn store(c: &Control, input: &[u8]) -> Result {
        let [node, size, count] = numbers::<3>(input)?;
        let node = node_arg(node)?;
        let size = usize::try_from(size).map_err(|_| EINVAL)?;
        if size > MAX_MESSAGE || count == 0 || count > 1_000_000 {
            return Err(EINVAL);
        }
        c.cluster.peer(node)?;
        let mut data = KVVec::with_capacity(size, GFP_KERNEL)?;
        for i in 0..size {
            data.push((i.wrapping_mul(131) ^ (i >> 8)) as u8, GFP_KERNEL)?;
        }
        let mut reply = KVVec::from_elem(0u8, size, GFP_KERNEL)?;
        let timeout = c.cluster.request_timeout_ms + (size / 1024) as u32 * 10;
        let start = cohort::now_ns();
        for _ in 0..count {
            if c.cluster.stopping() {
                return Err(errno::ESHUTDOWN());
            }
            reply.as_mut_slice().fill(0);
            let len = msg::request(node, msg::ECHO, &data, &mut reply, timeout)?;
            if len != size || reply.as_slice() != data.as_slice() {
                pr_err!(
                    "echo from node {node}: reply of {len} bytes differs from the {size} sent\n"
                );
                return Err(EIO);
            }
        }
        c.results.lock().echo = Some(EchoResult {
            node,
            size,
            count,
            total_ns: cohort::now_ns().saturating_sub(start),
        });
        Ok(())
    }
}

struct StreamFile;

impl DebugFile for StreamFile {
    type Data = Control;

    fn show(c: &Control, out: &mut Output) -> core::fmt::Result {
        match c.results.lock().stream {
            None => Ok(()),
            Some(r) => writeln!(
                out,
                "node={} bytes={} total_ns={}",
                r.node, r.bytes, r.total_ns
            ),
        }
    }

    fn store(c: &Control, input: &[u8]) -> Result {
        let [node, bytes] = numbers::<2>(input)?;
        let node = node_arg(node)?;
        if bytes == 0 || bytes > 1 << 40 {
            return Err(EINVAL);
        }
        c.cluster.peer(node)?;
        let chunk = KVVec::from_elem(0x5au8, STREAM_CHUNK, GFP_KERNEL)?;
        let before = c.cluster.stream_sync(node)?;
        let start = cohort::now_ns();
        let mut left = bytes;
        while left > 0 {
            if c.cluster.stopping() {
                return Err(errno::ESHUTDOWN());
            }
            let n = left.min(STREAM_CHUNK as u64) as usize;
            c.cluster
                .send(node, wire::MSG_STREAM_DATA, chunk.get(..n).ok_or(EINVAL)?)?;
            left -= n as u64;
        }
        let after = c.cluster.stream_sync(node)?;
        let total_ns = cohort::now_ns().saturating_sub(start);
        if after.wrapping_sub(before) != bytes {
            pr_err!(
                "stream to node {node}: it received {} of {bytes} bytes\n",
                after.wrapping_sub(before)
            );
            return Err(EIO);
        }
        c.results.lock().stream = Some(StreamResult {
            node,
            bytes,
            total_ns,
        });
        Ok(())
    }
}

struct InjectFile;

impl DebugFile for InjectFile {
    type Data = Control;

    fn show(_c: &Control, _out: &mut Output) -> core::fmt::Result {
        Ok(())
    }

    fn store(c: &Control, input: &[u8]) -> Result {
        let text = core::str::from_utf8(input).map_err(|_| EINVAL)?;
        let mut words = text.split_ascii_whitespace();
        let node = node_arg(words.next().ok_or(EINVAL)?.parse().map_err(|_| EINVAL)?)?;
        let kind = words.next().ok_or(EINVAL)?;
        if words.next().is_some() {
            return Err(EINVAL);
        }
        c.cluster.inject(node, kind.as_bytes())
    }
}
