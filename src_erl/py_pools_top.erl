%%% @private
%%% @doc The node pools: their registry (`py_pools'), then their
%%% supervisor (`py_pools_sup'), `one_for_one': a registry that dies is
%%% started again alone (the pools run on, and it finds them again in its
%%% store); a `py_pools_sup' that dies starts every pool again, its
%%% registry untouched. The intensity is the `max_restarts' and
%%% `restart_period' settings.
%%% @end
-module(py_pools_top).
-behaviour(supervisor).

-export([start_link/1, init/1]).

-spec start_link(py_config:config()) -> {ok, pid()} | {error, term()}.
start_link(Config) ->
    supervisor:start_link({local, ?MODULE}, ?MODULE, Config).

-spec init(py_config:config()) -> {ok, {supervisor:sup_flags(), [supervisor:child_spec()]}}.
init(Config = #{max_restarts := Intensity, restart_period := Period}) ->
    Flags = #{strategy => one_for_one, intensity => Intensity, period => Period},
    {ok, {Flags, [#{id => py_pools,
                    start => {py_pools, start_link, []},
                    type => worker},
                  #{id => py_pools_sup,
                    start => {py_pools_sup, start_link, [Config]},
                    shutdown => infinity,
                    type => supervisor}]}}.
