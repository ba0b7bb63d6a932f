%%% @doc Python for the Erlang ecosystem: call Python functions, read
%%% constants, make objects and call their methods from Erlang, LFE or
%%% Elixir.
%%%
%%% Calls run on a pool of worker threads that embed CPython (see the
%%% README). Arguments and results are converted directly between terms and
%%% Python objects; objects without an Erlang counterpart come back as
%%% handles, `{'$py', TypeName, Ref}', usable in later calls.
%%%
%%% Errors raise in the caller: `{python, Type, Message, Traceback}' for a
%%% Python exception, `{py_badarg, Why, Term}' for a term with no Python
%%% counterpart, `{py_badresult, Why, Handle}' for a result that cannot be
%%% a term, `{py_timeout, Ms}' when a call took too long.
%%% @end
-module(py).

%% Application control
-export([start/0, stop/0, restart/0, add_workers/1, remove_workers/1, workers/0,
         sup_pid/0, worker_pids/0, 'get-sup-pid'/0, 'get-python-pids'/0, 'add-server'/1]).
%% Module level
-export([func/1, func/2, func/3, func/4, func/5, const/1, const/2, const/3]).
%% Objects
-export([init/1, init/2, init/3, init/4,
         method/2, method/3, method/4, method/5, attr/2]).
%% Raw pass-through and values
-export([pycall/2, pycall/3, repr/1, str/1, value/1, value/2]).
%% Source code
-export([eval/1, eval/2, eval/3, exec/1, exec/2, exec/3]).
%% Builtins (Python's `builtins' module; `list' is `pylist')
-export([abs/1, all/1, any/1, ascii/1, bin/1, bool/0, bool/1,
         bytearray/0, bytearray/1, bytearray/2, bytearray/3,
         bytes/0, bytes/1, bytes/2, bytes/3, callable/1, chr/1,
         compile/3, compile/4, complex/0, complex/1, complex/2,
         dict/0, dict/1, dict/2, dir/0, dir/1, divmod/2,
         enumerate/1, enumerate/2, filter/2, float/0, float/1,
         format/1, format/2, frozenset/0, frozenset/1,
         getattr/2, getattr/3, hasattr/2, hash/1, hex/1, id/1,
         int/0, int/1, int/2, isinstance/2, issubclass/2, iter/1, iter/2,
         len/1, pylist/0, pylist/1, map/2, map/3,
         max/1, max/2, max/3, max/4, memoryview/1,
         min/1, min/2, min/3, min/4, next/1, next/2, object/0, oct/1,
         open/1, open/2, open/3, ord/1, pow/2, pow/3,
         range/1, range/2, range/3, reversed/1, round/1, round/2,
         set/0, set/1, slice/1, slice/2, slice/3, sorted/1, sorted/2,
         sum/1, sum/2, tuple/0, tuple/1, type/1, type/3, vars/0, vars/1,
         zip/1, zip/2, zip/3]).
%% Operators (Python's `operator' module, without the in-place ones;
%% `abs' and `pow' are the builtins above)
-export([lt/2, le/2, eq/2, ne/2, ge/2, gt/2,
         'not-'/1, truth/1, 'is-'/2, 'is-not'/2,
         add/2, floordiv/2, index/1, mod/2, mul/2, matmul/2, neg/1, pos/1,
         sub/2, truediv/2,
         'and-'/2, inv/1, invert/1, lshift/2, 'or-'/2, rshift/2, 'xor'/2,
         concat/2, contains/2, countOf/2, getitem/2, indexOf/2,
         length_hint/1, length_hint/2,
         attrgetter/1, itemgetter/1, methodcaller/1, methodcaller/2,
         methodcaller/3]).
%% Non-Python additions, named as in the original
-export([pdir/0, pdir/1, pvars/0, pvars/1, ptype/1, prepr/1]).
%% State: contexts, lazy iteration and streams
-export([context/0, context/1, drop_context/1, with_context/2,
         fold/3, stream/3, stream/4, stream_ack/1, stream_ack/2,
         stream_next/2, stream_close/1]).
%% Parallel and distributed calls
-export([on_all_workers/3, on_all_workers/4, on_all_workers/5, scatter/3, scatter/4,
         start_node/1, start_node/2, stop_node/1, nodes/0, release/1]).
%% The request machinery (for py's own modules)
-export([call/2]).

-export_type([handle/0, name/0, args/0, kwargs/0, opts/0, opt/0, text/0]).

%% Wrappers named like auto-imported BIFs: inside this module the names
%% mean the wrappers (callers always write `py:abs/1').
-compile({no_auto_import, [abs/1, float/1, round/1, max/2, min/2]}).
%% `py:nodes()' lists Python nodes; `erlang:nodes()' is written in full.
-compile({no_auto_import, [nodes/0]}).

-type handle() :: {'$py', TypeName :: binary(), reference()}.
%% A Python object held by Erlang. It stays alive while the term is alive.
-type name() :: atom() | binary().
%% A module, function, class or attribute name; may be dotted.
-type args() :: [term()].
-type kwargs() :: [{name() | string(), term()}] | #{name() | string() => term()}.
%% Keyword arguments as a proplist or a map.
-type text() :: binary() | string().
%% A Python `str' result: a binary, or a charlist under
%% `{strings, charlist}'.
-type opt() :: {strings, binary | charlist}
             | {return, value | handle}
             | {timeout, timeout()}
             | {context, py_context:context()}
             | {node, node()}
             | {worker, pos_integer()}.
-type opts() :: [opt()].
%% Per-call options: how Python strings come back (default: the `strings'
%% app setting, itself `binary' by default), whether the result is
%% converted or kept as a handle, how long to wait, and the context to run
%% in (default: the one {@link with_context/2} set, else none); the node
%% to run on (default: this one, or the node of the remote handles the
%% call works on), the worker to run on (default: the scheduler's choice).

-define(CHARLISTS, 1).
-define(HANDLE, 2).
%% How many times a call is sent when its worker turns out to be stopping.
-define(SUBMIT_TRIES, 4).

%%% ------------------------------------------------------------------
%%% Application control: starting, stopping, restarting, adding and
%%% removing workers (see the README, "Controlling the Python Servers").
%%% The LFE py names are kept as aliases.
%%% ------------------------------------------------------------------

%% @doc Starts the py application (the interpreter and its workers), as
%% `application:ensure_all_started(py)' does. A failed start gives the
%% reason itself, e.g. `{error, {bad_config, workers, 0, Why}}'.
-spec start() -> ok | {error, term()}.
start() ->
    case application:ensure_all_started(py) of
        {ok, _} -> ok;
        {error, {py, {Reason, {py_app, start, _}}}} -> {error, Reason};
        {error, _} = Error -> Error
    end.

%% @doc Stops the py application: the workers finish the calls they
%% accepted, then stop. The interpreter stays loaded (CPython cannot be
%% initialised twice); a later start reuses it. `ok' if py was not running.
-spec stop() -> ok | {error, term()}.
stop() ->
    case application:stop(py) of
        ok -> ok;
        {error, {not_started, py}} -> ok;
        {error, _} = Error -> Error
    end.

%% @doc Stops and starts py again, reading the configuration anew.
-spec restart() -> ok | {error, term()}.
restart() ->
    case stop() of
        ok -> start();
        {error, _} = Error -> Error
    end.

%% @doc Starts `N' more workers; returns their ids.
-spec add_workers(non_neg_integer()) -> {ok, [pos_integer()]} | {error, term()}.
add_workers(N) ->
    py_worker_sup:add(N).

%% @doc Stops the `N' most recently added workers once they have answered
%% the calls they accepted; returns their ids. One worker at least stays.
-spec remove_workers(non_neg_integer()) -> {ok, [pos_integer()]} | {error, term()}.
remove_workers(N) ->
    py_worker_sup:remove(N).

%% @doc The workers, by id, with their state, queue length and counters
%% (see `py_pool:worker_info()').
-spec workers() -> [py_pool:worker_info()].
workers() ->
    py_pool:info().

%% @doc The pid of py's top supervisor (`undefined' when not started).
-spec sup_pid() -> pid() | undefined.
sup_pid() ->
    whereis(py_sup).

%% @doc The pids of the worker processes, by worker id.
-spec worker_pids() -> [pid()].
worker_pids() ->
    [Pid || #{pid := Pid} <- workers()].

%% @doc LFE py's name of {@link sup_pid/0}.
-spec 'get-sup-pid'() -> pid() | undefined.
'get-sup-pid'() ->
    sup_pid().

%% @doc LFE py's name of {@link worker_pids/0}.
-spec 'get-python-pids'() -> [pid()].
'get-python-pids'() ->
    worker_pids().

%% @doc LFE py's `add-server': `Count' more workers, or (given LFE py's
%% child id, which py does not need: workers are numbered) one more.
-spec 'add-server'(term()) -> {ok, [pos_integer()]} | {error, term()}.
'add-server'(Count) when is_integer(Count) ->
    add_workers(Count);
'add-server'(_ChildId) ->
    add_workers(1).

%%% ------------------------------------------------------------------
%%% Module level
%%% ------------------------------------------------------------------

%% @doc Calls the callable a dotted name (or handle) refers to, without
%% arguments: `func('datetime.datetime.now')'.
-spec func(name() | handle()) -> term().
func(Callable) ->
    call({call, flags([]), target(Callable), [], []}, []).

%% @doc Calls `Module.Function()'; or, given a dotted name and a list,
%% `Dotted(*Args)': `func(os, getcwd)', `func('math.pow', [2, 16])'.
-spec func(name() | handle(), name() | args()) -> term().
func(Callable, Args) when is_list(Args) ->
    call({call, flags([]), target(Callable), Args, []}, []);
func(Module, Function) ->
    call({call, flags([]), {Module, Function}, [], []}, []).

%% @doc `Module.Function(*Args)'; or `Dotted(*Args, **Kwargs)'.
-spec func(name() | handle(), name() | args(), args() | kwargs()) -> term().
func(Callable, Args, Kwargs) when is_list(Args) ->
    call({call, flags([]), target(Callable), Args, Kwargs}, []);
func(Module, Function, Args) ->
    call({call, flags([]), {Module, Function}, Args, []}, []).

%% @doc `Module.Function(*Args, **Kwargs)'.
-spec func(name(), name(), args(), kwargs()) -> term().
func(Module, Function, Args, Kwargs) ->
    func(Module, Function, Args, Kwargs, []).

%% @doc `Module.Function(*Args, **Kwargs)' with per-call options.
-spec func(name(), name(), args(), kwargs(), opts()) -> term().
func(Module, Function, Args, Kwargs, Opts) ->
    call({call, flags(Opts), {Module, Function}, Args, Kwargs}, Opts).

%% @doc The value a dotted name refers to: `const('math.pi')'.
-spec const(name()) -> term().
const(Dotted) ->
    call({resolve, flags([]), Dotted}, []).

%% @doc A module-level value: `const(math, pi)'.
-spec const(name(), name()) -> term().
const(Module, Name) ->
    call({getattr, flags([]), Module, Name}, []).

%% @doc A module-level value converted by Python's `int', `float' or
%% `str': `const(math, pi, int)' is 3.
-spec const(name(), name(), int | float | str) -> term().
const(Module, Name, Type) when Type =:= int; Type =:= float; Type =:= str ->
    Handle = call({getattr, flags([{return, handle}]), Module, Name}, []),
    func(builtins, Type, [Handle]);
const(_Module, _Name, Type) ->
    erlang:error({py_badarg, bad_type, Type}).

%%% ------------------------------------------------------------------
%%% Objects
%%% ------------------------------------------------------------------

%% @doc Instantiates a class named by a dotted name: `init('collections.UserDict')'.
-spec init(name()) -> handle().
init(Dotted) ->
    make_object(target(Dotted), [], []).

%% @doc Instantiates `Module.Class()', or, given a dotted name and a
%% list, `Dotted(*Args)': `init('datetime.date', [1923, 4, 2])'. Always
%% returns a handle.
-spec init(name() | handle(), name() | args()) -> handle().
init(Dotted, Args) when is_list(Args) ->
    make_object(target(Dotted), Args, []);
init(Module, Class) ->
    make_object({Module, Class}, [], []).

%% @doc `Module.Class(*Args)', or `Dotted(*Args, **Kwargs)'.
-spec init(name(), name() | args(), args() | kwargs()) -> handle().
init(Dotted, Args, Kwargs) when is_list(Args) ->
    make_object(target(Dotted), Args, Kwargs);
init(Module, Class, Args) ->
    make_object({Module, Class}, Args, []).

%% @doc `Module.Class(*Args, **Kwargs)'.
-spec init(name(), name(), args(), kwargs()) -> handle().
init(Module, Class, Args, Kwargs) ->
    make_object({Module, Class}, Args, Kwargs).

make_object(Target, Args, Kwargs) ->
    call({call, flags([{return, handle}]), Target, Args, Kwargs}, []).

%% @doc Calls a method without arguments: `method(List, sort)'.
-spec method(term(), name()) -> term().
method(Object, Name) ->
    method(Object, Name, [], [], []).

%% @doc Calls a method: `method(Now, strftime, [<<"%Y">>])'. The object
%% may be a handle or any value (`method(<<"abc">>, upper, [])').
-spec method(term(), name(), args()) -> term().
method(Object, Name, Args) ->
    method(Object, Name, Args, [], []).

%% @doc Calls a method with keyword arguments.
-spec method(term(), name(), args(), kwargs()) -> term().
method(Object, Name, Args, Kwargs) ->
    method(Object, Name, Args, Kwargs, []).

%% @doc Calls a method with keyword arguments and per-call options.
-spec method(term(), name(), args(), kwargs(), opts()) -> term().
method(Object, Name, Args, Kwargs, Opts) ->
    call({call, flags(Opts), {as_object(Object), Name}, Args, Kwargs}, Opts).

%% @doc An attribute of an object: `attr(Now, year)'.
-spec attr(term(), name()) -> term().
attr(Object, Name) ->
    call({getattr, flags([]), as_object(Object), Name}, []).

%%% ------------------------------------------------------------------
%%% Pass-through and values
%%% ------------------------------------------------------------------

%% @doc Calls `Module.Function()' directly (ErlPort's `python:call').
%% `Function' may be dotted: `pycall(datetime, 'datetime.now')'.
-spec pycall(name(), name()) -> term().
pycall(Module, Function) ->
    pycall(Module, Function, []).

%% @doc Calls `Module.Function(*Args)' directly.
-spec pycall(name(), name(), args()) -> term().
pycall(Module, Function, Args) ->
    call({call, flags([]), {Module, Function}, Args, []}, []).

%% @doc Python's `repr()' of a value or handle, as a binary.
-spec repr(term()) -> binary() | string().
repr(Object) ->
    func(builtins, repr, [Object]).

%% @doc Python's `str()' of a value or handle, as a binary.
-spec str(term()) -> binary() | string().
str(Object) ->
    func(builtins, str, [Object]).

%% @doc The Erlang value of a handle, converted deeply where the
%% conversion table has a mapping (a handle to a list gives a list); other
%% objects stay handles.
-spec value(term()) -> term().
value(Object) ->
    value(Object, []).

%% @doc As {@link value/1}, with options (e.g. `[{strings, charlist}]').
-spec value(term(), opts()) -> term().
value(Object, Opts) ->
    call({value, flags(Opts), Object}, Opts).

%%% ------------------------------------------------------------------
%%% Source code
%%% ------------------------------------------------------------------

%% @doc Evaluates a Python expression in a worker's namespace.
-spec eval(iodata()) -> term().
eval(Code) ->
    eval(Code, #{}).

%% @doc Evaluates a Python expression with `Vars' (a map of names to
%% values) bound in the namespace.
-spec eval(iodata(), #{name() => term()}) -> term().
eval(Code, Vars) ->
    eval(Code, Vars, []).

%% @doc As {@link eval/2}, with per-call options (e.g. `[{timeout, 100}]').
-spec eval(iodata(), #{name() => term()}, opts()) -> term().
eval(Code, Vars, Opts) ->
    call({eval, flags(Opts), Code, Vars}, Opts).

%% @doc Runs Python statements in a worker's namespace; returns `undefined'.
-spec exec(iodata()) -> term().
exec(Code) ->
    exec(Code, #{}).

%% @doc Runs Python statements with `Vars' bound in the namespace.
-spec exec(iodata(), #{name() => term()}) -> term().
exec(Code, Vars) ->
    exec(Code, Vars, []).

%% @doc As {@link exec/2}, with per-call options.
-spec exec(iodata(), #{name() => term()}, opts()) -> term().
exec(Code, Vars, Opts) ->
    call({exec, flags(Opts), Code, Vars}, Opts).

%%% ------------------------------------------------------------------
%%% Builtins
%%%
%%% One wrapper per value-returning function of Python's `builtins'
%%% module. Arguments are values (an atom is a `beam.Atom' string here,
%%% never a module); optional positional arguments are extra arities and
%%% keyword-only ones a trailing kwargs argument. `list' is `pylist' as in
%%% the original; `repr/1' and `str/1' are above.
%%% ------------------------------------------------------------------

%% @doc `abs(X)'; also serves as `operator.abs' (same function).
-spec abs(term()) -> term().
abs(X) -> builtin(abs, [X]).

%% @doc `all(Iterable)': true when no element is false.
-spec all(term()) -> boolean().
all(Iterable) -> builtin(all, [Iterable]).

%% @doc `any(Iterable)': true when some element is true.
-spec any(term()) -> boolean().
any(Iterable) -> builtin(any, [Iterable]).

%% @doc `ascii(X)': `repr' with non-ASCII characters escaped.
-spec ascii(term()) -> text().
ascii(X) -> builtin(ascii, [X]).

%% @doc `bin(Int)': `<<"0b101">>' for 5.
-spec bin(term()) -> text().
bin(X) -> builtin(bin, [X]).

%% @doc `bool()': `false'.
-spec bool() -> boolean().
bool() -> builtin(bool, []).

%% @doc `bool(X)': Python's truth value of `X' (`[]', `0', `<<>>' are false).
-spec bool(term()) -> boolean().
bool(X) -> builtin(bool, [X]).

%% @doc `bytearray()': an empty binary.
-spec bytearray() -> binary().
bytearray() -> builtin(bytearray, []).

%% @doc `bytearray(Source)': a size, an iterable of bytes or a buffer.
-spec bytearray(term()) -> binary().
bytearray(Source) -> builtin(bytearray, [Source]).

%% @doc `bytearray(String, Encoding)'.
-spec bytearray(term(), text()) -> binary().
bytearray(Source, Encoding) -> builtin(bytearray, [Source, Encoding]).

%% @doc `bytearray(String, Encoding, Errors)'.
-spec bytearray(term(), text(), text()) -> binary().
bytearray(Source, Encoding, Errors) -> builtin(bytearray, [Source, Encoding, Errors]).

%% @doc `bytes()': an empty binary.
-spec bytes() -> binary().
bytes() -> builtin(bytes, []).

%% @doc `bytes(Source)': a size, an iterable of bytes or a buffer.
-spec bytes(term()) -> binary().
bytes(Source) -> builtin(bytes, [Source]).

%% @doc `bytes(String, Encoding)': `bytes(<<"é"/utf8>>, <<"latin-1">>)'.
-spec bytes(term(), text()) -> binary().
bytes(Source, Encoding) -> builtin(bytes, [Source, Encoding]).

%% @doc `bytes(String, Encoding, Errors)'.
-spec bytes(term(), text(), text()) -> binary().
bytes(Source, Encoding, Errors) -> builtin(bytes, [Source, Encoding, Errors]).

%% @doc `callable(X)'.
-spec callable(term()) -> boolean().
callable(X) -> builtin(callable, [X]).

%% @doc `chr(Codepoint)': a one-character string.
-spec chr(non_neg_integer()) -> text().
chr(Codepoint) -> builtin(chr, [Codepoint]).

%% @doc `compile(Source, Filename, Mode)': a code object (a handle).
-spec compile(text(), text(), exec | eval | single | text()) -> handle().
compile(Source, Filename, Mode) -> builtin(compile, [Source, Filename, Mode]).

%% @doc `compile(Source, Filename, Mode, **Kwargs)' (`flags',
%% `dont_inherit', `optimize').
-spec compile(text(), text(), exec | eval | single | text(), kwargs()) -> handle().
compile(Source, Filename, Mode, Kwargs) ->
    builtin(compile, [Source, Filename, Mode], Kwargs).

%% @doc `complex()': `0j' (a handle: complex numbers have no term).
-spec complex() -> handle().
complex() -> builtin(complex, []).

%% @doc `complex(Real)' or `complex(String)'.
-spec complex(term()) -> handle().
complex(X) -> builtin(complex, [X]).

%% @doc `complex(Real, Imag)'.
-spec complex(number(), number()) -> handle().
complex(Real, Imag) -> builtin(complex, [Real, Imag]).

%% @doc `dict()': the empty map (a dict converts to a map; use
%% `init(builtins, dict)' for a handle to a new dict).
-spec dict() -> map().
dict() -> builtin(dict, []).

%% @doc As in the original, a proplist is keyword arguments:
%% `dict([{"a", 1}])' is `dict(a=1)', `#{<<"a">> => 1}'. A map or a handle
%% is copied: `dict(Mapping)'.
-spec dict(kwargs() | map() | handle()) -> map().
dict(Kwargs) when is_list(Kwargs) -> builtin(dict, [], Kwargs);
dict(Mapping) -> builtin(dict, [Mapping]).

%% @doc `dict(Iterable, **Kwargs)': `dict([{1, a}], [])' is `#{1 => a}'.
-spec dict(term(), kwargs()) -> map().
dict(Iterable, Kwargs) -> builtin(dict, [Iterable], Kwargs).

%% @doc The names in a worker's namespace, elided as {@link dir/1}.
-spec dir() -> [text() | '...'].
dir() -> elide(pdir()).

%% @doc `dir(X)', elided as in the original: at most 28 names, then the
%% atom `...' when there are more. {@link pdir/1} gives them all.
-spec dir(term()) -> [text() | '...'].
dir(X) -> elide(pdir(X)).

%% @doc `divmod(A, B)': `{A // B, A % B}'.
-spec divmod(term(), term()) -> {term(), term()}.
divmod(A, B) -> builtin(divmod, [A, B]).

%% @doc `enumerate(Iterable)': an iterator (a handle) of `{Index, Item}'.
-spec enumerate(term()) -> handle().
enumerate(Iterable) -> builtin(enumerate, [Iterable]).

%% @doc `enumerate(Iterable, Start)'.
-spec enumerate(term(), integer()) -> handle().
enumerate(Iterable, Start) -> builtin(enumerate, [Iterable, Start]).

%% @doc `filter(Function, Iterable)': an iterator (a handle). `Function'
%% is a callable handle, or `undefined' (None) to keep true elements.
-spec filter(handle() | undefined, term()) -> handle().
filter(Function, Iterable) -> builtin(filter, [Function, Iterable]).

%% @doc `float()': `0.0'.
-spec float() -> float().
float() -> builtin(float, []).

%% @doc `float(X)': a number or a string; NaN and infinities come back as
%% `nan', `inf', `'-inf''.
-spec float(term()) -> float() | nan | inf | '-inf'.
float(X) -> builtin(float, [X]).

%% @doc `format(Value)': `str(Value)' through `__format__'.
-spec format(term()) -> text().
format(Value) -> builtin(format, [Value]).

%% @doc `format(Value, Spec)': `format(3.14159, <<".2f">>)' is `<<"3.14">>'.
-spec format(term(), text()) -> text().
format(Value, Spec) -> builtin(format, [Value, Spec]).

%% @doc `frozenset()' (a handle: sets have no term).
-spec frozenset() -> handle().
frozenset() -> builtin(frozenset, []).

%% @doc `frozenset(Iterable)'.
-spec frozenset(term()) -> handle().
frozenset(Iterable) -> builtin(frozenset, [Iterable]).

%% @doc `getattr(Object, Name)'.
-spec getattr(term(), name()) -> term().
getattr(Object, Name) -> builtin(getattr, [Object, Name]).

%% @doc `getattr(Object, Name, Default)'.
-spec getattr(term(), name(), term()) -> term().
getattr(Object, Name, Default) -> builtin(getattr, [Object, Name, Default]).

%% @doc `hasattr(Object, Name)'.
-spec hasattr(term(), name()) -> boolean().
hasattr(Object, Name) -> builtin(hasattr, [Object, Name]).

%% @doc `hash(X)'. String hashes vary between runs (Python's hash
%% randomisation).
-spec hash(term()) -> integer().
hash(X) -> builtin(hash, [X]).

%% @doc `hex(Int)': `<<"0xff">>' for 255.
-spec hex(term()) -> text().
hex(X) -> builtin(hex, [X]).

%% @doc `id(X)': the identity of the Python object (stable for a handle).
-spec id(term()) -> integer().
id(X) -> builtin(id, [X]).

%% @doc `int()': `0'.
-spec int() -> integer().
int() -> builtin(int, []).

%% @doc `int(X)': a number truncated, or a string in base 10.
-spec int(term()) -> integer().
int(X) -> builtin(int, [X]).

%% @doc `int(String, Base)', or with keyword arguments as in the original:
%% `int(<<"101010">>, [{base, 2}])' is 42.
-spec int(term(), integer() | kwargs()) -> integer().
int(X, Kwargs) when is_list(Kwargs); is_map(Kwargs) -> builtin(int, [X], Kwargs);
int(X, Base) -> builtin(int, [X, Base]).

%% @doc `isinstance(Object, ClassOrTuple)': classes are handles, e.g.
%% `py:const(builtins, int)'.
-spec isinstance(term(), term()) -> boolean().
isinstance(Object, Class) -> builtin(isinstance, [Object, Class]).

%% @doc `issubclass(Class, ClassOrTuple)'.
-spec issubclass(term(), term()) -> boolean().
issubclass(Class, Of) -> builtin(issubclass, [Class, Of]).

%% @doc `iter(Iterable)': an iterator (a handle), for {@link next/1}.
-spec iter(term()) -> handle().
iter(Iterable) -> builtin(iter, [Iterable]).

%% @doc `iter(Callable, Sentinel)': calls `Callable()' until it returns
%% `Sentinel'.
-spec iter(term(), term()) -> handle().
iter(Callable, Sentinel) -> builtin(iter, [Callable, Sentinel]).

%% @doc `len(X)'.
-spec len(term()) -> non_neg_integer().
len(X) -> builtin(len, [X]).

%% @doc `list()': `[]'. Named `pylist' as in the original.
-spec pylist() -> list().
pylist() -> builtin(list, []).

%% @doc `list(Iterable)': the elements of an iterable handle (a range, an
%% iterator, a set...) as an Erlang list.
-spec pylist(term()) -> list().
pylist(Iterable) -> builtin(list, [Iterable]).

%% @doc `map(Function, Iterable)': an iterator (a handle).
-spec map(term(), term()) -> handle().
map(Function, Iterable) -> builtin(map, [Function, Iterable]).

%% @doc `map(Function, Iterable1, Iterable2)'.
-spec map(term(), term(), term()) -> handle().
map(Function, Iterable1, Iterable2) -> builtin(map, [Function, Iterable1, Iterable2]).

%% @doc `max(Iterable)'. Keyword-only `key' and `default' through
%% `func(builtins, max, [Iterable], Kwargs)'.
-spec max(term()) -> term().
max(Iterable) -> builtin(max, [Iterable]).

%% @doc `max(A, B)'.
-spec max(term(), term()) -> term().
max(A, B) -> builtin(max, [A, B]).

%% @doc `max(A, B, C)'.
-spec max(term(), term(), term()) -> term().
max(A, B, C) -> builtin(max, [A, B, C]).

%% @doc `max(A, B, C, D)'.
-spec max(term(), term(), term(), term()) -> term().
max(A, B, C, D) -> builtin(max, [A, B, C, D]).

%% @doc `memoryview(Bytes)' (a handle). A binary that is valid UTF-8
%% arrives as `str', which has no buffer: pass a `bytes' handle then.
-spec memoryview(term()) -> handle().
memoryview(Object) -> builtin(memoryview, [Object]).

%% @doc `min(Iterable)'. Keyword-only `key' and `default' through
%% `func(builtins, min, [Iterable], Kwargs)'.
-spec min(term()) -> term().
min(Iterable) -> builtin(min, [Iterable]).

%% @doc `min(A, B)'.
-spec min(term(), term()) -> term().
min(A, B) -> builtin(min, [A, B]).

%% @doc `min(A, B, C)'.
-spec min(term(), term(), term()) -> term().
min(A, B, C) -> builtin(min, [A, B, C]).

%% @doc `min(A, B, C, D)'.
-spec min(term(), term(), term(), term()) -> term().
min(A, B, C, D) -> builtin(min, [A, B, C, D]).

%% @doc The next item of an iterator, as `{ok, Item}', or `done' at the
%% end (Python's `next()' would raise `StopIteration'; `next/2' is Python's
%% form with a default). See also {@link fold/3} and {@link stream/4}.
-spec next(term()) -> {ok, term()} | done.
next(Iterator) -> py_stream:next(Iterator).

%% @doc `next(Iterator, Default)': `Default' at the end.
-spec next(term(), term()) -> term().
next(Iterator, Default) -> builtin(next, [Iterator, Default]).

%% @doc `object()': a new featureless object (a handle).
-spec object() -> handle().
object() -> builtin(object, []).

%% @doc `oct(Int)': `<<"0o10">>' for 8.
-spec oct(term()) -> text().
oct(X) -> builtin(oct, [X]).

%% @doc `open(File)': a file object (a handle) for reading text.
-spec open(term()) -> handle().
open(File) -> builtin(open, [File]).

%% @doc `open(File, Mode)': `open(Path, <<"rb">>)'.
-spec open(term(), text()) -> handle().
open(File, Mode) -> builtin(open, [File, Mode]).

%% @doc `open(File, Mode, **Kwargs)': `[{encoding, <<"latin-1">>}]'.
-spec open(term(), text(), kwargs()) -> handle().
open(File, Mode, Kwargs) -> builtin(open, [File, Mode], Kwargs).

%% @doc `ord(Char)': the code point of a one-character string.
-spec ord(term()) -> non_neg_integer().
ord(Char) -> builtin(ord, [Char]).

%% @doc `pow(Base, Exp)'; also serves as `operator.pow' (same result).
-spec pow(term(), term()) -> term().
pow(Base, Exp) -> builtin(pow, [Base, Exp]).

%% @doc `pow(Base, Exp, Mod)': modular exponentiation.
-spec pow(term(), term(), term()) -> term().
pow(Base, Exp, Mod) -> builtin(pow, [Base, Exp, Mod]).

%% @doc `range(Stop)': a handle (a range has no term); see {@link pylist/1}.
-spec range(integer()) -> handle().
range(Stop) -> builtin(range, [Stop]).

%% @doc `range(Start, Stop)'.
-spec range(integer(), integer()) -> handle().
range(Start, Stop) -> builtin(range, [Start, Stop]).

%% @doc `range(Start, Stop, Step)'.
-spec range(integer(), integer(), integer()) -> handle().
range(Start, Stop, Step) -> builtin(range, [Start, Stop, Step]).

%% @doc `reversed(Sequence)': an iterator (a handle).
-spec reversed(term()) -> handle().
reversed(Sequence) -> builtin(reversed, [Sequence]).

%% @doc `round(Number)': to an integer, halves to even (`round(2.5)' is 2).
-spec round(term()) -> term().
round(Number) -> builtin(round, [Number]).

%% @doc `round(Number, Digits)': `round(0.666666667, 5)' is `0.66667'.
-spec round(term(), integer()) -> term().
round(Number, Digits) -> builtin(round, [Number, Digits]).

%% @doc `set()' (a handle: sets have no term).
-spec set() -> handle().
set() -> builtin(set, []).

%% @doc `set(Iterable)'.
-spec set(term()) -> handle().
set(Iterable) -> builtin(set, [Iterable]).

%% @doc `slice(Stop)' (a handle), for {@link getitem/2}.
-spec slice(term()) -> handle().
slice(Stop) -> builtin(slice, [Stop]).

%% @doc `slice(Start, Stop)'.
-spec slice(term(), term()) -> handle().
slice(Start, Stop) -> builtin(slice, [Start, Stop]).

%% @doc `slice(Start, Stop, Step)'.
-spec slice(term(), term(), term()) -> handle().
slice(Start, Stop, Step) -> builtin(slice, [Start, Stop, Step]).

%% @doc `sorted(Iterable)'.
-spec sorted(term()) -> list().
sorted(Iterable) -> builtin(sorted, [Iterable]).

%% @doc `sorted(Iterable, **Kwargs)': `key' (a callable handle) and
%% `reverse', e.g. `sorted(L, [{reverse, true}])'.
-spec sorted(term(), kwargs()) -> list().
sorted(Iterable, Kwargs) -> builtin(sorted, [Iterable], Kwargs).

%% @doc `sum(Iterable)'.
-spec sum(term()) -> term().
sum(Iterable) -> builtin(sum, [Iterable]).

%% @doc `sum(Iterable, Start)'.
-spec sum(term(), term()) -> term().
sum(Iterable, Start) -> builtin(sum, [Iterable, Start]).

%% @doc `tuple()': `{}'.
-spec tuple() -> tuple().
tuple() -> builtin(tuple, []).

%% @doc `tuple(Iterable)': `tuple([1, 2])' is `{1, 2}'.
-spec tuple(term()) -> tuple().
tuple(Iterable) -> builtin(tuple, [Iterable]).

%% @doc `type(Object)': the object's class, a handle (see {@link ptype/1}
%% for its name).
-spec type(term()) -> handle().
type(Object) -> builtin(type, [Object]).

%% @doc `type(Name, Bases, Namespace)': a new class (a handle), e.g.
%% `type(<<"Point">>, {}, #{<<"x">> => 0})'.
-spec type(text(), tuple(), map()) -> handle().
type(Name, Bases, Namespace) -> builtin(type, [Name, Bases, Namespace]).

%% @doc A worker's namespace as a map, elided as {@link vars/1}.
-spec vars() -> map().
vars() -> elide(pvars()).

%% @doc `vars(Object)' (its `__dict__') as a map, elided as in the
%% original: at most 28 entries, plus `'...' => Omitted' when there are
%% more. {@link pvars/1} gives them all.
-spec vars(term()) -> map().
vars(Object) -> elide(pvars(Object)).

%% @doc `zip(Iterable)': an iterator (a handle) of 1-tuples.
-spec zip(term()) -> handle().
zip(Iterable) -> builtin(zip, [Iterable]).

%% @doc `zip(Iterable1, Iterable2)': an iterator of pairs.
-spec zip(term(), term()) -> handle().
zip(Iterable1, Iterable2) -> builtin(zip, [Iterable1, Iterable2]).

%% @doc `zip(Iterable1, Iterable2, Iterable3)'.
-spec zip(term(), term(), term()) -> handle().
zip(Iterable1, Iterable2, Iterable3) -> builtin(zip, [Iterable1, Iterable2, Iterable3]).

builtin(Name, Args) ->
    builtin(Name, Args, []).

builtin(Name, Args, Kwargs) ->
    call({call, flags([]), {builtins, Name}, Args, Kwargs}, []).

%%% ------------------------------------------------------------------
%%% Operators
%%%
%%% Python's `operator' module, except the in-place functions (`iadd'...,
%%% `setitem', `delitem') and `call' (that is `func(Handle, Args)').
%%% Python names ending in `_' end in `-' as in the original: `'and-'',
%%% `'or-'', `'not-'', `'is-'', `'is-not''.
%%% ------------------------------------------------------------------

%% @doc `A < B'.
-spec lt(term(), term()) -> term().
lt(A, B) -> operator(lt, [A, B]).

%% @doc `A <= B'.
-spec le(term(), term()) -> term().
le(A, B) -> operator(le, [A, B]).

%% @doc `A == B'.
-spec eq(term(), term()) -> term().
eq(A, B) -> operator(eq, [A, B]).

%% @doc `A != B'.
-spec ne(term(), term()) -> term().
ne(A, B) -> operator(ne, [A, B]).

%% @doc `A >= B'.
-spec ge(term(), term()) -> term().
ge(A, B) -> operator(ge, [A, B]).

%% @doc `A > B'.
-spec gt(term(), term()) -> term().
gt(A, B) -> operator(gt, [A, B]).

%% @doc `not X' (`operator.not_').
-spec 'not-'(term()) -> boolean().
'not-'(X) -> operator(not_, [X]).

%% @doc `bool(X)' (`operator.truth').
-spec truth(term()) -> boolean().
truth(X) -> operator(truth, [X]).

%% @doc `A is B' (`operator.is_'): identity of the Python objects, kept
%% for handles.
-spec 'is-'(term(), term()) -> boolean().
'is-'(A, B) -> operator(is_, [A, B]).

%% @doc `A is not B' (`operator.is_not').
-spec 'is-not'(term(), term()) -> boolean().
'is-not'(A, B) -> operator(is_not, [A, B]).

%% @doc `A + B'.
-spec add(term(), term()) -> term().
add(A, B) -> operator(add, [A, B]).

%% @doc `A // B'.
-spec floordiv(term(), term()) -> term().
floordiv(A, B) -> operator(floordiv, [A, B]).

%% @doc `A.__index__()': `X' as an integer, for integer-like objects only.
-spec index(term()) -> integer().
index(X) -> operator(index, [X]).

%% @doc `A % B'.
-spec mod(term(), term()) -> term().
mod(A, B) -> operator(mod, [A, B]).

%% @doc `A * B'.
-spec mul(term(), term()) -> term().
mul(A, B) -> operator(mul, [A, B]).

%% @doc `A @ B'.
-spec matmul(term(), term()) -> term().
matmul(A, B) -> operator(matmul, [A, B]).

%% @doc `-X'.
-spec neg(term()) -> term().
neg(X) -> operator(neg, [X]).

%% @doc `+X'.
-spec pos(term()) -> term().
pos(X) -> operator(pos, [X]).

%% @doc `A - B': `sub(Later, Earlier)' of two datetimes is a timedelta.
-spec sub(term(), term()) -> term().
sub(A, B) -> operator(sub, [A, B]).

%% @doc `A / B'.
-spec truediv(term(), term()) -> term().
truediv(A, B) -> operator(truediv, [A, B]).

%% @doc `A & B' (`operator.and_').
-spec 'and-'(term(), term()) -> term().
'and-'(A, B) -> operator(and_, [A, B]).

%% @doc `~X'.
-spec inv(term()) -> term().
inv(X) -> operator(inv, [X]).

%% @doc `~X' (the same as {@link inv/1}).
-spec invert(term()) -> term().
invert(X) -> operator(invert, [X]).

%% @doc `A << B'.
-spec lshift(term(), term()) -> term().
lshift(A, B) -> operator(lshift, [A, B]).

%% @doc `A | B' (`operator.or_').
-spec 'or-'(term(), term()) -> term().
'or-'(A, B) -> operator(or_, [A, B]).

%% @doc `A >> B'.
-spec rshift(term(), term()) -> term().
rshift(A, B) -> operator(rshift, [A, B]).

%% @doc `A ^ B'.
-spec 'xor'(term(), term()) -> term().
'xor'(A, B) -> operator('xor', [A, B]).

%% @doc `A + B' for sequences (lists, strings, tuples).
-spec concat(term(), term()) -> term().
concat(A, B) -> operator(concat, [A, B]).

%% @doc `B in A'.
-spec contains(term(), term()) -> boolean().
contains(Container, Item) -> operator(contains, [Container, Item]).

%% @doc How many elements of `A' equal `B'.
-spec countOf(term(), term()) -> non_neg_integer().
countOf(A, B) -> operator(countOf, [A, B]).

%% @doc `A[B]': an index, a key or a slice handle.
-spec getitem(term(), term()) -> term().
getitem(A, B) -> operator(getitem, [A, B]).

%% @doc The index of the first element of `A' equal to `B'.
-spec indexOf(term(), term()) -> non_neg_integer().
indexOf(A, B) -> operator(indexOf, [A, B]).

%% @doc An estimate of `len(X)' (exact for sequences and ranges).
-spec length_hint(term()) -> non_neg_integer().
length_hint(X) -> operator(length_hint, [X]).

%% @doc An estimate of `len(X)', `Default' when there is none.
-spec length_hint(term(), non_neg_integer()) -> non_neg_integer().
length_hint(X, Default) -> operator(length_hint, [X, Default]).

%% @doc A callable (a handle) that fetches attribute `Name' (may be dotted)
%% from its argument.
-spec attrgetter(name()) -> handle().
attrgetter(Name) -> operator(attrgetter, [Name]).

%% @doc A callable (a handle) that fetches `Item' from its argument:
%% `sorted(Pairs, [{key, itemgetter(1)}])'.
-spec itemgetter(term()) -> handle().
itemgetter(Item) -> operator(itemgetter, [Item]).

%% @doc A callable (a handle) that calls method `Name' of its argument.
-spec methodcaller(name()) -> handle().
methodcaller(Name) -> operator(methodcaller, [Name]).

%% @doc As {@link methodcaller/1}, passing `Args' (a list, as in
%% {@link method/3}; the original took one argument here).
-spec methodcaller(name(), args()) -> handle().
methodcaller(Name, Args) when is_list(Args) -> operator(methodcaller, [Name | Args]);
methodcaller(_Name, Args) -> erlang:error({py_badarg, bad_args, Args}).

%% @doc As {@link methodcaller/2}, with keyword arguments.
-spec methodcaller(name(), args(), kwargs()) -> handle().
methodcaller(Name, Args, Kwargs) when is_list(Args) ->
    call({call, flags([]), {operator, methodcaller}, [Name | Args], Kwargs}, []);
methodcaller(_Name, Args, _Kwargs) ->
    erlang:error({py_badarg, bad_args, Args}).

operator(Name, Args) ->
    call({call, flags([]), {operator, Name}, Args, []}, []).

%%% ------------------------------------------------------------------
%%% Non-Python additions (the original's names)
%%% ------------------------------------------------------------------

%% The original's REPL showed 28 elements of a long result.
-define(ELIDED, 28).

%% @doc All the names in a worker's namespace (`dir()' there).
-spec pdir() -> [text()].
pdir() -> eval(<<"dir()">>).

%% @doc `dir(X)', all of it.
-spec pdir(term()) -> [text()].
pdir(X) -> builtin(dir, [X]).

%% @doc A worker's namespace (`vars()' there), all of it.
-spec pvars() -> map().
pvars() -> eval(<<"dict(vars())">>).

%% @doc `vars(Object)' as a map, all of it. A class's `__dict__' (a
%% read-only mapping proxy) is copied into a dict first.
-spec pvars(term()) -> map().
pvars(Object) ->
    Namespace = func(builtins, vars, [Object], [], [{return, handle}]),
    builtin(dict, [Namespace]).

%% @doc The name of the object's class, as in handles:
%% `<<"datetime.datetime">>', `<<"int">>'.
-spec ptype(term()) -> binary().
ptype(Object) ->
    {'$py', Type, _} = value(Object, [{return, handle}]),
    Type.

%% @doc The term with every handle in it (in lists, tuples and maps too)
%% shown as `{'$py', TypeName, Repr}', `Repr' being Python's `repr()':
%% what the handles hold, readable in the shell.
-spec prepr(term()) -> term().
prepr({'$py', Type, Ref} = Handle) when is_binary(Type), is_reference(Ref) ->
    {'$py', Type, repr(Handle)};
prepr([Head | Tail]) ->
    [prepr(Head) | prepr(Tail)];
prepr(Tuple) when is_tuple(Tuple) ->
    list_to_tuple(prepr(tuple_to_list(Tuple)));
prepr(Map) when is_map(Map) ->
    maps:from_list(prepr(maps:to_list(Map)));
prepr(Other) ->
    Other.

%% A list cut to ?ELIDED elements, then '...'; a map to ?ELIDED entries
%% (the smallest keys), then '...' => how many were left out.
elide(List) when is_list(List), length(List) > ?ELIDED ->
    lists:sublist(List, ?ELIDED) ++ ['...'];
elide(Map) when is_map(Map), map_size(Map) > ?ELIDED ->
    Kept = lists:sublist(lists:sort(maps:keys(Map)), ?ELIDED),
    maps:put('...', map_size(Map) - ?ELIDED, maps:with(Kept, Map));
elide(Short) ->
    Short.

%%% ------------------------------------------------------------------
%%% State: contexts, lazy iteration and streams
%%%
%%% A context is a namespace of its own, pinned to one worker thread.
%%% Every function of this module runs in a context when given the option
%%% `{context, Ctx}' (those taking options), or when called inside
%%% `with_context(Ctx, Fun)' (all of them, builtins and operators too).
%%% ------------------------------------------------------------------

%% @doc A new context owned by the calling process: its own namespace, and
%% every call through it runs on the same worker thread. It is closed, and
%% the Python objects it holds released, when the process exits.
-spec context() -> py_context:context().
context() ->
    py_context:new().

%% @doc The context named `Name' (made on first use), shared by all
%% processes until {@link drop_context/1}.
-spec context(term()) -> py_context:context().
context(Name) ->
    py_context:named(Name).

%% @doc Closes a named context (or a context): its objects are released;
%% later calls through it raise `py_context_closed'.
-spec drop_context(term()) -> ok.
drop_context(NameOrContext) ->
    py_context:drop(NameOrContext).

%% @doc Runs `Fun' with every py call of this process in `Context'.
-spec with_context(py_context:context(), fun(() -> Result)) -> Result.
with_context(Context, Fun) ->
    py_context:with(Context, Fun).

%% @doc Folds `Fun(Item, Acc)' over any Python iterable (a handle or a
%% value), pulling items in batches: a generator is never materialised.
-spec fold(fun((term(), Acc) -> Acc), Acc, term()) -> Acc.
fold(Fun, Acc, Iterable) ->
    py_stream:fold(Fun, Acc, Iterable).

%% @doc Streams the items of `Module.Function(*Args)' to the calling
%% process, a window of 100 items ahead at most. See {@link stream/4}.
-spec stream(name(), name(), args()) -> py_stream:stream().
stream(Module, Function, Args) ->
    py_stream:start(Module, Function, Args, []).

%% @doc Streams the items of `Module.Function(*Args)' (any iterable) to
%% the calling process as `{py_stream, S, {item, Item}}' messages, then
%% `{py_stream, S, done}' or `{py_stream, S, {error, Reason}}'. Python
%% never runs more than `{window, N}' items ahead of what was acknowledged
%% with {@link stream_ack/1}. Other options: `{kwargs, KW}' and the call
%% options. The iterator is closed when the caller exits or calls
%% {@link stream_close/1}.
-spec stream(name(), name(), args(), list()) -> py_stream:stream().
stream(Module, Function, Args, Opts) ->
    py_stream:start(Module, Function, Args, Opts).

%% @doc Acknowledges one streamed item.
-spec stream_ack(py_stream:stream()) -> ok.
stream_ack(Stream) ->
    py_stream:ack(Stream).

%% @doc Acknowledges `N' streamed items.
-spec stream_ack(py_stream:stream(), pos_integer()) -> ok.
stream_ack(Stream, N) ->
    py_stream:ack(Stream, N).

%% @doc Receives and acknowledges the next item: `{ok, Item}' or `done';
%% raises the stream's error, or `{py_timeout, Timeout}'.
-spec stream_next(py_stream:stream(), timeout()) -> {ok, term()} | done.
stream_next(Stream, Timeout) ->
    py_stream:next_item(Stream, Timeout).

%% @doc Stops a stream early; the Python iterator is closed.
-spec stream_close(py_stream:stream()) -> ok.
stream_close(Stream) ->
    py_stream:close(Stream).

%%% ------------------------------------------------------------------
%%% Parallel and distributed calls (see the README, "Executing Code in
%%% Parallel" and "Distributed Python"; the machinery is in py_parallel
%%% and py_remote).
%%%
%%% All workers of a node share one interpreter: one `__main__', one
%%% `sys.modules', one GIL. What differs between workers is their thread:
%%% `threading.local' data, `decimal' contexts, objects bound to the thread
%%% that made them. Parallelism for CPU-bound Python comes from more
%%% nodes, each with its own interpreter.
%%% ------------------------------------------------------------------

%% @doc Calls `Module.Function(*Args)' once on every worker of this node,
%% at the same time; returns `[{WorkerId, {ok, Value} | {error, Reason}}]'
%% ordered by worker id. For per-thread state (see above): a module
%% imported by one worker is imported for all.
-spec on_all_workers(name(), name(), args()) -> [{pos_integer(), py_parallel:result()}].
on_all_workers(Module, Function, Args) ->
    on_all_workers(Module, Function, Args, [], []).

%% @doc As {@link on_all_workers/3}, with keyword arguments.
-spec on_all_workers(name(), name(), args(), kwargs()) ->
          [{pos_integer(), py_parallel:result()}].
on_all_workers(Module, Function, Args, Kwargs) ->
    on_all_workers(Module, Function, Args, Kwargs, []).

%% @doc As {@link on_all_workers/4}, with call options (`timeout',
%% `strings', `return') and `{nodes, Nodes | all}': every worker of
%% those nodes (`all': {@link nodes/0}), results keyed by
%% `{Node, WorkerId}', `{Node, undefined}' for a node that cannot be
%% reached.
-spec on_all_workers(name(), name(), args(), kwargs(), list()) ->
          [{pos_integer() | {node(), pos_integer() | undefined}, py_parallel:result()}].
on_all_workers(Module, Function, Args, Kwargs, Opts) ->
    py_parallel:on_all_workers({call, flags(Opts), {Module, Function}, Args, Kwargs}, Opts).

%% @doc Calls `Module.Function(*Args)' for each `Args' of `ArgLists', in
%% parallel on this node's workers; returns the results in the order of
%% `ArgLists', each `{ok, Value}' or `{error, Reason}'. See
%% {@link scatter/4}.
-spec scatter(name(), name(), [args()]) -> [py_parallel:result()].
scatter(Module, Function, ArgLists) ->
    scatter(Module, Function, ArgLists, []).

%% @doc As {@link scatter/3}, with options: `{max_in_flight, N}' calls
%% running at most (default: twice the number of workers), `{nodes, Nodes
%% | all}' to spread the calls over the workers of those nodes (`all':
%% this node and every connected node serving Python; in proportion to
%% their workers, a node that finishes sooner takes more), `{kwargs, KW}'
%% for every call, and call options (`{timeout, Ms}' applies to each call).
%% One failed call is one `{error, Reason}'; a node going down fails the
%% calls it was running (`{error, {py_nodedown, Node}}') and gets no more.
-spec scatter(name(), name(), [args()], list()) -> [py_parallel:result()].
scatter(Module, Function, ArgLists, Opts) when is_list(ArgLists) ->
    Flags = flags(Opts),
    Kwargs = proplists:get_value(kwargs, Opts, []),
    py_parallel:scatter([{call, Flags, {Module, Function}, Args, Kwargs} || Args <- ArgLists],
                        Opts);
scatter(_Module, _Function, ArgLists, _Opts) ->
    erlang:error({py_badarg, bad_args, ArgLists}).

%% @doc Starts a Python node `Name@ThisHost' (an Erlang node with py
%% started) with OTP's `peer', on the loopback interface. This node must
%% be distributed and run py. See {@link start_node/2}.
-spec start_node(atom() | string()) -> {ok, node()} | {error, term()}.
start_node(Name) ->
    start_node(Name, #{}).

%% @doc As {@link start_node/1}, with options (see
%% `py_remote:node_opts()'): `#{env => [{workers, 2}]}' sets py settings
%% of the new node (this node's settings are copied otherwise).
-spec start_node(atom() | string(), py_remote:node_opts()) -> {ok, node()} | {error, term()}.
start_node(Name, Opts) ->
    py_remote:start_node(Name, Opts).

%% @doc Stops a node {@link start_node/1} started; calls running there
%% raise `{py_nodedown, Node}'.
-spec stop_node(node()) -> ok | {error, term()}.
stop_node(Node) ->
    py_remote:stop_node(Node).

%% @doc The nodes serving Python: this one (if py runs here) and the
%% connected nodes running py, wherever they were started.
-spec nodes() -> [node()].
nodes() ->
    py_remote:nodes().

%% @doc Releases a handle now rather than when it is garbage: for a
%% remote handle (whose node keeps the object for the process that made
%% it until that process exits), the object is released on its node.
-spec release(handle() | py_remote:remote_handle()) -> ok.
release(Handle) ->
    py_remote:release(Handle).

%%% ------------------------------------------------------------------
%%% The request machinery
%%% ------------------------------------------------------------------

%% @doc Sends a request to a worker and waits for its reply. Internal to
%% py's modules; the request format is documented in `native/src/request.rs'.
%% A call runs in its context (the `context' option, else the one
%% {@link with_context/2} set), else where the scheduler sends it.
%% A call with the option `{node, Node}', or on a remote handle, runs on
%% that node (see {@link py_remote}).
-spec call(tuple(), opts()) -> term().
call(Request, Opts) ->
    case py_remote:route(Request, Opts) of
        local ->
            Timeout = timeout(Opts),
            case context_of(Opts) of
                undefined -> reply(call(Request, Opts, Timeout, ?SUBMIT_TRIES));
                {'$py_context', Context, Member} ->
                    reply(call_context(Context, Member, Request, Timeout))
            end;
        Node ->
            py_remote:call(Node, Request, Opts)
    end.

context_of(Opts) ->
    case lists:keyfind(context, 1, Opts) of
        {context, {'$py_context', _, _} = Context} -> Context;
        {context, Other} -> erlang:error({py_badarg, bad_context, Other});
        false -> py_context:current()
    end.

%% The scheduler picks a target (a worker, or the shared queue) in this
%% process. A job that never ran because its worker was stopping is sent
%% again, a bounded number of times; nothing else is ever resent (it may
%% have run).
call(Request, Opts, Timeout, Tries) ->
    Target = py_pool:pick_target(Opts),
    Ref = make_ref(),
    %% Through the shared queue, only calls with a timeout need a
    %% cancellable job (a little dearer). A call to a given worker always
    %% has one: if the worker dies, the caller cancels it and gets an error
    %% at once.
    Cancellable = Target =/= any orelse Timeout =/= infinity,
    case submit(py_pool:destination(Target), Ref, Request, Cancellable) of
        stopped ->
            retry_stopped(Target, Request, Opts, Timeout, Tries);
        {error, _} = Error ->
            Error;
        Job ->
            case await(Target, Ref, Job, Timeout) of
                {error, {py_worker_stopped, _}} when Tries > 1 ->
                    call(Request, Opts, Timeout, Tries - 1);
                Reply ->
                    Reply
            end
    end.

%% The picked worker is being removed or died: out of the pool with it
%% (the pool may not know yet), and try another.
retry_stopped(_Target, _Request, _Opts, _Timeout, 1) ->
    erlang:error(py_worker_stopped);
retry_stopped(Target, Request, Opts, Timeout, Tries) ->
    case Target of
        any -> ok;
        _ -> py_pool:forget(py_pool:worker(Target))
    end,
    call(Request, Opts, Timeout, Tries - 1).

%% A context is pinned to its worker: nowhere else to send the call. As
%% for any call aimed at one worker, the caller watches that worker's
%% process while it waits (so the job is always cancellable).
call_context(Context, Member, Request, Timeout) ->
    Ref = make_ref(),
    case submit(Context, Ref, Request, true) of
        closed -> {error, py_context_closed};
        stopped ->
            %% Its worker is gone, and the context with it: a named one is
            %% made afresh by the next py:context(Name).
            py_context:forget(Context),
            {error, py_context_closed};
        {error, _} = Error -> Error;
        Job -> await(Member, Ref, Job, Timeout)
    end.

submit(Destination, Ref, Request, Cancellable) ->
    py_job:submit(Destination, Ref, Request, Cancellable).

%% Waits for the reply of a job sent to `Target': `any' (the shared
%% queue) or a pool member (calls aimed at a worker, contexts included).
await(_Target, Ref, ok, infinity) ->
    receive {Ref, Reply} -> Reply end;
await(any, Ref, Job, Timeout) ->
    receive
        {Ref, Reply} -> Reply
    after Timeout ->
        give_up(any, Ref, Job, Timeout)
    end;
await(Member, Ref, Job, Timeout) ->
    %% The worker's owner process lives as long as the worker serves calls:
    %% if it dies, no reply may ever come (a thread blocked in C code).
    MRef = erlang:monitor(process, py_pool:owner(Member)),
    receive
        {Ref, Reply} ->
            erlang:demonitor(MRef, [flush]),
            Reply;
        {'DOWN', MRef, process, _, _} ->
            case py_nif:cancel(Job) of
                replied -> receive {Ref, Reply} -> Reply end;
                cancelled -> {error, {py_worker_down, py_pool:thread(Member)}}
            end
    after Timeout ->
        erlang:demonitor(MRef, [flush]),
        give_up(Member, Ref, Job, Timeout)
    end.

give_up(Target, Ref, Job, Timeout) ->
    %% Where it runs, if it does: that worker is then watched for a job
    %% the interrupt cannot reach (see py_worker).
    Where = py_nif:job_where(Job),
    case py_nif:cancel(Job) of
        replied ->
            receive {Ref, Reply} -> Reply end;
        cancelled ->
            py_pool:timed_out(Target, Where, Timeout),
            {error, {py_timeout, Timeout}}
    end.

reply({ok, Value}) -> Value;
reply({error, Reason}) -> erlang:error(Reason).

flags(Opts) ->
    Strings = case proplists:get_value(strings, Opts) of
                  undefined -> py_config:get(strings);
                  S -> S
              end,
    B1 = case Strings of charlist -> ?CHARLISTS; _ -> 0 end,
    B2 = case proplists:get_value(return, Opts, value) of handle -> ?HANDLE; _ -> 0 end,
    B1 bor B2.

%% Checked before anything is submitted: a bad value must not leave a job
%% running whose reply nobody waits for.
timeout(Opts) ->
    case proplists:get_value(timeout, Opts) of
        undefined -> py_config:get(call_timeout);
        infinity -> infinity;
        T when is_integer(T), T >= 0 -> T;
        T -> erlang:error({py_badarg, bad_timeout, T})
    end.

%% A callable named by a dotted atom or binary, or a handle.
target(Name) when is_atom(Name); is_binary(Name) -> Name;
target({'$py', _, _} = Handle) -> Handle;
target(Other) -> erlang:error({py_badarg, bad_name, Other}).

%% Methods and attributes apply to the object itself: a bare atom is a
%% value here (an Atom object), never a module name.
as_object(Object) when is_tuple(Object), element(1, Object) =:= '$py' -> Object;
as_object(Object) -> {'$py_value', Object}.
