"""The ``instrumentgen`` command (also ``python -m instrumentgen``): subcommands for users of trained models.

instrumentgen make --prompt "warm cello" --out cello      # see `instrumentgen make --help`
"""

from __future__ import annotations

import sys

COMMANDS = {"make": "make a playable instrument (WAVs + SFZ + SF2) from a prompt or a sample"}


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in COMMANDS:
        lines = [f"  {name:8s}{text}" for name, text in COMMANDS.items()]
        print(
            "usage: instrumentgen COMMAND [options]\n\ncommands:\n"
            + "\n".join(lines)
            + "\n\n`instrumentgen COMMAND --help` explains each."
        )
        raise SystemExit(0 if argv and argv[0] in ("-h", "--help") else 2)
    from instrumentgen.make import main as make_main

    make_main(argv[1:])


if __name__ == "__main__":
    main()
