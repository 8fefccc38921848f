//! `open_connection` and `open_unix_connection`.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpStream;

use super::link::Link;
use super::{StreamReader, StreamWriter};

/// A reader and a writer over one TCP connection; closing the writer closes
/// the connection.
pub(crate) fn tcp_pair(stream: TcpStream) -> (StreamReader, StreamWriter) {
    // asyncio turns Nagle's algorithm off on every TCP transport.
    let _ = stream.set_nodelay(true);
    let peer = stream.peer_addr().ok();
    let local = stream.local_addr().ok();
    let (r, w) = stream.into_split();
    let link = Arc::new(Link::default());
    (
        StreamReader::with_link(Box::new(r), Some(link.clone())),
        StreamWriter::with_link(w, Some(link), peer, local),
    )
}

#[cfg(unix)]
pub(crate) fn unix_pair(stream: tokio::net::UnixStream) -> (StreamReader, StreamWriter) {
    let (r, w) = stream.into_split();
    let link = Arc::new(Link::default());
    (
        StreamReader::with_link(Box::new(r), Some(link.clone())),
        StreamWriter::with_link(w, Some(link), None, None),
    )
}

/// Resolves `host`, with the host in the error.
pub(crate) async fn resolve(host: &str, port: u16) -> io::Result<Vec<SocketAddr>> {
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
        .await
        .map_err(|e| io::Error::new(e.kind(), format!("cannot resolve host {host:?}: {e}")))?
        .collect();
    if addrs.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("cannot resolve host {host:?}: no address"),
        ));
    }
    Ok(addrs)
}

/// Connects to `host`:`port` and returns asyncio's reader/writer pair
/// (`asyncio.open_connection(host, port)`). Every address `host` resolves
/// to is tried in turn; `TCP_NODELAY` is set, as asyncio sets it.
///
/// # Errors
///
/// An [`io::Error`] that names what failed: an unknown host (`cannot
/// resolve host "nosuch.invalid": ...`), or, when no address could be
/// connected to, the last address's error (a refused port: `cannot connect
/// to 127.0.0.1:1 (127.0.0.1:1): Connection refused ...`, kind
/// `ConnectionRefused`).
///
/// The reader's limit (asyncio's `limit=`) is set with
/// [`StreamReader::with_limit`].
///
/// # Cancel safety
///
/// Dropping the future while it connects leaves nothing open.
///
/// # Panics
///
/// Outside a Tokio runtime.
///
/// ```
/// asyncio::run(async {
///     let server = asyncio::start_server(
///         |mut reader, writer| async move {
///             let line = reader.readline().await.unwrap();
///             writer.write(&line);
///             writer.drain().await.unwrap();
///         },
///         "127.0.0.1",
///         0,
///     )
///     .await
///     .unwrap();
///     let port = server.sockets()[0].port();
///
///     let (mut reader, writer) = asyncio::open_connection("127.0.0.1", port).await.unwrap();
///     writer.write(b"echo me\n");
///     assert_eq!(reader.readline().await.unwrap(), b"echo me\n");
///     writer.close();
///     writer.wait_closed().await.unwrap();
///     server.close();
///     server.wait_closed().await;
/// });
/// ```
pub async fn open_connection(host: &str, port: u16) -> io::Result<(StreamReader, StreamWriter)> {
    let mut last = None;
    for addr in resolve(host, port).await? {
        match TcpStream::connect(addr).await {
            Ok(stream) => return Ok(tcp_pair(stream)),
            Err(e) => last = Some((addr, e)),
        }
    }
    let (addr, e) = last.expect("resolve returns at least one address");
    Err(io::Error::new(
        e.kind(),
        format!("cannot connect to {host}:{port} ({addr}): {e}"),
    ))
}

/// Connects to the Unix socket at `path` (asyncio's
/// `open_unix_connection(path)`).
///
/// # Errors
///
/// The connect's [`io::Error`] (no such file, refused, ...), its message
/// naming the path: `cannot connect to Unix socket /path: ...`.
///
/// # Cancel safety
///
/// Dropping the future while it connects leaves nothing open.
///
/// # Panics
///
/// Outside a Tokio runtime.
///
/// ```
/// asyncio::run(async {
///     let path = std::env::temp_dir().join(format!("asyncio-doc-{}.sock", std::process::id()));
///     let server = asyncio::start_unix_server(
///         |_reader, writer| async move { writer.write(b"hi") },
///         &path,
///     )
///     .await
///     .unwrap();
///     let (mut reader, _writer) = asyncio::open_unix_connection(&path).await.unwrap();
///     assert_eq!(reader.read_to_end().await.unwrap(), b"hi");
///     server.close();
///     server.wait_closed().await;
///     assert!(!path.exists()); // close() removed the socket file
/// });
/// ```
#[cfg(unix)]
pub async fn open_unix_connection(
    path: impl AsRef<std::path::Path>,
) -> io::Result<(StreamReader, StreamWriter)> {
    let path = path.as_ref();
    let stream = tokio::net::UnixStream::connect(path).await.map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("cannot connect to Unix socket {}: {e}", path.display()),
        )
    })?;
    Ok(unix_pair(stream))
}
