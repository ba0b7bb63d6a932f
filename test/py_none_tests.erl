%%% @doc The `none' setting: the atom Python's `None' is, both ways
%%% (`undefined' by default; `nil' for Elixir, whose tests in test/elixir/
%%% cover the rest).
-module(py_none_tests).

-include_lib("eunit/include/eunit.hrl").

none_test_() ->
    {setup, fun py_test_util:start/0,
     fun(_) -> application:unset_env(py, none), py_test_util:stop() end,
     {inorder, [fun default/0, fun nil/0, fun bad/0, fun back_to_default/0]}}.

default() ->
    ?assertEqual(undefined, py:eval(<<"None">>)),
    ?assert(py:eval(<<"x is None">>, #{<<"x">> => undefined})),
    ?assertEqual(<<"[null, \"nil\"]">>, py:func(json, dumps, [[undefined, nil]])).

nil() ->
    with(nil),
    ?assertEqual(nil, py:eval(<<"None">>)),
    ?assertEqual([nil, {nil}, #{<<"k">> => nil}], py:eval(<<"[None, (None,), {'k': None}]">>)),
    ?assertEqual({true, true, false}, py:eval(<<"(x is None, y is None, z is None)">>,
                                              #{<<"x">> => nil, <<"y">> => undefined,
                                                <<"z">> => null})),
    ?assertEqual(<<"[null, null, \"null\"]">>, py:func(json, dumps, [[undefined, nil, null]])),
    %% A handle's value, a call's kwargs, a map key.
    ?assertEqual(nil, py:func(builtins, max, [[]], [{default, nil}])),
    ?assertEqual(<<"{None: None}">>, py:func(builtins, repr, [#{nil => undefined}])),
    ?assertEqual([nil, nil], py:value(py:func(builtins, list, [[nil, undefined]], [],
                                              [{return, handle}]))).

bad() ->
    [begin
         _ = py:stop(),
         ok = application:set_env(py, none, Bad),
         ?assertMatch({error, {bad_config, none, Bad, "expected an atom" ++ _}}, py:start())
     end || Bad <- [true, false, "nil", <<"nil">>, 0, {nil}]].

back_to_default() ->
    application:unset_env(py, none),
    ok = py:restart(),
    ?assertEqual(undefined, py:eval(<<"None">>)),
    ?assertEqual(<<"\"nil\"">>, py:func(json, dumps, [nil])).

%% py restarted with `none' set to `Atom'.
with(Atom) ->
    ok = application:set_env(py, none, Atom),
    ok = py:restart().
