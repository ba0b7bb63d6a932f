%%% @private
%%% @doc The builtin and operator wrappers of `py' (`py:abs/1',
%%% `py:'and-'/2', `py:pylist/1', ...): one table, {@link table/0}, from
%%% which both their code and their documentation come.
%%%
%%% The code: this module is a parse transform of `py' (compiled first by
%%% rebar3), which adds to it, for each row, the export, the `-spec' and
%%% the function, calling `Module.PyName' through the engine. The
%%% documentation: {@link doc/0} renders the table as the "Builtins and
%%% operators" section of `doc/overview.edoc' (the edoc front page); a
%%% test fails when that section and the table differ (regenerate it with
%%% `py_wrappers:write_overview("doc/overview.edoc")').
%%%
%%% A row: `{Name, Module, PyName, Kind, [{ArgName, ArgType}], ResultType,
%%% Doc}'. `Kind' says how the arguments are passed:
%%% <ul>
%%% <li>`args': all positional;</li>
%%% <li>`kwargs': the last argument is the keyword arguments;</li>
%%% <li>`{kwargs_when, Guard}': the last argument is the keyword arguments
%%%     when `Guard' holds of it, else positional;</li>
%%% <li>`rest': the last argument is a list of further positional
%%%     arguments (`{py_badarg, bad_args, Args}' otherwise);
%%%     `rest_kwargs': the same, then keyword arguments.</li>
%%% </ul>
%%% Arguments are values (an atom is a `beam.Atom' string, never a
%%% module). Python names ending in `_' end in `-' as in the original.
%%% @end
-module(py_wrappers).

-export([table/0, parse_transform/2, doc/0, write_overview/1]).

-export_type([row/0]).

-type kind() :: args | kwargs | {kwargs_when, string()} | rest | rest_kwargs.
-type row() :: {atom(), builtins | operator, atom(), kind(), [{string(), string()}],
                string(), string()}.

-define(BEGIN, "<!-- BEGIN py_wrappers:doc() -->").
-define(END, "<!-- END py_wrappers:doc() -->").

%% @doc The wrappers: Python's `builtins' that return values (`list' is
%% `pylist'; `repr', `str', `dir', `vars' and `next' are written in `py'),
%% then Python's `operator' module without the in-place functions
%% (`iadd'..., `setitem', `delitem') and `call' (that is
%% `py:func(Handle, Args)'); `abs' and `pow' are the builtins.
-spec table() -> [row()].
table() ->
    [
     {abs, builtins, abs, args,
      [{"X", "term()"}], "term()",
      "`abs(X)'; also serves as `operator.abs' (same function)."},
     {all, builtins, all, args,
      [{"Iterable", "term()"}], "boolean()",
      "`all(Iterable)': true when no element is false."},
     {any, builtins, any, args,
      [{"Iterable", "term()"}], "boolean()",
      "`any(Iterable)': true when some element is true."},
     {ascii, builtins, ascii, args,
      [{"X", "term()"}], "text()",
      "`ascii(X)': `repr' with non-ASCII characters escaped."},
     {bin, builtins, bin, args,
      [{"X", "term()"}], "text()",
      "`bin(Int)': `<<\"0b101\">>' for 5."},
     {bool, builtins, bool, args,
      [], "boolean()",
      "`bool()': `false'."},
     {bool, builtins, bool, args,
      [{"X", "term()"}], "boolean()",
      "`bool(X)': Python's truth value of `X' (`[]', `0', `<<>>' are false)."},
     {bytearray, builtins, bytearray, args,
      [], "binary()",
      "`bytearray()': an empty binary."},
     {bytearray, builtins, bytearray, args,
      [{"Source", "term()"}], "binary()",
      "`bytearray(Source)': a size, an iterable of bytes or a buffer."},
     {bytearray, builtins, bytearray, args,
      [{"Source", "term()"}, {"Encoding", "text()"}], "binary()",
      "`bytearray(String, Encoding)'."},
     {bytearray, builtins, bytearray, args,
      [{"Source", "term()"}, {"Encoding", "text()"}, {"Errors", "text()"}], "binary()",
      "`bytearray(String, Encoding, Errors)'."},
     {bytes, builtins, bytes, args,
      [], "binary()",
      "`bytes()': an empty binary."},
     {bytes, builtins, bytes, args,
      [{"Source", "term()"}], "binary()",
      "`bytes(Source)': a size, an iterable of bytes or a buffer."},
     {bytes, builtins, bytes, args,
      [{"Source", "term()"}, {"Encoding", "text()"}], "binary()",
      "`bytes(String, Encoding)': `bytes(<<\"é\"/utf8>>, <<\"latin-1\">>)'."},
     {bytes, builtins, bytes, args,
      [{"Source", "term()"}, {"Encoding", "text()"}, {"Errors", "text()"}], "binary()",
      "`bytes(String, Encoding, Errors)'."},
     {callable, builtins, callable, args,
      [{"X", "term()"}], "boolean()",
      "`callable(X)'."},
     {chr, builtins, chr, args,
      [{"Codepoint", "non_neg_integer()"}], "text()",
      "`chr(Codepoint)': a one-character string."},
     {compile, builtins, compile, args,
      [{"Source", "text()"}, {"Filename", "text()"}, {"Mode", "exec | eval | single | text()"}], "handle()",
      "`compile(Source, Filename, Mode)': a code object (a handle)."},
     {compile, builtins, compile, kwargs,
      [{"Source", "text()"}, {"Filename", "text()"}, {"Mode", "exec | eval | single | text()"}, {"Kwargs", "kwargs()"}], "handle()",
      "`compile(Source, Filename, Mode, **Kwargs)' (`flags', `dont_inherit', `optimize')."},
     {complex, builtins, complex, args,
      [], "handle()",
      "`complex()': `0j' (a handle: complex numbers have no term)."},
     {complex, builtins, complex, args,
      [{"X", "term()"}], "handle()",
      "`complex(Real)' or `complex(String)'."},
     {complex, builtins, complex, args,
      [{"Real", "number()"}, {"Imag", "number()"}], "handle()",
      "`complex(Real, Imag)'."},
     {dict, builtins, dict, args,
      [], "map()",
      "`dict()': the empty map (a dict converts to a map; use `init(builtins, dict)' for a handle to a new dict)."},
     {dict, builtins, dict, {kwargs_when, "is_list(Kwargs)"},
      [{"Kwargs", "kwargs() | map() | handle()"}], "map()",
      "As in the original, a proplist is keyword arguments: `dict([{\"a\", 1}])' is `dict(a=1)', `#{<<\"a\">> => 1}'. A map or a handle is copied: `dict(Mapping)'."},
     {dict, builtins, dict, kwargs,
      [{"Iterable", "term()"}, {"Kwargs", "kwargs()"}], "map()",
      "`dict(Iterable, **Kwargs)': `dict([{1, a}], [])' is `#{1 => a}'."},
     {divmod, builtins, divmod, args,
      [{"A", "term()"}, {"B", "term()"}], "{term(), term()}",
      "`divmod(A, B)': `{A // B, A % B}'."},
     {enumerate, builtins, enumerate, args,
      [{"Iterable", "term()"}], "handle()",
      "`enumerate(Iterable)': an iterator (a handle) of `{Index, Item}'."},
     {enumerate, builtins, enumerate, args,
      [{"Iterable", "term()"}, {"Start", "integer()"}], "handle()",
      "`enumerate(Iterable, Start)'."},
     {filter, builtins, filter, args,
      [{"Function", "handle() | undefined"}, {"Iterable", "term()"}], "handle()",
      "`filter(Function, Iterable)': an iterator (a handle). `Function' is a callable handle, or `undefined' (None) to keep true elements."},
     {float, builtins, float, args,
      [], "float()",
      "`float()': `0.0'."},
     {float, builtins, float, args,
      [{"X", "term()"}], "float() | nan | inf | '-inf'",
      "`float(X)': a number or a string; NaN and infinities come back as `nan', `inf', `'-inf''."},
     {format, builtins, format, args,
      [{"Value", "term()"}], "text()",
      "`format(Value)': `str(Value)' through `__format__'."},
     {format, builtins, format, args,
      [{"Value", "term()"}, {"Spec", "text()"}], "text()",
      "`format(Value, Spec)': `format(3.14159, <<\".2f\">>)' is `<<\"3.14\">>'."},
     {frozenset, builtins, frozenset, args,
      [], "handle()",
      "`frozenset()' (a handle: sets have no term)."},
     {frozenset, builtins, frozenset, args,
      [{"Iterable", "term()"}], "handle()",
      "`frozenset(Iterable)'."},
     {getattr, builtins, getattr, args,
      [{"Object", "term()"}, {"Name", "name()"}], "term()",
      "`getattr(Object, Name)'."},
     {getattr, builtins, getattr, args,
      [{"Object", "term()"}, {"Name", "name()"}, {"Default", "term()"}], "term()",
      "`getattr(Object, Name, Default)'."},
     {hasattr, builtins, hasattr, args,
      [{"Object", "term()"}, {"Name", "name()"}], "boolean()",
      "`hasattr(Object, Name)'."},
     {hash, builtins, hash, args,
      [{"X", "term()"}], "integer()",
      "`hash(X)'. String hashes vary between runs (Python's hash randomisation)."},
     {hex, builtins, hex, args,
      [{"X", "term()"}], "text()",
      "`hex(Int)': `<<\"0xff\">>' for 255."},
     {id, builtins, id, args,
      [{"X", "term()"}], "integer()",
      "`id(X)': the identity of the Python object (stable for a handle)."},
     {int, builtins, int, args,
      [], "integer()",
      "`int()': `0'."},
     {int, builtins, int, args,
      [{"X", "term()"}], "integer()",
      "`int(X)': a number truncated, or a string in base 10."},
     {int, builtins, int, {kwargs_when, "is_list(Kwargs); is_map(Kwargs)"},
      [{"X", "term()"}, {"Kwargs", "integer() | kwargs()"}], "integer()",
      "`int(String, Base)', or with keyword arguments as in the original: `int(<<\"101010\">>, [{base, 2}])' is 42."},
     {isinstance, builtins, isinstance, args,
      [{"Object", "term()"}, {"Class", "term()"}], "boolean()",
      "`isinstance(Object, ClassOrTuple)': classes are handles, e.g. `py:const(builtins, int)'."},
     {issubclass, builtins, issubclass, args,
      [{"Class", "term()"}, {"Of", "term()"}], "boolean()",
      "`issubclass(Class, ClassOrTuple)'."},
     {iter, builtins, iter, args,
      [{"Iterable", "term()"}], "handle()",
      "`iter(Iterable)': an iterator (a handle), for {@link next/1}."},
     {iter, builtins, iter, args,
      [{"Callable", "term()"}, {"Sentinel", "term()"}], "handle()",
      "`iter(Callable, Sentinel)': calls `Callable()' until it returns `Sentinel'."},
     {len, builtins, len, args,
      [{"X", "term()"}], "non_neg_integer()",
      "`len(X)'."},
     {pylist, builtins, list, args,
      [], "list()",
      "`list()': `[]'. Named `pylist' as in the original."},
     {pylist, builtins, list, args,
      [{"Iterable", "term()"}], "list()",
      "`list(Iterable)': the elements of an iterable handle (a range, an iterator, a set...) as an Erlang list."},
     {map, builtins, map, args,
      [{"Function", "term()"}, {"Iterable", "term()"}], "handle()",
      "`map(Function, Iterable)': an iterator (a handle)."},
     {map, builtins, map, args,
      [{"Function", "term()"}, {"Iterable1", "term()"}, {"Iterable2", "term()"}], "handle()",
      "`map(Function, Iterable1, Iterable2)'."},
     {max, builtins, max, args,
      [{"Iterable", "term()"}], "term()",
      "`max(Iterable)'. Keyword-only `key' and `default' through `func(builtins, max, [Iterable], Kwargs)'."},
     {max, builtins, max, args,
      [{"A", "term()"}, {"B", "term()"}], "term()",
      "`max(A, B)'."},
     {max, builtins, max, args,
      [{"A", "term()"}, {"B", "term()"}, {"C", "term()"}], "term()",
      "`max(A, B, C)'."},
     {max, builtins, max, args,
      [{"A", "term()"}, {"B", "term()"}, {"C", "term()"}, {"D", "term()"}], "term()",
      "`max(A, B, C, D)'."},
     {memoryview, builtins, memoryview, args,
      [{"Object", "term()"}], "handle()",
      "`memoryview(Bytes)' (a handle). A binary that is valid UTF-8 arrives as `str', which has no buffer: pass a `bytes' handle then."},
     {min, builtins, min, args,
      [{"Iterable", "term()"}], "term()",
      "`min(Iterable)'. Keyword-only `key' and `default' through `func(builtins, min, [Iterable], Kwargs)'."},
     {min, builtins, min, args,
      [{"A", "term()"}, {"B", "term()"}], "term()",
      "`min(A, B)'."},
     {min, builtins, min, args,
      [{"A", "term()"}, {"B", "term()"}, {"C", "term()"}], "term()",
      "`min(A, B, C)'."},
     {min, builtins, min, args,
      [{"A", "term()"}, {"B", "term()"}, {"C", "term()"}, {"D", "term()"}], "term()",
      "`min(A, B, C, D)'."},
     {next, builtins, next, args,
      [{"Iterator", "term()"}, {"Default", "term()"}], "term()",
      "`next(Iterator, Default)': `Default' at the end."},
     {object, builtins, object, args,
      [], "handle()",
      "`object()': a new featureless object (a handle)."},
     {oct, builtins, oct, args,
      [{"X", "term()"}], "text()",
      "`oct(Int)': `<<\"0o10\">>' for 8."},
     {open, builtins, open, args,
      [{"File", "term()"}], "handle()",
      "`open(File)': a file object (a handle) for reading text."},
     {open, builtins, open, args,
      [{"File", "term()"}, {"Mode", "text()"}], "handle()",
      "`open(File, Mode)': `open(Path, <<\"rb\">>)'."},
     {open, builtins, open, kwargs,
      [{"File", "term()"}, {"Mode", "text()"}, {"Kwargs", "kwargs()"}], "handle()",
      "`open(File, Mode, **Kwargs)': `[{encoding, <<\"latin-1\">>}]'."},
     {ord, builtins, ord, args,
      [{"Char", "term()"}], "non_neg_integer()",
      "`ord(Char)': the code point of a one-character string."},
     {pow, builtins, pow, args,
      [{"Base", "term()"}, {"Exp", "term()"}], "term()",
      "`pow(Base, Exp)'; also serves as `operator.pow' (same result)."},
     {pow, builtins, pow, args,
      [{"Base", "term()"}, {"Exp", "term()"}, {"Mod", "term()"}], "term()",
      "`pow(Base, Exp, Mod)': modular exponentiation."},
     {range, builtins, range, args,
      [{"Stop", "integer()"}], "handle()",
      "`range(Stop)': a handle (a range has no term); see {@link pylist/1}."},
     {range, builtins, range, args,
      [{"Start", "integer()"}, {"Stop", "integer()"}], "handle()",
      "`range(Start, Stop)'."},
     {range, builtins, range, args,
      [{"Start", "integer()"}, {"Stop", "integer()"}, {"Step", "integer()"}], "handle()",
      "`range(Start, Stop, Step)'."},
     {reversed, builtins, reversed, args,
      [{"Sequence", "term()"}], "handle()",
      "`reversed(Sequence)': an iterator (a handle)."},
     {round, builtins, round, args,
      [{"Number", "term()"}], "term()",
      "`round(Number)': to an integer, halves to even (`round(2.5)' is 2)."},
     {round, builtins, round, args,
      [{"Number", "term()"}, {"Digits", "integer()"}], "term()",
      "`round(Number, Digits)': `round(0.666666667, 5)' is `0.66667'."},
     {set, builtins, set, args,
      [], "handle()",
      "`set()' (a handle: sets have no term)."},
     {set, builtins, set, args,
      [{"Iterable", "term()"}], "handle()",
      "`set(Iterable)'."},
     {slice, builtins, slice, args,
      [{"Stop", "term()"}], "handle()",
      "`slice(Stop)' (a handle), for {@link getitem/2}."},
     {slice, builtins, slice, args,
      [{"Start", "term()"}, {"Stop", "term()"}], "handle()",
      "`slice(Start, Stop)'."},
     {slice, builtins, slice, args,
      [{"Start", "term()"}, {"Stop", "term()"}, {"Step", "term()"}], "handle()",
      "`slice(Start, Stop, Step)'."},
     {sorted, builtins, sorted, args,
      [{"Iterable", "term()"}], "list()",
      "`sorted(Iterable)'."},
     {sorted, builtins, sorted, kwargs,
      [{"Iterable", "term()"}, {"Kwargs", "kwargs()"}], "list()",
      "`sorted(Iterable, **Kwargs)': `key' (a callable handle) and `reverse', e.g. `sorted(L, [{reverse, true}])'."},
     {sum, builtins, sum, args,
      [{"Iterable", "term()"}], "term()",
      "`sum(Iterable)'."},
     {sum, builtins, sum, args,
      [{"Iterable", "term()"}, {"Start", "term()"}], "term()",
      "`sum(Iterable, Start)'."},
     {tuple, builtins, tuple, args,
      [], "tuple()",
      "`tuple()': `{}'."},
     {tuple, builtins, tuple, args,
      [{"Iterable", "term()"}], "tuple()",
      "`tuple(Iterable)': `tuple([1, 2])' is `{1, 2}'."},
     {type, builtins, type, args,
      [{"Object", "term()"}], "handle()",
      "`type(Object)': the object's class, a handle (see {@link ptype/1} for its name)."},
     {type, builtins, type, args,
      [{"Name", "text()"}, {"Bases", "tuple()"}, {"Namespace", "map()"}], "handle()",
      "`type(Name, Bases, Namespace)': a new class (a handle), e.g. `type(<<\"Point\">>, {}, #{<<\"x\">> => 0})'."},
     {zip, builtins, zip, args,
      [{"Iterable", "term()"}], "handle()",
      "`zip(Iterable)': an iterator (a handle) of 1-tuples."},
     {zip, builtins, zip, args,
      [{"Iterable1", "term()"}, {"Iterable2", "term()"}], "handle()",
      "`zip(Iterable1, Iterable2)': an iterator of pairs."},
     {zip, builtins, zip, args,
      [{"Iterable1", "term()"}, {"Iterable2", "term()"}, {"Iterable3", "term()"}], "handle()",
      "`zip(Iterable1, Iterable2, Iterable3)'."},
     {lt, operator, lt, args,
      [{"A", "term()"}, {"B", "term()"}], "term()",
      "`A < B'."},
     {le, operator, le, args,
      [{"A", "term()"}, {"B", "term()"}], "term()",
      "`A <= B'."},
     {eq, operator, eq, args,
      [{"A", "term()"}, {"B", "term()"}], "term()",
      "`A == B'."},
     {ne, operator, ne, args,
      [{"A", "term()"}, {"B", "term()"}], "term()",
      "`A != B'."},
     {ge, operator, ge, args,
      [{"A", "term()"}, {"B", "term()"}], "term()",
      "`A >= B'."},
     {gt, operator, gt, args,
      [{"A", "term()"}, {"B", "term()"}], "term()",
      "`A > B'."},
     {'not-', operator, not_, args,
      [{"X", "term()"}], "boolean()",
      "`not X' (`operator.not_')."},
     {truth, operator, truth, args,
      [{"X", "term()"}], "boolean()",
      "`bool(X)' (`operator.truth')."},
     {'is-', operator, is_, args,
      [{"A", "term()"}, {"B", "term()"}], "boolean()",
      "`A is B' (`operator.is_'): identity of the Python objects, kept for handles."},
     {'is-not', operator, is_not, args,
      [{"A", "term()"}, {"B", "term()"}], "boolean()",
      "`A is not B' (`operator.is_not')."},
     {add, operator, add, args,
      [{"A", "term()"}, {"B", "term()"}], "term()",
      "`A + B'."},
     {floordiv, operator, floordiv, args,
      [{"A", "term()"}, {"B", "term()"}], "term()",
      "`A // B'."},
     {index, operator, index, args,
      [{"X", "term()"}], "integer()",
      "`A.__index__()': `X' as an integer, for integer-like objects only."},
     {mod, operator, mod, args,
      [{"A", "term()"}, {"B", "term()"}], "term()",
      "`A % B'."},
     {mul, operator, mul, args,
      [{"A", "term()"}, {"B", "term()"}], "term()",
      "`A * B'."},
     {matmul, operator, matmul, args,
      [{"A", "term()"}, {"B", "term()"}], "term()",
      "`A @ B'."},
     {neg, operator, neg, args,
      [{"X", "term()"}], "term()",
      "`-X'."},
     {pos, operator, pos, args,
      [{"X", "term()"}], "term()",
      "`+X'."},
     {sub, operator, sub, args,
      [{"A", "term()"}, {"B", "term()"}], "term()",
      "`A - B': `sub(Later, Earlier)' of two datetimes is a timedelta."},
     {truediv, operator, truediv, args,
      [{"A", "term()"}, {"B", "term()"}], "term()",
      "`A / B'."},
     {'and-', operator, and_, args,
      [{"A", "term()"}, {"B", "term()"}], "term()",
      "`A & B' (`operator.and_')."},
     {inv, operator, inv, args,
      [{"X", "term()"}], "term()",
      "`~X'."},
     {invert, operator, invert, args,
      [{"X", "term()"}], "term()",
      "`~X' (the same as {@link inv/1})."},
     {lshift, operator, lshift, args,
      [{"A", "term()"}, {"B", "term()"}], "term()",
      "`A << B'."},
     {'or-', operator, or_, args,
      [{"A", "term()"}, {"B", "term()"}], "term()",
      "`A | B' (`operator.or_')."},
     {rshift, operator, rshift, args,
      [{"A", "term()"}, {"B", "term()"}], "term()",
      "`A >> B'."},
     {'xor', operator, 'xor', args,
      [{"A", "term()"}, {"B", "term()"}], "term()",
      "`A ^ B'."},
     {concat, operator, concat, args,
      [{"A", "term()"}, {"B", "term()"}], "term()",
      "`A + B' for sequences (lists, strings, tuples)."},
     {contains, operator, contains, args,
      [{"Container", "term()"}, {"Item", "term()"}], "boolean()",
      "`B in A'."},
     {countOf, operator, countOf, args,
      [{"A", "term()"}, {"B", "term()"}], "non_neg_integer()",
      "How many elements of `A' equal `B'."},
     {getitem, operator, getitem, args,
      [{"A", "term()"}, {"B", "term()"}], "term()",
      "`A[B]': an index, a key or a slice handle."},
     {indexOf, operator, indexOf, args,
      [{"A", "term()"}, {"B", "term()"}], "non_neg_integer()",
      "The index of the first element of `A' equal to `B'."},
     {length_hint, operator, length_hint, args,
      [{"X", "term()"}], "non_neg_integer()",
      "An estimate of `len(X)' (exact for sequences and ranges)."},
     {length_hint, operator, length_hint, args,
      [{"X", "term()"}, {"Default", "non_neg_integer()"}], "non_neg_integer()",
      "An estimate of `len(X)', `Default' when there is none."},
     {attrgetter, operator, attrgetter, args,
      [{"Name", "name()"}], "handle()",
      "A callable (a handle) that fetches attribute `Name' (may be dotted) from its argument."},
     {itemgetter, operator, itemgetter, args,
      [{"Item", "term()"}], "handle()",
      "A callable (a handle) that fetches `Item' from its argument: `sorted(Pairs, [{key, itemgetter(1)}])'."},
     {methodcaller, operator, methodcaller, args,
      [{"Name", "name()"}], "handle()",
      "A callable (a handle) that calls method `Name' of its argument."},
     {methodcaller, operator, methodcaller, rest,
      [{"Name", "name()"}, {"Args", "args()"}], "handle()",
      "As {@link methodcaller/1}, passing `Args' (a list, as in {@link method/3}; the original took one argument here)."},
     {methodcaller, operator, methodcaller, rest_kwargs,
      [{"Name", "name()"}, {"Args", "args()"}, {"Kwargs", "kwargs()"}], "handle()",
      "As {@link methodcaller/2}, with keyword arguments."}
    ].

%%% The code ------------------------------------------------------------------

%% @doc Adds the wrappers to `py': exports after the module attribute,
%% specs and functions at the end.
-spec parse_transform([erl_parse:abstract_form()], list()) -> [erl_parse:abstract_form()].
parse_transform(Forms, _Options) ->
    {Before, [Eof]} = lists:split(length(Forms) - 1, Forms),
    {Head, Body} = lists:splitwith(fun(F) -> not is_module(F) end, Before),
    [Module | Rest] = Body,
    Line = element(2, Eof),
    Exports = form(Line, "-export([~ts]).",
                   [lists:join(", ", [io_lib:format("~tw/~b", [N, length(A)])
                                      || {N, _, _, _, A, _, _} <- table()])]),
    Head ++ [Module, Exports | Rest]
        ++ lists:append([wrapper(Line, Row) || Row <- table()]) ++ [Eof].

is_module({attribute, _, module, _}) -> true;
is_module(_) -> false.

wrapper(Line, {Name, Module, PyName, Kind, Args, Result, _Doc}) ->
    Names = [N || {N, _} <- Args],
    Spec = form(Line, "-spec ~tw(~ts) -> ~ts.",
                [Name, lists:join(", ", [T || {_, T} <- Args]), Result]),
    Call = fun(Positional, Kwargs) ->
                   io_lib:format("py_engine:run(py_request:call({~tw, ~tw}, ~ts, ~ts), #{})",
                                 [Module, PyName, Positional, Kwargs])
           end,
    List = fun(Ns) -> ["[", lists:join(", ", Ns), "]"] end,
    {Init, [Last]} = case Names of
                         [] -> {[], [none]};
                         _ -> lists:split(length(Names) - 1, Names)
                     end,
    Head = io_lib:format("~tw(~ts)", [Name, lists:join(", ", Names)]),
    Clauses =
        case Kind of
            args ->
                [[Head, " -> ", Call(List(Names), "[]")]];
            kwargs ->
                [[Head, " -> ", Call(List(Init), Last)]];
            {kwargs_when, Guard} ->
                [[Head, " when ", Guard, " -> ", Call(List(Init), Last)],
                 [Head, " -> ", Call(List(Names), "[]")]];
            rest ->
                [[Head, " when is_list(", Last, ") -> ",
                  Call(["[", lists:join(", ", Init), " | ", Last, "]"], "[]")],
                 [Head, " -> erlang:error({py_badarg, bad_args, ", Last, "})"]];
            rest_kwargs ->
                [RestArg] = lists:nthtail(length(Names) - 2, Init),
                First = lists:sublist(Names, length(Names) - 2),
                [[Head, " when is_list(", RestArg, ") -> ",
                  Call(["[", lists:join(", ", First), " | ", RestArg, "]"], Last)],
                 [Head, " -> erlang:error({py_badarg, bad_args, ", RestArg, "})"]]
        end,
    Unused = fun(Clause) -> unused(Clause, Names) end,
    [Spec, form(Line, "~ts.", [lists:join(";\n", [Unused(C) || C <- Clauses])])].

%% The error clauses do not use every argument: `_'-prefixed there.
unused(Clause, Names) ->
    Text = lists:flatten(io_lib:format("~ts", [Clause])),
    case string:find(Text, "erlang:error") of
        nomatch ->
            Text;
        _ ->
            [Head, Body] = string:split(Text, " -> "),
            Used = [N || N <- Names, string:find(Body, N) =/= nomatch],
            Head1 = lists:foldl(fun(N, H) ->
                                        case lists:member(N, Used) of
                                            true -> H;
                                            false -> re:replace(H, "\\b" ++ N ++ "\\b", "_" ++ N,
                                                                [{return, list}, global])
                                        end
                                end, Head, Names),
            Head1 ++ " -> " ++ Body
    end.

form(Line, Format, Args) ->
    Text = lists:flatten(io_lib:format(Format, Args)),
    {ok, Tokens, _} = erl_scan:string(Text, Line),
    {ok, Form} = erl_parse:parse_form(Tokens),
    Form.

%%% The documentation ---------------------------------------------------------

%% @doc The "Builtins and operators" section of the overview (edoc
%% markup), from the table.
-spec doc() -> string().
doc() ->
    Section = fun(Module, Title) ->
                      ["<h3>", Title, "</h3>\n<dl>\n",
                       [io_lib:format("<dt>`py:~ts(~ts) -> ~ts'</dt>\n<dd>~ts</dd>\n",
                                      [quoted(N), lists:join(", ", [A || {A, _} <- Args]),
                                       Result, as_code(Doc)])
                        || {N, M, _, _, Args, Result, Doc} <- table(), M =:= Module],
                       "</dl>\n"]
              end,
    lists:flatten([?BEGIN, "\n",
                   Section(builtins, "Builtins (Python's `builtins' module)"),
                   Section(operator, "Operators (Python's `operator' module)"),
                   ?END]).

quoted(Name) -> io_lib:format("~tw", [Name]).

%% Links to py's functions, as code (the overview is not py's page).
as_code(Doc) -> re:replace(Doc, "\\{@link ([^}]*)\\}", "`py:\\1'", [global, {return, list}, unicode]).

%% @doc Rewrites the generated section of an overview file from the table.
-spec write_overview(file:filename()) -> ok.
write_overview(File) ->
    {ok, Bin} = file:read_file(File),
    [Before, Rest] = string:split(unicode:characters_to_list(Bin), ?BEGIN),
    [_, After] = string:split(Rest, ?END),
    ok = file:write_file(File, unicode:characters_to_binary([Before, doc(), After])).
