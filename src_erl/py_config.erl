%%% @doc The py application's configuration: read from the application
%%% environment, checked, and published for the hot path in
%%% `persistent_term'. A wrong setting fails the start with a message naming
%%% the setting.
%%% @end
-module(py_config).

-export([load/0, publish/1, get/1]).

-export_type([config/0]).

-type config() :: #{workers := pos_integer(),
                    call_timeout := timeout(),
                    strings := binary | charlist,
                    python_path := [file:filename_all()]}.

-define(KEY, {?MODULE, config}).

%% @doc Reads and checks the application environment of `py'.
-spec load() -> {ok, config()} | {error, {bad_config, atom(), term(), string()}}.
load() ->
    Specs = [{workers, 4, fun(V) -> is_integer(V) andalso V > 0 end,
              "a positive integer"},
             {call_timeout, infinity,
              fun(V) -> V =:= infinity orelse (is_integer(V) andalso V >= 0) end,
              "a timeout in milliseconds or infinity"},
             {strings, binary, fun(V) -> V =:= binary orelse V =:= charlist end,
              "binary or charlist"},
             {python_path, [], fun is_path_list/1, "a list of directory names"}],
    check(Specs, #{}).

check([], Acc) ->
    {ok, Acc};
check([{Key, Default, Valid, Expect} | Rest], Acc) ->
    Value = application:get_env(py, Key, Default),
    case Valid(Value) of
        true -> check(Rest, Acc#{Key => Value});
        false -> {error, {bad_config, Key, Value, "expected " ++ Expect}}
    end.

is_path_list(L) when is_list(L) ->
    lists:all(fun(P) -> is_binary(P) orelse io_lib:char_list(P) end, L);
is_path_list(_) ->
    false.

%% @doc Makes the configuration readable by callers without a process hop.
-spec publish(config()) -> ok.
publish(Config) ->
    persistent_term:put(?KEY, Config).

%% @doc One setting as published at start (the default before start).
-spec get(atom()) -> term().
get(Key) ->
    case persistent_term:get(?KEY, undefined) of
        undefined ->
            {ok, Defaults} = load(),
            maps:get(Key, Defaults);
        Config ->
            maps:get(Key, Config)
    end.
