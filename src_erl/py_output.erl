%%% @doc Python's output and logs where the Erlang user looks.
%%%
%%% Settings (see `py_config'): `stdout' and `stderr' are `caller' (the
%%% default), `logger' or `inherit'; `logging' is `logger' (the default)
%%% or `inherit'. {@link setup/2} applies them to the interpreter at each
%%% start (the Python half is `beam._output').
%%%
%%% The caller's side: what a call prints reaches the calling process as
%%% `{Ref, {py_output, Event}}' messages, sent by the worker thread before
%%% the reply. The call engine's wait loop hands each to {@link event/1}:
%%% output is written to the caller's group leader (so a remote shell, or
%%% a call from another node, shows it where the caller is), log records
%%% and warnings are logged by the caller (its pid and process metadata
%%% are the event's).
%%%
%%% This process (registered as `py_output') receives what has no caller:
%%% output and records of threads Python started itself, output of a call
%%% whose caller died or gave up, and all output under the `logger'
%%% setting. It logs output a line at a time (`notice' for stdout,
%%% `warning' for stderr; a line without its newline after 200 ms idle).
%%%
%%% Every event py logs has the metadata `py => stdout | stderr | logging |
%%% warnings' (not a `domain': logger's default handler drops events of
%%% domains outside `otp').
%%% It also makes the root Python logger's level follow the primary level
%%% of `logger' (checked every second), so records `logger' would drop
%%% are not even made.
%%% @end
-module(py_output).
-behaviour(gen_server).

-export([setup/2, event/1, drain/1]).
-export([start_link/0, init/1, handle_call/3, handle_cast/2, handle_info/2, terminate/2]).

-export_type([event/0]).

-type event() :: {stdout | stderr, binary()}
               | {log, logging | warnings, logger:level(), binary(), map()}.
%% What a call sends its caller, as `{Ref, {py_output, Event}}'.

-define(IS_LEVEL(L), (L =:= debug orelse L =:= info orelse L =:= notice orelse L =:= warning
                      orelse L =:= error orelse L =:= critical orelse L =:= alert
                      orelse L =:= emergency)).

%% How long a line without its newline waits for the rest of it.
-define(PARTIAL_MS, 200).
%% How often the primary level of logger is looked at.
-define(LEVEL_MS, 1000).

%%% ------------------------------------------------------------------
%%% Start-up
%%% ------------------------------------------------------------------

%% @private
%% @doc Applies the `stdout', `stderr' and `logging' settings to the
%% interpreter, on `Worker' (a worker py_boot started for its set-up).
-spec setup(py_nif:worker(), py_config:config()) -> ok | {error, term()}.
setup(Worker, #{stdout := Stdout, stderr := Stderr, logging := Logging}) ->
    case call_python(Worker, configure, [Stdout, Stderr, Logging, primary_level()], infinity) of
        {ok, _} -> ok;
        {error, Why} -> {error, {python_init_failed, py_errors:describe(Why)}}
    end.

%% `beam._output.Function(*Args)' (a submodule: imported first); results
%% stay in Python.
call_python(Worker, Function, Args, Timeout) ->
    Import = kept(py_request:call(<<"importlib.import_module">>, [<<"beam._output">>], [])),
    case py_job:run(Worker, Import, Timeout) of
        {ok, Module} ->
            py_job:run(Worker, kept(py_request:call(py_request:method(Module, Function), Args, [])),
                       Timeout);
        Error ->
            Error
    end.

kept(Request) ->
    py_request:set_flags(Request, py_request:flags(binary, handle)).

primary_level() ->
    maps:get(level, logger:get_primary_config(), notice).

%%% ------------------------------------------------------------------
%%% The caller's side
%%% ------------------------------------------------------------------

%% @private
%% @doc Handles one event of a call, in the calling process: output to
%% its group leader (to the logger when that fails: a group leader that
%% died), a record or warning to `logger'.
-spec event(event()) -> ok.
event({Stream, Bin}) when Stream =:= stdout; Stream =:= stderr ->
    try io:put_chars(group_leader(), Bin)
    catch _:_ -> log_lines(Stream, Bin, #{py_caller => self()})
    end;
event({log, Domain, Level, Text, Meta}) when ?IS_LEVEL(Level), is_binary(Text) ->
    log_event(Domain, Level, Text, Meta, #{py_caller => self()});
event(_Other) ->
    %% Not made by beam._output: nothing to do with it.
    ok.

%% @private
%% @doc Handles the events of call `Ref' already in the mailbox: after a
%% call was given up (none can come after that).
-spec drain(reference()) -> ok.
drain(Ref) ->
    receive
        {Ref, {py_output, Event}} ->
            event(Event),
            drain(Ref)
    after 0 ->
        ok
    end.

log_event(Domain, Level, Text, Meta, Extra) ->
    Metadata = maps:merge(metadata(Meta), Extra#{py => Domain}),
    logger:log(Level, "~ts", [Text], Metadata).

%% Python's metadata: file names as strings (as logger's macros give
%% them), the rest as it came.
metadata(Meta) when is_map(Meta) ->
    maps:map(fun(file, F) when is_binary(F) -> unicode:characters_to_list(F);
                (_, V) -> V
             end, Meta);
metadata(_) ->
    #{}.

log_lines(Stream, Bin, Meta) ->
    Lines = [L || L <- binary:split(Bin, <<"\n">>, [global]), L =/= <<>>],
    lists:foreach(fun(L) -> log_line(Stream, L, Meta) end, Lines).

log_line(Stream, Line, Meta) ->
    Level = case Stream of stdout -> notice; stderr -> warning end,
    logger:log(Level, "~ts", [Line], Meta#{py => Stream}).

%%% ------------------------------------------------------------------
%%% The process for output without a caller
%%% ------------------------------------------------------------------

%% @private
-spec start_link() -> {ok, pid()} | {error, term()}.
start_link() ->
    gen_server:start_link({local, ?MODULE}, ?MODULE, [], []).

%% @private
-spec init([]) -> {ok, map()}.
init([]) ->
    process_flag(trap_exit, true),
    erlang:send_after(?LEVEL_MS, self(), check_level),
    {ok, #{partial => #{}, level => primary_level()}}.

%% @private
-spec handle_call(term(), gen_server:from(), map()) -> {reply, term(), map()}.
handle_call(_Request, _From, State) ->
    {reply, {error, unknown_call}, State}.

%% @private
-spec handle_cast(term(), map()) -> {noreply, map()}.
handle_cast(_Msg, State) ->
    {noreply, State}.

%% @private
-spec handle_info(term(), map()) -> {noreply, map()}.
handle_info({py_output, {Stream, Bin}, {Ident, Name, Caller}}, State)
  when (Stream =:= stdout orelse Stream =:= stderr), is_binary(Bin) ->
    {noreply, output(Stream, Bin, {Ident, Name, Caller}, State)};
handle_info({py_output, {log, Domain, Level, Text, Meta}, {_Ident, Name, Caller}}, State)
  when ?IS_LEVEL(Level), is_binary(Text) ->
    log_event(Domain, Level, Text, Meta, origin_meta(Name, Caller)),
    {noreply, State};
handle_info({timeout, Timer, {partial, Key}}, State = #{partial := Partial}) ->
    case maps:take(Key, Partial) of
        {{Bin, Meta, Timer}, Rest} ->
            log_line(element(2, Key), Bin, Meta),
            {noreply, State#{partial := Rest}};
        _ ->
            {noreply, State}
    end;
handle_info(check_level, State = #{level := Level}) ->
    erlang:send_after(?LEVEL_MS, self(), check_level),
    case primary_level() of
        Level -> {noreply, State};
        New -> set_python_level(New), {noreply, State#{level := New}}
    end;
handle_info(_Other, State) ->
    {noreply, State}.

%% @private
-spec terminate(term(), map()) -> ok.
terminate(_Reason, #{partial := Partial}) ->
    maps:foreach(fun({_, Stream}, {Bin, Meta, _}) -> log_line(Stream, Bin, Meta) end, Partial).

origin_meta(Name, Caller) when is_pid(Caller) ->
    #{py_thread => Name, py_caller => Caller};
origin_meta(Name, _) ->
    #{py_thread => Name}.

%% Complete lines are logged now; the rest waits for its newline, for
%% ?PARTIAL_MS at most. Per thread and stream: threads do not mix lines.
output(Stream, Bin, {Ident, Name, Caller}, State = #{partial := Partial}) ->
    Key = {Ident, Stream},
    Meta = origin_meta(Name, Caller),
    Text = case maps:take(Key, Partial) of
               {{Before, _, Old}, _} ->
                   _ = erlang:cancel_timer(Old),
                   <<Before/binary, Bin/binary>>;
               error ->
                   Bin
           end,
    Lines = binary:split(Text, <<"\n">>, [global]),
    {Complete, [Rest]} = lists:split(length(Lines) - 1, Lines),
    lists:foreach(fun(L) -> log_line(Stream, L, Meta) end, Complete),
    case Rest of
        <<>> ->
            State#{partial := maps:remove(Key, Partial)};
        _ ->
            Timer = erlang:start_timer(?PARTIAL_MS, self(), {partial, Key}),
            State#{partial := Partial#{Key => {Rest, Meta, Timer}}}
    end.

%% The root Python logger follows logger's primary level; done by a
%% process of its own (a call may wait for a free worker).
set_python_level(Level) ->
    _ = spawn(fun() -> call_python(any, set_level, [Level], 5000) end),
    ok.
