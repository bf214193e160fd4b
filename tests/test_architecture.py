"""Issue #10 §1: the layout is enforced. The core, the form engine and the domain libraries
never import a feature or a channel, channels never import a feature, features import each
other only through declared shared modules (.importlinter), and bot/ has no import cycle."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import grimp

ROOT = Path(__file__).resolve().parent.parent
# In a process of its own: import-linter reconfigures logging, which other tests capture.
LINT = ("import sys; from importlinter.cli import lint_imports; "
        "sys.exit(lint_imports(config_filename='.importlinter', no_cache=True, no_logo=True))")


def test_import_contracts_hold() -> None:
    done = subprocess.run([sys.executable, "-c", LINT], cwd=ROOT, capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


def test_bot_has_no_import_cycle() -> None:
    """Imports at run time (not those only for type checking) form no cycle."""
    graph = grimp.build_graph("bot", exclude_type_checking_imports=True, cache_dir=None)
    cycles = []
    for module in sorted(graph.modules):
        for imported in sorted(graph.find_modules_directly_imported_by(module)):
            back = graph.find_shortest_chain(importer=imported, imported=module)
            if back:
                cycles.append(" -> ".join((module, *back)))
    assert not cycles, "\n".join(cycles)
