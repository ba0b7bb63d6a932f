# The Elixir tests: every example of README.md's Elixir section (```elixir
# blocks with `iex(N)>` prompts, run in order in one set of bindings, each
# result compared with the text under it), then the `none` setting.
#
#   elixir -pa _build/default/lib/py/ebin test/elixir/readme_test.exs
#
# (test/elixir/run-tests.sh does that; `make test` runs it.)

ExUnit.start(seed: 0)
Logger.configure(level: :warning)

defmodule Py.TestHelper do
  @moduledoc false
  # py started afresh with `none: nil`, as README's config does.
  def start do
    Application.put_env(:py, :none, nil)
    :ok = :py.restart()
  end
end

defmodule Py.ReadmeExamples do
  @moduledoc false

  @readme Path.expand("../../README.md", __DIR__)

  # {line, code, expected} for each prompt of each ```elixir block.
  def examples do
    @readme
    |> File.read!()
    |> String.split("\n")
    |> Enum.with_index(1)
    |> blocks([], nil)
    |> Enum.flat_map(&prompts/1)
  end

  defp blocks([], acc, _), do: Enum.reverse(acc)
  defp blocks([{"```elixir", _} | rest], acc, nil), do: blocks(rest, acc, [])
  defp blocks([{"```", _} | rest], acc, lines) when is_list(lines),
    do: blocks(rest, [Enum.reverse(lines) | acc], nil)
  defp blocks([line | rest], acc, lines) when is_list(lines), do: blocks(rest, acc, [line | lines])
  defp blocks([_ | rest], acc, nil), do: blocks(rest, acc, nil)

  defp prompts(lines) do
    lines
    |> Enum.chunk_while(
      nil,
      fn {text, n}, current ->
        cond do
          Regex.match?(~r/^iex(\(\d+\))?> /, text) ->
            code = Regex.replace(~r/^iex(\(\d+\))?> /, text, "")
            next = {n, [code], []}
            if current, do: {:cont, finish(current), next}, else: {:cont, next}

          current && Regex.match?(~r/^\.\.\.(\(\d+\))?> /, text) ->
            {l, code, exp} = current
            {:cont, {l, [Regex.replace(~r/^\.\.\.(\(\d+\))?> /, text, "") | code], exp}}

          current ->
            {l, code, exp} = current
            {:cont, {l, code, [text | exp]}}

          true ->
            {:cont, nil}
        end
      end,
      fn
        nil -> {:cont, nil}
        current -> {:cont, finish(current), nil}
      end
    )
  end

  defp finish({line, code, expected}) do
    {line, code |> Enum.reverse() |> Enum.join("\n"),
     expected |> Enum.reverse() |> Enum.join("\n") |> String.trim()}
  end

  # References and pids are compared as such, not by their numbers.
  def normalise(text) do
    text
    |> String.replace(~r/#Reference<[^>]*>/, "#Reference<_>")
    |> String.replace(~r/#PID<[^>]*>/, "#PID<_>")
    |> String.replace(~r/\s+/, " ")
    |> String.trim()
  end
end

defmodule Py.ReadmeTest do
  use ExUnit.Case

  setup_all do
    Py.TestHelper.start()
  end

  test "the README's Elixir examples" do
    examples = Py.ReadmeExamples.examples()
    assert length(examples) >= 20

    Enum.reduce(examples, [], fn {line, code, expected}, binding ->
      {value, binding} = Code.eval_string(code, binding, file: "README.md", line: line)
      got = inspect(value, limit: :infinity, printable_limit: :infinity)

      assert Py.ReadmeExamples.normalise(got) == Py.ReadmeExamples.normalise(expected),
             "README.md line #{line}: #{code}\n  got:      #{got}\n  expected: #{expected}"

      binding
    end)
  end
end

defmodule Py.NoneTest do
  use ExUnit.Case
  import ExUnit.CaptureLog

  setup_all do
    Py.TestHelper.start()
  end

  # Runs `fun` with py started with `none` set to `none` (unset: nil).
  defp with_none(none, fun) do
    :ok = :py.stop()

    case none do
      :unset -> Application.delete_env(:py, :none)
      _ -> Application.put_env(:py, :none, none)
    end

    try do
      fun.()
    after
      Py.TestHelper.start()
    end
  end

  test "nil is None both ways, and so is :undefined" do
    assert :py.eval("x is None", %{"x" => nil})
    assert :py.eval("x is None", %{"x" => :undefined})
    assert :py.eval("[None, (None,), {'k': None}]") == [nil, {nil}, %{"k" => nil}]
    assert :py.func(:json, :dumps, [[nil, :undefined, %{"a" => nil}]]) == "[null, null, {\"a\": null}]"
    assert :py.func(:builtins, :repr, [%{nil => [nil]}]) == "{None: [None]}"
    assert :py.exec("y = None") == nil
    # Other atoms are still atoms.
    assert :py.func(:builtins, :type, [:nothing]) |> :py.repr() == "<class 'beam.Atom'>"
    assert :py.func(:builtins, :list, [[:a, nil, true, false]]) == [:a, nil, true, false]
  end

  test "the default: None is :undefined, nil an atom" do
    with_none(:unset, fn ->
      :ok = :py.start()
      assert :py.eval("None") == :undefined
      assert :py.eval("x is None", %{"x" => :undefined})
      assert :py.func(:builtins, :bool, [nil]) == true
      assert :py.func(:json, :dumps, [nil]) == "\"nil\""
    end)
  end

  test "any atom may be None" do
    with_none(:null, fn ->
      :ok = :py.start()
      assert :py.eval("None") == :null
      assert :py.eval("(x is None, y is None, z)", %{"x" => :null, "y" => :undefined, "z" => nil}) ==
               {true, true, nil}
    end)
  end

  test "a bad setting fails the start, naming it" do
    for bad <- [true, false, "nil", 0, [nil]] do
      with_none(bad, fn ->
        log =
          capture_log(fn ->
            assert {:error, {:bad_config, :none, ^bad, why}} = :py.start()
            assert to_string(why) =~ "atom"
          end)

        assert log =~ "bad_config"
      end)
    end
  end
end
