-- Contract v2: counters for the v2 dossier figures and the Decision 766 index (shared/counters.py).

ALTER TABLE daily_counts
    ADD COLUMN synced bigint NOT NULL DEFAULT 0,
    ADD COLUMN supplement_requested bigint NOT NULL DEFAULT 0,
    ADD COLUMN components_reused bigint NOT NULL DEFAULT 0,
    ADD COLUMN components_from_personal_store bigint NOT NULL DEFAULT 0,
    ADD COLUMN received_digitized bigint NOT NULL DEFAULT 0,
    ADD COLUMN procedures_fee_bearing bigint NOT NULL DEFAULT 0,
    ADD COLUMN open_on_time bigint NOT NULL DEFAULT 0;

ALTER TABLE level_changes
    ADD COLUMN procedures_fee_bearing bigint NOT NULL DEFAULT 0,
    ADD COLUMN open_on_time bigint NOT NULL DEFAULT 0;

-- For the dossiers of a day, the change at instant `at` of a figure that depends on the time of
-- evaluation: a window's value at as_of sums the rows of its days with `at` up to as_of.
-- Decision 766, 4.2 (day = received day): digitized dossiers whose required result was not
-- digitized drop out when they are resolved; 2.1 (day = the day a dossier ended): ended, and ended
-- on time, known from the later of receipt and end.
CREATE TABLE cohort_changes (
    unit text NOT NULL,
    day date NOT NULL,
    at timestamptz NOT NULL,
    digitized_result_missing bigint NOT NULL DEFAULT 0,
    handled_ended bigint NOT NULL DEFAULT 0,
    handled_ended_on_time bigint NOT NULL DEFAULT 0,
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

-- Per procedure and year, the days (bit n = day n of the year, 1 January = bit 0) on which
-- procedure_days has a non-zero count, kept in step with it by the aggregator: "did the procedure
-- receive such a dossier in the window" is then one AND with a mask per procedure and year.
CREATE TABLE procedure_years (
    unit text NOT NULL,
    procedure_code text NOT NULL,
    year integer NOT NULL,
    received_online bit(366) NOT NULL,
    fee_synced bit(366) NOT NULL,
    paid_online bit(366) NOT NULL,
    PRIMARY KEY (unit, procedure_code, year)
);

-- The periods [starts_at, ends_at) in which a procedure counts as published online or as
-- fee-bearing (a set: `n` is 1 for a current period, 0 for one a correction replaced).
CREATE TABLE procedure_periods (
    unit text NOT NULL,
    procedure_code text NOT NULL,
    starts_at timestamptz NOT NULL,
    ends_at timestamptz NOT NULL,  -- 'infinity' while it lasts
    online boolean NOT NULL,
    fee_bearing boolean NOT NULL,
    n integer NOT NULL,
    PRIMARY KEY (unit, procedure_code, starts_at, ends_at, online, fee_bearing)
);
