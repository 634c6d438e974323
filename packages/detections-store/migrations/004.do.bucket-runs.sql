-- Closed buckets of the two finer widths, one row per value and coarser bucket: a minute run holds
-- the 60 minute counts of one hour, an hour run the 24 hour counts of one day (element i counts
-- the bucket that starts i widths after `start`). Maintenance moves a width's rows here once
-- their bucket has closed (see postgres-fold.ts): a series then reads a row per hour or day instead
-- of one per bucket, and the bucket tables keep only the open buckets and late records.
-- Partitioned by UTC day like the bucket tables, and dropped with them.
CREATE TABLE detection_minute_runs (
  dim text NOT NULL,
  start timestamptz NOT NULL,
  value_key text NOT NULL,
  totals bigint[] NOT NULL,
  suspicious bigint[] NOT NULL,
  PRIMARY KEY (dim, start, value_key)
) PARTITION BY RANGE (start);
CREATE TABLE detection_hour_runs (LIKE detection_minute_runs INCLUDING ALL) PARTITION BY RANGE (start);
-- The runs start empty: the next maintenance pass moves every closed minute and hour bucket into
-- them, from the oldest (the rows already folded into shard 0 included).

-- A run of `length` counts from (position, count) pairs, positions from 1; a position given twice
-- counts twice.
CREATE FUNCTION detection_run(positions int[], counts bigint[], length int) RETURNS bigint[]
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
  run bigint[] := array_fill(0::bigint, ARRAY[length]);
BEGIN
  FOR k IN 1 .. coalesce(cardinality(positions), 0) LOOP
    run[positions[k]] := run[positions[k]] + counts[k];
  END LOOP;
  RETURN run;
END $$;
