"""`python -m bridge …` and the `bridge` command: the CLI, loaded with the cyclic garbage
collector off (`bridge.cli.main` turns it on again once the command is loaded)."""

import gc
import sys


def main() -> int:
    gc.disable()
    from bridge.cli import main as run

    return run()


if __name__ == "__main__":
    sys.exit(main())
