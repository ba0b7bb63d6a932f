%%% @doc The VM side of `bench/callgrind.sh': starts py, warms up, then
%%% counts `N' sequential `operator.add(1, 2)' calls only: callgrind's
%%% counters are zeroed before the loop and dumped after it
%%% (`callgrind_control'), so start-up is not in the figure. Run twice (10,000
%%% and 30,000 calls); the difference over 20,000 is one round trip.
-module(py_callgrind).

-export([main/1]).

-spec main([string()]) -> no_return().
main([N]) ->
    ok = py:start(),
    loop(2000),
    control("-z"),
    loop(list_to_integer(N)),
    control("-d"),
    erlang:halt(0).

control(What) ->
    _ = os:cmd("callgrind_control " ++ What ++ " " ++ os:getpid()),
    ok.

loop(0) -> ok;
loop(N) ->
    3 = py:func(operator, add, [1, 2]),
    loop(N - 1).
