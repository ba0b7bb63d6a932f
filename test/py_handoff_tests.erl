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
                fun concurrent_callers/0]}}.

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
