%%% @private
%%% @doc The NIF: stubs replaced by the Rust library in `priv/py_nif.so'.
%%% Internal to py; use the `py' module.
%%% @end
-module(py_nif).

-export([init/1, start_worker/0, submit/4, submit_wait/2, submit_dirty/4, cancel/1,
         stop_worker/1, worker_info/1, queue_len/1, shared_queue_len/0, build_info/0,
         callback_reply/2, callback_reply_dirty/2, callback_watch/1,
         context_new/2, context_close/1, job_where/1,
         build_maps/1, build_maps_dirty/1, set_none/1,
         set_worker_stack/1, worker_exited/1,
         loop_start/0, loop_stop/2, loop_abandon/1, loop_info/1]).

-nifs([init/1, start_worker/0, submit/4, submit_wait/2, submit_dirty/4, cancel/1,
       stop_worker/1, worker_info/1, queue_len/1, shared_queue_len/0, build_info/0,
       callback_reply/2, callback_reply_dirty/2, callback_watch/1,
       context_new/2, context_close/1, job_where/1,
       build_maps/1, build_maps_dirty/1, set_none/1,
       set_worker_stack/1, worker_exited/1,
       loop_start/0, loop_stop/2, loop_abandon/1, loop_info/1]).

-on_load(load/0).

-export_type([worker/0, job/0, target/0, context/0, event_loop/0]).

-opaque worker() :: reference().
%% A worker thread, owned by the process that started it.
-opaque job() :: reference().
%% A queued call that its caller may cancel.
-opaque context() :: reference().
%% A namespace of its own, pinned to one worker.
-opaque event_loop() :: reference().
%% py's asyncio event loop thread, owned by the process that started it.
-type target() :: worker() | context() | any.
%% Where a call goes: one worker's queue, a context (its worker, its
%% namespace), or the shared queue that any idle worker takes from.

-spec load() -> ok | {error, term()}.
load() ->
    Dir = case code:priv_dir(py) of
              {error, bad_name} ->
                  filename:join(filename:dirname(filename:dirname(code:which(?MODULE))), "priv");
              D -> D
          end,
    case erlang:load_nif(filename:join(Dir, "py_nif"), 0) of
        ok ->
            ok;
        {error, Why} = Error ->
            %% This module is not loaded when on_load fails, so the reason
            %% (the dynamic linker's message, naming the file it could not
            %% load) is left where py_app, which reports it, can read it.
            persistent_term:put({?MODULE, load_error}, Why),
            Error
    end.

-define(NOT_LOADED, erlang:nif_error({not_loaded, ?MODULE})).

%% @doc Starts the interpreter (once per OS process) with `PythonPath' in
%% front of `sys.path'.
-spec init([binary()]) -> {ok, started | already_started} | {error, binary()}.
init(_PythonPath) -> ?NOT_LOADED.

%% @doc The atom Python's `None' converts to and from (besides
%% `undefined'): the `none' setting, set at each start.
-spec set_none(atom()) -> ok.
set_none(_Atom) -> ?NOT_LOADED.

-spec start_worker() -> {ok, worker()} | {error, binary()}.
start_worker() -> ?NOT_LOADED.

%% @doc Queues a request; the reply arrives as `{Ref, Result}'. Returns
%% `ok', or a job for {@link cancel/1} when `Cancellable'; `stopped' when
%% no worker can take it; `big' when the request is too large to copy on a
%% normal scheduler (then use {@link submit_dirty/4}).
%% `closed' when the target is a closed context.
-spec submit(target(), reference(), tuple(), boolean()) ->
          ok | job() | big | stopped | closed | {error, term()}.
submit(_Target, _Ref, _Request, _Cancellable) -> ?NOT_LOADED.

%% @doc As `submit(any, Ref, Request, false)', but the caller may wait in
%% the NIF for a few microseconds (only when a worker was spinning on the
%% shared queue): a small reply that comes meanwhile is returned as
%% `{Ref, Result}', the message that would else arrive. Else as
%% {@link submit/4}: `ok' (the reply comes as a message), `stopped', `big'.
-spec submit_wait(reference(), tuple()) ->
          ok | big | stopped | {reference(), {ok, term()} | {error, term()} | {py_maps, tuple()}}.
submit_wait(_Ref, _Request) -> ?NOT_LOADED.

%% @doc As {@link submit/4}, on a dirty scheduler, for large requests.
-spec submit_dirty(target(), reference(), tuple(), boolean()) ->
          ok | job() | stopped | closed | {error, term()}.
submit_dirty(_Target, _Ref, _Request, _Cancellable) -> ?NOT_LOADED.

%% @doc The caller stopped waiting: `replied' when the reply is already in
%% its mailbox, `cancelled' when none will come (running Python code is
%% interrupted).
-spec cancel(job()) -> cancelled | replied.
cancel(_Job) -> ?NOT_LOADED.

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

%% @doc Where a job is: `{running, WorkerThreadId, JobId}' (the ids of
%% {@link worker_info/1}) or `not_running'. Asked before cancelling, to
%% watch for a job that cannot be interrupted.
-spec job_where(job()) -> {running, pos_integer(), pos_integer()} | not_running.
job_where(_Job) -> ?NOT_LOADED.

%% @doc Jobs waiting in the shared queue.
-spec shared_queue_len() -> non_neg_integer().
shared_queue_len() -> ?NOT_LOADED.

%% @doc Answers a `beam.call' from Python: `Result' is `{ok, Value}' or
%% `{error, {Class, Reason}}'. `big' asks for {@link callback_reply_dirty/2}.
-spec callback_reply(reference(), {ok, term()} | {error, {atom(), term()}}) -> boolean() | big.
callback_reply(_Slot, _Result) -> ?NOT_LOADED.

%% @doc The calling process will answer `Slot'; if it dies first, the
%% waiting Python code gets an error at once. `cancelled' when that code
%% gave up already (a cancelled `beam.async_call'): the function must not
%% run then.
-spec callback_watch(reference()) -> ok | cancelled.
callback_watch(_Slot) -> ?NOT_LOADED.

-spec callback_reply_dirty(reference(), {ok, term()} | {error, {atom(), term()}}) -> boolean().
callback_reply_dirty(_Slot, _Result) -> ?NOT_LOADED.

%% @doc A new context whose calls run on `Worker'. With `Owned' it closes
%% when the calling process exits.
-spec context_new(worker(), boolean()) -> context().
context_new(_Worker, _Owned) -> ?NOT_LOADED.

%% @doc Closes a context: the objects its namespace held are released.
-spec context_close(context()) -> ok.
context_close(_Ctx) -> ?NOT_LOADED.

%% @doc Builds the large maps of a `{py_maps, Nodes}' reply (a worker
%% thread cannot make them) in the calling process: `{ok, Value}', or
%% `{error, {py_badresult, duplicate_key, Handle}}'; `big' asks for
%% {@link build_maps_dirty/1}.
-spec build_maps(tuple()) -> {ok, term()} | {error, term()} | big.
build_maps(_Nodes) -> ?NOT_LOADED.

-spec build_maps_dirty(tuple()) -> {ok, term()} | {error, term()}.
build_maps_dirty(_Nodes) -> ?NOT_LOADED.

%% @doc The stack size, in bytes, of the worker threads started from now
%% on (at least 8 MB).
-spec set_worker_stack(pos_integer()) -> ok.
set_worker_stack(_Bytes) -> ?NOT_LOADED.

%% @doc Whether a worker's OS thread has left: it answered or refused
%% every job it accepted (a thread blocked in C has not).
-spec worker_exited(worker()) -> boolean().
worker_exited(_Worker) -> ?NOT_LOADED.

-spec build_info() -> #{libpython := binary(), python := binary(), started := boolean()}.
build_info() -> ?NOT_LOADED.

%% @doc Starts the event loop thread, owned by the calling process; the
%% awaitable results of calls go to it from now on.
-spec loop_start() -> {ok, event_loop()} | {error, binary()}.
loop_start() -> ?NOT_LOADED.

%% @doc Stops the loop: its tasks are cancelled and given `GraceMs' to
%% finish, their callers answered; the owner then gets
%% `{py_loop_stopped, Id}'.
-spec loop_stop(event_loop(), non_neg_integer()) -> ok.
loop_stop(_Loop, _GraceMs) -> ?NOT_LOADED.

%% @doc Answers `{error, py_loop_stopped}' to every caller still waiting
%% on a stopped loop that did not end in time; returns how many.
-spec loop_abandon(event_loop()) -> non_neg_integer().
loop_abandon(_Loop) -> ?NOT_LOADED.

%% @doc `{Id, PendingTasks}'.
-spec loop_info(event_loop()) -> {pos_integer(), non_neg_integer()}.
loop_info(_Loop) -> ?NOT_LOADED.
