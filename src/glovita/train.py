"""`python -m glovita.train` (also the form torchrun launches)."""

from glovita.cli.train import main

if __name__ == "__main__":
    main()
