%%% @private
%%% @doc Lazy iteration: consume any Python iterable from Erlang without
%%% materialising it.
%%%
%%% `next/1' (on an iterator from `py:iter/1') and `fold/3' pull items on
%%% demand. `start/4' sends
%%% the items of a call's result to the calling process as messages, with
%%% flow control: a streamer process pulls from Python only while fewer
%%% than `window' items are unacknowledged, so the Python side never runs
%%% more than a window ahead of the consumer. The consumer receives
%%% `{py_stream, Stream, {item, Item}}', then `{py_stream, Stream, done}'
%%% or `{py_stream, Stream, {error, Reason}}', and acknowledges with
%%% `ack/1,2'. When the consumer exits or calls `close/1', the iterator is
%%% closed (a generator's `finally' blocks run).
%%% @end
-module(py_stream).

-export([next/1, fold/3, start/4, ack/1, ack/2, close/1, next_item/2]).

-export_type([stream/0]).

-opaque stream() :: {py_stream, pid(), reference()}.

-define(BATCH, 100).

%% @doc The next item of an iterator: `{ok, Item}' or `done'.
-spec next(term()) -> {ok, term()} | done.
next(Iterator) ->
    py_engine:run(py_request:call({beam, '_next'}, [Iterator], []), #{}).

%% @doc Folds `Fun(Item, Acc)' over the items of `Iterable', pulling them
%% in batches.
-spec fold(fun((term(), Acc) -> Acc), Acc, term()) -> Acc.
fold(Fun, Acc, Iterable) ->
    Stream = py_engine:run(py_request:call({beam, '_stream'}, [Iterable], []), #{return => handle}),
    fold_batches(Fun, Acc, Stream).

fold_batches(Fun, Acc, Stream) ->
    {Items, Done} = py_engine:run(py_request:call({Stream, take}, [?BATCH], []), #{}),
    Acc1 = lists:foldl(Fun, Acc, Items),
    case Done of
        true -> Acc1;
        false -> fold_batches(Fun, Acc1, Stream)
    end.

%% @doc Streams the items of `Module.Function(*Args)' (any iterable) to the
%% calling process. `Opts' (parsed): `window' (default 100), `kwargs',
%% and the call options (e.g. `context').
-spec start(term(), term(), term(), py_opts:opts()) -> stream().
start(Module, Function, Args, Opts) ->
    Window = maps:get(window, Opts, 100),
    Kwargs = maps:get(kwargs, Opts, []),
    CallOpts = py_opts:call_opts(Opts),
    Consumer = self(),
    Ref = make_ref(),
    Pid = spawn(fun() ->
                        MRef = erlang:monitor(process, Consumer),
                        Stream = try
                                     Iterable = py_engine:run(py_request:call({Module, Function}, Args, Kwargs),
                                                              CallOpts#{return => handle}),
                                     py_engine:run(py_request:call({beam, '_stream'}, [Iterable], []),
                                                   CallOpts#{return => handle})
                                 catch error:Reason ->
                                         Consumer ! {py_stream, {py_stream, self(), Ref}, {error, Reason}},
                                         exit(normal)
                                 end,
                        produce(#{consumer => Consumer, mref => MRef, ref => Ref,
                                  stream => Stream, window => Window, unacked => 0,
                                  opts => CallOpts})
                end),
    {py_stream, Pid, Ref}.

%% @doc Acknowledges one item.
-spec ack(stream()) -> ok.
ack(Stream) ->
    ack(Stream, 1).

%% @doc Acknowledges `N' items.
-spec ack(stream(), pos_integer()) -> ok.
ack({py_stream, Pid, Ref}, N) ->
    Pid ! {ack, Ref, N},
    ok.

%% @doc Stops a stream early; the Python iterator is closed.
-spec close(stream()) -> ok.
close({py_stream, Pid, Ref}) ->
    Pid ! {close, Ref},
    ok.

%% @doc Receives and acknowledges the next item: `{ok, Item}', `done', or
%% raises the stream's error. `Timeout' as in `receive'.
-spec next_item(stream(), timeout()) -> {ok, term()} | done.
next_item({py_stream, _, _} = S, Timeout) ->
    receive
        {py_stream, S, {item, Item}} -> ack(S), {ok, Item};
        {py_stream, S, done} -> done;
        {py_stream, S, {error, Reason}} -> erlang:error(Reason)
    after Timeout ->
        erlang:error({py_timeout, Timeout})
    end.

%%% The streamer ----------------------------------------------------------

produce(#{unacked := Unacked, window := Window} = S) when Unacked < Window ->
    case take(S, Window - Unacked) of
        {ok, Items, Done} ->
            Consumer = maps:get(consumer, S),
            _ = [Consumer ! item_msg(S, I) || I <- Items],
            S1 = S#{unacked := Unacked + length(Items)},
            case Done of
                true -> finish(S1, done);
                false -> produce(drain(S1))
            end;
        {error, Reason} ->
            finish(S, {error, Reason})
    end;
produce(S) ->
    produce(wait(S)).

take(#{stream := Stream, opts := Opts}, N) ->
    try py_engine:run(py_request:call({Stream, take}, [N], []), Opts) of
        {Items, Done} -> {ok, Items, Done}
    catch error:Reason -> {error, Reason}
    end.

item_msg(#{ref := Ref}, Item) ->
    {py_stream, {py_stream, self(), Ref}, {item, Item}}.

%% Takes the acknowledgements that already arrived.
drain(#{ref := Ref, unacked := U} = S) ->
    receive
        {ack, Ref, N} -> drain(S#{unacked := max(0, U - N)});
        {close, Ref} -> stop(S);
        {'DOWN', _, process, _, _} -> stop(S)
    after 0 -> S
    end.

%% Waits for an acknowledgement (the window is full).
wait(#{ref := Ref, unacked := U} = S) ->
    receive
        {ack, Ref, N} -> S#{unacked := max(0, U - N)};
        {close, Ref} -> stop(S);
        {'DOWN', _, process, _, _} -> stop(S)
    end.

-spec finish(map(), done | {error, term()}) -> no_return().
finish(#{consumer := Consumer, ref := Ref}, Last) ->
    Consumer ! {py_stream, {py_stream, self(), Ref}, Last},
    exit(normal).

%% The consumer left or closed the stream: close the Python iterator.
-spec stop(map()) -> no_return().
stop(#{stream := Stream, opts := Opts}) ->
    _ = py_engine:call(py_request:call({Stream, close}, [], []), Opts),
    exit(normal).
