%%% @private
%%% @doc One Python worker: the Erlang process that owns a worker thread of
%%% the NIF. The thread runs the Python code; this process gives it a place
%%% in the supervision tree, runs the `init' code on it, registers it with
%%% {@link py_pool}, and watches it for a stuck job.
%%%
%%% The NIF ties the thread to this process: when the process dies (even
%%% killed), the thread stops taking jobs, answers the queued ones with
%%% `{py_worker_down, Id}' and interrupts the running one. So killing this
%%% process is how a worker is given up, and its supervisor restarts it.
%%%
%%% A job is stuck when its caller timed out and cancelled it, and it is
%%% still running `stuck_grace' ms later: the interrupt could not reach it
%%% (Python code blocked in C, such as `time.sleep(1000)', sees no
%%% interrupt). The worker then exits and is restarted; the stuck thread
%%% ends by itself whenever the C code returns. Whatever the scheduler, the
%%% caller learns from the NIF which worker ran the job it cancelled (see
%%% {@link py_pool:timed_out/3}).
%%% @end
-module(py_worker).
-behaviour(gen_server).

-include_lib("kernel/include/logger.hrl").

-export([start_link/1, child_spec/2, cancelled/3]).
-export([init/1, handle_call/3, handle_cast/2, handle_info/2, terminate/2]).

%% Extra time the supervisor gives terminate/2 beyond its own draining
%% deadline, so that a drain that times out still ends in order.
-define(SHUTDOWN_MARGIN, 1000).
%% How often a stopping worker checks whether its queue is drained.
-define(DRAIN_POLL, 2).

%% @doc The child spec of the worker with id `Slot'.
-spec child_spec(py_pool:slot(), #{shutdown_timeout := non_neg_integer(), _ => _}) ->
          supervisor:child_spec().
child_spec(Slot, #{shutdown_timeout := Shutdown}) ->
    #{id => {py_worker, Slot},
      start => {?MODULE, start_link, [Slot]},
      restart => permanent,
      shutdown => Shutdown + ?SHUTDOWN_MARGIN,
      type => worker,
      modules => [?MODULE]}.

-spec start_link(py_pool:slot()) -> {ok, pid()} | {error, term()}.
start_link(Slot) ->
    gen_server:start_link(?MODULE, Slot, []).

%% @doc Tells the worker owned by `Owner' that the caller of job `Seq'
%% (the job it was running) gave up after `Timeout' ms and cancelled it:
%% the worker checks after `stuck_grace' ms that the job stopped.
-spec cancelled(pid(), pos_integer(), timeout()) -> ok.
cancelled(Owner, Seq, Timeout) ->
    gen_server:cast(Owner, {cancelled, Seq, Timeout}).

-spec init(py_pool:slot()) -> {ok, map()} | {stop, term()}.
init(Slot) ->
    %% terminate/2 must run when the supervisor stops us: it drains the
    %% queue so that no accepted call is lost.
    process_flag(trap_exit, true),
    logger:update_process_metadata(#{py_worker => Slot}),
    case py_nif:start_worker() of
        {ok, Worker} ->
            case run_init(Worker, py_config:get(init)) of
                ok ->
                    {ok, Kind} = py_pool:register(Slot, self(), Worker),
                    log_start(Kind, Slot, Worker),
                    {ok, #{slot => Slot, worker => Worker, stuck => false}};
                {error, Why} ->
                    py_nif:stop_worker(Worker),
                    {stop, Why}
            end;
        {error, Reason} ->
            {stop, {py_worker_start_failed, Reason}}
    end.

log_start(new, Slot, Worker) ->
    ?LOG_DEBUG("py: worker ~b started (thread ~b)", [Slot, thread(Worker)], #{py => worker_started});
log_start(restarted, Slot, Worker) ->
    ?LOG_WARNING("py: worker ~b restarted (thread ~b)", [Slot, thread(Worker)], #{py => worker_restarted}).

thread(Worker) ->
    maps:get(id, py_nif:worker_info(Worker)).

%% The `init' setting, item by item, on this worker's thread (its own
%% globals: what an item imports or defines is visible to later calls).
run_init(_Worker, []) ->
    ok;
run_init(Worker, [Item | Rest]) ->
    case py_job:run(Worker, init_request(Item), py_config:get(call_timeout)) of
        {ok, _} -> run_init(Worker, Rest);
        {error, Why} -> {error, {bad_config, init, Item, py_errors:describe(Why)}}
    end.

%% Results stay in Python (a handle): they are not used.
init_request(Item) ->
    py_request:set_flags(init_call(Item), py_request:flags(binary, handle)).

init_call(Module) when is_atom(Module) ->
    py_request:exec(<<"import ", (atom_to_binary(Module))/binary>>, #{});
init_call({exec, Code}) ->
    py_request:exec(Code, #{});
init_call({Module, Function}) ->
    py_request:call({Module, Function}, [], []);
init_call({Module, Function, Args}) ->
    py_request:call({Module, Function}, Args, []).

-spec handle_call(term(), gen_server:from(), map()) -> {reply, term(), map()}.
handle_call(_Other, _From, State) ->
    {reply, {error, unknown_call}, State}.

-spec handle_cast(term(), map()) -> {noreply, map()}.
handle_cast({cancelled, Seq, _Timeout}, State) ->
    _ = erlang:send_after(py_config:get(stuck_grace), self(), {stuck_check, Seq}),
    {noreply, State};
handle_cast(_Msg, State) ->
    {noreply, State}.

-spec handle_info(term(), map()) -> {noreply, map()} | {stop, term(), map()}.
handle_info({py_job_orphaned, Seq}, State = #{slot := Slot}) ->
    %% The NIF saw the caller of the running job die: it interrupted the
    %% job, as on a timeout; watch it the same way.
    ?LOG_INFO("py: the caller of job ~b on worker ~b died; the job was interrupted",
              [Seq, Slot], #{py => caller_down, py_worker => Slot}),
    _ = erlang:send_after(py_config:get(stuck_grace), self(), {stuck_check, Seq}),
    {noreply, State};
handle_info({stuck_check, Seq}, State = #{slot := Slot, worker := Worker}) ->
    case py_nif:worker_info(Worker) of
        #{running := Seq} ->
            Stuck = py_pool:stuck_threads(),
            Max = py_config:get(max_stuck_threads),
            case Stuck < Max of
                true ->
                    ?LOG_ERROR("py: worker ~b is stuck: cancelled job ~b still runs ~b ms later "
                               "(blocked in C code?); restarting the worker",
                               [Slot, Seq, py_config:get(stuck_grace)], #{py => worker_stuck}),
                    %% A `shutdown' reason: the supervisor restarts us without a
                    %% crash report (the line above says what happened).
                    {stop, {shutdown, {py_worker_stuck, Slot}}, State#{stuck := true}};
                false ->
                    %% The stuck threads left behind are as many as allowed:
                    %% this one is not replaced; it serves again when its
                    %% C code returns.
                    ?LOG_ERROR("py: worker ~b is stuck in job ~b, and ~b stuck threads are left "
                               "already (max_stuck_threads): not restarting it",
                               [Slot, Seq, Stuck], #{py => stuck_threads_limit}),
                    _ = erlang:send_after(py_config:get(stuck_grace), self(), {stuck_check, Seq}),
                    {noreply, State}
            end;
        #{} ->
            {noreply, State}
    end;
handle_info(_Other, State) ->
    {noreply, State}.

-spec terminate(term(), map()) -> ok.
terminate(_Reason, #{worker := Worker, stuck := true}) ->
    py_nif:stop_worker(Worker);
terminate(_Reason, #{worker := Worker}) ->
    %% Jobs queued before are still answered; later submissions see
    %% `stopped' and go to another worker. Wait until the thread took the
    %% stop request and left, i.e. answered everything before it (and the
    %% shared queue's rest, if it was the last worker): when this process
    %% is gone, the NIF fails what is left.
    ok = py_nif:stop_worker(Worker),
    drain(Worker, erlang:monotonic_time(millisecond) + py_config:get(shutdown_timeout)).

drain(Worker, Deadline) ->
    case py_nif:queue_len(Worker) of
        0 ->
            ok;
        _ ->
            case erlang:monotonic_time(millisecond) < Deadline of
                true ->
                    receive after ?DRAIN_POLL -> ok end,
                    drain(Worker, Deadline);
                false ->
                    ?LOG_WARNING("py: worker stopping before its queue drained "
                                 "(shutdown_timeout reached); the rest fails", [], #{py => drain_timeout}),
                    ok
            end
    end.
