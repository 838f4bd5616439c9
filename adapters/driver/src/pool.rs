//! A small per-thread pool of read and write buffers.
//!
//! A connection holds buffers only while bytes are moving: when its driver has nothing more
//! to do it parks them here, and takes them back at its next read or write. A busy
//! connection therefore reuses the same buffers from message to message (no allocation per
//! message), and an idle one holds none, however many connections there are: the number of
//! buffers alive at once is the number of connections in the middle of a step, plus the
//! few parked here.
//!
//! The pool is bounded ([`MAX_PARKED`] buffers of each kind, each at most
//! [`MAX_PARKED_CAPACITY`] bytes); a buffer that does not fit is freed.

use bytes::BytesMut;
use std::cell::RefCell;

/// Buffers of each kind a thread keeps parked at most.
pub(crate) const MAX_PARKED: usize = 16;

/// A larger buffer (grown for one large message) is freed rather than parked.
pub(crate) const MAX_PARKED_CAPACITY: usize = 256 * 1024;

#[derive(Default)]
struct Pool {
    read: Vec<BytesMut>,
    write: Vec<Vec<u8>>,
}

thread_local! {
    static POOL: RefCell<Pool> = RefCell::new(Pool::default());
}

/// A read buffer with at least `size` bytes of spare capacity: a parked one if there is
/// one, else a new one.
pub(crate) fn take_read(size: usize) -> BytesMut {
    let parked = POOL.try_with(|p| p.borrow_mut().read.pop()).ok().flatten();
    match parked {
        Some(mut buf) => {
            if buf.try_reclaim(size) {
                buf
            } else {
                BytesMut::with_capacity(size)
            }
        }
        None => BytesMut::with_capacity(size),
    }
}

/// Parks an empty read buffer whose whole capacity (at least `size` bytes) is free for
/// reuse; returns it if it cannot be parked: it still holds bytes, or messages handed to
/// the application still point into it and too little of it is free.
pub(crate) fn park_read(mut buf: BytesMut, size: usize) -> Option<BytesMut> {
    if !buf.is_empty() || !buf.try_reclaim(size) {
        return Some(buf);
    }
    if buf.capacity() <= MAX_PARKED_CAPACITY {
        // If the pool is full or gone (thread exit), the buffer is freed.
        let _ = POOL.try_with(|p| {
            let mut p = p.borrow_mut();
            if p.read.len() < MAX_PARKED {
                p.read.push(buf);
            }
        });
    }
    None
}

/// A write buffer: a parked one if there is one, else an empty one (allocated as the
/// first bytes go in).
pub(crate) fn take_write() -> Vec<u8> {
    POOL.try_with(|p| p.borrow_mut().write.pop())
        .ok()
        .flatten()
        .unwrap_or_default()
}

/// Parks a write buffer (its contents are discarded).
pub(crate) fn park_write(mut buf: Vec<u8>) {
    if buf.capacity() == 0 || buf.capacity() > MAX_PARKED_CAPACITY {
        return;
    }
    buf.clear();
    let _ = POOL.try_with(|p| {
        let mut p = p.borrow_mut();
        if p.write.len() < MAX_PARKED {
            p.write.push(buf);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_parked_read_buffer_is_reused() {
        let mut buf = take_read(1024);
        let ptr = buf.as_ptr();
        buf.extend_from_slice(b"hello");
        let message = buf.split().freeze();
        // A message still points into it, and less than 1024 bytes are free: not parked.
        let buf = park_read(buf, 1024).expect("kept by the connection");
        drop(message);
        assert!(park_read(buf, 1024).is_none());
        let again = take_read(1024);
        assert_eq!(again.as_ptr(), ptr);
        assert!(again.capacity() >= 1024);
    }

    #[test]
    fn the_pool_is_bounded() {
        let bufs: Vec<_> = (0..MAX_PARKED + 4).map(|_| take_read(64)).collect();
        for b in bufs {
            assert!(park_read(b, 64).is_none());
        }
        POOL.with(|p| assert_eq!(p.borrow().read.len(), MAX_PARKED));
        park_write(Vec::with_capacity(MAX_PARKED_CAPACITY + 1));
        for _ in 0..MAX_PARKED + 4 {
            park_write(Vec::with_capacity(16));
        }
        POOL.with(|p| assert_eq!(p.borrow().write.len(), MAX_PARKED));
        assert_eq!(take_write().capacity(), 16);
    }

    #[test]
    fn a_buffer_with_bytes_is_not_parked() {
        let mut buf = take_read(64);
        buf.extend_from_slice(b"partial frame");
        assert!(park_read(buf, 64).is_some());
    }
}
