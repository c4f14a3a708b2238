"""The terminal expert: one key per question, through a real pseudo-terminal."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import pytest

from gmhf.core.experts import Expert, ExpertContext
from gmhf.errors import UsageError
from gmhf.experts.terminal import TerminalExpert, inline_image
from tests.terminal_driver import PNG, answers, main, press, spawn_driver

pytest.importorskip("pexpect")
DRIVER = Path(__file__).with_name("terminal_driver.py")


def test_keys_answer_and_an_unknown_key_reprompts(tmp_path: Path) -> None:
    """a, r, u answer in order; another key re-prompts with the reminder; each answer is confirmed."""
    child = spawn_driver(tmp_path)
    child.expect(r"question 1/3 \(round 2, r002-00\)")
    press(child, "a")
    child.expect("-> accept")
    press(child, "x")
    child.expect(r"press a \(accept\), r \(reject\), u \(unsure\) or q \(stop\) ")
    press(child, "r")
    assert child.after == "(got 'x') > "
    child.expect("-> reject")
    child.expect(r"question 3/3 \(round 2, r002-02\)")
    press(child, "U")
    child.expect("-> unsure")
    assert answers(child) == ["accept", "reject", "unsure"]
    assert child.exitstatus == 0


def test_pictures_are_saved_and_their_paths_printed(tmp_path: Path) -> None:
    """Each question's view lands in PICTURES/<sample_id>.png and its full path is printed; θ is hidden."""
    pictures = tmp_path / "pictures"  # created by the expert
    child = spawn_driver(pictures)
    for i, key in enumerate("aaa"):
        path = pictures / f"r002-0{i}.png"
        child.expect_exact(f"picture: {path.resolve()}")
        assert path.read_bytes() == PNG
        press(child, key)
    assert answers(child) == ["accept"] * 3
    assert "theta" not in child.before and "delta" not in child.before


@pytest.mark.parametrize("key", ["q", "\x03", "\x04"], ids=["q", "ctrl-c", "ctrl-d"])
def test_stopping_keeps_the_answers_given(tmp_path: Path, key: str) -> None:
    """q, Ctrl-C and end of input stop the expert; the answers given so far are returned, the rest unasked."""
    child = spawn_driver(tmp_path)
    press(child, "r")
    press(child, key)
    child.expect(r"-> stop \(1 of 3 answered\)")
    assert answers(child) == ["reject"]
    assert child.exitstatus == 0
    assert not (tmp_path / "r002-02.png").exists()


def test_theta_is_shown_when_asked(tmp_path: Path) -> None:
    """With show_theta the record is printed next to the picture."""
    child = spawn_driver(tmp_path, "--show-theta")
    child.expect_exact("theta: delta=0.5, weather=rain")
    press(child, "q")
    assert answers(child) == []


@pytest.mark.parametrize(("env", "escape"), [({"TERM_PROGRAM": "iTerm.app"}, "\x1b]1337;File="),
                                             ({"KITTY_WINDOW_ID": "1"}, "\x1b_Ga=T,f=100,q=2,m=0;")])
def test_capable_terminals_get_the_picture_inline(tmp_path: Path, env: dict[str, str], escape: str) -> None:
    """iTerm2 gets its OSC 1337 escape, kitty its graphics escape, before the prompt."""
    child = spawn_driver(tmp_path, env=env)
    child.expect_exact(escape)
    press(child, "q")
    assert answers(child) == []


def test_a_pipe_on_stdin_is_a_clear_error_not_a_hang(tmp_path: Path) -> None:
    """Without a terminal, ask raises a UsageError at once (the driver prints it and exits 2)."""
    done = subprocess.run([sys.executable, str(DRIVER), str(tmp_path)], input="a\n", capture_output=True, text=True,
                          timeout=10)
    assert done.returncode == 2
    assert "the terminal expert needs an interactive terminal" in done.stderr
    assert done.stdout == ""


def test_ask_refuses_a_stream_that_is_not_a_terminal(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """In-process: stdin a StringIO -> UsageError; no questions -> no answers, no terminal needed."""
    expert = TerminalExpert(tmp_path)
    monkeypatch.setattr(sys, "stdin", io.StringIO("a"))
    assert expert.ask([]) == []
    assert main([str(tmp_path)]) == 2  # the driver's three questions: refused before the first is shown
    assert not list(tmp_path.iterdir())


def test_create_reads_an_optional_reliability(tmp_path: Path) -> None:
    """`terminal` states no reliability, `terminal:0.9` states 0.9; the context gives pictures and show_theta."""
    context = ExpertContext(truth=None, pictures=tmp_path, show_theta=True)
    plain = TerminalExpert.create("", context)
    assert (plain.name, plain.reliability, plain.pictures, plain.show_theta) == ("terminal", None, tmp_path, True)
    stated = TerminalExpert.create("0.9", context)
    assert (stated.name, stated.reliability) == ("terminal:0.9", 0.9)
    assert isinstance(stated, Expert)


@pytest.mark.parametrize(("argument", "message"), [
    ("speed=2", "unknown expert option 'speed'; expected reliability."),
    ("0", "expert option `reliability` must be a number in (0, 1], got '0'."),
    ("high", "expert option `reliability` must be a number in (0, 1], got 'high'."),
])
def test_create_rejects_bad_arguments(argument: str, message: str) -> None:
    """Unknown options and reliabilities outside (0, 1] are usage errors that say what was expected."""
    with pytest.raises(UsageError) as caught:
        TerminalExpert.create(argument, ExpertContext(truth=None))
    assert str(caught.value) == message


def test_inline_image_needs_a_capable_terminal() -> None:
    """Plain terminals get no escape; kitty's payload is cut into chunks of 4096, all but the last with m=1."""
    assert inline_image(PNG, "x.png", {"TERM": "xterm-256color"}) == ""
    assert inline_image(PNG, "x.png", {"TERM_PROGRAM": "WezTerm"}).startswith("\x1b]1337;File=name=")
    big = inline_image(bytes(7000), "x.png", {"TERM": "xterm-kitty"})
    assert big.count("\x1b_G") == 3
    assert big.startswith("\x1b_Ga=T,f=100,q=2,m=1;") and "\x1b_Gm=1;" in big and "\x1b_Gm=0;" in big


def test_repr() -> None:
    """The repr shows only what differs from the defaults."""
    assert repr(TerminalExpert(Path("pics"))) == "TerminalExpert(pictures='pics')"
    assert repr(TerminalExpert(Path("p"), reliability=0.8, show_theta=True)) == \
        "TerminalExpert(pictures='p', reliability=0.8, show_theta=True)"
