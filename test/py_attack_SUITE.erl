%%% @doc Attacks on py's promises: no stalled scheduler, no wrong value.
%%% One test per attack; the hardening work adds more (see issue 13).
%%%
%%% * A request's conversion runs on a worker, never on a scheduler thread:
%%%   Python code in a map key's `__hash__' cannot take a dirty scheduler,
%%%   and a call's timeout holds whatever the size of its request.
%%% * The normal-scheduler budget counts what a copy costs: bignums, funs,
%%%   improper tails, big tuples and maps go to a dirty scheduler
%%%   (`py_nif:submit/4' answers `big'), and so do callback replies.
%%% * Integers of any size convert exactly, or the call raises.
%%% * Jobs queued while a worker spins still wake the other idle workers.
-module(py_attack_SUITE).

-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").

-export([suite/0, all/0, init_per_suite/1, end_per_suite/1]).
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

suite() ->
    [{timetrap, {minutes, 3}}].

all() ->
    [hash_of_a_key_never_runs_on_a_dirty_scheduler, timeout_holds_for_a_large_request,
     hostile_shapes_leave_the_normal_scheduler, cheap_shapes_stay_on_the_normal_scheduler,
     hostile_shapes_still_convert, callback_reply_has_the_same_budget,
     big_integers_from_python, big_integers_to_python,
     integers_beyond_erlangs_limit_raise, queued_jobs_wake_every_idle_worker].

init_per_suite(Config) ->
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
    Config.

end_per_suite(_Config) ->
    py_test_util:stop().

error_of(Fun) ->
    py_test_util:error_of(Fun).

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
