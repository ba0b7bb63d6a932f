%%% @doc `make bench': figures for the call path and conversion. Prints;
%%% asserts nothing (speed is measured here, never in tests).
-module(py_bench).

-export([main/0]).

-define(ROUNDS, 20000).

-spec main() -> ok.
main() ->
    %% numpy for the array figures: the test virtualenv's, when there.
    _ = application:load(py),
    %% OpenBLAS's own threads would spin beside the workers.
    os:getenv("OPENBLAS_NUM_THREADS") =:= false andalso os:putenv("OPENBLAS_NUM_THREADS", "1"),
    Site = filelib:wildcard("_build/test-venv/lib/python3*/site-packages"),
    ok = application:set_env(py, python_path, [filename:absname(S) || S <- Site]),
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
    big_map(),
    numpy_round_trip(),
    {Events, GCs} = stop_long_schedule_monitor(Monitor),
    py_bench_state:run(),
    AtNif = [E || {_, _, In, Out, _} = E <- Events, at_nif(In) orelse at_nif(Out)],
    %% A process scheduled out at a dirty NIF may have spent its time in a
    %% garbage collection before the call (of a large reply it had just
    %% received): long_gc events of that process in the same moment tell.
    WithGC = [E || {Who, _, _, _, At} = E <- AtNif,
                   lists:any(fun({P, GcAt}) -> P =:= Who andalso abs(GcAt - At) < 20 end, GCs)],
    io:format("long_schedule events (>1 ms) during the run: ~b, scheduled in or out at a py_nif "
              "function: ~b (~b of these with a garbage collection of over 1 ms of that process "
              "at that moment); long_gc events: ~b~n",
              [length(Events), length(AtNif), length(WithGC), length(GCs)]),
    [io:format("  long_schedule ~b ms in ~p, out ~p (~p)~n", [T, In, Out, Who])
     || {Who, T, In, Out, _} <- Events],
    normal_scheduler_nifs(),
    py_bench_call:run(),
    parallel_and_distributed(),
    py_bench_async:run(),
    ok.

at_nif({py_nif, _, _}) -> true;
at_nif(_) -> false.

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
    %% The floor: Python alone making (and freeing) 1M ints in a list.
    PyAlone = py:eval(<<"min(__import__('timeit').repeat('list(range(1000000))', number=1, repeat=5)) * 1000">>),
    io:format("1M-integer list: in ~.1f ms, out ~.1f ms (~.1f ms with Python making it; "
              "Python alone makes one in ~.1f ms) (best of 5)~n",
              [In / 1.0e6, Out / 1.0e6, Made / 1.0e6, PyAlone]).

big_binary() ->
    Bin = binary:copy(<<"0123456789">>, 1000000),
    In = best_of(5, fun() -> 10000000 = py:func(builtins, len, [Bin]) end),
    Out = best_of(5, fun() -> <<"0", _/binary>> = py:func(operator, mul, [<<"0123456789">>, 1000000]) end),
    io:format("10 MB binary (copied, as str): in ~.1f ms, out ~.1f ms with Python making it (best of 5)~n",
              [In / 1.0e6, Out / 1.0e6]),
    %% No copy: a memoryview over the binary; a bytes object kept by Python.
    Shared = best_of(5, fun() -> 10000000 = py:func(builtins, len, [py:buffer(Bin)]) end),
    py:exec(<<"bench_bytes = b'0123456789' * 1000000">>),
    Back = best_of(5, fun() -> <<"0", _/binary>> = py:eval(<<"bench_bytes">>) end),
    Small = best_of(5, fun() -> 2 = py:eval(<<"2">>) end),
    io:format("10 MB binary, no copy: in (py:buffer/1) ~.3f ms, out (bytes) ~.3f ms; "
              "a call returning 2: ~.3f ms (best of 5)~n",
              [Shared / 1.0e6, Back / 1.0e6, Small / 1.0e6]).

%% A 100,000-key dict (string keys, integer values) out as a map and in,
%% beside maps:from_list/1 of the same pairs in this VM.
big_map() ->
    N = 100000,
    Pairs = [{integer_to_binary(I), I} || I <- lists:seq(1, N)],
    Map = maps:from_list(Pairs),
    py:exec(<<"bench_dict = {str(i): i for i in range(1, 100001)}">>),
    Map = py:eval(<<"bench_dict">>),
    Out = best_of(5, fun() -> N = map_size(py:eval(<<"bench_dict">>)) end),
    In = best_of(5, fun() -> N = py:func(builtins, len, [Map]) end),
    FromList = best_of(5, fun() -> N = map_size(maps:from_list(Pairs)) end),
    IntMap = maps:from_list([{I, I} || I <- lists:seq(1, N)]),
    py:exec(<<"bench_idict = {i: i for i in range(1, 100001)}">>),
    IntOut = best_of(5, fun() -> N = map_size(py:eval(<<"bench_idict">>)) end),
    IntIn = best_of(5, fun() -> N = py:func(builtins, len, [IntMap]) end),
    io:format("100k-key map, binary keys: out ~.1f ms, in ~.1f ms "
              "(maps:from_list of the pairs: ~.1f ms); integer keys: out ~.1f ms, in ~.1f ms (best of 5)~n",
              [Out / 1.0e6, In / 1.0e6, FromList / 1.0e6, IntOut / 1.0e6, IntIn / 1.0e6]).

%% The README's example: 1M float64 from Erlang to numpy, a computation,
%% and the result back, without a copy either way.
numpy_round_trip() ->
    case catch py:exec(<<"import numpy as np\nimport beam">>) of
        undefined ->
            Floats = << <<(float(X)):64/float-native>> || X <- lists:seq(1, 1000000) >>,
            Code = <<"beam.share(np.sqrt(beam.ndarray(b, 'float64')) * 2)">>,
            T = best_of(5, fun() -> <<_:8000000/binary>> = py:eval(Code, #{b => py:buffer(Floats)}) end),
            io:format("1M float64 to numpy, sqrt(x) * 2, back: ~.2f ms (best of 5)~n", [T / 1.0e6]);
        _ ->
            io:format("1M float64 through numpy: skipped (no numpy; `make test` builds _build/test-venv)~n")
    end.

%% The longest a normal-scheduler NIF takes on hostile shapes (target:
%% under 1,000 us): `py_nif:submit/4' timed directly, each shape 21 times.
%% Shapes over the budget answer `big' (the caller then uses the dirty
%% variant); the others are queued, and their replies awaited.
normal_scheduler_nifs() ->
    Huge = 1 bsl 3321929,                       % about 10^1,000,000
    Env = lists:seq(1, 100000),
    Fun = fun() -> Env end,
    MB = binary:copy(<<"x">>, 1 bsl 20),
    Shapes = [{"400 bignums of 10^1,000,000", lists:duplicate(400, Huge)},
              {"fun with a 100k-element environment", Fun},
              {"improper tail that is that fun", [1, 2 | Fun]},
              {"100k-element tuple", list_to_tuple(Env)},
              {"100k-key map", maps:from_list([{I, I} || I <- Env])},
              {"100k-deep nesting", lists:foldl(fun(_, Acc) -> [Acc] end, [], Env)},
              {"1M-element list", lists:seq(1, 1000000)},
              {"5,000 heap binaries", [<<I:64>> || I <- lists:seq(1, 5000)]},
              {"100 refc binaries of 1 MB", lists:duplicate(100, MB)},
              {"300 bignums of 2^32,000", lists:duplicate(300, 1 bsl 32000)},
              {"4 bignums of 2^32,000", lists:duplicate(4, 1 bsl 32000)},
              {"1,300-key map", maps:from_list([{I, I} || I <- lists:seq(1, 1300)])},
              {"4,000-element list", lists:seq(1, 4000)}],
    Timed = [{Name, time_submit(Shape)} || {Name, Shape} <- Shapes],
    io:format("normal-scheduler NIF (py_nif:submit), hostile shapes, median / max of 21:~n"),
    [io:format("  ~-38s ~4s  ~6b / ~6b us~n", [Name, Answer, Median, Max])
     || {Name, {Answer, Median, Max}} <- Timed],
    Longest = lists:max([Max || {_, {_, _, Max}} <- Timed]),
    LongestMedian = lists:max([Median || {_, {_, Median, _}} <- Timed]),
    io:format("longest normal-scheduler NIF on hostile shapes: ~b us (worst median ~b us; target < 1000)~n",
              [Longest, LongestMedian]).

%% `{big | ok, MedianUs, MaxUs}' of `py_nif:submit/4' with `Term' (in a
%% request that fails at once on the worker: the term is copied, never
%% converted).
time_submit(Term) ->
    Request = py_request:resolve(Term),
    Runs = [begin
                Ref = make_ref(),
                {Us, Answer} = timer:tc(py_nif, submit, [any, Ref, Request, false]),
                _ = Answer =:= ok andalso receive {Ref, _} -> ok end,
                {Us, Answer}
            end || _ <- lists:seq(1, 21)],
    Times = lists:sort([Us || {Us, _} <- Runs]),
    {_, Answer} = hd(Runs),
    {atom_to_list(Answer), lists:nth(11, Times), lists:last(Times)}.

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
                        erlang:system_monitor(self(), [{long_schedule, 1}, {long_gc, 1}]),
                        Parent ! {self(), ready},
                        count_events([], [])
                end),
    receive {Pid, ready} -> Pid end.

%% long_schedule events, and long_gc ones (`{Pid, Ms}': when, in ms).
count_events(Events, GCs) ->
    receive
        {monitor, Who, long_schedule, Info} ->
            Where = {Who, proplists:get_value(timeout, Info),
                     proplists:get_value(in, Info), proplists:get_value(out, Info),
                     erlang:monotonic_time(millisecond)},
            count_events([Where | Events], GCs);
        {monitor, Who, long_gc, _Info} ->
            count_events(Events, [{Who, erlang:monotonic_time(millisecond)} | GCs]);
        {stop, From} -> From ! {self(), {lists:reverse(Events), GCs}}
    end.

stop_long_schedule_monitor(Pid) ->
    Pid ! {stop, self()},
    receive {Pid, N} -> N end.

%%% Parallel and distributed calls -------------------------------------

%% Scatter/gather of small calls over the local workers and over two peer
%% nodes (calls/s), and a call that releases the GIL (time.sleep) spread
%% over 4 workers versus 1. Starts (and stops) distribution and the peers
%% itself; says why when it cannot.
parallel_and_distributed() ->
    Calls = 10000,
    Args = [[I, 1] || I <- lists:seq(1, Calls)],
    Workers = length(py_pool:workers()),
    _ = py:scatter(operator, add, lists:sublist(Args, 500)),
    Local = elapsed_us(fun() -> py:scatter(operator, add, Args) end),
    io:format("scatter/gather ~b x operator.add, this node (~b workers): ~b calls/s~n",
              [Calls, Workers, round(Calls / (Local / 1.0e6))]),
    gil_releasing_call(Workers),
    case bench_distribution() of
        {ok, Started} ->
            try
                over_peers(Args),
                py_bench_pools:run()
            after
                Started andalso net_kernel:stop()
            end;
        {error, Why} ->
            io:format("scatter/gather over 2 peer nodes, pools: skipped (no distribution: ~p)~n",
                      [Why])
    end.

gil_releasing_call(Workers) when Workers >= 4 ->
    Sleeps = lists:duplicate(100, [0.01]),
    [One, Four] = [elapsed_us(fun() -> py:scatter(time, sleep, Sleeps, [{max_in_flight, N}]) end)
                   || N <- [1, 4]],
    io:format("100 x time.sleep(0.01): 1 in flight ~b ms, 4 in flight (4 workers) ~b ms~n",
              [One div 1000, Four div 1000]);
gil_releasing_call(Workers) ->
    io:format("100 x time.sleep(0.01) over 4 workers: skipped (~b workers)~n", [Workers]).

bench_distribution() ->
    case is_alive() of
        true ->
            {ok, false};
        false ->
            _ = os:cmd("epmd -daemon"),
            case net_kernel:start([list_to_atom("py_bench_" ++ os:getpid()), shortnames]) of
                {ok, _} -> {ok, true};
                {error, Why} -> {error, Why}
            end
    end.

over_peers(Args) ->
    Calls = length(Args),
    Names = ["py_bench_" ++ L ++ "_" ++ os:getpid() || L <- ["a", "b"]],
    Started = [py:start_node(Name) || Name <- Names],
    Peers = [P || {ok, P} <- Started],
    try
        case Peers of
            [_, _] ->
                _ = py:scatter(operator, add, lists:sublist(Args, 500), [{nodes, Peers}]),
                Remote = elapsed_us(fun() -> py:scatter(operator, add, Args, [{nodes, Peers}]) end),
                All = elapsed_us(fun() -> py:scatter(operator, add, Args, [{nodes, all}]) end),
                Counts = [length(erpc:call(P, py, workers, [])) || P <- Peers],
                io:format("scatter/gather ~b x operator.add, 2 peer nodes (~w workers): ~b calls/s~n",
                          [Calls, Counts, round(Calls / (Remote / 1.0e6))]),
                io:format("scatter/gather ~b x operator.add, this node and 2 peers: ~b calls/s~n",
                          [Calls, round(Calls / (All / 1.0e6))]);
            _ ->
                io:format("scatter/gather over 2 peer nodes: skipped (~p)~n",
                          [[E || {error, _} = E <- Started]])
        end
    after
        [py:stop_node(P) || P <- Peers]
    end.

elapsed_us(Fun) ->
    T0 = erlang:monotonic_time(microsecond),
    _ = Fun(),
    erlang:monotonic_time(microsecond) - T0.
