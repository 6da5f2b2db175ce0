"""What the clinic tells people, and when.

``events`` is the entry point the booking and care services call in the causing
transaction (it writes outbox *intents* only, never renders); ``messages`` says what
each kind of message says and renders it at send time; ``send_rules`` decides at send
time whether a message still holds (each kind's rule and validity window); ``links``
builds absolute URLs and signed tokens. Nothing here imports care or booking: the
worker's planner (``services.planner``) sits above them and registers the two kinds
whose rendering needs them (check-ins and rebooking prompts).
"""
