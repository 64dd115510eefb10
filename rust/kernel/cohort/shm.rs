// SPDX-License-Identifier: GPL-2.0

//! Memory shared by nodes that are partitions of one host: QEMU's
//! `ivshmem-doorbell` device, as the hub's driver (`kernel/cohort/ivshmem.c`)
//! exposes it.
//!
//! A transport attaches ([`Attachment::new`]) with a [`Doorbell`] handler,
//! which the device's interrupt calls when a peer rings this node, and gets
//! a [`Region`]: word loads and stores with acquire and release ordering,
//! byte copies, a full fence, and the doorbells of the other nodes. The
//! ring protocol on top is `cohort_proto::shm_ring`.
//!
//! C header: [`include/linux/cohort.h`](srctree/include/linux/cohort.h)

use crate::bindings;
use crate::error::{to_result, Result};
use crate::prelude::*;
use crate::sync::Arc;
use core::marker::PhantomPinned;
use core::pin::Pin;

/// How long a receiver polls its ring after its last bytes before it
/// sleeps on the doorbell, in ns (`cohort.shm_poll_us`, at most 10 ms;
/// 0: never).
pub fn poll_ns() -> u64 {
    // SAFETY: Reads a parameter; callable from any context.
    unsafe { bindings::cohort_shm_poll_ns() }
}

/// Called from the device's interrupt handler when a peer rings this node:
/// in hard interrupt context, so it must not sleep (waking a wait queue is
/// what it is for).
pub trait Doorbell: Send + Sync + 'static {
    /// A peer rang.
    fn doorbell(&self);
}

/// The shared region of the attached device.
///
/// Offsets are bytes from its start. An access outside the region does
/// nothing (a load or read gives zeros): the region's contents come from
/// other nodes and are checked by the protocol, but an offset is this
/// node's own arithmetic, so that would be a bug, not an attack.
///
/// # Invariants
///
/// The device was probed and attached when this value was made: its region
/// stays mapped from then on (the driver is built in and cannot be
/// unbound).
#[derive(Clone, Copy)]
pub struct Region {
    size: usize,
    position: u16,
}

impl Region {
    /// Bytes of the region.
    pub fn size(&self) -> usize {
        self.size
    }

    /// This node's ivshmem peer id: what peers ring it with.
    pub fn position(&self) -> u16 {
        self.position
    }

    /// Loads the word at `off` (`smp_load_acquire`).
    pub fn load_acquire(&self, off: usize) -> u64 {
        // SAFETY: By the type invariant the region is mapped; the function
        // checks `off` against it.
        unsafe { bindings::cohort_shm_load_acquire(off) }
    }

    /// Stores `val` at `off` (`smp_store_release`).
    pub fn store_release(&self, off: usize, val: u64) {
        // SAFETY: As in `load_acquire`.
        unsafe { bindings::cohort_shm_store_release(off, val) }
    }

    /// Copies the bytes at `off` into `buf`.
    pub fn read(&self, off: usize, buf: &mut [u8]) {
        // SAFETY: As in `load_acquire`; `buf` is valid for writes of its
        // length.
        unsafe { bindings::cohort_shm_read(off, buf.as_mut_ptr().cast(), buf.len()) }
    }

    /// Copies `bytes` to `off`.
    pub fn write(&self, off: usize, bytes: &[u8]) {
        // SAFETY: As in `load_acquire`; `bytes` is valid for reads of its
        // length.
        unsafe { bindings::cohort_shm_write(off, bytes.as_ptr().cast(), bytes.len()) }
    }

    /// A full memory barrier (`smp_mb`).
    pub fn fence(&self) {
        // SAFETY: No preconditions.
        unsafe { bindings::cohort_shm_fence() }
    }

    /// Rings a doorbell: `value` is the peer id in bits 16..31 and the
    /// vector in bits 0..15.
    pub fn ring(&self, value: u32) {
        // SAFETY: By the type invariant the device is probed.
        unsafe { bindings::cohort_shm_ring(value) }
    }
}

/// The C client record and its handler, pinned while attached.
#[repr(C)]
struct Client<T: Doorbell> {
    raw: bindings::cohort_shm_client,
    handler: Arc<T>,
    _pin: PhantomPinned,
}

/// The attachment of a transport to the shared memory: while it lives, the
/// device's interrupt calls `T::doorbell`; dropping it detaches and waits
/// for the handler calls in flight.
///
/// # Invariants
///
/// `client` is attached to the hub (`cohort_shm_attach` succeeded with its
/// `raw` field).
pub struct Attachment<T: Doorbell> {
    client: Pin<KBox<Client<T>>>,
}

// SAFETY: The client is only read by the interrupt handler, through
// `T: Send + Sync`.
unsafe impl<T: Doorbell> Send for Attachment<T> {}
// SAFETY: As above; `Attachment` has no methods that change it.
unsafe impl<T: Doorbell> Sync for Attachment<T> {}

impl<T: Doorbell> Attachment<T> {
    /// Attaches `handler` to the device; returns the attachment and the
    /// region.
    ///
    /// # Errors
    ///
    /// `EPERM` when the kernel was booted without `cohort.shm=1`, `ENODEV`
    /// without the device, `EBUSY` when another transport is attached,
    /// `ENOMEM`.
    pub fn new(handler: Arc<T>) -> Result<(Self, Region)> {
        let client = KBox::pin(
            Client {
                raw: bindings::cohort_shm_client {
                    doorbell: Some(Self::doorbell_callback),
                    data: core::ptr::null_mut(),
                },
                handler,
                _pin: PhantomPinned,
            },
            GFP_KERNEL,
        )?;
        // SAFETY: Only the address is taken; nothing is moved out of the pin.
        let ptr: *mut Client<T> =
            unsafe { Pin::into_inner_unchecked(client.as_ref()) as *const _ as *mut _ };
        // SAFETY: `ptr` points to the pinned client, which lives until it is
        // detached in `drop`; `raw` is its first field (`repr(C)`).
        unsafe { (*ptr).raw.data = ptr.cast() };
        let mut info = bindings::cohort_shm_info {
            size: 0,
            position: 0,
        };
        // SAFETY: `raw` stays valid and pinned until `cohort_shm_detach` in
        // `drop`; `info` is valid for writes.
        to_result(unsafe { bindings::cohort_shm_attach(&mut (*ptr).raw, &mut info) })?;
        // INVARIANT: attached just now; the region is mapped.
        Ok((
            Self { client },
            Region {
                size: info.size,
                position: info.position,
            },
        ))
    }

    extern "C" fn doorbell_callback(data: *mut core::ffi::c_void) {
        // SAFETY: `data` is the pinned `Client<T>` set in `new`, valid until
        // `cohort_shm_detach` returned, which waits for this call.
        let client = unsafe { &*data.cast::<Client<T>>() };
        client.handler.doorbell();
    }
}

impl<T: Doorbell> Drop for Attachment<T> {
    fn drop(&mut self) {
        let raw = &self.client.raw as *const bindings::cohort_shm_client;
        // SAFETY: By the type invariant the client is attached; detaching
        // waits until no interrupt handler uses it.
        unsafe { bindings::cohort_shm_detach(raw.cast_mut()) }
    }
}
