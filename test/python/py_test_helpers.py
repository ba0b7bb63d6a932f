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
