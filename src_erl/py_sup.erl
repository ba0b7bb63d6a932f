%%% @doc Top supervisor: the services Python code uses (`py_callback' runs
%%% the Erlang functions Python calls, `py_context' keeps the named
%%% contexts), the worker pool registry, then the workers.
%%%
%%% `rest_for_one': if the registry dies, the workers are restarted too and
%%% register again. The intensity is the `max_restarts' and
%%% `restart_period' settings, as for the workers.
%%% @end
-module(py_sup).
-behaviour(supervisor).

-export([start_link/1, init/1]).

-spec start_link(py_config:config()) -> {ok, pid()} | {error, term()}.
start_link(Config) ->
    supervisor:start_link({local, ?MODULE}, ?MODULE, Config).

-spec init(py_config:config()) -> {ok, {supervisor:sup_flags(), [supervisor:child_spec()]}}.
init(Config = #{max_restarts := Intensity, restart_period := Period}) ->
    Flags = #{strategy => rest_for_one, intensity => Intensity, period => Period},
    %% Services first: worker code may use them from its first call on
    %% (`beam.call' from `init' code; contexts live on workers).
    Children = [#{id => py_callback,
                  start => {py_callback, start_link, []},
                  type => worker},
                #{id => py_context,
                  start => {py_context, start_link, []},
                  type => worker},
                #{id => py_pool,
                  start => {py_pool, start_link, [Config]},
                  type => worker},
                #{id => py_worker_sup,
                  start => {py_worker_sup, start_link, [Config]},
                  shutdown => infinity,
                  type => supervisor}],
    {ok, {Flags, Children}}.
