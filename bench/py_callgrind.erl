%%% @doc The VM side of `bench/callgrind.sh': starts py, warms up, makes
%%% `N' sequential `operator.add(1, 2)' calls and halts. Run twice under
%%% callgrind (10,000 and 30,000 calls), the difference of the totals over
%%% 20,000 is the cost of one round trip, start-up cancelled out.
-module(py_callgrind).

-export([main/1]).

-spec main([string()]) -> no_return().
main([N]) ->
    ok = py:start(),
    loop(2000),
    loop(list_to_integer(N)),
    erlang:halt(0).

loop(0) -> ok;
loop(N) ->
    3 = py:func(operator, add, [1, 2]),
    loop(N - 1).
