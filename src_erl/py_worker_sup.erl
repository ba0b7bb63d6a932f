%%% @doc Supervises the Python workers, one child per worker thread.
%%% @end
-module(py_worker_sup).
-behaviour(supervisor).

-export([start_link/1, init/1]).

-spec start_link(pos_integer()) -> {ok, pid()} | {error, term()}.
start_link(Count) ->
    supervisor:start_link({local, ?MODULE}, ?MODULE, Count).

-spec init(pos_integer()) -> {ok, {supervisor:sup_flags(), [supervisor:child_spec()]}}.
init(Count) ->
    Flags = #{strategy => one_for_one, intensity => 10, period => 10},
    {ok, {Flags, [py_worker:child_spec(N) || N <- lists:seq(1, Count)]}}.
