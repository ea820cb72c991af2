//! The network side of one connection: its transport (TCP, TLS or
//! WebSocket), the bytes read but not yet decoded, and the bytes encoded
//! but not yet written.
//!
//! One task both reads and writes a connection, so a message routed to it
//! goes from the session queue onto the wire without a hop to another
//! task, and everything that became ready in one pass leaves in one
//! write. Buffers are held only while they hold something: an idle
//! connection keeps no read or write buffer of its own (the TLS layer
//! keeps its record buffer), which is most of what a city's fleet of
//! mostly silent devices costs in memory.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};

/// Anything a connection can be served over.
pub(crate) trait Transport: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Transport for T {}

/// Above this many unwritten bytes the connection stops producing more
/// (reading, delivering) until the client has taken some: a slow reader
/// holds back its own deliveries, never the broker's memory.
pub(crate) const HIGH_WATER: usize = 64 * 1024;

/// The most one read takes in. It lives on the stack only for the read,
/// so it costs an idle connection nothing.
const READ_CHUNK: usize = 16 * 1024;

/// What a pass over the wire produced.
pub(crate) enum Progress {
    /// This many bytes were read (0: the peer closed).
    Read(usize),
    /// The write backlog fell below [`HIGH_WATER`]: produce again.
    Drained,
}

pub(crate) struct Wire {
    io: Box<dyn Transport>,
    /// Read and not yet decoded (a partial packet, or packets not yet
    /// handled).
    pub input: BytesMut,
    /// Encoded and not yet handed to the transport.
    pub output: BytesMut,
    /// Handed to the transport and not yet flushed (TLS records, a
    /// WebSocket message).
    unflushed: bool,
}

impl Wire {
    pub(crate) fn new(io: Box<dyn Transport>) -> Self {
        Wire {
            io,
            input: BytesMut::new(),
            output: BytesMut::new(),
            unflushed: false,
        }
    }

    /// True when the write backlog is at or above [`HIGH_WATER`].
    pub(crate) fn congested(&self) -> bool {
        self.output.len() >= HIGH_WATER
    }

    /// Drop buffers that hold nothing, so an idle connection keeps none.
    pub(crate) fn release_idle(&mut self) {
        if self.input.is_empty() && self.input.capacity() > 0 {
            self.input = BytesMut::new();
        }
        if self.output.is_empty() && !self.unflushed && self.output.capacity() > 0 {
            self.output = BytesMut::new();
        }
    }

    /// Write and flush everything queued (used where nothing else may
    /// happen meanwhile: answering CONNECT, the final DISCONNECT).
    pub(crate) async fn flush_all(&mut self) -> io::Result<()> {
        while !self.output.is_empty() {
            let n = self.io.write(&self.output).await?;
            if n == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
            self.output.advance(n);
        }
        self.io.flush().await?;
        self.unflushed = false;
        self.release_idle();
        Ok(())
    }

    /// Read once into `input` (for the CONNECT, before anything is
    /// written concurrently).
    pub(crate) async fn read_some(&mut self) -> io::Result<usize> {
        std::future::poll_fn(|cx| self.poll_read_chunk(cx)).await
    }

    /// Write what is queued and, when `read` allows, read: resolves with
    /// the first thing that needs the connection's attention.
    pub(crate) async fn progress(&mut self, read: bool) -> io::Result<Progress> {
        std::future::poll_fn(|cx| self.poll_progress(cx, read)).await
    }

    /// Shut the writing side down (TLS close_notify, WebSocket Close).
    pub(crate) async fn shutdown(&mut self) -> io::Result<()> {
        self.io.shutdown().await
    }

    fn poll_progress(&mut self, cx: &mut Context<'_>, read: bool) -> Poll<io::Result<Progress>> {
        let was_congested = self.congested();
        while !self.output.is_empty() {
            match Pin::new(&mut self.io).poll_write(cx, &self.output) {
                Poll::Ready(Ok(0)) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Poll::Ready(Ok(n)) => {
                    self.output.advance(n);
                    self.unflushed = true;
                }
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => break,
            }
        }
        if self.output.is_empty() && self.unflushed {
            match Pin::new(&mut self.io).poll_flush(cx) {
                Poll::Ready(Ok(())) => {
                    self.unflushed = false;
                    self.release_idle();
                }
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => {}
            }
        }
        if was_congested && !self.congested() {
            return Poll::Ready(Ok(Progress::Drained));
        }
        if read {
            return self.poll_read_chunk(cx).map_ok(Progress::Read);
        }
        Poll::Pending
    }

    fn poll_read_chunk(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        let mut chunk = [0u8; READ_CHUNK];
        let mut buf = ReadBuf::new(&mut chunk);
        match Pin::new(&mut self.io).poll_read(cx, &mut buf) {
            Poll::Ready(Ok(())) => {
                let filled = buf.filled();
                self.input.extend_from_slice(filled);
                Poll::Ready(Ok(filled.len()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => Poll::Pending,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    #[tokio::test]
    async fn writes_what_is_queued_and_reads_what_arrives() {
        let (ours, mut theirs) = tokio::io::duplex(1024);
        let mut wire = Wire::new(Box::new(ours));
        wire.output.extend_from_slice(b"hello");
        theirs.write_all(b"abc").await.unwrap();
        let Progress::Read(n) = wire.progress(true).await.unwrap() else {
            panic!("expected a read");
        };
        assert_eq!(n, 3);
        assert_eq!(&wire.input[..], b"abc");
        let mut got = [0u8; 5];
        theirs.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"hello");
    }

    #[tokio::test]
    async fn a_congested_backlog_reports_when_it_drains() {
        // The pipe holds less than the backlog: the first pass writes
        // part of it and waits; once the peer reads, the backlog falls
        // under the mark and the wire says so.
        let (ours, mut theirs) = tokio::io::duplex(16 * 1024);
        let mut wire = Wire::new(Box::new(ours));
        wire.output.extend_from_slice(&vec![7u8; HIGH_WATER + 1000]);
        assert!(wire.congested());
        let reader = tokio::spawn(async move {
            let mut sink = vec![0u8; HIGH_WATER + 1000];
            theirs.read_exact(&mut sink).await.unwrap();
            sink
        });
        match wire.progress(false).await.unwrap() {
            Progress::Drained => {}
            Progress::Read(_) => panic!("reading was not allowed"),
        }
        assert!(!wire.congested());
        wire.flush_all().await.unwrap();
        let sink = reader.await.unwrap();
        assert!(sink.iter().all(|&b| b == 7));
    }

    #[tokio::test]
    async fn idle_buffers_are_released() {
        let (ours, mut theirs) = tokio::io::duplex(1024);
        let mut wire = Wire::new(Box::new(ours));
        wire.output.extend_from_slice(b"ping");
        wire.flush_all().await.unwrap();
        assert_eq!(wire.output.capacity(), 0);
        let mut got = [0u8; 4];
        theirs.read_exact(&mut got).await.unwrap();
        theirs.write_all(b"x").await.unwrap();
        wire.read_some().await.unwrap();
        let _ = wire.input.split();
        wire.release_idle();
        assert_eq!(wire.input.capacity(), 0);
    }

    #[tokio::test]
    async fn end_of_stream_reads_zero() {
        let (ours, theirs) = tokio::io::duplex(64);
        drop(theirs);
        let mut wire = Wire::new(Box::new(ours));
        match wire.progress(true).await.unwrap() {
            Progress::Read(0) => {}
            _ => panic!("expected end of stream"),
        }
    }
}
