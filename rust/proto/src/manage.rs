// SPDX-License-Identifier: GPL-2.0
//! popcorn's process-management messages: pcntl(2) commands that name a
//! process on another node, the nodes' load and admission state, their
//! process lists and the members of a migration group (OSF/1 AD's
//! `pcntl()`, `../shared/seeds/003_190bd3aa168ab959.txt`).
//!
//! | type              | request          | reply                              |
//! |-------------------|------------------|------------------------------------|
//! | [`MSG_PCNTL`]     | [`PcntlReq`]     | [`PcntlReply`]                     |
//! | [`MSG_NODE_INFO`] | [`NodeInfoReq`]  | a [`NodeInfo`] record (64 bytes)   |
//! | [`MSG_PS`]        | [`PsReq`]        | [`encode_ps`]                      |
//! | [`MSG_GROUP`]     | [`GroupReq`]     | [`encode_members`]                 |
//!
//! Any request may instead be answered by an error reply (an errno), which
//! pcntl(2) returns as it is. A command is decided by the node the process
//! runs on, with the caller's ids ([`Caller`]): a node that only keeps the
//! process's shadow answers [`PcntlReply::Redirect`] and the asker asks
//! there (a message handler never waits on another node).

use super::migration::TaskId;
use super::node::NodeId;
use super::pcntl::{NodeInfo, Permit, Proc, Stat};
use super::task_msg::{read_node, read_task, write_node, write_task};
use super::wire::{Payload, Reader, WireError, Writer};

/// Request: a pcntl(2) command on a process that runs elsewhere.
pub const MSG_PCNTL: u16 = 0x140;
/// Request: the node's load and admission state.
pub const MSG_NODE_INFO: u16 = 0x141;
/// Request: the user processes running on the node.
pub const MSG_PS: u16 = 0x142;
/// Request: the members of a migration group running on the node, and
/// whether each may move.
pub const MSG_GROUP: u16 = 0x143;

fn check(ok: bool) -> Result<(), WireError> {
    if ok {
        Ok(())
    } else {
        Err(WireError::BadPayload)
    }
}

/// Who asks: the ids kill(2)'s permission rule needs. Users are taken to
/// be the same on every node of a cluster.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Caller {
    /// Real uid.
    pub uid: u32,
    /// Effective uid.
    pub euid: u32,
    /// Has `CAP_SYS_ADMIN`.
    pub admin: bool,
}

impl Caller {
    const LEN: usize = 9;

    fn write(&self, w: &mut Writer<'_>) -> Result<(), WireError> {
        w.u32(self.uid)?;
        w.u32(self.euid)?;
        w.u8(u8::from(self.admin))
    }

    fn read(r: &mut Reader<'_>) -> Result<Caller, WireError> {
        let uid = r.u32()?;
        let euid = r.u32()?;
        let admin = r.u8()?;
        check(admin <= 1)?;
        Ok(Caller {
            uid,
            euid,
            admin: admin == 1,
        })
    }
}

/// A command [`MSG_PCNTL`] carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// Where it runs (the reply's `value` is the node).
    Where,
    /// Move it to `dest`: alone (`true`, the asker takes care of its
    /// group), or only if it is in no group (`false`; else the reply is
    /// [`PcntlReply::Group`] and nothing moves). Never the process's own
    /// request.
    Migrate(NodeId, bool),
    /// `PCNTL_FORBID`, `PCNTL_ALLOW` or `PCNTL_DEFAULT`.
    Permit(Permit),
    /// `PCNTL_GROUP_JOIN`: group (1 to `GROUP_MAX`) and `PCNTL_GROUP_FORK`.
    Join(u32, bool),
    /// `PCNTL_GROUP_LEAVE`.
    Leave,
    /// `PCNTL_STAT` (the reply carries the record).
    Stat,
}

impl Op {
    const LEN: usize = 8;

    fn write(&self, w: &mut Writer<'_>) -> Result<(), WireError> {
        let (code, a, b) = match *self {
            Op::Where => (1u8, 0u32, 0u8),
            Op::Migrate(node, alone) => {
                check(node.is_valid())?;
                (2, u32::from(node.0), u8::from(alone))
            }
            Op::Permit(p) => {
                let b = match p {
                    Permit::Forbid => 0,
                    Permit::Allow => 1,
                    Permit::ForbidSelf => 2,
                    Permit::Default => 3,
                };
                (3, 0, b)
            }
            Op::Join(group, fork) => {
                check((1..=super::pcntl::GROUP_MAX).contains(&group))?;
                (4, group, u8::from(fork))
            }
            Op::Leave => (5, 0, 0),
            Op::Stat => (6, 0, 0),
        };
        w.u8(code)?;
        w.u32(a)?;
        w.u8(b)?;
        w.u16(0)
    }

    fn read(r: &mut Reader<'_>) -> Result<Op, WireError> {
        let raw = r.array::<{ Op::LEN }>()?;
        let a = u32::from_le_bytes([raw[1], raw[2], raw[3], raw[4]]);
        let b = raw[5];
        let op = match raw[0] {
            1 => Op::Where,
            2 => Op::Migrate(
                NodeId(u8::try_from(a).map_err(|_| WireError::BadPayload)?),
                b == 1,
            ),
            3 => Op::Permit(match b {
                0 => Permit::Forbid,
                1 => Permit::Allow,
                2 => Permit::ForbidSelf,
                3 => Permit::Default,
                _ => return Err(WireError::BadPayload),
            }),
            4 => Op::Join(a, b == 1),
            5 => Op::Leave,
            6 => Op::Stat,
            _ => return Err(WireError::BadPayload),
        };
        // Canonical: re-encoding (which validates) gives the same bytes, so
        // fields an operation does not use are 0.
        let mut again = [0u8; Op::LEN];
        op.write(&mut Writer::new(&mut again))?;
        check(again == raw)?;
        Ok(op)
    }
}

/// [`MSG_PCNTL`]: run `op` on `task` (named by its origin and its pid
/// there). Layout `task (6), op (8), caller (9), hops u8` (24 bytes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PcntlReq {
    /// The process.
    pub task: TaskId,
    /// What to do.
    pub op: Op,
    /// Who asks.
    pub caller: Caller,
    /// Redirects followed so far (at most [`MAX_HOPS`]).
    pub hops: u8,
}

/// Most redirects a [`MSG_PCNTL`] follows.
pub const MAX_HOPS: u8 = 8;

impl Payload for PcntlReq {
    const LEN: usize = 6 + Op::LEN + Caller::LEN + 1;

    fn write(&self, w: &mut Writer<'_>) -> Result<(), WireError> {
        check(self.hops <= MAX_HOPS)?;
        write_task(w, &self.task)?;
        self.op.write(w)?;
        self.caller.write(w)?;
        w.u8(self.hops)
    }

    fn read(r: &mut Reader<'_>) -> Result<Self, WireError> {
        let task = read_task(r)?;
        let op = Op::read(r)?;
        let caller = Caller::read(r)?;
        let hops = r.u8()?;
        check(hops <= MAX_HOPS)?;
        Ok(PcntlReq {
            task,
            op,
            caller,
            hops,
        })
    }
}

/// The reply to [`MSG_PCNTL`]. Layout `kind u8, node u16, value i64,
/// stat (88)` (99 bytes); a field a kind does not use is 0.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PcntlReply {
    /// Done: the command's value (a node for `Where`, else 0) and, for
    /// `Stat`, the record.
    Done(i64, Option<Stat>),
    /// The process runs on `node` (this one keeps its shadow), plus what
    /// this node counted for it (for `Stat`; added to the runner's).
    Redirect(NodeId, Option<Stat>),
    /// `Migrate` only: nothing moved, the process is in migration group
    /// `group` (1 to `GROUP_MAX`), which the asker moves as a whole.
    Group(u32),
}

impl Payload for PcntlReply {
    const LEN: usize = 1 + 2 + 8 + Stat::SIZE;

    fn write(&self, w: &mut Writer<'_>) -> Result<(), WireError> {
        let (kind, node, value, stat) = match *self {
            PcntlReply::Done(value, stat) => (0u8, NodeId(0), value, stat),
            PcntlReply::Redirect(node, stat) => (1, node, 0, stat),
            PcntlReply::Group(group) => {
                check((1..=super::pcntl::GROUP_MAX).contains(&group))?;
                (4, NodeId(0), i64::from(group), None)
            }
        };
        w.u8(kind | if stat.is_some() { 2 } else { 0 })?;
        write_node(w, node)?;
        w.u64(value as u64)?;
        w.bytes(&stat.map(|s| s.to_bytes()).unwrap_or([0; Stat::SIZE]))
    }

    fn read(r: &mut Reader<'_>) -> Result<Self, WireError> {
        let kind = r.u8()?;
        let node = read_node(r)?;
        let value = r.u64()? as i64;
        let bytes = r.array::<{ Stat::SIZE }>()?;
        let stat = if kind & 2 != 0 {
            Some(Stat::from_bytes(&bytes).ok_or(WireError::BadPayload)?)
        } else {
            check(bytes == [0; Stat::SIZE])?;
            None
        };
        match kind & !2 {
            0 => {
                check(node == NodeId(0))?;
                Ok(PcntlReply::Done(value, stat))
            }
            1 => {
                check(value == 0)?;
                Ok(PcntlReply::Redirect(node, stat))
            }
            4 => {
                check(node == NodeId(0) && stat.is_none())?;
                let group = u32::try_from(value).map_err(|_| WireError::BadPayload)?;
                check((1..=super::pcntl::GROUP_MAX).contains(&group))?;
                Ok(PcntlReply::Group(group))
            }
            _ => Err(WireError::BadPayload),
        }
    }
}

/// [`MSG_NODE_INFO`]: the node's state, its admission decided for a
/// process of `uid` (`u32::MAX`: for no uid in particular) and, with
/// `back`, for that process: one the node keeps the shadow of is taken
/// back whatever its settings. Layout `uid u32, has_back u8, back (6)`
/// (11 bytes; `back` is zeros without one).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NodeInfoReq {
    /// The uid admission is decided for.
    pub uid: u32,
    /// The process admission is decided for, if any.
    pub back: Option<TaskId>,
}

impl Payload for NodeInfoReq {
    const LEN: usize = 4 + 1 + 6;

    fn write(&self, w: &mut Writer<'_>) -> Result<(), WireError> {
        w.u32(self.uid)?;
        match self.back {
            Some(task) => {
                w.u8(1)?;
                write_task(w, &task)
            }
            None => {
                w.u8(0)?;
                w.bytes(&[0; 6])
            }
        }
    }

    fn read(r: &mut Reader<'_>) -> Result<Self, WireError> {
        let uid = r.u32()?;
        let back = match r.u8()? {
            0 => {
                check(r.array::<6>()? == [0; 6])?;
                None
            }
            1 => Some(read_task(r)?),
            _ => return Err(WireError::BadPayload),
        };
        Ok(NodeInfoReq { uid, back })
    }
}

/// Decodes the reply to [`MSG_NODE_INFO`].
pub fn decode_node_info(bytes: &[u8]) -> Result<NodeInfo, WireError> {
    let b: &[u8; NodeInfo::SIZE] = bytes.try_into().map_err(|_| WireError::BadPayload)?;
    NodeInfo::from_bytes(b).ok_or(WireError::BadPayload)
}

/// [`MSG_PS`]: at most `max` records. Layout `max u32` (4 bytes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PsReq {
    /// Most records the asker wants, at most [`MAX_PS`].
    pub max: u32,
}

/// Most records one [`MSG_PS`] reply carries (about 1.1 MiB).
pub const MAX_PS: u32 = 16384;

impl Payload for PsReq {
    const LEN: usize = 4;

    fn write(&self, w: &mut Writer<'_>) -> Result<(), WireError> {
        check(self.max <= MAX_PS)?;
        w.u32(self.max)
    }

    fn read(r: &mut Reader<'_>) -> Result<Self, WireError> {
        let max = r.u32()?;
        check(max <= MAX_PS)?;
        Ok(PsReq { max })
    }
}

/// `PCNTL_PS` cannot say how many processes a node has without lying about
/// the records it stored (see [`ps_count`]): `E2BIG`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PsTooBig;

/// What `PCNTL_PS` returns when the node has `total` user processes and
/// `written` records were stored in the caller's array, which has room for
/// `room`: `total`, so that a caller whose array was too small asks again
/// with a larger one, and a count within `room` always means that many
/// records were stored. More than [`MAX_PS`] processes cannot all be
/// stored: with room for all of them that would be a lie, so `PsTooBig`.
pub fn ps_count(total: u32, written: usize, room: usize) -> Result<u32, PsTooBig> {
    let total_len = total as usize;
    if written < total_len && room >= total_len {
        Err(PsTooBig)
    } else {
        Ok(total)
    }
}

/// Size of a [`MSG_PS`] reply carrying `n` records.
pub const fn ps_len(n: usize) -> usize {
    8 + n * Proc::SIZE
}

/// Encodes the reply to [`MSG_PS`]: `total u32, count u32`, then `count`
/// records; `total` (how many processes there are) is at least `count`.
pub fn encode_ps(total: u32, procs: &[Proc], out: &mut [u8]) -> Result<usize, WireError> {
    check(procs.len() <= MAX_PS as usize && total as usize >= procs.len())?;
    let mut w = Writer::new(out);
    w.u32(total)?;
    w.u32(procs.len() as u32)?;
    for p in procs {
        w.bytes(&p.to_bytes())?;
    }
    Ok(w.written())
}

/// Decodes a [`MSG_PS`] reply: `(total, records)`, the records as an
/// iterator over a checked payload.
pub fn decode_ps(bytes: &[u8]) -> Result<(u32, ProcIter<'_>), WireError> {
    let mut r = Reader::new(bytes);
    let total = r.u32()?;
    let count = r.u32()?;
    check(count <= total && count <= MAX_PS && r.remaining() == count as usize * Proc::SIZE)?;
    Ok((total, ProcIter(r.bytes(count as usize * Proc::SIZE)?)))
}

/// The records of a decoded [`MSG_PS`] reply.
pub struct ProcIter<'a>(&'a [u8]);

impl Iterator for ProcIter<'_> {
    type Item = Proc;

    fn next(&mut self) -> Option<Proc> {
        let (head, rest) = self.0.split_first_chunk::<{ Proc::SIZE }>()?;
        self.0 = rest;
        Some(Proc::from_bytes(head))
    }
}

/// [`MSG_GROUP`]: the members of `group` running on the node, and whether
/// each may move to `dest` at `caller`'s request. Layout `group u32,
/// dest (2), caller (9)` (15 bytes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GroupReq {
    /// The group, `1..=GROUP_MAX`.
    pub group: u32,
    /// Where they would go.
    pub dest: NodeId,
    /// Who asks.
    pub caller: Caller,
}

impl Payload for GroupReq {
    const LEN: usize = 4 + 2 + Caller::LEN;

    fn write(&self, w: &mut Writer<'_>) -> Result<(), WireError> {
        check((1..=super::pcntl::GROUP_MAX).contains(&self.group))?;
        w.u32(self.group)?;
        write_node(w, self.dest)?;
        self.caller.write(w)
    }

    fn read(r: &mut Reader<'_>) -> Result<Self, WireError> {
        let group = r.u32()?;
        check((1..=super::pcntl::GROUP_MAX).contains(&group))?;
        Ok(GroupReq {
            group,
            dest: read_node(r)?,
            caller: Caller::read(r)?,
        })
    }
}

/// One member of a migration group, as the node it runs on sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Member {
    /// Its origin and pid there.
    pub task: TaskId,
    /// Its pid on the node it runs on.
    pub pid: u32,
    /// Its real uid.
    pub uid: u32,
    /// 0 when it may move, else the errno (positive) that refuses it.
    pub refusal: u32,
}

/// Encoded size of a [`Member`].
pub const MEMBER_LEN: usize = 6 + 12;

/// Most members one node reports.
pub const MAX_MEMBERS: usize = 4096;

/// Size of a [`MSG_GROUP`] reply with `n` members.
pub const fn members_len(n: usize) -> usize {
    4 + n * MEMBER_LEN
}

/// Encodes the reply to [`MSG_GROUP`]: `count u32`, then each member as
/// `task (6), pid u32, uid u32, refusal u32`.
pub fn encode_members(members: &[Member], out: &mut [u8]) -> Result<usize, WireError> {
    check(members.len() <= MAX_MEMBERS)?;
    let mut w = Writer::new(out);
    w.u32(members.len() as u32)?;
    for m in members {
        check(m.pid != 0 && m.refusal < 4096)?;
        write_task(&mut w, &m.task)?;
        w.u32(m.pid)?;
        w.u32(m.uid)?;
        w.u32(m.refusal)?;
    }
    Ok(w.written())
}

/// Decodes a [`MSG_GROUP`] reply, calling `each` for every member.
pub fn decode_members(
    bytes: &[u8],
    mut each: impl FnMut(Member) -> Result<(), WireError>,
) -> Result<(), WireError> {
    let mut r = Reader::new(bytes);
    let count = r.u32()? as usize;
    check(count <= MAX_MEMBERS && r.remaining() == count * MEMBER_LEN)?;
    for _ in 0..count {
        let task = read_task(&mut r)?;
        let pid = r.u32()?;
        let uid = r.u32()?;
        let refusal = r.u32()?;
        check(pid != 0 && refusal < 4096)?;
        each(Member {
            task,
            pid,
            uid,
            refusal,
        })?;
    }
    r.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROOT: Caller = Caller {
        uid: 0,
        euid: 0,
        admin: true,
    };

    fn task(origin: u8, pid: u32) -> TaskId {
        TaskId {
            origin: NodeId(origin),
            pid,
        }
    }

    fn round_trip<P: Payload + PartialEq + core::fmt::Debug>(p: P) {
        let mut buf = [0u8; 128];
        let n = p.encode(&mut buf).unwrap();
        assert_eq!(n, P::LEN);
        assert_eq!(P::decode(&buf[..n]).unwrap(), p);
    }

    #[test]
    fn pcntl_requests_round_trip() {
        for op in [
            Op::Where,
            Op::Migrate(NodeId(63), false),
            Op::Migrate(NodeId(1), true),
            Op::Permit(Permit::Forbid),
            Op::Permit(Permit::ForbidSelf),
            Op::Permit(Permit::Allow),
            Op::Permit(Permit::Default),
            Op::Join(super::super::pcntl::GROUP_MAX, true),
            Op::Leave,
            Op::Stat,
        ] {
            round_trip(PcntlReq {
                task: task(1, 42),
                op,
                caller: ROOT,
                hops: 3,
            });
        }
        round_trip(PcntlReply::Done(2, None));
        round_trip(PcntlReply::Redirect(NodeId(5), Some(Stat::default())));
        round_trip(PcntlReply::Group(7));
        let mut buf = [0u8; PcntlReply::LEN];
        assert!(PcntlReply::Group(0).encode(&mut buf).is_err());
        round_trip(NodeInfoReq {
            uid: 1000,
            back: None,
        });
        round_trip(NodeInfoReq {
            uid: 0,
            back: Some(task(1, 42)),
        });
        let mut buf = [0u8; NodeInfoReq::LEN];
        buf[4] = 2;
        assert!(NodeInfoReq::decode(&buf).is_err());
        buf[4] = 0;
        buf[10] = 1;
        assert!(NodeInfoReq::decode(&buf).is_err());
        round_trip(PsReq { max: MAX_PS });
        round_trip(GroupReq {
            group: 7,
            dest: NodeId(1),
            caller: ROOT,
        });
    }

    #[test]
    fn ps_count_never_exceeds_what_was_stored() {
        // Everything fits: the count, all stored.
        assert_eq!(ps_count(5, 5, 10), Ok(5));
        assert_eq!(
            ps_count(MAX_PS, MAX_PS as usize, MAX_PS as usize),
            Ok(MAX_PS)
        );
        // A small array (or none): the count, to ask again.
        assert_eq!(ps_count(5, 0, 0), Ok(5));
        assert_eq!(ps_count(20_000, 100, 100), Ok(20_000));
        assert_eq!(
            ps_count(20_000, MAX_PS as usize, MAX_PS as usize),
            Ok(20_000)
        );
        // Room for all but only MAX_PS stored: never a count that says more.
        assert_eq!(ps_count(MAX_PS + 1, MAX_PS as usize, 20_000), Err(PsTooBig));
        assert_eq!(
            ps_count(MAX_PS + 1, MAX_PS as usize, MAX_PS as usize + 1),
            Err(PsTooBig)
        );
        // What a caller that trusts a count within its room reads is stored.
        for total in [0, 1, MAX_PS - 1, MAX_PS, MAX_PS + 1, 40_000] {
            for room in [0, 1, 100, MAX_PS as usize, MAX_PS as usize + 1, 50_000] {
                let written = (total as usize).min(room).min(MAX_PS as usize);
                if let Ok(count) = ps_count(total, written, room) {
                    assert!(count as usize > room || count as usize == written);
                }
            }
        }
    }

    #[test]
    fn bad_requests_are_refused() {
        let mut buf = [0u8; PcntlReq::LEN];
        let req = PcntlReq {
            task: task(1, 42),
            op: Op::Join(5, false),
            caller: ROOT,
            hops: 0,
        };
        req.encode(&mut buf).unwrap();
        // Group 0.
        let mut bad = buf;
        bad[7..11].copy_from_slice(&0u32.to_le_bytes());
        assert!(PcntlReq::decode(&bad).is_err());
        // Unknown op, stray argument on Leave, admin flag 2, too many hops.
        let mut bad = buf;
        bad[6] = 9;
        assert!(PcntlReq::decode(&bad).is_err());
        let mut bad = buf;
        bad[6] = 5;
        assert!(PcntlReq::decode(&bad).is_err());
        let mut bad = buf;
        bad[22] = 2;
        assert!(PcntlReq::decode(&bad).is_err());
        let mut bad = buf;
        bad[23] = MAX_HOPS + 1;
        assert!(PcntlReq::decode(&bad).is_err());
        assert!(PsReq::decode(&(MAX_PS + 1).to_le_bytes()).is_err());
    }

    #[test]
    fn process_lists_and_members_round_trip() {
        let procs = [
            Proc {
                pid: 5,
                ..Proc::default()
            },
            Proc {
                pid: 6,
                ..Proc::default()
            },
        ];
        let mut buf = [0u8; ps_len(2)];
        let n = encode_ps(10, &procs, &mut buf).unwrap();
        assert_eq!(n, ps_len(2));
        let (total, mut it) = decode_ps(&buf).unwrap();
        assert_eq!(total, 10);
        assert_eq!(it.next().map(|p| p.pid), Some(5));
        assert_eq!(it.next().map(|p| p.pid), Some(6));
        assert!(it.next().is_none());
        assert!(decode_ps(&buf[..n - 1]).is_err());
        assert!(encode_ps(1, &procs, &mut buf).is_err());

        let members = [Member {
            task: task(2, 99),
            pid: 120,
            uid: 1000,
            refusal: 13,
        }];
        let mut buf = [0u8; members_len(1)];
        let n = encode_members(&members, &mut buf).unwrap();
        let mut seen = [None; 2];
        let mut i = 0;
        decode_members(&buf[..n], |m| {
            seen[i] = Some(m);
            i += 1;
            Ok(())
        })
        .unwrap();
        assert_eq!(seen[0], Some(members[0]));
        assert!(decode_members(&buf[..n - 1], |_| Ok(())).is_err());
    }
}
