// SPDX-License-Identifier: GPL-2.0
//! Fuzz test of popcorn's task messages (`cohort_proto::task_msg`) and its
//! file messages (`cohort_proto::files`): random
//! byte strings and damaged valid encodings go through every decoder, in a
//! release build 200,000 of each (`cargo test -p cohort-proto --release
//! --test task_msg`), a tenth of that in a debug build.
//!
//! It checks that no decoder panics, that every valid encoding decodes to
//! what was encoded, and that decoding is canonical: whatever bytes a
//! decoder accepts re-encode to exactly those bytes.
//!
//! The generator is a seeded splitmix64; `TASK_MSG_FUZZ_SEED=<n>` varies it
//! and `TASK_MSG_FUZZ_CASES=<n>` changes the number of cases of each kind.

use cohort_proto::files::{
    AttrChange, FileDesc, FileOp, FilePut, FileReady, FileReply, FileReq, FileStat, FileTime,
    LockData, LockKind, LockSpec, LockType, SetAttr, FILE_MAX_DATA, LOCK_TO_END, POS_CURRENT,
    SETFL_FLAGS,
};
use cohort_proto::migration::TaskId;
use cohort_proto::node::{NodeId, NodeSet};
use cohort_proto::pathcall::PathCall;
use cohort_proto::task_msg::*;
use cohort_proto::wire::{Payload, WireError, MAX_ERRNO};

const DEFAULT_SEED: u64 = 0x7a5c_0de5_2024_0002;

#[cfg(not(debug_assertions))]
const DEFAULT_CASES: usize = 200_000;
#[cfg(debug_assertions)]
const DEFAULT_CASES: usize = 20_000;

/// splitmix64.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`).
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn chance(&mut self, num: u64, den: u64) -> bool {
        self.below(den) < num
    }

    fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next() as u8).collect()
    }

    /// A value from a distribution that favours boundaries.
    fn edgy(&mut self) -> u64 {
        match self.below(6) {
            0 => 0,
            1 => u64::MAX,
            2 => self.below(5),
            3 => 1 << self.below(64),
            4 => (1u64 << self.below(64)).wrapping_sub(1),
            _ => self.next(),
        }
    }
}

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn task(rng: &mut Rng) -> TaskId {
    TaskId {
        origin: NodeId(rng.below(64) as u8),
        pid: 1 + rng.below(u64::from(u32::MAX)) as u32,
    }
}

fn fixed<P: Payload>(p: &P) -> Vec<u8> {
    let mut buf = vec![0u8; P::LEN];
    assert_eq!(p.encode(&mut buf), Ok(P::LEN));
    buf
}

/// Decodes `bytes` as `P`; if it decodes, it must re-encode to `bytes`.
fn try_fixed<P: Payload + core::fmt::Debug>(bytes: &[u8]) -> bool {
    match P::decode(bytes) {
        Ok(p) => {
            let mut buf = vec![0u8; P::LEN];
            assert_eq!(p.encode(&mut buf), Ok(P::LEN), "{p:?}");
            assert_eq!(buf, bytes, "{p:?} is not canonical");
            true
        }
        Err(e) => {
            assert_eq!(e, WireError::BadPayload);
            false
        }
    }
}

/// Runs `bytes` through every decoder; returns how many accepted it.
fn decode_all(bytes: &[u8]) -> usize {
    let mut ok = 0;
    ok += usize::from(try_fixed::<Moved>(bytes));
    ok += usize::from(try_fixed::<MigrateAbort>(bytes));
    ok += usize::from(try_fixed::<SyscallIntr>(bytes));
    ok += usize::from(try_fixed::<Exit>(bytes));
    ok += usize::from(try_fixed::<Signal>(bytes));
    ok += usize::from(try_fixed::<MigrateReq>(bytes));
    ok += usize::from(try_fixed::<MigrateReply>(bytes));
    if let Ok(msg) = SyscallMsg::decode(bytes) {
        let mut buf = vec![0u8; msg.encoded_len()];
        assert_eq!(msg.encode(&mut buf), Ok(bytes.len()));
        assert_eq!(buf, bytes);
        ok += 1;
    }
    if let Ok(reply) = SyscallReply::decode(bytes) {
        let mut buf = vec![0u8; reply.encoded_len()];
        assert_eq!(reply.encode(&mut buf), Ok(bytes.len()));
        assert_eq!(buf, bytes);
        ok += 1;
    }
    ok += usize::from(try_fixed::<FileDesc>(bytes));
    ok += usize::from(try_fixed::<FilePut>(bytes));
    ok += usize::from(try_fixed::<FileReady>(bytes));
    ok += usize::from(try_fixed::<FileStat>(bytes));
    if let Ok(req) = FileReq::decode(bytes) {
        let mut buf = vec![0u8; req.encoded_len()];
        assert_eq!(req.encode(&mut buf), Ok(bytes.len()));
        assert_eq!(buf, bytes);
        ok += 1;
    }
    if let Ok(reply) = FileReply::decode(bytes) {
        let mut buf = vec![0u8; reply.encoded_len()];
        assert_eq!(reply.encode(&mut buf), Ok(bytes.len()));
        assert_eq!(buf, bytes);
        ok += 1;
    }
    match decode_migrate(bytes) {
        Ok(msg) => {
            let vmas: Vec<_> = msg.vmas().collect();
            assert_eq!(vmas.len(), msg.nr_vmas());
            let groups: Vec<u32> = msg.body.groups().collect();
            let sigq: Vec<QueuedSignal> = msg.body.sigq().collect();
            assert_eq!(groups.len(), msg.body.nr_groups());
            assert_eq!(sigq.len(), msg.body.nr_sigq());
            let files: Vec<FileDesc> = msg.body.files().collect();
            assert_eq!(files.len(), msg.body.nr_files());
            let extra = MigrateExtra {
                exe: msg.body.exe(),
                groups: &groups,
                sigq: &sigq,
                files: &files,
            };
            let mut buf = vec![0u8; migrate_len_with(&vmas, msg.arch().len(), &extra)];
            assert_eq!(
                encode_migrate_with(&mut buf, &msg.head, &vmas, msg.arch(), &extra),
                Ok(bytes.len())
            );
            assert_eq!(buf, bytes);
            let mut head = MigrateHead::EMPTY;
            assert_eq!(decode_migrate_into(bytes, &mut head), Ok(msg.body));
            assert_eq!(head, msg.head);
            ok += 1;
        }
        Err(e) => {
            assert_eq!(e, WireError::BadPayload);
            let mut head = MigrateHead::EMPTY;
            assert_eq!(decode_migrate_into(bytes, &mut head), Err(e));
        }
    }
    ok
}

fn random_head(rng: &mut Rng) -> MigrateHead {
    let mut h = MigrateHead::EMPTY;
    h.task = task(rng);
    h.tgid = 1 + rng.below(1 << 22) as u32;
    h.parent_pid = rng.below(1 << 22) as u32;
    h.from = NodeId(rng.below(64) as u8);
    h.container = 1 + rng.below(u64::from(u32::MAX)) as u32;
    h.visited = NodeSet(rng.next())
        .union(NodeSet::single(h.task.origin))
        .union(NodeSet::single(h.from));
    let name_len = rng.below(16) as usize;
    for (i, b) in h.comm.iter_mut().enumerate() {
        *b = if i < name_len {
            b'a' + rng.below(26) as u8
        } else {
            0
        };
    }
    h.signals.blocked = rng.next() & !Signals::UNBLOCKABLE;
    h.signals.pending = rng.next();
    for a in h.signals.actions.iter_mut() {
        if rng.chance(1, 4) {
            *a = SigAction {
                handler: rng.edgy(),
                flags: rng.edgy(),
                restorer: rng.edgy(),
                mask: rng.edgy(),
            };
        }
    }
    h.sched = Sched {
        policy: rng.below(7) as i32,
        rt_priority: rng.below(100) as i32,
        nice: rng.below(40) as i32 - 20,
    };
    h.creds = Creds {
        uid: rng.next() as u32,
        gid: rng.next() as u32,
        suid: rng.next() as u32,
        sgid: rng.next() as u32,
        euid: rng.next() as u32,
        egid: rng.next() as u32,
        fsuid: rng.next() as u32,
        fsgid: rng.next() as u32,
        cap_inheritable: rng.edgy(),
        cap_permitted: rng.edgy(),
        cap_effective: rng.edgy(),
        cap_bset: rng.edgy(),
        cap_ambient: rng.edgy(),
        securebits: rng.next() as u32,
        umask: rng.below(0o1000) as u32,
    };
    let pair = |rng: &mut Rng| {
        let a = rng.below(USER_END + 1);
        let b = rng.below(USER_END + 1);
        (a.min(b), a.max(b))
    };
    let (start_code, end_code) = pair(rng);
    let (start_data, end_data) = pair(rng);
    let (start_brk, brk) = pair(rng);
    let (arg_start, arg_end) = pair(rng);
    let (env_start, env_end) = pair(rng);
    h.layout = MmLayout {
        start_code,
        end_code,
        start_data,
        end_data,
        start_brk,
        brk,
        start_stack: rng.below(USER_END + 1),
        arg_start,
        arg_end,
        env_start,
        env_end,
    };
    if rng.chance(3, 4) {
        h.proc = random_proc(rng);
    }
    h
}

fn random_proc(rng: &mut Rng) -> ProcState {
    let mut p = ProcState::EMPTY;
    p.sas_sp = rng.below(USER_END / 2);
    p.sas_size = rng.below(USER_END / 2);
    p.sas_flags = [0, 2, 1 << 31, SS_FLAGS][rng.below(4) as usize];
    p.personality = rng.next() as u32;
    for t in p.itimers.iter_mut() {
        if rng.chance(1, 2) {
            t.value_ns = 1 + rng.below(u64::MAX - 1);
            t.interval_ns = rng.edgy();
        }
    }
    for l in p.rlimits.iter_mut() {
        let a = rng.edgy();
        let b = rng.edgy();
        *l = Rlimit {
            cur: a.min(b),
            max: a.max(b),
        };
    }
    p.timer_slack_ns = rng.edgy();
    p.pdeath_signal = rng.below(65) as u32;
    p.flags = rng.below(u64::from(PROC_FLAGS) + 1) as u32;
    p.dumpable = rng.below(3) as u32;
    p.robust_list = rng.below(USER_END);
    p.clear_child_tid = rng.below(USER_END);
    if rng.chance(1, 2) {
        p.rseq = 1 + rng.below(USER_END - 1);
        p.rseq_len = rng.next() as u32;
        p.rseq_sig = rng.next() as u32;
    }
    p.monotonic_ns = (rng.next() >> 1) as i64;
    p.boottime_ns = (rng.next() >> 1) as i64;
    p
}

fn random_queued(rng: &mut Rng) -> QueuedSignal {
    let signo = 1 + rng.below(64) as u32;
    let mut info = [0u8; SIGINFO_LEN];
    info.copy_from_slice(&rng.bytes(SIGINFO_LEN));
    info[..4].copy_from_slice(&signo.to_le_bytes());
    QueuedSignal {
        signo,
        shared: rng.chance(1, 2),
        info,
    }
}

/// A valid encoding of a random message of a random type.
fn random_file(rng: &mut Rng, fd: u32) -> FileDesc {
    FileDesc {
        fd,
        cloexec: rng.chance(1, 2),
        home: NodeId(rng.below(64) as u8),
        id: 1 + rng.below(u64::MAX - 1),
        f_flags: rng.next() as u32,
        f_mode: rng.next() as u32,
        i_mode: rng.next() as u32,
    }
}

fn random_valid(rng: &mut Rng, paths: &[u8]) -> Vec<u8> {
    match rng.below(18) {
        0 => fixed(&Moved {
            task: task(rng),
            node: NodeId(rng.below(64) as u8),
        }),
        1 => fixed(&MigrateAbort { task: task(rng) }),
        2 => fixed(&Exit {
            task: task(rng),
            code: i64::from(rng.next() as i32),
        }),
        3 => fixed(&Signal {
            task: task(rng),
            signo: 1 + rng.below(64) as u32,
        }),
        4 => fixed(&MigrateReq {
            task: task(rng),
            dest: NodeId(rng.below(64) as u8),
        }),
        5 => fixed(&MigrateReply {
            pid: 1 + rng.below(u64::from(u32::MAX)) as u32,
        }),
        6..=8 => fixed(&SyscallIntr { task: task(rng) }),
        9 => {
            let mut path_store = vec![0u8; 8192];
            let path_buf = &mut path_store[..];
            let call = FwdCall::from_u8(8 + rng.below(7) as u8).unwrap();
            let fd = rng.below(1 << 20) as i32;
            let msg = match call {
                FwdCall::Open => {
                    let len = 1 + rng.below(paths.len() as u64) as usize;
                    SyscallMsg {
                        task: task(rng),
                        call,
                        fd: if rng.chance(1, 2) { AT_FDCWD } else { fd },
                        a: rng.next() & u64::from(u32::MAX),
                        b: rng.below(0o10000),
                        data: &paths[..len],
                    }
                }
                FwdCall::Wait4 => SyscallMsg {
                    task: task(rng),
                    call,
                    fd: 0,
                    a: rng.next() & u64::from(u32::MAX),
                    b: rng.next() & u64::from(u32::MAX),
                    data: &[],
                },
                FwdCall::Kill => SyscallMsg {
                    task: task(rng),
                    call,
                    fd: 0,
                    a: rng.below(u64::from(u32::MAX)),
                    b: rng.below(65),
                    data: &[],
                },
                FwdCall::Tgkill => SyscallMsg {
                    task: task(rng),
                    call,
                    fd: 1 + rng.below(i32::MAX as u64) as i32,
                    a: 1 + rng.below(i32::MAX as u64),
                    b: rng.below(65),
                    data: &[],
                },
                FwdCall::Path => {
                    let len = 1 + rng.below(200) as usize;
                    let call = PathCall {
                        nr: 262,
                        values: [AT_FDCWD as u64, 0, 0, rng.next() & 0xffff, 0, 0],
                        inputs: [&[], &paths[..len], &[], &[], &[], &[]],
                    };
                    let n = call.encode(path_buf).unwrap();
                    SyscallMsg {
                        task: task(rng),
                        call: FwdCall::Path,
                        fd: 0,
                        a: 0,
                        b: 0,
                        data: &path_buf[..n],
                    }
                }
                FwdCall::Getpgid | FwdCall::Getsid => SyscallMsg {
                    task: task(rng),
                    call,
                    fd: 0,
                    a: rng.below(i32::MAX as u64 + 1),
                    b: 0,
                    data: &[],
                },
            };
            let mut buf = vec![0u8; msg.encoded_len()];
            assert_eq!(msg.encode(&mut buf), Ok(buf.len()), "{msg:?}");
            assert_eq!(SyscallMsg::decode(&buf), Ok(msg));
            buf
        }
        10 => {
            let reply = if rng.chance(1, 3) {
                SyscallReply {
                    result: -(1 + rng.below(MAX_ERRNO as u64) as i64),
                    data: &[],
                }
            } else {
                let len = rng.below(300) as usize;
                SyscallReply {
                    result: len as i64,
                    data: &paths[..len],
                }
            };
            let mut buf = vec![0u8; reply.encoded_len()];
            assert_eq!(reply.encode(&mut buf), Ok(buf.len()));
            assert_eq!(SyscallReply::decode(&buf), Ok(reply));
            buf
        }
        12 => {
            let fd = rng.next() as u32;
            fixed(&random_file(rng, fd))
        }
        13 => fixed(&FilePut {
            id: 1 + rng.below(u64::MAX - 1),
            count: 1 + rng.below(u64::from(u32::MAX)) as u32,
        }),
        14 => fixed(&FileReady {
            id: 1 + rng.below(u64::MAX - 1),
            mask: rng.next() as u32,
        }),
        15 => fixed(&FileStat {
            dev: rng.edgy(),
            ino: rng.edgy(),
            mode: rng.next(),
            size: rng.edgy(),
            mtime_nsec: rng.below(1_000_000_000),
            result_mask: rng.next(),
            ..FileStat::default()
        }),
        16 => {
            let op = [
                FileOp::Read,
                FileOp::Write,
                FileOp::Seek,
                FileOp::Stat,
                FileOp::Fsync,
                FileOp::Poll,
                FileOp::Ioctl,
                FileOp::Readdir,
                FileOp::Truncate,
                FileOp::Lock,
                FileOp::SetAttr,
            ][rng.below(11) as usize];
            let setattr = {
                let groups: Vec<u32> = (0..rng.below(4)).map(|_| rng.next() as u32).collect();
                let time = FileTime {
                    sec: rng.edgy() as i64,
                    nsec: rng.below(1_000_000_000) as u32,
                };
                let change = match rng.below(5) {
                    0 => AttrChange::Mode(rng.below(0o10000) as u32),
                    1 => AttrChange::Owner {
                        uid: rng.next() as u32,
                        gid: rng.next() as u32,
                    },
                    2 => AttrChange::Times(None),
                    3 => AttrChange::Times(Some([time, time])),
                    _ => AttrChange::Flags(rng.next() as u32 & SETFL_FLAGS),
                };
                let s = SetAttr {
                    change,
                    creds: Creds {
                        umask: rng.below(0o1000) as u32,
                        ..Creds::default()
                    },
                    groups: &groups,
                };
                let mut v = vec![0u8; s.encoded_len()];
                s.encode(&mut v).unwrap();
                v
            };
            let len = rng.below(paths.len() as u64) as usize;
            let lock_flock = rng.chance(1, 2);
            let posix = !lock_flock && rng.chance(1, 3);
            let mut lock_data = [0u8; LockData::POSIX_LEN];
            let lock_len = LockData {
                pid: rng.next() as i32,
                owner: posix.then(|| TaskId {
                    origin: NodeId(rng.below(64) as u8),
                    pid: rng.next() as u32,
                }),
            }
            .encode(&mut lock_data)
            .unwrap();
            let pos = if rng.chance(1, 2) {
                POS_CURRENT
            } else {
                rng.edgy()
            };
            let (a, b, data): (u64, u64, &[u8]) = match op {
                FileOp::Read => (rng.below(FILE_MAX_DATA as u64 + 1), pos, &[]),
                FileOp::Write => (0, pos, &paths[..len]),
                FileOp::Seek => (rng.edgy(), rng.below(5), &[]),
                FileOp::Stat => (0, 0, &[]),
                FileOp::Fsync => (rng.below(2), 0, &[]),
                FileOp::Poll => (rng.below(u64::from(u32::MAX) + 1), 0, &[]),
                FileOp::Ioctl => (rng.next() & u64::from(u32::MAX), 0, &paths[..len.min(256)]),
                FileOp::Readdir => (rng.below(FILE_MAX_DATA as u64 + 1), 0, &[]),
                FileOp::Truncate => (rng.below(i64::MAX as u64 + 1), 0, &[]),
                FileOp::Lock if lock_flock => (0, LOCK_TO_END, &lock_data[..lock_len]),
                FileOp::Lock => {
                    let a = rng.below(LOCK_TO_END + 1);
                    (
                        a,
                        a + rng.below(LOCK_TO_END - a + 1),
                        &lock_data[..lock_len],
                    )
                }
                FileOp::SetAttr => (0, 0, &setattr),
            };
            let req = FileReq {
                id: 1 + rng.below(u64::MAX - 1),
                op,
                flags: if op == FileOp::Ioctl {
                    rng.below(257) as u32
                } else if op == FileOp::Lock {
                    LockSpec {
                        test: !lock_flock && rng.chance(1, 2),
                        kind: if lock_flock {
                            LockKind::Flock
                        } else if posix {
                            LockKind::Posix
                        } else {
                            LockKind::Ofd
                        },
                        ltype: LockType::from_raw(rng.below(3) as u8).unwrap(),
                    }
                    .flags()
                } else if op == FileOp::SetAttr {
                    0
                } else {
                    rng.next() as u32
                },
                a,
                b,
                data,
            };
            let mut buf = vec![0u8; req.encoded_len()];
            assert_eq!(req.encode(&mut buf), Ok(buf.len()), "{req:?}");
            assert_eq!(FileReq::decode(&buf), Ok(req));
            buf
        }
        17 => {
            let reply = if rng.chance(1, 3) {
                FileReply {
                    result: -(1 + rng.below(MAX_ERRNO as u64) as i64),
                    mask: rng.next() as u32,
                    data: &[],
                }
            } else {
                let len = rng.below(300) as usize;
                FileReply {
                    result: rng.below(1 << 40) as i64,
                    mask: rng.next() as u32,
                    data: &paths[..len],
                }
            };
            let mut buf = vec![0u8; reply.encoded_len()];
            assert_eq!(reply.encode(&mut buf), Ok(buf.len()));
            assert_eq!(FileReply::decode(&buf), Ok(reply));
            buf
        }
        _ => {
            let head = random_head(rng);
            let nr = match rng.below(4) {
                0 => 0,
                1 => 1 + rng.below(4),
                2 => rng.below(40),
                _ => rng.below(300),
            };
            let mut vmas = Vec::new();
            let mut at = 0u64;
            for _ in 0..nr {
                let start = at + (rng.below(16) << 12);
                let end = start + ((1 + rng.below(64)) << 12);
                if end > USER_END {
                    break;
                }
                let kind = VmaKind::from_u8(rng.below(6) as u8).unwrap();
                let path: &[u8] = if kind == VmaKind::File {
                    &paths[..1 + rng.below(MAX_VMA_PATH as u64) as usize]
                } else {
                    &[]
                };
                let shared = kind == VmaKind::Shared;
                let pgoff = if shared { rng.below(4) } else { rng.edgy() };
                vmas.push(VmaDesc {
                    start,
                    end,
                    flags: rng.edgy(),
                    pgoff,
                    kind,
                    path,
                    container: if shared {
                        1 + rng.below(1 << 31) as u32
                    } else {
                        0
                    },
                    size: if shared {
                        end - start + ((pgoff + rng.below(8)) << 12)
                    } else {
                        0
                    },
                });
                at = end;
            }
            let arch_len = 1 + rng.below(1000) as usize;
            let arch = rng.bytes(arch_len);
            let exe_len = if rng.chance(1, 2) {
                rng.below(MAX_EXE_PATH as u64 + 1) as usize
            } else {
                0
            };
            let groups: Vec<u32> = (0..rng.below(40)).map(|_| rng.next() as u32).collect();
            let sigq: Vec<QueuedSignal> = (0..rng.below(12)).map(|_| random_queued(rng)).collect();
            let mut files = Vec::new();
            let mut fd = 0u32;
            for _ in 0..rng.below(8) {
                fd += rng.below(5) as u32;
                files.push(random_file(rng, fd));
                fd += 1;
            }
            let extra = MigrateExtra {
                exe: &paths[..exe_len],
                groups: &groups,
                sigq: &sigq,
                files: &files,
            };
            let mut buf = vec![0u8; migrate_len_with(&vmas, arch.len(), &extra)];
            assert_eq!(
                encode_migrate_with(&mut buf, &head, &vmas, &arch, &extra),
                Ok(buf.len())
            );
            let msg = decode_migrate(&buf).unwrap();
            assert_eq!(msg.head, head);
            assert!(msg.vmas().eq(vmas.iter().copied()));
            assert_eq!(msg.arch(), &arch[..]);
            assert_eq!(msg.body.exe(), extra.exe);
            assert!(msg.body.groups().eq(groups.iter().copied()));
            assert!(msg.body.sigq().eq(sigq.iter().copied()));
            assert!(msg.body.files().eq(files.iter().copied()));
            buf
        }
    }
}

/// Damages `bytes` in one of several ways.
fn mutate(rng: &mut Rng, bytes: &mut Vec<u8>) {
    let rounds = 1 + rng.below(3);
    for _ in 0..rounds {
        let len = bytes.len() as u64;
        match rng.below(8) {
            0 if len > 0 => {
                let at = rng.below(len) as usize;
                bytes[at] ^= 1 << rng.below(8);
            }
            1 if len > 0 => {
                let at = rng.below(len) as usize;
                bytes[at] = rng.next() as u8;
            }
            2 if len > 0 => bytes.truncate(rng.below(len) as usize),
            3 => {
                let n = 1 + rng.below(8) as usize;
                let extra = rng.bytes(n);
                bytes.extend_from_slice(&extra);
            }
            4 if len >= 4 => {
                // A length-like field: a boundary value at a random place.
                let at = rng.below(len - 3) as usize;
                let v = match rng.below(4) {
                    0 => 0u32,
                    1 => u32::MAX,
                    2 => rng.below(70_000) as u32,
                    _ => (bytes[at] as u32).wrapping_add(1),
                };
                bytes[at..at + 4].copy_from_slice(&v.to_le_bytes());
            }
            5 if len > 0 => {
                let at = rng.below(len) as usize;
                bytes.remove(at);
            }
            6 => {
                let at = rng.below(len + 1) as usize;
                bytes.insert(at, rng.next() as u8);
            }
            _ if len >= 8 => {
                let at = rng.below(len - 7) as usize;
                bytes[at..at + 8].copy_from_slice(&rng.edgy().to_le_bytes());
            }
            _ => {}
        }
    }
}

/// Random bytes of a length that favours the lengths the decoders expect.
fn random_bytes(rng: &mut Rng) -> Vec<u8> {
    let len = match rng.below(10) {
        0 => rng.below(4) as usize,
        1..=3 => rng.below(32) as usize,
        4 => [6, 8, 10, 14, 22, 4, 1, 1 + PAGE_SIZE][rng.below(8) as usize],
        5 => SYSCALL_HEAD_LEN + rng.below(8) as usize,
        6 => SYSCALL_REPLY_HEAD_LEN + rng.below(8) as usize,
        7 => MigrateHead::LEN + rng.below(64) as usize,
        _ => rng.below(600) as usize,
    };
    let mut bytes = rng.bytes(len);
    // Make small-valued fields (node ids, statuses, calls) likely enough
    // that deeper checks are reached.
    if rng.chance(1, 2) {
        for b in bytes.iter_mut() {
            if rng.chance(1, 2) {
                *b &= 0x07;
            }
        }
    }
    bytes
}

#[test]
fn fuzz_every_decoder() {
    let seed = env_or("TASK_MSG_FUZZ_SEED", DEFAULT_SEED);
    let cases = env_or("TASK_MSG_FUZZ_CASES", DEFAULT_CASES as u64) as usize;
    eprintln!("task_msg fuzz: seed {seed:#x}, {cases} random and {cases} damaged cases");
    let mut rng = Rng(seed);
    let paths: Vec<u8> = (0..FWD_MAX_PATH).map(|i| b'a' + (i % 26) as u8).collect();

    let mut accepted_random = 0;
    for _ in 0..cases {
        let bytes = random_bytes(&mut rng);
        accepted_random += decode_all(&bytes);
    }

    let mut valid = random_valid(&mut rng, &paths);
    let mut accepted_damaged = 0;
    for i in 0..cases {
        if i % 8 == 0 {
            valid = random_valid(&mut rng, &paths);
            assert!(decode_all(&valid) >= 1, "a valid encoding is refused");
        }
        let mut bytes = valid.clone();
        mutate(&mut rng, &mut bytes);
        accepted_damaged += decode_all(&bytes);
    }
    eprintln!(
        "task_msg fuzz: {accepted_random} random and {accepted_damaged} damaged \
         inputs decoded (and re-encoded identically)"
    );
    // Damage must not be caught every time: some of it lands in fields that
    // accept any value, which shows the generator reaches deep checks.
    assert!(accepted_damaged > 0, "seed {seed:#x}");
}
