// SPDX-License-Identifier: GPL-2.0

//! In-kernel TCP sockets, over IPv4 or IPv6, for the message transport.
//!
//! A [`TcpSocket`] may be used by several threads: sends must be serialised
//! by the caller (one message at a time), receives come from one thread, and
//! [`TcpSocket::shutdown`] may be called from anywhere to make both return.

use super::errno;
use crate::{bindings, error::to_result, prelude::*, sync::Arc};
use core::fmt;
use core::ptr;

/// An address family: what [`TcpSocket::listen`] listens on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    /// IPv4 (`AF_INET`).
    V4,
    /// IPv6 (`AF_INET6`).
    V6,
}

impl Family {
    fn raw(self) -> i32 {
        match self {
            Family::V4 => bindings::AF_INET as i32,
            Family::V6 => bindings::AF_INET6 as i32,
        }
    }
}

/// An IPv4 or IPv6 address, its bytes in network order, as `cohort.peers=`
/// gives it. Displays as `192.0.2.1` or `2001:db8::1`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IpAddr {
    /// An IPv4 address.
    V4([u8; 4]),
    /// An IPv6 address (global or unique local: no scope id, so not
    /// link-local).
    V6([u8; 16]),
}

impl IpAddr {
    /// The hub's `struct cohort_ip`; `None` for an unknown family.
    pub fn from_raw(ip: &bindings::cohort_ip) -> Option<Self> {
        match u32::from(ip.family) {
            bindings::AF_INET => Some(IpAddr::V4([ip.addr[0], ip.addr[1], ip.addr[2], ip.addr[3]])),
            bindings::AF_INET6 => Some(IpAddr::V6(ip.addr)),
            _ => None,
        }
    }

    /// The address's family.
    pub fn family(&self) -> Family {
        match self {
            IpAddr::V4(_) => Family::V4,
            IpAddr::V6(_) => Family::V6,
        }
    }
}

impl fmt::Display for IpAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IpAddr::V4([a, b, c, d]) => write!(f, "{a}.{b}.{c}.{d}"),
            IpAddr::V6(bytes) => {
                let mut words = [0u16; 8];
                for (i, w) in words.iter_mut().enumerate() {
                    *w = u16::from_be_bytes([bytes[2 * i], bytes[2 * i + 1]]);
                }
                // The longest run of two or more zero words becomes `::`
                // (RFC 5952), the first such run on a tie.
                let (mut best, mut best_len, mut run) = (0, 0, 0);
                for i in 0..8 {
                    run = if words[i] == 0 { run + 1 } else { 0 };
                    if run > best_len {
                        best = i + 1 - run;
                        best_len = run;
                    }
                }
                if best_len < 2 {
                    best_len = 0;
                    best = 8;
                }
                let mut i = 0;
                while i < 8 {
                    if i == best {
                        f.write_str(if i == 0 { "::" } else { ":" })?;
                        i += best_len;
                        continue;
                    }
                    write!(f, "{:x}", words[i])?;
                    if i < 7 {
                        f.write_str(":")?;
                    }
                    i += 1;
                }
                Ok(())
            }
        }
    }
}

/// A kernel TCP socket over IPv4 or IPv6 in the initial network namespace.
pub struct TcpSocket {
    sock: *mut bindings::socket,
}

// SAFETY: The socket layer locks internally; the type's documentation says
// how concurrent sends must be serialised by the user.
unsafe impl Send for TcpSocket {}
// SAFETY: As above; `&self` methods only call thread-safe socket functions.
unsafe impl Sync for TcpSocket {}

/// A socket address of either family, laid out as the socket calls take
/// it.
enum SockAddr {
    V4(bindings::sockaddr_in),
    V6(bindings::sockaddr_in6),
}

impl SockAddr {
    /// `addr:port`.
    fn new(addr: IpAddr, port: u16) -> Self {
        match addr {
            IpAddr::V4(bytes) => {
                // SAFETY: All-zero is a valid `sockaddr_in` (as `= {}` in C).
                let mut sa: bindings::sockaddr_in = unsafe { core::mem::zeroed() };
                sa.sin_family = bindings::AF_INET as u16;
                sa.sin_port = port.to_be();
                sa.sin_addr.s_addr = u32::from_ne_bytes(bytes);
                SockAddr::V4(sa)
            }
            IpAddr::V6(bytes) => {
                // SAFETY: All-zero is a valid `sockaddr_in6` (as `= {}` in
                // C): no flow label, scope 0.
                let mut sa: bindings::sockaddr_in6 = unsafe { core::mem::zeroed() };
                sa.sin6_family = bindings::AF_INET6 as u16;
                sa.sin6_port = port.to_be();
                sa.sin6_addr.in6_u.u6_addr8 = bytes;
                SockAddr::V6(sa)
            }
        }
    }

    /// Every local address of `family` (`0.0.0.0` or `::`), `port`.
    fn any(family: Family, port: u16) -> Self {
        match family {
            Family::V4 => Self::new(IpAddr::V4([0; 4]), port),
            Family::V6 => Self::new(IpAddr::V6([0; 16]), port),
        }
    }

    /// The address as the socket calls take it, and its size.
    fn as_raw(&mut self) -> (*mut bindings::sockaddr, i32) {
        match self {
            SockAddr::V4(sa) => (
                ptr::from_mut(sa).cast(),
                core::mem::size_of::<bindings::sockaddr_in>() as i32,
            ),
            SockAddr::V6(sa) => (
                ptr::from_mut(sa).cast(),
                core::mem::size_of::<bindings::sockaddr_in6>() as i32,
            ),
        }
    }
}

fn ms_to_jiffies(ms: u32) -> crate::ffi::c_long {
    crate::time::msecs_to_jiffies(ms) as crate::ffi::c_long
}

impl TcpSocket {
    fn create(family: Family) -> Result<Self> {
        let mut sock = ptr::null_mut();
        // SAFETY: `init_net` lives forever; `sock` receives the new socket.
        to_result(unsafe {
            bindings::sock_create_kern(
                ptr::addr_of_mut!(bindings::init_net),
                family.raw(),
                bindings::sock_type_SOCK_STREAM as i32,
                bindings::IPPROTO_TCP as i32,
                &mut sock,
            )
        })?;
        Ok(Self { sock })
    }

    fn sk(&self) -> *mut bindings::sock {
        // SAFETY: A created socket always has its `sk`.
        unsafe { (*self.sock).sk }
    }

    /// A socket listening on `port` on every local address of `family`.
    pub fn listen(family: Family, port: u16, backlog: i32) -> Result<Self> {
        let socket = Self::create(family)?;
        // SAFETY: `sk` is valid while `socket` lives.
        unsafe { bindings::sock_set_reuseaddr(socket.sk()) };
        let mut sa = SockAddr::any(family, port);
        let (sa, len) = sa.as_raw();
        // SAFETY: `sa` points to a valid socket address of `len` bytes of
        // the socket's family, alive for the call.
        to_result(unsafe { bindings::kernel_bind(socket.sock, sa, len) })?;
        // SAFETY: The socket is bound.
        to_result(unsafe { bindings::kernel_listen(socket.sock, backlog) })?;
        Ok(socket)
    }

    /// Waits for and returns the next connection; fails once shut down.
    pub fn accept(&self) -> Result<Self> {
        let mut new = ptr::null_mut();
        // SAFETY: `self` is a listening socket; `new` receives the result.
        to_result(unsafe { bindings::kernel_accept(self.sock, &mut new, 0) })?;
        let socket = Self { sock: new };
        socket.set_nodelay();
        Ok(socket)
    }

    /// Connects to `addr:port`, giving up after `timeout_ms`.
    pub fn connect(addr: IpAddr, port: u16, timeout_ms: u32) -> Result<Self> {
        let socket = Self::create(addr.family())?;
        socket.set_send_timeout(timeout_ms);
        let mut sa = SockAddr::new(addr, port);
        let (sa, len) = sa.as_raw();
        // SAFETY: `sa` points to a valid socket address of `len` bytes of
        // the socket's family, alive for the call.
        to_result(unsafe { bindings::kernel_connect(socket.sock, sa, len, 0) })?;
        socket.set_nodelay();
        Ok(socket)
    }

    /// Sends without Nagle's delay: messages are latency-bound.
    fn set_nodelay(&self) {
        // SAFETY: `sk` is valid while `self` lives.
        unsafe { bindings::tcp_sock_set_nodelay(self.sk()) };
    }

    /// Bounds how long a send (or a connect) may block.
    pub fn set_send_timeout(&self, timeout_ms: u32) {
        // SAFETY: `sk` is valid; the field is read by the socket layer
        // without locking, as `sock_set_sndtimeo()` writes it.
        unsafe { (*self.sk()).sk_sndtimeo = ms_to_jiffies(timeout_ms) };
    }

    /// Bounds how long a receive may block; 0 waits for ever. A receive
    /// that times out fails with `EAGAIN`.
    pub fn set_recv_timeout(&self, timeout_ms: u32) {
        let timeout = if timeout_ms == 0 {
            crate::ffi::c_long::MAX
        } else {
            ms_to_jiffies(timeout_ms)
        };
        // SAFETY: As in `set_send_timeout`.
        unsafe { (*self.sk()).sk_rcvtimeo = timeout };
    }

    /// Most parts [`TcpSocket::send_all`] takes.
    pub const MAX_PARTS: usize = 4;

    /// Sends all of `parts` back to back, as one `sendmsg` where the socket
    /// takes it all (so a header and a small payload leave in one segment).
    ///
    /// Fails with `EINVAL` for more than [`Self::MAX_PARTS`] parts, `EAGAIN`
    /// when the send timeout passes, `EPIPE` once shut down, or the socket's
    /// error; on failure part may have been sent.
    pub fn send_all(&self, parts: &[&[u8]]) -> Result {
        if parts.len() > Self::MAX_PARTS {
            return Err(EINVAL);
        }
        // The first part and offset not yet sent.
        let (mut first, mut offset) = (0, 0);
        while first < parts.len() {
            let mut vecs = [bindings::kvec {
                iov_base: ptr::null_mut(),
                iov_len: 0,
            }; Self::MAX_PARTS];
            let mut count = 0;
            let mut total = 0;
            for (i, part) in parts.iter().enumerate().skip(first) {
                let rest = if i == first { &part[offset..] } else { part };
                vecs[count] = bindings::kvec {
                    iov_base: rest.as_ptr() as *mut core::ffi::c_void,
                    iov_len: rest.len(),
                };
                count += 1;
                total += rest.len();
            }
            if total == 0 {
                return Ok(());
            }
            // SAFETY: All-zero is a valid `msghdr` (as `= {}` in C).
            let mut msg: bindings::msghdr = unsafe { core::mem::zeroed() };
            msg.msg_flags = bindings::MSG_NOSIGNAL;
            // SAFETY: `vecs[..count]` describe live slices of `parts`.
            let ret = unsafe {
                bindings::kernel_sendmsg(self.sock, &mut msg, vecs.as_mut_ptr(), count, total)
            };
            if ret < 0 {
                return Err(Error::from_errno(ret));
            }
            if ret == 0 {
                return Err(EPIPE);
            }
            // Advance past what was sent.
            let mut sent = ret as usize;
            while sent > 0 && first < parts.len() {
                let left = parts[first].len() - offset;
                if sent >= left {
                    sent -= left;
                    first += 1;
                    offset = 0;
                } else {
                    offset += sent;
                    sent = 0;
                }
            }
            while first < parts.len() && parts[first].len() == offset {
                first += 1;
                offset = 0;
            }
        }
        Ok(())
    }

    /// One `recvmsg` into `buf` with `flags`; retries when interrupted.
    /// Fails with `ECONNRESET` at end of stream.
    fn recv_once(&self, buf: &mut [u8], flags: i32) -> Result<usize> {
        loop {
            let mut vec = bindings::kvec {
                iov_base: buf.as_mut_ptr().cast(),
                iov_len: buf.len(),
            };
            // SAFETY: All-zero is a valid `msghdr` (as `= {}` in C).
            let mut msg: bindings::msghdr = unsafe { core::mem::zeroed() };
            // SAFETY: `vec` describes `buf`, valid for the call.
            let ret = unsafe {
                bindings::kernel_recvmsg(self.sock, &mut msg, &mut vec, 1, buf.len(), flags)
            };
            if ret == -(bindings::EINTR as i32) {
                continue;
            }
            if ret < 0 {
                return Err(Error::from_errno(ret));
            }
            if ret == 0 {
                return Err(errno::ECONNRESET());
            }
            return Ok(ret as usize);
        }
    }

    /// Fills `buf` completely; fails with `ECONNRESET` when the peer closed
    /// the connection or it was shut down, `EAGAIN` when the receive timeout
    /// passed.
    pub fn recv_exact(&self, buf: &mut [u8]) -> Result {
        let mut got = 0;
        while let Some(rest) = buf.get_mut(got..).filter(|rest| !rest.is_empty()) {
            got += self.recv_once(rest, bindings::MSG_WAITALL as i32)?;
        }
        Ok(())
    }

    /// Shuts the connection down both ways: blocked sends, receives and
    /// accepts return with an error.
    pub fn shutdown(&self) {
        // SAFETY: Valid on any socket, any number of times.
        unsafe { bindings::kernel_sock_shutdown(self.sock, bindings::sock_shutdown_cmd_SHUT_RDWR) };
    }
}

impl Drop for TcpSocket {
    fn drop(&mut self) {
        // SAFETY: `self` owns the socket; nobody else uses it any more.
        unsafe { bindings::sock_release(self.sock) };
    }
}

/// Non-blocking reads of a socket's queued bytes, lent to a
/// [`ReceiveHandler`] while the socket lock is held.
pub struct SockReader {
    sk: *mut bindings::sock,
}

/// Copies queued bytes into the buffer behind `desc` (its `arg.data`, at
/// offset `written`, at most `count` more).
unsafe extern "C" fn copy_actor(
    desc: *mut bindings::read_descriptor_t,
    skb: *mut bindings::sk_buff,
    offset: crate::ffi::c_uint,
    len: usize,
) -> crate::ffi::c_int {
    // SAFETY: `tcp_read_sock` passes the descriptor `SockReader::read` set
    // up, and a live skb with at least `offset + len` bytes.
    unsafe {
        let desc = &mut *desc;
        let n = len.min(desc.count).min(i32::MAX as usize);
        if n == 0 {
            return 0;
        }
        let dst = desc.arg.data.cast::<u8>().add(desc.written);
        if bindings::skb_copy_bits(skb, offset as i32, dst.cast(), n as i32) != 0 {
            desc.error = -(bindings::EFAULT as i32);
            return 0;
        }
        desc.written += n;
        desc.count -= n;
        n as crate::ffi::c_int
    }
}

impl SockReader {
    /// Copies up to `buf.len()` queued bytes into `buf` without waiting;
    /// returns how many, 0 when none are queued.
    pub fn read(&mut self, buf: &mut [u8]) -> usize {
        if buf.is_empty() {
            return 0;
        }
        // SAFETY: All-zero is a valid descriptor.
        let mut desc: bindings::read_descriptor_t = unsafe { core::mem::zeroed() };
        desc.count = buf.len();
        desc.arg.data = buf.as_mut_ptr().cast();
        // SAFETY: A `SockReader` exists only while the socket lock is held,
        // as `tcp_read_sock` requires; the actor writes within `buf`.
        unsafe { bindings::tcp_read_sock(self.sk, &mut desc, Some(copy_actor)) };
        desc.written
    }

    /// Whether no more data will come: the peer closed its end, the
    /// connection failed, or it was shut down.
    pub fn closed(&self) -> bool {
        // SAFETY: The socket lock is held; these fields are read as the TCP
        // code reads them.
        unsafe {
            let sk = &*self.sk;
            (sk.sk_shutdown & bindings::RCV_SHUTDOWN as u8) != 0
                || sk.sk_err != 0
                || u32::from(sk.__sk_common.skc_state) != bindings::TCP_ESTABLISHED
        }
    }
}

/// Receives a connection's bytes as they arrive, in the socket's
/// `sk_data_ready` callback (softirq, or process context when the socket's
/// owner releases it) instead of a thread blocked in `recvmsg`.
pub trait ReceiveHandler {
    /// The receiving state; only ever touched with the socket lock held.
    type State: Send;

    /// Bytes arrived: read what is queued with `rx`. Runs in atomic
    /// context; it must not sleep.
    fn data_ready(state: &mut Self::State, rx: &mut SockReader);
}

/// A socket whose arriving bytes go to `H`; dropping it puts the socket's
/// own callback back and frees the state.
pub struct Receiving<H: ReceiveHandler> {
    socket: Arc<TcpSocket>,
    state: *mut H::State,
    saved: Option<unsafe extern "C" fn(*mut bindings::sock)>,
}

// SAFETY: The state is `Send` and only touched under the socket lock.
unsafe impl<H: ReceiveHandler> Send for Receiving<H> {}

impl<H: ReceiveHandler> Receiving<H> {
    /// Routes `socket`'s arriving bytes to `H` with `state`, then hands `H`
    /// whatever arrived before.
    pub fn start(socket: Arc<TcpSocket>, state: KBox<H::State>) -> Self {
        let state = KBox::into_raw(state);
        let sk = socket.sk();
        // SAFETY: `sk` is live while `socket` is; the callback lock orders
        // this with callbacks running on other CPUs.
        let saved = unsafe {
            bindings::_raw_write_lock_bh(ptr::addr_of_mut!((*sk).sk_callback_lock));
            let saved = (*sk).sk_data_ready;
            (*sk).sk_user_data = state.cast();
            (*sk).sk_data_ready = Some(Self::data_ready);
            bindings::_raw_write_unlock_bh(ptr::addr_of_mut!((*sk).sk_callback_lock));
            saved
        };
        let this = Self {
            socket,
            state,
            saved,
        };
        this.with_locked(|state, rx| H::data_ready(state, rx));
        this
    }

    /// Runs `f` on the state with the socket lock held, in process
    /// context (where it may sleep, e.g. to allocate).
    pub fn with_locked<R>(&self, f: impl FnOnce(&mut H::State, &mut SockReader) -> R) -> R {
        let sk = self.socket.sk();
        // SAFETY: Owning the socket lock keeps the callback (which runs only
        // while the lock is not owned, or from `release_sock` after `f`
        // returned) off the state for the duration of `f`.
        unsafe {
            bindings::lock_sock_nested(sk, 0);
            let result = f(&mut *self.state, &mut SockReader { sk });
            bindings::release_sock(sk);
            result
        }
    }

    unsafe extern "C" fn data_ready(sk: *mut bindings::sock) {
        // SAFETY: Called by the TCP stack for a live socket with its lock
        // held; `sk_user_data` is our state until `Drop` clears it under
        // the callback lock, which this holds for reading.
        unsafe {
            bindings::_raw_read_lock_bh(ptr::addr_of_mut!((*sk).sk_callback_lock));
            let state = (*sk).sk_user_data.cast::<H::State>();
            if !state.is_null() {
                H::data_ready(&mut *state, &mut SockReader { sk });
            }
            bindings::_raw_read_unlock_bh(ptr::addr_of_mut!((*sk).sk_callback_lock));
        }
    }
}

impl<H: ReceiveHandler> Drop for Receiving<H> {
    fn drop(&mut self) {
        let sk = self.socket.sk();
        // SAFETY: Restoring under the callback lock waits for a callback in
        // progress; after it nothing reaches the state, which `start` made
        // from a `KBox`.
        unsafe {
            bindings::_raw_write_lock_bh(ptr::addr_of_mut!((*sk).sk_callback_lock));
            (*sk).sk_user_data = ptr::null_mut();
            (*sk).sk_data_ready = self.saved;
            bindings::_raw_write_unlock_bh(ptr::addr_of_mut!((*sk).sk_callback_lock));
            drop(KBox::from_raw(self.state));
        }
    }
}
