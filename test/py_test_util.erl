%%% @doc Helpers shared by py's test suites: starting py with the test
%%% Python path (test/python, and the test virtualenv when there is one).
-module(py_test_util).

-export([start/0, stop/0, test_python_dir/0, venv_site_packages/0, wait_until/2, error_of/1,
         start_distribution/0, build_paths/0]).

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
