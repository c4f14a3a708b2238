"""Drive the terminal expert through a pseudo-terminal, as a person would.

Run as a script, this builds a `TerminalExpert` on PICTURES, asks N questions (each view is a
1x1 PNG) and prints the answers as `answers: [...]` (JSON) on stdout. Imported, it offers
`spawn_driver` to start it in a pty and `press` to answer one prompt; `press` fits any pexpect
child that runs the terminal expert (a `gmhf run --expert terminal` too).
"""

from __future__ import annotations

import base64
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pexpect

#: A valid 1x1 grey PNG: what every question's view returns.
PNG = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAAAAAA6fptVAAAACklEQVR4nGNoAAAAggCBd81ytgAAAABJRU5ErkJggg==")
PROMPT = r"\[q\]uit > |\(got .*\) > "  # the prompt, or the reminder after an unknown key


def spawn_driver(pictures: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 10) -> pexpect.spawn:
    """The driver running in a pty, with no image-capable terminal unless `env` says so."""
    import pexpect

    base = {k: v for k, v in os.environ.items() if k not in ("TERM_PROGRAM", "KITTY_WINDOW_ID")}
    base.update({"TERM": "dumb", **(env or {})})
    return pexpect.spawn(sys.executable, [__file__, str(pictures), *args], env=base, encoding="utf-8",
                         timeout=timeout, dimensions=(40, 200))


def press(child: pexpect.spawn, key: str) -> None:
    """Wait for the prompt and for the terminal to be in raw mode (keys typed earlier are discarded), then press `key`."""
    child.expect(PROMPT)
    child.waitnoecho()
    child.send(key)


def answers(child: pexpect.spawn) -> list[str]:
    """The answers the driver printed; waits for it to exit (its status is then `child.exitstatus`)."""
    import pexpect

    child.expect(r"answers: (\[.*\])\r?\n")
    result: list[str] = json.loads(child.match.group(1))
    child.expect(pexpect.EOF)
    child.close()
    return result


def main(argv: list[str]) -> int:
    from gmhf.core.experts import ExpertContext, Question, sample_id
    from gmhf.errors import GmhfError
    from gmhf.experts.terminal import TerminalExpert

    pictures, n = Path(argv[0]), 3
    context = ExpertContext(truth=None, pictures=pictures, show_theta="--show-theta" in argv)
    expert = TerminalExpert.create("", context)
    values: Any = None  # the terminal expert never reads values; leaving torch out keeps the driver fast
    questions = [Question(sample_id(2, i), 2, {"delta": 0.5 + i / 10, "weather": "rain"}, values, lambda: PNG)
                 for i in range(n)]
    try:
        result = expert.ask(questions)
    except GmhfError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print("answers: " + json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
