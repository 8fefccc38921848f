//! `start_server`, `start_unix_server` and `Server`.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex};

use futures::FutureExt;
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio::task::AbortHandle;

use super::connection::{resolve, tcp_pair};
use super::writer::Shared as WriterShared;
use super::{StreamReader, StreamWriter};
use crate::lock::lock;
use crate::{Error, ExceptionContext, PanicError, Task};

/// A listening server (asyncio's `Server`), made by [`start_server`] or
/// [`start_unix_server`].
///
/// Every connection runs its handler as a task of this crate, named after
/// the peer (`client 127.0.0.1:54321`; on a Unix server, which has no peer
/// address, after its path: `client of /tmp/app.sock`), so [`all_tasks`](crate::all_tasks)
/// and [`dump_tasks`](crate::dump_tasks) list them. A handler that panics
/// is reported to the exception handler (`Unhandled exception in
/// client_connected_cb`), its connection is closed, and the server goes on
/// serving.
///
/// Dropping the `Server` does not stop it (asyncio's server lives on in
/// its loop): call [`close`](Self::close).
///
/// ```
/// asyncio::run(async {
///     let server = asyncio::start_server(
///         |_reader, writer| async move {
///             writer.write(b"welcome\n");
///         },
///         "127.0.0.1",
///         0,
///     )
///     .await
///     .unwrap();
///     assert!(server.is_serving());
///     let port = server.sockets()[0].port();
///     let (mut reader, _writer) = asyncio::open_connection("127.0.0.1", port).await.unwrap();
///     assert_eq!(reader.readline().await.unwrap(), b"welcome\n");
///     server.close();
///     assert!(!server.is_serving());
///     server.wait_closed().await;
/// });
/// ```
#[derive(Clone)]
pub struct Server {
    shared: Arc<ServerShared>,
}

struct ServerShared {
    state: Mutex<ServerState>,
    /// Wakes `wait_closed` and `serve_forever`.
    changed: Notify,
}

#[derive(Default)]
struct ServerState {
    closed: bool,
    serving_forever: bool,
    sockets: Vec<SocketAddr>,
    accept_loops: Vec<AbortHandle>,
    /// Accept loops not ended yet (they hold the listening sockets).
    listening: usize,
    clients: HashMap<u64, Arc<WriterShared>>,
    next_client: u64,
    #[cfg(unix)]
    unix_path: Option<(std::path::PathBuf, u64)>,
}

impl fmt::Debug for Server {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let st = lock(&self.shared.state);
        let mut d = f.debug_struct("Server");
        d.field("sockets", &st.sockets);
        #[cfg(unix)]
        if let Some((path, _)) = &st.unix_path {
            d.field("path", path);
        }
        d.field("serving", &!st.closed)
            .field("clients", &st.clients.len())
            .finish()
    }
}

/// Starts a TCP server on `host`:`port` (asyncio's `start_server(cb, host,
/// port)`): it listens before this returns, and each connection calls
/// `handler(reader, writer)` in a task of its own. Port 0 picks a free port
/// ([`Server::sockets`] tells which); host `""` listens on every IPv4
/// interface; a host that resolves to several addresses listens on each.
///
/// The connection closes when the handler is done with it: when the
/// writer is closed or dropped. A reader limit other than 64 KiB is set in
/// the handler with [`StreamReader::with_limit`].
///
/// # Errors
///
/// An [`io::Error`] naming the address: `error while attempting to bind on
/// address 127.0.0.1:80: Permission denied ...` (asyncio's message); an
/// unknown host is `cannot resolve host "...": ...`. Nothing is left
/// listening after an error.
///
/// # Cancel safety
///
/// Dropping the future before it resolves leaves nothing listening.
///
/// # Panics
///
/// Outside a Tokio runtime.
///
/// ```
/// asyncio::run(async {
///     let server = asyncio::start_server(
///         |mut reader, writer| async move {
///             while let Ok(line) = reader.readline().await {
///                 if line.is_empty() {
///                     break;
///                 }
///                 writer.write(&line.to_ascii_uppercase());
///             }
///         },
///         "127.0.0.1",
///         0,
///     )
///     .await
///     .unwrap();
///     let port = server.sockets()[0].port();
///     let (mut reader, writer) = asyncio::open_connection("127.0.0.1", port).await.unwrap();
///     writer.write(b"shout\n");
///     assert_eq!(reader.readline().await.unwrap(), b"SHOUT\n");
///     writer.close();
///     server.close();
///     server.wait_closed().await;
/// });
/// ```
pub async fn start_server<H, Fut>(handler: H, host: &str, port: u16) -> io::Result<Server>
where
    H: Fn(StreamReader, StreamWriter) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let host = if host.is_empty() { "0.0.0.0" } else { host };
    let mut addrs = resolve(host, port).await?;
    addrs.dedup();
    let mut listeners = Vec::new();
    for addr in addrs {
        let listener = TcpListener::bind(addr).await.map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("error while attempting to bind on address {addr}: {e}"),
            )
        })?;
        listeners.push(listener);
    }
    let server = Server::new();
    let handler = Arc::new(handler);
    let loops: Vec<AbortHandle> = listeners
        .into_iter()
        .map(|listener| {
            let addr = listener.local_addr();
            if let Ok(addr) = addr {
                lock(&server.shared.state).sockets.push(addr);
            }
            let shared = server.shared.clone();
            let handler = handler.clone();
            // Made outside the task: a task aborted before its first poll
            // still drops it.
            let guard = server.listening();
            tokio::spawn(async move {
                let _guard = guard;
                loop {
                    match listener.accept().await {
                        Ok((stream, peer)) => {
                            let (reader, writer) = tcp_pair(stream);
                            spawn_client(
                                &shared,
                                &handler,
                                reader,
                                writer,
                                format!("client {peer}"),
                            );
                        }
                        Err(e) => accept_failed(e).await,
                    }
                }
            })
            .abort_handle()
        })
        .collect();
    server.set_loops(loops);
    Ok(server)
}

/// Starts a server on the Unix socket `path` (asyncio's
/// `start_unix_server(cb, path)`). A stale socket file at `path` is
/// replaced, as asyncio does; [`Server::close`] removes the file again
/// unless someone else replaced it.
///
/// # Errors
///
/// An [`io::Error`] naming the path (`error while attempting to bind on
/// address /path: ...`): the bind failed, or a file that is not a socket
/// is in the way, or a stale socket file could not be removed.
///
/// # Cancel safety
///
/// Dropping the future before it resolves leaves nothing listening.
///
/// # Panics
///
/// Outside a Tokio runtime.
///
/// ```
/// asyncio::run(async {
///     let path = std::env::temp_dir().join(format!("asyncio-doc-srv-{}.sock", std::process::id()));
///     let server = asyncio::start_unix_server(
///         |mut reader, writer| async move {
///             let data = reader.read(100).await.unwrap();
///             writer.write(&data);
///         },
///         &path,
///     )
///     .await
///     .unwrap();
///     let (mut reader, writer) = asyncio::open_unix_connection(&path).await.unwrap();
///     writer.write(b"ping");
///     assert_eq!(reader.read(100).await.unwrap(), b"ping");
///     server.close();
///     server.wait_closed().await;
/// });
/// ```
#[cfg(unix)]
pub async fn start_unix_server<H, Fut>(
    handler: H,
    path: impl AsRef<std::path::Path>,
) -> io::Result<Server>
where
    H: Fn(StreamReader, StreamWriter) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    use std::os::unix::fs::{FileTypeExt, MetadataExt};

    let path = path.as_ref().to_path_buf();
    let bind_error = |e: io::Error| {
        io::Error::new(
            e.kind(),
            format!(
                "error while attempting to bind on address {}: {e}",
                path.display()
            ),
        )
    };
    // A socket file left behind by an earlier server is replaced, as
    // asyncio replaces it; any other file is an error.
    if let Ok(meta) = std::fs::symlink_metadata(&path) {
        if meta.file_type().is_socket() {
            std::fs::remove_file(&path).map_err(bind_error)?;
        }
    }
    let listener = tokio::net::UnixListener::bind(&path).map_err(bind_error)?;
    let ino = std::fs::metadata(&path).map(|m| m.ino()).unwrap_or(0);
    let server = Server::new();
    lock(&server.shared.state).unix_path = Some((path.clone(), ino));
    let handler = Arc::new(handler);
    let shared = server.shared.clone();
    let guard = server.listening();
    let name = format!("client of {}", path.display());
    let accept = tokio::spawn(async move {
        let _guard = guard;
        loop {
            match listener.accept().await {
                Ok((stream, _)) => {
                    let (reader, writer) = super::connection::unix_pair(stream);
                    spawn_client(&shared, &handler, reader, writer, name.clone());
                }
                Err(e) => accept_failed(e).await,
            }
        }
    });
    server.set_loops(vec![accept.abort_handle()]);
    Ok(server)
}

/// asyncio logs a failed `accept()` and pauses the listener (for a full
/// descriptor table, say) instead of stopping to serve.
async fn accept_failed(e: io::Error) {
    crate::call_exception_handler(ExceptionContext::new(format!(
        "socket.accept() out of system resource: {e}"
    )));
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
}

/// Marks an accept loop ended, however it ends (aborted by `close`).
struct ListenGuard(Arc<ServerShared>);

impl Drop for ListenGuard {
    fn drop(&mut self) {
        lock(&self.0.state).listening -= 1;
        self.0.changed.notify_waiters();
    }
}

/// Removes a connection from its server (dropped when its handler task has
/// ended).
struct ClientGuard {
    server: Arc<ServerShared>,
    id: u64,
}

impl Drop for ClientGuard {
    fn drop(&mut self) {
        let entry = lock(&self.server.state).clients.remove(&self.id);
        drop(entry);
        self.server.changed.notify_waiters();
    }
}

fn spawn_client<H, Fut>(
    server: &Arc<ServerShared>,
    handler: &Arc<H>,
    reader: StreamReader,
    writer: StreamWriter,
    name: String,
) where
    H: Fn(StreamReader, StreamWriter) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let id = {
        let mut st = lock(&server.state);
        st.next_client += 1;
        let id = st.next_client;
        st.clients.insert(id, writer.shared());
        id
    };
    let guard = ClientGuard {
        server: server.clone(),
        id,
    };
    let handler = handler.clone();
    let task = Task::builder().name(name).spawn(async move {
        let outcome = AssertUnwindSafe(async move { handler(reader, writer).await })
            .catch_unwind()
            .await;
        if let Err(payload) = outcome {
            let message = payload
                .downcast_ref::<&str>()
                .map(|s| (*s).to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "Box<dyn Any>".to_string());
            let mut ctx = ExceptionContext::new("Unhandled exception in client_connected_cb")
                .with_exception(Error::Panicked(PanicError::new(message)));
            if let Some(task) = crate::current_task() {
                ctx = ctx.with_task(task);
            }
            crate::call_exception_handler(ctx);
        }
    });
    // The connection counts until the task has ended, whatever the end
    // (returned, panicked, cancelled): `wait_closed` waits for the tasks.
    task.add_done_callback(move |_| drop(guard));
    // The server keeps no handle: the task is listed by `all_tasks` and
    // ends on its own.
    drop(task);
}

impl Server {
    fn new() -> Self {
        Self {
            shared: Arc::new(ServerShared {
                state: Mutex::new(ServerState::default()),
                changed: Notify::new(),
            }),
        }
    }

    /// Counts one more accept loop; the guard counts it out.
    fn listening(&self) -> ListenGuard {
        lock(&self.shared.state).listening += 1;
        ListenGuard(self.shared.clone())
    }

    fn set_loops(&self, loops: Vec<AbortHandle>) {
        let closed = {
            let mut st = lock(&self.shared.state);
            st.accept_loops = loops;
            st.closed
        };
        if closed {
            self.close();
        }
    }

    /// The addresses the server listens on (asyncio's `sockets`, each
    /// socket's `getsockname()`); empty once closed, and for a Unix server.
    ///
    /// ```
    /// asyncio::run(async {
    ///     let server = asyncio::start_server(|_, _| async {}, "127.0.0.1", 0).await.unwrap();
    ///     let addr = server.sockets()[0];
    ///     assert!(addr.ip().is_loopback() && addr.port() != 0);
    ///     server.close();
    ///     assert!(server.sockets().is_empty());
    /// });
    /// ```
    pub fn sockets(&self) -> Vec<SocketAddr> {
        let st = lock(&self.shared.state);
        if st.closed {
            Vec::new()
        } else {
            st.sockets.clone()
        }
    }

    /// `true` until [`close`](Self::close) (asyncio's `is_serving()`: the
    /// server accepts from the start).
    ///
    /// ```
    /// asyncio::run(async {
    ///     let server = asyncio::start_server(|_, _| async {}, "127.0.0.1", 0).await.unwrap();
    ///     assert!(server.is_serving());
    ///     server.close();
    ///     assert!(!server.is_serving());
    /// });
    /// ```
    pub fn is_serving(&self) -> bool {
        !lock(&self.shared.state).closed
    }

    /// Stops accepting (asyncio's `close()`): the listening sockets are
    /// released (a Unix server's socket file is removed) and the
    /// connections already accepted go on. Idempotent.
    ///
    /// ```
    /// asyncio::run(async {
    ///     let server = asyncio::start_server(|_, _| async {}, "127.0.0.1", 0).await.unwrap();
    ///     let port = server.sockets()[0].port();
    ///     server.close();
    ///     server.wait_closed().await;
    ///     assert!(asyncio::open_connection("127.0.0.1", port).await.is_err());
    /// });
    /// ```
    pub fn close(&self) {
        let loops = {
            let mut st = lock(&self.shared.state);
            st.closed = true;
            #[cfg(unix)]
            if let Some((path, ino)) = st.unix_path.take() {
                use std::os::unix::fs::MetadataExt;
                // Only the file this server made (asyncio leaves a
                // replaced one alone).
                if std::fs::metadata(&path).is_ok_and(|m| m.ino() == ino) {
                    let _ = std::fs::remove_file(&path);
                }
            }
            std::mem::take(&mut st.accept_loops)
        };
        for accept in loops {
            accept.abort();
        }
        self.shared.changed.notify_waiters();
    }

    /// Closes every connection, after sending what each has buffered
    /// (asyncio's `close_clients()`); their handlers read the end of the
    /// stream.
    ///
    /// ```
    /// asyncio::run(async {
    ///     let server = asyncio::start_server(
    ///         |mut reader, writer| async move {
    ///             writer.write(b"hello\n");
    ///             let _ = reader.read_to_end().await;
    ///         },
    ///         "127.0.0.1",
    ///         0,
    ///     )
    ///     .await
    ///     .unwrap();
    ///     let port = server.sockets()[0].port();
    ///     let (mut reader, _writer) = asyncio::open_connection("127.0.0.1", port).await.unwrap();
    ///     assert_eq!(reader.readline().await.unwrap(), b"hello\n"); // the handler runs
    ///     server.close();
    ///     server.close_clients();
    ///     server.wait_closed().await;
    ///     assert_eq!(reader.read(10).await.unwrap(), b"");
    /// });
    /// ```
    pub fn close_clients(&self) {
        for client in self.clients() {
            client.close();
        }
    }

    /// Closes every connection at once, dropping what is buffered
    /// (asyncio's `abort_clients()`).
    ///
    /// ```
    /// asyncio::run(async {
    ///     let server = asyncio::start_server(
    ///         |mut reader, writer| async move {
    ///             writer.write(b"hello\n");
    ///             let _ = reader.read_to_end().await;
    ///         },
    ///         "127.0.0.1",
    ///         0,
    ///     )
    ///     .await
    ///     .unwrap();
    ///     let port = server.sockets()[0].port();
    ///     let (mut reader, _writer) = asyncio::open_connection("127.0.0.1", port).await.unwrap();
    ///     assert_eq!(reader.readline().await.unwrap(), b"hello\n"); // the handler runs
    ///     server.close();
    ///     server.abort_clients();
    ///     server.wait_closed().await;
    /// });
    /// ```
    pub fn abort_clients(&self) {
        for client in self.clients() {
            client.abort();
        }
    }

    fn clients(&self) -> Vec<Arc<WriterShared>> {
        lock(&self.shared.state).clients.values().cloned().collect()
    }

    /// Waits until the server is closed, has released its sockets, and
    /// every handler task has ended (asyncio's `wait_closed()`, which
    /// waits for the connections).
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: it only waits.
    ///
    /// ```
    /// asyncio::run(async {
    ///     let server = asyncio::start_server(|_, _| async {}, "127.0.0.1", 0).await.unwrap();
    ///     server.close();
    ///     server.wait_closed().await;
    ///     server.wait_closed().await; // again: at once
    /// });
    /// ```
    pub async fn wait_closed(&self) {
        loop {
            let notified = self.shared.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            {
                let st = lock(&self.shared.state);
                if st.closed && st.listening == 0 && st.clients.is_empty() {
                    return;
                }
            }
            notified.await;
        }
    }

    /// Serves until [`close`](Self::close) is called (asyncio's
    /// `serve_forever()`); then waits as [`wait_closed`](Self::wait_closed)
    /// does.
    ///
    /// # Cancel safety
    ///
    /// Dropping it (a cancelled task, a `select!` branch) closes the
    /// server, as cancelling asyncio's `serve_forever()` does; the
    /// connections go on.
    ///
    /// # Panics
    ///
    /// If another `serve_forever()` of this server is running, or the
    /// server is closed (asyncio's `RuntimeError`s).
    ///
    /// ```
    /// asyncio::run(async {
    ///     let server = asyncio::start_server(|_, _| async {}, "127.0.0.1", 0).await.unwrap();
    ///     let closer = server.clone();
    ///     asyncio::create_task(async move { closer.close() });
    ///     server.serve_forever().await;
    ///     assert!(!server.is_serving());
    /// });
    /// ```
    pub async fn serve_forever(&self) {
        {
            let mut st = lock(&self.shared.state);
            if st.closed {
                drop(st);
                panic!("server {self:?} is closed: serve_forever() needs a serving server");
            }
            if st.serving_forever {
                drop(st);
                panic!("server {self:?} is already being awaited on serve_forever()");
            }
            st.serving_forever = true;
        }
        let guard = ServeForever(self);
        loop {
            let notified = self.shared.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if lock(&self.shared.state).closed {
                break;
            }
            notified.await;
        }
        self.wait_closed().await;
        drop(guard);
    }
}

/// Closes the server when `serve_forever` is dropped.
struct ServeForever<'a>(&'a Server);

impl Drop for ServeForever<'_> {
    fn drop(&mut self) {
        lock(&self.0.shared.state).serving_forever = false;
        self.0.close();
    }
}
