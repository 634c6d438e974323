-- Accounts for the API. gen_random_uuid() is built into PostgreSQL 13+.
CREATE TABLE users (
  id            uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
  username      text        NOT NULL,
  password_hash text        NOT NULL,
  created_at    timestamptz NOT NULL DEFAULT now()
);

-- Usernames are unique case-insensitively ("Alice" and "alice" are the same account); logins look
-- users up through the same expression, so this index serves both.
CREATE UNIQUE INDEX users_username_lower_key ON users (lower(username));
