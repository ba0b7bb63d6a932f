%%% @doc The core: errors, bad input, timeouts, handle lifetime, the
%%% standard library's C extensions, a pip-installed package, large terms
%%% and concurrent callers.
-module(py_core_SUITE).

-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").

-export([suite/0, all/0, init_per_suite/1, end_per_suite/1]).
-export([python_exception/1, concurrent_first_import/1, exception_in_nested_code/1, module_qualified_exception/1,
         unresolvable_names/1,
         improper_list/1, funs_ports_bitstrings/1, unhashable_key/1, too_deep_argument/1,
         too_deep_result/1, cyclic_result/1, bad_kwargs/1,
         timeout_interrupts_running_code/1, timeout_of_queued_call/1,
         handle_released_after_erlang_drops_it/1,
         stdlib_c_extensions/1, pip_installed_c_extension/1,
         large_terms_both_ways/1, concurrent_callers/1,
         versions/1, build_python_is_runtime_python/1, restart_keeps_interpreter/1,
         bad_timeout_option/1, forged_handle/1, stop_answers_accepted_calls/1,
         stop_answers_shared_queue_of_last_worker/1, last_worker_stops/0]).

%% A hang fails its test case in minutes, not after CT's default 30.
suite() ->
    [{timetrap, {minutes, 3}}].

all() ->
    [python_exception, exception_in_nested_code, module_qualified_exception,
     unresolvable_names, concurrent_first_import,
     improper_list, funs_ports_bitstrings, unhashable_key, too_deep_argument,
     too_deep_result, cyclic_result, bad_kwargs,
     timeout_interrupts_running_code, timeout_of_queued_call,
     handle_released_after_erlang_drops_it,
     stdlib_c_extensions, pip_installed_c_extension,
     large_terms_both_ways, concurrent_callers,
     versions, build_python_is_runtime_python, bad_timeout_option, forged_handle,
     stop_answers_accepted_calls, stop_answers_shared_queue_of_last_worker,
     restart_keeps_interpreter].

init_per_suite(Config) ->
    ok = py_test_util:start(),
    Config.

end_per_suite(_Config) ->
    py_test_util:stop().

%% Runs `Fun' and returns the reason it raised with (error class).
error_of(Fun) ->
    py_test_util:error_of(Fun).

%%% Errors -----------------------------------------------------------

python_exception(_Config) ->
    {python, 'ValueError', Msg, Tb} =
        error_of(fun() -> py:func(builtins, int, [<<"x">>]) end),
    ?assertEqual(<<"invalid literal for int() with base 10: 'x'">>, Msg),
    ?assert(is_list(Tb)),
    {python, 'ZeroDivisionError', <<"division by zero">>, _} =
        error_of(fun() -> py:func(operator, truediv, [1, 0]) end).

exception_in_nested_code(_Config) ->
    {python, 'KeyError', <<"'deep'">>, Tb} =
        error_of(fun() -> py:func(py_test_helpers, nested_failure, []) end),
    ?assert(length(Tb) >= 2),
    ?assert(lists:all(fun is_binary/1, Tb)),
    ?assert(lists:any(fun(L) -> binary:match(L, <<"in inner">>) =/= nomatch end, Tb)).

module_qualified_exception(_Config) ->
    {python, 'json.decoder.JSONDecodeError', _, _} =
        error_of(fun() -> py:func(json, loads, [<<"{">>]) end).

unresolvable_names(_Config) ->
    {python, 'ModuleNotFoundError', <<"No module named 'no_such_module'">>, _} =
        error_of(fun() -> py:func(no_such_module, f) end),
    {python, 'AttributeError', Msg, _} = error_of(fun() -> py:func(math, no_such_function) end),
    ?assertNotEqual(nomatch, binary:match(Msg, <<"'math' has no attribute 'no_such_function'">>)),
    {python, 'AttributeError', Msg2, _} = error_of(fun() -> py:const('os.path.nope.deeper') end),
    ?assertNotEqual(nomatch, binary:match(Msg2, <<"'os.path' has no attribute 'nope'">>)).

%% Many processes call a function of a module none has imported yet, whose
%% import takes a while (it defines the function last): each waits for the
%% import to finish (none sees the module half made, in sys.modules before
%% its code has run).
concurrent_first_import(Config) ->
    Dir = ?config(priv_dir, Config),
    Name = "py_slow_import_" ++ integer_to_list(erlang:unique_integer([positive])),
    ok = file:write_file(filename:join(Dir, Name ++ ".py"),
                         <<"import time\ntime.sleep(0.3)\ndef f(x):\n    return x * 2\n">>),
    py:func(sys, 'path.insert', [0, list_to_binary(Dir)]),
    Self = self(),
    Module = list_to_atom(Name),
    Pids = [spawn(fun() -> Self ! {self(), catch py:func(Module, f, [N])} end)
            || N <- lists:seq(1, 8)],
    Results = [receive {P, R} -> R after 10000 -> timeout end || P <- Pids],
    ?assertEqual([N * 2 || N <- lists:seq(1, 8)], Results).

%%% Bad input ---------------------------------------------------------

improper_list(_Config) ->
    {py_badarg, improper_list, [1 | 2]} =
        error_of(fun() -> py:func(builtins, len, [[1 | 2]]) end),
    {py_badarg, improper_list, _} =
        error_of(fun() -> py:func(builtins, len, [[[a, b | c]]]) end).

funs_ports_bitstrings(_Config) ->
    F = fun() -> ok end,
    {py_badarg, unsupported_fun, F} = error_of(fun() -> py:func(builtins, len, [[F]]) end),
    Port = hd(erlang:ports()),
    {py_badarg, unsupported_port, Port} = error_of(fun() -> py:func(builtins, repr, [Port]) end),
    {py_badarg, unsupported_bitstring, <<1:3>>} =
        error_of(fun() -> py:func(builtins, repr, [{ok, <<1:3>>}]) end),
    %% The worker is still fine.
    ?assertEqual(3, py:func(operator, add, [1, 2])).

unhashable_key(_Config) ->
    {py_badarg, unhashable_key, [1]} =
        error_of(fun() -> py:func(builtins, len, [#{[1] => 2}]) end),
    {py_badarg, unhashable_key, #{}} =
        error_of(fun() -> py:func(builtins, len, [#{#{} => 2}]) end).

%% `Levels' lists, each inside the next.
nested(1) -> [];
nested(Levels) -> [nested(Levels - 1)].

too_deep_argument(_Config) ->
    %% 10,000 levels are accepted, one more is refused.
    ?assertEqual(1, py:func(builtins, len, [nested(10000)])),
    {py_badarg, too_deep, _} = error_of(fun() -> py:func(builtins, len, [nested(10001)]) end),
    {py_badarg, too_deep, _} = error_of(fun() -> py:func(builtins, len, [nested(1000000)]) end),
    %% Not the term itself: Common Test would log a million-level term.
    ok.

too_deep_result(_Config) ->
    %% nested_lists(N) wraps [] N times: N + 1 levels.
    ?assertEqual(nested(10000), py:func(py_test_helpers, nested_lists, [9999])),
    {py_badresult, too_deep, {'$py', <<"list">>, _} = H} =
        error_of(fun() -> py:func(py_test_helpers, nested_lists, [20000]) end),
    %% The handle still gives access to the object.
    ?assertEqual(1, py:func(builtins, len, [H])).

cyclic_result(_Config) ->
    {py_badresult, too_deep, {'$py', <<"list">>, _}} =
        error_of(fun() -> py:func(py_test_helpers, cyclic_list, []) end).

bad_kwargs(_Config) ->
    {py_badarg, bad_kwargs, 42} =
        error_of(fun() -> py:func(builtins, int, [<<"1">>], [42]) end),
    {py_badarg, bad_kwargs, 7} =
        error_of(fun() -> py:func(builtins, int, [<<"1">>], 7) end),
    ?assertEqual(42, py:func(builtins, int, [<<"101010">>], #{<<"base">> => 2})),
    ?assertEqual(42, py:func(builtins, int, [<<"101010">>], [{"base", 2}])).

%%% Timeouts ----------------------------------------------------------

timeout_interrupts_running_code(_Config) ->
    {py_timeout, 200} =
        error_of(fun() -> py:func(py_test_helpers, spin_forever, [], [], [{timeout, 200}]) end),
    %% The spinning code was interrupted: every worker answers again.
    Workers = length(py_pool:workers()),
    Results = [py:func(operator, add, [I, 1], [], [{timeout, 5000}]) || I <- lists:seq(1, 4 * Workers)],
    ?assertEqual([I + 1 || I <- lists:seq(1, 4 * Workers)], Results),
    %% And no stale reply was left behind in the mailbox.
    receive Stale -> ct:fail({stale_message, Stale}) after 100 -> ok end.

timeout_of_queued_call(_Config) ->
    %% Occupy every worker, then time out a call that waits in the queue:
    %% it must never run, and its reply must never arrive.
    Workers = length(py_pool:workers()),
    Self = self(),
    Busy = [spawn(fun() -> Self ! {busy, py:func(py_test_helpers, busy_for, [1.0])} end)
            || _ <- lists:seq(1, Workers)],
    timer:sleep(100),
    {py_timeout, 50} =
        error_of(fun() -> py:func(py_test_helpers, make_tracked, [<<"never">>], [], [{timeout, 50}]) end),
    [receive {busy, N} when is_integer(N) -> ok end || _ <- Busy],
    ?assertEqual(false, py:func(py_test_helpers, is_freed, [<<"never">>])),
    %% It never ran: nothing made the object at all.
    ?assertEqual(3, py:func(operator, add, [1, 2])),
    receive Stale -> ct:fail({stale_message, Stale}) after 100 -> ok end.

%%% Handles -----------------------------------------------------------

handle_released_after_erlang_drops_it(_Config) ->
    Name = <<"released">>,
    Holder = spawn(fun() ->
                           H = py:func(py_test_helpers, make_tracked, [Name]),
                           receive {check, From} -> From ! {alive, py:attr(H, name)} end,
                           receive stop -> ok end
                   end),
    Holder ! {check, self()},
    receive {alive, Name} -> ok end,
    ?assertEqual(false, py:func(py_test_helpers, is_freed, [Name])),
    %% The holder exits: its heap, and with it the handle, is freed.
    Holder ! stop,
    ?assert(py_test_util:wait_until(
              fun() -> py:func(py_test_helpers, is_freed, [Name]) end, 250)).

%%% Extensions ---------------------------------------------------------

stdlib_c_extensions(_Config) ->
    %% These need libpython's symbols to be global (the NIF re-opens it).
    ?assertEqual(<<"1.1">>, py:str(py:func(decimal, 'Decimal', [<<"1.1">>]))),
    ?assertEqual(<<"3.3">>, py:eval(<<"str(__import__('decimal').Decimal('1.1') * 3)">>)),
    ?assertEqual(<<"{\"a\": 1}">>, py:func(json, dumps, [#{a => 1}])),
    {'$py', <<"ssl.SSLContext">>, _} = py:func(ssl, create_default_context, []),
    %% Calls may run on any worker thread: tell sqlite3 (issue: contexts
    %% give thread affinity).
    Conn = py:func(sqlite3, connect, [<<":memory:">>], [{check_same_thread, false}]),
    _ = py:method(Conn, execute, [<<"create table t (x integer)">>]),
    _ = py:method(Conn, execute, [<<"insert into t values (41)">>]),
    Cursor = py:method(Conn, execute, [<<"select x + 1 from t">>]),
    ?assertEqual([{42}], py:method(Cursor, fetchall, [])).

pip_installed_c_extension(_Config) ->
    case py_test_util:venv_site_packages() of
        undefined ->
            {skip, "no test virtualenv (PY_TEST_VENV); `make test` creates one with numpy"};
        _ ->
            A = py:func(numpy, arange, [12]),
            M = py:method(A, reshape, [3, 4]),
            ?assertEqual({3, 4}, py:attr(M, shape)),
            ?assertEqual(66, py:func(builtins, int, [py:method(M, sum, [])])),
            ?assertEqual([[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 10, 11]], py:method(M, tolist, []))
    end.

%%% Size and concurrency ------------------------------------------------

large_terms_both_ways(_Config) ->
    List = lists:seq(1, 1000000),
    ?assertEqual(1000000, py:func(builtins, len, [List])),
    ?assertEqual(List, py:func(py_test_helpers, identity, [List])),
    Bin = binary:copy(<<"0123456789">>, 1000000),
    ?assertEqual(Bin, py:func(py_test_helpers, identity, [Bin])),
    Map = maps:from_list([{I, I * 2} || I <- lists:seq(1, 100000)]),
    ?assertEqual(Map, py:func(py_test_helpers, identity, [Map])).

concurrent_callers(_Config) ->
    Self = self(),
    Callers = 16,
    PerCaller = 500,
    Pids = [spawn_link(fun() ->
                               Sums = [py:func(operator, add, [C, I]) || I <- lists:seq(1, PerCaller)],
                               Self ! {done, self(), C, Sums}
                       end) || C <- lists:seq(1, Callers)],
    [receive
         {done, Pid, C, Sums} -> ?assertEqual([C + I || I <- lists:seq(1, PerCaller)], Sums)
     end || {Pid, C} <- lists:zip(Pids, lists:seq(1, Callers))],
    ok.

%%% Build and versions ----------------------------------------------------

versions(_Config) ->
    V = 'py-util':'get-versions'(),
    ?assertEqual(erlang:system_info(otp_release), proplists:get_value(erlang, V)),
    ?assertEqual(erlang:system_info(version), proplists:get_value(emulator, V)),
    ?assertEqual(erlang:system_info(driver_version), proplists:get_value('driver-version', V)),
    {ok, PyVsn} = application:get_key(py, vsn),
    ?assertEqual(PyVsn, proplists:get_value(py, V)),
    [First | _] = proplists:get_value(python, V),
    ?assertEqual("3.", lists:sublist(First, 2)).

build_python_is_runtime_python(_Config) ->
    #{libpython := Lib, started := true} = py_nif:build_info(),
    %% The interpreter running is the one the NIF was linked against.
    Version = py:eval(<<"'%d.%d' % __import__('sys').version_info[:2]">>),
    ?assertNotEqual(nomatch, binary:match(Lib, <<"libpython", Version/binary>>)).

restart_keeps_interpreter(_Config) ->
    _ = py:exec(<<"import sys\nsys.py_restart_marker = 42">>),
    ok = py:stop(),
    ok = py_test_util:start(),
    %% The same interpreter (CPython cannot be initialised twice).
    ?assertEqual(42, py:eval(<<"__import__('sys').py_restart_marker">>, #{},
                             [{timeout, 60000}])).

bad_timeout_option(_Config) ->
    {py_badarg, bad_option, {timeout, -1}} =
        error_of(fun() -> py:func(operator, add, [1, 2], [], [{timeout, -1}]) end),
    {py_badarg, bad_option, {timeout, soon}} =
        error_of(fun() -> py:func(operator, add, [1, 2], [], [{timeout, soon}]) end),
    %% Refused before submission: no reply comes later.
    receive Stale -> ct:fail({stale_message, Stale}) after 200 -> ok end.

forged_handle(_Config) ->
    Forged = {'$py', <<"list">>, make_ref()},
    {py_badarg, bad_handle, Forged} = error_of(fun() -> py:func(builtins, len, [[Forged]]) end),
    Remote = {'$py', <<"list">>, {'$py_remote', 'other@nowhere', make_ref()}},
    {py_badarg, bad_handle, Remote} = error_of(fun() -> py:func(builtins, repr, [[Remote]]) end).

stop_answers_accepted_calls(_Config) ->
    %% Twice as many calls as workers: half wait in the shared queue when
    %% py stops, and are answered all the same.
    Workers = length(py_pool:workers()),
    Self = self(),
    Callers = [spawn(fun() -> Self ! {self(), catch py:func(time, sleep, [0.3])} end)
               || _ <- lists:seq(1, 2 * Workers)],
    timer:sleep(100),
    ok = py:stop(),
    [receive {P, R} -> ?assertEqual(undefined, R) after 10000 -> ct:fail(no_answer) end
     || P <- Callers],
    ok = py_test_util:start().

%% One worker, one call running and two waiting in the shared queue when py
%% stops: the worker takes its stop request after the running call, and,
%% being the last, answers the shared queue's two as it leaves. Its owner
%% process must wait for that (it used to exit at once, and the two got
%% py_worker_down). In a VM of its own: a worker thread still blocked in C
%% code from another suite's test would count as a live worker here.
stop_answers_shared_queue_of_last_worker(_Config) ->
    Args = lists:append([["-pa", D] || D <- code:get_path()]),
    {ok, Peer, _Node} = peer:start(#{connection => standard_io, args => Args}),
    try
        ?assertEqual([undefined, undefined, undefined],
                     peer:call(Peer, ?MODULE, last_worker_stops, [], 30000))
    after
        peer:stop(Peer)
    end.

%% @private Runs on the peer: see above.
last_worker_stops() ->
    ok = application:load(py),
    ok = application:set_env(py, workers, 1),
    ok = py:start(),
    Self = self(),
    Callers = [spawn(fun() -> Self ! {self(), catch py:func(time, sleep, [0.2])} end)
               || _ <- [1, 2, 3]],
    true = py_test_util:wait_until(fun() -> py_nif:shared_queue_len() =:= 2 end, 500),
    ok = py:stop(),
    [receive {P, R} -> R after 10000 -> no_answer end || P <- Callers].
