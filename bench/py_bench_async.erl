%%% @doc `make bench', asyncio part: awaited coroutines, 10,000 sleeps,
%%% loopback TCP round trips, and one event loop against four. Prints;
%%% asserts nothing.
-module(py_bench_async).

-export([run/0]).

-define(ROUNDS, 5000).

-spec run() -> ok.
run() ->
    _ = py:exec(code()),
    noop_coroutine(),
    sleeps(10000),
    round_trips(10000),
    loops_compared(),
    ok.

code() ->
    <<"import asyncio, resource, threading, time\n"
      "async def bench_noop():\n"
      "    return 1\n"
      "_bench_sem = None\n"
      "async def bench_echo(port, payload):\n"
      "    global _bench_sem\n"
      "    if _bench_sem is None:\n"
      "        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)\n"
      "        _bench_sem = asyncio.Semaphore(max(16, min(2000, soft // 4)))\n"
      "    async with _bench_sem:\n"
      "        r, w = await asyncio.open_connection('127.0.0.1', port)\n"
      "        w.write(payload.encode())\n"
      "        data = await r.readexactly(len(payload))\n"
      "        w.close()\n"
      "        await w.wait_closed()\n"
      "    return len(data)\n"
      "def bench_loops(n_tasks, n_loops):\n"
      "    async def one():\n"
      "        await asyncio.sleep(0)\n"
      "    async def many(k):\n"
      "        await asyncio.gather(*[one() for _ in range(k)])\n"
      "    def body(k):\n"
      "        asyncio.run(many(k))\n"
      "    threads = [threading.Thread(target=body, args=(n_tasks // n_loops,))\n"
      "               for _ in range(n_loops)]\n"
      "    t0 = time.perf_counter()\n"
      "    for t in threads: t.start()\n"
      "    for t in threads: t.join()\n"
      "    return time.perf_counter() - t0\n">>.

noop_coroutine() ->
    [1 = py:func('__main__', bench_noop, []) || _ <- lists:seq(1, 500)],
    Times = [begin
                 T0 = erlang:monotonic_time(nanosecond),
                 1 = py:func('__main__', bench_noop, []),
                 erlang:monotonic_time(nanosecond) - T0
             end || _ <- lists:seq(1, ?ROUNDS)],
    Sorted = lists:sort(Times),
    P50 = lists:nth(length(Sorted) div 2, Sorted),
    P99 = lists:nth(length(Sorted) * 99 div 100, Sorted),
    io:format("awaited no-op coroutine, 1 caller:  p50 ~.1f us  p99 ~.1f us  (~b calls)~n",
              [P50 / 1000, P99 / 1000, ?ROUNDS]).

sleeps(N) ->
    Self = self(),
    T0 = erlang:monotonic_time(millisecond),
    _ = [spawn_link(fun() -> Self ! {slept, py:func(asyncio, sleep, [0.5, I])} end)
         || I <- lists:seq(1, N)],
    [receive {slept, _} -> ok end || _ <- lists:seq(1, N)],
    io:format("~b callers awaiting asyncio.sleep(0.5), ~b workers: all done in ~b ms~n",
              [N, length(py_pool:workers()), erlang:monotonic_time(millisecond) - T0]).

round_trips(N) ->
    {Port, Server} = echo_server(),
    Self = self(),
    T0 = erlang:monotonic_time(microsecond),
    _ = [spawn_link(fun() -> Self ! {echoed, py:func('__main__', bench_echo, [Port, <<"ping">>])} end)
         || _ <- lists:seq(1, N)],
    [receive {echoed, 4} -> ok end || _ <- lists:seq(1, N)],
    Elapsed = erlang:monotonic_time(microsecond) - T0,
    exit(Server, shutdown),
    io:format("~b concurrent coroutine calls, each a loopback TCP round trip (connect, "
              "echo, close): ~b ms, ~b round trips/s~n",
              [N, Elapsed div 1000, round(N / (Elapsed / 1.0e6))]).

%% The same 20,000 tasks on one asyncio loop, and spread over four loops
%% on four threads (one GIL): what a loop per worker would give.
loops_compared() ->
    Best = fun(Loops) ->
                   lists:min([py:func('__main__', bench_loops, [20000, Loops])
                              || _ <- lists:seq(1, 3)])
           end,
    One = Best(1),
    Four = Best(4),
    io:format("20,000 asyncio tasks: one loop ~b ms, four loops on four threads ~b ms "
              "(best of 3)~n", [round(One * 1000), round(Four * 1000)]).

echo_server() ->
    Self = self(),
    Server = spawn(fun() ->
                           {ok, L} = gen_tcp:listen(0, [binary, {ip, {127, 0, 0, 1}},
                                                        {active, false}, {backlog, 4096},
                                                        {reuseaddr, true}]),
                           {ok, Port} = inet:port(L),
                           _ = [spawn_link(fun() -> accept(L) end) || _ <- lists:seq(1, 8)],
                           Self ! {echo_port, Port},
                           receive after infinity -> ok end
                   end),
    receive {echo_port, Port} -> {Port, Server} end.

accept(L) ->
    case gen_tcp:accept(L) of
        {ok, S} ->
            Pid = spawn(fun() -> receive go -> echo(S) end end),
            ok = gen_tcp:controlling_process(S, Pid),
            Pid ! go,
            accept(L);
        {error, closed} ->
            ok;
        {error, _} ->
            accept(L)
    end.

echo(S) ->
    case gen_tcp:recv(S, 0, 30000) of
        {ok, Data} ->
            _ = gen_tcp:send(S, Data),
            echo(S);
        {error, _} ->
            gen_tcp:close(S)
    end.
