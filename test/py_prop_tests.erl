%%% @doc PropEr: every term of the round-tripping rows of the conversion
%%% table comes back from Python unchanged.
-module(py_prop_tests).

-include_lib("proper/include/proper.hrl").
-include_lib("eunit/include/eunit.hrl").

roundtrip_test_() ->
    {setup, fun py_test_util:start/0, fun(_) -> py_test_util:stop() end,
     {timeout, 600,
      [?_assert(proper:quickcheck(prop_roundtrip(), [{numtests, 500}, {to_file, user}])),
       ?_assert(proper:quickcheck(prop_roundtrip_charlists_stay_lists(),
                                  [{numtests, 200}, {to_file, user}]))]}}.

%% term -> Python -> term is the identity.
prop_roundtrip() ->
    ?FORALL(T, value(), py:func(py_test_helpers, identity, [T]) =:= T).

%% Charlists are lists of integers on the way in, and stay so.
prop_roundtrip_charlists_stay_lists() ->
    ?FORALL(S, list(range(0, 16#10FFFF)), py:value(S) =:= S).

value() ->
    ?SIZED(Size, value(Size)).

value(0) ->
    scalar();
value(Size) ->
    Smaller = value(Size div 4),
    frequency([{6, scalar()},
               {1, list(Smaller)},
               {1, ?LET(L, list(Smaller), list_to_tuple(L))},
               {1, ?LET(KVs, list({key(), Smaller}), maps:from_list(KVs))}]).

scalar() ->
    oneof([integer(),
           big_integer(),
           finite_float(),
           atom_value(),
           utf8_binary(),
           binary(),
           pid_or_ref()]).

big_integer() ->
    ?LET({Sign, N}, {oneof([1, -1]), integer(1, 300)}, Sign * (1 bsl N + N)).

finite_float() ->
    float().

%% Atoms, including true, false and undefined (they map to Python's True,
%% False and None and come back).
atom_value() ->
    oneof([true, false, undefined, ok, error, 'with space', 'Ünïcode',
           ?LET(S, non_empty(list(range($a, $z))), list_to_atom(S))]).

utf8_binary() ->
    ?LET(S, list(oneof([range($a, $z), range(16#e0, 16#ff), range(16#4e00, 16#4e40)])),
         unicode:characters_to_binary(S)).

pid_or_ref() ->
    oneof([self(), make_ref()]).

%% Map keys that stay distinct in Python: integers and binaries (an atom
%% and a binary of the same text are equal Python strings, and 1 == True).
key() ->
    oneof([integer(), utf8_binary(), binary()]).
