%%% @doc Acceptance tests: the examples of the original LFE py README.
%%%
%%% `ex01'..`ex52' are the numbered examples of its "Erlang" section, with
%%% the values it shows, in our representation: a binary where it shows a
%%% string, a handle `{'$py', Type, Ref}' where it shows a tagged tuple, a
%%% map where it shows a dict's proplist. Values that depend on the clock
%%% are checked against the clock. The `lfe_*' cases are the examples of
%%% its LFE sections, as the same calls in Erlang syntax.
-module(py_original_SUITE).

-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").

-export([suite/0, all/0, groups/0, init_per_suite/1, end_per_suite/1]).
-export([ex01_get_versions/1, ex02_getcwd/1, ex03_now/1, ex04_isfile/1, ex05_isdir/1,
         ex06_int_kwargs/1, ex07_const/1, ex08_const_float/1, ex09_const_int/1,
         ex10_const_str/1, ex11_init_dict/1, ex12_init_userdict/1, ex13_init_date/1,
         ex14_to_17_now_strftime_attrs/1, ex18_to_22_later_minus_earlier/1,
         ex23_pycall_now/1, ex24_pycall_datetime/1,
         ex25_dict/1, ex26_dict_proplist/1, ex27_int/1, ex28_any/1, ex29_all/1,
         ex30_all_true/1, ex31_pow/1, ex32_round/1, ex33_range/1, ex34_len_range/1,
         ex35_pylist_range/1, ex36_length_pylist_range/1,
         ex37_add/1, ex38_mul/1, ex39_sub/1, ex40_truediv/1, ex41_floordiv/1,
         ex42_gt/1, ex43_le/1, ex44_eq/1, ex45_and/1, ex46_or/1, ex47_xor/1,
         ex48_inv/1, ex49_rshift/1, ex50_lshift/1, ex51_pylist/1, ex52_pylist_list/1]).
-export([lfe_metadata/1, lfe_calling_functions/1, lfe_module_constants/1,
         lfe_instantiation/1, lfe_calling_methods/1, lfe_attribute_values/1,
         lfe_operations_on_objects/1, lfe_dotted_names/1, lfe_pass_through/1,
         lfe_builtins/1, lfe_operators/1, lfe_non_python_additions/1]).

%% A hang fails its test case in minutes, not after CT's default 30.
suite() ->
    [{timetrap, {minutes, 3}}].

all() ->
    [{group, erlang}, {group, lfe}].

groups() ->
    [{erlang, [],
      [ex01_get_versions, ex02_getcwd, ex03_now, ex04_isfile, ex05_isdir,
       ex06_int_kwargs, ex07_const, ex08_const_float, ex09_const_int, ex10_const_str,
       ex11_init_dict, ex12_init_userdict, ex13_init_date,
       ex14_to_17_now_strftime_attrs, ex18_to_22_later_minus_earlier,
       ex23_pycall_now, ex24_pycall_datetime,
       ex25_dict, ex26_dict_proplist, ex27_int, ex28_any, ex29_all, ex30_all_true,
       ex31_pow, ex32_round, ex33_range, ex34_len_range, ex35_pylist_range,
       ex36_length_pylist_range,
       ex37_add, ex38_mul, ex39_sub, ex40_truediv, ex41_floordiv, ex42_gt, ex43_le,
       ex44_eq, ex45_and, ex46_or, ex47_xor, ex48_inv, ex49_rshift, ex50_lshift,
       ex51_pylist, ex52_pylist_list]},
     {lfe, [],
      [lfe_metadata, lfe_calling_functions, lfe_module_constants, lfe_instantiation,
       lfe_calling_methods, lfe_attribute_values, lfe_operations_on_objects,
       lfe_dotted_names, lfe_pass_through, lfe_builtins, lfe_operators,
       lfe_non_python_additions]}].

%% py is stopped afterwards when it was not running before, so that the
%% next suite starts it with its own settings.
init_per_suite(Config) ->
    WasRunning = lists:keymember(py, 1, application:which_applications()),
    ok = py:start(),
    [{py_was_running, WasRunning} | Config].

end_per_suite(Config) ->
    case ?config(py_was_running, Config) of
        true -> ok;
        false -> ok = py:stop()
    end.

%%% ------------------------------------------------------------------
%%% Helpers
%%% ------------------------------------------------------------------

%% A datetime handle's fields, as the original's tuple showed them.
fields(DateTime) ->
    [py:attr(DateTime, F) || F <- [year, month, day, hour, minute, second, microsecond]].

%% A `datetime.now()' handle is within a few seconds of the Erlang clock.
assert_now(DateTime) ->
    ?assertMatch({'$py', <<"datetime.datetime">>, _}, DateTime),
    Stamp = py:method(DateTime, timestamp, []),
    ?assert(abs(Stamp - erlang:system_time(millisecond) / 1000) < 5).

%% The original's strftime example (its `%m.d' is kept as written: a
%% literal `d').
expected_strftime(Format, DateTime) ->
    [Y, Mo, D, H, Mi, S, _] = fields(DateTime),
    Args = #{"%Y" => io_lib:format("~4..0B", [Y]), "%m" => io_lib:format("~2..0B", [Mo]),
             "%d" => io_lib:format("~2..0B", [D]), "%H" => io_lib:format("~2..0B", [H]),
             "%M" => io_lib:format("~2..0B", [Mi]), "%S" => io_lib:format("~2..0B", [S])},
    Parts = re:split(Format, "(%[YmdHMS])", [{return, list}, trim]),
    iolist_to_binary([maps:get(P, Args, P) || P <- Parts]).

%%% ------------------------------------------------------------------
%%% The Erlang section, examples 1 to 52
%%% ------------------------------------------------------------------

%% 1> 'py-util':'get-versions'().
ex01_get_versions(_Config) ->
    Versions = 'py-util':'get-versions'(),
    ?assertEqual(erlang:system_info(otp_release), proplists:get_value(erlang, Versions)),
    ?assertEqual(erlang:system_info(version), proplists:get_value(emulator, Versions)),
    ?assertEqual(erlang:system_info(driver_version),
                 proplists:get_value('driver-version', Versions)),
    ?assert(io_lib:printable_list(proplists:get_value(py, Versions))),
    [First | _] = proplists:get_value(python, Versions),
    ?assertEqual("3.", lists:sublist(First, 2)).

%% 2> py:func(os, getcwd).
ex02_getcwd(_Config) ->
    {ok, Cwd} = file:get_cwd(),
    ?assertEqual(unicode:characters_to_binary(Cwd), py:func(os, getcwd)).

%% 3> py:func('datetime.datetime', now).
ex03_now(_Config) ->
    assert_now(py:func('datetime.datetime', now)).

%% 4> py:func('os.path', isfile, [<<"/tmp">>]).
ex04_isfile(_Config) ->
    ?assertEqual(false, py:func('os.path', isfile, [<<"/tmp">>])).

%% 5> py:func('os.path', isdir, [<<"/tmp">>]).
ex05_isdir(_Config) ->
    ?assertEqual(true, py:func('os.path', isdir, [<<"/tmp">>])).

%% 6> py:func(builtins, int, [<<"101010">>], [{base, 2}]).
ex06_int_kwargs(_Config) ->
    ?assertEqual(42, py:func(builtins, int, [<<"101010">>], [{base, 2}])).

%% 7> py:const(math, pi).
ex07_const(_Config) ->
    ?assertEqual(3.141592653589793, py:const(math, pi)).

%% 8> py:const(math, pi, float).
ex08_const_float(_Config) ->
    ?assertEqual(3.141592653589793, py:const(math, pi, float)).

%% 9> py:const(math, pi, int).
ex09_const_int(_Config) ->
    ?assertEqual(3, py:const(math, pi, int)).

%% 10> py:const(math, pi, str).
ex10_const_str(_Config) ->
    ?assertEqual(<<"3.141592653589793">>, py:const(math, pi, str)).

%% 11> py:init(builtins, dict).  The original: {"dict",[]}.
ex11_init_dict(_Config) ->
    Dict = py:init(builtins, dict),
    ?assertMatch({'$py', <<"dict">>, _}, Dict),
    ?assertEqual(#{}, py:value(Dict)).

%% 12> py:init(collections, 'UserDict').  The original: {"UserDict",[]}.
ex12_init_userdict(_Config) ->
    UserDict = py:init(collections, 'UserDict'),
    ?assertMatch({'$py', <<"collections.UserDict">>, _}, UserDict),
    ?assertEqual(#{}, py:attr(UserDict, data)).

%% 13> py:init(datetime, date, [1923, 4, 2]).  The original: {"date",{1923,4,2}}.
ex13_init_date(_Config) ->
    Date = py:init(datetime, date, [1923, 4, 2]),
    ?assertMatch({'$py', <<"datetime.date">>, _}, Date),
    ?assertEqual({1923, 4, 2}, {py:attr(Date, year), py:attr(Date, month), py:attr(Date, day)}).

%% 14> Now = py:func('datetime.datetime', now).
%% 15> py:method(Now, strftime, [<<"%Y.%m.d %H:%M:%S">>]).
%% 16> py:attr(Now, year).
%% 17> py:attr(Now, microsecond).
ex14_to_17_now_strftime_attrs(_Config) ->
    Now = py:func('datetime.datetime', now),
    assert_now(Now),
    Format = <<"%Y.%m.d %H:%M:%S">>,
    ?assertEqual(expected_strftime(Format, Now), py:method(Now, strftime, [Format])),
    {{Year, _, _}, _} = calendar:local_time(),
    ?assert(abs(py:attr(Now, year) - Year) =< 1),
    Micro = py:attr(Now, microsecond),
    ?assert(is_integer(Micro) andalso Micro >= 0 andalso Micro < 1000000),
    ?assertEqual(Micro, binary_to_integer(py:method(Now, strftime, [<<"%f">>]))).

%% 18> Later = py:func('datetime.datetime', now).
%% 19> Earlier = Now.
%% 20> Diff = py:sub(Later, Earlier).  The original: {"timedelta",{0,174,787400}}.
%% 21> py:attr(Diff, seconds).
%% 22> py:attr(Diff, seconds) / 60.
ex18_to_22_later_minus_earlier(_Config) ->
    Now = py:func('datetime.datetime', now),
    timer:sleep(1100),
    Later = py:func('datetime.datetime', now),
    Earlier = Now,
    Diff = py:sub(Later, Earlier),
    ?assertMatch({'$py', <<"datetime.timedelta">>, _}, Diff),
    Seconds = py:attr(Diff, seconds),
    Total = py:method(Diff, total_seconds, []),
    ?assert(Total >= 1.1 andalso Total < 60),
    ?assertEqual({0, trunc(Total)}, {py:attr(Diff, days), Seconds}),
    ?assertEqual(Seconds / 60, py:attr(Diff, seconds) / 60),
    %% The same with the original's two times: its very values.
    Earlier2 = py:init(datetime, datetime, [2014, 12, 25, 23, 16, 57, 146812]),
    Later2 = py:init(datetime, datetime, [2014, 12, 25, 23, 19, 51, 934212]),
    Diff2 = py:sub(Later2, Earlier2),
    ?assertEqual({0, 174, 787400},
                 {py:attr(Diff2, days), py:attr(Diff2, seconds), py:attr(Diff2, microseconds)}),
    ?assertEqual(174, py:attr(Diff2, seconds)),
    ?assertEqual(2.9, py:attr(Diff2, seconds) / 60).

%% 23> py:pycall(datetime, 'datetime.now').
ex23_pycall_now(_Config) ->
    assert_now(py:pycall(datetime, 'datetime.now')).

%% 24> py:pycall(datetime, datetime, [1923, 4, 2, 0, 0, 0]).
%% The original: {"datetime",{1923,4,2,0,0,0,0,undefined}}.
ex24_pycall_datetime(_Config) ->
    DateTime = py:pycall(datetime, datetime, [1923, 4, 2, 0, 0, 0]),
    ?assertMatch({'$py', <<"datetime.datetime">>, _}, DateTime),
    ?assertEqual([1923, 4, 2, 0, 0, 0, 0], fields(DateTime)),
    ?assertEqual(undefined, py:attr(DateTime, tzinfo)).

%% 25> py:dict().  The original: {"dict",[]}; a dict's value is a map.
ex25_dict(_Config) ->
    ?assertEqual(#{}, py:dict()).

%% 26> py:dict([{"a", 1}, {"b", 2}]).  The original: {"dict",[{"b",2},{"a",1}]}.
ex26_dict_proplist(_Config) ->
    ?assertEqual(#{<<"a">> => 1, <<"b">> => 2}, py:dict([{"a", 1}, {"b", 2}])).

%% 27> py:int(<<"101010">>, [{base, 2}]).
ex27_int(_Config) ->
    ?assertEqual(42, py:int(<<"101010">>, [{base, 2}])).

%% 28> py:any([true, true, false, false, false, true]).
ex28_any(_Config) ->
    ?assertEqual(true, py:any([true, true, false, false, false, true])).

%% 29> py:all([true, true, false, false, false, true]).
ex29_all(_Config) ->
    ?assertEqual(false, py:all([true, true, false, false, false, true])).

%% 30> py:all([true, true, true]).
ex30_all_true(_Config) ->
    ?assertEqual(true, py:all([true, true, true])).

%% 31> py:pow(6, 42).
ex31_pow(_Config) ->
    ?assertEqual(481229803398374426442198455156736, py:pow(6, 42)).

%% 32> py:round(0.666666667, 5).
ex32_round(_Config) ->
    ?assertEqual(0.66667, py:round(0.666666667, 5)).

%% 33> py:range(7, 42).  The original: an ErlPort opaque term; here a handle.
ex33_range(_Config) ->
    Range = py:range(7, 42),
    ?assertMatch({'$py', <<"range">>, _}, Range),
    ?assertEqual(<<"range(7, 42)">>, py:repr(Range)).

%% 34> py:len(py:range(7, 42)).
ex34_len_range(_Config) ->
    ?assertEqual(35, py:len(py:range(7, 42))).

%% 35> py:pylist(py:range(7, 42)).  The original's shell elided it: [7,8,...|...].
ex35_pylist_range(_Config) ->
    ?assertEqual(lists:seq(7, 41), py:pylist(py:range(7, 42))).

%% 36> length(py:pylist(py:range(7, 42))).
ex36_length_pylist_range(_Config) ->
    ?assertEqual(35, length(py:pylist(py:range(7, 42)))).

%% 37> py:add(37, 5).
ex37_add(_Config) -> ?assertEqual(42, py:add(37, 5)).

%% 38> py:mul(7, 6).
ex38_mul(_Config) -> ?assertEqual(42, py:mul(7, 6)).

%% 39> py:sub(-108, -150).
ex39_sub(_Config) -> ?assertEqual(42, py:sub(-108, -150)).

%% 40> py:truediv(462, 11).
ex40_truediv(_Config) -> ?assertEqual(42.0, py:truediv(462, 11)).

%% 41> py:floordiv(462, 11).
ex41_floordiv(_Config) -> ?assertEqual(42, py:floordiv(462, 11)).

%% 42> py:gt(7, 6).
ex42_gt(_Config) -> ?assertEqual(true, py:gt(7, 6)).

%% 43> py:le(7, 6).
ex43_le(_Config) -> ?assertEqual(false, py:le(7, 6)).

%% 44> py:eq(42, 42).
ex44_eq(_Config) -> ?assertEqual(true, py:eq(42, 42)).

%% 45> py:'and-'(60, 13).
ex45_and(_Config) -> ?assertEqual(12, py:'and-'(60, 13)).

%% 46> py:'or-'(60, 13).
ex46_or(_Config) -> ?assertEqual(61, py:'or-'(60, 13)).

%% 47> py:'xor'(60, 13).
ex47_xor(_Config) -> ?assertEqual(49, py:'xor'(60, 13)).

%% 48> py:inv(60).
ex48_inv(_Config) -> ?assertEqual(-61, py:inv(60)).

%% 49> py:rshift(60, 2).
ex49_rshift(_Config) -> ?assertEqual(15, py:rshift(60, 2)).

%% 50> py:lshift(60, 2).
ex50_lshift(_Config) -> ?assertEqual(240, py:lshift(60, 2)).

%% 51> py:pylist().
ex51_pylist(_Config) -> ?assertEqual([], py:pylist()).

%% 52> py:pylist([1, 2, 3, 4]).
ex52_pylist_list(_Config) -> ?assertEqual([1, 2, 3, 4], py:pylist([1, 2, 3, 4])).

%%% ------------------------------------------------------------------
%%% The LFE sections, in Erlang syntax
%%% ------------------------------------------------------------------

%% (py-util:get-versions)
lfe_metadata(_Config) ->
    Versions = 'py-util':'get-versions'(),
    [?assert(lists:keymember(Key, 1, Versions))
     || Key <- [erlang, emulator, 'driver-version', py, python]].

%% (py:func 'os 'getcwd), (py:func 'datetime.datetime 'now),
%% (py:func 'os.path 'isfile '(#b("/tmp"))), ... 'isdir ...,
%% (py:func 'builtins 'int '(#b("101010")) '(#(base 2)))
lfe_calling_functions(_Config) ->
    {ok, Cwd} = file:get_cwd(),
    ?assertEqual(unicode:characters_to_binary(Cwd), py:func(os, getcwd)),
    assert_now(py:func('datetime.datetime', now)),
    ?assertEqual(false, py:func('os.path', isfile, [<<"/tmp">>])),
    ?assertEqual(true, py:func('os.path', isdir, [<<"/tmp">>])),
    ?assertEqual(42, py:func(builtins, int, [<<"101010">>], [{base, 2}])).

%% (py:const 'math 'pi), ... 'float, ... 'int, ... 'str
lfe_module_constants(_Config) ->
    ?assertEqual(3.141592653589793, py:const(math, pi)),
    ?assertEqual(3.141592653589793, py:const(math, pi, float)),
    ?assertEqual(3, py:const(math, pi, int)),
    ?assertEqual(<<"3.141592653589793">>, py:const(math, pi, str)).

%% (py:init 'builtins 'dict), (py:init 'collections 'UserDict),
%% (py:init 'datetime 'date '(1923 4 2))
lfe_instantiation(_Config) ->
    ?assertMatch({'$py', <<"dict">>, _}, py:init(builtins, dict)),
    ?assertMatch({'$py', <<"collections.UserDict">>, _}, py:init(collections, 'UserDict')),
    Date = py:init(datetime, date, [1923, 4, 2]),
    ?assertEqual(<<"1923-04-02">>, py:str(Date)).

%% (set now (py:func 'datetime.datetime 'now))
%% (py:method now 'strftime '(#b("%Y.%m.%d %H:%M:%S")))
lfe_calling_methods(_Config) ->
    Now = py:func('datetime.datetime', now),
    Format = <<"%Y.%m.%d %H:%M:%S">>,
    ?assertEqual(expected_strftime(Format, Now), py:method(Now, strftime, [Format])).

%% (py:attr now 'year), (py:attr now 'microsecond)
lfe_attribute_values(_Config) ->
    Now = py:init(datetime, datetime, [2014, 12, 23, 23, 14, 37, 677463]),
    ?assertEqual(2014, py:attr(Now, year)),
    ?assertEqual(677463, py:attr(Now, microsecond)).

%% (set diff (py:sub later earlier)), (py:attr diff 'seconds),
%% (/ (py:attr diff 'seconds) 60): with the original's two times.
lfe_operations_on_objects(_Config) ->
    Earlier = py:init(datetime, datetime, [2014, 12, 23, 23, 14, 37, 677463]),
    Later = py:init(datetime, datetime, [2014, 12, 23, 23, 21, 25, 714474]),
    Diff = py:sub(Later, Earlier),
    ?assertMatch({'$py', <<"datetime.timedelta">>, _}, Diff),
    ?assertEqual({0, 408, 37011},
                 {py:attr(Diff, days), py:attr(Diff, seconds), py:attr(Diff, microseconds)}),
    ?assertEqual(6.8, py:attr(Diff, seconds) / 60).

%% (py:const 'math.pi), (py:func 'datetime.datetime.now),
%% (py:func 'math.pow '(2 16)), (py:func 'builtins.int '(#b("101010")) '(#(base 2))),
%% (py:init 'collections.UserDict),
%% (py:init 'collections.UserDict '() '(#("a" 1) #("b" 2)))
lfe_dotted_names(_Config) ->
    ?assertEqual(3.141592653589793, py:const('math.pi')),
    assert_now(py:func('datetime.datetime.now')),
    ?assertEqual(65536.0, py:func('math.pow', [2, 16])),
    ?assertEqual(42, py:func('builtins.int', [<<"101010">>], [{base, 2}])),
    Empty = py:init('collections.UserDict'),
    ?assertMatch({'$py', <<"collections.UserDict">>, _}, Empty),
    ?assertEqual(#{}, py:attr(Empty, data)),
    Full = py:init('collections.UserDict', [], [{"a", 1}, {"b", 2}]),
    ?assertMatch({'$py', <<"collections.UserDict">>, _}, Full),
    ?assertEqual(#{<<"a">> => 1, <<"b">> => 2}, py:attr(Full, data)).

%% (py:pycall 'datetime 'datetime.now),
%% (py:pycall 'datetime 'datetime '(1923 4 2 0 0 0))
lfe_pass_through(_Config) ->
    assert_now(py:pycall(datetime, 'datetime.now')),
    ?assertEqual([1923, 4, 2, 0, 0, 0, 0],
                 fields(py:pycall(datetime, datetime, [1923, 4, 2, 0, 0, 0]))).

%% (py:init 'builtins 'dict), (py:func 'builtins 'int ...), (py:dict),
%% (py:dict '(#("a" 1) #("b" 2))), (py:int #b("101010") '(#(base 2))),
%% (py:any ...), (py:all ...), (py:pow 6 42), (py:round 0.666666667 5),
%% (py:range 7 42), (py:len (py:range 7 42)), (py:pylist (py:range 7 42)),
%% (erlang:length (py:pylist (py:range 7 42)))
lfe_builtins(_Config) ->
    ?assertMatch({'$py', <<"dict">>, _}, py:init(builtins, dict)),
    ?assertEqual(42, py:func(builtins, int, [<<"101010">>], [{base, 2}])),
    ?assertEqual(#{}, py:dict()),
    ?assertEqual(#{<<"a">> => 1, <<"b">> => 2}, py:dict([{"a", 1}, {"b", 2}])),
    ?assertEqual(42, py:int(<<"101010">>, [{base, 2}])),
    ?assertEqual(true, py:any([true, true, false, false, false, true])),
    ?assertEqual(false, py:all([true, true, false, false, false, true])),
    ?assertEqual(true, py:all([true, true, true])),
    ?assertEqual(481229803398374426442198455156736, py:pow(6, 42)),
    ?assertEqual(0.66667, py:round(0.666666667, 5)),
    ?assertMatch({'$py', <<"range">>, _}, py:range(7, 42)),
    ?assertEqual(35, py:len(py:range(7, 42))),
    ?assertEqual(lists:seq(7, 41), py:pylist(py:range(7, 42))),
    ?assertEqual(35, erlang:length(py:pylist(py:range(7, 42)))).

%% (py:add 37 5), (py:mul 7 6), (py:sub -108 -150), (py:truediv 462 11),
%% (py:floordiv 462 11), (py:gt 7 6), (py:le 7 6), (py:eq 42 42),
%% (py:and- 60 13), (py:or- 60 13), (py:xor 60 13), (py:inv 60),
%% (py:rshift 60 2), (py:lshift 60 2)
lfe_operators(_Config) ->
    ?assertEqual([42, 42, 42, 42.0, 42, true, false, true, 12, 61, 49, -61, 15, 240],
                 [py:add(37, 5), py:mul(7, 6), py:sub(-108, -150), py:truediv(462, 11),
                  py:floordiv(462, 11), py:gt(7, 6), py:le(7, 6), py:eq(42, 42),
                  py:'and-'(60, 13), py:'or-'(60, 13), py:'xor'(60, 13), py:inv(60),
                  py:rshift(60, 2), py:lshift(60, 2)]).

%% (py:pylist), (py:pylist '(1 2 3 4)); (py:dir ...) and (py:vars ...)
%% elided, (py:pdir) and (py:pvars) complete; (py:prepr ...)
lfe_non_python_additions(_Config) ->
    ?assertEqual([], py:pylist()),
    ?assertEqual([1, 2, 3, 4], py:pylist([1, 2, 3, 4])),
    Names = py:pdir([]),
    ?assert(length(Names) > 28),
    ?assertEqual(lists:sublist(Names, 28) ++ ['...'], py:dir([])),
    Vars = py:vars(py:const(os, path)),
    ?assertEqual(29, map_size(Vars)),
    ?assertEqual(map_size(py:pvars(py:const(os, path))) - 28, maps:get('...', Vars)),
    ?assertEqual({'$py', <<"range">>, <<"range(7, 42)">>}, py:prepr(py:range(7, 42))).
