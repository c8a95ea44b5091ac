"""Write backends/common/bnb_formats.h from bnb_core/formats.py (the single source of truth)."""

import importlib.util
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]
HEADER = ROOT / "backends" / "common" / "bnb_formats.h"


def load_formats():
    # Load formats.py by path: it imports nothing from the package, so torch is not needed.
    spec = importlib.util.spec_from_file_location("_bnb_formats", ROOT / "bnb_core" / "formats.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def main(argv=None) -> int:
    text = load_formats().render_c_header()
    check = "--check" in (argv or sys.argv[1:])
    if check:
        ok = HEADER.exists() and HEADER.read_text() == text
        print("up to date" if ok else f"{HEADER} is stale: run python tools/gen_formats_header.py")
        return 0 if ok else 1
    HEADER.write_text(text)
    print(f"wrote {HEADER}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
