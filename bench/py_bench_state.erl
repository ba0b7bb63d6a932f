%%% @doc `make bench', part two: eval, contexts and streams. Prints only.
-module(py_bench_state).

-export([run/0]).

-define(ROUNDS, 20000).

-spec run() -> ok.
run() ->
    Eval = median_us(fun() -> 2 = py:eval(<<"1+1">>) end),
    io:format("py:eval(<<\"1+1\">>):            p50 ~.2f us~n", [Eval]),
    Ctx = py:context(),
    InCtx = median_us(fun() -> 3 = py:func(operator, add, [1, 2], [], [{context, Ctx}]) end),
    io:format("operator.add through a context: p50 ~.2f us~n", [InCtx]),
    stream(1000000, false),
    stream(10000000, true),
    ok.

median_us(F) ->
    [F() || _ <- lists:seq(1, 1000)],
    Times = lists:sort([begin
                            T0 = erlang:monotonic_time(nanosecond),
                            F(),
                            erlang:monotonic_time(nanosecond) - T0
                        end || _ <- lists:seq(1, ?ROUNDS)]),
    lists:nth(?ROUNDS div 2, Times) / 1000.

%% Streams `range(N)' through a generator, acknowledging in batches, and
%% samples the OS process's resident memory meanwhile.
stream(N, WatchMemory) ->
    Sampler = case WatchMemory of
                  true -> start_rss_sampler();
                  false -> undefined
              end,
    RssBefore = rss_kb(),
    T0 = erlang:monotonic_time(nanosecond),
    S = py:stream(builtins, iter, [py:func(builtins, range, [N], [], [{return, handle}])], [{window, 1000}]),
    N = consume(S, 0, 0),
    Seconds = (erlang:monotonic_time(nanosecond) - T0) / 1.0e9,
    io:format("stream of ~b items: ~b items/s", [N, round(N / Seconds)]),
    case Sampler of
        undefined ->
            io:format("~n");
        _ ->
            Peak = stop_rss_sampler(Sampler),
            io:format(", RSS ~b MB before, peak ~b MB while streaming~n",
                      [RssBefore div 1024, Peak div 1024])
    end.

consume(S, Count, Unacked) ->
    receive
        {py_stream, S, {item, _}} when Unacked >= 499 ->
            py:stream_ack(S, Unacked + 1),
            consume(S, Count + 1, 0);
        {py_stream, S, {item, _}} ->
            consume(S, Count + 1, Unacked + 1);
        {py_stream, S, done} ->
            Count
    end.

rss_kb() ->
    case file:read_file("/proc/self/status") of
        {ok, Status} ->
            case re:run(Status, "VmRSS:\\s+([0-9]+) kB", [{capture, all_but_first, list}]) of
                {match, [Kb]} -> list_to_integer(Kb);
                nomatch -> 0
            end;
        {error, _} ->
            0
    end.

start_rss_sampler() ->
    spawn(fun() -> sample(rss_kb()) end).

sample(Peak) ->
    receive
        {stop, From} -> From ! {peak, Peak}
    after 50 ->
        sample(max(Peak, rss_kb()))
    end.

stop_rss_sampler(Pid) ->
    Pid ! {stop, self()},
    receive {peak, Peak} -> Peak end.
