//! Streams against raw Tokio, same process, interleaved A/B rounds,
//! medians and ratios printed:
//!
//! - echo throughput over loopback, 1 client (64 MiB) and 100 clients
//!   (1 MiB each): `start_server` / `open_connection` / `StreamReader::read`
//!   / `StreamWriter::write` + `drain` vs `tokio::net::TcpStream` halves
//!   with `BufReader` / `BufWriter`;
//! - `readline` over a 100 MiB in-memory stream of 80-byte lines vs
//!   `tokio::io::AsyncBufReadExt::read_line`.
//!
//! `cargo bench --bench streams`

use std::hint::black_box;
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader, BufWriter};
use tokio::net::{TcpListener, TcpStream};
use tokio::runtime::Runtime;

const CHUNK: usize = 64 * 1024;

#[path = "spawn_common/mod.rs"]
mod spawn_common;

// ------------------------------------------------------------- echo: ours

async fn ours_echo_handler(mut reader: asyncio::StreamReader, writer: asyncio::StreamWriter) {
    loop {
        let data = reader.read(CHUNK).await.unwrap();
        if data.is_empty() {
            return;
        }
        writer.write(&data);
        if writer.drain().await.is_err() {
            return;
        }
    }
}

async fn ours_client(port: u16, total: usize) {
    let (mut reader, writer) = asyncio::open_connection("127.0.0.1", port).await.unwrap();
    let sender = tokio::spawn(async move {
        let chunk = vec![7u8; CHUNK];
        let mut sent = 0;
        while sent < total {
            writer.write(&chunk[..CHUNK.min(total - sent)]);
            writer.drain().await.unwrap();
            sent += CHUNK.min(total - sent);
        }
        writer
    });
    let mut got = 0;
    while got < total {
        got += black_box(reader.read(CHUNK).await.unwrap()).len();
    }
    let writer = sender.await.unwrap();
    writer.close();
    writer.wait_closed().await.unwrap();
}

async fn ours_echo(clients: usize, each: usize) {
    let server = asyncio::start_server(ours_echo_handler, "127.0.0.1", 0)
        .await
        .unwrap();
    let port = server.sockets()[0].port();
    let handles: Vec<_> = (0..clients)
        .map(|_| tokio::spawn(ours_client(port, each)))
        .collect();
    for h in handles {
        h.await.unwrap();
    }
    server.close();
    server.wait_closed().await;
}

// -------------------------------------------------------------- echo: raw

async fn raw_echo_conn(stream: TcpStream) {
    stream.set_nodelay(true).unwrap();
    let (r, w) = stream.into_split();
    let mut r = BufReader::with_capacity(CHUNK, r);
    let mut w = BufWriter::with_capacity(CHUNK, w);
    loop {
        let buf = r.fill_buf().await.unwrap();
        if buf.is_empty() {
            return;
        }
        let n = buf.len();
        w.write_all(buf).await.unwrap();
        r.consume(n);
        w.flush().await.unwrap();
    }
}

async fn raw_client(port: u16, total: usize) {
    let stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    stream.set_nodelay(true).unwrap();
    let (r, w) = stream.into_split();
    let sender = tokio::spawn(async move {
        let mut w = BufWriter::with_capacity(CHUNK, w);
        let chunk = vec![7u8; CHUNK];
        let mut sent = 0;
        while sent < total {
            w.write_all(&chunk[..CHUNK.min(total - sent)])
                .await
                .unwrap();
            sent += CHUNK.min(total - sent);
        }
        w.flush().await.unwrap();
        w.shutdown().await.unwrap();
    });
    let mut r = BufReader::with_capacity(CHUNK, r);
    let mut buf = vec![0u8; CHUNK];
    let mut got = 0;
    while got < total {
        got += black_box(r.read(&mut buf).await.unwrap());
    }
    sender.await.unwrap();
}

async fn raw_echo(clients: usize, each: usize) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let accept = tokio::spawn(async move {
        let mut conns = Vec::new();
        for _ in 0..clients {
            let (s, _) = listener.accept().await.unwrap();
            conns.push(tokio::spawn(raw_echo_conn(s)));
        }
        for c in conns {
            c.await.unwrap();
        }
    });
    let handles: Vec<_> = (0..clients)
        .map(|_| tokio::spawn(raw_client(port, each)))
        .collect();
    for h in handles {
        h.await.unwrap();
    }
    accept.await.unwrap();
}

// --------------------------------------------------------------- readline

fn lines_100mib() -> &'static [u8] {
    let line = b"0123456789 the quick brown fox jumps over the lazy dog 0123456789 abcdefghijklm\n";
    assert_eq!(line.len(), 80);
    let n = (100 << 20) / line.len();
    Box::leak(line.repeat(n).into_boxed_slice())
}

async fn ours_readline(data: &'static [u8]) -> usize {
    let mut r = asyncio::StreamReader::new(data);
    let mut count = 0;
    loop {
        let line = r.readline().await.unwrap();
        if line.is_empty() {
            return count;
        }
        count += black_box(line).len();
    }
}

async fn raw_read_line(data: &'static [u8]) -> usize {
    let mut r = BufReader::new(data);
    let mut line = String::new();
    let mut count = 0;
    loop {
        line.clear();
        let n = r.read_line(&mut line).await.unwrap();
        if n == 0 {
            return count;
        }
        count += black_box(&line).len();
    }
}

// ------------------------------------------------------------------ driver

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn interleaved(
    title: &str,
    bytes: usize,
    rounds: usize,
    rt: &Runtime,
    work: &dyn Fn(bool) -> Duration,
) {
    let (mut ours, mut raw) = (Vec::new(), Vec::new());
    work(true);
    work(false);
    for _ in 0..rounds {
        ours.push(work(true));
        raw.push(work(false));
    }
    let _ = rt;
    let (o, r) = (median(ours), median(raw));
    let mib = bytes as f64 / (1 << 20) as f64;
    println!(
        "{title:<34} ours {:>8.1} ms ({:>7.0} MiB/s)   raw {:>8.1} ms ({:>7.0} MiB/s)   ours/raw {:.2}x",
        o.as_secs_f64() * 1e3,
        mib / o.as_secs_f64(),
        r.as_secs_f64() * 1e3,
        mib / r.as_secs_f64(),
        o.as_secs_f64() / r.as_secs_f64()
    );
}

fn main() {
    // `cargo bench` passes `--bench`; a filter argument selects workloads.
    let filter: Option<String> = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    let wants = |name: &str| filter.as_deref().is_none_or(|f| name.contains(f));
    let rounds = 7;
    let rt = spawn_common::runtime(spawn_common::Flavor::Multi);
    println!("streams vs raw Tokio ({rounds} interleaved rounds, medians; 2 worker threads)");
    if wants("echo_1") {
        let each = 64 << 20;
        interleaved("echo, 1 client x 64 MiB", each, rounds, &rt, &|ours| {
            let t = Instant::now();
            if ours {
                rt.block_on(ours_echo(1, each));
            } else {
                rt.block_on(raw_echo(1, each));
            }
            t.elapsed()
        });
    }
    if wants("echo_100") {
        let each = 1 << 20;
        interleaved(
            "echo, 100 clients x 1 MiB",
            100 * each,
            rounds,
            &rt,
            &|ours| {
                let t = Instant::now();
                if ours {
                    rt.block_on(ours_echo(100, each));
                } else {
                    rt.block_on(raw_echo(100, each));
                }
                t.elapsed()
            },
        );
    }
    if wants("readline") {
        let data = lines_100mib();
        interleaved(
            "readline, 100 MiB of 80-byte lines",
            data.len(),
            rounds,
            &rt,
            &|ours| {
                let t = Instant::now();
                let n = if ours {
                    rt.block_on(ours_readline(data))
                } else {
                    rt.block_on(raw_read_line(data))
                };
                assert_eq!(n, data.len());
                t.elapsed()
            },
        );
    }
}
