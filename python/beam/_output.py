"""Where Python's output and logs go inside py.

py calls :func:`configure` at each start, with its settings ``stdout``,
``stderr`` (``caller``, ``logger`` or ``inherit``) and ``logging``
(``logger`` or ``inherit``):

* ``caller``: ``sys.stdout``/``sys.stderr`` are :class:`OutputStream`
  objects. What a call writes goes, a line at a time, to the Erlang process
  that made the call, which writes it to its group leader before the call
  returns. Writes from threads outside any call go to Erlang's ``logger``.
* ``logger``: every write goes to Erlang's ``logger``.
* ``inherit``: Python's own streams (the VM's file descriptors 1 and 2).

With ``logging`` set to ``logger``, a handler on the root logger sends
the records of Python's ``logging`` to Erlang's ``logger`` (levels mapped,
tracebacks included), the root logger's level follows the primary level of
Erlang's ``logger`` (so records it would drop are not even made), and
``warnings.showwarning`` sends warnings there too (once per location, as
Python's default filter decides).
"""

import io
import logging
import sys
import threading
import warnings

import _beam_native as _native

from beam import Atom

__all__ = ["OutputStream", "configure", "set_level"]

_STREAM_NAMES = ("<stdout>", "<stderr>")


class OutputStream(io.TextIOBase):
    """``sys.stdout`` or ``sys.stderr`` under py: text goes to the caller of
    the running call (``to_caller``), else to Erlang's ``logger``."""

    encoding = "utf-8"
    errors = "replace"
    newlines = None

    def __init__(self, stream, to_caller):
        super().__init__()
        self._stream = stream
        self._to_caller = to_caller
        self._buffer = _BinaryStream(self)

    @property
    def name(self):
        return _STREAM_NAMES[self._stream]

    @property
    def buffer(self):
        return self._buffer

    @property
    def line_buffering(self):
        return True

    def write(self, s):
        if not isinstance(s, str):
            raise TypeError("write() argument must be str, not %s" % type(s).__name__)
        if s:
            if not (self._to_caller and _native.output_write(self._stream, s)):
                _native.output_log(self._stream, s)
        return len(s)

    def flush(self):
        _native.output_flush()

    def writable(self):
        return True

    def isatty(self):
        return False

    def close(self):
        # Stays usable: the interpreter outlives whatever closed it.
        pass

    def __repr__(self):
        return "<beam._output.OutputStream %s>" % self.name


class _BinaryStream(io.RawIOBase):
    """``sys.stdout.buffer``: bytes, decoded as UTF-8."""

    def __init__(self, text):
        super().__init__()
        self._text = text

    def writable(self):
        return True

    def write(self, b):
        data = bytes(b)
        self._text.write(data.decode("utf-8", "replace"))
        return len(data)

    def flush(self):
        self._text.flush()

    def close(self):
        pass


def _stream_for(index, mode):
    if mode == "inherit":
        return sys.__stdout__ if index == 0 else sys.__stderr__
    return OutputStream(index, mode == "caller")


# Levels: Erlang's logger primary level -> the root logger's level, and
# Python levels -> logger levels (Python has no notice, alert, emergency).
_PY_LEVEL = {
    "all": 1, "debug": 1, "info": logging.INFO, "notice": 25,
    "warning": logging.WARNING, "error": logging.ERROR,
    "critical": logging.CRITICAL, "alert": logging.CRITICAL + 1,
    "emergency": logging.CRITICAL + 2, "none": logging.CRITICAL + 100,
}

_A = Atom
_LOG, _LOGGING, _WARNINGS = _A("log"), _A("logging"), _A("warnings")
_DEBUG, _INFO, _NOTICE = _A("debug"), _A("info"), _A("notice")
_WARNING, _ERROR, _CRITICAL = _A("warning"), _A("error"), _A("critical")
_K_LOGGER, _K_FILE, _K_LINE = _A("py_logger"), _A("file"), _A("line")
_K_FUNCTION, _K_THREAD, _K_CATEGORY = _A("py_function"), _A("py_thread"), _A("py_category")


def erlang_level(level):
    """The logger level of a Python level number."""
    if level >= logging.CRITICAL:
        return _CRITICAL
    if level >= logging.ERROR:
        return _ERROR
    if level >= logging.WARNING:
        return _WARNING
    if level >= 25:
        return _NOTICE
    if level >= logging.INFO:
        return _INFO
    return _DEBUG


def _thread_name(default):
    return _native.worker_name() or default


def _emit(event, fallback):
    """Sends ``event`` to the caller or to py's logger process; writes
    ``fallback`` to the process's stderr when py is not running."""
    if not _native.notify(event):
        err = sys.__stderr__
        if err is not None:
            err.write(fallback + "\n")
            err.flush()


class Handler(logging.Handler):
    """Sends records to Erlang's ``logger``: during a call through the
    calling process (with its pid in the metadata), else through py's
    ``py_output`` process."""

    def emit(self, record):
        try:
            text = self.format(record)
            meta = {
                _K_LOGGER: record.name,
                _K_FILE: record.pathname,
                _K_LINE: record.lineno,
                _K_FUNCTION: record.funcName,
                _K_THREAD: _thread_name(record.threadName),
            }
            _emit((_LOG, _LOGGING, erlang_level(record.levelno), text, meta), text)
        except RecursionError:
            raise
        except Exception:
            self.handleError(record)


_handler = None
_saved_showwarning = None


def _showwarning(message, category, filename, lineno, file=None, line=None):
    if file is not None:
        # An explicit file: Python's own behaviour.
        return _saved_showwarning(message, category, filename, lineno, file, line)
    text = warnings.formatwarning(message, category, filename, lineno, line).rstrip("\n")
    meta = {
        _K_FILE: filename,
        _K_LINE: lineno,
        _K_CATEGORY: category.__name__,
        _K_THREAD: _thread_name(threading.current_thread().name),
    }
    _emit((_LOG, _WARNINGS, _WARNING, text, meta), text)


def configure(stdout, stderr, logging_mode, level):
    """Applies py's settings (see the module's documentation); ``level``
    is the primary level of Erlang's ``logger``."""
    global _handler, _saved_showwarning
    sys.stdout = _stream_for(0, str(stdout))
    sys.stderr = _stream_for(1, str(stderr))
    root = logging.getLogger()
    if str(logging_mode) == "logger":
        if _handler is None:
            _handler = Handler()
            _handler.setFormatter(logging.Formatter("%(message)s"))
            root.addHandler(_handler)
        root.setLevel(_PY_LEVEL.get(str(level), logging.WARNING))
        if warnings.showwarning is not _showwarning:
            _saved_showwarning = warnings.showwarning
            warnings.showwarning = _showwarning
    else:
        if _handler is not None:
            root.removeHandler(_handler)
            _handler = None
            root.setLevel(logging.WARNING)
        if warnings.showwarning is _showwarning:
            warnings.showwarning = _saved_showwarning
    return None


def set_level(level):
    """Follows a new primary level of Erlang's ``logger`` (when the bridge
    is on)."""
    if _handler is not None:
        logging.getLogger().setLevel(_PY_LEVEL.get(str(level), logging.WARNING))
    return None
