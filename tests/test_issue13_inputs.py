"""Issue 13, items 2, 3, 4, 6 and 7: one `expect` semantics for `gmhf sample` and the API, beliefs
outside the physical bounds, non-finite numbers, `fmt` that damages nothing on disk, and spec files
that are not UTF-8."""

from __future__ import annotations

import json
import math
import os
import stat
import sys
from pathlib import Path

import pytest

from gmhf.cli import main

SINUSOID = "domain sinusoid\n"
#: A spec whose `expect` rejects most draws of the belief (amplitude up to 5, |y| < 0.3).
TIGHT_EXPECT = "domain sinusoid\nexpect max(abs(y)) < 0.3\n"
MESSY = "domain   sinusoid\nshift amplitude in 1..2\n"
CLEAN = "domain sinusoid\nshift amplitude in 1 .. 2\n"


def run(*args: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as done:
        main(list(args))
    out, err = capsys.readouterr()
    return int(done.value.code or 0), out, err


def _spec(tmp_path: Path, text: str | bytes, name: str = "s.guide") -> str:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return str(path)


# ------------------------------------------------------------------ item 2: expect and sampling
def test_cli_sample_draws_what_the_api_draws(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`gmhf sample` gives the draws of `Guidance.sample` (expect not applied) and reports what each expect would reject."""
    import gmhf

    spec = _spec(tmp_path, TIGHT_EXPECT)
    code, out, err = run("sample", spec, "-n", "50", "--seed", "3", "--json", capsys=capsys)
    document = json.loads(out)
    api = gmhf.load(Path(spec)).sample(50, seed=3).to_records()
    assert code == 0 and document["samples"] == api
    assert document["expect"]["applied"] is False and document["expect"]["checked"] == 50
    assert document["expect"]["rejected"][0]["count"] > 25  # |y| < 0.3 rejects most amplitudes up to 5


def test_cli_sample_expect_flag_applies_expects(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`gmhf sample --expect` keeps only environments whose generated data meet the expects (small amplitudes)."""
    spec = _spec(tmp_path, TIGHT_EXPECT)
    code, out, _ = run("sample", spec, "-n", "20", "--seed", "0", "--json", "--expect", capsys=capsys)
    document = json.loads(out)
    assert code == 0 and document["expect"]["applied"] is True and len(document["samples"]) == 20
    assert max(record["amplitude"] for record in document["samples"]) < 0.3


def test_cli_sample_reports_expects_on_stderr(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Without --expect the table gets a note that the draws ignore `expect`, and `-n 0` is no error."""
    spec = _spec(tmp_path, TIGHT_EXPECT)
    code, _, err = run("sample", spec, "-n", "4", "--seed", "0", capsys=capsys)
    assert code == 0 and "expect would reject" in err and "--expect" in err
    code, out, err = run("sample", spec, "-n", "0", "--json", capsys=capsys)
    assert code == 0 and json.loads(out)["samples"] == [] and "internal error" not in err


# ------------------------------------------------------------------ item 3: between outside the bounds
def test_between_outside_the_bounds_is_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A `between` interval wholly outside the physical bounds (amplitude in [0, 10]) is an error at the statement."""
    spec = _spec(tmp_path, SINUSOID + "prior amplitude between 20 and 30 with 90%\n")
    code, _, err = run("check", spec, capsys=capsys)
    assert code == 1
    assert f"{spec}:2:1: error: 20 .. 30 lies outside the physical bounds [0, 10] of `amplitude`" in err


def test_between_mostly_outside_the_bounds_is_a_warning(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """One more than half outside passes with a warning, in text and in JSON; one mostly inside has none."""
    spec = _spec(tmp_path, SINUSOID + "prior amplitude between 8 and 14 with 90%\n")
    code, out, err = run("check", spec, capsys=capsys)
    assert code == 0 and "2:1: warning: 8 .. 14 lies mostly outside" in err and f"{spec}: ok" in out
    code, out, _ = run("check", "--json", spec, capsys=capsys)
    (report,) = json.loads(out)["files"]
    assert code == 0 and report["ok"] and [d["severity"] for d in report["diagnostics"]] == ["warning"]
    inside = _spec(tmp_path, SINUSOID + "prior amplitude between 7 and 11 with 90%\n", "inside.guide")
    code, _, err = run("check", inside, capsys=capsys)
    assert code == 0 and "warning" not in err


# ------------------------------------------------------------------ item 4: non-finite numbers
@pytest.mark.parametrize("option", ["--inner-lr", "--outer-lr"])
@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
def test_train_refuses_non_finite_rates(option: str, value: str, tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    """`gmhf train` and `gmhf run` refuse a NaN or infinite learning rate as a usage error (exit 2)."""
    spec = _spec(tmp_path, SINUSOID)
    for command in ("train", "run"):
        code, _, err = run(command, spec, option, value, "--steps", "1", "--run", str(tmp_path / command),
                           capsys=capsys)
        assert code == 2 and "not a finite number" in err and option in err, (command, err)


def test_finite_float_keeps_its_bound() -> None:
    """FiniteFloat(min=0, min_open=True) refuses 0 and text, and passes a positive number through."""
    import click

    from gmhf.cli.common import FiniteFloat

    kind = FiniteFloat(min=0, min_open=True)
    assert kind.convert("0.5", None, None) == 0.5
    for bad in ("0", "-1", "abc"):
        with pytest.raises(click.BadParameter):
            kind.convert(bad, None, None)


def test_train_config_refuses_non_finite_learner_options() -> None:
    """TrainConfig.learner_options refuses a NaN or infinite number."""
    from pydantic import ValidationError

    from gmhf.core.trainer import TrainConfig

    for value in (math.nan, math.inf):
        with pytest.raises(ValidationError, match="learner option `inner_lr` must be a finite number"):
            TrainConfig(spec="domain sinusoid", learner_options={"inner_lr": value})
    assert TrainConfig(spec="domain sinusoid", learner_options={"inner_lr": 0.1}).learner_options == {"inner_lr": 0.1}


def test_shift_by_an_overflowing_amount_is_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`shift amplitude by *1e400` (inf in float64) is an error at the amount."""
    spec = _spec(tmp_path, SINUSOID + "shift amplitude by *1e400\n")
    code, _, err = run("check", spec, capsys=capsys)
    assert code == 1 and f"{spec}:2:21: error: the amount must be a finite number, got inf" in err


# ------------------------------------------------------------------ item 6: fmt and the disk
@pytest.mark.skipif(sys.platform == "win32", reason="POSIX permission bits")
def test_fmt_keeps_the_mode(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A reformatted file keeps its permission bits (0640 stays 0640, not mkstemp's 0600)."""
    spec = _spec(tmp_path, MESSY)
    os.chmod(spec, 0o640)
    assert run("fmt", spec, capsys=capsys)[0] == 0
    assert Path(spec).read_text() == CLEAN and stat.S_IMODE(os.stat(spec).st_mode) == 0o640


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX permission bits")
def test_fmt_refuses_a_read_only_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A read-only file that would change is refused (exit 2), left as it was with mode 0444, and no file is written."""
    first = _spec(tmp_path, MESSY, "a.guide")
    locked = _spec(tmp_path, MESSY, "b.guide")
    os.chmod(locked, 0o444)
    code, _, err = run("fmt", first, locked, capsys=capsys)
    assert code == 2 and "read-only" in err and "b.guide" in err
    assert Path(first).read_text() == MESSY and Path(locked).read_text() == MESSY
    assert stat.S_IMODE(os.stat(locked).st_mode) == 0o444
    assert run("fmt", "--check", locked, capsys=capsys)[0] == 1  # checking needs no write access


@pytest.mark.skipif(sys.platform == "win32", reason="symbolic links")
def test_fmt_formats_through_a_symlink(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """fmt on a link rewrites its target and leaves the link a link."""
    target = Path(_spec(tmp_path, MESSY, "target.guide"))
    link = tmp_path / "link.guide"
    link.symlink_to(target)
    assert run("fmt", str(link), capsys=capsys)[0] == 0
    assert link.is_symlink() and os.readlink(link) == str(target) and target.read_text() == CLEAN


def test_fmt_checks_every_argument_before_writing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`fmt a missing b` exits 2 naming the missing file and changes neither a nor b."""
    first, last = _spec(tmp_path, MESSY, "a.guide"), _spec(tmp_path, MESSY, "b.guide")
    code, _, err = run("fmt", first, str(tmp_path / "missing.guide"), last, capsys=capsys)
    assert code == 2 and "missing.guide: no such file" in err
    assert Path(first).read_text() == MESSY and Path(last).read_text() == MESSY


# ------------------------------------------------------------------ item 7: not UTF-8
LATIN1 = b"domain sinusoid\n\n# caf\xe9\nshift amplitude in 1 .. 2\n"
NOT_UTF8 = "not UTF-8 text (byte 0xE9 at line 3)"


@pytest.mark.parametrize("command", [("check",), ("fmt",), ("fmt", "--check"), ("explain",), ("sample", "-n", "2"),
                                     ("train", "--steps", "1"), ("run", "--steps", "1")])
def test_not_utf8_is_a_finding(command: tuple[str, ...], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A Latin-1 spec is exit 1 with `path:line:col: error: not UTF-8 text (byte 0xE9 at line 3)`, never exit 3."""
    spec = _spec(tmp_path, LATIN1)
    extra = ("--run", str(tmp_path / "out")) if command[0] in ("train", "run") else ()
    code, _, err = run(*command, spec, *extra, capsys=capsys)
    assert code == 1 and f"{spec}:3:6: error: {NOT_UTF8}" in err and "internal error" not in err, err


def test_not_utf8_check_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`check --json` on a binary file prints strict JSON with the diagnostic, beside the other files' reports."""
    good = _spec(tmp_path, CLEAN, "good.guide")
    binary = _spec(tmp_path, b"\x89PNG\r\n\x1a\n\x00\x00", "picture.guide")
    code, out, _ = run("check", "--json", good, binary, capsys=capsys)
    files = json.loads(out)["files"]
    assert code == 1 and files[0]["ok"] and not files[1]["ok"]
    assert files[1]["diagnostics"][0]["message"] == "not UTF-8 text (byte 0x89 at line 1)"


def test_load_not_utf8_is_a_spec_error(tmp_path: Path) -> None:
    """`gmhf.load` on a Latin-1 file raises SpecError at the bad byte."""
    import gmhf
    from gmhf.dsl.errors import SpecError

    spec = _spec(tmp_path, LATIN1)
    with pytest.raises(SpecError) as error:
        gmhf.load(Path(spec))
    assert (error.value.line, error.value.column) == (3, 6) and NOT_UTF8 in str(error.value)


def test_a_byte_order_mark_is_accepted(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A UTF-8 BOM is dropped: check passes, load works, fmt leaves nothing to change but the mark."""
    import gmhf

    spec = _spec(tmp_path, b"\xef\xbb\xbf" + CLEAN.encode())
    assert run("check", spec, capsys=capsys)[0] == 0
    assert gmhf.load(Path(spec)).checked.domain == "sinusoid"
    assert run("fmt", "--check", spec, capsys=capsys)[0] == 0


def test_use_of_a_file_that_is_not_utf8(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`use` of a Latin-1 file is an error at the `use` naming the byte; a used file's BOM is dropped."""
    main_spec = _spec(tmp_path, 'domain sinusoid\nuse "part.guide"\n', "main.guide")
    _spec(tmp_path, b"shift amplitude in 1 .. 2  # caf\xe9\n", "part.guide")
    code, _, err = run("check", main_spec, capsys=capsys)
    assert code == 1 and f'{main_spec}:2:1: error: `use "part.guide"`: not UTF-8 text (byte 0xE9 at line 1)' in err
    _spec(tmp_path, b"\xef\xbb\xbfshift amplitude in 1 .. 2\n", "part.guide")
    assert run("check", main_spec, capsys=capsys)[0] == 0
