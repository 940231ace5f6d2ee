"""``python -m xmmtools`` runs the command line."""

from xmmtools.main import main

if __name__ == "__main__":
    main()
