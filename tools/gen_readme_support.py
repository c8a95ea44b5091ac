"""Rewrite the generated support section of README.md (between the support-matrix markers) from the
built-in backends' SUPPORT declarations (bnb_core.support.readme_block). `--check`: exit 1 if it is stale.
Same as `python -m bnb_core support --write-readme` in the repository root."""

import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]
README = ROOT / "README.md"


def main(argv=None) -> int:
    sys.path.insert(0, str(ROOT))  # this source tree's bnb_core (the native module is not needed)
    from bnb_core import support

    if "--check" in (argv if argv is not None else sys.argv[1:]):
        drift = support.readme_drift(README)
        print(drift or "up to date")
        return 1 if drift else 0
    changed = support.write_readme(README)
    print(f"{README}: support section {'rewritten' if changed else 'already up to date'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
