%%% @doc py's asyncio event loop: the Erlang process that owns the loop
%%% thread of the NIF (see `native/src/event_loop.rs').
%%%
%%% A call whose result is awaitable (a coroutine, a Task, a Future) is
%%% handed by its worker to this loop, which awaits it without holding the
%%% worker and answers the caller when it is done. The loop starts before
%%% the workers and stops after them: the coroutines still pending then
%%% are cancelled (`CancelledError' inside them, their `finally' blocks
%%% run, for up to `shutdown_timeout' ms) and their callers get
%%% `{error, py_loop_stopped}'.
%%%
%%% A loop whose thread does not end within the grace (a coroutine blocked
%%% in C code, such as `time.sleep(600)') is abandoned: its waiting
%%% callers are answered from here, and the thread ends whenever that code
%%% returns. The NIF ties the thread to this process: if it dies (even
%%% killed), the loop stops the same way, without the grace.
%%% @end
-module(py_loop).
-behaviour(gen_server).

-include_lib("kernel/include/logger.hrl").

-export([start_link/0, pending/0]).
-export([init/1, handle_call/3, handle_cast/2, handle_info/2, terminate/2]).

%% Time allowed beyond the grace for the thread to report that it ended.
-define(MARGIN, 1000).

%% @private
-spec start_link() -> {ok, pid()} | {error, term()}.
start_link() ->
    gen_server:start_link({local, ?MODULE}, ?MODULE, [], []).

%% @doc The number of tasks pending on the loop (0 when py is not running).
-spec pending() -> non_neg_integer().
pending() ->
    case whereis(?MODULE) of
        undefined -> 0;
        Pid -> gen_server:call(Pid, pending)
    end.

%% @private
-spec init([]) -> {ok, map()} | {stop, term()}.
init([]) ->
    %% terminate/2 must run when the supervisor stops us.
    process_flag(trap_exit, true),
    case py_nif:loop_start() of
        {ok, Loop} -> {ok, #{loop => Loop}};
        {error, Reason} -> {stop, {py_loop_start_failed, Reason}}
    end.

%% @private
-spec handle_call(term(), gen_server:from(), map()) -> {reply, term(), map()}.
handle_call(pending, _From, State = #{loop := Loop}) ->
    {_Id, Pending} = py_nif:loop_info(Loop),
    {reply, Pending, State};
handle_call(_Other, _From, State) ->
    {reply, {error, unknown_call}, State}.

%% @private
-spec handle_cast(term(), map()) -> {noreply, map()}.
handle_cast(_Msg, State) ->
    {noreply, State}.

%% @private
-spec handle_info(term(), map()) -> {noreply, map()}.
handle_info(_Other, State) ->
    {noreply, State}.

%% @private
-spec terminate(term(), map()) -> ok.
terminate(_Reason, #{loop := Loop}) ->
    {Id, _} = py_nif:loop_info(Loop),
    Grace = py_config:get(shutdown_timeout),
    ok = py_nif:loop_stop(Loop, Grace),
    receive
        {py_loop_stopped, Id} -> ok
    after Grace + ?MARGIN ->
        %% A coroutine blocked in C code holds the loop's thread: its
        %% callers, and those of every task still on it, are answered
        %% from here; the thread ends whenever that code returns.
        N = py_nif:loop_abandon(Loop),
        ?LOG_WARNING("py: the event loop did not stop within ~b ms (a coroutine blocked in C "
                     "code?); ~b waiting callers answered py_loop_stopped",
                     [Grace + ?MARGIN, N], #{py => loop_stuck}),
        ok
    end.
