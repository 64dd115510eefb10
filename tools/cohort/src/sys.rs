//! The few libc calls std does not wrap: kill(2) and signal(2).

use std::os::raw::c_int;
use std::sync::atomic::{AtomicBool, Ordering};

pub const SIGINT: c_int = 2;
pub const SIGKILL: c_int = 9;
pub const SIGTERM: c_int = 15;

extern "C" {
    fn kill(pid: c_int, sig: c_int) -> c_int;
    fn signal(signum: c_int, handler: extern "C" fn(c_int)) -> usize;
}

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_sig: c_int) {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

/// Turn SIGINT and SIGTERM into a flag that `interrupted` reports.
pub fn catch_interrupts() {
    // SAFETY: the handler only stores to an atomic, which is
    // async-signal-safe; signal() has no other preconditions.
    unsafe {
        signal(SIGINT, on_signal);
        signal(SIGTERM, on_signal);
    }
}

pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

/// Send `sig` to process `pid`. Returns false if it failed (no such
/// process, or no permission). Never signals groups or pid <= 1.
pub fn send_signal(pid: u32, sig: c_int) -> bool {
    let Ok(pid) = c_int::try_from(pid) else {
        return false;
    };
    if pid <= 1 {
        return false;
    }
    // SAFETY: kill(2) takes plain integers and has no memory effects.
    unsafe { kill(pid, sig) == 0 }
}
