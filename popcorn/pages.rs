// SPDX-License-Identifier: GPL-2.0

//! Memory on demand. A migrated task's pages stay where they were; each
//! page is valid on exactly one node, which its origin records in its
//! directory. A fault where the task runs takes the page from that node
//! (through the origin) and installs it; unmapping a range anywhere drops
//! the pages of that range everywhere.

use crate::dist::{current_running, me, Dist, Registry, Role};
use crate::proto::node::NodeId;
use crate::proto::pages::FetchPlan;
use crate::proto::task_msg::{self, PageList, PageReply, PageRequest, Range};
use crate::proto::wire::Payload;
use crate::STATE;
use kernel::cohort::{
    migration::{self, PAGE_SIZE, VM_SHARED},
    msg::{self, Message, MsgHandler},
    FaultAction, Vma,
};
use kernel::prelude::*;
use kernel::sync::Arc;

/// How long a page request may take (a dead peer fails it within kmsg's
/// heartbeat timeout; this bounds a live but stuck one).
const PAGE_TIMEOUT_MS: u32 = 10_000;
/// `VM_FAULT_SIGBUS`.
const VM_FAULT_SIGBUS: u32 = kernel::bindings::vm_fault_reason_VM_FAULT_SIGBUS;
/// `VM_FAULT_RETRY`.
const VM_FAULT_RETRY: u32 = kernel::bindings::vm_fault_reason_VM_FAULT_RETRY;
/// Largest page reply.
const PAGE_REPLY_MAX: usize = task_msg::PAGE_REPLY_DATA_LEN;
/// Page number of the end of user space.
const USER_END_PAGE: u64 = task_msg::USER_END >> task_msg::PAGE_SHIFT;
/// End of user space.
pub(crate) const USER_END: usize = task_msg::USER_END as usize;

/// A page's contents on the way into the address space.
type PageBuf = KBox<[u8; PAGE_SIZE]>;

/// Asks `node` for a page of `dist`'s task: `Ok(None)` when nobody wrote it.
fn request_page(node: NodeId, ty: u16, dist: &Dist, page: u64) -> Result<Option<PageBuf>> {
    let mut req = [0u8; PageRequest::LEN];
    PageRequest {
        task: dist.id,
        addr: page << task_msg::PAGE_SHIFT,
    }
    .encode(&mut req)
    .map_err(|_| EINVAL)?;
    let mut reply = KVec::from_elem(0u8, PAGE_REPLY_MAX, GFP_KERNEL)?;
    let n = msg::request_nointr(u32::from(node.0), ty, &req, &mut reply, PAGE_TIMEOUT_MS)?;
    let bytes = reply.get(..n).ok_or(EINVAL)?;
    match task_msg::decode_page_reply(bytes).map_err(|_| EINVAL)? {
        PageReply::Fresh => Ok(None),
        PageReply::Data(data) => {
            dist.counts.fetched(PAGE_SIZE);
            Ok(Some(KBox::new(*data, GFP_KERNEL)?))
        }
    }
}

/// Takes `page` out of this node's copy of `dist`'s address space.
///
/// Not under the record's lock: taking a file page reads it in, through
/// the fault path.
fn take_local(dist: &Dist, page: u64) -> Result<Option<PageBuf>> {
    let (mm, stale) = {
        let inner = dist.inner.lock();
        (inner.mm.clone(), inner.stale)
    };
    if stale {
        return Ok(None);
    }
    let Some(mm) = mm else {
        return Err(EINVAL);
    };
    let mut buf = KBox::new([0u8; PAGE_SIZE], GFP_KERNEL)?;
    if mm.take_page((page << task_msg::PAGE_SHIFT) as usize, &mut buf)? {
        Ok(Some(buf))
    } else {
        Ok(None)
    }
}

/// Answers a page request with `page`.
fn answer(msg: &Message, page: Result<Option<PageBuf>>) {
    let page = match page {
        Ok(page) => page,
        Err(e) => {
            let _ = msg.reply_error(e);
            return;
        }
    };
    let mut buf = match KVec::from_elem(0u8, PAGE_REPLY_MAX, GFP_KERNEL) {
        Ok(buf) => buf,
        Err(_) => {
            let _ = msg.reply_error(ENOMEM);
            return;
        }
    };
    match task_msg::encode_page_reply(&mut buf, page.as_deref()) {
        Ok(n) => {
            let _ = msg.reply(&buf[..n]);
        }
        Err(_) => {
            let _ = msg.reply_error(EINVAL);
        }
    }
}

/// Finds the page of a fault where the task runs.
pub(crate) fn fault(vma: &Vma, address: usize, flags: u32) -> FaultAction {
    let Some(reg) = STATE.get() else {
        return FaultAction::Local;
    };
    if vma.flags() & VM_SHARED != 0 {
        return FaultAction::Local;
    }
    let Some(dist) = current_running(&reg).or_else(|| running_owner(&reg, vma)) else {
        return FaultAction::Local;
    };
    let page = (address >> task_msg::PAGE_SHIFT) as u64;
    let mut inner = dist.inner.lock();
    if let Some((stashed, _)) = inner.stash.as_ref() {
        if *stashed == page {
            if let Some((_, data)) = inner.stash.take() {
                drop(inner);
                return install(&dist, vma, address, flags, page, data);
            }
        }
    }
    let source = if dist.at_origin() {
        let holder = inner.dir.holder(page);
        if holder == me() {
            return FaultAction::Local;
        }
        (holder, task_msg::MSG_PAGE_TAKE)
    } else {
        if inner.holds(page) {
            return FaultAction::Local;
        }
        (dist.id.origin, task_msg::MSG_PAGE_FETCH)
    };
    drop(inner);
    match request_page(source.0, source.1, &dist, page) {
        Ok(Some(data)) => install(&dist, vma, address, flags, page, data),
        Ok(None) => {
            if record_here(&dist, page).is_err() {
                return FaultAction::Handled(VM_FAULT_SIGBUS);
            }
            FaultAction::Local
        }
        Err(e) => {
            pr_warn!(
                "task {}:{}: page {:#x} unavailable from node {} ({:?})\n",
                dist.id.origin.0,
                dist.id.pid,
                address & !(PAGE_SIZE - 1),
                source.0 .0,
                e
            );
            FaultAction::Handled(VM_FAULT_SIGBUS)
        }
    }
}

/// The task running here whose memory `vma` is, when another task faults
/// in it: reading its /proc/PID/cmdline or environ, ptrace. Such a fault
/// must fetch the page as the task's own would; served locally it would
/// install an empty page that hides the task's.
fn running_owner(reg: &Registry, vma: &Vma) -> Option<Arc<Dist>> {
    if reg.is_empty() {
        return None;
    }
    let dist = reg.find_mm(vma.mm_id())?;
    let running = dist.inner.lock().role == Role::Running;
    running.then_some(dist)
}

/// Records that this node holds `page` now.
fn record_here(dist: &Dist, page: u64) -> Result {
    let mut inner = dist.inner.lock();
    if dist.at_origin() {
        inner.dir.record(page, me()).map_err(|_| ENOMEM)
    } else {
        inner.hold(page)
    }
}

fn install(
    dist: &Dist,
    vma: &Vma,
    address: usize,
    flags: u32,
    page: u64,
    data: PageBuf,
) -> FaultAction {
    if record_here(dist, page).is_err() {
        return FaultAction::Handled(VM_FAULT_SIGBUS);
    }
    let ret = vma.install_page(address, flags, &data);
    if ret & VM_FAULT_RETRY != 0 {
        // The fault is retried under the mmap lock: keep the page for it.
        dist.inner.lock().stash = Some((page, data));
    }
    FaultAction::Handled(ret)
}

/// `MSG_PAGE_FETCH`: the node running a task wants a page (at the origin).
pub(crate) struct FetchHandler;

impl MsgHandler for FetchHandler {
    const TYPE: u16 = task_msg::MSG_PAGE_FETCH;

    fn handle(msg: &Message) {
        let (Some(reg), Ok(req)) = (STATE.get(), PageRequest::decode(msg.data())) else {
            let _ = msg.reply_error(EINVAL);
            return;
        };
        let Some(dist) = reg.find(req.task).filter(|d| d.at_origin()) else {
            let _ = msg.reply_error(ESRCH);
            return;
        };
        let requester = NodeId(msg.src() as u8);
        let page = req.page();
        let plan = dist.inner.lock().dir.plan_fetch(page, requester);
        let result = match plan {
            FetchPlan::TakeFromOrigin => take_local(&dist, page),
            FetchPlan::TakeFrom(node) => request_page(node, task_msg::MSG_PAGE_TAKE, &dist, page),
            FetchPlan::AlreadyHeld => Ok(None),
        };
        if result.is_ok() && dist.inner.lock().dir.record(page, requester).is_err() {
            return answer(msg, Err(ENOMEM));
        }
        if matches!(result, Ok(Some(_))) {
            dist.counts.served(PAGE_SIZE);
        }
        answer(msg, result);
    }
}

/// `MSG_PAGE_TAKE`: give up a page this node holds.
pub(crate) struct TakeHandler;

impl MsgHandler for TakeHandler {
    const TYPE: u16 = task_msg::MSG_PAGE_TAKE;

    fn handle(msg: &Message) {
        let (Some(reg), Ok(req)) = (STATE.get(), PageRequest::decode(msg.data())) else {
            let _ = msg.reply_error(EINVAL);
            return;
        };
        let Some(dist) = reg.find(req.task) else {
            let _ = msg.reply_error(ESRCH);
            return;
        };
        let result = take_local(&dist, req.page());
        dist.inner.lock().release(req.page());
        if matches!(result, Ok(Some(_))) {
            dist.counts.served(PAGE_SIZE);
        }
        answer(msg, result);
    }
}

/// Drops the pages of `[start, end)` (page numbers) held by other nodes
/// than `except`, at the origin.
fn drop_at_origin(dist: &Dist, start: u64, end: u64, except: NodeId) {
    let (holders, zap_here) = {
        let mut inner = dist.inner.lock();
        let holders = inner.dir.drop_range(start, end);
        let zap_here = inner.role == Role::Shadow;
        if zap_here && start == 0 && end >= USER_END_PAGE {
            // The whole space goes: the task executed a new program where
            // it runs, which this copy knows nothing of.
            inner.stale = true;
        }
        (holders, zap_here)
    };
    if zap_here {
        zap_local(dist, start, end);
    }
    let Ok(range) = encode_range(dist, start, end) else {
        return;
    };
    for node in holders.iter() {
        if node != except && node != me() {
            let mut out = [0u8; 0];
            let _ = msg::request_nointr(
                u32::from(node.0),
                task_msg::MSG_RANGE_ZAP,
                &range,
                &mut out,
                PAGE_TIMEOUT_MS,
            );
        }
    }
}

fn zap_local(dist: &Dist, start: u64, end: u64) {
    let mm = {
        let mut inner = dist.inner.lock();
        inner.release_range(start, end);
        inner.mm.clone()
    };
    if let Some(mm) = mm {
        mm.zap(
            (start << task_msg::PAGE_SHIFT) as usize,
            (end << task_msg::PAGE_SHIFT) as usize,
        );
    }
}

fn encode_range(dist: &Dist, start: u64, end: u64) -> Result<[u8; Range::LEN]> {
    let mut buf = [0u8; Range::LEN];
    Range {
        task: dist.id,
        start: start << task_msg::PAGE_SHIFT,
        end: end << task_msg::PAGE_SHIFT,
    }
    .encode(&mut buf)
    .map_err(|_| EINVAL)?;
    Ok(buf)
}

/// The running task unmapped `[start, end)` (addresses): its pages are gone
/// on every node.
pub(crate) fn unmapped(dist: &Dist, start: usize, end: usize) {
    let first = (start >> task_msg::PAGE_SHIFT) as u64;
    let last = (end.saturating_add(PAGE_SIZE - 1) >> task_msg::PAGE_SHIFT) as u64;
    let last = last.min(USER_END_PAGE);
    if first >= last {
        return;
    }
    if dist.at_origin() {
        drop_at_origin(dist, first, last, me());
        return;
    }
    dist.inner.lock().release_range(first, last);
    if let Ok(range) = encode_range(dist, first, last) {
        let mut out = [0u8; 0];
        if let Err(e) = msg::request_nointr(
            u32::from(dist.id.origin.0),
            task_msg::MSG_RANGE_DROP,
            &range,
            &mut out,
            PAGE_TIMEOUT_MS,
        ) {
            pr_warn!(
                "task {}:{}: could not drop {:#x}-{:#x} at its origin: {:?}\n",
                dist.id.origin.0,
                dist.id.pid,
                start,
                end,
                e
            );
        }
    }
}

/// `MSG_RANGE_DROP`: the running task unmapped a range (at the origin).
pub(crate) struct DropHandler;

impl MsgHandler for DropHandler {
    const TYPE: u16 = task_msg::MSG_RANGE_DROP;

    fn handle(msg: &Message) {
        let (Some(reg), Ok(range)) = (STATE.get(), Range::decode(msg.data())) else {
            let _ = msg.reply_error(EINVAL);
            return;
        };
        let Some(dist) = reg.find(range.task).filter(|d| d.at_origin()) else {
            let _ = msg.reply_error(ESRCH);
            return;
        };
        let pages = range.pages();
        drop_at_origin(&dist, pages.start, pages.end, NodeId(msg.src() as u8));
        let _ = msg.reply(&[]);
    }
}

/// `MSG_RANGE_ZAP`: drop the pages of a range this node holds.
pub(crate) struct ZapHandler;

impl MsgHandler for ZapHandler {
    const TYPE: u16 = task_msg::MSG_RANGE_ZAP;

    fn handle(msg: &Message) {
        let (Some(reg), Ok(range)) = (STATE.get(), Range::decode(msg.data())) else {
            let _ = msg.reply_error(EINVAL);
            return;
        };
        if let Some(dist) = reg.find(range.task) {
            let pages = range.pages();
            zap_local(&dist, pages.start, pages.end);
        }
        let _ = msg.reply(&[]);
    }
}

/// The running task is about to fork or clone: fetch every page it does
/// not hold here, so that the copy the kernel makes is complete.
pub(crate) fn complete(dist: &Dist) -> Result {
    let mut pages = KVec::new();
    if dist.at_origin() {
        let inner = dist.inner.lock();
        pages.reserve(inner.dir.len(), GFP_KERNEL)?;
        for (page, _) in inner.dir.entries() {
            pages.push(page, GFP_KERNEL)?;
        }
    } else {
        let mut req = [0u8; PageList::LEN];
        PageList { task: dist.id }
            .encode(&mut req)
            .map_err(|_| EINVAL)?;
        let mut reply = KVVec::from_elem(
            0u8,
            task_msg::page_list_len(task_msg::MAX_PAGE_LIST),
            GFP_KERNEL,
        )?;
        let n = msg::request_nointr(
            u32::from(dist.id.origin.0),
            task_msg::MSG_PAGE_LIST,
            &req,
            &mut reply,
            PAGE_TIMEOUT_MS,
        )?;
        let list = task_msg::decode_page_list(reply.get(..n).ok_or(EINVAL)?).map_err(|_| EINVAL)?;
        for page in list {
            pages.push(page, GFP_KERNEL)?;
        }
    }
    for page in pages.iter() {
        match migration::mm_fault_in((*page << task_msg::PAGE_SHIFT) as usize) {
            // No mapping there any more: nothing to copy.
            Ok(()) | Err(EFAULT) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// `MSG_PAGE_LIST`: which pages the node running the task lacks (at the
/// origin): those held by other nodes, and those in this node's copy.
pub(crate) struct ListHandler;

impl MsgHandler for ListHandler {
    const TYPE: u16 = task_msg::MSG_PAGE_LIST;

    fn handle(msg: &Message) {
        let (Some(reg), Ok(req)) = (STATE.get(), PageList::decode(msg.data())) else {
            let _ = msg.reply_error(EINVAL);
            return;
        };
        let Some(dist) = reg.find(req.task).filter(|d| d.at_origin()) else {
            let _ = msg.reply_error(ESRCH);
            return;
        };
        let requester = NodeId(msg.src() as u8);
        let result = (|| -> Result<KVVec<u8>> {
            let mut pages = KVec::new();
            if let Some(mm) = dist.inner.lock().mm.clone() {
                mm.present(&mut pages)?;
            }
            let inner = dist.inner.lock();
            for (page, holder) in inner.dir.entries() {
                if holder != requester {
                    pages.push(page, GFP_KERNEL)?;
                }
            }
            drop(inner);
            pages.sort_unstable();
            let mut out = KVVec::from_elem(0u8, task_msg::page_list_len(pages.len()), GFP_KERNEL)?;
            task_msg::encode_page_list(&mut out, &pages).map_err(|_| ENOMEM)?;
            Ok(out)
        })();
        match result {
            Ok(out) => {
                let _ = msg.reply(&out);
            }
            Err(e) => {
                let _ = msg.reply_error(e);
            }
        }
    }
}
