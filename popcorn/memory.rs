// SPDX-License-Identifier: GPL-2.0

//! The memory of a distributed process: its container.
//!
//! Gobelins owns page contents; popcorn decides which address spaces are a
//! container's pages. When a process first leaves its origin, the origin's
//! address space is linked to a new container homed there (its pages stay
//! where they are: the home serves them on demand), and the container's id
//! travels in the migration message: the destination links the address
//! space it builds to it. So migration ships a container id, never pages
//! (Gobelins, section 4). A shadow keeps its address space linked: pages
//! the process wrote elsewhere come back when it does.
//!
//! Unmapping a range (`munmap`, a `MAP_FIXED` mapping over it, `brk`
//! shrinking) releases its pages on every node; executing a new program
//! destroys the container (the new program's memory is local until the
//! process leaves again, with a new container homed where it executed);
//! the process ending destroys it.

use crate::dist::Dist;
use kernel::cohort::{fault, migration::MmRef};
use kernel::prelude::*;

/// End of user space.
pub(crate) const USER_END: usize = crate::proto::task_msg::USER_END as usize;

/// The current task's address space.
fn current_mm() -> Result<MmRef> {
    MmRef::of(kernel::current!()).ok_or(EINVAL)
}

/// Links the current task's address space to `container` (0: a new one
/// homed here); `active`: the process runs here, else this node's copy is
/// a shadow's. Returns the container's id.
fn link(container: u32, active: bool) -> Result<u32> {
    fault::link(&current_mm()?, container, active).inspect_err(|e| {
        if e.to_errno() == -(kernel::bindings::ENOPROTOOPT as i32) {
            pr_warn!("gobelins is not loaded: a process's memory cannot move\n");
        }
    })
}

/// The container of `dist`, which runs here and is about to leave: the
/// one it has, or a new one homed here, linked to this node's copy of its
/// address space.
///
/// # Errors
///
/// `ENOPROTOOPT` when gobelins is not loaded, or the link's error
/// (`EAGAIN` while this node's container layer joins the cluster, `ENOSPC`
/// when every container id of this node is in use). Gobelins gives the id
/// (see `proto::container::homed`): it names this node's incarnation.
pub(crate) fn container_of(dist: &Dist) -> Result<u32> {
    let known = dist.inner.lock().container;
    if known != 0 {
        return Ok(known);
    }
    let id = link(0, true)?;
    dist.inner.lock().container = id;
    Ok(id)
}

/// `dist` left: this node's copy of its address space is a shadow's now.
/// It serves pages; the shadow's own accesses, to the buffers of the
/// calls it runs for the process, stay local.
pub(crate) fn left(dist: &Dist) -> Result {
    let container = dist.inner.lock().container;
    link(container, false).map(|_| ())
}

/// `dist` did not leave after all: it runs on here.
pub(crate) fn stayed(dist: &Dist) {
    let container = dist.inner.lock().container;
    if let Err(e) = link(container, true) {
        pr_err!(
            "task {}:{}: its memory could not be used here again: {:?}\n",
            dist.id.origin.0,
            dist.id.pid,
            e
        );
    }
}

/// `dist` arrived here (a new task) with `container`: links its address
/// space.
pub(crate) fn arrived(dist: &Dist, container: u32) -> Result {
    if container == 0 {
        return Err(EINVAL);
    }
    link(container, true)?;
    dist.inner.lock().container = container;
    Ok(())
}

/// The shadow of `dist` runs again with `container`. When the process
/// executed a new program elsewhere meanwhile, the container is another
/// one: what this address space maps is the old program's, and goes.
pub(crate) fn came_back(dist: &Dist, container: u32) -> Result {
    let old = dist.inner.lock().container;
    if old != container {
        if old != 0 {
            fault::unlink(old, false);
        }
        current_mm()?.zap(0, USER_END);
    }
    arrived(dist, container)
}

/// The running process `dist` unmapped `[start, end)`.
pub(crate) fn unmapped(dist: &Dist, start: usize, end: usize) {
    if dist.inner.lock().container == 0 {
        return;
    }
    let Ok(mm) = current_mm() else {
        return;
    };
    if let Err(e) = fault::release(&mm, start, end.min(USER_END)) {
        pr_warn!(
            "task {}:{}: pages of {:#x}-{:#x} not released everywhere: {:?}\n",
            dist.id.origin.0,
            dist.id.pid,
            start,
            end,
            e
        );
    }
}

/// The running process `dist` is about to fork: the copy the kernel makes
/// must hold every page, wherever it is.
pub(crate) fn complete(dist: &Dist) -> Result {
    let container = dist.inner.lock().container;
    match container {
        0 => Ok(()),
        container => fault::populate(container),
    }
}

/// The running process `dist` executed a new program: its container goes
/// on every node.
pub(crate) fn executed(dist: &Dist) {
    let old = core::mem::replace(&mut dist.inner.lock().container, 0);
    if old != 0 {
        fault::unlink(old, true);
    }
}

/// `dist` ended on this node; `destroy` where the process itself ended.
pub(crate) fn ended(dist: &Dist, destroy: bool) {
    let old = core::mem::replace(&mut dist.inner.lock().container, 0);
    if old != 0 {
        fault::unlink(old, destroy);
    }
}

/// Adds to `dist`'s statistics the pages gobelins moved for it here since
/// the last call.
pub(crate) fn count(dist: &Dist) {
    let container = dist.inner.lock().container;
    if container == 0 {
        return;
    }
    let (fetched, served) = fault::counts(container);
    dist.counts.pages(fetched, served);
}
