"""``python -m tradeguard`` is the ``tradeguard`` command."""

from tradeguard._cli import main

raise SystemExit(main())
