%%% @private
%%% @doc Supervises the nodes of one node pool, one `py_node' process per
%%% slot: a node that dies (its process with it) is started again, at
%%% most `max_restarts' times in `restart_period' seconds (the pool's
%%% own, or py's settings); beyond, this supervisor stops (`shutdown')
%%% and the pool has given up (see `py_pools_sup'). Killed or crashed, it
%%% is started again by `py_pools_sup', nodes and all; a start that fails
%%% after the pool ran once is `ignore' (the pool has given up), never an
%%% error that `py_pools_sup' would retry until it gives up itself.
%%% @end
-module(py_node_pool).
-behaviour(supervisor).

-export([start_link/3]).
-export([init/1]).

-spec start_link(py_pools:name(), py_pools:spec(), py_config:config()) ->
          {ok, pid()} | ignore | {error, term()}.
start_link(Name, Spec, Config) ->
    case supervisor:start_link(?MODULE, {Name, Spec, Config}) of
        {ok, Pid} ->
            ok = py_pools:pool_up(Name, Pid),
            {ok, Pid};
        {error, Why} = Error ->
            case py_pools:pool_failed(Name, Why) of
                first -> Error;
                again -> ignore
            end
    end.

-spec init({py_pools:name(), py_pools:spec(), py_config:config()}) ->
          {ok, {supervisor:sup_flags(), [supervisor:child_spec()]}}.
init({Name, Spec, Config}) ->
    Flags = #{strategy => one_for_one,
              intensity => maps:get(max_restarts, Spec, maps:get(max_restarts, Config)),
              period => maps:get(restart_period, Spec, maps:get(restart_period, Config))},
    Places = case Spec of
                 #{nodes := Nodes} -> [{join, N} || N <- Nodes];
                 #{size := Size} -> lists:duplicate(Size, start)
             end,
    Children = [#{id => Slot,
                  start => {py_node, start_link, [Name, Slot, Place, Spec]},
                  %% Its node halts in its terminate/2.
                  shutdown => 30000,
                  type => worker}
                || {Slot, Place} <- lists:zip(lists:seq(1, length(Places)), Places)],
    {ok, {Flags, Children}}.
