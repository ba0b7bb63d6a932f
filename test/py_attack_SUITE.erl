%%% @doc py under attack (issue 13): one test case per promise that was
%%% broken, and a PropEr fuzzer that throws hostile terms at every slot
%%% of the API (module, function, args, kwargs, options, code, vars,
%%% object) and checks that the VM lives, that every error is an
%%% `py_errors:error_reason()' (checked against the type itself), and
%%% that every call returns or raises within its timeout.
%%%
%%% The `schedulers' group: a request's conversion runs on a worker, never
%%% on a scheduler thread (Python code in a map key's `__hash__' cannot
%%% take a dirty scheduler, and a call's timeout holds whatever the size
%%% of its request); the normal-scheduler budget counts what a copy costs;
%%% integers of any size convert exactly, or the call raises; jobs queued
%%% while a worker spins still wake the other idle workers.
-module(py_attack_SUITE).

-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").
-include_lib("proper/include/proper.hrl").

-export([suite/0, all/0, groups/0, init_per_suite/1, end_per_suite/1,
         init_per_group/2, end_per_group/2]).
-export([hash_of_a_key_never_runs_on_a_dirty_scheduler/1,
         timeout_holds_for_a_large_request/1,
         hostile_shapes_leave_the_normal_scheduler/1,
         cheap_shapes_stay_on_the_normal_scheduler/1,
         hostile_shapes_still_convert/1,
         callback_reply_has_the_same_budget/1,
         big_integers_from_python/1,
         big_integers_to_python/1,
         integers_beyond_erlangs_limit_raise/1,
         queued_jobs_wake_every_idle_worker/1]).
%% Called by Python through beam.call.
-export([huge_integers/0]).
-export([encoder_recursion_is_bounded/1, duplicate_keys_are_refused/1,
         graceful_stop_answers_queued_calls/1, no_atoms_from_python_data/1,
         error_shapes/1, names_as_binaries_or_atoms/1, callbacks_setting/1,
         deep_recursion_survives/1, reason_checker_checks/1,
         blocked_del_stops_nothing/1, dead_caller_is_dropped_and_interrupted/1,
         killed_worker_answers_at_once/1, stuck_threads_are_bounded_and_shown/1,
         hostile_terms_everywhere/1]).
%% A logger handler, to see py's events.
-export([log/2]).

%% The timeout of every fuzzed call, and how much later its answer may come.
-define(CALL_TIMEOUT, 5000).
-define(SLACK, 3000).

suite() ->
    [{timetrap, {minutes, 4}}].

all() ->
    [reason_checker_checks, {group, schedulers}, {group, cases}, {group, fuzz}].

groups() ->
    [{schedulers, [], [hash_of_a_key_never_runs_on_a_dirty_scheduler,
                       timeout_holds_for_a_large_request,
                       hostile_shapes_leave_the_normal_scheduler,
                       cheap_shapes_stay_on_the_normal_scheduler,
                       hostile_shapes_still_convert, callback_reply_has_the_same_budget,
                       big_integers_from_python, big_integers_to_python,
                       integers_beyond_erlangs_limit_raise,
                       queued_jobs_wake_every_idle_worker]},
     {cases, [], [encoder_recursion_is_bounded, duplicate_keys_are_refused,
                  no_atoms_from_python_data, error_shapes, names_as_binaries_or_atoms,
                  callbacks_setting, deep_recursion_survives,
                  graceful_stop_answers_queued_calls, blocked_del_stops_nothing,
                  dead_caller_is_dropped_and_interrupted, killed_worker_answers_at_once,
                  stuck_threads_are_bounded_and_shown]},
     {fuzz, [], [hostile_terms_everywhere]}].

init_per_suite(Config) ->
    _ = application:load(py),
    Saved = application:get_all_env(py),
    ok = py_test_util:start(),
    py:exec(<<"import time, beam, threading\n"
              "gate = threading.Event()\n"
              "def wait_gate():\n"
              "    return gate.wait(10)\n"
              "class LoopingHash:\n"
              "    def __hash__(self):\n"
              "        while True:\n"
              "            pass\n"
              "class SleepingHash:\n"
              "    def __init__(self, seconds):\n"
              "        self.seconds = seconds\n"
              "    def __hash__(self):\n"
              "        time.sleep(self.seconds)\n"
              "        return 1\n">>),
    [{saved_env, Saved} | Config].

end_per_suite(Config) ->
    _ = py:stop(),
    [application:unset_env(py, K) || {K, _} <- application:get_all_env(py)],
    [application:set_env(py, K, V) || {K, V} <- ?config(saved_env, Config)],
    ok.

init_per_group(fuzz, Config) ->
    %% Every call gets a timeout, those without options too.
    ok = application:set_env(py, call_timeout, ?CALL_TIMEOUT),
    ok = py:restart(),
    Config;
init_per_group(_, Config) ->
    Config.

end_per_group(fuzz, _Config) ->
    application:unset_env(py, call_timeout),
    ok = py:restart();
end_per_group(_, _Config) ->
    ok.

%%% The numbered cases -----------------------------------------------------

%% 3. An encoder whose result is of its own type again recursed without
%% end; what encoders return now counts toward the nesting limit.
encoder_recursion_is_bounded(_Config) ->
    ok = exec(<<"import beam, datetime\n"
                "beam.register_encoder(datetime.datetime, lambda d: d.replace(microsecond=0))">>),
    try
        {Time, Reason} = timer:tc(fun() -> error_of(fun() -> py:eval(<<"datetime.datetime.now()">>) end) end),
        ?assertMatch({py_badresult, too_deep, {'$py', <<"datetime.datetime">>, _}}, Reason),
        ?assert(Time < 30000000),
        %% Inside a list, and in a dict, the same.
        ?assertMatch({py_badresult, too_deep, _},
                     error_of(fun() -> py:eval(<<"[1, {'t': datetime.datetime.now()}]">>) end)),
        %% A decoder's arguments nest like any tuple's elements.
        ok = exec(<<"beam.register_decoder('wrap', lambda x: [x])">>),
        Deep = lists:foldl(fun(_, Acc) -> {wrap, Acc} end, 0, lists:seq(1, 20000)),
        ?assertMatch({py_badarg, too_deep, _}, error_of(fun() -> py:value(Deep) end))
    after
        ok = exec(<<"beam.unregister_encoder(datetime.datetime)\nbeam.unregister_decoder('wrap')">>)
    end,
    ?assertEqual(3, py:eval(<<"1 + 2">>)).

%% 6. Keys distinct as terms and equal in Python were merged silently.
duplicate_keys_are_refused(_Config) ->
    [?assertEqual({py_badarg, duplicate_key, M}, error_of(fun() -> py:func(builtins, len, [M]) end))
     || M <- [#{1 => a, 1.0 => b}, #{a => 1, <<"a">> => 2}, #{1 => x, true => y},
              #{0 => x, false => y}, #{0 => x, 0.0 => y, false => z}]],
    %% Nested, in keyword arguments and in eval's variables.
    ?assertEqual({py_badarg, duplicate_key, #{1 => a, 1.0 => b}},
                 error_of(fun() -> py:func(builtins, len, [[x, {#{1 => a, 1.0 => b}}]]) end)),
    ?assertEqual({py_badarg, duplicate_key, #{base => 2, <<"base">> => 3}},
                 error_of(fun() -> py:func(builtins, int, [<<"11">>], #{base => 2, <<"base">> => 3}) end)),
    ?assertEqual({py_badarg, duplicate_key, #{x => 1, <<"x">> => 2}},
                 error_of(fun() -> py:eval(<<"x">>, #{x => 1, <<"x">> => 2}) end)),
    %% Distinct in Python too: fine.
    ?assertEqual(3, py:func(builtins, len, [#{1 => a, 2 => b, <<"1">> => c}])),
    ?assertEqual(2, py:func(builtins, len, [maps:from_list([{I, I} || I <- lists:seq(1, 2)])])),
    Big = maps:from_list([{I, I} || I <- lists:seq(1, 5000)]),
    ?assertEqual(5000, py:func(builtins, len, [Big])),
    ?assertEqual({py_badarg, duplicate_key, Big#{1.0 => x}},
                 error_of(fun() -> py:func(builtins, len, [Big#{1.0 => x}]) end)).

%% 9. A graceful stop answers every call it accepted, those waiting in the
%% shared queue included.
graceful_stop_answers_queued_calls(_Config) ->
    Self = self(),
    N = 40,
    Pids = [spawn(fun() ->
                          R = try {ok, py:func(time, sleep, [0.02])}
                              catch error:E -> {error, E}
                              end,
                          Self ! {self(), R}
                  end) || _ <- lists:seq(1, N)],
    %% All submitted (most of them queued) before the stop.
    true = py_test_util:wait_until(fun() -> py_nif:shared_queue_len() >= N - 8 end, 100),
    ok = py:stop(),
    Results = [receive {P, R} -> R after 20000 -> timeout end || P <- Pids],
    ok = py_test_util:start(),
    ?assertEqual(lists:duplicate(N, {ok, undefined}), Results).

%% 10. Python data never grows the atom table: beam.call names and the
%% types of exceptions made at run time.
no_atoms_from_python_data(Config) ->
    ok = exec(<<"import beam\n"
                "def call_many(n, prefix):\n"
                "    errors = 0\n"
                "    for i in range(n):\n"
                "        for m, f in (('%s_m%d' % (prefix, i), 'f'), ('lists', '%s_f%d' % (prefix, i))):\n"
                "            try:\n"
                "                beam.call(m, f, [])\n"
                "            except beam.ErlangError:\n"
                "                errors += 1\n"
                "    return errors\n"
                "def raise_made(i):\n"
                "    raise type('Made%d' % i, (Exception,), {})('made')\n">>),
    Prefix = "atk" ++ integer_to_list(erlang:unique_integer([positive])),
    Before = erlang:system_info(atom_count),
    ?assertEqual(2000, py:func('__main__', call_many, [1000, list_to_binary(Prefix)])),
    Reasons = [error_of(fun() -> py:func('__main__', raise_made, [I]) end) || I <- lists:seq(1, 1000)],
    Grown = erlang:system_info(atom_count) - Before,
    ct:log("atoms made: ~b", [Grown]),
    ?assert(Grown < 50),
    %% The bounded form: the type name as a binary.
    ?assertEqual({python, <<"__main__.Made7">>, <<"made">>}, three(lists:nth(7, Reasons))),
    %% Classes importable by their name are atoms, made or not before.
    ?assertMatch({python, 'json.decoder.JSONDecodeError', _, _},
                 error_of(fun() -> py:func(json, loads, [<<"{">>]) end)),
    ok = exec(<<"class AtkImportable(Exception): pass\n"
                "def raise_importable():\n    raise AtkImportable('x')">>),
    ?assertMatch({python, '__main__.AtkImportable', _, _},
                 error_of(fun() -> py:func('__main__', raise_importable, []) end)),
    %% A module that can be loaded is called by a name that was no atom.
    Mod = "py_attack_loadable_" ++ integer_to_list(erlang:unique_integer([positive])),
    Dir = filename:join(?config(priv_dir, Config), Mod),
    ok = filelib:ensure_dir(filename:join(Dir, "x")),
    {ok, ModAtom, Beam} = compile:forms([{attribute, 1, module, list_to_atom(Mod)},
                                         {attribute, 1, export, [{hello, 0}]},
                                         {function, 1, hello, 0, [{clause, 1, [], [], [{atom, 1, hi}]}]}],
                                        [binary]),
    ok = file:write_file(filename:join(Dir, Mod ++ ".beam"), Beam),
    true = code:add_patha(Dir),
    ?assertEqual(hi, py:eval(<<"beam.call(m, 'hello', [])">>, #{m => list_to_binary(Mod)})),
    code:del_path(Dir),
    _ = code:purge(ModAtom), _ = code:delete(ModAtom).

three({python, Type, Message, _Traceback}) -> {python, Type, Message}.

%% 12. Every error is an error_reason(), with no panic: a forged context,
%% an encoder that changes the dict being encoded, a custom scheduler
%% that does not exist.
error_shapes(_Config) ->
    {ok, Member} = {ok, hd(py_pool:members())},
    Forged = {'$py_context', make_ref(), Member},
    ?assertMatch({py_badarg, bad_context, _}, error_of(fun() -> py:eval(<<"1">>, #{}, [{context, Forged}]) end)),
    ?assertMatch({py_badarg, bad_context, _}, error_of(fun() -> py:with_context(Forged, fun() -> py:eval(<<"1">>) end) end)),
    ?assertMatch({py_badarg, bad_context, _}, error_of(fun() -> py:drop_context(Forged) end)),
    ?assertMatch({py_badarg, bad_option, _},
                 error_of(fun() -> py:eval(<<"1">>, #{}, [{context, {'$py_context', x, y}}]) end)),
    ok = exec(<<"import beam\n"
                "class AtkMutator: pass\n"
                "atk_d = {}\n"
                "def atk_enc(o):\n"
                "    atk_d[len(atk_d) + 100] = 0\n"
                "    return 1\n"
                "beam.register_encoder(AtkMutator, atk_enc)\n"
                "for i in range(5): atk_d[i] = AtkMutator()">>),
    try
        ?assertMatch({python, 'RuntimeError', <<"dict changed size during conversion">>, _},
                     error_of(fun() -> py:eval(<<"atk_d">>) end))
    after
        ok = exec(<<"beam.unregister_encoder(AtkMutator)">>)
    end,
    ?assertMatch({py_bad_scheduler, {nosuchmod, nosuchfun}, {error, undef}},
                 error_of(fun() -> py:func(operator, add, [1, 2], [], [{scheduler, {nosuchmod, nosuchfun}}]) end)),
    ?assertEqual(3, py:func(operator, add, [1, 2])).

%% 12. A name given as a binary and as an atom means the same.
names_as_binaries_or_atoms(_Config) ->
    ok = exec(<<"def atk_echo(x):\n    return x">>),
    Results = [py:func(M, F, [7]) || M <- ['__main__', <<"__main__">>, "__main__"],
                                     F <- [atk_echo, <<"atk_echo">>]],
    ?assertEqual(lists:duplicate(6, 7), Results),
    Pi = [py:const(M, N) || M <- [math, <<"math">>], N <- [pi, <<"pi">>]],
    ?assertEqual(lists:duplicate(4, math:pi()), Pi),
    ?assertEqual([<<"a/b">>, <<"a/b">>],
                 [py:func(D, [<<"a">>, <<"b">>]) || D <- ['os.path.join', <<"os.path.join">>]]),
    D = py:func(datetime, date, [2024, 2, 29]),
    ?assertEqual([2024, 2024], [py:attr(D, N) || N <- [year, <<"year">>]]),
    ?assertEqual([<<"2024-02-29">>, <<"2024-02-29">>], [py:method(D, N) || N <- [isoformat, <<"isoformat">>]]),
    ?assertEqual([255, 255], [py:func(builtins, int, [<<"ff">>], K) || K <- [[{base, 16}], [{<<"base">>, 16}]]]).

%% 13. The `callbacks' setting limits what Python may call in Erlang,
%% checked before any atom is made.
callbacks_setting(_Config) ->
    ok = application:set_env(py, callbacks, all),
    ?assertEqual({error, {bad_config, callbacks, [{lists, 1}], "expected all, or a list of Module | "
                          "{Module, Function} | {Module, '_'}"}},
                 restart_with(callbacks, [{lists, 1}])),
    ok = restart_with(callbacks, [{lists, seq}, {erlang, '_'}, string]),
    try
        ?assertEqual([1, 2, 3], py:eval(<<"beam.call('lists', 'seq', [1, 3])">>)),
        ?assertEqual(3, py:eval(<<"beam.call('erlang', 'length', [[1, 2, 3]])">>)),
        ?assertEqual(<<"AB">>, py:eval(<<"beam.call('string', 'uppercase', ['ab'])">>)),
        Denied = error_of(fun() -> py:eval(<<"beam.call('os', 'cmd', ['echo no'])">>) end),
        ?assertMatch({python, 'beam.ErlangError', _, _}, Denied),
        ?assertEqual({callback_not_allowed, os, cmd},
                     py:eval(<<"atk_reason(lambda: beam.call('os', 'cmd', ['echo no']))">>)),
        ?assertEqual({callback_not_allowed, lists, reverse},
                     py:eval(<<"atk_reason(lambda: beam.call('lists', 'reverse', [[1]]))">>)),
        Name = <<"atk_not_an_atom_", (integer_to_binary(erlang:unique_integer([positive])))/binary>>,
        ?assertMatch({callback_not_allowed, Name, Name},
                     py:eval(<<"atk_reason(lambda: beam.call(n, n, []))">>, #{n => Name})),
        ?assertError(badarg, binary_to_existing_atom(Name))
    after
        ok = restart_with(callbacks, all)
    end,
    ?assertEqual([1, 2], py:eval(<<"beam.call('lists', 'seq', [1, 2])">>)).

restart_with(Key, Value) ->
    ok = application:set_env(py, Key, Value),
    case py:restart() of
        ok ->
            ok = exec(<<"import beam\n"
                        "def atk_reason(f):\n"
                        "    try:\n        f()\n    except beam.ErlangError as e:\n        return e.reason">>);
        Error ->
            application:unset_env(py, Key),
            ok = py:start(),
            Error
    end.

%% 14. Recursion that a standalone python3 (8 MB main stack) survives
%% survives in a worker.
deep_recursion_survives(_Config) ->
    Code = "import sys\n"
           "sys.setrecursionlimit(100000)\n"
           "def atk_deep(n):\n"
           "    return 0 if n == 0 else 1 + max(map(atk_deep, [n - 1]))\n",
    %% About 5.5 MB of C stack (each level recurses through map()).
    Depth = 10000,
    Python = os:getenv("PYTHON", "/usr/bin/python3"),
    Standalone = os:cmd("ulimit -s 8192; " ++ Python ++ " -c '" ++ Code ++ "print(atk_deep(" ++
                        integer_to_list(Depth) ++ "))' 2>&1"),
    ct:log("standalone python3: ~ts", [Standalone]),
    ?assertEqual(integer_to_list(Depth) ++ "\n", Standalone),
    ?assertEqual({error, {bad_config, worker_stack, 1024,
                          "expected a stack size in bytes, from 8 MB (8388608) to 1 GB"}},
                 restart_with(worker_stack, 1024)),
    [begin
         ok = restart_with(worker_stack, Stack),
         ok = exec(list_to_binary(Code)),
         ?assertEqual(Depth, py:func('__main__', atk_deep, [Depth])),
         ?assertEqual(Depth, py:func('__main__', atk_deep, [Depth], [], [{scheduler, round_robin}]))
     end || Stack <- [8 * 1024 * 1024, 16 * 1024 * 1024]],
    ok = exec(<<"sys.setrecursionlimit(1000)">>),
    application:unset_env(py, worker_stack),
    ok = py:restart().

%% 4. A __del__ that blocks took the housekeeper for good: timeouts no
%% longer interrupted Python and every later release leaked. Interrupts
%% have a thread of their own; a stuck releaser is logged and replaced.
blocked_del_stops_nothing(_Config) ->
    ok = exec(<<"import threading, itertools
"
                "atk_gate = threading.Event()
"
                "atk_freed = [0]
"
                "class AtkBlocker:
"
                "    def __del__(self):
"
                "        atk_gate.wait(60)
"
                "class AtkCounted:
"
                "    def __del__(self):
"
                "        atk_freed[0] += 1
">>),
    ok = watch_log(),
    try
        drop_handles(fun() -> [py:init('__main__', 'AtkBlocker', [])] end),
        #{restarts := Restarts} = py_pool:stats(),
        %% The releaser is blocked now. Interrupts go on: a timed-out
        %% endless loop stops, and its worker serves again, well before
        %% the stuck watch (`stuck_grace', 5 s) would restart it.
        ?assertEqual({py_timeout, 200},
                     error_of(fun() -> py:eval(<<"any(n < 0 for n in itertools.count())">>, #{},
                                               [{timeout, 200}]) end)),
        ?assert(eventually(1500, fun all_idle/0)),
        ?assertMatch(#{restarts := Restarts}, py_pool:stats()),
        %% Releases go on too (a new releaser), and the stuck one is logged.
        drop_handles(fun() -> [py:init('__main__', 'AtkCounted', []) || _ <- lists:seq(1, 200)] end),
        ?assert(py_test_util:wait_until(fun() -> py:eval(<<"atk_freed[0]">>) =:= 200 end, 400)),
        ?assertMatch([_ | _], logged(release_stuck))
    after
        ok = exec(<<"atk_gate.set()">>),
        unwatch_log()
    end.

%% Makes handles in a process that then exits: the Erlang GC releases them.
drop_handles(Make) ->
    {Pid, MRef} = spawn_monitor(fun() -> _ = Make(), ok end),
    receive {'DOWN', MRef, process, Pid, normal} -> ok end.

%% Polls `Fun' until it is true, for at most `Ms' ms.
eventually(Ms, Fun) ->
    Deadline = erlang:monotonic_time(millisecond) + Ms,
    Poll = fun Poll() ->
                   case Fun() of
                       true -> true;
                       false ->
                           case erlang:monotonic_time(millisecond) < Deadline of
                               true -> timer:sleep(10), Poll();
                               false -> false
                           end
                   end
           end,
    Poll().

all_idle() ->
    lists:all(fun(#{state := S}) -> S =:= idle end, py:workers()).

%% 7. A caller killed mid-call: its running job is interrupted (as on a
%% timeout), its queued jobs never run.
dead_caller_is_dropped_and_interrupted(_Config) ->
    ok = exec(<<"atk_ran = []
"
                "def atk_mark(x):
    atk_ran.append(x)
    return x">>),
    [#{id := Id} | _] = py:workers(),
    %% Running: an endless loop, through the shared queue without timeout.
    Loop = spawn(fun() -> py:exec(<<"while True: pass">>) end),
    ?assert(py_test_util:wait_until(fun() -> not all_idle() end, 100)),
    exit(Loop, kill),
    ?assert(eventually(3000, fun all_idle/0)),
    %% Queued: behind a sleep on one worker; its caller dies meanwhile.
    Sleeper = spawn(fun() -> py:func(time, sleep, [0.5], [], [{worker, Id}]) end),
    timer:sleep(100),
    Queued = spawn(fun() -> py:func('__main__', atk_mark, [queued], [], [{worker, Id}]) end),
    timer:sleep(50),
    exit(Queued, kill),
    ?assertEqual(ok, py:func('__main__', atk_mark, [after_it], [], [{worker, Id}]) =:= after_it
                     andalso ok),
    ?assertEqual([<<"after_it">>], py:eval(<<"[str(x) for x in atk_ran]">>)),
    exit(Sleeper, kill).

%% 8. A worker killed while its Python code is blocked in C answers its
%% caller at once, whatever the scheduler (the shared one included).
killed_worker_answers_at_once(_Config) ->
    ok = exec(<<"import threading
atk_block = threading.Event()
">>),
    try
        [begin
             Self = self(),
             %% The worker that ran the previous call may still show busy
             %% for a moment: wait until none does, so that the busy one
             %% below is the one running this call.
             ?assert(eventually(2000, fun all_idle/0)),
             Caller = spawn(fun() ->
                                    R = try py:eval(<<"atk_block.wait(30)">>, #{}, Opts)
                                        catch error:E -> {error, E}
                                        end,
                                    Self ! {self(), R}
                            end),
             ?assert(py_test_util:wait_until(fun() -> busy() =/= [] end, 100)),
             [#{id := BusyId, pid := Pid}] = busy(),
             exit(Pid, kill),
             receive
                 {Caller, Result} -> ?assertEqual({error, {py_worker_down, BusyId}}, Result)
             after 2000 ->
                 erlang:error({caller_not_answered, Opts})
             end,
             ?assert(py_test_util:wait_until(fun() -> length(py:workers()) =:= 4 end, 100))
         end || Opts <- [[], [{scheduler, shared}], [{scheduler, round_robin}],
                         [{scheduler, least_loaded}], [{key, atk}]]]
    after
        ok = exec(<<"atk_block.set()">>)
    end.

busy() ->
    [W || W = #{state := busy} <- py:workers()].

%% 11. Threads stuck in C after a timeout or a kill: counted, shown in
%% py:workers(), logged, and bounded by `max_stuck_threads'.
stuck_threads_are_bounded_and_shown(_Config) ->
    ok = application:set_env(py, stuck_grace, 200),
    ok = application:set_env(py, max_stuck_threads, 1),
    ok = py:restart(),
    ok = exec(<<"import threading
atk_stuck = threading.Event()
">>),
    ok = watch_log(),
    Stuck = fun(Id) ->
                    error_of(fun() -> py:eval(<<"atk_stuck.wait(30)">>, #{},
                                              [{worker, Id}, {timeout, 100}]) end)
            end,
    try
        ?assertEqual({py_timeout, 100}, Stuck(1)),
        %% Declared stuck, restarted; its old thread is left behind.
        ?assert(py_test_util:wait_until(fun() -> stuck_of(1) =/= [] end, 100)),
        ?assertMatch(#{restarts := 1}, worker(1)),
        ?assertMatch(#{stuck_threads := 1}, py_pool:stats()),
        ?assertMatch([_ | _], logged(thread_left_behind)),
        %% At the bound: the next stuck worker is not replaced.
        ?assertEqual({py_timeout, 100}, Stuck(2)),
        ?assert(py_test_util:wait_until(fun() -> logged(stuck_threads_limit) =/= [] end, 100)),
        ?assertMatch(#{restarts := 0, state := busy}, worker(2)),
        %% Once the C code returns, the threads end and the count drops.
        ok = exec(<<"atk_stuck.set()">>),
        ?assert(py_test_util:wait_until(fun() -> stuck_of(1) =:= [] end, 200)),
        ?assert(py_test_util:wait_until(fun() -> worker(2) =/= undefined andalso
                                                     maps:get(state, worker(2)) =:= idle end, 100)),
        ?assertMatch(#{stuck_threads := 0}, py_pool:stats())
    after
        _ = catch exec(<<"atk_stuck.set()">>),
        unwatch_log(),
        application:unset_env(py, stuck_grace),
        application:unset_env(py, max_stuck_threads),
        ok = py:restart()
    end.

worker(Id) ->
    case [W || W = #{id := I} <- py:workers(), I =:= Id] of
        [W] -> W;
        [] -> undefined
    end.

stuck_of(Id) ->
    case worker(Id) of
        #{stuck_threads := S} -> S;
        undefined -> []
    end.

%% py's log events (the `py' metadata key), collected in an ETS table.
watch_log() ->
    _ = catch ets:delete(atk_log),
    ets:new(atk_log, [named_table, public, bag]),
    ok = logger:add_handler(atk_log, ?MODULE, #{level => all}).

unwatch_log() ->
    _ = logger:remove_handler(atk_log),
    ok.

logged(Event) ->
    [M || {_, M} <- ets:lookup(atk_log, Event)].

log(#{meta := #{py := Event}, msg := Msg}, _Config) ->
    catch ets:insert(atk_log, {Event, Msg});
log(_, _) ->
    ok.

%%% The reason checker -----------------------------------------------------

%% The checker follows py_errors' type: it must refuse what is not there.
reason_checker_checks(_Config) ->
    [?assert(is_reason(R), R)
     || R <- [{python, 'ValueError', <<"m">>, []}, {python, <<"a.B">>, <<"m">>, [<<"tb">>]},
              {py_badarg, too_deep, [1]}, {py_timeout, 100}, {py_worker_down, 3},
              py_not_started, {py_badresult, duplicate_key, {'$py', <<"dict">>, make_ref()}},
              {py_bad_scheduler, {m, f}, x}, {py_nodedown, a@b}]],
    [?assertNot(is_reason(R), R)
     || R <- [badarg, {badarg, 1}, {py_badarg, no_such_why, 1}, {python, 1, <<>>, []},
              {py_timeout, -5}, {py_worker_down, 0}, {py_badresult, too_deep, nohandle},
              function_clause, {error, {py_timeout, 1}}, undef]].

%%% The fuzzer -------------------------------------------------------------

hostile_terms_everywhere(_Config) ->
    persistent_term:put({?MODULE, big}, big_terms()),
    Before = {self(), erlang:system_info(process_count)},
    try
        ?assert(proper:quickcheck(prop_hostile(), [{numtests, 250}, {to_file, user},
                                                   {max_size, 12}]))
    after
        persistent_term:erase({?MODULE, big})
    end,
    %% The VM and py live.
    ?assertEqual(3, py:func(operator, add, [1, 2])),
    ct:log("processes before/after: ~p / ~p", [Before, erlang:system_info(process_count)]).

prop_hostile() ->
    ?FORALL({Slot, Term}, {slot(), hostile()},
            begin
                {Outcome, Ms} = attempt(Slot, Term),
                Ok = case Outcome of
                         {ok, _} -> true;
                         {error, Reason} -> is_reason(Reason);
                         _ -> false
                     end,
                ?WHENFAIL(io:format(user, "slot ~p, ~p ms: ~P~n", [Slot, Ms, Outcome, 12]),
                          Ok andalso Ms =< ?CALL_TIMEOUT + ?SLACK)
            end).

slot() ->
    oneof([module, function, args, kwargs, options, code, vars, object, attr, value, stream,
           scatter]).

%% The API call with `T' in slot `Slot', in a process of its own: its
%% outcome and how long it took.
call(module, T) -> py:func(T, f, [1], [], opts());
call(function, T) -> py:func(builtins, T, [1], [], opts());
call(args, T) -> py:func(builtins, repr, [T], [], opts());
call(kwargs, T) -> py:func(builtins, dict, [], T, opts());
call(options, T) -> py:func(builtins, repr, [1], [], T);
call(code, T) -> py:eval(T, #{}, opts());
call(vars, T) -> py:eval(<<"1">>, T, opts());
call(object, T) -> py:method(T, '__repr__', [], [], opts());
call(attr, T) -> py:attr(T, T);
call(value, T) -> py:value(T, opts());
call(stream, T) ->
    S = py:stream(builtins, iter, [T], opts()),
    case py:stream_next(S, ?CALL_TIMEOUT) of
        {ok, _} = First -> [First, py:stream_next(S, ?CALL_TIMEOUT)];
        {error, E} -> erlang:error(E);
        Last -> [Last]
    end;
call(scatter, T) ->
    [case R of {error, E} -> erlang:error(E); _ -> R end
     || R <- py:scatter(builtins, repr, [[T], [T, T]], opts())].

opts() -> [{timeout, ?CALL_TIMEOUT}].

attempt(Slot, Term) ->
    Self = self(),
    %% Timed in the calling process, once it has its copy of the term.
    {Pid, MRef} = spawn_monitor(fun() ->
                                        Start = erlang:monotonic_time(millisecond),
                                        R = try {ok, call(Slot, Term)}
                                            catch error:E -> {error, E};
                                                  Class:E -> {Class, E}
                                            end,
                                        Self ! {self(), R, erlang:monotonic_time(millisecond) - Start}
                                end),
    receive
        {Pid, R, Ms} -> erlang:demonitor(MRef, [flush]), {R, Ms};
        {'DOWN', MRef, process, Pid, Why} -> {{died, Why}, 0}
    after 2 * (?CALL_TIMEOUT + ?SLACK) ->
        exit(Pid, kill),
        {hang, 2 * (?CALL_TIMEOUT + ?SLACK)}
    end.

%% Hostile terms: what has no Python counterpart, what is huge, what is
%% forged, and mixtures of them.
hostile() ->
    ?SIZED(Size, hostile(Size)).

hostile(0) ->
    leaf();
hostile(Size) ->
    Smaller = ?LAZY(hostile(Size div 3)),
    frequency([{5, leaf()},
               {2, list(Smaller)},
               {1, ?LET(L, list(Smaller), list_to_tuple(L))},
               {1, ?LET({L, Tail}, {list(Smaller), Smaller}, improper(L, Tail))},
               {1, ?LET(KVs, list({Smaller, Smaller}), maps:from_list(KVs))},
               {1, ?LET(L, list(Smaller), [{'$py', <<"x">>, X} || X <- L])},
               {1, ?LET(X, Smaller, [{strings, X}, {timeout, X}, {context, X}, {worker, X},
                                     {key, X}, {return, X}, {node, X}, {scheduler, X}])}]).

improper([], Tail) -> [x | Tail];
improper(L, Tail) -> L ++ Tail.

leaf() ->
    frequency([{8, small()}, {1, big()}, {2, forged()}, {2, name()}]).

small() ->
    oneof([int(), float(), atom(), binary(), bitstring(), list(range(0, 16#10FFFF)),
           [16#D800], [-1], [16#110000], <<255, 254, 253>>, <<"ok", 255>>,
           <<1:3>>, <<"abc", 5:4>>, [1 | 2], [a, b | <<1:3>>], [1 | fun() -> ok end],
           fun() -> ok end, fun lists:map/2, self(), make_ref(), hd(erlang:ports()),
           foreign_pid(), foreign_ref(), foreign_port(), {}, [], #{}, undefined, nan,
           '$py', '$py_value', '$py_bytes', '$py_context', {'$py_value', fun() -> x end},
           {'$py_bytes', <<1:5>>}, {'$py_bytes', 1}, {'$py_value'}]).

big() ->
    ?LET(I, range(1, 6), element(I, persistent_term:get({?MODULE, big}))).

forged() ->
    oneof([{'$py', <<"int">>, make_ref()}, {'$py', x, y}, {'$py', <<"x">>, self()},
           {'$py', <<"x">>, {'$py_remote', node(), make_ref()}},
           {'$py', <<"x">>, {'$py_remote', 'atk@nohost', make_ref()}},
           {'$py', <<"x">>, {'$py_remote', 1, 2}},
           {'$py_context', make_ref(), hd(py_pool:members())},
           {'$py_context', make_ref(), {make_ref(), self(), 1, x}},
           {'$py_context', x, y}]).

name() ->
    oneof([<<"os.path.join">>, <<"a..b">>, <<".">>, <<"">>, <<"__main__">>, '__main__',
           <<"builtins.__import__">>, <<"nosuchmodule.x">>, <<"1 +">>, <<"\n">>,
           <<"import time\ntime.sleep(0.001)">>, "math", [<<"1">>, $+, [<<"1">>]],
           <<"x" /utf8, 0, "y">>, 'a.b', 'math.pi']).

%% The expensive ones are built once.
big_terms() ->
    Deep = fun(Wrap) -> lists:foldl(fun(_, Acc) -> Wrap(Acc) end, 0, lists:seq(1, 100000)) end,
    {pow10(100000),
     Deep(fun(X) -> [X] end),
     Deep(fun(X) -> {X} end),
     maps:from_list([{I, I} || I <- lists:seq(1, 100000)]),
     (fun() -> Env = lists:seq(1, 100000), fun() -> Env end end)(),
     Deep(fun(X) -> #{k => X} end)}.

%% Pids, references and ports of a node that is not this one, made from
%% their external format.
foreign_pid() ->
    binary_to_term(<<131, 88, 119, 10, "atk@nohost", 1:32, 0:32, 7:32>>).

foreign_ref() ->
    binary_to_term(<<131, 90, 3:16, 119, 10, "atk@nohost", 7:32, 1:32, 2:32, 3:32>>).

foreign_port() ->
    binary_to_term(<<131, 120, 119, 10, "atk@nohost", 1:64, 7:32>>).

%%% Checking reasons against py_errors:error_reason() ----------------------

is_reason(Term) ->
    matches(Term, {user_type, 0, error_reason, []}, py_errors).

matches(T, {ann_type, _, [_Var, Type]}, M) -> matches(T, Type, M);
matches(T, {paren_type, _, [Type]}, M) -> matches(T, Type, M);
matches(T, {atom, _, A}, _M) -> T =:= A;
matches(T, {integer, _, I}, _M) -> T =:= I;
matches(T, {type, _, union, Types}, M) -> lists:any(fun(Ty) -> matches(T, Ty, M) end, Types);
matches(T, {type, _, tuple, any}, _M) -> is_tuple(T);
matches(T, {type, _, tuple, Types}, M) ->
    is_tuple(T) andalso tuple_size(T) =:= length(Types)
        andalso lists:all(fun({X, Ty}) -> matches(X, Ty, M) end,
                          lists:zip(tuple_to_list(T), Types));
matches(T, {type, _, list, [Type]}, M) ->
    is_list(T) andalso lists:all(fun(X) -> matches(X, Type, M) end, T);
matches(T, {type, _, Name, Args}, _M) -> builtin(T, Name, Args);
matches(T, {user_type, _, Name, []}, M) -> matches(T, type_def(M, Name), M);
matches(T, {remote_type, _, [{atom, _, Mod}, {atom, _, Name}, []]}, _M) ->
    matches(T, type_def(Mod, Name), Mod).

builtin(_T, term, []) -> true;
builtin(_T, any, []) -> true;
builtin(T, binary, []) -> is_binary(T);
builtin(T, atom, []) -> is_atom(T);
builtin(T, module, []) -> is_atom(T);
builtin(T, node, []) -> is_atom(T);
builtin(T, pid, []) -> is_pid(T);
builtin(T, reference, []) -> is_reference(T);
builtin(T, integer, []) -> is_integer(T);
builtin(T, pos_integer, []) -> is_integer(T) andalso T > 0;
builtin(T, non_neg_integer, []) -> is_integer(T) andalso T >= 0;
builtin(T, timeout, []) -> T =:= infinity orelse (is_integer(T) andalso T >= 0);
builtin(T, string, []) -> io_lib:char_list(T);
builtin(T, list, []) -> is_list(T).

type_def(Module, Name) ->
    {ok, {Module, [{abstract_code, {raw_abstract_v1, Forms}}]}} =
        beam_lib:chunks(code:which(Module), [abstract_code]),
    [Def] = [Ty || {attribute, _, Kind, {N, Ty, []}} <- Forms, Kind =:= type orelse Kind =:= opaque,
                   N =:= Name],
    Def.

%%% The schedulers group ------------------------------------------------

%% Runs `Fun' in a process of its own: `{ok, Value}' when it returned
%% within `Ms', `timeout' otherwise (the process is killed).
within(Ms, Fun) ->
    {Pid, MRef} = spawn_monitor(fun() -> exit({done, Fun()}) end),
    receive
        {'DOWN', MRef, process, Pid, {done, Value}} -> {ok, Value};
        {'DOWN', MRef, process, Pid, Other} -> {crashed, Other}
    after Ms ->
        exit(Pid, kill),
        receive {'DOWN', MRef, process, Pid, _} -> timeout end
    end.

%% More cells than a normal scheduler copies (4,096).
padding() ->
    lists:seq(1, 10000).

%%% 1. Conversion runs on workers -------------------------------------

%% More callers than dirty CPU schedulers, each with a large request whose
%% map key's `__hash__' loops: they wait on workers, while the dirty
%% schedulers stay free for a garbage collection of a large process and
%% for the next large submission. Each call times out and its loop is
%% interrupted.
hash_of_a_key_never_runs_on_a_dirty_scheduler(_Config) ->
    Key = py:eval(<<"LoopingHash()">>),
    N = erlang:system_info(dirty_cpu_schedulers) + 1,
    Self = self(),
    Callers = [spawn(fun() ->
                             R = (catch py:func(builtins, len, [#{Key => padding()}], [],
                                                [{timeout, 1500}])),
                             Self ! {self(), R}
                     end) || _ <- lists:seq(1, N)],
    timer:sleep(300),
    Big = spawn(fun() -> L = lists:seq(1, 3000000), receive stop -> length(L) end end),
    ?assertEqual({ok, true}, within(5000, fun() -> erlang:garbage_collect(Big) end)),
    Big ! stop,
    Ref = make_ref(),
    {ok, Submitted} = within(5000, fun() ->
                                           py_nif:submit_dirty(any, Ref, py_request:value(padding()),
                                                               false)
                                   end),
    ?assertEqual(ok, Submitted),
    [receive
         {P, R} -> ?assertMatch({'EXIT', {{py_timeout, 1500}, _}}, R)
     after 10000 -> ct:fail(no_answer)
     end || P <- Callers],
    %% The loops were interrupted: every worker answers again.
    Workers = length(py_pool:workers()),
    ?assertEqual(lists:duplicate(2 * Workers, 3),
                 [py:func(operator, add, [1, 2], [], [{timeout, 5000}])
                  || _ <- lists:seq(1, 2 * Workers)]).

%% `__hash__' sleeps 2 s, which no interrupt cuts short: the caller is
%% answered at its timeout all the same.
timeout_holds_for_a_large_request(_Config) ->
    Key = py:eval(<<"SleepingHash(2)">>),
    T0 = erlang:monotonic_time(millisecond),
    ?assertEqual({py_timeout, 100},
                 error_of(fun() ->
                                  py:func(builtins, len, [#{Key => padding()}], [], [{timeout, 100}])
                          end)),
    Elapsed = erlang:monotonic_time(millisecond) - T0,
    ?assert(Elapsed < 1500, {answered_after_ms, Elapsed}),
    %% Let the sleeping worker finish before the next test.
    timer:sleep(2500).

%%% 2. The normal-scheduler budget -------------------------------------

hostile_shapes() ->
    Huge = 1 bsl 3321929,                       % about 10^1,000,000
    Env = lists:seq(1, 100000),
    Fun = fun() -> Env end,
    [{bignums, lists:duplicate(400, Huge)},
     {one_bignum, 1 bsl 100000},
     {negative_bignum, -(1 bsl 100000)},
     {fun_with_big_environment, Fun},
     {small_fun, fun() -> ok end},
     {improper_tail_fun, [1, 2 | Fun]},
     {improper_tail_tuple, [1, 2 | list_to_tuple(Env)]},
     {big_tuple, list_to_tuple(Env)},
     {big_map, maps:from_list([{I, I} || I <- Env])},
     {deep_nesting, lists:foldl(fun(_, Acc) -> [Acc] end, [], Env)},
     {deep_tuples, lists:foldl(fun(_, Acc) -> {Acc} end, [], Env)},
     {long_list, Env},
     {many_binaries, [<<I:64>> || I <- lists:seq(1, 5000)]},
     {map_of_bignums, #{a => Huge}},
     {big_kwargs, {Huge}}].

hostile_shapes_leave_the_normal_scheduler(_Config) ->
    [?assertEqual({Name, big}, {Name, py_nif:submit(any, make_ref(), py_request:value(Shape), false)})
     || {Name, Shape} <- hostile_shapes()],
    %% The reference is copied too: it counts.
    ?assertEqual(big, py_nif:submit(any, lists:seq(1, 10000), py_request:value(1), false)).

%% Large binaries are reference-counted: copied by reference, cheap.
cheap_shapes_stay_on_the_normal_scheduler(_Config) ->
    MB = binary:copy(<<"x">>, 1 bsl 20),
    Shapes = [{refc_binaries, lists:duplicate(100, MB)},
              {sub_binaries, [binary:part(MB, I, 1000) || I <- lists:seq(1, 100)]},
              {small_bignums, lists:duplicate(4, 1 bsl 10000)},
              {u64, [1 bsl 63, (1 bsl 64) - 1]},
              {small_list, lists:seq(1, 1000)},
              {small_map, maps:from_list([{I, I} || I <- lists:seq(1, 500)])}],
    [begin
         Ref = make_ref(),
         ?assertEqual({Name, ok}, {Name, py_nif:submit(any, Ref, py_request:value(Shape), false)}),
         receive
             {Ref, Reply} -> ?assertEqual({Name, {ok, Shape}}, {Name, py_engine:complete(Reply)})
         end
     end || {Name, Shape} <- Shapes].

%% Through the dirty path, the hostile shapes convert as before.
hostile_shapes_still_convert(_Config) ->
    Huge = 1 bsl 3321929,
    ?assertEqual(3, py:func(builtins, len, [[Huge, Huge, Huge]])),
    ?assertEqual(true, py:func(operator, eq, [Huge, Huge])),
    Env = lists:seq(1, 100000),
    Fun = fun() -> Env end,
    {py_badarg, unsupported_fun, _} = error_of(fun() -> py:func(builtins, len, [[Fun]]) end),
    {py_badarg, improper_list, _} = error_of(fun() -> py:func(builtins, len, [[1, 2 | Fun]]) end),
    ?assertEqual(100000, py:func(builtins, len, [list_to_tuple(Env)])),
    ?assertEqual(100000, py:func(builtins, len, [maps:from_list([{I, I} || I <- Env])])).

%% `callback_reply' (a beam.call's answer) checks the same budget. This
%% test stands in for the py_callback process to get hold of a slot.
callback_reply_has_the_same_budget(_Config) ->
    Server = whereis(py_callback),
    true = unregister(py_callback),
    try
        true = register(py_callback, self()),
        Self = self(),
        Caller = spawn(fun() ->
                               Self ! {answer, catch py:eval(<<"beam.call('erlang', 'node', [])">>)}
                       end),
        Slot = receive
                   {py_call, S, erlang, node, [], _Caller} -> S
               after 10000 -> ct:fail(no_call)
               end,
        [?assertEqual({Name, big}, {Name, py_nif:callback_reply(Slot, {ok, Shape})})
         || {Name, Shape} <- hostile_shapes()],
        ?assertEqual(true, py_nif:callback_reply(Slot, {ok, 42})),
        receive {answer, A} -> ?assertEqual(42, A) after 10000 -> ct:fail({no_answer, Caller}) end
    after
        catch unregister(py_callback),
        true = register(py_callback, Server)
    end,
    %% And a large reply still arrives (through the dirty variant).
    ?assertEqual(3, py:eval(<<"len(beam.call('py_attack_SUITE', 'huge_integers', []))">>)),
    ?assertEqual(true, py:eval(<<"all(x == 1 << 3321929 for x in "
                                 "beam.call('py_attack_SUITE', 'huge_integers', []))">>)).

huge_integers() ->
    lists:duplicate(3, 1 bsl 3321929).

%%% 5. Integers of any size ---------------------------------------------

big_integers_from_python(_Config) ->
    Limit = 1 bsl (1 bsl 24),
    ?assert(py:eval(<<"1 << (1 << 24)">>) =:= Limit),
    ?assert(py:eval(<<"-(1 << (1 << 24))">>) =:= -Limit),
    ?assert(py:eval(<<"(1 << (1 << 24)) - 1">>) =:= Limit - 1),
    ?assert(py:eval(<<"[10 ** 100000, -(10 ** 100000)]">>) =:= [pow10(100000), -pow10(100000)]),
    ?assert(py:eval(<<"{1 << 200: -(1 << 200)}">>) =:= #{1 bsl 200 => -(1 bsl 200)}),
    ?assertEqual([1 bsl 63, -(1 bsl 63), (1 bsl 64) - 1, 1 bsl 64, -(1 bsl 64), -(1 bsl 63) - 1],
                 py:eval(<<"[2**63, -2**63, 2**64 - 1, 2**64, -2**64, -2**63 - 1]">>)).

big_integers_to_python(_Config) ->
    Values = [1 bsl 64, -(1 bsl 64), (1 bsl 63) - 1, -(1 bsl 63), 1 bsl 63, -(1 bsl 63) - 1,
              pow10(100000), -pow10(100000), 1 bsl (1 bsl 24), -(1 bsl (1 bsl 24))],
    [begin
         %% What Python sees: its size, a residue and its low bits.
         ?assertEqual({bit_length(V), mod(V, 1000003), V band 16#ffffffffffffffff},
                      py:eval(<<"(v.bit_length(), v % 1000003, v & 0xffffffffffffffff)">>,
                              #{v => V})),
         ?assert(py:func(operator, neg, [V]) =:= -V),
         ?assert(py:func(builtins, list, [[V, V]]) =:= [V, V])
     end || V <- Values].

%% Python ints have no size limit, Erlang's do: such an int is an error,
%% never a wrong value, alone, in a list, as a map key or value.
integers_beyond_erlangs_limit_raise(_Config) ->
    [?assertMatch({py_badresult, int_too_big, {'$py', <<"int">>, _}},
                  error_of(fun() -> py:eval(Code) end))
     || Code <- [<<"1 << (1 << 25)">>, <<"-(1 << (1 << 25))">>]],
    [?assertMatch({py_badresult, int_too_big, _}, error_of(fun() -> py:eval(Code) end))
     || Code <- [<<"[1, 1 << (1 << 25)]">>, <<"{1 << (1 << 25): 1}">>,
                 <<"{'k': 1 << (1 << 25)}">>, <<"(1, 1 << (1 << 25))">>]],
    %% The handle holds the very int.
    {py_badresult, int_too_big, Handle} = error_of(fun() -> py:eval(<<"1 << (1 << 25)">>) end),
    ?assertEqual((1 bsl 25) + 1, py:method(Handle, bit_length, [])).

bit_length(V) ->
    <<First, _/binary>> = B = binary:encode_unsigned(abs(V)),
    (byte_size(B) - 1) * 8 + length(integer_to_list(First, 2)).

mod(V, P) ->
    ((V rem P) + P) rem P.

%%% The idle protocol --------------------------------------------------

%% Jobs pushed while an idle worker spins (a push then wakes nobody: the
%% spinner takes one job) must still find the other idle workers: each
%% round keeps all workers but one waiting on a gate, and checks that they
%% all took a job; the last worker opens the gate.
queued_jobs_wake_every_idle_worker(_Config) ->
    Workers = length(py_pool:workers()),
    [begin
         py:exec(<<"gate.clear()">>),
         Self = self(),
         %% A call just before: some worker is likely spinning right after.
         3 = py:func(operator, add, [1, 2]),
         Callers = [spawn(fun() -> Self ! {self(), py:func('__main__', wait_gate, [])} end)
                    || _ <- lists:seq(1, Workers - 1)],
         Busy = fun() -> length([B || #{state := busy} = B <- py:workers()]) =:= Workers - 1 end,
         ?assert(py_test_util:wait_until(Busy, 250), {round, Round}),
         py:exec(<<"gate.set()">>),
         [receive {P, true} -> ok after 20000 -> ct:fail({no_answer, Round}) end || P <- Callers]
     end || Round <- lists:seq(1, 20)],
    ok.

pow10(N) ->
    pow10(N, 1, 10).

pow10(0, Acc, _) -> Acc;
pow10(N, Acc, B) when N band 1 =:= 1 -> pow10(N bsr 1, Acc * B, B * B);
pow10(N, Acc, B) -> pow10(N bsr 1, Acc, B * B).

%%% Helpers ------------------------------------------------------------------

exec(Code) ->
    undefined = py:exec(Code),
    ok.

error_of(Fun) ->
    py_test_util:error_of(Fun).
