"""``python -m clinic_app`` is the ``clinic`` command."""

from clinic_app.cli import main

main()
