"""Names of the stored counters: the schema shared by the aggregator (writer) and reporting (reader).

Daily counters count facts on the local day they happened. Level counters hold the changes of
point-in-time figures (in progress, overdue, published procedures): the figure at an instant is
the sum of every change at or before it. Cohort counters hold, for the dossiers received on a day,
the changes of a figure at the instants it changes. Procedure counters are the daily counters of
one procedure (unit, procedure code), for the Decision 766 components that ask whether a procedure
had at least one such dossier in a window.
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
    # v2 (contract §5): dossiers received that day with a synced event, with at least one supplement
    # request, with reused components, with components from the personal data store.
    "synced",
    "supplement_requested",
    "components_reused",
    "components_from_personal_store",
    # Dossiers received that day with components digitized, whether or not digitization was required
    # (Decision 766, 4.2).
    "received_digitized",
)

LEVEL_COUNTERS: tuple[str, ...] = (
    "in_progress",
    "in_progress_overdue",
    "procedures_info",
    "procedures_partial_online",
    "procedures_full_online",
    # Published procedures that bear a fee (Decision 766, 3.5).
    "procedures_fee_bearing",
    # Decision 766, 2.1: open and not yet due, with at most one supplement request.
    "open_on_time",
)

ALL_COUNTERS: tuple[str, ...] = DAILY_COUNTERS + LEVEL_COUNTERS

# Cohort counters: (unit, day, at) -> change. A window's figure at as_of sums the rows whose day is
# in the window and whose instant is at or before as_of.
COHORT_COUNTERS: tuple[str, ...] = (
    # Decision 766, 4.2: day = received day; -1 at the instant a digitized dossier whose required
    # result was not digitized is resolved.
    "digitized_result_missing",
    # Decision 766, 2.1: day = the day a dossier ended (resolved or withdrawn, the earlier), at the
    # later of its receipt and its end: ended, and ended by its due date with at most one
    # supplement request.
    "handled_ended",
    "handled_ended_on_time",
)
PROCEDURE_DAILY_COUNTERS: tuple[str, ...] = ("received_online", "fee_synced", "paid_online")
