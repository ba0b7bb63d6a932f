"""py's asyncio event loop: the Python half of ``native/src/event_loop.rs``.

One OS thread (started by the NIF) runs :func:`_run`: an asyncio loop that
awaits the awaitables returned by calls from Erlang (coroutines, Tasks,
Futures, objects with ``__await__``), each in a Task of its own, and answers
each caller when its Task is done. The loop watches an ``eventfd`` (the
inbox): the NIF writes to it, without the GIL, when a worker hands over an
awaitable, when a caller timed out or died (its Task is cancelled), when an
Erlang function called with :func:`async_call` answered, and when py stops.

Inside such a coroutine, ``beam.self()`` is the Erlang caller,
``await beam.async_call(M, F, A)`` calls Erlang without blocking the loop,
and ``beam.send`` works as anywhere.
"""

import asyncio
import contextvars
import functools
import types

import _beam_native

__all__ = ["async_call", "current_job"]

_CoroutineType = types.CoroutineType

# The job whose Task runs (each Task has its own copy of the context).
_job = contextvars.ContextVar("beam_job", default=None)


def current_job():
    """The job of the Task running now on py's loop, or None."""
    return _job.get()


class _Loop:
    """One loop's state (a py restart starts a new loop, and the old one
    may still be finishing its tasks)."""

    def __init__(self, loop, inbox):
        self.loop = loop
        self.inbox = inbox
        self.tasks = {}      # job id -> (Task or Future, job)
        self.calls = {}      # async_call number -> Future
        self.stopping = False
        self.stop = loop.create_future()

    # -- the inbox ---------------------------------------------------------

    def drain(self):
        for kind, a, b in self.inbox.take():
            try:
                if kind == 0:
                    self.start(a, b)
                elif kind == 1:
                    entry = self.tasks.get(a)
                    if entry is not None:
                        entry[0].cancel()
                elif kind == 2:
                    fut = self.calls.pop(a, None)
                    if fut is not None and not fut.done():
                        ok, value = b
                        if ok:
                            fut.set_result(value)
                        else:
                            fut.set_exception(value)
                elif kind == 3:
                    if not self.stop.done():
                        self.stop.set_result(a)
            except BaseException as e:  # never let one event stop the loop
                self.loop.call_exception_handler({
                    "message": "py: event loop inbox", "exception": e})
        self.inbox.set_pending(len(self.tasks))

    def start(self, job, awaitable):
        if self.stopping:
            _close(awaitable)
            job.stopped()
            return
        if job.cancelled:
            # Its caller gave up (timed out, died) before the job got
            # here: its cancellation found no task.
            _close(awaitable)
            job.fail(asyncio.CancelledError())
            return
        try:
            context = contextvars.copy_context()
            context.run(_job.set, job)
            if type(awaitable) is _CoroutineType:
                task = self.loop.create_task(awaitable, context=context)
            elif asyncio.isfuture(awaitable):
                task = asyncio.ensure_future(awaitable, loop=self.loop)
            else:
                task = self.loop.create_task(_await(awaitable), context=context)
        except BaseException as e:
            _close(awaitable)
            job.fail(e)
            return
        self.tasks[job.id] = (task, job)
        task.add_done_callback(functools.partial(self.done, job))

    def done(self, job, task):
        self.tasks.pop(job.id, None)
        self.inbox.set_pending(len(self.tasks))
        if task.cancelled():
            if self.stopping:
                job.stopped()
            else:
                # Cancelled by Python code (or its caller, who no longer
                # waits for the answer).
                try:
                    task.result()
                except BaseException as e:
                    job.fail(e)
            return
        exc = task.exception()
        if exc is None:
            job.reply(task.result())
        else:
            job.fail(exc)

    # -- stopping ----------------------------------------------------------

    def finish(self, grace):
        """Cancels every task, gives them ``grace`` seconds (their
        ``finally`` blocks run), answers the callers of the rest."""
        self.stopping = True
        loop = self.loop
        pending = [task for task, _job in self.tasks.values()]
        for task in pending:
            task.cancel()
        if pending:
            loop.run_until_complete(asyncio.wait(pending, timeout=max(grace, 0.001)))
        # Tasks that ignored their cancellation (or still block): their
        # callers are answered now (a job answers once) and the tasks
        # abandoned.
        for task, job in list(self.tasks.values()):
            job.stopped()
            task._log_destroy_pending = False
        self.tasks.clear()
        for fut in self.calls.values():
            if not fut.done():
                fut.cancel()
        self.calls.clear()
        try:
            loop.run_until_complete(asyncio.wait_for(loop.shutdown_asyncgens(), max(grace, 0.1)))
        except BaseException:
            pass


async def _await(awaitable):
    return await awaitable


def _close(awaitable):
    if type(awaitable) is _CoroutineType:
        awaitable.close()


def _run(inbox):
    """The loop thread's body: runs until py stops the loop."""
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    state = _Loop(loop, inbox)
    loop._beam_state = state
    fd = inbox.fileno()
    loop.add_reader(fd, state.drain)
    try:
        grace = loop.run_until_complete(state.stop)
        state.finish(grace)
    finally:
        try:
            loop.remove_reader(fd)
        finally:
            asyncio.set_event_loop(None)
            loop.close()


def _state():
    loop = asyncio.get_running_loop()
    state = getattr(loop, "_beam_state", None)
    if state is None:
        raise RuntimeError("beam.async_call: only in a coroutine running on py's "
                           "event loop (one called from Erlang)")
    return loop, state


async def async_call(module, function, args=(), timeout=5.0):
    """``await beam.async_call(M, F, A)``: runs ``M:F(*A)`` in a new Erlang
    process and returns its result, without blocking the loop. Raises
    :class:`beam.ErlangError` when it raises, TimeoutError after
    ``timeout`` seconds (None waits for ever). Given up on (the timeout,
    or the task cancelled), the Erlang process running it is stopped
    (exit reason ``kill``)."""
    loop, state = _state()
    fut = loop.create_future()
    call = _beam_native.async_call(str(module), str(function), list(args), _job.get())
    number = call.id
    state.calls[number] = fut
    try:
        if timeout is None:
            return await fut
        return await asyncio.wait_for(fut, timeout)
    finally:
        state.calls.pop(number, None)
        if fut.cancelled() or not fut.done():
            # Given up (the task was cancelled, or the timeout): the
            # Erlang process running the function is stopped.
            call.cancel()


# Async iteration from Erlang (py:stream/fold/next on async iterables).

class AsyncStream:
    """As ``beam._Stream``, for an async iterable: ``take`` is a coroutine
    (awaited on the loop, like any awaitable result), ``close`` gives the
    ``aclose()`` coroutine of an async generator (its ``finally`` runs)."""

    __slots__ = ("_it", "_error", "_done", "produced")

    def __init__(self, aiterable):
        self._it = aiterable.__aiter__()
        self._error = None
        self._done = False
        self.produced = 0

    async def take(self, n):
        """Up to ``n`` items: ``(items, done)``."""
        if self._error is not None:
            error, self._error = self._error, None
            self._done = True
            raise error
        items = []
        if self._done:
            return items, True
        it = self._it
        try:
            for _ in range(n):
                items.append(await it.__anext__())
        except StopAsyncIteration:
            self._done = True
        except asyncio.CancelledError:
            self._done = True
            raise
        except BaseException as e:
            if not items:
                self._done = True
                raise
            self._error = e
        self.produced += len(items)
        return items, self._done

    def close(self):
        self._done = True
        aclose = getattr(self._it, "aclose", None)
        if aclose is not None:
            return aclose()
        return None


async def anext_item(it):
    """``(Atom('ok'), item)`` or ``Atom('done')``."""
    from beam import Atom
    try:
        return (Atom("ok"), await it.__anext__())
    except StopAsyncIteration:
        return Atom("done")
