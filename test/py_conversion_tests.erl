%%% @doc The term conversion table of the README ("Term conversion"), row
%%% by row, both ways.
-module(py_conversion_tests).

-include_lib("eunit/include/eunit.hrl").

conversion_test_() ->
    {setup, fun py_test_util:start/0, fun(_) -> py_test_util:stop() end,
     [{"integers", fun integers/0},
      {"floats and their special values", fun floats/0},
      {"booleans and None", fun booleans_and_none/0},
      {"atoms are beam.Atom", fun atoms/0},
      {"binaries: str when UTF-8, bytes otherwise", fun binaries/0},
      {"bytes and bytearray come back as binaries", fun bytes/0},
      {"lists and tuples", fun lists_and_tuples/0},
      {"maps and dicts", fun maps_and_dicts/0},
      {"pids and references are opaque and come back", fun pids_and_refs/0},
      {"other objects come back as handles", fun handles/0},
      {"a handle passed back is the very object", fun handle_identity/0},
      {"value/1 converts a handle deeply", fun value_of_handle/0},
      {"charlist option", fun charlists/0},
      {"return handle option", fun return_handle/0},
      {"charlists passed in stay lists", fun charlists_in/0}]}.

%% The Python type name of what an Erlang term became.
type_of(Term) ->
    py:eval(<<"type(x).__name__">>, #{x => Term}).

integers() ->
    ?assertEqual(<<"int">>, type_of(42)),
    ?assertEqual(<<"int">>, type_of(-7)),
    ?assertEqual(<<"int">>, type_of(1 bsl 200)),
    ?assertEqual(481229803398374426442198455156736, py:func(builtins, pow, [6, 42])),
    ?assertEqual(-(1 bsl 100), py:eval(<<"-(2**100)">>)),
    ?assertEqual(1 bsl 200, py:func(py_test_helpers, identity, [1 bsl 200])),
    ?assertEqual(-(1 bsl 64), py:func(py_test_helpers, identity, [-(1 bsl 64)])),
    ?assertEqual(16#7fffffffffffffff, py:eval(<<"2**63 - 1">>)),
    ?assertEqual(-16#8000000000000000, py:eval(<<"-2**63">>)),
    ?assertEqual(1 bsl 63, py:eval(<<"2**63">>)),
    ?assertEqual(<<"True">>, py:eval(<<"str(x == 2**200)">>, #{x => 1 bsl 200})).

floats() ->
    ?assertEqual(<<"float">>, type_of(2.5)),
    ?assertEqual(2.5, py:func(py_test_helpers, identity, [2.5])),
    ?assertEqual(nan, py:eval(<<"float('nan')">>)),
    ?assertEqual(inf, py:eval(<<"float('inf')">>)),
    ?assertEqual('-inf', py:eval(<<"float('-inf')">>)),
    ?assertEqual(0.1, py:eval(<<"0.1">>)).

booleans_and_none() ->
    ?assertEqual(<<"bool">>, type_of(true)),
    ?assertEqual(<<"bool">>, type_of(false)),
    ?assertEqual(<<"NoneType">>, type_of(undefined)),
    ?assertEqual(true, py:eval(<<"True">>)),
    ?assertEqual(false, py:eval(<<"1 > 2">>)),
    ?assertEqual(undefined, py:eval(<<"None">>)).

atoms() ->
    ?assertEqual(<<"Atom">>, type_of(hello)),
    ?assertEqual(true, py:eval(<<"isinstance(x, str) and x == 'hello'">>, #{x => hello})),
    ?assertEqual(hello, py:func(py_test_helpers, identity, [hello])),
    ?assertEqual('with space', py:func(py_test_helpers, identity, ['with space'])),
    ?assertEqual(made, py:eval(<<"__import__('beam').Atom('made')">>)),
    %% A plain str never becomes an atom.
    ?assertEqual(<<"made">>, py:eval(<<"'made'">>)).

binaries() ->
    ?assertEqual(<<"str">>, type_of(<<"text">>)),
    ?assertEqual(<<"str">>, type_of(<<"héllo"/utf8>>)),
    ?assertEqual(<<"bytes">>, type_of(<<255, 0, 1>>)),
    ?assertEqual(<<"héllo"/utf8>>, py:func(py_test_helpers, identity, [<<"héllo"/utf8>>])),
    ?assertEqual(<<255, 0, 1>>, py:func(py_test_helpers, identity, [<<255, 0, 1>>])),
    ?assertEqual(<<>>, py:func(py_test_helpers, identity, [<<>>])),
    ?assertEqual(5, py:func(builtins, len, [<<"héllo"/utf8>>])).

bytes() ->
    ?assertEqual(<<"abc">>, py:eval(<<"b'abc'">>)),
    ?assertEqual(<<1, 2, 3>>, py:eval(<<"bytearray([1, 2, 3])">>)).

lists_and_tuples() ->
    ?assertEqual(<<"list">>, type_of([1, 2])),
    ?assertEqual(<<"list">>, type_of([])),
    ?assertEqual(<<"tuple">>, type_of({1, 2})),
    ?assertEqual(<<"tuple">>, type_of({})),
    ?assertEqual([1, [2, {3, <<"x">>}]], py:func(py_test_helpers, identity, [[1, [2, {3, <<"x">>}]]])),
    ?assertEqual({}, py:eval(<<"()">>)),
    ?assertEqual([], py:eval(<<"[]">>)).

maps_and_dicts() ->
    ?assertEqual(<<"dict">>, type_of(#{a => 1})),
    ?assertEqual(#{<<"a">> => 1, 2 => [3]}, py:eval(<<"{'a': 1, 2: [3]}">>)),
    ?assertEqual(#{}, py:eval(<<"{}">>)),
    M = #{key => <<"v">>, 1 => #{nested => true}, {1, 2} => 3},
    ?assertEqual(M, py:func(py_test_helpers, identity, [M])).

pids_and_refs() ->
    Self = self(),
    Ref = make_ref(),
    ?assertEqual(<<"Pid">>, type_of(Self)),
    ?assertEqual(<<"Ref">>, type_of(Ref)),
    ?assertEqual({Self, Ref}, py:func(py_test_helpers, identity, [{Self, Ref}])),
    %% Hashable and comparable: usable as dict keys.
    ?assertEqual(true, py:eval(<<"len({a: 1, b: 2}) == 1 and a == b">>, #{a => Self, b => Self})).

handles() ->
    {'$py', <<"datetime.date">>, R} = py:func(datetime, date, [2024, 2, 29]),
    ?assert(is_reference(R)),
    {'$py', <<"range">>, _} = py:func(builtins, range, [3]),
    {'$py', <<"set">>, _} = py:eval(<<"{1, 2}">>),
    {'$py', <<"module">>, _} = py:eval(<<"__import__('math')">>),
    {'$py', <<"builtin_function_or_method">>, _} = py:const(math, sqrt),
    %% Subclasses keep their type: no lossy conversion.
    {'$py', <<"collections.OrderedDict">>, _} = py:func(collections, 'OrderedDict', []).

handle_identity() ->
    H = py:func(py_test_helpers, make_tracked, [<<"identity">>]),
    ?assertEqual(true, py:func(py_test_helpers, same_object, [H, H])),
    ?assertEqual(<<"identity">>, py:attr(H, name)),
    %% Inside containers too.
    ?assertEqual(true, py:eval(<<"x[0] is x[1]['k']">>, #{x => [H, #{k => H}]})).

value_of_handle() ->
    L = py:init(builtins, list, [[3, 1, 2]]),
    undefined = py:method(L, sort, []),
    ?assertEqual([1, 2, 3], py:value(L)),
    D = py:init(builtins, dict, [], [{a, 1}]),
    ?assertEqual(#{<<"a">> => 1}, py:value(D)),
    %% No value mapping: the handle stays a handle.
    {'$py', <<"datetime.date">>, _} = py:value(py:func(datetime, date, [2024, 1, 1])).

charlists() ->
    ?assertEqual("héllo", py:func(py_test_helpers, identity, [<<"héllo"/utf8>>], [], [{strings, charlist}])),
    ?assertEqual(#{"k" => ["v"]}, py:value(#{<<"k">> => [<<"v">>]}, [{strings, charlist}])).

return_handle() ->
    {'$py', <<"list">>, _} = H = py:func(builtins, list, [[1, 2]], [], [{return, handle}]),
    ?assertEqual([1, 2], py:value(H)).

charlists_in() ->
    ?assertEqual(<<"list">>, type_of("abc")),
    ?assertEqual("abc", py:func(py_test_helpers, identity, ["abc"])).
