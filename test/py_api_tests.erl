%%% @doc The public API of `py' (issue 3, "The original API in full"):
%%% keyword arguments in every form, module-level calls with dotted names,
%%% objects and in-place methods, one test at least for every builtin and
%%% operator wrapper, the non-Python additions and bad input. The README's
%%% examples are run by py_readme_tests.
-module(py_api_tests).

-include_lib("eunit/include/eunit.hrl").

%% A Python exception of class Type: in a test body, and as a test item.
-define(PYERR(Type, Expr), ?assertError({python, Type, _, _}, Expr)).
-define(_PYERR(Type, Expr), ?_assertError({python, Type, _, _}, Expr)).

%% All groups run with the application started, once. It is stopped
%% afterwards when it was not running before, so that the next test module
%% starts it with its own settings.
api_test_() ->
    {setup, fun start/0, fun stop/1,
     [{"keyword arguments", kwargs_tests()},
      {"module level", module_level_tests()},
      {"resolution errors", resolution_errors_tests()},
      {"objects", objects_tests()},
      {"builtins", builtins_tests()},
      {"operators", operators_tests()},
      {"non-Python additions", additions_tests()},
      {"source code and values", source_options_tests()},
      {"bad input", bad_input_tests()}]}.

start() ->
    WasRunning = lists:keymember(py, 1, application:which_applications()),
    ok = py:start(),
    WasRunning.

stop(true) -> ok;
stop(false) -> ok = py:stop().

%% A Python exception's message, for checking what an error names.
py_message(Fun) ->
    try Fun() of
        Value -> erlang:error({expected_python_error, Value})
    catch
        error:{python, _Type, Message, _Traceback} -> Message
    end.

contains(Haystack, Needle) ->
    binary:match(Haystack, Needle) =/= nomatch.

%%% ------------------------------------------------------------------
%%% Keyword arguments
%%% ------------------------------------------------------------------

kwargs_tests() ->
    Forms = [[{base, 2}], [{"base", 2}], [{<<"base">>, 2}],
             #{base => 2}, #{"base" => 2}, #{<<"base">> => 2}],
    [{lists:flatten(io_lib:format("int kwargs ~p", [Kw])),
      ?_assertEqual(42, py:func(builtins, int, [<<"101010">>], Kw))}
     || Kw <- Forms]
    ++ [{"the original's dict: keys become strings",
         ?_assertEqual(#{<<"a">> => 1, <<"b">> => 2},
                       py:dict([{"a", 1}, {"b", 2}]))},
        {"kwargs on init",
         ?_assertEqual(#{<<"a">> => 1},
                       py:value(py:attr(py:init(collections, 'UserDict', [], #{a => 1}),
                                        data)))},
        {"kwargs on method",
         ?_assertEqual(2000,
                       py:attr(py:method(py:init(datetime, date, [1923, 4, 2]),
                                         replace, [], [{year, 2000}]),
                               year))},
        {"kwargs on a dotted func/3",
         ?_assertEqual(42, py:func('builtins.int', [<<"101010">>], [{base, 2}]))},
        {"empty kwargs", ?_assertEqual(42, py:func(builtins, int, [<<"42">>], []))},
        {"empty kwargs map", ?_assertEqual(42, py:func(builtins, int, [<<"42">>], #{}))},
        {"a key that is not a name",
         ?_assertError({py_badarg, bad_kwargs, 1}, py:func(builtins, dict, [], [{1, 2}]))},
        {"kwargs that are not a list or map",
         ?_assertError({py_badarg, bad_kwargs, foo}, py:func(builtins, dict, [], foo))},
        {"an element that is not a pair",
         ?_assertError({py_badarg, bad_kwargs, {a}}, py:func(builtins, dict, [], [{a}]))},
        {"an improper kwargs list",
         ?_assertError({py_badarg, improper_list, _},
                       py:func(builtins, dict, [], [{a, 1} | b]))},
        {"an unknown keyword is Python's TypeError",
         ?_assertError({python, 'TypeError', _, _},
                       py:func(builtins, int, [<<"1">>], [{nope, 2}]))}].

%%% ------------------------------------------------------------------
%%% Module level: func, const, dotted names
%%% ------------------------------------------------------------------

module_level_tests() ->
    [{"func/1 with a dotted name",
      ?_assertMatch({'$py', <<"datetime.datetime">>, _}, py:func('datetime.datetime.now'))},
     {"func/1 with a binary dotted name",
      ?_assertEqual(py:func(os, getcwd), py:func(<<"os.getcwd">>))},
     {"func/2 module and function",
      ?_assertEqual(list_to_binary(element(2, file:get_cwd())), py:func(os, getcwd))},
     {"func/2 dotted name and args", ?_assertEqual(65536.0, py:func('math.pow', [2, 16]))},
     {"func/3 module, function, args",
      ?_assertEqual(<<"a/b">>, py:func('os.path', join, [<<"a">>, <<"b">>]))},
     {"func/4", ?_assertEqual(255, py:func(builtins, int, [<<"ff">>], [{base, 16}]))},
     {"func/5 with options",
      ?_assertEqual("0xff", py:func(builtins, hex, [255], [], [{strings, charlist}]))},
     {"func on a handle", ?_assertEqual(3, py:func(py:const(builtins, len), [[a, b, c]]))},
     {"const/1 dotted", ?_assertEqual(math:pi(), py:const('math.pi'))},
     {"const/2", ?_assertEqual(math:pi(), py:const(math, pi))},
     {"const/3 float", ?_assertEqual(math:pi(), py:const(math, pi, float))},
     {"const/3 int", ?_assertEqual(3, py:const(math, pi, int))},
     {"const/3 str", ?_assertEqual(<<"3.141592653589793">>, py:const(math, pi, str))},
     {"const/3 with an unknown type",
      ?_assertError({py_badarg, bad_type, complex}, py:const(math, pi, complex))},
     {"a submodule that is imported on demand (longest prefix)",
      ?_assertEqual(<<"a%20b">>, py:func('urllib.parse.quote', [<<"a b">>]))},
     {"a dotted constant inside a package", ?_assertEqual(<<"/">>, py:const('os.path.sep'))},
     {"init/1 dotted",
      ?_assertMatch({'$py', <<"collections.UserDict">>, _}, py:init('collections.UserDict'))},
     {"init/3 dotted with kwargs",
      ?_assertEqual(#{<<"a">> => 1, <<"b">> => 2},
                    py:value(py:attr(py:init('collections.UserDict', [],
                                             [{"a", 1}, {"b", 2}]),
                                     data)))},
     {"init/2 dotted with args",
      ?_assertEqual(<<"1923-04-02">>, py:str(py:init('datetime.date', [1923, 4, 2])))},
     {"init/4", ?_assertEqual(3600, py:attr(py:init(datetime, timedelta, [], [{hours, 1}]),
                                            seconds))}].

resolution_errors_tests() ->
    [{"a missing attribute names the module and the part",
      ?_assert(contains(py_message(fun() -> py:const('math.nosuch') end),
                        <<"'math' has no attribute 'nosuch'">>))},
     {"a missing attribute of a submodule",
      ?_assert(contains(py_message(fun() -> py:func('os.path.nosuch', []) end),
                        <<"'os.path' has no attribute 'nosuch'">>))},
     {"a missing module names it",
      ?_assertError({python, 'ModuleNotFoundError', <<"No module named 'nosuchmod'">>, _},
                    py:func('nosuchmod.f', []))},
     {"a missing module in func/3",
      ?_assertError({python, 'ModuleNotFoundError', _, _}, py:func(nosuchmod, f, []))},
     {"a missing function in func/3",
      ?_assert(contains(py_message(fun() -> py:func(math, nosuch, []) end),
                        <<"'math' has no attribute 'nosuch'">>))},
     {"const/2 of a missing name names the module",
      ?_assert(contains(py_message(fun() -> py:const(math, nosuch) end),
                        <<"'math' has no attribute 'nosuch'">>))},
     {"a missing function given as a binary names the module",
      ?_assert(contains(py_message(fun() -> py:func(math, <<"nosuch">>, []) end),
                        <<"'math' has no attribute 'nosuch'">>))},
     {"attr/2 of a missing attribute names the object's type",
      ?_assert(contains(py_message(fun() -> py:attr(py:range(3), nosuch) end),
                        <<"'range' object has no attribute 'nosuch'">>))},
     {"a missing class in init",
      ?_assert(contains(py_message(fun() -> py:init('collections.Nope') end),
                        <<"'collections' has no attribute 'Nope'">>))},
     {"an empty part of a dotted name",
      ?_assert(contains(py_message(fun() -> py:const('math..pi') end), <<"math..pi">>))},
     {"a name that is not a name",
      ?_assertError({py_badarg, bad_name, 42}, py:func(42, []))},
     {"a const that is not a name",
      ?_assertError({py_badarg, bad_name, 42}, py:const(42))},
     {"an improper list as a name",
      ?_assertError({py_badarg, bad_name, _}, py:const([$m | x]))}].

%%% ------------------------------------------------------------------
%%% Objects
%%% ------------------------------------------------------------------

objects_tests() ->
    [{"the datetime walk-through with fixed times", fun datetime_walkthrough/0},
     {"init always returns a handle",
      ?_assertMatch({'$py', <<"dict">>, _}, py:init(builtins, dict))},
     {"a handle's value", ?_assertEqual(#{}, py:value(py:init(builtins, dict)))},
     {"list.sort in place", fun in_place_sort/0},
     {"list.append in place", fun in_place_append/0},
     {"dict.update in place with kwargs", fun in_place_update/0},
     {"method/2 on a value", ?_assertEqual(<<"ABC">>, py:method(<<"abc">>, upper))},
     {"method/3 on a value",
      ?_assertEqual([<<"a">>, <<"b">>], py:method(<<"a,b">>, split, [<<",">>]))},
     {"method/4 with kwargs",
      ?_assertEqual([<<"a">>, <<"b,c">>],
                    py:method(<<"a,b,c">>, split, [<<",">>], [{maxsplit, 1}]))},
     {"method/5 with options",
      ?_assertEqual("ABC", py:method(<<"abc">>, upper, [], [], [{strings, charlist}]))},
     {"a missing method",
      ?_assertError({python, 'AttributeError', _, _}, py:method(<<"abc">>, nosuch, []))}].

datetime_walkthrough() ->
    Earlier = py:init(datetime, datetime, [2014, 12, 25, 23, 16, 57, 146812]),
    Later = py:init(datetime, datetime, [2014, 12, 25, 23, 19, 51, 934212]),
    ?assertEqual(<<"2014.12.25 23:16:57">>,
                 py:method(Earlier, strftime, [<<"%Y.%m.%d %H:%M:%S">>])),
    ?assertEqual(2014, py:attr(Earlier, year)),
    ?assertEqual(146812, py:attr(Earlier, microsecond)),
    Diff = py:sub(Later, Earlier),
    ?assertMatch({'$py', <<"datetime.timedelta">>, _}, Diff),
    ?assertEqual({0, 174, 787400},
                 {py:attr(Diff, days), py:attr(Diff, seconds), py:attr(Diff, microseconds)}),
    ?assertEqual(2.9, py:attr(Diff, seconds) / 60).

in_place_sort() ->
    L = py:init(builtins, list, [[3, 1, 2]]),
    ?assertEqual(undefined, py:method(L, sort, [])),
    ?assertEqual([1, 2, 3], py:value(L)),
    ?assertEqual(undefined, py:method(L, sort, [], [{reverse, true}])),
    ?assertEqual([3, 2, 1], py:value(L)).

in_place_append() ->
    L = py:init(builtins, list),
    py:method(L, append, [a]),
    py:method(L, append, [<<"b">>]),
    ?assertEqual([a, <<"b">>], py:value(L)),
    ?assertEqual(2, py:len(L)).

in_place_update() ->
    D = py:init(builtins, dict),
    py:method(D, update, [], [{a, 1}]),
    py:method(D, update, [#{b => 2}]),
    ?assertEqual(#{<<"a">> => 1, b => 2}, py:value(D)).

%%% ------------------------------------------------------------------
%%% Builtins: one test at least for each wrapper
%%% ------------------------------------------------------------------

builtins_tests() ->
    [{"abs", ?_assertEqual({3, 2.5}, {py:abs(-3), py:abs(-2.5)})},
     {"abs of a non-number", ?_PYERR('TypeError', py:abs(foo))},
     {"all", ?_assertEqual({false, true, true},
                           {py:all([true, false]), py:all([1, 2]), py:all([])})},
     {"any", ?_assertEqual({true, false}, {py:any([0, 1]), py:any([])})},
     {"ascii", ?_assertEqual(<<"'\\u03bb'">>, py:ascii(<<"λ"/utf8>>))},
     {"bin", ?_assertEqual(<<"0b101">>, py:bin(5))},
     {"bool/0,1", ?_assertEqual({false, false, true, false},
                                {py:bool(), py:bool([]), py:bool([0]), py:bool(<<>>)})},
     {"bytearray/0,1", ?_assertEqual({<<>>, <<0, 0>>}, {py:bytearray(), py:bytearray(2)})},
     {"bytearray/2", ?_assertEqual(<<195, 169>>, py:bytearray(<<"é"/utf8>>, <<"utf-8">>))},
     {"bytearray/3",
      ?_assertEqual(<<"?">>, py:bytearray(<<"é"/utf8>>, <<"ascii">>, <<"replace">>))},
     {"bytes/0,1", ?_assertEqual({<<>>, <<1, 2, 3>>}, {py:bytes(), py:bytes([1, 2, 3])})},
     {"bytes/2", ?_assertEqual(<<233>>, py:bytes(<<"é"/utf8>>, <<"latin-1">>))},
     {"bytes/3", ?_assertEqual(<<>>, py:bytes(<<"é"/utf8>>, <<"ascii">>, <<"ignore">>))},
     {"bytes of a string without an encoding", ?_PYERR('TypeError', py:bytes(<<"abc">>))},
     {"callable", ?_assertEqual({true, false},
                                {py:callable(py:const(builtins, len)), py:callable(1)})},
     {"chr", ?_assertEqual(<<"λ"/utf8>>, py:chr(955))},
     {"chr out of range", ?_PYERR('ValueError', py:chr(-1))},
     {"compile/3", fun compile_eval/0},
     {"compile/4", ?_assertEqual(<<"code">>, py:ptype(py:compile(<<"x = 1">>, <<"<t>">>, exec,
                                                                [{dont_inherit, true}])))},
     {"compile of bad source", ?_PYERR('SyntaxError', py:compile(<<"6 *">>, <<"<t>">>, eval))},
     {"complex/0,1,2", fun complex_numbers/0},
     {"dict/0", ?_assertEqual(#{}, py:dict())},
     {"dict/1 of a proplist (kwargs)",
      ?_assertEqual(#{<<"a">> => 1, <<"b">> => 2}, py:dict([{a, 1}, {<<"b">>, 2}]))},
     {"dict/1 of a map", ?_assertEqual(#{1 => 2}, py:dict(#{1 => 2}))},
     {"dict/1 of a handle",
      ?_assertEqual(#{<<"a">> => 1},
                    py:dict(py:init(collections, 'OrderedDict', [], [{a, 1}])))},
     {"dict/2", ?_assertEqual(#{1 => a, <<"b">> => 2}, py:dict([{1, a}], [{b, 2}]))},
     {"dir/1 elides after 28 names", fun dir_elided/0},
     {"dir/1 of a short result is not elided",
      ?_assertEqual(py:pdir(py:object()), py:dir(py:object()))},
     {"dir/0", ?_assert(lists:member(<<"__builtins__">>, py:dir()))},
     {"divmod", ?_assertEqual({{3, 1}, {-4, 1}}, {py:divmod(7, 2), py:divmod(-7, 2)})},
     {"enumerate/1", ?_assertEqual([{0, a}, {1, b}], py:pylist(py:enumerate([a, b])))},
     {"enumerate/2", ?_assertEqual([{1, a}, {2, b}], py:pylist(py:enumerate([a, b], 1)))},
     {"filter with None",
      ?_assertEqual([1, 2], py:pylist(py:filter(undefined, [0, 1, false, 2])))},
     {"filter with a callable",
      ?_assertEqual([<<"1">>], py:pylist(py:filter(py:methodcaller(isdigit),
                                                    [<<"1">>, <<"a">>])))},
     {"float/0,1", ?_assertEqual({0.0, 1.5, '-inf', nan},
                                 {py:float(), py:float(<<"1.5">>), py:float(<<"-inf">>),
                                  py:float(<<"nan">>)})},
     {"float of a non-number", ?_PYERR('ValueError', py:float(<<"x">>))},
     {"format/1,2", ?_assertEqual({<<"42">>, <<"3.14">>, <<"  ab">>},
                                  {py:format(42), py:format(3.14159, <<".2f">>),
                                   py:format(<<"ab">>, <<">4">>)})},
     {"frozenset/0,1", fun frozensets/0},
     {"getattr/2", ?_assertEqual(1923, py:getattr(a_date(), year))},
     {"getattr/3", ?_assertEqual(none_here, py:getattr(a_date(), nosuch, none_here))},
     {"getattr of a missing attribute", ?_PYERR('AttributeError', py:getattr(a_date(), nosuch))},
     {"hasattr", ?_assertEqual({true, false},
                               {py:hasattr(a_date(), year), py:hasattr(a_date(), nosuch)})},
     {"hash", fun hashes/0},
     {"hex", ?_assertEqual(<<"0xff">>, py:hex(255))},
     {"id", fun ids/0},
     {"int/0,1,2", ?_assertEqual({0, 3, 255, 42},
                                 {py:int(), py:int(3.9), py:int(<<"ff">>, 16),
                                  py:int(<<"101010">>, #{base => 2})})},
     {"int of a non-number", ?_PYERR('ValueError', py:int(<<"z">>))},
     {"isinstance", ?_assertEqual({true, false},
                                  {py:isinstance(1, py:const(builtins, int)),
                                   py:isinstance(<<"1">>, py:const(builtins, int))})},
     {"issubclass", ?_assert(py:issubclass(py:const(builtins, bool),
                                           py:const(builtins, int)))},
     {"iter/1 and next/1,2", fun iterators/0},
     {"iter/2 with a sentinel", fun iter_sentinel/0},
     {"len", ?_assertEqual({3, 1, 1}, {py:len([a, b, c]), py:len(<<"λ"/utf8>>),
                                       py:len(#{a => 1})})},
     {"len of a number", ?_PYERR('TypeError', py:len(1))},
     {"pylist/0,1", ?_assertEqual({[], [0, 1, 2], [a]},
                                  {py:pylist(), py:pylist(py:range(3)), py:pylist({a})})},
     {"map/2", ?_assertEqual([1, 2], py:pylist(py:map(py:const(builtins, abs), [-1, -2])))},
     {"map/3", ?_assertEqual([11, 22], py:pylist(py:map(py:const(operator, add),
                                                        [1, 2], [10, 20])))},
     {"max/1..4", ?_assertEqual({3, 2, 3, 4}, {py:max([1, 3, 2]), py:max(1, 2),
                                               py:max(1, 3, 2), py:max(1, 4, 3, 2)})},
     {"max of nothing", ?_PYERR('ValueError', py:max([]))},
     {"memoryview", fun memoryviews/0},
     {"min/1..4", ?_assertEqual({1, 1, 1, 0}, {py:min([2, 1, 3]), py:min(1, 2),
                                               py:min(3, 1, 2), py:min(1, 4, 0, 2)})},
     {"object", ?_assertMatch({'$py', <<"object">>, _}, py:object())},
     {"oct", ?_assertEqual(<<"0o10">>, py:oct(8))},
     {"open/1,2,3", fun files/0},
     {"ord", ?_assertEqual({97, 955}, {py:ord(<<"a">>), py:ord(<<"λ"/utf8>>)})},
     {"pow/2,3", ?_assertEqual({1024, 24, 0.25}, {py:pow(2, 10), py:pow(2, 10, 1000),
                                                  py:pow(2, -2)})},
     {"range/1,2,3", ?_assertEqual({[0, 1, 2], [7, 8], [0, 3, 6, 9]},
                                   {py:pylist(py:range(3)), py:pylist(py:range(7, 9)),
                                    py:pylist(py:range(0, 10, 3))})},
     {"range is a handle", ?_assertMatch({'$py', <<"range">>, _}, py:range(7, 42))},
     {"reversed", ?_assertEqual([3, 2, 1], py:pylist(py:reversed([1, 2, 3])))},
     {"round/1,2", ?_assertEqual({2, 4, 0.67}, {py:round(2.5), py:round(3.5),
                                                py:round(0.666, 2)})},
     {"set/0,1", fun sets/0},
     {"slice/1,2,3", ?_assertEqual({[a, b], [b, c], [a, c]},
                                   {py:getitem([a, b, c, d], py:slice(2)),
                                    py:getitem([a, b, c, d], py:slice(1, 3)),
                                    py:getitem([a, b, c, d], py:slice(0, 4, 2))})},
     {"sorted/1", ?_assertEqual([1, 2, 3], py:sorted([3, 1, 2]))},
     {"sorted/2 with a key", ?_assertEqual([<<"a">>, <<"bb">>, <<"ccc">>],
                                           py:sorted([<<"bb">>, <<"ccc">>, <<"a">>],
                                                     [{key, py:const(builtins, len)}]))},
     {"sorted/2 reversed", ?_assertEqual([3, 2, 1], py:sorted([1, 3, 2], #{reverse => true}))},
     {"sum/1,2", ?_assertEqual({6, 13}, {py:sum([1, 2, 3]), py:sum([1, 2], 10)})},
     {"tuple/0,1", ?_assertEqual({{}, {1, 2}}, {py:tuple(), py:tuple([1, 2])})},
     {"type/1", ?_assertEqual(<<"<class 'int'>">>, py:repr(py:type(1)))},
     {"type/3", fun new_class/0},
     {"vars/1 of an instance",
      ?_assertEqual(#{<<"data">> => #{<<"a">> => 1}},
                    py:vars(py:init(collections, 'UserDict', [], [{a, 1}])))},
     {"vars/1 elides after 28 entries", fun vars_elided/0},
     {"vars/0", ?_assertEqual(<<"__main__">>, maps:get(<<"__name__">>, py:vars()))},
     {"vars of a value without __dict__", ?_PYERR('TypeError', py:vars(1))},
     {"zip/1,2,3", ?_assertEqual({[{1}, {2}], [{1, a}, {2, b}], [{1, a, x}]},
                                 {py:pylist(py:zip([1, 2])),
                                  py:pylist(py:zip([1, 2], [a, b])),
                                  py:pylist(py:zip([1, 2], [a, b], [x]))})}].

a_date() ->
    py:init(datetime, date, [1923, 4, 2]).

compile_eval() ->
    Code = py:compile(<<"6 * 7">>, <<"<test>">>, eval),
    ?assertMatch({'$py', <<"code">>, _}, Code),
    %% Python's eval needs a namespace when no Python code is running.
    ?assertEqual(42, py:func(builtins, eval, [Code, #{}])).

complex_numbers() ->
    ?assertEqual(<<"0j">>, py:repr(py:complex())),
    ?assertEqual(<<"(1.5+0j)">>, py:repr(py:complex(1.5))),
    C = py:complex(1, 2),
    ?assertEqual(<<"(1+2j)">>, py:repr(C)),
    ?assertEqual(2.0, py:attr(C, imag)),
    ?assert(py:eq(py:complex(<<"1+2j">>), C)).

dir_elided() ->
    Full = py:pdir([]),
    ?assert(length(Full) > 28),
    ?assert(lists:member(<<"append">>, Full)),
    Elided = py:dir([]),
    ?assertEqual(29, length(Elided)),
    ?assertEqual(lists:sublist(Full, 28) ++ ['...'], Elided).

vars_elided() ->
    Full = py:pvars(py:const(os, path)),
    ?assert(map_size(Full) > 28),
    Elided = py:vars(py:const(os, path)),
    ?assertEqual(29, map_size(Elided)),
    ?assertEqual(map_size(Full) - 28, maps:get('...', Elided)),
    %% The smallest keys are kept (values may be handles, new at each call).
    ?assertEqual(lists:sublist(lists:sort(maps:keys(Full)), 28),
                 lists:sort(maps:keys(maps:remove('...', Elided)))).

frozensets() ->
    ?assertEqual(0, py:len(py:frozenset())),
    F = py:frozenset([1, 1, 2]),
    ?assertMatch({'$py', <<"frozenset">>, _}, F),
    ?assertEqual({2, true, false}, {py:len(F), py:contains(F, 2), py:contains(F, 3)}).

sets() ->
    ?assertEqual(0, py:len(py:set())),
    S = py:set([a, a, b]),
    ?assertMatch({'$py', <<"set">>, _}, S),
    ?assertEqual([a, b], lists:sort(py:pylist(S))).

hashes() ->
    ?assertEqual(42, py:hash(42)),
    ?assert(is_integer(py:hash(<<"abc">>))),
    ?assertEqual(py:hash(<<"abc">>), py:hash(<<"abc">>)),
    ?PYERR('TypeError', py:hash([1])).

ids() ->
    H = py:object(),
    ?assertEqual(py:id(H), py:id(H)),
    ?assertNotEqual(py:id(H), py:id(py:object())).

iterators() ->
    I = py:iter([1, 2]),
    ?assertEqual(<<"list_iterator">>, py:ptype(I)),
    ?assertEqual({ok, 1}, py:next(I)),
    ?assertEqual(2, py:next(I, done)),
    ?assertEqual(done, py:next(I, done)),
    ?assertEqual(done, py:next(I)).

iter_sentinel() ->
    Next = py:attr(py:iter([1, 2, 3, 4]), '__next__'),
    ?assertEqual([1, 2], py:pylist(py:iter(Next, 3))).

memoryviews() ->
    %% Not UTF-8, so it arrives as bytes, which have a buffer.
    M = py:memoryview(<<255, 254, 253>>),
    ?assertMatch({'$py', <<"memoryview">>, _}, M),
    ?assertEqual({3, <<255, 254, 253>>}, {py:len(M), py:bytes(M)}).

files() ->
    Path = filename:join(test_dir(), "py_api_tests_open.txt"),
    ok = file:write_file(Path, <<"café\n"/utf8>>),
    try
        F1 = py:open(list_to_binary(Path)),
        ?assertEqual(<<"café\n"/utf8>>, py:method(F1, read, [])),
        py:method(F1, close, []),
        F2 = py:open(list_to_binary(Path), <<"rb">>),
        ?assertEqual(<<"café\n"/utf8>>, py:method(F2, read, [])),
        py:method(F2, close, []),
        F3 = py:open(list_to_binary(Path), <<"r">>, [{encoding, <<"latin-1">>}]),
        ?assertEqual(<<"cafÃ©\n"/utf8>>, py:method(F3, read, [])),
        py:method(F3, close, [])
    after
        file:delete(Path)
    end,
    ?PYERR('FileNotFoundError', py:open(list_to_binary(Path))).

test_dir() ->
    Dir = filename:join(filename:basedir(user_cache, "py-tests"), os:getpid()),
    ok = filelib:ensure_dir(filename:join(Dir, "x")),
    Dir.

new_class() ->
    Point = py:type(<<"Point">>, {}, #{<<"x">> => 0, <<"y">> => 0}),
    %% Made outside any module, the class counts as a builtin one.
    ?assertEqual(<<"<class 'Point'>">>, py:repr(Point)),
    P = py:func(Point, []),
    ?assertEqual(<<"Point">>, py:ptype(P)),
    ?assertEqual(0, py:attr(P, x)),
    ?assert(py:isinstance(P, Point)).

%%% ------------------------------------------------------------------
%%% Operators: one test at least for each wrapper
%%% ------------------------------------------------------------------

operators_tests() ->
    [{"lt", ?_assertEqual({true, false}, {py:lt(1, 2), py:lt(<<"b">>, <<"a">>)})},
     {"le", ?_assertEqual({true, false}, {py:le(2, 2), py:le(7, 6)})},
     {"eq", ?_assertEqual({true, false, true},
                          {py:eq(42, 42), py:eq(1, <<"1">>), py:eq([1, a], [1, a])})},
     {"ne", ?_assertEqual({true, false}, {py:ne(1, 2), py:ne(a, a)})},
     {"ge", ?_assertEqual({true, false}, {py:ge(2, 2), py:ge(1, 2)})},
     {"gt", ?_assertEqual({true, false}, {py:gt(7, 6), py:gt(6, 7)})},
     {"comparing what Python cannot order", ?_PYERR('TypeError', py:lt(1, <<"a">>))},
     {"not-", ?_assertEqual({true, false}, {py:'not-'(0), py:'not-'([1])})},
     {"truth", ?_assertEqual({false, true}, {py:truth(<<>>), py:truth(<<"x">>)})},
     {"is-, is-not", fun identity/0},
     {"add", ?_assertEqual({42, <<"ab">>, [1, 2]},
                           {py:add(37, 5), py:add(<<"a">>, <<"b">>), py:add([1], [2])})},
     {"floordiv", ?_assertEqual({42, -1}, {py:floordiv(462, 11), py:floordiv(-1, 2)})},
     {"floordiv by zero", ?_PYERR('ZeroDivisionError', py:floordiv(1, 0))},
     {"index", ?_assertEqual(5, py:index(5))},
     {"index of a float", ?_PYERR('TypeError', py:index(1.5))},
     {"mod", ?_assertEqual({1, <<"n=5">>}, {py:mod(7, 3), py:mod(<<"n=%d">>, 5)})},
     {"mul", ?_assertEqual({42, <<"abab">>}, {py:mul(7, 6), py:mul(<<"ab">>, 2)})},
     {"matmul", fun matmul/0},
     {"neg", ?_assertEqual(-5, py:neg(5))},
     {"pos", ?_assertEqual(-5, py:pos(-5))},
     {"sub", ?_assertEqual(42, py:sub(-108, -150))},
     {"truediv", ?_assertEqual(42.0, py:truediv(462, 11))},
     {"truediv by zero", ?_PYERR('ZeroDivisionError', py:truediv(1, 0))},
     {"and-", ?_assertEqual(12, py:'and-'(60, 13))},
     {"or-", ?_assertEqual(61, py:'or-'(60, 13))},
     {"xor", ?_assertEqual(49, py:'xor'(60, 13))},
     {"inv", ?_assertEqual(-61, py:inv(60))},
     {"invert", ?_assertEqual(-61, py:invert(60))},
     {"lshift", ?_assertEqual(240, py:lshift(60, 2))},
     {"rshift", ?_assertEqual(15, py:rshift(60, 2))},
     {"concat", ?_assertEqual({[1, 2], <<"ab">>, {a, b}},
                              {py:concat([1], [2]), py:concat(<<"a">>, <<"b">>),
                               py:concat({a}, {b})})},
     {"concat of numbers", ?_PYERR('TypeError', py:concat(1, 2))},
     {"contains", ?_assertEqual({true, false, true},
                                {py:contains([1, 2], 2), py:contains(<<"abc">>, <<"x">>),
                                 py:contains(#{a => 1}, a)})},
     {"countOf", ?_assertEqual(2, py:countOf([a, b, a], a))},
     {"getitem", ?_assertEqual({b, 1, <<"c">>},
                               {py:getitem([a, b], 1), py:getitem(#{a => 1}, a),
                                py:getitem(<<"abc">>, -1)})},
     {"getitem out of range", ?_PYERR('IndexError', py:getitem([a], 5))},
     {"indexOf", ?_assertEqual(1, py:indexOf([a, b, a], b))},
     {"indexOf of a missing element", ?_PYERR('ValueError', py:indexOf([a], z))},
     {"length_hint/1,2", ?_assertEqual({35, 3, 7},
                                       {py:length_hint(py:range(7, 42)),
                                        py:length_hint([a, b, c]),
                                        py:length_hint(py:object(), 7)})},
     {"attrgetter", ?_assertEqual({1923, <<"date">>},
                                  {py:func(py:attrgetter(year), [a_date()]),
                                   py:func(py:attrgetter('__class__.__name__'),
                                           [a_date()])})},
     {"itemgetter", ?_assertEqual([{0, b}, {1, a}],
                                  py:sorted([{1, a}, {0, b}],
                                            [{key, py:itemgetter(0)}]))},
     {"methodcaller/1", ?_assertEqual(<<"AB">>, py:func(py:methodcaller(upper), [<<"ab">>]))},
     {"methodcaller/2", ?_assertEqual(<<"bbb">>,
                                      py:func(py:methodcaller(replace, [<<"a">>, <<"b">>]),
                                              [<<"aaa">>]))},
     {"methodcaller/3", ?_assertEqual([<<"a">>, <<"b c">>],
                                      py:func(py:methodcaller(split, [], [{maxsplit, 1}]),
                                              [<<"a b c">>]))},
     {"methodcaller/2 with args that are not a list",
      ?_assertError({py_badarg, bad_args, x}, py:methodcaller(upper, x))},
     {"abs and pow serve operator too",
      ?_assertEqual({py:func(operator, abs, [-4]), py:func(operator, pow, [6, 42])},
                    {py:abs(-4), py:pow(6, 42)})}].

identity() ->
    H = py:object(),
    ?assert(py:'is-'(H, H)),
    ?assert(py:'is-'(undefined, undefined)),
    ?assertNot(py:'is-'(H, py:object())),
    ?assert(py:'is-not'(H, py:object())),
    ?assertNot(py:'is-not'(H, H)).

matmul() ->
    %% A class with `@' defined, made in one expression (no shared state).
    M = py:eval(<<"type('M', (), {'__matmul__': lambda self, other: 42})()">>),
    ?assertEqual(42, py:matmul(M, M)),
    ?PYERR('TypeError', py:matmul(1, 2)).

%%% ------------------------------------------------------------------
%%% Non-Python additions
%%% ------------------------------------------------------------------

additions_tests() ->
    [{"pdir/1 is complete", ?_assertEqual(py:func(builtins, dir, [[]]), py:pdir([]))},
     {"pdir/0", ?_assert(lists:member(<<"__name__">>, py:pdir()))},
     {"pvars/1 of a class (a mapping proxy)",
      ?_assertEqual(1, maps:get(<<"x">>, py:pvars(py:type(<<"P">>, {}, #{<<"x">> => 1}))))},
     {"pvars/0", ?_assertEqual(<<"__main__">>, maps:get(<<"__name__">>, py:pvars()))},
     {"ptype of values and handles",
      ?_assertEqual([<<"int">>, <<"str">>, <<"list">>, <<"datetime.date">>, <<"range">>],
                    [py:ptype(X) || X <- [1, <<"a">>, [], a_date(), py:range(2)]])},
     {"prepr shows what handles hold",
      ?_assertEqual([{'$py', <<"range">>, <<"range(0, 3)">>},
                     {1, #{a => {'$py', <<"datetime.date">>,
                                 <<"datetime.date(1923, 4, 2)">>}}},
                     x],
                    py:prepr([py:range(3), {1, #{a => a_date()}}, x]))},
     {"prepr of an improper list", ?_assertEqual([a | b], py:prepr([a | b]))}].

%%% ------------------------------------------------------------------
%%% Source code and values, with per-call options
%%% ------------------------------------------------------------------

source_options_tests() ->
    [{"eval/2", ?_assertEqual(42, py:eval(<<"x + 1">>, #{x => 41}))},
     {"exec/1,2", ?_assertEqual({undefined, undefined},
                                {py:exec(<<"pass">>), py:exec(<<"y = x">>, #{x => 1})})},
     {"value/2 with charlists",
      ?_assertEqual(["a"], py:value(py:init(builtins, list, [[<<"a">>]]),
                                    [{strings, charlist}]))},
     {"eval/3 with charlists",
      ?_assertEqual(["ab", "c"], py:eval(<<"s.split(',')">>, #{s => <<"ab,c">>},
                                         [{strings, charlist}]))},
     {"eval/3 keeping the result in Python",
      ?_assertMatch({'$py', <<"list">>, _}, py:eval(<<"[1, 2]">>, #{}, [{return, handle}]))},
     {"eval/3 with a timeout",
      ?_assertError({py_timeout, 100},
                    py:eval(<<"any(n < 0 for n in __import__('itertools').count())">>, #{},
                            [{timeout, 100}]))},
     {"exec/3", ?_assertEqual(undefined, py:exec(<<"x = 1">>, #{}, [{timeout, 5000}]))}].

%%% ------------------------------------------------------------------
%%% Bad input: clear errors, no crash
%%% ------------------------------------------------------------------

bad_input_tests() ->
    [{"a fun as an argument",
      ?_assertError({py_badarg, unsupported_fun, _}, py:len(fun() -> ok end))},
     {"an improper list as an argument",
      ?_assertError({py_badarg, improper_list, _}, py:pylist([1 | 2]))},
     {"a map with an unhashable key",
      ?_assertError({py_badarg, unhashable_key, _}, py:dict(#{[1] => 2}))},
     {"the app still answers", ?_assertEqual(3, py:add(1, 2))}].
