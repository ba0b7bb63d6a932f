%%% @doc `make bench': figures for the call path and conversion. Prints;
%%% asserts nothing (speed is measured here, never in tests).
-module(py_bench).

-export([main/0]).

-define(ROUNDS, 20000).

-spec main() -> ok.
main() ->
    ok = py:start(),
    io:format("py benchmark (OTP ~s, Python ~s, ~b schedulers, ~b workers)~n",
              [erlang:system_info(otp_release), python_version(),
               erlang:system_info(schedulers_online), length(py_pool:workers())]),
    %% Load every module the run uses before watching for long schedules:
    %% loading code is not what is measured.
    warm(),
    _ = big_list_once(),
    Monitor = start_long_schedule_monitor(),
    single_caller(),
    concurrent_callers(8),
    big_list(),
    big_binary(),
    Events = stop_long_schedule_monitor(Monitor),
    io:format("long_schedule events (>1 ms) during the run: ~b~n", [Events]),
    ok.

python_version() ->
    hd(string:split(py:func(platform, python_version, [], [], [{strings, charlist}]), " ")).

warm() ->
    [py:func(operator, add, [1, 2]) || _ <- lists:seq(1, 2000)],
    _ = percentiles([3, 1, 2]),
    ok.

big_list_once() ->
    py:func(builtins, len, [lists:seq(1, 10000)]).

single_caller() ->
    Times = [begin
                 T0 = erlang:monotonic_time(nanosecond),
                 3 = py:func(operator, add, [1, 2]),
                 erlang:monotonic_time(nanosecond) - T0
             end || _ <- lists:seq(1, ?ROUNDS)],
    {P50, P99} = percentiles(Times),
    io:format("operator.add(1, 2), 1 caller:   p50 ~.2f us  p99 ~.2f us  (~b calls)~n",
              [P50 / 1000, P99 / 1000, ?ROUNDS]).

concurrent_callers(N) ->
    Parent = self(),
    PerCaller = ?ROUNDS,
    T0 = erlang:monotonic_time(nanosecond),
    Pids = [spawn_link(fun() ->
                               Times = [begin
                                            S = erlang:monotonic_time(nanosecond),
                                            3 = py:func(operator, add, [1, 2]),
                                            erlang:monotonic_time(nanosecond) - S
                                        end || _ <- lists:seq(1, PerCaller)],
                               Parent ! {self(), Times}
                       end) || _ <- lists:seq(1, N)],
    All = lists:append([receive {P, T} -> T end || P <- Pids]),
    Elapsed = erlang:monotonic_time(nanosecond) - T0,
    {P50, P99} = percentiles(All),
    io:format("operator.add(1, 2), ~b callers:  p50 ~.2f us  p99 ~.2f us  ~b calls/s~n",
              [N, P50 / 1000, P99 / 1000, round(N * PerCaller / (Elapsed / 1.0e9))]).

big_list() ->
    List = lists:seq(1, 1000000),
    In = best_of(5, fun() -> 1000000 = py:func(builtins, len, [List]) end),
    Held = py:func(builtins, list, [py:func(builtins, range, [1000000], [], [{return, handle}])],
                   [], [{return, handle}]),
    Out = best_of(5, fun() -> [0 | _] = py:value(Held) end),
    Made = best_of(5, fun() -> [0 | _] = py:func(builtins, list, [py:func(builtins, range, [1000000], [], [{return, handle}])]) end),
    io:format("1M-integer list: in ~.1f ms, out ~.1f ms (~.1f ms with Python making it) (best of 5)~n",
              [In / 1.0e6, Out / 1.0e6, Made / 1.0e6]).

big_binary() ->
    Bin = binary:copy(<<"0123456789">>, 1000000),
    In = best_of(5, fun() -> 10000000 = py:func(builtins, len, [Bin]) end),
    Out = best_of(5, fun() -> <<"0", _/binary>> = py:func(operator, mul, [<<"0123456789">>, 1000000]) end),
    io:format("10 MB binary: in ~.1f ms, out ~.1f ms (best of 5)~n", [In / 1.0e6, Out / 1.0e6]).

best_of(N, F) ->
    lists:min([begin
                   T0 = erlang:monotonic_time(nanosecond),
                   F(),
                   erlang:monotonic_time(nanosecond) - T0
               end || _ <- lists:seq(1, N)]).

percentiles(Times) ->
    Sorted = lists:sort(Times),
    Len = length(Sorted),
    {lists:nth(max(1, Len div 2), Sorted), lists:nth(max(1, (Len * 99) div 100), Sorted)}.

start_long_schedule_monitor() ->
    Parent = self(),
    Pid = spawn(fun() ->
                        erlang:system_monitor(self(), [{long_schedule, 1}]),
                        Parent ! {self(), ready},
                        count_events(0)
                end),
    receive {Pid, ready} -> Pid end.

count_events(N) ->
    receive
        {monitor, _, long_schedule, _} -> count_events(N + 1);
        {stop, From} -> From ! {self(), N}
    end.

stop_long_schedule_monitor(Pid) ->
    Pid ! {stop, self()},
    receive {Pid, N} -> N end.
