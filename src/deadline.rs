//! A deadline on receiving each request: from the first byte of a request (or the connection's
//! opening) until the server starts answering, the client has `timeout` to send it all. A client
//! that stalls or drips its headers is disconnected; the server's own processing time does not
//! count (nothing is read from the client then).
//!
//! The same wrapper keeps two other promises about connections: at most `max_connections` are
//! served at once (the next ones wait in the kernel's backlog), and nexkey speaks HTTP/1.1 only.
//! HTTP/2 cleartext with prior knowledge (`PRI * HTTP/2.0` first) would escape the deadline (its
//! SETTINGS and PING frames keep an idle connection busy) and nothing Nexway or support uses needs
//! it, so such a connection is closed at its first bytes.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use poem::http::uri::Scheme;
use poem::listener::Acceptor;
use poem::web::{LocalAddr, RemoteAddr};
use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Sleep;

/// What an HTTP/2 connection with prior knowledge starts with; no HTTP/1 method begins so.
const HTTP2_PREFACE_START: &[u8] = b"PRI ";

/// Wraps an acceptor so that each of its connections gets the request deadline.
pub struct RequestDeadline<A> {
    inner: A,
    timeout: Duration,
    slots: Arc<Semaphore>,
}

impl<A: Acceptor> RequestDeadline<A> {
    pub fn new(inner: A, timeout: Duration, max_connections: usize) -> Self {
        RequestDeadline {
            inner,
            timeout,
            slots: Arc::new(Semaphore::new(max_connections.max(1))),
        }
    }
}

impl<A: Acceptor> Acceptor for RequestDeadline<A> {
    type Io = DeadlineIo<A::Io>;

    fn local_addr(&self) -> Vec<LocalAddr> {
        self.inner.local_addr()
    }

    async fn accept(&mut self) -> io::Result<(Self::Io, LocalAddr, RemoteAddr, Scheme)> {
        // A free slot first: past the limit, connections wait unaccepted.
        let slot = self
            .slots
            .clone()
            .acquire_owned()
            .await
            .expect("the semaphore is never closed");
        let (io, local, remote, scheme) = self.inner.accept().await?;
        let io = DeadlineIo {
            inner: io,
            timeout: self.timeout,
            deadline: Some(Box::pin(tokio::time::sleep(self.timeout))),
            first_bytes: Vec::with_capacity(HTTP2_PREFACE_START.len()),
            _slot: slot,
        };
        Ok((io, local, remote, scheme))
    }
}

pub struct DeadlineIo<T> {
    inner: T,
    timeout: Duration,
    /// Running while a request is being received.
    deadline: Option<Pin<Box<Sleep>>>,
    /// The connection's first bytes, until there are enough to tell HTTP/2 from HTTP/1.
    first_bytes: Vec<u8>,
    /// Held for the connection's life: released when it is dropped.
    _slot: OwnedSemaphorePermit,
}

impl<T: AsyncRead + Unpin> AsyncRead for DeadlineIo<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if this.first_bytes.len() < HTTP2_PREFACE_START.len() {
                    let wanted = HTTP2_PREFACE_START.len() - this.first_bytes.len();
                    let new = &buf.filled()[before..];
                    this.first_bytes
                        .extend_from_slice(&new[..new.len().min(wanted)]);
                    if this.first_bytes == HTTP2_PREFACE_START {
                        buf.set_filled(before);
                        return Poll::Ready(Err(io::Error::new(
                            io::ErrorKind::InvalidData,
                            "HTTP/2 is not served: HTTP/1.1 only",
                        )));
                    }
                }
                if buf.filled().len() > before && this.deadline.is_none() {
                    this.deadline = Some(Box::pin(tokio::time::sleep(this.timeout)));
                }
                Poll::Ready(Ok(()))
            }
            Poll::Pending => {
                let expired = this
                    .deadline
                    .as_mut()
                    .is_some_and(|deadline| deadline.as_mut().poll(cx).is_ready());
                if expired {
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "the request was not received in time",
                    )));
                }
                Poll::Pending
            }
            other => other,
        }
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for DeadlineIo<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let written = Pin::new(&mut this.inner).poll_write(cx, buf);
        if matches!(written, Poll::Ready(Ok(n)) if n > 0) {
            // The server is answering: the request was received.
            this.deadline = None;
        }
        written
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}
