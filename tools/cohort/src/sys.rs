//! The few system calls std does not wrap, through libc: kill(2) and
//! signal(2).

use std::sync::atomic::{AtomicBool, Ordering};

pub use libc::{SIGINT, SIGKILL, SIGTERM};

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_sig: libc::c_int) {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

/// Turn SIGINT and SIGTERM into a flag that `interrupted` reports.
pub fn catch_interrupts() {
    let handler = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
    // SAFETY: the handler only stores to an atomic, which is
    // async-signal-safe; signal() has no other preconditions.
    unsafe {
        libc::signal(SIGINT, handler);
        libc::signal(SIGTERM, handler);
    }
}

pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

/// Send `sig` to process `pid`. Returns false if it failed (no such
/// process, or no permission). Never signals groups or pid <= 1.
pub fn send_signal(pid: u32, sig: libc::c_int) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    if pid <= 1 {
        return false;
    }
    // SAFETY: kill(2) takes plain integers and has no memory effects.
    unsafe { libc::kill(pid, sig) == 0 }
}
