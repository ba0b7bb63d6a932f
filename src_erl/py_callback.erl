%%% @private
%%% @doc Runs the Erlang functions Python code calls with `beam.call'.
%%%
%%% A worker thread sends `{py_call, Slot, Module, Function, Args, Caller}'
%%% to this registered process, which runs each call in a process of its
%%% own (calls may block, and may call Python again), with the group leader
%%% of `Caller' (the process whose Python call made it, or `undefined'), and
%%% answers through the NIF. If
%%% that process dies without answering, the slot is garbage collected and
%%% the Python side gets an error instead of waiting for ever. A coroutine
%%% that gives up on its `beam.async_call' sends `{py_cancel_call, Pid}'
%%% (from the NIF): the process running the function is killed.
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
handle_info({py_cancel_call, Pid}, State) when is_pid(Pid) ->
    %% The coroutine that awaited this process's `beam.async_call' gave
    %% up (cancelled, or the call's timeout): the function is stopped.
    exit(Pid, kill),
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
    case py_nif:callback_watch(Slot) of
        ok -> run_watched(Slot, Module, Function, Args);
        %% The coroutine gave up on the call before it started.
        cancelled -> ok
    end.

run_watched(Slot, Module, Function, Args) ->
    %% What Python sees: the function's result, or how it failed (as
    %% apply/3 would fail, for a name that is not allowed or not there).
    Result = case resolve(Module, Function, py_config:get(callbacks)) of
                 {ok, M, F} ->
                     try
                         {ok, erlang:apply(M, F, Args)}
                     catch
                         Class:Reason -> {error, {Class, Reason}}
                     end;
                 {refused, Why} ->
                     {error, {error, Why}}
             end,
    case py_nif:callback_reply(Slot, Result) of
        big -> _ = py_nif:callback_reply_dirty(Slot, Result), ok;
        _ -> ok
    end.

%% The function a `beam.call' names. Names arrive as atoms when the atom
%% exists, else as binaries. The `callbacks' setting is checked on the
%% text first, before any atom is made; then an atom is made only for a
%% module that can be loaded (bounded by the modules on the code path);
%% a function name must already be an atom (loading its module made the
%% atoms of its functions). Anything else is `undef', as for apply/3.
resolve(Module, Function, Allowed) ->
    case allowed(text(Module), text(Function), Allowed) of
        true ->
            %% The module first: loading it makes its functions' atoms.
            case module_atom(Module) of
                {ok, M} ->
                    case function_atom(Function) of
                        {ok, F} -> {ok, M, F};
                        none -> {refused, undef}
                    end;
                none ->
                    {refused, undef}
            end;
        false ->
            {refused, {callback_not_allowed, Module, Function}}
    end.

text(Name) when is_atom(Name) -> atom_to_binary(Name);
text(Name) when is_binary(Name) -> Name.

%% Whether the `callbacks' setting lets Python call `M:F' (names as
%% binaries).
-spec allowed(binary(), binary(), py_config:callbacks()) -> boolean().
allowed(_M, _F, all) ->
    true;
allowed(M, F, Entries) ->
    lists:any(fun({EM, '_'}) -> atom_to_binary(EM) =:= M;
                 ({EM, EF}) -> atom_to_binary(EM) =:= M andalso atom_to_binary(EF) =:= F;
                 (EM) -> atom_to_binary(EM) =:= M
              end, Entries).

module_atom(M) when is_atom(M) ->
    {ok, M};
module_atom(M) ->
    %% A file name, not a path: no atom for what is not on the code path.
    Loadable = binary:match(M, [<<"/">>, <<"\\">>, <<0>>]) =:= nomatch
        andalso byte_size(M) =< 255
        andalso code:where_is_file(binary_to_list(M) ++ ".beam") =/= non_existing,
    case Loadable of
        true ->
            Atom = binary_to_atom(M),
            _ = code:ensure_loaded(Atom),
            {ok, Atom};
        false ->
            none
    end.

function_atom(F) when is_atom(F) ->
    {ok, F};
function_atom(F) ->
    try {ok, binary_to_existing_atom(F)}
    catch error:badarg -> none
    end.
