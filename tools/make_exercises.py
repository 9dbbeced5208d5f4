"""Regenerate exercises/ from solutions/ (``make exercises``); ``--check`` only reports drift."""

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dclib.labs import generate_exercises  # noqa: E402

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args()
    root = Path(__file__).resolve().parents[1]
    stale = generate_exercises(root / "solutions", root / "exercises", check=args.check)
    for path in stale:
        print(("out of sync: " if args.check else "wrote ") + str(path.relative_to(root)))
    sys.exit(1 if (args.check and stale) else 0)
