-- Initial schema: aggregate states, event identities, counters and consumer positions.
-- Only counts are stored; rates are computed at query time (contract §1).

-- Current state of every dossier, document and procedure (JSON form of the pure core's states).
CREATE TABLE aggregate_states (
    kind text NOT NULL,
    key text NOT NULL,
    state jsonb NOT NULL,
    PRIMARY KEY (kind, key)
);

-- Every accepted event identity (source, id) with a digest of its content: a repeat with the
-- same digest is a duplicate, with another digest an identity conflict.
CREATE TABLE event_identities (
    source text NOT NULL,
    id text NOT NULL,
    digest bytea NOT NULL,
    PRIMARY KEY (source, id)
);

-- Counts per unit and local day (Asia/Ho_Chi_Minh). Level counters hold the day's net change.
CREATE TABLE daily_counts (
    unit text NOT NULL,
    day date NOT NULL,
    received bigint NOT NULL DEFAULT 0,
    received_online bigint NOT NULL DEFAULT 0,
    received_direct bigint NOT NULL DEFAULT 0,
    received_postal bigint NOT NULL DEFAULT 0,
    resolved bigint NOT NULL DEFAULT 0,
    resolved_on_time bigint NOT NULL DEFAULT 0,
    resolved_late bigint NOT NULL DEFAULT 0,
    withdrawn bigint NOT NULL DEFAULT 0,
    digitization_required bigint NOT NULL DEFAULT 0,
    components_digitized bigint NOT NULL DEFAULT 0,
    result_digitization_required bigint NOT NULL DEFAULT 0,
    results_digitized bigint NOT NULL DEFAULT 0,
    fee_required bigint NOT NULL DEFAULT 0,
    paid_online bigint NOT NULL DEFAULT 0,
    ratings bigint NOT NULL DEFAULT 0,
    ratings_satisfied bigint NOT NULL DEFAULT 0,
    documents_incoming bigint NOT NULL DEFAULT 0,
    documents_outgoing bigint NOT NULL DEFAULT 0,
    documents_electronic bigint NOT NULL DEFAULT 0,
    signed_by_organization bigint NOT NULL DEFAULT 0,
    signed_by_leader bigint NOT NULL DEFAULT 0,
    in_progress bigint NOT NULL DEFAULT 0,
    in_progress_overdue bigint NOT NULL DEFAULT 0,
    procedures_info bigint NOT NULL DEFAULT 0,
    procedures_partial_online bigint NOT NULL DEFAULT 0,
    procedures_full_online bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (unit, day)
);

-- Exact instants of level changes, for figures "at as_of" within a partial day.
CREATE TABLE level_changes (
    unit text NOT NULL,
    at timestamptz NOT NULL,
    in_progress bigint NOT NULL DEFAULT 0,
    in_progress_overdue bigint NOT NULL DEFAULT 0,
    procedures_info bigint NOT NULL DEFAULT 0,
    procedures_partial_online bigint NOT NULL DEFAULT 0,
    procedures_full_online bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (unit, at)
);

-- The next offset to apply for each partition, written in the same transaction as the effects.
CREATE TABLE consumer_positions (
    topic text NOT NULL,
    partition integer NOT NULL,
    next_offset bigint NOT NULL,
    applied_at timestamptz NOT NULL,
    PRIMARY KEY (topic, partition)
);
