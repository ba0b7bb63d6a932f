%%% @doc Python server schedulers: which worker serves a call.
%%%
%%% A scheduler is chosen per call (`{scheduler, S}' or `{key, Term}' in the
%%% call's options) or by the `scheduler' setting:
%%%
%%% <ul>
%%% <li>`shared' (the default): the call goes to the NIF's shared queue,
%%%     and the first idle worker takes it. Fastest for short calls (an idle
%%%     worker spins on that queue; waking a chosen worker costs tens of
%%%     microseconds), but no affinity.</li>
%%% <li>`round_robin': each worker in turn.</li>
%%% <li>`random': a uniformly random worker.</li>
%%% <li>`least_loaded': the worker with the shortest queue; ties go round
%%%     robin.</li>
%%% <li>`keyed' (also chosen by a `{key, Term}' option without a
%%%     `{scheduler, S}' one): the worker the call's `{key, Term}' hashes to, so calls
%%%     with the same key run on the same worker and see the same Python
%%%     globals. Without a key, the calling process is the key. A key maps to
%%%     the same worker as long as the set of workers does not change (a
%%%     restarted worker keeps its place).</li>
%%% <li>`{worker, Id}' (a call option only, not a setting): the worker
%%%     with that id (see `py:workers/0'), whatever the scheduler; an error
%%%     `{py_no_worker, Id}' when it is not in the pool. Identical calls
%%%     (`py:on_all_workers/3') use it.</li>
%%% <li>`{Module, Function}': a custom scheduler, called as
%%%     `Module:Function(Members, Opts)' with the tuple of pool members
%%%     (opaque; {@link py_pool:queue_len/1} and {@link py_pool:slot/1} tell
%%%     about one) and the call's options as a proplist (a `{key, Term}'
%%%     option carries data of its own to it); it returns the position (1-based)
%%%     of the member to use. It runs in the caller, so it must be quick.</li>
%%% </ul>
%%%
%%% Picking runs in the caller, on data published in `persistent_term' and
%%% an `atomics' counter: no process hop.
%%% @end
-module(py_sched).

-export([pick/4]).

%% @private
%% @doc The position in `Members' (non-empty) of the member for a call
%% with (parsed) options `Opts', or `any' for the shared queue. `Counter'
%% is the pool's round-robin counter, `Default' the `scheduler' setting.
-spec pick(tuple(), atomics:atomics_ref(), py_opts:opts(), py_config:scheduler()) ->
          pos_integer() | any.
pick(Members, Counter, Opts, Default) ->
    case Opts of
        #{worker := Id} -> pinned(Members, Id, 1);
        #{scheduler := S} -> by(S, Members, Counter, Opts);
        #{key := _} -> by(keyed, Members, Counter, Opts);
        #{} -> by(Default, Members, Counter, Opts)
    end.

by(shared, _Members, _Counter, _Opts) ->
    any;
by(round_robin, Members, Counter, _Opts) ->
    round_robin(Members, Counter);
by(random, Members, _Counter, _Opts) ->
    rand:uniform(tuple_size(Members));
by(least_loaded, Members, Counter, _Opts) ->
    least_loaded(Members, Counter);
by(keyed, Members, _Counter, Opts) ->
    keyed(Members, Opts);
by({M, F}, Members, _Counter, Opts) when is_atom(M), is_atom(F) ->
    %% A scheduler that does not exist or crashes is a bad scheduler, not
    %% a raw error of its own.
    Picked = try M:F(Members, py_opts:to_list(Opts))
             catch Class:Reason -> {Class, Reason}
             end,
    case Picked of
        I when is_integer(I), I >= 1, I =< tuple_size(Members) -> I;
        Other -> erlang:error({py_bad_scheduler, {M, F}, Other})
    end;
by(Other, _Members, _Counter, _Opts) ->
    erlang:error({py_badarg, bad_scheduler, Other}).

%% Each worker in turn.
round_robin(Members, Counter) ->
    1 + atomics:add_get(Counter, 1, 1) rem tuple_size(Members).

%% The worker with the fewest queued jobs. The scan starts at a rotating
%% position so that equally loaded workers share the calls, and stops at
%% the first empty queue.
least_loaded(Members, Counter) ->
    Size = tuple_size(Members),
    Start = atomics:add_get(Counter, 1, 1) rem Size,
    First = 1 + Start,
    scan(Members, Size, Start, 1, First, py_pool:queue_len(element(First, Members))).

scan(_Members, _Size, _Start, _Step, Best, 0) ->
    Best;
scan(_Members, Size, _Start, Size, Best, _BestLen) ->
    Best;
scan(Members, Size, Start, Step, Best, BestLen) ->
    I = 1 + (Start + Step) rem Size,
    case py_pool:queue_len(element(I, Members)) of
        Len when Len < BestLen -> scan(Members, Size, Start, Step + 1, I, Len);
        _ -> scan(Members, Size, Start, Step + 1, Best, BestLen)
    end.

%% The member whose id is `Id' (members are ordered by id). A worker that
%% is not in the pool (removed, or between a crash and its restart) is an
%% error: the call must run there or nowhere (identical calls).
pinned(Members, Id, I) when I > tuple_size(Members) ->
    erlang:error({py_no_worker, Id});
pinned(Members, Id, I) ->
    case py_pool:slot(element(I, Members)) of
        Id -> I;
        _ -> pinned(Members, Id, I + 1)
    end.

%% The worker the call's key (or else the calling process) hashes to.
keyed(Members, Opts) ->
    Key = case Opts of
              #{key := K} -> K;
              #{} -> self()
          end,
    1 + erlang:phash2(Key, tuple_size(Members)).
