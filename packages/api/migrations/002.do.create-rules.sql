-- Roles: open sign-up creates users; admins come from configuration (ADMIN_USERNAME) or the
-- `promote-admin` command, never from a request.
ALTER TABLE users ADD COLUMN role text NOT NULL DEFAULT 'user' CHECK (role IN ('admin', 'user'));

-- Alert rules. PostgreSQL is their source of truth; the changelog topic follows it through
-- rules_outbox. The built-in SUSPICIOUS_VEHICLE rule is configuration and never stored here.
CREATE TABLE rules (
  id          uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
  owner_id    uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  name        text        NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
  scope       text        NOT NULL DEFAULT 'private' CHECK (scope IN ('private', 'shared')),
  enabled     boolean     NOT NULL DEFAULT true,
  watchlist   boolean     NOT NULL DEFAULT false,
  match       jsonb       NOT NULL DEFAULT '{}',
  -- Kept with the entries in the same transaction, so listing rules never counts entries.
  entry_count integer     NOT NULL DEFAULT 0 CHECK (entry_count >= 0),
  version     integer     NOT NULL DEFAULT 1 CHECK (version > 0),
  created_at  timestamptz NOT NULL DEFAULT now(),
  updated_at  timestamptz NOT NULL DEFAULT now()
);

-- One name per owner, case-insensitively: the index decides, so two concurrent creates cannot both win.
CREATE UNIQUE INDEX rules_owner_name_key ON rules (owner_id, lower(name));
-- GET /rules: shared rules and the caller's own.
CREATE INDEX rules_scope_idx ON rules (scope, created_at, id);

-- A watch list's entries, in upload order. Replaced whole: one DELETE and one INSERT from arrays.
CREATE TABLE rule_entries (
  rule_id  uuid    NOT NULL REFERENCES rules (id) ON DELETE CASCADE,
  position integer NOT NULL,
  make     text    NOT NULL,
  model    text    NOT NULL,
  year_min integer,
  year_max integer,
  PRIMARY KEY (rule_id, position)
);

-- Rules whose current state is still to be published to the changelog topic. No foreign key: a
-- deleted rule's row stays to publish its tombstone.
CREATE TABLE rules_outbox (
  id         bigserial   PRIMARY KEY,
  rule_id    uuid        NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now()
);

-- Every change of a rule row (insert, update, delete, including a delete cascaded from its owner)
-- queues it in the same transaction: no code path can change a rule and forget the topic.
CREATE FUNCTION rules_outbox_enqueue() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO rules_outbox (rule_id) VALUES (COALESCE(NEW.id, OLD.id));
  RETURN NULL;
END
$$;

CREATE TRIGGER rules_outbox_enqueue
  AFTER INSERT OR UPDATE OR DELETE ON rules
  FOR EACH ROW EXECUTE FUNCTION rules_outbox_enqueue();
