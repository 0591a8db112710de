"""python -m server.emulators truebar|wiro [--host H] [--port N] [...]: run one emulator standalone."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] not in {"truebar", "wiro"}:
        print("usage: python -m server.emulators truebar|wiro [--help]", file=sys.stderr)
        return 2
    if args[0] == "truebar":
        from server.emulators import truebar

        return truebar.main(args[1:])
    from server.emulators import wiro

    return wiro.main(args[1:])


if __name__ == "__main__":
    sys.exit(main())
