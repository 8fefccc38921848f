# The Python twin of pipeline.rs: producers, a bounded asyncio.Queue,
# workers in a TaskGroup, join(), then shutdown() (Python 3.13).
#
#     python3.13 examples/pipeline.py
import asyncio

COSTS_MS = [34, 49, 42, 51, 27, 12, 55, 57, 23, 37]


async def producer(p, queue, log):
    for i in range(5):
        job = p * 5 + i
        await queue.put(job)
        log.append(f"producer-{p} put job {job}")


async def worker(w, queue, log):
    while True:
        try:
            job = await queue.get()
        except asyncio.QueueShutDown:
            log.append(f"worker-{w} stops: queue shut down")
            return
        cost = COSTS_MS[job]
        await asyncio.sleep(cost / 1000)
        log.append(f"worker-{w} did job {job} in {cost} ms")
        queue.task_done()


async def main():
    log = []
    queue = asyncio.Queue(maxsize=3)
    async with asyncio.TaskGroup() as tg:
        for w in range(3):
            tg.create_task(worker(w, queue, log))
        producers = [asyncio.create_task(producer(p, queue, log)) for p in range(2)]
        await asyncio.gather(*producers)
        await queue.join()
        log.append("all jobs done")
        queue.shutdown()
    print("\n".join(log))


asyncio.run(main())
