%%% @private
%%% @doc One node of a node pool (one slot), as a process of this node.
%%%
%%% A started node (`start'): this process starts a peer node on this
%%% host (`py_remote:spawn_node/3', linked: the node halts when this
%%% process ends, and this process ends when the node does), registers
%%% its `py_node_server' with `py_pools', and stops when the node goes
%%% down, so that its supervisor (`py_node_pool') starts a fresh node.
%%% Each node has a name of its own (`py_Pool_Slot_N_OsPid@Host'): the
%%% handles of a node that was restarted name a node that no longer
%%% exists, and fail with `{py_node_restarted, Node}'.
%%%
%%% A joined node (`{join, Node}'): a node of another machine already
%%% running py. This process connects to it, registers its server, and
%%% when the connection is lost (or py stops there) takes it out of the
%%% pool and tries again every second.
%%% @end
-module(py_node).
-behaviour(gen_server).

-include_lib("kernel/include/logger.hrl").

-export([start_link/4]).
-export([init/1, handle_call/3, handle_cast/2, handle_info/2, terminate/2]).

-define(RETRY, 1000).

-spec start_link(py_pools:name(), py_pool:slot(), start | {join, node()}, py_pools:spec()) ->
          {ok, pid()} | {error, term()}.
start_link(Pool, Slot, Place, Spec) ->
    gen_server:start_link(?MODULE, {Pool, Slot, Place, Spec}, []).

%% @private
-spec init({py_pools:name(), py_pool:slot(), start | {join, node()}, py_pools:spec()}) ->
          {ok, map()} | {stop, term()}.
init({Pool, Slot, start, Spec}) ->
    process_flag(trap_exit, true),
    Env = case Spec of
              #{workers := W} -> [{workers, W} | maps:get(env, Spec, [])];
              #{} -> maps:get(env, Spec, [])
          end,
    Opts = #{env => Env, boot_timeout => maps:get(boot_timeout, Spec, 60000)},
    case py_remote:spawn_node(node_name(Pool, Slot), Opts, true) of
        {ok, Peer, Node} ->
            case server(Node) of
                {ok, {Pid, _} = Server} ->
                    %% Callers watch the node, not the server: a node whose
                    %% server is gone is halted (and started again).
                    _ = erlang:monitor(process, Pid),
                    ok = py_pools:register(Pool, Slot, Node, Server),
                    ?LOG_INFO("py: pool ~p: node ~p up (slot ~b)", [Pool, Node, Slot],
                              #{py => pool_node_up}),
                    {ok, #{pool => Pool, slot => Slot, node => Node, peer => Peer,
                           server => Pid}};
                {error, Why} ->
                    _ = (catch peer:stop(Peer)),
                    {stop, Why}
            end;
        {error, Why} ->
            {stop, Why}
    end;
init({Pool, Slot, {join, Node}, _Spec}) ->
    process_flag(trap_exit, true),
    State = #{pool => Pool, slot => Slot, node => Node, server => undefined},
    case join(State) of
        {ok, Joined} -> {ok, Joined};
        {error, Why} -> {stop, Why}
    end.

%% A name of its own for each node, unique on this host.
node_name(Pool, Slot) ->
    Text = atom_to_list(Pool),
    Safe = case lists:all(fun(C) -> (C >= $a andalso C =< $z) orelse (C >= $A andalso C =< $Z)
                                        orelse (C >= $0 andalso C =< $9) orelse C =:= $_ end,
                          Text) andalso length(Text) =< 40 of
               true -> Text;
               false -> "p" ++ integer_to_list(erlang:phash2(Pool))
           end,
    lists:concat(["py_", Safe, "_", Slot, "_", erlang:unique_integer([positive]), "_",
                  os:getpid()]).

%% The node's server and OS process id.
server(Node) ->
    try
        {erpc:call(Node, erlang, whereis, [py_node_server], 5000),
         erpc:call(Node, os, getpid, [], 5000)}
    of
        {Server, OsPid} when is_pid(Server) -> {ok, {Server, OsPid}};
        {undefined, _} -> {error, {py_not_on_node, Node}}
    catch
        error:{erpc, noconnection} -> {error, {py_nodedown, Node}};
        error:{exception, undef, _} -> {error, {py_not_on_node, Node}};
        Class:Reason -> {error, {Class, Reason}}
    end.

%% Connects to a joined node and registers its server.
join(State = #{pool := Pool, slot := Slot, node := Node}) ->
    case net_kernel:connect_node(Node) of
        true ->
            case server(Node) of
                {ok, {Server, _} = Found} ->
                    ok = py_pools:register(Pool, Slot, Node, Found),
                    _ = erlang:monitor(process, Server),
                    {ok, State#{server := Server}};
                {error, _} = Error ->
                    Error
            end;
        _ ->
            {error, {py_nodedown, Node}}
    end.

%% @private
-spec handle_call(term(), gen_server:from(), map()) -> {reply, term(), map()}.
handle_call(_Request, _From, State) ->
    {reply, {error, unknown_call}, State}.

%% @private
-spec handle_cast(term(), map()) -> {noreply, map()}.
handle_cast(_Msg, State) ->
    {noreply, State}.

%% @private
-spec handle_info(term(), map()) -> {noreply, map()} | {stop, term(), map()}.
handle_info({'EXIT', Peer, Reason}, State = #{peer := Peer, pool := Pool, node := Node}) ->
    ?LOG_WARNING("py: pool ~p: node ~p went down (~0p); starting another",
                 [Pool, Node, Reason], #{py => pool_node_down}),
    {stop, {shutdown, {py_nodedown, Node}}, maps:remove(peer, State)};
handle_info({'DOWN', _MRef, process, Server, Reason},
            State = #{server := Server, peer := _, pool := Pool, node := Node}) ->
    ?LOG_WARNING("py: pool ~p: py stopped on node ~p (~0p); starting another",
                 [Pool, Node, Reason], #{py => pool_node_down}),
    {stop, {shutdown, {py_nodedown, Node}}, State};
handle_info({'DOWN', _MRef, process, Server, Reason},
            State = #{server := Server, pool := Pool, slot := Slot, node := Node}) ->
    ?LOG_WARNING("py: pool ~p: lost node ~p (~0p); trying again every ~b ms",
                 [Pool, Node, Reason, ?RETRY], #{py => pool_node_down}),
    ok = py_pools:down(Pool, Slot),
    erlang:send_after(?RETRY, self(), rejoin),
    {noreply, State#{server := undefined}};
handle_info(rejoin, State = #{server := undefined}) ->
    case join(State) of
        {ok, Joined = #{pool := Pool, node := Node}} ->
            ?LOG_INFO("py: pool ~p: node ~p back", [Pool, Node], #{py => pool_node_up}),
            {noreply, Joined};
        {error, _} ->
            erlang:send_after(?RETRY, self(), rejoin),
            {noreply, State}
    end;
handle_info(_Other, State) ->
    {noreply, State}.

%% @private
-spec terminate(term(), map()) -> ok.
terminate(_Reason, #{peer := Peer}) ->
    _ = (catch peer:stop(Peer)),
    ok;
terminate(_Reason, _State) ->
    ok.
