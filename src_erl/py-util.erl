%%% @doc Utilities named as in the original LFE py: `get-versions'.
%%% @end
-module('py-util').

-export(['get-versions'/0]).

%% @doc Versions of everything involved: Erlang/OTP, the emulator, the NIF
%% API, LFE (only when LFE is loaded), py, and Python's `sys.version' lines.
-spec 'get-versions'() -> [{atom(), string() | [string()]}].
'get-versions'() ->
    Version = py_engine:run(py_request:resolve(<<"sys.version">>), #{return => handle}),
    Python = py_engine:run(py_request:call({builtins, str}, [Version], []), #{strings => charlist}),
    [{erlang, erlang:system_info(otp_release)},
     {emulator, erlang:system_info(version)},
     {'driver-version', erlang:system_info(driver_version)}]
    ++ lfe_version()
    ++ [{py, app_version(py)},
        {python, string:split(Python, "\n", all)}].

%% LFE counts as loaded when any part of it runs here: the REPL loads
%% `lfe', scripts and `lfe -e' load the evaluator.
lfe_version() ->
    Loaded = lists:any(fun(M) -> code:is_loaded(M) =/= false end,
                       [lfe, lfe_eval, lfe_shell, lfe_comp])
        orelse lists:keymember(lfe, 1, application:loaded_applications()),
    case Loaded of
        true -> [{lfe, app_version(lfe)}];
        false -> []
    end.

app_version(App) ->
    _ = application:load(App),
    case application:get_key(App, vsn) of
        {ok, Vsn} -> Vsn;
        undefined -> "unknown"
    end.
