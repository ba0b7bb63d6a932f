%%% @doc The registry of live workers, and picking one for a call.
%%%
%%% Callers pick a worker without a process hop: the members are published
%%% as a tuple in `persistent_term' (ordered by worker id, so that a keyed
%%% call goes to the same worker again after that worker restarted), with
%%% an `atomics' counter for round robin. This process only maintains that
%%% tuple as workers register, die, are removed, and it keeps the counters
%%% of each worker id across restarts.
%%%
%%% A worker id ("slot") names a place in the pool: a restarted worker
%%% takes the id of the one it replaces; added workers get new ids.
%%% @end
-module(py_pool).
-behaviour(gen_server).

-include_lib("kernel/include/logger.hrl").

-export([start_link/1, register/3, unregister/1, forget/1, reserve_slots/1]).
-export([pick_target/2, destination/1, is_member/1, worker/1, owner/1, slot/1, slot_of/1, thread/1, queue_len/1,
         timed_out/3, workers/0, members/0, info/0, stats/0, stuck_threads/0]).
-export([init/1, handle_call/3, handle_cast/2, handle_info/2, terminate/2]).

-export_type([member/0, target/0, slot/0, worker_info/0]).

-type slot() :: pos_integer().
-opaque member() :: {py_nif:worker(), Owner :: pid(), slot(), counters:counters_ref()}.
%% A worker as the pool publishes it: see {@link worker/1}, {@link owner/1},
%% {@link slot/1}, {@link queue_len/1}.
-type target() :: member() | any.
%% Where a call goes: a member, or `any' worker through the shared queue.

-type worker_info() :: #{id := slot(), pid := pid(), thread := pos_integer(),
                         state := idle | busy | stopped, queue := non_neg_integer(),
                         running := non_neg_integer(),
                         calls := non_neg_integer(), errors := non_neg_integer(),
                         timeouts := non_neg_integer(), restarts := non_neg_integer(),
                         stuck_threads := [pos_integer()]}.
%% What {@link info/0} says of a worker: `id' its place in the pool,
%% `pid' its `py_worker' process, `thread' the NIF's worker thread id (in
%% `{py_worker_down, Thread}' errors), `state', `queue' (jobs waiting) and
%% `running' (the id of the job it runs, 0 when none); the
%% counters count since the application started, across restarts of the
%% worker: `calls' and `errors' run by it, `timeouts' of callers that gave
%% up on it, `restarts' of it; `stuck_threads' the NIF thread ids of the
%% threads this slot's earlier workers left behind, still blocked (in C
%% code) after their worker was killed or declared stuck.

%% The members, read on every call: an atom key (cheaper to hash).
-define(KEY, ?MODULE).
-define(TIMEOUTS, 1).
%% How long after a worker's owner died its thread may still be finishing
%% before it counts as left behind.
-define(LEFT_BEHIND_AFTER, 500).
%% How often the threads left behind are looked at.
-define(PRUNE_EVERY, 1000).
%% #{Thread => Slot}: the last two threads of each slot.
-define(THREADS, {?MODULE, threads}).
%% Timeouts of calls through the shared queue (no member to charge).
-define(SHARED_TIMEOUTS, {?MODULE, shared_timeouts}).

-record(entry, {slot :: slot(),
                owner :: pid(),
                mref :: reference(),
                worker :: py_nif:worker(),
                counters :: counters:counters_ref()}).

%% Per slot, what outlives a worker: the counters callers update, and the
%% totals of the worker threads that held the slot before.
-record(slot, {counters :: counters:counters_ref(),
               calls = 0 :: non_neg_integer(),
               errors = 0 :: non_neg_integer(),
               restarts = 0 :: non_neg_integer()}).

%%% ------------------------------------------------------------------
%%% Registry (called by py_worker and py_worker_sup)
%%% ------------------------------------------------------------------

%% @private
%% @doc Starts the registry; ids above the configured worker count are
%% free for workers added later.
-spec start_link(py_config:config()) -> {ok, pid()} | {error, term()}.
start_link(Config) ->
    gen_server:start_link({local, ?MODULE}, ?MODULE, Config, []).

%% @private
%% @doc Adds the worker owned by process `Owner' to the pool at `Slot'.
%% `restarted' when the slot had a worker before.
-spec register(slot(), pid(), py_nif:worker()) -> {ok, new | restarted}.
register(Slot, Owner, Worker) ->
    %% No timeout: py_pool is a sibling on this node (a call to a dead one
    %% exits at once), and publishing the pool (a persistent_term update)
    %% can take longer than 5 s on a slow machine (seen under valgrind),
    %% which failed py:start.
    gen_server:call(?MODULE, {register, Slot, Owner, Worker}, infinity).

%% @private
%% @doc Takes a worker out of the pool before it is stopped on purpose: no
%% call picks it any more, and its counters are dropped.
-spec unregister(slot()) -> ok.
unregister(Slot) ->
    gen_server:call(?MODULE, {unregister, Slot}).

%% @private
%% @doc Takes a stopped worker out of the pool at once. Called by a caller
%% that found it stopped, before the pool saw its owner die.
-spec forget(py_nif:worker()) -> ok.
forget(Worker) ->
    try gen_server:call(?MODULE, {forget, Worker})
    catch exit:{noproc, _} -> ok
    end.

%% @private
%% @doc `N' fresh worker ids, for workers about to be added.
-spec reserve_slots(non_neg_integer()) -> [slot()].
reserve_slots(N) ->
    gen_server:call(?MODULE, {reserve_slots, N}).

%%% ------------------------------------------------------------------
%%% The hot path (called by callers; no process hop)
%%% ------------------------------------------------------------------

%% @private
%% @doc Where the next call goes: a pool member (worker, owner and
%% counters), or `any' for the shared queue, chosen by the call's
%% `scheduler' or `key' option or the configured scheduler (see
%% {@link py_sched}); {@link destination/1} gives what the NIF takes.
-spec pick_target(py_opts:opts(), py_config:scheduler()) -> target().
pick_target(Opts, shared) when map_size(Opts) =:= 0 ->
    %% The default: the shared queue, once py is known to run.
    case persistent_term:get(?KEY, undefined) of
        {Members, _} when tuple_size(Members) > 0 -> any;
        _ -> erlang:error(py_not_started)
    end;
pick_target(Opts, Default) ->
    case persistent_term:get(?KEY, undefined) of
        {Members, Counter} when tuple_size(Members) > 0 ->
            case py_sched:pick(Members, Counter, Opts, Default) of
                any -> any;
                I -> element(I, Members)
            end;
        _ ->
            erlang:error(py_not_started)
    end.

%% @private
%% @doc What `py_nif:submit/4' takes for a target.
-spec destination(target()) -> py_nif:target().
destination(any) -> any;
destination({Worker, _, _, _}) -> Worker.

%% @private
%% @doc Whether a term has the shape of a member (a forged one may still
%% hold no worker: the NIF refuses it).
-spec is_member(term()) -> boolean().
is_member({Worker, Owner, Slot, _Counters}) ->
    is_reference(Worker) andalso is_pid(Owner) andalso is_integer(Slot);
is_member(_) -> false.

%% @private
%% @doc The NIF worker of a member.
-spec worker(member()) -> py_nif:worker().
worker({Worker, _, _, _}) -> Worker.

%% @private
%% @doc The `py_worker' process of a member: it lives as long as the
%% worker thread serves calls.
-spec owner(member()) -> pid().
owner({_, Owner, _, _}) -> Owner.

%% @doc The id of a member's place in the pool (for a node pool's member:
%% its node's place).
-spec slot(member() | py_node_server:member()) -> slot().
slot({_, _, Slot, _}) -> Slot;
slot(NodeMember) -> py_node_server:slot(NodeMember).

%% @private
%% @doc The NIF's id of a member's worker thread (as in
%% `{py_worker_down, Id}').
-spec thread(member()) -> pos_integer().
thread({Worker, _, _, _}) -> maps:get(id, py_nif:worker_info(Worker)).

%% @private
%% @doc The worker id (slot) of a NIF worker thread id: the current
%% thread of a slot or the one before it (a late reply of a worker that
%% died). `undefined' for a thread py does not know (any more).
-spec slot_of(pos_integer()) -> slot() | undefined.
slot_of(Thread) ->
    maps:get(Thread, persistent_term:get(?THREADS, #{}), undefined).

%% @doc How many jobs wait in a member's queue (not counting the one it
%% runs); for a node pool's member, the calls this node has in flight on
%% it. Cheap: for schedulers.
-spec queue_len(member() | py_node_server:member()) -> non_neg_integer().
queue_len({Worker, _, _, _}) -> py_nif:queue_len(Worker);
queue_len(NodeMember) -> py_node_server:load(NodeMember).

%% @private
%% @doc Records that a caller gave up after `Timeout' ms and cancelled its
%% job. `Where' is what `py_nif:job_where/1' said just before the cancel:
%% when the job was running, the worker running it is asked to check later
%% that it really stopped (see {@link py_worker}); this covers calls
%% through the shared queue and contexts as well as calls to one worker.
-spec timed_out(target(), {running, pos_integer(), pos_integer()} | not_running,
                timeout()) -> ok.
timed_out(Target, Where, Timeout) ->
    count_timeout(Target, Timeout),
    case Where of
        {running, Thread, Job} ->
            case [M || M <- members(), thread(M) =:= Thread] of
                [Member | _] -> py_worker:cancelled(owner(Member), Job, Timeout);
                [] -> ok
            end;
        not_running ->
            ok
    end.

count_timeout(any, Timeout) ->
    ?LOG_INFO("py: a call through the shared queue timed out after ~p ms", [Timeout],
              #{py => call_timeout}),
    case persistent_term:get(?SHARED_TIMEOUTS, undefined) of
        undefined -> ok;
        C -> counters:add(C, 1, 1)
    end;
count_timeout({_, _Owner, Slot, Counters}, Timeout) ->
    ?LOG_INFO("py: a call to worker ~b timed out after ~p ms", [Slot, Timeout],
              #{py => call_timeout, py_worker => Slot}),
    counters:add(Counters, ?TIMEOUTS, 1).

%% @private
%% @doc The workers now in the pool.
-spec workers() -> [py_nif:worker()].
workers() ->
    [worker(M) || M <- members()].

%% @private
%% @doc The members now in the pool, by id.
-spec members() -> [member()].
members() ->
    case persistent_term:get(?KEY, undefined) of
        {Members, _} -> tuple_to_list(Members);
        undefined -> []
    end.

%% @private
%% @doc How many worker threads are left behind, blocked (the bound is
%% the `max_stuck_threads' setting).
-spec stuck_threads() -> non_neg_integer().
stuck_threads() ->
    try gen_server:call(?MODULE, stuck_threads)
    catch exit:{noproc, _} -> 0
    end.

%% @private
%% @doc State and counters of every worker in the pool, by id.
-spec info() -> [worker_info()].
info() ->
    try gen_server:call(?MODULE, info)
    catch exit:{noproc, _} -> []
    end.

%% @doc Totals over the pool: the sums of {@link info/0}'s counters, the
%% timeouts of calls through the shared queue (`shared_timeouts', not
%% charged to a worker), and the jobs waiting in the shared queue.
-spec stats() -> #{workers := non_neg_integer(), calls := non_neg_integer(),
                   errors := non_neg_integer(), timeouts := non_neg_integer(),
                   restarts := non_neg_integer(), shared_timeouts := non_neg_integer(),
                   shared_queue := non_neg_integer(), stuck_threads := non_neg_integer()}.
stats() ->
    Info = info(),
    Sum = fun(Key) -> lists:sum([maps:get(Key, I) || I <- Info]) end,
    SharedTimeouts = case persistent_term:get(?SHARED_TIMEOUTS, undefined) of
                         undefined -> 0;
                         C -> counters:get(C, 1)
                     end,
    #{workers => length(Info), calls => Sum(calls), errors => Sum(errors),
      timeouts => Sum(timeouts), restarts => Sum(restarts),
      shared_timeouts => SharedTimeouts, shared_queue => py_nif:shared_queue_len(),
      stuck_threads => stuck_threads()}.

entry_info(#entry{slot = Slot, owner = Owner, worker = Worker, counters = Counters},
           #slot{calls = Calls, errors = Errors, restarts = Restarts}, Left) ->
    #{id := Thread, queue := Queue, state := State, running := Running,
      calls := C, errors := E} = py_nif:worker_info(Worker),
    #{id => Slot, pid => Owner, thread => Thread, state => State, queue => Queue,
      running => Running, calls => Calls + C, errors => Errors + E,
      timeouts => counters:get(Counters, ?TIMEOUTS), restarts => Restarts,
      stuck_threads => [T || {S, T, _W, _Since} <- Left, S =:= Slot]}.

%%% ------------------------------------------------------------------
%%% gen_server
%%% ------------------------------------------------------------------

%% @private
-spec init(py_config:config()) -> {ok, map()}.
init(#{workers := Count}) ->
    %% terminate/2 must run at shutdown: it unpublishes the pool, so that
    %% calls after py stopped fail at once with `py_not_started'.
    process_flag(trap_exit, true),
    Counter = atomics:new(1, [{signed, false}]),
    persistent_term:put(?SHARED_TIMEOUTS, counters:new(1, [write_concurrency])),
    State = #{counter => Counter, entries => [], slots => #{}, next_slot => Count + 1,
              left => []},
    publish(State),
    {ok, State}.

%% @private
-spec handle_call(term(), gen_server:from(), map()) -> {reply, term(), map()}.
handle_call({register, Slot, Owner, Worker}, _From, State) ->
    #{entries := Entries0, slots := Slots0} = State,
    %% A slot has one worker at a time. The old one's 'DOWN' may not have
    %% arrived yet: retire it now.
    {Entries, Slots} = case lists:keyfind(Slot, #entry.slot, Entries0) of
                           false -> {Entries0, Slots0};
                           Old -> {retire(Old, Entries0), add_totals(Old, Slots0)}
                       end,
    {Kind, SlotRec} = case Slots of
                          #{Slot := Rec} -> {restarted, Rec#slot{restarts = Rec#slot.restarts + 1}};
                          #{} -> {new, #slot{counters = counters:new(1, [write_concurrency])}}
                      end,
    Entry = #entry{slot = Slot, owner = Owner, mref = erlang:monitor(process, Owner),
                   worker = Worker, counters = SlotRec#slot.counters},
    New = State#{entries := lists:keysort(#entry.slot, [Entry | Entries]),
                 slots := Slots#{Slot => SlotRec},
                 next_slot := max(maps:get(next_slot, State), Slot + 1)},
    publish(New),
    remember_thread(Slot, Worker),
    {reply, {ok, Kind}, New};
handle_call({unregister, Slot}, _From, State = #{entries := Entries, slots := Slots}) ->
    New = State#{entries := retire(lists:keyfind(Slot, #entry.slot, Entries), Entries),
                 slots := maps:remove(Slot, Slots)},
    publish(New),
    {reply, ok, New};
handle_call({forget, Worker}, _From, State = #{entries := Entries}) ->
    case lists:keyfind(Worker, #entry.worker, Entries) of
        #entry{} = E ->
            case py_nif:worker_info(Worker) of
                #{state := stopped} ->
                    New = State#{entries := retire(E, Entries),
                                 slots := add_totals(E, maps:get(slots, State))},
                    publish(New),
                    {reply, ok, New};
                #{} ->
                    {reply, ok, State}
            end;
        false ->
            {reply, ok, State}
    end;
handle_call({reserve_slots, N}, _From, State = #{next_slot := Next}) ->
    {reply, lists:seq(Next, Next + N - 1), State#{next_slot := Next + N}};
handle_call(info, _From, State = #{entries := Entries, slots := Slots, left := Left}) ->
    {reply, [entry_info(E, maps:get(E#entry.slot, Slots), Left) || E <- Entries], State};
handle_call(stuck_threads, _From, State = #{left := Left}) ->
    {reply, length(Left), State};
handle_call(_Other, _From, State) ->
    {reply, {error, unknown_call}, State}.

%% @private
-spec handle_cast(term(), map()) -> {noreply, map()}.
handle_cast(_Msg, State) ->
    {noreply, State}.

%% @private
-spec handle_info(term(), map()) -> {noreply, map()}.
handle_info({'DOWN', MRef, process, _Pid, _Reason}, State = #{entries := Entries}) ->
    case lists:keyfind(MRef, #entry.mref, Entries) of
        #entry{slot = Slot, worker = Worker} = E ->
            New = State#{entries := lists:keydelete(MRef, #entry.mref, Entries),
                         slots := add_totals(E, maps:get(slots, State))},
            publish(New),
            %% Its thread may be blocked in C code: look again soon.
            _ = erlang:send_after(?LEFT_BEHIND_AFTER, self(), {left_behind, Slot, Worker}),
            {noreply, New};
        false ->
            {noreply, State}
    end;
handle_info({left_behind, Slot, Worker}, State = #{left := Left}) ->
    case py_nif:worker_exited(Worker) of
        true ->
            {noreply, State};
        false ->
            Thread = maps:get(id, py_nif:worker_info(Worker)),
            ?LOG_WARNING("py: the thread ~b of worker ~b is left behind, blocked (in C code?); "
                         "~b such threads now", [Thread, Slot, length(Left) + 1],
                         #{py => thread_left_behind, py_worker => Slot}),
            _ = Left =:= [] andalso erlang:send_after(?PRUNE_EVERY, self(), prune_left),
            {noreply, State#{left := [{Slot, Thread, Worker, erlang:monotonic_time(millisecond)}
                                      | Left]}}
    end;
handle_info(prune_left, State = #{left := Left}) ->
    {Ended, Still} = lists:partition(fun({_, _, W, _}) -> py_nif:worker_exited(W) end, Left),
    lists:foreach(fun({S, T, _, Since}) ->
                          ?LOG_INFO("py: the thread ~b left behind by worker ~b ended after ~b ms",
                                    [T, S, erlang:monotonic_time(millisecond) - Since],
                                    #{py => stuck_thread_ended, py_worker => S})
                  end, Ended),
    _ = Still =/= [] andalso erlang:send_after(?PRUNE_EVERY, self(), prune_left),
    {noreply, State#{left := Still}};
handle_info({py_release_stuck, Ms, Abandoned}, State) ->
    %% From the NIF: a Python object's release (its __del__) has blocked
    %% for Ms ms; a fresh thread took over the releases.
    ?LOG_ERROR("py: releasing a Python object blocked for ~b ms (a __del__ that waits?); "
               "a new release thread took over (~b blocked)", [Ms, Abandoned],
               #{py => release_stuck}),
    {noreply, State};
handle_info(_Other, State) ->
    {noreply, State}.

%% @private
-spec terminate(term(), map()) -> ok.
terminate(_Reason, _State) ->
    _ = persistent_term:erase(?KEY),
    ok.

%% Removes an entry from the list, no longer watching its owner.
retire(false, Entries) ->
    Entries;
retire(#entry{mref = MRef}, Entries) ->
    erlang:demonitor(MRef, [flush]),
    lists:keydelete(MRef, #entry.mref, Entries).

%% Keeps what a departed worker thread counted in its slot's totals. A
%% slot that was unregistered has no totals any more.
add_totals(#entry{slot = Slot, worker = Worker}, Slots) ->
    case Slots of
        #{Slot := Rec = #slot{calls = C0, errors = E0}} ->
            #{calls := C, errors := E} = py_nif:worker_info(Worker),
            Slots#{Slot := Rec#slot{calls = C0 + C, errors = E0 + E}};
        #{} ->
            Slots
    end.

remember_thread(Slot, Worker) ->
    Thread = maps:get(id, py_nif:worker_info(Worker)),
    Threads = persistent_term:get(?THREADS, #{}),
    Before = lists:reverse(lists:sort([T || {T, S} <- maps:to_list(Threads), S =:= Slot])),
    Kept = maps:without(lists:sublist(Before, 2, length(Before)), Threads),
    persistent_term:put(?THREADS, Kept#{Thread => Slot}).

publish(#{counter := Counter, entries := Entries}) ->
    Members = [{W, Owner, Slot, C} || #entry{worker = W, owner = Owner, slot = Slot, counters = C}
                                          <- Entries],
    persistent_term:put(?KEY, {list_to_tuple(Members), Counter}).
