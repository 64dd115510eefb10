// SPDX-License-Identifier: GPL-2.0

//! Messages between nodes.
//!
//! Modules send with [`send`] and [`request`] and receive by registering a
//! [`MsgHandler`] for a message type; the transport (kmsg) implements
//! [`MsgOps`] and hands what it receives to [`deliver`].

use super::Slot;
use crate::{bindings, error::to_result, prelude::*, str::CStr, sync::Arc, types::Opaque};
use core::{
    ffi::c_void,
    marker::PhantomData,
    sync::atomic::{AtomicPtr, Ordering},
};

/// First message type a handler can take; lower types are the transport's.
pub const FIRST_TYPE: u16 = bindings::COHORT_MSG_FIRST_TYPE as u16;
/// One past the last message type a handler can take.
pub const NR_TYPES: u16 = bindings::COHORT_MSG_NR_TYPES as u16;
/// kmsg's echo service.
pub const ECHO: u16 = bindings::COHORT_MSG_ECHO as u16;

/// Builds a slice from a C pointer and length, tolerating NULL when empty.
///
/// # Safety
///
/// When `len` is non-zero, `data` must be valid for reads of `len` bytes for
/// `'a`.
unsafe fn c_bytes<'a>(data: *const c_void, len: usize) -> &'a [u8] {
    if len == 0 || data.is_null() {
        &[]
    } else {
        // SAFETY: Guaranteed by the caller.
        unsafe { core::slice::from_raw_parts(data.cast::<u8>(), len) }
    }
}

/// Builds a mutable slice from a C pointer and length.
///
/// # Safety
///
/// When `len` is non-zero, `data` must be valid for writes of `len` bytes for
/// `'a` and not aliased.
unsafe fn c_bytes_mut<'a>(data: *mut c_void, len: usize) -> &'a mut [u8] {
    if len == 0 || data.is_null() {
        &mut []
    } else {
        // SAFETY: Guaranteed by the caller.
        unsafe { core::slice::from_raw_parts_mut(data.cast::<u8>(), len) }
    }
}

/// A received message (`struct cohort_msg`), borrowed for a handler call.
#[repr(transparent)]
pub struct Message(Opaque<bindings::cohort_msg>);

impl Message {
    fn raw(&self) -> &bindings::cohort_msg {
        // SAFETY: The transport keeps the message alive and unchanged for
        // the duration of the call that lent it.
        unsafe { &*self.0.get() }
    }

    /// The sending node.
    pub fn src(&self) -> u32 {
        self.raw().src
    }

    /// The message type.
    pub fn ty(&self) -> u16 {
        self.raw().type_
    }

    /// The request id; zero for a message that expects no reply.
    pub fn request_id(&self) -> u64 {
        self.raw().request_id
    }

    /// Whether the sender waits for a reply.
    pub fn is_request(&self) -> bool {
        self.request_id() != 0
    }

    /// The payload.
    pub fn data(&self) -> &[u8] {
        let raw = self.raw();
        // SAFETY: The transport lends `len` valid bytes at `data`.
        unsafe { c_bytes(raw.data, raw.len) }
    }

    /// Answers this request with `data`.
    pub fn reply(&self, data: &[u8]) -> Result {
        // SAFETY: `self` is a live message; `data` is valid for its length.
        to_result(unsafe {
            bindings::cohort_msg_reply(self.0.get(), 0, data.as_ptr().cast(), data.len())
        })
    }

    /// Answers this request with an error, which the requester's
    /// [`request`] returns.
    pub fn reply_error(&self, error: Error) -> Result {
        // SAFETY: `self` is a live message; no payload.
        to_result(unsafe {
            bindings::cohort_msg_reply(self.0.get(), error.to_errno(), core::ptr::null(), 0)
        })
    }
    /// What answering this request later needs, once the handler returned.
    pub fn reply_to(&self) -> ReplyTo {
        ReplyTo {
            src: self.src(),
            ty: self.ty(),
            request_id: self.request_id(),
        }
    }
}

/// A request to answer after its handler returned (see [`Message::reply_to`]).
#[derive(Clone, Copy, Debug)]
pub struct ReplyTo {
    src: u32,
    ty: u16,
    request_id: u64,
}

impl ReplyTo {
    fn send(&self, error: i32, data: &[u8]) -> Result {
        let msg = bindings::cohort_msg {
            src: self.src,
            type_: self.ty,
            request_id: self.request_id,
            data: core::ptr::null(),
            len: 0,
        };
        // SAFETY: `msg` lives for the call, `data` is valid for its length;
        // the transport reads only the source, type and request id.
        to_result(unsafe {
            bindings::cohort_msg_reply(&msg, error, data.as_ptr().cast(), data.len())
        })
    }

    /// Answers the request with `data`.
    pub fn reply(&self, data: &[u8]) -> Result {
        self.send(0, data)
    }

    /// Answers the request with an error.
    pub fn reply_error(&self, error: Error) -> Result {
        self.send(error.to_errno(), &[])
    }
}

/// Sends `data` as a message of type `ty` to `node` without waiting.
pub fn send(node: u32, ty: u16, data: &[u8]) -> Result {
    // SAFETY: `data` is valid for its length; the hub validates the rest.
    to_result(unsafe { bindings::cohort_msg_send(node, ty, data.as_ptr().cast(), data.len()) })
}

/// Sends a request and waits up to `timeout_ms` for its reply, which is
/// copied into `reply`; returns the reply's length.
///
/// Fails with the replier's error, `EMSGSIZE` for a reply larger than
/// `reply`, `ETIMEDOUT`, or `EHOSTDOWN` when `node` is or goes down.
pub fn request(
    node: u32,
    ty: u16,
    data: &[u8],
    reply: &mut [u8],
    timeout_ms: u32,
) -> Result<usize> {
    request_flags(node, ty, data, reply, timeout_ms, 0)
}

/// As [`request`], but the wait goes on through signals (it stays bounded
/// by `timeout_ms` and by `node` going down): for a request whose reply
/// carries state that must not be lost, such as a page changing hands.
pub fn request_nointr(
    node: u32,
    ty: u16,
    data: &[u8],
    reply: &mut [u8],
    timeout_ms: u32,
) -> Result<usize> {
    request_flags(
        node,
        ty,
        data,
        reply,
        timeout_ms,
        bindings::COHORT_MSG_NOINTR,
    )
}

fn request_flags(
    node: u32,
    ty: u16,
    data: &[u8],
    reply: &mut [u8],
    timeout_ms: u32,
    flags: u32,
) -> Result<usize> {
    // SAFETY: Both buffers are valid for their lengths for the whole call.
    let ret = unsafe {
        bindings::cohort_msg_request_flags(
            node,
            ty,
            data.as_ptr().cast(),
            data.len(),
            reply.as_mut_ptr().cast(),
            reply.len(),
            timeout_ms,
            flags,
        )
    };
    if ret < 0 {
        Err(Error::from_errno(ret as i32))
    } else {
        Ok(ret as usize)
    }
}

/// Hands a received message to the handler of its type; for the transport.
///
/// Fails with `EPROTONOSUPPORT` when no handler takes the type.
pub fn deliver(src: u32, ty: u16, request_id: u64, data: &[u8]) -> Result {
    let msg = bindings::cohort_msg {
        src,
        type_: ty,
        request_id,
        data: data.as_ptr().cast(),
        len: data.len(),
    };
    // SAFETY: `msg` and the bytes it points to outlive the call.
    to_result(unsafe { bindings::cohort_msg_deliver(&msg) })
}

/// Receives the messages of one type.
pub trait MsgHandler {
    /// The message type, from [`FIRST_TYPE`] to `NR_TYPES - 1`.
    const TYPE: u16;

    /// Called in process context for each message of [`Self::TYPE`]; may
    /// sleep, and answers requests with [`Message::reply`].
    fn handle(msg: &Message);
}

/// A registered [`MsgHandler`]; dropping it unregisters the handler and
/// waits for calls in flight.
pub struct HandlerRegistration<H: MsgHandler> {
    _handler: PhantomData<H>,
}

impl<H: MsgHandler> HandlerRegistration<H> {
    extern "C" fn handle(msg: *const bindings::cohort_msg) {
        // SAFETY: The hub lends a live message for the call.
        H::handle(unsafe { &*msg.cast::<Message>() });
    }

    /// Registers `H`; fails with `EBUSY` when the type has a handler.
    pub fn register(owner: &CStr) -> Result<Self> {
        // SAFETY: `handle` is a valid handler for as long as this
        // registration lives; the hub copies `owner`.
        to_result(unsafe {
            bindings::cohort_msg_register_handler(H::TYPE, Some(Self::handle), owner.as_char_ptr())
        })?;
        Ok(Self {
            _handler: PhantomData,
        })
    }
}

impl<H: MsgHandler> Drop for HandlerRegistration<H> {
    fn drop(&mut self) {
        // SAFETY: `register` installed exactly this handler for this type.
        unsafe { bindings::cohort_msg_unregister_handler(H::TYPE, Some(Self::handle)) };
    }
}

// SAFETY: A registration holds no data.
unsafe impl<H: MsgHandler> Send for HandlerRegistration<H> {}
// SAFETY: A registration has no methods that take `&self`.
unsafe impl<H: MsgHandler> Sync for HandlerRegistration<H> {}

/// Learns when other nodes come up or go down.
pub trait MembershipListener {
    /// Node `node` came up. Runs in process context; may sleep.
    fn node_up(node: u32);

    /// Node `node` went down, or the transport is unloading.
    fn node_down(node: u32);
}

/// A registered [`MembershipListener`]; dropping it unregisters it and
/// waits for calls in flight.
///
/// Events from before the registration are not replayed: ask
/// [`super::node_online`] for the current state after registering.
pub struct ListenerRegistration<L: MembershipListener> {
    /// Boxed so that it does not move while the hub's chain points to it.
    nb: KBox<bindings::notifier_block>,
    _listener: PhantomData<L>,
}

// SAFETY: The notifier block is only touched by the hub's chain, which locks.
unsafe impl<L: MembershipListener> Send for ListenerRegistration<L> {}
// SAFETY: The registration has no `&self` methods.
unsafe impl<L: MembershipListener> Sync for ListenerRegistration<L> {}

impl<L: MembershipListener> ListenerRegistration<L> {
    extern "C" fn call(
        _nb: *mut bindings::notifier_block,
        event: crate::ffi::c_ulong,
        data: *mut c_void,
    ) -> crate::ffi::c_int {
        // The hub passes the node id as the data pointer's value.
        let node = data as usize as u32;
        match event as u32 {
            bindings::cohort_membership_event_COHORT_NODE_UP => L::node_up(node),
            bindings::cohort_membership_event_COHORT_NODE_DOWN => L::node_down(node),
            _ => {}
        }
        bindings::NOTIFY_OK as crate::ffi::c_int
    }

    /// Registers `L`.
    pub fn register() -> Result<Self> {
        let mut nb = KBox::new(
            bindings::notifier_block {
                notifier_call: Some(Self::call),
                next: core::ptr::null_mut(),
                priority: 0,
            },
            GFP_KERNEL,
        )?;
        // SAFETY: `nb` is a valid notifier block that stays at this address
        // (boxed) until `Drop` unregisters it.
        to_result(unsafe { bindings::cohort_membership_register(&mut *nb) })?;
        Ok(Self {
            nb,
            _listener: PhantomData,
        })
    }
}

impl<L: MembershipListener> Drop for ListenerRegistration<L> {
    fn drop(&mut self) {
        // SAFETY: `register` registered exactly this block.
        unsafe { bindings::cohort_membership_unregister(&mut *self.nb) };
    }
}

/// Tells the membership listeners that `node` came up or went down; for
/// the transport, in process context.
pub fn notify_membership(node: u32, up: bool) {
    // SAFETY: No preconditions beyond process context.
    unsafe { bindings::cohort_membership_notify(node, up) };
}

/// The message transport, as the hub calls it.
///
/// Registered with a [`TransportRegistration`], whose data every method
/// receives.
#[vtable]
pub trait MsgOps {
    /// The transport's state, shared with its threads.
    type Data: Send + Sync;

    /// Whether node `node` (never this node) is up.
    fn peer_online(_data: &Self::Data, _node: u32) -> bool {
        crate::build_error(crate::error::VTABLE_DEFAULT_ERROR)
    }

    /// Queues a message to `node` without waiting for an answer.
    fn send(_data: &Self::Data, _node: u32, _ty: u16, _msg: &[u8]) -> Result {
        crate::build_error(crate::error::VTABLE_DEFAULT_ERROR)
    }

    /// Sends a request and waits for its reply (see [`request`]); a signal
    /// ends the wait unless `nointr`.
    fn request(
        _data: &Self::Data,
        _node: u32,
        _ty: u16,
        _msg: &[u8],
        _reply: &mut [u8],
        _timeout_ms: u32,
        _nointr: bool,
    ) -> Result<usize> {
        crate::build_error(crate::error::VTABLE_DEFAULT_ERROR)
    }

    /// Answers request `req` with `error` (0 or a negative errno) and `msg`.
    fn reply(_data: &Self::Data, _req: &Message, _error: i32, _msg: &[u8]) -> Result {
        crate::build_error(crate::error::VTABLE_DEFAULT_ERROR)
    }
}

/// The registered transport's data. Set before the ops are installed and
/// cleared only after they are removed, which waits for calls in flight, so
/// a call from the hub always finds it.
static TRANSPORT: AtomicPtr<c_void> = AtomicPtr::new(core::ptr::null_mut());

/// The message slot filled with `T`'s ops.
pub struct MsgSlot<T: MsgOps>(PhantomData<T>);

impl<T: MsgOps> MsgSlot<T> {
    const TABLE: bindings::cohort_msg_ops = bindings::cohort_msg_ops {
        peer_online: if T::HAS_PEER_ONLINE {
            Some(Self::peer_online)
        } else {
            None
        },
        send: if T::HAS_SEND { Some(Self::send) } else { None },
        request: if T::HAS_REQUEST {
            Some(Self::request)
        } else {
            None
        },
        reply: if T::HAS_REPLY {
            Some(Self::reply)
        } else {
            None
        },
    };

    fn data<'a>() -> Option<&'a T::Data> {
        let data = TRANSPORT.load(Ordering::Acquire);
        if data.is_null() {
            return None;
        }
        // SAFETY: Only `TransportRegistration<T>` sets `TRANSPORT`, to the
        // data of the `T` whose table the hub is calling, and keeps it alive
        // until the hub guarantees no call is in flight (see `TRANSPORT`).
        Some(unsafe { &*data.cast::<T::Data>() })
    }

    extern "C" fn peer_online(node: crate::ffi::c_uint) -> bool {
        Self::data().is_some_and(|data| T::peer_online(data, node))
    }

    /// # Safety
    ///
    /// `msg` is valid for reads of `len` bytes.
    unsafe extern "C" fn send(
        node: crate::ffi::c_uint,
        ty: u16,
        msg: *const c_void,
        len: usize,
    ) -> crate::ffi::c_int {
        let Some(data) = Self::data() else {
            return super::errno::ENOTCONN().to_errno();
        };
        // SAFETY: Guaranteed by the hub's caller.
        let msg = unsafe { c_bytes(msg, len) };
        match T::send(data, node, ty, msg) {
            Ok(()) => 0,
            Err(e) => e.to_errno(),
        }
    }

    /// # Safety
    ///
    /// `msg` is valid for reads of `len` bytes and `reply` for writes of
    /// `reply_size` bytes, not aliased.
    unsafe extern "C" fn request(
        node: crate::ffi::c_uint,
        ty: u16,
        msg: *const c_void,
        len: usize,
        reply: *mut c_void,
        reply_size: usize,
        timeout_ms: crate::ffi::c_uint,
        flags: crate::ffi::c_uint,
    ) -> crate::ffi::c_long {
        let Some(data) = Self::data() else {
            return super::errno::ENOTCONN().to_errno() as crate::ffi::c_long;
        };
        // SAFETY: Guaranteed by the hub's caller.
        let (msg, reply) = unsafe { (c_bytes(msg, len), c_bytes_mut(reply, reply_size)) };
        match T::request(
            data,
            node,
            ty,
            msg,
            reply,
            timeout_ms,
            flags & bindings::COHORT_MSG_NOINTR != 0,
        ) {
            Ok(n) => n as crate::ffi::c_long,
            Err(e) => e.to_errno() as crate::ffi::c_long,
        }
    }

    /// # Safety
    ///
    /// `req` is a live message and `msg` is valid for reads of `len` bytes.
    unsafe extern "C" fn reply(
        req: *const bindings::cohort_msg,
        error: crate::ffi::c_int,
        msg: *const c_void,
        len: usize,
    ) -> crate::ffi::c_int {
        let Some(data) = Self::data() else {
            return super::errno::ENOTCONN().to_errno();
        };
        // SAFETY: Guaranteed by the hub's caller.
        let (req, msg) = unsafe { (&*req.cast::<Message>(), c_bytes(msg, len)) };
        match T::reply(data, req, error, msg) {
            Ok(()) => 0,
            Err(e) => e.to_errno(),
        }
    }
}

impl<T: MsgOps> Slot for MsgSlot<T> {
    const SLOT: bindings::cohort_slot = bindings::cohort_slot_COHORT_SLOT_MSG;

    fn table() -> *const c_void {
        let table: &'static bindings::cohort_msg_ops = &Self::TABLE;
        (table as *const bindings::cohort_msg_ops).cast()
    }
}

/// `T` installed as the message transport with its data; dropping it
/// unregisters the transport, waits for calls in flight, then releases the
/// data.
pub struct TransportRegistration<T: MsgOps> {
    data: *const T::Data,
}

// SAFETY: The registration owns a reference to `T::Data`, which is
// `Send + Sync`.
unsafe impl<T: MsgOps> Send for TransportRegistration<T> {}
// SAFETY: As above.
unsafe impl<T: MsgOps> Sync for TransportRegistration<T> {}

impl<T: MsgOps> TransportRegistration<T> {
    /// Installs `T` with `data`; fails with `EBUSY` when another transport
    /// is registered.
    pub fn register(owner: &CStr, data: Arc<T::Data>) -> Result<Self> {
        let raw = data.into_raw();
        if TRANSPORT
            .compare_exchange(
                core::ptr::null_mut(),
                raw as *mut c_void,
                Ordering::AcqRel,
                Ordering::Acquire,
            )
            .is_err()
        {
            // SAFETY: `raw` came from `Arc::into_raw` just above.
            drop(unsafe { Arc::from_raw(raw) });
            return Err(EBUSY);
        }
        // SAFETY: The table lives forever; the hub copies `owner`.
        let ret = unsafe {
            bindings::cohort_register(
                MsgSlot::<T>::SLOT,
                MsgSlot::<T>::table(),
                owner.as_char_ptr(),
            )
        };
        if let Err(e) = to_result(ret) {
            TRANSPORT.store(core::ptr::null_mut(), Ordering::Release);
            // SAFETY: Not published to the hub: this is the only reference.
            drop(unsafe { Arc::from_raw(raw) });
            return Err(e);
        }
        Ok(Self { data: raw })
    }
}

impl<T: MsgOps> Drop for TransportRegistration<T> {
    fn drop(&mut self) {
        // SAFETY: `register` installed this table; unregistering waits until
        // no call is in flight, after which nobody reads `TRANSPORT`'s data.
        unsafe { bindings::cohort_unregister(MsgSlot::<T>::SLOT, MsgSlot::<T>::table()) };
        TRANSPORT.store(core::ptr::null_mut(), Ordering::Release);
        // SAFETY: `self.data` came from `Arc::into_raw` in `register`.
        drop(unsafe { Arc::from_raw(self.data) });
    }
}
