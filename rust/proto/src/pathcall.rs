// SPDX-License-Identifier: GPL-2.0
//! Path calls a migrated task forwards to its origin, so that it sees one
//! file system, the origin's, with the working directory and root its
//! shadow keeps there.
//!
//! A call travels as [`super::task_msg::FwdCall::Path`]: the system call
//! number and its six argument values, then the bytes of its input
//! arguments (paths, and the times of `utimensat`) in argument order, each
//! as `len u32, bytes`. The shadow copies them into a scratch page of its
//! own address space, points the arguments there, runs the call and sends
//! back its output arguments (a `struct stat`, a link's target, the working
//! directory) in argument order, each at its full size. [`shape`] says what
//! each argument of each call is; the encoder and the decoder apply the
//! same rules.
//!
//! Numbers are x86-64's.

use super::wire::{Reader, WireError, Writer};

/// Longest path, without its NUL (`PATH_MAX - 1`).
pub const PATH_LEN_MAX: usize = 4095;
/// Largest output buffer a call may ask for.
pub const OUT_MAX: usize = 4096;
/// `AT_FDCWD`, the only directory a forwarded call may name.
pub const AT_FDCWD: i64 = -100;

/// What one argument of a forwarded path call is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arg {
    /// Unused (the call has fewer arguments).
    None,
    /// A number, passed as it is.
    Value,
    /// A directory descriptor: always [`AT_FDCWD`] on the wire (the task
    /// forwards only calls relative to its working directory, or absolute).
    Dirfd,
    /// A path (1 to [`PATH_LEN_MAX`] bytes, no NUL); its value on the wire
    /// is 0.
    Path,
    /// A fixed-size input that may be NULL: value 0 and no bytes, or value
    /// 1 and exactly that many bytes.
    InOpt(u16),
    /// An output of a fixed size; its value on the wire is 0.
    Out(u16),
    /// An output whose size is the value of argument `n` (at most
    /// [`OUT_MAX`]); its own value on the wire is 0.
    OutLen(u8),
}

use Arg::{Dirfd, InOpt, None as N, Out, OutLen, Path, Value as V};

/// Size of `struct stat` on x86-64.
const STAT: u16 = 144;
/// Size of `struct statfs`.
const STATFS: u16 = 120;
/// Size of `struct statx`.
const STATX: u16 = 256;
/// Size of two `struct timespec`.
const TIMES: u16 = 32;

/// The shape of every call that is forwarded, by number.
const CALLS: &[(u32, [Arg; 6])] = &[
    (4, [Path, Out(STAT), N, N, N, N]),          // stat
    (6, [Path, Out(STAT), N, N, N, N]),          // lstat
    (21, [Path, V, N, N, N, N]),                 // access
    (76, [Path, V, N, N, N, N]),                 // truncate
    (79, [OutLen(1), V, N, N, N, N]),            // getcwd
    (80, [Path, N, N, N, N, N]),                 // chdir
    (82, [Path, Path, N, N, N, N]),              // rename
    (83, [Path, V, N, N, N, N]),                 // mkdir
    (84, [Path, N, N, N, N, N]),                 // rmdir
    (86, [Path, Path, N, N, N, N]),              // link
    (87, [Path, N, N, N, N, N]),                 // unlink
    (88, [Path, Path, N, N, N, N]),              // symlink
    (89, [Path, OutLen(2), V, N, N, N]),         // readlink
    (90, [Path, V, N, N, N, N]),                 // chmod
    (92, [Path, V, V, N, N, N]),                 // chown
    (94, [Path, V, V, N, N, N]),                 // lchown
    (133, [Path, V, V, N, N, N]),                // mknod
    (137, [Path, Out(STATFS), N, N, N, N]),      // statfs
    (258, [Dirfd, Path, V, N, N, N]),            // mkdirat
    (259, [Dirfd, Path, V, V, N, N]),            // mknodat
    (260, [Dirfd, Path, V, V, V, N]),            // fchownat
    (262, [Dirfd, Path, Out(STAT), V, N, N]),    // newfstatat
    (263, [Dirfd, Path, V, N, N, N]),            // unlinkat
    (264, [Dirfd, Path, Dirfd, Path, N, N]),     // renameat
    (265, [Dirfd, Path, Dirfd, Path, V, N]),     // linkat
    (266, [Path, Dirfd, Path, N, N, N]),         // symlinkat
    (267, [Dirfd, Path, OutLen(3), V, N, N]),    // readlinkat
    (268, [Dirfd, Path, V, N, N, N]),            // fchmodat
    (269, [Dirfd, Path, V, N, N, N]),            // faccessat
    (280, [Dirfd, Path, InOpt(TIMES), V, N, N]), // utimensat
    (316, [Dirfd, Path, Dirfd, Path, V, N]),     // renameat2
    (332, [Dirfd, Path, V, V, Out(STATX), N]),   // statx
    (439, [Dirfd, Path, V, V, N, N]),            // faccessat2
    (452, [Dirfd, Path, V, V, N, N]),            // fchmodat2
];

/// The shape of call `nr` if it is forwarded.
pub fn shape(nr: u32) -> Option<[Arg; 6]> {
    CALLS.iter().find(|(n, _)| *n == nr).map(|(_, s)| *s)
}

/// The size of output argument `i` of a call with `values`, if it is one.
pub fn out_len(shape: &[Arg; 6], values: &[u64; 6], i: usize) -> Option<usize> {
    match shape.get(i)? {
        Out(n) => Some(usize::from(*n)),
        OutLen(j) => {
            let n = *values.get(usize::from(*j))?;
            Some(usize::try_from(n).ok()?.min(OUT_MAX))
        }
        _ => Option::None,
    }
}

/// Bytes of the outputs of a call with `values`, in argument order.
pub fn outs_len(shape: &[Arg; 6], values: &[u64; 6]) -> usize {
    (0..6).filter_map(|i| out_len(shape, values, i)).sum()
}

/// A decoded forwarded path call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PathCall<'a> {
    /// The system call number.
    pub nr: u32,
    /// The argument values; buffers are 0 (1 for a non-NULL [`Arg::InOpt`]).
    pub values: [u64; 6],
    /// The input bytes of each argument (empty for the others).
    pub inputs: [&'a [u8]; 6],
}

fn check(ok: bool) -> Result<(), WireError> {
    if ok {
        Ok(())
    } else {
        Err(WireError::BadPayload)
    }
}

impl<'a> PathCall<'a> {
    /// Checks the call against its [`shape`].
    pub fn validate(&self) -> Result<(), WireError> {
        let shape = shape(self.nr).ok_or(WireError::BadPayload)?;
        for (i, arg) in shape.iter().enumerate() {
            let (v, input) = (self.values[i], self.inputs[i]);
            let ok = match arg {
                N => v == 0 && input.is_empty(),
                V => input.is_empty(),
                Dirfd => v as i64 == AT_FDCWD && input.is_empty(),
                Path => {
                    v == 0
                        && !input.is_empty()
                        && input.len() <= PATH_LEN_MAX
                        && !input.contains(&0)
                }
                InOpt(n) => {
                    (v == 0 && input.is_empty()) || (v == 1 && input.len() == usize::from(*n))
                }
                Out(_) => v == 0 && input.is_empty(),
                OutLen(j) => {
                    v == 0
                        && input.is_empty()
                        && self
                            .values
                            .get(usize::from(*j))
                            .is_some_and(|n| *n as usize <= OUT_MAX)
                }
            };
            check(ok)?;
        }
        Ok(())
    }

    /// Bytes [`PathCall::encode`] writes.
    pub fn encoded_len(&self) -> usize {
        let inputs: usize = self
            .inputs
            .iter()
            .filter(|b| !b.is_empty())
            .map(|b| 4 + b.len())
            .sum();
        4 + 6 * 8 + inputs
    }

    /// Encodes `nr u32`, the six values (`u64`), then `len u32, bytes` for
    /// every argument with input bytes, in order.
    pub fn encode(&self, out: &mut [u8]) -> Result<usize, WireError> {
        self.validate()?;
        if out.len() < self.encoded_len() {
            return Err(WireError::ShortBuffer);
        }
        let mut w = Writer::new(out);
        w.u32(self.nr)?;
        for v in self.values {
            w.u64(v)?;
        }
        for input in self.inputs.iter().filter(|b| !b.is_empty()) {
            w.u32(u32::try_from(input.len()).map_err(|_| WireError::BadPayload)?)?;
            w.bytes(input)?;
        }
        Ok(w.written())
    }

    /// Decodes and validates what [`PathCall::encode`] wrote.
    pub fn decode(bytes: &'a [u8]) -> Result<PathCall<'a>, WireError> {
        let mut r = Reader::new(bytes);
        let nr = r.u32()?;
        let shape = shape(nr).ok_or(WireError::BadPayload)?;
        let mut values = [0u64; 6];
        for v in values.iter_mut() {
            *v = r.u64()?;
        }
        let mut inputs: [&[u8]; 6] = [&[]; 6];
        for (i, arg) in shape.iter().enumerate() {
            let has_bytes = match arg {
                Path => true,
                InOpt(_) => values[i] == 1,
                _ => false,
            };
            if has_bytes {
                let len = usize::try_from(r.u32()?).map_err(|_| WireError::BadPayload)?;
                check(len <= PATH_LEN_MAX)?;
                inputs[i] = r.bytes(len)?;
            }
        }
        r.finish()?;
        let call = PathCall { nr, values, inputs };
        call.validate()?;
        Ok(call)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec;

    fn stat_call(path: &[u8]) -> PathCall<'_> {
        PathCall {
            nr: 262,
            values: [AT_FDCWD as u64, 0, 0, 0x100, 0, 0],
            inputs: [&[], path, &[], &[], &[], &[]],
        }
    }

    #[test]
    fn round_trip_and_sizes() {
        let c = stat_call(b"/tmp/x");
        let mut buf = vec![0u8; c.encoded_len()];
        assert_eq!(c.encode(&mut buf), Ok(buf.len()));
        assert_eq!(PathCall::decode(&buf), Ok(c));
        let stat_shape = shape(262).unwrap();
        assert_eq!(outs_len(&stat_shape, &c.values), 144);
        let rl = PathCall {
            nr: 89,
            values: [0, 0, 100_000, 0, 0, 0],
            inputs: [b"l", &[], &[], &[], &[], &[]],
        };
        assert!(rl.validate().is_err(), "readlink of more than OUT_MAX");
        let rl = PathCall {
            values: [0, 0, 64, 0, 0, 0],
            ..rl
        };
        assert!(rl.validate().is_ok());
        assert_eq!(outs_len(&shape(89).unwrap(), &rl.values), 64);
    }

    #[test]
    fn refused() {
        // A directory descriptor other than AT_FDCWD, an empty path, a NUL.
        let mut c = stat_call(b"x");
        c.values[0] = 3;
        assert!(c.validate().is_err());
        assert!(stat_call(b"").validate().is_err());
        assert!(stat_call(b"a\0b").validate().is_err());
        // An unknown call.
        let open = PathCall {
            nr: 2,
            ..stat_call(b"x")
        };
        assert!(open.validate().is_err());
        // utimensat: times are NULL or 32 bytes.
        let t = [0u8; 32];
        let mut u = PathCall {
            nr: 280,
            values: [AT_FDCWD as u64, 0, 1, 0, 0, 0],
            inputs: [&[], b"f", &t, &[], &[], &[]],
        };
        assert!(u.validate().is_ok());
        let mut buf = vec![0u8; u.encoded_len()];
        u.encode(&mut buf).unwrap();
        assert_eq!(PathCall::decode(&buf), Ok(u));
        u.inputs[2] = &t[..31];
        assert!(u.validate().is_err());
        u.values[2] = 0;
        u.inputs[2] = &[];
        assert!(u.validate().is_ok());
        // Truncated and extended encodings.
        let c = stat_call(b"/etc");
        let mut buf = vec![0u8; c.encoded_len() + 1];
        let n = c.encode(&mut buf).unwrap();
        assert!(PathCall::decode(&buf[..n - 1]).is_err());
        assert!(PathCall::decode(&buf[..n + 1]).is_err());
    }

    #[test]
    fn every_shape_is_consistent() {
        for (nr, shape) in CALLS {
            for arg in shape {
                if let OutLen(j) = arg {
                    assert_eq!(shape[usize::from(*j)], V, "call {nr}");
                }
            }
            assert!(
                shape.iter().any(|a| *a == Path || matches!(a, OutLen(_))),
                "call {nr}"
            );
        }
    }
}
