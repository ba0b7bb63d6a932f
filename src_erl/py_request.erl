%%% @private
%%% @doc The request: what py sends to a worker thread, in the one format
%%% the NIF decodes (documented at the top of `native/src/request.rs').
%%%
%%% ```
%%% {call, Flags, Target, Args, Kwargs}   Target(*Args, **Kwargs)
%%% {getattr, Flags, Target, Name}        getattr(Target, Name)
%%% {resolve, Flags, Dotted}              the object a dotted name names
%%% {value, Flags, Term}                  Term to Python and back
%%% {eval, Flags, Code, Vars}             an expression
%%% {exec, Flags, Code, Vars}             statements
%%% '''
%%%
%%% This module builds them (the constructors leave the flags 0; the
%%% engine sets them from the call's options), knows the flag bits, and
%%% holds the one walk over the handles a request carries at its top
%%% level (the object or callable, the arguments, the keyword values, the
%%% variables): routing (which node) and checks (which handles may go
%%% there) both fold with it.
%%% @end
-module(py_request).

-export([call/3, getattr/2, resolve/1, value/1, eval/2, exec/2,
         target/1, object/1, method/2,
         flags/2, flags/3, set_flags/2, fold_handles/3, handle_kind/1]).

-export_type([request/0, flags/0, handle_kind/0]).

-type flags() :: non_neg_integer().
%% Bit 0: Python strings come back as charlists; bit 1: the result stays
%% in Python (a handle); bit 2: an awaitable result is not awaited (it
%% stays a handle) — by default a call's or an eval's awaitable result is
%% awaited on py's event loop.
-type request() :: {call, flags(), term(), term(), term()}
                 | {getattr, flags(), term(), term()}
                 | {resolve, flags(), term()}
                 | {value, flags(), term()}
                 | {eval | exec, flags(), term(), term()}.
-type handle_kind() :: local | {remote, node(), reference()} | forged.
%% What a `{'$py', _, _}' term is: a handle of this node (a NIF
%% resource), a remote handle (see `py_remote'), or a term shaped like a
%% handle that is neither.

-define(CHARLISTS, 1).
-define(HANDLE, 2).
-define(NO_AWAIT, 4).

%%% Constructors (flags 0: see set_flags/2) --------------------------------

%% @doc `Target(*Args, **Kwargs)'.
-spec call(term(), term(), term()) -> request().
call(Target, Args, Kwargs) -> {call, 0, Target, Args, Kwargs}.

%% @doc `getattr(Target, Name)'.
-spec getattr(term(), term()) -> request().
getattr(Target, Name) -> {getattr, 0, Target, Name}.

%% @doc The object a dotted name names.
-spec resolve(term()) -> request().
resolve(Dotted) -> {resolve, 0, Dotted}.

%% @doc A term converted to Python and back.
-spec value(term()) -> request().
value(Term) -> {value, 0, Term}.

%% @doc An expression evaluated with `Vars' bound.
-spec eval(term(), term()) -> request().
eval(Code, Vars) -> {eval, 0, Code, Vars}.

%% @doc Statements run with `Vars' bound.
-spec exec(term(), term()) -> request().
exec(Code, Vars) -> {exec, 0, Code, Vars}.

%% @doc A callable named by a dotted atom or binary, or a handle.
-spec target(term()) -> term().
target(Name) when is_atom(Name); is_binary(Name) -> Name;
target({'$py', _, _} = Handle) -> Handle;
target(Other) -> erlang:error({py_badarg, bad_name, Other}).

%% @doc Methods and attributes apply to the object itself: a bare atom is
%% a value here (an Atom object), never a module name.
-spec object(term()) -> term().
object({'$py', _, _} = Handle) -> Handle;
object(Object) -> {'$py_value', Object}.

%% @doc The target of a method call.
-spec method(term(), term()) -> {term(), term()}.
method(Object, Name) -> {object(Object), Name}.

%%% Flags ------------------------------------------------------------------

%% @doc The flags for a string mode and a result mode.
-spec flags(binary | charlist, value | handle) -> flags().
flags(binary, value) -> 0;
flags(charlist, value) -> ?CHARLISTS;
flags(binary, handle) -> ?HANDLE;
flags(charlist, handle) -> ?CHARLISTS bor ?HANDLE.

%% @doc As {@link flags/2}; `Await' false keeps an awaitable result as a
%% handle.
-spec flags(binary | charlist, value | handle, boolean()) -> flags().
flags(Strings, Return, true) -> flags(Strings, Return);
flags(Strings, Return, false) -> flags(Strings, Return) bor ?NO_AWAIT.

%% @doc The request with these flags.
-spec set_flags(request(), flags()) -> request().
set_flags(Request, Flags) when element(2, Request) =:= Flags -> Request;
set_flags(Request, Flags) -> setelement(2, Request, Flags).

%%% The handles of a request --------------------------------------------------

%% @doc Folds `Fun(Handle, Acc)' over the handles (`{'$py', _, _}' terms,
%% local, remote or forged) at the top level of a request: a method's
%% object or the callable, the arguments, the keyword values, the value,
%% the variables. Handles nested deeper are not visited. Malformed parts
%% (an improper list, ...) are skipped: the NIF reports them.
-spec fold_handles(fun((tuple(), Acc) -> Acc), Acc, request()) -> Acc.
fold_handles(Fun, Acc, {call, _, Target, Args, Kwargs}) ->
    pairs(Fun, list(Fun, target(Fun, Acc, Target), Args), Kwargs);
fold_handles(Fun, Acc, {getattr, _, Target, _}) ->
    target(Fun, Acc, Target);
fold_handles(Fun, Acc, {value, _, Term}) ->
    one(Fun, Acc, Term);
fold_handles(Fun, Acc, {_Code, _, _, Vars}) when is_map(Vars) ->
    maps:fold(fun(_, V, A) -> one(Fun, A, V) end, Acc, Vars);
fold_handles(_Fun, Acc, _Request) ->
    Acc.

target(Fun, Acc, {Object, _Name}) -> one(Fun, Acc, Object);
target(Fun, Acc, Target) -> one(Fun, Acc, Target).

list(Fun, Acc, [H | T]) -> list(Fun, one(Fun, Acc, H), T);
list(_Fun, Acc, _) -> Acc.

pairs(Fun, Acc, [{_, V} | T]) -> pairs(Fun, one(Fun, Acc, V), T);
pairs(Fun, Acc, [_ | T]) -> pairs(Fun, Acc, T);
pairs(Fun, Acc, Map) when is_map(Map) -> maps:fold(fun(_, V, A) -> one(Fun, A, V) end, Acc, Map);
pairs(_Fun, Acc, _) -> Acc.

one(Fun, Acc, {'$py', _, _} = Handle) -> Fun(Handle, Acc);
one(_Fun, Acc, _) -> Acc.

%% @doc What a handle-shaped term is.
-spec handle_kind(tuple()) -> handle_kind().
handle_kind({'$py', Type, Ref}) when is_binary(Type), is_reference(Ref) -> local;
handle_kind({'$py', Type, {'$py_remote', Node, Id}})
  when is_binary(Type), is_atom(Node), is_reference(Id) -> {remote, Node, Id};
handle_kind(_) -> forged.
