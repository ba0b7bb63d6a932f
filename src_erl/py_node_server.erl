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
%%% The caller monitors the server with an alias (`reply_demonitor'): the
%%% reply removes the monitor, a lost connection or a dead server is a
%%% `'DOWN'' at once (`{py_nodedown, Node}'), and a reply that comes after
%%% the caller gave up is dropped by the runtime (the alias is gone).
%%% @end
-module(py_node_server).

-export([call/3, send_batch/3, member/4, slot/1, node_of/1, server/1, load/1]).
-export([start_link/0, init/1, loop/0]).

-export_type([member/0]).

-opaque member() :: {'$py_node', py_pool:slot(), node(), pid(), atomics:atomics_ref()}.
%% A node of a node pool as the pool publishes it: its slot (1-based),
%% its node, its server there, and the count of calls this node has in
%% flight on it (the `queue_len' the schedulers see).

%% Extra time the caller gives the node over the call's own timeout, so
%% that the node's `py_timeout' (which interrupts the Python call) comes
%% back first.
-define(MARGIN, 2000).

%%% ------------------------------------------------------------------
%%% Caller side
%%% ------------------------------------------------------------------

%% @doc A pool member: the server `Server' on `Node', in slot `Slot'.
-spec member(py_pool:slot(), node(), pid(), atomics:atomics_ref()) -> member().
member(Slot, Node, Server, Load) ->
    {'$py_node', Slot, Node, Server, Load}.

%% @doc The slot of a member.
-spec slot(member()) -> py_pool:slot().
slot({'$py_node', Slot, _, _, _}) -> Slot.

%% @doc The node of a member.
-spec node_of(member()) -> node().
node_of({'$py_node', _, Node, _, _}) -> Node.

%% @doc The server process of a member.
-spec server(member()) -> pid().
server({'$py_node', _, _, Server, _}) -> Server.

%% @doc The calls this node has in flight on the member.
-spec load(member()) -> non_neg_integer().
load({'$py_node', _, _, _, Load}) -> atomics:get(Load, 1).

%% @doc Runs a request on a member's node: `{ok, Value}' or `{error,
%% Reason}'. `{py_nodedown, Node}' at once when the connection is lost
%% (or the server is gone) during the call.
-spec call(member(), py_request:request(), py_opts:opts()) -> {ok, term()} | {error, term()}.
call({'$py_node', _, Node, Server, Load} = Member, Request, Opts) ->
    {Timeout, Owner, RemoteOpts} = py_remote:prepare(Node, Request, Opts),
    Wait = case Timeout of
               infinity -> infinity;
               _ -> Timeout + ?MARGIN
           end,
    MRef = erlang:monitor(process, Server, [{alias, reply_demonitor}]),
    _ = atomics:add(Load, 1, 1),
    Server ! {'$py_call', MRef, Owner, group_leader(), Request, RemoteOpts},
    Reply = receive
                {MRef, R} ->
                    R;
                {'DOWN', MRef, process, _, _} ->
                    %% Out of the pool before this caller's next call.
                    ok = py_pools:lost(Member),
                    {error, {py_nodedown, Node}}
            after Wait ->
                    erlang:demonitor(MRef, [flush]),
                    {error, {py_timeout, Timeout}}
            end,
    _ = atomics:sub(Load, 1, 1),
    Reply.

%% @doc Sends a batch of requests (of a scatter) to a member's node,
%% which runs them there in parallel (`py_parallel:serve_batch/3'); the
%% caller receives `{MRef, [Result]}' in the order of `Requests', or
%% `{'DOWN', MRef, process, _, _}' if the node is lost meanwhile. The
%% member's load (see {@link load/1}) counts the batch's requests until
%% the caller runs the returned function.
-spec send_batch(member(), [py_request:request()], py_opts:opts()) ->
          {reference(), fun(() -> ok)}.
send_batch({'$py_node', _, Node, Server, Load}, Requests, Opts) ->
    Prepared = [py_remote:prepare(Node, R, Opts) || R <- Requests],
    {_, Owner, RemoteOpts} = hd(Prepared),
    MRef = erlang:monitor(process, Server, [{alias, reply_demonitor}]),
    N = length(Requests),
    _ = atomics:add(Load, 1, N),
    Server ! {'$py_batch', MRef, Owner, group_leader(), Requests, RemoteOpts},
    {MRef, fun() -> _ = atomics:sub(Load, 1, N), ok end}.

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
    loop().

%% @doc Each call runs in a process of its own (so that a long call does
%% not hold up the next), which replies to the caller itself.
-spec loop() -> no_return().
loop() ->
    receive
        {'$py_call', ReplyTo, Owner, Leader, Request, Opts} ->
            _ = spawn(fun() ->
                              %% What Python prints goes to the caller's group
                              %% leader, as in a local call.
                              true = group_leader(Leader, self()),
                              ReplyTo ! {ReplyTo, py_engine:serve(Owner, Request, Opts)}
                      end),
            ?MODULE:loop();
        {'$py_batch', ReplyTo, Owner, Leader, Requests, Opts} ->
            _ = spawn(fun() ->
                              true = group_leader(Leader, self()),
                              ReplyTo ! {ReplyTo, py_parallel:serve_batch(Owner, Requests, Opts)}
                      end),
            ?MODULE:loop();
        {'EXIT', _, Reason} ->
            exit(Reason);
        _Other ->
            ?MODULE:loop()
    end.
