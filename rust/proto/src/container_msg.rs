// SPDX-License-Identifier: GPL-2.0
//! The wire format of the container messages ([`PageMsg`]), kmsg type
//! [`MSG_CONTAINER`].
//!
//! One kmsg message carries one [`PageMsg`], little-endian, encoded through
//! the bounds-checked [`Writer`] and [`Reader`] of [`super::wire`]:
//!
//! | offset | size | field     | rule                                          |
//! |-------:|-----:|-----------|-----------------------------------------------|
//! | 0      | 1    | `version` | [`VERSION`]                                   |
//! | 1      | 1    | `kind`    | [`Kind`]: which message, `1..=25`             |
//! | 2      | n    | fields    | the kind's fields, in the order below         |
//! | 2 + n  | 4096 | contents  | the page, exactly when [`PageMsg::carries_data`] |
//!
//! Field encodings: a page is `container u32, index u64` (12 bytes); a node
//! a `u16` below [`MAX_NODES`]; an optional node a `u16`, [`NO_NODE`] for
//! none; a node set a `u64`; a flag a `u8`, 0 or 1; a version a `u64`; a tag
//! or a release id a `u32`; a view ([`Gens::digest`]) a `u64`; a range `container u32, first u64, end u64`
//! with `first < end`; a [`Holding`] a `u8`, 0 none, 1 read, 2 owner, 3
//! released.
//!
//! | kind | message          | fields                                        |
//! |-----:|------------------|-----------------------------------------------|
//! | 1    | `Get`            | page, write flag, tag (not 0)                 |
//! | 2    | `Forward`        | page, requester, write flag, tag              |
//! | 3    | `Create`         | page, tag                                     |
//! | 4    | `Copy`           | page, version, tag (+ contents)               |
//! | 5    | `Transfer`       | page, version, copyset, tag (+ contents)      |
//! | 6    | `Invalidate`     | page, version                                 |
//! | 7    | `InvalidateAck`  | page                                          |
//! | 8    | `FlushRequest`   | page, target                                  |
//! | 9    | `FlushGo`        | page, target                                  |
//! | 10   | `FlushCancel`    | page                                          |
//! | 11   | `Inject`         | page, version, copyset (+ contents)           |
//! | 12   | `InjectAck`      | page                                          |
//! | 13   | `Retry`          | page, tag                                     |
//! | 14   | `Failed`         | page, tag                                     |
//! | 15   | `Release`        | origin, id, range                             |
//! | 16   | `ReleaseAck`     | origin, id, done flag                         |
//! | 17   | `ReleaseDone`    | origin, id, ack flag                          |
//! | 18   | `ReleaseResume`  | origin, id, range                             |
//! | 19   | `Marker`         | generations (64 bytes, one `u8` per node)     |
//! | 20   | `Report`         | page, view, holding, next (optional), sent flag, injected flag, 2 queued (optional), waiting flag, known flag, version |
//! | 21   | `ReportEnd`      | view                                          |
//! | 22   | `Resolved`       | page, view, keep flag, lost flag              |
//! | 23   | `Promote`        | page, copyset                                 |
//! | 24   | `PromoteAck`     | page, ok flag                                 |
//! | 25   | `TransferAck`    | page                                          |
//!
//! Decoding is canonical (bytes that decode re-encode to themselves) and
//! total: any other version, kind, flag value, node id, empty range,
//! missing or extra byte is [`WireError::BadPayload`]; no input makes this
//! code panic. A page's contents cross the wire once per copy, transfer or
//! injection, and never for any other message.

use super::container::{Gens, Holding, PageId, PageMsg, PageRange};
use super::node::{NodeId, NodeSet, MAX_NODES};
/// Size of a page: the contents a message carries.
pub const PAGE_SIZE: usize = 4096;
use super::wire::{Reader, WireError, Writer};

/// kmsg message type of the container messages (one-way messages; the
/// protocol's answers are messages of their own). `0x180..=0x18f` is
/// gobelins' range of the upper layers' types.
pub const MSG_CONTAINER: u16 = 0x180;
/// The version of this format (2: markers carry generations, rounds are
/// named by a view digest).
pub const VERSION: u8 = 2;
/// An absent optional node.
pub const NO_NODE: u16 = 0xffff;
/// Largest fields of any kind, in bytes (`Marker`: one generation per
/// node; `Report` takes `12 + 8 + 1 + 2 + 1 + 1 + 2 + 2 + 1 + 1 + 8`).
pub const MAX_FIELDS_LEN: usize = MAX_NODES;
/// Largest encoded message: header, fields and the page contents.
pub const MAX_LEN: usize = 2 + MAX_FIELDS_LEN + PAGE_SIZE;

/// The `kind` byte.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Kind {
    /// [`PageMsg::Get`].
    Get = 1,
    /// [`PageMsg::Forward`].
    Forward = 2,
    /// [`PageMsg::Create`].
    Create = 3,
    /// [`PageMsg::Copy`].
    Copy = 4,
    /// [`PageMsg::Transfer`].
    Transfer = 5,
    /// [`PageMsg::Invalidate`].
    Invalidate = 6,
    /// [`PageMsg::InvalidateAck`].
    InvalidateAck = 7,
    /// [`PageMsg::FlushRequest`].
    FlushRequest = 8,
    /// [`PageMsg::FlushGo`].
    FlushGo = 9,
    /// [`PageMsg::FlushCancel`].
    FlushCancel = 10,
    /// [`PageMsg::Inject`].
    Inject = 11,
    /// [`PageMsg::InjectAck`].
    InjectAck = 12,
    /// [`PageMsg::Retry`].
    Retry = 13,
    /// [`PageMsg::Failed`].
    Failed = 14,
    /// [`PageMsg::Release`].
    Release = 15,
    /// [`PageMsg::ReleaseAck`].
    ReleaseAck = 16,
    /// [`PageMsg::ReleaseDone`].
    ReleaseDone = 17,
    /// [`PageMsg::ReleaseResume`].
    ReleaseResume = 18,
    /// [`PageMsg::Marker`].
    Marker = 19,
    /// [`PageMsg::Report`].
    Report = 20,
    /// [`PageMsg::ReportEnd`].
    ReportEnd = 21,
    /// [`PageMsg::Resolved`].
    Resolved = 22,
    /// [`PageMsg::Promote`].
    Promote = 23,
    /// [`PageMsg::PromoteAck`].
    PromoteAck = 24,
    /// [`PageMsg::TransferAck`].
    TransferAck = 25,
}

impl Kind {
    /// The kind of `msg`.
    pub fn of(msg: &PageMsg) -> Kind {
        match msg {
            PageMsg::Get { .. } => Kind::Get,
            PageMsg::Forward { .. } => Kind::Forward,
            PageMsg::Create { .. } => Kind::Create,
            PageMsg::Copy { .. } => Kind::Copy,
            PageMsg::Transfer { .. } => Kind::Transfer,
            PageMsg::Invalidate { .. } => Kind::Invalidate,
            PageMsg::InvalidateAck { .. } => Kind::InvalidateAck,
            PageMsg::FlushRequest { .. } => Kind::FlushRequest,
            PageMsg::FlushGo { .. } => Kind::FlushGo,
            PageMsg::FlushCancel { .. } => Kind::FlushCancel,
            PageMsg::Inject { .. } => Kind::Inject,
            PageMsg::InjectAck { .. } => Kind::InjectAck,
            PageMsg::Retry { .. } => Kind::Retry,
            PageMsg::Failed { .. } => Kind::Failed,
            PageMsg::Release { .. } => Kind::Release,
            PageMsg::ReleaseAck { .. } => Kind::ReleaseAck,
            PageMsg::ReleaseDone { .. } => Kind::ReleaseDone,
            PageMsg::ReleaseResume { .. } => Kind::ReleaseResume,
            PageMsg::Marker { .. } => Kind::Marker,
            PageMsg::Report { .. } => Kind::Report,
            PageMsg::ReportEnd { .. } => Kind::ReportEnd,
            PageMsg::Resolved { .. } => Kind::Resolved,
            PageMsg::Promote { .. } => Kind::Promote,
            PageMsg::PromoteAck { .. } => Kind::PromoteAck,
            PageMsg::TransferAck { .. } => Kind::TransferAck,
        }
    }

    fn from_wire(byte: u8) -> Result<Kind, WireError> {
        const KINDS: [Kind; 25] = [
            Kind::Get,
            Kind::Forward,
            Kind::Create,
            Kind::Copy,
            Kind::Transfer,
            Kind::Invalidate,
            Kind::InvalidateAck,
            Kind::FlushRequest,
            Kind::FlushGo,
            Kind::FlushCancel,
            Kind::Inject,
            Kind::InjectAck,
            Kind::Retry,
            Kind::Failed,
            Kind::Release,
            Kind::ReleaseAck,
            Kind::ReleaseDone,
            Kind::ReleaseResume,
            Kind::Marker,
            Kind::Report,
            Kind::ReportEnd,
            Kind::Resolved,
            Kind::Promote,
            Kind::PromoteAck,
            Kind::TransferAck,
        ];
        KINDS
            .iter()
            .copied()
            .find(|k| *k as u8 == byte)
            .ok_or(WireError::BadPayload)
    }
}

/// Bytes of the encoding of `msg` (contents included).
pub fn encoded_len(msg: &PageMsg) -> usize {
    let mut sink = [0u8; 2 + MAX_FIELDS_LEN];
    let mut w = Writer::new(&mut sink);
    let fields = match write_msg(&mut w, msg) {
        Ok(()) => w.written(),
        Err(_) => 2 + MAX_FIELDS_LEN,
    };
    if msg.carries_data() {
        fields + PAGE_SIZE
    } else {
        fields
    }
}

/// Encodes `msg` into the start of `out`, followed by `contents` (the local
/// copy) when the message carries data. Returns the bytes written.
/// [`WireError::ShortBuffer`] if `out` is too small ([`MAX_LEN`] always
/// fits), [`WireError::Misuse`] if `contents` is given exactly when the
/// message carries no data, [`WireError::BadPayload`] for a message its
/// decoder would refuse (a node id out of range, an empty range, tag 0 in a
/// request).
pub fn encode(
    msg: &PageMsg,
    contents: Option<&[u8; PAGE_SIZE]>,
    out: &mut [u8],
) -> Result<usize, WireError> {
    if msg.carries_data() != contents.is_some() {
        return Err(WireError::Misuse);
    }
    let mut w = Writer::new(out);
    write_msg(&mut w, msg)?;
    if let Some(page) = contents {
        w.bytes(page)?;
    }
    Ok(w.written())
}

/// Decodes one message; returns it and, when it carries data, its page
/// contents (borrowed from `bytes`). [`WireError::BadPayload`] for
/// anything but exactly one valid message.
pub fn decode(bytes: &[u8]) -> Result<(PageMsg, Option<&[u8; PAGE_SIZE]>), WireError> {
    let mut r = Reader::new(bytes);
    if r.u8()? != VERSION {
        return Err(WireError::BadPayload);
    }
    let kind = Kind::from_wire(r.u8()?)?;
    let msg = read_fields(&mut r, kind)?;
    let contents = if msg.carries_data() {
        let page: &[u8; PAGE_SIZE] = r
            .bytes(PAGE_SIZE)?
            .try_into()
            .map_err(|_| WireError::BadPayload)?;
        Some(page)
    } else {
        None
    };
    r.finish()?;
    Ok((msg, contents))
}

fn write_page(w: &mut Writer<'_>, page: PageId) -> Result<(), WireError> {
    w.u32(page.container)?;
    w.u64(page.index)
}

fn read_page(r: &mut Reader<'_>) -> Result<PageId, WireError> {
    Ok(PageId {
        container: r.u32()?,
        index: r.u64()?,
    })
}

fn write_node(w: &mut Writer<'_>, node: NodeId) -> Result<(), WireError> {
    if !node.is_valid() {
        return Err(WireError::BadPayload);
    }
    w.u16(u16::from(node.0))
}

fn read_node(r: &mut Reader<'_>) -> Result<NodeId, WireError> {
    let raw = r.u16()?;
    if usize::from(raw) < MAX_NODES {
        Ok(NodeId(raw as u8))
    } else {
        Err(WireError::BadPayload)
    }
}

fn write_opt_node(w: &mut Writer<'_>, node: Option<NodeId>) -> Result<(), WireError> {
    match node {
        Some(node) => write_node(w, node),
        None => w.u16(NO_NODE),
    }
}

fn read_opt_node(r: &mut Reader<'_>) -> Result<Option<NodeId>, WireError> {
    let raw = r.u16()?;
    if raw == NO_NODE {
        Ok(None)
    } else if usize::from(raw) < MAX_NODES {
        Ok(Some(NodeId(raw as u8)))
    } else {
        Err(WireError::BadPayload)
    }
}

fn write_flag(w: &mut Writer<'_>, flag: bool) -> Result<(), WireError> {
    w.u8(u8::from(flag))
}

fn read_flag(r: &mut Reader<'_>) -> Result<bool, WireError> {
    match r.u8()? {
        0 => Ok(false),
        1 => Ok(true),
        _ => Err(WireError::BadPayload),
    }
}

fn write_set(w: &mut Writer<'_>, set: NodeSet) -> Result<(), WireError> {
    w.u64(set.0)
}

fn read_set(r: &mut Reader<'_>) -> Result<NodeSet, WireError> {
    Ok(NodeSet(r.u64()?))
}

fn write_range(w: &mut Writer<'_>, range: PageRange) -> Result<(), WireError> {
    if !range.is_valid() {
        return Err(WireError::BadPayload);
    }
    w.u32(range.container)?;
    w.u64(range.first)?;
    w.u64(range.end)
}

fn read_range(r: &mut Reader<'_>) -> Result<PageRange, WireError> {
    let range = PageRange {
        container: r.u32()?,
        first: r.u64()?,
        end: r.u64()?,
    };
    if range.is_valid() {
        Ok(range)
    } else {
        Err(WireError::BadPayload)
    }
}

fn write_holding(w: &mut Writer<'_>, holding: Holding) -> Result<(), WireError> {
    w.u8(match holding {
        Holding::Nothing => 0,
        Holding::Read => 1,
        Holding::Owner => 2,
        Holding::Released => 3,
    })
}

fn read_holding(r: &mut Reader<'_>) -> Result<Holding, WireError> {
    match r.u8()? {
        0 => Ok(Holding::Nothing),
        1 => Ok(Holding::Read),
        2 => Ok(Holding::Owner),
        3 => Ok(Holding::Released),
        _ => Err(WireError::BadPayload),
    }
}

fn write_tag(w: &mut Writer<'_>, tag: u32, request: bool) -> Result<(), WireError> {
    if request && tag == 0 {
        return Err(WireError::BadPayload);
    }
    w.u32(tag)
}

fn read_tag(r: &mut Reader<'_>, request: bool) -> Result<u32, WireError> {
    let tag = r.u32()?;
    if request && tag == 0 {
        return Err(WireError::BadPayload);
    }
    Ok(tag)
}

/// Writes the header and the fields of `msg` (not the contents).
fn write_msg(w: &mut Writer<'_>, msg: &PageMsg) -> Result<(), WireError> {
    w.u8(VERSION)?;
    w.u8(Kind::of(msg) as u8)?;
    match *msg {
        PageMsg::Get { page, write, tag } => {
            write_page(w, page)?;
            write_flag(w, write)?;
            write_tag(w, tag, true)
        }
        PageMsg::Forward {
            page,
            requester,
            write,
            tag,
        } => {
            write_page(w, page)?;
            write_node(w, requester)?;
            write_flag(w, write)?;
            write_tag(w, tag, false)
        }
        PageMsg::Create { page, tag }
        | PageMsg::Retry { page, tag }
        | PageMsg::Failed { page, tag } => {
            write_page(w, page)?;
            write_tag(w, tag, false)
        }
        PageMsg::Copy { page, version, tag } => {
            write_page(w, page)?;
            w.u64(version)?;
            write_tag(w, tag, false)
        }
        PageMsg::Transfer {
            page,
            version,
            copyset,
            tag,
        } => {
            write_page(w, page)?;
            w.u64(version)?;
            write_set(w, copyset)?;
            write_tag(w, tag, false)
        }
        PageMsg::Invalidate { page, version } => {
            write_page(w, page)?;
            w.u64(version)
        }
        PageMsg::InvalidateAck { page }
        | PageMsg::FlushCancel { page }
        | PageMsg::InjectAck { page }
        | PageMsg::TransferAck { page } => write_page(w, page),
        PageMsg::FlushRequest { page, target } | PageMsg::FlushGo { page, target } => {
            write_page(w, page)?;
            write_node(w, target)
        }
        PageMsg::Inject {
            page,
            version,
            copyset,
        } => {
            write_page(w, page)?;
            w.u64(version)?;
            write_set(w, copyset)
        }
        PageMsg::Release { origin, id, range } | PageMsg::ReleaseResume { origin, id, range } => {
            write_node(w, origin)?;
            w.u32(id)?;
            write_range(w, range)
        }
        PageMsg::ReleaseAck { origin, id, done } => {
            write_node(w, origin)?;
            w.u32(id)?;
            write_flag(w, done)
        }
        PageMsg::ReleaseDone { origin, id, ack } => {
            write_node(w, origin)?;
            w.u32(id)?;
            write_flag(w, ack)
        }
        PageMsg::Marker { gens } => w.bytes(&gens.0),
        PageMsg::ReportEnd { view } => w.u64(view),
        PageMsg::Report {
            page,
            view,
            holding,
            next,
            sent,
            injected,
            queued,
            waiting,
            known,
            version,
        } => {
            write_page(w, page)?;
            w.u64(view)?;
            write_holding(w, holding)?;
            write_opt_node(w, next)?;
            write_flag(w, sent)?;
            write_flag(w, injected)?;
            write_opt_node(w, queued[0])?;
            write_opt_node(w, queued[1])?;
            write_flag(w, waiting)?;
            write_flag(w, known)?;
            w.u64(version)
        }
        PageMsg::Resolved {
            page,
            view,
            keep,
            lost,
        } => {
            write_page(w, page)?;
            w.u64(view)?;
            write_flag(w, keep)?;
            write_flag(w, lost)
        }
        PageMsg::Promote { page, copyset } => {
            write_page(w, page)?;
            write_set(w, copyset)
        }
        PageMsg::PromoteAck { page, ok } => {
            write_page(w, page)?;
            write_flag(w, ok)
        }
    }
}

fn read_fields(r: &mut Reader<'_>, kind: Kind) -> Result<PageMsg, WireError> {
    Ok(match kind {
        Kind::Get => PageMsg::Get {
            page: read_page(r)?,
            write: read_flag(r)?,
            tag: read_tag(r, true)?,
        },
        Kind::Forward => PageMsg::Forward {
            page: read_page(r)?,
            requester: read_node(r)?,
            write: read_flag(r)?,
            tag: read_tag(r, false)?,
        },
        Kind::Create => PageMsg::Create {
            page: read_page(r)?,
            tag: read_tag(r, false)?,
        },
        Kind::Retry => PageMsg::Retry {
            page: read_page(r)?,
            tag: read_tag(r, false)?,
        },
        Kind::Failed => PageMsg::Failed {
            page: read_page(r)?,
            tag: read_tag(r, false)?,
        },
        Kind::Copy => PageMsg::Copy {
            page: read_page(r)?,
            version: r.u64()?,
            tag: read_tag(r, false)?,
        },
        Kind::Transfer => PageMsg::Transfer {
            page: read_page(r)?,
            version: r.u64()?,
            copyset: read_set(r)?,
            tag: read_tag(r, false)?,
        },
        Kind::Invalidate => PageMsg::Invalidate {
            page: read_page(r)?,
            version: r.u64()?,
        },
        Kind::InvalidateAck => PageMsg::InvalidateAck {
            page: read_page(r)?,
        },
        Kind::FlushCancel => PageMsg::FlushCancel {
            page: read_page(r)?,
        },
        Kind::InjectAck => PageMsg::InjectAck {
            page: read_page(r)?,
        },
        Kind::TransferAck => PageMsg::TransferAck {
            page: read_page(r)?,
        },
        Kind::FlushRequest => PageMsg::FlushRequest {
            page: read_page(r)?,
            target: read_node(r)?,
        },
        Kind::FlushGo => PageMsg::FlushGo {
            page: read_page(r)?,
            target: read_node(r)?,
        },
        Kind::Inject => PageMsg::Inject {
            page: read_page(r)?,
            version: r.u64()?,
            copyset: read_set(r)?,
        },
        Kind::Release => PageMsg::Release {
            origin: read_node(r)?,
            id: r.u32()?,
            range: read_range(r)?,
        },
        Kind::ReleaseResume => PageMsg::ReleaseResume {
            origin: read_node(r)?,
            id: r.u32()?,
            range: read_range(r)?,
        },
        Kind::ReleaseAck => PageMsg::ReleaseAck {
            origin: read_node(r)?,
            id: r.u32()?,
            done: read_flag(r)?,
        },
        Kind::ReleaseDone => PageMsg::ReleaseDone {
            origin: read_node(r)?,
            id: r.u32()?,
            ack: read_flag(r)?,
        },
        Kind::Marker => {
            let mut gens = Gens::default();
            gens.0.copy_from_slice(r.bytes(MAX_NODES)?);
            PageMsg::Marker { gens }
        }
        Kind::ReportEnd => PageMsg::ReportEnd { view: r.u64()? },
        Kind::Report => PageMsg::Report {
            page: read_page(r)?,
            view: r.u64()?,
            holding: read_holding(r)?,
            next: read_opt_node(r)?,
            sent: read_flag(r)?,
            injected: read_flag(r)?,
            queued: [read_opt_node(r)?, read_opt_node(r)?],
            waiting: read_flag(r)?,
            known: read_flag(r)?,
            version: r.u64()?,
        },
        Kind::Resolved => PageMsg::Resolved {
            page: read_page(r)?,
            view: r.u64()?,
            keep: read_flag(r)?,
            lost: read_flag(r)?,
        },
        Kind::Promote => PageMsg::Promote {
            page: read_page(r)?,
            copyset: read_set(r)?,
        },
        Kind::PromoteAck => PageMsg::PromoteAck {
            page: read_page(r)?,
            ok: read_flag(r)?,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec;
    use std::vec::Vec;

    fn page(i: u64) -> PageId {
        PageId {
            container: 0x0300_0007,
            index: i,
        }
    }

    fn samples() -> Vec<PageMsg> {
        let p = page(5);
        let range = PageRange {
            container: 9,
            first: 3,
            end: 70,
        };
        let set = NodeSet(0x8000_0000_0000_0005);
        vec![
            PageMsg::Get {
                page: p,
                write: true,
                tag: 7,
            },
            PageMsg::Forward {
                page: p,
                requester: NodeId(63),
                write: false,
                tag: 0,
            },
            PageMsg::Create { page: p, tag: 1 },
            PageMsg::Copy {
                page: p,
                version: u64::MAX,
                tag: 0,
            },
            PageMsg::Transfer {
                page: p,
                version: 2,
                copyset: set,
                tag: 9,
            },
            PageMsg::Invalidate {
                page: p,
                version: 3,
            },
            PageMsg::InvalidateAck { page: p },
            PageMsg::FlushRequest {
                page: p,
                target: NodeId(1),
            },
            PageMsg::FlushGo {
                page: p,
                target: NodeId(2),
            },
            PageMsg::FlushCancel { page: p },
            PageMsg::Inject {
                page: p,
                version: 4,
                copyset: NodeSet::EMPTY,
            },
            PageMsg::InjectAck { page: p },
            PageMsg::Retry { page: p, tag: 0 },
            PageMsg::Failed { page: p, tag: 3 },
            PageMsg::Release {
                origin: NodeId(4),
                id: 1,
                range,
            },
            PageMsg::ReleaseAck {
                origin: NodeId(4),
                id: 1,
                done: false,
            },
            PageMsg::ReleaseDone {
                origin: NodeId(4),
                id: u32::MAX,
                ack: true,
            },
            PageMsg::ReleaseResume {
                origin: NodeId(0),
                id: 2,
                range,
            },
            PageMsg::Marker {
                gens: Gens({
                    let mut g = [0u8; MAX_NODES];
                    g[1] = 3;
                    g[4] = 2;
                    g[63] = 255;
                    g
                }),
            },
            PageMsg::Report {
                page: p,
                view: 0x1234_5678_9abc_def0,
                holding: Holding::Owner,
                next: Some(NodeId(3)),
                sent: true,
                injected: false,
                queued: [Some(NodeId(1)), None],
                waiting: false,
                known: true,
                version: 9,
            },
            PageMsg::Report {
                page: p,
                view: 0x1234_5678_9abc_def0,
                holding: Holding::Read,
                next: None,
                sent: false,
                injected: false,
                queued: [None, None],
                waiting: true,
                known: false,
                version: 0,
            },
            PageMsg::ReportEnd { view: u64::MAX },
            PageMsg::Resolved {
                page: p,
                view: 0x1234_5678_9abc_def0,
                keep: true,
                lost: false,
            },
            PageMsg::Promote {
                page: p,
                copyset: set,
            },
            PageMsg::PromoteAck { page: p, ok: false },
            PageMsg::TransferAck { page: p },
        ]
    }

    fn contents(seed: u8) -> [u8; PAGE_SIZE] {
        let mut c = [0u8; PAGE_SIZE];
        for (i, b) in c.iter_mut().enumerate() {
            *b = (i as u8).wrapping_mul(31).wrapping_add(seed);
        }
        c
    }

    fn encode_vec(msg: &PageMsg) -> Vec<u8> {
        let data = contents(7);
        let mut buf = vec![0u8; MAX_LEN];
        let n = encode(msg, msg.carries_data().then_some(&data), &mut buf).unwrap();
        buf.truncate(n);
        buf
    }

    #[test]
    fn every_kind_round_trips_and_is_canonical() {
        let samples = samples();
        assert_eq!(samples.len(), 26);
        for msg in &samples {
            let bytes = encode_vec(msg);
            assert_eq!(bytes.len(), encoded_len(msg));
            assert!(bytes.len() <= MAX_LEN);
            let (back, data) = decode(&bytes).unwrap();
            assert_eq!(back, *msg);
            assert_eq!(data.is_some(), msg.carries_data());
            if let Some(data) = data {
                assert_eq!(*data, contents(7));
                assert_eq!(bytes.len(), encoded_len(msg));
            }
            assert_eq!(encode_vec(&back), bytes);
        }
    }

    #[test]
    fn the_page_crosses_only_with_data_messages() {
        for msg in samples() {
            let fields = encoded_len(&msg);
            if msg.carries_data() {
                assert!(fields > PAGE_SIZE);
            } else {
                assert!(fields <= 2 + MAX_FIELDS_LEN);
            }
        }
    }

    #[test]
    fn encoder_refuses_what_the_decoder_would() {
        let mut buf = vec![0u8; MAX_LEN];
        let data = contents(1);
        let p = page(1);
        let copy = PageMsg::Copy {
            page: p,
            version: 1,
            tag: 0,
        };
        assert_eq!(encode(&copy, None, &mut buf), Err(WireError::Misuse));
        let ack = PageMsg::InjectAck { page: p };
        assert_eq!(encode(&ack, Some(&data), &mut buf), Err(WireError::Misuse));
        let get = PageMsg::Get {
            page: p,
            write: false,
            tag: 0,
        };
        assert_eq!(encode(&get, None, &mut buf), Err(WireError::BadPayload));
        let fwd = PageMsg::Forward {
            page: p,
            requester: NodeId(64),
            write: false,
            tag: 1,
        };
        assert_eq!(encode(&fwd, None, &mut buf), Err(WireError::BadPayload));
        let rel = PageMsg::Release {
            origin: NodeId(0),
            id: 1,
            range: PageRange {
                container: 1,
                first: 5,
                end: 5,
            },
        };
        assert_eq!(encode(&rel, None, &mut buf), Err(WireError::BadPayload));
        let mut short = [0u8; 10];
        assert_eq!(
            encode(&copy, Some(&data), &mut short),
            Err(WireError::ShortBuffer)
        );
    }

    #[test]
    fn malformed_input_is_refused_never_panics() {
        // Every truncation and every extension of every valid message.
        for msg in samples() {
            let bytes = encode_vec(&msg);
            for len in 0..bytes.len() {
                assert_eq!(decode(&bytes[..len]), Err(WireError::BadPayload));
            }
            let mut longer = bytes.clone();
            longer.push(0);
            assert_eq!(decode(&longer), Err(WireError::BadPayload));
        }
        // Bad version, kind, flag, node, holding, range.
        let get = encode_vec(&PageMsg::Get {
            page: page(1),
            write: true,
            tag: 5,
        });
        let mut bad = get.clone();
        bad[0] = VERSION + 1;
        assert_eq!(decode(&bad), Err(WireError::BadPayload));
        for kind in [0u8, 26, 255] {
            let mut bad = get.clone();
            bad[1] = kind;
            assert_eq!(decode(&bad), Err(WireError::BadPayload));
        }
        let mut bad = get.clone();
        bad[14] = 2; // the write flag
        assert_eq!(decode(&bad), Err(WireError::BadPayload));
        let mut bad = get;
        bad[15..19].copy_from_slice(&0u32.to_le_bytes()); // tag 0
        assert_eq!(decode(&bad), Err(WireError::BadPayload));
        let fwd = encode_vec(&PageMsg::Forward {
            page: page(1),
            requester: NodeId(2),
            write: false,
            tag: 1,
        });
        let mut bad = fwd;
        bad[14..16].copy_from_slice(&64u16.to_le_bytes());
        assert_eq!(decode(&bad), Err(WireError::BadPayload));
        // Random bytes (xorshift), with a valid header half of the time:
        // whatever decodes re-encodes to the same bytes.
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let mut decoded = 0;
        for round in 0..20_000 {
            let len = (next() % 64) as usize + if round % 50 == 0 { PAGE_SIZE } else { 0 };
            let mut bytes: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            if round % 2 == 0 && len >= 2 {
                bytes[0] = VERSION;
                bytes[1] = (next() % 27) as u8;
            }
            if let Ok((msg, data)) = decode(&bytes) {
                decoded += 1;
                let mut buf = vec![0u8; MAX_LEN];
                let n = encode(&msg, data, &mut buf).unwrap();
                assert_eq!(&buf[..n], &bytes[..]);
            }
        }
        assert!(decoded > 0);
    }
}
