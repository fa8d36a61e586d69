-- Monthly roll-ups of the daily counters and of the cohort changes, kept by the aggregator in the
-- same transaction as the rows they sum: a window of a year reads twelve rows per unit for its
-- whole months and the daily (or exact) rows only for the days at its edges.
--
-- monthly_counts: per unit and month (its first day), the sum of the daily_counts rows of the
-- month's days, column for column (every column daily_counts gains must be added here too).
CREATE TABLE monthly_counts (LIKE daily_counts INCLUDING DEFAULTS);
ALTER TABLE monthly_counts RENAME COLUMN day TO month;
ALTER TABLE monthly_counts ADD PRIMARY KEY (unit, month);

-- monthly_cohorts: per unit and month, the sum of the cohort_changes rows of the month's days,
-- and `last_at`, the latest instant of any change written to them (a change a later batch
-- cancelled included, so it is at or after the instant of every row with a count, and a replay
-- whose batches net such pairs out may store an earlier one): when it is at or before `as_of`,
-- every change of the month is known by then and the row stands for them; otherwise the month's
-- exact rows are read.
CREATE TABLE monthly_cohorts (LIKE cohort_changes INCLUDING DEFAULTS);
ALTER TABLE monthly_cohorts RENAME COLUMN day TO month;
ALTER TABLE monthly_cohorts RENAME COLUMN at TO last_at;
ALTER TABLE monthly_cohorts ADD PRIMARY KEY (unit, month);

-- Existing installations: the roll-ups of what is stored already.
DO $$
DECLARE
    daily_columns text;
    daily_sums text;
    cohort_columns text;
    cohort_sums text;
BEGIN
    SELECT string_agg(quote_ident(column_name), ', ' ORDER BY ordinal_position),
           string_agg(format('sum(%I)', column_name), ', ' ORDER BY ordinal_position)
    INTO daily_columns, daily_sums
    FROM information_schema.columns
    WHERE table_schema = current_schema() AND table_name = 'daily_counts' AND column_name NOT IN ('unit', 'day');
    EXECUTE format(
        'INSERT INTO monthly_counts (unit, month, %s) '
        'SELECT unit, day - extract(day FROM day)::int + 1, %s FROM daily_counts GROUP BY 1, 2',
        daily_columns, daily_sums);

    SELECT string_agg(quote_ident(column_name), ', ' ORDER BY ordinal_position),
           string_agg(format('sum(%I)', column_name), ', ' ORDER BY ordinal_position)
    INTO cohort_columns, cohort_sums
    FROM information_schema.columns
    WHERE table_schema = current_schema() AND table_name = 'cohort_changes'
      AND column_name NOT IN ('unit', 'day', 'at');
    EXECUTE format(
        'INSERT INTO monthly_cohorts (unit, month, last_at, %s) '
        'SELECT unit, day - extract(day FROM day)::int + 1, max(at), %s FROM cohort_changes GROUP BY 1, 2',
        cohort_columns, cohort_sums);
END
$$;
