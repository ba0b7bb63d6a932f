%%% @doc The errors of py: every reason a py call raises (or returns, in
%%% the `{error, Reason}' results of {@link py:scatter/4} and
%%% {@link py:on_all_workers/5}), and the control errors of
%%% {@link py:start/0}, {@link py:start_node/2} and friends.
%%%
%%% `test/py_errors_tests.erl' scans py's Erlang and Rust sources for the
%%% reasons they raise and fails when one is not in {@link error_reason()}.
%%% @end
-module(py_errors).

-export([describe/1]).

-export_type([error_reason/0, badarg_why/0, badresult_why/0, control_error/0]).

-type error_reason() ::
        {python, Type :: atom() | binary(), Message :: binary(), Traceback :: [binary()] | binary()}
        %% A Python exception: its class name (an atom for a class that can
        %% be imported by that name, else a binary: a class made at run
        %% time never makes an atom), `str()' and formatted traceback.
      | {py_badarg, badarg_why(), Offending :: term()}
        %% An argument, option or request that cannot be used.
      | {py_badresult, badresult_why(), py:handle()}
        %% A result that cannot be a term; the handle holds it.
      | {py_timeout, Ms :: timeout()}
        %% The call took longer than its timeout (it was interrupted).
      | {py_worker_down, WorkerId :: pos_integer() | undefined}
        %% The worker running the call died (the id of `py:workers()').
      | py_worker_stopped | {py_worker_stopped, WorkerId :: pos_integer() | undefined}
        %% The call could not be placed: its worker was being removed.
      | {py_worker_panic, Text :: binary() | string()}
        %% A bug in py's NIF (caught: the worker goes on).
      | {py_no_worker, WorkerId :: pos_integer()}
        %% `{worker, Id}' names no worker in the pool.
      | {py_bad_scheduler, {module(), atom()}, Returned :: term()}
        %% A custom scheduler returned no member position.
      | py_not_started
        %% py is not running.
      | py_context_closed
        %% The context was dropped, or its worker is gone.
      | py_loop_stopped
        %% The call's awaitable was pending on py's event loop when py
        %% stopped (it was cancelled).
      | {py_nodedown, node()} | {py_not_on_node, node()} | {py_no_nodes, [node()]}
        %% Distributed calls: the node went down, does not run py, none of
        %% the nodes has workers.
      | {py_node_restarted, node()}
        %% The node (of a node pool) was restarted, or its pool stopped:
        %% the objects of its handles are gone.
      | {py_no_pool, atom()} | {py_pool_down, atom()}
        %% `{pool, Name}' names no pool; none of the pool's nodes is up
        %% (all of them restarting or unreachable, or the pool gave up:
        %% beyond its restart intensity).
      | {py_item_crashed, ExitReason :: term()}
        %% A parallel item's helper process died (in its `{error, _}').
      | {exit | throw, term()}
        %% A parallel item ended with an exit or a throw (in its `{error, _}').
      | control_error().

-type badarg_why() ::
        bad_option          %% a call option: not a list, unknown, or a bad value
      | bad_name            %% not a module, function or attribute name
      | bad_type            %% `py:const/3': not int, float or str
      | bad_args            %% arguments that are not a list
      | bad_kwargs          %% keyword arguments that are not a proplist or map of names
      | bad_code            %% source code that is not a string
      | bad_request         %% a request the NIF cannot decode
      | bad_handle          %% a forged handle (no live object behind it)
      | not_a_handle        %% `py:release/1' of something else
      | not_a_binary        %% `py:buffer/1' of something else
      | released_handle     %% a remote handle whose object was released
      | mixed_nodes         %% handles of two nodes in one call
      | handle_not_on_node  %% a local handle sent to another node
      | context_on_other_node %% a context used in a call to another node
      | bad_context         %% a forged context (no live context behind it)
      | duplicate_key       %% map keys distinct as terms, equal in Python (`1', `1.0')
      | bad_scheduler       %% a scheduler that is none of py's
      | improper_list | too_deep | unhashable_key
      | unsupported_fun | unsupported_port | unsupported_bitstring | unsupported_term.
%% Why an argument has no Python counterpart, or cannot be used.

-type badresult_why() :: too_deep | duplicate_key | int_too_big.
%% Why a result cannot be a term (nested too deep; two keys equal as terms;
%% an int beyond Erlang's integer limit, about 2^25 bits).

-type control_error() ::
        {bad_config, Setting :: atom(), Value :: term(), Why :: string()}
      | {python_init_failed, term()} | {py_nif_not_loaded, term()}
      | {py_worker_start_failed, term()} | {too_few_workers, term()}
      | {py_loop_start_failed, term()}
      | not_distributed | {not_loopback, string(), term()} | {resolves_to, term()}
      | {already_running, node()} | {setup_failed, node(), term()} | {not_a_peer, node()}
      | {bad_pool, Name :: term(), Why :: string()} | {already_started, atom()}
      | {no_pool, atom()} | {embedded_pool, default}.
%% What the control functions return as `{error, Reason}': a bad setting,
%% an interpreter that failed to start, the errors of
%% `py:start_node/2' and `py:stop_node/1', and those of `py:start_pool/2'
%% and `py:stop_pool/1'.

%% @private
%% @doc A failed job's reason as a line of text, for configuration errors.
-spec describe(term()) -> string().
describe({python, Type, Message, _Traceback}) ->
    lists:flatten(io_lib:format("~ts: ~ts", [Type, Message]));
describe(Other) ->
    lists:flatten(io_lib:format("~0p", [Other])).
