// SPDX-License-Identifier: GPL-2.0

//! Bringing every page of a container here, before a fork.
//!
//! The kernel's fork copies the address space as this node has it; a
//! process whose memory is a container must first have every page of it
//! here. This node asks every other which pages of the container it holds
//! (`proto::container_held`), then reads each in through the fault path,
//! as read copies: the coherence protocol moves them, and the copies the
//! child gets are the child's own (fork's copy-on-write stays inside the
//! node).

use crate::linker::Linker;
use crate::proto::container::home_of;
use crate::proto::container_held::{
    decode_held, encode_held, held_len, HeldRequest, MAX_HELD, MSG_CONTAINER_HELD,
};
use crate::proto::wire::Payload;
use crate::LINKER;
use kernel::cohort::{
    self, migration,
    msg::{self, Message, MsgHandler},
};
use kernel::prelude::*;

/// How long a node may take to answer.
const HELD_TIMEOUT_MS: u32 = 10_000;
/// Shift from a page index to its address.
const PAGE_SHIFT: u32 = 12;

/// Makes every page of `container`, which the current task's address
/// space is linked to, present in it.
///
/// # Errors
///
/// A node's error (`EHOSTDOWN` when it went down meanwhile), `ENOMEM`, or
/// the error of a fault (`EINTR` on a fatal signal).
pub(crate) fn populate(linker: &Linker, container: u32) -> Result {
    let me = cohort::node_id();
    let mut req = [0u8; HeldRequest::LEN];
    HeldRequest { container }
        .encode(&mut req)
        .map_err(|_| EINVAL)?;
    let mut reply = KVVec::from_elem(0u8, held_len(MAX_HELD), GFP_KERNEL)?;
    let mut pages: KVVec<u64> = KVVec::new();
    for node in 0..cohort::nr_nodes() {
        if node == me || !cohort::node_online(node) {
            continue;
        }
        let n = msg::request_nointr(node, MSG_CONTAINER_HELD, &req, &mut reply, HELD_TIMEOUT_MS)?;
        let list = decode_held(reply.get(..n).ok_or_else(cohort::errno::EPROTO)?)
            .map_err(|_| cohort::errno::EPROTO())?;
        for page in list {
            pages.push(page, GFP_KERNEL)?;
        }
    }
    pages.sort_unstable();
    let mut last = None;
    for &page in pages.iter() {
        if last == Some(page) {
            continue;
        }
        last = Some(page);
        match migration::mm_fault_in((page << PAGE_SHIFT) as usize) {
            // Not mapped any more: nothing to copy.
            Ok(()) | Err(EFAULT) => {}
            Err(e) => return Err(e),
        }
    }
    linker.stats.populated(pages.len());
    Ok(())
}

/// The pages of `container` this node holds, in increasing order.
fn held(linker: &Linker, container: u32) -> Result<KVVec<u64>> {
    let mut pages = KVVec::new();
    if home_of(container) == Some(linker.me()) {
        // What the home's memory holds and no node took yet.
        if let Some(mm) = linker.mm_of(container) {
            let mut present = KVec::new();
            mm.present(&mut present)?;
            for page in present.iter() {
                pages.push(*page, GFP_KERNEL)?;
            }
        }
    }
    linker.held_copies(container, &mut pages)?;
    pages.sort_unstable();
    let mut unique = KVVec::with_capacity(pages.len(), GFP_KERNEL)?;
    for &page in pages.iter() {
        if unique.last() != Some(&page) {
            unique.push(page, GFP_KERNEL)?;
        }
    }
    if unique.len() > MAX_HELD {
        return Err(E2BIG);
    }
    Ok(unique)
}

/// `MSG_CONTAINER_HELD`: which pages of a container does this node hold?
pub(crate) struct HeldHandler;

impl MsgHandler for HeldHandler {
    const TYPE: u16 = MSG_CONTAINER_HELD;

    fn handle(msg: &Message) {
        let (Some(linker), Ok(req)) = (LINKER.get(), HeldRequest::decode(msg.data())) else {
            let _ = msg.reply_error(EINVAL);
            return;
        };
        let answer = held(&linker, req.container).and_then(|pages| {
            let mut out = KVVec::from_elem(0u8, held_len(pages.len()), GFP_KERNEL)?;
            encode_held(&mut out, &pages).map_err(|_| EINVAL)?;
            Ok(out)
        });
        let _ = match answer {
            Ok(out) => msg.reply(&out),
            Err(e) => msg.reply_error(e),
        };
    }
}
