%%% @doc One Python worker: the Erlang process that owns a worker thread of
%%% the NIF. The thread runs the Python code; this process gives it a place
%%% in the supervision tree and registers it with {@link py_pool}.
%%% @end
-module(py_worker).
-behaviour(gen_server).

-export([start_link/1, child_spec/1]).
-export([init/1, handle_call/3, handle_cast/2, terminate/2]).

-spec child_spec(term()) -> supervisor:child_spec().
child_spec(Id) ->
    #{id => {py_worker, Id},
      start => {?MODULE, start_link, [Id]},
      shutdown => 5000,
      type => worker}.

-spec start_link(term()) -> {ok, pid()} | {error, term()}.
start_link(Id) ->
    gen_server:start_link(?MODULE, Id, []).

-spec init(term()) -> {ok, #{id := term(), worker := py_nif:worker()}} | {stop, term()}.
init(Id) ->
    process_flag(trap_exit, true),
    case py_nif:start_worker() of
        {ok, Worker} ->
            ok = py_pool:register(self(), Worker),
            {ok, #{id => Id, worker => Worker}};
        {error, Reason} ->
            {stop, {py_worker_start_failed, Reason}}
    end.

-spec handle_call(term(), gen_server:from(), map()) -> {reply, term(), map()}.
handle_call(worker, _From, State = #{worker := Worker}) ->
    {reply, Worker, State};
handle_call(_Other, _From, State) ->
    {reply, {error, unknown_call}, State}.

-spec handle_cast(term(), map()) -> {noreply, map()}.
handle_cast(_Msg, State) ->
    {noreply, State}.

-spec terminate(term(), map()) -> ok.
terminate(_Reason, #{worker := Worker}) ->
    %% Jobs queued before are still answered; later submissions see
    %% `stopped' and go to another worker.
    py_nif:stop_worker(Worker).
