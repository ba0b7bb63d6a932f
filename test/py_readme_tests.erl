%%% @doc Runs every example of README.md: each erlang code block's
%%% `N> Expr.' lines are evaluated in order, in one set of bindings (like
%%% one shell session), and the lines after them are matched against the
%%% result. In the expected text `#Ref<...>', `#Fun<...>' and pids match
%%% anything, and an expected text containing `(varies)' is not compared.
%%% A block that is a module (it starts with `-module(') is compiled and
%%% loaded, for the examples after it to use.
-module(py_readme_tests).

-include_lib("eunit/include/eunit.hrl").

-export([examples/1]).

readme_test_() ->
    {setup, fun py_test_util:start/0, fun(_) -> py_test_util:stop() end,
     {timeout, 300, fun run_all/0}}.

run_all() ->
    Examples = examples(readme_path()),
    ?assert(length(Examples) > 10),
    lists:foldl(fun run/2, erl_eval:new_bindings(), Examples),
    ok.

readme_path() ->
    %% The tests run from _build; the README is at the project root.
    Candidates = [filename:join(D, "README.md")
                  || D <- [".", "..", "../..", "../../..", "../../../..", "../../../../.."]],
    Here = filename:dirname(code:which(?MODULE)),
    Found = [P || P <- Candidates ++ [filename:join([Here | lists:duplicate(N, "..")] ++ ["README.md"])
                                       || N <- lists:seq(1, 6)],
                  filelib:is_regular(P),
                  filelib:is_regular(filename:join(filename:dirname(P), "rebar.config"))],
    case Found of
        [P | _] -> P;
        [] -> erlang:error(readme_not_found)
    end.

%% @doc The examples of a README: `{Line, ExprText, ExpectedText}'.
-spec examples(file:filename()) -> [{pos_integer(), string(), string()}].
examples(Path) ->
    {ok, Bin} = file:read_file(Path),
    Lines = string:split(unicode:characters_to_list(Bin), "\n", all),
    blocks(lists:zip(lists:seq(1, length(Lines)), Lines), outside, []).

blocks([], _, Acc) ->
    lists:reverse(Acc);
blocks([{N, "```erlang" ++ _} | Rest], outside, Acc) ->
    {Block, After} = lists:splitwith(fun({_, L}) -> not lists:prefix("```", L) end, Rest),
    Entries = case [L || {_, L} <- Block, string:trim(L) =/= ""] of
                  ["-module(" ++ _ | _] -> [{N, {module, string:join([L || {_, L} <- Block], "\n")}, ""}];
                  _ -> entries(Block)
              end,
    blocks(tl_or_empty(After), outside, lists:reverse(Entries) ++ Acc);
blocks([{_, "```" ++ _} | Rest], outside, Acc) ->
    {_, After} = lists:splitwith(fun({_, L}) -> not lists:prefix("```", L) end, Rest),
    blocks(tl_or_empty(After), outside, Acc);
blocks([_ | Rest], State, Acc) ->
    blocks(Rest, State, Acc).

tl_or_empty([]) -> [];
tl_or_empty([_ | T]) -> T.

%% Splits a block into prompts, each with the expression (possibly over
%% several lines, up to the line that ends it) and the expected output.
entries([]) ->
    [];
entries([{N, Line} | Rest]) ->
    case prompt(Line) of
        {ok, First} ->
            {ExprLines, Rest1} = expression([First], Rest),
            {Expected, Rest2} = lists:splitwith(fun({_, L}) -> prompt(L) =:= nomatch end, Rest1),
            [{N, ExprLines, string:join([L || {_, L} <- Expected], "\n")} | entries(Rest2)];
        nomatch ->
            entries(Rest)
    end.

prompt(Line) ->
    case re:run(Line, "^[0-9]+> (.*)$", [{capture, all_but_first, list}, unicode]) of
        {match, [Expr]} -> {ok, Expr};
        nomatch -> nomatch
    end.

expression(Acc, Rest) ->
    Text = string:join(lists:reverse(Acc), "\n"),
    case complete(Text) orelse Rest =:= [] of
        true -> {Text, Rest};
        false -> expression([element(2, hd(Rest)) | Acc], tl(Rest))
    end.

complete(Text) ->
    case erl_scan:tokens([], Text ++ "\n", 1) of
        {done, {ok, _, _}, _} -> true;
        _ -> false
    end.

run({Line, {module, Source}, _}, Bindings) ->
    %% Through a file, so that the preprocessor runs (?MODULE...).
    Dir = filename:join(["/tmp", "py_readme_" ++ os:getpid()]),
    ok = filelib:ensure_dir(filename:join(Dir, "x")),
    {match, [Name]} = re:run(Source, "-module\\(([a-z_0-9]+)\\)", [{capture, all_but_first, list}]),
    File = filename:join(Dir, Name ++ ".erl"),
    ok = file:write_file(File, Source),
    case compile:file(File, [binary, return_errors]) of
        {ok, Module, Beam} ->
            {module, Module} = code:load_binary(Module, File, Beam),
            Bindings;
        {error, Errors, _} ->
            erlang:error({readme_module_does_not_compile, Line, Errors})
    end;
run({Line, ExprText, Expected}, Bindings) ->
    Exprs = case erl_scan:string(ExprText) of
                {ok, Tokens, _} ->
                    case erl_parse:parse_exprs(Tokens) of
                        {ok, Parsed} -> Parsed;
                        {error, E} -> erlang:error({readme_example_unparsable, Line, ExprText, E})
                    end;
                {error, E, _} ->
                    erlang:error({readme_example_unparsable, Line, ExprText, E})
            end,
    {value, Value, Bindings1} =
        try erl_eval:exprs(Exprs, Bindings)
        catch Class:Reason:Stack ->
                erlang:error({readme_example_failed, Line, ExprText, {Class, Reason, Stack}})
        end,
    check(Line, ExprText, Expected, Value),
    Bindings1.

check(Line, ExprText, Expected, Value) ->
    Trimmed = string:trim(Expected),
    case Trimmed =:= "" orelse string:find(Trimmed, "(varies)") =/= nomatch of
        true ->
            ok;
        false ->
            Pattern = pattern_text(Trimmed),
            {ok, Tokens, _} = erl_scan:string(Pattern ++ " = ReadmeValue__."),
            {ok, Exprs} = erl_parse:parse_exprs(Tokens),
            try erl_eval:exprs(Exprs, erl_eval:add_binding('ReadmeValue__', Value, erl_eval:new_bindings())) of
                _ -> ok
            catch error:{badmatch, _} ->
                    erlang:error({readme_example_mismatch, Line, ExprText,
                                  {expected, Trimmed}, {got, Value}})
            end
    end.

%% Printed terms as a pattern: opaque parts become `_', map associations
%% become `:='.
pattern_text(Text) ->
    Subs = [{"#Ref<[^>]*>", "_"}, {"#Fun<[^>]*>", "_"}, {"#Port<[^>]*>", "_"},
            {"<[0-9]+\\.[0-9]+\\.[0-9]+>", "_"}, {" => ", " := "}],
    lists:foldl(fun({RE, Rep}, T) -> re:replace(T, RE, Rep, [global, {return, list}, unicode]) end,
                Text, Subs).
