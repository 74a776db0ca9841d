"""The figures the hardening tests add to, printed at the end of the run ("hardening figures").

Under pytest-xdist each worker counts its own share; tests/conftest.py sends a worker's counts to
the controller when the worker ends and prints the sums there.
"""

from __future__ import annotations

# name → [counted, bad]; filled by the tests, printed by tests/conftest.py's terminal summary.
FIGURES: dict[str, list[int]] = {}
FIGURE_LINES = {
    "matrix": "authorization matrix: {0} cells checked, {1} leaks",
    "bad_input": "generated bad input: {0} inputs tried, {1} 5xx",
    "canary": "key canary: {0} places searched, {1} hits",
    "api_matrix": "API authorization matrix: {0} cells checked, {1} failures",
    "api_canary": "API key canary: {0} places searched, {1} hits",
}


def add_figure(name: str, counted: int, bad: int) -> None:
    """Add to one of the printed figures (several tests may feed the same figure)."""
    totals = FIGURES.setdefault(name, [0, 0])
    totals[0] += counted
    totals[1] += bad


def figure_lines() -> list[str]:
    return [line.format(*FIGURES[name]) for name, line in FIGURE_LINES.items() if name in FIGURES]
