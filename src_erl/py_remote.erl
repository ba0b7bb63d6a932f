%%% @doc Python nodes: calls to py on other Erlang nodes, handles that
%%% live there, and peer nodes started from here.
%%%
%%% Distributed Erlang is the transport: a call to another node is
%%% `erpc:call(Node, py_engine, serve, ...)', which runs the request there
%%% through the engine.
%%% There is no wire protocol of py's own.
%%%
%%% NIF resources (the references inside handles) do not survive
%%% distribution: on another node they are plain references that keep
%%% nothing alive. So the serving node keeps every handle of a result in a
%%% table and sends `{'$py', TypeName, {'$py_remote', Node, Id}}' instead;
%%% the entry belongs to the calling process (watched with a monitor: its
%%% handles are released when it exits or its node disconnects) until
%%% {@link release/1}. A call whose object, callable or top-level argument
%%% is a remote handle goes to that handle's node, where the ids are
%%% swapped back for the real handles.
%%%
%%% This process owns the handle tables, watches their owners, is this
%%% node's member of the `pg' group that {@link nodes/0} lists, and owns the
%%% peer nodes {@link start_node/2} started (they stop with py).
%%% @end
-module(py_remote).
-behaviour(gen_server).

-include_lib("kernel/include/logger.hrl").

%% Caller side (py_engine, the facade)
-export([call/3, prepare/3, release/1, nodes/0, start_node/2, spawn_node/3, stop_node/1]).
-compile({no_auto_import, [nodes/0]}).
%% Serving side (py_engine:serve/3, erpc)
-export([unwrap/1, lend/2, drop/1, handles/0]).
-export([start_link/0, init/1, handle_call/3, handle_cast/2, handle_info/2, terminate/2]).

-export_type([remote_handle/0, node_opts/0]).

-type remote_handle() :: {'$py', TypeName :: binary(), {'$py_remote', node(), reference()}}.
%% A handle to an object that lives on another node.

-type node_opts() :: #{env => [{atom(), term()}],
                       code_path => [file:filename()],
                       args => [string()],
                       boot_timeout => timeout()}.
%% Options of {@link start_node/2}: `env' py settings for the new node
%% (on top of this node's py environment, which is copied), `code_path'
%% the directories to add in front of its code path (default: every
%% directory of this node's code path outside the OTP installation),
%% `args' extra `erl' arguments, `boot_timeout' how long the node and its
%% py may take to start (default 60000 ms).

%% The pg scope (started by py_sup) and the group every py node joins.
-define(SCOPE, py_pg).
-define(GROUP, py_nodes).
%% {Id, Handle, Owner}: the handles lent to other nodes' processes.
-define(HANDLES, py_remote_handles).
%% {Owner, Id} (a bag): what to release when an owner exits.
-define(OWNED, py_remote_owned).
%% {Owner, MRef}: the owners watched.
-define(OWNERS, py_remote_owners).
%% Extra time the caller gives a remote call over its own timeout, so that
%% the serving node's `py_timeout' (which interrupts the Python call)
%% comes back before erpc gives up.
-define(MARGIN, 2000).

%%% ------------------------------------------------------------------
%%% Calling another node
%%% ------------------------------------------------------------------

%% @private
%% @doc Runs a request on another node `Node' (through erpc, with
%% `py_engine:serve/3' there): `{ok, Value}' or `{error, Reason}'. A lost
%% connection is `{py_nodedown, Node}' at once; a node without py is
%% `{py_not_on_node, Node}'. The request must not carry handles of this
%% node (their objects cannot travel) nor of a third node.
-spec call(node(), py_request:request(), py_opts:opts()) -> {ok, term()} | {error, term()}.
call(Node, Request, Opts) ->
    {Timeout, Owner, RemoteOpts} = prepare(Node, Request, Opts),
    ErpcTimeout = case Timeout of
                      infinity -> infinity;
                      _ -> Timeout + ?MARGIN
                  end,
    try
        erpc:call(Node, py_engine, serve, [Owner, Request, RemoteOpts], ErpcTimeout)
    catch
        error:{erpc, noconnection} -> {error, {py_nodedown, Node}};
        error:{erpc, timeout} -> {error, {py_timeout, Timeout}};
        error:{exception, undef, [{py_engine, serve, _, _} | _]} -> {error, {py_not_on_node, Node}};
        error:{exception, Reason, _Stack} -> {error, Reason}
    end.

%% @private
%% @doc What may go to another node, checked (raises `{py_badarg, _, _}'
%% otherwise: a handle of this node or of a third node, a context), and
%% how: the call's timeout (this node's default, not the other's), the
%% process the handles of the result will belong to, and the options for
%% `py_engine:serve/3' there. For every transport (erpc here, the pools'
%% node servers).
-spec prepare(node(), py_request:request(), py_opts:opts()) -> {timeout(), pid(), py_opts:opts()}.
prepare(Node, Request, Opts) ->
    ok = py_request:fold_handles(fun(H, ok) -> check_handle(Node, H) end, ok, Request),
    case is_map_key(context, Opts) orelse py_context:current() =/= undefined of
        true -> erlang:error({py_badarg, context_on_other_node, Node});
        false -> ok
    end,
    Timeout = case Opts of
                  #{timeout := T} -> T;
                  #{} -> py_config:get(call_timeout)
              end,
    Owner = maps:get(owner, Opts, self()),
    %% The serving node uses this node's timeout, not its own default.
    {Timeout, Owner, maps:without([node, owner, pool], Opts#{timeout => Timeout})}.

check_handle(Node, Handle) ->
    case py_request:handle_kind(Handle) of
        {remote, Node, _} -> ok;
        {remote, Other, _} -> erlang:error({py_badarg, mixed_nodes, [Node, Other]});
        local -> erlang:error({py_badarg, handle_not_on_node, Handle});
        forged -> ok
    end.

%%% ------------------------------------------------------------------
%%% Serving a call from another node (see py_engine:serve/3)
%%% ------------------------------------------------------------------

%% @private
%% @doc This node's remote handles, anywhere in the term, back to the
%% real handles. Remote handles of other nodes cannot be used here.
-spec unwrap(term()) -> term().
unwrap(Term) ->
    {Unwrapped, _} = walk(fun unwrap_one/2, Term, none),
    Unwrapped.

unwrap_one({'$py', _, {'$py_remote', Node, Id}} = Remote, Acc) when Node =:= node() ->
    case ets:lookup(?HANDLES, Id) of
        [{_, Handle, _}] -> {Handle, Acc};
        [] -> erlang:error({py_badarg, released_handle, Remote})
    end;
unwrap_one({'$py', _, {'$py_remote', Node, _}}, _Acc) ->
    erlang:error({py_badarg, mixed_nodes, [node(), Node]});
unwrap_one(Other, Acc) ->
    {continue, Other, Acc}.

%% @private
%% @doc Every handle in the term becomes a remote handle owned by `Owner'.
-spec lend(term(), pid()) -> term().
lend(Term, Owner) ->
    case walk(fun lend_one/2, Term, []) of
        {Lent, []} ->
            Lent;
        {Lent, Entries} ->
            %% Entries first, then make sure the owner is watched: an owner
            %% that dies meanwhile is then cleaned up either by the 'DOWN'
            %% being handled (after our insert), or by a new watch (the
            %% monitor of a dead process fires at once).
            true = ets:insert(?HANDLES, [{Id, H, Owner} || {Id, H} <- Entries]),
            true = ets:insert(?OWNED, [{Owner, Id} || {Id, _} <- Entries]),
            ok = watch(Owner),
            Lent
    end.

lend_one({'$py', Type, Ref} = Handle, Acc) when is_binary(Type), is_reference(Ref) ->
    Id = make_ref(),
    {{'$py', Type, {'$py_remote', node(), Id}}, [{Id, Handle} | Acc]};
lend_one(Other, Acc) ->
    {continue, Other, Acc}.

%% Maps `Fun' over a term, depth first: `Fun(Term, Acc)' returns the new
%% term and accumulator, or `{continue, Term, Acc}' to look inside.
walk(Fun, Term, Acc) ->
    case Fun(Term, Acc) of
        {continue, T, Acc1} when is_list(T) -> walk_list(Fun, T, Acc1, []);
        {continue, T, Acc1} when is_tuple(T) ->
            {Items, Acc2} = walk_list(Fun, tuple_to_list(T), Acc1, []),
            {list_to_tuple(Items), Acc2};
        {continue, T, Acc1} when is_map(T) ->
            maps:fold(fun(K, V, {M, A}) ->
                              {K1, A1} = walk(Fun, K, A),
                              {V1, A2} = walk(Fun, V, A1),
                              {M#{K1 => V1}, A2}
                      end, {#{}, Acc1}, T);
        {continue, T, Acc1} -> {T, Acc1};
        Done -> Done
    end.

walk_list(Fun, [H | T], Acc, Out) ->
    {H1, Acc1} = walk(Fun, H, Acc),
    walk_list(Fun, T, Acc1, [H1 | Out]);
walk_list(_Fun, [], Acc, Out) ->
    {lists:reverse(Out), Acc};
walk_list(Fun, Tail, Acc, Out) ->
    %% An improper list: kept improper (the NIF reports it).
    {Tail1, Acc1} = walk(Fun, Tail, Acc),
    {lists:reverse(Out, Tail1), Acc1}.

%% @private
%% @doc Releases the handle with this id (lent by this node); `ok' when
%% it was released already.
-spec drop(reference()) -> ok.
drop(Id) ->
    case ets:take(?HANDLES, Id) of
        [{Id, _, Owner}] -> true = ets:delete_object(?OWNED, {Owner, Id}), ok;
        [] -> ok
    end.

%% @private
%% @doc How many handles this node lends to processes of other nodes.
-spec handles() -> non_neg_integer().
handles() ->
    case ets:info(?HANDLES, size) of
        undefined -> 0;
        N -> N
    end.

watch(Owner) ->
    case ets:member(?OWNERS, Owner) of
        true -> ok;
        false -> gen_server:call(?MODULE, {watch, Owner}, infinity)
    end.

%%% ------------------------------------------------------------------
%%% Handles, nodes, peers (caller side)
%%% ------------------------------------------------------------------

%% @private
%% @doc Releases a handle now. A remote handle's object is dropped on its
%% node (later use raises `{py_badarg, released_handle, H}'); a handle of
%% a node that is down is released already. A local handle is released by
%% the garbage collector once no term refers to it: `ok', nothing to do.
-spec release(py:handle() | remote_handle()) -> ok.
release({'$py', _, {'$py_remote', Node, Id}}) when Node =:= node() ->
    drop(Id);
release({'$py', _, {'$py_remote', Node, Id}}) ->
    try erpc:call(Node, ?MODULE, drop, [Id], 5000)
    catch
        error:{erpc, noconnection} -> ok;
        error:{exception, undef, _} -> ok
    end;
release({'$py', Type, Ref}) when is_binary(Type), is_reference(Ref) ->
    ok;
release(Other) ->
    erlang:error({py_badarg, not_a_handle, Other}).

%% @private
%% @doc The nodes that serve Python (this one included when py runs
%% here), as the `pg' group of py nodes says. Without py here, the
%% connected nodes are asked.
-spec nodes() -> [node()].
nodes() ->
    case whereis(?SCOPE) of
        undefined ->
            Connected = erlang:nodes(),
            Replies = erpc:multicall(Connected, erlang, whereis, [?MODULE], 5000),
            lists:sort([N || {N, {ok, Pid}} <- lists:zip(Connected, Replies), is_pid(Pid)]);
        _ ->
            lists:usort([node(P) || P <- pg:get_members(?SCOPE, ?GROUP)])
    end.

%% @private
%% @doc Starts a peer node `Name@ThisHost' with OTP's `peer', sets up and
%% starts py there (with this node's py settings, see {@link node_opts()})
%% and returns once the node serves Python. The node is owned by this
%% node's py: it stops with it, or with {@link stop_node/1}.
%%
%% This node must be alive (distributed) and py must run here. The new
%% node listens on the loopback interface only: this node's host name must
%% resolve to a loopback address (true of `-name n@127.0.0.1', and of
%% `-sname n' where the host name maps to 127.0.x.1 in /etc/hosts).
%%
%% Errors: `not_distributed', `py_not_started', `{not_loopback, Host,
%% Why}', `{already_running, Node}', `{setup_failed, Node, Why}', py's own
%% start error there (e.g. `{bad_config, ...}'), or an error of `peer'.
-spec start_node(atom() | string(), node_opts()) -> {ok, node()} | {error, term()}.
start_node(Name, Opts) when is_map(Opts) ->
    case is_alive() andalso whereis(?MODULE) =:= undefined of
        true ->
            {error, py_not_started};
        false ->
            %% Not linked to the caller (a shell that crashes must not
            %% take the node along): this node's py_remote adopts it.
            case spawn_node(Name, Opts, false) of
                {ok, Peer, Node} ->
                    ok = gen_server:call(?MODULE, {adopt, Node, Peer}),
                    {ok, Node};
                {error, _} = Error ->
                    Error
            end
    end.

%% @private
%% @doc Starts a Python node `Name@ThisHost' with OTP's `peer' (linked to
%% the caller when `Link'), on the loopback interface, and py there, with
%% this node's py settings (but its pools) under `Opts''s: see
%% {@link start_node/2}. Returns once the node serves Python, with the
%% peer's control process (`peer:stop/1' halts the node). Used by
%% {@link start_node/2} and by the node pools (`py_node').
-spec spawn_node(atom() | string(), node_opts(), boolean()) ->
          {ok, pid(), node()} | {error, term()}.
spawn_node(Name, Opts, Link) ->
    case is_alive() of
        false -> {error, not_distributed};
        true -> start_peer(Name, Opts, Link)
    end.

start_peer(Name, Opts, Link) ->
    [_, Host] = string:split(atom_to_list(node()), "@"),
    case loopback(Host) of
        {ok, Ip} ->
            BootTimeout = maps:get(boot_timeout, Opts, 60000),
            %% Loopback only; this node's cookie; connected to this node
            %% alone (not to each other: no mesh of peers to keep up).
            Args = ["-setcookie", atom_to_list(erlang:get_cookie()),
                    "-kernel", "inet_dist_use_interface", lists:flatten(io_lib:format("~w", [Ip])),
                    "-connect_all", "false"]
                ++ maps:get(args, Opts, []),
            Node = list_to_atom(lists:concat([Name, "@", Host])),
            case running(Node) orelse spawn_peer(Name, Host, Args, BootTimeout, Link) of
                true ->
                    {error, {already_running, Node}};
                {ok, Peer, Started} ->
                    case setup(Started, Opts, BootTimeout) of
                        ok ->
                            wait_listed(Started, 250),
                            {ok, Peer, Started};
                        {error, _} = Error ->
                            _ = (catch peer:stop(Peer)),
                            Error
                    end;
                {error, _} = Error ->
                    Error
            end;
        {error, Why} ->
            {error, {not_loopback, Host, Why}}
    end.

%% A node of that name answers (peer would wait for the boot of a node
%% that cannot take the name, then time out).
running(Node) ->
    net_adm:ping(Node) =:= pong.

spawn_peer(Name, Host, Args, BootTimeout, Link) ->
    Start = case Link of
                true -> start_link;
                false -> start
            end,
    try
        peer:Start(#{name => Name, host => Host, args => Args, wait_boot => BootTimeout})
    catch
        exit:Reason -> {error, Reason}
    end.

loopback(Host) ->
    Family = case lists:member(inet6, proplists:get_value(proto_dist, init:get_arguments(), [])) of
                 true -> inet6;
                 false -> inet
             end,
    case inet:getaddr(Host, Family) of
        {ok, {127, _, _, _} = Ip} -> {ok, Ip};
        {ok, {0, 0, 0, 0, 0, 0, 0, 1} = Ip} -> {ok, Ip};
        {ok, Ip} -> {error, {resolves_to, Ip}};
        {error, Why} -> {error, Why}
    end.

%% Code path, py settings and py itself on the new node.
setup(Node, Opts, Timeout) ->
    Root = code:root_dir(),
    Paths = maps:get(code_path, Opts,
                     [P || P <- code:get_path(), P =/= ".",
                           not lists:prefix(Root, P), filelib:is_dir(P)]),
    %% This node's settings under the given ones; never its pools (a node
    %% does not start nodes of its own).
    Env = lists:ukeymerge(1, lists:ukeysort(1, maps:get(env, Opts, [])),
                          lists:ukeysort(1, proplists:delete(pools, application:get_all_env(py)))),
    try
        %% One by one, last first: the node's path then starts with ours,
        %% in our order.
        lists:foreach(fun(P) -> true = erpc:call(Node, code, add_patha, [P]) end,
                      lists:reverse(Paths)),
        case erpc:call(Node, application, load, [py]) of
            ok -> ok;
            {error, {already_loaded, py}} -> ok
        end,
        ok = erpc:call(Node, application, set_env, [[{py, Env}]]),
        erpc:call(Node, py, start, [], Timeout)
    catch
        Class:Reason -> {error, {setup_failed, Node, {Class, Reason}}}
    end.

%% pg tells the other nodes about a new member shortly after it joined.
wait_listed(_Node, 0) ->
    ok;
wait_listed(Node, Tries) ->
    case lists:member(Node, nodes()) of
        true -> ok;
        false -> timer:sleep(20), wait_listed(Node, Tries - 1)
    end.

%% @private
%% @doc Stops a node {@link start_node/2} started: it halts at once (calls
%% running there fail with `{py_nodedown, Node}' in their callers).
-spec stop_node(node()) -> ok | {error, {not_a_peer, node()}}.
stop_node(Node) ->
    case catch gen_server:call(?MODULE, {forget, Node}) of
        {ok, Peer} ->
            _ = (catch peer:stop(Peer)),
            ok;
        _ ->
            {error, {not_a_peer, Node}}
    end.

%%% ------------------------------------------------------------------
%%% gen_server
%%% ------------------------------------------------------------------

%% @private
%% @doc Started by `py_sup'.
-spec start_link() -> {ok, pid()} | {error, term()}.
start_link() ->
    gen_server:start_link({local, ?MODULE}, ?MODULE, [], []).

%% @private
-spec init([]) -> {ok, #{peers := #{node() => pid()}}}.
init([]) ->
    %% terminate/2 stops the peers this node started.
    process_flag(trap_exit, true),
    Public = [named_table, public, {read_concurrency, true}, {write_concurrency, true}],
    _ = ets:new(?HANDLES, [set | Public]),
    _ = ets:new(?OWNED, [bag | Public]),
    _ = ets:new(?OWNERS, [set, named_table, protected, {read_concurrency, true}]),
    ok = pg:join(?SCOPE, ?GROUP, self()),
    {ok, #{peers => #{}}}.

%% @private
-spec handle_call(term(), gen_server:from(), map()) -> {reply, term(), map()}.
handle_call({watch, Owner}, _From, State) ->
    case ets:member(?OWNERS, Owner) of
        true -> ok;
        false -> true = ets:insert(?OWNERS, {Owner, erlang:monitor(process, Owner)})
    end,
    {reply, ok, State};
handle_call({adopt, Node, Peer}, _From, State = #{peers := Peers}) ->
    true = link(Peer),
    {reply, ok, State#{peers := Peers#{Node => Peer}}};
handle_call({forget, Node}, _From, State = #{peers := Peers}) ->
    case maps:take(Node, Peers) of
        {Peer, Rest} ->
            true = unlink(Peer),
            {reply, {ok, Peer}, State#{peers := Rest}};
        error ->
            {reply, error, State}
    end;
handle_call(_Other, _From, State) ->
    {reply, {error, unknown_call}, State}.

%% @private
-spec handle_cast(term(), map()) -> {noreply, map()}.
handle_cast(_Msg, State) ->
    {noreply, State}.

%% @private
-spec handle_info(term(), map()) -> {noreply, map()}.
handle_info({'DOWN', _MRef, process, Owner, _Reason}, State) ->
    %% Not watched first, then its handles: see lend/2.
    true = ets:delete(?OWNERS, Owner),
    lists:foreach(fun({_, Id}) -> ets:delete(?HANDLES, Id) end, ets:take(?OWNED, Owner)),
    {noreply, State};
handle_info({'EXIT', Peer, Reason}, State = #{peers := Peers}) ->
    Gone = [N || {N, P} <- maps:to_list(Peers), P =:= Peer],
    _ = [?LOG_WARNING("py: peer node ~p stopped: ~p", [N, Reason], #{py => peer_down})
         || N <- Gone],
    {noreply, State#{peers := maps:without(Gone, Peers)}};
handle_info(_Other, State) ->
    {noreply, State}.

%% @private
-spec terminate(term(), map()) -> ok.
terminate(_Reason, #{peers := Peers}) ->
    _ = [catch peer:stop(P) || P <- maps:values(Peers)],
    ok.
