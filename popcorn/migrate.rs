// SPDX-License-Identifier: GPL-2.0

//! Leaving and arriving: a task packs its state into one `MSG_MIGRATE` at
//! its next return to user space; the destination creates a task for it, or
//! wakes the shadow it left there before, and loads the state. The task
//! left behind stays as a shadow until the task returns or exits.

use crate::dist::{self, me, Answer, Dist, Event, Registry, Role};
use crate::memory;
use crate::proto::files::FileDesc;
use crate::proto::fwd::Interrupt;
use crate::proto::migration::TaskId;
use crate::proto::node::{NodeId, NodeSet};
use crate::proto::pcntl;
use crate::proto::task_msg::{
    self, Creds, Itimer, Manage, MigrateAbort, MigrateExtra, MigrateHead, MigrateReply, MigrateReq,
    MmLayout, Moved, ProcState, QueuedSignal, Rlimit, Sched, SigAction, Signal, Signals,
    SyscallIntr, SyscallMsg, SyscallReply, VmaDesc, VmaKind,
};
use crate::proto::wire::Payload;
use crate::STATE;
use core::sync::atomic::Ordering;
use kernel::cohort::{
    self, manage, migration,
    migration::{AfterWork, TaskWork},
    msg::{self, Message, MsgHandler, ReplyTo},
    vec as kvec,
};
use kernel::prelude::*;
use kernel::str::CStr;
use kernel::sync::{new_condvar, new_mutex, Arc, CondVar, Mutex};
use kernel::task::Task;
use kernel::types::ARef;

/// How long a leaving task waits for its exiting threads to be released
/// (`EAGAIN` after): they are past `exit_mm()`, only the last steps of
/// `do_exit()` remain.
const LONE_THREAD_MS: u32 = 2_000;
/// How long the leaving task waits for the destination.
pub(crate) const MIGRATE_TIMEOUT_MS: u32 = 10_000;
/// What the destination may take on top of that per KiB of the task's
/// state: installing tens of thousands of mappings takes tens of seconds
/// on a slow node (the debug kernel, one CPU).
const MIGRATE_TIMEOUT_MS_PER_KIB: u32 = 20;

/// How long the leaving task waits for a destination to load `len` bytes
/// of its state.
fn migrate_timeout_ms(len: usize) -> u32 {
    let per_kib = u32::try_from(len / 1024).unwrap_or(u32::MAX);
    MIGRATE_TIMEOUT_MS.saturating_add(per_kib.saturating_mul(MIGRATE_TIMEOUT_MS_PER_KIB))
}
/// Signals a shadow never forwards.
const SIGKILL: u32 = 9;
/// How long a shadow waits, at least, for the task's node to queue a
/// signal that interrupted a forwarded call (ms).
const SIGNAL_ACK_TIMEOUT_MS: u32 = 2_000;

/// A migration asked for, run in the task as it returns to user space.
#[pin_data]
pub(crate) struct Leave {
    /// The task to move.
    task: ARef<Task>,
    dest: NodeId,
    /// Asked by pcntl(2) of the task itself: its return value reports it.
    own: bool,
    /// Asked by another node (`MSG_MIGRATE_REQ`, `MSG_PCNTL`): answer
    /// there.
    reply: Option<ReplyTo>,
    /// For another node: `now_ns()` after which the request is dropped
    /// (the asker stopped waiting); 0 for none.
    deadline_ns: u64,
    /// The outcome (0 or a negative errno), or `None` while under way;
    /// `cancelled` when the asker gave up waiting.
    #[pin]
    state: Mutex<(Option<i32>, bool)>,
    #[pin]
    done: CondVar,
}

impl Leave {
    /// A migration of a task to `dest`.
    pub(crate) fn new(
        task: ARef<Task>,
        dest: NodeId,
        own: bool,
        reply: Option<ReplyTo>,
    ) -> Result<Arc<Leave>> {
        // The asker waits MIGRATE_TIMEOUT_MS * 2 + 5 s: give up before.
        let deadline_ns = match reply {
            Some(_) => {
                cohort::now_ns().saturating_add(u64::from(MIGRATE_TIMEOUT_MS + 5_000) * 1_000_000)
            }
            None => 0,
        };
        Arc::pin_init(
            pin_init!(Leave {
                task,
                dest,
                own,
                reply,
                deadline_ns,
                state <- new_mutex!((None, false)),
                done <- new_condvar!(),
            }),
            GFP_KERNEL,
        )
    }

    fn settle(&self, result: Result) {
        if let Some(reg) = STATE.get() {
            reg.end_migration(&self.task);
        }
        let code = match result {
            Ok(()) => 0,
            Err(e) => e.to_errno(),
        };
        if let Some(reply) = &self.reply {
            let _ = match result {
                Ok(()) => reply.reply(&[]),
                Err(e) => reply.reply_error(e),
            };
        }
        if self.own && code != 0 {
            migration::set_syscall_return(i64::from(code));
        }
        self.state.lock().0 = Some(code);
        self.done.notify_all();
    }

    /// Waits up to `ms` for the outcome; `EAGAIN` when the task did not
    /// get there in time (the request is then dropped).
    pub(crate) fn wait(&self, ms: u32) -> Result {
        let deadline = cohort::now_ns().saturating_add(u64::from(ms) * 1_000_000);
        let mut state = self.state.lock();
        loop {
            if let Some(code) = state.0 {
                return if code == 0 {
                    Ok(())
                } else {
                    Err(Error::from_errno(code))
                };
            }
            let now = cohort::now_ns();
            if now >= deadline {
                state.1 = true;
                return Err(EAGAIN);
            }
            let left = kernel::time::msecs_to_jiffies(((deadline - now) / 1_000_000 + 1) as u32);
            if let kernel::sync::CondVarTimeoutResult::Signal { .. } =
                self.done.wait_interruptible_timeout(&mut state, left)
            {
                state.1 = true;
                return Err(EINTR);
            }
        }
    }
}

impl TaskWork for Leave {
    fn run(this: Arc<Self>, exiting: bool) -> AfterWork {
        if exiting {
            this.settle(Err(ESRCH));
            return AfterWork::Resume;
        }
        if this.state.lock().1 {
            if let Some(reg) = STATE.get() {
                reg.end_migration(&this.task);
            }
            return AfterWork::Resume;
        }
        // Asked by a node that stopped waiting (the process was stopped,
        // say): a group it belongs to was moved back meanwhile.
        if this.deadline_ns != 0 && cohort::now_ns() > this.deadline_ns {
            this.settle(Err(EAGAIN));
            return AfterWork::Resume;
        }
        // Forbidden since it was asked for.
        let flags = manage::settings(&this.task).flags;
        if !pcntl::may_move(flags, this.own, manage::opt_in()) {
            this.settle(Err(EACCES));
            return AfterWork::Resume;
        }
        let Some(reg) = STATE.get() else {
            this.settle(Err(ESHUTDOWN_()));
            return AfterWork::Resume;
        };
        match leave(&reg, this.dest) {
            Ok(dist) => {
                this.settle(Ok(()));
                drop(this);
                shadow(&reg, &dist)
            }
            Err(e) => {
                pr_info!("migration to node {} refused: {:?}\n", this.dest.0, e);
                this.settle(Err(e));
                AfterWork::Resume
            }
        }
    }
}

#[allow(non_snake_case)]
fn ESHUTDOWN_() -> Error {
    cohort::errno::ESHUTDOWN()
}

fn signals_to_proto(sig: &migration::Signals) -> Signals {
    let mut out = Signals::EMPTY;
    out.blocked = sig.blocked;
    out.pending = sig.pending;
    for (o, a) in out.actions.iter_mut().zip(sig.action.iter()) {
        *o = SigAction {
            handler: a.handler,
            flags: a.flags,
            restorer: a.restorer,
            mask: a.mask,
        };
    }
    out
}

fn signals_from_proto(sig: &Signals, out: &mut migration::Signals) {
    out.blocked = sig.blocked;
    out.pending = sig.pending;
    for (o, a) in out.action.iter_mut().zip(sig.actions.iter()) {
        o.handler = a.handler;
        o.flags = a.flags;
        o.restorer = a.restorer;
        o.mask = a.mask;
    }
}

pub(crate) fn creds_to_proto(c: &migration::Creds) -> Creds {
    Creds {
        uid: c.uid,
        gid: c.gid,
        suid: c.suid,
        sgid: c.sgid,
        euid: c.euid,
        egid: c.egid,
        fsuid: c.fsuid,
        fsgid: c.fsgid,
        cap_inheritable: c.cap_inheritable,
        cap_permitted: c.cap_permitted,
        cap_effective: c.cap_effective,
        cap_bset: c.cap_bset,
        cap_ambient: c.cap_ambient,
        securebits: c.securebits,
        umask: c.umask,
    }
}

/// The hub's form of credentials that came in a message.
pub(crate) fn creds_from_proto(c: &Creds) -> migration::Creds {
    migration::Creds {
        uid: c.uid,
        gid: c.gid,
        suid: c.suid,
        sgid: c.sgid,
        euid: c.euid,
        egid: c.egid,
        fsuid: c.fsuid,
        fsgid: c.fsgid,
        cap_inheritable: c.cap_inheritable,
        cap_permitted: c.cap_permitted,
        cap_effective: c.cap_effective,
        cap_bset: c.cap_bset,
        cap_ambient: c.cap_ambient,
        securebits: c.securebits,
        umask: c.umask,
    }
}

fn layout_to_proto(l: &migration::MmLayout) -> MmLayout {
    MmLayout {
        start_code: l.start_code,
        end_code: l.end_code,
        start_data: l.start_data,
        end_data: l.end_data,
        start_brk: l.start_brk,
        brk: l.brk,
        start_stack: l.start_stack,
        arg_start: l.arg_start,
        arg_end: l.arg_end,
        env_start: l.env_start,
        env_end: l.env_end,
    }
}

fn layout_from_proto(l: &MmLayout) -> migration::MmLayout {
    migration::MmLayout {
        start_code: l.start_code,
        end_code: l.end_code,
        start_data: l.start_data,
        end_data: l.end_data,
        start_brk: l.start_brk,
        brk: l.brk,
        start_stack: l.start_stack,
        arg_start: l.arg_start,
        arg_end: l.arg_end,
        env_start: l.env_start,
        env_end: l.env_end,
    }
}

fn proc_to_proto(p: &migration::Proc) -> ProcState {
    let mut out = ProcState {
        sas_sp: p.sas_sp,
        sas_size: p.sas_size,
        sas_flags: p.sas_flags,
        personality: p.personality,
        timer_slack_ns: p.timer_slack_ns,
        pdeath_signal: p.pdeath_signal,
        flags: p.flags,
        dumpable: p.dumpable,
        robust_list: p.robust_list,
        clear_child_tid: p.clear_child_tid,
        rseq: p.rseq,
        rseq_len: p.rseq_len,
        rseq_sig: p.rseq_sig,
        monotonic_ns: p.monotonic_ns,
        boottime_ns: p.boottime_ns,
        restart: p.restart,
        restart_arg: p.restart_arg,
        restart_addr: p.restart_addr,
        restart_ns: p.restart_ns,
        ..ProcState::EMPTY
    };
    for (o, t) in out.itimers.iter_mut().zip(p.itimer.iter()) {
        *o = Itimer {
            value_ns: t.value_ns,
            interval_ns: t.interval_ns,
        };
    }
    for (o, l) in out.rlimits.iter_mut().zip(p.rlim.iter()) {
        *o = Rlimit {
            cur: l.cur,
            max: l.max,
        };
    }
    out
}

fn proc_from_proto(p: &ProcState) -> migration::Proc {
    let mut out = migration::Proc {
        sas_sp: p.sas_sp,
        sas_size: p.sas_size,
        sas_flags: p.sas_flags,
        personality: p.personality,
        timer_slack_ns: p.timer_slack_ns,
        pdeath_signal: p.pdeath_signal,
        flags: p.flags,
        dumpable: p.dumpable,
        robust_list: p.robust_list,
        clear_child_tid: p.clear_child_tid,
        rseq: p.rseq,
        rseq_len: p.rseq_len,
        rseq_sig: p.rseq_sig,
        monotonic_ns: p.monotonic_ns,
        boottime_ns: p.boottime_ns,
        restart: p.restart,
        restart_arg: p.restart_arg,
        restart_addr: p.restart_addr,
        restart_ns: p.restart_ns,
        ..Default::default()
    };
    for (o, t) in out.itimer.iter_mut().zip(p.itimers.iter()) {
        o.value_ns = t.value_ns;
        o.interval_ns = t.interval_ns;
    }
    for (o, l) in out.rlim.iter_mut().zip(p.rlimits.iter()) {
        o.cur = l.cur;
        o.max = l.max;
    }
    out
}

fn path_of(v: &migration::VmaDesc) -> &[u8] {
    let len = v.path.iter().position(|c| *c == 0).unwrap_or(v.path.len());
    &v.path[..len]
}

/// Packs the current task's state into a `MSG_MIGRATE` payload;
/// returns it and the pending signals it carries.
fn pack(
    dist: &Dist,
    visited: NodeSet,
    files: &[FileDesc],
    container: u32,
) -> Result<(KVVec<u8>, u64)> {
    // POSIX timers refuse the migration here, before anything moves.
    let mut proc = KBox::new(migration::Proc::default(), GFP_KERNEL)?;
    migration::proc_save(&mut proc)?;
    let mut sig = KBox::new(migration::Signals::default(), GFP_KERNEL)?;
    migration::signals_save(&mut sig);
    let mut queued = KVVec::new();
    migration::sigqueue_save(&mut queued)?;
    let mut sigq = KVVec::with_capacity(queued.len(), GFP_KERNEL | __GFP_NOWARN)?;
    for q in queued.iter() {
        sigq.push(
            QueuedSignal {
                signo: q.signo,
                shared: q.shared != 0,
                info: q.info,
            },
            GFP_KERNEL,
        )?;
    }
    drop(queued);
    let mut groups = KVVec::new();
    migration::groups_save(&mut groups)?;
    let mut exe = KVVec::from_elem(0u8, task_msg::MAX_EXE_PATH + 1, GFP_KERNEL)?;
    let exe_len = migration::exe_save(&mut exe);
    let mut layout = migration::MmLayout::default();
    let mut vmas = KVVec::new();
    migration::mm_describe(&mut layout, &mut vmas)?;
    let mut arch = KVVec::from_elem(0u8, migration::arch_state_size(), GFP_KERNEL)?;
    let arch_len = migration::arch_save(&mut arch)?;
    let sched = migration::sched_save();

    let mut head = KBox::new(MigrateHead::EMPTY, GFP_KERNEL)?;
    head.task = dist.id;
    head.tgid = dist.tgid;
    head.parent_pid = dist.parent_pid;
    head.from = me();
    head.visited = visited;
    head.comm = migration::comm();
    head.comm[15] = 0;
    head.signals = signals_to_proto(&sig);
    head.sched = Sched {
        policy: sched.policy,
        rt_priority: sched.rt_priority,
        nice: sched.nice,
    };
    head.creds = creds_to_proto(&migration::creds_save());
    head.layout = layout_to_proto(&layout);
    head.proc = proc_to_proto(&proc);
    head.container = container;
    let settings = manage::settings(kernel::current!());
    memory::count(dist);
    let mut counts = dist.counts.get();
    counts.migrations = counts.migrations.saturating_add(1);
    head.manage = Manage {
        flags: settings.flags & pcntl::SETTINGS,
        group: settings.group,
        age_ns: (manage::boottime_ns() as i64)
            .saturating_sub(dist.born_ns.load(Ordering::Relaxed))
            .max(0) as u64,
        counts,
    };

    let mut descs = KVVec::with_capacity(vmas.len(), GFP_KERNEL | __GFP_NOWARN)?;
    for v in vmas.iter() {
        let kind = match v.kind {
            migration::VMA_ANON => VmaKind::Anon,
            migration::VMA_FILE => VmaKind::File,
            migration::VMA_VDSO => VmaKind::Vdso,
            migration::VMA_VVAR => VmaKind::Vvar,
            migration::VMA_FILE_ANON => VmaKind::FileAnon,
            migration::VMA_SHARED => VmaKind::Shared,
            _ => return Err(cohort::errno::EOPNOTSUPP()),
        };
        descs.push(
            VmaDesc {
                start: v.start,
                end: v.end,
                flags: v.flags,
                pgoff: v.pgoff,
                kind,
                path: path_of(v),
                container: v.container,
                size: v.size,
            },
            GFP_KERNEL,
        )?;
    }
    let arch = arch.get(..arch_len).ok_or(EINVAL)?;
    let extra = MigrateExtra {
        exe: exe.get(..exe_len).unwrap_or(&[]),
        groups: &groups,
        sigq: &sigq,
        files,
    };
    let len = task_msg::migrate_len_with(&descs, arch.len(), &extra);
    if len > task_msg::MIGRATE_MAX_LEN
        || descs.len() > task_msg::MAX_VMAS
        || groups.len() > task_msg::MAX_GROUPS
        || sigq.len() > task_msg::MAX_SIGQUEUE
        || files.len() > crate::proto::files::MAX_FILES
    {
        // More state than one message carries: tens of thousands of
        // mappings of differently named files, more mappings than
        // MAX_VMAS (vm.max_map_count raised past 65536), or more open
        // files than MAX_FILES, say.
        return Err(E2BIG);
    }
    let mut buf = KVVec::from_elem(0u8, len, GFP_KERNEL | __GFP_NOWARN)?;
    let n = match task_msg::encode_migrate_with(&mut buf, &head, &descs, arch, &extra) {
        Ok(n) => n,
        Err(e) => {
            // Real kernel state always passes: say what did not.
            pr_warn!(
                "task {}:{}: cannot encode its state ({:?}; head {:?})\n",
                dist.id.origin.0,
                dist.id.pid,
                e,
                head.validate()
            );
            for v in descs.iter().filter(|v| v.validate().is_err()) {
                pr_warn!(
                    "  mapping {:#x}-{:#x} flags {:#x} refused\n",
                    v.start,
                    v.end,
                    v.flags
                );
            }
            return Err(cohort::errno::EOPNOTSUPP());
        }
    };
    kvec::truncate(&mut buf, n);
    Ok((buf, sig.pending))
}

/// Loads the state in a `MSG_MIGRATE` payload into the current task:
/// `fresh` for a task just created, else a shadow coming back to life.
fn load(bytes: &[u8], fresh: bool) -> Result<KBox<MigrateHead>> {
    let mut head = KBox::new(MigrateHead::EMPTY, GFP_KERNEL)?;
    let body = task_msg::decode_migrate_into(bytes, &mut head).map_err(|_| EPROTO_())?;
    let mut vmas = KVVec::with_capacity(body.nr_vmas(), GFP_KERNEL | __GFP_NOWARN)?;
    for v in body.vmas() {
        let mut desc = migration::VmaDesc {
            start: v.start,
            end: v.end,
            flags: v.flags,
            pgoff: v.pgoff,
            kind: match v.kind {
                VmaKind::Anon => migration::VMA_ANON,
                VmaKind::File => migration::VMA_FILE,
                VmaKind::Vdso => migration::VMA_VDSO,
                VmaKind::Vvar => migration::VMA_VVAR,
                VmaKind::FileAnon => migration::VMA_FILE_ANON,
                VmaKind::Shared => migration::VMA_SHARED,
            },
            container: v.container,
            size: v.size,
            path: [0; migration::VMA_PATH_MAX],
        };
        let path = desc.path.get_mut(..v.path.len()).ok_or(EINVAL)?;
        path.copy_from_slice(v.path);
        vmas.push(desc, GFP_KERNEL)?;
    }
    migration::mm_install(&layout_from_proto(&head.layout), &vmas, fresh)?;
    drop(vmas);
    if fresh && !body.exe().is_empty() {
        let mut path = KVec::with_capacity(body.exe().len() + 1, GFP_KERNEL)?;
        path.extend_from_slice(body.exe(), GFP_KERNEL)?;
        path.push(0, GFP_KERNEL)?;
        migration::exe_load(CStr::from_bytes_with_nul(&path).map_err(|_| EINVAL)?)?;
    }
    if !fresh {
        migration::creds_load(&creds_from_proto(&head.creds))?;
    }
    let mut groups = KVVec::with_capacity(body.nr_groups(), GFP_KERNEL | __GFP_NOWARN)?;
    for g in body.groups() {
        groups.push(g, GFP_KERNEL)?;
    }
    migration::groups_load(&groups)?;
    drop(groups);
    let mut sig = KBox::new(migration::Signals::default(), GFP_KERNEL)?;
    signals_from_proto(&head.signals, &mut sig);
    migration::signals_load(&sig);
    let mut sigq = KVVec::with_capacity(body.nr_sigq(), GFP_KERNEL | __GFP_NOWARN)?;
    for q in body.sigq() {
        sigq.push(
            migration::SigQueued {
                signo: q.signo,
                shared: u32::from(q.shared),
                info: q.info,
            },
            GFP_KERNEL,
        )?;
    }
    migration::sigqueue_load(&sigq, head.signals.pending);
    drop(sigq);
    migration::sched_load(&migration::Sched {
        policy: head.sched.policy,
        rt_priority: head.sched.rt_priority,
        nice: head.sched.nice,
    })?;
    migration::set_comm(&head.comm);
    manage::update(
        kernel::current!(),
        manage::SETTINGS,
        head.manage.flags,
        Some(head.manage.group),
    )?;
    migration::arch_load(body.arch())?;
    // It arms the timers and sets the clocks' offsets.
    migration::proc_load(&proc_from_proto(&head.proc))?;
    // Last: a failure after this would leave the files installed.
    crate::files::install(body.files(), head.from)?;
    Ok(head)
}

#[allow(non_snake_case)]
fn EPROTO_() -> Error {
    cohort::errno::EPROTO()
}

/// The current task leaves for `dest`; on success it is a shadow now.
fn leave(reg: &Registry, dest: NodeId) -> Result<Arc<Dist>> {
    let task = kernel::current!();
    if migration::fatal_signal_pending() {
        return Err(EINTR);
    }
    // Asked for earlier: it may have become traced, or started an exec.
    manage::refusal(&task)?;
    if !migration::may_migrate(&task) {
        return Err(cohort::errno::EOPNOTSUPP());
    }
    // Checked when asked too; a table shared since keeps its locks.
    if migration::holds_posix_locks(&task) {
        return Err(cohort::errno::EOPNOTSUPP());
    }
    // A thread joined just before is still being released.
    migration::await_lone_thread(LONE_THREAD_MS)?;
    let dist = match reg.find_task(&task) {
        Some(dist) => dist,
        None => {
            let (pid, tgid) = migration::task_ids(&task);
            let id = TaskId {
                origin: me(),
                pid: pid as u32,
            };
            let dist = Dist::new(
                id,
                tgid as u32,
                migration::parent_tgid().max(0) as u32,
                ARef::from(&*task),
                Role::Running,
                NodeSet::single(me()),
            )?;
            let now = manage::boottime_ns();
            let born = (now as i64).saturating_sub(manage::age_ns(&task) as i64);
            dist.born_ns.store(born, Ordering::Relaxed);
            dist.arrived_ns.store(born.max(0) as u64, Ordering::Relaxed);
            reg.add(dist.clone())?;
            dist
        }
    };
    let visited = {
        let mut inner = dist.inner.lock();
        if inner.role != Role::Running || inner.leaving {
            return Err(EBUSY);
        }
        inner.leaving = true;
        inner.visited
    };
    // Its memory stays here, linked to a container the destination links
    // its copy of the address space to.
    let container = match memory::container_of(&dist) {
        Ok(container) => container,
        Err(e) => {
            dist.inner.lock().leaving = false;
            return Err(e);
        }
    };
    let files = match crate::files::describe(dest) {
        Ok(files) => files,
        Err(e) => {
            dist.inner.lock().leaving = false;
            return Err(e);
        }
    };
    let (buf, pending) = match pack(&dist, visited, &files, container) {
        Ok(packed) => packed,
        Err(e) => {
            crate::files::ungrant(&files, dest);
            dist.inner.lock().leaving = false;
            return Err(e);
        }
    };
    if let Err(e) = memory::left(&dist) {
        crate::files::ungrant(&files, dest);
        dist.inner.lock().leaving = false;
        return Err(e);
    }
    {
        let mut inner = dist.inner.lock();
        inner.role = Role::Shadow;
        inner.location = dest;
    }
    let result = send(&dist, dest, &buf);
    let mut inner = dist.inner.lock();
    inner.leaving = false;
    if let Err(e) = result {
        inner.role = Role::Running;
        inner.location = me();
        drop(inner);
        memory::stayed(&dist);
        // After a time-out the destination may have taken the holds; it
        // puts them back when its copy of the task ends.
        if e != cohort::errno::ETIMEDOUT() {
            crate::files::ungrant(&files, dest);
        }
        return Err(e);
    }
    inner.visited = visited.union(NodeSet::single(dest));
    drop(inner);
    // The counts went with the task; the shadow counts afresh.
    dist.counts.take();
    // The files are the destination's now (see `proto::files`): the shadow
    // keeps none, so a pipe closed there ends here. Its table keeps the
    // process's POSIX locks, which its proxies name (`files::serve`).
    if let Err(e) = kernel::cohort::files::leave_all() {
        pr_warn!(
            "task {}:{}: could not close its files on node {}: {:?}\n",
            dist.id.origin.0,
            dist.id.pid,
            me().0,
            e
        );
    }
    migration::forward(&task, false);
    migration::signals_shadow(pending);
    // The timers travelled: left armed here they would fire twice.
    migration::proc_shadow();
    if !dist.at_origin() {
        tell_moved(&dist, dest);
    }
    Ok(dist)
}

fn send(dist: &Dist, dest: NodeId, buf: &[u8]) -> Result {
    let mut reply = [0u8; MigrateReply::LEN];
    let node = u32::from(dest.0);
    match msg::request_nointr(
        node,
        task_msg::MSG_MIGRATE,
        buf,
        &mut reply,
        migrate_timeout_ms(buf.len()),
    ) {
        Ok(_) => Ok(()),
        Err(e) => {
            if e == cohort::errno::ETIMEDOUT() {
                // The task may have been created: end it there.
                let mut abort = [0u8; MigrateAbort::LEN];
                if (MigrateAbort { task: dist.id }).encode(&mut abort).is_ok() {
                    let _ = msg::send(node, task_msg::MSG_MIGRATE_ABORT, &abort);
                }
            }
            pr_info!(
                "task {}:{} stays on node {}: migration to node {} failed ({:?})\n",
                dist.id.origin.0,
                dist.id.pid,
                me().0,
                dest.0,
                e
            );
            Err(e)
        }
    }
}

fn tell_moved(dist: &Dist, node: NodeId) {
    let mut buf = [0u8; Moved::LEN];
    if (Moved {
        task: dist.id,
        node,
    })
    .encode(&mut buf)
    .is_ok()
    {
        let _ = msg::send(u32::from(dist.id.origin.0), task_msg::MSG_MOVED, &buf);
    }
}

/// Forwards a signal the shadow caught to where the task runs. With
/// `acked`, waits until that node has queued it (up to the peer time-out,
/// [`SIGNAL_ACK_TIMEOUT_MS`] at least).
fn forward_signal(dist: &Dist, signo: u32, acked: bool) {
    let location = dist.inner.lock().location;
    let mut buf = [0u8; Signal::LEN];
    if (Signal {
        task: dist.id,
        signo,
    })
    .encode(&mut buf)
    .is_err()
    {
        return;
    }
    let to = u32::from(location.0);
    if acked {
        let _ = msg::request_nointr(
            to,
            task_msg::MSG_SIGNAL,
            &buf,
            &mut [],
            crate::peer_timeout_ms(SIGNAL_ACK_TIMEOUT_MS),
        );
    } else {
        let _ = msg::send(to, task_msg::MSG_SIGNAL, &buf);
    }
}

/// Forwards the signals pending on the shadow; with `acked`, each one is
/// queued where the task runs when this returns (see [`forward_signal`]).
fn forward_signals(dist: &Dist, acked: bool) {
    while let Some(signo) = migration::signal_next() {
        forward_signal(dist, signo, acked);
    }
}

/// The life of a shadow: serve forwarded calls and signals until the task
/// comes back (then resume, in user space) or ends (then exit too).
fn shadow(reg: &Registry, dist: &Arc<Dist>) -> AfterWork {
    loop {
        if migration::fatal_signal_pending() {
            if dist.at_origin() {
                forward_signal(dist, SIGKILL, false);
            }
            reg.remove(dist.id);
            crate::files::shadow_ended();
            // The pending SIGKILL ends the task on its way out.
            return AfterWork::Resume;
        }
        forward_signals(dist, false);
        let event = {
            let mut inner = dist.inner.lock();
            match kvec::pop_front(&mut inner.events) {
                Some(event) => event,
                None => {
                    // A signal ends the wait; the loop's top forwards it.
                    let _signalled = dist.cond.wait_interruptible(&mut inner);
                    continue;
                }
            }
        };
        match event {
            Event::Syscall(reply, bytes) => serve(dist, &reply, &bytes),
            Event::Return(reply, bytes) => {
                if come_back(dist, &reply, &bytes) {
                    return AfterWork::Resume;
                }
            }
            Event::Exit(code) => {
                reg.remove(dist.id);
                crate::files::shadow_ended();
                memory::ended(dist, false);
                return AfterWork::Exit(if dist.at_origin() { code } else { 0 });
            }
            Event::Lost(node) => {
                pr_warn!(
                    "task {}:{}: node {} went down while the task ran there; ending its shadow on node {}\n",
                    dist.id.origin.0,
                    dist.id.pid,
                    node.0,
                    me().0
                );
                reg.remove(dist.id);
                crate::files::shadow_ended();
                // The process is gone: its pages go everywhere.
                memory::ended(dist, dist.at_origin());
                return AfterWork::Exit(i64::from(SIGKILL));
            }
        }
    }
}

/// The task comes back to its shadow here; true when it runs again.
fn come_back(dist: &Dist, reply: &ReplyTo, bytes: &[u8]) -> bool {
    match load(bytes, false) {
        Ok(head) => {
            let task = kernel::current!();
            let mut inner = dist.inner.lock();
            inner.role = Role::Running;
            inner.location = me();
            inner.visited = head.visited.union(NodeSet::single(me()));
            drop(inner);
            if let Err(e) = memory::came_back(dist, head.container) {
                pr_warn!(
                    "task {}:{}: its memory could not be linked on node {}: {:?}\n",
                    dist.id.origin.0,
                    dist.id.pid,
                    me().0,
                    e
                );
            }
            arrived(dist, &head, bytes.len());
            migration::forward(&task, !dist.at_origin());
            let mut buf = [0u8; MigrateReply::LEN];
            let pid = migration::task_ids(&task).0 as u32;
            if (MigrateReply { pid }).encode(&mut buf).is_ok() {
                let _ = reply.reply(&buf);
            }
            if !dist.at_origin() {
                tell_moved(dist, me());
            }
            true
        }
        Err(e) => {
            pr_warn!(
                "task {}:{} could not come back to node {}: {:?}\n",
                dist.id.origin.0,
                dist.id.pid,
                me().0,
                e
            );
            let _ = reply.reply_error(e);
            // The shadow's own state may be half replaced: it cannot run.
            false
        }
    }
}

/// Runs a forwarded system call in the shadow and answers it, and the
/// task's interruption of it if one waits (see `proto::fwd`).
fn serve(dist: &Dist, reply: &ReplyTo, bytes: &[u8]) {
    let Some(start) = dist.inner.lock().calls.start() else {
        return;
    };
    let answer = if start.run {
        let to = dist.inner.lock().location;
        answer_call(bytes, to)
    } else {
        // Interrupted before it started: it does not run, and the task's
        // node restarts it or ends it (`fwd::restart_error`).
        encode_answer(i64::from(ERESTARTSYS.to_errno()), &[])
    };
    let answer = Arc::new(answer, GFP_KERNEL).ok();
    // The signals that interrupted the call leave before its answer, and
    // are queued where the task runs before the answer leaves: kmsg hands
    // a reply to its waiter at once, but a message to its handler through
    // the node's dispatcher, where the answer would overtake them (the
    // task would then see `-ERESTART*` with no signal, `fwd::restart_error`).
    forward_signals(dist, true);
    send_answer(reply, answer.as_deref());
    let waiter = {
        let mut inner = dist.inner.lock();
        let finish = inner.calls.finish(start.seq);
        if finish.clear_kick {
            // Set under this lock, for this call only.
            migration::interrupt_clear();
        }
        inner.last_answer = answer.clone();
        if finish.answer_waiter {
            inner.intr_reply.take()
        } else {
            None
        }
    };
    if let Some(waiter) = waiter {
        send_answer(&waiter, answer.as_deref());
    }
}

/// Sends `answer` (`None`: it could not be allocated) to `reply`.
fn send_answer(reply: &ReplyTo, answer: Option<&Answer>) {
    let _ = match answer {
        Some(Ok(bytes)) => reply.reply(bytes),
        Some(Err(e)) => reply.reply_error(*e),
        None => reply.reply_error(ENOMEM),
    };
}

/// Runs a forwarded system call in the shadow; returns its answer.
fn answer_call(bytes: &[u8], to: NodeId) -> Answer {
    let call = SyscallMsg::decode(bytes).map_err(|_| EPROTO_())?;
    let mut data: KVVec<u8> = KVVec::new();
    let result = match run_call(&call, &mut data, to) {
        Ok(v) => v,
        Err(e) => {
            kvec::clear(&mut data);
            i64::from(e.to_errno())
        }
    };
    encode_answer(result, &data)
}

fn encode_answer(result: i64, data: &[u8]) -> Answer {
    let answer = SyscallReply { result, data };
    let mut buf = KVVec::from_elem(0u8, answer.encoded_len(), GFP_KERNEL)?;
    answer.encode(&mut buf).map_err(|_| EPROTO_())?;
    Ok(buf)
}

fn run_call(call: &SyscallMsg<'_>, data: &mut KVVec<u8>, to: NodeId) -> Result<i64> {
    use task_msg::FwdCall;
    match call.call {
        FwdCall::Wait4 => {
            let mut ru = [0u8; migration::RUSAGE_SIZE];
            let (pid, status) =
                migration::shadow_wait4(call.a as u32 as i32, call.b as i32, &mut ru)?;
            if pid > 0 {
                data.extend_from_slice(&status.to_le_bytes(), GFP_KERNEL)?;
                data.extend_from_slice(&ru, GFP_KERNEL)?;
            }
            Ok(i64::from(pid))
        }
        FwdCall::Kill => migration::kill_pid(call.a as u32 as i32, call.b as i32).map(|_| 0),
        FwdCall::Tgkill => migration::tgkill(call.fd, call.a as i32, call.b as i32).map(|_| 0),
        FwdCall::Getpgid => migration::getpgid(call.a as i32, false).map(i64::from),
        FwdCall::Getsid => migration::getpgid(call.a as i32, true).map(i64::from),
        FwdCall::Path => run_path_call(call.data, data),
        FwdCall::Open => {
            let mut path = KVec::with_capacity(call.data.len() + 1, GFP_KERNEL)?;
            path.extend_from_slice(call.data, GFP_KERNEL)?;
            path.push(0, GFP_KERNEL)?;
            let path = CStr::from_bytes_with_nul(&path).map_err(|_| EINVAL)?;
            let desc = crate::files::open_for(path, call.a as i32, call.b as u32, to)?;
            let mut raw = [0u8; FileDesc::LEN];
            desc.encode(&mut raw).map_err(|_| EINVAL)?;
            data.extend_from_slice(&raw, GFP_KERNEL)?;
            Ok(0)
        }
    }
}

/// Runs a forwarded path call in the shadow: its inputs go into a scratch
/// area of the shadow's address space, the call runs with its arguments
/// pointing there, and its outputs come back in `data`, in argument order.
fn run_path_call(bytes: &[u8], data: &mut KVVec<u8>) -> Result<i64> {
    use crate::proto::pathcall::{self, Arg, PathCall};
    use kernel::uaccess::UserSlice;

    let call = PathCall::decode(bytes).map_err(|_| EPROTO_())?;
    let shape = pathcall::shape(call.nr).ok_or(EINVAL)?;
    let mut need = 0usize;
    for (i, arg) in shape.iter().enumerate() {
        need += match arg {
            Arg::Path => call.inputs[i].len() + 1,
            Arg::InOpt(_) => call.inputs[i].len(),
            _ => pathcall::out_len(&shape, &call.values, i).unwrap_or(0),
        };
    }
    let scratch = migration::Scratch::new(need)?;
    let mut args = call.values;
    let mut at = scratch.addr();
    let mut outs: KVec<(usize, usize)> = KVec::new();
    for (i, arg) in shape.iter().enumerate() {
        match arg {
            Arg::Path => {
                let input = call.inputs[i];
                let mut w = UserSlice::new(at, input.len() + 1).writer();
                w.write_slice(input)?;
                w.write_slice(&[0])?;
                args[i] = at as u64;
                at += input.len() + 1;
            }
            Arg::InOpt(_) if !call.inputs[i].is_empty() => {
                let input = call.inputs[i];
                UserSlice::new(at, input.len())
                    .writer()
                    .write_slice(input)?;
                args[i] = at as u64;
                at += input.len();
            }
            Arg::InOpt(_) => args[i] = 0,
            Arg::Out(_) | Arg::OutLen(_) => {
                let len = pathcall::out_len(&shape, &call.values, i).unwrap_or(0);
                outs.push((at, len), GFP_KERNEL)?;
                args[i] = at as u64;
                at += len;
            }
            _ => {}
        }
    }
    let result = migration::run_syscall(call.nr, &args);
    if result >= 0 {
        for (addr, len) in outs.iter() {
            let start = data.len();
            data.extend_with(*len, 0, GFP_KERNEL)?;
            UserSlice::new(*addr, *len)
                .reader()
                .read_slice(&mut data[start..])?;
        }
    }
    drop(scratch);
    Ok(result)
}

/// A task arriving on a node it has no shadow on, run in the new task.
struct Arrival {
    bytes: KVVec<u8>,
    reply: ReplyTo,
}

impl TaskWork for Arrival {
    fn run(this: Arc<Self>, exiting: bool) -> AfterWork {
        if exiting {
            let _ = this.reply.reply_error(EAGAIN);
            return AfterWork::Resume;
        }
        match arrive(&this.bytes) {
            Ok(pid) => {
                let mut buf = [0u8; MigrateReply::LEN];
                if (MigrateReply { pid }).encode(&mut buf).is_ok() {
                    let _ = this.reply.reply(&buf);
                }
                AfterWork::Resume
            }
            Err(e) => {
                pr_warn!("could not receive a task on node {}: {:?}\n", me().0, e);
                let _ = this.reply.reply_error(e);
                // It has no program of its own: end it.
                AfterWork::Exit(i64::from(SIGKILL))
            }
        }
    }
}

/// The task arrived here with `head`, in a message of `len` bytes: it
/// brings what its other nodes counted.
fn arrived(dist: &Dist, head: &MigrateHead, len: usize) {
    dist.counts.add(&head.manage.counts);
    dist.counts.moved(len);
    dist.arrived_ns
        .store(manage::boottime_ns(), Ordering::Relaxed);
}

fn arrive(bytes: &[u8]) -> Result<u32> {
    let reg = STATE.get().ok_or_else(ESHUTDOWN_)?;
    let head = load(bytes, true)?;
    let task = kernel::current!();
    let dist = Dist::new(
        head.task,
        head.tgid,
        head.parent_pid,
        ARef::from(&*task),
        Role::Running,
        head.visited.union(NodeSet::single(me())),
    )?;
    memory::arrived(&dist, head.container)?;
    arrived(&dist, &head, bytes.len());
    let now = manage::boottime_ns() as i64;
    dist.born_ns.store(
        now.saturating_sub(head.manage.age_ns as i64),
        Ordering::Relaxed,
    );
    reg.add(dist)?;
    migration::forward(&task, true);
    Ok(migration::task_ids(&task).0 as u32)
}

/// `MSG_MIGRATE`: a task arrives.
pub(crate) struct MigrateHandler;

impl MsgHandler for MigrateHandler {
    const TYPE: u16 = task_msg::MSG_MIGRATE;

    fn handle(msg: &Message) {
        let reply = msg.reply_to();
        let answer = |e: Error| {
            let _ = reply.reply_error(e);
        };
        let Some(reg) = STATE.get() else {
            return answer(ESHUTDOWN_());
        };
        let Ok(mut head) = KBox::new(MigrateHead::EMPTY, GFP_KERNEL) else {
            return answer(ENOMEM);
        };
        if task_msg::decode_migrate_into(msg.data(), &mut head).is_err() {
            return answer(EPROTO_());
        }
        let Ok(mut bytes) = KVVec::with_capacity(msg.data().len(), GFP_KERNEL | __GFP_NOWARN)
        else {
            return answer(ENOMEM);
        };
        if bytes.extend_from_slice(msg.data(), GFP_KERNEL).is_err() {
            return answer(ENOMEM);
        }
        if let Some(dist) = reg.find(head.task) {
            if dist.inner.lock().role != Role::Shadow {
                return answer(EBUSY);
            }
            if dist.post(Event::Return(reply, bytes)).is_err() {
                answer(ENOMEM);
            }
            return;
        }
        // The node's admission policy, before anything is created here. A
        // process coming back to its shadow is always taken back (a group
        // moved back after a failure, a process going home).
        let refused = manage::admission(head.creds.uid);
        if refused != 0 {
            pr_info!(
                "refusing task {}:{} (uid {}) from node {}: {}\n",
                head.task.origin.0,
                head.task.pid,
                head.creds.uid,
                msg.src(),
                crate::manage::refusal_reason(refused)
            );
            return answer(cohort::errno::ECONNREFUSED());
        }
        let creds = creds_from_proto(&head.creds);
        let Ok(arrival) = Arc::new(Arrival { bytes, reply }, GFP_KERNEL) else {
            return answer(ENOMEM);
        };
        // On failure the arrival answers (it runs with `exiting`).
        let _ = migration::spawn(&crate::THIS_MODULE, &creds, arrival);
    }
}

/// `MSG_MIGRATE_ABORT`: the sender gave up on a migration here.
pub(crate) struct AbortHandler;

impl MsgHandler for AbortHandler {
    const TYPE: u16 = task_msg::MSG_MIGRATE_ABORT;

    fn handle(msg: &Message) {
        let (Some(reg), Ok(abort)) = (STATE.get(), MigrateAbort::decode(msg.data())) else {
            return;
        };
        if let Some(dist) = reg.find(abort.task) {
            if dist.inner.lock().role == Role::Running {
                dist::kill_local(&dist, "its migration was aborted by the sender");
                reg.remove(abort.task);
            }
        }
    }
}

/// `MSG_MOVED`: where a task runs now (to its origin).
pub(crate) struct MovedHandler;

impl MsgHandler for MovedHandler {
    const TYPE: u16 = task_msg::MSG_MOVED;

    fn handle(msg: &Message) {
        let (Some(reg), Ok(moved)) = (STATE.get(), Moved::decode(msg.data())) else {
            return;
        };
        if let Some(dist) = reg.find(moved.task) {
            let mut inner = dist.inner.lock();
            if inner.role == Role::Shadow {
                inner.location = moved.node;
                inner.visited = inner.visited.union(NodeSet::single(moved.node));
            }
        }
    }
}

/// `MSG_EXIT`: the task ended; so do its shadows.
pub(crate) struct ExitHandler;

impl MsgHandler for ExitHandler {
    const TYPE: u16 = task_msg::MSG_EXIT;

    fn handle(msg: &Message) {
        let (Some(reg), Ok(exit)) = (STATE.get(), task_msg::Exit::decode(msg.data())) else {
            return;
        };
        if let Some(dist) = reg.find(exit.task) {
            if dist.inner.lock().role == Role::Shadow {
                let _ = dist.post(Event::Exit(exit.code));
            }
        }
    }
}

/// Delivers the signal of a `MSG_SIGNAL` to its task, or forwards it to
/// where the task went on to.
fn deliver_signal(msg: &Message) {
    let (Some(reg), Ok(signal)) = (STATE.get(), Signal::decode(msg.data())) else {
        return;
    };
    let Some(dist) = reg.find(signal.task) else {
        return;
    };
    let (role, task, location) = {
        let inner = dist.inner.lock();
        (inner.role, dist.task.clone(), inner.location)
    };
    match role {
        Role::Running => migration::kill(&task, signal.signo),
        Role::Shadow if u32::from(location.0) != msg.src() => {
            forward_signal(&dist, signal.signo, false)
        }
        Role::Shadow => {}
    }
}

/// `MSG_SIGNAL`: a signal for a task, delivered where it runs; a request
/// is answered (empty) once the signal is queued.
pub(crate) struct SignalHandler;

impl MsgHandler for SignalHandler {
    const TYPE: u16 = task_msg::MSG_SIGNAL;

    fn handle(msg: &Message) {
        deliver_signal(msg);
        // A shadow that waits for the answer (`forward_signal`, `acked`):
        // the signal is queued, or was for no task here.
        if msg.is_request() {
            let _ = msg.reply(&[]);
        }
    }
}

/// `MSG_SYSCALL`: a forwarded system call, for the shadow at the origin.
pub(crate) struct SyscallHandler;

impl MsgHandler for SyscallHandler {
    const TYPE: u16 = task_msg::MSG_SYSCALL;

    fn handle(msg: &Message) {
        let reply = msg.reply_to();
        let Some(reg) = STATE.get() else {
            let _ = reply.reply_error(ESHUTDOWN_());
            return;
        };
        let Ok(call) = SyscallMsg::decode(msg.data()) else {
            let _ = reply.reply_error(EPROTO_());
            return;
        };
        let dist = match reg.find(call.task) {
            Some(dist) if dist.inner.lock().role == Role::Shadow => dist,
            _ => {
                let _ = reply.reply_error(ESRCH);
                return;
            }
        };
        let mut bytes = KVVec::new();
        if bytes.extend_from_slice(msg.data(), GFP_KERNEL).is_err()
            || dist.post(Event::Syscall(reply, bytes)).is_err()
        {
            let _ = reply.reply_error(ENOMEM);
        }
    }
}

/// `MSG_SYSCALL_INTR`: a signal interrupted the task's wait for a forwarded
/// call; its answer is the call's (see `proto::fwd`).
pub(crate) struct SyscallIntrHandler;

impl MsgHandler for SyscallIntrHandler {
    const TYPE: u16 = task_msg::MSG_SYSCALL_INTR;

    fn handle(msg: &Message) {
        let reply = msg.reply_to();
        let (Some(reg), Ok(intr)) = (STATE.get(), SyscallIntr::decode(msg.data())) else {
            let _ = reply.reply_error(EINVAL);
            return;
        };
        let Some(dist) = reg.find(intr.task) else {
            let _ = reply.reply_error(ESRCH);
            return;
        };
        let last = {
            let mut inner = dist.inner.lock();
            if inner.role != Role::Shadow {
                drop(inner);
                let _ = reply.reply_error(ESRCH);
                return;
            }
            match inner.calls.interrupt() {
                Interrupt::AnswerLast => inner.last_answer.clone(),
                Interrupt::Hold => {
                    inner.intr_reply = Some(reply);
                    return;
                }
                Interrupt::Kick => {
                    inner.intr_reply = Some(reply);
                    // Under the lock: the shadow clears it when it ends
                    // this very call (`serve`).
                    migration::interrupt(&dist.task);
                    return;
                }
            }
        };
        match last {
            Some(answer) => send_answer(&reply, Some(&answer)),
            None => {
                let _ = reply.reply_error(EINTR);
            }
        }
    }
}

/// `MSG_MIGRATE_REQ`: migrate a task that runs here, for pcntl(2) elsewhere.
pub(crate) struct MigrateReqHandler;

impl MsgHandler for MigrateReqHandler {
    const TYPE: u16 = task_msg::MSG_MIGRATE_REQ;

    fn handle(msg: &Message) {
        let reply = msg.reply_to();
        let (Some(reg), Ok(req)) = (STATE.get(), MigrateReq::decode(msg.data())) else {
            let _ = reply.reply_error(EINVAL);
            return;
        };
        let result = (|| -> Result {
            let dist = reg.find(req.task).ok_or(ESRCH)?;
            let (role, task, location) = {
                let inner = dist.inner.lock();
                (inner.role, dist.task.clone(), inner.location)
            };
            if role != Role::Running {
                // It moved on meanwhile: say where to, and the asker asks
                // there (a dispatcher never waits on another node here).
                let mut out = [0u8; MigrateReq::LEN];
                MigrateReq {
                    task: req.task,
                    dest: location,
                }
                .encode(&mut out)
                .map_err(|_| EINVAL)?;
                return reply.reply(&out);
            }
            if req.dest == me() {
                return reply.reply(&[]);
            }
            start_for(&reg, task, req.dest, reply)
        })();
        if let Err(e) = result {
            let _ = reply.reply_error(e);
        }
    }
}

/// Starts migrating `task`, which runs here, to `dest` for another node;
/// `reply` gets the outcome once it runs there.
pub(crate) fn start_for(reg: &Registry, task: ARef<Task>, dest: NodeId, reply: ReplyTo) -> Result {
    reg.start_migration(&task)?;
    Leave::new(task.clone(), dest, false, Some(reply))
        .and_then(|leave| migration::queue_work(&crate::THIS_MODULE, &task, leave, true))
        .inspect_err(|_| reg.end_migration(&task))
}

/// Most nodes a migration request follows a task through.
const MAX_REDIRECTS: usize = 8;

/// Migrates a task that runs on another node: asks the node it runs on,
/// following it if it moved on meanwhile.
fn migrate_remote(dist: &Dist, mut location: NodeId, dest: NodeId) -> Result<isize> {
    let mut req = [0u8; MigrateReq::LEN];
    MigrateReq {
        task: dist.id,
        dest,
    }
    .encode(&mut req)
    .map_err(|_| EINVAL)?;
    for _ in 0..MAX_REDIRECTS {
        if location == dest {
            return Ok(0);
        }
        let mut out = [0u8; MigrateReq::LEN];
        let n = msg::request(
            u32::from(location.0),
            task_msg::MSG_MIGRATE_REQ,
            &req,
            &mut out,
            MIGRATE_TIMEOUT_MS * 2,
        )?;
        if n == 0 {
            // Done: it runs on `dest` (its MSG_MOVED may still be on its way).
            let mut inner = dist.inner.lock();
            if inner.role == Role::Shadow {
                inner.location = dest;
                inner.visited = inner.visited.union(NodeSet::single(dest));
            }
            return Ok(0);
        }
        let moved = MigrateReq::decode(out.get(..n).ok_or(EINVAL)?).map_err(|_| EPROTO_())?;
        location = moved.dest;
    }
    Err(EAGAIN)
}

/// pcntl(2) `PCNTL_MIGRATE` of `task` (the caller when `own`) to `dest`.
pub(crate) fn migrate(reg: &Registry, task: ARef<Task>, own: bool, dest: NodeId) -> Result<isize> {
    if let Some(dist) = reg.find_task(&task) {
        let (role, location) = {
            let inner = dist.inner.lock();
            if inner.leaving {
                return Err(EBUSY);
            }
            (inner.role, inner.location)
        };
        if role == Role::Shadow {
            return migrate_remote(&dist, location, dest);
        }
    }
    if dest == me() {
        return Ok(0);
    }
    if !migration::may_migrate(&task) || migration::holds_posix_locks(&task) {
        return Err(cohort::errno::EOPNOTSUPP());
    }
    reg.start_migration(&task)?;
    let leave = match Leave::new(task.clone(), dest, own, None) {
        Ok(leave) => leave,
        Err(e) => {
            reg.end_migration(&task);
            return Err(e);
        }
    };
    if let Err(e) = migration::queue_work(&crate::THIS_MODULE, &task, leave.clone(), !own) {
        reg.end_migration(&task);
        return Err(if e == ENOMEM { EAGAIN } else { e });
    }
    if own {
        // The caller leaves on its way out of this call.
        return Ok(0);
    }
    leave.wait(MIGRATE_TIMEOUT_MS + 5_000)?;
    Ok(0)
}

/// The task ended here: tell every node it visited.
pub(crate) fn exited(reg: &Registry, task: &Task, code: i64) {
    if reg.is_empty() {
        return;
    }
    let Some(dist) = reg.find_task(task) else {
        return;
    };
    let (role, visited) = {
        let inner = dist.inner.lock();
        (inner.role, inner.visited)
    };
    reg.remove(dist.id);
    memory::ended(&dist, role == Role::Running);
    if role != Role::Running {
        return;
    }
    let mut buf = [0u8; task_msg::Exit::LEN];
    if (task_msg::Exit {
        task: dist.id,
        code,
    })
    .encode(&mut buf)
    .is_err()
    {
        return;
    }
    for node in visited.iter() {
        if node != me() {
            let _ = msg::send(u32::from(node.0), task_msg::MSG_EXIT, &buf);
        }
    }
}

/// Node `node` went down: shadows of tasks that ran there end, tasks that
/// came from there are killed.
pub(crate) fn node_down(reg: &Registry, node: NodeId) {
    reg.for_each(|dist| {
        let (role, location) = {
            let inner = dist.inner.lock();
            (inner.role, inner.location)
        };
        if role == Role::Shadow && location == node {
            let _ = dist.post(Event::Lost(node));
        } else if role == Role::Running && dist.id.origin == node {
            dist::kill_local(dist, "its origin node went down");
        }
    });
}
