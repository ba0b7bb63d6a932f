%%% @doc Helpers shared by py's test suites: starting py with the test
%%% Python path (test/python, and the test virtualenv when there is one).
-module(py_test_util).

-export([start/0, stop/0, test_python_dir/0, venv_site_packages/0, wait_until/2, error_of/1,
         start_distribution/0, build_paths/0, captured/1, start_capture/0, captured_text/1]).

-spec start() -> ok.
start() ->
    Paths = [test_python_dir() | case venv_site_packages() of
                                     undefined -> [];
                                     Site -> [Site]
                                 end],
    %% Load first: loading the application would reset its environment.
    _ = application:load(py),
    ok = application:set_env(py, python_path, Paths),
    ok = py:start().

-spec stop() -> ok.
stop() ->
    _ = py:stop(),
    ok.

-spec test_python_dir() -> string().
test_python_dir() ->
    filename:join(filename:dirname(code:which(?MODULE)), "python").

%% @doc site-packages of the virtualenv `make test' creates (PY_TEST_VENV),
%% or `undefined' when the tests run without one.
-spec venv_site_packages() -> string() | undefined.
venv_site_packages() ->
    case os:getenv("PY_TEST_VENV") of
        false -> undefined;
        "" -> undefined;
        Venv ->
            case filelib:wildcard(filename:join([Venv, "lib", "python3*", "site-packages"])) of
                [Site | _] -> Site;
                [] -> undefined
            end
    end.

%% @doc Polls `Fun' until it returns true, at most `Tries' times 20 ms apart.
-spec wait_until(fun(() -> boolean()), pos_integer()) -> boolean().
wait_until(Fun, Tries) ->
    case Fun() of
        true -> true;
        false when Tries =< 1 -> false;
        false ->
            timer:sleep(20),
            wait_until(Fun, Tries - 1)
    end.

%% @doc The reason `Fun' raises an error with; fails the test when it
%% returns instead.
-spec error_of(fun(() -> term())) -> term().
error_of(Fun) ->
    try Fun() of
        Value -> erlang:error({expected_error, got, Value})
    catch
        error:Reason -> Reason
    end.

%% @doc Makes this node distributed (short names) unless it already is:
%% `{ok, true}' when it was started here (stop it with
%% `net_kernel:stop()'), `{ok, false}' when it already was. The name is
%% unique to this OS process, so test runs side by side do not collide.
-spec start_distribution() -> {ok, boolean()} | {error, term()}.
start_distribution() ->
    case is_alive() of
        true ->
            {ok, false};
        false ->
            %% net_kernel needs epmd; `erl -sname' would start it itself.
            _ = os:cmd("epmd -daemon"),
            case net_kernel:start([list_to_atom("py_ct_" ++ os:getpid()), shortnames]) of
                {ok, _} -> {ok, true};
                {error, Why} -> {error, Why}
            end
    end.

%% @doc The code paths of this project's _build (where rebar3 put py and
%% the compiled tests), for peer nodes.
-spec build_paths() -> [file:filename()].
build_paths() ->
    Ebin = filename:dirname(code:which(py)),
    [Build | _] = string:split(Ebin, "/_build/"),
    Prefix = Build ++ "/_build/",
    [P || P <- code:get_path(), lists:prefix(Prefix, P)].

%% @doc Runs `Fun' with a capturing group leader; returns its result and what
%% was written to the group leader by the time it returned.
-spec captured(fun(() -> R)) -> {R, binary()}.
captured(Fun) ->
    GL = start_capture(),
    Old = group_leader(),
    group_leader(GL, self()),
    try Fun() of
        Result ->
            group_leader(Old, self()),
            {Result, captured_text(GL)}
    catch Class:Reason:Stack ->
            group_leader(Old, self()),
            erlang:raise(Class, Reason, Stack)
    end.

%% @doc A group leader that keeps what is written to it.
-spec start_capture() -> pid().
start_capture() ->
    spawn(fun() -> capture_loop([]) end).

%% @doc What was written to `GL' (made by start_capture/0) so far.
-spec captured_text(pid()) -> binary().
captured_text(GL) ->
    GL ! {get, self()},
    receive {captured, GL, Text} -> Text after 5000 -> erlang:error(capture_lost) end.

capture_loop(Acc) ->
    receive
        {io_request, From, ReplyAs, Request} ->
            {Reply, Acc1} = io_request(Request, Acc),
            From ! {io_reply, ReplyAs, Reply},
            capture_loop(Acc1);
        {get, From} ->
            From ! {captured, self(), unicode:characters_to_binary(lists:reverse(Acc))},
            capture_loop(Acc);
        stop ->
            ok
    end.

io_request({put_chars, unicode, Chars}, Acc) ->
    {ok, [Chars | Acc]};
io_request({put_chars, latin1, Chars}, Acc) ->
    {ok, [unicode:characters_to_binary(Chars, latin1) | Acc]};
io_request({put_chars, Enc, M, F, A}, Acc) ->
    io_request({put_chars, Enc, apply(M, F, A)}, Acc);
io_request(_Other, Acc) ->
    {{error, enotsup}, Acc}.
