// SPDX-License-Identifier: GPL-2.0
//! The container simulator: the container layers of a cluster alone, under
//! page accesses, releases, flushes and node deaths.
//!
//! Every node runs a `cohort-proto` [`ContainerNode`]; threads on every node
//! read and write pages of three containers (the initial address space,
//! homed at a node whose memory holds some of its pages at start; an
//! unhomed container; a container homed at another node, empty at start),
//! and of one container per node that came back, homed there (made once
//! it finished joining, with `ContainerNode::new_container_id`; its memory
//! holds some of the pages), release ranges (munmap, `MADV_DONTNEED`) and
//! flush pages. Every message goes through the wire codec
//! (`container_msg`), page contents included: a page of value `v` is 4096
//! bytes repeating `v`, checked on arrival.
//! Channels are FIFO per pair of nodes with random delays.
//!
//! Nodes die at random times: their messages in flight vanish (those from
//! the dead node still reach a survivor until a random cut before it is
//! told), their threads die, and each survivor is told after its own random
//! delay. A dead node may come back, once every survivor was told of its
//! death, as a fresh incarnation (`ContainerNode::rejoin`: no records, no
//! copies, no memory, new threads): it is told at once of every node up
//! (`node_up`), each survivor after its own random delay, and its messages
//! reach a survivor only once that one was told (the messaging layer
//! connects first); messages of or to an earlier incarnation never reach
//! the new one. A node that came back may die again.
//!
//! Checked at every step, against a reference memory updated at each
//! access: at most one writer per page, or readers only; every copy on a
//! live node holds the last completed write (so no read copy is older than
//! it); a read sees the last write; a first touch runs once per page (per
//! release) and never for a page the home holds. A request ends with
//! [`PageAction::Failed`] only after a death, when no live node holds a copy
//! and the page was at risk (every node holding it died, or it is an
//! unknown page of a container whose manager died or whose home died since
//! making it), and a failed page never comes back until released. Every
//! operation completes within a deadline, and at the end no request,
//! release or recovery is left.

use crate::events::{Queue, Trace};
use crate::failure::Seeded;
use crate::rng::Rng;
use crate::table::{Actions, MapTable};
use cohort_proto::container::{
    home_of, manager_of, Access, Backing, ContainerNode, Lookup, PageAction, PageId, PageMsg,
    PageRange, PageRecord, Want,
};
use cohort_proto::container_msg::{decode, encode, MAX_LEN};
use cohort_proto::error::Error;
use cohort_proto::node::{NodeId, NodeSet};
use cohort_proto::task_msg::PAGE_SIZE;
use std::collections::{BTreeMap, BTreeSet};

/// Events kept for the trace of a failing run (`COHORT_SIM_TRACE` sets
/// another number).
const TRACE_LEN: usize = 60;
/// Longest an operation may take (simulated ticks).
const DEADLINE: u64 = 200_000;
/// Most events of one run (more is a livelock at one instant).
const MAX_EVENTS: u64 = 3_000_000;

/// Parameters of one run.
#[derive(Clone, Debug)]
pub struct Config {
    /// Seed of every random choice.
    pub seed: u64,
    /// Number of nodes, 2..=64.
    pub nodes: usize,
    /// Threads per node.
    pub threads: usize,
    /// Operations per thread.
    pub ops: u32,
    /// Pages per container.
    pub pages: u64,
    /// Largest message delay, in ticks.
    pub max_delay: u64,
    /// Percent of writes among accesses.
    pub write_percent: u64,
    /// Percent of operations that release a range.
    pub release_percent: u64,
    /// Percent of operations that flush a page.
    pub flush_percent: u64,
    /// Nodes that die (fewer than `nodes`).
    pub deaths: usize,
    /// Deaths happen at a random time in `1..=death_horizon`.
    pub death_horizon: u64,
    /// Percent of dead nodes that come back as a fresh incarnation.
    pub rejoin_percent: u64,
}

impl Config {
    /// The workload of seed `seed` on `nodes` nodes.
    pub fn random(seed: u64, nodes: usize) -> Config {
        let mut rng = Rng::new(seed ^ 0x00c0_de0f_ca7e);
        let deaths = match rng.below(10) {
            0..=3 => 0,
            4..=7 => 1,
            _ => 2,
        }
        .min(nodes.saturating_sub(1));
        Config {
            seed,
            nodes,
            threads: rng.range(1, 3) as usize,
            ops: rng.range(5, 25) as u32,
            pages: rng.range(2, 10),
            max_delay: rng.range(1, 30),
            write_percent: rng.range(10, 70),
            release_percent: rng.range(0, 10),
            flush_percent: rng.range(0, 8),
            deaths,
            death_horizon: rng.range(5, 400),
            rejoin_percent: if rng.chance(60) {
                rng.range(30, 100)
            } else {
                0
            },
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

/// Counts of a run.
#[derive(Clone, Debug, Default)]
pub struct Stats {
    /// Reads checked.
    pub reads: u64,
    /// Writes.
    pub writes: u64,
    /// Accesses that ended with `Failed` (SIGBUS).
    pub failed: u64,
    /// Faults that sent a request.
    pub faults: u64,
    /// Releases completed.
    pub releases: u64,
    /// Nodes killed.
    pub deaths: u64,
    /// Dead nodes come back as fresh incarnations.
    pub rejoins: u64,
    /// Messages between different nodes.
    pub messages: u64,
    /// Page contents sent (copies, transfers, injections).
    pub data_messages: u64,
    /// First touches.
    pub first_touches: u64,
    /// Pages adopted from a home's memory.
    pub adoptions: u64,
    /// Containers made by nodes that came back.
    pub made: u64,
    /// Accesses to their pages by other nodes than their home.
    pub made_accesses: u64,
    /// Runs added up.
    pub runs: u64,
}

impl Stats {
    /// Adds the counts of another run.
    pub fn add(&mut self, o: &Stats) {
        self.reads += o.reads;
        self.writes += o.writes;
        self.failed += o.failed;
        self.faults += o.faults;
        self.releases += o.releases;
        self.deaths += o.deaths;
        self.rejoins += o.rejoins;
        self.messages += o.messages;
        self.data_messages += o.data_messages;
        self.first_touches += o.first_touches;
        self.adoptions += o.adoptions;
        self.made += o.made;
        self.made_accesses += o.made_accesses;
        self.runs += o.runs;
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Access { page: PageId, write: bool },
    Release(PageRange),
    Flush(PageId),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Idle,
    Paging(PageId),
    Releasing(u32),
    Done,
    Dead,
}

#[derive(Clone, Debug)]
struct Thread {
    node: NodeId,
    state: State,
    op: Option<Op>,
    ops_left: u32,
    started: u64,
}

#[derive(Clone, Debug)]
struct Message {
    from: NodeId,
    to: NodeId,
    /// Incarnations of the sender and of the receiver.
    from_inc: u32,
    to_inc: u32,
    bytes: Vec<u8>,
    /// The page whose ownership the message carries (a transfer or an
    /// injection), for the loss checks. A copy in flight does not keep a
    /// page alive: its owner holds it, or it may be stale.
    data_page: Option<PageId>,
}

#[derive(Clone, Debug)]
enum Event {
    Deliver(Message),
    Wake(usize),
    Kill(NodeId),
    /// Incarnation `inc` of `at` is told `dead` died.
    NodeDown {
        at: NodeId,
        inc: u32,
        dead: NodeId,
    },
    /// The node comes back, fresh.
    Rejoin(NodeId),
    /// Incarnation `inc` of `at` is told `node` is up (a new incarnation).
    NodeUp {
        at: NodeId,
        inc: u32,
        node: NodeId,
    },
}

struct Node {
    container: ContainerNode<MapTable<PageId, PageRecord>>,
    copies: BTreeMap<PageId, u64>,
    backing: BTreeMap<PageId, u64>,
    alive: bool,
    /// Incarnation: 0 at boot, one more at each return.
    inc: u32,
    /// Deaths so far.
    deaths: u32,
    /// This incarnation made its container.
    made: bool,
}

/// A container the threads use.
#[derive(Clone, Copy, Debug)]
struct Made {
    id: u32,
    /// Its home (`None`: unhomed), and how many times the home had died
    /// when it was made.
    home: Option<(NodeId, u32)>,
}

struct Held<'a>(&'a BTreeMap<PageId, u64>);

impl Backing for Held<'_> {
    fn holds(&self, page: PageId) -> bool {
        self.0.contains_key(&page)
    }
}

/// The reference memory.
#[derive(Default)]
struct Reference {
    /// Last completed write of each existing page (absent: not created, or
    /// released since).
    values: BTreeMap<PageId, u64>,
    /// Pages a request failed on (until released).
    lost: BTreeSet<PageId>,
    /// Pages that had no copy on any survivor at a death.
    at_risk: BTreeSet<PageId>,
}

/// One simulated cluster running container layers only.
pub struct Sim {
    cfg: Config,
    rng: Rng,
    now: u64,
    queue: Queue<Event>,
    chan_last: Vec<u64>,
    /// `cut[s * n + d]`: messages from dead `d` reach `s` before this time.
    cut: Vec<u64>,
    /// `up_at[s * n + d]`: `s` is told of `d`'s current incarnation then
    /// (`d`'s messages reach `s` after it).
    up_at: Vec<u64>,
    /// Time every survivor has been told of the last death of a node.
    down_done: Vec<u64>,
    /// Nodes that died at least once (their current incarnation, if any,
    /// is not the first).
    scarred: NodeSet,
    nodes: Vec<Node>,
    threads: Vec<Thread>,
    containers: Vec<Made>,
    /// Serial of the next container a node makes.
    next_serial: u16,
    reference: Reference,
    dead: NodeSet,
    next_value: u64,
    releases: BTreeMap<(NodeId, u32), usize>,
    trace: Trace,
    /// Counts.
    pub stats: Stats,
}

type Result<T> = std::result::Result<T, Box<Failure>>;

fn contents(value: u64) -> [u8; PAGE_SIZE] {
    let mut page = [0u8; PAGE_SIZE];
    for chunk in page.chunks_exact_mut(8) {
        chunk.copy_from_slice(&value.to_le_bytes());
    }
    page
}

fn value_of(page: &[u8; PAGE_SIZE]) -> Option<u64> {
    let mut chunks = page.chunks_exact(8);
    let first = u64::from_le_bytes(chunks.next()?.try_into().ok()?);
    chunks.all(|c| c == first.to_le_bytes()).then_some(first)
}

impl Sim {
    /// Builds the cluster of `cfg`.
    pub fn new(cfg: Config) -> Result<Sim> {
        let n = cfg.nodes;
        let mut rng = Rng::new(cfg.seed);
        let home0 = NodeId(rng.below(n as u64) as u8);
        let home2 = NodeId(rng.below(n as u64) as u8);
        let mut sim = Sim {
            rng,
            now: 0,
            queue: Queue::default(),
            chan_last: vec![0; n * n],
            cut: vec![0; n * n],
            up_at: vec![0; n * n],
            down_done: vec![0; n],
            scarred: NodeSet::EMPTY,
            nodes: Vec::new(),
            threads: Vec::new(),
            containers: Vec::new(),
            next_serial: 4,
            reference: Reference::default(),
            dead: NodeSet::EMPTY,
            next_value: 1,
            releases: BTreeMap::new(),
            trace: Trace::new(TRACE_LEN),
            stats: Stats {
                runs: 1,
                ..Stats::default()
            },
            cfg,
        };
        for i in 0..n {
            let container = ContainerNode::new(NodeId(i as u8), n, MapTable::new(None))
                .map_err(|e| sim.failure(format!("container: {e:?}")))?;
            sim.nodes.push(Node {
                container,
                copies: BTreeMap::new(),
                backing: BTreeMap::new(),
                alive: true,
                inc: 0,
                deaths: 0,
                made: false,
            });
        }
        for (home, serial) in [(Some(home0), 1), (None, 2), (Some(home2), 3)] {
            let made = match home {
                Some(home) => sim.make_container(home, serial)?,
                None => Made {
                    id: u32::from(serial),
                    home: None,
                },
            };
            sim.containers.push(made);
        }
        // The initial address space: its home's memory holds some pages.
        for index in 0..sim.cfg.pages {
            if sim.rng.chance(60) {
                let page = PageId {
                    container: sim.containers[0].id,
                    index,
                };
                let value = sim.new_value();
                sim.nodes[home0.index()].backing.insert(page, value);
                sim.reference.values.insert(page, value);
            }
        }
        for node in 0..n {
            for _ in 0..sim.cfg.threads {
                sim.threads.push(Thread {
                    node: NodeId(node as u8),
                    state: State::Idle,
                    op: None,
                    ops_left: sim.cfg.ops,
                    started: 0,
                });
                let t = sim.threads.len() - 1;
                let delay = sim.rng.range(0, 10);
                sim.schedule(delay, Event::Wake(t));
            }
        }
        let mut victims: Vec<usize> = (0..n).collect();
        for _ in 0..sim.cfg.deaths {
            let pick = sim.rng.below(victims.len() as u64) as usize;
            let victim = victims.swap_remove(pick);
            let at = sim.rng.range(1, sim.cfg.death_horizon);
            sim.schedule(at, Event::Kill(NodeId(victim as u8)));
        }
        Ok(sim)
    }

    /// The id of container `serial` homed at `home`, made there.
    fn make_container(&mut self, home: NodeId, serial: u16) -> Result<Made> {
        let node = &self.nodes[home.index()];
        let id = node
            .container
            .new_container_id(serial)
            .map_err(|e| self.failure(format!("container id at {}: {e:?}", home.0)))?;
        Ok(Made {
            id,
            home: Some((home, node.deaths)),
        })
    }

    /// A node that came back makes its container once it finished joining
    /// (until then it cannot: [`ContainerNode::new_container_id`] is
    /// `Busy`); its memory holds some of the pages.
    fn maybe_make_container(&mut self, node: NodeId) -> Result<()> {
        let me = node.index();
        if self.nodes[me].inc == 0 || self.nodes[me].made {
            return Ok(());
        }
        let joining = self.nodes[me].container.is_joining();
        match self.nodes[me].container.new_container_id(self.next_serial) {
            Err(Error::Busy) if joining => return Ok(()),
            Ok(_) if joining => {
                return Err(self.failure(format!("node {me} makes a container while joining")))
            }
            _ => {}
        }
        let made = self.make_container(node, self.next_serial)?;
        self.next_serial = self.next_serial.wrapping_add(1);
        self.nodes[me].made = true;
        self.note(format!("node {me} makes container {:#x}", made.id));
        for index in 0..self.cfg.pages {
            if self.rng.chance(60) {
                let page = PageId {
                    container: made.id,
                    index,
                };
                let value = self.new_value();
                self.nodes[me].backing.insert(page, value);
                self.reference.values.insert(page, value);
            }
        }
        self.containers.push(made);
        self.stats.made += 1;
        Ok(())
    }

    fn new_value(&mut self) -> u64 {
        let v = self.next_value;
        self.next_value += 1;
        v
    }

    fn failure(&self, message: String) -> Box<Failure> {
        Box::new(Failure {
            config: self.cfg.clone(),
            message: format!("t={}: {message}", self.now),
            trace: self.trace.lines(),
        })
    }

    fn note(&mut self, line: String) {
        self.trace.note(self.now, line);
    }

    fn schedule(&mut self, delay: u64, event: Event) {
        self.queue.push(self.now + delay, event);
    }

    fn send(&mut self, from: NodeId, to: NodeId, msg: PageMsg) -> Result<()> {
        let mut bytes = vec![0u8; MAX_LEN];
        let data = if msg.carries_data() {
            let page = msg.page().unwrap_or(PageId {
                container: 0,
                index: 0,
            });
            match self.nodes[from.index()].copies.get(&page) {
                Some(&v) => Some(contents(v)),
                None => {
                    return Err(
                        self.failure(format!("node {} sends {msg:?} without a copy", from.0))
                    )
                }
            }
        } else {
            None
        };
        let len = encode(&msg, data.as_ref(), &mut bytes)
            .map_err(|e| self.failure(format!("encode {msg:?}: {e:?}")))?;
        bytes.truncate(len);
        let data_page = match msg {
            PageMsg::Transfer { page, .. } | PageMsg::Inject { page, .. } => Some(page),
            _ => None,
        };
        if self.dead.contains(to) {
            // Sent before the sender learned of the death: it vanishes.
            // Ownership (or a creation) sent there is lost with the node.
            if let PageMsg::Transfer { page, .. }
            | PageMsg::Inject { page, .. }
            | PageMsg::Create { page, .. } = msg
            {
                self.reference.at_risk.insert(page);
            }
            return Ok(());
        }
        let message = Message {
            from,
            to,
            from_inc: self.nodes[from.index()].inc,
            to_inc: self.nodes[to.index()].inc,
            bytes,
            data_page,
        };
        if from == to {
            self.schedule(0, Event::Deliver(message));
            return Ok(());
        }
        self.stats.messages += 1;
        if msg.carries_data() {
            self.stats.data_messages += 1;
        }
        let chan = from.index() * self.cfg.nodes + to.index();
        let delay = self.rng.range(1, self.cfg.max_delay);
        // Not before the receiver was told the sender is up.
        let up = self.up_at[to.index() * self.cfg.nodes + from.index()] + 1;
        let at = (self.now + delay).max(self.chan_last[chan]).max(up);
        self.chan_last[chan] = at;
        self.schedule(at - self.now, Event::Deliver(message));
        Ok(())
    }

    /// Runs to the end, checking at every step.
    pub fn run(&mut self) -> Result<()> {
        let mut steps = 0u64;
        while let Some((time, event)) = self.queue.pop() {
            self.now = time;
            steps += 1;
            if steps > MAX_EVENTS {
                return Err(self.failure("livelock: too many events".into()));
            }
            match event {
                Event::Deliver(msg) => self.deliver(msg)?,
                Event::Wake(t) => self.wake(t)?,
                Event::Kill(node) => self.kill(node)?,
                Event::NodeDown { at, inc, dead } => self.node_down(at, inc, dead)?,
                Event::Rejoin(node) => self.rejoin(node)?,
                Event::NodeUp { at, inc, node } => self.node_up(at, inc, node)?,
            }
            self.check_deadlines()?;
        }
        self.check_end()
    }

    // ---------------------------------------------------------------- deaths

    fn kill(&mut self, victim: NodeId) -> Result<()> {
        if self.dead.len() + 1 >= self.cfg.nodes || !self.nodes[victim.index()].alive {
            return Ok(());
        }
        self.note(format!("node {} dies", victim.0));
        self.stats.deaths += 1;
        self.dead.insert(victim);
        self.scarred.insert(victim);
        self.nodes[victim.index()].alive = false;
        self.nodes[victim.index()].deaths += 1;
        for th in self.threads.iter_mut() {
            if th.node == victim && th.state != State::Done {
                th.state = State::Dead;
            }
        }
        // The pages no survivor holds nor receives are at risk.
        for page in self.universe() {
            self.assess(page);
        }
        // Survivors are told after their own delays; messages from the
        // dead node reach each of them until a cut before that.
        let n = self.cfg.nodes;
        for s in 0..n {
            if !self.nodes[s].alive {
                continue;
            }
            // After it was told the victim was up, if it was not yet.
            let up = self.up_at[s * n + victim.index()] + 1;
            let delay = self
                .rng
                .range(1, 3 * self.cfg.max_delay + 1)
                .max(up.saturating_sub(self.now));
            self.cut[s * n + victim.index()] = self.now + self.rng.range(0, delay);
            self.down_done[victim.index()] = self.down_done[victim.index()].max(self.now + delay);
            let inc = self.nodes[s].inc;
            self.schedule(
                delay,
                Event::NodeDown {
                    at: NodeId(s as u8),
                    inc,
                    dead: victim,
                },
            );
        }
        if self.rng.chance(self.cfg.rejoin_percent) {
            // Once every survivor knows it died.
            let at = self.down_done[victim.index()] + self.rng.range(1, 200);
            self.schedule(at - self.now, Event::Rejoin(victim));
        }
        Ok(())
    }

    /// A dead node comes back as a fresh incarnation.
    fn rejoin(&mut self, node: NodeId) -> Result<()> {
        let n = self.cfg.nodes;
        let j = node.index();
        if self.nodes[j].alive {
            return Ok(());
        }
        self.note(format!("node {} comes back", node.0));
        self.stats.rejoins += 1;
        let container = ContainerNode::rejoin(node, n, MapTable::new(None))
            .map_err(|e| self.failure(format!("rejoin: {e:?}")))?;
        let inc = self.nodes[j].inc + 1;
        let deaths = self.nodes[j].deaths;
        self.nodes[j] = Node {
            container,
            copies: BTreeMap::new(),
            backing: BTreeMap::new(),
            alive: true,
            inc,
            deaths,
            made: false,
        };
        self.dead.remove(node);
        // The messaging layer reports every node up to the newcomer at once,
        // the newcomer to each node after its own delay.
        for s in 0..n {
            if s == j || !self.nodes[s].alive {
                continue;
            }
            self.up_at[j * n + s] = self.now;
            let mut out = Actions::new();
            if let Err(e) = self.nodes[j].container.node_up(NodeId(s as u8), &mut out) {
                return Err(self.failure(format!("node_up({s}) at {j}: {e:?}")));
            }
            self.actions(node, out, None)?;
            let delay = self.rng.range(1, 3 * self.cfg.max_delay + 1);
            self.up_at[s * n + j] = self.now + delay;
            let at_inc = self.nodes[s].inc;
            self.schedule(
                delay,
                Event::NodeUp {
                    at: NodeId(s as u8),
                    inc: at_inc,
                    node,
                },
            );
        }
        for _ in 0..self.cfg.threads {
            self.threads.push(Thread {
                node,
                state: State::Idle,
                op: None,
                ops_left: self.cfg.ops,
                started: 0,
            });
            let t = self.threads.len() - 1;
            let delay = self.rng.range(0, 10);
            self.schedule(delay, Event::Wake(t));
        }
        // It may die again, racing its own join.
        if deaths < 2 && self.rng.chance(self.cfg.rejoin_percent / 2) {
            let at = self.rng.range(1, self.cfg.death_horizon);
            self.schedule(at, Event::Kill(node));
        }
        Ok(())
    }

    fn node_up(&mut self, at: NodeId, inc: u32, node: NodeId) -> Result<()> {
        if !self.nodes[at.index()].alive || self.nodes[at.index()].inc != inc {
            return Ok(());
        }
        self.note(format!("node {} told node {} is up", at.0, node.0));
        let mut out = Actions::new();
        if let Err(e) = self.nodes[at.index()].container.node_up(node, &mut out) {
            return Err(self.failure(format!("node_up({}) at {}: {e:?}", node.0, at.0)));
        }
        self.actions(at, out, None)
    }

    /// After a death: `page` is at risk if no survivor holds it, nor is a
    /// copy of it on its way between survivors.
    fn assess(&mut self, page: PageId) {
        let in_flight = self.queue.pending().any(|e| match e {
            Event::Deliver(m) => {
                m.data_page == Some(page)
                    && !self.dead.contains(m.from)
                    && !self.dead.contains(m.to)
            }
            _ => false,
        });
        let held = self
            .nodes
            .iter()
            .any(|n| n.alive && (n.copies.contains_key(&page) || n.backing.contains_key(&page)));
        if held || in_flight {
            return;
        }
        let exists = self.reference.values.contains_key(&page);
        // A page its manager believes created may have been created on the
        // dead node (or its creation vanished with it): the protocol cannot
        // tell, so it may fail it.
        let recorded = self.nodes.iter().any(|n| {
            n.alive
                && n.container
                    .record(page)
                    .is_some_and(|r| r.owner_of_record.is_some())
        });
        if exists || recorded {
            self.reference.at_risk.insert(page);
        }
    }

    fn node_down(&mut self, at: NodeId, inc: u32, dead: NodeId) -> Result<()> {
        if !self.nodes[at.index()].alive || self.nodes[at.index()].inc != inc {
            return Ok(());
        }
        self.note(format!("node {} told node {} died", at.0, dead.0));
        let mut out = Actions::new();
        if let Err(e) = self.nodes[at.index()].container.node_down(dead, &mut out) {
            return Err(self.failure(format!("node_down({}) at {}: {e:?}", dead.0, at.0)));
        }
        self.actions(at, out, None)
    }

    fn universe(&self) -> Vec<PageId> {
        let mut pages = Vec::new();
        for made in &self.containers {
            for index in 0..self.cfg.pages {
                pages.push(PageId {
                    container: made.id,
                    index,
                });
            }
        }
        pages
    }

    /// Whether the protocol may fail requests for `page` that no node knows:
    /// its container's home died since making it (even if it came back: its
    /// memory did not), or, unhomed, its manager did.
    fn orphaned(&self, page: PageId) -> bool {
        match self.made(page.container).and_then(|m| m.home) {
            Some((home, deaths)) => self.nodes[home.index()].deaths > deaths,
            None => self.scarred.contains(manager_of(page, self.cfg.nodes)),
        }
    }

    fn made(&self, container: u32) -> Option<Made> {
        self.containers.iter().find(|m| m.id == container).copied()
    }

    // ---------------------------------------------------------------- threads

    fn wake(&mut self, t: usize) -> Result<()> {
        if self.threads[t].state != State::Idle {
            return Ok(());
        }
        let op = match self.threads[t].op {
            Some(op) => op,
            None => {
                if self.threads[t].ops_left == 0 {
                    self.threads[t].state = State::Done;
                    return Ok(());
                }
                let node = self.threads[t].node;
                self.maybe_make_container(node)?;
                let op = self.choose();
                self.threads[t].op = Some(op);
                self.threads[t].started = self.now;
                let node = self.threads[t].node.0;
                self.note(format!("thread {t} on node {node} starts {op:?}"));
                op
            }
        };
        self.run_op(t, op)
    }

    fn choose(&mut self) -> Op {
        let container = self.containers[self.rng.below(self.containers.len() as u64) as usize].id;
        let index = self.rng.below(self.cfg.pages);
        let page = PageId { container, index };
        let roll = self.rng.below(100);
        if roll < self.cfg.release_percent {
            let end = (index + self.rng.range(1, 3)).min(self.cfg.pages);
            Op::Release(PageRange {
                container,
                first: index,
                end,
            })
        } else if roll < self.cfg.release_percent + self.cfg.flush_percent {
            Op::Flush(page)
        } else {
            Op::Access {
                page,
                write: self.rng.chance(self.cfg.write_percent),
            }
        }
    }

    fn finish(&mut self, t: usize) {
        self.note(format!("thread {t} done"));
        let th = &mut self.threads[t];
        th.op = None;
        th.state = State::Idle;
        th.ops_left = th.ops_left.saturating_sub(1);
        let think = self.rng.range(1, 20);
        self.schedule(think, Event::Wake(t));
    }

    fn retry_later(&mut self, t: usize) {
        self.threads[t].state = State::Idle;
        let delay = self.rng.range(1, 10);
        self.schedule(delay, Event::Wake(t));
    }

    fn run_op(&mut self, t: usize, op: Op) -> Result<()> {
        let node = self.threads[t].node;
        let me = node.index();
        match op {
            Op::Access { page, write } => {
                let mut out = Actions::new();
                let c = &mut self.nodes[me].container;
                let result = if write {
                    c.grab_page(page, &mut out)
                } else {
                    c.get_page(page, &mut out)
                };
                match result {
                    Ok(Lookup::Hit) => {
                        self.access(t, page, write)?;
                        self.finish(t);
                        Ok(())
                    }
                    Ok(Lookup::Wait) => {
                        if !out.0.is_empty() {
                            self.stats.faults += 1;
                        }
                        self.threads[t].state = State::Paging(page);
                        self.actions(node, out, None)
                    }
                    Err(Error::Busy) => {
                        self.retry_later(t);
                        Ok(())
                    }
                    Err(e) => Err(self.failure(format!("fault on {page:?} at {me}: {e:?}"))),
                }
            }
            Op::Release(range) => {
                let mut out = Actions::new();
                match self.nodes[me].container.release(
                    range.container,
                    range.first,
                    range.end,
                    &mut out,
                ) {
                    Ok(id) => {
                        self.releases.insert((node, id), t);
                        self.threads[t].state = State::Releasing(id);
                        self.actions(node, out, None)
                    }
                    Err(Error::Busy) | Err(Error::NoSpace) => {
                        self.retry_later(t);
                        Ok(())
                    }
                    Err(e) => Err(self.failure(format!("release {range:?} at {me}: {e:?}"))),
                }
            }
            Op::Flush(page) => {
                // Known limit (see container.rs, "Limits"): an injection
                // into a node whose fence is still up after the release
                // completed is dropped. Flushes wait until no node is fenced.
                if self
                    .nodes
                    .iter()
                    .any(|n| n.alive && n.container.is_fenced(page))
                {
                    self.finish(t);
                    return Ok(());
                }
                let live = self.live().without(node);
                let Some(fallback) = live.next_after(NodeId(self.rng.below(64) as u8)) else {
                    self.finish(t);
                    return Ok(());
                };
                let mut out = Actions::new();
                match self.nodes[me]
                    .container
                    .flush_page(page, fallback, &mut out)
                {
                    Ok(()) => {
                        self.actions(node, out, None)?;
                        if !self.dead.is_empty() {
                            // A read copy flushed before this node learned
                            // its owner died may have been the last one.
                            self.assess(page);
                        }
                    }
                    Err(Error::Busy) | Err(Error::Invalid) => {}
                    Err(e) => return Err(self.failure(format!("flush {page:?}: {e:?}"))),
                }
                self.finish(t);
                self.check_page(page)
            }
        }
    }

    fn live(&self) -> NodeSet {
        NodeSet::first(self.cfg.nodes).minus(self.dead)
    }

    /// Performs an access on the local copy and checks it.
    fn access(&mut self, t: usize, page: PageId, write: bool) -> Result<()> {
        let node = self.threads[t].node;
        if self.reference.lost.contains(&page) {
            return Err(self.failure(format!(
                "node {} accesses {page:?}, failed earlier and not released",
                node.0
            )));
        }
        let copy = self.nodes[node.index()].copies.get(&page).copied();
        let expected = self.reference.values.get(&page).copied();
        if copy.is_none() || copy != expected {
            return Err(self.failure(format!(
                "sequential consistency: node {} reads {copy:?} from {page:?}, latest write {expected:?}",
                node.0
            )));
        }
        let home = self.made(page.container).and_then(|m| m.home);
        if home.is_some_and(|(home, deaths)| home != node && deaths > 0) {
            self.stats.made_accesses += 1;
        }
        if write {
            let v = self.new_value();
            self.nodes[node.index()].copies.insert(page, v);
            self.reference.values.insert(page, v);
            self.stats.writes += 1;
        } else {
            self.stats.reads += 1;
        }
        Ok(())
    }

    // ---------------------------------------------------------------- messages

    fn deliver(&mut self, msg: Message) -> Result<()> {
        let (from, to) = (msg.from, msg.to);
        let n = self.cfg.nodes;
        if !self.nodes[to.index()].alive || self.nodes[to.index()].inc != msg.to_inc {
            return Ok(());
        }
        let sender_gone =
            !self.nodes[from.index()].alive || self.nodes[from.index()].inc != msg.from_inc;
        if sender_gone && self.now >= self.cut[to.index() * n + from.index()] {
            return Ok(());
        }
        let (pm, data) = match decode(&msg.bytes) {
            Ok(x) => x,
            Err(e) => return Err(self.failure(format!("decode from {}: {e:?}", from.0))),
        };
        let value = match data {
            Some(page) => match value_of(page) {
                Some(v) => Some(v),
                None => return Err(self.failure(format!("{pm:?}: garbled contents"))),
            },
            None => None,
        };
        self.note(format!("{}->{}: {pm:?} {value:?}", from.0, to.0));
        let mut out = Actions::new();
        let node = &mut self.nodes[to.index()];
        if let Err(e) = node
            .container
            .on_message(from, pm, &Held(&node.backing), &mut out)
        {
            return Err(self.failure(format!("{pm:?} at node {}: {e:?}", to.0)));
        }
        self.actions(to, out, value)?;
        match pm.page() {
            Some(page) => {
                if sender_gone {
                    // A message of the dead node, delivered late (an
                    // invalidation, a transfer): it may have taken the last
                    // surviving copy.
                    self.assess(page);
                }
                self.check_page(page)
            }
            None => Ok(()),
        }
    }

    fn actions(&mut self, node: NodeId, out: Actions<PageAction>, data: Option<u64>) -> Result<()> {
        let me = node.index();
        for action in out.0 {
            match action {
                PageAction::Send { to, msg } => self.send(node, to, msg)?,
                PageAction::FirstTouch { page } => {
                    if self.reference.values.contains_key(&page) {
                        return Err(self.failure(format!("first touch of existing {page:?}")));
                    }
                    if self.nodes[me].backing.contains_key(&page) {
                        return Err(self.failure(format!("first touch of {page:?} its home holds")));
                    }
                    self.reference.values.insert(page, 0);
                    self.nodes[me].copies.insert(page, 0);
                    self.stats.first_touches += 1;
                }
                PageAction::Adopt { page } => {
                    let home = self.made(page.container).and_then(|m| m.home);
                    if home_of(page.container) != Some(node)
                        || home.is_none_or(|(_, deaths)| deaths != self.nodes[me].deaths)
                    {
                        return Err(
                            self.failure(format!("node {me} adopts {page:?}, not its home"))
                        );
                    }
                    let Some(v) = self.nodes[me].backing.remove(&page) else {
                        return Err(self.failure(format!("node {me} adopts {page:?} it lacks")));
                    };
                    self.nodes[me].copies.insert(page, v);
                    self.stats.adoptions += 1;
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
                PageAction::WriteProtect { .. } | PageAction::Flushed { .. } => {}
                PageAction::Ready { page, access } => {
                    for t in 0..self.threads.len() {
                        if self.threads[t].node != node
                            || self.threads[t].state != State::Paging(page)
                        {
                            continue;
                        }
                        let write =
                            matches!(self.threads[t].op, Some(Op::Access { write: true, .. }));
                        let needed = if write { Access::Write } else { Access::Read };
                        if access >= needed {
                            // The access completes now, before a later
                            // action of the same event sends the page away.
                            let Some(Op::Access { page, write }) = self.threads[t].op else {
                                continue;
                            };
                            self.access(t, page, write)?;
                            self.finish(t);
                        } else {
                            // Cancelled (release, recovery): back off.
                            self.retry_later(t);
                        }
                    }
                }
                PageAction::Failed { page } => self.failed(node, page)?,
                PageAction::Released { origin, id, range } => self.released(origin, id, range)?,
            }
        }
        Ok(())
    }

    /// A request ended with SIGBUS: only for a page at risk that no live
    /// node holds.
    fn failed(&mut self, node: NodeId, page: PageId) -> Result<()> {
        let exists = self.reference.values.contains_key(&page);
        let allowed = self.reference.at_risk.contains(&page) || (!exists && self.orphaned(page));
        if !allowed || self.scarred.is_empty() {
            return Err(self.failure(format!(
                "node {}: {page:?} failed but was not at risk (exists {exists}, dead {:?})",
                node.0, self.dead
            )));
        }
        for (i, n) in self.nodes.iter().enumerate() {
            if n.alive && n.copies.contains_key(&page) {
                return Err(self.failure(format!(
                    "node {}: {page:?} failed while node {i} holds a copy",
                    node.0
                )));
            }
        }
        self.reference.lost.insert(page);
        for t in 0..self.threads.len() {
            if self.threads[t].node == node && self.threads[t].state == State::Paging(page) {
                self.stats.failed += 1;
                self.finish(t);
            }
        }
        Ok(())
    }

    /// A release completed: nothing of its pages is left; they are fresh.
    fn released(&mut self, origin: NodeId, id: u32, range: PageRange) -> Result<()> {
        self.note(format!("release {}/{id} of {range:?} complete", origin.0));
        for index in range.first..range.end {
            let page = PageId {
                container: range.container,
                index,
            };
            for (i, n) in self.nodes.iter().enumerate() {
                if !n.alive {
                    continue;
                }
                let kept = n.container.record(page).is_some_and(|r| {
                    r.present || r.is_owner || r.owner_of_record.is_some() || r.lost
                });
                if n.copies.contains_key(&page) || n.backing.contains_key(&page) || kept {
                    return Err(self.failure(format!(
                        "release {}/{id} complete but node {i} keeps {page:?}: {:?}",
                        origin.0,
                        n.container.record(page)
                    )));
                }
            }
            self.reference.values.remove(&page);
            self.reference.lost.remove(&page);
            self.reference.at_risk.remove(&page);
        }
        self.stats.releases += 1;
        if let Some(t) = self.releases.remove(&(origin, id)) {
            if self.threads[t].state == State::Releasing(id) {
                self.finish(t);
            }
        }
        Ok(())
    }

    // ---------------------------------------------------------------- checks

    /// One writer or many readers, and every live copy holds the last write.
    fn check_page(&self, page: PageId) -> Result<()> {
        let mut writer = None;
        let mut holders = 0;
        let expected = self.reference.values.get(&page).copied();
        for (i, node) in self.nodes.iter().enumerate() {
            if !node.alive {
                continue;
            }
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
                    "stale copy: node {i} holds {copy:?} of {page:?}, latest write {expected:?}"
                )));
            }
            if self.reference.lost.contains(&page) {
                return Err(self.failure(format!("node {i} holds failed page {page:?}")));
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

    fn check_deadlines(&self) -> Result<()> {
        for (i, t) in self.threads.iter().enumerate() {
            let waiting = !matches!(t.state, State::Done | State::Dead);
            if waiting && t.op.is_some() && self.now > t.started + DEADLINE {
                let record = match t.op {
                    Some(Op::Access { page, .. }) | Some(Op::Flush(page)) => {
                        format!("{:?}", self.nodes[t.node.index()].container.record(page))
                    }
                    _ => String::new(),
                };
                return Err(self.failure(format!(
                    "operation did not complete: thread {i} {:?} in {:?} since t={}; record {record}; views {}",
                    t.op, t.state, t.started, self.views()
                )));
            }
        }
        Ok(())
    }

    /// Each live node's view, for failure messages.
    fn views(&self) -> String {
        let mut text = String::new();
        for (i, node) in self.nodes.iter().enumerate() {
            if node.alive {
                let c = &node.container;
                let gens = &c.gens().0[..self.cfg.nodes];
                text += &format!(
                    "[{i}: {gens:?} recovering {} joining {}] ",
                    c.is_recovering(),
                    c.is_joining()
                );
            }
        }
        text
    }

    fn check_end(&self) -> Result<()> {
        for (i, t) in self.threads.iter().enumerate() {
            if !matches!(t.state, State::Done | State::Dead) {
                return Err(self.failure(format!(
                    "deadlock: nothing left to happen but thread {i} on node {} is {:?} in {:?}",
                    t.node.0, t.op, t.state
                )));
            }
        }
        for (i, node) in self.nodes.iter().enumerate() {
            if !node.alive {
                continue;
            }
            let c = &node.container;
            if c.is_recovering() || c.is_joining() || c.releases_in_progress() != (0, 0) {
                return Err(self.failure(format!(
                    "node {i}: recovery {}, joining {} or releases {:?} left",
                    c.is_recovering(),
                    c.is_joining(),
                    c.releases_in_progress()
                )));
            }
            for (page, rec) in c.records().map() {
                if rec.want != Want::Nothing || rec.expects() || rec.released || rec.reported {
                    return Err(self.failure(format!(
                        "node {i}: request on {page:?} never completed: {rec:?}"
                    )));
                }
            }
        }
        // Every node ends with the same view: the nodes alive, up.
        let alive = self.live();
        let mut view = None;
        for (i, node) in self.nodes.iter().enumerate() {
            if !node.alive {
                continue;
            }
            let c = &node.container;
            if c.live() != alive || *view.get_or_insert(c.gens()) != c.gens() {
                return Err(self.failure(format!(
                    "node {i} ends with view {:?} (live {:?}), nodes alive {alive:?}",
                    c.gens(),
                    c.live()
                )));
            }
        }
        for page in self.universe() {
            self.check_page(page)?;
        }
        Ok(())
    }
}

/// Runs one configuration; returns its counts or the failure.
pub fn run(cfg: Config) -> std::result::Result<Stats, Box<Failure>> {
    let mut sim = Sim::new(cfg)?;
    sim.run()?;
    Ok(sim.stats)
}

/// Runs seeds `seeds` (seed `s` on `2 + s % 7` nodes); returns the counts
/// or the first failure.
pub fn sweep(seeds: std::ops::Range<u64>) -> std::result::Result<Stats, Box<Failure>> {
    let mut total = Stats::default();
    for seed in seeds {
        let nodes = 2 + (seed % 7) as usize;
        total.add(&run(Config::random(seed, nodes))?);
    }
    Ok(total)
}
