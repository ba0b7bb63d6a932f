"""The ``beam`` package: Erlang values inside the embedded interpreter, and
the way back to Erlang.

Erlang atoms arrive as :class:`Atom` (a ``str`` subclass, so ordinary string
code keeps working), pids and references as the opaque, hashable
:class:`Pid` and :class:`Ref`. Returning any of them to Erlang gives back
the original term.

:func:`send` sends a message to an Erlang process, :func:`call` runs an
Erlang function and returns its result, :func:`self` is the Erlang process
whose call is running. :func:`register_encoder` and
:func:`register_decoder` add conversions of your own. :func:`share`,
:func:`ndarray` and :class:`Binary` pass byte data (numpy arrays too)
without a copy (see ``beam.buffers``).
"""

import sys as _sys
import threading as _threading

import _beam_native

from .buffers import Binary, share, ndarray

__all__ = [
    "Atom", "Pid", "Ref", "Interrupted", "ErlangError",
    "send", "call", "async_call", "self", "register_encoder", "register_decoder",
    "unregister_encoder", "unregister_decoder",
    "Binary", "share", "ndarray",
]


class Atom(str):
    """An Erlang atom. Make one on purpose (``Atom("ok")``) to return an
    atom to Erlang; plain ``str`` values come back as binaries."""

    __slots__ = ()

    def __repr__(self):
        return "Atom(%s)" % str.__repr__(self)


class _Opaque:
    """An Erlang term held in its external term format."""

    __slots__ = ("etf",)

    def __init__(self, etf):
        if not isinstance(etf, bytes):
            raise TypeError("%s wraps the bytes of an Erlang term" % type(self).__name__)
        self.etf = etf

    def __eq__(self, other):
        return type(other) is type(self) and other.etf == self.etf

    def __hash__(self):
        return hash((type(self).__name__, self.etf))

    def __repr__(self):
        return "<beam.%s %08x>" % (type(self).__name__, hash(self.etf) & 0xFFFFFFFF)

    def __reduce__(self):
        return (type(self), (self.etf,))


class Pid(_Opaque):
    """An Erlang process identifier."""

    __slots__ = ()


class Ref(_Opaque):
    """An Erlang reference."""

    __slots__ = ()


class Interrupted(BaseException):
    """Raised inside a worker whose caller timed out. A BaseException, so
    that ``except Exception`` in user code does not swallow it."""


class ErlangError(Exception):
    """An Erlang function called with :func:`call` raised.

    ``kind`` is the class (``Atom('error')``, ``'exit'`` or ``'throw'``)
    and ``reason`` the reason, converted to Python."""

    def __init__(self, kind, reason):
        super().__init__(kind, reason)
        self.kind = kind
        self.reason = reason

    def __str__(self):
        return "%s: %r" % (self.kind, self.reason)


def send(pid, term):
    """Sends ``term`` to the Erlang process ``pid`` (a :class:`Pid`).
    Works from any thread; returns False when the process is not alive."""
    return _beam_native.send(pid, term)


def call(module, function, args=(), timeout=5.0):
    """Runs ``module:function(*args)`` in a new Erlang process and returns
    its result. Raises :class:`ErlangError` when it raises, TimeoutError
    after ``timeout`` seconds (None waits for ever). The worker waits
    without holding the GIL."""
    return _beam_native.call(str(module), str(function), list(args), timeout)


def async_call(module, function, args=(), timeout=5.0):
    """``await beam.async_call(M, F, A)`` in a coroutine called from Erlang:
    as :func:`call`, without blocking py's event loop meanwhile."""
    from beam import _asyncio
    return _asyncio.async_call(module, function, args, timeout)


def self():
    """The Erlang process whose call this code runs for (in a coroutine
    called from Erlang too), or None outside a call (e.g. in a thread
    started by Python code)."""
    pid = _beam_native.self_pid()
    if pid is None:
        asyncio_part = _sys.modules.get("beam._asyncio")
        job = asyncio_part.current_job() if asyncio_part is not None else None
        if job is not None:
            return job.caller()
    return pid


# Conversions of your own: looked up only while some are registered.
_encoders = {}
_decoders = {}
_registry_lock = _threading.Lock()


def _changed():
    _beam_native.conversions_changed(bool(_encoders), bool(_decoders))


def register_encoder(python_type, function):
    """Objects of ``python_type`` (or a subclass) that would otherwise come
    back to Erlang as handles are converted by ``function(obj)``, whose
    result is converted in turn. Example: datetimes as
    ``{{Y, M, D}, {H, Mi, S}}``::

        beam.register_encoder(datetime.datetime, lambda d: (
            (d.year, d.month, d.day), (d.hour, d.minute, d.second)))
    """
    with _registry_lock:
        _encoders[python_type] = function
        _changed()


def unregister_encoder(python_type):
    with _registry_lock:
        _encoders.pop(python_type, None)
        _changed()


def register_decoder(tag, function):
    """Erlang tuples ``{Tag, A, B, ...}`` (``tag`` an atom name) are
    converted to ``function(a, b, ...)``, the elements converted first."""
    with _registry_lock:
        _decoders[str(tag)] = function
        _changed()


def unregister_decoder(tag):
    with _registry_lock:
        _decoders.pop(str(tag), None)
        _changed()


# Lazy iteration from Erlang (py:iter/next/fold/stream).

class _Stream:
    """Pulls items from an iterator in batches for Erlang. An exception
    raised after some items of a batch is kept and raised by the next
    ``take``, so that the items before it are delivered first."""

    __slots__ = ("_it", "_error", "_done", "produced")

    def __init__(self, iterable):
        self._it = iter(iterable)
        self._error = None
        self._done = False
        self.produced = 0

    def take(self, n):
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
                items.append(next(it))
        except StopIteration:
            self._done = True
        except BaseException as e:
            if not items:
                self._done = True
                raise
            self._error = e
        self.produced += len(items)
        return items, self._done

    def close(self):
        """Closes a generator (its ``finally`` blocks run)."""
        self._done = True
        close = getattr(self._it, "close", None)
        if close is not None:
            close()


def _is_async_iterable(obj):
    t = type(obj)
    return hasattr(t, "__aiter__") and not hasattr(t, "__iter__")


def _stream(iterable):
    if _is_async_iterable(iterable):
        from beam import _asyncio
        return _asyncio.AsyncStream(iterable)
    return _Stream(iterable)


def _next(it):
    """``(Atom('ok'), item)`` or ``Atom('done')`` (a coroutine giving
    them, awaited on py's loop, for an async iterator)."""
    if hasattr(type(it), "__anext__") and not hasattr(type(it), "__next__"):
        from beam import _asyncio
        return _asyncio.anext_item(it)
    try:
        return (Atom("ok"), next(it))
    except StopIteration:
        return Atom("done")
