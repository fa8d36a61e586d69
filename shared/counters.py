"""Names of the stored counters: the schema shared by the aggregator (writer) and reporting (reader).

Daily counters count facts on the local day they happened. Level counters hold the changes of
point-in-time figures (in progress, overdue, published procedures): the figure at an instant is
the sum of every change at or before it.
"""

from __future__ import annotations

DAILY_COUNTERS: tuple[str, ...] = (
    "received",
    "received_online",
    "received_direct",
    "received_postal",
    "resolved",
    "resolved_on_time",
    "resolved_late",
    "withdrawn",
    "digitization_required",
    "components_digitized",
    "result_digitization_required",
    "results_digitized",
    "fee_required",
    "paid_online",
    "ratings",
    "ratings_satisfied",
    "documents_incoming",
    "documents_outgoing",
    "documents_electronic",
    "signed_by_organization",
    "signed_by_leader",
)

LEVEL_COUNTERS: tuple[str, ...] = (
    "in_progress",
    "in_progress_overdue",
    "procedures_info",
    "procedures_partial_online",
    "procedures_full_online",
)

ALL_COUNTERS: tuple[str, ...] = DAILY_COUNTERS + LEVEL_COUNTERS
