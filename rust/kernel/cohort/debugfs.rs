// SPDX-License-Identifier: GPL-2.0

//! debugfs directories of text files, for counters and test controls.

use crate::{alloc::KVec, bindings, prelude::*, str::CStr, sync::Arc, uaccess::UserSlice};
use core::{ffi::c_void, fmt, marker::PhantomData, ptr};

/// Most bytes a write to a [`DebugFile`] may carry.
pub const MAX_WRITE: usize = 256;

/// A text output buffer for [`DebugFile::show`].
pub struct Output {
    buf: KVec<u8>,
    failed: bool,
}

impl fmt::Write for Output {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        if self
            .buf
            .extend_from_slice(s.as_bytes(), GFP_KERNEL)
            .is_err()
        {
            self.failed = true;
            return Err(fmt::Error);
        }
        Ok(())
    }
}

/// A debugfs file whose reads show text and whose writes run a command.
pub trait DebugFile {
    /// The state the file reads and acts on.
    type Data: Send + Sync;

    /// Writes the file's contents; called for each read from offset 0.
    fn show(data: &Self::Data, out: &mut Output) -> fmt::Result;

    /// Acts on a write of at most [`MAX_WRITE`] bytes; the error is what
    /// write(2) returns.
    fn store(_data: &Self::Data, _input: &[u8]) -> Result {
        Err(EPERM)
    }
}

struct FileOps<T: DebugFile>(PhantomData<T>);

impl<T: DebugFile> FileOps<T> {
    const FOPS: bindings::file_operations = bindings::file_operations {
        read: Some(Self::read),
        write: Some(Self::write),
        // SAFETY: All-zero is a valid `file_operations` (NULL callbacks).
        ..unsafe { core::mem::zeroed() }
    };

    /// # Safety
    ///
    /// `file` is an open file of ours, whose inode's private data is the
    /// `T::Data` the owning [`Dir`] keeps alive.
    unsafe fn data<'a>(file: *mut bindings::file) -> &'a T::Data {
        // SAFETY: Guaranteed by the caller; debugfs keeps the file's inode
        // and the owning `Dir` waits for file operations before freeing.
        unsafe { &*(*(*file).f_inode).i_private.cast::<T::Data>() }
    }

    unsafe extern "C" fn read(
        file: *mut bindings::file,
        ubuf: *mut crate::ffi::c_char,
        count: usize,
        ppos: *mut bindings::loff_t,
    ) -> isize {
        // SAFETY: Called by debugfs for one of our files.
        let data = unsafe { Self::data(file) };
        let mut out = Output {
            buf: KVec::new(),
            failed: false,
        };
        if T::show(data, &mut out).is_err() {
            return if out.failed { ENOMEM } else { EIO }.to_errno() as isize;
        }
        // SAFETY: `ubuf`/`count`/`ppos` come from the VFS; the source is
        // our buffer of the length passed.
        unsafe {
            bindings::simple_read_from_buffer(
                ubuf.cast(),
                count,
                ppos,
                out.buf.as_ptr().cast(),
                out.buf.len(),
            )
        }
    }

    unsafe extern "C" fn write(
        file: *mut bindings::file,
        ubuf: *const crate::ffi::c_char,
        count: usize,
        _ppos: *mut bindings::loff_t,
    ) -> isize {
        if count > MAX_WRITE {
            return EINVAL.to_errno() as isize;
        }
        // SAFETY: Called by debugfs for one of our files.
        let data = unsafe { Self::data(file) };
        let mut input = KVec::new();
        if let Err(e) = UserSlice::new(ubuf as usize, count).read_all(&mut input, GFP_KERNEL) {
            return e.to_errno() as isize;
        }
        match T::store(data, &input) {
            Ok(()) => count as isize,
            Err(e) => e.to_errno() as isize,
        }
    }
}

/// A debugfs directory; dropping it removes it with its files, after
/// waiting for file operations in flight.
pub struct Dir<D: Send + Sync> {
    dentry: *mut bindings::dentry,
    data: Arc<D>,
}

// SAFETY: The dentry is only passed to debugfs, which locks internally.
unsafe impl<D: Send + Sync> Send for Dir<D> {}
// SAFETY: As above.
unsafe impl<D: Send + Sync> Sync for Dir<D> {}

impl<D: Send + Sync> Dir<D> {
    /// Creates `/sys/kernel/debug/<name>` whose files act on `data`.
    pub fn new(name: &CStr, data: Arc<D>) -> Result<Self> {
        // SAFETY: `name` is a valid string; NULL parent means the root.
        let dentry = unsafe { bindings::debugfs_create_dir(name.as_char_ptr(), ptr::null_mut()) };
        crate::error::from_err_ptr(dentry)?;
        Ok(Self { dentry, data })
    }

    /// Adds file `name`, mode `mode`, served by `T`.
    pub fn file<T: DebugFile<Data = D>>(&self, name: &CStr, mode: u16) -> Result {
        let fops: &'static bindings::file_operations = &FileOps::<T>::FOPS;
        // SAFETY: The data outlives the file: `Drop` removes the files (which
        // waits for their operations) before `self.data` is released.
        let dentry = unsafe {
            bindings::debugfs_create_file(
                name.as_char_ptr(),
                mode,
                self.dentry,
                &*self.data as *const D as *mut c_void,
                fops,
            )
        };
        crate::error::from_err_ptr(dentry)?;
        Ok(())
    }
}

impl<D: Send + Sync> Drop for Dir<D> {
    fn drop(&mut self) {
        // SAFETY: `dentry` is our directory; removal waits for the files'
        // operations in flight to finish.
        unsafe { bindings::debugfs_remove(self.dentry) };
    }
}
