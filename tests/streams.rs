//! StreamReader / StreamWriter / open_connection, on real sockets (TCP on
//! 127.0.0.1 port 0, Unix sockets in the temporary directory) and in-memory
//! pipes. Each test names the CPython test (`test_streams.py::StreamTests`)
//! it mirrors.

use std::io;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use asyncio::{ReadUntilError, StreamReader, StreamWriter};
use futures::{FutureExt, StreamExt};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn reader_of(data: &'static [u8], limit: usize) -> StreamReader {
    StreamReader::new(data).with_limit(limit)
}

/// An `open_connection` to a plain Tokio listener: our reader and writer,
/// and the peer's socket.
async fn connected() -> (StreamReader, StreamWriter, tokio::net::TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (conn, accepted) = tokio::join!(
        asyncio::open_connection("127.0.0.1", port),
        listener.accept()
    );
    let (reader, writer) = conn.unwrap();
    (reader, writer, accepted.unwrap().0)
}

/// A unique socket path in the temporary directory.
fn socket_path(tag: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    std::env::temp_dir().join(format!(
        "asyncio-streams-{}-{tag}-{}.sock",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ))
}

// ------------------------------------------------------------------ reading

/// test_streams.py::StreamTests::test_read_zero, test_read, test_read_eof
#[tokio::test]
async fn read_returns_what_is_there_up_to_n_and_empty_at_eof() {
    let (a, mut feed) = tokio::io::duplex(1024);
    let mut r = StreamReader::new(a);
    assert_eq!(r.read(0).await.unwrap(), b"");
    feed.write_all(b"line1\nline2").await.unwrap();
    assert_eq!(r.read(100).await.unwrap(), b"line1\nline2");
    feed.write_all(b"xyz").await.unwrap();
    assert_eq!(r.read(2).await.unwrap(), b"xy");
    drop(feed);
    assert_eq!(r.read(2).await.unwrap(), b"z");
    assert_eq!(r.read(2).await.unwrap(), b"");
    assert!(r.at_eof());
}

/// test_streams.py::StreamTests::test_read_limit: the limit does not cap read(n)
#[tokio::test]
async fn read_is_not_capped_by_the_limit() {
    let mut r = reader_of(b"chunk", 3);
    assert_eq!(r.read(5).await.unwrap(), b"chunk");
}

/// test_streams.py::StreamTests::test_read_until_eof
#[tokio::test]
async fn read_to_end_reads_everything_whatever_the_limit() {
    let data: &'static [u8] = Box::leak(vec![b'z'; 300_000].into_boxed_slice());
    let mut r = reader_of(data, 16);
    assert_eq!(r.read_to_end().await.unwrap().len(), 300_000);
    assert!(r.at_eof());
}

/// test_streams.py::StreamTests::test_readline, test_readline_eof,
/// test_readline_empty_eof
#[tokio::test]
async fn readline_returns_lines_then_the_partial_last_line_then_nothing() {
    let (a, mut feed) = tokio::io::duplex(1024);
    let mut r = StreamReader::new(a);
    feed.write_all(b"chunk1 ").await.unwrap();
    let pending = tokio::spawn(async move {
        let line = r.readline().await.unwrap();
        (r, line)
    });
    feed.write_all(b"chunk2 chunk3\nchunk4").await.unwrap();
    let (mut r, line) = pending.await.unwrap();
    assert_eq!(line, b"chunk1 chunk2 chunk3\n");
    drop(feed);
    assert_eq!(r.readline().await.unwrap(), b"chunk4");
    assert_eq!(r.readline().await.unwrap(), b"");
    assert!(r.at_eof());
}

/// test_streams.py::StreamTests::test_readline_limit_with_existing_data,
/// test_readline_limit: too long a line is an error and is thrown away
#[tokio::test]
async fn readline_over_the_limit_fails_and_discards_that_line() {
    let mut r = reader_of(b"1234567\nline2\n", 5);
    let err = r.readline().await.unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    assert!(
        err.to_string().contains("chunk is longer than limit"),
        "{err}"
    );
    assert_eq!(r.readline().await.unwrap(), b"line2\n");

    // A line of exactly `limit` bytes plus its newline is accepted.
    let mut r = reader_of(b"abc\n", 3);
    assert_eq!(r.readline().await.unwrap(), b"abc\n");
}

/// test_streams.py::StreamTests::test_readuntil_separator,
/// test_readuntil_multi_chunks
#[tokio::test]
async fn readuntil_returns_data_through_a_multi_byte_separator_across_chunks() {
    let (a, mut feed) = tokio::io::duplex(1024);
    let mut r = StreamReader::new(a);
    let task = tokio::spawn(async move { (r.readuntil(b"AAA").await.unwrap(), r) });
    feed.write_all(b"lineAA").await.unwrap();
    tokio::task::yield_now().await;
    feed.write_all(b"Aafter").await.unwrap();
    let (got, mut r) = task.await.unwrap();
    assert_eq!(got, b"lineAAA");
    assert_eq!(r.buffered(), b"after");
    assert_eq!(r.read(10).await.unwrap(), b"after");
}

/// test_streams.py::StreamTests::test_readuntil_eof
#[tokio::test]
async fn readuntil_at_eof_gives_the_partial_bytes_with_no_expected_count() {
    let mut r = reader_of(b"some dataAA", 1024);
    let ReadUntilError::IncompleteRead(e) = r.readuntil(b"AAA").await.unwrap_err() else {
        panic!("expected IncompleteRead");
    };
    assert_eq!(e.partial(), b"some dataAA");
    assert_eq!(e.expected(), None);
    assert_eq!(
        e.to_string(),
        "11 bytes read on a total of undefined expected bytes"
    );
    assert_eq!(r.buffered(), b"");
}

/// test_streams.py::StreamTests::test_readuntil_limit_found_sep: the data
/// stays in the buffer on a limit overrun
#[tokio::test]
async fn readuntil_over_the_limit_leaves_the_data_in_the_buffer() {
    let mut r = reader_of(b"some dataAAA", 3);
    let ReadUntilError::LimitOverrun(e) = r.readuntil(b"AAA").await.unwrap_err() else {
        panic!("expected LimitOverrun");
    };
    assert_eq!(
        e.to_string(),
        "Separator is found, but chunk is longer than limit"
    );
    assert_eq!(r.buffered(), b"some dataAAA");

    let (a, mut feed) = tokio::io::duplex(1024);
    let mut r = StreamReader::new(a).with_limit(3);
    feed.write_all(b"no separator here").await.unwrap();
    let ReadUntilError::LimitOverrun(e) = r.readuntil(b"\n").await.unwrap_err() else {
        panic!("expected LimitOverrun");
    };
    assert_eq!(
        e.to_string(),
        "Separator is not found, and chunk exceed the limit"
    );
    assert_eq!(r.buffered(), b"no separator here");
    let io: io::Error = ReadUntilError::LimitOverrun(e).into();
    assert_eq!(io.kind(), io::ErrorKind::InvalidData);
}

/// test_streams.py::StreamTests::test_readexactly, test_readexactly_limit,
/// test_readexactly_zero_or_less
#[tokio::test]
async fn readexactly_waits_for_n_bytes_whatever_the_limit() {
    let (a, mut feed) = tokio::io::duplex(1024);
    let mut r = StreamReader::new(a).with_limit(3);
    assert_eq!(r.readexactly(0).await.unwrap(), b"");
    let task = tokio::spawn(async move { (r.readexactly(12).await.unwrap(), r) });
    for chunk in [&b"chunk"[..], b"chunk", b"chunk"] {
        feed.write_all(chunk).await.unwrap();
        tokio::task::yield_now().await;
    }
    let (got, r) = task.await.unwrap();
    assert_eq!(got, b"chunkchunkch");
    assert_eq!(r.buffered(), b"unk");
}

/// test_streams.py::StreamTests::test_readexactly_eof
#[tokio::test]
async fn readexactly_at_eof_gives_the_partial_bytes_and_the_expected_count() {
    let data: &'static [u8] = b"chunk-of-18-bytes!";
    let mut r = reader_of(data, 1024);
    let e = r.readexactly(36).await.unwrap_err();
    assert_eq!(e.partial(), data);
    assert_eq!(e.expected(), Some(36));
    assert_eq!(
        e.to_string(),
        "18 bytes read on a total of 36 expected bytes"
    );
    assert_eq!(r.buffered(), b"");
}

/// test_streams.py::StreamTests::test_at_eof
#[tokio::test]
async fn at_eof_only_once_eof_was_seen_and_the_buffer_is_empty() {
    let (a, mut feed) = tokio::io::duplex(1024);
    let mut r = StreamReader::new(a);
    assert!(!r.at_eof());
    feed.write_all(b"some data\n").await.unwrap();
    drop(feed);
    assert_eq!(r.readline().await.unwrap(), b"some data\n");
    assert!(!r.at_eof()); // the end is seen by a read
    assert_eq!(r.readline().await.unwrap(), b"");
    assert!(r.at_eof());
}

/// test_streams.py::StreamTests::test_async_for (asyncio's `async for line in reader`)
#[tokio::test]
async fn lines_yields_every_line_until_eof() {
    let mut r = reader_of(b"line1\nline2\nline3", 1024);
    let lines: Vec<Vec<u8>> = r.lines().map(Result::unwrap).collect().await;
    assert_eq!(lines, [&b"line1\n"[..], b"line2\n", b"line3"]);
}

/// test_streams.py::StreamTests::test_invalid_limit
#[test]
#[should_panic(expected = "Limit cannot be <= 0")]
fn a_zero_limit_is_refused() {
    let _ = StreamReader::new(tokio::io::empty()).with_limit(0);
}

// ---------------------------------------------------------- cancel safety

/// test_streams.py::StreamTests::test_exception_cancel: a read dropped while
/// waiting loses no byte
#[tokio::test]
async fn a_dropped_readexactly_loses_no_byte() {
    let (a, mut feed) = tokio::io::duplex(1024);
    let mut r = StreamReader::new(a);
    feed.write_all(b"abc").await.unwrap();
    // Dropped while waiting for the last two bytes (it has read "abc").
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    stop.send(()).unwrap();
    tokio::select! {
        biased;
        _ = r.readexactly(5) => panic!("only three bytes were sent"),
        _ = stopped => {}
    }
    // Make sure the first poll did read "abc" into the reader.
    assert!(r.readexactly(5).now_or_never().is_none());
    assert_eq!(r.buffered(), b"abc");
    feed.write_all(b"de").await.unwrap();
    assert_eq!(r.readexactly(5).await.unwrap(), b"abcde");
}

/// test_streams.py::StreamTests::test_exception_cancel, on a real socket and
/// through a timeout: readline, readuntil and readexactly dropped mid-way
/// lose nothing
#[test]
fn reads_cancelled_by_a_timeout_on_a_socket_lose_no_byte() {
    rt().block_on(async {
        let (mut reader, _writer, mut peer) = connected().await;
        // Half lines, with pauses: every read below times out mid-way.
        tokio::spawn(async move {
            for part in [&b"hel"[..], b"lo\nwor", b"ld;12", b"345"] {
                peer.write_all(part).await.unwrap();
                tokio::time::sleep(Duration::from_millis(30)).await;
            }
        });
        let mut lines = Vec::new();
        loop {
            match asyncio::wait_for(reader.readline(), 0.005).await {
                Ok(line) => {
                    lines.push(line.unwrap());
                    break;
                }
                Err(e) => assert!(e.is_timeout()),
            }
        }
        let until = loop {
            if let Ok(r) =
                tokio::time::timeout(Duration::from_millis(5), reader.readuntil(b";")).await
            {
                break r.unwrap();
            }
        };
        let exact = loop {
            if let Ok(r) =
                tokio::time::timeout(Duration::from_millis(5), reader.readexactly(5)).await
            {
                break r.unwrap();
            }
        };
        assert_eq!(lines, [b"hello\n".to_vec()]);
        assert_eq!(until, b"world;");
        assert_eq!(exact, b"12345");
    });
}

// ------------------------------------------------------------ connections

/// test_streams.py::StreamTests::test_open_connection
#[test]
fn open_connection_gives_a_reader_and_a_writer_over_tcp() {
    rt().block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (s, _) = listener.accept().await.unwrap();
            let (r, w) = s.into_split();
            let mut r = StreamReader::new(r);
            let w = StreamWriter::new(w);
            let line = r.readline().await.unwrap();
            w.write(&line);
            w.drain().await.unwrap();
        });
        let (mut reader, writer) = asyncio::open_connection("127.0.0.1", addr.port())
            .await
            .unwrap();
        assert_eq!(writer.peer_addr(), Some(addr));
        assert!(writer.local_addr().unwrap().ip().is_loopback());
        writer.write(b"GET / HTTP/1.0\r\n\r\n\n");
        assert_eq!(reader.readline().await.unwrap(), b"GET / HTTP/1.0\r\n");
        server.await.unwrap();
        // The server echoed one line and closed.
        assert_eq!(reader.read_to_end().await.unwrap(), b"");
        assert!(reader.at_eof());
    });
}

/// test_streams.py::StreamTests::test_open_unix_connection
#[test]
fn open_unix_connection_gives_a_reader_and_a_writer() {
    rt().block_on(async {
        let path = socket_path("open");
        let listener = tokio::net::UnixListener::bind(&path).unwrap();
        let server = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            s.write_all(b"from unix\n").await.unwrap();
        });
        let (mut reader, _writer) = asyncio::open_unix_connection(&path).await.unwrap();
        assert_eq!(reader.readline().await.unwrap(), b"from unix\n");
        server.await.unwrap();
        std::fs::remove_file(&path).unwrap();
    });
}

/// test_streams.py::StreamTests::test_open_connection_error: bad input is a
/// clear error naming what failed
#[test]
fn connection_errors_name_the_host_the_port_or_the_path() {
    rt().block_on(async {
        let err = asyncio::open_connection("nosuch-host.invalid", 80)
            .await
            .unwrap_err();
        assert!(err.to_string().contains("nosuch-host.invalid"), "{err}");

        // A port nobody listens on: bind one, note it, release it.
        let port = TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let err = asyncio::open_connection("127.0.0.1", port)
            .await
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::ConnectionRefused);
        assert!(
            err.to_string().contains(&format!("127.0.0.1:{port}")),
            "{err}"
        );

        // A path that is not a socket.
        let path = socket_path("not-a-socket");
        std::fs::write(&path, b"plain file").unwrap();
        let err = asyncio::open_unix_connection(&path).await.unwrap_err();
        assert!(
            err.to_string().contains(&path.display().to_string()),
            "{err}"
        );
        std::fs::remove_file(&path).unwrap();
        let err = asyncio::open_unix_connection(&path).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
        assert!(
            err.to_string().contains(&path.display().to_string()),
            "{err}"
        );
    });
}

/// test_streams.py::StreamTests::test_read_exception, test_readline_exception,
/// test_readexactly_exception: a reset is reported as an error, never as EOF
#[test]
fn a_reset_connection_is_an_error_not_an_eof() {
    rt().block_on(async {
        let (mut reader, _writer, mut peer) = connected().await;
        peer.write_all(b"partial").await.unwrap();
        #[allow(deprecated)]
        peer.set_linger(Some(Duration::ZERO)).unwrap();
        drop(peer); // RST
        let e = reader.readexactly(100).await.unwrap_err();
        let io = e.io_error().expect("the reset is carried");
        assert_eq!(io.kind(), io::ErrorKind::ConnectionReset);
        // Every later read reports it too.
        assert_eq!(
            reader.readline().await.unwrap_err().kind(),
            io::ErrorKind::ConnectionReset
        );
        assert!(reader.exception().is_some());
    });
}

// ---------------------------------------------------------------- writing

/// test_streams.py::StreamTests::test_multiple_drain (asyncio's flow
/// control): drain waits above 64 KiB, resumes at 16 KiB, wakes every drainer
#[test]
fn drain_waits_above_the_high_water_mark_and_wakes_every_drainer() {
    rt().block_on(async {
        let (a, b) = tokio::io::duplex(1024);
        let w = StreamWriter::new(a);
        w.write(&[1u8; 1000]);
        w.drain().await.unwrap(); // under the mark: at once
        w.write(&vec![2u8; 100 * 1024]);
        let (d1, d2) = (w.drain(), w.drain());
        tokio::pin!(d1, d2);
        assert!(futures::poll!(d1.as_mut()).is_pending());
        assert!(futures::poll!(d2.as_mut()).is_pending());
        // The peer reads: both drainers finish.
        let mut r = StreamReader::new(b);
        let reading =
            tokio::spawn(async move { r.readexactly(101 * 1024 - 24).await.unwrap().len() });
        d1.await.unwrap();
        d2.await.unwrap();
        assert_eq!(reading.await.unwrap(), 101 * 1024 - 24);
    });
}

/// test_streams.py::StreamTests::test_drain_raises: a write/drain loop
/// against a closed peer ends with the error
#[test]
fn drain_reports_a_reset_connection() {
    rt().block_on(async {
        let (_reader, writer, peer) = connected().await;
        #[allow(deprecated)]
        peer.set_linger(Some(Duration::ZERO)).unwrap();
        drop(peer);
        let err = loop {
            writer.write(&[0u8; 64 * 1024]);
            if let Err(e) = writer.drain().await {
                break e;
            }
            tokio::task::yield_now().await;
        };
        assert!(
            matches!(
                err.kind(),
                io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe
            ),
            "{err:?}"
        );
        assert!(writer.is_closing());
        assert!(writer.wait_closed().await.is_err());
    });
}

/// test_streams.py::StreamTests::test_wait_closed_on_close,
/// test_eof_feed_when_closing_writer: closing the writer closes the whole
/// connection; the reader is then at EOF
#[test]
fn closing_the_writer_closes_the_connection_and_the_reader_sees_eof() {
    rt().block_on(async {
        let (mut reader, writer, peer) = connected().await;
        let mut peer = StreamReader::new(peer);
        writer.write(b"bye");
        assert!(!writer.is_closing());
        writer.close();
        assert!(writer.is_closing());
        writer.wait_closed().await.unwrap();
        assert!(reader.at_eof());
        assert_eq!(reader.read(10).await.unwrap(), b"");
        // The peer got the bytes, then the end.
        assert_eq!(peer.read_to_end().await.unwrap(), b"bye");
        // A drain after the close reports the lost connection.
        assert_eq!(
            writer.drain().await.unwrap_err().kind(),
            io::ErrorKind::ConnectionReset
        );
    });
}

/// test_streams.py::StreamTests::test_wait_closed_on_close_with_unread_data
#[test]
fn wait_closed_returns_with_unread_data() {
    rt().block_on(async {
        let (_reader, writer, mut peer) = connected().await;
        peer.write_all(b"never read\n").await.unwrap();
        writer.close();
        writer.wait_closed().await.unwrap();
    });
}

/// write_eof is a half-close: the peer reads the end and can still answer
/// (no CPython test; source `selector_events._SelectorSocketTransport.write_eof`)
#[test]
fn write_eof_half_closes_and_the_answer_still_comes() {
    rt().block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = tokio::spawn(async move {
            let (s, _) = listener.accept().await.unwrap();
            let (r, w) = s.into_split();
            let data = StreamReader::new(r).read_to_end().await.unwrap();
            let w = StreamWriter::new(w);
            w.write(format!("got {} bytes", data.len()).as_bytes());
            w.close();
            w.wait_closed().await.unwrap();
        });
        let (mut reader, writer) = asyncio::open_connection("127.0.0.1", port).await.unwrap();
        assert!(writer.can_write_eof());
        writer.write(b"0123456789");
        writer.write_eof();
        assert_eq!(reader.read_to_end().await.unwrap(), b"got 10 bytes");
        server.await.unwrap();
    });
}

#[test]
#[should_panic(expected = "Cannot call write() after write_eof()")]
fn write_after_write_eof_panics() {
    rt().block_on(async {
        let w = StreamWriter::new(tokio::io::sink());
        w.write_eof();
        w.write(b"late");
    });
}

/// `StreamReader`, `StreamWriter` and their futures are `Send` and `Debug`.
#[test]
fn stream_types_and_their_futures_are_send_and_debug() {
    fn send<T: Send>(_: &T) {}
    fn debug<T: std::fmt::Debug>() {}
    debug::<StreamReader>();
    debug::<StreamWriter>();
    debug::<asyncio::Server>();
    debug::<asyncio::Process>();
    rt().block_on(async {
        let mut r = StreamReader::new(tokio::io::empty());
        send(&r.readline());
        send(&r.readexactly(1));
        send(&r.readuntil(b"x"));
        send(&r.read(1));
        let w = StreamWriter::new(tokio::io::sink());
        send(&w.drain());
        send(&w.wait_closed());
        send(&asyncio::open_connection("127.0.0.1", 1));
    });
}

/// Writes sent at once and writes queued behind a full transport keep their
/// order, also from two threads (each thread's writes stay whole and in
/// order). No CPython test; source `selector_events._SelectorSocketTransport.write`.
#[test]
fn writes_keep_their_order_whether_sent_at_once_or_queued() {
    rt().block_on(async {
        let (a, b) = tokio::io::duplex(7); // a tiny transport: most writes queue
        let w = std::sync::Arc::new(StreamWriter::new(a));
        let mut r = StreamReader::new(b);
        let per_thread = 2000;
        let writers: Vec<_> = [b'a', b'b']
            .into_iter()
            .map(|tag| {
                let w = w.clone();
                std::thread::spawn(move || {
                    for i in 0..per_thread {
                        w.write(format!("{}{i:05}\n", tag as char).as_bytes());
                    }
                })
            })
            .collect();
        let reading = tokio::spawn(async move {
            let mut next = [0usize; 2];
            for _ in 0..2 * per_thread {
                let line = r.readline().await.unwrap();
                let line = std::str::from_utf8(&line).unwrap();
                let k = usize::from(line.starts_with('b'));
                assert_eq!(
                    line[1..].trim_end().parse::<usize>().unwrap(),
                    next[k],
                    "{line}"
                );
                next[k] += 1;
            }
            next
        });
        for t in writers {
            t.join().unwrap();
        }
        assert_eq!(reading.await.unwrap(), [per_thread, per_thread]);
    });
}
