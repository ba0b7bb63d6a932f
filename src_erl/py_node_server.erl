%%% @private
%%% @doc The server a Python node runs for the pools of other nodes, and
%%% the caller's side of a call through it.
%%%
%%% Every node running py has one `py_node_server' process (a child of its
%%% `py_sup'), long-lived: a call from a node pool is one message to it
%%% and one reply, sent by the process that ran the call straight to the
%%% caller (no `erpc' spawn, no extra hop back):
%%%
%%% ```
%%% caller ── {'$py_call', Alias, Owner, Leader, Request, Opts} ──▶ py_node_server (on the node)
%%%                                                           │ spawn (local)
%%%                                                           ▼
%%%                                 py_engine:serve(Owner, Request, Opts) there
%%% caller ◀──────────────── {Alias, {ok, V} | {error, R}} ──┘
%%% '''
%%%
%%% The reply goes to an alias of the caller that the reply removes (so a
%%% reply that comes after the caller gave up is dropped by the runtime).
%%% A lost connection is `{py_nodedown, Node}' at once: the caller watches
%%% the node (`erlang:monitor_node/2', local: no message to the node) for
%%% the nodes a pool started, which halt if their server dies; it
%%% monitors the server itself on joined nodes (see {@link member()}).
%%%
%%% A caller that dies mid-call: its calls in flight are recorded here
%%% (`py_pools:in_flight/3'), and `py_pools', which watches the callers,
%%% takes them off the member's load and sends `{'$py_cancel', ReplyTo}'
%%% to the node's server, which kills the process running the call there:
%%% the node's worker sees its caller gone and interrupts the Python code,
%%% as for a local call.
%%% @end
-module(py_node_server).

-export([call/3, send_batch/3, member/5, slot/1, node_of/1, server/1, load/1]).
-export([start_link/0, init/1, loop/1]).

-export_type([member/0]).

-opaque member() :: {'$py_node', py_pool:slot(), node(), pid(), atomics:atomics_ref(), watch()}.
%% A node of a node pool as the pool publishes it: its slot (1-based),
%% its node, its server there, the count of calls this node has in
%% flight on it (the `queue_len' the schedulers see), and what a caller
%% watches while it waits.
-type watch() :: node | server.
%% `node': the connection only (`erlang:monitor_node/2', no message to
%% the node): for the nodes a pool started, which halt when their server
%% dies (see `py_node'). `server': the server process (a monitor, two
%% more messages per call): for joined nodes, where py may stop while the
%% node lives on.

%% Extra time the caller gives the node over the call's own timeout, so
%% that the node's `py_timeout' (which interrupts the Python call) comes
%% back first.
-define(MARGIN, 2000).

%%% ------------------------------------------------------------------
%%% Caller side
%%% ------------------------------------------------------------------

%% @doc A pool member: the server `Server' on `Node', in slot `Slot'.
-spec member(py_pool:slot(), node(), pid(), atomics:atomics_ref(), watch()) -> member().
member(Slot, Node, Server, Load, Watch) ->
    {'$py_node', Slot, Node, Server, Load, Watch}.

%% @doc The slot of a member.
-spec slot(member()) -> py_pool:slot().
slot({'$py_node', Slot, _, _, _, _}) -> Slot.

%% @doc The node of a member.
-spec node_of(member()) -> node().
node_of({'$py_node', _, Node, _, _, _}) -> Node.

%% @doc The server process of a member.
-spec server(member()) -> pid().
server({'$py_node', _, _, Server, _, _}) -> Server.

%% @doc The calls this node has in flight on the member.
-spec load(member()) -> non_neg_integer().
load({'$py_node', _, _, _, Load, _}) -> atomics:get(Load, 1).

%% @doc Runs a request on a member's node: `{ok, Value}' or `{error,
%% Reason}'. `{py_nodedown, Node}' at once when the connection is lost
%% (or the server is gone) during the call.
-spec call(member(), py_request:request(), py_opts:opts()) -> {ok, term()} | {error, term()}.
call({'$py_node', _, Node, _, _, Watch} = Member, Request, Opts) ->
    {Timeout, Owner, RemoteOpts} = py_remote:prepare(Node, Request, Opts),
    Wait = case Timeout of
               infinity -> infinity;
               _ -> Timeout + ?MARGIN
           end,
    Reply = case Watch of
                node -> call_watching_node(Member, Owner, Request, RemoteOpts, Wait);
                server -> call_watching_server(Member, Owner, Request, RemoteOpts, Wait)
            end,
    case Reply of
        timeout -> {error, {py_timeout, Timeout}};
        _ -> Reply
    end.

%% The reply comes to an alias that the reply itself removes (a late one
%% is dropped by the runtime); the node is watched locally.
call_watching_node({'$py_node', _, Node, Server, Load, _} = Member, Owner, Request, Opts, Wait) ->
    Alias = alias([reply]),
    true = erlang:monitor_node(Node, true),
    send_call(Server, Load, Alias, Owner, Request, Opts,
              fun() -> receive_watching_node(Member, Alias, Wait) end).

receive_watching_node({'$py_node', _, Node, _, _, _} = Member, Alias, Wait) ->
    receive
        {Alias, R} ->
            true = erlang:monitor_node(Node, false),
            %% A nodedown that came in meanwhile is not for later.
            receive {nodedown, Node} -> ok after 0 -> ok end,
            R;
        {nodedown, Node} ->
            _ = unalias(Alias),
            ok = py_pools:lost(Member),
            {error, {py_nodedown, Node}}
    after Wait ->
            _ = unalias(Alias),
            true = erlang:monitor_node(Node, false),
            receive {nodedown, Node} -> ok after 0 -> ok end,
            timeout
    end.

%% The server is monitored, the monitor's alias takes the reply (and the
%% reply removes the monitor).
call_watching_server({'$py_node', _, _, Server, Load, _} = Member, Owner, Request, Opts, Wait) ->
    MRef = erlang:monitor(process, Server, [{alias, reply_demonitor}]),
    send_call(Server, Load, MRef, Owner, Request, Opts,
              fun() -> receive_watching_server(Member, MRef, Wait) end).

%% Sends a call to the node's server, its reply to `ReplyTo', counted in
%% the member's load (and known to py_pools, for a caller that dies) while
%% `Receive' waits for it.
send_call(Server, Load, ReplyTo, Owner, Request, Opts, Receive) ->
    Done = py_pools:in_flight(ReplyTo, Load, 1, Server),
    Server ! {'$py_call', ReplyTo, Owner, group_leader(), Request, Opts},
    try Receive()
    after Done()
    end.

receive_watching_server({'$py_node', _, Node, _, _, _} = Member, MRef, Wait) ->
    receive
        {MRef, R} ->
            R;
        {'DOWN', MRef, process, _, _} ->
            %% Out of the pool before this caller's next call.
            ok = py_pools:lost(Member),
            {error, {py_nodedown, Node}}
    after Wait ->
            erlang:demonitor(MRef, [flush]),
            timeout
    end.

%% @doc Sends a batch of requests (of a scatter) to a member's node,
%% which runs them there in parallel (`py_parallel:serve_batch/3'); the
%% caller receives `{MRef, [Result]}' in the order of `Requests', or
%% `{'DOWN', MRef, process, _, _}' if the node is lost meanwhile. The
%% member's load (see {@link load/1}) counts the batch's requests until
%% the caller runs the returned function.
-spec send_batch(member(), [py_request:request()], py_opts:opts()) ->
          {reference(), fun(() -> ok)}.
send_batch({'$py_node', _, Node, Server, Load, _}, Requests, Opts) ->
    Prepared = [py_remote:prepare(Node, R, Opts) || R <- Requests],
    {_, Owner, RemoteOpts} = hd(Prepared),
    MRef = erlang:monitor(process, Server, [{alias, reply_demonitor}]),
    Done = py_pools:in_flight(MRef, Load, length(Requests), Server),
    Server ! {'$py_batch', MRef, Owner, group_leader(), Requests, RemoteOpts},
    {MRef, Done}.

%%% ------------------------------------------------------------------
%%% Server side
%%% ------------------------------------------------------------------

%% @doc Started by `py_sup' on every node running py.
-spec start_link() -> {ok, pid()}.
start_link() ->
    proc_lib:start_link(?MODULE, init, [self()]).

%% @doc The server's start: registers it, then serves.
-spec init(pid()) -> no_return().
init(Parent) ->
    true = register(?MODULE, self()),
    proc_lib:init_ack(Parent, {ok, self()}),
    loop(#{}).

%% @doc Each call runs in a process of its own (so that a long call does
%% not hold up the next), which replies to the caller itself. `Running'
%% maps the reply address of each call to its process and back (by its
%% monitor), for `{'$py_cancel', ReplyTo}'.
-spec loop(#{reference() => pid() | reference()}) -> no_return().
loop(Running) ->
    receive
        {'$py_call', ReplyTo, Owner, Leader, Request, Opts} ->
            {Pid, MRef} = spawn_monitor(fun() ->
                                                %% What Python prints goes to the caller's
                                                %% group leader, as in a local call.
                                                true = group_leader(Leader, self()),
                                                ReplyTo ! {ReplyTo, py_engine:serve(Owner, Request, Opts)}
                                        end),
            ?MODULE:loop(Running#{ReplyTo => Pid, MRef => ReplyTo});
        {'$py_batch', ReplyTo, Owner, Leader, Requests, Opts} ->
            {Pid, MRef} = spawn_monitor(fun() ->
                                                true = group_leader(Leader, self()),
                                                ReplyTo ! {ReplyTo, py_parallel:serve_batch(Owner, Requests, Opts)}
                                        end),
            ?MODULE:loop(Running#{ReplyTo => Pid, MRef => ReplyTo});
        {'DOWN', MRef, process, _, _} ->
            case maps:take(MRef, Running) of
                {ReplyTo, Rest} -> ?MODULE:loop(maps:remove(ReplyTo, Rest));
                error -> ?MODULE:loop(Running)
            end;
        {'$py_cancel', ReplyTo} ->
            %% Its caller died: the worker running its job sees the job's
            %% caller (this process) gone, and interrupts it.
            _ = case Running of
                    #{ReplyTo := Pid} -> exit(Pid, kill);
                    #{} -> true
                end,
            ?MODULE:loop(Running);
        {'EXIT', _, Reason} ->
            exit(Reason);
        _Other ->
            ?MODULE:loop(Running)
    end.
