//! start_server / start_unix_server / Server on real sockets (TCP on
//! 127.0.0.1 port 0, Unix sockets in the temporary directory). Each test
//! names the CPython test (`test_streams.py`, `test_server.py`) it mirrors.

use std::io;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use asyncio::{Runner, Server, StreamReader, StreamWriter};

mod reports;

use reports::{capture, reports_for};

fn run<F: Future>(fut: F) -> F::Output {
    capture();
    Runner::new().worker_threads(2).run(fut)
}

fn socket_path(tag: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    std::env::temp_dir().join(format!(
        "asyncio-server-{}-{tag}-{}.sock",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ))
}

/// Echoes what it reads until the end of the stream.
async fn echo(mut reader: StreamReader, writer: StreamWriter) {
    loop {
        match reader.read(64 * 1024).await {
            Ok(data) if !data.is_empty() => {
                writer.write(&data);
                if writer.drain().await.is_err() {
                    return;
                }
            }
            _ => return,
        }
    }
}

/// A server on a free port of 127.0.0.1 and one connection to it.
async fn serve_and_connect<H, Fut>(handler: H) -> (Server, StreamReader, StreamWriter)
where
    H: Fn(StreamReader, StreamWriter) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let server = asyncio::start_server(handler, "127.0.0.1", 0)
        .await
        .unwrap();
    let (reader, writer) = asyncio::open_connection("127.0.0.1", port(&server))
        .await
        .unwrap();
    (server, reader, writer)
}

fn port(server: &Server) -> u16 {
    server.sockets()[0].port()
}

/// test_streams.py::StreamTests::test_start_server: each connection runs its
/// handler as a task of ours, listed by all_tasks and named after the peer
#[test]
fn each_connection_is_a_task_named_after_the_peer_and_listed() {
    run(async {
        let (server, mut reader, writer) = serve_and_connect(|mut reader, writer| async move {
            let name = asyncio::current_task().unwrap().get_name();
            writer.write(format!("{name}\n").as_bytes());
            let _ = reader.read_to_end().await;
        })
        .await;
        let name = String::from_utf8(reader.readline().await.unwrap()).unwrap();
        let expected = format!("client {}", writer.local_addr().unwrap());
        assert_eq!(name.trim_end(), expected);
        assert!(
            asyncio::all_tasks()
                .iter()
                .any(|t| t.get_name() == expected),
            "all_tasks lists the connection"
        );
        writer.close();
        server.close();
        server.wait_closed().await;
        assert!(
            !asyncio::all_tasks()
                .iter()
                .any(|t| t.get_name() == expected)
        );
    });
}

/// test_server.py::TestServer2::test_wait_closed_basic: close() stops
/// accepting; wait_closed() waits for the handlers too
#[test]
fn close_stops_accepting_and_wait_closed_waits_for_the_handlers() {
    run(async {
        let server = asyncio::start_server(
            |mut reader, writer| async move {
                writer.write(b"ready\n");
                let line = reader.readline().await.unwrap();
                writer.write(&line);
            },
            "127.0.0.1",
            0,
        )
        .await
        .unwrap();
        let port = port(&server);
        assert!(server.is_serving());
        let (mut reader, writer) = asyncio::open_connection("127.0.0.1", port).await.unwrap();
        assert_eq!(reader.readline().await.unwrap(), b"ready\n");

        server.close();
        assert!(!server.is_serving());
        assert!(server.sockets().is_empty());
        let waiting = server.wait_closed();
        tokio::pin!(waiting);
        assert!(
            futures::poll!(waiting.as_mut()).is_pending(),
            "a handler still runs"
        );

        // The accepted connection goes on after close().
        writer.write(b"still here\n");
        assert_eq!(reader.readline().await.unwrap(), b"still here\n");
        waiting.await;
        server.wait_closed().await; // again: at once

        // Nothing listens any more (a reset is possible too: the freed port
        // can be picked by a parallel test's connection).
        let err = asyncio::open_connection("127.0.0.1", port)
            .await
            .unwrap_err();
        assert!(
            matches!(
                err.kind(),
                io::ErrorKind::ConnectionRefused | io::ErrorKind::ConnectionReset
            ),
            "{err:?}"
        );
    });
}

/// test_server.py::TestServer2::test_close_clients: the buffered data is sent,
/// then the connections close and wait_closed() finishes
#[test]
fn close_clients_flushes_and_closes_every_connection() {
    run(async {
        let (server, mut reader, writer) = serve_and_connect(|mut reader, writer| async move {
            writer.write(&vec![7u8; 1 << 20]);
            let _ = reader.read_to_end().await; // until closed
            std::future::pending::<()>().await;
        })
        .await;
        let name = format!("client {}", writer.local_addr().unwrap());
        assert_eq!(reader.readexactly(1).await.unwrap(), [7]);
        server.close();
        server.close_clients();
        let rest = reader.read_to_end().await.unwrap();
        assert_eq!(rest.len(), (1 << 20) - 1);
        assert!(rest.iter().all(|&b| b == 7));
        // The handler ignores the end and stays pending: wait_closed waits
        // for the handler tasks (stricter than asyncio's, which waits for
        // the connections), so it ends once that task is cancelled.
        let waiting = server.wait_closed();
        tokio::pin!(waiting);
        assert!(futures::poll!(waiting.as_mut()).is_pending());
        let task = asyncio::all_tasks()
            .into_iter()
            .find(|t| t.get_name() == name)
            .unwrap();
        task.cancel();
        waiting.await;
    });
}

/// test_server.py::TestServer2::test_abort_clients: the buffers are dropped
/// and the connections close at once, even with a peer that never reads
#[test]
fn abort_clients_drops_the_buffers_and_closes_at_once() {
    run(async {
        let (server, mut reader, _writer) = serve_and_connect(|mut reader, writer| async move {
            writer.write(b"go\n");
            writer.write(&vec![1u8; 16 << 20]); // more than the socket takes
            let _ = reader.read_to_end().await;
        })
        .await;
        assert_eq!(reader.readline().await.unwrap(), b"go\n");
        server.close();
        server.abort_clients();
        server.wait_closed().await;
        let got = reader.read_to_end().await.map(|v| v.len()).unwrap_or(0);
        assert!(got < 16 << 20, "the buffer was dropped ({got} bytes came)");
    });
}

/// test_streams.py::StreamTests::test_unhandled_exception: a handler that
/// panics is reported, its connection closed, and the server goes on
#[test]
fn a_panicking_handler_is_reported_and_the_server_keeps_serving() {
    run(async {
        let server = asyncio::start_server(
            |mut reader, writer| async move {
                let line = reader.readline().await.unwrap();
                if line == b"boom\n" {
                    panic!("handler exploded");
                }
                writer.write(&line);
            },
            "127.0.0.1",
            0,
        )
        .await
        .unwrap();
        let port = port(&server);
        let (mut r1, w1) = asyncio::open_connection("127.0.0.1", port).await.unwrap();
        let name = format!("client {}", w1.local_addr().unwrap());
        w1.write(b"boom\n");
        assert_eq!(
            r1.read_to_end().await.unwrap(),
            b"",
            "the connection is closed"
        );

        let (mut r2, w2) = asyncio::open_connection("127.0.0.1", port).await.unwrap();
        w2.write(b"fine\n");
        assert_eq!(r2.readline().await.unwrap(), b"fine\n");

        server.close();
        server.wait_closed().await;
        let reports = reports_for(&name);
        assert_eq!(reports.len(), 1, "{reports:?}");
        assert_eq!(reports[0].0, "Unhandled exception in client_connected_cb");
        assert!(
            reports[0].1.contains("handler exploded"),
            "{}",
            reports[0].1
        );
    });
}

/// test_streams.py::StreamTests::test_unhandled_cancel: a cancelled handler
/// closes its connection, silently
#[test]
fn a_cancelled_handler_closes_its_connection() {
    run(async {
        let (server, mut reader, writer) = serve_and_connect(|mut reader, writer| async move {
            writer.write(b"hi\n");
            let _ = reader.read_to_end().await;
            writer.write(b"never\n");
        })
        .await;
        assert_eq!(reader.readline().await.unwrap(), b"hi\n");
        let name = format!("client {}", writer.local_addr().unwrap());
        let task = asyncio::all_tasks()
            .into_iter()
            .find(|t| t.get_name() == name)
            .expect("the handler task is listed");
        assert!(task.cancel());
        assert_eq!(reader.read_to_end().await.unwrap(), b"");
        server.close();
        server.wait_closed().await;
        assert!(task.cancelled());
        assert!(reports_for(&name).is_empty());
    });
}

/// test_server.py::SelectorStartServerTests::test_start_server_1:
/// serve_forever ends when the server is closed from elsewhere, and
/// dropping it closes the server
#[test]
fn serve_forever_ends_on_close_and_closes_when_dropped() {
    run(async {
        let server = asyncio::start_server(echo, "127.0.0.1", 0).await.unwrap();
        let closer = server.clone();
        let serving = asyncio::create_task(async move {
            closer.serve_forever().await;
        });
        let (mut reader, writer) = asyncio::open_connection("127.0.0.1", port(&server))
            .await
            .unwrap();
        writer.write(b"x");
        assert_eq!(reader.read(1).await.unwrap(), b"x");
        drop((reader, writer));
        server.close();
        serving.await.unwrap();

        let server = asyncio::start_server(echo, "127.0.0.1", 0).await.unwrap();
        let stopped = asyncio::wait_for(server.serve_forever(), 0.05).await;
        assert!(stopped.unwrap_err().is_timeout());
        assert!(
            !server.is_serving(),
            "a dropped serve_forever closed the server"
        );
        server.wait_closed().await;
    });
}

/// test_server.py::SelectorStartServerTests::test_start_server_1: a second
/// serve_forever is refused
#[test]
fn a_second_serve_forever_panics() {
    let msg = std::panic::catch_unwind(|| {
        run(async {
            let server = asyncio::start_server(echo, "127.0.0.1", 0).await.unwrap();
            let first = server.serve_forever();
            tokio::pin!(first);
            assert!(futures::poll!(first.as_mut()).is_pending());
            server.serve_forever().await;
        })
    })
    .unwrap_err();
    let msg = msg.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(
        msg.contains("already being awaited on serve_forever()"),
        "{msg}"
    );
}

/// No CPython test; source `base_events.create_server`: a bind failure
/// names the address
#[test]
fn a_bind_failure_names_the_address() {
    run(async {
        let server = asyncio::start_server(echo, "127.0.0.1", 0).await.unwrap();
        let port = port(&server);
        let err = asyncio::start_server(echo, "127.0.0.1", port)
            .await
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AddrInUse);
        assert!(
            err.to_string().contains(&format!(
                "error while attempting to bind on address 127.0.0.1:{port}"
            )),
            "{err}"
        );
        let err = asyncio::start_server(echo, "nosuch-host.invalid", 0)
            .await
            .unwrap_err();
        assert!(err.to_string().contains("nosuch-host.invalid"), "{err}");
        server.close();
    });
}

/// test_server.py::UnixServerCleanupTests::test_unix_server_addr_cleanup,
/// test_unix_server_cleanup_replaced; test_streams.py::StreamTests::test_start_unix_server
#[test]
fn a_unix_server_serves_and_removes_its_socket_file_on_close() {
    run(async {
        let path = socket_path("cleanup");
        let server = asyncio::start_unix_server(echo, &path).await.unwrap();
        let (mut reader, writer) = asyncio::open_unix_connection(&path).await.unwrap();
        writer.write(b"over unix");
        assert_eq!(reader.readexactly(9).await.unwrap(), b"over unix");
        server.close();
        assert!(!path.exists());
        drop(writer);
        server.wait_closed().await;

        // A stale socket file is replaced; a replaced file is left alone.
        let stale = std::os::unix::net::UnixListener::bind(&path).unwrap();
        drop(stale);
        let server = asyncio::start_unix_server(echo, &path).await.unwrap();
        std::fs::remove_file(&path).unwrap();
        std::fs::write(&path, b"someone else's").unwrap();
        server.close();
        assert_eq!(std::fs::read(&path).unwrap(), b"someone else's");

        // A path that is not a socket cannot be served on.
        let err = asyncio::start_unix_server(echo, &path).await.unwrap_err();
        assert!(
            err.to_string().contains(&path.display().to_string()),
            "{err}"
        );
        std::fs::remove_file(&path).unwrap();
        server.wait_closed().await;
    });
}

/// Many concurrent clients echoing through one server, every byte checked.
/// By default 1,000 clients of 32 KiB each (a few seconds in a debug
/// build on two cores); `ASYNCIO_STRESS=1` makes it 1 MiB each (1 GiB each
/// way).
#[test]
fn a_server_echoes_for_a_thousand_concurrent_clients_byte_for_byte() {
    let clients: usize = 1000;
    let size: usize = if std::env::var_os("ASYNCIO_STRESS").is_some() {
        1 << 20
    } else {
        32 << 10
    };
    run(async move {
        let server = asyncio::start_server(echo, "127.0.0.1", 0).await.unwrap();
        let port = port(&server);
        let start = Instant::now();
        // Connects go in waves (a burst of 1,000 overflows the listen
        // queue, and the kernel then resets connections it dropped); each
        // client proves it was accepted with a first echoed byte, then all
        // 1,000 wait for each other and transfer at the same time.
        let connecting = Arc::new(tokio::sync::Semaphore::new(100));
        let all_connected = Arc::new(tokio::sync::Barrier::new(clients));
        let mut handles = Vec::new();
        for c in 0..clients {
            let connecting = connecting.clone();
            let all_connected = all_connected.clone();
            handles.push(tokio::spawn(async move {
                let permit = connecting.acquire_owned().await.unwrap();
                let (mut reader, writer) = loop {
                    // A burst of 1,000 connects can overflow the listen backlog.
                    match asyncio::open_connection("127.0.0.1", port).await {
                        Ok(conn) => break conn,
                        Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
                            tokio::task::yield_now().await
                        }
                        Err(e) => panic!("{e}"),
                    }
                };
                let byte = move |i: usize| ((i * 31 + c) % 251) as u8;
                writer.write(&[byte(0)]);
                assert_eq!(reader.readexactly(1).await.unwrap(), [byte(0)]);
                drop(permit);
                all_connected.wait().await;
                let sending = tokio::spawn(async move {
                    let mut sent = 1;
                    while sent < size {
                        let n = (size - sent).min(16 << 10);
                        let chunk: Vec<u8> = (sent..sent + n).map(byte).collect();
                        writer.write(&chunk);
                        writer.drain().await.unwrap();
                        sent += n;
                    }
                    writer
                });
                let mut got = 1;
                while got < size {
                    let data = reader.read(64 << 10).await.unwrap();
                    assert!(!data.is_empty(), "client {c}: early EOF at {got}");
                    for (k, &b) in data.iter().enumerate() {
                        assert_eq!(b, byte(got + k), "client {c}: byte {}", got + k);
                    }
                    got += data.len();
                }
                let writer = sending.await.unwrap();
                writer.close();
                writer.wait_closed().await.unwrap();
            }));
        }
        for h in handles {
            h.await.unwrap();
        }
        server.close();
        server.wait_closed().await;
        eprintln!(
            "{clients} clients x {size} bytes echoed in {:?}",
            start.elapsed()
        );
    });
}
