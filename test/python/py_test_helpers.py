"""Python side of py's own tests (put on sys.path by the test suites)."""

import time
import weakref

_freed = set()


class Tracked:
    """An object whose release the tests can observe."""

    def __init__(self, name):
        self.name = name


def make_tracked(name):
    obj = Tracked(name)
    # The callback runs when the last reference goes: after Erlang dropped
    # its handle and the housekeeper released the object.
    weakref.finalize(obj, _freed.add, name)
    return obj


def is_freed(name):
    return name in _freed


def fail(message):
    raise ValueError(message)


def nested_failure():
    def inner():
        raise KeyError("deep")

    inner()


def spin_forever():
    while True:
        pass


def busy_for(seconds):
    end = time.monotonic() + seconds
    n = 0
    while time.monotonic() < end:
        n += 1
    return n


def cyclic_list():
    items = []
    items.append(items)
    return items


def nested_lists(depth):
    value = []
    for _ in range(depth):
        value = [value]
    return value


def identity(x):
    return x


def same_object(a, b):
    return a is b


def send_many(pid, count):
    import beam
    for i in range(count):
        beam.send(pid, (beam.Atom("msg"), i))
    return count


def send_from_threads(pid, threads, per_thread):
    """Python threads of their own send to Erlang."""
    import threading
    import beam

    def run(t):
        for i in range(per_thread):
            beam.send(pid, (beam.Atom("t"), t, i))

    workers = [threading.Thread(target=run, args=(t,)) for t in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return threads * per_thread


def call_erlang(module, function, args, timeout=5.0):
    import beam
    return beam.call(module, function, args, timeout)


def erlang_error_of(module, function, args):
    import beam
    try:
        beam.call(module, function, args)
    except beam.ErlangError as e:
        return (e.kind, e.reason)
    return None


def call_timeout(module, function, args, timeout):
    import beam
    try:
        beam.call(module, function, args, timeout)
    except TimeoutError as e:
        return str(e)
    return None


def call_died(module, function, args):
    import beam
    try:
        beam.call(module, function, args)
    except RuntimeError as e:
        return str(e)
    return None


def nested(depth):
    """Python -> Erlang -> Python ... `depth` times."""
    import beam
    if depth == 0:
        return 0
    return 1 + beam.call("py_test_erl", "py_nested", [depth - 1])


class Point:
    def __init__(self, x, y):
        self.x = x
        self.y = y


def register_point_conversions():
    import beam
    beam.register_encoder(Point, lambda p: (beam.Atom("point"), p.x, p.y))
    beam.register_decoder("point", Point)


def unregister_point_conversions():
    import beam
    beam.unregister_encoder(Point)
    beam.unregister_decoder("point")


def describe_point(p):
    return (type(p).__name__, p.x, p.y)


def make_point(x, y):
    return Point(x, y)


# Streams: a generator whose progress and closing the tests can watch.
stream_state = {"produced": 0, "closed": False, "finally": False}


def counting(n):
    stream_state["produced"] = 0
    stream_state["closed"] = False
    stream_state["finally"] = False
    try:
        for i in range(n):
            stream_state["produced"] += 1
            yield i
    except GeneratorExit:
        stream_state["closed"] = True
        raise
    finally:
        stream_state["finally"] = True


def produced():
    return stream_state["produced"]


def finally_ran():
    return stream_state["finally"]


def failing_after(n):
    for i in range(n):
        yield i
    raise ValueError("stream broke after %d" % n)


def thread_ident():
    import threading
    return threading.get_ident()


# Byte data shared without a copy (py_data_tests).

import ctypes as _ctypes


class _PyBuffer(_ctypes.Structure):
    _fields_ = [("buf", _ctypes.c_void_p), ("obj", _ctypes.c_void_p),
                ("len", _ctypes.c_ssize_t), ("itemsize", _ctypes.c_ssize_t),
                ("readonly", _ctypes.c_int), ("ndim", _ctypes.c_int),
                ("format", _ctypes.c_char_p), ("shape", _ctypes.c_void_p),
                ("strides", _ctypes.c_void_p), ("suboffsets", _ctypes.c_void_p),
                ("internal", _ctypes.c_void_p)]


def buffer_address(obj):
    """Address of the memory a buffer object (bytes, memoryview...) exports."""
    view = _PyBuffer()
    get = _ctypes.pythonapi.PyObject_GetBuffer
    get.argtypes = [_ctypes.py_object, _ctypes.POINTER(_PyBuffer), _ctypes.c_int]
    release = _ctypes.pythonapi.PyBuffer_Release
    release.argtypes = [_ctypes.POINTER(_PyBuffer)]
    if get(obj, _ctypes.byref(view), 0) != 0:
        raise BufferError("no buffer")
    try:
        return view.buf
    finally:
        release(_ctypes.byref(view))
