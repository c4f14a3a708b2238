"""Every bad input a hostile tester tried (issue 13) gets a clear answer from the command line.

One table, one row per input mistake: the files to lay out, the command, the environment, the
exit code and a message that names the problem. Every row is also checked for what must never
happen: an "internal error", a traceback, or (with `--json`) a document that is not strict JSON.
The commands run as real processes (`python -m gmhf`), several at once so the table stays fast;
training rows use tiny settings and stop at the input check.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SPECS = ROOT / "examples" / "specs"
SINE = str(SPECS / "sinusoid.guide")  # has an `expect`
DUFFING = str(SPECS / "duffing.guide")  # its domain ships a benchmark truth
TINY = ("--steps", "1", "--meta-batch", "1", "--pool-size", "8", "--hidden", "4")
DIR = object()  #: a `files` value: make a directory there
GOOD = "domain sinusoid\nshift amplitude in 1 .. 2\n"
MESSY = "domain   sinusoid\nshift amplitude in 1..2\n"  # `fmt` would rewrite it
#: A `gmhf train` run's saved settings, as `config.json` holds them under "gmhf_config".
RUN_CONFIG = {"spec": SINE, "steps": 1, "meta_batch": 1, "pool_size": 8, "hidden": [4], "learner": "maml", "seed": 0}
DEEP = 500  # deep enough to overflow Python's recursion limit in a naive recursive walk
DEEP_ERROR = r"deep\.guide:2:1: error: expression nested too deeply"


@dataclass(frozen=True)
class Link:
    """A `files` value: a symbolic link to `target`."""

    target: str


@dataclass(frozen=True)
class Fifo:
    """A `files` value: a named pipe (reading it would block; gmhf must not try)."""


@dataclass(frozen=True)
class Row:
    """One bad input: lay out `files`, run `gmhf *argv` there, expect `code` and `message`."""

    id: str
    argv: tuple[str, ...]
    code: int
    message: str  #: a regex searched in stdout and stderr together, case-insensitive
    files: dict[str, object] = field(default_factory=dict)  #: path -> str, bytes, DIR or Link
    env: dict[str, str] = field(default_factory=dict)
    stdin: bytes = b""
    unchanged: tuple[str, ...] = ()  #: files that must keep their bytes


def spec(*lines: str) -> str:
    return "\n".join(lines) + "\n"


ROWS = [
    # ---- 7: files that are not UTF-8, and a byte-order mark
    Row("latin1-check", ("check", "latin1.guide"), 1, r"latin1\.guide.*UTF-8",
        files={"latin1.guide": b"domain sinusoid  # caf\xe9\nshift amplitude in 1 .. 2\n"}),
    Row("latin1-check-json", ("check", "--json", "latin1.guide"), 1, r"UTF-8",
        files={"latin1.guide": b"domain sinusoid  # caf\xe9\n"}),
    Row("binary-check", ("check", "blob.guide"), 1, r"blob\.guide.*(UTF-8|binary)",
        files={"blob.guide": b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe\x00"}),
    Row("latin1-sample", ("sample", "-n", "1", "latin1.guide"), 1, r"latin1\.guide.*UTF-8",
        files={"latin1.guide": b"domain sinusoid  # caf\xe9\n"}),
    Row("latin1-fmt", ("fmt", "latin1.guide"), 1, r"latin1\.guide.*UTF-8",
        files={"latin1.guide": b"domain   sinusoid  # caf\xe9\n"}, unchanged=("latin1.guide",)),
    Row("latin1-fmt-stdin", ("fmt", "-"), 1, r"UTF-8", stdin=b"domain sinusoid  # caf\xe9\n"),
    Row("latin1-through-use", ("check", "main.guide"), 1, r"latin1\.guide.*UTF-8",
        files={"main.guide": 'domain sinusoid\nuse "latin1.guide"\n',
               "latin1.guide": b"shift amplitude in 1 .. 2  # caf\xe9\n"}),
    Row("bom-check", ("check", "bom.guide"), 0, r"bom\.guide: ok",
        files={"bom.guide": b"\xef\xbb\xbf" + GOOD.encode()}),
    # ---- 8: expressions too deep for a recursive walk, a zero mass, bad environment
    Row("require-500-terms", ("check", "deep.guide"), 1, DEEP_ERROR,
        files={"deep.guide": spec("domain sinusoid", "require " + " + ".join(["amplitude"] * DEEP) + " < 1e9")}),
    Row("require-500-minus", ("check", "deep.guide"), 1, DEEP_ERROR,
        files={"deep.guide": spec("domain sinusoid", "require " + "-" * DEEP + "amplitude < 3")}),
    Row("require-500-not", ("check", "deep.guide"), 1, DEEP_ERROR,
        files={"deep.guide": spec("domain sinusoid", "require " + "not " * DEEP + "amplitude < 3")}),
    Row("require-500-caret", ("check", "deep.guide"), 1, DEEP_ERROR,
        files={"deep.guide": spec("domain sinusoid", "require amplitude" + " ^ 1" * DEEP + " < 3")}),
    Row("require-500-terms-sample", ("sample", "-n", "1", "deep.guide"), 1, DEEP_ERROR,
        files={"deep.guide": spec("domain sinusoid", "require " + " + ".join(["amplitude"] * DEEP) + " < 1e9")}),
    Row("require-500-minus-fmt", ("fmt", "--check", "deep.guide"), 1, DEEP_ERROR,
        files={"deep.guide": spec("domain sinusoid", "require " + "-" * DEEP + "amplitude < 3")}),
    Row("expect-500-terms", ("check", "deep.guide"), 1, DEEP_ERROR,
        files={"deep.guide": spec("domain sinusoid", "expect " + " + ".join(["max(y)"] * DEEP) + " < 1e9")}),
    Row("prior-argument-500-minus", ("check", "deep.guide"), 1, DEEP_ERROR,
        files={"deep.guide": spec("domain sinusoid", "prior amplitude ~ normal(" + "-" * DEEP + "5, 1)")}),
    Row("require-500-parens", ("sample", "-n", "1", "--seed", "0", "deep.guide"), 0, r"amplitude",
        files={"deep.guide": spec("domain sinusoid", "require " + "(" * DEEP + "amplitude" + ")" * DEEP + " < 3")}),
    Row("with-1e-300-percent-check", ("check", "tiny.guide"), 0, r"tiny\.guide: ok",
        files={"tiny.guide": spec("domain sinusoid", "prior noise between 0.1 and 0.3 with 1e-300%")}),
    Row("with-1e-300-percent-sample", ("sample", "-n", "1", "--seed", "0", "tiny.guide"), 0, r"noise",
        files={"tiny.guide": spec("domain sinusoid", "prior noise between 0.1 and 0.3 with 1e-300%")}),
    Row("with-1e-320-percent", ("check", "tiny.guide"), 1, r"tiny\.guide:2:.*too small a share",
        files={"tiny.guide": spec("domain sinusoid", "prior noise between 0.1 and 0.3 with 1e-320%")}),
    Row("with-0-percent", ("check", "zero.guide"), 1, r"zero\.guide:2:.*(%|percent|mass)",
        files={"zero.guide": spec("domain sinusoid", "prior noise between 0.1 and 0.3 with 0%")}),
    Row("with-100-percent", ("check", "full.guide"), 1, r"full\.guide:2:.*(%|percent|mass)",
        files={"full.guide": spec("domain sinusoid", "prior noise between 0.1 and 0.3 with 100%")}),
    Row("threads-abc", ("sample", "-n", "1", SINE), 2, r"GMHF_THREADS.*'abc'", env={"GMHF_THREADS": "abc"}),
    Row("threads-0", ("sample", "-n", "1", SINE), 2, r"GMHF_THREADS.*'0'", env={"GMHF_THREADS": "0"}),
    Row("threads-100000", ("sample", "-n", "1", SINE), 2, r"GMHF_THREADS.*'100000'",
        env={"GMHF_THREADS": "100000"}),
    Row("threads-train", ("train", SINE, *TINY, "--run", "r"), 2, r"GMHF_THREADS", env={"GMHF_THREADS": "abc"}),
    Row("resume-corrupt-config", ("train", "--resume", "--run", "r"), 1, r"config\.json",
        files={"r/config.json": "{not json"}),
    Row("resume-config-binary", ("train", "--resume", "--run", "r"), 1, r"config\.json",
        files={"r/config.json": b"\x00\xff\xfe"}),
    Row("resume-spec-gone", ("train", "--resume", "--run", "r"), 1, r"^(?!.*path_or_text).*gone\.guide",
        files={"r/config.json": json.dumps({"gmhf_config": {**RUN_CONFIG, "spec": "/nonexistent-gmhf/gone.guide"}})}),
    Row("resume-config-bad-value", ("train", "--resume", "--run", "r"), 1, r"config\.json.*steps",
        files={"r/config.json": json.dumps({"gmhf_config": {**RUN_CONFIG, "steps": "many"}})}),
    Row("run-resume-corrupt-config", ("run", "--resume", "--run", "r"), 1, r"config\.json",
        files={"r/config.json": "{not json"}),
    Row("disable-builtin-check", ("check", SINE), 2, r"builtin", env={"GMHF_DISABLE_PLUGINS": "builtin"}),
    # ---- 4: non-finite numbers
    Row("inner-lr-nan", ("train", SINE, *TINY, "--run", "r", "--inner-lr", "nan"), 2, r"--inner-lr.*finite"),
    Row("outer-lr-inf", ("train", SINE, *TINY, "--run", "r", "--outer-lr", "inf"), 2, r"--outer-lr.*finite"),
    Row("outer-lr-nan", ("train", SINE, *TINY, "--run", "r", "--outer-lr", "nan"), 2, r"--outer-lr.*finite"),
    Row("run-inner-lr-inf", ("run", DUFFING, *TINY, "--rounds", "1", "--run", "r", "--inner-lr", "inf"), 2,
        r"--inner-lr.*finite"),
    Row("shift-by-1e400", ("check", "big.guide"), 1, r"big\.guide:2:.*(finite|large|1e400)",
        files={"big.guide": spec("domain sinusoid", "shift amplitude by *1e400")}),
    Row("shift-by-plus-1e400", ("check", "big.guide"), 1, r"big\.guide:2:.*(finite|large|1e400)",
        files={"big.guide": spec("domain sinusoid", "shift amplitude by +1e400")}),
    Row("shift-in-1e400", ("check", "big.guide"), 1, r"big\.guide:2:",
        files={"big.guide": spec("domain sinusoid", "shift amplitude in 1 .. 1e400")}),
    Row("trust-1e400", ("check", "big.guide"), 1, r"big\.guide:2:.*trust",
        files={"big.guide": spec("domain sinusoid", "trust 1e400")}),
    # ---- 3: a belief in the wrong units
    Row("prior-between-outside-bounds", ("check", "units.guide"), 1, r"units\.guide:2:.*(bound|outside)",
        files={"units.guide": spec("domain sinusoid", "prior amplitude between 20 and 30 with 90%")}),
    Row("shift-in-outside-bounds", ("check", "units.guide"), 1, r"units\.guide:2:",
        files={"units.guide": spec("domain sinusoid", "shift amplitude in 20 .. 30")}),
    # ---- 11 and 6: directories, missing files among several
    Row("fmt-directory", ("fmt", "sub"), 2, r"sub.*directory", files={"sub": DIR}),
    Row("check-directory", ("check", "sub"), 1, r"sub: error: a directory", files={"sub": DIR}),
    Row("sample-directory", ("sample", "sub"), 2, r"sub.*directory", files={"sub": DIR}),
    Row("use-directory", ("check", "main.guide"), 1, r"main\.guide:2:.*directory",
        files={"main.guide": spec("domain sinusoid", 'use "sub"'), "sub": DIR}),
    Row("use-missing", ("check", "main.guide"), 1, r"main\.guide:2:.*nope\.guide",
        files={"main.guide": spec("domain sinusoid", 'use "nope.guide"')}),
    Row("use-cycle", ("check", "a.guide"), 1, r"cycle|itself|circular",
        files={"a.guide": spec("domain sinusoid", 'use "b.guide"'), "b.guide": spec('use "a.guide"')}),
    Row("fmt-missing-among-several", ("fmt", "a.guide", "missing.guide", "b.guide"), 2, r"missing\.guide",
        files={"a.guide": MESSY, "b.guide": MESSY}, unchanged=("a.guide", "b.guide")),
    Row("check-missing-among-several", ("check", "a.guide", "missing.guide", "b.guide"), 1,
        r"(?=.*a\.guide: ok)(?=.*b\.guide: ok).*missing\.guide: error: no such file",
        files={"a.guide": GOOD, "b.guide": GOOD}),
    # ---- 2: -n 0 with an `expect`
    Row("sample-n0-expect-json", ("sample", "-n", "0", "--json", SINE), 0, r'"samples": \[\]'),
    Row("sample-n-1e9", ("sample", "-n", "1000000000", SINE), 2, r"GiB.*batches"),
    Row("sample-n-negative", ("sample", "-n", "-1", SINE), 2, r"-n"),
    # ---- run, domains, view
    Row("run-unknown-expert", ("run", DUFFING, "--expert", "nosuch", *TINY, "--rounds", "1", "--run", "r"), 2,
        r"nosuch"),
    Row("run-expert-reliability-above-1", ("run", DUFFING, "--expert", "simulated:2", *TINY, "--run", "r"), 2,
        r"\[0, 1\].*'2'"),
    Row("run-resume-missing", ("run", "--resume", "--run", "nosuch"), 1, r"nosuch"),
    Row("train-resume-missing", ("train", "--resume", "--run", "nosuch"), 1, r"nosuch"),
    Row("train-resume-without-run", ("train", "--resume"), 2, r"--run"),
    Row("train-without-spec", ("train", *TINY), 2, r"SPEC|spec"),
    Row("domains-nosuch", ("domains", "nosuch"), 2, r"nosuch"),
    Row("domains-nosuch-did-you-mean", ("domains", "sinusiod"), 2, r"sinusoid"),
    Row("explain-two-domains", ("explain", SINE, DUFFING), 2, r"different domains"),
    Row("explain-second-spec-bad", ("explain", SINE, "bad.guide"), 1, r"bad\.guide:2:.*amplitud",
        files={"bad.guide": spec("domain sinusoid", "shift amplitud in 1 .. 2")}),
    Row("explain-specs-of-two-domains", ("explain", SINE, DUFFING, SINE), 2, r"domain"),
    Row("view-n-too-many", ("view", SINE, "-n", "1001"), 2, r"-n"),
    Row("view-bad-spec", ("view", "bad.guide", "-n", "1", "--out", "pics"), 1, r"bad\.guide:2:.*amplitud",
        files={"bad.guide": spec("domain sinusoid", "shift amplitud in 1 .. 2")}),
    Row("view-missing-spec", ("view", "missing.guide"), 2, r"missing\.guide"),
    # ---- training options, domains, and other mistakes
    Row("unknown-learner", ("train", SINE, *TINY, "--run", "r", "--learner", "nosuch"), 2, r"nosuch"),
    Row("hidden-0", ("train", SINE, "--steps", "1", "--meta-batch", "1", "--pool-size", "8", "--run", "r",
                     "--hidden", "0"), 2, r"--hidden"),
    Row("hidden-empty-layer", ("train", SINE, "--steps", "1", "--meta-batch", "1", "--pool-size", "8",
                               "--run", "r", "--hidden", "40,,40"), 2, r"--hidden.*'40,,40'"),
    Row("unknown-domain", ("check", "nodomain.guide"), 1, r"nodomain\.guide:1:.*nosuch",
        files={"nodomain.guide": spec("domain nosuch")}),
    Row("check-unknown-domain-option", ("check", "--domain", "nosuch", "nodomain.guide"), 1, r"nosuch",
        files={"nodomain.guide": spec("shift amplitude in 1 .. 2")}),
    Row("empty-spec", ("check", "empty.guide"), 1, r"empty\.guide.*domain", files={"empty.guide": ""}),
    Row("impossible-require", ("sample", "-n", "1", "no.guide"), 1, r"no\.guide:2:",
        files={"no.guide": spec("domain sinusoid", "require amplitude > 100")}),
    Row("truth-bad-spec", ("train", SINE, *TINY, "--run", "r", "--truth", "bad.guide"), 1, r"bad\.guide:2:",
        files={"bad.guide": spec("domain sinusoid", "shift amplitud in 1 .. 2")}),
    Row("run-dir-is-a-file", ("train", SINE, *TINY, "--run", "taken"), 2, r"taken", files={"taken": "x"}),
    Row("unknown-command", ("nosuch",), 2, r"nosuch"),
    # ---- 3 and 11: a warning, not an error; look-alike characters; a statement twice
    Row("prior-between-mostly-outside", ("check", "units.guide"), 0,
        r"units\.guide:2:1: warning: .*mostly outside",
        files={"units.guide": spec("domain sinusoid", "prior amplitude between 5 and 30 with 90%")}),
    Row("crlf-line-ends", ("check", "crlf.guide"), 0, r"crlf\.guide: ok",
        files={"crlf.guide": GOOD.replace("\n", "\r\n")}),
    Row("nul-byte", ("check", "nul.guide"), 1, r"nul\.guide:1:.*unexpected character",
        files={"nul.guide": b"domain sinusoid\x00\n"}),
    Row("non-ascii-name", ("check", "u.guide"), 1, r"u\.guide:2:.*did you mean `amplitude`",
        files={"u.guide": spec("domain sinusoid", "shift amplitüde in 1 .. 2")}),
    Row("non-ascii-ellipsis", ("check", "u.guide"), 1, r"u\.guide:2:.*did you mean `\.\.`",
        files={"u.guide": spec("domain sinusoid", "shift amplitude in 1 … 2")}),
    Row("non-ascii-less-equal", ("check", "u.guide"), 1, r"u\.guide:2:.*did you mean `<=`",
        files={"u.guide": spec("domain sinusoid", "require amplitude ≤ 3")}),
    Row("non-ascii-minus", ("check", "u.guide"), 1, r"u\.guide:2:.*did you mean `-`",
        files={"u.guide": spec("domain sinusoid", "require amplitude > −1")}),
    Row("invariant-twice", ("check", "inv.guide"), 1, r"inv\.guide:3:.*invariant twice",
        files={"inv.guide": spec("domain sinusoid", "invariant phase", "invariant phase")}),
    Row("fmt-dangling-symlink", ("fmt", "link.guide"), 2, r"link\.guide", files={"link.guide": Link("gone.guide")}),
    # ---- options that do not fit the spec, the run or the machine
    Row("sample-unknown-domain-option", ("sample", "-n", "1", "--domain", "nosuch", "nodomain.guide"), 1,
        r"unknown domain `nosuch`", files={"nodomain.guide": spec("shift amplitude in 1 .. 2")}),
    Row("truth-other-domain", ("train", SINE, *TINY, "--run", "r", "--truth", DUFFING), 2, r"truth.*domain"),
    Row("run-terminal-expert-without-terminal",
        ("run", DUFFING, "--expert", "terminal", *TINY, "--rounds", "1", "--run", "r"), 2, r"terminal"),
    Row("run-expert-unsure-above-1",
        ("run", DUFFING, "--expert", "simulated:0.9,unsure=2", *TINY, "--rounds", "1", "--run", "r"), 2, r"unsure"),
    Row("run-dir-holds-a-run", ("train", SINE, *TINY, "--run", "r"), 2, r"already holds a run",
        files={"r/config.json": "{}"}),
    Row("resume-empty-dir", ("train", "--resume", "--run", "r"), 1, r"r holds no run", files={"r": DIR}),
    Row("tasks-per-chunk-0", ("train", SINE, *TINY, "--run", "r", "--tasks-per-chunk", "0"), 2,
        r"--tasks-per-chunk"),
    Row("strict-plugins-abc", ("check", SINE), 2, r"GMHF_STRICT_PLUGINS.*'abc'", env={"GMHF_STRICT_PLUGINS": "abc"}),
    Row("disable-builtin-plugins", ("plugins",), 2, r"builtin", env={"GMHF_DISABLE_PLUGINS": "builtin"}),
    Row("view-n-negative", ("view", SINE, "-n", "-1"), 2, r"-n"),
    Row("view-out-is-a-file", ("view", SINE, "-n", "1", "--out", "afile"), 2, r"afile", files={"afile": "x"}),
    Row("seed-fraction", ("sample", "-n", "2", "--seed", "1.5", SINE), 2, r"--seed"),
    # ---- --json stays strict JSON; seeds of any size
    Row("check-json-missing-and-directory", ("check", "--json", "missing.guide", "sub", SINE), 1,
        r'"no such file.*missing\.guide".*"sub".*directory', files={"sub": DIR}),
    Row("domains-json-strict", ("domains", "duffing", "--json"), 0, r'"factors"'),
    Row("explain-json-strict", ("explain", "--json", SINE), 0, r'"factors"'),
    Row("seed-2-to-the-64", ("sample", "-n", "2", "--seed", "18446744073709551616", SINE), 0, r"amplitude"),
    Row("seed-negative", ("sample", "-n", "2", "--seed", "-1", SINE), 0, r"amplitude"),
    Row("seed-not-a-number", ("sample", "-n", "2", "--seed", "abc", SINE), 2, r"--seed"),
    Row("check-fifo", ("check", "pipe.guide"), 1, r"pipe\.guide.*not a regular file", files={"pipe.guide": Fifo()}),
    Row("fmt-fifo", ("fmt", "pipe.guide"), 2, r"pipe\.guide.*not a regular file", files={"pipe.guide": Fifo()}),
    Row("use-fifo", ("check", "main.guide"), 1, r'use "pipe\.guide"`: not a regular file',
        files={"pipe.guide": Fifo(), "main.guide": spec("domain sinusoid", 'use "pipe.guide"')}),
    Row("hidden-a-billion", ("train", SINE, "--hidden", "1000000000", "--run", "r"), 2, r"--hidden.*at most"),
    Row("check-device", ("check", "/dev/zero"), 1, r"/dev/zero.*not a regular file"),
    Row("use-chain-1000-files", ("check", "c0.guide"), 1, r"`use` chain too deep",
        files={f"c{i}.guide": (f'use "c{i + 1}.guide"\n' if i < 999 else "domain sinusoid\n") for i in range(1000)}),
]


def lay_out(row: Row, where: Path) -> None:
    for name, content in row.files.items():
        path = where / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if content is DIR:
            path.mkdir()
        elif isinstance(content, Link):
            path.symlink_to(content.target)
        elif isinstance(content, Fifo):
            os.mkfifo(path)
        elif isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(str(content), encoding="utf-8")


def environment(row: Row) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("GMHF_")}
    env.update(CI="1", GMHF_THREADS="1", GMHF_LOAD_PLUGINS="", PYTHONPATH=str(ROOT))
    env.update(row.env)
    return env


@dataclass
class Outcome:
    code: int
    out: str
    err: str
    before: dict[str, bytes]
    after: dict[str, bytes]


def execute(row: Row, where: Path) -> Outcome:
    where.mkdir()
    lay_out(row, where)
    before = {name: (where / name).read_bytes() for name in row.unchanged}
    done = subprocess.run([sys.executable, "-m", "gmhf", *row.argv], cwd=where, env=environment(row),
                          input=row.stdin, capture_output=True, timeout=120)
    after = {name: (where / name).read_bytes() for name in row.unchanged}
    return Outcome(done.returncode, done.stdout.decode("utf-8", "replace"), done.stderr.decode("utf-8", "replace"),
                   before, after)


@pytest.fixture(scope="module")
def outcomes(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Outcome]:
    """The selected rows, each run once, a few at a time (most of each process's time is importing torch)."""
    selected = {item.callspec.id for item in request.session.items
                if getattr(item, "originalname", "") == "test_bad_input" and item.module.__name__ == __name__}
    base = tmp_path_factory.mktemp("bad-inputs")
    with ThreadPoolExecutor(max_workers=2 * (os.cpu_count() or 1)) as pool:
        futures = {row.id: pool.submit(execute, row, base / row.id) for row in ROWS if row.id in selected}
        return {key: future.result() for key, future in futures.items()}


def refuse(constant: str) -> None:
    raise ValueError(f"{constant} is not JSON")


def test_row_ids_are_unique() -> None:
    """Each row has its own id (its folder and its name in the report)."""
    assert len({row.id for row in ROWS}) == len(ROWS)


@pytest.mark.parametrize("row", ROWS, ids=[row.id for row in ROWS])
def test_bad_input(row: Row, outcomes: dict[str, Outcome]) -> None:
    """A bad input gets its exit code and a message naming the problem; never an internal error or a traceback."""
    got = outcomes[row.id]
    both = got.out + got.err
    shown = f"exit {got.code}\n--- stdout\n{got.out[-2000:]}\n--- stderr\n{got.err[-2000:]}"
    assert "internal error" not in both.lower(), shown
    assert "Traceback" not in both, shown
    assert got.code == row.code, shown
    if "--json" in row.argv:  # the document on stdout must say it, and be strict JSON
        json.loads(got.out, parse_constant=refuse)
    said = got.out if "--json" in row.argv else both
    assert re.search(row.message, said, re.IGNORECASE | re.DOTALL), f"no /{row.message}/ in\n{shown}"
    assert got.after == got.before, f"{row.unchanged} changed"
