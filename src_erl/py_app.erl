%%% @doc The py application: starts the embedded interpreter, then the
%%% supervision tree of Python workers.
%%% @end
-module(py_app).
-behaviour(application).

-export([start/2, stop/1]).

-spec start(application:start_type(), term()) -> {ok, pid()} | {error, term()}.
start(_Type, _Args) ->
    case py_config:load() of
        {ok, Config} ->
            case py_nif:init(python_path(Config)) of
                {ok, _} ->
                    py_config:publish(Config),
                    py_sup:start_link(Config);
                {error, Reason} ->
                    {error, {python_init_failed, Reason}}
            end;
        {error, _} = Error ->
            Error
    end.

-spec stop(term()) -> ok.
stop(_State) ->
    ok.

python_path(#{python_path := Extra}) ->
    Priv = case code:priv_dir(py) of
               {error, bad_name} -> "priv";
               Dir -> Dir
           end,
    [unicode:characters_to_binary(P) || P <- [filename:join(Priv, "python") | Extra]].
