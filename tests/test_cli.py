"""The command line: exit codes, JSON documents, fmt modes, and no torch where none is needed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from gmhf.cli import main

ROOT = Path(__file__).parent.parent
EXAMPLE = str(ROOT / "examples" / "specs" / "sinusoid.guide")


def run(*args: str, capsys: pytest.CaptureFixture[str], stdin: str | None = None,
        monkeypatch: pytest.MonkeyPatch | None = None) -> tuple[int, str, str]:
    if stdin is not None and monkeypatch is not None:
        import io

        monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    with pytest.raises(SystemExit) as done:
        main(list(args))
    out, err = capsys.readouterr()
    return int(done.value.code or 0), out, err


def test_check_ok_and_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """check exits 0 on a good spec and 1 with path:line:col diagnostics on a bad one."""
    assert run("check", EXAMPLE, capsys=capsys)[0] == 0
    bad = tmp_path / "bad.guide"
    bad.write_text("domain sinusoid\nshift amplitud in 1 .. 2\n")
    code, out, err = run("check", str(bad), capsys=capsys)
    assert code == 1 and f"{bad}:2:7: error: unknown factor `amplitud`" in err and "^~~~~~~~" in err


def test_check_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """check --json prints one document listing each file's diagnostics."""
    bad = tmp_path / "bad.guide"
    bad.write_text("domain sinusoid\ntrust 2\n")
    code, out, _ = run("check", "--json", EXAMPLE, str(bad), capsys=capsys)
    files = json.loads(out)["files"]
    assert code == 1 and files[0]["ok"] and not files[1]["ok"]
    assert (files[1]["diagnostics"][0]["line"], files[1]["diagnostics"][0]["column"]) == (2, 7)


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    """A missing argument or a missing file is a usage error, exit 2, no traceback (for `check`, a missing
    file is a finding, exit 1, so that the other files are still checked)."""
    code, _, err = run("sample", capsys=capsys)
    assert code == 2 and "Traceback" not in err
    assert run("sample", "no/such.guide", capsys=capsys)[0] == 2
    assert run("check", "no/such.guide", capsys=capsys)[0] == 1


def test_fmt_modes(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """fmt rewrites in place; --check exits 1 without writing; --diff shows; `-` filters stdin."""
    messy = "domain   sinusoid;shift amplitude in 1..2   # why\n\n\n\nrequire (amplitude)<3\n"
    clean = "domain sinusoid\nshift amplitude in 1 .. 2  # why\n\nrequire amplitude < 3\n"
    spec = tmp_path / "s.guide"
    spec.write_text(messy)
    assert run("fmt", "--check", str(spec), capsys=capsys)[0] == 1 and spec.read_text() == messy
    code, out, _ = run("fmt", "--diff", str(spec), capsys=capsys)
    assert code == 0 and "+shift amplitude in 1 .. 2  # why" in out and spec.read_text() == messy
    assert run("fmt", str(spec), capsys=capsys)[0] == 0 and spec.read_text() == clean
    assert run("fmt", "--check", str(spec), capsys=capsys)[0] == 0
    code, out, _ = run("fmt", "-", capsys=capsys, stdin=messy, monkeypatch=monkeypatch)
    assert code == 0 and out == clean


def test_fmt_refuses_a_broken_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """fmt leaves a file with syntax errors untouched and exits 1."""
    spec = tmp_path / "s.guide"
    spec.write_text("domain sinusoid\nshift amplitude in 1 ..\n")
    code, _, err = run("fmt", str(spec), capsys=capsys)
    assert code == 1 and "2:24: error" in err and spec.read_text() == "domain sinusoid\nshift amplitude in 1 ..\n"


def test_sample_json(capsys: pytest.CaptureFixture[str]) -> None:
    """sample --json gives {"domain", "samples"} with one dict per environment, reproducible by seed."""
    code, out, _ = run("sample", EXAMPLE, "-n", "5", "--seed", "3", "--json", capsys=capsys)
    document = json.loads(out)
    assert code == 0 and document["domain"] == "sinusoid" and len(document["samples"]) == 5
    assert set(document["samples"][0]) == {"amplitude", "phase", "frequency", "noise"}
    assert json.loads(run("sample", EXAMPLE, "-n", "5", "--seed", "3", "--json", capsys=capsys)[1]) == document


def test_sample_json_uses_level_names(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Categorical values appear as level names and integers as ints."""
    spec = tmp_path / "toy.guide"
    spec.write_text("domain toy\nshift weather in [rain]\nshift cars in [3]\n")
    samples = json.loads(run("sample", str(spec), "-n", "3", "--json", capsys=capsys)[1])["samples"]
    assert [s["weather"] for s in samples] == ["rain"] * 3 and [s["cars"] for s in samples] == [3] * 3


def test_explain(capsys: pytest.CaptureFixture[str]) -> None:
    """explain shows each factor with source and believed target; --json has the same data."""
    code, out, _ = run("explain", EXAMPLE, capsys=capsys)
    assert code == 0 and "amplitude" in out and "normal(5, 1.5)" in out and "invariant" in out
    data = json.loads(run("explain", "--json", EXAMPLE, capsys=capsys)[1])
    phase = next(f for f in data["factors"] if f["factor"] == "phase")
    assert phase["invariant"] and not phase["flagged"]


def test_load_time_error_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A require no probe draw satisfies is reported by `sample` with its location, exit 1."""
    spec = tmp_path / "s.guide"
    spec.write_text("domain sinusoid\nrequire amplitude - amplitude > 1\n")
    code, _, err = run("sample", str(spec), capsys=capsys)
    assert code == 1 and ":2:1: error: no sample of 10,000 satisfies this `require`" in err


@pytest.mark.parametrize("args", [["--help"], ["check", EXAMPLE], ["fmt", "--check", EXAMPLE]])
def test_light_commands_do_not_import_torch(args: list[str]) -> None:
    """`gmhf --help`, `check` and `fmt` never import torch."""
    code = ("import sys\nfrom gmhf.cli import main\ntry:\n    main(sys.argv[1:])\nexcept SystemExit as e:\n"
            "    assert not e.code, e.code\nassert 'torch' not in sys.modules, 'torch imported'\n")
    result = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, cwd=ROOT,
                            timeout=60)
    assert result.returncode == 0, result.stderr


def test_the_lazy_command_table_matches_the_commands() -> None:
    """Each COMMANDS target is a click command of that name whose first help sentence is its SUMMARIES entry."""
    from gmhf.cli import COMMANDS, SUMMARIES, resolve

    assert set(COMMANDS) == set(SUMMARIES)
    for name, target in COMMANDS.items():
        command = resolve(target)
        assert command.name == name
        assert command.get_short_help_str(limit=10_000) == SUMMARIES[name], name


def test_help_lists_commands_without_importing_them() -> None:
    """`gmhf --help` lists every built-in with its summary, importing no command module."""
    code = ("import sys\nfrom gmhf.cli import main\ntry:\n    main(['--help'])\nexcept SystemExit as e:\n"
            "    assert not e.code, e.code\nloaded = sorted(m for m in sys.modules if m.startswith('gmhf.cli.'))\n"
            "assert loaded in ([], ['gmhf.cli.common']), loaded\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert result.returncode == 0, result.stderr
    from gmhf.cli import SUMMARIES

    rows = {line.split()[0]: line for line in result.stdout.partition("Commands:")[2].splitlines() if line.strip()}
    for name, summary in SUMMARIES.items():  # click shortens long summaries to the width: compare a prefix
        assert summary[:40] in rows[name], name


def test_cli_modules_import_no_private_names_and_not_their_package() -> None:
    """The cli modules share code through public names (gmhf.cli.common), never `_x`, and never import gmhf.cli."""
    import ast

    for path in sorted((ROOT / "gmhf" / "cli").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("gmhf"):
                assert not [a.name for a in node.names if a.name.startswith("_") and not a.name.startswith("__")], (path.name, node.module)
                assert path.name == "__init__.py" or node.module != "gmhf.cli", path.name
