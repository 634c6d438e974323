-- Detections and their token rows partitioned by UTC day of `detected_at`, so retention drops a
-- whole day (a file unlink) instead of deleting rows; time-series counters split by width so each
-- width is kept for its own period (minutes and hours partitioned by day as well, days for ever).
--
-- In place, in one transaction under the migration lock: the old tables are renamed, their rows
-- copied into the new partitions, then dropped. Readers and writers of the old tables wait for the
-- whole migration (the rename takes an ACCESS EXCLUSIVE lock); the copy and the index builds cost
-- about as much as inserting the rows again (docs/storage.md has the measured figures).

ALTER TABLE detections RENAME TO detections_unpartitioned;
ALTER TABLE detection_category_tokens RENAME TO detection_category_tokens_unpartitioned;
ALTER TABLE detection_buckets RENAME TO detection_buckets_unpartitioned;
ALTER INDEX detections_pkey RENAME TO detections_unpartitioned_pkey;
ALTER INDEX detections_newest_first RENAME TO detections_unpartitioned_newest_first;
ALTER INDEX detections_make_newest_first RENAME TO detections_unpartitioned_make_newest_first;
ALTER INDEX detections_model_newest_first RENAME TO detections_unpartitioned_model_newest_first;
ALTER INDEX detections_year_newest_first RENAME TO detections_unpartitioned_year_newest_first;
ALTER INDEX detection_category_tokens_newest_first RENAME TO detection_category_tokens_unpartitioned_newest_first;

CREATE TABLE detections (
  id text COLLATE "C" NOT NULL,
  detected_at timestamptz NOT NULL,
  year integer NOT NULL,
  make text NOT NULL,
  model text NOT NULL,
  category text NOT NULL,
  make_key text NOT NULL,
  model_key text NOT NULL,
  category_key text NOT NULL,
  category_tokens text[] NOT NULL,
  suspicious boolean NOT NULL,
  source_topic text NOT NULL,
  source_partition integer NOT NULL,
  source_offset bigint NOT NULL,
  source_timestamp bigint NOT NULL
) PARTITION BY RANGE (detected_at);

CREATE TABLE detection_category_tokens (
  token text NOT NULL,
  detected_at timestamptz NOT NULL,
  id text COLLATE "C" NOT NULL
) PARTITION BY RANGE (detected_at);

-- Per UTC minute and hour, partitioned by day (each width has its own retention); per UTC day,
-- kept for ever. Dimension '' is the total; 'token' (category tokens) is counted per day only,
-- for the total of a page filtered by a token within the retention window.
CREATE TABLE detection_minutes (
  dim text NOT NULL,
  start timestamptz NOT NULL,
  value_key text NOT NULL,
  shard integer NOT NULL,
  total bigint NOT NULL,
  suspicious bigint NOT NULL,
  PRIMARY KEY (dim, start, value_key, shard)
) PARTITION BY RANGE (start);
CREATE TABLE detection_hours (LIKE detection_minutes INCLUDING ALL) PARTITION BY RANGE (start);
CREATE TABLE detection_days (LIKE detection_minutes INCLUDING ALL);

-- Where each kind of data starts now that retention has dropped older days: absent = nothing
-- dropped. `what` is 'detections', 'minute' or 'hour'.
CREATE TABLE detection_retention (
  what text PRIMARY KEY,
  kept_from timestamptz NOT NULL
);

-- One partition per UTC day that holds data, named <table>_pYYYYMMDD. Later days are created ahead
-- of time by the store's maintenance, or on the first insert that needs one.
CREATE FUNCTION detections_day_partitions(parent text, days timestamptz[]) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
  day timestamptz;
BEGIN
  -- Two writers that need the same new day would otherwise both try to create it.
  PERFORM pg_advisory_xact_lock(hashtext('detections_day_partitions'));
  FOREACH day IN ARRAY days LOOP
    EXECUTE format(
      'CREATE TABLE IF NOT EXISTS %I PARTITION OF %I FOR VALUES FROM (%L) TO (%L)',
      parent || '_p' || to_char(day AT TIME ZONE 'UTC', 'YYYYMMDD'), parent,
      day, day + interval '1 day');
  END LOOP;
END $$;

SELECT detections_day_partitions('detections', coalesce(array_agg(day), '{}'))
FROM (SELECT DISTINCT date_trunc('day', detected_at, 'UTC') AS day FROM detections_unpartitioned) d;
SELECT detections_day_partitions('detection_category_tokens', coalesce(array_agg(day), '{}'))
FROM (SELECT DISTINCT date_trunc('day', detected_at, 'UTC') AS day
      FROM detection_category_tokens_unpartitioned) d;
SELECT detections_day_partitions('detection_minutes', coalesce(array_agg(day), '{}'))
FROM (SELECT DISTINCT date_trunc('day', start, 'UTC') AS day FROM detection_buckets_unpartitioned
      WHERE width = 'minute') d;
SELECT detections_day_partitions('detection_hours', coalesce(array_agg(day), '{}'))
FROM (SELECT DISTINCT date_trunc('day', start, 'UTC') AS day FROM detection_buckets_unpartitioned
      WHERE width = 'hour') d;

-- Rows first, indexes after: one sorted build per partition is cheaper than maintaining them row
-- by row.
INSERT INTO detections SELECT * FROM detections_unpartitioned;
INSERT INTO detection_category_tokens SELECT * FROM detection_category_tokens_unpartitioned;

-- The identity and the newest-first order in one index: (detected_at, id) is as unique as id,
-- since the id is derived from the Kafka coordinates and the record timestamp, and a redelivered
-- record has the same timestamp, so it lands on the same row (ON CONFLICT). A unique constraint
-- of a partitioned table must hold the partition key; an index on id alone would be a fifth
-- index that no query needs.
CREATE UNIQUE INDEX detections_newest_first ON detections (detected_at DESC, id DESC);
CREATE INDEX detections_make_newest_first ON detections (make_key, detected_at DESC, id DESC);
CREATE INDEX detections_model_newest_first ON detections (model_key, detected_at DESC, id DESC);
CREATE INDEX detections_year_newest_first ON detections (year, detected_at DESC, id DESC);
CREATE UNIQUE INDEX detection_category_tokens_newest_first
  ON detection_category_tokens (token, detected_at DESC, id DESC);

INSERT INTO detection_minutes
SELECT dim, start, value_key, shard, total, suspicious FROM detection_buckets_unpartitioned
WHERE width = 'minute';
INSERT INTO detection_hours
SELECT dim, start, value_key, shard, total, suspicious FROM detection_buckets_unpartitioned
WHERE width = 'hour';
INSERT INTO detection_days
SELECT dim, date_trunc('day', start, 'UTC'), value_key, shard, sum(total), sum(suspicious)
FROM detection_buckets_unpartitioned WHERE width = 'hour'
GROUP BY 1, 2, 3, 4;
-- Day counts per category token, from the token rows (the old buckets had no token dimension).
INSERT INTO detection_days
SELECT 'token', date_trunc('day', t.detected_at, 'UTC'), t.token, d.source_partition, count(*),
  count(*) FILTER (WHERE d.suspicious)
FROM detection_category_tokens_unpartitioned t
JOIN detections_unpartitioned d ON d.id = t.id
GROUP BY 1, 2, 3, 4;

DROP TABLE detection_buckets_unpartitioned;
DROP TABLE detection_category_tokens_unpartitioned;
DROP TABLE detections_unpartitioned;
