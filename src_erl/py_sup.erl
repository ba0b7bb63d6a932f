%%% @private
%%% @doc Top supervisor: the services Python code uses (`py_callback' runs
%%% the Erlang functions Python calls, `py_output' logs what Python writes
%%% outside calls, `py_context' keeps the named contexts), the Python
%%% nodes (`py_pg', `py_remote', `py_node_server'), the worker pool
%%% registry, the workers, then the node pools (`py_pools_top': their
%%% registry `py_pools' and `py_pools_sup').
%%%
%%% `rest_for_one': if the registry dies, the workers are restarted too and
%%% register again. The intensity is the `max_restarts' and
%%% `restart_period' settings, as for the workers.
%%%
%%% This process owns the node pools' store (`py_pools:new_store/1'): it
%%% lives as long as py, so no crash below loses a pool.
%%% @end
-module(py_sup).
-behaviour(supervisor).

-export([start_link/1, init/1]).

-spec start_link(py_config:config()) -> {ok, pid()} | {error, term()}.
start_link(Config) ->
    supervisor:start_link({local, ?MODULE}, ?MODULE, Config).

-spec init(py_config:config()) -> {ok, {supervisor:sup_flags(), [supervisor:child_spec()]}}.
init(Config = #{max_restarts := Intensity, restart_period := Period,
               shutdown_timeout := Shutdown}) ->
    Flags = #{strategy => rest_for_one, intensity => Intensity, period => Period},
    ok = py_pools:new_store(Config),
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
                %% The event loop awaits what calls return: before the
                %% workers (their `init' code may return a coroutine),
                %% stopped after them (it cancels what is still pending).
                #{id => py_loop,
                  start => {py_loop, start_link, []},
                  %% Its pending tasks get `shutdown_timeout' to finish.
                  shutdown => Shutdown + 5000,
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
                %% The server that runs the calls of other nodes' pools.
                #{id => py_node_server,
                  start => {py_node_server, start_link, []},
                  type => worker},
                #{id => py_pool,
                  start => {py_pool, start_link, [Config]},
                  type => worker},
                #{id => py_worker_sup,
                  start => {py_worker_sup, start_link, [Config]},
                  shutdown => infinity,
                  type => supervisor},
                %% Node pools: the registry, then their nodes. Last: a
                %% restart of the embedded workers leaves them running.
                #{id => py_pools_top,
                  start => {py_pools_top, start_link, [Config]},
                  shutdown => infinity,
                  type => supervisor}],
    {ok, {Flags, Children}}.
