//! `StreamWriter`: asyncio's writer with its write buffer and flow control.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::Notify;

use super::error::copy_error;
use super::link::Link;
use crate::lock::lock;

/// asyncio's write-buffer high-water mark: above it, `drain()` waits.
pub(crate) const HIGH_WATER: usize = 64 * 1024;
/// asyncio's low-water mark (`high // 4`): where a waiting `drain()` resumes.
pub(crate) const LOW_WATER: usize = HIGH_WATER / 4;

/// asyncio's `StreamWriter`: [`write`](Self::write) never waits: what the
/// transport takes at once is sent at once, the rest is buffered and sent
/// by a background Tokio task (as asyncio's transport sends it from the
/// event loop), and [`drain`](Self::drain) is the flow control: it waits
/// while more than 64 KiB are buffered.
///
/// Dropping the writer closes it (after sending what is buffered), as
/// asyncio's transport is closed when its writer is collected.
///
/// ```
/// asyncio::run(async {
///     let (client, server) = tokio::io::duplex(1024);
///     let writer = asyncio::StreamWriter::new(client);
///     let mut reader = asyncio::StreamReader::new(server);
///     writer.write(b"hello ");
///     writer.writelines([&b"big "[..], b"world\n"]);
///     writer.drain().await.unwrap();
///     assert_eq!(reader.readline().await.unwrap(), b"hello big world\n");
///     writer.close();
///     writer.wait_closed().await.unwrap();
///     assert_eq!(reader.read(10).await.unwrap(), b"");
/// });
/// ```
pub struct StreamWriter {
    shared: Arc<Shared>,
    peer: Option<SocketAddr>,
    local: Option<SocketAddr>,
}

/// What the writer, its background sender and a server share.
pub(crate) struct Shared {
    state: Mutex<State>,
    /// Wakes the sender: bytes, `write_eof`, `close`, abort.
    wake: Notify,
    /// Wakes `drain` and `wait_closed`.
    progress: Notify,
    link: Option<Arc<Link>>,
}

#[derive(Default)]
struct State {
    /// The transport; out of here while the sender or an immediate write
    /// uses it (never used under the lock).
    io: Option<Box<dyn AsyncWrite + Send + Unpin>>,
    /// An immediate write left bytes in the transport's own buffer.
    unflushed: bool,
    buf: Vec<u8>,
    /// Bytes the sender took and has not written yet.
    in_flight: usize,
    /// Above the high-water mark, until back at the low-water mark.
    paused: bool,
    eof: bool,
    closing: bool,
    abort: bool,
    /// The sender ended: the transport is closed.
    closed: bool,
    error: Option<io::Error>,
}

impl State {
    fn pending(&self) -> usize {
        self.buf.len() + self.in_flight
    }
}

impl fmt::Debug for StreamWriter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let st = lock(&self.shared.state);
        let mut d = f.debug_struct("StreamWriter");
        if let Some(peer) = self.peer {
            d.field("peer", &peer);
        }
        d.field("buffered", &st.pending())
            .field("closing", &(st.closing || st.closed))
            .finish_non_exhaustive()
    }
}

impl StreamWriter {
    /// A writer over `writer`; a background Tokio task sends the buffered
    /// bytes.
    ///
    /// # Panics
    ///
    /// Outside a Tokio runtime (call it inside [`run`](crate::run) or a
    /// `#[tokio::main]`).
    ///
    /// ```
    /// asyncio::run(async {
    ///     let (a, b) = tokio::io::duplex(64);
    ///     let w = asyncio::StreamWriter::new(a);
    ///     w.write(b"x");
    ///     w.close();
    ///     w.wait_closed().await.unwrap();
    ///     assert_eq!(asyncio::StreamReader::new(b).read_to_end().await.unwrap(), b"x");
    /// });
    /// ```
    pub fn new<W>(writer: W) -> Self
    where
        W: AsyncWrite + Send + Unpin + 'static,
    {
        Self::with_link(writer, None, None, None)
    }

    pub(crate) fn with_link<W>(
        writer: W,
        link: Option<Arc<Link>>,
        peer: Option<SocketAddr>,
        local: Option<SocketAddr>,
    ) -> Self
    where
        W: AsyncWrite + Send + Unpin + 'static,
    {
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                io: Some(Box::new(writer)),
                ..State::default()
            }),
            wake: Notify::new(),
            progress: Notify::new(),
            link,
        });
        tokio::spawn(sender(shared.clone()));
        Self {
            shared,
            peer,
            local,
        }
    }

    pub(crate) fn shared(&self) -> Arc<Shared> {
        self.shared.clone()
    }

    /// Sends what the transport takes at once, buffers the rest (sent in
    /// the background) and returns without waiting (asyncio's `write`). Bytes written after [`close`](Self::close) or
    /// after the connection failed are dropped, as asyncio drops them;
    /// [`drain`](Self::drain) reports the failure.
    ///
    /// # Panics
    ///
    /// After [`write_eof`](Self::write_eof) (asyncio's `RuntimeError('Cannot
    /// call write() after write_eof()')`).
    ///
    /// ```
    /// asyncio::run(async {
    ///     let (a, b) = tokio::io::duplex(64);
    ///     let w = asyncio::StreamWriter::new(a);
    ///     w.write(b"ping\n");
    ///     let mut r = asyncio::StreamReader::new(b);
    ///     assert_eq!(r.readline().await.unwrap(), b"ping\n");
    /// });
    /// ```
    pub fn write(&self, data: &[u8]) {
        self.write_all_of(std::iter::once(data));
    }

    /// Buffers every chunk of `chunks`, as [`write`](Self::write) does
    /// (asyncio's `writelines`).
    ///
    /// # Panics
    ///
    /// After [`write_eof`](Self::write_eof).
    ///
    /// ```
    /// asyncio::run(async {
    ///     let (a, b) = tokio::io::duplex(64);
    ///     let w = asyncio::StreamWriter::new(a);
    ///     w.writelines(["a\n", "b\n"]);
    ///     w.write_eof();
    ///     let mut r = asyncio::StreamReader::new(b);
    ///     assert_eq!(r.read_to_end().await.unwrap(), b"a\nb\n");
    /// });
    /// ```
    pub fn writelines<I>(&self, chunks: I)
    where
        I: IntoIterator,
        I::Item: AsRef<[u8]>,
    {
        let chunks: Vec<I::Item> = chunks.into_iter().collect();
        self.write_all_of(chunks.iter().map(AsRef::as_ref));
    }

    fn write_all_of<'a>(&self, chunks: impl Iterator<Item = &'a [u8]>) {
        let wake = {
            let mut st = lock(&self.shared.state);
            if st.eof {
                drop(st);
                panic!("Cannot call write() after write_eof()");
            }
            if st.closing || st.closed {
                return;
            }
            if st.buf.is_empty() && st.in_flight == 0 && !st.unflushed {
                // Nothing queued and the transport idle: send at once, as
                // asyncio's transport tries to.
                if let Some(io) = st.io.take() {
                    drop(st);
                    self.write_now(io, chunks);
                    return;
                }
            }
            let was_empty = st.buf.is_empty();
            for chunk in chunks {
                st.buf.extend_from_slice(chunk);
            }
            if st.pending() > HIGH_WATER {
                st.paused = true;
            }
            was_empty && !st.buf.is_empty()
        };
        if wake {
            self.shared.wake.notify_one();
        }
    }

    /// Writes what the transport takes without waiting; queues the rest
    /// for the sender. No lock is held while the transport is polled.
    fn write_now<'a>(
        &self,
        mut io: Box<dyn AsyncWrite + Send + Unpin>,
        chunks: impl Iterator<Item = &'a [u8]>,
    ) {
        let mut cx = Context::from_waker(futures::task::noop_waker_ref());
        let mut rest = Vec::new();
        let mut blocked = false;
        for chunk in chunks {
            let mut chunk = chunk;
            while !blocked && !chunk.is_empty() {
                match Pin::new(&mut io).poll_write(&mut cx, chunk) {
                    Poll::Ready(Ok(n)) if n > 0 => chunk = &chunk[n..],
                    // Pending, an error or a zero write: the sender retries
                    // (and reports the error).
                    _ => blocked = true,
                }
            }
            rest.extend_from_slice(chunk);
        }
        let flushed = matches!(Pin::new(&mut io).poll_flush(&mut cx), Poll::Ready(Ok(())));
        let wake = {
            let mut st = lock(&self.shared.state);
            st.io = Some(io);
            if !rest.is_empty() {
                // Before anything queued meanwhile from another thread.
                rest.extend_from_slice(&st.buf);
                st.buf = rest;
            }
            st.unflushed |= !flushed;
            if st.pending() > HIGH_WATER {
                st.paused = true;
            }
            // The sender may have looked while the transport was out.
            !st.buf.is_empty() || st.unflushed || st.eof || st.closing || st.abort
        };
        if wake {
            self.shared.wake.notify_one();
        }
    }

    /// asyncio's `drain()`: returns at once unless more than 64 KiB are
    /// buffered; then waits until the buffer is down to 16 KiB.
    ///
    /// # Errors
    ///
    /// The connection's failure (a reset, a broken pipe) as that error;
    /// `ConnectionReset` ("Connection lost") once the writer is closed, or
    /// is closing ([`close`](Self::close) was called: it then waits for the
    /// close to finish, where asyncio's `drain()` yields once and raises
    /// only if the connection is lost by then).
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: dropping it loses nothing (the bytes stay buffered and
    /// are sent anyway).
    ///
    /// ```
    /// asyncio::run(async {
    ///     let (a, b) = tokio::io::duplex(1 << 20);
    ///     let w = asyncio::StreamWriter::new(a);
    ///     w.write(&vec![7u8; 200_000]);
    ///     w.drain().await.unwrap(); // the peer's pipe takes it
    ///     drop(b);
    /// });
    /// ```
    pub async fn drain(&self) -> io::Result<()> {
        loop {
            let notified = self.shared.progress.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            {
                let st = lock(&self.shared.state);
                if let Some(e) = &st.error {
                    return Err(copy_error(e));
                }
                if st.closed {
                    return Err(io::Error::new(
                        io::ErrorKind::ConnectionReset,
                        "Connection lost",
                    ));
                }
                if !st.paused && !st.closing {
                    return Ok(());
                }
            }
            notified.await;
        }
    }

    /// Closes the write side after the buffered bytes (asyncio's
    /// `write_eof()`: a TCP half-close; the peer reads the end of the
    /// stream and can still answer).
    ///
    /// ```
    /// asyncio::run(async {
    ///     let (a, b) = tokio::io::duplex(64);
    ///     let w = asyncio::StreamWriter::new(a);
    ///     assert!(w.can_write_eof());
    ///     w.write(b"last");
    ///     w.write_eof();
    ///     assert_eq!(asyncio::StreamReader::new(b).read_to_end().await.unwrap(), b"last");
    /// });
    /// ```
    pub fn write_eof(&self) {
        lock(&self.shared.state).eof = true;
        self.shared.wake.notify_one();
    }

    /// Whether [`write_eof`](Self::write_eof) is supported: always `true`
    /// here (every `AsyncWrite` can be shut down).
    ///
    /// ```
    /// asyncio::run(async {
    ///     let w = asyncio::StreamWriter::new(tokio::io::sink());
    ///     assert!(w.can_write_eof());
    /// });
    /// ```
    pub fn can_write_eof(&self) -> bool {
        true
    }

    /// Starts closing the connection: what is buffered is sent, then the
    /// transport is shut down and released, and the connection's reader
    /// sees the end of the stream (asyncio's `close()`). Returns at once;
    /// [`wait_closed`](Self::wait_closed) waits for the end.
    ///
    /// ```
    /// asyncio::run(async {
    ///     let w = asyncio::StreamWriter::new(tokio::io::sink());
    ///     w.close();
    ///     assert!(w.is_closing());
    ///     w.wait_closed().await.unwrap();
    /// });
    /// ```
    pub fn close(&self) {
        self.shared.close();
    }

    /// `true` once [`close`](Self::close) was called or the connection
    /// failed (asyncio's `is_closing()`).
    ///
    /// ```
    /// asyncio::run(async {
    ///     let w = asyncio::StreamWriter::new(tokio::io::sink());
    ///     assert!(!w.is_closing());
    ///     w.close();
    ///     assert!(w.is_closing());
    /// });
    /// ```
    pub fn is_closing(&self) -> bool {
        let st = lock(&self.shared.state);
        st.closing || st.closed
    }

    /// Waits until the connection is closed (asyncio's `wait_closed()`).
    /// It waits for a [`close`](Self::close) or the connection's failure:
    /// without either, it waits forever.
    ///
    /// # Errors
    ///
    /// The error the connection failed with, if it failed (also on every
    /// later call).
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: it only waits.
    ///
    /// ```
    /// asyncio::run(async {
    ///     let w = asyncio::StreamWriter::new(tokio::io::sink());
    ///     w.close();
    ///     w.wait_closed().await.unwrap();
    ///     w.wait_closed().await.unwrap(); // again: at once
    /// });
    /// ```
    pub async fn wait_closed(&self) -> io::Result<()> {
        loop {
            let notified = self.shared.progress.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            {
                let st = lock(&self.shared.state);
                if st.closed {
                    return match &st.error {
                        Some(e) => Err(copy_error(e)),
                        None => Ok(()),
                    };
                }
            }
            notified.await;
        }
    }

    /// The peer's address (asyncio's `get_extra_info('peername')`), for a
    /// TCP connection.
    ///
    /// ```
    /// asyncio::run(async {
    ///     let w = asyncio::StreamWriter::new(tokio::io::sink());
    ///     assert_eq!(w.peer_addr(), None);
    /// });
    /// ```
    pub fn peer_addr(&self) -> Option<SocketAddr> {
        self.peer
    }

    /// The local address (asyncio's `get_extra_info('sockname')`), for a
    /// TCP connection.
    ///
    /// ```
    /// asyncio::run(async {
    ///     let w = asyncio::StreamWriter::new(tokio::io::sink());
    ///     assert_eq!(w.local_addr(), None);
    /// });
    /// ```
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.local
    }
}

impl Drop for StreamWriter {
    /// Closes the connection after sending what is buffered.
    fn drop(&mut self) {
        self.shared.close();
    }
}

impl Shared {
    pub(crate) fn close(&self) {
        lock(&self.state).closing = true;
        self.wake.notify_one();
    }

    /// asyncio's `transport.abort()`: drops the buffer and closes at once.
    pub(crate) fn abort(&self) {
        let buf = {
            let mut st = lock(&self.state);
            st.abort = true;
            st.closing = true;
            std::mem::take(&mut st.buf)
        };
        drop(buf);
        self.wake.notify_one();
    }
}

type Io = Box<dyn AsyncWrite + Send + Unpin>;

enum Step {
    Write(Io),
    Eof(Io),
    Close(Io),
    Abort,
    Wait,
}

/// The background sender: asyncio's transport writing from the loop.
async fn sender(shared: Arc<Shared>) {
    let mut chunk = Vec::new();
    let mut eof_sent = false;
    let outcome: io::Result<()> = loop {
        let wake = shared.wake.notified();
        tokio::pin!(wake);
        wake.as_mut().enable();
        let step = {
            let mut st = lock(&shared.state);
            if st.abort {
                Step::Abort
            } else if eof_sent {
                // The write side is shut and released: only the close is left.
                if st.closing { Step::Abort } else { Step::Wait }
            } else if st.io.is_none() {
                // An immediate write has the transport; it wakes us.
                Step::Wait
            } else if !st.buf.is_empty() || st.unflushed {
                chunk.clear();
                std::mem::swap(&mut chunk, &mut st.buf);
                st.in_flight = chunk.len();
                st.unflushed = false;
                Step::Write(st.io.take().expect("checked above"))
            } else if st.eof && !eof_sent {
                Step::Eof(st.io.take().expect("checked above"))
            } else if st.closing {
                Step::Close(st.io.take().expect("checked above"))
            } else {
                Step::Wait
            }
        };
        match step {
            Step::Wait => wake.await,
            Step::Abort => break Ok(()),
            Step::Write(mut io) => {
                let r = write_chunk(&mut io, &chunk, &shared).await;
                lock(&shared.state).io = Some(io);
                match r {
                    Ok(true) => break Ok(()),
                    Ok(false) => {}
                    Err(e) => break Err(e),
                }
            }
            Step::Eof(mut io) => {
                eof_sent = true;
                let r = io.shutdown().await;
                // Released too: a pipe's shutdown does nothing, its end
                // reaches the reader only when it is closed (a socket half
                // stays open through its other half). Nothing can be
                // written after `write_eof`.
                drop(io);
                if let Err(e) = r {
                    break Err(e);
                }
            }
            Step::Close(mut io) => {
                // A failure to shut down a closing connection is not worth
                // reporting: it is being released anyway.
                let _ = io.shutdown().await;
                drop(io);
                break Ok(());
            }
        }
    };
    let io = lock(&shared.state).io.take();
    drop(io);
    if let Some(link) = &shared.link {
        link.close(outcome.as_ref().err());
    }
    let buf = {
        let mut st = lock(&shared.state);
        st.closed = true;
        st.paused = false;
        st.in_flight = 0;
        if let Err(e) = outcome {
            st.error = Some(e);
        }
        std::mem::take(&mut st.buf)
    };
    drop(buf);
    shared.progress.notify_waiters();
}

/// Writes `chunk`; `Ok(true)` if an abort came first.
async fn write_chunk(io: &mut Io, chunk: &[u8], shared: &Shared) -> io::Result<bool> {
    let mut off = 0;
    while off < chunk.len() {
        let n = tokio::select! {
            biased;
            r = io.write(&chunk[off..]) => r?,
            () = shared.wake.notified() => {
                if lock(&shared.state).abort {
                    return Ok(true);
                }
                continue;
            }
        };
        if n == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        off += n;
        let resume = {
            let mut st = lock(&shared.state);
            st.in_flight -= n;
            if st.paused && st.pending() <= LOW_WATER {
                st.paused = false;
                true
            } else {
                false
            }
        };
        if resume {
            shared.progress.notify_waiters();
        }
    }
    io.flush().await?;
    Ok(false)
}
