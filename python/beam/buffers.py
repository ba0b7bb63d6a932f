"""Byte data shared with Erlang without a copy.

* ``{'$py_buffer', Binary}`` (or ``py:buffer(Binary)``) arrives as a
  read-only ``memoryview`` over the Erlang binary's own memory: slicing it,
  ``numpy.frombuffer`` on it, ``bytes(view)`` (a copy) all work. The binary
  stays alive while any view of it (or an array made over it) does.
  Returned to Erlang, such a view is the binary again (a sub-binary for a
  slice).
* A ``bytes`` result of 64 KB or more becomes a binary over the bytes
  object's memory (a ``bytearray`` is copied: it could change afterwards).
* :func:`share` turns a numpy array (or any buffer) into something that
  comes back as a binary of its data, without a copy when the data can no
  longer change; :func:`ndarray` makes an array over an Erlang binary.
"""

import sys as _sys
import weakref as _weakref

import _beam_native

Binary = _beam_native.Binary

__all__ = ["Binary", "share", "ndarray"]


def _immutable_root(array):
    """True when ``array`` views memory that nothing can write: an Erlang
    binary or a ``bytes`` object (numpy keeps views of read-only memory
    read-only)."""
    root = array
    while getattr(root, "base", None) is not None and not isinstance(root, memoryview):
        root = root.base
    if isinstance(root, memoryview):
        if not root.readonly:
            return False
        root = root.obj
    return type(root) in (bytes, Binary)


def share(data):
    """``data`` for Erlang as a binary of its bytes (C order).

    A numpy array is shared without a copy when its memory can no longer
    change: when it views an Erlang binary or ``bytes``, or when it owns its
    data and nothing else refers to it (a temporary, as in
    ``beam.share(numpy.sqrt(x))``): it is then made read-only for good.
    Otherwise the bytes are copied (so the binary never changes under
    Erlang's feet). Other buffers are copied; ``bytes`` are returned as
    they are (shared when large).
    """
    np = _sys.modules.get("numpy")
    if np is not None and isinstance(data, np.ndarray):
        if data.flags.c_contiguous:
            if not data.flags.writeable and _immutable_root(data):
                return _beam_native.shared(memoryview(data))
            # Two references: this frame's and getrefcount's argument. No
            # other: no view, no name, no container holds the array.
            if (data.flags.owndata and data.base is None
                    and _sys.getrefcount(data) <= 2
                    and _weakref.getweakrefcount(data) == 0):
                data.flags.writeable = False
                return _beam_native.shared(memoryview(data))
        return data.tobytes()
    if type(data) is bytes:
        return data
    return bytes(memoryview(data))


def ndarray(buffer, dtype="float64", shape=None):
    """A numpy array over ``buffer`` (e.g. the memoryview of
    ``{'$py_buffer', Binary}``) without a copy: ``dtype`` a numpy dtype or
    its name (``'float64'``, ``'<i4'``...), ``shape`` a tuple (default:
    one dimension). Read-only when the buffer is."""
    import numpy as np
    array = np.frombuffer(buffer, dtype=dtype)
    if shape is not None:
        array = array.reshape(shape)
    return array
