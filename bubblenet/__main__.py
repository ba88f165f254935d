"""``python -m bubblenet <verb> ...``: the same as the ``bubblenet`` command."""

from bubblenet.cli import main

raise SystemExit(main())
