-- Contract v2: counters for the v2 dossier figures and the Decision 766 index (shared/counters.py).

ALTER TABLE daily_counts
    ADD COLUMN synced bigint NOT NULL DEFAULT 0,
    ADD COLUMN supplement_requested bigint NOT NULL DEFAULT 0,
    ADD COLUMN components_reused bigint NOT NULL DEFAULT 0,
    ADD COLUMN components_from_personal_store bigint NOT NULL DEFAULT 0,
    ADD COLUMN received_digitized bigint NOT NULL DEFAULT 0,
    ADD COLUMN procedures_fee_bearing bigint NOT NULL DEFAULT 0,
    ADD COLUMN handled_ended bigint NOT NULL DEFAULT 0,
    ADD COLUMN handled_ended_on_time bigint NOT NULL DEFAULT 0,
    ADD COLUMN open_on_time bigint NOT NULL DEFAULT 0;

ALTER TABLE level_changes
    ADD COLUMN procedures_fee_bearing bigint NOT NULL DEFAULT 0,
    ADD COLUMN handled_ended bigint NOT NULL DEFAULT 0,
    ADD COLUMN handled_ended_on_time bigint NOT NULL DEFAULT 0,
    ADD COLUMN open_on_time bigint NOT NULL DEFAULT 0;

-- For the dossiers received on `day`, the change at instant `at` of a figure that depends on the
-- time of evaluation (Decision 766, 4.2: digitized dossiers whose required result was not
-- digitized drop out when they are resolved). A window's value at as_of sums its days up to as_of.
CREATE TABLE cohort_changes (
    unit text NOT NULL,
    day date NOT NULL,
    at timestamptz NOT NULL,
    digitized_result_missing bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (unit, day, at)
);

-- Per procedure (unit, procedure code) and local day: dossiers received online, received with a
-- fee and synchronised, received and paid online (Decision 766, 3.2 and 3.5).
CREATE TABLE procedure_days (
    unit text NOT NULL,
    procedure_code text NOT NULL,
    day date NOT NULL,
    received_online bigint NOT NULL DEFAULT 0,
    fee_synced bigint NOT NULL DEFAULT 0,
    paid_online bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (unit, procedure_code, day)
);

-- Per procedure, the instants at which it starts or stops counting as published online or as
-- fee-bearing: its flag at t is the sum of the changes at or before t.
CREATE TABLE procedure_changes (
    unit text NOT NULL,
    procedure_code text NOT NULL,
    at timestamptz NOT NULL,
    online bigint NOT NULL DEFAULT 0,
    fee_bearing bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (unit, procedure_code, at)
);
