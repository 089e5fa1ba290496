"""The package's shape: no import cycles between hf_seg's modules, no imports hidden in functions, and one
`hf-seg` program whose every subcommand answers --help."""

import pytest

from helpers.import_graph import cycles, graph
from hf_seg.cli import COMMANDS, main


def test_no_import_cycles_and_no_hidden_imports():
    edges, hidden = graph()
    assert len(edges) > 50 and "hf_seg.runs" in edges["hf_seg.engine.evaluation"]  # the graph really was read
    assert cycles(edges) == []
    assert hidden == []


def test_cycle_finder_finds_a_planted_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_subcommand_has_help(command, capsys):
    with pytest.raises(SystemExit) as done:
        main([command, "--help"])
    assert done.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: hf-seg {command}") and "--" in out


def test_unknown_subcommand_exits_2(capsys):
    with pytest.raises(SystemExit) as done:
        main(["trian"])
    assert done.value.code == 2 and "invalid choice: 'trian'" in capsys.readouterr().err
