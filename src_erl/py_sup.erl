%%% @private
%%% @doc Top supervisor: the services Python code uses (`py_callback' runs
%%% the Erlang functions Python calls, `py_output' logs what Python writes
%%% outside calls, `py_context' keeps the named contexts), the Python nodes (`py_pg', `py_remote'), the worker pool
%%% registry, then the workers.
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
                %% Output and logs of Python threads outside any call.
                #{id => py_output,
                  start => {py_output, start_link, []},
                  type => worker},
                #{id => py_context,
                  start => {py_context, start_link, []},
                  type => worker},
                %% Python nodes: the pg scope in which every node running py
                %% is a member (py:nodes/0), and the owner of the handles
                %% lent to other nodes and of the peers started from here.
                %% Before the pool: a restart of the workers keeps them (the
                %% objects live in the interpreter, not in a worker).
                #{id => py_pg,
                  start => {pg, start_link, [py_pg]},
                  type => worker},
                #{id => py_remote,
                  start => {py_remote, start_link, []},
                  %% Stops the peer nodes it owns.
                  shutdown => 30000,
                  type => worker},
                #{id => py_pool,
                  start => {py_pool, start_link, [Config]},
                  type => worker},
                #{id => py_worker_sup,
                  start => {py_worker_sup, start_link, [Config]},
                  shutdown => infinity,
                  type => supervisor}],
    {ok, {Flags, Children}}.
