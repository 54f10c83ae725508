"""``python -m caloforge``: the same as the ``caloforge`` command."""

from caloforge.cli import main

if __name__ == "__main__":
    main()
