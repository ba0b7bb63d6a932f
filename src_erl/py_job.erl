%%% @private
%%% @doc Runs one request on a given worker and waits for its reply: for
%%% py's own set-up code (the interpreter set-up at start, the `init' code
%%% of each worker, the level of Python's root logger), which must run on
%%% a particular worker (or any: `any') and is not a user call (no
%%% scheduler, no counters). What the code prints goes to the calling
%%% process's group leader (see {@link py_output}).
%%% @end
-module(py_job).

-export([run/3]).

%% @doc Runs `Request' (a request tuple as `py' builds them) on `Worker';
%% gives up (cancelling it) after `Timeout' ms.
-spec run(py_nif:worker() | any, py_request:request(), timeout()) -> {ok, term()} | {error, term()}.
run(Worker, Request, Timeout) ->
    Ref = make_ref(),
    Cancellable = Timeout =/= infinity,
    case py_engine:submit(Worker, Ref, Request, Cancellable) of
        stopped ->
            {error, py_worker_stopped};
        {error, _} = Error ->
            Error;
        {Ref, Reply} ->
            py_output:drain(Ref),
            py_engine:complete(Reply);
        Job ->
            wait(Ref, Job, Timeout, deadline(Timeout))
    end.

wait(Ref, Job, Timeout, Deadline) ->
    receive
        {Ref, {py_output, Event}} ->
            ok = py_output:event(Event),
            wait(Ref, Job, Timeout, Deadline);
        {Ref, Reply} ->
            py_engine:complete(Reply)
    after left(Deadline) ->
        case py_nif:cancel(Job) of
            replied -> wait(Ref, Job, infinity, infinity);
            cancelled -> py_output:drain(Ref), {error, {py_timeout, Timeout}}
        end
    end.

deadline(infinity) -> infinity;
deadline(Timeout) -> erlang:monotonic_time(millisecond) + Timeout.

left(infinity) -> infinity;
left(Deadline) -> max(0, Deadline - erlang:monotonic_time(millisecond)).
