%%% @doc `make bench', the per-call figures: the p50 of a sequential
%%% `operator.add' loop over several VM starts (the spread, not one lucky
%%% run), CPU-bound Python in a worker against the same code in a
%%% standalone `python3', and how long the submitting NIF holds its
%%% scheduler when OS processes compete for every core. Prints only.
-module(py_bench_call).

-export([run/0, p50_once/0]).

-define(VM_STARTS, 5).
-define(CALLS, 20000).

%% The CPU-bound code: the same source in both places, timed by Python.
-define(CPU_CODE,
        "import timeit\n"
        "def work():\n"
        "    s = 0\n"
        "    for i in range(2000000):\n"
        "        s += i * i % 7\n"
        "    return s\n"
        "best = min(timeit.repeat(work, number=1, repeat=5))\n").

-spec run() -> ok.
run() ->
    spread(),
    cpu_bound(),
    under_cpu_hogs(),
    ok.

%% @private Run in a fresh VM by spread/0: prints the p50 in microseconds.
-spec p50_once() -> ok.
p50_once() ->
    ok = py:start(),
    [3 = py:func(operator, add, [1, 2]) || _ <- lists:seq(1, 2000)],
    Times = lists:sort([begin
                            T0 = erlang:monotonic_time(nanosecond),
                            3 = py:func(operator, add, [1, 2]),
                            erlang:monotonic_time(nanosecond) - T0
                        end || _ <- lists:seq(1, ?CALLS)]),
    io:format("~.2f~n", [lists:nth(?CALLS div 2, Times) / 1000]).

spread() ->
    Paths = lists:append([["-pa", filename:dirname(code:which(M))] || M <- [py, ?MODULE]]),
    Erl = filename:join([code:root_dir(), "bin", "erl"]),
    Cmd = lists:flatten([Erl, " -noshell ", lists:join(" ", Paths),
                         " -eval 'py_bench_call:p50_once(), halt().'"]),
    P50s = [parse_float(os:cmd(Cmd)) || _ <- lists:seq(1, ?VM_STARTS)],
    io:format("operator.add(1, 2), 1 caller, p50 over ~b VM starts: ~ts us~n",
              [?VM_STARTS, lists:join(", ", [io_lib:format("~.2f", [P]) || P <- P50s, is_float(P)])]).

parse_float(Text) ->
    Last = lists:last([""] ++ string:lexemes(Text, "\n")),
    try list_to_float(string:trim(Last)) catch error:badarg -> Text end.

cpu_bound() ->
    py:exec(list_to_binary(?CPU_CODE)),
    InWorker = py:eval(<<"best">>),
    #{python := Python} = py_nif:build_info(),
    File = filename:join(os:getenv("TMPDIR", "/tmp"), "py_bench_cpu.py"),
    ok = file:write_file(File, [?CPU_CODE, "print(best)\n"]),
    Out = os:cmd(binary_to_list(Python) ++ " " ++ File),
    _ = file:delete(File),
    case parse_float(Out) of
        Alone when is_float(Alone) ->
            io:format("CPU-bound Python (2M-iteration loop): ~.1f ms in a worker, ~.1f ms in "
                      "standalone python3: ~.2fx~n",
                      [InWorker * 1000, Alone * 1000, InWorker / Alone]);
        _ ->
            io:format("CPU-bound Python: standalone python3 failed: ~ts~n", [Out])
    end.

%% The submitting NIFs timed while two OS processes spin (as many as this
%% machine's cores, at least two): how many of 50,000 calls held their
%% scheduler over 1 ms. `py_nif:submit_wait/2' may wait for its reply (the
%% handoff); `py_nif:submit/4' never does: both are preempted alike.
under_cpu_hogs() ->
    Hogs = [open_port({spawn, "sh -c 'while :; do :; done'"}, [])
            || _ <- lists:seq(1, max(2, erlang:system_info(logical_processors_available)))],
    Request = py_request:set_flags(py_request:call({operator, add}, [1, 2], []),
                                   py_request:flags(binary, value, true)),
    try
        Wait = nif_times(fun(Ref) -> py_nif:submit_wait(Ref, Request) end),
        Plain = nif_times(fun(Ref) -> py_nif:submit(any, Ref, Request, false) end),
        io:format("submitting NIF with ~b CPU hogs, over 1 ms of 50,000 calls (max): "
                  "submit_wait ~b (~.1f ms), submit ~b (~.1f ms)~n",
                  [length(Hogs) | lists:append([[N, Max] || {N, Max} <- [Wait, Plain]])])
    after
        [kill_hog(P) || P <- Hogs]
    end.

nif_times(Submit) ->
    Times = [begin
                 Ref = make_ref(),
                 T0 = erlang:monotonic_time(nanosecond),
                 R = Submit(Ref),
                 T = erlang:monotonic_time(nanosecond) - T0,
                 case R of
                     {Ref, _} -> ok;
                     ok -> receive {Ref, _} -> ok end
                 end,
                 T
             end || _ <- lists:seq(1, 50000)],
    {length([T || T <- Times, T > 1000000]), lists:max(Times) / 1.0e6}.

kill_hog(Port) ->
    case erlang:port_info(Port, os_pid) of
        {os_pid, Pid} -> _ = os:cmd("kill " ++ integer_to_list(Pid));
        undefined -> ok
    end,
    catch port_close(Port).
