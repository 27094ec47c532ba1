//! Guest stdio over in-process channels, for two instances the host links line by line (the
//! checker and the runner of a checked test).
//!
//! Writes are synchronous pushes (nothing is buffered in a worker), so when an instance ends
//! and its store is dropped the reader sees every byte and then the end of the stream.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamError};

/// A guest's stdout into a channel, unbounded (the host bounds what it keeps).
#[derive(Clone)]
pub(super) struct ChanWriter {
    tx: UnboundedSender<Bytes>,
}

/// A writer with its reading end.
pub(super) fn output() -> (ChanWriter, UnboundedReceiver<Bytes>) {
    let (tx, rx) = unbounded_channel();
    (ChanWriter { tx }, rx)
}

/// Bytes a guest may write in one call.
const WRITE_PERMIT: usize = 1 << 20;

impl ChanWriter {
    fn push(&self, bytes: &[u8]) {
        // A dropped reader means the run is over: the bytes have nowhere to go.
        let _ = self.tx.send(Bytes::copy_from_slice(bytes));
    }
}

#[async_trait::async_trait]
impl OutputStream for ChanWriter {
    fn write(&mut self, bytes: Bytes) -> Result<(), StreamError> {
        self.push(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> Result<(), StreamError> {
        Ok(())
    }

    fn check_write(&mut self) -> Result<usize, StreamError> {
        Ok(WRITE_PERMIT)
    }
}

#[async_trait::async_trait]
impl Pollable for ChanWriter {
    async fn ready(&mut self) {}
}

impl AsyncWrite for ChanWriter {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.push(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

impl IsTerminal for ChanWriter {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for ChanWriter {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

/// A guest's stdin fed from a channel: the stream ends when every sender is dropped.
pub(super) struct ChanReader {
    rx: UnboundedReceiver<Bytes>,
    pending: Bytes,
}

/// A reader with its feeding end.
pub(super) fn input() -> (UnboundedSender<Bytes>, ChanReader) {
    let (tx, rx) = unbounded_channel();
    (
        tx,
        ChanReader {
            rx,
            pending: Bytes::new(),
        },
    )
}

impl AsyncRead for ChanReader {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        while self.pending.is_empty() {
            match self.rx.poll_recv(cx) {
                Poll::Ready(Some(b)) => self.pending = b,
                Poll::Ready(None) => return Poll::Ready(Ok(())),
                Poll::Pending => return Poll::Pending,
            }
        }
        let n = self.pending.len().min(buf.remaining());
        buf.put_slice(&self.pending.split_to(n));
        Poll::Ready(Ok(()))
    }
}
