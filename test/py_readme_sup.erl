%%% @doc The supervisor of the README's context example: one permanent
%%% child, the given module's `start_link/0'.
-module(py_readme_sup).
-behaviour(supervisor).

-export([init/1]).

-spec init(module()) -> {ok, {supervisor:sup_flags(), [supervisor:child_spec()]}}.
init(Module) ->
    {ok, {#{strategy => one_for_one, intensity => 5, period => 10},
          [#{id => Module, start => {Module, start_link, []}}]}}.
