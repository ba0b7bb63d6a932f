%%% @doc Bulk data: large maps (built by the receiving process), byte data
%%% shared without a copy in both directions, numpy scalars and arrays.
%%% Behaviour only; speed is in `make bench'.
-module(py_data_tests).

-include_lib("proper/include/proper.hrl").
-include_lib("eunit/include/eunit.hrl").

data_test_() ->
    {setup, fun py_test_util:start/0, fun(_) -> py_test_util:stop() end,
     {timeout, 300,
      [{"large maps equal maps:from_list of their pairs", fun large_maps/0},
       {"large maps nested in lists, tuples and maps", fun nested_large_maps/0},
       {"duplicate keys in large maps are refused", fun duplicate_keys/0},
       {"large maps as keys (through an encoder)", fun large_map_keys/0},
       {"large maps into Python", fun large_maps_in/0},
       {"maps of every size round-trip", fun() ->
            ?assert(proper:quickcheck(prop_map_roundtrip(), [{numtests, 200}, {to_file, user}]))
        end},
       {"bytes results share Python's memory", fun bytes_shared/0},
       {"the memory of a shared result outlives the Python name", fun bytes_outlive_python/0},
       {"a shared result releases the Python object when Erlang drops it", fun bytes_released/0},
       {"mutable buffers are copied", fun mutable_copied/0},
       {"an Erlang binary as a read-only memoryview", fun buffer_in/0},
       {"the binary outlives its Erlang owner while Python holds a view", fun buffer_outlives_erlang/0},
       {"the binary is let go when Python drops the last view", fun buffer_released/0},
       {"bad buffer markers", fun bad_buffers/0},
       %% The first numpy import can take more than eunit's 5 s per test
       %% on a loaded machine (seen once).
       {"numpy scalars come back as numbers", {timeout, 120, fun numpy_scalars/0}},
       {"numpy arrays over binaries and back", {timeout, 120, fun numpy_arrays/0}}]}}.

pairs(N) ->
    [{integer_to_binary(I), I} || I <- lists:seq(1, N)].

large_maps() ->
    py:exec(<<"import beam">>),
    py:exec(<<"def d(n): return {str(i): i for i in range(1, n + 1)}">>),
    [?assertEqual(maps:from_list(pairs(N)), py:eval(<<"d(n)">>, #{n => N}))
     || N <- [0, 1, 32, 33, 34, 100, 1000, 100000]],
    %% Through a handle and py:value/1, and with other key types.
    H = py:eval(<<"d(5000)">>, #{}, [{return, handle}]),
    ?assertEqual(maps:from_list(pairs(5000)), py:value(H)),
    ?assertEqual(maps:from_list([{I, {I}} || I <- lists:seq(1, 50)] ++ [{a, 1}, {1.5, b}]),
                 py:eval(<<"dict({i: (i,) for i in range(1, 51)}, **{}) | {beam.Atom('a'): 1, 1.5: beam.Atom('b')}">>,
                         #{}, [])).

nested_large_maps() ->
    M = maps:from_list(pairs(40)),
    py:exec(<<"big = {str(i): i for i in range(1, 41)}">>),
    ?assertEqual([1, M, {M, [M]}, #{<<"k">> => M}, <<"after">>],
                 py:eval(<<"[1, big, (big, [big]), {'k': big}, 'after']">>)),
    %% A small map whose value is large, a large map of large maps.
    Outer = maps:from_list([{integer_to_binary(I), M} || I <- lists:seq(1, 40)]),
    ?assertEqual(Outer, py:eval(<<"{str(i): big for i in range(1, 41)}">>)),
    %% Deep: the path to the large map is deferred, nothing else.
    ?assertEqual([[[[M]]]], py:eval(<<"[[[[big]]]]">>)),
    ?assertEqual({ok, M}, py:eval(<<"(beam.Atom('ok'), big)">>)).

duplicate_keys() ->
    %% 'a' and b'a' are distinct in Python and both <<"a">> in Erlang.
    Dup = <<"{str(i): i for i in range(n)} | {b'1': 'bytes'}">>,
    [?assertMatch({py_badresult, duplicate_key, {'$py', <<"dict">>, _}},
                  py_test_util:error_of(fun() -> py:eval(Dup, #{n => N}) end))
     || N <- [5, 40, 5000]],
    %% Nested in a deferred container, and beside a large map.
    ?assertMatch({py_badresult, duplicate_key, {'$py', <<"dict">>, _}},
                 py_test_util:error_of(fun() ->
                     py:eval(<<"[{str(i): i for i in range(40)}, {'a': 1, b'a': 2}]">>) end)),
    ?assertMatch({py_badresult, duplicate_key, {'$py', <<"dict">>, _}},
                 py_test_util:error_of(fun() ->
                     py:eval(<<"[{str(i): i for i in range(40)}, {str(i): i for i in range(40)} | {b'3': 0}]">>) end)),
    %% The handle is the offending dict.
    {py_badresult, duplicate_key, H} =
        py_test_util:error_of(fun() -> py:eval(Dup, #{n => 40}) end),
    ?assertEqual(41, py:len(H)).

large_map_keys() ->
    py:exec(<<"class K:\n"
              "    def __init__(self, n): self.n = n\n"
              "    def __hash__(self): return self.n\n"
              "beam.register_encoder(K, lambda k: {i: i for i in range(k.n)})">>),
    try
        Key = maps:from_list([{I, I} || I <- lists:seq(0, 39)]),
        ?assertEqual(#{Key => 1, 2 => 3}, py:eval(<<"{K(40): 1, 2: 3}">>))
    after
        py:exec(<<"beam.unregister_encoder(K)">>)
    end.

large_maps_in() ->
    M = maps:from_list(pairs(100000)),
    ?assertEqual(100000, py:func(builtins, len, [M])),
    ?assertEqual(M, py:func(py_test_helpers, identity, [M])).

%% Keys that stay distinct in Python (an atom and a binary of the same
%% text are one str key there, `true' and 1 one number).
prop_map_roundtrip() ->
    ?FORALL(KVs, list({oneof([integer(), binary(), {atom()}]), integer()}),
            begin
                Many = KVs ++ [{{I}, I} || I <- lists:seq(1, length(KVs) * 3)],
                M = maps:from_list(Many),
                py:func(py_test_helpers, identity, [M]) =:= M
                    andalso py:func(py_test_helpers, identity, [[M, {M}]]) =:= [M, {M}]
            end).

%%% Byte data -----------------------------------------------------------

bytes_shared() ->
    py:exec(<<"import py_test_helpers as h\nbig = bytes(range(256)) * 400">>),
    Bin = py:eval(<<"big">>),
    ?assertEqual(binary:copy(list_to_binary(lists:seq(0, 255)), 400), Bin),
    %% The binary's memory is the bytes object's memory.
    ?assert(py:eval(<<"h.buffer_address(m) == h.buffer_address(big)">>, #{m => py:buffer(Bin)})),
    %% Below 64 KB: a copy (a small binary costs less than a resource).
    Small = py:eval(<<"bytes(1000)">>),
    ?assertEqual(<<0:8000>>, Small).

bytes_outlive_python() ->
    Bin = py:eval(<<"bytes(range(256)) * 1000">>),
    py:exec(<<"import gc\ngc.collect()">>),
    ?assertEqual(binary:copy(list_to_binary(lists:seq(0, 255)), 1000), Bin).

bytes_released() ->
    py:exec(<<"import sys\nkept = bytes(200000)\nbase = sys.getrefcount(kept)">>),
    Holder = spawn(fun() ->
                           Bin = py:eval(<<"kept">>),
                           receive {check, From} -> From ! {held, byte_size(Bin)} end,
                           receive stop -> ok end
                   end),
    Holder ! {check, self()},
    receive {held, 200000} -> ok end,
    %% Erlang holds a reference to the bytes object...
    ?assert(py:eval(<<"sys.getrefcount(kept) > base">>)),
    Holder ! stop,
    %% ... until its binary is garbage collected.
    ?assert(py_test_util:wait_until(
              fun() -> py:eval(<<"sys.getrefcount(kept) == base">>) end, 100)).

mutable_copied() ->
    py:exec(<<"import beam\nba = bytearray(100000)">>),
    Bin = py:eval(<<"ba">>),
    py:exec(<<"ba[0] = 7">>),
    ?assertEqual(0, binary:at(Bin, 0)),
    %% Other memoryviews stay objects.
    ?assertMatch({'$py', <<"memoryview">>, _}, py:eval(<<"memoryview(ba)">>)),
    %% beam.share copies a bytearray: later changes stay in Python.
    Shared = py:eval(<<"beam.share(ba)">>),
    py:exec(<<"ba[1] = 9">>),
    ?assertEqual({7, 0}, {binary:at(Shared, 0), binary:at(Shared, 1)}).

buffer_in() ->
    Bin = binary:copy(<<"0123456789">>, 10000),
    ?assertEqual(100000, py:func(builtins, len, [py:buffer(Bin)])),
    ?assertEqual([<<"memoryview">>, true], py:eval(<<"[type(m).__name__, m.readonly]">>, #{m => py:buffer(Bin)})),
    %% Nested, as an argument, in Vars.
    ?assertEqual(<<"345">>, py:eval(<<"bytes(m[0][3:6])">>, #{m => [py:buffer(Bin)]})),
    %% Read-only: writing raises.
    ?assertMatch({python, 'TypeError', _, _},
                 py_test_util:error_of(fun() -> py:exec(<<"m[0] = 1">>, #{m => py:buffer(Bin)}) end)),
    %% No copy: two calls see the same memory.
    py:exec(<<"kept_view = m">>, #{m => py:buffer(Bin)}),
    ?assert(py:eval(<<"h.buffer_address(m) == h.buffer_address(kept_view)">>, #{m => py:buffer(Bin)})),
    %% Coming back: the binary itself, a part of it for a slice.
    ?assertEqual(Bin, py:eval(<<"kept_view">>)),
    ?assertEqual(<<"234">>, py:eval(<<"kept_view[2:5]">>)),
    %% A plain binary keeps its meaning (str / bytes).
    ?assertEqual(<<"str">>, py:eval(<<"type(m).__name__">>, #{m => Bin})),
    %% Small and empty binaries too.
    ?assertEqual(<<"ab">>, py:eval(<<"bytes(m)">>, #{m => py:buffer(<<"ab">>)})),
    ?assertEqual(0, py:func(builtins, len, [py:buffer(<<>>)])),
    py:exec(<<"del kept_view">>).

buffer_outlives_erlang() ->
    Self = self(),
    Pid = spawn(fun() ->
                        Fresh = binary:copy(<<7, 8, 9>>, 100000),
                        py:exec(<<"outlive = m">>, #{m => py:buffer(Fresh)}),
                        Self ! {self(), done}
                end),
    receive {Pid, done} -> ok end,
    erlang:garbage_collect(),
    timer:sleep(50),
    py:exec(<<"import gc\ngc.collect()">>),
    ?assertEqual([300000, 7, 8, 9, 2400000], py:eval(<<"[len(outlive), outlive[0], outlive[1], outlive[2], sum(outlive)]">>)),
    py:exec(<<"del outlive">>).

buffer_released() ->
    py:exec(<<"import weakref\n"
              "def watch(m):\n"
              "    global watched\n"
              "    watched = weakref.ref(m.obj)\n"
              "    return watched() is not None\n">>),
    ?assert(py:eval(<<"watch(m)">>, #{m => py:buffer(binary:copy(<<1>>, 100000))})),
    %% The call's views are gone: the beam.Binary (and its hold on the
    %% binary) with them.
    ?assert(py:eval(<<"watched() is None">>)),
    %% While a view lives, so does the Binary.
    py:exec(<<"v2 = m[10:]\nw2 = weakref.ref(m.obj)">>, #{m => py:buffer(binary:copy(<<2>>, 100000))}),
    py:exec(<<"import gc\ngc.collect()">>),
    ?assertEqual([false, 2], py:eval(<<"[w2() is None, v2[0]]">>)),
    py:exec(<<"del v2">>),
    ?assert(py:eval(<<"w2() is None">>)).

bad_buffers() ->
    ?assertMatch({py_badarg, not_a_binary, 42}, py_test_util:error_of(fun() -> py:buffer(42) end)),
    ?assertMatch({py_badarg, unsupported_bitstring, 42},
                 py_test_util:error_of(fun() -> py:func(builtins, len, [{'$py_buffer', 42}]) end)),
    ?assertMatch({py_badarg, unsupported_bitstring, <<1:3>>},
                 py_test_util:error_of(fun() -> py:func(builtins, len, [{'$py_buffer', <<1:3>>}]) end)).

%%% numpy ----------------------------------------------------------------

with_numpy(Fun) ->
    case py_test_util:venv_site_packages() of
        undefined -> io:format(user, "numpy tests skipped (no PY_TEST_VENV)~n", []);
        _ ->
            py:exec(<<"import numpy as np\nimport beam">>),
            Fun()
    end.

numpy_scalars() ->
    with_numpy(fun() ->
        ?assertEqual([3, -5, 18446744073709551615, 1 bsl 62, 1.5, 0.10000000149011612, true, false, nan, inf],
                     py:eval(<<"[np.int64(3), np.int8(-5), np.uint64(2**64 - 1), np.int64(2**62),"
                               " np.float64(1.5), np.float32(0.1), np.bool_(True), np.bool_(False),"
                               " np.float64('nan'), np.float32('inf')]">>)),
        %% Arrays stay objects; complex scalars too.
        ?assertMatch({'$py', <<"numpy.ndarray">>, _}, py:eval(<<"np.arange(3)">>)),
        ?assertMatch({'$py', <<"numpy.complex128">>, _}, py:eval(<<"np.complex128(1j)">>))
    end).

numpy_arrays() ->
    with_numpy(fun() ->
        Ints = << <<I:32/little-signed>> || I <- lists:seq(1, 6) >>,
        ?assertEqual({[[1, 2, 3], [4, 5, 6]], <<"int32">>, false},
                     py:eval(<<"(lambda a: (a.tolist(), str(a.dtype), a.flags.writeable))"
                               "(beam.ndarray(m, '<i4', (2, 3)))">>, #{m => py:buffer(Ints)})),
        %% An array over a binary views its memory, and comes back as it.
        Floats = << <<X:64/float-native>> || X <- lists:seq(1, 20000) >>,
        ?assert(py:eval(<<"h.buffer_address(beam.ndarray(m)) == h.buffer_address(m)">>,
                        #{m => py:buffer(Floats)})),
        ?assertEqual(Floats, py:eval(<<"beam.share(beam.ndarray(m))">>, #{m => py:buffer(Floats)})),
        %% A temporary result: shared, and made read-only.
        Doubled = << <<(X * 2):64/float-native>> || X <- lists:seq(1, 20000) >>,
        ?assertEqual(Doubled, py:eval(<<"beam.share(beam.ndarray(m) * 2)">>, #{m => py:buffer(Floats)})),
        py:exec(<<"import py_test_helpers as h\n"
                  "def shared_result():\n"
                  "    global shared_addr, shared_ref\n"
                  "    s = beam.share(np.arange(20000.0))\n"
                  "    return s\n">>),
        ?assertEqual(<< <<(float(X)):64/float-native>> || X <- lists:seq(0, 19999) >>,
                     py:eval(<<"shared_result()">>)),
        %% A named array is copied: changing it later leaves the binary.
        py:exec(<<"named = np.zeros(20000)">>),
        Copy = py:eval(<<"beam.share(named)">>),
        py:exec(<<"named[0] = 5.0">>),
        ?assertEqual(<<0.0:64/float-native>>, binary:part(Copy, 0, 8)),
        ?assert(py:eval(<<"named.flags.writeable">>)),
        %% A writable view of an array is copied too.
        ?assertEqual(<<0.0:64/float-native, 0.0:64/float-native>>,
                     binary:part(py:eval(<<"beam.share(named[1:])">>), 0, 16)),
        %% Data that Erlang holds stays valid after Python drops the array.
        Held = py:eval(<<"beam.share(np.full(20000, 3.0))">>),
        py:exec(<<"import gc\ngc.collect()">>),
        ?assertEqual(<<3.0:64/float-native>>, binary:part(Held, 19999 * 8, 8)),
        %% A weakref on the array: it lives while Erlang holds its binary.
        py:exec(<<"import weakref\n"
                  "def frozen():\n"
                  "    global aw\n"
                  "    a = np.full(20000, 4.0)\n"
                  "    a.flags.writeable = False\n"
                  "    aw = weakref.ref(a)\n"
                  "    return _beam_native.shared(memoryview(a))\n"
                  "import _beam_native\n">>),
        Self = self(),
        Pid = spawn(fun() ->
                            B = py:eval(<<"frozen()">>),
                            Self ! {self(), py:eval(<<"aw() is not None">>), binary:at(B, 7)},
                            receive stop -> ok end
                    end),
        receive {Pid, Alive, Byte} -> ?assertEqual({true, 64}, {Alive, Byte}) end,
        Pid ! stop,
        ?assert(py_test_util:wait_until(fun() -> py:eval(<<"aw() is None">>) end, 100))
    end).
