"""The one signer of single-purpose email links (booking links, waitlist offer links).

Each family of links has its own salt prefix and list of purposes; the purpose is part of the
salt, so a token made for one purpose never loads as another. Nothing is stored.
"""

from __future__ import annotations

from collections.abc import Sequence

from itsdangerous import URLSafeSerializer


def purpose_serializer(secret: str, salt_prefix: str, purposes: Sequence[str],
                       purpose: str) -> URLSafeSerializer:
    """The serializer of ``purpose`` in the family ``salt_prefix`` (ValueError for a purpose
    the family does not have: a programming error, not user input)."""
    if purpose not in purposes:
        raise ValueError(f"unknown link purpose {purpose!r} for {salt_prefix!r}")
    return URLSafeSerializer(secret, salt=salt_prefix + purpose)
