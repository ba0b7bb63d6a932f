%%% @doc Helpers shared by py's test suites: starting py with the test
%%% Python path (test/python, and the test virtualenv when there is one).
-module(py_test_util).

-export([start/0, stop/0, test_python_dir/0, venv_site_packages/0, wait_until/2, error_of/1]).

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
