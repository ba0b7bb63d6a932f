%%% @private
%%% @doc Parallel calls: one call on every worker (identical calls), and
%%% many calls spread over the workers of one or more nodes
%%% (scatter/gather).
%%%
%%% Everything runs from the calling process, without a server: each call
%%% runs in a helper process of its own (spawned and monitored, not
%%% linked), which goes through `py_engine:call/2' like any call (a remote one
%%% through erpc) and exits with its result as exit reason, so one 'DOWN'
%%% message brings it back. A helper that crashes or is killed is one
%%% failed item; the caller never crashes with it. Scatter/gather keeps at
%%% most `max_in_flight' helpers alive, each holding a "slot" of a node; a
%%% slot freed by an item goes to the next one, so faster nodes take more
%%% items.
%%% @end
-module(py_parallel).

-export([on_all_workers/2, scatter/2, serve_batch/3, worker_ids/0]).

-type result() :: {ok, term()} | {error, py_errors:error_reason()}.
-export_type([result/0]).

%% The exit reason of a helper that finished its call.
-define(ITEM, '$py_item').
%% How long a node may take to say which workers it has.
-define(PROBE_TIMEOUT, 5000).

%% @doc Runs `Request' once on every worker of this node (keyed by worker
%% id), or with `{nodes, Nodes | all}' on every worker of those nodes
%% (keyed by `{Node, WorkerId}'; a node that cannot be reached is one
%% `{{Node, undefined}, {error, Reason}}'). All at once; results ordered
%% by key.
-spec on_all_workers(py_request:request(), py_opts:opts()) -> [{term(), result()}].
on_all_workers(Request, Opts0) ->
    Opts = pool_nodes(Opts0),
    CallOpts = py_opts:call_opts(Opts),
    {Places, Failed} =
        case Opts of
            #{nodes := Spec} ->
                lists:foldr(fun({Node, {ok, Ids}}, {P, F}) ->
                                    {[{{Node, Id}, (place(Node))#{worker => Id}} || Id <- Ids] ++ P, F};
                               ({Node, {error, Why}}, {P, F}) ->
                                    {P, [{{Node, undefined}, {error, Why}} | F]}
                            end, {[], []}, probe(node_list(Spec)));
            #{} ->
                case worker_ids() of
                    [] -> erlang:error(py_not_started);
                    Ids -> {[{Id, #{worker => Id}} || Id <- Ids], []}
                end
        end,
    Running = [{spawn_item(Request, maps:merge(CallOpts, Place)), Key} || {Key, Place} <- Places],
    Done = [{Key, receive {'DOWN', MRef, process, _, Reason} -> result(Reason) end}
            || {MRef, Key} <- Running],
    lists:keysort(1, Done ++ Failed).

%% A node pool's identical calls are those of its nodes.
pool_nodes(#{pool := Name, nodes := _}) ->
    erlang:error({py_badarg, bad_option, {pool, Name}});
pool_nodes(Opts = #{pool := default}) ->
    maps:remove(pool, Opts);
pool_nodes(Opts = #{pool := Name}) ->
    (maps:remove(pool, Opts))#{nodes => py_pools:nodes_of(Name)};
pool_nodes(Opts) ->
    Opts.

%% @doc Runs the requests, at most `max_in_flight' at a time, on this
%% node's workers or those of `{nodes, Nodes | all}'; returns their results
%% in the order of the requests. Other options are call options, for every
%% request (a `{timeout, Ms}' is per request).
-spec scatter([py_request:request()], py_opts:opts()) -> [result()].
scatter([], _Opts) ->
    [];
scatter(Requests, Opts = #{pool := Name}) when Name =/= default ->
    is_map_key(nodes, Opts) andalso erlang:error({py_badarg, bad_option, {pool, Name}}),
    scatter_pool(Name, Requests, Opts);
scatter(Requests, Opts) ->
    Weights = case Opts of
                  #{nodes := Spec} ->
                      Nodes = node_list(Spec),
                      case [{N, length(Ids)} || {N, {ok, Ids}} <- probe(Nodes), Ids =/= []] of
                          [] -> erlang:error({py_no_nodes, Nodes});
                          W -> W
                      end;
                  #{} ->
                      case worker_ids() of
                          [] -> erlang:error(py_not_started);
                          Ids -> [{node(), length(Ids)}]
                      end
              end,
    Max = maps:get(max_in_flight, Opts, 2 * lists:sum([C || {_, C} <- Weights])),
    Slots = queue:from_list(slots(Weights, Max)),
    Items = lists:zip(lists:seq(1, length(Requests)), Requests),
    Results = run(Items, Slots, #{}, #{}, py_opts:call_opts(Opts), none),
    [maps:get(I, Results) || I <- lists:seq(1, length(Requests))].

%%% Scatter over a node pool --------------------------------------------
%%
%% The requests go to the pool's nodes in batches (one message each way
%% per batch, not per call), at most two batches at a time on each node:
%% each node runs its batch as a scatter of its own, on its workers
%% (`serve_batch/3'), while the next batch travels. A batch lost with its
%% node fails its calls (`{py_nodedown, Node}'); the others go on, on the
%% pool's nodes of the moment (a restarted node takes batches again).

-define(BATCHES_PER_NODE, 2).
-define(MAX_BATCH, 250).

scatter_pool(Name, Requests, Opts) ->
    {Members, _, _} = py_pools:members(Name),
    Nodes = tuple_size(Members),
    Count = length(Requests),
    Size = max(1, min(?MAX_BATCH, Count div (4 * Nodes))),
    Batches = batches(lists:zip(lists:seq(1, Count), Requests), Size),
    %% On each node, `max_in_flight' is shared out between the nodes.
    NodeOpts0 = maps:without([pool, max_in_flight], py_opts:call_opts(Opts)),
    NodeOpts = case Opts of
                   #{max_in_flight := Max} -> NodeOpts0#{max_in_flight => max(1, Max div Nodes)};
                   #{} -> NodeOpts0
               end,
    Results = pool_run(Name, Batches, #{}, #{}, NodeOpts#{owner => self()}),
    [maps:get(I, Results) || I <- lists:seq(1, Count)].

batches([], _Size) -> [];
batches(Items, Size) when length(Items) =< Size -> [Items];
batches(Items, Size) ->
    {Batch, Rest} = lists:split(Size, Items),
    [Batch | batches(Rest, Size)].

pool_run(_Name, [], InFlight, Results, _Opts) when map_size(InFlight) =:= 0 ->
    Results;
pool_run(Name, Batches, InFlight, Results, Opts) ->
    case Batches =/= [] andalso free_member(Name, InFlight) of
        {ok, Member} ->
            [Batch | Rest] = Batches,
            {MRef, Done} = py_node_server:send_batch(Member, [R || {_, R} <- Batch], Opts),
            pool_run(Name, Rest, InFlight#{MRef => {Member, Batch, Done}}, Results, Opts);
        {error, Why} when map_size(InFlight) =:= 0 ->
            %% No node to send to, none running: the pool is down.
            lists:foldl(fun({I, _}, R) -> R#{I => {error, Why}} end, Results,
                        lists:append(Batches));
        _ ->
            receive
                {MRef, BatchResults} when is_map_key(MRef, InFlight), is_list(BatchResults) ->
                    {{_, Batch, Done}, InFlight1} = maps:take(MRef, InFlight),
                    ok = Done(),
                    Results1 = lists:foldl(fun({{I, _}, R}, Acc) -> Acc#{I => R} end, Results,
                                           lists:zip(Batch, BatchResults)),
                    pool_run(Name, Batches, InFlight1, Results1, Opts);
                {'DOWN', MRef, process, _, _} when is_map_key(MRef, InFlight) ->
                    {{Member, Batch, Done}, InFlight1} = maps:take(MRef, InFlight),
                    ok = Done(),
                    Down = {error, {py_nodedown, py_node_server:node_of(Member)}},
                    Results1 = lists:foldl(fun({I, _}, Acc) -> Acc#{I => Down} end, Results, Batch),
                    pool_run(Name, Batches, InFlight1, Results1, Opts)
            end
    end.

%% A live member of the pool with fewer than ?BATCHES_PER_NODE batches of
%% this scatter in flight: `{ok, Member}', `busy', or `{error, Why}' when
%% the pool has no live node.
free_member(Name, InFlight) ->
    try py_pools:members(Name) of
        {Members, _, _} ->
            Busy = [py_node_server:node_of(M) || {M, _, _} <- maps:values(InFlight)],
            Free = [M || M <- tuple_to_list(Members),
                         length([N || N <- Busy, N =:= py_node_server:node_of(M)])
                             < ?BATCHES_PER_NODE],
            case Free of
                [] -> busy;
                _ -> {ok, lists:nth(rand:uniform(length(Free)), Free)}
            end
    catch
        error:Why -> {error, Why}
    end.

%% @private
%% @doc Runs a batch of a node pool's scatter here, for a process of
%% another node (`py_node_server'): the requests' remote handles of this
%% node become handles again, the results' handles are lent to `Owner'.
%% Results in the order of the requests; never raises.
-spec serve_batch(pid(), [py_request:request()], py_opts:opts()) -> [result()].
serve_batch(Owner, Requests, Opts) ->
    Unwrapped = [try {ok, py_remote:unwrap(R)} catch error:Why -> {error, Why} end
                 || R <- Requests],
    LocalOpts = maps:without([owner, node, pool], Opts),
    Ran = try scatter([R || {ok, R} <- Unwrapped], LocalOpts)
          catch error:Why -> [{error, Why} || {ok, _} <- Unwrapped]
          end,
    merge(Unwrapped, Ran, Owner).

merge([{ok, _} | Rest], [Result | Ran], Owner) ->
    [py_remote:lend(Result, Owner) | merge(Rest, Ran, Owner)];
merge([{error, _} = Error | Rest], Ran, Owner) ->
    [Error | merge(Rest, Ran, Owner)];
merge([], [], _Owner) ->
    [].

%% Sends items while there are free slots, else waits for one to finish.
run([], _Slots, InFlight, Results, _Opts, _Down) when map_size(InFlight) =:= 0 ->
    Results;
run([{I, Request} | Rest] = Items, Slots, InFlight, Results, Opts, Down) ->
    case queue:out(Slots) of
        {{value, Place}, Slots1} ->
            MRef = spawn_item(Request, maps:merge(Opts, Place)),
            run(Rest, Slots1, InFlight#{MRef => {I, Place}}, Results, Opts, Down);
        {empty, _} when map_size(InFlight) =:= 0 ->
            %% Every slot was dropped: all the nodes went down.
            lists:foldl(fun({J, _}, R) -> R#{J => {error, Down}} end, Results, Items);
        {empty, _} ->
            wait(Items, Slots, InFlight, Results, Opts, Down)
    end;
run([], Slots, InFlight, Results, Opts, Down) ->
    wait([], Slots, InFlight, Results, Opts, Down).

wait(Items, Slots, InFlight, Results, Opts, Down) ->
    receive
        {'DOWN', MRef, process, _, Reason} when is_map_key(MRef, InFlight) ->
            {{I, Place}, InFlight1} = maps:take(MRef, InFlight),
            case result(Reason) of
                {error, {py_nodedown, _} = NodeDown} = Result ->
                    %% No more items to that node: its slot is dropped.
                    run(Items, Slots, InFlight1, Results#{I => Result}, Opts, NodeDown);
                Result ->
                    run(Items, queue:in(Place, Slots), InFlight1, Results#{I => Result}, Opts, Down)
            end
    end.

%% Up to `Max' slots, the nodes interleaved in proportion to their
%% workers (a: 4, b: 2 gives a b a b a a, then again).
slots(Weights, Max) ->
    Round = interleave([lists:duplicate(Count, place(Node)) || {Node, Count} <- Weights]),
    lists:sublist(lists:append(lists:duplicate(Max div length(Round) + 1, Round)), Max).

interleave(Lists) ->
    case [L || L <- Lists, L =/= []] of
        [] -> [];
        NonEmpty -> [hd(L) || L <- NonEmpty] ++ interleave([tl(L) || L <- NonEmpty])
    end.

%% The call options that send a call to `Node'. The handles of a remote
%% result belong to the caller, not to the short-lived helper.
place(Node) when Node =:= node() -> #{};
place(Node) -> #{node => Node, owner => self()}.

%% The helper's result is its exit reason, on purpose (one 'DOWN' message
%% carries it): its fun never returns.
-dialyzer({nowarn_function, spawn_item/2}).
spawn_item(Request, Opts) ->
    {_, MRef} = spawn_monitor(fun() -> exit({?ITEM, call(Request, Opts)}) end),
    MRef.

call(Request, Opts) ->
    try
        py_engine:call(Request, Opts)
    catch
        Class:Reason -> {error, {Class, Reason}}
    end.

result({?ITEM, Result}) -> Result;
result(Other) -> {error, {py_item_crashed, Other}}.

%% @doc The ids of this node's workers, ascending.
-spec worker_ids() -> [pos_integer()].
worker_ids() ->
    [py_pool:slot(M) || M <- py_pool:members()].

node_list(all) ->
    py_remote:nodes();
node_list(Nodes) ->
    %% Each node once, in the given order.
    lists:reverse(lists:foldl(fun(N, Acc) ->
                                      case lists:member(N, Acc) of
                                          true -> Acc;
                                          false -> [N | Acc]
                                      end
                              end, [], Nodes)).

%% The worker ids of each node (this one without erpc: it need not be
%% alive).
probe(Nodes) ->
    Remote = [N || N <- Nodes, N =/= node()],
    Replies = maps:from_list(lists:zip(Remote, erpc:multicall(Remote, ?MODULE, worker_ids, [],
                                                              ?PROBE_TIMEOUT))),
    [{N, case N =:= node() of
             true -> {ok, worker_ids()};
             false -> probe_reply(N, maps:get(N, Replies))
         end} || N <- Nodes].

probe_reply(_N, {ok, Ids}) -> {ok, Ids};
probe_reply(N, {error, {erpc, noconnection}}) -> {error, {py_nodedown, N}};
probe_reply(N, {error, {exception, undef, _}}) -> {error, {py_not_on_node, N}};
probe_reply(N, {error, {erpc, timeout}}) -> {error, {py_nodedown, N}};
probe_reply(_N, {Class, Reason}) -> {error, {Class, Reason}}.
