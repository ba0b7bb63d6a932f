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
-export([start/0, stop/0]).
%% Module level
-export([func/2, func/3, func/4, func/5, const/1, const/2, const/3]).
%% Objects
-export([init/1, init/2, init/3, init/4, method/3, method/4, method/5, attr/2]).
%% Raw pass-through and values
-export([pycall/2, pycall/3, repr/1, str/1, value/1, value/2]).
%% Source code
-export([eval/1, eval/2, exec/1, exec/2]).
%% The request machinery (for py's own modules)
-export([call/2]).

-export_type([handle/0, name/0, args/0, kwargs/0, opts/0, opt/0]).

-type handle() :: {'$py', TypeName :: binary(), reference()}.
%% A Python object held by Erlang. It stays alive while the term is alive.
-type name() :: atom() | binary().
%% A module, function, class or attribute name; may be dotted.
-type args() :: [term()].
-type kwargs() :: [{name() | string(), term()}] | #{name() | string() => term()}.
%% Keyword arguments as a proplist or a map.
-type opt() :: {strings, binary | charlist}
             | {return, value | handle}
             | {timeout, timeout()}.
-type opts() :: [opt()].
%% Per-call options: how Python strings come back (default: the `strings'
%% app setting, itself `binary' by default), whether the result is
%% converted or kept as a handle, and how long to wait.

-define(CHARLISTS, 1).
-define(HANDLE, 2).

%%% ------------------------------------------------------------------
%%% Application control
%%% ------------------------------------------------------------------

%% @doc Starts the py application (the interpreter and its workers).
-spec start() -> ok | {error, term()}.
start() ->
    case application:ensure_all_started(py) of
        {ok, _} -> ok;
        {error, _} = Error -> Error
    end.

%% @doc Stops the py application. The interpreter stays loaded (CPython
%% cannot be initialised twice); a later start reuses it.
-spec stop() -> ok | {error, term()}.
stop() ->
    application:stop(py).

%%% ------------------------------------------------------------------
%%% Module level
%%% ------------------------------------------------------------------

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

%% @doc Instantiates `Module.Class()'. Always returns a handle.
-spec init(name(), name()) -> handle().
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
    call({eval, flags([]), Code, Vars}, []).

%% @doc Runs Python statements in a worker's namespace; returns `undefined'.
-spec exec(iodata()) -> term().
exec(Code) ->
    exec(Code, #{}).

%% @doc Runs Python statements with `Vars' bound in the namespace.
-spec exec(iodata(), #{name() => term()}) -> term().
exec(Code, Vars) ->
    call({exec, flags([]), Code, Vars}, []).

%%% ------------------------------------------------------------------
%%% The request machinery
%%% ------------------------------------------------------------------

%% @doc Sends a request to a worker and waits for its reply. Internal to
%% py's modules; the request format is documented in `native/src/request.rs'.
-spec call(tuple(), opts()) -> term().
call(Request, Opts) ->
    Timeout = timeout(Opts),
    Ref = make_ref(),
    case submit(py_pool:pick(Opts), Ref, Request, Timeout) of
        stopped ->
            %% The picked worker is being removed: try another once.
            case submit(py_pool:pick(Opts), Ref, Request, Timeout) of
                stopped -> erlang:error(py_worker_stopped);
                Job -> await(Ref, Job, Timeout)
            end;
        Job ->
            await(Ref, Job, Timeout)
    end.

%% Only calls with a timeout need a cancellable job (a little dearer).
submit(Target, Ref, Request, Timeout) ->
    Cancellable = Timeout =/= infinity,
    case py_nif:submit(Target, Ref, Request, Cancellable) of
        big -> py_nif:submit_dirty(Target, Ref, Request, Cancellable);
        Other -> Other
    end.

await(Ref, ok, infinity) ->
    receive {Ref, Reply} -> reply(Reply) end;
await(Ref, Job, Timeout) ->
    receive
        {Ref, Reply} -> reply(Reply)
    after Timeout ->
        case py_nif:cancel(Job) of
            replied -> receive {Ref, Reply} -> reply(Reply) end;
            cancelled -> erlang:error({py_timeout, Timeout})
        end
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

timeout(Opts) ->
    case proplists:get_value(timeout, Opts) of
        undefined -> py_config:get(call_timeout);
        T -> T
    end.

%% A callable named by a dotted atom or binary, or a handle.
target(Name) when is_atom(Name); is_binary(Name) -> Name;
target({'$py', _, _} = Handle) -> Handle;
target(Other) -> erlang:error({py_badarg, bad_name, Other}).

%% Methods and attributes apply to the object itself: a bare atom is a
%% value here (an Atom object), never a module name.
as_object(Object) when is_tuple(Object), element(1, Object) =:= '$py' -> Object;
as_object(Object) -> {'$py_value', Object}.
