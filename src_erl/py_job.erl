%%% @doc Runs one request on a given worker and waits for its reply: for
%%% py's own set-up code (the interpreter set-up at start, the `init' code
%%% of each worker), which must run on a particular worker and is not a
%%% user call (no scheduler, no counters).
%%% @end
-module(py_job).

-export([run/3, submit/4, describe/1]).

%% @doc Runs `Request' (a request tuple as `py' builds them) on `Worker';
%% gives up (cancelling it) after `Timeout' ms.
-spec run(py_nif:worker(), tuple(), timeout()) -> {ok, term()} | {error, term()}.
run(Worker, Request, Timeout) ->
    Ref = make_ref(),
    Cancellable = Timeout =/= infinity,
    case submit(Worker, Ref, Request, Cancellable) of
        stopped ->
            {error, py_worker_stopped};
        {error, _} = Error ->
            Error;
        Job ->
            receive
                {Ref, Reply} -> Reply
            after Timeout ->
                case py_nif:cancel(Job) of
                    replied -> receive {Ref, Reply} -> Reply end;
                    cancelled -> {error, {py_timeout, Timeout}}
                end
            end
    end.

%% @doc Queues `Request' on `Target' (see `py_nif:submit/4'): on a normal
%% scheduler when it is small, else on a dirty one. The one place that
%% knows about `big'.
-spec submit(py_nif:target(), reference(), tuple(), boolean()) ->
          ok | py_nif:job() | stopped | closed | {error, term()}.
submit(Target, Ref, Request, Cancellable) ->
    case py_nif:submit(Target, Ref, Request, Cancellable) of
        big -> py_nif:submit_dirty(Target, Ref, Request, Cancellable);
        Other -> Other
    end.

%% @doc A failed job's reason as a line of text, for configuration errors.
-spec describe(term()) -> string().
describe({python, Type, Message, _Traceback}) ->
    lists:flatten(io_lib:format("~ts: ~ts", [Type, Message]));
describe(Other) ->
    lists:flatten(io_lib:format("~0p", [Other])).
