"""``python -m caloforge``: the same as the ``caloforge`` command."""

import signal
import sys


def _early(signum, frame):  # an interrupt while the CLI is still importing: nothing to clean
    sys.stderr.write("interrupted\n")
    sys.exit(128 + signum)


if __name__ == "__main__":
    for _sig in (signal.SIGINT, signal.SIGTERM):
        if signal.getsignal(_sig) is not signal.SIG_IGN:
            signal.signal(_sig, _early)
    from caloforge.cli import main

    main()
