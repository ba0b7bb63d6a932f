%%% @doc Parallel and distributed Python: identical calls on every worker,
%%% scatter/gather over this node and two peer nodes, calls and handles on
%%% remote nodes, handles released with their owner, a node stopped in the
%%% middle of a call.
%%%
%%% The suite makes this node distributed when it is not (and stops
%%% distribution at the end), and starts its peers with `py:start_node/2'
%%% (OTP's `peer', loopback only), giving them the code paths of this
%%% project's _build. The test Python path (test/python, the test venv) is
%%% copied to them with this node's py settings.
-module(py_dist_SUITE).

-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").

-export([suite/0, all/0, init_per_suite/1, end_per_suite/1]).
-export([nodes_are_listed/1, remote_calls/1, remote_call_errors/1,
         remote_handles/1, handles_of_two_nodes/1, nested_remote_handles/1,
         handles_released_with_their_owner/1, explicit_release/1,
         identical_calls/1, identical_calls_on_all_nodes/1, worker_option/1,
         scatter_local/1, scatter_errors_and_timeouts/1, scatter_over_nodes/1,
         scatter_unreachable_nodes/1, node_down_during_a_call/1]).

%% Peers get two workers: light on a small machine.
-define(PEER_ENV, [{workers, 2}]).

%% A hang fails its test case in minutes, not after CT's default 30.
suite() ->
    [{timetrap, {minutes, 3}}].

all() ->
    [nodes_are_listed, remote_calls, remote_call_errors,
     remote_handles, handles_of_two_nodes, nested_remote_handles,
     handles_released_with_their_owner, explicit_release,
     identical_calls, identical_calls_on_all_nodes, worker_option,
     scatter_local, scatter_errors_and_timeouts, scatter_over_nodes,
     scatter_unreachable_nodes, node_down_during_a_call].

init_per_suite(Config) ->
    case py_test_util:start_distribution() of
        {ok, Started} ->
            ok = py_test_util:start(),
            Suffix = os:getpid(),
            {ok, A} = start_peer("py_ct_a_" ++ Suffix),
            {ok, B} = start_peer("py_ct_b_" ++ Suffix),
            [{peers, [A, B]}, {dist_started, Started} | Config];
        {error, Why} ->
            {skip, {no_distribution, Why}}
    end.

end_per_suite(Config) ->
    [py:stop_node(N) || N <- ?config(peers, Config)],
    py_test_util:stop(),
    case ?config(dist_started, Config) of
        true -> net_kernel:stop();
        false -> ok
    end.

start_peer(Name) ->
    py:start_node(Name, #{env => ?PEER_ENV, code_path => py_test_util:build_paths()}).

peers(Config) ->
    ?config(peers, Config).

error_of(Fun) ->
    py_test_util:error_of(Fun).

pid_on(Node) ->
    py:func(os, getpid, [], [], [{node, Node}]).

%%% Remote calls ------------------------------------------------------

nodes_are_listed(Config) ->
    [A, B] = peers(Config),
    Nodes = py:nodes(),
    ?assert(lists:member(node(), Nodes)),
    ?assert(lists:member(A, Nodes)),
    ?assert(lists:member(B, Nodes)).

remote_calls(Config) ->
    [A, B] = peers(Config),
    Here = py:func(os, getpid, []),
    %% Each node has its own interpreter (its own OS process).
    ?assertEqual(3, length(lists:usort([Here, pid_on(A), pid_on(B)]))),
    ?assertEqual(42, py:func(operator, mul, [6, 7], [], [{node, A}])),
    ?assertEqual("a/b", py:func('os.path', join, [<<"a">>, <<"b">>], [],
                                [{node, B}, {strings, charlist}])),
    ?assertEqual(30, py:eval(<<"x * 3">>, #{x => 10}, [{node, A}])),
    %% State stays on its node.
    undefined = py:exec(<<"py_dist_marker = 'a'">>, #{}, [{node, A}]),
    ?assertEqual(<<"a">>, py:eval(<<"py_dist_marker">>, #{}, [{node, A}])),
    {python, 'NameError', _, _} =
        error_of(fun() -> py:eval(<<"py_dist_marker">>, #{}, [{node, B}]) end),
    %% The test helpers are importable there too (the Python path was
    %% copied).
    ?assertEqual([1, 2], py:func(py_test_helpers, identity, [[1, 2]], [], [{node, A}])),
    %% `{node, node()}' is a local call.
    ?assertEqual(Here, pid_on(node())).

remote_call_errors(Config) ->
    [A, _] = peers(Config),
    {python, 'ValueError', <<"boom">>, _} =
        error_of(fun() -> py:func(py_test_helpers, fail, [<<"boom">>], [], [{node, A}]) end),
    {py_badarg, improper_list, _} =
        error_of(fun() -> py:func(builtins, len, [[1 | 2]], [], [{node, A}]) end),
    {py_timeout, 100} =
        error_of(fun() -> py:func(time, sleep, [0.5], [], [{node, A}, {timeout, 100}]) end),
    {py_badarg, context_on_other_node, A} =
        error_of(fun() -> py:func(os, getpid, [], [], [{node, A}, {context, py:context()}]) end),
    {py_badarg, bad_option, {node, 42}} =
        error_of(fun() -> py:func(os, getpid, [], [], [{node, 42}]) end).

%%% Handles -----------------------------------------------------------

remote_handles(Config) ->
    [A, _] = peers(Config),
    L = py:func(builtins, list, [[3, 1, 2]], [], [{node, A}, {return, handle}]),
    {'$py', <<"list">>, {'$py_remote', A, _}} = L,
    %% Methods, attributes and arguments go to the handle's node.
    undefined = py:method(L, sort, []),
    undefined = py:method(L, append, [4]),
    ?assertEqual([1, 2, 3, 4], py:value(L)),
    ?assertEqual(<<"[1, 2, 3, 4]">>, py:repr(L)),
    ?assertEqual(4, py:len(L)),
    ?assertEqual(<<"list">>, py:ptype(L)),
    D = py:func(datetime, date, [2024, 2, 29], [], [{node, A}]),
    ?assertEqual(2024, py:attr(D, year)),
    ?assertEqual(<<"2024-02-29">>, py:method(D, isoformat, [])),
    %% Keyword arguments too.
    ?assertEqual([4, 3, 2, 1], py:func(builtins, sorted, [L], [{reverse, true}])),
    ?assertEqual(true, py:func(py_test_helpers, same_object, [L], [{b, L}])),
    %% A result that is an object comes back as a remote handle again.
    {'$py', <<"list_reverseiterator">>, {'$py_remote', A, _}} = py:func(builtins, reversed, [L]).

handles_of_two_nodes(Config) ->
    [A, B] = peers(Config),
    La = py:func(builtins, list, [[1]], [], [{node, A}, {return, handle}]),
    Lb = py:func(builtins, list, [[2]], [], [{node, B}, {return, handle}]),
    Local = py:func(builtins, list, [[3]], [], [{return, handle}]),
    {py_badarg, mixed_nodes, _} = error_of(fun() -> py:func(operator, add, [La, Lb]) end),
    {py_badarg, mixed_nodes, _} =
        error_of(fun() -> py:func(builtins, len, [La], [], [{node, B}]) end),
    {py_badarg, handle_not_on_node, Local} =
        error_of(fun() -> py:func(operator, add, [La, Local]) end),
    {py_badarg, handle_not_on_node, Local} =
        error_of(fun() -> py:func(builtins, len, [Local], [], [{node, A}]) end).

nested_remote_handles(Config) ->
    [A, _] = peers(Config),
    L = py:func(datetime, date, [2024, 2, 29], [], [{node, A}]),
    %% Handles inside a term are swapped on the serving node, and handles
    %% inside a result are lent again.
    [L2, #{k := L3}] = py:func(py_test_helpers, identity, [[L, #{k => L}]], [], [{node, A}]),
    ?assertMatch({'$py', <<"datetime.date">>, {'$py_remote', A, _}}, L2),
    ?assertNotEqual(L, L2),
    ?assert(py:func(py_test_helpers, same_object, [L, L2])),
    ?assert(py:func(py_test_helpers, same_object, [L2, L3])).

handles_released_with_their_owner(Config) ->
    [A, _] = peers(Config),
    Self = self(),
    Before = erpc:call(A, py_remote, handles, []),
    {Owner, MRef} =
        spawn_monitor(fun() ->
                              H = py:func(py_test_helpers, make_tracked, [<<"owned">>], [],
                                          [{node, A}]),
                              Self ! {handle, H},
                              receive stop -> ok end
                      end),
    H = receive {handle, X} -> X end,
    ?assertEqual(Before + 1, erpc:call(A, py_remote, handles, [])),
    %% Usable by other processes while its owner lives.
    ?assertEqual(<<"owned">>, py:attr(H, name)),
    Owner ! stop,
    receive {'DOWN', MRef, process, Owner, _} -> ok end,
    ?assert(py_test_util:wait_until(
              fun() -> py:func(py_test_helpers, is_freed, [<<"owned">>], [], [{node, A}]) end,
              250)),
    ?assertEqual(Before, erpc:call(A, py_remote, handles, [])),
    {py_badarg, released_handle, H} = error_of(fun() -> py:attr(H, name) end).

explicit_release(Config) ->
    [_, B] = peers(Config),
    H = py:func(py_test_helpers, make_tracked, [<<"released">>], [], [{node, B}]),
    ok = py:release(H),
    ?assert(py_test_util:wait_until(
              fun() -> py:func(py_test_helpers, is_freed, [<<"released">>], [], [{node, B}]) end,
              250)),
    {py_badarg, released_handle, H} = error_of(fun() -> py:repr(H) end),
    %% Twice is fine; a local handle is left to the garbage collector.
    ok = py:release(H),
    ok = py:release(py:func(builtins, object, [])).

%%% Identical calls ---------------------------------------------------

identical_calls(_Config) ->
    Ids = [Id || #{id := Id} <- py:workers()],
    Results = py:on_all_workers(threading, get_ident, []),
    ?assertEqual(Ids, [Id || {Id, _} <- Results]),
    Threads = [T || {_, {ok, T}} <- Results],
    ?assertEqual(length(Ids), length(lists:usort(Threads))),
    %% Per-thread state on every worker: the decimal context.
    undefined = py:exec(<<"import decimal\n"
                          "def set_precision(n):\n"
                          "    decimal.getcontext().prec = n\n"
                          "    return n\n"
                          "def one_seventh():\n"
                          "    return str(decimal.Decimal(1) / 7)\n">>),
    ?assertEqual([{Id, {ok, 3}} || Id <- Ids], py:on_all_workers('__main__', set_precision, [3])),
    ?assertEqual([{Id, {ok, <<"0.143">>}} || Id <- Ids],
                 py:on_all_workers('__main__', one_seventh, [])),
    [{_, {ok, 28}} | _] = py:on_all_workers('__main__', set_precision, [28]),
    %% Kwargs and options; errors per worker.
    ?assertEqual([{Id, {ok, 255}} || Id <- Ids],
                 py:on_all_workers(builtins, int, [<<"ff">>], [{base, 16}])),
    [{_, {error, {python, 'ValueError', _, _}}} | _] =
        py:on_all_workers(builtins, int, [<<"x">>], [], [{timeout, 5000}]).

identical_calls_on_all_nodes(Config) ->
    [A, B] = peers(Config),
    Results = py:on_all_workers(os, getpid, [], [], [{nodes, all}]),
    Local = [{node(), Id} || #{id := Id} <- py:workers()],
    Expected = lists:sort(Local ++ [{A, 1}, {A, 2}, {B, 1}, {B, 2}]),
    ?assertEqual(Expected, [Key || {Key, _} <- Results]),
    ByNode = lists:usort([{N, P} || {{N, _}, {ok, P}} <- Results]),
    ?assertEqual(3, length(ByNode)),
    [{{A, 1}, {ok, 6}}, {{A, 2}, {ok, 6}}] =
        py:on_all_workers(operator, mul, [2, 3], [], [{nodes, [A]}]).

worker_option(_Config) ->
    [#{id := First} | _] = py:workers(),
    Thread = fun() -> py:func(threading, get_ident, [], [], [{worker, First}]) end,
    T = Thread(),
    ?assertEqual([T, T, T], [Thread() || _ <- [1, 2, 3]]),
    {py_no_worker, 999} = error_of(fun() -> py:func(os, getpid, [], [], [{worker, 999}]) end).

%%% Scatter/gather ----------------------------------------------------

scatter_local(_Config) ->
    ?assertEqual([], py:scatter(operator, add, [])),
    Args = [[I, I] || I <- lists:seq(1, 50)],
    Expected = [{ok, 2 * I} || I <- lists:seq(1, 50)],
    ?assertEqual(Expected, py:scatter(operator, add, Args)),
    ?assertEqual(Expected, py:scatter(operator, add, Args, [{max_in_flight, 1}])),
    ?assertEqual(Expected, py:scatter(operator, add, Args, [{max_in_flight, 100}])),
    ?assertEqual([{ok, 10}, {ok, 255}],
                 py:scatter(builtins, int, [[<<"a">>], [<<"ff">>]], [{kwargs, [{base, 16}]}])),
    ?assertEqual([{ok, "a"}], py:scatter(builtins, str, [[a]], [{strings, charlist}])),
    {py_badarg, bad_option, {max_in_flight, 0}} =
        error_of(fun() -> py:scatter(operator, add, Args, [{max_in_flight, 0}]) end).

scatter_errors_and_timeouts(_Config) ->
    [{ok, 120}, {error, {python, 'ValueError', _, _}}, {error, {py_badarg, _, _}},
     {ok, 1}] = py:scatter(math, factorial, [[5], [-1], [fun() -> ok end], [0]]),
    %% The timeout is per call (the slow call comes last: with a single
    %% worker, a call queued behind it would time out too).
    [{ok, undefined}, {ok, undefined}, {error, {py_timeout, 100}}] =
        py:scatter(time, sleep, [[0], [0], [0.5]], [{timeout, 100}]),
    %% The caller's mailbox is left as it was.
    self() ! mine,
    _ = py:scatter(operator, add, [[1, 2]]),
    receive mine -> ok after 0 -> ct:fail(message_lost) end.

scatter_over_nodes(Config) ->
    [A, B] = peers(Config),
    Args = [[I, 3] || I <- lists:seq(1, 40)],
    Expected = [{ok, 3 * I} || I <- lists:seq(1, 40)],
    ?assertEqual(Expected, py:scatter(operator, mul, Args, [{nodes, [A, B]}])),
    ?assertEqual(Expected, py:scatter(operator, mul, Args, [{nodes, all}, {max_in_flight, 3}])),
    %% The first slots go to each node in turn: every node serves.
    Pids = py:scatter(os, getpid, lists:duplicate(12, []), [{nodes, all}]),
    ?assertEqual(lists:usort([py:func(os, getpid, []), pid_on(A), pid_on(B)]),
                 lists:usort([P || {ok, P} <- Pids])),
    %% Handles in results stay usable (owned by the caller, not by the
    %% helper that ran the call).
    [{ok, Ha}, {ok, Hb}] = py:scatter(builtins, list, [[[1]], [[2, 3]]],
                                      [{nodes, [A, B]}, {return, handle}]),
    ?assertEqual([1, 2], [py:len(Ha), py:len(Hb)]).

scatter_unreachable_nodes(Config) ->
    [A, _] = peers(Config),
    [_, Host] = string:split(atom_to_list(node()), "@"),
    Nowhere = list_to_atom("py_ct_nowhere@" ++ Host),
    %% An unreachable node takes no part; with none left, an error.
    ?assertEqual([{ok, 2}], py:scatter(operator, add, [[1, 1]], [{nodes, [Nowhere, A]}])),
    {py_no_nodes, [Nowhere]} =
        error_of(fun() -> py:scatter(operator, add, [[1, 1]], [{nodes, [Nowhere]}]) end),
    [{{Nowhere, undefined}, {error, {py_nodedown, Nowhere}}}] =
        py:on_all_workers(os, getpid, [], [], [{nodes, [Nowhere]}]).

%%% Node down ---------------------------------------------------------

node_down_during_a_call(_Config) ->
    {ok, C} = start_peer("py_ct_c_" ++ os:getpid()),
    Handle = py:func(builtins, list, [[1]], [], [{node, C}, {return, handle}]),
    Self = self(),
    Caller = spawn_link(fun() ->
                                Self ! {self(), catch py:func(time, sleep, [60], [], [{node, C}])}
                        end),
    Scatter = spawn_link(fun() ->
                                 Self ! {self(), py:scatter(time, sleep, [[60], [60]],
                                                            [{nodes, [C]}])}
                         end),
    %% Wait until both workers of C run the sleeps.
    Busy = fun() ->
                   Ws = erpc:call(C, py, workers, []),
                   length([W || #{state := busy} = W <- Ws]) >= 2
           end,
    ?assert(py_test_util:wait_until(Busy, 250)),
    ok = py:stop_node(C),
    %% The callers get an error, not a hang (the bound only stops a
    %% failing test from waiting forever).
    receive
        {Caller, {'EXIT', {{py_nodedown, C}, _}}} -> ok
    after 30000 -> ct:fail(caller_hangs)
    end,
    receive
        {Scatter, [{error, {py_nodedown, C}}, {error, {py_nodedown, C}}]} -> ok
    after 30000 -> ct:fail(scatter_hangs)
    end,
    {py_nodedown, C} = error_of(fun() -> py:len(Handle) end),
    ?assert(py_test_util:wait_until(fun() -> not lists:member(C, py:nodes()) end, 250)),
    {error, {not_a_peer, C}} = py:stop_node(C).
