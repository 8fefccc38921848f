"""The Python twins of benches/streams.rs: CPython asyncio streams (and
uvloop when it is installed), same workloads, medians of 7 rounds.

    python benches/python/streams_bench.py
"""

import asyncio
import statistics
import sys
import time

CHUNK = 64 * 1024
ROUNDS = 7


async def handle_echo(reader, writer):
    while True:
        data = await reader.read(CHUNK)
        if not data:
            break
        writer.write(data)
        await writer.drain()
    writer.close()


async def client(port, total):
    reader, writer = await asyncio.open_connection("127.0.0.1", port)

    async def send():
        chunk = b"\x07" * CHUNK
        sent = 0
        while sent < total:
            n = min(CHUNK, total - sent)
            writer.write(chunk[:n])
            await writer.drain()
            sent += n

    sender = asyncio.create_task(send())
    got = 0
    while got < total:
        got += len(await reader.read(CHUNK))
    await sender
    writer.close()
    await writer.wait_closed()


async def echo(clients, each):
    server = await asyncio.start_server(handle_echo, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    await asyncio.gather(*(client(port, each) for _ in range(clients)))
    server.close()
    await server.wait_closed()


async def readline(data):
    # Fed 64 KiB at a time, as a transport would (feeding 100 MiB at once
    # makes every readline move the rest of the buffer).
    reader = asyncio.StreamReader()

    async def feed():
        for i in range(0, len(data), CHUNK):
            reader.feed_data(data[i : i + CHUNK])
            await asyncio.sleep(0)
        reader.feed_eof()

    feeder = asyncio.create_task(feed())
    count = 0
    while True:
        line = await reader.readline()
        if not line:
            await feeder
            return count
        count += len(line)


def measure(name, nbytes, make):
    samples = []
    for i in range(ROUNDS + 1):
        t = time.perf_counter()
        asyncio.run(make())
        if i:
            samples.append(time.perf_counter() - t)
    med = statistics.median(samples)
    print(f"{name:<40} {med * 1e3:9.1f} ms ({nbytes / (1 << 20) / med:7.0f} MiB/s)")


def main():
    line = b"0123456789 the quick brown fox jumps over the lazy dog 0123456789 abcdefghijklm\n"
    assert len(line) == 80
    data = line * ((100 << 20) // 80)
    loops = [("asyncio", None)]
    try:
        import uvloop

        loops.append(("uvloop", uvloop))
    except ImportError:
        print("(uvloop not installed: asyncio only)")
    print(f"Python {sys.version.split()[0]}, medians of {ROUNDS} rounds")
    for name, mod in loops:
        if mod is not None:
            asyncio.set_event_loop_policy(mod.EventLoopPolicy())
        measure(f"{name}: echo, 1 client x 64 MiB", 64 << 20, lambda: echo(1, 64 << 20))
        measure(f"{name}: echo, 100 clients x 1 MiB", 100 << 20, lambda: echo(100, 1 << 20))
        measure(f"{name}: readline, 100 MiB of 80-byte lines", len(data), lambda: readline(data))


if __name__ == "__main__":
    main()
