%%% @private
%%% @doc Interpreter-wide set-up at each start of the application, after
%%% the interpreter is initialised and before the workers start: the
%%% environment variables of the `python_env' setting (through
%%% `os.environ': the BEAM's own environment is not touched from Erlang,
%%% and the NIF has no environment API), then the site-packages of the
%%% `venv' setting (with `site.addsitedir', so that `.pth' files work),
%%% placed after the `python_path' entries and before the system's; then
%%% where Python's output and logs go (see {@link py_output}).
%%%
%%% The set-up runs on a worker thread started for it and stopped after,
%%% as plain calls: it binds no name in `__main__', which all workers share.
%%% @end
-module(py_boot).

-export([run/3]).


%% @doc Applies `python_env' and the venv's site (from {@link py_venv}) to
%% the interpreter. `Front' is how many `sys.path' entries py put first.
-spec run(py_config:config(), none | py_venv:site(), non_neg_integer()) ->
          ok | {error, py_config:error()}.
run(Config, Site, Front) ->
    case py_nif:start_worker() of
        {ok, Worker} ->
            try
                setup(Worker, Config, Site, Front)
            after
                py_nif:stop_worker(Worker)
            end;
        {error, Why} ->
            {error, {python_init_failed, Why}}
    end.

setup(Worker, #{python_env := Env} = Config, Site, Front) ->
    case env(Worker, Env) of
        ok -> then(site(Worker, Config, Site, Front), fun() -> py_output:setup(Worker, Config) end);
        {error, Why} -> {error, {bad_config, python_env, Env, Why}}
    end.

env(_Worker, []) ->
    ok;
env(Worker, [{Name, false} | Rest]) ->
    then(call(Worker, <<"os.environ.pop">>, [bin(Name), undefined]),
         fun() -> env(Worker, Rest) end);
env(Worker, [{Name, Value} | Rest]) ->
    then(call(Worker, <<"os.environ.__setitem__">>, [bin(Name), bin(Value)]),
         fun() -> env(Worker, Rest) end).

site(_Worker, _Config, none, _Front) ->
    ok;
site(Worker, #{venv := Venv}, #{version := Version, dirs := Dirs}, Front) ->
    case sys_path_with(Worker, Version, Dirs, Front) of
        ok -> ok;
        {error, Why} -> {error, {bad_config, venv, Venv, Why}}
    end.

sys_path_with(Worker, Version, Dirs, Front) ->
    {ok, {Major, Minor, _}} = request(Worker, py_request:call(<<"platform.python_version_tuple">>, [], [])),
    Embedded = binary_to_list(<<Major/binary, ".", Minor/binary>>),
    case Embedded =:= Version of
        false ->
            {error, lists:flatten(io_lib:format("the virtualenv is for Python ~ts, "
                                                "py embeds Python ~ts", [Version, Embedded]))};
        true ->
            {ok, Before} = request(Worker, py_request:resolve(<<"sys.path">>)),
            New = [D || D <- Dirs, not lists:member(D, Before)],
            then(each(fun(D) -> call(Worker, <<"site.addsitedir">>, [D]) end, New),
                 fun() -> reorder(Worker, Before, Front) end)
    end.

%% addsitedir appends; the venv goes right after py's own entries.
reorder(Worker, Before, Front) ->
    {ok, After} = request(Worker, py_request:resolve(<<"sys.path">>)),
    Added = [P || P <- After, not lists:member(P, Before)],
    {Head, Tail} = lists:split(min(Front, length(Before)), Before),
    {ok, All} = request(Worker, kept(py_request:call(<<"builtins.slice">>, [undefined], []))),
    call(Worker, <<"sys.path.__setitem__">>, [All, Head ++ Added ++ Tail]).

call(Worker, Dotted, Args) ->
    case request(Worker, kept(py_request:call(Dotted, Args, []))) of
        {ok, _} -> ok;
        {error, Why} -> {error, py_errors:describe(Why)}
    end.

%% Results stay in Python (a handle) unless they are needed.
kept(Request) ->
    py_request:set_flags(Request, py_request:flags(binary, handle)).

request(Worker, Request) ->
    py_job:run(Worker, Request, infinity).

then(ok, Next) -> Next();
then({error, _} = Error, _Next) -> Error.

each(_Fun, []) -> ok;
each(Fun, [X | Rest]) -> then(Fun(X), fun() -> each(Fun, Rest) end).

bin(S) -> unicode:characters_to_binary(S).
