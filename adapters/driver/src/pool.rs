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

use crate::runtime::Transport;
use bytes::{Buf, Bytes, BytesMut};
use std::cell::RefCell;
use std::io::{self, IoSlice};
use std::task::{Context, Poll};

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
    /// Output for the transport: `write[write_pos..]` is not written yet...
    pub(crate) write: Vec<u8>,
    pub(crate) write_pos: usize,
    /// ... with shared bytes to write in between (see
    /// [`tether_core::Connection::poll_transmit_vectored`]): each `(offset, bytes)` goes
    /// after `write[..offset]`. `chunks[chunk_pos..]` are not written yet (the first of
    /// them perhaps partly: it is advanced as it goes).
    pub(crate) chunks: Vec<(usize, Bytes)>,
    pub(crate) chunk_pos: usize,
    /// Bytes of `chunks[chunk_pos..]` not written yet.
    pub(crate) chunk_bytes: usize,
}

/// Slices handed to one vectored write at most.
const MAX_SLICES: usize = 64;

impl Buffers {
    /// Bytes of output not yet written.
    pub(crate) fn unwritten(&self) -> usize {
        self.write.len() - self.write_pos + self.chunk_bytes
    }

    /// Forgets the output (all of it written, or none of it to be).
    #[inline]
    pub(crate) fn clear_output(&mut self) {
        self.write.clear();
        self.write_pos = 0;
        if !self.chunks.is_empty() {
            self.clear_chunks();
        }
    }

    /// Lets go of the chunks (out of line: most output has none).
    #[inline(never)]
    fn clear_chunks(&mut self) {
        self.chunks.clear();
        self.chunk_pos = 0;
        self.chunk_bytes = 0;
    }

    /// Counts the chunks just handed out by the core.
    pub(crate) fn count_chunks(&mut self) {
        self.chunk_bytes = self.chunks[self.chunk_pos..]
            .iter()
            .map(|(_, b)| b.len())
            .sum();
    }

    /// Writes some of the output to `transport`: with one plain write while no shared
    /// chunk is left, with one vectored write otherwise. Returns how many bytes were
    /// written (the caller then calls [`Buffers::advance`]).
    #[inline]
    pub(crate) fn poll_write(
        &self,
        transport: &mut dyn Transport,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<usize>> {
        if self.chunks.is_empty() {
            return transport.poll_write(cx, &self.write[self.write_pos..]);
        }
        self.poll_write_vectored(transport, cx)
    }

    /// [`Buffers::poll_write`] with chunks (out of line: most output has none).
    #[inline(never)]
    fn poll_write_vectored(
        &self,
        transport: &mut dyn Transport,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<usize>> {
        let empty = IoSlice::new(&[]);
        let mut slices = [empty; MAX_SLICES];
        let mut n = 0;
        let mut pos = self.write_pos;
        for (offset, bytes) in &self.chunks[self.chunk_pos..] {
            if pos < *offset {
                slices[n] = IoSlice::new(&self.write[pos..*offset]);
                pos = *offset;
                n += 1;
            }
            if n == MAX_SLICES {
                break;
            }
            if !bytes.is_empty() {
                slices[n] = IoSlice::new(bytes);
                n += 1;
            }
            if n == MAX_SLICES {
                break;
            }
        }
        if n < MAX_SLICES && pos < self.write.len() {
            slices[n] = IoSlice::new(&self.write[pos..]);
            n += 1;
        }
        transport.poll_write_vectored(cx, &slices[..n])
    }

    /// Marks `n` more bytes of the output written.
    #[inline]
    pub(crate) fn advance(&mut self, n: usize) {
        if self.chunks.is_empty() {
            self.write_pos += n;
        } else {
            self.advance_chunks(n);
        }
    }

    /// [`Buffers::advance`] with chunks (out of line: most output has none).
    #[inline(never)]
    fn advance_chunks(&mut self, mut n: usize) {
        // (Also steps over an empty chunk once its place is reached.)
        while n > 0
            || self
                .chunks
                .get(self.chunk_pos)
                .is_some_and(|(offset, b)| b.is_empty() && self.write_pos >= *offset)
        {
            match self.chunks.get_mut(self.chunk_pos) {
                Some((offset, bytes)) if self.write_pos >= *offset => {
                    let take = n.min(bytes.len());
                    bytes.advance(take);
                    self.chunk_bytes -= take;
                    n -= take;
                    if bytes.is_empty() {
                        self.chunk_pos += 1;
                    }
                }
                Some((offset, _)) => {
                    let take = n.min(*offset - self.write_pos);
                    self.write_pos += take;
                    n -= take;
                }
                None => {
                    self.write_pos += n;
                    n = 0;
                }
            }
        }
        if self.chunk_pos == self.chunks.len() && self.chunk_pos > 0 {
            // (Lets go of the shared bytes at once.)
            self.chunks.clear();
            self.chunk_pos = 0;
        }
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
    bufs.clear_output();
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

    /// A transport that takes at most `limit` bytes per write, across the slices of a
    /// vectored write as `writev` does.
    struct Sink {
        written: Vec<u8>,
        limit: usize,
        vectored: usize,
    }

    impl Transport for Sink {
        fn poll_read(&mut self, _: &mut Context<'_>, _: &mut BytesMut) -> Poll<io::Result<usize>> {
            Poll::Pending
        }
        fn poll_write(&mut self, _: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
            let n = buf.len().min(self.limit);
            self.written.extend_from_slice(&buf[..n]);
            Poll::Ready(Ok(n))
        }
        fn poll_write_vectored(
            &mut self,
            _: &mut Context<'_>,
            bufs: &[IoSlice<'_>],
        ) -> Poll<io::Result<usize>> {
            self.vectored += 1;
            let mut n = 0;
            for b in bufs {
                let take = b.len().min(self.limit - n);
                self.written.extend_from_slice(&b[..take]);
                n += take;
            }
            Poll::Ready(Ok(n))
        }
        fn poll_flush(&mut self, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
        fn poll_shutdown(&mut self, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    /// Output of `chunks` chunks spliced into an encoded buffer, some at the same offset,
    /// one empty; and what the transport must receive.
    fn output(chunks: usize) -> (Box<Buffers>, Vec<u8>) {
        let mut bufs = take();
        let mut expected = Vec::new();
        for i in 0..chunks {
            let encoded = vec![b'a' + (i % 26) as u8; i % 3];
            bufs.write.extend_from_slice(&encoded);
            expected.extend_from_slice(&encoded);
            let shared = Bytes::from(vec![b'A' + (i % 26) as u8; (i * 7) % 11]);
            expected.extend_from_slice(&shared);
            bufs.chunks.push((bufs.write.len(), shared));
        }
        bufs.write.extend_from_slice(b"tail");
        expected.extend_from_slice(b"tail");
        bufs.count_chunks();
        (bufs, expected)
    }

    #[test]
    fn vectored_output_goes_out_in_order_whatever_each_write_takes() {
        let waker = std::task::Waker::noop();
        let mut cx = Context::from_waker(waker);
        for chunks in [0, 1, 5, 100] {
            for limit in [1, 2, 3, 7, 64, 1 << 20] {
                let (mut bufs, expected) = output(chunks);
                assert_eq!(bufs.unwritten(), expected.len());
                let mut sink = Sink {
                    written: Vec::new(),
                    limit,
                    vectored: 0,
                };
                let mut rounds = 0;
                while bufs.unwritten() > 0 {
                    let Poll::Ready(Ok(n)) = bufs.poll_write(&mut sink, &mut cx) else {
                        unreachable!()
                    };
                    assert!(n > 0);
                    bufs.advance(n);
                    rounds += 1;
                    assert!(rounds <= expected.len(), "no progress");
                }
                assert_eq!(sink.written, expected, "{chunks} chunks, {limit} per write");
                assert!(bufs.chunks.is_empty(), "the shared bytes are let go");
                if chunks == 100 && limit == 1 << 20 {
                    // More slices than one write takes: a few writes, not one per chunk.
                    assert!((2..=5).contains(&sink.vectored), "{}", sink.vectored);
                }
                if chunks == 0 {
                    assert_eq!(sink.vectored, 0, "a plain write without chunks");
                }
            }
        }
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
