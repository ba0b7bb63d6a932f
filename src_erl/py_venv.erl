%%% @private
%%% @doc The virtualenv of the `venv' setting: created when missing, with
%%% the `requirements' installed into it by its own pip, one `pip install'
%%% (and one log line) per requirement that is not yet satisfied.
%%%
%%% This runs before the interpreter is used, in OS processes of the venv's
%%% Python: pip must never run inside the embedded interpreter (it is not
%%% made for that, and a failed install would leave it half-changed).
%%% @end
-module(py_venv).

-include_lib("kernel/include/logger.hrl").

-export([prepare/2]).

-export_type([site/0]).

-type site() :: #{version := string(), dirs := [binary()]}.
%% The venv's Python version ("3.11") and its site-packages directories.

%% Prints the venv's version and site-packages, then the index of every
%% requirement (given as arguments) that is not satisfied. pip's vendored
%% `packaging' parses requirements as pip does; a requirement it cannot
%% parse is reported missing so that pip itself explains the problem.
-define(CHECK,
"import sys, sysconfig\n"
"from importlib import metadata\n"
"print('version %d.%d' % sys.version_info[:2])\n"
"for key in ('purelib', 'platlib'):\n"
"    print('site ' + sysconfig.get_path(key))\n"
"try:\n"
"    from pip._vendor.packaging.requirements import Requirement\n"
"except Exception:\n"
"    Requirement = None\n"
"def satisfied(text):\n"
"    if Requirement is None:\n"
"        import re\n"
"        metadata.version(re.split(r'[\\s<>=!~;\\[@]', text.strip(), 1)[0])\n"
"        return True\n"
"    req = Requirement(text)\n"
"    if req.marker is not None and not req.marker.evaluate():\n"
"        return True\n"
"    return req.specifier.contains(metadata.version(req.name), prereleases=True)\n"
"for i, text in enumerate(sys.argv[1:]):\n"
"    try:\n"
"        ok = satisfied(text)\n"
"    except Exception:\n"
"        ok = False\n"
"    if not ok:\n"
"        print('missing %d' % i)\n").

%% @doc Makes sure the venv of `Config' exists and satisfies its
%% requirements. `Python' is the interpreter py embeds (used to create the
%% venv, so that both are the same version).
-spec prepare(py_config:config(), file:filename_all()) ->
          {ok, none | site()} | {error, py_config:error()}.
prepare(#{venv := undefined}, _Python) ->
    {ok, none};
prepare(#{venv := Venv0, requirements := Reqs}, Python) ->
    Venv = filename:absname(unicode:characters_to_list(Venv0)),
    VenvPython = filename:join([Venv, "bin", "python"]),
    case ensure_created(Venv, VenvPython, Python) of
        ok -> ensure_requirements(Venv, VenvPython, Reqs);
        {error, Why} -> {error, {bad_config, venv, Venv0, Why}}
    end.

ensure_created(Venv, VenvPython, Python) ->
    case {filelib:is_file(VenvPython), filelib:is_dir(Venv)} of
        {true, _} ->
            ok;
        {false, true} ->
            case file:list_dir(Venv) of
                {ok, []} -> create(Venv, Python);
                _ -> {error, "the directory exists and is not a virtualenv (no bin/python)"}
            end;
        {false, false} ->
            create(Venv, Python)
    end.

create(Venv, Python) ->
    ?LOG_NOTICE("py: creating virtualenv ~ts", [Venv], #{py => venv_created}),
    case run(Python, ["-m", "venv", Venv]) of
        {0, _} -> ok;
        {Status, Out} -> {error, failure("python -m venv", Status, Out)}
    end.

ensure_requirements(Venv, VenvPython, Reqs) ->
    Texts = [unicode:characters_to_list(R) || R <- Reqs],
    case inspect(VenvPython, Texts) of
        {ok, Site, Missing} ->
            case install(Venv, VenvPython, Missing) of
                ok -> {ok, Site};
                {error, _} = Error -> Error
            end;
        {error, Why} ->
            {error, {bad_config, venv, Venv, Why}}
    end.

inspect(VenvPython, Texts) ->
    case run(VenvPython, ["-c", ?CHECK | Texts]) of
        {0, Out} ->
            Lines = string:lexemes(text(Out), "\n"),
            Version = [V || "version " ++ V <- Lines],
            Dirs = lists:usort([unicode:characters_to_binary(D) || "site " ++ D <- Lines]),
            Missing = [lists:nth(list_to_integer(I) + 1, Texts) || "missing " ++ I <- Lines],
            case Version of
                [V] -> {ok, #{version => V, dirs => Dirs}, Missing};
                _ -> {error, "cannot read the virtualenv's Python version: " ++ text(Out)}
            end;
        {Status, Out} ->
            {error, failure("the virtualenv's python", Status, Out)}
    end.

install(_Venv, _VenvPython, []) ->
    ok;
install(Venv, VenvPython, [Req | Rest]) ->
    ?LOG_NOTICE("py: installing ~ts into virtualenv ~ts", [Req, Venv], #{py => requirement_install}),
    case run(VenvPython, ["-m", "pip", "install", "--disable-pip-version-check",
                          "--no-input", Req]) of
        {0, _} ->
            install(Venv, VenvPython, Rest);
        {Status, Out} ->
            Why = failure("pip install " ++ Req, Status, Out),
            ?LOG_ERROR("py: ~ts", [Why], #{py => requirement_failed}),
            {error, {bad_config, requirements, Req, Why}}
    end.

%% The end of the output says what went wrong; the beginning is progress.
failure(What, Status, Out) ->
    Lines = string:lexemes(text(Out), "\n"),
    Tail = lists:nthtail(max(0, length(Lines) - 8), Lines),
    lists:flatten(io_lib:format("~ts failed (exit status ~b): ~ts",
                                [What, Status, lists:join("\n", Tail)])).

%% Runs an executable to completion; returns its exit status and output
%% (stdout and stderr together).
run(Exe, Args) ->
    try open_port({spawn_executable, Exe},
                  [{args, Args}, exit_status, stderr_to_stdout, binary, hide, in]) of
        Port -> collect(Port, [])
    catch
        error:Why -> {-1, iolist_to_binary(io_lib:format("cannot run ~ts: ~p", [Exe, Why]))}
    end.

collect(Port, Acc) ->
    receive
        {Port, {data, Data}} -> collect(Port, [Data | Acc]);
        {Port, {exit_status, Status}} -> {Status, iolist_to_binary(lists:reverse(Acc))}
    end.

%% Tools print UTF-8; anything else is shown byte by byte rather than lost.
text(Bin) ->
    case unicode:characters_to_list(Bin) of
        L when is_list(L) -> L;
        _ -> binary_to_list(Bin)
    end.
