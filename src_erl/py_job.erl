%%% @private
%%% @doc Runs one request on a given worker and waits for its reply: for
%%% py's own set-up code (the interpreter set-up at start, the `init' code
%%% of each worker), which must run on a particular worker and is not a
%%% user call (no scheduler, no counters).
%%% @end
-module(py_job).

-export([run/3]).

%% @doc Runs `Request' (a request tuple as `py' builds them) on `Worker';
%% gives up (cancelling it) after `Timeout' ms.
-spec run(py_nif:worker(), py_request:request(), timeout()) -> {ok, term()} | {error, term()}.
run(Worker, Request, Timeout) ->
    Ref = make_ref(),
    Cancellable = Timeout =/= infinity,
    case py_engine:submit(Worker, Ref, Request, Cancellable) of
        stopped ->
            {error, py_worker_stopped};
        {error, _} = Error ->
            Error;
        Job ->
            receive
                {Ref, Reply} -> py_engine:complete(Reply)
            after Timeout ->
                case py_nif:cancel(Job) of
                    replied -> receive {Ref, Reply} -> py_engine:complete(Reply) end;
                    cancelled -> {error, {py_timeout, Timeout}}
                end
            end
    end.
