%%% @doc Pools: named sets of Python servers of one kind, under one API.
%%%
%%% <ul>
%%% <li>`embedded': the workers of this node (threads of its one
%%%     interpreter, see {@link py_pool}); that is the pool named
%%%     `default', the one calls use without a `{pool, Name}' option.</li>
%%% <li>`nodes': Python nodes, each an Erlang node running py with its own
%%%     interpreter (so its own GIL, its own crashes, its own venv): `size'
%%%     nodes started on this host with OTP's `peer' and restarted when
%%%     they die (within the pool's restart intensity), or nodes of other
%%%     machines joined by name (`nodes => [Node]'), watched and
%%%     reconnected.</li>
%%% </ul>
%%%
%%% This process is the registry: it checks and records the pools, and
%%% publishes the live members of each node pool (for the callers, in
%%% `persistent_term': picking a node costs no process hop), as the
%%% member processes (`py_node') register and die. The pools' processes
%%% live under `py_pools_sup'.
%%%
%%% The registry's state (the pools, their specs and members) is kept in
%%% an ETS table that `py_sup' owns ({@link new_store/1}): a registry that
%%% crashes is started again with every pool it knew, watches their
%%% processes again and publishes them again, while the pools run on; a
%%% `py_pools_sup' that crashes starts every pool of the table again.
%%% @end
-module(py_pools).
-behaviour(gen_server).

-include_lib("kernel/include/logger.hrl").

%% API (py facade, py_config)
-export([start_pool/2, stop_pool/1, pools/0, check_spec/2]).
%% The store (py_sup, py_pools_sup)
-export([new_store/1, stored_pools/0]).
%% Pools' supervisors (py_node_pool)
-export([pool_up/2, pool_failed/2]).
%% The hot path (py_engine, py_parallel)
-export([members/1, node_member/1, nodes_of/1, in_flight/4]).
%% Members (py_node)
-export([register/4, down/2, lost/1]).
-export([start_link/0, init/1, handle_call/3, handle_cast/2, handle_info/2, terminate/2]).

-export_type([name/0, spec/0, info/0]).

-type name() :: atom().
-type spec() :: #{kind := nodes,
                  size => pos_integer(),
                  nodes => [node()],
                  workers => pos_integer(),
                  env => [{atom(), term()}],
                  max_restarts => non_neg_integer(),
                  restart_period => pos_integer(),
                  boot_timeout => timeout(),
                  scheduler => py_config:scheduler()}.
%% A node pool: `size' nodes started here (default 2), or the nodes
%% `nodes' of other machines (which run py already); `workers' per started
%% node (default: this node's `workers' setting), `env' their py settings
%% (on top of this node's, e.g. their own `venv' and `requirements'),
%% `max_restarts' restarts of its nodes in `restart_period' seconds
%% (default: this node's settings), `boot_timeout' ms for a node to
%% start, `scheduler' the one that picks a node for a call (default
%% `least_loaded'; `shared' means `least_loaded' here).
-type info() :: #{name := name(), kind := embedded | nodes, size := non_neg_integer(),
                  state := running | given_up,
                  members := [#{id := pos_integer(), node => node(), os_pid => string(),
                                restarts => non_neg_integer(), state => up | down}]}.

%% {?MODULE, Name} => {Members, Counter}: the live members of a node pool.
-define(MEMBERS(Name), {?MODULE, members, Name}).
%% #{Node => {member, Member} | {restarted, Pool}}: every node of a pool
%% (and the nodes pools had before a restart or stop).
-define(NODES, {?MODULE, nodes}).
%% How many gone nodes are remembered (for stale handles' errors).
-define(GONE_KEPT, 1000).
%% The ETS table (owned by py_sup) that keeps the registry's state.
-define(STORE, py_pools).
%% {{Caller, ReplyTo}, Load, N, Server}: the calls in flight on node pools'
%% nodes, for a caller that dies mid-call (see in_flight/4).
-define(CALLS, py_pools_calls).
%% The registry that watches this caller (in its process dictionary).
-define(WATCHER, '$py_pools_watcher').
%% How long a member waits for a registry that is being restarted.
-define(REGISTRY_TRIES, 100).
-define(REGISTRY_WAIT, 50).

%%% ------------------------------------------------------------------
%%% API
%%% ------------------------------------------------------------------

%% @private
%% @doc Starts a node pool; returns once every node serves Python (see
%% {@link spec()}).
-spec start_pool(name(), term()) -> ok | {error, term()}.
start_pool(Name, Spec0) ->
    case whereis(?MODULE) of
        undefined ->
            {error, py_not_started};
        _ ->
            case check_spec(Name, Spec0) of
                {ok, Spec} ->
                    case gen_server:call(?MODULE, {add, Name, Spec}, infinity) of
                        ok -> start_members(Name, Spec);
                        {error, _} = Error -> Error
                    end;
                {error, _} = Error ->
                    Error
            end
    end.

start_members(Name, Spec) ->
    case py_pools_sup:start_pool(Name, Spec) of
        ok ->
            ok;
        {error, _} = Error ->
            _ = registry_call({remove, Name}),
            Error
    end.

%% @private
%% @doc Stops a node pool: out of the registry first (new calls raise
%% `{py_no_pool, Name}'), then its nodes halt (calls running there fail
%% with `{py_nodedown, Node}'). A pool that gave up is stopped the same
%% way.
-spec stop_pool(name()) -> ok | {error, term()}.
stop_pool(default) ->
    {error, {embedded_pool, default}};
stop_pool(Name) ->
    case catch registry_call({remove, Name}) of
        true ->
            ok = py_pools_sup:stop_pool(Name);
        false ->
            {error, {no_pool, Name}};
        {'EXIT', _} ->
            {error, py_not_started}
    end.

%% @private
%% @doc The pools, by name: `default' (this node's workers) and the node
%% pools with their nodes.
-spec pools() -> [info()].
pools() ->
    case catch registry_call(info) of
        {'EXIT', _} ->
            [];
        NodePools ->
            Embedded = [#{id => Id} || #{id := Id} <- py_pool:info()],
            Default = #{name => default, kind => embedded, size => length(Embedded),
                        state => running, members => Embedded},
            [Info || {_, Info} <- lists:keysort(1, [{default, Default} | NodePools])]
    end.

%% @private
%% @doc Checks a pool's name and spec (for `py:start_pool/2' and the
%% `pools' setting): `{ok, Spec}' with the defaults filled in, or
%% `{error, {bad_pool, Name, Why}}'.
-spec check_spec(term(), term()) -> {ok, spec()} | {error, {bad_pool, term(), string()}}.
check_spec(default, _Spec) ->
    bad(default, "default is the embedded pool (this node's workers): it is always there");
check_spec(Name, _Spec) when not is_atom(Name) ->
    bad(Name, "a pool's name is an atom");
check_spec(Name, #{kind := embedded}) ->
    bad(Name, "the only embedded pool is default (one interpreter per node): "
        "use kind => nodes");
check_spec(Name, #{kind := nodes} = Spec) ->
    Known = [kind, size, nodes, workers, env, max_restarts, restart_period, boot_timeout,
             scheduler],
    case maps:keys(maps:without(Known, Spec)) of
        [] -> check_fields(Name, maps:to_list(maps:remove(kind, Spec)), Spec);
        [Key | _] -> bad(Name, io_lib:format("unknown key ~p (known: ~p)", [Key, Known]))
    end;
check_spec(Name, #{kind := Kind}) ->
    bad(Name, io_lib:format("unknown kind ~p: expected nodes", [Kind]));
check_spec(Name, Spec) when is_map(Spec) ->
    bad(Name, "kind is missing: expected kind => nodes");
check_spec(Name, _Spec) ->
    bad(Name, "expected a map such as #{kind => nodes, size => 2}").

check_fields(Name, [], Spec) ->
    case Spec of
        #{size := _, nodes := _} -> bad(Name, "size and nodes exclude each other");
        #{nodes := _, env := _} -> bad(Name, "env is for nodes the pool starts (size), not joined ones");
        #{nodes := _} -> {ok, Spec};
        #{} -> {ok, maps:merge(#{size => 2}, Spec)}
    end;
check_fields(Name, [{Key, Value} | Rest], Spec) ->
    Ok = case Key of
             size -> is_integer(Value) andalso Value > 0;
             workers -> is_integer(Value) andalso Value > 0;
             max_restarts -> is_integer(Value) andalso Value >= 0;
             restart_period -> is_integer(Value) andalso Value > 0;
             boot_timeout -> Value =:= infinity orelse (is_integer(Value) andalso Value > 0);
             scheduler -> lists:member(Value, [shared, round_robin, random, least_loaded, keyed])
                              orelse (is_tuple(Value) andalso tuple_size(Value) =:= 2
                                      andalso is_atom(element(1, Value))
                                      andalso is_atom(element(2, Value)));
             nodes -> is_list(Value) andalso Value =/= [] andalso lists:all(fun is_atom/1, Value)
                          andalso length(lists:usort(Value)) =:= length(Value);
             env -> is_list(Value) andalso
                        lists:all(fun({K, _}) -> is_atom(K) andalso K =/= pools; (_) -> false end,
                                  Value)
         end,
    case Ok of
        true -> check_fields(Name, Rest, Spec);
        false -> bad(Name, io_lib:format("bad ~p: ~0p", [Key, Value]))
    end.

bad(Name, Why) ->
    {error, {bad_pool, Name, lists:flatten(Why)}}.

%%% ------------------------------------------------------------------
%%% The hot path: no process hop
%%% ------------------------------------------------------------------

%% @private
%% @doc The live members of node pool `Name', its round-robin counter and
%% its scheduler; raises `{py_no_pool, Name}' for a pool that does not
%% exist (`py_not_started' when py is not running), `{py_pool_down,
%% Name}' when none of its nodes is up.
-spec members(name()) -> {tuple(), atomics:atomics_ref(), py_config:scheduler()}.
members(Name) ->
    case persistent_term:get(?MEMBERS(Name), undefined) of
        {Members, _, _} = Published when tuple_size(Members) > 0 -> Published;
        {_, _, _} -> erlang:error({py_pool_down, Name});
        undefined ->
            case whereis(?MODULE) of
                undefined -> erlang:error(py_not_started);
                _ -> erlang:error({py_no_pool, Name})
            end
    end.

%% @private
%% @doc What this node knows of `Node' as a pool's node: `{member, M}'
%% while it serves a pool, `{restarted, Pool}' once it was restarted (or
%% its pool stopped), `none' for any other node.
-spec node_member(node()) -> {member, py_node_server:member()} | {restarted, name()} | none.
node_member(Node) ->
    maps:get(Node, persistent_term:get(?NODES, #{}), none).

%% @private
%% @doc The nodes of node pool `Name' (the live ones), for identical
%% calls.
-spec nodes_of(name()) -> [node()].
nodes_of(Name) ->
    {Members, _, _} = members(Name),
    [py_node_server:node_of(M) || M <- tuple_to_list(Members)].

%% @private
%% @doc `N' calls of this process are in flight on a member (load `Load',
%% server `Server'), their replies to `ReplyTo': counted in the member's
%% load until the returned function runs. If this process dies first, the
%% registry (which watches it) takes them off the load and asks the
%% server to cancel them.
-spec in_flight(reference(), atomics:atomics_ref(), pos_integer(), pid()) -> fun(() -> ok).
in_flight(ReplyTo, Load, N, Server) ->
    Self = self(),
    case whereis(?MODULE) of
        undefined ->
            %% Being restarted: the new one watches the callers it finds in
            %% the table.
            ok;
        Registry ->
            case get(?WATCHER) of
                Registry -> ok;
                _ -> gen_server:cast(Registry, {watch, Self}),
                     put(?WATCHER, Registry)
            end
    end,
    Key = {Self, ReplyTo},
    _ = atomics:add(Load, 1, N),
    _ = (catch ets:insert(?CALLS, {Key, Load, N, Server})),
    fun() ->
            case catch ets:take(?CALLS, Key) of
                %% Taken by the registry (not while this process lives).
                [] -> ok;
                _ -> _ = atomics:sub(Load, 1, N), ok
            end
    end.

%%% ------------------------------------------------------------------
%%% Members (py_node)
%%% ------------------------------------------------------------------

%% @private
%% @doc The member process of slot `Slot' of pool `Name' serves: its
%% node's server is `Server'. It stays published while that process
%% lives, or until {@link down/2}.
-spec register(name(), py_pool:slot(), node(), {pid(), string()}) -> ok.
register(Name, Slot, Node, {Server, OsPid}) ->
    registry_call({register, Name, Slot, Node, Server, OsPid, self()}).

%% @private
%% @doc The node of slot `Slot' is down for now (a joined node that lost
%% its connection): out of the published members until it registers
%% again.
-spec down(name(), py_pool:slot()) -> ok.
down(Name, Slot) ->
    registry_call({down, Name, Slot, self()}).

%% @private
%% @doc A caller found the member's server gone (its node down, or py
%% stopped there): the member is out of the published ones at once,
%% before its `py_node' process notices.
-spec lost(py_node_server:member()) -> ok.
lost(Member) ->
    try gen_server:call(?MODULE, {lost, py_node_server:server(Member)}, infinity)
    catch exit:_ -> ok
    end.

%%% ------------------------------------------------------------------
%%% Pools' supervisors (py_node_pool)
%%% ------------------------------------------------------------------

%% @private
%% @doc Pool `Name' runs, its nodes under supervisor `Pid' (watched: a
%% pool whose supervisor stops for good, beyond its restart intensity,
%% has given up).
-spec pool_up(name(), pid()) -> ok.
pool_up(Name, Pid) ->
    registry_call({pool_up, Name, Pid}).

%% @private
%% @doc Pool `Name' could not start: `first' when it never ran (the
%% error is for `py:start_pool/2' or `py:start/0'), `again' when it ran
%% before (a restart that failed: the pool has given up).
-spec pool_failed(name(), term()) -> first | again.
pool_failed(Name, Why) ->
    registry_call({pool_failed, Name, Why}).

%% A call to the registry. A registry that is being restarted (killed, or
%% crashed) is waited for a little: members register across its restart.
registry_call(Request) ->
    registry_call(Request, ?REGISTRY_TRIES).

registry_call(Request, Tries) ->
    try
        gen_server:call(?MODULE, Request, infinity)
    catch
        exit:Why ->
            %% Its supervisor alive: it comes back. Else py is not running.
            case Tries > 1 andalso is_pid(whereis(py_pools_top)) of
                true ->
                    timer:sleep(?REGISTRY_WAIT),
                    registry_call(Request, Tries - 1);
                false ->
                    exit(Why)
            end
    end.

%%% ------------------------------------------------------------------
%%% The store
%%% ------------------------------------------------------------------

%% @private
%% @doc Makes the table that keeps the registry's state, in the calling
%% process (`py_sup', which lives as long as py does), with the pools of
%% the `pools' setting.
-spec new_store(py_config:config()) -> ok.
new_store(Config) ->
    %% The tables of a py that just stopped go with their owner's exit.
    _ = wait_tables_gone([?STORE, ?CALLS], 100),
    ?STORE = ets:new(?STORE, [named_table, public, set]),
    ?CALLS = ets:new(?CALLS, [named_table, public, ordered_set, {write_concurrency, true}]),
    Pools = maps:from_list([{Name, new_pool(Spec)} || {Name, Spec} <- maps:get(pools, Config, [])]),
    true = ets:insert(?STORE, {state, #{pools => Pools, restarts => #{}, gone => queue:new()}}),
    ok.

%% @private
%% @doc The pools the registry knows (for `py_pools_sup' to start), in
%% the order of their names.
-spec stored_pools() -> [{name(), spec()}].
stored_pools() ->
    [{state, #{pools := Pools}}] = ets:lookup(?STORE, state),
    lists:sort([{Name, Spec} || {Name, #{spec := Spec}} <- maps:to_list(Pools)]).

wait_tables_gone(Tables, Tries) ->
    case [T || T <- Tables, ets:whereis(T) =/= undefined] of
        [] -> ok;
        _ when Tries =< 1 -> ok;
        _ -> timer:sleep(10), wait_tables_gone(Tables, Tries - 1)
    end.

new_pool(Spec) ->
    #{spec => Spec, members => #{}, sup => undefined, state => running, ran => false}.

%% The callers watched are not kept (their monitors are this process's).
save(State) ->
    true = ets:insert(?STORE, {state, maps:remove(callers, State)}),
    State.

%% A caller died: its calls in flight are off their members' load, and
%% cancelled on their nodes.
caller_down(Caller) ->
    Keys = ets:select(?CALLS, [{{{Caller, '_'}, '_', '_', '_'}, [], [{element, 1, '$_'}]}]),
    lists:foreach(fun(Key = {_, ReplyTo}) ->
                          case ets:take(?CALLS, Key) of
                              [{_, Load, N, Server}] ->
                                  _ = atomics:sub(Load, 1, N),
                                  Server ! {'$py_cancel', ReplyTo};
                              [] ->
                                  ok
                          end
                  end, Keys).

%%% ------------------------------------------------------------------
%%% gen_server
%%% ------------------------------------------------------------------

%% @private
%% @doc Started by `py_pools_top', before `py_pools_sup'.
-spec start_link() -> {ok, pid()} | {error, term()}.
start_link() ->
    gen_server:start_link({local, ?MODULE}, ?MODULE, [], []).

%% State: pools => #{Name => #{spec, members => #{Slot => Entry},
%% sup => {Pid, MRef} | undefined, state => running | given_up,
%% ran => boolean()}}, restarts => #{{Name, Slot} => N}, gone => queue of
%% nodes remembered. Kept in the store after every change.
-record(entry, {node :: node(), server :: pid(), pid :: pid(), mref :: reference(),
                load :: atomics:atomics_ref(), state = up :: up | down,
                started :: boolean(),
                os_pid :: string() | undefined}).

%% @private
%% @doc The state of the store: on a restart, the processes of the pools
%% and their members are watched again (those that died meanwhile are
%% seen as dead at once), and published again.
-spec init([]) -> {ok, map()}.
init([]) ->
    process_flag(trap_exit, true),
    [{state, Stored = #{pools := Pools0}}] = ets:lookup(?STORE, state),
    Pools = maps:map(fun(_Name, Pool = #{members := Ms, sup := Sup}) ->
                             Pool#{members := maps:map(fun(_, E = #entry{pid = Pid}) ->
                                                               E#entry{mref = erlang:monitor(process, Pid)}
                                                       end, Ms),
                                   sup := case Sup of
                                              {Pid, _} -> {Pid, erlang:monitor(process, Pid)};
                                              undefined -> undefined
                                          end}
                     end, Pools0),
    Callers = maps:from_list([{Pid, erlang:monitor(process, Pid)}
                              || Pid <- lists:usort([P || {{P, _}, _, _, _} <- ets:tab2list(?CALLS)])]),
    State = save(Stored#{pools := Pools, callers => Callers}),
    [publish(Name, State) || Name <- maps:keys(Pools)],
    publish_nodes(State),
    {ok, State}.

%% @private
-spec handle_call(term(), gen_server:from(), map()) -> {reply, term(), map()}.
handle_call({add, Name, Spec}, _From, State = #{pools := Pools}) ->
    case Pools of
        #{Name := _} -> {reply, {error, {already_started, Name}}, State};
        #{} ->
            New = save(State#{pools := Pools#{Name => new_pool(Spec)}}),
            publish(Name, New),
            {reply, ok, New}
    end;
handle_call({remove, Name}, _From, State = #{pools := Pools}) ->
    case maps:take(Name, Pools) of
        {#{members := Members, sup := Sup}, Rest} ->
            _ = case Sup of
                    {_, SupRef} -> erlang:demonitor(SupRef, [flush]);
                    undefined -> ok
                end,
            New0 = maps:fold(fun(Slot, E, S) -> gone(Name, Slot, E, S) end,
                             State#{pools := Rest}, Members),
            _ = persistent_term:erase(?MEMBERS(Name)),
            publish_nodes(New0),
            #{restarts := Restarts} = New0,
            New = New0#{restarts := maps:filter(fun({P, _}, _) -> P =/= Name end, Restarts)},
            {reply, true, save(New)};
        error ->
            {reply, false, State}
    end;
handle_call({pool_up, Name, Pid}, _From, State = #{pools := Pools}) ->
    case Pools of
        #{Name := Pool = #{sup := Old}} ->
            _ = case Old of
                    {_, OldRef} -> erlang:demonitor(OldRef, [flush]);
                    undefined -> ok
                end,
            Up = Pool#{sup := {Pid, erlang:monitor(process, Pid)}, state := running, ran := true},
            {reply, ok, save(State#{pools := Pools#{Name := Up}})};
        #{} ->
            {reply, ok, State}
    end;
handle_call({pool_failed, Name, Why}, _From, State = #{pools := Pools}) ->
    case Pools of
        #{Name := Pool = #{ran := true}} ->
            ?LOG_ERROR("py: pool ~p could not be started again (~0p); it has given up: "
                       "calls raise {py_pool_down, ~p} until py:stop_pool/1",
                       [Name, Why, Name], #{py => pool_given_up}),
            {reply, again, save(State#{pools := Pools#{Name := Pool#{sup := undefined,
                                                                   state := given_up}}})};
        #{} ->
            {reply, first, State}
    end;
handle_call({register, Name, Slot, Node, Server, OsPid, Pid}, _From, State0) ->
    case State0 of
        #{pools := #{Name := #{members := Members, spec := Spec}}} ->
            State1 = case Members of
                         %% The same process again (its first call's reply
                         %% was lost with a registry that died).
                         #{Slot := #entry{pid = Pid, mref = OldRef}} ->
                             erlang:demonitor(OldRef, [flush]),
                             decrement_restarts(Name, Slot, State0);
                         #{Slot := Old} -> gone(Name, Slot, Old, State0);
                         #{} -> State0
                     end,
            Started = not is_map_key(nodes, Spec),
            Entry = #entry{node = Node, server = Server, pid = Pid, started = Started,
                           mref = erlang:monitor(process, Pid),
                           load = atomics:new(1, [{signed, true}]), os_pid = OsPid},
            #{pools := Pools = #{Name := Pool = #{members := Members1}},
              restarts := Restarts} = State1,
            New = State1#{pools := Pools#{Name := Pool#{members := Members1#{Slot => Entry}}},
                          restarts := case Restarts of
                                          #{{Name, Slot} := N} -> Restarts#{{Name, Slot} := N + 1};
                                          #{} -> Restarts#{{Name, Slot} => 0}
                                      end},
            publish(Name, New),
            {reply, ok, save(New)};
        #{} ->
            {reply, ok, State0}
    end;
handle_call({down, Name, Slot, Pid}, _From, State = #{pools := Pools}) ->
    case Pools of
        #{Name := Pool = #{members := #{Slot := E = #entry{pid = Pid}} = Members}} ->
            New = save(State#{pools := Pools#{Name := Pool#{members := Members#{Slot := E#entry{state = down}}}}}),
            publish(Name, New),
            {reply, ok, New};
        #{} ->
            {reply, ok, State}
    end;
handle_call({lost, Server}, _From, State = #{pools := Pools}) ->
    Found = [{Name, Slot} || {Name, #{members := Ms}} <- maps:to_list(Pools),
                             {Slot, #entry{server = S, state = up}} <- maps:to_list(Ms), S =:= Server],
    New = lists:foldl(fun({Name, Slot}, St = #{pools := Ps}) ->
                              #{Name := Pool = #{members := Ms = #{Slot := E}}} = Ps,
                              St1 = St#{pools := Ps#{Name := Pool#{members := Ms#{Slot := E#entry{state = down}}}}},
                              %% A node the pool started does not come back
                              %% (a peer halts without its connection).
                              remember_gone(E, Name, St1)
                      end, State, Found),
    [publish(Name, New) || {Name, _} <- Found],
    {reply, ok, case Found of
                    [] -> New;
                    _ -> save(New)
                end};
handle_call(info, _From, State = #{pools := Pools, restarts := Restarts}) ->
    Info = [{Name, #{name => Name, kind => nodes,
                     size => maps:get(size, Spec, length(maps:get(nodes, Spec, []))),
                     state => PoolState,
                     members => [#{id => Slot, node => E#entry.node, os_pid => E#entry.os_pid,
                                   state => E#entry.state,
                                   restarts => maps:get({Name, Slot}, Restarts, 0)}
                                 || {Slot, E} <- lists:sort(maps:to_list(Members))]}}
            || {Name, #{spec := Spec, members := Members, state := PoolState}}
                   <- maps:to_list(Pools)],
    {reply, Info, State};
handle_call(_Other, _From, State) ->
    {reply, {error, unknown_call}, State}.

%% @private
-spec handle_cast(term(), map()) -> {noreply, map()}.
handle_cast({watch, Caller}, State = #{callers := Callers}) ->
    case Callers of
        #{Caller := _} -> {noreply, State};
        #{} -> {noreply, State#{callers := Callers#{Caller => erlang:monitor(process, Caller)}}}
    end;
handle_cast(_Msg, State) ->
    {noreply, State}.

%% @private
-spec handle_info(term(), map()) -> {noreply, map()}.
handle_info({'DOWN', MRef, process, Pid, _Reason}, State = #{callers := Callers})
  when map_get(Pid, Callers) =:= MRef ->
    ok = caller_down(Pid),
    {noreply, State#{callers := maps:remove(Pid, Callers)}};
handle_info({'DOWN', MRef, process, _Pid, Reason}, State = #{pools := Pools}) ->
    %% A member process died (its node with it): out of the pool at once,
    %% before its supervisor restarts it.
    Found = [{Name, Slot, E} || {Name, #{members := Ms}} <- maps:to_list(Pools),
                                {Slot, E = #entry{mref = M}} <- maps:to_list(Ms), M =:= MRef],
    Sups = [Name || {Name, #{sup := {_, M}}} <- maps:to_list(Pools), M =:= MRef],
    case {Found, Sups} of
        {[{Name, Slot, E}], _} ->
            New = save(gone(Name, Slot, E, State)),
            publish(Name, New),
            {noreply, New};
        {[], [Name]} ->
            %% The pool's supervisor: `shutdown' is its end beyond its
            %% restart intensity (a transient child of py_pools_sup, not
            %% started again); killed or crashed, py_pools_sup starts it
            %% again (and it says so, {@link pool_up/2}).
            #{Name := Pool} = Pools,
            PoolState = case Reason of
                            shutdown ->
                                ?LOG_ERROR("py: pool ~p has given up (more restarts of its nodes "
                                           "than its restart intensity allows): calls raise "
                                           "{py_pool_down, ~p} until py:stop_pool/1",
                                           [Name, Name], #{py => pool_given_up}),
                                given_up;
                            _ ->
                                running
                        end,
            {noreply, save(State#{pools := Pools#{Name := Pool#{sup := undefined,
                                                                state := PoolState}}})};
        {[], []} ->
            {noreply, State}
    end;
handle_info(_Other, State) ->
    {noreply, State}.

%% @private
%% @doc Stopped with py: nothing is published any more. A registry that
%% crashed leaves what it published (it is still true: the pools run on)
%% for the one started in its place.
-spec terminate(term(), map()) -> ok.
terminate(Reason, #{pools := Pools}) when Reason =:= shutdown; Reason =:= normal ->
    _ = [persistent_term:erase(?MEMBERS(Name)) || Name <- maps:keys(Pools)],
    _ = persistent_term:erase(?NODES),
    ok;
terminate(_Reason, _State) ->
    ok.

decrement_restarts(Name, Slot, State = #{restarts := Restarts}) ->
    case Restarts of
        #{{Name, Slot} := 0} -> State#{restarts := maps:remove({Name, Slot}, Restarts)};
        #{{Name, Slot} := N} -> State#{restarts := Restarts#{{Name, Slot} := N - 1}};
        #{} -> State
    end.

%% A member leaves its slot (dead, replaced, or its pool stopped): a node
%% the pool started is remembered as gone, so that a handle of it fails
%% clearly.
gone(Name, Slot, E = #entry{mref = MRef}, State0) ->
    erlang:demonitor(MRef, [flush]),
    State = #{pools := Pools} = remember_gone(E, Name, State0),
    Pools1 = case Pools of
                 #{Name := Pool = #{members := Ms}} ->
                     Pools#{Name := Pool#{members := maps:remove(Slot, Ms)}};
                 #{} ->
                     Pools
             end,
    State#{pools := Pools1}.

%% A node of other machines stays: only the nodes the pool started are
%% gone for good.
remember_gone(#entry{started = false}, _Name, State) ->
    State;
remember_gone(#entry{node = Node}, Name, State = #{gone := Gone0}) ->
    Gone1 = queue:in({Node, Name}, Gone0),
    Gone = case queue:len(Gone1) > ?GONE_KEPT of
               true -> queue:drop(Gone1);
               false -> Gone1
           end,
    State#{gone := Gone}.

publish(Name, State = #{pools := Pools}) ->
    case Pools of
        #{Name := #{members := Members, spec := Spec}} ->
            Sched = maps:get(scheduler, Spec, least_loaded),
            Counter = case persistent_term:get(?MEMBERS(Name), undefined) of
                          {_, C, _} -> C;
                          undefined -> atomics:new(1, [{signed, false}])
                      end,
            Live = [member(Slot, E) || {Slot, E = #entry{state = up}} <- lists:sort(maps:to_list(Members))],
            persistent_term:put(?MEMBERS(Name), {list_to_tuple(Live), Counter, Sched});
        #{} ->
            ok
    end,
    publish_nodes(State).

member(Slot, #entry{node = Node, server = Server, load = Load, started = Started}) ->
    py_node_server:member(Slot, Node, Server, Load, case Started of
                                                        true -> node;
                                                        false -> server
                                                    end).

publish_nodes(#{pools := Pools, gone := Gone}) ->
    Restarted = maps:from_list([{N, {restarted, Pool}} || {N, Pool} <- queue:to_list(Gone)]),
    Live = maps:from_list([{E#entry.node, {member, member(Slot, E)}}
                           || {_Name, #{members := Ms}} <- maps:to_list(Pools),
                              {Slot, E = #entry{state = up}} <- maps:to_list(Ms)]),
    persistent_term:put(?NODES, maps:merge(Restarted, Live)).
