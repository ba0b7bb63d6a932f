%%% @private
%%% @doc The py application: checks the configuration, prepares the
%%% virtualenv, starts (or finds running) the embedded interpreter, sets it
%%% up, then starts the supervision tree of Python workers.
%%%
%%% A failed start returns `{error, Reason}' with `Reason' as precise as
%%% possible: `{bad_config, Setting, Value, Why}' for a setting, including
%%% Python code of the `init' setting that failed in a worker.
%%% @end
-module(py_app).
-behaviour(application).

-include_lib("kernel/include/logger.hrl").

-export([start/2, stop/1]).

-spec start(application:start_type(), term()) -> {ok, pid()} | {error, term()}.
start(_Type, _Args) ->
    case start_steps() of
        {ok, Pid} ->
            {ok, Pid};
        {error, Reason} ->
            ?LOG_ERROR("py: cannot start: ~tp", [Reason], #{py => start_failed}),
            {error, Reason}
    end.

start_steps() ->
    run_steps([fun(_) ->
                       %% A NIF library that failed to load would show as
                       %% `undef' in some later step: say it here.
                       case code:ensure_loaded(py_nif) of
                           {module, py_nif} -> {ok, undefined};
                           {error, on_load_failure} ->
                               %% Left by py_nif's on_load: e.g. {load_failed,
                               %% "Failed to load NIF library: '.../py_nif.so:
                               %% libpython3.12.so.1.0: cannot open ...'"}.
                               {error, {py_nif_not_loaded,
                                        persistent_term:get({py_nif, load_error},
                                                            on_load_failure)}};
                           {error, Why} -> {error, {py_nif_not_loaded, Why}}
                       end
               end,
               fun(_) -> py_config:load() end,
           fun(Config) ->
                   #{python := Python} = py_nif:build_info(),
                   case py_venv:prepare(Config, Python) of
                       {ok, Site} -> {ok, {Config, Site}};
                       Error -> Error
                   end
           end,
           fun({Config, Site}) ->
                   Path = python_path(Config),
                   case py_nif:init(Path) of
                       {ok, _} -> {ok, {Config, Site, length(Path)}};
                       {error, Reason} -> {error, {python_init_failed, Reason}}
                   end
           end,
           fun({Config, Site, Front}) ->
                   ok = py_config:publish(Config),
                   ok = py_nif:set_worker_stack(maps:get(worker_stack, Config)),
                   case py_boot:run(Config, Site, Front) of
                       ok -> {ok, Config};
                       Error -> Error
                   end
           end,
           fun(Config) ->
                   case py_sup:start_link(Config) of
                       {ok, Pid} -> {ok, Pid};
                       {error, Reason} -> {error, innermost(Reason)}
                   end
           end], undefined).

%% Runs the steps in order, each on the previous one's result, stopping at
%% the first error.
run_steps([], Acc) ->
    {ok, Acc};
run_steps([Step | Rest], Acc) ->
    case Step(Acc) of
        {ok, Next} -> run_steps(Rest, Next);
        {error, _} = Error -> Error
    end.

%% A child that failed to start deep in the tree: its own reason says more
%% than the supervisors' wrapping.
innermost({shutdown, {failed_to_start_child, _Id, Reason}}) -> innermost(Reason);
innermost({failed_to_start_child, _Id, Reason}) -> innermost(Reason);
innermost(Reason) -> Reason.

-spec stop(term()) -> ok.
stop(_State) ->
    ok.

%% The `beam' package first, then the `python_path' setting, as absolute
%% names: the interpreter outlives changes of the current directory.
python_path(#{python_path := Extra}) ->
    Priv = case code:priv_dir(py) of
               {error, bad_name} -> "priv";
               Dir -> Dir
           end,
    [unicode:characters_to_binary(filename:absname(P))
     || P <- [filename:join(Priv, "python") | Extra]].
