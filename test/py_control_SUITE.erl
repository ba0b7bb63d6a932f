%%% @doc Controlling the Python servers: configuration (Erlang and Python
%%% side, with a virtualenv and pip requirements), start/stop/restart,
%%% supervision and restarts (killed and stuck workers), workers added and
%%% removed under load, schedulers, and the counters.
%%%
%%% Every test leaves py running with the suite's base configuration; the
%%% application environment is restored at the end, for the suites after.
-module(py_control_SUITE).

-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").

-export([suite/0, all/0, groups/0, init_per_suite/1, end_per_suite/1,
         init_per_testcase/2, end_per_testcase/2]).
-export([bad_settings_name_the_setting/1, original_setting_names_are_refused/1,
         failing_init_code_names_the_setting/1, application_start_works_the_same/1,
         start_stop_restart/1, original_names/1,
         python_env_and_init_code/1,
         killed_worker_fails_its_caller_and_restarts/1,
         dead_worker_does_not_hang_a_caller_blocked_in_c/1,
         stuck_worker_is_restarted/1, stuck_shared_call_is_restarted/1,
         endless_loop_is_interrupted/1,
         restart_intensity/1,
         add_and_remove_workers/1, add_and_remove_under_load/1,
         round_robin_distribution/1, random_distribution/1, keyed_distribution/1,
         least_loaded_distribution/1, custom_scheduler/1, shared_queue_default/1,
         counters/1, venv_and_requirements/1]).
%% A custom scheduler, for custom_scheduler/1; a logger handler, for
%% venv_and_requirements/1.
-export([always_last/2, log/2]).

-define(HELPERS, "py_control_helpers").

%% A hang fails its test case in minutes, not after CT's default 30.
suite() ->
    [{timetrap, {minutes, 3}}].

all() ->
    [{group, config}, {group, lifecycle}, {group, supervision}, {group, dynamic},
     {group, schedulers}, counters, venv_and_requirements].

groups() ->
    [{config, [], [bad_settings_name_the_setting, original_setting_names_are_refused,
                   failing_init_code_names_the_setting, application_start_works_the_same]},
     {lifecycle, [], [start_stop_restart, original_names, python_env_and_init_code]},
     {supervision, [], [killed_worker_fails_its_caller_and_restarts,
                        dead_worker_does_not_hang_a_caller_blocked_in_c,
                        stuck_worker_is_restarted, stuck_shared_call_is_restarted,
                        endless_loop_is_interrupted,
                        restart_intensity]},
     {dynamic, [], [add_and_remove_workers, add_and_remove_under_load]},
     {schedulers, [], [round_robin_distribution, random_distribution, keyed_distribution,
                       least_loaded_distribution, custom_scheduler, shared_queue_default]}].

%% Python helpers, importable through the `python_path' setting.
helpers_source() ->
    <<"import threading, time\n"
      "event = threading.Event()\n"
      "_local = threading.local()\n"
      "def wait():\n"
      "    return event.wait(30)\n"
      "def release():\n"
      "    event.set()\n"
      "def reset():\n"
      "    event.clear()\n"
      "def incr():\n"
      "    _local.n = getattr(_local, 'n', 0) + 1\n"
      "    return _local.n\n"
      "def ident():\n"
      "    return threading.get_ident()\n"
      "def sleep_in_c(seconds):\n"
      "    time.sleep(seconds)\n"
      "def sleep_in_python():\n"
      "    while True:\n"
      "        time.sleep(0.01)\n">>.

init_per_suite(Config) ->
    _ = application:load(py),
    Saved = application:get_all_env(py),
    _ = py:stop(),
    Dir = filename:join(?config(priv_dir, Config), "python"),
    ok = filelib:ensure_path(Dir),
    ok = file:write_file(filename:join(Dir, ?HELPERS ++ ".py"), helpers_source()),
    Base = [{python_path, [Dir]}, {workers, 4}, {stuck_grace, 300}],
    [{saved_env, Saved}, {base_env, Base} | Config].

end_per_suite(Config) ->
    _ = py:stop(),
    [application:unset_env(py, K) || {K, _} <- application:get_all_env(py)],
    [application:set_env(py, K, V) || {K, V} <- ?config(saved_env, Config)],
    ok.

%% Each test starts from the base configuration plus its own settings.
init_per_testcase(Case, Config) ->
    _ = py:stop(),
    [application:unset_env(py, K) || {K, _} <- application:get_all_env(py)],
    [application:set_env(py, K, V) || {K, V} <- ?config(base_env, Config) ++ env_of(Case)],
    case start_of(Case) of
        true -> ok = py:start();
        false -> ok
    end,
    Config.

end_per_testcase(_Case, _Config) ->
    _ = py:stop(),
    ok.

%% Settings of a test on top of the base ones.
env_of(endless_loop_is_interrupted) -> [{call_timeout, 300}, {scheduler, round_robin}];
env_of(restart_intensity) -> [{workers, 2}, {max_restarts, 2}, {restart_period, 3600}];
env_of(add_and_remove_under_load) -> [{workers, 2}];
env_of(python_env_and_init_code) ->
    [{python_env, [{"PY_CONTROL_SET", "set from Erlang"}, {<<"PY_CONTROL_UNSET">>, false}]},
     {init, [py_control_helpers,
             {exec, "import threading\n"
                    "INIT_IDENTS = globals().get('INIT_IDENTS', set())\n"
                    "INIT_IDENTS.add(threading.get_ident())"},
             {py_control_helpers, incr},
             {py_control_helpers, incr, []}]}];
env_of(_) -> [].

%% Tests of failed starts start py themselves.
start_of(Case) ->
    not lists:member(Case, [bad_settings_name_the_setting, original_setting_names_are_refused,
                            failing_init_code_names_the_setting,
                            application_start_works_the_same, venv_and_requirements]).

%% Runs `Fun' and returns the reason it raised with (error class).
error_of(Fun) ->
    py_test_util:error_of(Fun).

%% Polls until `Fun' is true: a wait for an event, not a timing check
%% (the bound only turns a hang into a failure).
wait_for(What, Fun) ->
    wait_for(What, Fun, 500).

wait_for(What, _Fun, 0) ->
    ct:fail({timed_out_waiting_for, What});
wait_for(What, Fun, Tries) ->
    case Fun() of
        true -> ok;
        false -> timer:sleep(20), wait_for(What, Fun, Tries - 1)
    end.

%% A worker's entry; while it restarts, a stand-in with no restarts.
worker(Id) ->
    case [W || W = #{id := I} <- py:workers(), I =:= Id] of
        [W] -> W;
        [] -> #{id => Id, pid => undefined, restarts => -1}
    end.

calls() ->
    maps:from_list([{Id, C} || #{id := Id, calls := C} <- py:workers()]).

%% Calls per worker id made while running `Fun'.
calls_during(Fun) ->
    Before = calls(),
    Fun(),
    After = calls(),
    maps:map(fun(Id, C) -> C - maps:get(Id, Before, 0) end, After).

flush_check() ->
    receive Stale -> ct:fail({stale_message, Stale}) after 0 -> ok end.

%%% Erlang configuration ------------------------------------------------

bad_settings_name_the_setting(_Config) ->
    Bad = [{workers, 0}, {workers, many}, {scheduler, fastest},
           {scheduler, {no_such_module, pick}}, {call_timeout, -1}, {stuck_grace, soon},
           {strings, utf8}, {python_path, 42}, {python_path, [foo]}, {venv, 42},
           {python_env, [{"A"}]}, {python_env, [{"A", 1}]}, {init, [{exec, 42}]},
           {init, nope}, {max_restarts, -1}, {restart_period, 0}, {shutdown_timeout, x}],
    lists:foreach(
      fun({Key, Value}) ->
              ok = application:set_env(py, Key, Value),
              {error, {bad_config, Key, Value, Why}} = py:start(),
              ?assert(io_lib:char_list(Why)),
              ?assertEqual(undefined, whereis(py_sup)),
              application:unset_env(py, Key)
      end, Bad),
    %% Requirements need a virtualenv to go to.
    ok = application:set_env(py, requirements, ["six"]),
    {error, {bad_config, requirements, ["six"], _}} = py:start(),
    application:unset_env(py, requirements),
    %% And the defaults start.
    ok = py:start().

original_setting_names_are_refused(_Config) ->
    ok = application:set_env(py, 'worker-count', 3),
    {error, {bad_config, 'worker-count', 3, Why}} = py:start(),
    ?assertNotEqual(nomatch, string:find(Why, "workers")).

failing_init_code_names_the_setting(_Config) ->
    Item = {exec, "import py_control_no_such_module"},
    ok = application:set_env(py, init, [Item]),
    {error, {bad_config, init, Item, Why}} = py:start(),
    ?assertNotEqual(nomatch, string:find(Why, "ModuleNotFoundError")),
    ?assertEqual(undefined, whereis(py_sup)).

application_start_works_the_same(_Config) ->
    ok = application:start(py),
    ?assertEqual(3, py:func(operator, add, [1, 2])),
    ok = application:stop(py),
    ok = application:set_env(py, workers, -2),
    {error, {{bad_config, workers, -2, _}, _}} = application:start(py).

%%% Start, stop, restart ------------------------------------------------

start_stop_restart(_Config) ->
    ok = py:start(),                            % already running: fine
    Sup = whereis(py_sup),
    ok = py:stop(),
    ok = py:stop(),                             % not running: fine
    py_not_started = error_of(fun() -> py:func(operator, add, [1, 2]) end),
    ?assertEqual([], py:workers()),
    ok = py:start(),
    ?assertEqual(3, py:func(operator, add, [1, 2])),
    ok = application:set_env(py, workers, 3),
    ok = py:restart(),
    ?assertNotEqual(Sup, whereis(py_sup)),
    ?assertEqual([1, 2, 3], [Id || #{id := Id} <- py:workers()]),
    ?assertEqual(3, py:func(operator, add, [1, 2])).

original_names(_Config) ->
    ?assertEqual(whereis(py_sup), py:'get-sup-pid'()),
    Pids = py:'get-python-pids'(),
    ?assertEqual(4, length(Pids)),
    ?assertEqual(Pids, [P || {_, P, worker, _} <- lists:sort(supervisor:which_children(py_worker_sup))]),
    {ok, [5]} = py:'add-server'(py5),            % LFE py's child id: one more
    {ok, [6, 7]} = py:'add-server'(2),
    ?assertEqual(7, length(py:'get-python-pids'())).

%%% Python configuration ------------------------------------------------

python_env_and_init_code(_Config) ->
    ?assertEqual(<<"set from Erlang">>,
                 py:eval(<<"__import__('os').environ['PY_CONTROL_SET']">>)),
    ?assertEqual(false, py:eval(<<"'PY_CONTROL_UNSET' in __import__('os').environ">>)),
    %% Child processes see it too (os.environ is the process environment).
    ?assertEqual(<<"set from Erlang\n">>,
                 py:func(subprocess, check_output, [[<<"sh">>, <<"-c">>, <<"echo \"$PY_CONTROL_SET\"">>]],
                         [{text, true}])),
    %% The init code ran in every worker, on the worker's own thread (its
    %% names land in the shared __main__).
    Rounds = lists:usort([py:func(py_control_helpers, ident, [], [], [{scheduler, round_robin}])
                          || _ <- lists:seq(1, 4)]),
    ?assertEqual(4, length(Rounds)),
    ?assertEqual(Rounds, lists:sort(py:eval(<<"list(INIT_IDENTS)">>))),
    %% incr ran twice per worker at start: the next call on each gives 3.
    ?assertEqual([3, 3, 3, 3],
                 [py:func(py_control_helpers, incr, [], [], [{scheduler, round_robin}])
                  || _ <- lists:seq(1, 4)]),
    %% A restarted worker runs the init code again (its thread is new: the
    %% counter starts afresh; the others count on).
    #{pid := Pid} = worker(2),
    exit(Pid, kill),
    wait_for(restart, fun() -> maps:get(restarts, worker(2)) =:= 1 end),
    ?assertEqual([3, 4, 4, 4],
                 lists:sort([py:func(py_control_helpers, incr, [], [], [{scheduler, round_robin}])
                             || _ <- lists:seq(1, 4)])),
    Now = lists:usort([py:func(py_control_helpers, ident, [], [], [{scheduler, round_robin}])
                       || _ <- lists:seq(1, 4)]),
    ?assertEqual([], Now -- py:eval(<<"list(INIT_IDENTS)">>)),
    %% __main__ is shared by every suite of this VM: leave it clean.
    py:exec(<<"globals().pop('INIT_IDENTS'); globals().pop('py_control_helpers')">>).

%%% Supervision ---------------------------------------------------------

%% Runs `Call' in a new process, kills the worker that runs it, and checks
%% that the caller gets `{py_worker_down, Id}' (not a hang), with the id
%% that py:workers() lists.
kill_the_busy_worker(Call) ->
    Self = self(),
    Caller = spawn_link(fun() ->
                                R = try Call() catch error:E -> {error, E} end,
                                Self ! {self(), R}
                        end),
    wait_for(busy_worker, fun() -> [W || W = #{state := busy} <- py:workers()] =/= [] end),
    [#{id := Id, pid := Pid, thread := Thread}] = [W || W = #{state := busy} <- py:workers()],
    exit(Pid, kill),
    receive
        {Caller, Result} -> ?assertEqual({error, {py_worker_down, Id}}, Result)
    after 10000 ->
        ct:fail(caller_hangs)
    end,
    {Id, Pid, Thread}.

killed_worker_fails_its_caller_and_restarts(_Config) ->
    {Id, Pid, Thread} =
        kill_the_busy_worker(fun() ->
                                     py:func(py_control_helpers, sleep_in_python, [], [],
                                             [{key, kill_me}])
                             end),
    wait_for(restart, fun() -> maps:get(restarts, worker(Id)) =:= 1 end),
    #{pid := NewPid, thread := NewThread} = worker(Id),
    ?assertNotEqual(Pid, NewPid),
    ?assertNotEqual(Thread, NewThread),
    %% Every worker answers, the restarted one included.
    ?assertEqual(lists:duplicate(8, 3),
                 [py:func(operator, add, [1, 2], [], [{scheduler, round_robin}])
                  || _ <- lists:seq(1, 8)]),
    flush_check().

dead_worker_does_not_hang_a_caller_blocked_in_c(_Config) ->
    %% time.sleep is C code: the interrupt that a dying worker sends does
    %% not reach it, yet its caller (no timeout) gets an error at once.
    {Id, _Pid, _Thread} =
        kill_the_busy_worker(fun() ->
                                     py:func(py_control_helpers, sleep_in_c, [60], [],
                                             [{key, blocked}])
                             end),
    wait_for(restart, fun() -> maps:get(restarts, worker(Id)) =:= 1 end),
    ?assertEqual(3, py:func(operator, add, [1, 2], [], [{key, blocked}])).

stuck_worker_is_restarted(_Config) ->
    %% A call that times out in C code cannot be interrupted: its worker is
    %% declared stuck stuck_grace ms later, and restarted.
    {py_timeout, 200} =
        error_of(fun() -> py:func(py_control_helpers, sleep_in_c, [60], [],
                                  [{key, stuck}, {timeout, 200}])
                 end),
    [#{id := Id, pid := Pid}] = [W || W = #{timeouts := 1} <- py:workers()],
    wait_for(restart, fun() -> maps:get(restarts, worker(Id)) =:= 1 end),
    #{pid := NewPid, state := idle, timeouts := 1} = worker(Id),
    ?assertNotEqual(Pid, NewPid),
    %% The same key goes to the fresh worker, which answers.
    ?assertEqual(3, py:func(operator, add, [1, 2], [], [{key, stuck}, {timeout, 5000}])),
    flush_check().

stuck_shared_call_is_restarted(_Config) ->
    %% The same through the shared queue (the default): the worker that
    %% took the call is found and restarted.
    Restarts = fun() -> lists:sum([R || #{restarts := R} <- py:workers()]) end,
    Before = Restarts(),
    {py_timeout, 200} =
        error_of(fun() -> py:func(py_control_helpers, sleep_in_c, [60], [], [{timeout, 200}]) end),
    wait_for(restart, fun() -> Restarts() =:= Before + 1 end),
    ?assertEqual(3, py:func(operator, add, [1, 2], [], [{timeout, 5000}])),
    flush_check().

endless_loop_is_interrupted(_Config) ->
    %% call_timeout is 300 here, so py:exec and py:eval time out.
    {py_timeout, 300} = error_of(fun() -> py:exec(<<"while True: pass">>) end),
    {py_timeout, 300} = error_of(fun() -> py:eval(<<"sum(1 for _ in iter(int, 1))">>) end),
    %% Round robin: these reach every worker, the interrupted ones too.
    ?assertEqual(lists:duplicate(8, 2), [py:eval(<<"1 + 1">>) || _ <- lists:seq(1, 8)]),
    %% The loops stopped: nothing is declared stuck after the grace period.
    timer:sleep(3 * 300),
    ?assertEqual([0, 0, 0, 0], [R || #{restarts := R} <- py:workers()]),
    ?assertEqual(2, lists:sum([T || #{timeouts := T} <- py:workers()])),
    flush_check().

restart_intensity(_Config) ->
    %% max_restarts 2: the third worker death within restart_period makes
    %% the worker supervisor give up; the top supervisor starts it afresh.
    WorkerSup = whereis(py_worker_sup),
    KillOne = fun(N) ->
                      #{pid := Pid} = worker(1),
                      exit(Pid, kill),
                      wait_for({restart, N},
                               fun() ->
                                       #{pid := P} = worker(1),
                                       P =/= Pid andalso P =/= undefined
                               end)
              end,
    KillOne(1),
    KillOne(2),
    ?assertEqual(WorkerSup, whereis(py_worker_sup)),
    KillOne(3),
    wait_for(new_worker_sup, fun() -> whereis(py_worker_sup) =/= WorkerSup
                                          andalso length(py:workers()) =:= 2 end),
    ?assertEqual(3, py:func(operator, add, [1, 2])).

%%% Dynamic workers -----------------------------------------------------

add_and_remove_workers(_Config) ->
    {ok, [5, 6]} = py:add_workers(2),
    ?assertEqual([1, 2, 3, 4, 5, 6], [Id || #{id := Id} <- py:workers()]),
    ?assertEqual(lists:duplicate(12, 3),
                 [py:func(operator, add, [1, 2], [], [{scheduler, round_robin}])
                  || _ <- lists:seq(1, 12)]),
    ?assertEqual(#{1 => 2, 2 => 2, 3 => 2, 4 => 2, 5 => 2, 6 => 2},
                 calls_during(fun() ->
                                      [py:func(operator, add, [1, 2], [],
                                               [{scheduler, round_robin}])
                                       || _ <- lists:seq(1, 12)]
                              end)),
    {ok, [6, 5, 4]} = py:remove_workers(3),
    ?assertEqual([1, 2, 3], [Id || #{id := Id} <- py:workers()]),
    ?assertEqual([1, 2, 3], lists:sort([S || {{py_worker, S}, _, _, _}
                                                 <- supervisor:which_children(py_worker_sup)])),
    {error, {too_few_workers, 3}} = py:remove_workers(3),
    {ok, [7]} = py:add_workers(1),               % ids are not reused
    {ok, []} = py:add_workers(0).

add_and_remove_under_load(_Config) ->
    %% Callers of every scheduler call until told to stop, while workers
    %% come and go; each checks every reply and that no reply comes twice.
    Self = self(),
    Schedulers = [shared, round_robin, least_loaded, random, keyed, shared],
    Callers = [spawn_link(fun() -> Self ! {self(), load(S, I, 0)} end)
               || {I, S} <- lists:zip(lists:seq(1, length(Schedulers)), Schedulers)],
    Changes = [{add, 2}, {remove, 1}, {add, 1}, {remove, 2}, {add, 1}, {remove, 1},
               {add, 3}, {remove, 3}],
    lists:foreach(fun({Op, N}) ->
                          progress(200),
                          {ok, Ids} = case Op of
                                          add -> py:add_workers(N);
                                          remove -> py:remove_workers(N)
                                      end,
                          ?assertEqual(N, length(Ids))
                  end, Changes),
    progress(200),
    [C ! stop || C <- Callers],
    Replies = [receive {C, R} -> R after 60000 -> ct:fail({caller_hangs, C}) end
               || C <- Callers],
    ct:pal("calls per caller: ~p", [Replies]),
    ?assert(lists:all(fun({ok, N}) -> N > 0; (_) -> false end, Replies), Replies),
    ?assertEqual(2, length(py:workers())),
    ?assertEqual(0, maps:get(shared_queue, py_pool:stats())).

%% Calls with scheduler `S' until told to stop; `{ok, Calls}' when every
%% reply was right and none came twice.
load(S, Base, Done) ->
    Opts = case S of
               keyed -> [{key, Base}];
               _ -> [{scheduler, S}]
           end,
    Expected = Base * 1000000 + Done,
    case py:func(operator, add, [Base * 1000000, Done], [], Opts) of
        Expected ->
            receive
                stop -> receive Stray -> {stray, Stray} after 100 -> {ok, Done + 1} end
            after 0 ->
                load(S, Base, Done + 1)
            end;
        Other ->
            {wrong_reply, Expected, Other}
    end.

%% Waits until the workers ran `N' more calls.
progress(N) ->
    Calls = fun() -> lists:sum([C || #{calls := C} <- py:workers()]) end,
    Start = Calls(),
    wait_for({progress, N}, fun() -> Calls() >= Start + N end).

%%% Schedulers ----------------------------------------------------------

round_robin_distribution(_Config) ->
    Calls = calls_during(fun() ->
                                 [3 = py:func(operator, add, [1, 2], [], [{scheduler, round_robin}])
                                  || _ <- lists:seq(1, 40)]
                         end),
    ?assertEqual(#{1 => 10, 2 => 10, 3 => 10, 4 => 10}, Calls).

random_distribution(_Config) ->
    Calls = calls_during(fun() ->
                                 [3 = py:func(operator, add, [1, 2], [], [{scheduler, random}])
                                  || _ <- lists:seq(1, 400)]
                         end),
    %% About 100 each; below 40 is about seven standard deviations off.
    ?assertEqual(400, lists:sum(maps:values(Calls))),
    ?assert(lists:all(fun(C) -> C >= 40 end, maps:values(Calls)), Calls).

keyed_distribution(_Config) ->
    %% One key, one worker.
    Calls = calls_during(fun() ->
                                 [3 = py:func(operator, add, [1, 2], [], [{key, <<"session 1">>}])
                                  || _ <- lists:seq(1, 20)]
                         end),
    ?assertEqual([0, 0, 0, 20], lists:sort(maps:values(Calls))),
    %% Same key, same Python thread state: a thread-local counter counts on.
    First = py:func(py_control_helpers, incr, [], [], [{key, counter}]),
    ?assertEqual([First + 1, First + 2, First + 3],
                 [py:func(py_control_helpers, incr, [], [], [{key, counter}])
                  || _ <- lists:seq(1, 3)]),
    %% Many keys spread over the workers.
    Spread = calls_during(fun() ->
                                  [3 = py:func(operator, add, [1, 2], [], [{key, K}])
                                   || K <- lists:seq(1, 200)]
                          end),
    ?assert(lists:all(fun(C) -> C > 0 end, maps:values(Spread)), Spread),
    %% The scheduler `keyed' without a key: the calling process is the key.
    Own = calls_during(fun() ->
                               [3 = py:func(operator, add, [1, 2], [], [{scheduler, keyed}])
                                || _ <- lists:seq(1, 10)]
                       end),
    ?assertEqual([0, 0, 0, 10], lists:sort(maps:values(Own))).

least_loaded_distribution(_Config) ->
    %% Worker 1 blocks on an event with three more jobs queued behind:
    %% least_loaded sends nothing there until its queue empties.
    undefined = py:func(py_control_helpers, reset, []),
    [Busy | _] = py_pool:members(),
    W = py_pool:worker(Busy),
    Refs = [begin
                Ref = make_ref(),
                ok = py_nif:submit(W, Ref, {call, 0, {py_control_helpers, wait}, [], []}, false),
                Ref
            end || _ <- lists:seq(1, 4)],
    %% Until the first one runs (and so is counted) and three wait.
    wait_for(queued, fun() ->
                             W1 = worker(1),
                             maps:get(queue, W1, -1) =:= 3 andalso maps:get(running, W1, 0) =/= 0
                     end),
    Calls = calls_during(fun() ->
                                 [3 = py:func(operator, add, [1, 2], [], [{scheduler, least_loaded}])
                                  || _ <- lists:seq(1, 30)]
                         end),
    ?assertEqual(0, maps:get(1, Calls)),
    ?assertEqual(30, lists:sum(maps:values(Calls))),
    %% Equally loaded workers share the calls.
    ?assert(lists:all(fun(Id) -> maps:get(Id, Calls) > 0 end, [2, 3, 4]), Calls),
    undefined = py:func(py_control_helpers, release, [], [], [{scheduler, least_loaded}]),
    [receive {Ref, {ok, true}} -> ok after 10000 -> ct:fail(blocked_jobs_lost) end || Ref <- Refs],
    flush_check().

custom_scheduler(_Config) ->
    Calls = calls_during(fun() ->
                                 [3 = py:func(operator, add, [1, 2], [],
                                              [{scheduler, {?MODULE, always_last}}])
                                  || _ <- lists:seq(1, 10)]
                         end),
    ?assertEqual(#{1 => 0, 2 => 0, 3 => 0, 4 => 10}, Calls),
    %% As the configured scheduler (LFE py's scheduler-mod/scheduler-func).
    ok = application:set_env(py, scheduler, {?MODULE, always_last}),
    ok = py:restart(),
    ?assertEqual(#{1 => 0, 2 => 0, 3 => 0, 4 => 5},
                 calls_during(fun() -> [3 = py:func(operator, add, [1, 2]) || _ <- lists:seq(1, 5)] end)),
    %% A scheduler that returns nonsense is an error in the caller. Its
    %% own data comes in the `key' option (with `scheduler' given, a key
    %% does not choose the keyed scheduler).
    {py_bad_scheduler, {?MODULE, always_last}, 0} =
        error_of(fun() -> py:func(operator, add, [1, 2], [], [{scheduler, {?MODULE, always_last}},
                                                            {key, {last, 0}}])
                 end).

%% Picks the last worker (or the position in the call's `{key, {last, N}}').
always_last(Members, Opts) ->
    case proplists:get_value(key, Opts) of
        {last, N} -> N;
        _ -> tuple_size(Members)
    end.

shared_queue_default(_Config) ->
    ?assertEqual(shared, py_config:get(scheduler)),
    Calls = calls_during(fun() -> [3 = py:func(operator, add, [1, 2]) || _ <- lists:seq(1, 50)] end),
    ?assertEqual(50, lists:sum(maps:values(Calls))).

%%% Counters ------------------------------------------------------------

counters(_Config) ->
    Before = py_pool:stats(),
    {python, 'ValueError', _, _} =
        error_of(fun() -> py:func(builtins, int, [<<"x">>], [], [{key, errors}]) end),
    %% Interruptible (Python code between short sleeps): not stuck.
    {py_timeout, 100} =
        error_of(fun() -> py:func(py_control_helpers, sleep_in_python, [], [],
                                  [{key, errors}, {timeout, 100}]) end),
    {py_timeout, 100} =
        error_of(fun() -> py:func(py_control_helpers, sleep_in_python, [], [],
                                  [{timeout, 100}]) end),
    3 = py:func(operator, add, [1, 2], [], [{key, errors}]),
    After = py_pool:stats(),
    ?assertEqual(1, maps:get(timeouts, After) - maps:get(timeouts, Before)),
    ?assertEqual(1, maps:get(shared_timeouts, After) - maps:get(shared_timeouts, Before)),
    %% The error; the interrupted sleeps count as calls that failed.
    ?assert(maps:get(errors, After) - maps:get(errors, Before) >= 1),
    ?assert(maps:get(calls, After) - maps:get(calls, Before) >= 3),
    [#{id := Id, errors := E, timeouts := 1}] = [W || W = #{timeouts := 1} <- py:workers()],
    ?assert(E >= 1),
    %% Counters outlive a restart of their worker.
    #{calls := Calls} = worker(Id),
    exit(maps:get(pid, worker(Id)), kill),
    wait_for(restart, fun() -> maps:get(restarts, worker(Id)) =:= 1 end),
    #{calls := Calls, timeouts := 1, restarts := 1} = worker(Id),
    ?assertEqual(1, maps:get(restarts, py_pool:stats())).

%%% Virtualenv and requirements ----------------------------------------

venv_and_requirements(Config) ->
    Venv = filename:join(?config(priv_dir, Config), "venv"),
    ok = application:set_env(py, venv, Venv),
    ok = application:set_env(py, requirements, ["six>=1.10"]),
    Events = capture_log(fun() -> ok = py:start() end),
    ?assert(filelib:is_file(filename:join([Venv, "bin", "python"]))),
    ?assertMatch([{venv_created, _}, {requirement_install, _}], Events),
    File = py:eval(<<"__import__('six').__file__">>, #{}),
    ?assertEqual(filename:absname(Venv) ++ "/",
                 string:slice(unicode:characters_to_list(File), 0, length(filename:absname(Venv)) + 1)),
    ?assert(is_binary(py:const(six, '__version__'))),
    %% Satisfied now: the next start installs nothing.
    ok = py:stop(),
    ?assertEqual([], capture_log(fun() -> ok = py:start() end)),
    %% A requirement pip cannot install fails the start, naming it.
    ok = py:stop(),
    Bad = "six (((",
    ok = application:set_env(py, requirements, ["six", Bad]),
    {error, {bad_config, requirements, Bad, Why}} = py:start(),
    ?assertNotEqual(nomatch, string:find(Why, "pip install")),
    ?assertEqual(undefined, whereis(py_sup)).

%% The py log events (their `py' metadata) logged while running `Fun'.
capture_log(Fun) ->
    Self = self(),
    Id = py_control_capture,
    ok = logger:add_handler(Id, ?MODULE, #{config => #{to => Self}}),
    try
        Fun()
    after
        logger:remove_handler(Id)
    end,
    collect_events([]).

collect_events(Acc) ->
    receive
        {py_log, Event, Msg} -> collect_events([{Event, Msg} | Acc])
    after 0 ->
        lists:reverse([E || E = {Ev, _} <- Acc,
                            lists:member(Ev, [venv_created, requirement_install])])
    end.

%% @doc Logger handler: relays py's events (`py' metadata) to a process.
log(#{meta := #{py := Event}, msg := Msg}, #{config := #{to := Pid}}) ->
    Pid ! {py_log, Event, Msg},
    ok;
log(_Event, _Config) ->
    ok.
