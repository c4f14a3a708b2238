"""Issue 13, items 8–11: the Python API and the messages answer bad input clearly (each test failed before its fix)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

import gmhf
from gmhf.api import check_text, read_spec
from gmhf.core.trainer import TrainConfig
from gmhf.dsl.errors import SpecError
from gmhf.errors import GmhfError, UsageError
from gmhf.runner import resume_training, run_seeds, start_training

ROOT = Path(__file__).resolve().parent.parent
SINE = "domain sinusoid\nshift amplitude in 2 .. 4\n"


# ---------------------------------------------------------------- item 8: `with 1e-300%`
def test_a_vanishing_between_percentage_is_a_wide_normal_not_a_zero_division() -> None:
    """0.5 + 1e-300/200 rounds to 0.5; the series gives the z the percentage means."""
    checked = check_text("domain sinusoid\nprior amplitude between 2 and 3 with 1e-300%\n")
    mu, sigma = checked.factors["amplitude"].dist[1]
    assert mu == 2.5 and sigma > 1e299


def test_a_between_percentage_below_float64_is_a_spec_error() -> None:
    """1e-320% implies a normal wider than float64 holds: an error at the percentage."""
    with pytest.raises(SpecError, match="too small a share"):
        check_text("domain sinusoid\nprior amplitude between 2 and 3 with 1e-320%\n")


# ---------------------------------------------------------------- item 10: load's argument
@pytest.mark.parametrize(("value", "shown"), [(None, "NoneType"), (3, "int"), (3.5, "float")])
def test_load_refuses_a_value_that_is_neither_text_nor_path(value: object, shown: str) -> None:
    """`path_or_text` of another type is a UsageError naming the type, not a raw TypeError."""
    with pytest.raises(UsageError, match=f"must be a str, bytes or os.PathLike, got {shown}"):
        gmhf.load(value)  # type: ignore[arg-type]


def test_load_reads_utf8_bytes_as_spec_text_and_refuses_other_bytes() -> None:
    """Bytes are spec text in UTF-8."""
    assert gmhf.load(SINE.encode()).checked.domain == "sinusoid"
    with pytest.raises(UsageError, match="UTF-8"):
        gmhf.load(b"domain sinusoid\n# caf\xe9\n")


@pytest.mark.parametrize("path", [Path("examples"), "examples/specs"])
def test_load_of_a_directory_says_it_is_a_directory(path: str | Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A directory is not "missing"."""
    monkeypatch.chdir(ROOT)
    with pytest.raises(UsageError, match="names a directory, not a spec file"):
        gmhf.load(path)


def test_one_line_text_equal_to_a_file_name_is_text(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A str with whitespace (every statement has one) is spec text even where a file of that name exists."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "domain sinusoid").write_text("domain duffing\n", encoding="utf-8")
    assert gmhf.load("domain sinusoid").checked.domain == "sinusoid"
    (tmp_path / "myspec").write_text(SINE, encoding="utf-8")
    assert read_spec("myspec")[2] == Path("myspec")  # no whitespace: a file
    with pytest.raises(UsageError, match="does not exist"):
        gmhf.load("missing")


def test_scoring_refuses_a_theta_of_another_domain() -> None:
    """A Duffing θ against a sinusoid spec is refused, not scored −inf silently."""
    sine = gmhf.load(SINE)
    theta = gmhf.load("domain duffing").sample(3, seed=0)
    for method in (sine.log_prob, sine.accepts):
        with pytest.raises(UsageError, match="has the factors .*'delta'.* but this spec's domain 'sinusoid'"):
            method(theta)


def test_scoring_a_dict_missing_a_factor_names_it() -> None:
    """A dict without some factor is a UsageError naming it, not a bare KeyError."""
    sine = gmhf.load(SINE)
    with pytest.raises(UsageError, match="lacks the factor\\(s\\) 'phase', 'frequency', 'noise'"):
        sine.log_prob({"amplitude": torch.tensor([3.0])})


@pytest.mark.parametrize("seed", [1.5, "3", True])
def test_sampling_refuses_a_seed_that_is_not_an_int(seed: object) -> None:
    """The seed goes through `random_stream`: a clear UsageError."""
    with pytest.raises(UsageError, match="`seed` must be an int"):
        gmhf.load(SINE).sample(2, seed=seed)  # type: ignore[arg-type]


def test_a_run_seed_beyond_64_bits_is_a_seed() -> None:
    """`run_seeds` reads any int modulo 2^64 (torch's own rule for negatives), not an OverflowError."""
    assert run_seeds(2**70 + 5) == run_seeds(5)
    assert run_seeds(-1) == run_seeds(2**64 - 1)


# ---------------------------------------------------------------- item 11: resume after the spec is deleted
def test_resume_after_the_spec_file_was_deleted_says_so(tmp_path: Path) -> None:
    """The message names the spec file and says to restore it."""
    spec = tmp_path / "wave.guide"
    spec.write_text(SINE, encoding="utf-8")
    config = TrainConfig(spec=str(spec), steps=2, meta_batch=2, pool_size=8, eval_tasks=4, hidden=(8,))
    start_training(config, tmp_path / "run").trainer.run()
    os.remove(spec)
    with pytest.raises(GmhfError, match=f"the run's spec file '{spec}' is gone; restore it to resume"):
        resume_training(tmp_path / "run")


# ---------------------------------------------------------------- item 11: messages that say what happened
def _messages(text: str) -> list[str]:
    with pytest.raises(SpecError) as caught:
        check_text(text)
    return [d.message for d in caught.value.diagnostics]


def test_invariant_twice_says_declared_invariant_twice() -> None:
    """Not "both invariant and shifted": nothing is shifted."""
    assert _messages("domain sinusoid\ninvariant phase\ninvariant phase\n") == [
        "`phase` is declared invariant twice", "first declared invariant here"]


def test_use_of_a_directory_says_it_is_a_directory(tmp_path: Path) -> None:
    """`use "dir"` is not "no such file"."""
    (tmp_path / "parts").mkdir()
    spec = tmp_path / "a.guide"
    spec.write_text('domain sinusoid\nuse "parts"\n', encoding="utf-8")
    with pytest.raises(SpecError, match='`use "parts"`: a directory, not a spec file'):
        gmhf.load(spec)


def test_diagnostics_come_in_line_order() -> None:
    """A prior's finding (checked last) is listed at its own line, before later statements' findings."""
    text = ("domain sinusoid\nshift amplitude in 50 .. 60\nprior frequency ~ uniform(20, 30)\n"
            "shift nosuch in 1 .. 2\n")
    with pytest.raises(SpecError) as caught:
        check_text(text)
    lines = [d.line for d in caught.value.diagnostics]
    assert lines == sorted(lines) and set(lines) == {2, 3, 4}


@pytest.mark.parametrize(("text", "hint"), [
    ("prior amplitude ~ normal(100, 1)", "far outside the physical bounds [0, 10]; centre it inside them"),
    ("shift amplitude in 1 .. 2\nprior amplitude ~ normal(100, 1)", "far outside the shifted support"),
    ("require amplitude < 3\nprior amplitude ~ normal(100, 1)", "far outside the `require` bounds"),
])
def test_a_prior_with_no_mass_left_gets_the_hint_of_what_cut_it(text: str, hint: str) -> None:
    """The hint names the shift, the `require` or the physical bounds, whichever cut the prior away."""
    with pytest.raises(SpecError) as caught:
        gmhf.load(f"domain sinusoid\n{text}\n")
    assert all(hint in (d.hint or "") for d in caught.value.diagnostics)
    lines = [d.line for d in caught.value.diagnostics]
    assert lines == sorted(lines)


def test_a_damaged_checkpoint_warning_leaves_out_torchs_weights_only_advice(tmp_path: Path) -> None:
    """The warning says the file is damaged; it never suggests loading it with `weights_only=False`."""
    from gmhf.core.rundir import RunDirectory

    directory = RunDirectory(tmp_path)
    directory.checkpoints.mkdir()
    torch.save({"step": 10}, directory.checkpoints / "step-00000010.pt")
    good = (directory.checkpoints / "step-00000010.pt").read_bytes()
    (directory.checkpoints / "step-00000020.pt").write_bytes(good[: len(good) // 2])
    with pytest.warns(UserWarning) as caught:
        assert directory.load_latest() == {"step": 10}
    message = str(caught[0].message)
    assert "not a complete checkpoint archive" in message and "resuming from step 10" in message
    assert "weights_only" not in message and "miniz" not in message


def test_a_failed_draw_of_environments_says_it_in_words() -> None:
    """The counts per `expect` are a sentence, not a Python list of dicts."""
    from gmhf.core.environments import draw_from_spec

    guidance = gmhf.load("domain sinusoid\nexpect max(abs(y)) < 0.00001\n")
    with pytest.raises(GmhfError) as caught:
        draw_from_spec(guidance, 4, seed=0)
    message = str(caught.value)
    assert "the `expect` at <string>:2 rejected" in message
    assert "{" not in message and "[" not in message


@pytest.mark.parametrize(("text", "hint"), [
    ("shift amplitüde in 1 .. 2", "did you mean `amplitude`?"),
    ("shift amplitude in \u22121 .. 2", "did you mean `-`?"),
    ("require amplitude \u2264 3", "did you mean `<=`?"),
    ("shift amplitude in 1 \u2026 2", "did you mean `..`?"),
    ("require amplitude < 2 \u20ac 3", "euro sign is not part of the language"),
])
def test_a_non_ascii_typo_gets_its_ascii_form(text: str, hint: str) -> None:
    """Typographic look-alikes and accented names are answered with the ASCII the language reads."""
    with pytest.raises(SpecError) as caught:
        check_text(f"domain sinusoid\n{text}\n")
    assert hint in (caught.value.diagnostics[0].hint or "")


# ---------------------------------------------------------------- item 9: rare constraints and big draws
RARE = "domain sinusoid\nrequire amplitude + 10 * frequency > 16.9\n"  # about 2.5e-4 of draws


def test_a_result_too_big_for_memory_is_refused_before_drawing() -> None:
    """`sample(10**9)` names n × k × 8 bytes and the limit, instead of torch's raw RuntimeError."""
    with pytest.raises(UsageError, match=r"`n` = 1,000,000,000 environments of 4 factors need 29.8 GiB"):
        gmhf.load(SINE).sample(10**9)


def test_a_rare_require_warns_with_the_cost_and_names_the_statement(monkeypatch: pytest.MonkeyPatch) -> None:
    """A costly draw warns first (a GmhfWarning) with the statement, its acceptance and the candidates needed."""
    from gmhf.core import budget
    from gmhf.errors import GmhfWarning

    monkeypatch.setattr(budget, "WARN_CANDIDATES", 10**5)
    guidance = gmhf.load(RARE)
    with pytest.warns(GmhfWarning, match=r"`require amplitude \+ 10 \* frequency > 16.9` \(<string>:2\) accepts "
                                         r"about 0.01% of draws: 20 environments need about 200,000 candidates"):
        assert len(guidance.sample(20, seed=0)) == 20


def test_a_require_too_rare_for_the_budget_is_refused_at_once() -> None:
    """More than 10^9 candidates estimated: a GmhfError naming the statement and the acceptance."""
    with pytest.raises(GmhfError, match=r"`require amplitude \+ 10 \* frequency > 16.9` \(<string>:2\) accepts "
                                        r"about 0.01% of draws \(estimated by the probe\): 1,000,000 environments"):
        gmhf.load(RARE).sample(10**6)


def test_rejection_draws_in_bounded_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    """No round draws more than `CHUNK` candidates, whatever n / acceptance is; the draw is still exact in size."""
    import warnings

    from gmhf.core import budget

    monkeypatch.setattr(budget, "CHUNK", 50_000)
    guidance = gmhf.load(RARE)
    sizes: list[int] = []
    draw = guidance._draw
    monkeypatch.setattr(guidance, "_draw", lambda n, *a, **k: (sizes.append(n), draw(n, *a, **k))[1])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theta = guidance.sample(30, seed=1)
    assert len(theta) == 30 and bool(guidance.accepts(theta).all())
    assert max(sizes) <= 50_000 and len(sizes) > 2


def test_sample_json_streams_the_same_document(tmp_path: Path) -> None:
    """`gmhf sample --json` writes its records one by one; the document is the one `echo_json` would write."""
    import json

    from click.testing import CliRunner

    from gmhf.cli import cli
    from gmhf.cli.common import echo_json_stream

    spec = tmp_path / "a.guide"
    spec.write_text(SINE, encoding="utf-8")
    result = CliRunner().invoke(cli, ["sample", str(spec), "-n", "5000", "--seed", "0", "--json"])
    assert result.exit_code == 0, result.output
    document = json.loads(result.output)
    expected = gmhf.load(spec).sample(5000, seed=0).to_records()
    assert document["samples"] == expected and document["domain"] == "sinusoid"
    assert callable(echo_json_stream)


def test_theta_records_are_built_a_block_at_a_time() -> None:
    """`Theta.records()` reads like `to_records()` without holding every dict at once."""
    theta = gmhf.load(SINE).sample(10_000, seed=0)
    records = theta.records()
    assert len(records) == 10_000 and records[9_999] == theta.to_records()[9_999]
    assert list(records) == theta.to_records()


def test_explain_shows_a_rare_acceptance_with_its_digits(tmp_path: Path) -> None:
    """"0.01% of probe draws accepted", not "0.0%"."""
    import warnings

    from click.testing import CliRunner

    from gmhf.cli import cli

    spec = tmp_path / "r.guide"
    spec.write_text(RARE, encoding="utf-8")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = CliRunner().invoke(cli, ["explain", str(spec)])
    assert "0.01% of probe draws accepted" in result.output and "0.0%" not in result.output


def test_the_cli_prints_gmhf_warnings_as_warning_lines() -> None:
    """A GmhfWarning reaches stderr as `warning: …`, not as Python's file:line format."""
    import subprocess
    import sys

    code = ("import warnings, sys; from gmhf.cli import _show_warning; from gmhf.errors import GmhfWarning; "
            "warnings.showwarning = _show_warning; warnings.warn('slow', GmhfWarning)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stderr == "warning: slow\n"


@pytest.mark.parametrize("command", ["explain", "sample"])
def test_the_cli_reads_a_spec_argument_as_a_file_whatever_its_name(tmp_path: Path, command: str,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """A SPEC named (relatively) with a space and no `.guide` is still the file, never spec text."""
    from click.testing import CliRunner

    from gmhf.cli import cli

    monkeypatch.chdir(tmp_path)
    Path("my spec").write_text(SINE, encoding="utf-8")
    result = CliRunner().invoke(cli, [command, "my spec"])
    assert result.exit_code == 0, result.output
