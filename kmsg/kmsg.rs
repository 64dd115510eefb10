// SPDX-License-Identifier: GPL-2.0

//! kmsg: Cohort's kernel-to-kernel messaging.
//!
//! The only way Cohort nodes talk to each other: a full mesh of in-kernel
//! TCP connections between the nodes named by `cohort.peers=`, with
//! heartbeats that mark silent peers down and fail what waits on them,
//! framed by `rust/proto`'s wire format. Other modules use it through the
//! hub (`kernel::cohort::msg`); tests and benchmarks drive it through
//! /sys/kernel/debug/kmsg.

use kernel::c_str;
use kernel::cohort::{
    self,
    debugfs::Dir,
    errno,
    msg::{self, HandlerRegistration, Message, MsgHandler, MsgOps, TransportRegistration},
    thread::Thread,
};
use kernel::prelude::*;
use kernel::sync::Arc;

mod cluster;
mod control;
mod requests;
mod shm;

/// Protocol logic shared with the host tests (`rust/proto`).
#[forbid(unsafe_code)]
#[path = "../rust/proto/src"]
pub mod proto {
    pub mod auth;
    pub mod crc;
    pub mod error;
    pub mod liveness;
    pub mod node;
    pub mod shm_ring;
    pub mod wire;
}

use cluster::Cluster;
use control::Control;
use proto::node::NodeId;
use proto::wire::{self, BenchPing, Envelope, Payload};

module! {
    type: Kmsg,
    name: "kmsg",
    author: "Cohort Developers",
    description: "Cohort kernel-to-kernel messaging",
    license: "GPL",
}

/// Fields drop in this order: the debugfs files first (waiting for
/// commands in flight), then the echo and bench-ping handlers and the
/// transport (waiting for hub calls in flight), then the threads, then the
/// cluster state.
struct Kmsg {
    _control: Dir<Control>,
    _echo: HandlerRegistration<EchoService>,
    _bench_ping: HandlerRegistration<BenchPingService>,
    _transport: TransportRegistration<Transport>,
    _threads: KVec<Thread>,
    cluster: Arc<Cluster>,
}

/// The transport as the hub sees it.
struct Transport;

#[vtable]
impl MsgOps for Transport {
    type Data = Cluster;

    fn peer_online(cluster: &Cluster, node: u32) -> bool {
        cluster.peer(node).is_ok_and(|peer| peer.is_up())
    }

    fn send(cluster: &Cluster, node: u32, ty: u16, data: &[u8]) -> Result {
        cluster.send(node, ty, data)
    }

    fn request(
        cluster: &Cluster,
        node: u32,
        ty: u16,
        data: &[u8],
        reply: &mut [u8],
        timeout_ms: u32,
        nointr: bool,
    ) -> Result<usize> {
        let answer = cluster.request(node, ty, data, timeout_ms, nointr)?;
        let out = reply.get_mut(..answer.len()).ok_or_else(errno::EMSGSIZE)?;
        out.copy_from_slice(&answer);
        Ok(answer.len())
    }

    fn reply(cluster: &Cluster, req: &Message, error: i32, data: &[u8]) -> Result {
        let src = u8::try_from(req.src()).map_err(|_| EINVAL)?;
        let envelope = Envelope::new(
            req.ty(),
            NodeId(src),
            NodeId(cluster.me as u8),
            req.request_id(),
        );
        cluster.reply(&envelope, error, data)
    }
}

/// Answers each echo request with its own payload.
struct EchoService;

impl MsgHandler for EchoService {
    const TYPE: u16 = msg::ECHO;

    fn handle(msg: &Message) {
        if msg.is_request() {
            let _ = msg.reply(msg.data());
        }
    }
}

/// Answers each bench ping with its nonce: the far end of debugfs `hreq`,
/// a round trip through the hub as popcorn's requests make it.
struct BenchPingService;

impl MsgHandler for BenchPingService {
    const TYPE: u16 = wire::MSG_BENCH_PING;

    fn handle(msg: &Message) {
        if !msg.is_request() {
            return;
        }
        let mut out = [0u8; BenchPing::LEN];
        let encoded = BenchPing::decode(msg.data()).and_then(|ping| ping.encode(&mut out));
        let _ = match encoded {
            Ok(_) => msg.reply(&out),
            Err(_) => msg.reply_error(errno::EPROTO()),
        };
    }
}

impl kernel::Module for Kmsg {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        let cluster = Cluster::new()?;
        let mut threads = KVec::new();
        if let Err(e) = cluster.start(&mut threads) {
            cluster.stop();
            return Err(e);
        }
        let transport = match TransportRegistration::register(c_str!("kmsg"), cluster.clone()) {
            Ok(t) => t,
            Err(e) => {
                cluster.stop();
                return Err(e);
            }
        };
        let handlers = HandlerRegistration::register(c_str!("kmsg"))
            .and_then(|echo| Ok((echo, HandlerRegistration::register(c_str!("kmsg"))?)));
        let control =
            handlers.and_then(|handlers| Ok((handlers, Control::create(cluster.clone())?)));
        let ((echo, bench_ping), control) = match control {
            Ok(pair) => pair,
            Err(e) => {
                cluster.stop();
                return Err(e);
            }
        };
        pr_info!(
            "node {} of {}, listening on port {}\n",
            cohort::node_id(),
            cohort::nr_nodes(),
            cluster.port
        );
        Ok(Kmsg {
            _control: control,
            _echo: echo,
            _bench_ping: bench_ping,
            _transport: transport,
            _threads: threads,
            cluster,
        })
    }
}

impl Drop for Kmsg {
    fn drop(&mut self) {
        // Fail what waits and end every blocking call before the fields
        // (files, handlers, threads) wait for their users.
        self.cluster.stop();
        pr_info!("unloading\n");
    }
}
