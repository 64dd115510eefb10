// SPDX-License-Identifier: GPL-2.0

//! pcntl(2)'s process management, after OSF/1 AD's `pcntl()`
//! (`../shared/seeds/003_190bd3aa168ab959.txt`): forbidding and allowing
//! migration, migration groups whose members move together, per-process
//! statistics, the nodes' load and admission state, receiver-initiated
//! migration (pull) and the cluster-wide process list.
//!
//! A command about a process is decided by the node the process runs on:
//! its settings live in its kernel state there (`signal_struct`, see
//! [`kernel::cohort::manage`]) and travel with it. A node that names the
//! process by a cluster-wide pid, or keeps only its shadow, asks that node
//! with `MSG_PCNTL` and the caller's ids (`proto::manage`).

use crate::dist::{me, Dist, Registry, Role};
use crate::proto::manage::{
    self as wire, GroupReq, Member, NodeInfoReq, Op, PcntlReply, PcntlReq, PsReq,
};
use crate::proto::migration::TaskId;
use crate::proto::node::{NodeId, NodeSet};
use crate::proto::pcntl::{self, Command, Counts, Gpid, NodeInfo, Proc, Stat, Target};
use crate::proto::wire::Payload;
use crate::{migrate, node_usable, STATE};
use core::sync::atomic::Ordering;
use kernel::cohort::{
    self,
    manage::{self, Caller},
    migration,
    msg::{self, Message, MsgHandler, ReplyTo},
};
use kernel::prelude::*;
use kernel::sync::Arc;
use kernel::task::Task;
use kernel::types::ARef;
use kernel::uaccess::UserSlice;

/// How long a question to another node may take at least (node
/// information, the process list, settings), in milliseconds; see
/// [`ask_timeout_ms`].
const ASK_TIMEOUT_MS: u32 = 2_000;

/// How long a question to another node may take, in milliseconds:
/// [`ASK_TIMEOUT_MS`] or the heartbeat time-out and a margin, whichever is
/// longer (`crate::peer_timeout_ms`).
fn ask_timeout_ms() -> u32 {
    crate::peer_timeout_ms(ASK_TIMEOUT_MS)
}

/// How long a migration asked of another node may take, in milliseconds:
/// the node waits for the process's migration up to its own bound.
const MIGRATE_ASK_TIMEOUT_MS: u32 = migrate::MIGRATE_TIMEOUT_MS * 2 + 5_000;

/// Says why a node refuses processes (`PCNTL_NODE_REFUSE_*` bits).
pub(crate) fn refusal_reason(why: u32) -> &'static str {
    if why & pcntl::NODE_REFUSE_ADMIN != 0 {
        "accept is 0 or the uid is not in accept_uids"
    } else if why & pcntl::NODE_REFUSE_LOAD != 0 {
        "more runnable tasks than max_load"
    } else {
        "less available memory than min_free_kb"
    }
}

fn to_wire(c: &Caller) -> wire::Caller {
    wire::Caller {
        uid: c.uid,
        euid: c.euid,
        admin: c.admin,
    }
}

fn from_wire(c: &wire::Caller) -> Caller {
    Caller {
        uid: c.uid,
        euid: c.euid,
        admin: c.admin,
    }
}

fn eproto() -> Error {
    cohort::errno::EPROTO()
}

/// Where a process a command names is, as this node knows.
enum Place {
    /// It runs here (distributed or not).
    Here(ARef<Task>),
    /// It runs on `node`; `shadow` is its shadow when this node keeps it.
    There {
        node: NodeId,
        task: TaskId,
        shadow: Option<Arc<Dist>>,
    },
}

fn place_of(reg: &Registry, task: ARef<Task>) -> Place {
    if let Some(dist) = reg.find_task(&task) {
        let (role, node) = {
            let inner = dist.inner.lock();
            (inner.role, inner.location)
        };
        if role == Role::Shadow {
            return Place::There {
                node,
                task: dist.id,
                shadow: Some(dist),
            };
        }
    }
    Place::Here(task)
}

/// The process `id` (its origin and its pid there) names, if this node
/// knows it: it was created here, or runs here, or left its shadow here.
fn resolve_id(reg: &Registry, id: TaskId) -> Result<Option<Place>> {
    if id.origin == me() {
        let task = migration::task_by_pid(id.pid as i32).ok_or(ESRCH)?;
        return Ok(Some(place_of(reg, task)));
    }
    Ok(reg.find(id).map(|dist| place_of(reg, dist.task.clone())))
}

fn resolve(reg: &Registry, target: Target) -> Result<Place> {
    match target {
        Target::Caller => Ok(Place::Here(ARef::from(&*kernel::current!()))),
        Target::Pid(pid) => Ok(place_of(reg, migration::task_by_pid(pid).ok_or(ESRCH)?)),
        Target::Global(Gpid { node, pid }) => {
            let id = TaskId { origin: node, pid };
            Ok(resolve_id(reg, id)?.unwrap_or(Place::There {
                node,
                task: id,
                shadow: None,
            }))
        }
    }
}

/// The cluster-wide identity of `task`, which runs here.
fn id_of(reg: &Registry, task: &Task) -> TaskId {
    match reg.find_task(task) {
        Some(dist) => dist.id,
        None => TaskId {
            origin: me(),
            pid: migration::task_ids(task).1 as u32,
        },
    }
}

fn gpid(id: TaskId) -> i32 {
    Gpid {
        node: id.origin,
        pid: id.pid,
    }
    .to_raw()
}

fn is_current(task: &Task) -> bool {
    core::ptr::eq(task, &*kernel::current!())
}

/// kill(2)'s rule: `EPERM` unless the caller may act on `task`.
fn permitted(task: &Task, caller: &Caller, own: bool) -> Result {
    if own || caller.may_control(task) {
        Ok(())
    } else {
        Err(EPERM)
    }
}

/// Whether `task` may be moved at `caller`'s request: `EPERM` without
/// permission or for a process that is part of the node (init of a pid
/// namespace, kernel thread), `EBUSY` while it is traced, in an exec or a
/// core dump, `EACCES` when it forbids migration (or never allowed it
/// under the opt-in policy).
fn may_move(task: &Task, caller: &Caller, own: bool) -> Result {
    permitted(task, caller, own)?;
    manage::refusal(task)?;
    let settings = manage::settings(task);
    if !pcntl::may_move(settings.flags, own, manage::opt_in()) {
        return Err(EACCES);
    }
    Ok(())
}

/// The statistics of `task`, which runs here.
fn stat_here(reg: &Registry, task: &Task) -> Stat {
    let settings = manage::settings(task);
    let now = manage::boottime_ns();
    match reg.find_task(task) {
        Some(dist) => {
            crate::memory::count(&dist);
            let counts = dist.counts.get();
            let mut flags = settings.flags;
            if counts.migrations > 0 {
                flags |= pcntl::F_MIGRATED;
            }
            if !dist.at_origin() {
                flags |= pcntl::F_AWAY;
            }
            let age = (now as i64).saturating_sub(dist.born_ns.load(Ordering::Relaxed));
            Stat {
                flags,
                gpid: gpid(dist.id),
                group: settings.group,
                origin: u32::from(dist.id.origin.0),
                node: u32::from(me().0),
                age_ns: age.max(0) as u64,
                resident_ns: now.saturating_sub(dist.arrived_ns.load(Ordering::Relaxed)),
                visited: dist.inner.lock().visited,
                counts,
            }
        }
        None => {
            let age = manage::age_ns(task);
            Stat {
                flags: settings.flags,
                gpid: gpid(id_of(reg, task)),
                group: settings.group,
                origin: u32::from(me().0),
                node: u32::from(me().0),
                age_ns: age,
                resident_ns: age,
                visited: NodeSet::single(me()),
                counts: Counts::default(),
            }
        }
    }
}

/// What a shadow's node counted for its task, added to the runner's.
fn partial(shadow: &Option<Arc<Dist>>) -> Option<Stat> {
    shadow.as_ref().map(|dist| {
        crate::memory::count(dist);
        Stat {
            counts: dist.counts.get(),
            ..Stat::default()
        }
    })
}

/// Runs `op` (not a migration) on `task`, which runs here.
fn run_here(
    reg: &Registry,
    task: &Task,
    op: Op,
    caller: &Caller,
    own: bool,
) -> Result<(i64, Option<Stat>)> {
    match op {
        Op::Where => return Ok((i64::from(me().0), None)),
        Op::Stat => return Ok((0, Some(stat_here(reg, task)))),
        Op::Migrate(..) => return Err(EINVAL),
        _ => permitted(task, caller, own)?,
    }
    match op {
        Op::Permit(permit) => manage::update(task, pcntl::PERMIT_BITS, permit.bits(), None)?,
        Op::Join(group, fork) => {
            let set = if fork { pcntl::F_GROUP_FORK } else { 0 };
            manage::update(task, pcntl::F_GROUP_FORK, set, Some(group))?
        }
        _ => {
            if manage::settings(task).group == 0 {
                return Err(EINVAL);
            }
            manage::update(task, pcntl::F_GROUP_FORK, 0, Some(0))?
        }
    }
    Ok((0, None))
}

/// What another node answered to a command.
enum Answer {
    /// The command's value and, for `Op::Stat`, the record.
    Value(i64, Option<Stat>),
    /// `Op::Migrate(_, false)`: the process is in this migration group;
    /// nothing moved.
    Group(u32),
}

/// Runs `op` on process `task`, which runs on `node` as far as this node
/// knows, following it where it moved (at most `MAX_HOPS` nodes).
/// `extra` is what nodes on the way counted (for `Op::Stat`).
fn ask(
    mut node: NodeId,
    task: TaskId,
    op: Op,
    caller: &Caller,
    mut extra: Counts,
) -> Result<Answer> {
    let timeout = match op {
        Op::Migrate(..) => MIGRATE_ASK_TIMEOUT_MS,
        _ => ask_timeout_ms(),
    };
    for hops in 0..=wire::MAX_HOPS {
        if node == me() {
            // It came here meanwhile.
            let reg = STATE.get().ok_or(ENODEV)?;
            match resolve_id(&reg, task)? {
                Some(Place::Here(local)) => {
                    return match op {
                        Op::Migrate(dest, alone) => {
                            let group = manage::settings(&local).group;
                            if !alone && group != 0 {
                                return Ok(Answer::Group(group));
                            }
                            migrate_one(&reg, &local, dest, caller).map(|_| Answer::Value(0, None))
                        }
                        _ => run_here(&reg, &local, op, caller, false)
                            .map(|(v, st)| Answer::Value(v, st)),
                    };
                }
                Some(Place::There { node: next, .. }) if next != me() => {
                    node = next;
                    continue;
                }
                _ => return Err(ESRCH),
            }
        }
        if !node_usable(u32::from(node.0)) {
            return Err(cohort::errno::EHOSTDOWN());
        }
        let mut req = [0u8; PcntlReq::LEN];
        PcntlReq {
            task,
            op,
            caller: to_wire(caller),
            hops,
        }
        .encode(&mut req)
        .map_err(|_| EINVAL)?;
        let mut out = [0u8; PcntlReply::LEN];
        let n = msg::request(u32::from(node.0), wire::MSG_PCNTL, &req, &mut out, timeout)?;
        if n == 0 {
            // A migration's reply: it runs on its destination.
            return Ok(Answer::Value(0, None));
        }
        match PcntlReply::decode(out.get(..n).ok_or(EINVAL)?).map_err(|_| eproto())? {
            PcntlReply::Done(value, stat) => {
                let stat = stat.map(|mut s| {
                    s.counts.add(&extra);
                    s
                });
                return Ok(Answer::Value(value, stat));
            }
            PcntlReply::Group(group) => return Ok(Answer::Group(group)),
            PcntlReply::Redirect(next, part) => {
                if let Some(p) = part {
                    extra.add(&p.counts);
                }
                node = next;
            }
        }
    }
    Err(EAGAIN)
}

/// Runs `op` wherever the process is.
fn run(reg: &Registry, place: Place, op: Op, caller: &Caller) -> Result<(i64, Option<Stat>)> {
    match place {
        Place::Here(task) => {
            let own = is_current(&task);
            run_here(reg, &task, op, caller, own)
        }
        Place::There { node, task, shadow } => {
            let extra = partial(&shadow).map(|s| s.counts).unwrap_or_default();
            match ask(node, task, op, caller, extra)? {
                Answer::Value(value, stat) => Ok((value, stat)),
                Answer::Group(_) => Err(eproto()),
            }
        }
    }
}

/// Moves `task`, which runs here, alone to `dest` and waits until it runs
/// there (the caller: until it leaves, on its way out of pcntl(2)).
fn migrate_one(reg: &Registry, task: &ARef<Task>, dest: NodeId, caller: &Caller) -> Result<isize> {
    let own = is_current(task);
    may_move(task, caller, own)?;
    migrate::migrate(reg, task.clone(), own, dest)
}

/// Moves process `place` to `dest`: alone, or (`alone` false) only if it
/// is in no migration group; `Ok(Some(group))` when it is in one and
/// nothing moved.
fn migrate_place(
    reg: &Registry,
    place: Place,
    dest: NodeId,
    caller: &Caller,
    alone: bool,
) -> Result<Option<u32>> {
    match place {
        Place::Here(task) => {
            let group = manage::settings(&task).group;
            if !alone && group != 0 {
                return Ok(Some(group));
            }
            migrate_one(reg, &task, dest, caller).map(|_| None)
        }
        Place::There { node, task, shadow } => {
            // Where it is already: asked all the same unless alone, so that
            // its group gathers there.
            if node != dest || !alone {
                let op = Op::Migrate(dest, alone);
                if let Answer::Group(group) = ask(node, task, op, caller, Counts::default())? {
                    return Ok(Some(group));
                }
            }
            // It runs on `dest` now (its MSG_MOVED may still be on its
            // way): the shadow here says so at once.
            if let Some(dist) = shadow {
                let mut inner = dist.inner.lock();
                // Unless MSG_MOVED already told of a later move.
                if inner.role == Role::Shadow && inner.location == node {
                    inner.location = dest;
                    inner.visited = inner.visited.union(NodeSet::single(dest));
                }
            }
            Ok(None)
        }
    }
}

/// The members of `group` that run here, and whether each may move to
/// `dest` at `caller`'s request (the current task's own request for
/// itself when `own_ok`).
fn local_members(
    reg: &Registry,
    group: u32,
    caller: &Caller,
    own_ok: bool,
    out: &mut KVec<(NodeId, Member)>,
) -> Result {
    let entries = snapshot()?;
    for e in entries.iter().filter(|e| e.group == group) {
        let Some(task) = migration::task_by_pid(e.pid) else {
            continue;
        };
        if matches!(place_of(reg, task.clone()), Place::There { .. }) {
            continue;
        }
        let own = own_ok && is_current(&task);
        // Everything that would refuse it later, so that none moves.
        let check = may_move(&task, caller, own).and_then(|()| {
            if !migration::may_migrate(&task) || migration::holds_posix_locks(&task) {
                Err(cohort::errno::EOPNOTSUPP())
            } else if reg.migrating(&task) {
                Err(EBUSY)
            } else {
                Ok(())
            }
        });
        let refusal = match check {
            Ok(()) => 0,
            Err(err) => (-err.to_errno()) as u32,
        };
        out.push(
            (
                me(),
                Member {
                    task: id_of(reg, &task),
                    pid: e.pid as u32,
                    uid: e.uid,
                    refusal,
                },
            ),
            GFP_KERNEL,
        )?;
    }
    Ok(())
}

/// Every user process of this node (`manage::ps`), grown until all fit.
fn snapshot() -> Result<KVVec<manage::PsEntry>> {
    let mut cap = 256;
    loop {
        let mut entries = KVVec::with_capacity(cap, GFP_KERNEL)?;
        let total = manage::ps(&mut entries) as usize;
        if total <= cap {
            return Ok(entries);
        }
        cap = total + 64;
    }
}

/// Writes the pid of the member that refused, as `PCNTL_MIGRATE` says: its
/// local pid when it runs on this node (`node`), else its cluster-wide pid.
fn report_refused(ptr: usize, member: Option<(NodeId, &Member)>) -> Result {
    if ptr == 0 {
        return Ok(());
    }
    let value = member.map_or(0, |(node, m)| {
        if node == me() {
            m.pid as i32
        } else {
            gpid(m.task)
        }
    });
    UserSlice::new(ptr, 4)
        .writer()
        .write_slice(&value.to_ne_bytes())
}

/// `PCNTL_MIGRATE` of a process in migration group `group`: every member,
/// on every node, moves to `dest`, or none does.
fn migrate_group(
    reg: &Registry,
    group: u32,
    dest: NodeId,
    caller: &Caller,
    refused: usize,
) -> Result<isize> {
    let mut members = KVec::new();
    for n in 0..cohort::nr_nodes() {
        if !node_usable(n) {
            continue;
        }
        let node = NodeId(n as u8);
        if node == me() {
            local_members(reg, group, caller, true, &mut members)?;
            continue;
        }
        let mut req = [0u8; GroupReq::LEN];
        GroupReq {
            group,
            dest,
            caller: to_wire(caller),
        }
        .encode(&mut req)
        .map_err(|_| EINVAL)?;
        let mut out = KVVec::from_elem(0u8, wire::members_len(wire::MAX_MEMBERS), GFP_KERNEL)?;
        let len = msg::request(n, wire::MSG_GROUP, &req, &mut out, ask_timeout_ms())?;
        let mut failed = None;
        wire::decode_members(out.get(..len).ok_or(EINVAL)?, |m| {
            if members.push((node, m), GFP_KERNEL).is_err() {
                failed = Some(ENOMEM);
            }
            Ok(())
        })
        .map_err(|_| eproto())?;
        if let Some(e) = failed {
            return Err(e);
        }
    }
    // All or none: first every member's own refusal, then the
    // destination's admission of each member that would arrive there,
    // whichever node asks (the destination's own included): what
    // `MSG_MIGRATE` would decide, so that none moves to be moved back.
    if let Some((node, m)) = members.iter().find(|(_, m)| m.refusal != 0) {
        let _ = report_refused(refused, Some((*node, m)));
        return Err(Error::from_errno(-(m.refusal as i32)));
    }
    for (node, m) in members.iter().filter(|(node, _)| *node != dest) {
        let info = node_info(dest, m.uid, Some(m.task))?;
        if info.flags & pcntl::NODE_REFUSED != 0 {
            let _ = report_refused(refused, Some((*node, m)));
            return Err(cohort::errno::ECONNREFUSED());
        }
    }
    let mut own = None;
    let mut moved: KVec<(NodeId, TaskId)> = KVec::new();
    for (node, m) in members.iter() {
        if *node == dest {
            continue;
        }
        let place = if *node == me() {
            let Some(task) = migration::task_by_pid(m.pid as i32) else {
                continue;
            };
            if is_current(&task) {
                own = Some(task);
                continue;
            }
            Place::Here(task)
        } else {
            Place::There {
                node: *node,
                task: m.task,
                shadow: None,
            }
        };
        match migrate_place(reg, place, dest, caller, true) {
            Ok(_) => moved.push((*node, m.task), GFP_KERNEL)?,
            Err(e) if e == ESRCH => {}
            Err(e) => {
                pr_info!(
                    "group {}: member {}:{} could not move to node {} ({:?}); moving the others back\n",
                    group,
                    m.task.origin.0,
                    m.task.pid,
                    dest.0,
                    e
                );
                for (from, id) in moved.iter() {
                    let back = Place::There {
                        node: dest,
                        task: *id,
                        shadow: None,
                    };
                    if let Err(e) = migrate_place(reg, back, *from, caller, true) {
                        pr_warn!(
                            "group {}: member {}:{} stays on node {}: {:?}\n",
                            group,
                            id.origin.0,
                            id.pid,
                            dest.0,
                            e
                        );
                    }
                }
                let _ = report_refused(refused, Some((*node, m)));
                return Err(e);
            }
        }
    }
    // The caller, a member itself, goes last, on its way out of pcntl(2).
    match own {
        Some(task) => migrate::migrate(reg, task, true, dest),
        None => Ok(0),
    }
}

/// This node's state, its admission decided for a process of `uid`
/// (`u32::MAX`: any uid the node's uid list does not exclude) and, with
/// `back`, for that process: one whose shadow this node keeps is taken
/// back whatever the settings (as `MSG_MIGRATE` does).
fn node_info_here(uid: u32, back: Option<TaskId>) -> NodeInfo {
    let raw = manage::node_info();
    let mut info = NodeInfo {
        flags: raw.flags,
        node: raw.node,
        nr_cpus: raw.nr_cpus,
        nr_running: raw.nr_running,
        max_load: raw.max_load,
        nr_procs: raw.nr_procs,
        nr_distributed: 0,
        load1_milli: raw.load1_milli,
        free_kb: raw.free_kb,
        total_kb: raw.total_kb,
        min_free_kb: raw.min_free_kb,
    };
    let reg = STATE.get();
    if uid != u32::MAX {
        let shadow_here = back
            .and_then(|task| reg.as_ref()?.find(task))
            .is_some_and(|dist| dist.inner.lock().role == Role::Shadow);
        let why = if shadow_here {
            0
        } else {
            manage::admission(uid)
        };
        info.flags &= !(pcntl::NODE_ACCEPTS | pcntl::NODE_REFUSED);
        info.flags |= if why == 0 { pcntl::NODE_ACCEPTS } else { why };
    }
    if let Some(reg) = reg {
        reg.for_each(|dist| {
            if dist.inner.lock().role == Role::Running {
                info.nr_distributed += 1;
            } else {
                // A shadow's process runs elsewhere.
                info.nr_procs = info.nr_procs.saturating_sub(1);
            }
        });
    }
    info
}

/// Node `node`'s state, asked there unless it is this one (see
/// [`node_info_here`]).
fn node_info(node: NodeId, uid: u32, back: Option<TaskId>) -> Result<NodeInfo> {
    if node == me() {
        return Ok(node_info_here(uid, back));
    }
    if u32::from(node.0) >= cohort::nr_nodes() {
        return Err(EINVAL);
    }
    if !node_usable(u32::from(node.0)) {
        return Err(cohort::errno::EHOSTDOWN());
    }
    let mut req = [0u8; NodeInfoReq::LEN];
    NodeInfoReq { uid, back }
        .encode(&mut req)
        .map_err(|_| EINVAL)?;
    let mut out = [0u8; NodeInfo::SIZE];
    let n = msg::request(
        u32::from(node.0),
        wire::MSG_NODE_INFO,
        &req,
        &mut out,
        ask_timeout_ms(),
    )?;
    wire::decode_node_info(out.get(..n).ok_or(EINVAL)?).map_err(|_| eproto())
}

/// The user processes running here: how many there are, and the records
/// of the first `max`. A shadow is not listed: its process runs elsewhere.
fn ps_here(max: usize) -> Result<(u32, KVVec<Proc>)> {
    let entries = snapshot()?;
    let reg = STATE.get();
    let now = manage::boottime_ns();
    let mut total = 0u32;
    let mut procs = KVVec::with_capacity(max.min(entries.len()), GFP_KERNEL)?;
    for e in entries.iter() {
        let mut p = Proc {
            gpid: gpid(TaskId {
                origin: me(),
                pid: e.pid as u32,
            }),
            pid: e.pid,
            origin: u32::from(me().0),
            node: u32::from(me().0),
            uid: e.uid,
            group: e.group,
            flags: e.flags,
            threads: e.threads,
            migrations: 0,
            cpu_ns: e.cpu_ns,
            resident_ns: e.age_ns,
            comm: [0; 16],
        };
        for (to, from) in p.comm.iter_mut().zip(e.comm.iter()) {
            *to = *from as u8;
        }
        let dist = reg.as_ref().filter(|r| !r.is_empty()).and_then(|r| {
            let task = migration::task_by_pid(e.pid)?;
            r.find_task(&task)
        });
        if let Some(dist) = dist {
            if dist.inner.lock().role == Role::Shadow {
                continue;
            }
            let counts = dist.counts.get();
            p.gpid = gpid(dist.id);
            p.origin = u32::from(dist.id.origin.0);
            p.migrations = counts.migrations;
            if counts.migrations > 0 {
                p.flags |= pcntl::F_MIGRATED;
            }
            if !dist.at_origin() {
                p.flags |= pcntl::F_AWAY;
            }
            p.resident_ns = now.saturating_sub(dist.arrived_ns.load(Ordering::Relaxed));
        }
        total += 1;
        if procs.len() < max {
            procs.push(p, GFP_KERNEL)?;
        }
    }
    Ok((total, procs))
}

/// pcntl(2)'s commands but `PCNTL_NODES`.
pub(crate) fn pcntl(reg: &Registry, command: Command) -> Result<isize> {
    let caller = Caller::current();
    match command {
        Command::Where(target) => match resolve(reg, target)? {
            Place::Here(_) => Ok(me().0 as isize),
            Place::There {
                node,
                shadow: Some(_),
                ..
            } => Ok(node.0 as isize),
            place => run(reg, place, Op::Where, &caller).map(|(v, _)| v as isize),
        },
        Command::Permit(target, permit) => {
            run(reg, resolve(reg, target)?, Op::Permit(permit), &caller).map(|_| 0)
        }
        Command::GroupJoin {
            target,
            group,
            fork,
        } => run(reg, resolve(reg, target)?, Op::Join(group, fork), &caller).map(|_| 0),
        Command::GroupLeave(target) => {
            run(reg, resolve(reg, target)?, Op::Leave, &caller).map(|_| 0)
        }
        Command::Stat { target, buf, size } => {
            let (_, stat) = run(reg, resolve(reg, target)?, Op::Stat, &caller)?;
            let bytes = stat.ok_or_else(eproto)?.to_bytes();
            let len = size.min(bytes.len());
            UserSlice::new(buf, len)
                .writer()
                .write_slice(&bytes[..len])?;
            Ok(len as isize)
        }
        Command::NodeInfo { node, buf, size } => {
            let bytes = node_info(NodeId(node as u8), u32::MAX, None)?.to_bytes();
            let len = size.min(bytes.len());
            UserSlice::new(buf, len)
                .writer()
                .write_slice(&bytes[..len])?;
            Ok(len as isize)
        }
        Command::Ps { node, buf, size } => {
            let room = size / Proc::SIZE;
            let max = room.min(wire::MAX_PS as usize);
            let node = NodeId(node as u8);
            let mut out = KVVec::new();
            let total = if node == me() {
                let (total, procs) = ps_here(max)?;
                for p in procs.iter() {
                    out.extend_from_slice(&p.to_bytes(), GFP_KERNEL)?;
                }
                total
            } else {
                if u32::from(node.0) >= cohort::nr_nodes() {
                    return Err(EINVAL);
                }
                if !node_usable(u32::from(node.0)) {
                    return Err(cohort::errno::EHOSTDOWN());
                }
                let mut req = [0u8; PsReq::LEN];
                PsReq { max: max as u32 }
                    .encode(&mut req)
                    .map_err(|_| EINVAL)?;
                let mut reply = KVVec::from_elem(0u8, wire::ps_len(max), GFP_KERNEL)?;
                let n = msg::request(
                    u32::from(node.0),
                    wire::MSG_PS,
                    &req,
                    &mut reply,
                    ask_timeout_ms(),
                )?;
                let (total, procs) =
                    wire::decode_ps(reply.get(..n).ok_or(EINVAL)?).map_err(|_| eproto())?;
                for p in procs {
                    out.extend_from_slice(&p.to_bytes(), GFP_KERNEL)?;
                }
                total
            };
            // More processes than one reply carries, with room for them
            // all: E2BIG rather than a count above the records stored.
            let total = wire::ps_count(total, out.len() / Proc::SIZE, room).map_err(|_| E2BIG)?;
            if !out.is_empty() {
                UserSlice::new(buf, out.len()).writer().write_slice(&out)?;
            }
            Ok(total as isize)
        }
        Command::Pull { target, refused } => migrate_cmd(reg, target, me(), refused, &caller),
        Command::Migrate {
            target,
            node,
            refused,
        } => {
            if !node_usable(node) {
                return Err(EINVAL);
            }
            migrate_cmd(reg, target, NodeId(node as u8), refused, &caller)
        }
        Command::Nodes { .. } => Err(EINVAL),
    }
}

/// `PCNTL_MIGRATE` and `PCNTL_PULL`: `target` and its group to `dest`.
/// A process elsewhere is asked to move only if it is in no group (one
/// message in the common case); a group is then moved as a whole.
fn migrate_cmd(
    reg: &Registry,
    target: Target,
    dest: NodeId,
    refused: usize,
    caller: &Caller,
) -> Result<isize> {
    let place = resolve(reg, target)?;
    // A pointer that cannot be written fails before anything moves.
    report_refused(refused, None)?;
    if let Place::Here(task) = &place {
        let group = manage::settings(task).group;
        if group == 0 {
            return migrate_one(reg, task, dest, caller);
        }
        return migrate_group(reg, group, dest, caller, refused);
    }
    match migrate_place(reg, place, dest, caller, false)? {
        None => Ok(0),
        Some(group) => migrate_group(reg, group, dest, caller, refused),
    }
}

/// `MSG_PCNTL`: a command about a process, from another node.
pub(crate) struct PcntlHandler;

impl MsgHandler for PcntlHandler {
    const TYPE: u16 = wire::MSG_PCNTL;

    fn handle(msg: &Message) {
        let reply = msg.reply_to();
        if let Err(e) = serve_pcntl(msg.data(), reply) {
            let _ = reply.reply_error(e);
        }
    }
}

fn serve_pcntl(data: &[u8], reply: ReplyTo) -> Result {
    let reg = STATE.get().ok_or_else(cohort::errno::ESHUTDOWN)?;
    let req = PcntlReq::decode(data).map_err(|_| eproto())?;
    let caller = from_wire(&req.caller);
    let answer = match resolve_id(&reg, req.task)?.ok_or(ESRCH)? {
        Place::There { node, shadow, .. } => {
            let part = match req.op {
                Op::Stat => partial(&shadow),
                _ => None,
            };
            PcntlReply::Redirect(node, part)
        }
        Place::Here(task) => match req.op {
            Op::Migrate(dest, alone) => {
                let group = manage::settings(&task).group;
                if !alone && group != 0 {
                    PcntlReply::Group(group)
                } else {
                    may_move(&task, &caller, false)?;
                    if dest == me() {
                        return reply.reply(&[]);
                    }
                    // The answer comes once the process runs on `dest`.
                    return migrate::start_for(&reg, task, dest, reply);
                }
            }
            op => {
                let (value, stat) = run_here(&reg, &task, op, &caller, false)?;
                PcntlReply::Done(value, stat)
            }
        },
    };
    let mut out = [0u8; PcntlReply::LEN];
    let n = answer.encode(&mut out).map_err(|_| EINVAL)?;
    reply.reply(&out[..n])
}

/// `MSG_NODE_INFO`: this node's state.
pub(crate) struct NodeInfoHandler;

impl MsgHandler for NodeInfoHandler {
    const TYPE: u16 = wire::MSG_NODE_INFO;

    fn handle(msg: &Message) {
        match NodeInfoReq::decode(msg.data()) {
            Ok(req) => {
                let _ = msg.reply(&node_info_here(req.uid, req.back).to_bytes());
            }
            Err(_) => {
                let _ = msg.reply_error(eproto());
            }
        }
    }
}

/// `MSG_PS`: the user processes running here.
pub(crate) struct PsHandler;

impl MsgHandler for PsHandler {
    const TYPE: u16 = wire::MSG_PS;

    fn handle(msg: &Message) {
        let result = (|| -> Result<KVVec<u8>> {
            let req = PsReq::decode(msg.data()).map_err(|_| eproto())?;
            let (total, procs) = ps_here(req.max as usize)?;
            let mut out = KVVec::from_elem(0u8, wire::ps_len(procs.len()), GFP_KERNEL)?;
            wire::encode_ps(total, &procs, &mut out).map_err(|_| EINVAL)?;
            Ok(out)
        })();
        let _ = match result {
            Ok(out) => msg.reply(&out),
            Err(e) => msg.reply_error(e),
        };
    }
}

/// `MSG_GROUP`: the members of a group that run here.
pub(crate) struct GroupHandler;

impl MsgHandler for GroupHandler {
    const TYPE: u16 = wire::MSG_GROUP;

    fn handle(msg: &Message) {
        let result = (|| -> Result<KVVec<u8>> {
            let reg = STATE.get().ok_or_else(cohort::errno::ESHUTDOWN)?;
            let req = GroupReq::decode(msg.data()).map_err(|_| eproto())?;
            let mut members = KVec::new();
            local_members(
                &reg,
                req.group,
                &from_wire(&req.caller),
                false,
                &mut members,
            )?;
            if members.len() > wire::MAX_MEMBERS {
                return Err(E2BIG);
            }
            let mut list = KVec::with_capacity(members.len(), GFP_KERNEL)?;
            for (_, m) in members.iter() {
                list.push(*m, GFP_KERNEL)?;
            }
            let mut out = KVVec::from_elem(0u8, wire::members_len(list.len()), GFP_KERNEL)?;
            wire::encode_members(&list, &mut out).map_err(|_| EINVAL)?;
            Ok(out)
        })();
        let _ = match result {
            Ok(out) => msg.reply(&out),
            Err(e) => msg.reply_error(e),
        };
    }
}
