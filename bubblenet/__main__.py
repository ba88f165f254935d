"""``python -m bubblenet <verb> ...``: the same as the ``bubblenet`` command."""

from bubblenet.cli import main

if __name__ == "__main__":  # imported by documentation tools too
    raise SystemExit(main())
