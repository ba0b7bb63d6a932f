%%% @doc One owner for each concept (issue 12): the options (every API
%%% takes exactly its options; anything else is `{py_badarg, bad_option,
%%% Opt}' naming it), the error reasons (every reason the Erlang and Rust
%%% sources raise is in `py_errors:error_reason()'), the request (one fold
%%% over its handles), the wrapper table (its code and its documentation),
%%% and the module graph (no internal module calls the facade).
-module(py_owners_tests).

-include_lib("eunit/include/eunit.hrl").

owners_test_() ->
    {setup, fun start/0, fun stop/1,
     [{"bad options", fun bad_options/0},
      {"each API its options", fun api_options/0},
      {"first option wins", fun first_wins/0},
      {"worker ids in errors", {timeout, 60, fun worker_down_id/0}}]}.

start() ->
    WasRunning = lists:keymember(py, 1, application:which_applications()),
    ok = py:start(),
    WasRunning.

stop(true) -> ok;
stop(false) -> ok = py:stop().

bad(Opt, Fun) ->
    ?assertError({py_badarg, bad_option, Opt}, Fun()).

bad_options() ->
    Add = fun(Opts) -> fun() -> py:func(operator, add, [1, 2], [], Opts) end end,
    [bad(Opt, Add([Opt])) || Opt <- [{timout, 100}, {strings, foo}, {return, foo}, foo,
                                     {timeout, -1}, {timeout, 1.5}, {worker, 0},
                                     {scheduler, fastest}, {context, nope}, {node, "n"},
                                     {window, 10}, {nodes, all}, {max_in_flight, 2},
                                     {kwargs, []}, {'$py_owner', self()}, {owner, self()}]],
    %% Not a list, an improper list: the term itself.
    bad(foo, Add(foo)),
    bad(#{timeout => 1}, Add(#{timeout => 1})),
    bad(tail, Add([{timeout, 100} | tail])),
    %% After good ones too, and whatever takes options.
    bad({timout, 1}, Add([{strings, charlist}, {timout, 1}])),
    bad({timout, 1}, fun() -> py:method(<<"a">>, upper, [], [], [{timout, 1}]) end),
    bad({timout, 1}, fun() -> py:eval(<<"1">>, #{}, [{timout, 1}]) end),
    bad({timout, 1}, fun() -> py:exec(<<"1">>, #{}, [{timout, 1}]) end),
    bad({timout, 1}, fun() -> py:value(1, [{timout, 1}]) end),
    %% Refused before submission: no reply comes later.
    receive Stale -> erlang:error({stale_message, Stale}) after 100 -> ok end.

api_options() ->
    %% stream: window and kwargs on top of the call options.
    S = py:stream(builtins, range, [3], [{window, 2}, {timeout, 5000}, {kwargs, []}]),
    ?assertEqual([{ok, 0}, {ok, 1}, {ok, 2}, done],
                 [py:stream_next(S, 5000) || _ <- [1, 2, 3, 4]]),
    bad({window, 0}, fun() -> py:stream(builtins, range, [3], [{window, 0}]) end),
    bad({max_in_flight, 1}, fun() -> py:stream(builtins, range, [3], [{max_in_flight, 1}]) end),
    %% scatter: max_in_flight, nodes, kwargs and the call options.
    ?assertEqual([{ok, 255}, {ok, 15}],
                 py:scatter(builtins, int, [[<<"ff">>], [<<"f">>]],
                            [{max_in_flight, 1}, {kwargs, [{base, 16}]}, {timeout, 5000},
                             {nodes, [node()]}])),
    bad({max_in_flight, 0}, fun() -> py:scatter(operator, add, [[1, 2]], [{max_in_flight, 0}]) end),
    bad({window, 1}, fun() -> py:scatter(operator, add, [[1, 2]], [{window, 1}]) end),
    bad({nodes, [1]}, fun() -> py:scatter(operator, add, [[1, 2]], [{nodes, [1]}]) end),
    %% on_all_workers: timeout, strings, return and nodes.
    [{_, {ok, <<"x">>}} | _] = py:on_all_workers(builtins, str, [x], [],
                                                 [{timeout, 5000}, {strings, binary},
                                                  {return, value}, {nodes, [node()]}]),
    bad({worker, 1}, fun() -> py:on_all_workers(operator, add, [1, 2], [], [{worker, 1}]) end),
    bad({kwargs, []}, fun() -> py:on_all_workers(operator, add, [1, 2], [], [{kwargs, []}]) end),
    bad(foo, fun() -> py:on_all_workers(operator, add, [1, 2], [], foo) end).

first_wins() ->
    ?assertEqual("ab", py:func(builtins, str, [<<"ab">>], [],
                               [{strings, charlist}, {strings, binary}])).

%% A worker killed under a call: the error names it by the id py:workers()
%% lists, through the shared queue as through a pinned call.
worker_down_id() ->
    [{Id, _} | _] = [{I, P} || #{id := I, pid := P} <- py:workers()],
    [check_down(Opts, Id) || Opts <- [[{worker, Id}], []]].

check_down(Opts, Id) ->
    Self = self(),
    Caller = spawn(fun() ->
                           %% Pure Python: the dying worker's interrupt stops it.
                           R = try py:exec(<<"while True: pass">>, #{}, Opts)
                               catch error:E -> {error, E}
                               end,
                           Self ! {self(), R}
                   end),
    Busy = wait_busy(200),
    #{id := BusyId, pid := Pid} = Busy,
    Opts =/= [] andalso ?assertEqual(Id, BusyId),
    exit(Pid, kill),
    receive
        {Caller, Result} -> ?assertEqual({error, {py_worker_down, BusyId}}, Result)
    after 10000 -> erlang:error(caller_hangs)
    end,
    py_test_util:wait_until(fun() -> length(py:workers()) >= 2 andalso
                                         lists:all(fun(#{state := S}) -> S =/= busy end,
                                                   py:workers()) end, 10000).

wait_busy(0) -> erlang:error(no_busy_worker);
wait_busy(N) ->
    case [W || W = #{state := busy} <- py:workers()] of
        [W] -> W;
        _ -> timer:sleep(10), wait_busy(N - 1)
    end.

%%% Errors ------------------------------------------------------------------

%% Every reason the sources raise or return is an atom of error_reason()
%% (its definition, read from py_errors' abstract code). Reasons are
%% found by their shapes: `erlang:error(Reason)', `{py_badarg, Why, _}',
%% `-> {error, Reason}' in Erlang; the atoms on the lines that build an
%% error (`badarg(atoms::X', `why: atoms::X', `(atoms::error(), ...'),
%% and every atom named like a reason (py_*, bad_*, unsupported_*) in
%% `atoms!', in Rust.
error_reasons_test() ->
    Listed = type_atoms(error_reason),
    Root = filename:dirname(filename:dirname(code:which(py))),
    Src = source_dir(Root),
    Erlang = lists:usort(lists:append([erlang_reasons(F)
                                       || F <- filelib:wildcard(filename:join([Src, "src_erl", "*.erl"]))])),
    Rust = lists:usort(lists:append([rust_reasons(F)
                                     || F <- filelib:wildcard(filename:join([Src, "native", "src", "*.rs"]))])),
    ?assert(length(Erlang) > 20),
    ?assert(length(Rust) > 10),
    ?assertEqual([], [A || A <- lists:usort(Erlang ++ Rust), not lists:member(A, Listed)]).

source_dir(_Root) ->
    %% The tests run from the project root (rebar3), or from _build.
    {ok, Cwd} = file:get_cwd(),
    case filelib:is_dir(filename:join(Cwd, "src_erl")) of
        true -> Cwd;
        false -> filename:dirname(filename:dirname(filename:dirname(filename:dirname(code:which(py)))))
    end.

%% Atoms that appear in such places but are not reasons.
not_reasons() ->
    [ok, error, true, false, undefined, py_callback, py_call, py_cancel_call, py_handle, py_value, py_bytes,
     py_buffer, py_maps, py_output,
     python_init_failed_, unknown_call].

erlang_reasons(File) ->
    {ok, Bin} = file:read_file(File),
    Text = binary_to_list(Bin),
    Patterns = ["erlang:error\\(\\{?([a-z][a-z_]*)[,})]",
                "\\{py_badarg, ([a-z][a-z_]*),",
                "->\\s*\\{error, \\{?([a-z][a-z_]*)[,}]"],
    atoms_of(Text, Patterns).

rust_reasons(File) ->
    {ok, Bin} = file:read_file(File),
    Lines = string:split(binary_to_list(Bin), "\n", all),
    Building = [L || L <- Lines,
                     string:find(L, "badarg(atoms::") =/= nomatch
                         orelse string:find(L, "why: atoms::") =/= nomatch
                         orelse string:find(L, "(atoms::error(), (atoms::") =/= nomatch
                         orelse string:find(L, "(atoms::error(), atoms::") =/= nomatch],
    Used = atoms_of(lists:join("\n", Building), ["atoms::([a-z][a-z_]*)\\(\\)"]),
    Declared = case filename:basename(File) of
                   "atoms.rs" ->
                       atoms_of(Bin, ["(?m)^\\s*((?:py|bad|unsupported)_[a-z_]*)\\s*[,=]"]);
                   _ -> []
               end,
    [A || A <- Used ++ Declared, not lists:member(A, not_reasons())].

atoms_of(Text, Patterns) ->
    Found = [case re:run(Text, P, [global, {capture, all_but_first, list}]) of
                 {match, Ms} -> [list_to_atom(M) || [M] <- Ms];
                 nomatch -> []
             end || P <- Patterns],
    [A || A <- lists:append(Found), not lists:member(A, not_reasons())].

%% The atoms in a type of py_errors, following its local types.
type_atoms(Name) ->
    {ok, {py_errors, [{abstract_code, {raw_abstract_v1, Forms}}]}} =
        beam_lib:chunks(code:which(py_errors), [abstract_code]),
    Types = maps:from_list([{N, T} || {attribute, _, type, {N, T, _}} <- Forms]),
    lists:usort(collect(maps:get(Name, Types), Types, [Name])).

collect({atom, _, A}, _Types, _Seen) -> [A];
collect({user_type, _, N, []}, Types, Seen) ->
    case lists:member(N, Seen) of
        true -> [];
        false -> collect(maps:get(N, Types), Types, [N | Seen])
    end;
collect(T, Types, Seen) when is_tuple(T) -> collect(tuple_to_list(T), Types, Seen);
collect(L, Types, Seen) when is_list(L) -> lists:append([collect(X, Types, Seen) || X <- L]);
collect(_, _, _) -> [].

%% The test itself fails when a reason is missing: a made-up one is found
%% by the same scan and is not listed.
error_scan_catches_new_reasons_test() ->
    Listed = type_atoms(error_reason),
    Found = atoms_of("    erlang:error({py_made_up, X}),\n    -> {error, {py_other, 1}};\n"
                     "erlang:error({py_badarg, bad_thing, T})",
                     ["erlang:error\\(\\{?([a-z][a-z_]*)[,})]",
                      "\\{py_badarg, ([a-z][a-z_]*),",
                      "->\\s*\\{error, \\{?([a-z][a-z_]*)[,}]"]),
    ?assertEqual([bad_thing, py_made_up, py_other],
                 lists:sort([A || A <- Found, not lists:member(A, Listed)])).

%%% The request -------------------------------------------------------------

fold_handles_test() ->
    Local = {'$py', <<"int">>, make_ref()},
    Remote = {'$py', <<"int">>, {'$py_remote', n@h, make_ref()}},
    Collect = fun(H, Acc) -> [H | Acc] end,
    Req = py_request:call(py_request:method(Local, m), [1, Remote | improper], #{k => Remote}),
    ?assertEqual([Remote, Remote, Local], py_request:fold_handles(Collect, [], Req)),
    ?assertEqual([Remote], py_request:fold_handles(Collect, [], py_request:eval(<<"x">>, #{x => Remote}))),
    ?assertEqual([], py_request:fold_handles(Collect, [], py_request:resolve(<<"a.b">>))),
    ?assertEqual({remote, n@h, element(3, element(3, Remote))}, py_request:handle_kind(Remote)),
    ?assertEqual(local, py_request:handle_kind(Local)),
    ?assertEqual(forged, py_request:handle_kind({'$py', x, y})),
    ?assertEqual({call, 3, a, [], []},
                 py_request:set_flags(py_request:call(a, [], []), py_request:flags(charlist, handle))).

%%% The wrappers ------------------------------------------------------------

wrappers_test() ->
    Table = py_wrappers:table(),
    Exports = py:module_info(exports),
    %% Every row is a function of py, each name/arity once.
    Keys = [{N, length(A)} || {N, _, _, _, A, _, _} <- Table],
    ?assertEqual(length(Keys), length(lists:usort(Keys))),
    ?assertEqual([], Keys -- Exports),
    ?assert(length(Keys) >= 132),
    [?assert(lists:member(K, Exports)) || K <- [{abs, 1}, {'and-', 2}, {pylist, 1}, {'xor', 2},
                                                  {methodcaller, 3}, {dict, 2}, {int, 2}]].

overview_matches_table_test() ->
    {ok, Bin} = file:read_file(filename:join(source_dir(x), "doc/overview.edoc")),
    ?assertNotEqual(nomatch, string:find(unicode:characters_to_list(Bin), py_wrappers:doc())).

%%% The module graph ----------------------------------------------------------

%% No module of py but the facade's own users calls py: internal modules
%% call the engine.
no_calls_into_facade_test() ->
    {ok, Modules} = application:get_key(py, modules),
    Calling = [M || M <- Modules, M =/= py, calls_py(M)],
    ?assertEqual([], Calling).

calls_py(Module) ->
    {ok, {Module, [{abstract_code, {raw_abstract_v1, Forms}}]}} =
        beam_lib:chunks(code:which(Module), [abstract_code]),
    has_py_call(Forms).

has_py_call({call, _, {remote, _, {atom, _, py}, _}, _}) -> true;
has_py_call({'fun', _, {function, {atom, _, py}, _, _}}) -> true;
has_py_call(T) when is_tuple(T) -> has_py_call(tuple_to_list(T));
has_py_call(L) when is_list(L) -> lists:any(fun has_py_call/1, L);
has_py_call(_) -> false.
