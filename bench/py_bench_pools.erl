%%% @doc `make bench', pools: embedded workers against a pool of 2 Python
%%% nodes (2 workers each) on this host. Latency per call, scatter rate,
%%% 4 concurrent CPU-bound calls, memory per node, and what a segfault
%%% costs. Prints; asserts nothing.
-module(py_bench_pools).

-export([run/0]).

-define(POOL, py_bench_pool).
-define(CPU, <<"sum(i * i for i in range(2_000_000))">>).

-spec run() -> ok.
run() ->
    case is_alive() of
        false ->
            io:format("pools: skipped (this node is not distributed)~n");
        true ->
            case py:start_pool(?POOL, #{kind => nodes, size => 2, workers => 2}) of
                ok ->
                    try measure()
                    after py:stop_pool(?POOL)
                    end;
                {error, Why} ->
                    io:format("pools: skipped (~p)~n", [Why])
            end
    end.

measure() ->
    Pool = [{pool, ?POOL}],
    [py:func(operator, add, [1, 2], [], Pool) || _ <- lists:seq(1, 2000)],
    {E50, E99} = latency([]),
    {N50, N99} = latency(Pool),
    io:format("operator.add(1, 2), 1 caller: embedded p50 ~.1f us p99 ~.1f us; "
              "node pool p50 ~.1f us p99 ~.1f us~n", [E50, E99, N50, N99]),
    Args = [[I, 1] || I <- lists:seq(1, 20000)],
    _ = py:scatter(operator, add, lists:sublist(Args, 2000), Pool),
    Rate = [round(length(Args) / (elapsed_us(fun() -> py:scatter(operator, add, Args, Pool) end) / 1.0e6))
            || _ <- [1, 2, 3]],
    EmbRate = [round(length(Args) / (elapsed_us(fun() -> py:scatter(operator, add, Args) end) / 1.0e6))
               || _ <- [1, 2, 3]],
    io:format("scatter/gather 20000 x operator.add: node pool ~w calls/s, embedded ~w calls/s "
              "(3 runs each)~n", [Rate, EmbRate]),
    One = elapsed_us(fun() -> cpu_calls(1, []) end),
    Emb = elapsed_us(fun() -> cpu_calls(4, []) end),
    Nodes = elapsed_us(fun() -> cpu_calls(4, Pool) end),
    io:format("4 concurrent ~s: embedded ~b ms (one call ~b ms), node pool ~b ms: "
              "ratio ~.2f~n", [?CPU, Emb div 1000, One div 1000, Nodes div 1000, Nodes / Emb]),
    Rss = [rss_mb(OsPid) || #{name := ?POOL, members := Ms} <- py:pools(), #{os_pid := OsPid} <- Ms],
    io:format("memory: a node of the pool ~w MB RSS each (this VM, with py and 4 workers: ~.1f MB)~n",
              [Rss, rss_mb(os:getpid())]),
    segfault(Pool).

latency(Opts) ->
    Times = [begin
                 T0 = erlang:monotonic_time(nanosecond),
                 3 = py:func(operator, add, [1, 2], [], Opts),
                 erlang:monotonic_time(nanosecond) - T0
             end || _ <- lists:seq(1, 20000)],
    Sorted = lists:sort(Times),
    {lists:nth(10000, Sorted) / 1000, lists:nth(19800, Sorted) / 1000}.

cpu_calls(N, Opts) ->
    Self = self(),
    Pids = [spawn_link(fun() -> Self ! {self(), py:eval(?CPU, #{}, Opts)} end)
            || _ <- lists:seq(1, N)],
    [receive {P, _} -> ok end || P <- Pids].

rss_mb(OsPid) ->
    case string:to_integer(string:trim(os:cmd("ps -o rss= -p " ++ OsPid))) of
        {Kb, _} when is_integer(Kb) -> round(Kb / 102.4) / 10;
        _ -> undefined
    end.

%% A segfault in a node-pool call: how soon the call fails, how soon the
%% node serves again.
segfault(Pool) ->
    [#{node := Node} | _] = [M || #{name := ?POOL, members := Ms} <- py:pools(), M <- Ms],
    T0 = erlang:monotonic_time(microsecond),
    {'EXIT', {{py_nodedown, Node}, _}} =
        (catch py:func(ctypes, string_at, [0], [], [{worker, 1} | Pool])),
    Failed = erlang:monotonic_time(microsecond) - T0,
    back(Pool, T0),
    Back = erlang:monotonic_time(microsecond) - T0,
    io:format("segfault (ctypes.string_at(0)) in a node: the call fails after ~.1f ms, "
              "the node serves again after ~b ms; this VM untouched~n",
              [Failed / 1000, Back div 1000]).

back(Pool, T0) ->
    Late = erlang:monotonic_time(microsecond) - T0 > 60000000,
    case catch py:func(operator, add, [1, 2], [], [{worker, 1} | Pool]) of
        3 -> ok;
        _ when Late -> ok;
        _ -> timer:sleep(10), back(Pool, T0)
    end.

elapsed_us(Fun) ->
    T0 = erlang:monotonic_time(microsecond),
    _ = Fun(),
    erlang:monotonic_time(microsecond) - T0.
