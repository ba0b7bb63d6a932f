%%% @doc The registry of live workers, and picking one for a call.
%%%
%%% Callers pick a worker without a process hop: the worker resources are
%%% published as a tuple in `persistent_term', with an `atomics' counter for
%%% round robin. This process only maintains that tuple as workers start and
%%% stop (it monitors them).
%%% @end
-module(py_pool).
-behaviour(gen_server).

-export([start_link/0, register/2, pick/1, workers/0]).
-export([init/1, handle_call/3, handle_cast/2, handle_info/2, terminate/2]).

-define(KEY, {?MODULE, workers}).

-spec start_link() -> {ok, pid()} | {error, term()}.
start_link() ->
    gen_server:start_link({local, ?MODULE}, ?MODULE, [], []).

%% @doc Adds the worker owned by process `Owner' to the pool.
-spec register(pid(), py_nif:worker()) -> ok.
register(Owner, Worker) ->
    gen_server:call(?MODULE, {register, Owner, Worker}).

%% @doc Where the next call goes. By default the shared queue (`any'):
%% the first idle worker takes it, which measured fastest (an idle worker
%% spins on it; a chosen worker must often be woken, which costs tens of
%% microseconds). `{scheduler, round_robin}' picks a worker in turn.
-spec pick(list()) -> py_nif:target().
pick(Opts) ->
    case proplists:get_value(scheduler, Opts, shared) of
        shared -> any;
        round_robin -> round_robin()
    end.

round_robin() ->
    case persistent_term:get(?KEY, undefined) of
        {Workers, Counter} when tuple_size(Workers) > 0 ->
            N = atomics:add_get(Counter, 1, 1),
            element(1 + (N rem tuple_size(Workers)), Workers);
        _ ->
            erlang:error(py_not_started)
    end.

%% @doc The workers now in the pool.
-spec workers() -> [py_nif:worker()].
workers() ->
    case persistent_term:get(?KEY, undefined) of
        {Workers, _} -> tuple_to_list(Workers);
        undefined -> []
    end.

-spec init([]) -> {ok, map()}.
init([]) ->
    Counter = atomics:new(1, [{signed, false}]),
    State = #{counter => Counter, workers => []},
    publish(State),
    {ok, State}.

-spec handle_call(term(), gen_server:from(), map()) -> {reply, term(), map()}.
handle_call({register, Owner, Worker}, _From, State = #{workers := Ws}) ->
    MRef = erlang:monitor(process, Owner),
    New = State#{workers := Ws ++ [{Owner, MRef, Worker}]},
    publish(New),
    {reply, ok, New};
handle_call(_Other, _From, State) ->
    {reply, {error, unknown_call}, State}.

-spec handle_cast(term(), map()) -> {noreply, map()}.
handle_cast(_Msg, State) ->
    {noreply, State}.

-spec handle_info(term(), map()) -> {noreply, map()}.
handle_info({'DOWN', MRef, process, _Pid, _Reason}, State = #{workers := Ws}) ->
    New = State#{workers := lists:keydelete(MRef, 2, Ws)},
    publish(New),
    {noreply, New};
handle_info(_Other, State) ->
    {noreply, State}.

-spec terminate(term(), map()) -> ok.
terminate(_Reason, _State) ->
    _ = persistent_term:erase(?KEY),
    ok.

publish(#{counter := Counter, workers := Ws}) ->
    persistent_term:put(?KEY, {list_to_tuple([W || {_, _, W} <- Ws]), Counter}).
