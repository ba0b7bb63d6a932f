%%% @doc The reply handed over in memory (`native/src/handoff.rs'): a lone
%%% call on an idle pool may get its reply from `py_nif:submit_wait/2'
%%% itself. Whichever way a reply comes, it comes once and whole. (That
%%% output comes before it on either path is py_output_SUITE's: its
%%% sequential calls mostly take the handoff.)
-module(py_handoff_tests).

-include_lib("eunit/include/eunit.hrl").

handoff_test_() ->
    {setup, fun py_test_util:start/0, fun(_) -> py_test_util:stop() end,
     {inorder, [fun handed_over/0, fun large_reply_is_sent/0, fun errors/0,
                fun concurrent_callers/0, fun mixed_replies/0, fun binaries_not_kept/0,
                fun handles_not_kept/0]}}.

req(M, F, A) ->
    py_request:set_flags(py_request:call({M, F}, A, []), py_request:flags(binary, value, true)).

%% `{direct, Reply}' or `{message, Reply}'; never both: no second reply
%% is left in the mailbox.
submit(Request) ->
    Ref = make_ref(),
    Got = case py_nif:submit_wait(Ref, Request) of
              {Ref, Reply} -> {direct, Reply};
              ok -> receive {Ref, Reply} -> {message, Reply} after 5000 -> no_reply end
          end,
    receive {Ref, Extra} -> {twice, Got, Extra} after 0 -> Got end.

%% On an idle pool, sequential small calls are handed over (a worker spins
%% after each call): not every one (a worker may have parked meanwhile),
%% but most. Each reply is exact.
handed_over() ->
    Results = [submit(req(operator, add, [N, 1])) || N <- lists:seq(1, 2000)],
    ?assertEqual([{ok, N + 1} || N <- lists:seq(1, 2000)], [R || {_, R} <- Results]),
    Direct = length([x || {direct, _} <- Results]),
    ?assert(Direct > 0).

%% A reply too large to copy on a scheduler is sent as a message, in full
%% (the worker declines the handoff; the waiting caller stops at once).
large_reply_is_sent() ->
    N = 200000,
    Code = iolist_to_binary(io_lib:format("list(range(~b))", [N])),
    Request = py_request:set_flags(py_request:eval(Code, #{}), py_request:flags(binary, value, true)),
    [begin
         _ = submit(req(operator, add, [1, 1])),
         ?assertEqual({message, {ok, lists:seq(0, N - 1)}}, submit(Request))
     end || _ <- lists:seq(1, 5)].

%% Errors come back the same way as values.
errors() ->
    [?assertMatch({_, {error, {python, 'ZeroDivisionError', _, _}}},
                  submit(req(operator, truediv, [1, 0]))) || _ <- lists:seq(1, 200)].

%% Many callers at once (only a lone call may wait in the NIF): every one
%% gets exactly its own replies.
concurrent_callers() ->
    Self = self(),
    Pids = [spawn_link(fun() ->
                               Rs = [submit(req(operator, mul, [I, K])) || K <- lists:seq(1, 300)],
                               Self ! {self(), [R || {_, R} <- Rs], length([x || {twice, _, _} <- Rs])}
                       end) || I <- lists:seq(1, 8)],
    [receive
         {P, Rs, Twice} ->
             ?assertEqual(0, Twice),
             ?assertEqual([{ok, I * K} || K <- lists:seq(1, 300)], Rs)
     end || {I, P} <- lists:zip(lists:seq(1, 8), Pids)].

%% Handed-over jobs' environments are reused without clearing while they
%% hold a few small terms (`Job::recycle_handed_over'): replies of every
%% kind, small and large, in any order, are each exact.
mixed_replies() ->
    Requests = [case N rem 5 of
                    0 -> {req(operator, add, [N, 1]), {ok, N + 1}};
                    1 -> {req(builtins, bytes, [N rem 50]), {ok, binary:copy(<<0>>, N rem 50)}};
                    2 -> {req(builtins, tuple, [[N, N]]), {ok, {N, N}}};
                    3 -> {req(builtins, list, [lists:seq(1, N rem 300)]), {ok, lists:seq(1, N rem 300)}};
                    4 -> {req(builtins, str, [N]), {ok, integer_to_binary(N)}}
                end || N <- lists:seq(1, 3000)],
    [?assertEqual(Want, element(2, submit(R))) || {R, Want} <- Requests].

%% A binary in a handed-over call's request is not kept alive by the
%% reused environment: once its owner is gone, its memory is freed.
binaries_not_kept() ->
    Before = erlang:memory(binary),
    Size = 50000000,
    %% A buffer: Python reads the binary in place, so the call is short
    %% enough to be handed over.
    {Pid, MRef} = spawn_monitor(fun() ->
                                        B = binary:copy(<<7>>, Size),
                                        Rs = [submit(req(builtins, len, [py:buffer(B)]))
                                              || _ <- lists:seq(1, 20)],
                                        [{ok, Size}] = lists:usort([R || {_, R} <- Rs]),
                                        exit({done, length([x || {direct, _} <- Rs])})
                                end),
    receive {'DOWN', MRef, process, Pid, {done, Direct}} -> ?assert(Direct > 0) end,
    ?assert(py_test_util:wait_until(fun() -> erlang:memory(binary) < Before + Size div 2 end, 100)).

%% Nor is a handle in a handed-over reply: once Erlang drops it, Python
%% frees the object.
handles_not_kept() ->
    py:exec(<<"import weakref\n"
              "class Held: pass\n"
              "def make_held():\n"
              "    global held_ref\n"
              "    h = Held()\n"
              "    held_ref = weakref.ref(h)\n"
              "    return h\n">>),
    {Pid, MRef} = spawn_monitor(fun() ->
                                        [{'$py', _, _} = py:func('__main__', make_held, [], [],
                                                                 [{return, handle}])
                                         || _ <- lists:seq(1, 20)],
                                        exit(done)
                                end),
    receive {'DOWN', MRef, process, Pid, done} -> ok end,
    ?assert(py_test_util:wait_until(
              fun() ->
                      py:exec(<<"import gc\ngc.collect()">>),
                      py:eval(<<"held_ref() is None">>)
              end, 100)).
