%%% @doc A NIF library that cannot be loaded: py's start says why (the
%%% dynamic linker's message, naming the file it could not load), and
%%% nothing crashes. Each case runs a VM of its own, as an OS process, on a
%%% copy of py's code whose priv/ holds a broken NIF, or none.
-module(py_nif_load_SUITE).

-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").

-export([all/0, broken_nif/1, missing_nif/1]).

all() -> [broken_nif, missing_nif].

broken_nif(Config) ->
    check(Config, fun(So) -> ok = file:write_file(So, <<"not an ELF file">>) end,
          "file too short").

missing_nif(Config) ->
    check(Config, fun(_So) -> ok end, "No such file").

check(Config, MakeNif, Expected) ->
    Dir = filename:join(?config(priv_dir, Config), "vm_" ++ integer_to_list(erlang:unique_integer([positive]))),
    Ebin = filename:join([Dir, "py", "ebin"]),
    Priv = filename:join([Dir, "py", "priv"]),
    ok = filelib:ensure_dir(filename:join(Ebin, "x")),
    ok = filelib:ensure_dir(filename:join(Priv, "x")),
    Own = filename:dirname(code:which(py_nif)),
    [{ok, _} = file:copy(F, filename:join(Ebin, filename:basename(F)))
     || F <- filelib:wildcard(filename:join(Own, "*"))],
    So = filename:join(Priv, "py_nif.so"),
    MakeNif(So),
    Eval = "io:format(\"~0p~n\", [py:start()]), halt().",
    Out = run(os:find_executable("erl"), ["-noshell", "-pa", Ebin, "-eval", Eval], Dir),
    ct:log("~ts", [Out]),
    %% The reason, with the file that could not be loaded and why.
    ?assertMatch({match, _}, re:run(Out, "\\{error,\\{py_nif_not_loaded,\\{load_failed,")),
    ?assertNotEqual(nomatch, string:find(Out, So)),
    ?assertNotEqual(nomatch, string:find(Out, Expected)),
    ?assertNot(filelib:is_regular(filename:join(Dir, "erl_crash.dump"))).

%% Runs Prog with Args in Dir; returns its output (stdout and stderr).
run(Prog, Args, Dir) ->
    Port = open_port({spawn_executable, Prog},
                     [{args, Args}, {cd, Dir}, exit_status, stderr_to_stdout, binary]),
    collect(Port, <<>>).

collect(Port, Acc) ->
    receive
        {Port, {data, Data}} -> collect(Port, <<Acc/binary, Data/binary>>);
        {Port, {exit_status, _}} -> binary_to_list(Acc)
    after 60000 ->
            error({timeout, Acc})
    end.
