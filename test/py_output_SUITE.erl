%%% @doc Python's output and logs: what a call prints reaches the group
%%% leader of the calling process, in order and before the call returns
%%% (from a peer node too); output of Python's own threads, `logging'
%%% records and warnings reach `logger'; the `stdout', `stderr' and
%%% `logging' settings.
%%%
%%% A capturing group leader (a process speaking the io protocol) stands
%%% in for the caller's shell, a logger handler of this module forwards
%%% events to the test process.
-module(py_output_SUITE).

-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").

-export([suite/0, all/0, init_per_suite/1, end_per_suite/1,
         init_per_testcase/2, end_per_testcase/2]).
-export([print_in_order/1, stderr_and_partial_lines/1, contexts_and_streams/1,
         timed_out_call/1, print_from_peer_node/1, thread_output_after_call/1,
         ten_thousand_lines/1, ten_thousand_thread_lines/1, caller_dies_mid_print/1,
         dead_group_leader/1, logging_levels/1, logging_metadata_and_tracebacks/1,
         level_follows_logger/1, warnings_once_per_location/1, settings/1,
         bad_settings/1, nested_calls/1, big_and_unterminated_output/1]).
%% logger handler callback
-export([log/2]).

-define(HANDLER, py_output_suite).

suite() ->
    [{timetrap, {minutes, 3}}].

all() ->
    [print_in_order, stderr_and_partial_lines, contexts_and_streams, timed_out_call, nested_calls,
     print_from_peer_node, thread_output_after_call, ten_thousand_lines,
     ten_thousand_thread_lines, big_and_unterminated_output, caller_dies_mid_print, dead_group_leader,
     logging_levels, logging_metadata_and_tracebacks, level_follows_logger,
     warnings_once_per_location, settings, bad_settings].

init_per_suite(Config) ->
    ok = py_test_util:start(),
    Config.

end_per_suite(_Config) ->
    py_test_util:stop().

init_per_testcase(_Case, Config) ->
    ok = logger:add_handler(?HANDLER, ?MODULE, #{level => all, config => #{pid => self()}}),
    Config.

end_per_testcase(_Case, _Config) ->
    _ = logger:remove_handler(?HANDLER),
    ok = logger:update_primary_config(#{level => notice}),
    ok.

%%% Helpers ----------------------------------------------------------

%% The logger handler: every event to the test process.
log(Event, #{config := #{pid := Pid}}) ->
    Pid ! {logged, Event},
    ok.

%% The logged events so far that `Match' accepts, waiting up to `Ms' for
%% at least `N' of them.
logged(Match, N, Ms) ->
    Deadline = erlang:monotonic_time(millisecond) + Ms,
    logged(Match, N, Deadline, []).

logged(Match, N, Deadline, Acc) when length(Acc) >= N ->
    lists:reverse(Acc) ++ logged(Match, infinity, Deadline, []);
logged(Match, N, Deadline, Acc) ->
    Wait = case N of
               infinity -> 0;
               _ -> max(0, Deadline - erlang:monotonic_time(millisecond))
           end,
    receive
        {logged, Event} ->
            case Match(Event) of
                true -> logged(Match, N, Deadline, [Event | Acc]);
                false -> logged(Match, N, Deadline, Acc)
            end
    after Wait ->
        lists:reverse(Acc)
    end.

text(#{msg := {string, S}}) ->
    unicode:characters_to_binary(S);
text(#{msg := {Format, Args}}) when is_list(Args) ->
    unicode:characters_to_binary(io_lib:format(Format, Args));
text(_) ->
    <<>>.

%% Events of one kind (`py' metadata) whose text contains `Part'.
kind(Kind, Part) ->
    fun(#{meta := #{py := K}} = E) when K =:= Kind -> binary:match(text(E), Part) =/= nomatch;
       (_) -> false
    end.

exec(Code) ->
    py:exec(iolist_to_binary(Code)).

restart_with(Settings) ->
    [ok = application:set_env(py, K, V) || {K, V} <- Settings],
    py:restart().

unset(Keys) ->
    [ok = application:unset_env(py, K) || K <- Keys],
    ok = py:restart().

%%% Output of calls ----------------------------------------------------

print_in_order(_Config) ->
    Code = "import sys\n"
           "print('one')\n"
           "sys.stderr.write('two\\n')\n"
           "print('three', 3, sep='-')\n"
           "sys.stdout.write('four ')\n"
           "sys.stderr.write('five\\n')\n"
           "print('six', flush=True)\n",
    {Result, Out} = py_test_util:captured(fun() -> exec(Code) end),
    ?assertEqual(undefined, Result),
    %% All of it, in the order written, already there when the call
    %% returned.
    ?assertEqual(<<"one\ntwo\nthree-3\nfour five\nsix\n">>, Out),
    %% A value-returning call prints too.
    {42, Out2} = py_test_util:captured(fun() -> py:eval(<<"print('x') or 42">>) end),
    ?assertEqual(<<"x\n">>, Out2),
    %% Unicode, and a call that prints nothing.
    {_, Out3} = py_test_util:captured(fun() -> exec("print('h\\u00e9llo \\u2603')") end),
    ?assertEqual(<<"héllo ☃\n"/utf8>>, Out3),
    {3, <<>>} = py_test_util:captured(fun() -> py:func(operator, add, [1, 2]) end),
    %% No message is left behind.
    {messages, []} = process_info(self(), messages).

stderr_and_partial_lines(_Config) ->
    %% A line without its newline is sent when the call ends; the two
    %% streams keep their order across partial lines.
    Code = "import sys\n"
           "sys.stdout.write('a')\n"
           "sys.stderr.write('b')\n"
           "sys.stdout.write('c')\n",
    {_, Out} = py_test_util:captured(fun() -> exec(Code) end),
    ?assertEqual(<<"abc">>, Out),
    %% Bytes through sys.stdout.buffer, a surrogate replaced.
    {_, Out2} = py_test_util:captured(fun() -> exec("import sys\nsys.stdout.buffer.write(b'raw\\n')\n"
                                       "print('\\udcff')") end),
    %% (a lone surrogate cannot be UTF-8: it comes as U+FFFD characters)
    <<"raw\n", Replaced/binary>> = Out2,
    ?assertMatch([16#FFFD | _], unicode:characters_to_list(Replaced)),
    ?assertEqual([$\n], lists:usort(unicode:characters_to_list(Replaced)) -- [16#FFFD]),
    %% The streams behave as text files.
    {[false, true, <<"utf-8">>, <<"<stdout>">>, <<"<stderr>">>], _} =
        py_test_util:captured(fun() -> py:eval(<<"[__import__('sys').stdout.isatty(), "
                                    "__import__('sys').stdout.writable(), "
                                    "__import__('sys').stdout.encoding, "
                                    "__import__('sys').stdout.name, "
                                    "__import__('sys').stderr.name]">>) end),
    %% Bad writes raise in Python as they would on a real stream.
    {python, 'TypeError', _, _} =
        py_test_util:error_of(fun() -> exec("import sys\nsys.stdout.write(b'x')") end).

contexts_and_streams(_Config) ->
    Ctx = py:context(),
    {_, Out} = py_test_util:captured(fun() ->
                                undefined = py:exec(<<"def gen(n):\n"
                                                      "    for i in range(n):\n"
                                                      "        print('item', i)\n"
                                                      "        yield i\n">>, #{},
                                                    [{context, Ctx}]),
                                py:eval(<<"print('in context') or 1">>, #{}, [{context, Ctx}])
                        end),
    ?assertEqual(<<"in context\n">>, Out),
    undefined = py:exec(<<"def gen(n):\n"
                          "    for i in range(n):\n"
                          "        print('item', i)\n"
                          "        yield i\n">>),
    %% A stream's streamer process shares the consumer's group leader.
    {Items, Out2} = py_test_util:captured(fun() ->
                                     S = py:stream('__main__', gen, [3]),
                                     collect(S, [])
                             end),
    ?assertEqual([0, 1, 2], Items),
    ?assertEqual(<<"item 0\nitem 1\nitem 2\n">>, Out2),
    %% fold, and a context inside with_context.
    {3, Out3} = py_test_util:captured(fun() -> py:fold(fun(X, A) -> X + A end, 0,
                                          py:func('__main__', gen, [3], [], [{return, handle}])) end),
    ?assertEqual(<<"item 0\nitem 1\nitem 2\n">>, Out3).

collect(S, Acc) ->
    case py:stream_next(S, 5000) of
        {ok, I} -> collect(S, [I | Acc]);
        done -> lists:reverse(Acc)
    end.

timed_out_call(_Config) ->
    %% What was printed before the timeout is shown; what the interrupted
    %% code prints afterwards (its `finally') goes to logger, with the
    %% pid of the caller that gave up; nothing is left in the mailbox.
    Code = <<"import time\n"
             "def slow():\n"
             "    print('before', flush=True)\n"
             "    try:\n"
             "        time.sleep(5)\n"
             "    finally:\n"
             "        print('after the timeout')\n">>,
    undefined = py:exec(Code),
    {Reason, Out} = py_test_util:captured(fun() ->
                                     py_test_util:error_of(fun() ->
                                             py:func('__main__', slow, [], [], [{timeout, 300}])
                                     end)
                             end),
    ?assertEqual({py_timeout, 300}, Reason),
    ?assertEqual(<<"before\n">>, Out),
    Me = self(),
    [#{level := notice, meta := #{py_caller := Me}}] =
        logged(kind(stdout, <<"after the timeout">>), 1, 15000),
    timer:sleep(100),
    ?assertEqual([], [M || M <- element(2, process_info(self(), messages)),
                           not is_tuple(M) orelse element(1, M) =/= logged]),
    %% A timed call that prints and finishes in time.
    {1, <<"quick\n">>} = py_test_util:captured(fun() -> py:eval(<<"print('quick') or 1">>, #{},
                                                   [{timeout, 5000}]) end).

nested_calls(_Config) ->
    %% Python -> Erlang (beam.call) -> Python: the Erlang function runs with
    %% the caller's group leader, and so does the inner Python call.
    Code = <<"import beam\n"
             "print('outer before')\n"
             "beam.call('io', 'put_chars', [b'from erlang\\n'])\n"
             "beam.call('py', 'eval', [b\"print('inner') or 1\"])\n"
             "print('outer after')\n">>,
    {undefined, Out} = py_test_util:captured(fun() -> py:exec(Code) end),
    Lines = binary:split(Out, <<"\n">>, [global, trim]),
    ?assertEqual(lists:sort([<<"outer before">>, <<"from erlang">>, <<"inner">>, <<"outer after">>]),
                 lists:sort(Lines)),
    %% The other processes write directly: the order is the order of
    %% events, except that the call's own earlier lines may still be on
    %% their way through the caller's mailbox.
    [<<"from erlang">>, <<"inner">>, <<"outer after">>] = Lines -- [<<"outer before">>],
    ok.

print_from_peer_node(_Config) ->
    case py_test_util:start_distribution() of
        {ok, Started} ->
            try
                Name = "py_out_peer_" ++ os:getpid(),
                {ok, Peer} = py:start_node(Name, #{env => [{workers, 1}],
                                                   code_path => py_test_util:build_paths()}),
                try
                    {Result, Out} =
                        py_test_util:captured(fun() ->
                                         py:eval(<<"print('printed on', __import__('os').getpid()) "
                                                   "or __import__('os').getpid()">>,
                                                 #{}, [{node, Peer}])
                                 end),
                    ?assertNotEqual(list_to_integer(os:getpid()), Result),
                    %% The peer's Python printed it; it shows here, where
                    %% the caller is.
                    ?assertEqual(iolist_to_binary(["printed on ", integer_to_list(Result), "\n"]),
                                 Out)
                after
                    py:stop_node(Peer)
                end
            after
                Started andalso net_kernel:stop()
            end;
        {error, Why} ->
            {skip, {no_distribution, Why}}
    end.

%%% Output outside calls -----------------------------------------------

thread_output_after_call(_Config) ->
    Code = <<"import logging, threading, time\n"
             "def later():\n"
             "    time.sleep(0.2)\n"
             "    print('thread line')\n"
             "    print('thread partial', end='')\n"
             "    logging.getLogger('later').error('logged after the call')\n"
             "t = threading.Thread(target=later, name='later-thread')\n"
             "t.start()\n">>,
    {undefined, <<>>} = py_test_util:captured(fun() -> py:exec(Code) end),
    [#{level := notice, meta := #{py_thread := <<"later-thread">>} = M1}] =
        logged(kind(stdout, <<"thread line">>), 1, 5000),
    ?assertNot(maps:is_key(py_caller, M1)),
    [#{level := error, meta := #{py_thread := <<"later-thread">>, py_logger := <<"later">>}}] =
        logged(kind(logging, <<"logged after the call">>), 1, 5000),
    %% The line without its newline comes after a short wait.
    [_] = logged(kind(stdout, <<"thread partial">>), 1, 5000).

ten_thousand_lines(_Config) ->
    N = 10000,
    {N, Out} = py_test_util:captured(fun() ->
                                py:eval(<<"[print('line', i) for i in range(n)] and n">>, #{n => N})
                        end),
    Lines = binary:split(Out, <<"\n">>, [global, trim]),
    same_lines([iolist_to_binary(["line ", integer_to_list(I)]) || I <- lists:seq(0, N - 1)],
               Lines).

%% Long lists compared with a short report: how many, and the first
%% difference.
same_lines(Expected, Expected) ->
    ok;
same_lines(Expected, Got) ->
    First = length(lists:takewhile(fun({A, B}) -> A =:= B end,
                                   lists:zip(lists:sublist(Expected, length(Got)),
                                             lists:sublist(Got, length(Expected))))),
    ct:fail({lines_differ, {expected, length(Expected)}, {got, length(Got)},
             {first_difference_at, First + 1},
             {got_there, lists:sublist(Got, First + 1, 3)}}).

ten_thousand_thread_lines(_Config) ->
    N = 10000,
    undefined = py:exec(<<"import threading\n"
                          "def many(n):\n"
                          "    for i in range(n):\n"
                          "        print('bulk', i)\n"
                          "threading.Thread(target=many, args=(", (integer_to_binary(N))/binary, ",),"
                          " name='bulk-thread').start()\n">>),
    Events = logged(fun(#{meta := #{py := stdout, py_thread := <<"bulk-thread">>}}) -> true;
                       (_) -> false
                    end, N, 60000),
    same_lines([iolist_to_binary(["bulk ", integer_to_list(I)]) || I <- lists:seq(0, N - 1)],
               [text(E) || E <- Events]).

big_and_unterminated_output(_Config) ->
    %% One 5 MB line; then 200,000 writes without a newline (sent in
    %% pieces past 64 KB, the rest at the end of the call): all of it, in
    %% order.
    {_, Big} = py_test_util:captured(fun() -> exec("print('x' * 5000000)") end),
    ?assertEqual(5000001, byte_size(Big)),
    {_, Pieces} = py_test_util:captured(fun() -> exec("import sys\n"
                                         "for i in range(200000):\n"
                                         "    sys.stdout.write(str(i % 10))\n") end),
    ?assertEqual(200000, byte_size(Pieces)),
    ?assertEqual(binary:copy(<<"0123456789">>, 20000), Pieces).

caller_dies_mid_print(_Config) ->
    undefined = py:exec(<<"import time\n"
                          "def chatter(n):\n"
                          "    try:\n"
                          "        for i in range(n):\n"
                          "            print('chatter', i)\n"
                          "            time.sleep(0.002)\n"
                          "    except BaseException:\n"
                          "        print('chatter done')\n"
                          "        raise\n"
                          "    return n\n">>),
    Test = self(),
    {Pid, MRef} = spawn_monitor(fun() ->
                                        group_leader(py_test_util:start_capture(), self()),
                                        Test ! started,
                                        py:func('__main__', chatter, [300])
                                end),
    receive started -> ok end,
    timer:sleep(100),
    exit(Pid, kill),
    receive {'DOWN', MRef, process, Pid, killed} -> ok end,
    %% The call is interrupted (a dead caller's call does not go on);
    %% its last line, with no caller to take it, is logged with the dead
    %% caller's pid.
    [#{meta := #{py_caller := Pid}}] = logged(kind(stdout, <<"chatter done">>), 1, 10000),
    %% The workers serve calls as before.
    {3, <<>>} = py_test_util:captured(fun() -> py:func(operator, add, [1, 2]) end).

dead_group_leader(_Config) ->
    %% A group leader that is gone: the output is logged instead.
    GL = py_test_util:start_capture(),
    GL ! stop,
    Old = group_leader(),
    group_leader(GL, self()),
    R = try py:eval(<<"print('nobody listens') or 7">>)
        after group_leader(Old, self())
        end,
    ?assertEqual(7, R),
    [_] = logged(kind(stdout, <<"nobody listens">>), 1, 5000).

%%% logging and warnings ------------------------------------------------

logging_levels(_Config) ->
    ok = logger:update_primary_config(#{level => debug}),
    ok = wait_python_level(1),
    Code = <<"import logging\n"
             "log = logging.getLogger('levels')\n"
             "log.debug('d-msg')\n"
             "log.info('i-msg')\n"
             "log.warning('w-msg')\n"
             "log.error('e-msg')\n"
             "log.critical('c-msg')\n"
             "log.log(25, 'n-msg')\n">>,
    {undefined, <<>>} = py_test_util:captured(fun() -> py:exec(Code) end),
    Levels = [{Part, L} || #{level := L} = E <- logged(kind(logging, <<"-msg">>), 6, 5000),
                           Part <- [binary:part(text(E), 0, 1)]],
    ?assertEqual([{<<"d">>, debug}, {<<"i">>, info}, {<<"w">>, warning}, {<<"e">>, error},
                  {<<"c">>, critical}, {<<"n">>, notice}], Levels),
    %% Filtered in Python: at primary level `error', warnings and below
    %% are not even made into records.
    ok = logger:update_primary_config(#{level => error}),
    ok = wait_python_level(40),
    ?assertEqual([false, true],
                 py:eval(<<"[__import__('logging').getLogger('levels').isEnabledFor(30), "
                           "__import__('logging').getLogger('levels').isEnabledFor(40)]">>)),
    {undefined, <<>>} = py_test_util:captured(fun() -> py:exec(Code) end),
    ?assertEqual([<<"e-msg">>, <<"c-msg">>],
                 [text(E) || E <- logged(kind(logging, <<"-msg">>), 2, 2000)]).

wait_python_level(Level) ->
    true = py_test_util:wait_until(
             fun() -> py:eval(<<"__import__('logging').getLogger().level">>) =:= Level end, 150),
    ok.

logging_metadata_and_tracebacks(_Config) ->
    Code = <<"import logging\n"
             "def fail():\n"
             "    try:\n"
             "        1 / 0\n"
             "    except ZeroDivisionError:\n"
             "        logging.getLogger('app.db').exception('query %s failed', 'q1')\n">>,
    undefined = py:exec(Code),
    undefined = py:func('__main__', fail, []),
    Me = self(),
    [#{level := error, meta := Meta} = E] = logged(kind(logging, <<"query q1 failed">>), 1, 5000),
    #{py_logger := <<"app.db">>, py_function := <<"fail">>, line := 6, file := File,
      py_thread := <<"py-worker-", _/binary>>, py_caller := Me, pid := Me} = Meta,
    ?assert(is_list(File)),
    Text = text(E),
    ?assertNotEqual(nomatch, binary:match(Text, <<"Traceback (most recent call last)">>)),
    ?assertNotEqual(nomatch, binary:match(Text, <<"ZeroDivisionError: division by zero">>)),
    %% A record whose message cannot be formatted: Python's handleError
    %% reports it on stderr, the call goes on.
    {1, Err} = py_test_util:captured(fun() ->
                                py:eval(<<"__import__('logging').getLogger('bad').error('%d', 'x') or 1">>)
                        end),
    ?assertNotEqual(nomatch, binary:match(Err, <<"TypeError">>)),
    %% An event that beam._output would not make (a level logger does not
    %% have) is ignored, in the caller and in py_output.
    Bogus = <<"(__import__('beam').Atom('log'), __import__('beam').Atom('logging'), "
              "__import__('beam').Atom('bogus'), 'x', {})">>,
    ?assertEqual(5, py:eval(<<"__import__('_beam_native').notify(", Bogus/binary, ") and 5">>)),
    undefined = py:exec(<<"import threading, _beam_native\n"
                          "t = threading.Thread(target=lambda: _beam_native.notify(", Bogus/binary, "))\n"
                          "t.start(); t.join()">>),
    ?assertEqual(3, py:func(operator, add, [1, 2])),
    ?assert(is_process_alive(whereis(py_output))).

level_follows_logger(_Config) ->
    %% The primary level is looked at every second.
    ok = logger:update_primary_config(#{level => info}),
    ok = wait_python_level(20),
    ok = logger:update_primary_config(#{level => none}),
    ok = wait_python_level(150),
    ok = logger:update_primary_config(#{level => notice}),
    ok = wait_python_level(25).

warnings_once_per_location(_Config) ->
    Code = <<"import warnings\n"
             "def warn_twice():\n"
             "    for i in range(3):\n"
             "        warnings.warn('loop warning')\n"
             "    warnings.warn('loop warning')\n">>,
    undefined = py:exec(Code),
    undefined = py:func('__main__', warn_twice, []),
    undefined = py:func('__main__', warn_twice, []),
    Events = logged(kind(warnings, <<"loop warning">>), 2, 5000),
    timer:sleep(200),
    More = logged(kind(warnings, <<"loop warning">>), infinity, 0),
    %% Two locations, each once.
    ?assertEqual(2, length(Events ++ More)),
    [#{level := warning, meta := #{py_category := <<"UserWarning">>, line := 4}},
     #{meta := #{line := 5}}] = Events.

%%% Settings ------------------------------------------------------------

settings(_Config) ->
    try
        %% stdout to logger: a call's print is logged, with its caller.
        ok = restart_with([{stdout, logger}]),
        {undefined, Out} = py_test_util:captured(fun() -> exec("print('to the logger')\n"
                                                  "import sys\nsys.stderr.write('err stays\\n')") end),
        ?assertEqual(<<"err stays\n">>, Out),
        Me = self(),
        [#{level := notice, meta := #{py_caller := Me}}] =
            logged(kind(stdout, <<"to the logger">>), 1, 5000),
        %% inherit: Python's own streams, and Python's own logging and
        %% warnings.
        ok = restart_with([{stdout, inherit}, {stderr, inherit}, {logging, inherit}]),
        ?assert(py:eval(<<"__import__('sys').stdout is __import__('sys').__stdout__ and "
                          "__import__('sys').stderr is __import__('sys').__stderr__">>)),
        ?assertEqual([], py:eval(<<"[h for h in __import__('logging').getLogger().handlers "
                                   "if type(h).__module__ == 'beam._output']">>)),
        ?assertNot(py:eval(<<"__import__('warnings').showwarning.__module__ == 'beam._output'">>)),
        %% Back to the defaults: the bridge comes back.
        ok = unset([stdout, stderr, logging]),
        {_, <<"back\n">>} = py_test_util:captured(fun() -> exec("print('back')") end),
        ?assert(py:eval(<<"__import__('warnings').showwarning.__module__ == 'beam._output'">>)),
        ?assertEqual(1, length(py:eval(<<"[h for h in __import__('logging').getLogger().handlers "
                                         "if type(h).__module__ == 'beam._output']">>)))
    after
        unset([stdout, stderr, logging])
    end.

bad_settings(_Config) ->
    try
        {error, {bad_config, stdout, shell, _}} = restart_with([{stdout, shell}]),
        ok = application:unset_env(py, stdout),
        {error, {bad_config, stderr, "caller", _}} = restart_with([{stderr, "caller"}]),
        ok = application:unset_env(py, stderr),
        {error, {bad_config, logging, true, Why}} = restart_with([{logging, true}]),
        ?assertNotEqual(nomatch, string:find(Why, "inherit"))
    after
        unset([stdout, stderr, logging])
    end.
