"""``python -m xlmr_hf ...``: the ``xlmr-hf`` command."""

from .cli import main

raise SystemExit(main())
