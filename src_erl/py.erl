%%% @doc Python for the Erlang ecosystem: call Python functions, read
%%% constants, make objects and call their methods from Erlang, LFE or
%%% Elixir.
%%%
%%% Calls run on a pool of worker threads that embed CPython (see the
%%% README). Arguments and results are converted directly between terms and
%%% Python objects; objects without an Erlang counterpart come back as
%%% handles, `{'$py', TypeName, Ref}', usable in later calls.
%%%
%%% Errors raise in the caller, each a {@link py_errors:error_reason()}:
%%% `{python, Type, Message, Traceback}' for a Python exception,
%%% `{py_badarg, Why, Term}' for a term with no Python counterpart (or
%%% `{py_badarg, bad_option, Opt}' for a bad call option),
%%% `{py_badresult, Why, Handle}' for a result that cannot be a term,
%%% `{py_timeout, Ms}' when a call took too long.
%%%
%%% This module is the facade: each function builds a request
%%% (`py_request'), parses its options (`py_opts') and runs it through
%%% the engine (`py_engine'). The builtin and operator wrappers
%%% (`py:abs/1', `py:'and-'/2', ...) are added by the parse transform
%%% `py_wrappers' from its table; the overview page lists them.
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
-export([pycall/2, pycall/3, repr/1, str/1, value/1, value/2, buffer/1]).
%% Source code
-export([eval/1, eval/2, eval/3, exec/1, exec/2, exec/3]).
%% Builtins and operators: the few written here; the others come from
%% the table of py_wrappers (a parse transform adds them, with specs; the
%% overview page documents them).
-export([dir/0, dir/1, vars/0, vars/1, next/1]).
%% Non-Python additions, named as in the original
-export([pdir/0, pdir/1, pvars/0, pvars/1, ptype/1, prepr/1]).
%% State: contexts, lazy iteration and streams
-export([context/0, context/1, drop_context/1, with_context/2,
         fold/3, stream/3, stream/4, stream_ack/1, stream_ack/2,
         stream_next/2, stream_close/1]).
%% Parallel and distributed calls
-export([on_all_workers/3, on_all_workers/4, on_all_workers/5, scatter/3, scatter/4,
         start_node/1, start_node/2, stop_node/1, nodes/0, release/1]).
%% Pools
-export([start_pool/2, stop_pool/1, pools/0]).
-export_type([handle/0, name/0, args/0, kwargs/0, opts/0, opt/0, text/0, result/0, stream/0]).

%% Wrappers named like auto-imported BIFs: inside this module the names
%% mean the wrappers (callers always write `py:abs/1').
-compile({no_auto_import, [abs/1, float/1, round/1, max/2, min/2]}).
%% `py:nodes()' lists Python nodes; `erlang:nodes()' is written in full.
-compile({no_auto_import, [nodes/0]}).
-compile({parse_transform, py_wrappers}).

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
             | {await, boolean()}
             | {timeout, timeout()}
             | {context, py_context:context()}
             | {node, node()}
             | {pool, atom()}
             | {worker, pos_integer()}
             | {scheduler, py_config:scheduler()}
             | {key, term()}.
-type result() :: {ok, term()} | {error, py_errors:error_reason()}.
%% One item's outcome in {@link scatter/4} and {@link on_all_workers/5}.
-type stream() :: py_stream:stream().
%% A stream started by {@link stream/4} (opaque).
-type opts() :: [opt()].
%% Per-call options: how Python strings come back (default: the `strings'
%% app setting, itself `binary' by default), whether the result is
%% converted or kept as a handle, whether an awaitable result (a
%% coroutine, a Task, a Future) is awaited on py's event loop (default:
%% true; `false' keeps it as a handle), how long to wait, and the context to run
%% in (default: the one {@link with_context/2} set, else none); the node
%% to run on (default: this one, or the node of the remote handles the
%% call works on), the pool to run in (default: `default', this node's
%% workers; see {@link start_pool/2}), the worker (or a node pool's node)
%% to run on (default: the scheduler's choice),
%% the scheduler (default: the `scheduler' setting) and its key. Anything
%% else raises `{py_badarg, bad_option, Opt}'.

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
    run(py_request:call(py_request:target(Callable), [], []), #{}).

%% @doc Calls `Module.Function()'; or, given a dotted name and a list,
%% `Dotted(*Args)': `func(os, getcwd)', `func('math.pow', [2, 16])'.
-spec func(name() | handle(), name() | args()) -> term().
func(Callable, Args) when is_list(Args) ->
    run(py_request:call(py_request:target(Callable), Args, []), #{});
func(Module, Function) ->
    run(py_request:call({Module, Function}, [], []), #{}).

%% @doc `Module.Function(*Args)'; or `Dotted(*Args, **Kwargs)'.
-spec func(name() | handle(), name() | args(), args() | kwargs()) -> term().
func(Callable, Args, Kwargs) when is_list(Args) ->
    run(py_request:call(py_request:target(Callable), Args, Kwargs), #{});
func(Module, Function, Args) ->
    run(py_request:call({Module, Function}, Args, []), #{}).

%% @doc `Module.Function(*Args, **Kwargs)'.
-spec func(name(), name(), args(), kwargs()) -> term().
func(Module, Function, Args, Kwargs) ->
    func(Module, Function, Args, Kwargs, []).

%% @doc `Module.Function(*Args, **Kwargs)' with per-call options.
-spec func(name(), name(), args(), kwargs(), opts()) -> term().
func(Module, Function, Args, Kwargs, Opts) ->
    run(py_request:call({Module, Function}, Args, Kwargs), opts(Opts)).

%% @doc The value a dotted name refers to: `const('math.pi')'.
-spec const(name()) -> term().
const(Dotted) ->
    run(py_request:resolve(Dotted), #{}).

%% @doc A module-level value: `const(math, pi)'.
-spec const(name(), name()) -> term().
const(Module, Name) ->
    run(py_request:getattr(Module, Name), #{}).

%% @doc A module-level value converted by Python's `int', `float' or
%% `str': `const(math, pi, int)' is 3.
-spec const(name(), name(), int | float | str) -> term().
const(Module, Name, Type) when Type =:= int; Type =:= float; Type =:= str ->
    Handle = run(py_request:getattr(Module, Name), #{return => handle}),
    func(builtins, Type, [Handle]);
const(_Module, _Name, Type) ->
    erlang:error({py_badarg, bad_type, Type}).

%%% ------------------------------------------------------------------
%%% Objects
%%% ------------------------------------------------------------------

%% @doc Instantiates a class named by a dotted name: `init('collections.UserDict')'.
-spec init(name()) -> handle().
init(Dotted) ->
    make_object(py_request:target(Dotted), [], []).

%% @doc Instantiates `Module.Class()', or, given a dotted name and a
%% list, `Dotted(*Args)': `init('datetime.date', [1923, 4, 2])'. Always
%% returns a handle.
-spec init(name() | handle(), name() | args()) -> handle().
init(Dotted, Args) when is_list(Args) ->
    make_object(py_request:target(Dotted), Args, []);
init(Module, Class) ->
    make_object({Module, Class}, [], []).

%% @doc `Module.Class(*Args)', or `Dotted(*Args, **Kwargs)'.
-spec init(name(), name() | args(), args() | kwargs()) -> handle().
init(Dotted, Args, Kwargs) when is_list(Args) ->
    make_object(py_request:target(Dotted), Args, Kwargs);
init(Module, Class, Args) ->
    make_object({Module, Class}, Args, []).

%% @doc `Module.Class(*Args, **Kwargs)'.
-spec init(name(), name(), args(), kwargs()) -> handle().
init(Module, Class, Args, Kwargs) ->
    make_object({Module, Class}, Args, Kwargs).

make_object(Target, Args, Kwargs) ->
    run(py_request:call(Target, Args, Kwargs), #{return => handle}).

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
    run(py_request:call(py_request:method(Object, Name), Args, Kwargs), opts(Opts)).

%% @doc An attribute of an object: `attr(Now, year)'.
-spec attr(term(), name()) -> term().
attr(Object, Name) ->
    run(py_request:getattr(py_request:object(Object), Name), #{}).

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
    run(py_request:call({Module, Function}, Args, []), #{}).

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
    run(py_request:value(Object), opts(Opts)).

%% @doc `Binary' for Python as a read-only `memoryview' over the binary's
%% own memory (no copy), where a plain binary would arrive as `str' or
%% `bytes' (a copy). The marker `{'$py_buffer', Binary}' it returns can be
%% passed anywhere a term is (arguments, `Vars' of eval, nested terms).
-spec buffer(binary()) -> {'$py_buffer', binary()}.
buffer(Binary) when is_binary(Binary) ->
    {'$py_buffer', Binary};
buffer(Other) ->
    erlang:error({py_badarg, not_a_binary, Other}).

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
    run(py_request:eval(Code, Vars), opts(Opts)).

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
    run(py_request:exec(Code, Vars), opts(Opts)).

%%% ------------------------------------------------------------------
%%% Builtins and operators
%%%
%%% One wrapper per value-returning function of Python's `builtins'
%%% module and of its `operator' module (without the in-place ones):
%%% `py:abs/1', `py:pylist/1', `py:'and-'/2', ... They come from the table
%%% of `py_wrappers', which adds them here (a parse transform) and
%%% documents them (the overview page). Arguments are values (an atom is
%%% a `beam.Atom' string here, never a module); optional positional
%%% arguments are extra arities and keyword-only ones a trailing kwargs
%%% argument. Written here: those that are more than a call.
%%% ------------------------------------------------------------------

%% @doc The names in a worker's namespace, elided as {@link dir/1}.
-spec dir() -> [text() | '...'].
dir() -> elide(pdir()).

%% @doc `dir(X)', elided as in the original: at most 28 names, then the
%% atom `...' when there are more. {@link pdir/1} gives them all.
-spec dir(term()) -> [text() | '...'].
dir(X) -> elide(pdir(X)).

%% @doc The next item of an iterator, as `{ok, Item}', or `done' at the
%% end (Python's `next()' would raise `StopIteration'; `next/2' is Python's
%% form with a default). See also {@link fold/3} and {@link stream/4}.
-spec next(term()) -> {ok, term()} | done.
next(Iterator) -> py_stream:next(Iterator).

%% @doc A worker's namespace as a map, elided as {@link vars/1}.
-spec vars() -> map().
vars() -> elide(pvars()).

%% @doc `vars(Object)' (its `__dict__') as a map, elided as in the
%% original: at most 28 entries, plus `'...' => Omitted' when there are
%% more. {@link pvars/1} gives them all.
-spec vars(term()) -> map().
vars(Object) -> elide(pvars(Object)).

builtin(Name, Args) ->
    run(py_request:call({builtins, Name}, Args, []), #{}).

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
    Namespace = run(py_request:call({builtins, vars}, [Object], []), #{return => handle}),
    builtin(dict, [Namespace]).

%% @doc The name of the object's class, as in handles:
%% `<<"datetime.datetime">>', `<<"int">>'.
-spec ptype(term()) -> binary().
ptype(Object) ->
    {'$py', Type, _} = run(py_request:value(Object), #{return => handle}),
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
-spec stream(name(), name(), args()) -> stream().
stream(Module, Function, Args) ->
    py_stream:start(Module, Function, Args, #{}).

%% @doc Streams the items of `Module.Function(*Args)' (any iterable) to
%% the calling process as `{py_stream, S, {item, Item}}' messages, then
%% `{py_stream, S, done}' or `{py_stream, S, {error, Reason}}'. Python
%% never runs more than `{window, N}' items ahead of what was acknowledged
%% with {@link stream_ack/1}. Other options: `{kwargs, KW}' and the call
%% options. The iterator is closed when the caller exits or calls
%% {@link stream_close/1}.
-spec stream(name(), name(), args(), list()) -> stream().
stream(Module, Function, Args, Opts) ->
    py_stream:start(Module, Function, Args, py_opts:parse(Opts, stream)).

%% @doc Acknowledges one streamed item.
-spec stream_ack(stream()) -> ok.
stream_ack(Stream) ->
    py_stream:ack(Stream).

%% @doc Acknowledges `N' streamed items.
-spec stream_ack(stream(), pos_integer()) -> ok.
stream_ack(Stream, N) ->
    py_stream:ack(Stream, N).

%% @doc Receives and acknowledges the next item: `{ok, Item}' or `done';
%% raises the stream's error, or `{py_timeout, Timeout}'.
-spec stream_next(stream(), timeout()) -> {ok, term()} | done.
stream_next(Stream, Timeout) ->
    py_stream:next_item(Stream, Timeout).

%% @doc Stops a stream early; the Python iterator is closed.
-spec stream_close(stream()) -> ok.
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
-spec on_all_workers(name(), name(), args()) -> [{pos_integer(), result()}].
on_all_workers(Module, Function, Args) ->
    on_all_workers(Module, Function, Args, [], []).

%% @doc As {@link on_all_workers/3}, with keyword arguments.
-spec on_all_workers(name(), name(), args(), kwargs()) ->
          [{pos_integer(), result()}].
on_all_workers(Module, Function, Args, Kwargs) ->
    on_all_workers(Module, Function, Args, Kwargs, []).

%% @doc As {@link on_all_workers/4}, with call options (`timeout',
%% `strings', `return') and `{nodes, Nodes | all}': every worker of
%% those nodes (`all': {@link nodes/0}), results keyed by
%% `{Node, WorkerId}', `{Node, undefined}' for a node that cannot be
%% reached.
-spec on_all_workers(name(), name(), args(), kwargs(), list()) ->
          [{pos_integer() | {node(), pos_integer() | undefined}, result()}].
on_all_workers(Module, Function, Args, Kwargs, Opts) ->
    py_parallel:on_all_workers(py_request:call({Module, Function}, Args, Kwargs),
                               py_opts:parse(Opts, on_all_workers)).

%% @doc Calls `Module.Function(*Args)' for each `Args' of `ArgLists', in
%% parallel on this node's workers; returns the results in the order of
%% `ArgLists', each `{ok, Value}' or `{error, Reason}'. See
%% {@link scatter/4}.
-spec scatter(name(), name(), [args()]) -> [result()].
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
-spec scatter(name(), name(), [args()], list()) -> [result()].
scatter(Module, Function, ArgLists, Opts) when is_list(ArgLists) ->
    Parsed = py_opts:parse(Opts, scatter),
    Kwargs = maps:get(kwargs, Parsed, []),
    py_parallel:scatter([py_request:call({Module, Function}, Args, Kwargs) || Args <- ArgLists],
                        Parsed);
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
%%% Pools (see the README, "Controlling the Python Servers"; the
%%% machinery is in py_pools)
%%% ------------------------------------------------------------------

%% @doc Starts a node pool `Name': `#{kind => nodes, size => N}' starts N
%% Python nodes on this host (OTP `peer', loopback), each with its own
%% interpreter, supervised (a node that dies is started again); `nodes =>
%% [Node]' joins nodes of other machines that run py. Other keys:
%% `workers' (per node), `env' (py settings of the nodes, e.g. their own
%% `venv' and `requirements'), `scheduler', `max_restarts',
%% `restart_period', `boot_timeout' (see `py_pools:spec()'). Calls go
%% there with the option `{pool, Name}'. Returns once every node serves
%% Python.
-spec start_pool(atom(), py_pools:spec()) -> ok | {error, term()}.
start_pool(Name, Spec) ->
    py_pools:start_pool(Name, Spec).

%% @doc Stops a node pool: its nodes halt (calls running there raise
%% `{py_nodedown, Node}'); one that gave up is removed.
-spec stop_pool(atom()) -> ok | {error, term()}.
stop_pool(Name) ->
    py_pools:stop_pool(Name).

%% @doc The pools, by name: `default' (the embedded workers) and the node
%% pools, each with its members and its `state': `running', or
%% `given_up' (its nodes died more often than its restart intensity
%% allows: calls raise `{py_pool_down, Name}' until `stop_pool/1').
-spec pools() -> [py_pools:info()].
pools() ->
    py_pools:pools().

%%% ------------------------------------------------------------------
%%% To the engine
%%% ------------------------------------------------------------------

run(Request, Opts) ->
    py_engine:run(Request, Opts).

opts(Opts) ->
    py_opts:parse(Opts, call).
