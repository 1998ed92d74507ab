"""Regenerate README.md's generated sections from their single sources (issue 16):

* ``hparams``: every built-in method's declared hyper-parameters (``cmhash hparams --markdown``,
  :func:`cmhash.methods.hparams.hparams_markdown`);
* ``plugin-example``: the "Adding a method" example, read from tests/plugin_example/ (the
  method file, its entry point, its config block and its hyper-parameter table), the very files
  tests/test_plugins.py installs and runs.

Each section sits between ``<!-- BEGIN GENERATED: <name> ... -->`` and ``<!-- END GENERATED:
<name> -->``. ``python scripts/render_readme.py`` rewrites README.md; ``--check`` exits 1 if it
is stale (tests/test_hparams.py runs the check).
"""
from __future__ import annotations

import argparse
import importlib.util
import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "tests" / "plugin_example"
sys.path.insert(0, str(REPO / "src"))


def _example_class():
    spec = importlib.util.spec_from_file_location("toy_hashing", EXAMPLE / "toy_hashing.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.ToyHashing


def sections() -> dict[str, str]:
    from cmhash.methods import METHODS
    from cmhash.methods.hparams import hparams_markdown

    builtin = [METHODS[name] for name in sorted(METHODS) if METHODS[name].__module__.startswith("cmhash.methods.")]
    pyproject = (EXAMPLE / "pyproject.toml").read_text()
    entry = pyproject[pyproject.index("[project.entry-points"):].strip()
    example = "\n".join([
        "`toy_hashing.py` (tests/plugin_example/toy_hashing.py):", "",
        "```python", (EXAMPLE / "toy_hashing.py").read_text().rstrip(), "```", "",
        ("Its entry point, in the package's `pyproject.toml` (then `pip install -e .` the package; the "
         "test writes the same line as an installed `entry_points.txt`):"), "",
        "```toml", entry, "```", "",
        "The config block (tests/plugin_example/config.yaml, the one cell the test trains):", "",
        "```yaml", (EXAMPLE / "config.yaml").read_text().rstrip(), "```", "",
        "Its declared hyper-parameters, as `cmhash hparams --markdown toyhash` prints them:", "",
        hparams_markdown([_example_class()]).replace("### `toyhash`\n\n", "").rstrip(),
    ])
    return {"hparams": hparams_markdown(builtin).rstrip(), "plugin-example": example}


def render(text: str, parts: dict[str, str]) -> str:
    for name, body in parts.items():
        pattern = re.compile(rf"(<!-- BEGIN GENERATED: {re.escape(name)}\b[^>]*-->\n)(.*?)(<!-- END GENERATED: "
                             rf"{re.escape(name)} -->)", re.DOTALL)
        if not pattern.search(text):
            raise SystemExit(f"README.md: no generated section '{name}' (its BEGIN/END markers are missing)")
        text = pattern.sub(lambda m, body=body: f"{m.group(1)}\n{body}\n\n{m.group(3)}", text)
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if README.md is not current")
    parser.add_argument("--readme", default=str(REPO / "README.md"))
    args = parser.parse_args(argv)
    path = Path(args.readme)
    old = path.read_text()
    new = render(old, sections())
    if args.check:
        if new != old:
            print(f"{path}: generated sections are stale; run python scripts/render_readme.py", file=sys.stderr)
            return 1
        return 0
    path.write_text(new)
    return 0


if __name__ == "__main__":
    sys.exit(main())
