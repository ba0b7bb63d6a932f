%%% @doc Contexts: Python state owned by Erlang.
%%%
%%% A context is a namespace of its own (what `py:exec' defines, what
%%% `py:eval' and `'__main__'' calls see), and every call through it runs
%%% on the same worker thread. `new/0' makes one owned by the calling
%%% process: it is closed, and the Python objects it held released, when
%%% that process exits. `named/1' makes (or finds) one shared by name, kept
%%% until `drop/1'.
%%%
%%% A call uses a context when it is given the option `{context, Ctx}', or
%%% when it runs inside `with/2' (which covers every function of `py',
%%% builtins and operators included).
%%%
%%% This server only keeps the table of named contexts.
%%% @end
-module(py_context).
-behaviour(gen_server).

-export([new/0, named/1, drop/1, forget/1, with/2, current/0, is_context/1, start_link/0]).
-export([init/1, handle_call/3, handle_cast/2]).

-export_type([context/0]).

-type context() :: {'$py_context', py_nif:context(), py_pool:member()}.
%% The NIF's context and the pool member whose worker runs its calls
%% (callers watch that worker's process while they wait).

-define(TABLE, py_named_contexts).
-define(KEY, '$py_context').

%% @private
%% @doc A new context owned by the calling process.
-spec new() -> context().
new() ->
    Member = pick_member(),
    {?KEY, py_nif:context_new(py_pool:worker(Member), true), Member}.

%% @private
%% @doc The context named `Name', made on first use; shared by every
%% process until {@link drop/1}.
-spec named(term()) -> context().
named(Name) ->
    case ets:lookup(?TABLE, Name) of
        [{_, Ctx, Member}] -> {?KEY, Ctx, Member};
        [] -> gen_server:call(?MODULE, {named, Name})
    end.

%% @private
%% @doc Closes the context named `Name' (or the given context): the
%% objects its namespace held are released; later calls through it raise
%% `py_context_closed'.
-spec drop(term() | context()) -> ok.
drop({?KEY, Ctx, _Member} = Context) ->
    %% A forged context (no NIF context inside) is refused like any
    %% forged term, never a raw badarg from the NIF.
    try py_nif:context_close(Ctx)
    catch error:badarg -> erlang:error({py_badarg, bad_context, Context})
    end;
drop(Name) ->
    gen_server:call(?MODULE, {drop, Name}).

%% @private
%% @doc Forgets a context whose worker is gone: if it was a named one,
%% the next {@link named/1} makes a new one.
-spec forget(py_nif:context()) -> ok.
forget(Ctx) ->
    gen_server:cast(?MODULE, {forget, Ctx}).

%% @private
%% @doc Runs `Fun' with every py call of this process going through
%% `Context'.
-spec with(context(), fun(() -> Result)) -> Result.
with(Context, Fun) ->
    is_context(Context) orelse erlang:error({py_badarg, bad_context, Context}),
    Previous = put(?KEY, Context),
    try
        Fun()
    after
        case Previous of
            undefined -> erase(?KEY);
            _ -> put(?KEY, Previous)
        end
    end.

%% @private
%% @doc The context `with/2' set for this process, if any.
-spec current() -> context() | undefined.
current() ->
    get(?KEY).

%% @private
%% @doc Whether a term is a context.
-spec is_context(term()) -> boolean().
is_context({?KEY, Ctx, Member}) -> is_reference(Ctx) andalso py_pool:is_member(Member);
is_context(_) -> false.

%% The pool member for a new context, in turn.
pick_member() ->
    case py_pool:pick_target(#{scheduler => round_robin}, round_robin) of
        any -> erlang:error(py_not_started);
        Member -> Member
    end.

%%% The server ---------------------------------------------------------

%% @private
-spec start_link() -> {ok, pid()} | {error, term()}.
start_link() ->
    gen_server:start_link({local, ?MODULE}, ?MODULE, [], []).

%% @private
-spec init([]) -> {ok, #{}}.
init([]) ->
    _ = ets:new(?TABLE, [named_table, protected, {read_concurrency, true}]),
    {ok, #{}}.

%% @private
-spec handle_call(term(), gen_server:from(), map()) -> {reply, term(), map()}.
handle_call({named, Name}, _From, State) ->
    case ets:lookup(?TABLE, Name) of
        [{_, Ctx, Member}] ->
            {reply, {?KEY, Ctx, Member}, State};
        [] ->
            Member = pick_member(),
            Ctx = py_nif:context_new(py_pool:worker(Member), false),
            true = ets:insert(?TABLE, {Name, Ctx, Member}),
            {reply, {?KEY, Ctx, Member}, State}
    end;
handle_call({drop, Name}, _From, State) ->
    case ets:lookup(?TABLE, Name) of
        [{_, Ctx, _Member}] ->
            ok = py_nif:context_close(Ctx),
            true = ets:delete(?TABLE, Name),
            {reply, ok, State};
        [] ->
            {reply, ok, State}
    end;
handle_call(_Other, _From, State) ->
    {reply, {error, unknown_call}, State}.

%% @private
-spec handle_cast(term(), map()) -> {noreply, map()}.
handle_cast({forget, Ctx}, State) ->
    true = ets:match_delete(?TABLE, {'_', Ctx, '_'}),
    {noreply, State};
handle_cast(_Msg, State) ->
    {noreply, State}.
