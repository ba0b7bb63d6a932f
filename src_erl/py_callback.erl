%%% @private
%%% @doc Runs the Erlang functions Python code calls with `beam.call'.
%%%
%%% A worker thread sends `{py_call, Slot, Module, Function, Args, Caller}'
%%% to this registered process, which runs each call in a process of its
%%% own (calls may block, and may call Python again), with the group leader
%%% of `Caller' (the process whose Python call made it, or `undefined'), and
%%% answers through the NIF. If
%%% that process dies without answering, the slot is garbage collected and
%%% the Python side gets an error instead of waiting for ever.
%%% @end
-module(py_callback).
-behaviour(gen_server).

-export([start_link/0]).
-export([init/1, handle_call/3, handle_cast/2, handle_info/2]).

-spec start_link() -> {ok, pid()} | {error, term()}.
start_link() ->
    gen_server:start_link({local, py_callback}, ?MODULE, [], []).

-spec init([]) -> {ok, #{}}.
init([]) ->
    {ok, #{}}.

-spec handle_call(term(), gen_server:from(), map()) -> {reply, {error, unknown_call}, map()}.
handle_call(_Request, _From, State) ->
    {reply, {error, unknown_call}, State}.

-spec handle_cast(term(), map()) -> {noreply, map()}.
handle_cast(_Msg, State) ->
    {noreply, State}.

-spec handle_info(term(), map()) -> {noreply, map()}.
handle_info({py_call, Slot, Module, Function, Args, Caller}, State) ->
    GL = group_leader_of(Caller),
    _ = spawn(fun() ->
                      group_leader(GL, self()),
                      run(Slot, Module, Function, Args)
              end),
    {noreply, State};
handle_info(_Other, State) ->
    {noreply, State}.

%% The function runs with the group leader of the Erlang process whose
%% Python call called it (when there is one, and it lives): its output
%% and that of the Python calls it makes show where that process is.
group_leader_of(Caller) when is_pid(Caller) ->
    case erlang:process_info(Caller, group_leader) of
        {group_leader, GL} -> GL;
        undefined -> group_leader()
    end;
group_leader_of(_) ->
    group_leader().

run(Slot, Module, Function, Args) ->
    ok = py_nif:callback_watch(Slot),
    Result = try
                 {ok, erlang:apply(Module, Function, Args)}
             catch
                 Class:Reason -> {error, {Class, Reason}}
             end,
    case py_nif:callback_reply(Slot, Result) of
        big -> _ = py_nif:callback_reply_dirty(Slot, Result), ok;
        _ -> ok
    end.
