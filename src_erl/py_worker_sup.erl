%%% @private
%%% @doc Supervises the Python workers, one child per worker thread, and
%%% adds and removes workers at run time.
%%%
%%% Restart intensity is the `max_restarts' and `restart_period' settings:
%%% more restarts than that in that many seconds, and this supervisor gives
%%% up (its own supervisor then restarts the whole pool, or stops py).
%%% @end
-module(py_worker_sup).
-behaviour(supervisor).

-include_lib("kernel/include/logger.hrl").

-export([start_link/1, add/1, remove/1, slots/0]).
-export([init/1]).

-spec start_link(py_config:config()) -> {ok, pid()} | {error, term()}.
start_link(Config) ->
    supervisor:start_link({local, ?MODULE}, ?MODULE, Config).

-spec init(py_config:config()) -> {ok, {supervisor:sup_flags(), [supervisor:child_spec()]}}.
init(Config = #{workers := Count, max_restarts := Intensity, restart_period := Period}) ->
    Flags = #{strategy => one_for_one, intensity => Intensity, period => Period},
    {ok, {Flags, [py_worker:child_spec(Slot, Config) || Slot <- lists:seq(1, Count)]}}.

%% @doc Starts `N' more workers; returns their ids. Stops at the first
%% that fails to start (those started before stay).
-spec add(non_neg_integer()) -> {ok, [py_pool:slot()]} | {error, term()}.
add(N) when is_integer(N), N >= 0 ->
    Config = config(),
    changing(fun() -> start_children(py_pool:reserve_slots(N), Config, []) end).

start_children([], _Config, Started) ->
    ?LOG_INFO("py: added workers ~w", [lists:reverse(Started)], #{py => workers_added}),
    {ok, lists:reverse(Started)};
start_children([Slot | Rest], Config, Started) ->
    case supervisor:start_child(?MODULE, py_worker:child_spec(Slot, Config)) of
        {ok, _Pid} -> start_children(Rest, Config, [Slot | Started]);
        {error, Why} -> {error, Why}
    end.

%% @doc Stops the `N' most recently added workers, after they answered
%% the calls they had accepted; returns their ids. At least one worker
%% stays.
-spec remove(non_neg_integer()) -> {ok, [py_pool:slot()]} | {error, term()}.
remove(N) when is_integer(N), N >= 0 ->
    changing(fun() ->
                     Slots = slots(),
                     case N < length(Slots) of
                         true ->
                             Gone = lists:sublist(lists:reverse(Slots), N),
                             lists:foreach(fun stop_child/1, Gone),
                             ?LOG_INFO("py: removed workers ~w", [Gone], #{py => workers_removed}),
                             {ok, Gone};
                         false ->
                             {error, {too_few_workers, length(Slots)}}
                     end
             end).

stop_child(Slot) ->
    %% Out of the pool first, so that no new call picks it while it drains.
    ok = py_pool:unregister(Slot),
    _ = supervisor:terminate_child(?MODULE, {py_worker, Slot}),
    _ = supervisor:delete_child(?MODULE, {py_worker, Slot}),
    ok.

%% @doc The ids of the workers this supervisor has, ascending.
-spec slots() -> [py_pool:slot()].
slots() ->
    lists:sort([Slot || {{py_worker, Slot}, _, _, _} <- supervisor:which_children(?MODULE)]).

%% Changes of the worker set run one at a time (two concurrent removals
%% must not pick the same workers).
changing(Fun) ->
    case whereis(?MODULE) of
        undefined -> {error, py_not_started};
        _ -> global:trans({?MODULE, self()}, Fun, [node()])
    end.

config() ->
    #{shutdown_timeout => py_config:get(shutdown_timeout)}.
