%%% @doc Python source and state from Erlang: eval/exec, contexts, lazy
%%% iterators and streams.
-module(py_state_SUITE).

-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").

-export([suite/0, all/0, init_per_suite/1, end_per_suite/1]).
-export([vars_are_per_call/1, bad_context_option/1, context_worker_death/1,
         eval_and_exec/1, vars_visible_in_nested_scopes/1, syntax_error/1, bad_code/1,
         exec_defines_callable_functions/1,
         contexts_are_separate/1, context_thread_affinity/1, context_freed_with_owner/1,
         named_context/1, with_context_covers_builtins/1,
         iter_next_fold/1, stream_window/1, stream_error_keeps_items/1,
         stream_closed_when_consumer_dies/1, stream_close_early/1]).

%% A hang fails its test case in minutes, not after CT's default 30.
suite() ->
    [{timetrap, {minutes, 3}}].

all() ->
    [vars_are_per_call, bad_context_option, eval_and_exec, vars_visible_in_nested_scopes, syntax_error, bad_code,
     exec_defines_callable_functions,
     contexts_are_separate, context_thread_affinity, context_freed_with_owner,
     named_context, with_context_covers_builtins,
     iter_next_fold, stream_window, stream_error_keeps_items,
     stream_closed_when_consumer_dies, stream_close_early, context_worker_death].

init_per_suite(Config) ->
    ok = py_test_util:start(),
    Config.

end_per_suite(_Config) ->
    py_test_util:stop().

error_of(Fun) ->
    py_test_util:error_of(Fun).

%%% eval / exec --------------------------------------------------------

eval_and_exec(_Config) ->
    ?assertEqual(2, py:eval(<<"1+1">>)),
    ?assertEqual(7, py:eval(["3", <<" + ">>, "4"])),
    ?assertEqual(42, py:eval(<<"x * y">>, #{x => 6, <<"y">> => 7})),
    undefined = py:exec(<<"state_suite_value = 41">>),
    ?assertEqual(42, py:eval(<<"state_suite_value + 1">>)).

vars_visible_in_nested_scopes(_Config) ->
    ?assertEqual([10, 20, 30], py:eval(<<"[k * i for i in items]">>, #{k => 10, items => [1, 2, 3]})),
    ?assertEqual(15, py:eval(<<"(lambda: k + 5)()">>, #{k => 10})),
    undefined = py:exec(<<"def uses_k():\n    return k * 2\nresult = uses_k()">>, #{k => 21}),
    ?assertEqual(42, py:eval(<<"result">>)).

syntax_error(_Config) ->
    {python, 'SyntaxError', Msg, _} = error_of(fun() -> py:eval(<<"1 +">>) end),
    ?assert(is_binary(Msg)),
    {python, 'SyntaxError', Msg2, _} = error_of(fun() -> py:exec(<<"x = 1\ny = (\n">>) end),
    ?assertNotEqual(nomatch, binary:match(Msg2, <<"line">>)).

bad_code(_Config) ->
    {py_badarg, bad_code, <<>>} = error_of(fun() -> py:eval(<<>>) end),
    {py_badarg, bad_code, _} = error_of(fun() -> py:exec(<<"   \n">>) end),
    {py_badarg, bad_code, 42} = error_of(fun() -> py:eval(42) end),
    {py_badarg, bad_code, <<255, 254>>} = error_of(fun() -> py:eval(<<255, 254>>) end).

exec_defines_callable_functions(_Config) ->
    _ = py:exec(<<"def state_suite_twice(x):\n    return 2 * x">>),
    ?assertEqual(42, py:func('__main__', state_suite_twice, [21])).

%%% Contexts -------------------------------------------------------------

contexts_are_separate(_Config) ->
    Parent = self(),
    Run = fun(Value) ->
                  spawn_link(fun() ->
                                     Ctx = py:context(),
                                     _ = py:exec(<<"name = v">>, #{v => Value}, [{context, Ctx}]),
                                     timer:sleep(50),
                                     Parent ! {self(), py:eval(<<"name">>, #{}, [{context, Ctx}])}
                             end)
          end,
    A = Run(<<"a">>),
    B = Run(<<"b">>),
    receive {A, VA} -> ?assertEqual(<<"a">>, VA) end,
    receive {B, VB} -> ?assertEqual(<<"b">>, VB) end,
    %% Neither leaked into the shared namespace.
    {python, 'NameError', _, _} = error_of(fun() -> py:eval(<<"name">>) end).

context_thread_affinity(_Config) ->
    Ctx = py:context(),
    Idents = [py:func(py_test_helpers, thread_ident, [], [], [{context, Ctx}])
              || _ <- lists:seq(1, 50)],
    ?assertEqual(1, length(lists:usort(Idents))),
    %% So sqlite3 objects, which must stay on their thread, work.
    Conn = py:func(sqlite3, connect, [<<":memory:">>], [], [{context, Ctx}]),
    _ = py:method(Conn, execute, [<<"create table t (x)">>], [], [{context, Ctx}]),
    ?assertEqual([{0}], py:method(py:method(Conn, execute, [<<"select count(*) from t">>], [], [{context, Ctx}]),
                                  fetchall, [], [], [{context, Ctx}])).

context_freed_with_owner(_Config) ->
    Name = <<"in-context">>,
    Parent = self(),
    Owner = spawn(fun() ->
                          Ctx = py:context(),
                          _ = py:exec(<<"import py_test_helpers\nkept = py_test_helpers.make_tracked(n)">>,
                                      #{n => Name}, [{context, Ctx}]),
                          Parent ! {ready, self()},
                          receive stop -> ok end
                  end),
    receive {ready, Owner} -> ok end,
    ?assertEqual(false, py:func(py_test_helpers, is_freed, [Name])),
    Owner ! stop,
    ?assert(py_test_util:wait_until(fun() -> py:func(py_test_helpers, is_freed, [Name]) end, 250)).

named_context(_Config) ->
    Ctx = py:context(state_suite_named),
    _ = py:exec(<<"shared = 1">>, #{}, [{context, Ctx}]),
    Parent = self(),
    spawn(fun() ->
                  Same = py:context(state_suite_named),
                  Parent ! {seen, py:eval(<<"shared + 1">>, #{}, [{context, Same}])}
          end),
    receive {seen, V} -> ?assertEqual(2, V) end,
    ok = py:drop_context(state_suite_named),
    py_context_closed = error_of(fun() -> py:eval(<<"shared">>, #{}, [{context, Ctx}]) end).

with_context_covers_builtins(_Config) ->
    Ctx = py:context(),
    py:with_context(Ctx, fun() ->
                                 _ = py:exec(<<"def plus_one(x):\n    return x + 1">>),
                                 ?assertEqual(3, py:func('__main__', plus_one, [2])),
                                 ?assertEqual(4, py:add(2, 2))
                         end),
    {python, 'AttributeError', _, _} = error_of(fun() -> py:func('__main__', plus_one, [2]) end).

%%% Iterators and streams --------------------------------------------------

iter_next_fold(_Config) ->
    It = py:iter(py:func(builtins, range, [3], [], [{return, handle}])),
    ?assertEqual({ok, 0}, py:next(It)),
    ?assertEqual({ok, 1}, py:next(It)),
    ?assertEqual({ok, 2}, py:next(It)),
    ?assertEqual(done, py:next(It)),
    ?assertEqual(4950, py:fold(fun(X, Acc) -> X + Acc end, 0,
                               py:func(builtins, range, [100], [], [{return, handle}]))),
    %% A generator is not materialised: folding stops nowhere near its end.
    ?assertEqual(10, py:fold(fun(_, Acc) -> Acc + 1 end, 0, py:iter([a, b, c, d, e, f, g, h, i, j]))).

stream_window(_Config) ->
    Window = 10,
    S = py:stream(py_test_helpers, counting, [1000], [{window, Window}]),
    consume_checking_window(S, Window, 0).

consume_checking_window(S, Window, Consumed) ->
    receive
        {py_stream, S, {item, Item}} ->
            ?assertEqual(Consumed, Item),
            Produced = py:func(py_test_helpers, produced, []),
            %% Never more than a window ahead of what was acknowledged.
            ?assert(Produced - Consumed =< Window),
            py:stream_ack(S),
            consume_checking_window(S, Window, Consumed + 1);
        {py_stream, S, done} ->
            ?assertEqual(1000, Consumed)
    after 10000 ->
        ct:fail(stream_stalled)
    end.

stream_error_keeps_items(_Config) ->
    S = py:stream(py_test_helpers, failing_after, [5], [{window, 3}]),
    Items = collect(S, []),
    ?assertMatch({[0, 1, 2, 3, 4], {python, 'ValueError', <<"stream broke after 5">>, _}}, Items).

collect(S, Acc) ->
    receive
        {py_stream, S, {item, I}} -> py:stream_ack(S), collect(S, [I | Acc]);
        {py_stream, S, done} -> {lists:reverse(Acc), done};
        {py_stream, S, {error, E}} -> {lists:reverse(Acc), E}
    after 10000 -> ct:fail(stream_stalled)
    end.

stream_closed_when_consumer_dies(_Config) ->
    Parent = self(),
    Consumer = spawn(fun() ->
                             S = py:stream(py_test_helpers, counting, [1000000], [{window, 5}]),
                             receive {py_stream, S, {item, 0}} -> Parent ! got_one end,
                             receive never -> ok end
                     end),
    receive got_one -> ok end,
    ?assertEqual(false, py:func(py_test_helpers, finally_ran, [])),
    exit(Consumer, kill),
    ?assert(py_test_util:wait_until(fun() -> py:func(py_test_helpers, finally_ran, []) end, 250)),
    ?assert(py:func(py_test_helpers, produced, []) =< 5).

stream_close_early(_Config) ->
    S = py:stream(py_test_helpers, counting, [1000000], [{window, 5}]),
    {ok, 0} = py:stream_next(S, 5000),
    {ok, 1} = py:stream_next(S, 5000),
    ok = py:stream_close(S),
    ?assert(py_test_util:wait_until(fun() -> py:func(py_test_helpers, finally_ran, []) end, 250)).

vars_are_per_call(_Config) ->
    ?assertEqual(<<"secret">>, py:eval(<<"state_suite_k">>, #{state_suite_k => <<"secret">>})),
    %% Not left behind in the shared namespace...
    {python, 'NameError', _, _} = error_of(fun() -> py:eval(<<"state_suite_k">>) end),
    %% ...nor seen by a concurrent call.
    Parent = self(),
    Pids = [spawn(fun() ->
                          Parent ! {self(), K, py:eval(<<"[0 for _ in range(200000)] and state_suite_k">>,
                                                       #{state_suite_k => K})}
                  end) || K <- lists:seq(1, 4)],
    [receive {P, K, V} -> ?assertEqual(K, V) end || P <- Pids],
    %% What exec defines with Vars stays; the Vars do not.
    undefined = py:exec(<<"state_suite_f = lambda: state_suite_k * 2">>, #{state_suite_k => 21}),
    ?assertEqual(42, py:eval(<<"state_suite_f()">>)),
    {python, 'NameError', _, _} = error_of(fun() -> py:eval(<<"state_suite_k">>) end).

bad_context_option(_Config) ->
    {py_badarg, bad_option, {context, foo}} =
        error_of(fun() -> py:eval(<<"1">>, #{}, [{context, foo}]) end).

context_worker_death(_Config) ->
    %% The worker of a context dies while the call is blocked in C code
    %% (which no interrupt reaches): the caller learns it at once.
    {'$py_context', _, Member} = Ctx = py:context(),
    Self = self(),
    Caller = spawn(fun() ->
                           Self ! {self(), catch py:func(time, sleep, [30], [], [{context, Ctx}])}
                   end),
    timer:sleep(200),
    exit(py_pool:owner(Member), kill),
    receive
        {Caller, {'EXIT', {{py_worker_down, _}, _}}} -> ok;
        {Caller, Other} -> ct:fail({unexpected, Other})
    after 5000 ->
        ct:fail(caller_hangs)
    end,
    %% The context died with its worker.
    py_context_closed = error_of(fun() -> py:eval(<<"1">>, #{}, [{context, Ctx}]) end).
