%%% @private
%%% @doc Supervises the node pools, one `py_node_pool' supervisor each:
%%% those of the `pools' setting (started with py) and those started at
%%% run time (`py:start_pool/2'). It starts with every pool the registry's
%%% store holds (see {@link py_pools:stored_pools/0}): after a crash of
%%% this supervisor, the run-time pools are started again too.
%%%
%%% The pools are transient children: one that is killed or crashes is
%%% started again (its nodes too); one that stops beyond its restart
%%% intensity (`shutdown') has given up and stays down until
%%% `py:stop_pool/1', so that a pool whose nodes keep dying never takes
%%% this supervisor, and py with it, down.
%%% @end
-module(py_pools_sup).
-behaviour(supervisor).

-export([start_link/1, start_pool/2, stop_pool/1]).
-export([init/1]).

-spec start_link(py_config:config()) -> {ok, pid()} | {error, term()}.
start_link(Config) ->
    supervisor:start_link({local, ?MODULE}, ?MODULE, Config).

-spec init(py_config:config()) -> {ok, {supervisor:sup_flags(), [supervisor:child_spec()]}}.
init(Config = #{max_restarts := Intensity, restart_period := Period}) ->
    Flags = #{strategy => one_for_one, intensity => Intensity, period => Period},
    {ok, {Flags, [child(Name, Spec, Config) || {Name, Spec} <- py_pools:stored_pools()]}}.

%% @doc Starts a pool's nodes; returns once they all serve Python.
-spec start_pool(py_pools:name(), py_pools:spec()) -> ok | {error, term()}.
start_pool(Name, Spec) ->
    case supervisor:start_child(?MODULE, child(Name, Spec, py_config:all())) of
        {ok, _} ->
            ok;
        {error, {already_started, _}} ->
            %% Started meanwhile by this supervisor's own restart.
            ok;
        {error, Why} ->
            _ = supervisor:delete_child(?MODULE, Name),
            {error, innermost(Why)}
    end.

%% @doc Stops a pool's nodes.
-spec stop_pool(py_pools:name()) -> ok.
stop_pool(Name) ->
    _ = supervisor:terminate_child(?MODULE, Name),
    _ = supervisor:delete_child(?MODULE, Name),
    ok.

child(Name, Spec, Config) ->
    #{id => Name,
      start => {py_node_pool, start_link, [Name, Spec, Config]},
      restart => transient,
      shutdown => infinity,
      type => supervisor}.

innermost({Reason, Child}) when element(1, Child) =:= child -> innermost(Reason);
innermost({shutdown, {failed_to_start_child, _Id, Reason}}) -> innermost(Reason);
innermost({failed_to_start_child, _Id, Reason}) -> innermost(Reason);
innermost(Reason) -> Reason.
