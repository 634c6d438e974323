DROP TABLE detection_buckets;
DROP TABLE detection_stats;
DROP TABLE detection_category_tokens;
DROP TABLE detections;
