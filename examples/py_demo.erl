%%% @doc `make demo': a short walk-through of py, printed as it runs.
-module(py_demo).

-export([main/0]).

-spec main() -> ok.
main() ->
    ok = py:start(),
    show("py:func(os, getcwd)", fun() -> py:func(os, getcwd) end),
    show("py:func('math.pow', [2, 16])", fun() -> py:func('math.pow', [2, 16]) end),
    show("py:func(builtins, int, [<<\"101010\">>], [{base, 2}])",
         fun() -> py:func(builtins, int, [<<"101010">>], [{base, 2}]) end),
    show("py:pow(6, 42)", fun() -> py:pow(6, 42) end),
    show("py:const(math, pi, str)", fun() -> py:const(math, pi, str) end),
    Now = py:func('datetime.datetime', now),
    show("Now = py:func('datetime.datetime', now)", fun() -> Now end),
    show("py:method(Now, strftime, [<<\"%Y.%m.%d %H:%M:%S\">>])",
         fun() -> py:method(Now, strftime, [<<"%Y.%m.%d %H:%M:%S">>]) end),
    show("py:attr(Now, year)", fun() -> py:attr(Now, year) end),
    show("py:len(py:range(7, 42))", fun() -> py:len(py:range(7, 42)) end),
    show("py:eval(<<\"sum(x * x for x in range(10))\">>)",
         fun() -> py:eval(<<"sum(x * x for x in range(10))">>) end),
    show("catch py:func(builtins, int, [<<\"x\">>])",
         fun() -> try py:func(builtins, int, [<<"x">>]) catch error:E -> E end end),
    show("'py-util':'get-versions'()", fun() -> 'py-util':'get-versions'() end),
    ok.

show(Text, Fun) ->
    io:format("~s.~n  ~tp~n", [Text, Fun()]).
