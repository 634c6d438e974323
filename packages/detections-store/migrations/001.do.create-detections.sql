-- Detections with typed columns. Ids compare bytewise (COLLATE "C") so pages come in the same order
-- as on MongoDB, whose string comparison is binary.
CREATE TABLE detections (
  id text COLLATE "C" PRIMARY KEY,
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
);

-- Every filter has an index that ends in the paging order, so a filtered page is an index walk
-- that stops after `limit` rows, never a sort.
CREATE INDEX detections_newest_first ON detections (detected_at DESC, id DESC);
CREATE INDEX detections_make_newest_first ON detections (make_key, detected_at DESC, id DESC);
CREATE INDEX detections_model_newest_first ON detections (model_key, detected_at DESC, id DESC);
CREATE INDEX detections_year_newest_first ON detections (year, detected_at DESC, id DESC);

-- One row per (category token, detection): a page filtered by a token walks this index newest
-- first. A GIN index on category_tokens finds the rows but not in order, so a common token
-- (`suv`, a fifth of the stream) would be sorted in full on every page.
CREATE TABLE detection_category_tokens (
  token text NOT NULL,
  detected_at timestamptz NOT NULL,
  id text COLLATE "C" NOT NULL
);
CREATE UNIQUE INDEX detection_category_tokens_newest_first
  ON detection_category_tokens (token, detected_at DESC, id DESC);

-- Exact counts per (dimension, case-folded value), written in the transaction that inserts the
-- detections. `token` counts category tokens, for the total of a page filtered by one. One row
-- per Kafka partition (`shard`): batches of different partitions are written at the same time
-- and would otherwise queue on the same hot rows (`toyota`, the current minute) until each other's
-- commit. Reads add the shards up.
CREATE TABLE detection_stats (
  dim text NOT NULL,
  value_key text NOT NULL,
  shard integer NOT NULL,
  label text NOT NULL,
  count bigint NOT NULL,
  PRIMARY KEY (dim, value_key, shard)
);

-- Counts per UTC minute and hour (days add hours up), in total (dim '') and per dimension value.
CREATE TABLE detection_buckets (
  width text NOT NULL CHECK (width IN ('minute', 'hour')),
  dim text NOT NULL,
  start timestamptz NOT NULL,
  value_key text NOT NULL,
  shard integer NOT NULL,
  total bigint NOT NULL,
  suspicious bigint NOT NULL,
  PRIMARY KEY (width, dim, start, value_key, shard)
);
