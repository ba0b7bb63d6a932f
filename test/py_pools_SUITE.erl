%%% @doc Pools: node pools started at run time and from the app env,
%%% calls and schedulers, handles routed back to their node (and failing
%%% clearly once it was restarted), scatter and identical calls, CPU
%%% parallelism, a segfault that costs one node (restarted) and not the
%%% VM, nodes of "other machines" joined by name, a venv per pool with
%%% two versions of one package, and no peer OS process left after
%%% `py:stop_pool/1' or `py:stop/0'.
%%%
%%% One 2-node pool is shared by most cases (peers cost a second or more
%%% each to start); the cases that stop or break nodes start their own.
-module(py_pools_SUITE).

-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").

-export([suite/0, all/0, init_per_suite/1, end_per_suite/1]).
-export([pool_calls/1, output_to_the_caller/1, pool_errors/1, schedulers/1, handles_route_back/1,
         scatter_and_identical_calls/1, cpu_parallelism/1, segfault_restarts_one_node/1,
         handles_of_a_restarted_node/1, server_gone_restarts_the_node/1, stop_pool_leaves_no_process/1, joined_nodes/1,
         pools_survive_their_managers/1, beyond_the_restart_intensity/1, caller_dies_mid_call/1,
         stop_pool_during_calls/1,
         a_venv_per_pool/1, configured_pools_and_stop/1]).
-export([first_member/2]).

suite() ->
    [{timetrap, {minutes, 4}}].

all() ->
    [pool_calls, output_to_the_caller, pool_errors, schedulers, handles_route_back, scatter_and_identical_calls,
     cpu_parallelism, segfault_restarts_one_node, handles_of_a_restarted_node,
     server_gone_restarts_the_node,
     stop_pool_leaves_no_process, pools_survive_their_managers, beyond_the_restart_intensity,
     caller_dies_mid_call, stop_pool_during_calls, joined_nodes, a_venv_per_pool,
     %% Last: it restarts py.
     configured_pools_and_stop].

init_per_suite(Config) ->
    case py_test_util:start_distribution() of
        {ok, Started} ->
            ok = py_test_util:start(),
            ok = py:start_pool(duo, #{kind => nodes, size => 2, workers => 2}),
            [{dist_started, Started} | Config];
        {error, Why} ->
            {skip, {no_distribution, Why}}
    end.

end_per_suite(Config) ->
    py_test_util:stop(),
    application:unset_env(py, pools),
    case ?config(dist_started, Config) of
        true -> net_kernel:stop();
        false -> ok
    end.

error_of(Fun) ->
    py_test_util:error_of(Fun).

pool(Name) ->
    [Info] = [I || I = #{name := N} <- py:pools(), N =:= Name],
    Info.

%% The nodes of a pool, by slot, and their OS pids.
members(Name) ->
    [{Id, Node, OsPid} || #{id := Id, node := Node, os_pid := OsPid} <- maps:get(members, pool(Name))].

os_pid_in(Pool, Opts) ->
    py:func(os, getpid, [], [], [{pool, Pool} | Opts]).

%% An OS process is gone (not even a zombie).
gone(OsPid) ->
    case string:trim(os:cmd("ps -o stat= -p " ++ OsPid)) of
        "" -> true;
        "Z" ++ _ -> true;
        _ -> false
    end.

wait_gone(OsPids) ->
    ?assert(py_test_util:wait_until(fun() -> lists:all(fun gone/1, OsPids) end, 500)).

%% Waits until slot `Slot' of `Pool' runs a node other than `Old'.
wait_restarted(Pool, Slot, Old) ->
    ?assert(py_test_util:wait_until(
              fun() -> case lists:keyfind(Slot, 1, members(Pool)) of
                           {Slot, New, _} -> New =/= Old;
                           false -> false
                       end
              end, 1500)).

%%% Calls ---------------------------------------------------------------

pool_calls(_Config) ->
    #{kind := nodes, size := 2, members := [#{id := 1, state := up}, #{id := 2, state := up}]} =
        pool(duo),
    #{kind := embedded, size := 4} = pool(default),
    Here = list_to_integer(os:getpid()),
    [{1, N1, P1}, {2, N2, P2}] = members(duo),
    ?assertNotEqual(N1, N2),
    %% Each node its own OS process, not this one.
    ?assertEqual(3, length(lists:usort([Here, list_to_integer(P1), list_to_integer(P2)]))),
    ?assertEqual(3, py:func(operator, add, [1, 2], [], [{pool, duo}])),
    ?assertEqual(30, py:eval(<<"x * 3">>, #{x => 10}, [{pool, duo}])),
    ?assertEqual(<<"ABC">>, py:method(<<"abc">>, upper, [], [], [{pool, duo}])),
    ?assertEqual("a/b", py:func('os.path', join, [<<"a">>, <<"b">>], [],
                                [{pool, duo}, {strings, charlist}])),
    ?assertNotEqual(Here, os_pid_in(duo, [])),
    %% The embedded pool by name, or without the option.
    ?assertEqual(Here, os_pid_in(default, [])),
    ?assertEqual(Here, py:func(os, getpid, [])),
    %% Errors are those of a local call.
    {python, 'ValueError', <<"boom">>, _} =
        error_of(fun() -> py:func(py_test_helpers, fail, [<<"boom">>], [], [{pool, duo}]) end),
    {py_timeout, 100} =
        error_of(fun() -> py:func(time, sleep, [0.5], [], [{pool, duo}, {timeout, 100}]) end),
    %% The node is fine after a timeout.
    ?assertEqual(3, py:func(operator, add, [1, 2], [], [{pool, duo}])),
    %% Big terms travel.
    Big = lists:seq(1, 100000),
    ?assertEqual(length(Big), py:func(builtins, len, [Big], [], [{pool, duo}])).

%% What Python prints in a node-pool call goes to the caller's group
%% leader, as in a local call; in a scatter's calls too.
output_to_the_caller(_Config) ->
    Self = self(),
    GL = spawn_link(fun() -> capture([]) end),
    spawn_link(fun() ->
                       group_leader(GL, self()),
                       py:func(builtins, print, [<<"from a node">>], [], [{pool, duo}]),
                       _ = py:scatter(builtins, print, [[<<"item">>]], [{pool, duo}]),
                       Self ! printed
               end),
    receive printed -> ok end,
    GL ! {get, self()},
    receive {captured, Text} -> ?assertEqual(<<"from a node\nitem\n">>, Text) end.

capture(Acc) ->
    receive
        {io_request, From, ReplyAs, {put_chars, unicode, Chars}} ->
            From ! {io_reply, ReplyAs, ok},
            capture([Chars | Acc]);
        {io_request, From, ReplyAs, _} ->
            From ! {io_reply, ReplyAs, {error, enotsup}},
            capture(Acc);
        {get, From} ->
            From ! {captured, unicode:characters_to_binary(lists:reverse(Acc))},
            capture(Acc)
    end.

pool_errors(_Config) ->
    {py_no_pool, nope} = error_of(fun() -> py:func(operator, add, [1, 2], [], [{pool, nope}]) end),
    {py_badarg, bad_option, {pool, "duo"}} =
        error_of(fun() -> py:func(operator, add, [1, 2], [], [{pool, "duo"}]) end),
    %% Objects of this node do not travel.
    Local = py:init(datetime, date, [2024, 1, 1]),
    {py_badarg, handle_not_on_node, Local} =
        error_of(fun() -> py:func(builtins, str, [Local], [], [{pool, duo}]) end),
    {py_badarg, context_on_other_node, _} =
        error_of(fun() -> py:func(os, getpid, [], [], [{pool, duo}, {context, py:context()}]) end),
    {py_no_worker, 3} = error_of(fun() -> os_pid_in(duo, [{worker, 3}]) end),
    %% Pool control errors.
    {error, {already_started, duo}} = py:start_pool(duo, #{kind => nodes, size => 1}),
    {error, {bad_pool, default, _}} = py:start_pool(default, #{kind => nodes}),
    {error, {bad_pool, x, _}} = py:start_pool(x, #{kind => embedded}),
    {error, {bad_pool, x, _}} = py:start_pool(x, #{kind => nodes, size => 0}),
    {error, {bad_pool, x, _}} = py:start_pool(x, #{kind => nodes, sise => 2}),
    {error, {bad_pool, x, _}} = py:start_pool(x, #{size => 2}),
    {error, {bad_pool, x, _}} = py:start_pool(x, [{kind, nodes}]),
    {error, {bad_pool, x, _}} = py:start_pool(x, #{kind => nodes, env => [{pools, []}]}),
    {error, {no_pool, x}} = py:stop_pool(x),
    {error, {embedded_pool, default}} = py:stop_pool(default),
    ?assertEqual([default, duo], [N || #{name := N} <- py:pools()]).

schedulers(_Config) ->
    [{1, _, P1}, {2, _, P2}] = members(duo),
    Pids = lists:sort([P1, P2]),
    Pid = fun(Opts) -> integer_to_list(os_pid_in(duo, Opts)) end,
    %% The default (least_loaded, ties in turn) and round_robin use both.
    ?assertEqual(lists:sort([P1, P2]), lists:usort([Pid([]) || _ <- lists:seq(1, 8)])),
    ?assertEqual(Pids, lists:usort([Pid([{scheduler, round_robin}]) || _ <- lists:seq(1, 4)])),
    %% A key always goes to one node; {worker, Id} to that slot.
    ?assertEqual(1, length(lists:usort([Pid([{key, user42}]) || _ <- lists:seq(1, 6)]))),
    ?assertEqual(P2, Pid([{worker, 2}])),
    ?assertEqual(P1, Pid([{worker, 1}])),
    %% A custom scheduler gets the pool's members.
    ?assertEqual(P1, Pid([{scheduler, {?MODULE, first_member}}])),
    %% least_loaded sees the calls in flight: with a long call on node 1,
    %% the next calls go to node 2.
    Self = self(),
    spawn_link(fun() -> Self ! {slow, os_pid_in(duo, [{worker, 1}, {scheduler, least_loaded}]),
                                py:func(time, sleep, [0.5], [], [{pool, duo}, {worker, 1}])} end),
    timer:sleep(100),
    ?assertEqual([P2], lists:usort([Pid([{scheduler, least_loaded}]) || _ <- lists:seq(1, 3)])),
    receive {slow, _, undefined} -> ok end.

first_member(Members, _Opts) ->
    %% The member with slot 1.
    hd([I || I <- lists:seq(1, tuple_size(Members)), py_pool:slot(element(I, Members)) =:= 1]).

%%% Handles ---------------------------------------------------------------

handles_route_back(_Config) ->
    [{1, N1, _}, {2, N2, _}] = members(duo),
    C1 = py:func(collections, 'Counter', [<<"abracadabra">>], [], [{pool, duo}, {worker, 1},
                                                                    {return, handle}]),
    C2 = py:func(collections, 'Counter', [<<"xyz">>], [], [{pool, duo}, {worker, 2},
                                                            {return, handle}]),
    {'$py', <<"collections.Counter">>, {'$py_remote', N1, _}} = C1,
    {'$py', <<"collections.Counter">>, {'$py_remote', N2, _}} = C2,
    %% Whatever the scheduler would pick, a handle's call goes to its node.
    [?assertEqual([{<<"a">>, 5}], py:method(C1, most_common, [1], [], [{pool, duo}]))
     || _ <- lists:seq(1, 4)],
    ?assertEqual(3, py:len(C2)),
    undefined = py:method(C1, update, [<<"aaa">>]),
    ?assertEqual(8, py:getitem(C1, <<"a">>)),
    {py_badarg, mixed_nodes, _} = error_of(fun() -> py:func(operator, add, [C1, C2]) end),
    ok = py:release(C1),
    {py_badarg, released_handle, _} = error_of(fun() -> py:len(C1) end).

%%% Parallel -----------------------------------------------------------------

scatter_and_identical_calls(_Config) ->
    [{1, N1, _}, {2, N2, _}] = members(duo),
    Args = [[I, I] || I <- lists:seq(1, 2000)],
    ?assertEqual([{ok, 2 * I} || I <- lists:seq(1, 2000)],
                 py:scatter(operator, add, Args, [{pool, duo}])),
    %% Both nodes took part.
    Pids = py:scatter(os, getpid, [[] || _ <- lists:seq(1, 200)], [{pool, duo}]),
    ?assertEqual(2, length(lists:usort(Pids))),
    %% One failed item is one error; timeouts per call; max_in_flight.
    [{ok, 120}, {error, {python, 'ValueError', _, _}}] =
        py:scatter(math, factorial, [[5], [-1]], [{pool, duo}, {max_in_flight, 1}]),
    [{ok, undefined}, {error, {py_timeout, 100}}] =
        py:scatter(time, sleep, [[0.01], [0.3]], [{pool, duo}, {timeout, 100}]),
    %% Handles in the results route back to their node.
    [{ok, H1}, {ok, H2}] = py:scatter(builtins, list, [[[1, 2]], [[3]]],
                                      [{pool, duo}, {return, handle}]),
    ?assertEqual({[1, 2], [3]}, {py:value(H1), py:value(H2)}),
    [] = py:scatter(operator, add, [], [{pool, duo}]),
    {py_badarg, bad_option, {pool, duo}} =
        error_of(fun() -> py:scatter(operator, add, [[1, 2]], [{pool, duo}, {nodes, all}]) end),
    %% Identical calls: every worker of every node of the pool.
    Idents = py:on_all_workers(threading, get_ident, [], [], [{pool, duo}]),
    ?assertEqual([{N1, 1}, {N1, 2}, {N2, 1}, {N2, 2}], lists:sort([K || {K, _} <- Idents])),
    ?assert(lists:all(fun({_, {ok, I}}) -> is_integer(I); (_) -> false end, Idents)),
    [{1, _} | _] = py:on_all_workers(threading, get_ident, [], [], [{pool, default}]).

%% Two CPU-bound calls on two nodes run at the same time (each node has
%% its own GIL): their run times overlap. (The speed-up itself is
%% measured by `make bench', not here.)
cpu_parallelism(_Config) ->
    Code = <<"(__import__('os').getpid(), __import__('time').time(), "
             "sum(i * i for i in range(n)), __import__('time').time())">>,
    Self = self(),
    [spawn_link(fun() -> Self ! {ran, py:eval(Code, #{n => 3000000}, [{pool, duo}, {worker, W}])} end)
     || W <- [1, 2]],
    [{Pid1, S1, _, E1}, {Pid2, S2, _, E2}] = [receive {ran, R} -> R end || _ <- [1, 2]],
    ?assertNotEqual(Pid1, Pid2),
    %% Each started before the other ended.
    ?assert(S1 < E2 andalso S2 < E1).

%%% Isolation and restarts -----------------------------------------------------

segfault_restarts_one_node(_Config) ->
    [{1, N1, P1}, {2, N2, _}] = members(duo),
    Workers = [{Id, R} || #{id := Id, restarts := R} <- py:workers()],
    #{members := [#{restarts := R0} | _]} = pool(duo),
    %% A segfault there: the call fails at once, not after a timeout.
    {T, {py_nodedown, N1}} =
        timer:tc(fun() -> error_of(fun() -> py:func(ctypes, string_at, [0], [],
                                                     [{pool, duo}, {worker, 1}]) end) end),
    ct:pal("segfault call failed after ~b ms", [T div 1000]),
    ?assert(T < 10000000),
    %% The next call succeeds (on the other node, while slot 1 restarts).
    ?assertEqual(3, py:func(operator, add, [1, 2], [], [{pool, duo}])),
    wait_restarted(duo, 1, N1),
    wait_gone([P1]),
    [{1, New1, _}, {2, N2, _}] = members(duo),
    #{members := [#{restarts := R1, state := up} | _]} = pool(duo),
    ?assertEqual(R0 + 1, R1),
    ?assertNotEqual(N1, New1),
    ?assertEqual(3, py:func(operator, add, [1, 2], [], [{pool, duo}, {worker, 1}])),
    %% This VM and its embedded workers were not touched.
    ?assertEqual(Workers, [{Id, R} || #{id := Id, restarts := R} <- py:workers()]),
    ?assertEqual(3, py:func(operator, add, [1, 2])).

handles_of_a_restarted_node(_Config) ->
    [{1, N1, P1} | _] = members(duo),
    H = py:func(builtins, list, [[1, 2, 3]], [], [{pool, duo}, {worker, 1}, {return, handle}]),
    ?assertEqual(3, py:len(H)),
    %% The node is killed from outside (as by the OOM killer).
    _ = os:cmd("kill -9 " ++ P1),
    wait_restarted(duo, 1, N1),
    {py_node_restarted, N1} = error_of(fun() -> py:len(H) end),
    {py_node_restarted, N1} = error_of(fun() -> py:func(os, getpid, [], [], [{node, N1}]) end),
    ?assertEqual(ok, py:release(H)),
    ?assertEqual(6, py:func(operator, mul, [2, 3], [], [{pool, duo}, {worker, 1}])).

%% Callers of a started node watch the connection only: a node whose
%% server is gone (py stopped there) is halted and started again, so a
%% call running there fails at once rather than waiting forever.
server_gone_restarts_the_node(_Config) ->
    [_, {2, N2, P2}] = members(duo),
    Self = self(),
    spawn_link(fun() ->
                       Self ! {slow, catch py:func(time, sleep, [30], [], [{pool, duo}, {worker, 2}])}
               end),
    timer:sleep(200),
    ok = erpc:call(N2, supervisor, terminate_child, [py_sup, py_node_server]),
    receive
        {slow, {'EXIT', {{py_nodedown, N2}, _}}} -> ok
    after 10000 -> ct:fail(call_not_failed)
    end,
    wait_restarted(duo, 2, N2),
    wait_gone([P2]),
    ?assertEqual(3, py:func(operator, add, [1, 2], [], [{pool, duo}, {worker, 2}])).

stop_pool_leaves_no_process(_Config) ->
    ok = py:start_pool(solo, #{kind => nodes, size => 1, workers => 1}),
    [{1, Node, OsPid}] = members(solo),
    ?assertEqual(list_to_integer(OsPid), os_pid_in(solo, [])),
    H = py:func(builtins, list, [[1]], [], [{pool, solo}, {return, handle}]),
    %% A call running when the pool stops fails at once.
    Self = self(),
    spawn_link(fun() ->
                       Self ! {slow, catch py:func(time, sleep, [30], [], [{pool, solo}])}
               end),
    timer:sleep(200),
    ok = py:stop_pool(solo),
    receive
        {slow, {'EXIT', {{py_nodedown, Node}, _}}} -> ok
    after 10000 -> ct:fail(call_not_failed)
    end,
    wait_gone([OsPid]),
    {py_no_pool, solo} = error_of(fun() -> os_pid_in(solo, []) end),
    {py_node_restarted, Node} = error_of(fun() -> py:len(H) end),
    ?assertEqual([default, duo], [N || #{name := N} <- py:pools()]),
    %% The name is free again.
    ok = py:start_pool(solo, #{kind => nodes, size => 1, workers => 1}),
    [{1, _, OsPid2}] = members(solo),
    ok = py:stop_pool(solo),
    wait_gone([OsPid2]).

%% A pool started at run time survives a crash of any of the processes
%% that manage the pools: the registry (`py_pools'), the pools'
%% supervisor (`py_pools_sup', which starts its pools again) and the
%% pool's own (`py_node_pool', started again with its nodes).
pools_survive_their_managers(_Config) ->
    ok = py:start_pool(rt, #{kind => nodes, size => 1, workers => 1}),
    [{1, Node, OsPid}] = members(rt),
    H = py:func(builtins, list, [[1, 2]], [], [{pool, rt}, {return, handle}]),
    %% The registry, killed: the pools run on, untouched.
    Registry = whereis(py_pools),
    exit(Registry, kill),
    ?assert(py_test_util:wait_until(fun() -> is_pid(whereis(py_pools))
                                                 andalso whereis(py_pools) =/= Registry end, 500)),
    ?assertEqual([default, duo, rt], [N || #{name := N} <- py:pools()]),
    ?assertEqual([{1, Node, OsPid}], members(rt)),
    #{state := running, members := [#{restarts := 0, state := up}]} = pool(rt),
    ?assertEqual(list_to_integer(OsPid), os_pid_in(rt, [])),
    ?assertEqual(2, py:len(H)),
    %% It watches the nodes again: one that dies is replaced.
    _ = os:cmd("kill -9 " ++ OsPid),
    wait_restarted(rt, 1, Node),
    wait_gone([OsPid]),
    [{1, Node2, OsPid2}] = members(rt),
    {py_node_restarted, Node} = error_of(fun() -> py:len(H) end),
    ?assertEqual(list_to_integer(OsPid2), os_pid_in(rt, [])),
    %% The pool's supervisor, killed: started again, with new nodes.
    [NodePool] = [P || {rt, P, _, _} <- supervisor:which_children(py_pools_sup)],
    exit(NodePool, kill),
    wait_restarted(rt, 1, Node2),
    wait_gone([OsPid2]),
    [{1, Node3, OsPid3}] = members(rt),
    ?assertEqual(list_to_integer(OsPid3), os_pid_in(rt, [])),
    %% The pools' supervisor, killed: every pool is started again, those
    %% of run time too.
    [{1, DuoNode, DuoPid}, {2, _, DuoPid2}] = members(duo),
    exit(whereis(py_pools_sup), kill),
    wait_restarted(rt, 1, Node3),
    wait_restarted(duo, 1, DuoNode),
    wait_gone([OsPid3, DuoPid, DuoPid2]),
    ?assert(py_test_util:wait_until(fun() -> length(members(duo)) =:= 2 end, 500)),
    ?assertEqual([default, duo, rt], [N || #{name := N} <- py:pools()]),
    [{1, _, OsPid4}] = members(rt),
    ?assertEqual(list_to_integer(OsPid4), os_pid_in(rt, [])),
    ?assertEqual(3, py:func(operator, add, [1, 2], [], [{pool, duo}])),
    %% The registry again, then stop_pool: the pool stops, no node left.
    exit(whereis(py_pools), kill),
    ?assert(py_test_util:wait_until(fun() -> is_pid(whereis(py_pools)) end, 500)),
    ok = py:stop_pool(rt),
    wait_gone([OsPid4]),
    {py_no_pool, rt} = error_of(fun() -> os_pid_in(rt, []) end),
    ?assertEqual([default, duo], [N || #{name := N} <- py:pools()]),
    ?assertEqual([duo], [Id || {Id, _, _, _} <- supervisor:which_children(py_pools_sup)]),
    %% The embedded workers were not touched.
    ?assertEqual(3, py:func(operator, add, [1, 2])).

%% Nodes that die more often than the pool's restart intensity allows:
%% the pool gives up (it does not take py_pools_sup, and py, down). It
%% stays listed, calls fail clearly, no node is left, py:stop_pool/1
%% removes it and the name can be started again.
beyond_the_restart_intensity(_Config) ->
    Spec = #{kind => nodes, size => 1, workers => 1, max_restarts => 1, restart_period => 3600},
    ok = py:start_pool(frail, Spec),
    PoolsSup = whereis(py_pools_sup),
    [{1, Node1, OsPid1}] = members(frail),
    _ = os:cmd("kill -9 " ++ OsPid1),
    %% One restart: within the intensity.
    wait_restarted(frail, 1, Node1),
    [{1, _, OsPid2}] = members(frail),
    ?assertEqual(list_to_integer(OsPid2), os_pid_in(frail, [])),
    %% The second: beyond.
    _ = os:cmd("kill -9 " ++ OsPid2),
    ?assert(py_test_util:wait_until(fun() -> maps:get(state, pool(frail)) =:= given_up end, 500)),
    wait_gone([OsPid1, OsPid2]),
    #{state := given_up, members := []} = pool(frail),
    {py_pool_down, frail} = error_of(fun() -> os_pid_in(frail, []) end),
    {py_pool_down, frail} = error_of(fun() -> py:scatter(operator, add, [[1, 2]], [{pool, frail}]) end),
    %% Nothing else moved.
    ?assertEqual(PoolsSup, whereis(py_pools_sup)),
    ?assertEqual(3, py:func(operator, add, [1, 2], [], [{pool, duo}])),
    ok = py:stop_pool(frail),
    ?assertEqual([default, duo], [N || #{name := N} <- py:pools()]),
    {error, {no_pool, frail}} = py:stop_pool(frail),
    ok = py:start_pool(frail, Spec),
    #{state := running} = pool(frail),
    [{1, _, OsPid3}] = members(frail),
    ?assertEqual(list_to_integer(OsPid3), os_pid_in(frail, [])),
    ok = py:stop_pool(frail),
    wait_gone([OsPid3]).

%% A caller killed while its call runs on a node: the node interrupts
%% the call (its worker is free again, not restarted as stuck), the
%% node's load as the scheduler sees it goes back to zero, and the pool
%% serves on. A scatter's caller: its load goes back to zero too.
caller_dies_mid_call(_Config) ->
    Nodes = [N || {_, N, _} <- members(duo)],
    Loads = fun() -> {Members, _, _} = py_pools:members(duo),
                     [py_pool:queue_len(M) || M <- tuple_to_list(Members)] end,
    Workers = fun() -> lists:append([erpc:call(N, py, workers, []) || N <- Nodes]) end,
    Busy = fun() -> length([W || #{state := busy} = W <- Workers()]) end,
    Restarts = [R || #{restarts := R} <- Workers()],
    %% Python code that runs until interrupted.
    Forever = <<"next(x for x in iter(int, 1) if x)">>,
    Caller = spawn(fun() -> py:eval(Forever, #{}, [{pool, duo}, {worker, 1}]) end),
    ?assert(py_test_util:wait_until(fun() -> Loads() =:= [1, 0] end, 500)),
    ?assert(py_test_util:wait_until(fun() -> Busy() =:= 1 end, 500)),
    exit(Caller, kill),
    ?assert(py_test_util:wait_until(fun() -> Loads() =:= [0, 0] end, 500)),
    ?assert(py_test_util:wait_until(fun() -> Busy() =:= 0 end, 500)),
    ?assertEqual(Restarts, [R || #{restarts := R} <- Workers()]),
    ?assertEqual(3, py:func(operator, add, [1, 2], [], [{pool, duo}, {worker, 1}])),
    %% A scatter's caller (its items already running end on their own).
    Scatterer = spawn(fun() -> py:scatter(time, sleep, [[2], [2]], [{pool, duo}]) end),
    ?assert(py_test_util:wait_until(fun() -> lists:sum(Loads()) =:= 2 end, 500)),
    exit(Scatterer, kill),
    ?assert(py_test_util:wait_until(fun() -> Loads() =:= [0, 0] end, 500)),
    ?assert(py_test_util:wait_until(fun() -> Busy() =:= 0 end, 500)),
    ?assertEqual(3, py:func(operator, add, [1, 2], [], [{pool, duo}])).

%% py:stop_pool/1 while many calls run and more come: every caller gets
%% an answer, a value or a clear error, never a hang.
stop_pool_during_calls(_Config) ->
    ok = py:start_pool(busy, #{kind => nodes, size => 2, workers => 2}),
    Pids = [P || {_, _, P} <- members(busy)],
    Self = self(),
    %% Calls that ran on a node: py_nodedown; those made or sent later:
    %% py_no_pool.
    Clear = fun({py_nodedown, _}) -> true;
               ({py_no_pool, busy}) -> true;
               (_) -> false
            end,
    Slow = [spawn_link(fun() -> Self ! {self(), catch py:func(time, sleep, [30], [], [{pool, busy}])} end)
            || _ <- lists:seq(1, 6)],
    Loop = fun Loop(N) ->
                   case catch py:func(operator, add, [N, 1], [], [{pool, busy}]) of
                       M when M =:= N + 1 -> Loop(M);
                       Other -> Other
                   end
           end,
    Fast = [spawn_link(fun() -> Self ! {self(), Loop(0)} end) || _ <- lists:seq(1, 4)],
    Scatter = spawn_link(fun() -> Self ! {self(), py:scatter(time, sleep, lists:duplicate(20, [30]),
                                                             [{pool, busy}])} end),
    timer:sleep(500),
    ok = py:stop_pool(busy),
    [receive {P, {'EXIT', {Why, _}}} -> ?assertMatch({py_nodedown, _}, Why)
     after 10000 -> ct:fail({no_answer, P})
     end || P <- Slow],
    [receive {P, {'EXIT', {Why, _}}} -> ?assert(Clear(Why))
     after 10000 -> ct:fail({no_answer, P})
     end || P <- Fast],
    receive
        {Scatter, Results} ->
            ?assertEqual(20, length(Results)),
            ?assert(lists:all(fun({error, Why}) -> Clear(Why); (_) -> false end, Results)),
            %% Its batches running on the nodes failed at once.
            ?assert(lists:any(fun(R) -> element(1, element(2, R)) =:= py_nodedown end, Results))
    after 10000 -> ct:fail({no_answer, scatter})
    end,
    wait_gone(Pids),
    ?assertEqual([default, duo], [N || #{name := N} <- py:pools()]).

%% Nodes of other machines: here, nodes started by hand (py:start_node)
%% join a pool by name.
joined_nodes(_Config) ->
    {ok, A} = py:start_node("py_pools_join_a_" ++ os:getpid(), #{env => [{workers, 1}]}),
    {ok, B} = py:start_node("py_pools_join_b_" ++ os:getpid(), #{env => [{workers, 1}]}),
    ok = py:start_pool(joined, #{kind => nodes, nodes => [A, B]}),
    #{size := 2, members := [#{node := A}, #{node := B}]} = pool(joined),
    PidA = py:func(os, getpid, [], [], [{node, A}]),
    ?assertEqual(PidA, os_pid_in(joined, [{worker, 1}])),
    %% {worker, Id} picks the pool's node, not a worker there (B has one).
    ?assertEqual(py:func(os, getpid, [], [], [{node, B}]), os_pid_in(joined, [{worker, 2}])),
    H = py:func(builtins, list, [[1, 2]], [], [{pool, joined}, {worker, 2}, {return, handle}]),
    ?assertEqual(2, py:len(H)),
    %% The connection to B is lost: a call running there fails at once;
    %% later calls go to A.
    Self = self(),
    spawn_link(fun() ->
                       Self ! {slow, catch py:func(time, sleep, [30], [], [{pool, joined}, {worker, 2}])}
               end),
    timer:sleep(200),
    ok = py:stop_node(B),
    receive
        {slow, {'EXIT', {{py_nodedown, B}, _}}} -> ok
    after 10000 -> ct:fail(call_not_failed)
    end,
    ?assert(py_test_util:wait_until(
              fun() -> [S || #{node := N, state := S} <- maps:get(members, pool(joined)), N =:= B]
                           =:= [down] end, 500)),
    [?assertEqual(PidA, os_pid_in(joined, [])) || _ <- [1, 2, 3]],
    {py_nodedown, B} = error_of(fun() -> py:len(H) end),
    %% Stopping the pool leaves the joined node running (it is not ours).
    ok = py:stop_pool(joined),
    ?assertEqual(PidA, py:func(os, getpid, [], [], [{node, A}])),
    {error, {py_nodedown, B}} = py:start_pool(joined, #{kind => nodes, nodes => [B]}),
    ?assertEqual([default, duo], [N || #{name := N} <- py:pools()]),
    ok = py:stop_node(A).

%% Two pools, two venvs, two versions of one package. The package is a
%% wheel made here, installed by pip from a local file: no network.
a_venv_per_pool(Config) ->
    Dir = ?config(priv_dir, Config),
    Pools = [{V, wheel(Dir, V)} || V <- ["1.0", "2.0"]],
    [begin
         Name = list_to_atom("tiny_" ++ [C || C <- V, C =/= $.]),
         Venv = filename:join(Dir, "venv_" ++ V),
         ok = py:start_pool(Name, #{kind => nodes, size => 1, workers => 1,
                                    env => [{venv, Venv},
                                            {requirements, ["tinypkg @ file://" ++ Wheel]}]})
     end || {V, Wheel} <- Pools],
    ?assertEqual(<<"1.0">>, py:eval(<<"__import__('tinypkg').VERSION">>, #{}, [{pool, tiny_10}])),
    ?assertEqual(<<"2.0">>, py:eval(<<"__import__('tinypkg').VERSION">>, #{}, [{pool, tiny_20}])),
    %% Not here.
    {python, 'ModuleNotFoundError', _, _} = error_of(fun() -> py:func(tinypkg, version, []) end),
    %% Installed by pip, with its metadata.
    ?assertEqual(<<"2.0">>, py:eval(<<"__import__('importlib.metadata', fromlist=['version'])"
                                      ".version('tinypkg')">>, #{}, [{pool, tiny_20}])),
    Pids = [P || Pool <- [tiny_10, tiny_20], {_, _, P} <- members(Pool)],
    ok = py:stop_pool(tiny_10),
    ok = py:stop_pool(tiny_20),
    wait_gone(Pids).

%% A wheel of `tinypkg' version V (a zip: the module and its metadata).
wheel(Dir, V) ->
    Info = "tinypkg-" ++ V ++ ".dist-info/",
    Files = [{"tinypkg/__init__.py", "VERSION = '" ++ V ++ "'\ndef version():\n    return VERSION\n"},
             {Info ++ "METADATA", "Metadata-Version: 2.1\nName: tinypkg\nVersion: " ++ V ++ "\n"},
             {Info ++ "WHEEL", "Wheel-Version: 1.0\nGenerator: py_pools_SUITE\n"
                               "Root-Is-Purelib: true\nTag: py3-none-any\n"}],
    Record = {Info ++ "RECORD", [[F, ",,\n"] || {F, _} <- Files] ++ [Info, "RECORD,,\n"]},
    File = filename:join(Dir, "tinypkg-" ++ V ++ "-py3-none-any.whl"),
    {ok, _} = zip:create(File, [{F, iolist_to_binary(C)} || {F, C} <- Files ++ [Record]]),
    File.

%% Pools of the `pools' setting start with py; py:stop() leaves no peer
%% OS process behind, whatever pools there were.
configured_pools_and_stop(_Config) ->
    ok = application:set_env(py, pools, [{default, #{kind => nodes}}]),
    {error, {bad_config, pools, _, _}} = py:restart(),
    ok = application:set_env(py, pools, [{cfg, #{kind => nodes, size => 1, workers => 1}}]),
    ok = py:start(),
    #{kind := nodes, size := 1} = pool(cfg),
    ok = py:start_pool(extra, #{kind => nodes, size => 1, workers => 1}),
    ?assertNotEqual(os_pid_in(cfg, []), os_pid_in(extra, [])),
    Pids = [P || Pool <- [cfg, extra], {_, _, P} <- members(Pool)],
    ?assertEqual(2, length(Pids)),
    ok = py:stop(),
    wait_gone(Pids),
    ?assertEqual([], py:pools()),
    py_not_started = error_of(fun() -> os_pid_in(cfg, []) end),
    application:unset_env(py, pools),
    ok = py_test_util:start().
