// SPDX-License-Identifier: GPL-2.0
//! The simulated cluster: nodes running the proto state machines, FIFO
//! channels with random delays, threads running a seeded random workload,
//! a reference model and the checks run at every step.

use crate::events::Queue;
use crate::failure::Seeded;
use crate::rng::Rng;
use crate::stats::Stats;
use crate::table::{Actions, MapTable};
use cohort_proto::container::{
    home_of, Access, Backing, ContainerNode, Lookup, PageAction, PageId, PageMsg, PageRange,
    PageRecord,
};
use cohort_proto::error::Error;
use cohort_proto::lamport::{
    Algorithm, LockAction, LockKey, LockMsg, LockSpace, Ticket, Timestamp,
};
use cohort_proto::migration::{
    GroupId, GroupRecord, MmSource, TaskAction, TaskId, TaskMsg, TaskNode, TaskRecord,
};
use cohort_proto::node::{NodeId, NodeSet};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fmt::Write as _;

/// Slots of each node's lock space.
pub const LOCK_SLOTS: usize = 1024;
/// Events kept for the trace of a failing run.
const TRACE_LEN: usize = 100000;
/// Longest an operation may take before the run fails (simulated ticks).
const OP_DEADLINE: u64 = 400_000;

/// Which address-space locking protocol the run uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// As the Popcorn thesis specifies: Lamport among all nodes, every fault
    /// that misses takes the page lock and asks every node for the mapping.
    Lamport,
    /// Cohort: Ricart-Agrawala among the nodes hosting the group, the
    /// mapping is fetched only when the node does not know it, page
    /// contents come from containers.
    Cohort,
}

/// Parameters of one run.
#[derive(Clone, Debug)]
pub struct Config {
    /// Seed of every random choice.
    pub seed: u64,
    /// Number of nodes, 2..=16 (up to 64 works).
    pub nodes: usize,
    /// Protocol.
    pub mode: Mode,
    /// Threads created at start (on node 0).
    pub threads: usize,
    /// Most threads alive at once (clones stop there).
    pub max_threads: usize,
    /// Operations each thread runs before exiting.
    pub ops_per_thread: u32,
    /// Virtual pages of the address space.
    pub pages: u64,
    /// Largest message delay, in ticks.
    pub max_delay: u64,
    /// Threads only migrate among nodes `0..hosts`.
    pub hosts: usize,
    /// Percent of operations that are mmap/munmap/mprotect.
    pub layout_percent: u64,
    /// Percent of operations that are migrations.
    pub migrate_percent: u64,
    /// Whether nodes flush (inject) pages at random.
    pub flush: bool,
}

impl Config {
    /// The workload used by the tests and the seed sweeps, derived from `seed`.
    pub fn random(seed: u64, nodes: usize, mode: Mode) -> Config {
        let mut rng = Rng::new(seed ^ 0x5eed_cafe);
        let threads = rng.range(1, 4) as usize;
        Config {
            seed,
            nodes,
            mode,
            threads,
            max_threads: threads + rng.range(0, 3) as usize,
            ops_per_thread: rng.range(5, 25) as u32,
            pages: rng.range(2, 12),
            max_delay: rng.range(1, 30),
            hosts: rng.range(2, nodes as u64) as usize,
            layout_percent: rng.range(0, 20),
            migrate_percent: rng.range(2, 25),
            flush: rng.chance(50),
        }
    }
}

/// A failed check: the message and the events that led to it.
pub type Failure = crate::failure::Failure<Config>;

impl Seeded for Config {
    fn seed(&self) -> u64 {
        self.seed
    }
}

type Result<T> = std::result::Result<T, Box<Failure>>;

/// A mapping of one virtual page, as a node's address space knows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mapping {
    /// Container backing the page (a new one per mmap).
    pub container: u32,
    /// Whether the page may be written.
    pub writable: bool,
}

/// A change of the layout sent to the other nodes under the heavy lock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LayoutOp {
    /// Remove the mappings of `start..start+len`.
    Unmap {
        /// First page.
        start: u64,
        /// Number of pages.
        len: u64,
    },
    /// Change the protection of the mapped pages of `start..start+len`.
    Protect {
        /// First page.
        start: u64,
        /// Number of pages.
        len: u64,
        /// New protection.
        writable: bool,
    },
}

/// What travels between two nodes.
#[derive(Clone, Copy, Debug)]
pub enum Payload {
    /// Lock protocol.
    Lock(LockMsg),
    /// Container protocol, with the page contents for data messages.
    Page(PageMsg, Option<u64>),
    /// Migration protocol, with the lock members for a migration.
    Task(TaskMsg, NodeSet),
    /// Mapping query of a fault (thread index).
    Query(u64, usize),
    /// Answer to a query.
    QueryReply(usize, Option<Mapping>),
    /// Layout change under the heavy lock.
    Layout(LayoutOp, usize),
    /// Layout change applied.
    LayoutAck(usize),
}

#[derive(Clone, Copy, Debug)]
struct Message {
    from: NodeId,
    to: NodeId,
    payload: Payload,
}

#[derive(Clone, Copy, Debug)]
enum Event {
    Deliver(Message),
    Wake(usize),
    Flush(NodeId),
    /// A thread retries the releases its node could not start.
    ReleaseRetry(usize),
}

/// One operation of a thread.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// Read or write one page.
    Access {
        /// Virtual page.
        vpn: u64,
        /// Whether it is a write.
        write: bool,
    },
    /// Map `len` new pages at `start`.
    Mmap {
        /// First page.
        start: u64,
        /// Number of pages.
        len: u64,
        /// Protection.
        writable: bool,
    },
    /// Unmap pages.
    Munmap {
        /// First page.
        start: u64,
        /// Number of pages.
        len: u64,
    },
    /// Change protection.
    Mprotect {
        /// First page.
        start: u64,
        /// Number of pages.
        len: u64,
        /// New protection.
        writable: bool,
    },
    /// `MADV_DONTNEED`: release the pages (they read as zero afterwards).
    Madvise {
        /// First page.
        start: u64,
        /// Number of pages.
        len: u64,
    },
    /// Move to another node.
    Migrate(NodeId),
    /// Create a thread on this node.
    Clone,
    /// Exit.
    Exit,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ThreadState {
    Idle,
    Locking(Ticket),
    Querying {
        ticket: Ticket,
        awaiting: NodeSet,
        found: Option<Mapping>,
    },
    Paging(PageId),
    Heavy {
        ticket: Ticket,
        awaiting: NodeSet,
    },
    Migrating,
    Joining,
    CloneWait,
    /// Waiting for this many container releases to complete.
    Releasing(usize),
    Exited,
}

#[derive(Clone, Debug)]
struct Thread {
    task: TaskId,
    node: NodeId,
    state: ThreadState,
    op: Option<Op>,
    ops_left: u32,
    op_started: u64,
    faulted: bool,
    fetched: bool,
    parent: Option<usize>,
    /// Container ranges to release once the layout change is done.
    release_plan: Vec<PageRange>,
}

struct Node {
    lock: Option<Box<LockSpace<LOCK_SLOTS>>>,
    container: ContainerNode<MapTable<PageId, PageRecord>>,
    tasks: TaskNode<MapTable<TaskId, TaskRecord>, MapTable<GroupId, GroupRecord>>,
    view: Option<BTreeMap<u64, Mapping>>,
    saved: bool,
    copies: BTreeMap<PageId, u64>,
    /// The home's memory: pages of containers homed here not yet adopted.
    backing: BTreeMap<PageId, u64>,
}

/// A node's [`Backing`]: its memory of the containers homed there.
pub struct Held<'a>(pub &'a BTreeMap<PageId, u64>);

impl Backing for Held<'_> {
    fn holds(&self, page: PageId) -> bool {
        self.0.contains_key(&page)
    }
}

/// The reference model: the layout and memory of a sequentially consistent
/// machine, updated at each operation's linearisation point.
#[derive(Default)]
struct Reference {
    layout: BTreeMap<u64, Mapping>,
    /// A heavy operation in progress: the mappings it installs.
    pending: Option<BTreeMap<u64, Option<Mapping>>>,
    values: HashMap<PageId, u64>,
}

impl Reference {
    /// Whether a node may know `m` for `vpn` now.
    fn allows(&self, vpn: u64, m: Mapping) -> bool {
        if self.layout.get(&vpn) == Some(&m) {
            return true;
        }
        matches!(&self.pending, Some(p) if p.get(&vpn) == Some(&Some(m)))
    }
}

#[derive(Clone, Copy, Debug)]
enum TraceKind {
    Deliver(Message),
    Start(usize, Op),
    Done(usize),
    Flush(NodeId, PageId),
}

/// The whole simulated cluster.
pub struct World {
    cfg: Config,
    rng: Rng,
    now: u64,
    queue: Queue<Event>,
    chan_last: Vec<u64>,
    nodes: Vec<Node>,
    threads: Vec<Thread>,
    group: GroupId,
    reference: Reference,
    holders: Vec<(NodeId, Ticket, LockKey)>,
    ts_keys: HashMap<Timestamp, LockKey>,
    next_container: u16,
    next_value: u64,
    next_pid: u32,
    /// Releases in progress: (origin, id) to the waiting thread.
    releases: HashMap<(NodeId, u32), usize>,
    trace: VecDeque<(u64, TraceKind)>,
    /// Message and operation counts.
    pub stats: Stats,
}

fn nid(i: usize) -> NodeId {
    NodeId(i as u8)
}

impl World {
    /// Builds the cluster of `cfg`: node 0 runs the group's first threads
    /// over an address space of `cfg.pages` writable pages.
    pub fn new(cfg: Config) -> Result<World> {
        let n = cfg.nodes;
        let group = GroupId {
            origin: NodeId(0),
            tgid: 1,
        };
        let mut world = World {
            rng: Rng::new(cfg.seed),
            now: 0,
            queue: Queue::default(),
            chan_last: vec![0; n * n],
            nodes: Vec::new(),
            threads: Vec::new(),
            group,
            reference: Reference::default(),
            holders: Vec::new(),
            ts_keys: HashMap::new(),
            next_container: 2,
            next_value: 1,
            next_pid: 1,
            releases: HashMap::new(),
            trace: VecDeque::new(),
            stats: Stats::new(n),
            cfg,
        };
        let all = NodeSet::first(n);
        let per_node = LOCK_SLOTS / n;
        for i in 0..n {
            let me = nid(i);
            let lock = match world.cfg.mode {
                Mode::Lamport => Some(Box::new(
                    LockSpace::new(me, Algorithm::Lamport, all, n, per_node)
                        .map_err(|e| world.failure(format!("lock space: {e:?}")))?,
                )),
                Mode::Cohort if i == 0 => Some(Box::new(
                    LockSpace::new(
                        me,
                        Algorithm::RicartAgrawala,
                        NodeSet::single(me),
                        n,
                        per_node,
                    )
                    .map_err(|e| world.failure(format!("lock space: {e:?}")))?,
                )),
                Mode::Cohort => None,
            };
            let container = ContainerNode::new(me, n, MapTable::new(None))
                .map_err(|e| world.failure(format!("container: {e:?}")))?;
            let tasks = TaskNode::new(me, n, MapTable::new(None), MapTable::new(None))
                .map_err(|e| world.failure(format!("tasks: {e:?}")))?;
            world.nodes.push(Node {
                lock,
                container,
                tasks,
                view: None,
                saved: false,
                copies: BTreeMap::new(),
                backing: BTreeMap::new(),
            });
        }
        // The initial address space: pages 0..pages in container 1, homed
        // at node 0, whose memory holds some of them already.
        let initial = Mapping {
            container: world.nodes[0]
                .container
                .new_container_id(1)
                .map_err(|e| world.failure(format!("container id: {e:?}")))?,
            writable: true,
        };
        let mut view = BTreeMap::new();
        for vpn in 0..world.cfg.pages {
            view.insert(vpn, initial);
            world.reference.layout.insert(vpn, initial);
            if world.rng.chance(50) {
                let page = PageId {
                    container: initial.container,
                    index: vpn,
                };
                let value = world.next_value;
                world.next_value += 1;
                world.nodes[0].backing.insert(page, value);
                world.reference.values.insert(page, value);
            }
        }
        world.nodes[0].view = Some(view);
        // The leader, then its clones, all on node 0.
        let leader = world.new_task(NodeId(0));
        world.nodes[0]
            .tasks
            .create_group(group, leader)
            .map_err(|e| world.failure(format!("create_group: {e:?}")))?;
        world.add_thread(leader, NodeId(0), None);
        for _ in 1..world.cfg.threads {
            let task = world.new_task(NodeId(0));
            let mut out = Actions::new();
            world.nodes[0]
                .tasks
                .clone_task(task, group, &mut out)
                .map_err(|e| world.failure(format!("clone_task: {e:?}")))?;
            world.add_thread(task, NodeId(0), None);
        }
        for t in 0..world.threads.len() {
            let delay = world.rng.range(0, 10);
            world.schedule(delay, Event::Wake(t));
        }
        if world.cfg.flush {
            let delay = world.rng.range(10, 100);
            world.schedule(delay, Event::Flush(NodeId(0)));
        }
        Ok(world)
    }

    fn new_task(&mut self, node: NodeId) -> TaskId {
        self.next_pid += 1;
        TaskId {
            origin: node,
            pid: self.next_pid,
        }
    }

    fn add_thread(&mut self, task: TaskId, node: NodeId, parent: Option<usize>) -> usize {
        self.threads.push(Thread {
            task,
            node,
            state: ThreadState::Idle,
            op: None,
            ops_left: self.cfg.ops_per_thread,
            op_started: self.now,
            faulted: false,
            fetched: false,
            parent,
            release_plan: Vec::new(),
        });
        self.threads.len() - 1
    }

    fn failure(&self, message: String) -> Box<Failure> {
        let mut trace = Vec::new();
        for (time, kind) in &self.trace {
            let mut line = String::new();
            let _ = match kind {
                TraceKind::Deliver(m) => {
                    write!(line, "t={time} {}->{}: {:?}", m.from.0, m.to.0, m.payload)
                }
                TraceKind::Start(t, op) => write!(
                    line,
                    "t={time} thread {t} on node {} starts {op:?}",
                    self.threads.get(*t).map_or(255, |th| th.node.0)
                ),
                TraceKind::Done(t) => write!(line, "t={time} thread {t} done"),
                TraceKind::Flush(n, p) => write!(line, "t={time} node {} flushes {p:?}", n.0),
            };
            trace.push(line);
        }
        Box::new(Failure {
            config: self.cfg.clone(),
            message: format!("t={}: {message}", self.now),
            trace,
        })
    }

    fn record(&mut self, kind: TraceKind) {
        if self.trace.len() == TRACE_LEN {
            self.trace.pop_front();
        }
        self.trace.push_back((self.now, kind));
    }

    fn schedule(&mut self, delay: u64, event: Event) {
        self.queue.push(self.now + delay, event);
    }

    fn send(&mut self, from: NodeId, to: NodeId, payload: Payload) {
        if from == to {
            self.schedule(0, Event::Deliver(Message { from, to, payload }));
            return;
        }
        self.stats.count_message(&payload, &self.ts_keys);
        let n = self.cfg.nodes;
        let chan = from.index() * n + to.index();
        let delay = self.rng.range(1, self.cfg.max_delay);
        let at = (self.now + delay).max(self.chan_last[chan]);
        self.chan_last[chan] = at;
        let msg = Message { from, to, payload };
        self.schedule(at - self.now, Event::Deliver(msg));
    }

    /// Runs to the end, checking at every step.
    pub fn run(&mut self) -> Result<()> {
        while let Some((time, event)) = self.queue.pop() {
            self.now = time;
            match event {
                Event::Deliver(msg) => {
                    self.record(TraceKind::Deliver(msg));
                    self.deliver(msg)?;
                }
                Event::Wake(t) => self.wake(t)?,
                Event::Flush(node) => self.flush(node)?,
                Event::ReleaseRetry(t) => {
                    if self.threads[t].state == ThreadState::Releasing(0) {
                        self.start_releases(t)?;
                    }
                }
            }
            self.check_deadlines()?;
        }
        self.check_end()
    }

    fn check_deadlines(&self) -> Result<()> {
        for (i, t) in self.threads.iter().enumerate() {
            if t.state != ThreadState::Exited && self.now > t.op_started + OP_DEADLINE {
                return Err(self.failure(format!(
                    "request did not complete: thread {i} {:?} in {:?} since t={}",
                    t.op, t.state, t.op_started
                )));
            }
        }
        Ok(())
    }

    fn check_end(&self) -> Result<()> {
        for (i, t) in self.threads.iter().enumerate() {
            if t.state != ThreadState::Exited {
                return Err(self.failure(format!(
                    "deadlock: no event left but thread {i} is {:?} in {:?} on node {}",
                    t.op, t.state, t.node.0
                )));
            }
        }
        for (i, node) in self.nodes.iter().enumerate() {
            if let Some(lock) = &node.lock {
                if !lock.is_idle() {
                    return Err(self.failure(format!(
                        "node {i}: lock queues not collected: {:?}",
                        lock.entries().collect::<Vec<_>>()
                    )));
                }
            }
            if node.container.releases_in_progress() != (0, 0) {
                return Err(self.failure(format!(
                    "node {i}: releases left: {:?}",
                    node.container.releases_in_progress()
                )));
            }
            for (page, rec) in node.container.records().map() {
                if rec.want != cohort_proto::container::Want::Nothing
                    || rec.expects()
                    || rec.released
                {
                    return Err(self.failure(format!(
                        "node {i}: container request on {page:?} never completed: {rec:?}"
                    )));
                }
            }
            if !node.tasks.tasks().map().is_empty() || !node.tasks.groups().map().is_empty() {
                return Err(self.failure(format!(
                    "node {i}: tasks or groups left after exit: {:?} {:?}",
                    node.tasks.tasks().map(),
                    node.tasks.groups().map()
                )));
            }
            if node.view.is_some() || node.saved {
                return Err(self.failure(format!("node {i}: address space left after group exit")));
            }
        }
        Ok(())
    }

    // ---------------------------------------------------------------- threads

    fn wake(&mut self, t: usize) -> Result<()> {
        if self.threads[t].state != ThreadState::Idle {
            return Ok(());
        }
        if let Some(op) = self.threads[t].op {
            // A retry of an operation that had to wait.
            return self.run_op(t, op);
        }
        let op = self.choose_op(t);
        self.threads[t].op = Some(op);
        self.threads[t].op_started = self.now;
        self.threads[t].faulted = false;
        self.threads[t].fetched = false;
        self.record(TraceKind::Start(t, op));
        self.run_op(t, op)
    }

    fn live_threads(&self) -> usize {
        self.threads
            .iter()
            .filter(|t| t.state != ThreadState::Exited)
            .count()
    }

    fn choose_op(&mut self, t: usize) -> Op {
        if self.threads[t].ops_left == 0 {
            return Op::Exit;
        }
        let pages = self.cfg.pages;
        let roll = self.rng.below(100);
        let layout = self.cfg.layout_percent;
        let migrate = self.cfg.migrate_percent;
        let start = self.rng.below(pages);
        let len = self.rng.range(1, 3).min(pages - start);
        let writable = self.rng.chance(70);
        if roll < layout {
            match self.rng.below(4) {
                0 => Op::Mmap {
                    start,
                    len,
                    writable,
                },
                1 => Op::Munmap { start, len },
                2 => Op::Madvise { start, len },
                _ => Op::Mprotect {
                    start,
                    len,
                    writable,
                },
            }
        } else if roll < layout + migrate {
            let node = self.threads[t].node;
            let hosts = self.cfg.hosts.max(2) as u64;
            let mut to = nid(self.rng.below(hosts) as usize);
            if to == node {
                to = nid(((to.index() as u64 + 1) % hosts) as usize);
            }
            Op::Migrate(to)
        } else if roll < layout + migrate + 3 && self.live_threads() < self.cfg.max_threads {
            Op::Clone
        } else if roll < layout + migrate + 5 && self.live_threads() > 1 {
            Op::Exit
        } else {
            Op::Access {
                vpn: self.rng.below(pages),
                write: self.rng.chance(40),
            }
        }
    }

    fn finish_op(&mut self, t: usize) {
        self.record(TraceKind::Done(t));
        let th = &mut self.threads[t];
        th.op = None;
        th.state = ThreadState::Idle;
        th.ops_left = th.ops_left.saturating_sub(1);
        let think = self.rng.range(1, 20);
        self.schedule(think, Event::Wake(t));
    }

    fn retry_later(&mut self, t: usize) {
        self.threads[t].state = ThreadState::Idle;
        let delay = self.rng.range(1, 10);
        self.schedule(delay, Event::Wake(t));
    }

    fn run_op(&mut self, t: usize, op: Op) -> Result<()> {
        match op {
            Op::Access { vpn, write } => self.run_access(t, vpn, write),
            Op::Mmap { .. } | Op::Munmap { .. } | Op::Mprotect { .. } => {
                self.acquire(t, LockKey::Heavy)
            }
            Op::Madvise { start, len } => {
                let node = self.threads[t].node;
                let view = self.nodes[node.index()].view.as_ref();
                let plan = containers_in(view.into_iter().flatten(), start, len);
                self.threads[t].release_plan = plan;
                self.start_releases(t)
            }
            Op::Migrate(to) => self.run_migrate(t, to),
            Op::Clone => self.run_clone(t),
            Op::Exit => self.run_exit(t),
        }
    }

    fn acquire(&mut self, t: usize, key: LockKey) -> Result<()> {
        let node = self.threads[t].node;
        let mut out = Actions::new();
        let Some(lock) = self.nodes[node.index()].lock.as_mut() else {
            return Err(self.failure(format!("thread {t} on node {} has no lock space", node.0)));
        };
        match lock.acquire(key, &mut out) {
            Ok(ticket) => {
                self.ts_keys.insert(ticket.0, key);
                self.stats.acquisition(key);
                self.threads[t].state = ThreadState::Locking(ticket);
                self.lock_actions(node, out)
            }
            Err(Error::Busy) => {
                self.retry_later(t);
                Ok(())
            }
            Err(e) => Err(self.failure(format!("acquire {key:?} on node {}: {e:?}", node.0))),
        }
    }

    fn release(&mut self, t: usize, ticket: Ticket) -> Result<()> {
        let node = self.threads[t].node;
        self.holders.retain(|h| h.1 != ticket);
        let mut out = Actions::new();
        let Some(lock) = self.nodes[node.index()].lock.as_mut() else {
            return Err(self.failure(format!("release on node {} without lock space", node.0)));
        };
        if let Err(e) = lock.release(ticket, &mut out) {
            return Err(self.failure(format!("release {ticket:?}: {e:?}")));
        }
        self.lock_actions(node, out)
    }

    fn run_access(&mut self, t: usize, vpn: u64, write: bool) -> Result<()> {
        let node = self.threads[t].node;
        let mapping = self.nodes[node.index()]
            .view
            .as_ref()
            .and_then(|v| v.get(&vpn).copied());
        let Some(m) = mapping else {
            // The node does not know the mapping: fetch it under the page lock.
            self.count_fault(t);
            return self.acquire(t, LockKey::Page(vpn));
        };
        if !self.reference.allows(vpn, m) {
            return Err(self.failure(format!(
                "node {} maps page {vpn} as {m:?}, reference {:?} pending {:?}",
                node.0,
                self.reference.layout.get(&vpn),
                self.reference.pending
            )));
        }
        if write && !m.writable {
            return self.segv(t, vpn, Some(m));
        }
        let page = PageId {
            container: m.container,
            index: vpn,
        };
        let needed = if write { Access::Write } else { Access::Read };
        let have = self.nodes[node.index()].container.find_page(page);
        if have < needed && self.cfg.mode == Mode::Lamport && !self.threads[t].fetched {
            // The thesis' fault path: every miss retrieves the mapping under
            // the page's Lamport lock, asking every node.
            self.count_fault(t);
            return self.acquire(t, LockKey::Page(vpn));
        }
        let mut out = Actions::new();
        let container = &mut self.nodes[node.index()].container;
        let result = if write {
            container.grab_page(page, &mut out)
        } else {
            container.get_page(page, &mut out)
        };
        match result {
            Ok(Lookup::Hit) => {
                self.access(t, page, write)?;
                self.finish_op(t);
                Ok(())
            }
            Ok(Lookup::Wait) => {
                self.count_fault(t);
                if !out.0.is_empty() {
                    self.stats.container_faults += 1;
                }
                self.threads[t].state = ThreadState::Paging(page);
                self.page_actions(node, out, None)
            }
            Err(Error::Busy) => {
                self.retry_later(t);
                Ok(())
            }
            Err(e) => Err(self.failure(format!("fault on {page:?}: {e:?}"))),
        }
    }

    fn count_fault(&mut self, t: usize) {
        if !self.threads[t].faulted {
            self.threads[t].faulted = true;
            self.stats.faults += 1;
        }
    }

    /// A thread's access hit a missing or read-only mapping.
    fn segv(&mut self, t: usize, vpn: u64, m: Option<Mapping>) -> Result<()> {
        let ok = match m {
            Some(m) => self.reference.allows(vpn, m) && !m.writable,
            None => {
                !self.reference.layout.contains_key(&vpn)
                    || matches!(&self.reference.pending, Some(p) if p.get(&vpn) == Some(&None))
            }
        };
        if !ok {
            return Err(self.failure(format!(
                "thread {t} got SIGSEGV on page {vpn} ({m:?}) but the reference maps {:?}",
                self.reference.layout.get(&vpn)
            )));
        }
        self.stats.segv += 1;
        self.finish_op(t);
        Ok(())
    }

    /// Performs the access on the local copy and checks it.
    fn access(&mut self, t: usize, page: PageId, write: bool) -> Result<()> {
        let node = self.threads[t].node;
        let Some(&value) = self.nodes[node.index()].copies.get(&page) else {
            return Err(self.failure(format!(
                "thread {t} accesses {page:?} on node {} without a copy",
                node.0
            )));
        };
        let expected = self.reference.values.get(&page).copied().unwrap_or(0);
        if value != expected {
            return Err(self.failure(format!(
                "sequential consistency: node {} reads {value} from {page:?}, latest write is {expected}",
                node.0
            )));
        }
        if write {
            let value = self.next_value;
            self.next_value += 1;
            self.nodes[node.index()].copies.insert(page, value);
            self.reference.values.insert(page, value);
            self.stats.writes += 1;
        } else {
            self.stats.reads += 1;
        }
        Ok(())
    }

    fn participants(&self, node: NodeId) -> NodeSet {
        match self.cfg.mode {
            Mode::Lamport => NodeSet::first(self.cfg.nodes).without(node),
            Mode::Cohort => self.nodes[node.index()]
                .lock
                .as_ref()
                .map_or(NodeSet::EMPTY, |l| l.members().without(node)),
        }
    }

    /// The lock of the current operation was granted.
    fn granted(&mut self, t: usize, ticket: Ticket, key: LockKey) -> Result<()> {
        let node = self.threads[t].node;
        for &(n, other, k) in &self.holders {
            if k.conflicts(key) {
                return Err(self.failure(format!(
                    "mutual exclusion: node {} granted {key:?} ({ticket:?}) while node {} holds {k:?} ({other:?})",
                    node.0, n.0
                )));
            }
        }
        self.holders.push((node, ticket, key));
        let to = self.participants(node);
        match (self.threads[t].op, key) {
            (Some(Op::Access { vpn, .. }), LockKey::Page(_)) => {
                self.stats.fetches += 1;
                self.threads[t].state = ThreadState::Querying {
                    ticket,
                    awaiting: to,
                    found: None,
                };
                for n in to.iter() {
                    self.send(node, n, Payload::Query(vpn, t));
                }
                if to.is_empty() {
                    self.query_done(t)?;
                }
                Ok(())
            }
            (Some(op), LockKey::Heavy) => {
                let (remote, pending) = self.layout_change(t, op);
                self.reference.pending = Some(pending);
                self.threads[t].state = ThreadState::Heavy {
                    ticket,
                    awaiting: to,
                };
                for n in to.iter() {
                    self.send(node, n, Payload::Layout(remote, t));
                }
                if to.is_empty() {
                    self.heavy_done(t)?;
                }
                Ok(())
            }
            (op, key) => Err(self.failure(format!("lock {key:?} granted for {op:?}"))),
        }
    }

    /// What a heavy operation tells the other nodes, and the mappings it installs.
    fn layout_change(&mut self, t: usize, op: Op) -> (LayoutOp, BTreeMap<u64, Option<Mapping>>) {
        let mut pending = BTreeMap::new();
        match op {
            Op::Mmap {
                start,
                len,
                writable,
            } => {
                let plan = containers_in(self.reference.layout.iter(), start, len);
                self.threads[t].release_plan = plan;
                // A new container homed where it is mapped (its memory
                // starts empty).
                let node = self.threads[t].node;
                let serial = self.next_container;
                self.next_container = self.next_container.wrapping_add(1);
                // (no node of the world dies: its nodes never join, and
                // know their generation)
                let container = self.nodes[node.index()]
                    .container
                    .new_container_id(serial)
                    .expect("a node that never joined makes container ids");
                for vpn in start..start + len {
                    pending.insert(
                        vpn,
                        Some(Mapping {
                            container,
                            writable,
                        }),
                    );
                }
                (LayoutOp::Unmap { start, len }, pending)
            }
            Op::Munmap { start, len } => {
                let plan = containers_in(self.reference.layout.iter(), start, len);
                self.threads[t].release_plan = plan;
                for vpn in start..start + len {
                    pending.insert(vpn, None);
                }
                (LayoutOp::Unmap { start, len }, pending)
            }
            Op::Mprotect {
                start,
                len,
                writable,
            } => {
                for vpn in start..start + len {
                    if let Some(m) = self.reference.layout.get(&vpn) {
                        pending.insert(
                            vpn,
                            Some(Mapping {
                                container: m.container,
                                writable,
                            }),
                        );
                    }
                }
                (
                    LayoutOp::Protect {
                        start,
                        len,
                        writable,
                    },
                    pending,
                )
            }
            _ => (LayoutOp::Unmap { start: 0, len: 0 }, pending),
        }
    }

    fn query_done(&mut self, t: usize) -> Result<()> {
        let ThreadState::Querying { ticket, found, .. } = self.threads[t].state else {
            return Err(self.failure(format!("thread {t} not querying")));
        };
        let Some(Op::Access { vpn, write }) = self.threads[t].op else {
            return Err(self.failure(format!("thread {t} queried outside an access")));
        };
        let node = self.threads[t].node;
        let reference = self.reference.layout.get(&vpn).copied();
        if found.is_some() && found != reference {
            return Err(self.failure(format!(
                "mapping fetch of page {vpn} found {found:?}, reference {reference:?}"
            )));
        }
        let known = self.nodes[node.index()]
            .view
            .as_ref()
            .and_then(|v| v.get(&vpn).copied());
        if let Some(m) = found {
            if let Some(view) = self.nodes[node.index()].view.as_mut() {
                view.insert(vpn, m);
            }
        }
        self.threads[t].fetched = true;
        self.threads[t].state = ThreadState::Idle;
        if found.is_none() && known.is_none() {
            // No node maps the page: the access faults (checked exactly while
            // the page lock still excludes layout changes).
            self.segv(t, vpn, None)?;
            return self.release(t, ticket);
        }
        self.release(t, ticket)?;
        self.run_access(t, vpn, write)
    }

    fn heavy_done(&mut self, t: usize) -> Result<()> {
        let ThreadState::Heavy { ticket, .. } = self.threads[t].state else {
            return Err(self.failure(format!("thread {t} not in a heavy operation")));
        };
        let node = self.threads[t].node;
        let pending = self.reference.pending.take().unwrap_or_default();
        for (&vpn, &m) in &pending {
            match m {
                Some(m) => {
                    self.reference.layout.insert(vpn, m);
                }
                None => {
                    self.reference.layout.remove(&vpn);
                }
            }
        }
        if let Some(view) = self.nodes[node.index()].view.as_mut() {
            if let Some(Op::Mmap { start, len, .. } | Op::Munmap { start, len }) =
                self.threads[t].op
            {
                for vpn in start..start + len {
                    view.remove(&vpn);
                }
            }
            for (&vpn, &m) in &pending {
                if let Some(m) = m {
                    view.insert(vpn, m);
                }
            }
        }
        self.stats.layout_ops += 1;
        self.release(t, ticket)?;
        // The pages unmapped or replaced are released cluster-wide.
        self.start_releases(t)
    }

    /// Starts the releases of the thread's plan; the operation ends when
    /// they are all complete.
    fn start_releases(&mut self, t: usize) -> Result<()> {
        let plan = std::mem::take(&mut self.threads[t].release_plan);
        if plan.is_empty() {
            self.finish_op(t);
            return Ok(());
        }
        let node = self.threads[t].node;
        let mut started = 0;
        for (i, range) in plan.iter().enumerate() {
            let mut out = Actions::new();
            match self.nodes[node.index()].container.release(
                range.container,
                range.first,
                range.end,
                &mut out,
            ) {
                Ok(id) => {
                    self.releases.insert((node, id), t);
                    started += 1;
                    self.threads[t].state = ThreadState::Releasing(started);
                    self.stats.releases += 1;
                    self.page_actions(node, out, None)?;
                }
                Err(Error::Busy) | Err(Error::NoSpace) => {
                    // Too many releases at once here: the rest later.
                    self.threads[t].release_plan = plan[i..].to_vec();
                    break;
                }
                Err(e) => return Err(self.failure(format!("release {range:?}: {e:?}"))),
            }
        }
        if started == 0 {
            self.retry_later_releases(t);
        }
        Ok(())
    }

    fn retry_later_releases(&mut self, t: usize) {
        self.threads[t].state = ThreadState::Releasing(0);
        let delay = self.rng.range(1, 10);
        self.schedule(delay, Event::ReleaseRetry(t));
    }

    /// A release completed: its pages are fresh; no node may keep anything
    /// of them.
    fn released(&mut self, origin: NodeId, id: u32, range: PageRange) -> Result<()> {
        for index in range.first..range.end {
            let page = PageId {
                container: range.container,
                index,
            };
            for (i, node) in self.nodes.iter().enumerate() {
                if node.copies.contains_key(&page)
                    || node.backing.contains_key(&page)
                    || node.container.record(page).is_some_and(|r| !r.released)
                {
                    return Err(self.failure(format!(
                        "release {origin:?}/{id} complete but node {i} keeps {page:?}: {:?}",
                        node.container.record(page)
                    )));
                }
            }
            self.reference.values.remove(&page);
        }
        let Some(t) = self.releases.remove(&(origin, id)) else {
            return Err(self.failure(format!("unknown release {origin:?}/{id} completed")));
        };
        let ThreadState::Releasing(n) = self.threads[t].state else {
            return Err(self.failure(format!("thread {t} not releasing")));
        };
        if n > 1 {
            self.threads[t].state = ThreadState::Releasing(n - 1);
        } else if self.threads[t].release_plan.is_empty() {
            self.finish_op(t);
        } else {
            self.retry_later_releases(t);
        }
        Ok(())
    }

    fn run_migrate(&mut self, t: usize, to: NodeId) -> Result<()> {
        let node = self.threads[t].node;
        let task = self.threads[t].task;
        let mut out = Actions::new();
        match self.nodes[node.index()].tasks.migrate(task, to, &mut out) {
            Ok(()) => {}
            Err(Error::Busy) => {
                self.retry_later(t);
                return Ok(());
            }
            Err(e) => return Err(self.failure(format!("migrate {task:?}: {e:?}"))),
        }
        self.threads[t].state = ThreadState::Migrating;
        self.stats.migrations += 1;
        self.task_actions(node, out)?;
        self.check_task(task)
    }

    fn run_clone(&mut self, t: usize) -> Result<()> {
        let node = self.threads[t].node;
        let task = self.new_task(node);
        let mut out = Actions::new();
        if let Err(e) = self.nodes[node.index()]
            .tasks
            .clone_task(task, self.group, &mut out)
        {
            return Err(self.failure(format!("clone on node {}: {e:?}", node.0)));
        }
        let child = self.add_thread(task, node, Some(t));
        self.threads[child].state = ThreadState::CloneWait;
        self.threads[t].state = ThreadState::CloneWait;
        self.task_actions(node, out)
    }

    fn run_exit(&mut self, t: usize) -> Result<()> {
        let node = self.threads[t].node;
        let task = self.threads[t].task;
        let mut out = Actions::new();
        if let Err(e) = self.nodes[node.index()].tasks.exit(task, &mut out) {
            return Err(self.failure(format!("exit {task:?}: {e:?}")));
        }
        self.record(TraceKind::Done(t));
        self.threads[t].state = ThreadState::Exited;
        self.threads[t].op = None;
        self.task_actions(node, out)?;
        self.check_task(task)
    }

    fn flush(&mut self, node: NodeId) -> Result<()> {
        if self.live_threads() == 0 {
            return Ok(());
        }
        let next = nid(self.rng.below(self.cfg.nodes as u64) as usize);
        let delay = self.rng.range(5, 60);
        self.schedule(delay, Event::Flush(next));
        let copies = &self.nodes[node.index()].copies;
        if copies.is_empty() {
            return Ok(());
        }
        let pick = self.rng.below(copies.len() as u64) as usize;
        let Some(&page) = copies.keys().nth(pick) else {
            return Ok(());
        };
        let mut fallback = nid(self.rng.below(self.cfg.nodes as u64) as usize);
        if fallback == node {
            fallback = nid((node.index() + 1) % self.cfg.nodes);
        }
        self.record(TraceKind::Flush(node, page));
        let mut out = Actions::new();
        match self.nodes[node.index()]
            .container
            .flush_page(page, fallback, &mut out)
        {
            Ok(()) => {
                self.stats.flushes += 1;
                self.page_actions(node, out, None)?;
                self.check_page(page)
            }
            Err(Error::Busy) => Ok(()),
            Err(e) => Err(self.failure(format!("flush {page:?} on node {}: {e:?}", node.0))),
        }
    }

    // ---------------------------------------------------------------- messages

    fn deliver(&mut self, msg: Message) -> Result<()> {
        let Message { from, to, payload } = msg;
        let me = to.index();
        match payload {
            Payload::Lock(lm) => {
                let mut out = Actions::new();
                let Some(lock) = self.nodes[me].lock.as_mut() else {
                    return Err(
                        self.failure(format!("lock message to node {me} without lock space"))
                    );
                };
                if let Err(e) = lock.on_message(from, lm, &mut out) {
                    return Err(self.failure(format!("lock message {lm:?} at node {me}: {e:?}")));
                }
                self.lock_actions(to, out)
            }
            Payload::Page(pm, data) => {
                let mut out = Actions::new();
                let n = &mut self.nodes[me];
                if let Err(e) = n
                    .container
                    .on_message(from, pm, &Held(&n.backing), &mut out)
                {
                    return Err(self.failure(format!("page message {pm:?} at node {me}: {e:?}")));
                }
                self.page_actions(to, out, data)?;
                match pm.page() {
                    Some(page) => self.check_page(page),
                    None => Ok(()),
                }
            }
            Payload::Task(tm, members) => {
                let mut out = Actions::new();
                if let Err(e) = self.nodes[me].tasks.on_message(from, tm, &mut out) {
                    return Err(self.failure(format!("task message {tm:?} at node {me}: {e:?}")));
                }
                if let TaskMsg::Migrate { task, .. } = tm {
                    self.arrive(to, task, members, out)?;
                    return self.check_task(task);
                }
                self.task_actions(to, out)?;
                match tm {
                    TaskMsg::TaskExit { task } | TaskMsg::MemberJoinAck { task } => {
                        self.check_task(task)
                    }
                    _ => Ok(()),
                }
            }
            Payload::Query(vpn, t) => {
                let m = self.nodes[me]
                    .view
                    .as_ref()
                    .and_then(|v| v.get(&vpn).copied());
                self.send(to, from, Payload::QueryReply(t, m));
                Ok(())
            }
            Payload::QueryReply(t, m) => {
                let ThreadState::Querying {
                    ticket,
                    mut awaiting,
                    found,
                } = self.threads[t].state
                else {
                    return Err(self.failure(format!("unexpected query reply for thread {t}")));
                };
                if let (Some(a), Some(b)) = (found, m) {
                    if a != b {
                        return Err(self.failure(format!(
                            "inconsistent address space: mappings {a:?} and {b:?}"
                        )));
                    }
                }
                awaiting.remove(from);
                self.threads[t].state = ThreadState::Querying {
                    ticket,
                    awaiting,
                    found: found.or(m),
                };
                if awaiting.is_empty() {
                    self.query_done(t)?;
                }
                Ok(())
            }
            Payload::Layout(op, t) => {
                if let Some(view) = self.nodes[me].view.as_mut() {
                    match op {
                        LayoutOp::Unmap { start, len } => {
                            for vpn in start..start + len {
                                view.remove(&vpn);
                            }
                        }
                        LayoutOp::Protect {
                            start,
                            len,
                            writable,
                        } => {
                            for vpn in start..start + len {
                                if let Some(m) = view.get_mut(&vpn) {
                                    m.writable = writable;
                                }
                            }
                        }
                    }
                }
                self.send(to, from, Payload::LayoutAck(t));
                Ok(())
            }
            Payload::LayoutAck(t) => {
                let ThreadState::Heavy {
                    ticket,
                    mut awaiting,
                } = self.threads[t].state
                else {
                    return Err(self.failure(format!("unexpected layout ack for thread {t}")));
                };
                awaiting.remove(from);
                self.threads[t].state = ThreadState::Heavy { ticket, awaiting };
                if awaiting.is_empty() {
                    self.heavy_done(t)?;
                }
                Ok(())
            }
        }
    }

    /// A migrating task reached `node`.
    fn arrive(
        &mut self,
        node: NodeId,
        task: TaskId,
        members: NodeSet,
        out: Actions<TaskAction>,
    ) -> Result<()> {
        let Some(t) = self.threads.iter().position(|th| th.task == task) else {
            return Err(self.failure(format!("unknown task {task:?} arrived")));
        };
        if self.threads[t].state != ThreadState::Migrating {
            return Err(self.failure(format!("task {task:?} arrived but was not migrating")));
        }
        self.threads[t].node = node;
        self.task_actions(node, out)?;
        if self.cfg.mode == Mode::Cohort {
            let per_node = LOCK_SLOTS / self.cfg.nodes;
            let n = &mut self.nodes[node.index()];
            if n.lock.is_none() {
                let mut space = match LockSpace::new_joining(node, self.cfg.nodes, per_node) {
                    Ok(space) => space,
                    Err(e) => return Err(self.failure(format!("lock space: {e:?}"))),
                };
                let mut out = Actions::new();
                if let Err(e) = space.join(members, &mut out) {
                    return Err(self.failure(format!("join at node {}: {e:?}", node.0)));
                }
                self.nodes[node.index()].lock = Some(Box::new(space));
                self.threads[t].state = ThreadState::Joining;
                self.stats.joins += 1;
                return self.lock_actions(node, out);
            }
            if n.lock.as_ref().is_some_and(|l| !l.is_joined()) {
                self.threads[t].state = ThreadState::Joining;
                return Ok(());
            }
        }
        self.finish_op(t);
        Ok(())
    }

    fn lock_actions(&mut self, node: NodeId, out: Actions<LockAction>) -> Result<()> {
        for action in out.0 {
            match action {
                LockAction::Send { to, msg } => {
                    for n in to.iter() {
                        self.send(node, n, Payload::Lock(msg));
                    }
                }
                LockAction::Granted { ticket, key } => {
                    let Some(t) = self
                        .threads
                        .iter()
                        .position(|th| th.node == node && th.state == ThreadState::Locking(ticket))
                    else {
                        return Err(self.failure(format!("grant of unknown ticket {ticket:?}")));
                    };
                    self.granted(t, ticket, key)?;
                }
                LockAction::Joined => {
                    for t in 0..self.threads.len() {
                        if self.threads[t].node == node
                            && self.threads[t].state == ThreadState::Joining
                        {
                            self.finish_op(t);
                        }
                    }
                }
            }
        }
        Ok(())
    }

    fn page_actions(
        &mut self,
        node: NodeId,
        out: Actions<PageAction>,
        data: Option<u64>,
    ) -> Result<()> {
        let me = node.index();
        for action in out.0 {
            match action {
                PageAction::Send { to, msg } => {
                    let data = if msg.carries_data() {
                        let page = msg.page().unwrap_or(PageId {
                            container: 0,
                            index: 0,
                        });
                        match self.nodes[me].copies.get(&page) {
                            Some(&v) => Some(v),
                            None => {
                                return Err(
                                    self.failure(format!("node {me} sends {msg:?} without a copy"))
                                )
                            }
                        }
                    } else {
                        None
                    };
                    self.send(node, to, Payload::Page(msg, data));
                }
                PageAction::FirstTouch { page } => {
                    if self.reference.values.contains_key(&page) {
                        return Err(self.failure(format!("first touch of {page:?} ran twice")));
                    }
                    if self.nodes[me].backing.contains_key(&page) {
                        return Err(self.failure(format!("first touch of {page:?} its home holds")));
                    }
                    self.reference.values.insert(page, 0);
                    self.nodes[me].copies.insert(page, 0);
                    self.stats.first_touches += 1;
                }
                PageAction::Adopt { page } => {
                    let Some(v) = self.nodes[me].backing.remove(&page) else {
                        return Err(self.failure(format!("node {me} adopts {page:?} it lacks")));
                    };
                    if home_of(page.container) != Some(node) {
                        return Err(
                            self.failure(format!("node {me} adopts {page:?}, not its home"))
                        );
                    }
                    self.nodes[me].copies.insert(page, v);
                    self.stats.adoptions += 1;
                }
                PageAction::DropBacking {
                    container,
                    first,
                    end,
                } => {
                    let range = PageRange {
                        container,
                        first,
                        end,
                    };
                    self.nodes[me].backing.retain(|p, _| !range.contains(*p));
                }
                PageAction::Released { origin, id, range } => self.released(origin, id, range)?,
                PageAction::Failed { page } => {
                    return Err(self.failure(format!("node {me}: {page:?} failed with no death")));
                }
                PageAction::Install { page } => {
                    let Some(v) = data else {
                        return Err(self.failure(format!("install of {page:?} without data")));
                    };
                    self.nodes[me].copies.insert(page, v);
                }
                PageAction::Discard { page } => {
                    self.nodes[me].copies.remove(&page);
                }
                PageAction::WriteProtect { .. } | PageAction::Flushed { .. } => {}
                PageAction::Ready { page, access } => {
                    for t in 0..self.threads.len() {
                        if self.threads[t].node != node
                            || self.threads[t].state != ThreadState::Paging(page)
                        {
                            continue;
                        }
                        let Some(Op::Access { vpn, write }) = self.threads[t].op else {
                            continue;
                        };
                        let needed = if write { Access::Write } else { Access::Read };
                        let still_mapped = self.nodes[me]
                            .view
                            .as_ref()
                            .and_then(|v| v.get(&vpn))
                            .is_some_and(|m| {
                                m.container == page.container && (m.writable || !write)
                            });
                        if access >= needed && still_mapped {
                            self.access(t, page, write)?;
                            self.finish_op(t);
                        } else {
                            self.retry_later(t);
                        }
                    }
                }
            }
        }
        Ok(())
    }

    fn task_actions(&mut self, node: NodeId, out: Actions<TaskAction>) -> Result<()> {
        let me = node.index();
        let members = self.nodes[me]
            .lock
            .as_ref()
            .map_or(NodeSet::EMPTY, |l| l.members());
        for action in out.0 {
            match action {
                TaskAction::Send { to, msg } => {
                    for n in to.iter() {
                        self.send(node, n, Payload::Task(msg, members));
                    }
                }
                TaskAction::BecomeShadow { .. } | TaskAction::KillShadow { .. } => {}
                TaskAction::CreateTask { task, mm } => {
                    let n = &mut self.nodes[me];
                    match mm {
                        MmSource::LocalGroup if n.view.is_none() => {
                            return Err(
                                self.failure(format!("{task:?} joins a local group with no mm"))
                            );
                        }
                        MmSource::SavedMm if n.view.is_none() || !n.saved => {
                            return Err(
                                self.failure(format!("{task:?} uses a saved mm that is not there"))
                            );
                        }
                        MmSource::Fresh if n.view.is_some() => {
                            return Err(
                                self.failure(format!("{task:?} gets a fresh mm over a live one"))
                            );
                        }
                        MmSource::Fresh => n.view = Some(BTreeMap::new()),
                        MmSource::SavedMm => n.saved = false,
                        MmSource::LocalGroup => {}
                    }
                }
                TaskAction::ResumeShadow { .. } => {
                    if self.nodes[me].view.is_none() {
                        return Err(self.failure("shadow resumed without an mm".into()));
                    }
                }
                TaskAction::CloneReady { task } => {
                    let Some(child) = self.threads.iter().position(|th| th.task == task) else {
                        return Err(self.failure(format!("clone {task:?} unknown")));
                    };
                    self.threads[child].state = ThreadState::Idle;
                    self.threads[child].op_started = self.now;
                    self.schedule(1, Event::Wake(child));
                    if let Some(parent) = self.threads[child].parent {
                        self.finish_op(parent);
                    }
                }
                TaskAction::SaveMm { .. } => {
                    if self.nodes[me].view.is_none() || self.nodes[me].saved {
                        return Err(self.failure(format!("node {me}: save of a missing mm")));
                    }
                    self.nodes[me].saved = true;
                }
                TaskAction::DropSavedMm { .. } => {
                    if !self.nodes[me].saved {
                        return Err(self.failure(format!("node {me}: drop of an unsaved mm")));
                    }
                    self.nodes[me].saved = false;
                }
                TaskAction::GroupGone { .. } => {
                    if self.nodes[me].saved {
                        return Err(
                            self.failure(format!("node {me}: group gone with its mm saved"))
                        );
                    }
                    self.nodes[me].view = None;
                    if self.cfg.mode == Mode::Cohort {
                        if let Some(lock) = self.nodes[me].lock.take() {
                            if !lock.is_idle() {
                                return Err(self
                                    .failure(format!("node {me}: group gone with locks queued")));
                            }
                        }
                    }
                }
            }
        }
        self.check_mm(node)
    }

    // ---------------------------------------------------------------- checks

    /// One writer or many readers, and every copy holds the latest write.
    fn check_page(&self, page: PageId) -> Result<()> {
        let mut writer = None;
        let mut holders = 0;
        let expected = self.reference.values.get(&page).copied();
        for (i, node) in self.nodes.iter().enumerate() {
            let access = node.container.find_page(page);
            let copy = node.copies.get(&page).copied();
            if (access != Access::None) != copy.is_some() {
                return Err(self.failure(format!(
                    "node {i}: {page:?} access {access:?} but copy {copy:?}"
                )));
            }
            if access == Access::None {
                continue;
            }
            holders += 1;
            if access == Access::Write {
                writer = Some(i);
            }
            if copy != expected {
                return Err(self.failure(format!(
                    "sequential consistency: node {i} holds {copy:?} for {page:?}, latest write {expected:?}"
                )));
            }
        }
        if let Some(w) = writer {
            if holders > 1 {
                return Err(self.failure(format!(
                    "one writer or many readers: node {w} may write {page:?} while {} other copies exist",
                    holders - 1
                )));
            }
        }
        Ok(())
    }

    /// A task runs on at most one node, and on its thread's node.
    fn check_task(&self, task: TaskId) -> Result<()> {
        let t = self.threads.iter().position(|th| th.task == task);
        let mut running = Vec::new();
        for (i, node) in self.nodes.iter().enumerate() {
            if node.tasks.task(task).is_some_and(|r| r.running) {
                running.push(i);
            }
        }
        let expected: Vec<usize> = match t.map(|t| &self.threads[t]) {
            Some(th) if th.state == ThreadState::Migrating || th.state == ThreadState::Exited => {
                vec![]
            }
            Some(th) => vec![th.node.index()],
            None => vec![],
        };
        if running != expected {
            return Err(self.failure(format!(
                "task {task:?} runs on nodes {running:?}, expected {expected:?}"
            )));
        }
        Ok(())
    }

    /// A node keeps the group's address space exactly while it hosts tasks of
    /// the group or has saved it.
    fn check_mm(&self, node: NodeId) -> Result<()> {
        let n = &self.nodes[node.index()];
        let grp = n.tasks.group(self.group);
        let has = grp.is_some();
        if n.view.is_some() != has {
            return Err(self.failure(format!(
                "node {}: mm present {} but group record {grp:?}",
                node.0,
                n.view.is_some()
            )));
        }
        if let Some(g) = grp {
            if g.saved_mm != n.saved || (g.saved_mm && g.local_tasks != 0) {
                return Err(self.failure(format!("node {}: saved mm wrong: {g:?}", node.0)));
            }
            if g.local_tasks == 0 && !g.saved_mm {
                return Err(self.failure(format!(
                    "node {}: mm lost with the group alive: {g:?}",
                    node.0
                )));
            }
        }
        Ok(())
    }
}

/// Runs one configuration; returns its statistics or the failure.
pub fn run(cfg: Config) -> std::result::Result<Stats, Box<Failure>> {
    let mut world = World::new(cfg)?;
    world.run()?;
    Ok(world.stats)
}

/// The ranges of containers mapped at `start..start + len` in `layout`, one
/// per container.
fn containers_in<'a>(
    layout: impl Iterator<Item = (&'a u64, &'a Mapping)>,
    start: u64,
    len: u64,
) -> Vec<PageRange> {
    let mut containers: Vec<u32> = layout
        .filter(|(vpn, _)| (start..start + len).contains(*vpn))
        .map(|(_, m)| m.container)
        .collect();
    containers.sort_unstable();
    containers.dedup();
    containers
        .into_iter()
        .map(|container| PageRange {
            container,
            first: start,
            end: start + len,
        })
        .collect()
}
