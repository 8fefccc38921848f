//! The TCP echo server and client of Python's asyncio streams
//! documentation, in Rust. The Python is quoted above each function.
//!
//! `cargo run --example echo` starts the server on a free port, runs the
//! client against it, and stops the server.

// async def handle_echo(reader, writer):
//     data = await reader.read(100)
//     message = data.decode()
//     addr = writer.get_extra_info('peername')
//
//     print(f"Received {message!r} from {addr!r}")
//
//     print(f"Send: {message!r}")
//     writer.write(data)
//     await writer.drain()
//
//     print("Close the connection")
//     writer.close()
//     await writer.wait_closed()
async fn handle_echo(mut reader: asyncio::StreamReader, writer: asyncio::StreamWriter) {
    let data = reader.read(100).await.unwrap();
    let message = String::from_utf8_lossy(&data);
    let addr = writer.peer_addr();

    println!("Received {message:?} from {addr:?}");

    println!("Send: {message:?}");
    writer.write(&data);
    writer.drain().await.unwrap();

    println!("Close the connection");
    writer.close();
    writer.wait_closed().await.unwrap();
}

// async def tcp_echo_client(message, port):
//     reader, writer = await asyncio.open_connection('127.0.0.1', port)
//
//     print(f'Send: {message!r}')
//     writer.write(message.encode())
//     await writer.drain()
//
//     data = await reader.read(100)
//     print(f'Received: {data.decode()!r}')
//
//     print('Close the connection')
//     writer.close()
//     await writer.wait_closed()
async fn tcp_echo_client(message: &str, port: u16) -> std::io::Result<()> {
    let (mut reader, writer) = asyncio::open_connection("127.0.0.1", port).await?;

    println!("Send: {message:?}");
    writer.write(message.as_bytes());
    writer.drain().await?;

    let data = reader.read(100).await?;
    println!("Received: {:?}", String::from_utf8_lossy(&data));

    println!("Close the connection");
    writer.close();
    writer.wait_closed().await
}

// async def main():
//     server = await asyncio.start_server(handle_echo, '127.0.0.1', 8888)
//     addrs = ', '.join(str(sock.getsockname()) for sock in server.sockets)
//     print(f'Serving on {addrs}')
//     async with server:
//         await server.serve_forever()
async fn main_async() -> std::io::Result<()> {
    // Port 0 instead of 8888: a free port, so the example always runs.
    let server = asyncio::start_server(handle_echo, "127.0.0.1", 0).await?;
    let addrs: Vec<String> = server.sockets().iter().map(|a| a.to_string()).collect();
    println!("Serving on {}", addrs.join(", "));
    let port = server.sockets()[0].port();

    // The documentation runs the client in another process; here it is a
    // task, and the server stops after it.
    let serving = {
        let server = server.clone();
        asyncio::create_task(async move { server.serve_forever().await })
    };
    tcp_echo_client("Hello World!", port).await?;
    server.close();
    serving
        .await
        .expect("serve_forever ends once the server is closed");
    Ok(())
}

fn main() -> std::io::Result<()> {
    asyncio::run(main_async())
}
