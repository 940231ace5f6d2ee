"""``python -m xmmtools`` runs the command line."""

from xmmtools.cli import main

if __name__ == "__main__":
    main()
