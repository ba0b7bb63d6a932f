%%% @doc Top supervisor: the worker pool registry, then the workers.
%%% @end
-module(py_sup).
-behaviour(supervisor).

-export([start_link/1, init/1]).

-spec start_link(py_config:config()) -> {ok, pid()} | {error, term()}.
start_link(Config) ->
    supervisor:start_link({local, ?MODULE}, ?MODULE, Config).

-spec init(py_config:config()) -> {ok, {supervisor:sup_flags(), [supervisor:child_spec()]}}.
init(Config) ->
    Flags = #{strategy => rest_for_one, intensity => 5, period => 10},
    Children = [#{id => py_pool,
                  start => {py_pool, start_link, []},
                  type => worker},
                #{id => py_worker_sup,
                  start => {py_worker_sup, start_link, [maps:get(workers, Config)]},
                  type => supervisor}],
    {ok, {Flags, Children}}.
