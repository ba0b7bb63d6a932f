%%% @doc The py application's configuration: read from the application
%%% environment of `py', checked, and published for the hot path in
%%% `persistent_term'.
%%%
%%% Every setting has a default (see {@link defaults/0}); a wrong value
%%% fails the start with `{bad_config, Setting, Value, Why}', naming the
%%% setting. The settings of the original LFE py (`python-path',
%%% `worker-count', `scheduler-mod', ...) are refused with a message that
%%% names their replacement, so that an old configuration is not silently
%%% ignored.
%%% @end
-module(py_config).

-export([load/0, defaults/0, publish/1, get/1, all/0]).

-export_type([config/0, scheduler/0, init_item/0, output/0, callbacks/0, error/0]).

-type scheduler() :: shared | round_robin | random | least_loaded | keyed
                   | {module(), atom()}.
%% `{Module, Function}' is a custom scheduler: see {@link py_sched}.

-type init_item() :: module()
                   | {exec, iodata()}
                   | {module(), atom()}
                   | {module(), atom(), [term()]}.
%% Python code run in every worker when it starts: import a module into the
%% worker's namespace, run statements there, or call a function.

-type callbacks() :: all | [module() | {module(), atom()}].
%% Which Erlang functions Python may call with `beam.call': `all', or a
%% list of `Module' (any function of it), `{Module, '_'}' (the same) and
%% `{Module, Function}'.

-type config() :: #{workers := pos_integer(),
                    scheduler := scheduler(),
                    call_timeout := timeout(),
                    stuck_grace := non_neg_integer(),
                    strings := binary | charlist,
                    none := atom(),
                    python_path := [file:filename_all()],
                    venv := undefined | file:filename_all(),
                    requirements := [string() | binary()],
                    python_env := [{string() | binary(), string() | binary() | false}],
                    init := [init_item()],
                    max_restarts := non_neg_integer(),
                    restart_period := pos_integer(),
                    shutdown_timeout := non_neg_integer(),
                    stdout := output(),
                    stderr := output(),
                    logging := logger | inherit,
                    pools := [{atom(), py_pools:spec()}],
                    callbacks := callbacks(),
                    worker_stack := pos_integer(),
                    max_stuck_threads := non_neg_integer()}.

-type output() :: caller | logger | inherit.
%% Where Python's `sys.stdout'/`sys.stderr' go: to the group leader of the
%% calling process, to `logger', or to the VM's file descriptors (see
%% {@link py_output}).

-type error() :: {bad_config, Setting :: atom(), Value :: term(), Why :: string()}.

%% An atom key: hashed at each read, on every call (a tuple key costs a
%% few hundred instructions more).
-define(KEY, ?MODULE).

%% The settings: name, default, check (returns `{ok, Normalised}' or
%% `{error, Why}'). The order is the order they are checked in.
specs() ->
    [{workers, 4, fun pos_integer/1},
     {scheduler, shared, fun scheduler/1},
     {call_timeout, infinity, fun timeout/1},
     {stuck_grace, 5000, fun non_neg_integer/1},
     {strings, binary, one_of([binary, charlist])},
     {none, undefined, fun none/1},
     {python_path, [], fun path_list/1},
     {venv, undefined, fun venv/1},
     {requirements, [], fun requirements/1},
     {python_env, [], fun python_env/1},
     {init, [], fun init_items/1},
     {max_restarts, 10, fun non_neg_integer/1},
     {restart_period, 10, fun pos_integer/1},
     {shutdown_timeout, 5000, fun non_neg_integer/1},
     {stdout, caller, one_of([caller, logger, inherit])},
     {stderr, caller, one_of([caller, logger, inherit])},
     {logging, logger, one_of([logger, inherit])},
     {pools, [], fun pools/1},
     {callbacks, all, fun callbacks/1},
     {worker_stack, 16 * 1024 * 1024, fun worker_stack/1},
     {max_stuck_threads, 16, fun non_neg_integer/1}].

%% Settings of the original LFE py and what replaced them.
renamed() ->
    [{'python-path', python_path},
     {'worker-count', workers},
     {'scheduler-mod', scheduler},
     {'scheduler-func', scheduler},
     {'erlport-max-restarts', max_restarts},
     {'erlport-restart-threshold', restart_period},
     {'erlport-shutdown-timeout', shutdown_timeout},
     {'max-restarts', max_restarts},
     {'restart-threshold', restart_period},
     {'shutdown-timeout', shutdown_timeout}].

%% @doc The default of every setting.
-spec defaults() -> config().
defaults() ->
    maps:from_list([{Key, Default} || {Key, Default, _} <- specs()]).

%% @private
%% @doc Reads and checks the application environment of `py'.
-spec load() -> {ok, config()} | {error, error()}.
load() ->
    case [{Old, New} || {Old, New} <- renamed(), application:get_env(py, Old) =/= undefined] of
        [{Old, New} | _] ->
            {ok, Value} = application:get_env(py, Old),
            {error, {bad_config, Old, Value,
                     lists:flatten(io_lib:format("this setting of the original py is "
                                                 "named ~p here", [New]))}};
        [] ->
            check(specs(), #{})
    end.

check([], Config) ->
    cross_check(Config);
check([{Key, Default, Check} | Rest], Config) ->
    Value = application:get_env(py, Key, Default),
    case Check(Value) of
        {ok, Normalised} -> check(Rest, Config#{Key => Normalised});
        {error, Why} -> {error, {bad_config, Key, Value, Why}}
    end.

%% Settings that only make sense together.
cross_check(#{requirements := [_ | _] = Reqs, venv := undefined}) ->
    {error, {bad_config, requirements, Reqs,
             "requirements are installed into a virtualenv: set venv too"}};
cross_check(Config) ->
    {ok, Config}.

%%% Checks: each returns {ok, Normalised} or {error, "expected ..."}.

pos_integer(V) when is_integer(V), V > 0 -> {ok, V};
pos_integer(_) -> {error, "expected a positive integer"}.

non_neg_integer(V) when is_integer(V), V >= 0 -> {ok, V};
non_neg_integer(_) -> {error, "expected a non-negative integer"}.

timeout(infinity) -> {ok, infinity};
timeout(V) when is_integer(V), V >= 0 -> {ok, V};
timeout(_) -> {error, "expected a timeout in milliseconds or infinity"}.

one_of(Allowed) ->
    fun(V) ->
            case lists:member(V, Allowed) of
                true -> {ok, V};
                false -> {error, lists:flatten(io_lib:format("expected one of ~p", [Allowed]))}
            end
    end.

%% Booleans are Python's True and False.
none(A) when is_atom(A), not is_boolean(A) -> {ok, A};
none(_) -> {error, "expected an atom other than true and false (nil for Elixir)"}.

scheduler(S) when S =:= shared; S =:= round_robin; S =:= random; S =:= least_loaded;
                  S =:= keyed ->
    {ok, S};
scheduler({M, F} = S) when is_atom(M), is_atom(F) ->
    %% Checked now rather than at the first call, which would fail in
    %% every caller.
    _ = code:ensure_loaded(M),
    case erlang:function_exported(M, F, 2) of
        true -> {ok, S};
        false -> {error, lists:flatten(io_lib:format("~p:~p/2 is not exported", [M, F]))}
    end;
scheduler(_) ->
    {error, "expected shared, round_robin, random, least_loaded, keyed or {Module, Function}"}.

callbacks(all) ->
    {ok, all};
callbacks(L) when is_list(L) ->
    Entry = fun({M, F}) -> is_atom(M) andalso is_atom(F);
               (M) -> is_atom(M) andalso M =/= all
            end,
    %% An improper list is as wrong as a bad entry.
    case catch lists:all(Entry, L) of
        true -> {ok, L};
        _ -> {error, "expected all, or a list of Module | {Module, Function} | {Module, '_'}"}
    end;
callbacks(_) ->
    {error, "expected all, or a list of Module | {Module, Function} | {Module, '_'}"}.

%% At least the 8 MB of a main thread (Python's recursion depth needs C
%% stack), at most 1 GB.
worker_stack(V) when is_integer(V), V >= 8 * 1024 * 1024, V =< 1024 * 1024 * 1024 -> {ok, V};
worker_stack(_) -> {error, "expected a stack size in bytes, from 8 MB (8388608) to 1 GB"}.

%% The original's colon-separated string is accepted too.
path_list(L) when is_list(L) ->
    case io_lib:char_list(L) andalso L =/= [] of
        true ->
            {ok, string:lexemes(L, ":")};
        false ->
            case lists:all(fun is_name/1, L) of
                true -> {ok, L};
                false -> {error, "expected a list of directory names"}
            end
    end;
path_list(_) ->
    {error, "expected a list of directory names"}.

is_name(N) -> is_binary(N) orelse (is_list(N) andalso N =/= [] andalso io_lib:char_list(N)).

venv(undefined) -> {ok, undefined};
venv(V) ->
    case is_name(V) of
        true -> {ok, V};
        false -> {error, "expected the directory of a virtualenv (created when missing)"}
    end.

requirements(L) when is_list(L) ->
    case lists:all(fun is_name/1, L) of
        true -> {ok, L};
        false -> {error, "expected a list of pip requirement strings"}
    end;
requirements(_) ->
    {error, "expected a list of pip requirement strings"}.

python_env(M) when is_map(M) ->
    python_env(maps:to_list(M));
python_env(L) when is_list(L) ->
    Ok = fun({K, V}) -> is_name(K) andalso (is_name(V) orelse V =:= "" orelse V =:= <<>>
                                             orelse V =:= false);
            (_) -> false
         end,
    case lists:all(Ok, L) of
        true -> {ok, L};
        false -> {error, "expected a list of {Name, Value} strings (Value false unsets)"}
    end;
python_env(_) ->
    {error, "expected a list of {Name, Value} strings (Value false unsets)"}.

init_items(L) when is_list(L) ->
    case lists:all(fun init_item/1, L) of
        true -> {ok, L};
        false -> {error, "expected a list of Module | {exec, Code} | {Module, Function} | "
                         "{Module, Function, Args}"}
    end;
init_items(_) ->
    {error, "expected a list of Module | {exec, Code} | {Module, Function} | "
            "{Module, Function, Args}"}.

%% Node pools started with py: `[{Name, Spec}]' or `#{Name => Spec}'.
pools(M) when is_map(M) ->
    pools(lists:sort(maps:to_list(M)));
pools(L) when is_list(L) ->
    Checked = [case P of
                   {Name, Spec} -> py_pools:check_spec(Name, Spec);
                   _ -> {error, {bad_pool, P, "expected {Name, Spec}"}}
               end || P <- L],
    Names = [N || {N, _} <- L],
    case [Why || {error, {bad_pool, _, _} = Why} <- Checked] of
        [{bad_pool, Name, Why} | _] ->
            {error, lists:flatten(io_lib:format("pool ~p: ~ts", [Name, Why]))};
        [] when length(Names) =/= length(L) ->
            {error, "expected a list of {Name, Spec}"};
        [] ->
            case length(lists:usort(Names)) =:= length(Names) of
                true -> {ok, lists:zip(Names, [S || {ok, S} <- Checked])};
                false -> {error, "two pools with one name"}
            end
    end;
pools(_) ->
    {error, "expected a list of {Name, #{kind => nodes, ...}}"}.

init_item(M) when is_atom(M) -> true;
init_item({exec, Code}) -> is_binary(Code) orelse io_lib:char_list(Code);
init_item({M, F}) -> is_atom(M) andalso is_atom(F);
init_item({M, F, A}) -> is_atom(M) andalso is_atom(F) andalso is_list(A);
init_item(_) -> false.

%% @private
%% @doc Makes the configuration readable by callers without a process hop,
%% and gives the NIF the settings its conversions read (`none').
-spec publish(config()) -> ok.
publish(#{none := None} = Config) ->
    ok = py_nif:set_none(None),
    persistent_term:put(?KEY, Config).

%% @private
%% @doc One setting as published at start (its default before start).
-spec get(atom()) -> term().
get(Key) ->
    case persistent_term:get(?KEY, undefined) of
        undefined -> maps:get(Key, defaults());
        Config -> maps:get(Key, Config)
    end.

%% @private
%% @doc All the settings as published at start (the defaults before
%% start): one read for the hot path.
-spec all() -> config().
all() ->
    case persistent_term:get(?KEY, undefined) of
        undefined -> defaults();
        Config -> Config
    end.
