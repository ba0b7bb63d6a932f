%%% @doc Python talks back: messages, calls into Erlang, the calling
%%% process, and conversions of the user's own.
-module(py_beam_SUITE).

-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").

-export([suite/0, all/0, init_per_suite/1, end_per_suite/1]).
-export([ten_thousand_messages/1, messages_from_python_threads/1,
         call_erlang_function/1, erlang_error_becomes_exception/1,
         call_timeout/1, erlang_side_dies/1, reentrant_calls/1, self_is_the_caller/1,
         custom_encoder_and_decoder/1]).

%% A hang fails its test case in minutes, not after CT's default 30.
suite() ->
    [{timetrap, {minutes, 3}}].

all() ->
    [ten_thousand_messages, messages_from_python_threads, call_erlang_function,
     erlang_error_becomes_exception, call_timeout, erlang_side_dies, reentrant_calls,
     self_is_the_caller, custom_encoder_and_decoder].

init_per_suite(Config) ->
    ok = py_test_util:start(),
    Config.

end_per_suite(_Config) ->
    py_test_util:stop().

collect(Tag, N) ->
    collect(Tag, N, []).

collect(_Tag, 0, Acc) ->
    lists:reverse(Acc);
collect(Tag, N, Acc) ->
    receive
        Msg when element(1, Msg) =:= Tag -> collect(Tag, N - 1, [Msg | Acc])
    after 5000 ->
        ct:fail({missing_messages, N})
    end.

ten_thousand_messages(_Config) ->
    N = 10000,
    ?assertEqual(N, py:func(py_test_helpers, send_many, [self(), N])),
    Got = collect(msg, N),
    %% None lost, none duplicated, in order.
    ?assertEqual([{msg, I} || I <- lists:seq(0, N - 1)], Got),
    receive Extra -> ct:fail({extra, Extra}) after 100 -> ok end.

messages_from_python_threads(_Config) ->
    ?assertEqual(4000, py:func(py_test_helpers, send_from_threads, [self(), 4, 1000])),
    Got = collect(t, 4000),
    ?assertEqual(lists:sort([{t, T, I} || T <- lists:seq(0, 3), I <- lists:seq(0, 999)]),
                 lists:sort(Got)).

call_erlang_function(_Config) ->
    ?assertEqual([1, 2, 3, 4, 5], py:func(py_test_helpers, call_erlang, [lists, seq, [1, 5]])),
    ?assertEqual(<<"abc">>, py:func(py_test_helpers, call_erlang, [erlang, list_to_binary, ["abc"]])).

erlang_error_becomes_exception(_Config) ->
    ?assertEqual({error, foo}, py:func(py_test_helpers, erlang_error_of, [erlang, error, [foo]])),
    ?assertEqual({throw, 42}, py:func(py_test_helpers, erlang_error_of, [erlang, throw, [42]])),
    ?assertEqual({error, undef}, py:func(py_test_helpers, erlang_error_of, [no_such_module, f, []])),
    %% Uncaught in Python, it reaches the Erlang caller as a Python error.
    {python, 'beam.ErlangError', Msg, _} =
        try py:func(py_test_helpers, call_erlang, [erlang, error, [badarg]])
        catch error:E -> E
        end,
    ?assertNotEqual(nomatch, binary:match(Msg, <<"badarg">>)).

call_timeout(_Config) ->
    Msg = py:func(py_test_helpers, call_timeout, [timer, sleep, [2000], 0.1]),
    ?assertNotEqual(nomatch, binary:match(Msg, <<"no reply within 0.1 s">>)).

erlang_side_dies(_Config) ->
    Msg = py:func(py_test_helpers, call_died, [py_test_erl, kill_self, []]),
    ?assertNotEqual(nomatch, binary:match(Msg, <<"died without replying">>)).

reentrant_calls(_Config) ->
    %% Erlang -> Python -> Erlang -> Python -> Erlang -> Python.
    ?assertEqual(3, py:func(py_test_helpers, nested, [3])).

self_is_the_caller(_Config) ->
    ?assertEqual(self(), py:eval(<<"__import__('beam').self()">>)),
    Parent = self(),
    Child = spawn(fun() -> Parent ! {child, py:eval(<<"__import__('beam').self()">>)} end),
    receive {child, Pid} -> ?assertEqual(Child, Pid) end.

custom_encoder_and_decoder(_Config) ->
    %% Without conversions, a Point is a handle.
    {'$py', <<"py_test_helpers.Point">>, _} = py:func(py_test_helpers, make_point, [1, 2]),
    _ = py:func(py_test_helpers, register_point_conversions, []),
    try
        ?assertEqual({point, 1, 2}, py:func(py_test_helpers, make_point, [1, 2])),
        ?assertEqual({<<"Point">>, 3, 4}, py:func(py_test_helpers, describe_point, [{point, 3, 4}])),
        %% Round trip.
        ?assertEqual({point, 5, 6}, py:func(py_test_helpers, identity, [{point, 5, 6}])),
        %% Other tuples are untouched.
        ?assertEqual({other, 1}, py:func(py_test_helpers, identity, [{other, 1}]))
    after
        py:func(py_test_helpers, unregister_point_conversions, [])
    end,
    {'$py', <<"py_test_helpers.Point">>, _} = py:func(py_test_helpers, make_point, [1, 2]).
