//! A small per-thread pool of read and write buffers, kept in pairs.
//!
//! A connection holds buffers only while bytes are moving: when its driver has nothing more
//! to do it parks them here, and takes them back at its next read or write. A busy
//! connection therefore reuses the same buffers from message to message (no allocation per
//! message), and an idle one holds none, however many connections there are: the number of
//! buffers alive at once is the number of connections in the middle of a step, plus the
//! few parked here.
//!
//! The pool is bounded ([`MAX_PARKED`] pairs, each buffer at most
//! [`MAX_PARKED_CAPACITY`] bytes); a buffer that does not fit is freed.

use bytes::BytesMut;
use std::cell::RefCell;

/// Buffer pairs a thread keeps parked at most.
pub(crate) const MAX_PARKED: usize = 16;

/// A larger buffer (grown for one large message) is freed rather than parked.
pub(crate) const MAX_PARKED_CAPACITY: usize = 256 * 1024;

/// A connection's read and write buffers, taken and parked together: one allocation of
/// the connection's state holds them only while it moves bytes.
#[derive(Debug, Default)]
pub(crate) struct Buffers {
    /// Input not yet handed to the core (a partial frame), and spare room to read into.
    pub(crate) read: BytesMut,
    /// Output for the transport: `write[write_pos..]` is not written yet.
    pub(crate) write: Vec<u8>,
    pub(crate) write_pos: usize,
}

impl Buffers {
    /// Bytes in the write buffer not yet written.
    pub(crate) fn unwritten(&self) -> usize {
        self.write.len() - self.write_pos
    }
}

thread_local! {
    // Boxes, not values: a pair moves between a connection and the pool without being
    // allocated or freed.
    #[allow(clippy::vec_box, reason = "the boxes themselves are what is pooled")]
    static POOL: RefCell<Vec<Box<Buffers>>> = const { RefCell::new(Vec::new()) };
}

/// A parked pair of buffers (the write buffer empty, the read buffer empty with all its
/// capacity free, or none), or a new pair without capacity.
pub(crate) fn take() -> Box<Buffers> {
    POOL.try_with(|p| p.borrow_mut().pop())
        .ok()
        .flatten()
        .unwrap_or_default()
}

/// Parks `bufs`; returns them if they cannot be parked: they hold bytes (a partial frame,
/// output not written yet), or messages handed to the application still point into the
/// read buffer and less than `size` bytes of it are free.
pub(crate) fn park(mut bufs: Box<Buffers>, size: usize) -> Option<Box<Buffers>> {
    if !bufs.read.is_empty() || bufs.unwritten() > 0 {
        return Some(bufs);
    }
    if bufs.read.capacity() > 0 && !bufs.read.try_reclaim(size) {
        return Some(bufs);
    }
    if bufs.read.capacity() > MAX_PARKED_CAPACITY {
        bufs.read = BytesMut::new();
    }
    if bufs.write.capacity() > MAX_PARKED_CAPACITY {
        bufs.write = Vec::new();
    }
    bufs.write.clear();
    bufs.write_pos = 0;
    // If the pool is full or gone (thread exit), the buffers are freed.
    let _ = POOL.try_with(|p| {
        let mut p = p.borrow_mut();
        if p.len() < MAX_PARKED {
            p.push(bufs);
        }
    });
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parked_buffers_are_reused() {
        let mut bufs = take();
        bufs.read.reserve(1024);
        let read = bufs.read.as_ptr();
        bufs.read.extend_from_slice(b"hello");
        let message = bufs.read.split().freeze();
        bufs.write.extend_from_slice(b"reply");
        bufs.write_pos = 5;
        // A message still points into the read buffer, and less than 1024 bytes are
        // free: not parked.
        let bufs = park(bufs, 1024).expect("kept by the connection");
        drop(message);
        assert!(park(bufs, 1024).is_none());
        let again = take();
        assert_eq!(again.read.as_ptr(), read);
        assert!(again.read.capacity() >= 1024);
        assert!(again.write.is_empty() && again.write.capacity() >= 5);
        assert_eq!(again.write_pos, 0);
    }

    #[test]
    fn the_pool_is_bounded() {
        let all: Vec<_> = (0..MAX_PARKED + 4)
            .map(|_| {
                let mut b = take();
                b.read.reserve(64);
                b
            })
            .collect();
        for b in all {
            assert!(park(b, 64).is_none());
        }
        POOL.with(|p| assert_eq!(p.borrow().len(), MAX_PARKED));
        // An oversized buffer is freed; the pair is parked without it.
        POOL.with(|p| p.borrow_mut().clear());
        let mut big = take();
        big.write.reserve(MAX_PARKED_CAPACITY + 1);
        assert!(park(big, 64).is_none());
        assert_eq!(take().write.capacity(), 0);
    }

    #[test]
    fn buffers_with_bytes_are_not_parked() {
        let mut bufs = take();
        bufs.read.extend_from_slice(b"partial frame");
        assert!(park(bufs, 64).is_some());
        let mut bufs = take();
        bufs.write.extend_from_slice(b"not written yet");
        assert!(park(bufs, 64).is_some());
    }
}
