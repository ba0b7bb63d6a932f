%%% @doc The NIF: stubs replaced by the Rust library in `priv/py_nif.so'.
%%% Internal to py; use the `py' module.
%%% @end
-module(py_nif).

-export([init/1, start_worker/0, submit/3, submit_dirty/3, cancel/2,
         stop_worker/1, worker_info/1, queue_len/1, build_info/0]).

-nifs([init/1, start_worker/0, submit/3, submit_dirty/3, cancel/2,
       stop_worker/1, worker_info/1, queue_len/1, build_info/0]).

-on_load(load/0).

-export_type([worker/0]).

-opaque worker() :: reference().

-spec load() -> ok | {error, term()}.
load() ->
    Dir = case code:priv_dir(py) of
              {error, bad_name} ->
                  filename:join(filename:dirname(filename:dirname(code:which(?MODULE))), "priv");
              D -> D
          end,
    erlang:load_nif(filename:join(Dir, "py_nif"), 0).

-define(NOT_LOADED, erlang:nif_error({not_loaded, ?MODULE})).

%% @doc Starts the interpreter (once per OS process) with `PythonPath' in
%% front of `sys.path'.
-spec init([binary()]) -> {ok, started | already_started} | {error, binary()}.
init(_PythonPath) -> ?NOT_LOADED.

-spec start_worker() -> {ok, worker()} | {error, binary()}.
start_worker() -> ?NOT_LOADED.

%% @doc Queues a request; the reply arrives as `{Ref, Result}'. `big' asks
%% the caller to use {@link submit_dirty/3}.
-spec submit(worker(), reference(), tuple()) -> pos_integer() | big | stopped.
submit(_Worker, _Ref, _Request) -> ?NOT_LOADED.

-spec submit_dirty(worker(), reference(), tuple()) -> pos_integer() | stopped.
submit_dirty(_Worker, _Ref, _Request) -> ?NOT_LOADED.

-spec cancel(worker(), pos_integer()) -> cancelled | replied.
cancel(_Worker, _Seq) -> ?NOT_LOADED.

-spec stop_worker(worker()) -> ok.
stop_worker(_Worker) -> ?NOT_LOADED.

%% @doc Counters and state of a worker; `running' is the sequence number of
%% the job it runs now (0 when none).
-spec worker_info(worker()) -> #{id := pos_integer(), queue := non_neg_integer(),
                                 state := idle | busy | stopped,
                                 calls := non_neg_integer(), errors := non_neg_integer(),
                                 running := non_neg_integer()}.
worker_info(_Worker) -> ?NOT_LOADED.

-spec queue_len(worker()) -> non_neg_integer().
queue_len(_Worker) -> ?NOT_LOADED.

-spec build_info() -> #{libpython := binary(), python := binary(), started := boolean()}.
build_info() -> ?NOT_LOADED.
