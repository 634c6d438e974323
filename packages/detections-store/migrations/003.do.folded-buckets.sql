-- How far each bucket width's closed buckets have been folded into shard 0 (see postgres-fold.ts):
-- the next maintenance pass folds from there, so it reads only the buckets closed since.
CREATE TABLE detection_folded (
  width text PRIMARY KEY,
  folded_to timestamptz NOT NULL
);
