"""Python side of py_async_SUITE: coroutines, async generators."""

import asyncio
import contextvars
import resource
import sys
import time

import beam

_loop = None
_gate = None
produced = 0


async def double(x, delay=0.0):
    await asyncio.sleep(delay)
    return x * 2


async def boom(message):
    await asyncio.sleep(0)
    raise ValueError(message)


async def me():
    await asyncio.sleep(0)
    return beam.self()


async def guarded(pid, tag, seconds):
    """Sleeps; tells `pid` when it started, was cancelled, and that its
    finally ran."""
    beam.send(pid, (beam.Atom("started"), tag))
    try:
        await asyncio.sleep(seconds)
        return tag
    except asyncio.CancelledError:
        beam.send(pid, (beam.Atom("cancelled"), tag))
        raise
    except BaseException as e:
        beam.send(pid, (beam.Atom("other"), (tag, type(e).__name__, str(e))))
        raise
    finally:
        beam.send(pid, (beam.Atom("finally"), tag))


async def wait_gate():
    """Waits until open_gate() is called (from a plain call, on a worker)."""
    global _loop, _gate
    _loop = asyncio.get_running_loop()
    if _gate is None:
        _gate = asyncio.Event()
    await _gate.wait()
    return beam.Atom("through")


def gate_waiters():
    return 0 if _gate is None else len(_gate._waiters)


def open_gate():
    """A synchronous function: runs on a worker, opens the gate on the loop."""
    global _gate
    gate, _gate = _gate, None
    _loop.call_soon_threadsafe(gate.set)
    return True


async def block_loop(pid, seconds):
    """Blocks the whole loop (time.sleep is not a coroutine)."""
    beam.send(pid, beam.Atom("blocking"))
    time.sleep(seconds)
    return time.monotonic()


async def stamp():
    return time.monotonic()


async def call_erlang(module, function, args, timeout=5.0):
    return await beam.async_call(module, function, args, timeout)


async def call_and_wait(pid, timeout=None):
    """Awaits an Erlang function that never returns (py_test_erl:report_and_wait)."""
    return await beam.async_call("py_test_erl", "report_and_wait", [pid], timeout)


async def cancel_at_once(pid, n):
    """n async_calls of report_and_wait, cancelled as soon as they are sent
    (most before their Erlang process starts the function)."""
    tasks = [asyncio.ensure_future(call_and_wait(pid)) for _ in range(n)]
    await asyncio.sleep(0)
    for task in tasks:
        task.cancel()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    return sum(isinstance(r, asyncio.CancelledError) for r in results)


async def erlang_error_of(module, function, args):
    try:
        await beam.async_call(module, function, args)
    except beam.ErlangError as e:
        return (e.kind, e.reason)


async def call_message(module, function, args, timeout=5.0):
    try:
        await beam.async_call(module, function, args, timeout)
    except Exception as e:
        return "%s: %s" % (type(e).__name__, e)


def async_call_outside_loop():
    try:
        beam.async_call("erlang", "node", []).send(None)
    except RuntimeError as e:
        return str(e)


async def make_task(value, delay):
    return asyncio.ensure_future(asyncio.sleep(delay, value))


async def make_future(value):
    fut = asyncio.get_running_loop().create_future()
    asyncio.get_running_loop().call_later(0.01, fut.set_result, value)
    return fut


class Awaitable:
    """Not a coroutine: an object with __await__."""

    def __init__(self, value):
        self.value = value

    def __await__(self):
        yield from asyncio.sleep(0.01).__await__()
        return self.value


def foreign_future():
    return asyncio.new_event_loop().create_future()


_fd_limit = None


def _connections():
    # Each round trip holds two descriptors of this OS process (the BEAM's
    # accepted socket and ours): stay well below the limit.
    global _fd_limit
    if _fd_limit is None:
        soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        _fd_limit = asyncio.Semaphore(max(16, min(2000, soft // 4)))
    return _fd_limit


async def echo(port, payload):
    payload = payload.encode()
    async with _connections():
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            writer.write(payload)
            await writer.drain()
            data = await reader.readexactly(len(payload))
        finally:
            writer.close()
            await writer.wait_closed()
    return data.decode()


async def count_to(n, pid=None):
    """An async generator; tells `pid` when its finally runs."""
    global produced
    produced = 0
    try:
        for i in range(1, n + 1):
            await asyncio.sleep(0)
            produced = i
            yield i
    finally:
        if pid is not None:
            beam.send(pid, (beam.Atom("agen_finally"), produced))


def get_produced():
    return produced


async def failing_agen(n):
    for i in range(n):
        yield i
    raise KeyError("agen")


async def stubborn(pid, tag):
    """Ignores its first cancellation."""
    beam.send(pid, (beam.Atom("started"), tag))
    try:
        await asyncio.sleep(60)
    except asyncio.CancelledError:
        beam.send(pid, (beam.Atom("ignored"), tag))
        await asyncio.sleep(60)


async def stuck(pid, tag, seconds):
    """Blocks the loop's thread in C code."""
    beam.send(pid, (beam.Atom("started"), tag))
    time.sleep(seconds)
    return tag


async def chatty(tag, n):
    """Prints n lines (stdout and stderr, a line split over awaits), an
    await between each; then one left unfinished."""
    for i in range(n):
        print("%s %d" % (tag, i))
        await asyncio.sleep(0)
        if i % 10 == 0:
            sys.stderr.write("%s err " % tag)
            await asyncio.sleep(0)
            sys.stderr.write("%d\n" % i)
    print("%s end" % tag, end="")
    return beam.Atom("done")


async def print_until_cancelled(pid, tag):
    """Prints until cancelled, then once more in its finally."""
    beam.send(pid, (beam.Atom("started"), tag))
    try:
        while True:
            print("tick", tag)
            await asyncio.sleep(0.001)
    finally:
        print("finally", tag)
        beam.send(pid, (beam.Atom("finally"), tag))


async def _late(text, pid):
    await asyncio.sleep(0.05)
    print(text)
    beam.send(pid, beam.Atom("late_printed"))


async def background_printers(pid):
    """Starts two tasks that print: one in a context of its own (no call's),
    one in this call's context that prints after the call was answered."""
    loop = asyncio.get_running_loop()
    loop.create_task(_late("no call's task", pid), context=contextvars.Context())
    loop.create_task(_late("after the answer", pid))
    print("in the call")
    await asyncio.sleep(0)
    return beam.Atom("ok")


async def print_then(value):
    await asyncio.sleep(0)
    print("x")
    return value


async def log_warning(text):
    import logging
    await asyncio.sleep(0)
    logging.getLogger("py_async_helpers").warning(text)
    return beam.Atom("logged")
