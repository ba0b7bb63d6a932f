%%% @private
%%% @doc The call engine: every call of py, from every module, goes
%%% through {@link run/2} (raises) or {@link call/2} (`{ok, _} | {error,
%%% _}').
%%%
%%% ```
%%% run(Request, Opts)
%%%   route       the node: the `node' option, else the node of the
%%%               remote handles in the request (py_request:fold_handles/3)
%%%   local       flags and timeout from the options (or the settings,
%%%               read once), then
%%%     context   the `context' option or py:with_context/2's: submit to
%%%               the context (pinned to its worker), await
%%%     pool      py_pool:pick_target/2 (the scheduler, in the caller),
%%%               submit, await; a job its stopping worker never ran is
%%%               sent again (a few times); nothing else is resent
%%%   node pool   the `pool' option (other than `default'): the pool's
%%%               scheduler picks a node, py_node_server:call/3 sends it
%%%               to that node's server, which runs it through serve/3
%%%   remote      a pool's node: as above; another node:
%%%               py_remote:call/3, erpc to serve/3 on that node, which
%%%               runs the request there through call/2
%%%   reply       {py_maps, Nodes}: its large maps built (complete/1);
%%%               {ok, V} -> V; {error, R} -> erlang:error(R)
%%% '''
%%%
%%% Awaiting a job handles the call's output and log records, which come
%%% before its reply (see {@link py_output}). Awaiting a job aimed at one
%%% worker (contexts included) watches that
%%% worker's owner process, so a worker that dies answers at once with
%%% `{py_worker_down, Id}'; a timeout cancels the job (see
%%% `py_nif:cancel/1') and tells the pool (stuck-job watch). Worker ids in
%%% errors are pool ids, as `py:workers()' lists them.
%%% @end
-module(py_engine).

-export([run/2, call/2, serve/3, submit/4, complete/1]).

%% How many times a call is sent when its worker turns out to be stopping.
-define(SUBMIT_TRIES, 4).

%% @doc Runs a request with parsed options: its value, or raises its error.
-spec run(py_request:request(), py_opts:opts()) -> term().
run(Request, Opts) ->
    case route(Request, Opts) of
        local -> reply(local(Request, Opts));
        {pool, Name} -> reply(in_node_pool(Name, Request, Opts));
        Node -> reply(remote(Node, Request, Opts))
    end.

%% @doc As {@link run/2}, never raising an `error': `{ok, Value}' or
%% `{error, Reason}'.
-spec call(py_request:request(), py_opts:opts()) -> {ok, term()} | {error, py_errors:error_reason()}.
call(Request, Opts) ->
    try
        {ok, run(Request, Opts)}
    catch
        error:Reason -> {error, Reason}
    end.

%% @doc Runs a request from another node's process `Owner' here (the
%% entry point of `py_remote:call/3', over erpc): this node's remote
%% handles in it become the real handles again, and the handles of the
%% result (or error) are lent to `Owner'. Never raises.
-spec serve(pid(), py_request:request(), py_opts:opts()) -> {ok, term()} | {error, term()}.
serve(Owner, Request, Opts) ->
    try py_remote:unwrap(Request) of
        Unwrapped ->
            case call(Unwrapped, Opts) of
                {ok, Value} -> {ok, py_remote:lend(Value, Owner)};
                {error, Reason} -> {error, py_remote:lend(Reason, Owner)}
            end
    catch
        error:Reason -> {error, Reason}
    end.

%% @doc Queues `Request' on a NIF target: on a normal scheduler when it
%% is small, else on a dirty one. The one place that knows about `big'.
%% A call to the shared queue without a timeout may get its reply at once,
%% as `{Ref, Reply}' (the message it would else receive; what it printed
%% is in the mailbox before it: see `py_output:drain/1').
-spec submit(py_nif:target(), reference(), py_request:request(), boolean()) ->
          ok | py_nif:job() | stopped | closed | {error, term()} | {reference(), term()}.
submit(any, Ref, Request, false) ->
    %% The common call: its reply may come back from the NIF itself.
    case py_nif:submit_wait(Ref, Request) of
        big -> py_nif:submit_dirty(any, Ref, Request, false);
        Other -> Other
    end;
submit(Target, Ref, Request, Cancellable) ->
    case py_nif:submit(Target, Ref, Request, Cancellable) of
        big -> py_nif:submit_dirty(Target, Ref, Request, Cancellable);
        Other -> Other
    end.

%% @doc A worker's reply made whole: `{py_maps, Nodes}' (a result with
%% maps of more than 32 keys, which only a scheduler thread can build: see
%% `native/src/map_build.rs') is built here, in the receiving process (on
%% a dirty scheduler when large); other replies are returned as they are.
%% The one place that knows about `py_maps'.
-spec complete({ok, term()} | {error, term()} | {py_maps, tuple()}) ->
          {ok, term()} | {error, term()}.
complete({py_maps, Nodes}) ->
    case py_nif:build_maps(Nodes) of
        big -> py_nif:build_maps_dirty(Nodes);
        Built -> Built
    end;
complete(Reply) ->
    Reply.

%%% Routing ------------------------------------------------------------------

route(_Request, #{node := Node}) ->
    Node;
route(Request, Opts) ->
    %% The object lives where its handles say, whatever the pool.
    case py_request:fold_handles(fun node_of/2, local, Request) of
        local ->
            case Opts of
                #{pool := default} -> local;
                #{pool := Name} -> {pool, Name};
                #{} -> local
            end;
        Node ->
            Node
    end.

node_of(Handle, Acc) ->
    case py_request:handle_kind(Handle) of
        {remote, Node, _} when Acc =:= local; Acc =:= Node -> Node;
        {remote, Node, _} -> erlang:error({py_badarg, mixed_nodes, [Acc, Node]});
        _ -> Acc
    end.

remote(Node, Request, Opts) when Node =:= node() ->
    %% This node's own remote handles: swapped back, and run here.
    local(py_remote:unwrap(Request), Opts);
remote(Node, Request, Opts) ->
    %% A node of a node pool is called through its server; a node that a
    %% pool restarted is gone, with its objects.
    case py_pools:node_member(Node) of
        {member, Member} -> py_node_server:call(Member, Request, Opts);
        {restarted, _Pool} -> {error, {py_node_restarted, Node}};
        none -> py_remote:call(Node, Request, Opts)
    end.

%% The pool's scheduler picks a node (in this process, as for workers);
%% `shared' (no queue is shared between nodes) means `least_loaded' there.
in_node_pool(Name, Request, Opts) ->
    {Members, Counter, Default} = py_pools:members(Name),
    I = case py_sched:pick(Members, Counter, Opts, Default) of
            any -> py_sched:pick(Members, Counter, #{scheduler => least_loaded}, Default);
            Picked -> Picked
        end,
    %% The worker and scheduler options picked the node; a key goes on
    %% (the same worker there too: thread affinity).
    py_node_server:call(element(I, Members), Request, maps:without([worker, scheduler], Opts)).

%%% This node --------------------------------------------------------------

local(Request0, Opts) ->
    Config = py_config:all(),
    Strings = case Opts of
                  #{strings := S} -> S;
                  #{} -> maps:get(strings, Config)
              end,
    Request = py_request:set_flags(Request0, py_request:flags(Strings, maps:get(return, Opts, value),
                                                              maps:get(await, Opts, true))),
    Timeout = case Opts of
                  #{timeout := T} -> T;
                  #{} -> maps:get(call_timeout, Config)
              end,
    case context(Opts) of
        undefined -> pooled(Request, Opts, maps:get(scheduler, Config), Timeout, ?SUBMIT_TRIES);
        {'$py_context', Context, Member} -> in_context(Context, Member, Request, Timeout)
    end.

context(#{context := Context}) -> Context;
context(#{}) -> py_context:current().

%% The scheduler picks a target (a worker, or the shared queue) in this
%% process. A job that never ran because its worker was stopping is sent
%% again, a bounded number of times; nothing else is ever resent (it may
%% have run).
pooled(Request, Opts, Default, Timeout, Tries) ->
    Target = py_pool:pick_target(Opts, Default),
    Ref = make_ref(),
    %% Through the shared queue, only calls with a timeout need a
    %% cancellable job (a little dearer). A call to a given worker always
    %% has one: if the worker dies, the caller cancels it and gets an error
    %% at once.
    Cancellable = Target =/= any orelse Timeout =/= infinity,
    case submit(py_pool:destination(Target), Ref, Request, Cancellable) of
        stopped when Tries =:= 1 ->
            {error, py_worker_stopped};
        stopped ->
            %% The picked worker is being removed or died: out of the pool
            %% with it (the pool may not know yet), and try another.
            _ = Target =:= any orelse py_pool:forget(py_pool:worker(Target)),
            pooled(Request, Opts, Default, Timeout, Tries - 1);
        {error, _} = Error ->
            Error;
        Job ->
            case await(Target, Ref, Job, Timeout) of
                {error, {py_worker_stopped, _}} when Tries > 1 ->
                    pooled(Request, Opts, Default, Timeout, Tries - 1);
                Reply ->
                    Reply
            end
    end.

%% A context is pinned to its worker: nowhere else to send the call. As
%% for any call aimed at one worker, the caller watches that worker's
%% process while it waits (so the job is always cancellable).
in_context(Context, Member, Request, Timeout) ->
    Ref = make_ref(),
    %% A forged context holds no NIF context: refused, never a raw badarg.
    Submitted = try submit(Context, Ref, Request, true)
                catch error:badarg ->
                        {error, {py_badarg, bad_context, {'$py_context', Context, Member}}}
                end,
    case Submitted of
        closed -> {error, py_context_closed};
        stopped ->
            %% Its worker is gone, and the context with it: a named one is
            %% made afresh by the next py:context(Name).
            py_context:forget(Context),
            {error, py_context_closed};
        {error, _} = Error -> Error;
        Job -> await(Member, Ref, Job, Timeout)
    end.

%% Waits for the reply of a job sent to `Target': `any' (the shared
%% queue) or a pool member (calls aimed at a worker, contexts included).
%% What the call prints or logs arrives before its reply, from the same
%% thread, as `{Ref, {py_output, Event}}': handed to py_output as it comes
%% (so a long call shows its progress), all of it before the call returns.
%% A call that prints nothing never meets that clause.
await(_Target, Ref, {Ref, Reply}, infinity) ->
    %% Handed over by the NIF: what the call printed came before, as
    %% messages (they are all in the mailbox by now).
    py_output:drain(Ref),
    ids(Reply);
await(_Target, Ref, ok, infinity) ->
    reply_of(Ref);
await(any, Ref, Job, Timeout) ->
    await_any(Ref, Job, Timeout, deadline(Timeout));
await(Member, Ref, Job, Timeout) ->
    %% The worker's owner process lives as long as the worker serves calls:
    %% if it dies, no reply may ever come (a thread blocked in C code).
    MRef = erlang:monitor(process, py_pool:owner(Member)),
    await_member(Member, MRef, Ref, Job, Timeout, deadline(Timeout)).

await_any(Ref, Job, Timeout, Deadline) ->
    receive
        {Ref, {py_output, Event}} ->
            ok = py_output:event(Event),
            await_any(Ref, Job, Timeout, Deadline);
        {Ref, Reply} ->
            ids(Reply)
    after left(Deadline) ->
        give_up(any, Ref, Job, Timeout)
    end.

await_member(Member, MRef, Ref, Job, Timeout, Deadline) ->
    receive
        {Ref, {py_output, Event}} ->
            ok = py_output:event(Event),
            await_member(Member, MRef, Ref, Job, Timeout, Deadline);
        {Ref, Reply} ->
            erlang:demonitor(MRef, [flush]),
            ids(Reply);
        {'DOWN', MRef, process, _, _} ->
            case py_nif:cancel(Job) of
                replied ->
                    reply_of(Ref);
                cancelled ->
                    py_output:drain(Ref),
                    {error, {py_worker_down, py_pool:slot(Member)}}
            end
    after left(Deadline) ->
        erlang:demonitor(MRef, [flush]),
        give_up(Member, Ref, Job, Timeout)
    end.

%% The reply, once it is sure to come, after the call's output.
reply_of(Ref) ->
    receive
        {Ref, {py_output, Event}} ->
            ok = py_output:event(Event),
            reply_of(Ref);
        {Ref, Reply} ->
            ids(Reply)
    end.

%% Only calls with a timeout read the clock.
deadline(infinity) -> infinity;
deadline(Timeout) -> erlang:monotonic_time(millisecond) + Timeout.

left(infinity) -> infinity;
left(Deadline) -> max(0, Deadline - erlang:monotonic_time(millisecond)).

give_up(Target, Ref, Job, Timeout) ->
    %% Where it runs, if it does: that worker is then watched for a job
    %% the interrupt cannot reach (see py_worker).
    Where = py_nif:job_where(Job),
    case py_nif:cancel(Job) of
        replied ->
            reply_of(Ref);
        cancelled ->
            %% No output of the call comes after this; what came is shown.
            py_output:drain(Ref),
            py_pool:timed_out(Target, Where, Timeout),
            {error, {py_timeout, Timeout}}
    end.

%% The NIF names a worker by its thread id: errors name it by pool id.
ids({error, {py_worker_down, Thread}}) -> {error, {py_worker_down, py_pool:slot_of(Thread)}};
ids({error, {py_worker_stopped, Thread}}) -> {error, {py_worker_stopped, py_pool:slot_of(Thread)}};
ids({py_maps, _} = Deferred) -> complete(Deferred);
ids(Reply) -> Reply.

reply({ok, Value}) -> Value;
reply({error, Reason}) -> erlang:error(Reason).
