%%% @doc Erlang functions that the tests' Python code calls back.
-module(py_test_erl).

-export([py_nested/1, kill_self/0, report_and_wait/1]).

%% Erlang -> Python -> Erlang ... (see py_test_helpers.nested).
-spec py_nested(non_neg_integer()) -> non_neg_integer().
py_nested(Depth) ->
    py:func(py_test_helpers, nested, [Depth]).

%% Dies without a chance to answer.
-spec kill_self() -> no_return().
kill_self() ->
    exit(self(), kill),
    receive after infinity -> ok end.

%% Tells `Pid' which process runs it, then waits for ever (until stopped).
-spec report_and_wait(pid()) -> no_return().
report_and_wait(Pid) ->
    Pid ! {async_runner, self()},
    receive after infinity -> ok end.
