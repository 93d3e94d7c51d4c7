"""``python -m toolkit``: see :mod:`toolkit.cli`."""

from toolkit.cli import main

if __name__ == "__main__":
    main()
