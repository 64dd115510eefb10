// SPDX-License-Identifier: GPL-2.0
//! Model check of the shared-memory rings' wake-up protocol under x86-TSO.
//!
//! Two CPUs run the real `shm_ring` functions, one each: a producer's
//! `publish` against a consumer's `prepare_wait` (the consumer is about to
//! sleep on an empty ring), and a consumer's `release` against a
//! producer's `prepare_wait` (the producer is about to sleep on a full
//! ring). The model is x86-TSO as Sewell et al. define it: every CPU has a
//! FIFO store buffer; a store enters the buffer; a load reads the newest
//! buffered store to its address, else memory; the memory takes the oldest
//! store of any buffer at any time; a fence waits until its CPU's buffer is
//! empty. A depth-first search enumerates every interleaving of those
//! steps.
//!
//! The functions are not transcribed into the model: each CPU's next
//! memory operation is found by running the function again on a memory
//! that answers its loads with the values this execution gave so far
//! (stateless re-execution, as loom or CHESS do), so what is checked is
//! the code itself, control flow included. The same search with fences
//! dropped (the memory ignores `fence`) shows why they are there: it finds
//! a lost wake-up (the sleeper sleeps, the other side does not ring),
//! which with the fences no execution has.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, BTreeSet, HashSet, VecDeque};

use cohort_proto::node::NodeId;
use cohort_proto::shm_ring::{Consumer, Layout, Producer, RingMemory, Wait};

/// A region in a `Vec`: the initial state of the model's memory.
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

/// One memory operation of a CPU.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Store(usize, u64),
    Load(usize),
    Fence,
    /// Data copies: the wake-up protocol never depends on their contents.
    Data,
}

/// The memory a function runs on while the model asks it for its next
/// operation: loads are answered from `loads` in order; past their end
/// they return 0 and the run is "starved" (what follows is speculation).
struct Replay<'a> {
    loads: &'a [u64],
    next: Cell<usize>,
    ops: RefCell<Vec<Op>>,
    fences: bool,
}

impl RingMemory for Replay<'_> {
    fn load_acquire_u64(&self, off: usize) -> u64 {
        self.ops.borrow_mut().push(Op::Load(off));
        let i = self.next.get();
        self.next.set(i + 1);
        self.loads.get(i).copied().unwrap_or(0)
    }
    fn store_release_u64(&self, off: usize, val: u64) {
        self.ops.borrow_mut().push(Op::Store(off, val));
    }
    fn read(&self, _off: usize, _buf: &mut [u8]) {
        self.ops.borrow_mut().push(Op::Data);
    }
    fn write(&self, _off: usize, _bytes: &[u8]) {
        self.ops.borrow_mut().push(Op::Data);
    }
    fn fence(&self) {
        if self.fences {
            self.ops.borrow_mut().push(Op::Fence);
        }
    }
}

/// What a CPU's function decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Decision {
    /// It rang the other side's doorbell.
    Rang,
    /// It did not ring.
    Quiet,
    /// It goes to sleep.
    Sleep,
    /// It does not sleep.
    Ready,
    /// It failed (only while speculating past the loads answered so far:
    /// the ring is connected in every real execution).
    Failed,
}

type Program<'a> = &'a dyn Fn(&Replay) -> Decision;

/// The operations `prog` performs given the load values `loads`, and its
/// decision if it finished without needing more loads than given.
fn run(prog: Program, loads: &[u64], fences: bool) -> (Vec<Op>, Option<Decision>) {
    let m = Replay {
        loads,
        next: Cell::new(0),
        ops: RefCell::new(vec![]),
        fences,
    };
    let d = prog(&m);
    let starved = m.next.get() > loads.len();
    (m.ops.into_inner(), (!starved).then_some(d))
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Cpu {
    /// Operations performed.
    done: usize,
    /// Values its loads returned, in order.
    loads: Vec<u64>,
    /// Its store buffer, oldest first.
    buffer: VecDeque<(usize, u64)>,
    decision: Option<Decision>,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct State {
    /// Words stored to memory so far (others hold their initial value).
    memory: BTreeMap<usize, u64>,
    cpus: [Cpu; 2],
}

struct Search<'a> {
    progs: [Program<'a>; 2],
    fences: bool,
    initial: &'a Mem,
    seen: HashSet<State>,
    /// Distinct final decisions (CPU 0, CPU 1).
    outcomes: BTreeSet<(Decision, Decision)>,
}

impl Search<'_> {
    fn memory(&self, s: &State, off: usize) -> u64 {
        s.memory
            .get(&off)
            .copied()
            .unwrap_or_else(|| self.initial.load_acquire_u64(off))
    }

    fn explore(&mut self, s: State) {
        if !self.seen.insert(s.clone()) {
            return;
        }
        let mut moved = false;
        for c in 0..2 {
            let cpu = &s.cpus[c];
            // The memory takes the oldest buffered store.
            if let Some(&(off, val)) = cpu.buffer.front() {
                let mut t = s.clone();
                t.cpus[c].buffer.pop_front();
                t.memory.insert(off, val);
                self.explore(t);
                moved = true;
            }
            if cpu.decision.is_some() {
                continue;
            }
            let (ops, decision) = run(self.progs[c], &cpu.loads, self.fences);
            let mut t = s.clone();
            match ops.get(cpu.done) {
                None => {
                    // Finished: every load it made was answered.
                    t.cpus[c].decision = Some(decision.expect("finished, so not starved"));
                }
                Some(Op::Store(off, val)) => {
                    t.cpus[c].buffer.push_back((*off, *val));
                    t.cpus[c].done += 1;
                }
                Some(Op::Load(off)) => {
                    let val = cpu
                        .buffer
                        .iter()
                        .rev()
                        .find(|(o, _)| o == off)
                        .map(|&(_, v)| v)
                        .unwrap_or_else(|| self.memory(&s, *off));
                    t.cpus[c].loads.push(val);
                    t.cpus[c].done += 1;
                }
                Some(Op::Fence) => {
                    if !cpu.buffer.is_empty() {
                        continue;
                    }
                    t.cpus[c].done += 1;
                }
                Some(Op::Data) => t.cpus[c].done += 1,
            }
            self.explore(t);
            moved = true;
        }
        if !moved {
            let d = |c: usize| s.cpus[c].decision.expect("every CPU finished");
            assert!(d(0) != Failed && d(1) != Failed, "{s:?}");
            self.outcomes.insert((d(0), d(1)));
        }
    }
}

/// Every outcome of `progs` running concurrently from `initial`, and the
/// number of distinct states the search went through.
fn explore(
    initial: &Mem,
    progs: [Program; 2],
    fences: bool,
) -> (BTreeSet<(Decision, Decision)>, usize) {
    let cpu = Cpu {
        done: 0,
        loads: vec![],
        buffer: VecDeque::new(),
        decision: None,
    };
    let mut search = Search {
        progs,
        fences,
        initial,
        seen: HashSet::new(),
        outcomes: BTreeSet::new(),
    };
    search.explore(State {
        memory: BTreeMap::new(),
        cpus: [cpu.clone(), cpu],
    });
    (search.outcomes, search.seen.len())
}

/// Two joined nodes, their ends of ring (0 → 1), and the memory.
fn pair() -> (Mem, Producer, Consumer) {
    let size = Layout::region_size_for(2, 256).unwrap();
    let mem = Mem(RefCell::new(vec![0; size]));
    let l = Layout::with_ring_size(2, size, 256).unwrap();
    l.format(&mem);
    l.join(&mem, NodeId(0), 0).unwrap();
    l.join(&mem, NodeId(1), 1).unwrap();
    let p = l.open_producer(&mem, NodeId(0), NodeId(1)).unwrap();
    let c = l.open_consumer(&mem, NodeId(0), NodeId(1)).unwrap();
    (mem, p, c)
}

fn rang(bell: Option<cohort_proto::shm_ring::Doorbell>) -> Decision {
    if bell.is_some() {
        Decision::Rang
    } else {
        Decision::Quiet
    }
}

fn sleeps(w: Result<Wait, cohort_proto::shm_ring::RingError>) -> Decision {
    match w {
        Ok(Wait::Sleep) => Decision::Sleep,
        Ok(Wait::Ready) => Decision::Ready,
        Err(_) => Decision::Failed,
    }
}

/// CPU 0: the producer publishes a byte it wrote; CPU 1: the consumer found
/// the ring empty and prepares to sleep.
fn consumer_waits(fences: bool) -> (BTreeSet<(Decision, Decision)>, usize) {
    let (mem, mut p, c) = pair();
    assert_eq!(p.write(&mem, b"x"), Ok(1));
    assert_eq!(c.available(&mem), Ok(0));
    let publish = move |m: &Replay| {
        let mut p = p;
        rang(p.publish(m))
    };
    let wait = move |m: &Replay| {
        let mut c = c;
        sleeps(c.prepare_wait(m))
    };
    explore(&mem, [&publish, &wait], fences)
}

/// CPU 0: the producer found the ring full and prepares to sleep; CPU 1:
/// the consumer releases bytes it read.
fn producer_waits(fences: bool) -> (BTreeSet<(Decision, Decision)>, usize) {
    let (mem, mut p, mut c) = pair();
    assert_eq!(p.send(&mem, &[7; 256]).map(|r| r.0), Ok(256));
    assert_eq!(c.skip(&mem, 10), Ok(10));
    assert_eq!(p.free(&mem), Ok(0));
    let wait = move |m: &Replay| {
        let mut p = p;
        sleeps(p.prepare_wait(m, 1))
    };
    let release = move |m: &Replay| {
        let mut c = c;
        rang(c.release(m))
    };
    explore(&mem, [&wait, &release], fences)
}

use Decision::*;

#[test]
fn consumer_wake_up_is_never_lost_with_fences() {
    let (outcomes, states) = consumer_waits(true);
    println!("consumer waits, with fences: {states} states, outcomes {outcomes:?}");
    assert!(
        !outcomes.contains(&(Quiet, Sleep)),
        "lost wake-up: the consumer sleeps on bytes and nobody rings"
    );
    // Every legal outcome is reached: the search does interleave.
    for o in [(Rang, Sleep), (Quiet, Ready), (Rang, Ready)] {
        assert!(outcomes.contains(&o), "{o:?} never happens: {outcomes:?}");
    }
}

#[test]
fn consumer_wake_up_is_lost_without_fences() {
    let (outcomes, states) = consumer_waits(false);
    println!("consumer waits, no fences: {states} states, outcomes {outcomes:?}");
    assert!(
        outcomes.contains(&(Quiet, Sleep)),
        "the model should find the store-buffer reordering: {outcomes:?}"
    );
}

#[test]
fn producer_wake_up_is_never_lost_with_fences() {
    let (outcomes, states) = producer_waits(true);
    println!("producer waits, with fences: {states} states, outcomes {outcomes:?}");
    assert!(
        !outcomes.contains(&(Sleep, Quiet)),
        "lost wake-up: the producer sleeps on room and nobody rings"
    );
    for o in [(Sleep, Rang), (Ready, Quiet), (Ready, Rang)] {
        assert!(outcomes.contains(&o), "{o:?} never happens: {outcomes:?}");
    }
}

#[test]
fn producer_wake_up_is_lost_without_fences() {
    let (outcomes, states) = producer_waits(false);
    println!("producer waits, no fences: {states} states, outcomes {outcomes:?}");
    assert!(outcomes.contains(&(Sleep, Quiet)), "{outcomes:?}");
}

/// The model itself, on the classic store-buffering litmus test
/// (x = 1; r0 = y ‖ y = 1; r1 = x): TSO allows r0 = r1 = 0 without fences
/// and forbids it with them; sequential consistency never allows it.
#[test]
fn model_passes_the_store_buffering_litmus_test() {
    let mem = Mem(RefCell::new(vec![0; 64]));
    let zero = |v: u64| if v == 0 { Sleep } else { Ready };
    let a = |m: &Replay| {
        m.store_release_u64(0, 1);
        m.fence();
        zero(m.load_acquire_u64(8))
    };
    let b = |m: &Replay| {
        m.store_release_u64(8, 1);
        m.fence();
        zero(m.load_acquire_u64(0))
    };
    let (with, _) = explore(&mem, [&a, &b], true);
    let (without, _) = explore(&mem, [&a, &b], false);
    assert!(!with.contains(&(Sleep, Sleep)), "{with:?}");
    assert!(without.contains(&(Sleep, Sleep)), "{without:?}");
    assert_eq!(with.len(), 3);
    assert_eq!(without.len(), 4);
}
