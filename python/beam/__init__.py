"""The ``beam`` package: Erlang values inside the embedded interpreter.

Erlang atoms arrive as :class:`Atom` (a ``str`` subclass, so ordinary string
code keeps working), pids and references as the opaque, hashable
:class:`Pid` and :class:`Ref`. Returning any of them to Erlang gives back
the original term.
"""

__all__ = ["Atom", "Pid", "Ref", "Interrupted"]


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
        return "<%s %s>" % (type(self).__name__, self.etf[-8:].hex())

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
