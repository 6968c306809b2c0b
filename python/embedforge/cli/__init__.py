"""The ``embedforge`` console command."""

from __future__ import annotations

import argparse
import sys

from embedforge.cli.augment import add_augment_command
from embedforge.cli.demo import add_demo_command
from embedforge.cli.train import add_train_command


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``embedforge`` command."""
    parser = argparse.ArgumentParser(prog="embedforge", description="Train and run sentence-embedding models.")
    commands = parser.add_subparsers(dest="command", required=True)
    add_train_command(commands)
    add_demo_command(commands)
    add_augment_command(commands)
    arguments = parser.parse_args(argv)
    return int(arguments.run(arguments) or 0)


if __name__ == "__main__":
    sys.exit(main())
