%%% @private
%%% @doc Per-call options: parsed once, at the API, into one map.
%%%
%%% Every option is in the table of {@link spec/1}: its name, the APIs
%%% that take it, its check. A non-list, an option no API of that kind
%%% takes, or a bad value raises `{py_badarg, bad_option, Opt}' naming
%%% it. The first of two options with one name wins (as in proplists).
%%% An option that was not given is absent from the map: its default
%%% (the `strings', `call_timeout' and `scheduler' settings, the context
%%% of `py:with_context/2') is read where the call runs, by
%%% {@link py_engine}.
%%%
%%% Adding a call option is one line in {@link spec/1}, then its use in
%%% the engine. Internal options (`owner': the process that owns the
%%% handles of a remote result) are set with `maps:put' by py's own
%%% modules and never come from a user's list.
%%% @end
-module(py_opts).

-export([parse/2, call_opts/1, to_list/1]).

-export_type([opts/0, api/0]).

-type api() :: call | stream | scatter | on_all_workers.
%% `call': every function taking call options (`py:func/5',
%% `py:method/5', `py:eval/3', ...); the others add their own options.
-type opts() :: #{strings => binary | charlist,
                  return => value | handle,
                  await => boolean(),
                  timeout => timeout(),
                  context => py_context:context(),
                  node => node(),
                  pool => atom(),
                  worker => pos_integer(),
                  scheduler => py_config:scheduler(),
                  key => term(),
                  window => pos_integer(),
                  kwargs => term(),
                  max_in_flight => pos_integer(),
                  nodes => all | [node()],
                  owner => pid()}.

-define(CALL, [call, stream, scatter]).

%% @doc Parses the options of an API; raises `{py_badarg, bad_option,
%% Opt}' on the first bad one.
-spec parse(term(), api()) -> opts().
parse([], _Api) ->
    #{};
parse(Opts, Api) when is_list(Opts) ->
    parse(Opts, Api, #{});
parse(Opts, _Api) ->
    erlang:error({py_badarg, bad_option, Opts}).

parse([{Name, Value} = Opt | Rest], Api, Acc) when is_atom(Name) ->
    case spec(Name) of
        {Apis, Check} ->
            case lists:member(Api, Apis) andalso Check(Value) of
                true when is_map_key(Name, Acc) -> parse(Rest, Api, Acc);
                true -> parse(Rest, Api, Acc#{Name => Value});
                false -> erlang:error({py_badarg, bad_option, Opt})
            end;
        unknown ->
            erlang:error({py_badarg, bad_option, Opt})
    end;
parse([], _Api, Acc) ->
    Acc;
parse([Opt | _], _Api, _Acc) ->
    erlang:error({py_badarg, bad_option, Opt});
parse(Improper, _Api, _Acc) ->
    erlang:error({py_badarg, bad_option, Improper}).

%% The options: which APIs take them, and their check.
spec(strings) -> {[on_all_workers | ?CALL], fun(V) -> V =:= binary orelse V =:= charlist end};
spec(return) -> {[on_all_workers | ?CALL], fun(V) -> V =:= value orelse V =:= handle end};
spec(await) -> {[on_all_workers | ?CALL], fun erlang:is_boolean/1};
spec(timeout) -> {[on_all_workers | ?CALL], fun is_timeout/1};
spec(context) -> {?CALL, fun is_context/1};
spec(node) -> {?CALL, fun erlang:is_atom/1};
spec(pool) -> {[on_all_workers | ?CALL], fun erlang:is_atom/1};
spec(worker) -> {?CALL, fun is_pos_integer/1};
spec(scheduler) -> {?CALL, fun is_scheduler/1};
spec(key) -> {?CALL, fun(_) -> true end};
spec(window) -> {[stream], fun is_pos_integer/1};
spec(kwargs) -> {[stream, scatter], fun(V) -> is_list(V) orelse is_map(V) end};
spec(max_in_flight) -> {[scatter], fun is_pos_integer/1};
spec(nodes) -> {[scatter, on_all_workers], fun is_nodes/1};
spec(_) -> unknown.

is_timeout(infinity) -> true;
is_timeout(T) -> is_integer(T) andalso T >= 0.

is_pos_integer(N) -> is_integer(N) andalso N > 0.

is_context(C) -> py_context:is_context(C).

is_scheduler(S) when S =:= shared; S =:= round_robin; S =:= random; S =:= least_loaded;
                     S =:= keyed ->
    true;
is_scheduler({M, F}) -> is_atom(M) andalso is_atom(F);
is_scheduler(_) -> false.

is_nodes(all) -> true;
is_nodes(Nodes) when is_list(Nodes) -> lists:all(fun erlang:is_atom/1, Nodes);
is_nodes(_) -> false.

%% @doc The options of one call, without those of the API around it
%% (`window', `kwargs', `max_in_flight', `nodes').
-spec call_opts(opts()) -> opts().
call_opts(Opts) ->
    maps:without([window, kwargs, max_in_flight, nodes], Opts).

%% @doc The options as a proplist (what a custom scheduler is given).
-spec to_list(opts()) -> [{atom(), term()}].
to_list(Opts) ->
    maps:to_list(maps:without([owner], Opts)).
