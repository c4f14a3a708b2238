"""The public surface: pinned names, each with a docstring, resolved lazily."""

from __future__ import annotations

import subprocess
import sys

import gmhf

EXPECTED = [
    "Constraint", "Diagnostic", "DistributionKind", "Domain", "ExitCode", "Factor", "FactorSpace", "FunctionKind",
    "GmhfError", "Guidance", "Observable", "PluginError", "SpecError", "Theta", "UsageError", "__version__",
    "compile", "hookimpl", "load", "parse", "pool", "run",
]


def test_all_is_pinned() -> None:
    """`gmhf.__all__` is exactly the documented list, sorted."""
    assert gmhf.__all__ == sorted(EXPECTED)


def test_every_public_name_has_a_docstring() -> None:
    """Every exported class and function documents itself."""
    missing = [n for n in gmhf.__all__ if n != "__version__" and n != "hookimpl"
               and not (getattr(gmhf, n).__doc__ or "").strip()]
    assert missing == []


def test_import_gmhf_does_not_import_torch() -> None:
    """`import gmhf` stays light; torch loads only when a compiled name is used."""
    result = subprocess.run([sys.executable, "-c", "import gmhf, sys; assert 'torch' not in sys.modules"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


def test_reprs() -> None:
    """Guidance and Theta print short summaries, tensors as dtype and shape."""
    g = gmhf.load("domain sinusoid\ntrust 0.8\nshift amplitude in 2 .. 4")
    assert repr(g) == "Guidance(domain='sinusoid', factors=4, statements=3, trust=0.8)"
    assert repr(g.sample(7, seed=0)) == "Theta(f64[7, 4], names=('amplitude', 'phase', 'frequency', 'noise'))"
    assert str(g) == "domain sinusoid\ntrust 0.8\nshift amplitude in 2 .. 4\n"
