//! An existing Tokio service, made inspectable: a TCP echo server on
//! 127.0.0.1 (an ephemeral port) whose connection handlers are spawned with
//! plain `tokio::spawn`, as the service always did, then adopted as named
//! tasks of ours: listed by `asyncio::all_tasks()`, cancellable, with done
//! callbacks. No `asyncio::run`: this is an ordinary `#[tokio::main]`.
//!
//! The example connects a few clients, lists the tasks, cancels the
//! connections (the clients see the server hang up) and exits.
//!
//! Run it with `cargo run --example wrap_tokio_service`.

use std::io;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// The service's connection handler: untouched Tokio code.
async fn echo(mut stream: TcpStream) -> io::Result<u64> {
    let (mut reader, mut writer) = stream.split();
    tokio::io::copy(&mut reader, &mut writer).await
}

/// The service's accept loop; the only new line adopts each handler.
async fn serve(listener: TcpListener) -> io::Result<()> {
    loop {
        let (stream, peer) = listener.accept().await?;
        let handler = tokio::spawn(echo(stream)); // as before
        let task = asyncio::Task::builder()
            .name(format!("conn {peer}"))
            .wrap(handler); // new: a named, listed, cancellable task
        task.add_done_callback(|t| {
            let end = if t.cancelled() {
                "cancelled"
            } else {
                "finished"
            };
            println!("server: {} {end}", t.get_name());
        });
    }
}

fn connection_tasks() -> Vec<asyncio::TaskRef> {
    let mut conns: Vec<_> = asyncio::all_tasks()
        .into_iter()
        .filter(|t| t.get_name().starts_with("conn "))
        .collect();
    conns.sort_by_key(|t| t.id());
    conns
}

#[tokio::main]
async fn main() -> io::Result<()> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    println!("echo server on {addr}");
    let server = asyncio::Task::builder()
        .name("acceptor")
        .spawn(serve(listener));

    // A few clients: each says hello and keeps its connection open.
    let mut clients = Vec::new();
    for i in 0..3 {
        let stream = TcpStream::connect(addr).await?;
        let (reader, mut writer) = stream.into_split();
        let mut reader = BufReader::new(reader);
        writer
            .write_all(format!("hello from client {i}\n").as_bytes())
            .await?;
        let mut line = String::new();
        reader.read_line(&mut line).await?;
        print!("client {i} got back: {line}");
        clients.push((i, reader, writer));
    }

    // The handlers are tasks now: list them.
    while connection_tasks().len() < 3 {
        asyncio::sleep(0.001).await;
    }
    println!("tasks of this runtime:");
    let mut all: Vec<_> = asyncio::all_tasks();
    all.sort_by_key(|t| t.id());
    for t in &all {
        println!("  {}", t.get_name());
    }

    // Shut the connections down from outside: cancel aborts each handler.
    for t in connection_tasks() {
        t.cancel();
    }
    for (i, mut reader, _writer) in clients {
        let mut line = String::new();
        let n = reader.read_line(&mut line).await?;
        assert_eq!(n, 0, "the server closed the connection");
        println!("client {i}: server hung up");
    }
    while !connection_tasks().is_empty() {
        asyncio::sleep(0.001).await;
    }

    server.cancel();
    assert!(server.await.unwrap_err().is_cancelled());
    println!("acceptor cancelled; bye");
    Ok(())
}
